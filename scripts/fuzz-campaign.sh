#!/usr/bin/env bash
# The long fuzz campaign: every target (or the ones named) for SECONDS each, one after the
# other at the lowest CPU priority, with a harness built once from the current tree (so edits
# made while it runs do not change what is fuzzed). Appends one summary line per target to
# target/fuzz-work/campaign.log: target, seconds, executions, artifacts (crash/timeout/oom).
# Usage: scripts/fuzz-campaign.sh SECONDS [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: scripts/fuzz-campaign.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || mapfile -t targets < <(scripts/fuzz.sh list)
(cd fuzz && RUSTC_WRAPPER="$PWD/../scripts/fuzz-rustc.sh" CARGO_TARGET_DIR="$PWD/../target" \
    cargo build --quiet --bin cf-fuzz)
mkdir -p target/fuzz-work
bin=target/fuzz-work/cf-fuzz-campaign-$$
cp target/debug/cf-fuzz "$bin"
rev=$(git rev-parse --short HEAD)$(git diff --quiet -- src || echo "+dirty")
for t in "${targets[@]}"; do
    line=$(FUZZ_BIN="$PWD/$bin" nice -n 19 scripts/fuzz.sh "$t" "$secs" | tail -1) || true
    echo "$(date -u +%FT%TZ) rev=$rev $line" | tee -a target/fuzz-work/campaign.log
done
