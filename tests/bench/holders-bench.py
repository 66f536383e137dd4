#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A busy host's process table and the main loop: plan loop time with N extra processes (on demand).

Run: meson test -C BUILD --benchmark --suite bench-holders -v   (or ninja -C BUILD bench-holders)
By hand: HOSTDEVD=... umockdev-wrapper /usr/bin/python3 tests/bench/holders-bench.py \\
             --idle-procs BUILD/tests/bench/idle-procs [--procs 20000] [--functions 256]

For each holder tracking (fanotify, scan), a daemon on a --functions testbed with one rule (already
converged, so a plan writes nothing) gets --plans Apply() calls, first as the host is, then with
--procs extra idle processes (idle-procs: started bounded, ended after). Figures, medians:
  plan loop time  the daemon's own "Full plan on the loop: N us" (reconciler.c): the time a full
                  plan holds the event loop.      goal: ratio with/without <= 1.2 (noise: a loaded
                  2-core machine moves single plans by more than that; compare the medians)
  Apply latency   the call's round trip: with scan tracking it includes the scan of every
                  /proc/PID/fd on the worker thread, which the loop does not wait for
  off-loop scan   the worker's "Scanned for VFIO holders off the loop: N us": what each plan
                  held the loop for before the holder watch (holders_scan() ran on the loop)
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))

import hostdevtest as h  # noqa: E402

PLAN_RE = re.compile(r'Full plan on the loop: (\d+) us')
SCAN_RE = re.compile(r'Scanned for VFIO holders off the loop: (\d+) us')


def median_ms(values):
        return statistics.median(values) / 1000.0 if values else float('nan')


def measure(daemon, c, plans):
        """Apply |plans| times; returns (plan loop us list, Apply s list, scan us list)."""
        start = len(daemon.output_bytes())
        lat = []
        for _ in range(plans):
                t0 = time.monotonic()
                c.call(h.ROOT_PATH, h.MANAGER_IFACE, 'Apply', timeout_s=300)
                lat.append(time.monotonic() - t0)
        text = daemon.output_bytes()[start:].decode('utf-8', errors='replace')
        return ([int(x) for x in PLAN_RE.findall(text)], lat, [int(x) for x in SCAN_RE.findall(text)])


def main():
        ap = argparse.ArgumentParser(description='plan loop time with many processes')
        ap.add_argument('--idle-procs', required=True, help='the idle-procs helper')
        ap.add_argument('--procs', type=int, default=20000)
        ap.add_argument('--functions', type=int, default=256)
        ap.add_argument('--plans', type=int, default=15)
        ap.add_argument('--modes', default='fanotify,scan')
        ap.add_argument('--strict', action='store_true', help='exit 1 when a goal is missed')
        args = ap.parse_args()

        H = h.Harness()
        rows = []
        try:
                h.build_large(H.t, args.functions)
                conf_dir = os.path.join(H.workdir, 'devices.d')
                os.makedirs(conf_dir)
                # build_large() binds the first function to vfio-pci: the rule is converged already.
                with open(os.path.join(conf_dir, '50-bench.conf'), 'w') as f:
                        f.write('[Match]\nAddress=0000:10:00.0\n[Device]\nDriver=vfio-pci\n')
                for mode in args.modes.split(','):
                        d = os.path.join(H.workdir, mode)
                        os.makedirs(os.path.join(d, 'run'))
                        os.makedirs(os.path.join(d, 'state'))
                        bus, daemon, c = H.start(
                                env={'HOSTDEVD_HOLDER_TRACKING': mode}, ready_timeout=300,
                                args=['--config-dirs=' + conf_dir, '--state-dir=' + os.path.join(d, 'state'),
                                      '--runtime-dir=' + os.path.join(d, 'run'), '--log-level=debug'])
                        got = c.manager('HolderTracking')
                        assert got == mode, 'asked for %s tracking, the daemon uses %s' % (mode, got)
                        measure(daemon, c, 2)  # warm up
                        without = measure(daemon, c, args.plans)
                        p = subprocess.Popen([args.idle_procs, str(args.procs)], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, text=True, env=h.preload_free_env())
                        try:
                                started = int(p.stdout.readline().split()[1])
                                with_ = measure(daemon, c, args.plans)
                        finally:
                                p.stdin.write('\n')
                                p.stdin.close()
                                p.stdout.readline()
                                p.wait(timeout=120)
                        daemon.stop()
                        ratio = median_ms(with_[0]) / median_ms(without[0])
                        rows += [
                                ('%s: plan loop time, host as is' % mode, '%.3f ms' % median_ms(without[0]), '-', True),
                                ('%s: plan loop time, +%d processes' % (mode, started), '%.3f ms' % median_ms(with_[0]),
                                 '-', True),
                                ('%s: ratio with/without' % mode, '%.2f' % ratio, '<= 1.2', ratio <= 1.2),
                                ('%s: Apply latency without / with' % mode, '%.1f / %.1f ms' % (
                                        1000 * statistics.median(without[1]), 1000 * statistics.median(with_[1])),
                                 '-', True),
                                ('%s: off-loop scans, median without / with' % mode, '%s / %s' % (
                                        '%.1f ms (%d)' % (median_ms(without[2]), len(without[2])) if without[2] else 'none',
                                        '%.1f ms (%d)' % (median_ms(with_[2]), len(with_[2])) if with_[2] else 'none'),
                                 '-', True),
                        ]
                print('\n%-50s %-26s %-8s %s' % ('measure', 'value', 'goal', 'met'))
                for name, value, goal, ok in rows:
                        print('%-50s %-26s %-8s %s' % (name, value, goal, '-' if goal == '-' else
                                                          ('yes' if ok else 'NO')))
                missed = [r[0] for r in rows if r[2] != '-' and not r[3]]
                return 1 if (missed and args.strict) else 0
        finally:
                for dmn in H.daemons:
                        if dmn.proc.poll() is None:
                                dmn.stop()
                H.cleanup()


if __name__ == '__main__':
        sys.exit(main())
