#!/usr/bin/env bash
# Coverage-guided fuzzing of one target of `cyberfilter::fuzzing` with libFuzzer, on the stable
# toolchain (no cargo-fuzz, no nightly: SanitizerCoverage flags on the crates under test, added
# by scripts/fuzz-rustc.sh; libFuzzer comes from the libfuzzer-sys crate).
#
# Usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
#        scripts/fuzz.sh list
# Targets: detect json jsonl xml gzip record rules (see src/fuzzing.rs).
# Limits per input: FUZZ_TIMEOUT seconds (default 10: a hang), FUZZ_RSS_MB of resident memory
# (default 512), FUZZ_MAX_LEN bytes of input (default 65536). The seed corpus
# fuzz/corpus/TARGET is read and not written; what the run adds goes to
# target/fuzz-work/TARGET/corpus; crashes, timeouts and out-of-memory inputs go to
# fuzz/artifacts/TARGET/ (commit them as regressions: tests/fuzz_replay.rs replays them).
# The last line printed is a summary: target, seconds, executions, crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS (or: scripts/fuzz.sh list)}
if [ "$target" = list ]; then
    sed -n 's/^    ("\([a-z0-9]*\)".*/\1/p' src/fuzz*.rs
    exit 0
fi
secs=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
shift 2
grep -q "(\"$target\"" src/fuzzing.rs || { echo "fuzz: no target '$target' (scripts/fuzz.sh list)" >&2; exit 2; }

# Build: dev profile with the code under test at opt-level 3 (fuzz/Cargo.toml), in the main
# target dir so that the dependencies of an ordinary debug build are reused.
# FUZZ_BIN runs an already built harness instead (scripts/fuzz-campaign.sh builds it once).
bin=${FUZZ_BIN:-}
if [ -z "$bin" ]; then
    (cd fuzz && RUSTC_WRAPPER="$root/scripts/fuzz-rustc.sh" CARGO_TARGET_DIR="$root/target" \
        cargo build --quiet --bin cf-fuzz)
    bin=$root/target/debug/cf-fuzz
fi

work=target/fuzz-work/$target
mkdir -p "$work/corpus" "fuzz/artifacts/$target"
export CF_FUZZ_TARGET=$target
export LD_LIBRARY_PATH=$root/.models/mlx-cpu/mlx/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
log=$work/fuzz.log
set +e
"$bin" "$work/corpus" "fuzz/corpus/$target" \
    -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb="${FUZZ_RSS_MB:-512}" \
    -max_len="${FUZZ_MAX_LEN:-65536}" -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$target/" "$@" 2>&1 | tee "$log" | grep -E "^#[0-9]+.*(INITED|DONE)|ERROR|SUMMARY|Test unit written" 
rc=${PIPESTATUS[0]}
set -e
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
crashes=$(ls "fuzz/artifacts/$target" | grep -cE '^(crash|timeout|oom|leak)-' || true)
echo "fuzz: target=$target seconds=$secs executions=${execs:-?} artifacts=$crashes exit=$rc"
exit "$rc"
