#!/usr/bin/env bash
# Fail when a C file differs from the repository's .clang-format (systemd's
# formatting). Run from the test command; `clang-format -i FILE` fixes one.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h')
[ ${#files[@]} -gt 0 ] || { echo "check-format: no C files"; exit 1; }
bad=0
for f in "${files[@]}"; do
        [ -f "$f" ] || continue
        if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
                echo "check-format: $f is not formatted (clang-format -i $f)"
                bad=$((bad + 1))
        fi
done
echo "check-format: ${#files[@]} files, $bad not formatted"
[ $bad -eq 0 ]
