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
  GMO CPU      hostdevd's own CPU time (utime + stime) per GetManagedObjects.
                                                           goal <= 20 ms
  GMO floor    (--floor) gmo-floor: sd-bus alone building and sending a message of the
               reply's exact shape (body compared) from precomputed data, CPU per message
               in the same run; printed beside hostdevd's CPU with the ratio.
  list         `hostdevctl list` end to end (fork to exit, table from
               Manager.ListDevices), median of 5, vs `hostdevctl list --json`
               (every property, from GetManagedObjects) in the same run.
                                                           goal <= 150 ms
  RSS          VmRSS (and VmHWM) of hostdevd after those calls.  goal <= 16 MiB
  idle wakeups voluntary + nonvoluntary context switches of all hostdevd
               threads (/proc/PID/task/*/status) over --idle-seconds with no
               events and no calls; each wakeup of an idle process is one
               switch out again.                           goal: 0
  heap (--heap) hostdevd's own heap: the daemon runs under valgrind's massif
               at 6 functions and at --functions, a detailed snapshot is taken
               after one GetManagedObjects (vgdb), and the bytes allocated
               through umockdev's preload and GLib are left out; the growth per
               function beyond the 6-function daemon, and the largest sites.
                                                           goal <= 2 KiB
  storm (--storm) --functions VFs added in one burst (16 PFs, VFs enabled
               back to back) with an ENOBUFS forced on the uevent socket in
               the middle (tests/integration/enobufs-inject.c), paced in the
               bursts umockdev's sender allows: the model must then equal the
               testbed (GetManagedObjects, not timed); then every VF is removed
               again, malloc's in-use bytes (malloc_stats() through gdb: every
               allocation of the process) must be back within 10 % of their
               level before the storm, and the model must equal a fresh
               daemon's enumeration. The storm's daemon runs with glibc's
               per-thread cache off (GLIBC_TUNABLES=glibc.malloc.tcache_count=0):
               malloc_stats() counts the freed chunks that cache keeps (up to 7
               of each of 64 sizes per thread, about 227 KiB) as in use, which
               after the storm made +11.1 % of bytes no structure held (massif
               of the same storm: hostdevd's own heap +3.6 KB, +0.2 %).
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


FOREIGN = ('libumockdev', 'libglib', 'libgobject', 'libgio')
SOURCES = set()
for sub in ('src', 'agent'):
        SOURCES.update(os.listdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', sub)))


def massif_own_bytes(path):
        """(own heap bytes, {site: bytes}) of a massif detailed snapshot: every allocation whose stack
        passes through umockdev's preload or GLib is left out (the subtree of the first such frame);
        sites are the first frames in hostdevd's own sources (function (file:line)) of what is left."""
        nodes = []
        with open(path) as f:
                for line in f:
                        stripped = line.lstrip(' ')
                        if not stripped.startswith('n') or ':' not in stripped:
                                continue
                        head, _, desc = stripped.partition(': ')
                        size, _, desc = desc.partition(' ')
                        nodes.append((len(line) - len(stripped), int(head[1:]), int(size), desc.strip()))
        own = 0
        sites = {}

        def walk(i, site):
                """Node i (and its subtree): returns the index after the subtree."""
                nonlocal own
                depth, nchildren, size, desc = nodes[i]
                if any(f in desc for f in FOREIGN):
                        j = i + 1
                        while j < len(nodes) and nodes[j][0] > depth:
                                j += 1
                        return j
                if site is None and desc.endswith(')') and '(' in desc:
                        where = desc.rsplit('(', 1)[1].rstrip(')').split(':')[0]
                        if where in SOURCES:
                                site = desc.split(' ', 1)[1]
                j = i + 1
                if nchildren == 0:
                        own += size
                        key = site or desc
                        sites[key] = sites.get(key, 0) + size
                        return j
                covered = 0
                for _ in range(nchildren):
                        covered += nodes[j][2]
                        j = walk(j, site)
                if size > covered:   # massif's "in N places, below threshold" remainder
                        own += size - covered
                        sites['(below threshold)'] = sites.get('(below threshold)', 0) + size - covered
                return j

        top = nodes[0]
        j = 1
        for _ in range(top[1]):
                j = walk(j, None)
        return own, sites


def heap_of(H, n, workdir):
        """hostdevd's own heap at n functions (massif), after one GetManagedObjects."""
        h.build_large(H.t, n)
        snap = os.path.join(workdir, 'massif.%d' % n)
        os.environ['HOSTDEVD_WRAPPER'] = ('valgrind --tool=massif --vgdb=yes --depth=40 --threshold=0.01 '
                                          '--massif-out-file=%s.final' % snap)
        try:
                bus, daemon, c = H.start(ready_timeout=300)
        finally:
                del os.environ['HOSTDEVD_WRAPPER']
        m = dbus.lowlevel.MethodCallMessage(h.BUS_NAME, h.ROOT_PATH, h.OM_IFACE, 'GetManagedObjects')
        c.conn.send_message_with_reply_and_block(m, 600)
        time.sleep(1)
        subprocess.run(['vgdb', '--pid=%d' % daemon.pid, 'detailed_snapshot', snap], check=True,
                       capture_output=True, timeout=300)
        daemon.stop(limit=300)
        return massif_own_bytes(snap)


def heap_main(args):
        results = {}
        for n in (6, args.functions):
                H = h.Harness()
                try:
                        results[n] = heap_of(H, n, H.workdir)
                finally:
                        for d in H.daemons:
                                if d.proc.poll() is None:
                                        d.stop()
                        H.cleanup()
        small, large = results[6][0], results[args.functions][0]
        per = (large - small) / (args.functions - 6)
        rows = [('heap, 6 functions (own allocations)', '%.1f KiB' % (small / 1024), '-', True),
                ('heap, %d functions' % args.functions, '%.1f KiB' % (large / 1024), '-', True),
                ('heap per function beyond 6', '%.0f B' % per, '<= 2 KiB', per <= 2048)]
        print('\nmethod: valgrind massif (--depth=40 --threshold=0.01), a detailed snapshot through vgdb after one'
              ' GetManagedObjects; heap = the useful bytes of every live allocation whose stack does not pass'
              ' through %s (umockdev\'s preload and GLib), massif\'s per-block overhead not counted.'
              % ', '.join(FOREIGN))
        print('\n%-40s %-22s %-10s %s' % ('measure', 'value', 'goal', 'met'))
        for name, value, goal, ok in rows:
                print('%-40s %-22s %-10s %s' % (name, value, goal, '-' if goal == '-' else ('yes' if ok else 'NO')))
        print('\nlargest allocation sites at %d functions (bytes; first hostdevd frame):' % args.functions)
        for site, size in sorted(results[args.functions][1].items(), key=lambda x: -x[1])[:12]:
                print('  %10d  %s' % (size, site))
        return 1 if (per > 2048 and args.strict) else 0


def malloc_in_use(daemon):
        """malloc's in-use bytes of the whole process: malloc_stats() called through gdb, read back from
        the daemon's stderr (its log)."""
        before = len(daemon.output())
        subprocess.run(['gdb', '-p', str(daemon.pid), '-batch', '-ex', 'call (void) malloc_stats()'],
                       capture_output=True, check=True, timeout=120)
        for _ in range(50):
                text = daemon.output()[before:]
                if 'Total (incl. mmap)' in text:
                        total = text.split('Total (incl. mmap)', 1)[1]
                        return int(total.split('in use bytes', 1)[1].split('=', 1)[1].split()[0])
                time.sleep(0.1)
        raise RuntimeError('no malloc_stats() output from hostdevd')


def storm_main(args):
        n_pf = 16
        per_pf = args.functions // n_pf
        H = h.Harness()
        try:
                t, k = H.t, H.k
                pfs = []
                for i in range(n_pf):
                        bus = 0x20 + 2 * i   # the VFs (offset 16, stride 1) run into the next bus
                        pf = '0000:%02x:00.0' % bus
                        t.add_pci('devices/pci0000:%02x/%s' % (bus, pf), 0x8086, 0x1572, 0x020000, driver='i40e',
                                  group=i, attrs=[('sriov_totalvfs', str(per_pf)), ('sriov_numvfs', '0'),
                                                  ('sriov_offset', '16'), ('sriov_stride', '1'),
                                                  ('sriov_vf_device', '154c'),
                                                  ('sriov_drivers_autoprobe', '1')])
                        pfs.append(pf)
                H.add_sentinel()
                trigger = os.path.join(H.workdir, 'enobufs')
                preload = ' '.join(filter(None, [h.env_path('HOSTDEVTEST_ENOBUFS_SHIM'), os.environ.get('LD_PRELOAD')]))
                tunables = ':'.join(filter(None, [os.environ.get('GLIBC_TUNABLES'), 'glibc.malloc.tcache_count=0']))
                bus, daemon, c = H.start(env={'LD_PRELOAD': preload, 'HOSTDEVTEST_ENOBUFS_TRIGGER': trigger,
                                              'GLIBC_TUNABLES': tunables}, ready_timeout=300)
                H.pace_with(c)
                heap0 = malloc_in_use(daemon)
                t0 = time.monotonic()
                for i, pf in enumerate(pfs):
                        if i == n_pf // 2:
                                with open(trigger, 'w'):
                                        pass
                        k.set_sriov_numvfs(pf, per_pf, first_group=1000 + i * per_pf)
                H.barrier(c, limit=900)
                storm_s = time.monotonic() - t0
                assert not os.path.exists(trigger), 'the injected ENOBUFS was not consumed'
                rescans = c.manager('Rescans')
                count = c.manager('DeviceCount')
                live = c.managed_objects(timeout_s=600)
                equal = live == h.expected_objects(t)
                print('storm: %d VFs in %.1f s, %d rescans, model %s the testbed'
                      % (count - n_pf - 1, storm_s, rescans, 'equals' if equal else 'DIFFERS from'), flush=True)
                heap1 = malloc_in_use(daemon)
                for pf in pfs:
                        k.set_sriov_numvfs(pf, 0)
                H.barrier(c, limit=900)
                heap2 = malloc_in_use(daemon)
                # The model after both storms against a fresh daemon's own enumeration.
                live = c.managed_objects(timeout_s=600)
                _, _, fresh = H.start(ready_timeout=300)
                equal_fresh = fresh.managed_objects(timeout_s=600) == live
                back = heap2 <= heap0 * 1.1
                rows = [('VFs added (16 PFs) + ENOBUFS', '%d in %.1f s' % (count - n_pf - 1, storm_s), '-', True),
                        ('rescans after the overflow', '%d' % rescans, '>= 1', rescans >= 1),
                        ('model == testbed after the adds', 'yes' if equal else 'NO', 'yes', equal),
                        ('model == fresh enumeration, after removal', 'yes' if equal_fresh else 'NO', 'yes',
                         equal_fresh),
                        ('malloc in use, no tcache: before/with/after', '%.0f / %.0f / %.0f KiB'
                         % (heap0 / 1024, heap1 / 1024, heap2 / 1024), '-', True),
                        ('  after vs before', '%+.1f %%' % (100.0 * (heap2 - heap0) / heap0), '<= +10 %', back)]
                print('\n%-44s %-28s %-10s %s' % ('measure', 'value', 'goal', 'met'))
                for name, value, goal, ok in rows:
                        print('%-44s %-28s %-10s %s' % (name, value, goal,
                                                         '-' if goal == '-' else ('yes' if ok else 'NO')))
                missed = [r[0] for r in rows if r[2] != '-' and not r[3]]
                return 1 if (missed and args.strict) else 0
        finally:
                for d in H.daemons:
                        if d.proc.poll() is None:
                                d.stop()
                H.cleanup()


def run_floor(floor, address, messages):
        """gmo-floor's figures: sd-bus building and sending a message of the GetManagedObjects reply's exact
        shape from precomputed data (tests/bench/gmo-floor.c), CPU per message."""
        out = subprocess.run([floor, address, str(messages)], env=h.preload_free_env(), capture_output=True,
                             text=True, timeout=600)
        if out.returncode != 0:
                raise RuntimeError('gmo-floor failed: %s%s' % (out.stdout, out.stderr))
        figures = {}
        for line in out.stdout.splitlines():
                key, _, value = line.partition(' ')
                figures[key] = value if key == 'body_equal' else float(value)
        return figures


def main():
        ap = argparse.ArgumentParser(description='hostdevd benchmarks')
        ap.add_argument('--baseline', required=True, help='udev-enum-baseline executable')
        ap.add_argument('--floor', help='gmo-floor executable (the floor row of GetManagedObjects CPU)')
        ap.add_argument('--functions', type=int, default=4096)
        ap.add_argument('--runs', type=int, default=3)
        ap.add_argument('--idle-seconds', type=float, default=60)
        ap.add_argument('--strict', action='store_true', help='exit 1 when a goal is missed')
        ap.add_argument('--heap', action='store_true', help="measure hostdevd's own heap (massif) instead")
        ap.add_argument('--storm', action='store_true', help='the VF storm with a forced overflow instead')
        args = ap.parse_args()
        if args.heap:
                return heap_main(args)
        if args.storm:
                return storm_main(args)

        load0 = os.getloadavg()[0]
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
                floor = run_floor(args.floor, bus.address, calls) if args.floor else None

                # ListDevices, hostdevctl's compact listing: the daemon's CPU per call, and the CLI end to end.
                d_cpu0 = cpu_s(daemon.pid)
                for _ in range(calls):
                        m = dbus.lowlevel.MethodCallMessage(h.BUS_NAME, h.ROOT_PATH, h.MANAGER_IFACE, 'ListDevices')
                        c.conn.send_message_with_reply_and_block(m, 120)
                list_cpu = (cpu_s(daemon.pid) - d_cpu0) / calls
                cli = {}
                for variant in (['list'], ['list', '--json']):
                        runs = []
                        for _ in range(5):
                                t0 = time.monotonic()
                                r = subprocess.run([h.env_path('HOSTDEVCTL'), '--address', bus.address] + variant,
                                                   env=h.preload_free_env(), stdout=subprocess.DEVNULL, check=True)
                                runs.append(time.monotonic() - t0)
                        cli[' '.join(variant)] = statistics.median(runs)
                rss = status_kib(daemon.pid, 'VmRSS')
                hwm = status_kib(daemon.pid, 'VmHWM')

                time.sleep(1)   # let the last reply's flush settle before counting
                s0 = ctxt_switches(daemon.pid)
                time.sleep(args.idle_seconds)
                idle = ctxt_switches(daemon.pid) - s0

                ratio = statistics.median(ready) / statistics.median(base)
                rows = [
                        # Other work on the machine slows every figure: the load says how quiet it was.
                        ('load average (1 min), start / end', '%.1f / %.1f on %d CPUs'
                         % (load0, os.getloadavg()[0], os.cpu_count()), '-', True),
                        ('testbed build (%d functions)' % args.functions, '%.2f s' % build_s, '-', True),
                        ('baseline: libudev enumerate + attrs', '%.3f s' % statistics.median(base), '-', True),
                        ('hostdevd start to READY=1', '%.3f s' % statistics.median(ready), '-', True),
                        ('startup ratio hostdevd/baseline', '%.2f' % ratio, '<= 2.0', ratio <= 2.0),
                        ('GetManagedObjects median (max)', '%.1f ms (%.1f)' % (1000 * statistics.median(msg_lat),
                                                                               1000 * max(msg_lat)),
                         '<= 100 ms', statistics.median(msg_lat) <= 0.1),
                        ('  of which hostdevd CPU per call', '%.1f ms' % (1000 * d_cpu), '<= 20 ms', d_cpu <= 0.02),
                        ('  of which dbus-daemon CPU per call', '%.1f ms' % (1000 * b_cpu), '-', True),
                        ('  objects in the reply', '%d' % reply_size, '-', True),
                ]
                if floor:
                        ratio_floor = 1000 * d_cpu / floor['cpu_ms_mean']
                        rows += [
                                ('  floor: sd-bus alone, same message', '%.1f ms (min %.1f)'
                                 % (floor['cpu_ms_mean'], floor['cpu_ms_min']), '-', True),
                                ('    same body as the reply', floor['body_equal'], 'yes', floor['body_equal'] == 'yes'),
                                ('    %d containers, %d values' % (floor['containers'], floor['values']),
                                 '%d string bytes' % floor['string_bytes'], '-', True),
                                ('  hostdevd CPU / floor', '%.2f' % ratio_floor, '-', True),
                                ('  20 ms goal vs the floor', 'below the floor' if floor['cpu_ms_mean'] > 20
                                 else 'above the floor', '-', True),
                        ]
                rows += [
                        ('ListDevices: hostdevd CPU per call', '%.1f ms' % (1000 * list_cpu), '-', True),
                        ('hostdevctl list, end to end (median)', '%.1f ms' % (1000 * cli['list']), '<= 150 ms',
                         cli['list'] <= 0.15),
                        ('  baseline: hostdevctl list --json (GMO)', '%.1f ms' % (1000 * cli['list --json']), '-',
                         True),
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
