#!/usr/bin/env bash
# Makes screenshots/*.png of the main views from the real cyberfilter-tui binary: runs it in
# tmux on sample_data/, drives it with keys, captures each view with colours and renders the
# captures to PNG (scripts/ansi_to_png.py, Pillow in a local .venv).
#
# Usage: scripts/screenshots.sh [COLUMNS ROWS]   (default 140 42)
#        CYBERFILTER_TUI_ARGS="--verifier ..." scripts/screenshots.sh   (extra flags for the run)
# Needs: tmux, python3, fonts-dejavu-core.
set -euo pipefail
cd "$(dirname "$0")/.."
cols=${1:-140}
rows=${2:-42}
out=screenshots
mkdir -p "$out"

command -v tmux >/dev/null || { echo "screenshots: tmux is required (apt-get install tmux)" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -c "import PIL" 2>/dev/null || .venv/bin/pip install --quiet pillow
# CYBERFILTER_TUI_BIN points at another build of the binary (default: a fresh release build).
bin=${CYBERFILTER_TUI_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --bin cyberfilter-tui
  bin=target/release/cyberfilter-tui
fi

state=$(mktemp -d)
session="cf-shots-$$"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$state"' EXIT

tmux new-session -d -s "$session" -x "$cols" -y "$rows" \
  "TERM=xterm-256color COLORTERM=truecolor XDG_STATE_HOME=$state XDG_CONFIG_HOME=$state XDG_DATA_HOME=$state \
   $bin --store $state/run.cfstore ${CYBERFILTER_TUI_ARGS:-} sample_data; sleep 5"
tmux set-option -t "$session" -g default-terminal "tmux-256color" >/dev/null
tmux set-option -t "$session" -ga terminal-overrides ",*:Tc" >/dev/null

wait_for() {
  for _ in $(seq 1 200); do
    if tmux capture-pane -p -t "$session" | grep -q "$1"; then return 0; fi
    sleep 0.1
  done
  echo "screenshots: '$1' never appeared; screen was:" >&2
  tmux capture-pane -p -t "$session" >&2
  exit 1
}

shot() {
  sleep 0.6
  tmux capture-pane -e -p -t "$session" > "$state/$1.ans"
  .venv/bin/python scripts/ansi_to_png.py "$state/$1.ans" "$out/$1.png" "$cols" "$rows"
  echo "screenshots: $out/$1.png"
}

keys() { tmux send-keys -t "$session" "$@"; }

wait_for "Records"
# The default verifier is the real model: wait for its first batches so the panels show them.
for _ in $(seq 1 300); do
  tmux capture-pane -p -t "$session" | grep -q "calls [1-9]" && break
  sleep 1
done
sleep 3                                  # let the panels fill
shot dashboard
keys g j j Enter;   wait_for "Score by rule"; shot record
keys Escape
keys g a a x a x a x a  # a few labels (in the throw-away store) for precision/recall
keys T l l;         wait_for "If applied";    shot thresholds
keys Escape
keys /;  keys -l "sql"; shot search
keys Enter Escape
keys v o;           shot filtered
keys c R;           wait_for "Review";        shot review
keys Escape
keys '?';           wait_for "Help: keys";    shot help
keys Escape q
