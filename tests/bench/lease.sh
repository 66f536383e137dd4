#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Lease benchmark (issue 15) on the kernel lane: a VMM's exit -> its e1000e
# back on e1000e, hostdevd vs the kernel's own unbind + probe; Acquire ->
# ready vs the raw writes (tests/bench/lease-guest.sh). Prints medians and
# the ratios with their goals (<= 1.2). A benchmark, not a test: run by hand.
#   tests/bench/lease.sh [BUILDDIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${1:-$repo/build}
outdir=$builddir/kernel-lane/out/bench-lease
"$repo/tests/kernel/run-vm.sh" --builddir "$builddir" --outdir "$outdir" --timeout 600 --quiet \
        "$repo/tests/bench/lease-guest.sh"
/usr/bin/python3 - "$outdir/bench.tsv" <<'PY'
import statistics
import sys

runs = {}
for line in open(sys.argv[1]):
    f = line.split("\t")
    if len(f) == 3 and f[2].strip().lstrip("-").isdigit():
        runs.setdefault(f[0], []).append(int(f[2]))
med = {k: statistics.median(v) / 1000 for k, v in runs.items()}
print("\nlease benchmark (Debian kernel in QEMU TCG, one guest, ms, median of rounds)\n")
print(f"{'measure':<18} {'rounds':>6} {'median':>9} {'min':>9} {'max':>9}")
for k in sorted(runs):
    v = runs[k]
    print(f"{k:<18} {len(v):>6} {med[k]:>9.1f} {min(v) / 1000:>9.1f} {max(v) / 1000:>9.1f}")
print()
for name, a, b in (("VMM exit -> host driver: hostdevd / kernel", "exit-hostdevd", "exit-kernel"),
                   ("Acquire -> ready: hostdevd / raw writes", "acquire-hostdevd", "acquire-raw")):
    r = med[a] / med[b]
    print(f"{name:<46} {r:>6.2f}   goal <= 1.2: {'met' if r <= 1.2 else 'NOT met'}")
PY
