#!/bin/sh
# Run every libFuzzer program in $BUILD/fuzz for FUZZ_SECONDS each, on a
# scratch copy of its seed corpus tests/fuzz/<name without "fuzz-">/ (what
# the fuzzer learns is thrown away: the repository keeps only the seeds).
# Prints TAP; exits non-zero if any fuzzer found a crash or broke an
# invariant.  FUZZ_SECONDS=0 only replays the seeds.
#
#   BUILD         build directory            (default ./build)
#   FUZZ_SECONDS  time per fuzzer            (default 20)
#   FUZZ_MAX_LEN  longest input tried        (default 256: specs are short)

BUILD=${BUILD:-./build}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-256}
seeds=$(dirname "$0")/fuzz

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

set --
for f in "$BUILD"/fuzz/fuzz-*; do
    [ -f "$f" ] && [ -x "$f" ] && set -- "$@" "$f"
done
if [ $# -eq 0 ]; then
    echo "1..0 # SKIP no fuzzers in $BUILD/fuzz"
    exit 0
fi
echo "1..$#"

# Time-bounded run, or one pass over the seeds when no time is given.
budget() {
    if [ "$FUZZ_SECONDS" -gt 0 ]; then
        echo "-max_total_time=$FUZZ_SECONDS"
    else
        echo "-runs=0"
    fi
}

# Executed inputs, from libFuzzer's final statistics.
runs_of() {
    sed -n 's/^stat::number_of_executed_units: *//p' "$1" | tail -n 1
}

# Their rate over the run (set-up included), likewise.
rate_of() {
    sed -n 's/^stat::average_exec_per_sec: *//p' "$1" | tail -n 1
}

# Where it broke and how to replay it, as TAP diagnostics.
report_failure() {
    name=$1 log=$2
    grep -E 'ERROR|SUMMARY|runtime error|Base64' "$log" | tail -n 12 | sed 's/^/# /'
    echo "# replay: echo <Base64 above> | base64 -d > crash && $BUILD/fuzz/$name crash"
}

n=0 failed=0
for f in "$@"; do
    n=$((n + 1))
    name=${f##*/}
    corpus=$tmp/${name#fuzz-}
    log=$tmp/$name.log
    mkdir -p "$corpus"
    [ -d "$seeds/${name#fuzz-}" ] && cp -R "$seeds/${name#fuzz-}/." "$corpus/"
    "$f" "$(budget)" -max_len="$FUZZ_MAX_LEN" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$tmp/$name-" "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(runs_of "$log")
    if [ $rc -eq 0 ]; then
        echo "ok $n - $name: ${runs:-?} runs ($(rate_of "$log")/s), no crash"
    else
        echo "not ok $n - $name: exit $rc after ${runs:-?} runs"
        report_failure "$name" "$log"
        failed=$((failed + 1))
    fi
done
[ $failed -eq 0 ]
