#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Lease benchmark (issue 15) on the kernel lane, one boot (tests/bench/lease-guest.sh,
# timed by tests/bench/lease-client.c): a VMM's exit -> its e1000e back on e1000e, hostdevd vs
# the kernel's own unbind + probe; Acquire -> ready vs the raw writes; the floors (a bus round
# trip, Acquire's dry run, an exec of hostdevctl) and the marginal ratios; then the breakdown
# of one Acquire from hostdevd's own timed log lines (medians of the traced rounds). A
# benchmark, not a test: run by hand, or `ninja bench-lease`.
#   tests/bench/lease.sh [--builddir DIR] [--cache DIR] [--outdir DIR] [--rounds N] [--trace-rounds N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/kernel/lib.sh"

builddir=${MESON_BUILD_ROOT:-$repo/build} cache= outdir= rounds=7 trace_rounds=3
while [ $# -gt 0 ]; do
        case $1 in
        --builddir) builddir=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        --outdir) outdir=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --trace-rounds) trace_rounds=$2; shift 2 ;;
        *) kl_die "usage: lease.sh [--builddir DIR] [--cache DIR] [--outdir DIR] [--rounds N] [--trace-rounds N]" ;;
        esac
done
case $rounds in '' | 0 | *[!0-9]*) kl_die "--rounds: '$rounds' is not a positive number" ;; esac
case $trace_rounds in '' | 0 | *[!0-9]*) kl_die "--trace-rounds: '$trace_rounds' is not a positive number" ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lease-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
outdir=${outdir:-$builddir/kernel-lane/out/bench-lease}

gcc -std=gnu17 -O2 -Wall -Wextra -Werror -I"$repo/src" -o "$tmp/lease-client" "$here/lease-client.c" -lsystemd

rc=0
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
ROUNDS=$rounds TRACE_ROUNDS=$trace_rounds KL_GUEST_FILES="$tmp/lease-client:/usr/bin/lease-client" \
        "$repo/tests/kernel/run-vm.sh" --builddir "$builddir" ${cache:+--cache "$cache"} --outdir "$outdir" \
        --timeout 600 --quiet "$here/lease-guest.sh" || rc=$?
[ -f "$outdir/bench.tsv" ] || kl_die "the guest shipped no bench.tsv (console: $outdir/console.log)"
/usr/bin/python3 "$here/lease-report.py" "$outdir/bench.tsv" "$outdir/hostdevd.log"
# TCG runs the guest on this machine's CPUs: a loaded machine slows the guest's CPU work (bus round
# trips, hostdevd) more than the kernel's sleeps in the raw writes, so the ratios rise with the load.
echo "this machine's load average before and after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
exit $rc
