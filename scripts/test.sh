#!/usr/bin/env bash
# The test command: installs what is missing from Debian's archive, builds,
# and runs every lane:
#   format       clang-format check of every C file
#   layers       tests/check-layers.py: what may include what, who writes /sys
#   unit         cmocka (build/)
#   cli          hostdevctl against a contract-faithful fake daemon (build/)
#   integration  the real hostdevd on umockdev + fake kernel + private bus,
#                including the valgrind run and the D-Bus contract test (build/)
#   package      the Debian packages (scripts/build-deb.sh: dpkg-buildpackage
#                into build-deb/, lintian with no errors or warnings); the
#                kernel lane's Debian guest installs them
#   kernel       Debian's kernel in QEMU, hostdevd inside (build/)
#   sanitizers   unit + integration again in an ASan+UBSan build (build-asan/)
#   fuzz         each libFuzzer target of tests/fuzz/ for a few seconds over its
#                seed corpus, clang + ASan + UBSan (build-fuzz/); the long
#                on-demand run is tests/fuzz/run-long.sh
# Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD

bash scripts/setup-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
step() { # name command...
        local name=$1
        shift
        echo "=== $name"
        if "$@"; then
                passed=$((passed + 1))
        else
                echo "=== $name FAILED"
                failed=$((failed + 1))
                return 1
        fi
}

# Count meson's per-test results from a build's testlog.json.
count_tests() { # builddir
        /usr/bin/python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL", "SKIP"):
            ok += 1
        else:
            bad += 1
except FileNotFoundError:
    pass
print(ok, bad)
PY
}

meson_lane() { # builddir setup-args... -- test-args...
        local dir=$1
        shift
        local setup=()
        while [ $# -gt 0 ] && [ "$1" != "--" ]; do
                setup+=("$1")
                shift
        done
        shift
        if [ -d "$dir/meson-private" ]; then
                meson setup --reconfigure "$dir" "${setup[@]}" >/dev/null || return 1
        else
                meson setup "$dir" "${setup[@]}" >/dev/null || return 1
        fi
        ninja -C "$dir" || return 1
        meson test -C "$dir" --print-errorlogs --num-processes 2 "$@"
}

# Checks that are one test each (not meson lanes).
checks_ok=0
checks_bad=0
check() { # name command...
        if step "$@"; then
                checks_ok=$((checks_ok + 1))
        else
                checks_bad=$((checks_bad + 1))
        fi
}

check format tests/check-format.sh
check layers tests/check-layers.py
check "Debian packages + lintian" bash scripts/build-deb.sh
step "build + unit, cli, integration, kernel" meson_lane build -- --suite unit --suite cli --suite integration --suite kernel
read -r ok bad < <(count_tests build)
step "sanitizers (ASan+UBSan): unit, integration" \
        meson_lane build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dkernel_lane=disabled -- \
        --suite unit --suite cli --suite integration
read -r aok abad < <(count_tests build-asan)

# The fuzz lane: clang only, so a build directory of its own with CC=clang; only the fuzz targets are
# built there.
fuzz_lane() {
        local setup=(-Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false -Dkernel_lane=disabled
                -Dintegration=disabled)
        if [ -d build-fuzz/meson-private ]; then
                meson setup --reconfigure build-fuzz "${setup[@]}" >/dev/null || return 1
        else
                CC=clang meson setup build-fuzz "${setup[@]}" >/dev/null || return 1
        fi
        ninja -C build-fuzz fuzz-targets || return 1
        meson test -C build-fuzz --no-rebuild --print-errorlogs --num-processes 2 --suite fuzz
}
step "fuzz (libFuzzer, clang, ASan+UBSan): a few seconds per target" fuzz_lane
read -r fok fbad < <(count_tests build-fuzz)

echo
echo "meson tests: build/ $ok ok, $bad failed; build-asan/ $aok ok, $abad failed; build-fuzz/ $fok ok, $fbad failed"
echo "steps: $passed passed, $failed failed"
# The checks count as one test each. A step that failed before any test could fail (setup,
# compile) still counts as a failure.
total_pass=$((ok + aok + fok + checks_ok))
total_fail=$((bad + abad + fbad + checks_bad))
if [ $failed -gt 0 ] && [ $total_fail -eq 0 ]; then
        total_fail=$failed
fi
echo "$total_pass passed, $total_fail failed"
[ $failed -eq 0 ] && [ $total_fail -eq 0 ]
