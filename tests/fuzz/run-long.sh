#!/usr/bin/env bash
# The fuzz lane's on-demand suite: every target of tests/fuzz/ for 10^7 executions or 30 minutes, one
# after the other, then a table per target: executions, executions per second, coverage (libFuzzer's
# cov: edges and ft: features at the end), corpus size, and whether it found a crash (its input is then in
# build-fuzz/tests/fuzz/artifacts/).
#
#   tests/fuzz/run-long.sh [SECONDS [TARGET...]]
#
# SECONDS (default 1800) caps each target's time; TARGETs are names like fuzz-conf-file (default: all).
# Each runs as meson's suite fuzz-long would run it (command and environment from meson introspect); its
# output goes to build-fuzz/tests/fuzz/long/TARGET.log. Builds build-fuzz/ with clang first, as the test
# command does.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-1800}
[ $# -gt 0 ] && shift
dir=build-fuzz
if [ ! -d "$dir/meson-private" ]; then
        CC=clang meson setup "$dir" -Dfuzz=enabled -Db_sanitize=address,undefined -Db_lundef=false \
                -Dkernel_lane=disabled -Dintegration=disabled >/dev/null
fi
ninja -C "$dir" fuzz-targets >/dev/null
mkdir -p "$dir/tests/fuzz/long"
meson introspect "$dir" --tests >"$dir/tests/fuzz/long/tests.json"

exec python3 - "$dir" "$seconds" "$@" <<'PY'
import json, os, re, subprocess, sys, time

build, seconds, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
rows, failed = [], 0
for t in json.load(open(os.path.join(build, "tests/fuzz/long/tests.json"))):
    if not any(s.split(":")[-1] == "fuzz-long" for s in t["suite"]):
        continue
    target = t["name"][: -len("-long")]
    if wanted and target not in wanted:
        continue
    log = os.path.join(build, "tests/fuzz/long", target + ".log")
    env = dict(os.environ, **t["env"])
    start = time.monotonic()
    with open(log, "w") as f:
        # libFuzzer takes the last of a flag given twice.
        rc = subprocess.call(t["cmd"] + ["-max_total_time=" + seconds], env=env, stdout=f,
                             stderr=subprocess.STDOUT, cwd=t.get("workdir") or None)
    took = time.monotonic() - start
    out = open(log, errors="replace").read()
    stat = dict(re.findall(r"^stat::(\w+):\s+(\d+)", out, re.M))
    cov = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)/", out)
    crash = re.search(r"Test unit written to (\S+)", out)
    result = "ok" if rc == 0 else ("CRASH " + crash.group(1) if crash else "FAILED rc=%d" % rc)
    failed += rc != 0
    last = cov[-1] if cov else ("?", "?", "?")
    rows.append((target, stat.get("number_of_executed_units", "?"), stat.get("average_exec_per_sec", "?"),
                 last[0], last[1], last[2], took, result))
    print("%s: %s (%s)" % (target, result, log), flush=True)

print()
print("%-20s %12s %9s %7s %7s %7s %8s  %s" % ("target", "execs", "execs/s", "cov", "ft", "corpus", "seconds",
                                               "result"))
for r in rows:
    print("%-20s %12s %9s %7s %7s %7s %8.0f  %s" % r)
sys.exit(1 if failed else 0)
PY
