#!/bin/sh
# run-target.sh EXE SCRATCH LIBFUZZER-ARGS... SEED-DIRS...
# Runs one fuzz target with a scratch corpus directory first (libFuzzer adds its new inputs to the first
# directory), so the seed directories in the repository are only read. The scratch directory starts empty
# unless FUZZ_KEEP_CORPUS=1 (the long runs).
set -eu
exe=$1
scratch=$2
shift 2
[ "${FUZZ_KEEP_CORPUS:-0}" = 1 ] || rm -rf "$scratch"
mkdir -p "$scratch" "$(dirname "$scratch")/../artifacts"
exec "$exe" "$scratch" "$@"
