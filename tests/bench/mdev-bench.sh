#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mdev benchmark (kernel lane, one boot): create, then remove, as many mtty
# instances as the parent allows, with hostdevd (one file, one reload), with
# Debian's mdevctl (define --auto + start per instance; stop + undefine) and
# with raw sysfs writes (mdev-bench.c), all timed in the same guest
# (mdev-bench-guest.sh); prints medians and the ratios issue 14 sets as
# goals: mdevctl / hostdevd >= 10, hostdevd / raw <= 1.2, beside the floor
# measured in the same run (the same trigger with nothing to do) and the
# marginal ratio (hostdevd - floor) / raw.
#
#   tests/bench/mdev-bench.sh [--builddir DIR] [--cache DIR] [--outdir DIR] [--rounds N]
#                             [--mdevctl-rounds N] [--load N]
#
# --mdevctl-rounds N: time mdevctl in the first N rounds only (default 2; it
# takes seconds per instance under TCG, hostdevd and raw writes milliseconds).
# --load N: N busy processes on this machine while the guest runs (at most
# 180 s; tests/kernel/run-vm.sh KL_HOST_LOAD), for the figures under load.
# mdevctl comes from bookworm's package (tests/kernel/fetch-mdevctl.sh:
# downloaded and unpacked, never installed on this machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/kernel/lib.sh"

builddir=$repo/build cache= outdir= rounds=5 mdevctl_rounds=2 load=0
while [ $# -gt 0 ]; do
        case $1 in
        --builddir) builddir=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --outdir) outdir=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --mdevctl-rounds) mdevctl_rounds=$2; shift 2 ;;
        --load) load=$2; shift 2 ;;
        *) kl_die "usage: mdev-bench.sh [--builddir DIR] [--cache DIR] [--outdir DIR] [--rounds N] [--mdevctl-rounds N] [--load N]" ;;
        esac
done
case $rounds in '' | 0 | *[!0-9]*) kl_die "--rounds: '$rounds' is not a positive number" ;; esac
case $mdevctl_rounds in '' | *[!0-9]*) kl_die "--mdevctl-rounds: '$mdevctl_rounds' is not a number" ;; esac
case $load in [0-8]) ;; *) kl_die "--load: '$load' is not a number of busy processes from 0 to 8" ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mdev-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
outdir=${outdir:-$tmp/out}

# shellcheck disable=SC2046 # pkg-config's flags are split on purpose
gcc -std=gnu17 -O2 -Wall -Wextra -Werror -o "$tmp/mdev-bench" "$here/mdev-bench.c" $(pkg-config --cflags --libs libsystemd)
files="$tmp/mdev-bench:/usr/bin/mdev-bench"
if mdevctl=$("$repo/tests/kernel/fetch-mdevctl.sh" "$builddir/kernel-lane/mdevctl"); then
        files+=" $mdevctl:/usr/bin/mdevctl"
else
        kl_log "mdevctl could not be downloaded: measured without it"
fi

rc=0
KL_HOST_LOAD=$load KL_HOST_LOAD_S=180 ROUNDS=$rounds MDEVCTL_ROUNDS=$mdevctl_rounds KL_GUEST_FILES="$files" "$repo/tests/kernel/run-vm.sh" --builddir "$builddir" \
        ${cache:+--cache "$cache"} --outdir "$outdir" --timeout 600 --quiet "$here/mdev-bench-guest.sh" || rc=$?

[ -f "$outdir/bench.tsv" ] || kl_die "the guest shipped no bench.tsv (console: $outdir/console.log)"
/usr/bin/python3 - "$outdir/bench.tsv" "$load" <<'PY'
import statistics
import sys

runs, n, by_round = {}, None, {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) != 3 or not f[2].isdigit():
        continue
    if f[0] == "instances":
        n = int(f[2])
    else:
        runs.setdefault(f[0], []).append(int(f[2]))
        by_round[(f[0], f[1])] = int(f[2])
med = {k: statistics.median(v) / 1000 for k, v in runs.items()}
load = int(sys.argv[2])

print(f"\nmdev benchmark (Debian kernel in QEMU TCG, one guest CPU, mtty-1 x {n}, times in ms, median of rounds; "
      f"host load: {load} busy processes)\n")
print("hostdevd rows: the trigger (SIGHUP; -reload: D-Bus Reload from a connected client; -ctl: an exec of")
print("`hostdevctl reload`) until the last mdev exists in sysfs; -bus: until hostdevd announces MdevCount.")
print("floor rows: the same trigger with nothing to do (until the new Generation is announced), an exec of hostdevctl.\n")
print(f"{'measure':<26} {'rounds':>6} {'median':>9} {'min':>9} {'max':>9} {'per mdev':>9}")
for k in sorted(runs):
    v = runs[k]
    per = f"{med[k] / (n or 1):>9.2f}" if not k.startswith("floor") else f"{'':>9}"
    print(f"{k:<26} {len(v):>6} {med[k]:>9.1f} {min(v) / 1000:>9.1f} {max(v) / 1000:>9.1f} {per}")


def ratio(name, a, b, goal=None, better=None, floor=None):
    keys = [a, b] + ([floor] if floor else [])
    missing = [k for k in keys if k not in med]
    if missing or med[b] <= 0:
        print(f"{name:<52}     n/a   (missing {', '.join(missing) or b})")
        return
    num = med[a] - (med[floor] if floor else 0)
    r = num / med[b]
    # The same ratio within each round (adjacent measurements: a loaded host's speed drifts), median.
    paired = [(by_round[(a, rd)] - (by_round.get((floor, rd), 0) if floor else 0)) / by_round[(b, rd)]
              for (k, rd) in by_round if k == a and (b, rd) in by_round and by_round[(b, rd)] > 0
              and (not floor or (floor, rd) in by_round)]
    text = f"{name:<52} {r:>7.2f}"
    text += f"  (per round: median {statistics.median(paired):.2f}, min {min(paired):.2f})" if paired else ""
    if goal is not None:
        ok = r <= goal if better == "le" else r >= goal
        text += f"   goal {'<=' if better == 'le' else '>='} {goal}: {'met' if ok else 'NOT met'}"
    print(text)


print()
for op in ("create", "remove"):
    ratio(f"{op}: mdevctl / hostdevd (speed-up)", f"{op}-mdevctl", f"{op}-hostdevd", 10, "ge")
    ratio(f"{op}: hostdevd / raw sysfs writes", f"{op}-hostdevd", f"{op}-raw", 1.2, "le")
    ratio(f"{op}: (hostdevd - floor-hup-noop) / raw (marginal)", f"{op}-hostdevd", f"{op}-raw",
          floor="floor-hup-noop")
    ratio(f"{op}: hostdevd-bus / raw (model current)", f"{op}-hostdevd-bus", f"{op}-raw")
    ratio(f"{op}: hostdevd-reload / raw", f"{op}-hostdevd-reload", f"{op}-raw")
    ratio(f"{op}: hostdevd-ctl / raw", f"{op}-hostdevd-ctl", f"{op}-raw")
    ratio(f"{op}: mdevctl / hostdevd-ctl", f"{op}-mdevctl", f"{op}-hostdevd-ctl")
    if f"{op}-raw" in med and "floor-hup-noop" in med:
        print(f"{op}: the goal's room: 1.2 x raw = {1.2 * med[op + '-raw']:.1f} ms; "
              f"SIGHUP no-op floor = {med['floor-hup-noop']:.1f} ms, hostdevctl exec = "
              f"{med.get('floor-ctl-exec', float('nan')):.1f} ms")
PY
exit "$rc"
