#!/bin/sh
# make check's share of fuzzing: every fuzzer, briefly (the CI budget is
# tight; `make fuzz` runs longer).  BUILD selects the build directory.
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
export FUZZ_SECONDS
exec sh "$(dirname "$0")/fuzz.sh"
