#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# mdev benchmark (kernel lane, one boot): create, then remove, as many mtty
# instances as the parent allows, with hostdevd (one file, one reload), with
# Debian's mdevctl (define --auto + start per instance; stop + undefine) and
# with raw sysfs writes (mdev-bench.c), all timed in the same guest
# (mdev-bench-guest.sh); prints medians and the ratios issue 14 sets as
# goals: mdevctl / hostdevd >= 10, hostdevd / raw <= 1.2.
#
#   tests/bench/mdev-bench.sh [--builddir DIR] [--cache DIR] [--outdir DIR] [--rounds N]
#
# mdevctl comes from bookworm's package (tests/kernel/fetch-mdevctl.sh:
# downloaded and unpacked, never installed on this machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/kernel/lib.sh"

builddir=$repo/build cache= outdir= rounds=3
while [ $# -gt 0 ]; do
        case $1 in
        --builddir) builddir=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --outdir) outdir=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        *) kl_die "usage: mdev-bench.sh [--builddir DIR] [--cache DIR] [--outdir DIR] [--rounds N]" ;;
        esac
done
case $rounds in '' | 0 | *[!0-9]*) kl_die "--rounds: '$rounds' is not a positive number" ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mdev-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
outdir=${outdir:-$tmp/out}

gcc -std=gnu17 -O2 -Wall -Wextra -Werror -o "$tmp/mdev-bench" "$here/mdev-bench.c"
files="$tmp/mdev-bench:/usr/bin/mdev-bench"
if mdevctl=$("$repo/tests/kernel/fetch-mdevctl.sh" "$builddir/kernel-lane/mdevctl"); then
        files+=" $mdevctl:/usr/bin/mdevctl"
else
        kl_log "mdevctl could not be downloaded: measured without it"
fi

rc=0
ROUNDS=$rounds KL_GUEST_FILES="$files" "$repo/tests/kernel/run-vm.sh" --builddir "$builddir" \
        ${cache:+--cache "$cache"} --outdir "$outdir" --timeout 600 --quiet "$here/mdev-bench-guest.sh" || rc=$?

[ -f "$outdir/bench.tsv" ] || kl_die "the guest shipped no bench.tsv (console: $outdir/console.log)"
/usr/bin/python3 - "$outdir/bench.tsv" <<'PY'
import statistics
import sys

runs, n = {}, None
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if len(f) != 3 or not f[2].isdigit():
        continue
    if f[0] == "instances":
        n = int(f[2])
    else:
        runs.setdefault(f[0], []).append(int(f[2]))
med = {k: statistics.median(v) / 1000 for k, v in runs.items()}

print(f"\nmdev benchmark (Debian kernel in QEMU TCG, one guest, mtty-1 x {n}, times in ms, median of rounds)\n")
print(f"{'measure':<18} {'rounds':>6} {'median':>9} {'min':>9} {'max':>9} {'per mdev':>9}")
for k in sorted(runs):
    v = runs[k]
    print(f"{k:<18} {len(v):>6} {med[k]:>9.1f} {min(v) / 1000:>9.1f} {max(v) / 1000:>9.1f} "
          f"{med[k] / (n or 1):>9.2f}")


def ratio(name, a, b, goal, better):
    if a in med and b in med and med[b] > 0:
        r = med[a] / med[b]
        ok = r <= goal if better == "le" else r >= goal
        print(f"{name:<40} {r:>7.2f}   goal {'<=' if better == 'le' else '>='} {goal}: {'met' if ok else 'NOT met'}")
    else:
        print(f"{name:<40}     n/a   (missing {a if a not in med else b})")


print()
for op in ("create", "remove"):
    ratio(f"{op}: mdevctl / hostdevd (speed-up)", f"{op}-mdevctl", f"{op}-hostdevd", 10, "ge")
    ratio(f"{op}: hostdevd / raw sysfs writes", f"{op}-hostdevd", f"{op}-raw", 1.2, "le")
PY
exit "$rc"
