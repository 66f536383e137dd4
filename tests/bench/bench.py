#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""hostdevd benchmarks on a 4096-function umockdev testbed (on demand).

Run: meson test -C BUILD --benchmark --suite bench -v   (or ninja -C BUILD bench)
By hand: HOSTDEVD=... umockdev-wrapper /usr/bin/python3 tests/bench/bench.py \\
             --baseline BUILD/tests/bench/udev-enum-baseline [--idle-seconds 60]

Figures (each against a goal; ratios against a baseline measured in the same run):
  startup      fork of hostdevd to READY=1 on NOTIFY_SOCKET, median of --runs,
               vs the same for udev-enum-baseline (libudev enumeration reading
               the same attributes, fork to exit).        goal: ratio <= 2.0
  GMO latency  GetManagedObjects round trip, reply not unmarshalled (so Python's
               decoding is not measured), median and max of 10.  goal <= 100 ms
  RSS          VmRSS (and VmHWM) of hostdevd after those calls.  goal <= 16 MiB
  idle wakeups voluntary + nonvoluntary context switches of all hostdevd
               threads (/proc/PID/task/*/status) over --idle-seconds with no
               events and no calls; each wakeup of an idle process is one
               switch out again.                           goal: 0
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))

import dbus  # noqa: E402
import hostdevtest as h  # noqa: E402

MiB = 1024 * 1024


def ctxt_switches(pid):
        total = 0
        for tid in os.listdir('/proc/%d/task' % pid):
                with open('/proc/%d/task/%s/status' % (pid, tid)) as f:
                        for line in f:
                                if line.startswith(('voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches')):
                                        total += int(line.split()[1])
        return total


def status_kib(pid, key):
        with open('/proc/%d/status' % pid) as f:
                for line in f:
                        if line.startswith(key + ':'):
                                return int(line.split()[1])
        return -1


def cpu_s(pid):
        """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
        with open('/proc/%d/stat' % pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def main():
        ap = argparse.ArgumentParser(description='hostdevd benchmarks')
        ap.add_argument('--baseline', required=True, help='udev-enum-baseline executable')
        ap.add_argument('--functions', type=int, default=4096)
        ap.add_argument('--runs', type=int, default=3)
        ap.add_argument('--idle-seconds', type=float, default=60)
        ap.add_argument('--strict', action='store_true', help='exit 1 when a goal is missed')
        args = ap.parse_args()

        H = h.Harness()
        try:
                t0 = time.monotonic()
                h.build_large(H.t, args.functions)
                build_s = time.monotonic() - t0

                base = []
                for _ in range(args.runs):
                        t0 = time.monotonic()
                        out = subprocess.run([args.baseline], capture_output=True, text=True, check=True).stdout
                        base.append(time.monotonic() - t0)
                        assert int(out.split()[0]) == args.functions, out

                ready = []
                for _ in range(args.runs):
                        bus, daemon, c = H.start(ready_timeout=300)
                        ready.append(daemon.ready_s)
                        assert c.manager('DeviceCount') == args.functions
                # the last daemon stays for the rest
                # Where a call's time goes: the daemon's and the bus's CPU time over the calls, so
                # a slow figure can be told apart from a slow relay or a busy machine.
                msg_lat = []
                calls = 10
                d_cpu0, b_cpu0 = cpu_s(daemon.pid), cpu_s(bus.proc.pid)
                for _ in range(calls):
                        m = dbus.lowlevel.MethodCallMessage(h.BUS_NAME, h.ROOT_PATH, h.OM_IFACE, 'GetManagedObjects')
                        t0 = time.monotonic()
                        reply = c.conn.send_message_with_reply_and_block(m, 120)
                        msg_lat.append(time.monotonic() - t0)
                d_cpu = (cpu_s(daemon.pid) - d_cpu0) / calls
                b_cpu = (cpu_s(bus.proc.pid) - b_cpu0) / calls
                reply_size = len(reply.get_args_list()[0]) if reply is not None else 0
                rss = status_kib(daemon.pid, 'VmRSS')
                hwm = status_kib(daemon.pid, 'VmHWM')

                time.sleep(1)   # let the last reply's flush settle before counting
                s0 = ctxt_switches(daemon.pid)
                time.sleep(args.idle_seconds)
                idle = ctxt_switches(daemon.pid) - s0

                ratio = statistics.median(ready) / statistics.median(base)
                rows = [
                        ('testbed build (%d functions)' % args.functions, '%.2f s' % build_s, '-', True),
                        ('baseline: libudev enumerate + attrs', '%.3f s' % statistics.median(base), '-', True),
                        ('hostdevd start to READY=1', '%.3f s' % statistics.median(ready), '-', True),
                        ('startup ratio hostdevd/baseline', '%.2f' % ratio, '<= 2.0', ratio <= 2.0),
                        ('GetManagedObjects median (max)', '%.1f ms (%.1f)' % (1000 * statistics.median(msg_lat),
                                                                               1000 * max(msg_lat)),
                         '<= 100 ms', statistics.median(msg_lat) <= 0.1),
                        ('  of which hostdevd CPU per call', '%.1f ms' % (1000 * d_cpu), '-', True),
                        ('  of which dbus-daemon CPU per call', '%.1f ms' % (1000 * b_cpu), '-', True),
                        ('  objects in the reply', '%d' % reply_size, '-', True),
                        ('VmRSS (VmHWM)', '%.1f MiB (%.1f)' % (rss / 1024, hwm / 1024), '<= 16 MiB',
                         rss * 1024 <= 16 * MiB),
                        ('idle context switches in %.0f s' % args.idle_seconds, '%d' % idle, '0', idle == 0),
                ]
                print('\n%-40s %-22s %-10s %s' % ('measure', 'value', 'goal', 'met'))
                for name, value, goal, ok in rows:
                        print('%-40s %-22s %-10s %s' % (name, value, goal, '-' if goal == '-' else
                                                           ('yes' if ok else 'NO')))
                print('\nruns: baseline %s s; ready %s s' % (['%.3f' % x for x in base], ['%.3f' % x for x in ready]))
                missed = [r[0] for r in rows if r[2] != '-' and not r[3]]
                return 1 if (missed and args.strict) else 0
        finally:
                for d in H.daemons:
                        if d.proc.poll() is None:
                                d.stop()
                H.cleanup()


if __name__ == '__main__':
        sys.exit(main())
