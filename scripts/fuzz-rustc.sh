#!/bin/sh
# RUSTC_WRAPPER for scripts/fuzz.sh: adds SanitizerCoverage (libFuzzer's feedback) and
# `--cfg fuzzing` to the crates under test only. Dependencies keep the flags of an ordinary
# build, so their artifacts in target/debug are reused, and build scripts are never
# instrumented (which RUSTFLAGS without --target would do). Stable rustc accepts all of these.
rustc="$1"
shift
case " $* " in
*" --crate-name cyberfilter "* | *" --crate-name cf_fuzz "*)
    exec "$rustc" "$@" -Cpasses=sancov-module \
        -Cllvm-args=-sanitizer-coverage-level=4 \
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
        -Cllvm-args=-sanitizer-coverage-pc-table \
        -Cllvm-args=-sanitizer-coverage-trace-compares \
        --cfg fuzzing
    ;;
esac
exec "$rustc" "$@"
