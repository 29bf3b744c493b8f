#!/usr/bin/env bash
# The engine with the workbench attached against headless, on the same input, alternating:
# seconds from launching cyberfilter-tui (in a 200x60 tmux pane, the screen polled every 20 ms)
# to its "✓ done" header, against the whole `cyberfilter run` process. Prints one line a round.
#   scripts/tui-vs-headless.sh [BIN_DIR=target/release] [INPUT=../shared/realdata] [ROUNDS=3]
set -euo pipefail
bin=${1:-target/release}
input=${2:-../shared/realdata}
rounds=${3:-3}
work=$(mktemp -d)
trap 'tmux kill-session -t cf-tvh 2>/dev/null || true; rm -rf "$work"' EXIT
now() { date +%s.%N; }
for r in $(seq "$rounds"); do
    start=$(now)
    tmux new-session -d -s cf-tvh -x 200 -y 60 \
        "$bin/cyberfilter-tui --verifier none --store $work/tui-$r.cfrun $input"
    until tmux capture-pane -p -t cf-tvh 2>/dev/null | grep -q '✓ done'; do sleep 0.02; done
    tui=$(echo "$(now) - $start" | bc)
    tmux send-keys -t cf-tvh q
    while tmux has-session -t cf-tvh 2>/dev/null; do sleep 0.05; done
    start=$(now)
    "$bin/cyberfilter" run --verifier none --progress none --store "$work/cli-$r.cfrun" "$input" \
        > /dev/null 2>&1
    cli=$(echo "$(now) - $start" | bc)
    printf 'round %d: tui %.2f s, headless %.2f s\n' "$r" "$tui" "$cli"
done
