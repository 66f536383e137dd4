#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""vGPU/mdev requests in leases (issue 15 on top of issue 14): a child process standing in for a VMM
acquires an mdev by type (option "mdevs" of Manager.Acquire), hostdevd places and creates it in the
fake kernel (mdev-host.umockdev: the mtty sample, a T4 with one type per GPU), the handoff carries it,
and the owner's exit removes it ("remove") or leaves it ("keep"). Run through meson
(`meson test --suite integration integration-lease-mdev`)."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dbus  # noqa: E402

import hostdevtest as h  # noqa: E402

_spec = importlib.util.spec_from_file_location(
        'test_mdev', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'test-mdev.py'))
M = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(M)
R = M.R

LEASE_IFACE = 'org.hostdevd1.Lease'
ERR = 'org.hostdevd1.Error.'
ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied'

# Acquire as uid 65534 with typed options (the JSON of test-reconcile.py's CALLER cannot say a(ss)).
CALLER = r'''
import json, sys
import dbus
address, = sys.argv[1:2]
try:
        conn = dbus.bus.BusConnection(address)
        mgr = dbus.Interface(conn.get_object('org.hostdevd1', '/org/hostdevd1', introspect=False),
                             'org.hostdevd1.Manager')
        r = mgr.Acquire(dbus.Array([], signature='s'),
                        {'mdevs': dbus.Array([dbus.Struct(('mtty-1', 'mtty'), signature='ss')],
                                             signature='(ss)')}, signature='asa{sv}', timeout=120)
        print(json.dumps({'ok': repr(r)}))
except dbus.DBusException as e:
        print(json.dumps({'error': e.get_dbus_name(), 'message': e.get_dbus_message()}))
'''


def mdevs_option(*asks):
        return dbus.Array([dbus.Struct(a, signature='ss') for a in asks], signature='(ss)')


class LeaseMdev(R.LeaseClient, M.MdevDaemonCase):
        def records(self):
                d = os.path.join(self.dirs['run'], 'leases')
                return sorted(os.listdir(d)) if os.path.isdir(d) else []

        def snapshot(self):
                """What a refused Acquire must leave as it was."""
                return (self.request_files(), sorted(self.H.t.mdev_uuids()), len(self.mdev_writes()),
                        self.records(), self.leases())

        def kill(self, p):
                p.kill()
                p.wait()

        def test_exit_removes(self):
                """By type, any parent: created in the fake kernel, listed and handed off; protected from
                RemoveMdev; the owner's exit removes it with no Apply."""
                self.start()
                p = self.vmm()
                path, devices = self.acquire([], p.pid, mdevs=mdevs_option(('mtty-2', '')))
                self.assertEqual(len(devices), 1, devices)
                u = str(devices[0])
                self.assertIn(u, self.typed())
                self.assertEqual((self.parent_of(u), self.mdev_type_of(u)), (M.MTTY, 'mtty-2'))
                self.assertEqual(self.request_files(), ['90-runtime-mdev-%s.conf' % u])
                lease = self.c.get_all(path, LEASE_IFACE)
                self.assertEqual((lease['State'], list(lease['Devices']), dict(lease['Policies'])),
                                 ('active', [u], {u: 'remove'}))
                sysfsdev = 'sysfsdev=/sys/bus/mdev/devices/%s' % u
                self.assertTrue(any(sysfsdev in a for a in lease['QemuArgs']), lease['QemuArgs'])
                self.assertIn("type='mdev'", lease['LibvirtHostdevXml'])
                self.assertIn(u, lease['LibvirtHostdevXml'])
                self.assertIn('path=/sys/bus/mdev/devices/%s/' % u, ' '.join(lease['CloudHypervisorArgs']))
                group = self.mdev(u, 'IommuGroup')
                self.assertIn('/dev/vfio/%d' % group, list(lease['VfioPaths']))
                with open(os.path.join(self.dirs['run'], 'leases', path.rsplit('_', 1)[1] + '.json')) as f:
                        rec = json.load(f)
                self.assertEqual(rec['mdevs'], [{'uuid': u, 'parent': M.MTTY, 'type': 'mtty-2', 'policy': 'remove'}])
                # the lease holds it: RemoveMdev refuses, nothing changes
                msg = self.assertDBusError(ERR + 'Blocked', 'RemoveMdev', u)
                self.assertIn('leased to pid %d' % p.pid, msg)
                # and CreateMdev does not take its UUID over
                msg = self.assertDBusError(ERR + 'Blocked', 'CreateMdev', M.MTTY, 'mtty-1', u, dbus.UInt64(0))
                self.assertIn('leased to pid %d' % p.pid, msg)
                self.assertEqual(self.request_files(), ['90-runtime-mdev-%s.conf' % u])
                self.assertEqual(self.mdev_type_of(u), 'mtty-2')
                self.assertIn(u, self.typed())
                # the owner exits: removed, no Apply
                self.kill(p)
                self.c.wait_for(lambda: u not in self.H.t.mdev_uuids(), 30, 'the leased mdev removed')
                self.c.wait_for(lambda: self.leases() == {}, 30, 'lease object gone')
                self.assertEqual(self.request_files(), [])
                self.assertEqual(self.records(), [])
                self.assertIn(M.ACTIVE, self.H.t.mdev_uuids(), 'the foreign instance is untouched')

        def test_leased_mdev_holds_parent(self):
                """Safety rule 4 for leases: a leased vGPU (nobody has opened it yet) holds its parent GPU,
                so SetDeviceDriver of the parent, whose unbind would destroy it, is Blocked naming the
                lease owner; nothing is written to the parent."""
                self.H.k.register_driver('vfio-pci')
                self.start()
                p = self.vmm()
                path, devices = self.acquire([], p.pid, mdevs=mdevs_option(('nvidia-222', M.T4)))
                u = str(devices[0])
                self.assertEqual(self.parent_of(u), M.T4)
                n = len(self.writes_naming(M.T4))  # the create
                msg = self.assertDBusError(ERR + 'Blocked', 'SetDeviceDriver', M.T4, 'vfio-pci',
                                           dbus.Array([], signature='s'))
                self.assertIn('pid %d (sleep) via /dev/vfio/%d of mdev %s' % (p.pid, self.mdev(u, 'IommuGroup'), u),
                              msg)
                self.H.barrier(self.c)
                self.assertEqual(self.driver(M.T4), 'nvidia')
                self.assertEqual(self.writes_naming(M.T4)[n:], [])
                self.assertIn(u, self.typed())

        def test_mixed_with_function(self):
                """A function and an mdev in one lease: both ready, both in the handoff, both given back at
                exit (the function to its host driver, the mdev removed)."""
                self.H.t.add_pci('devices/pci0000:00/' + R.NIC, 0x8086, 0x10d3, 0x020000, driver='e1000e', group=10,
                                 bars={0: (0xf7000000, 0x20000, h.MEM32)}, reset='flr bus')
                self.H.k.register_driver('vfio-pci')
                self.start()
                p = self.vmm()
                path, devices = self.acquire([R.NIC], p.pid, mdevs=mdevs_option(('mtty-1', M.MTTY)),
                                             release='host')
                self.assertEqual(len(devices), 2, devices)
                self.assertEqual(devices[0], R.NIC)
                u = str(devices[1])
                self.assertEqual(self.driver(R.NIC), 'vfio-pci')
                self.assertIn(u, self.typed())
                lease = self.c.get_all(path, LEASE_IFACE)
                self.assertEqual(dict(lease['Policies']), {R.NIC: 'host', u: 'remove'})
                args = ' '.join(lease['QemuArgs'])
                self.assertIn('host=' + R.NIC, args)
                self.assertIn('sysfsdev=/sys/bus/mdev/devices/' + u, args)
                self.kill(p)
                self.wait_converged(R.NIC, 'e1000e')
                self.c.wait_for(lambda: u not in self.H.t.mdev_uuids(), 30, 'the leased mdev removed')
                self.c.wait_for(lambda: self.leases() == {}, 30, 'lease object gone')

        def test_keep(self):
                """"mdev-release" keep: the instance stays, a transient one of hostdevd's (RemoveMdev takes it)."""
                self.start()
                p = self.vmm()
                _, devices = self.acquire([], p.pid, mdevs=mdevs_option(('Single port serial', M.MTTY)),
                                          mdev_release='keep')
                u = str(devices[0])
                self.assertEqual(self.mdev_type_of(u), 'mtty-1')
                self.kill(p)
                self.c.wait_for(lambda: self.leases() == {}, 30, 'lease object gone')
                self.H.barrier(self.c)
                self.assertIn(u, self.typed())
                self.assertEqual(self.request_files(), ['90-runtime-mdev-%s.conf' % u])
                self.wait_mdev(u, 'Owner', 'hostdevd')
                self.call('RemoveMdev', u)
                self.assertNotIn(u, self.H.t.mdev_uuids())

        def test_refused_changes_nothing(self):
                """No capacity, one type per GPU, unknown type or parent, bad values: refused before any
                change. A dry run places without creating."""
                self.start()
                p = self.vmm()
                before = self.snapshot()
                self.assertEqual(self.avail(M.MTTY, 'mtty-2'), 12)
                cases = [
                        ({'mdevs': mdevs_option(*[('mtty-2', M.MTTY)] * 13)}, ERR + 'Refused', 'No room'),
                        # the T4 carries a foreign nvidia-222: another type has no room (one type per GPU)
                        ({'mdevs': mdevs_option(('nvidia-223', M.T4))}, ERR + 'Refused', 'one type per physical GPU'),
                        ({'mdevs': mdevs_option(('mtty-9', ''))}, ERR + 'NotFound', "No mdev type 'mtty-9'"),
                        ({'mdevs': mdevs_option(('mtty-1', 'nosuch'))}, ERR + 'NotFound', "No mdev parent 'nosuch'"),
                        ({'mdevs': mdevs_option(('mtty-1\nUUID=x', ''))}, ERR + 'InvalidArgument', 'Invalid mdev type'),
                        ({'mdevs': mdevs_option(('mtty-1', '../mtty'))}, ERR + 'InvalidArgument',
                         'Invalid mdev parent'),
                        ({'mdevs': mdevs_option(('mtty-1', '')), 'mdev_release': 'host'}, ERR + 'InvalidArgument',
                         'Invalid mdev release policy'),
                        ({'mdevs': dbus.Array(['mtty-1'], signature='s')}, ERR + 'InvalidArgument', 'must be a(ss)'),
                        ({}, ERR + 'InvalidArgument', 'none given'),
                ]
                for options, name, text in cases:
                        got = self.acquire_error([], p.pid, **options)
                        self.assertEqual(got[0], name, got)
                        self.assertIn(text, got[1])
                self.H.barrier(self.c)
                self.assertEqual(self.snapshot(), before)
                # dry-run: where each would go ("PARENT/TYPE-ID"), nothing created
                path, devices = self.acquire([], p.pid, mdevs=mdevs_option(('mtty-2', ''), ('GRID T4-1B', '')),
                                             dry_run=True)
                self.assertEqual((path, list(devices)), ('/', ['mtty/mtty-2', M.T4 + '/nvidia-222']))
                self.H.barrier(self.c)
                self.assertEqual(self.snapshot(), before)

        def test_denied_caller_changes_nothing(self):
                self.start()
                before = self.snapshot()
                r = subprocess.run(['/usr/bin/python3', '-c', CALLER, self.bus.address], env=h.preload_free_env(),
                                   preexec_fn=R.drop_to_nobody, capture_output=True, text=True,
                                   timeout=h.timeout(180))
                self.assertEqual(r.returncode, 0, r.stderr)
                got = json.loads(r.stdout)
                self.assertEqual(got.get('error'), ACCESS_DENIED, got)
                self.H.barrier(self.c)
                self.assertEqual(self.snapshot(), before)

        def nonroot_acquire(self):
                r = subprocess.run(['/usr/bin/python3', '-c', CALLER, self.bus.address], env=h.preload_free_env(),
                                   preexec_fn=R.drop_to_nobody, capture_output=True, text=True,
                                   timeout=h.timeout(180))
                self.assertEqual(r.returncode, 0, r.stderr)
                return json.loads(r.stdout)

        def test_polkit_allowed(self):
                """A non-root caller that polkit (a mock) allows org.hostdevd1.acquire: the mdev is created
                for it, the caller itself owns the lease, and its exit right after the reply removes the
                instance."""
                self.start()
                for d in (self.H.workdir, self.bus.dir):
                        os.chmod(d, 0o755)
                self.mocks = [subprocess.Popen(['/usr/bin/python3', '-m', 'dbusmock', '--system', '--template',
                                                'polkitd'],
                                               env=h.preload_free_env({'DBUS_SYSTEM_BUS_ADDRESS': self.bus.address}),
                                               stdout=subprocess.DEVNULL)]
                self.c.wait_for(lambda: self.c.conn.name_has_owner('org.freedesktop.PolicyKit1'), 30, 'polkitd mock')
                polkit = dbus.Interface(self.c.conn.get_object('org.freedesktop.PolicyKit1',
                                                               '/org/freedesktop/PolicyKit1/Authority'),
                                        'org.freedesktop.DBus.Mock')
                polkit.SetAllowed(dbus.Array(['org.hostdevd1.manage-mdevs'], signature='s'))
                before = self.snapshot()
                got = self.nonroot_acquire()
                self.assertEqual(got.get('error'), ACCESS_DENIED, got)  # manage-mdevs is not acquire
                self.H.barrier(self.c)
                self.assertEqual(self.snapshot(), before)
                polkit.SetAllowed(dbus.Array(['org.hostdevd1.acquire'], signature='s'))
                creates = lambda: len([w for w in self.mdev_writes() if w[0].endswith('/create')])  # noqa: E731
                n_creates = creates()
                got = self.nonroot_acquire()
                self.assertIn('ok', got, got)
                self.c.wait_for(lambda: creates() == n_creates + 1, 30, 'one create')
                # the caller exited after the reply: its lease ends and the instance goes
                self.c.wait_for(lambda: self.leases() == {}, 30, 'lease gone')
                self.c.wait_for(lambda: sorted(self.H.t.mdev_uuids()) == before[1], 30, 'the instance removed')
                self.assertEqual(self.request_files(), before[0])

        def restart(self):
                self.daemon.stop(signal.SIGKILL)
                self.c.close()
                self.bus.stop()
                self.start(sentinel=False)
                self.H.barrier(self.c)

        def test_restart_adopts(self):
                """hostdevd killed mid-lease: the lease and its mdev are adopted with no sysfs write; the new
                daemon removes it when the owner exits."""
                self.start()
                p = self.vmm()
                path, devices = self.acquire([], p.pid, mdevs=mdevs_option(('mtty-1', '')))
                u = str(devices[0])
                n_writes = len(self.reactor.writes)
                self.restart()
                leases = self.leases()
                self.assertEqual(list(leases), [path])
                self.assertEqual((leases[path]['State'], list(leases[path]['Devices'])), ('active', [u]))
                self.assertEqual(self.reactor.writes[n_writes:], [])
                self.assertIn(u, self.typed())
                self.kill(p)
                self.c.wait_for(lambda: u not in self.H.t.mdev_uuids(), 30, 'the leased mdev removed')
                self.assertEqual(self.request_files(), [])

        def test_restart_dead_owner_removes(self):
                """The owner died while hostdevd was down: at start the lease ends and its mdev goes."""
                self.start()
                p = self.vmm()
                _, devices = self.acquire([], p.pid, mdevs=mdevs_option(('mtty-1', '')))
                u = str(devices[0])
                self.daemon.stop(signal.SIGKILL)
                self.c.close()
                self.bus.stop()
                self.kill(p)
                self.start(sentinel=False)
                self.c.wait_for(lambda: u not in self.H.t.mdev_uuids(), 30, 'the dead owner\'s mdev removed')
                self.assertEqual(self.leases(), {})
                self.assertEqual(self.request_files(), [])
                self.assertEqual(self.records(), [])

        def test_hostdevctl(self):
                """acquire --mdev TYPE[@PARENT] (repeatable), --mdev-release, --dry-run."""
                self.start()
                p = self.vmm()
                ctl = lambda *a, check=0: h.hostdevctl(self.bus.address, *a, check=check)  # noqa: E731
                out = ctl('acquire', '--dry-run', '--pid=%d' % p.pid, '--mdev', 'mtty-2', '--mdev=mtty-1@mtty').stdout
                self.assertEqual(out, 'Could lease: mtty/mtty-2 mtty/mtty-1\n')
                ctl('acquire', '--pid=%d' % p.pid, '--mdev', 'mtty-1@', check=2)
                ctl('acquire', '--pid=%d' % p.pid, '--mdev-release=host', '--mdev', 'mtty-1', check=2)
                got = json.loads(ctl('--json', 'acquire', '--pid=%d' % p.pid, '--mdev', 'mtty-1@mtty',
                                     '--mdev-release=keep').stdout)
                (u,) = got['devices']
                self.assertIn(u, self.typed())
                leases = json.loads(ctl('--json', 'leases').stdout)
                self.assertEqual(leases[0]['Policies'], {u: 'keep'})
                ctl('release', got['lease'].rsplit('_', 1)[1])
                self.H.barrier(self.c)
                self.assertIn(u, self.typed())  # keep


        def test_hostdevctl_run(self):
                """run --mdev: COMMAND owns a lease of a new instance, finds its UUID in
                HOSTDEVD_LEASE_DEVICES, and its exit removes the instance."""
                self.start()
                out = os.path.join(self.H.workdir, 'run.out')
                script = ('echo "$$ $HOSTDEVD_LEASE $HOSTDEVD_LEASE_DEVICES" > %s; '
                          'read line < %s.go; exit 7' % (out, out))
                os.mkfifo(out + '.go')
                proc = subprocess.Popen([h.env_path('HOSTDEVCTL'), '--address', self.bus.address, 'run',
                                         '--mdev=Dual port serial@mtty', '--', 'sh', '-c', script],
                                        env=h.preload_free_env())
                self.vmms.append(proc)
                self.c.wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 0, 60, 'COMMAND started')
                with open(out) as f:
                        pid, lease, u = f.read().split()
                self.assertEqual(int(pid), proc.pid)
                self.assertEqual((self.parent_of(u), self.mdev_type_of(u)), (M.MTTY, 'mtty-2'))
                self.assertEqual(list(self.c.get(lease, LEASE_IFACE, 'Devices')), [u])
                with open(out + '.go', 'w') as f:
                        f.write('go\n')
                self.assertEqual(proc.wait(timeout=h.timeout(30)), 7)
                self.c.wait_for(lambda: u not in self.H.t.mdev_uuids(), 30, 'the leased mdev removed')
                self.c.wait_for(lambda: self.leases() == {}, 30, 'lease gone')
                h.hostdevctl(self.bus.address, 'run', '--mdev=mtty-1', check=2)  # no COMMAND
                h.hostdevctl(self.bus.address, 'run', '--mdev=@mtty', '--', 'true', check=2)


if __name__ == '__main__':
        unittest.main(verbosity=2)
