#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Mediated devices and vendor vGPUs (issue 14) in the integration lane.

MdevKernel: the fake kernel's semantics of a type's create, an mdev's remove and
a VF's nvidia/current_vgpu_type, as a writer under kernel-shim.so sees them
(hostdevtest.Kernel.store_mdev_create and friends cite the kernel source).
MdevBus: the Mdev objects' properties and Manager.CreateMdev/RemoveMdev on the
daemon: validation, polkit, request files.

Run through meson (`meson test --suite integration integration-mdev-kernel ...`).
"""
import errno
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hostdevtest as h  # noqa: E402
from sysfstext import NVIDIA_L40S_VGPU_TYPES  # noqa: E402

T4 = '0000:41:00.0'          # mdev-host.umockdev: nvidia-222/223/230, one active nvidia-222
MTTY = 'mtty'                # mdev-host.umockdev: the mtty sample, mtty-1/mtty-2
ACTIVE = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001'
VGPU_PF = '0000:c1:00.0'     # vgpu-host.umockdev: 4 VFs on the vendor driver
VGPU_VFS = ['0000:c1:00.%d' % i for i in range(4, 8)]
VGPU_PF_IDLE = '0000:c2:00.0'

U1 = '11111111-2222-4333-8444-555555555501'
U2 = '11111111-2222-4333-8444-555555555502'
U3 = '11111111-2222-4333-8444-555555555503'

WRITER = r'''
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
try:
        os.write(fd, sys.argv[2].encode())
        print(0)
except OSError as e:
        print(e.errno)
finally:
        os.close(fd)
'''


class MdevTestCase(unittest.TestCase):
        maxDiff = None

        def setUp(self):
                self.H = h.Harness()
                self.reactor = h.KernelReactor(self.H.k, self.H.workdir)

        def tearDown(self):
                self.reactor.close()
                self.H.cleanup()

        def store(self, path, value):
                """Write |value| to the testbed's |path| as hostdevd's sysfs_write() does; the errno."""
                env = dict(os.environ)
                env.update(self.reactor.env())
                out = subprocess.run(['/usr/bin/python3', '-c', WRITER, path, value], env=env,
                                     capture_output=True, text=True, timeout=h.timeout(30), check=True).stdout
                return int(out)

        def type_attr(self, parent, type_id, name):
                return '/sys/class/mdev_bus/%s/mdev_supported_types/%s/%s' % (parent, type_id, name)

        def avail(self, parent, type_id):
                return int(h.Testbed.read(self.H.t.sys + self.type_attr(parent, type_id, 'available_instances')[4:]))


class MdevKernel(MdevTestCase):
        """The fake kernel: Linux 6.1's mdev create/remove, and the vendor vGPU attribute."""

        def setUp(self):
                super().setUp()
                self.H.recording('mdev-host.umockdev')
                self.H.recording('vgpu-host.umockdev')
                # mtty_probe() counts ports itself (24, shared by mtty-1 and mtty-2)
                self.H.k.mdev_parent_capacity(MTTY, 24, {'mtty-1': 1, 'mtty-2': 2}, 'vfio_mtty')
                self.H.k.vgpu_gpu(VGPU_PF, NVIDIA_L40S_VGPU_TYPES)
                # a listener that records what the kernel sends
                self.events = []
                self.mon = subprocess.Popen(
                        ['/usr/bin/python3', '-c', MONITOR], stdout=subprocess.PIPE, text=True)
                self.assertEqual(self.mon.stdout.readline().strip(), 'ready')

        def tearDown(self):
                self.mon.kill()
                self.mon.wait()
                self.mon.stdout.close()
                super().tearDown()

        def uevents_until(self, marker_syspath):
                """The uevents the monitor saw, up to a 'change' on |marker_syspath| sent now."""
                self.H.k.uevent(marker_syspath, 'change')
                out = []
                while True:
                        line = self.mon.stdout.readline().rstrip('\n')
                        self.assertTrue(line, 'the monitor ended')
                        action, subsystem, syspath, driver = line.split(' ', 3)
                        if action == 'change' and syspath == marker_syspath:
                                return out
                        out.append((action, subsystem, syspath, driver))

        def test_create_and_remove_core_counted(self):
                """A T4 type: counted by the mdev core (EUSERS when none is left)."""
                t, k = self.H.t, self.H.k
                self.assertEqual(self.avail(T4, 'nvidia-230'), 1)
                self.assertEqual(self.store(self.type_attr(T4, 'nvidia-230', 'create'), U1.upper() + '\n'), 0)
                self.assertIn(U1, t.mdev_uuids(), 'named in lowercase')
                d = t.real(t.mdev_syspath(U1))
                self.assertEqual(os.path.dirname(t.mdev_syspath(U1)), t.syspath(T4))
                self.assertEqual(os.readlink(os.path.join(d, 'mdev_type')), '../mdev_supported_types/nvidia-230')
                group = h._link_base(d, 'iommu_group')
                self.assertTrue(os.path.islink(os.path.join(t.sys, 'kernel/iommu_groups', group, 'devices', U1)))
                self.assertEqual(h._link_base(d, 'driver'), 'vfio_mdev')
                self.assertTrue(os.path.exists(os.path.join(d, 'remove')))
                self.assertTrue(os.path.islink(os.path.join(
                        t.devdir(T4), 'mdev_supported_types/nvidia-230/devices', U1)))
                self.assertEqual(self.avail(T4, 'nvidia-230'), 0)
                self.assertEqual(h.Testbed.read(t.sys + self.type_attr(T4, 'nvidia-230', 'create')[4:]), '',
                                 'create is write-only: nothing stays')
                # no instance left: EUSERS, and nothing appears
                self.assertEqual(self.store(self.type_attr(T4, 'nvidia-230', 'create'), U2), errno.EUSERS)
                self.assertNotIn(U2, t.mdev_uuids())
                # a UUID that exists, on any parent or type: EEXIST
                self.assertEqual(self.store(self.type_attr(T4, 'nvidia-222', 'create'), ACTIVE), errno.EEXIST)
                self.assertEqual(self.store(self.type_attr(MTTY, 'mtty-1', 'create'), U1), errno.EEXIST)
                # not a UUID, or the wrong length: EINVAL
                for bad in ('', 'hello', U2[:-1], U2 + '\n\n', U2.replace('-', 'x')):
                        self.assertEqual(self.store(self.type_attr(T4, 'nvidia-222', 'create'), bad), errno.EINVAL, bad)
                self.assertEqual(self.avail(T4, 'nvidia-222'), 15)
                # remove: kstrtoul; 0 does nothing; garbage is EINVAL
                rm = '/sys/bus/mdev/devices/%s/remove' % U1
                self.assertEqual(self.store(rm, 'yes'), errno.EINVAL)
                self.assertEqual(self.store(rm, '0\n'), 0)
                self.assertIn(U1, t.mdev_uuids())
                self.assertEqual(self.store(rm, '1\n'), 0)
                self.assertNotIn(U1, t.mdev_uuids())
                self.assertFalse(os.path.exists(os.path.join(t.sys, 'kernel/iommu_groups', group)))
                self.assertFalse(os.path.lexists(os.path.join(
                        t.devdir(T4), 'mdev_supported_types/nvidia-230/devices', U1)))
                self.assertEqual(self.avail(T4, 'nvidia-230'), 1)
                self.assertEqual(k.t.mdev_uuids(), [ACTIVE])

        def test_uevents_as_61(self):
                """'add' (no MDEV_TYPE, no driver), 'bind' with DRIVER=; remove: 'unbind', 'remove'."""
                t = self.H.t
                marker = t.syspath(T4)
                self.uevents_until(marker)
                self.assertEqual(self.store(self.type_attr(MTTY, 'mtty-2', 'create'), U1), 0)
                path = t.mdev_syspath(U1)
                self.assertEqual(self.uevents_until(marker),
                                 [('add', 'mdev', path, '-'), ('bind', 'mdev', path, 'vfio_mtty')])
                self.assertNotIn('MDEV_TYPE', h.Testbed.read(os.path.join(t.real(path), 'uevent')))
                self.assertEqual(self.store('/sys/bus/mdev/devices/%s/remove' % U1, '1'), 0)
                self.assertEqual(self.uevents_until(marker),
                                 [('unbind', 'mdev', path, '-'), ('remove', 'mdev', path, '-')])

        def test_vendor_counted_shared_pool(self):
                """mtty: 24 ports shared by mtty-1 (1 port) and mtty-2 (2); the probe refuses: ENOSPC,
                after an 'add' and a 'remove'."""
                t = self.H.t
                self.assertEqual((self.avail(MTTY, 'mtty-1'), self.avail(MTTY, 'mtty-2')), (24, 12))
                uuids = ['22222222-0000-4000-8000-%012d' % i for i in range(12)]
                for u in uuids[:11]:
                        self.assertEqual(self.store(self.type_attr(MTTY, 'mtty-2', 'create'), u), 0)
                self.assertEqual((self.avail(MTTY, 'mtty-1'), self.avail(MTTY, 'mtty-2')), (2, 1))
                self.assertEqual(self.store(self.type_attr(MTTY, 'mtty-1', 'create'), uuids[11]), 0)
                self.assertEqual((self.avail(MTTY, 'mtty-1'), self.avail(MTTY, 'mtty-2')), (1, 0))
                marker = t.syspath(T4)
                self.uevents_until(marker)
                self.assertEqual(self.store(self.type_attr(MTTY, 'mtty-2', 'create'), U1), errno.ENOSPC)
                self.assertNotIn(U1, t.mdev_uuids())
                self.assertEqual([e[0] for e in self.uevents_until(marker)], ['add', 'remove'])
                self.assertEqual(self.store('/sys/bus/mdev/devices/%s/remove' % uuids[0], '1'), 0)
                self.assertEqual((self.avail(MTTY, 'mtty-1'), self.avail(MTTY, 'mtty-2')), (3, 1))
                self.assertEqual(self.store(self.type_attr(MTTY, 'mtty-2', 'create'), U1), 0)
                self.assertEqual(os.readlink(os.path.join(t.real(t.mdev_syspath(U1)), 'mdev_type')),
                                 '../mdev_supported_types/mtty-2')

        def test_one_type_per_gpu(self):
                """A parent whose types exclude each other (NVIDIA time-sliced vGPU): the active type's
                instances only; the existing nvidia-222 instance is counted."""
                k = self.H.k
                k.mdev_parent_capacity(T4, 16, {'nvidia-222': 1, 'nvidia-223': 2, 'nvidia-230': 16},
                                       'nvidia-vgpu-vfio', one_type=True)
                self.assertEqual([self.avail(T4, x) for x in ('nvidia-222', 'nvidia-223', 'nvidia-230')], [15, 0, 0])
                self.assertEqual(self.store(self.type_attr(T4, 'nvidia-223', 'create'), U1), errno.ENOSPC)
                self.assertEqual(self.store(self.type_attr(T4, 'nvidia-222', 'create'), U1), 0)
                self.assertEqual(self.avail(T4, 'nvidia-222'), 14)
                for u in (U1, ACTIVE):
                        self.assertEqual(self.store('/sys/bus/mdev/devices/%s/remove' % u, '1'), 0)
                self.assertEqual([self.avail(T4, x) for x in ('nvidia-222', 'nvidia-223', 'nvidia-230')], [16, 8, 1])

        def test_vgpu_current_type(self):
                """<VF>/nvidia/current_vgpu_type: an id from creatable_vgpu_types sets it; the GPU's
                other VFs then offer that type only; 0 deletes; another type over one is EBUSY."""
                k = self.H.k
                vf0, vf1 = VGPU_VFS[:2]
                attr = '/sys/bus/pci/devices/%s/nvidia/current_vgpu_type'
                all_types = [(i, n) for i, n, _ in NVIDIA_L40S_VGPU_TYPES]
                self.assertEqual(k.vgpu_creatable(vf0), all_types)
                self.assertEqual(self.store(attr % vf0, 'L40S-24Q'), errno.EINVAL)
                self.assertEqual(self.store(attr % vf0, '99\n'), errno.EINVAL, 'not creatable')
                self.assertEqual(k.vgpu_current(vf0), 0)
                self.assertEqual(self.store(attr % vf0, '1163\n'), 0)
                self.assertEqual(k.vgpu_current(vf0), 1163)
                self.assertEqual(k.vgpu_creatable(vf0), [])
                self.assertEqual(k.vgpu_creatable(vf1), [(1163, 'NVIDIA L40S-24Q')])
                self.assertEqual(self.store(attr % vf0, '1163'), 0, 'the same type again')
                self.assertEqual(self.store(attr % vf0, '1155'), errno.EBUSY)
                self.assertEqual(self.store(attr % vf1, '1155'), errno.EINVAL, 'one type per GPU')
                self.assertEqual(self.store(attr % vf1, '1163'), 0)
                self.assertEqual(k.vgpu_creatable(VGPU_VFS[2]), [], 'L40S-24Q: 2 per GPU')
                self.assertEqual(self.store(attr % vf0, '0\n'), 0)
                self.assertEqual(k.vgpu_current(vf0), 0)
                self.assertEqual(k.vgpu_creatable(VGPU_VFS[2]), [(1163, 'NVIDIA L40S-24Q')])

        def test_vgpu_vfs_of_numvfs(self):
                """VFs that SR-IOV creates and the vendor driver binds get their nvidia/ directory."""
                k = self.H.k
                k.vgpu_gpu(VGPU_PF_IDLE, NVIDIA_L40S_VGPU_TYPES)
                k.vf_host_drivers[VGPU_PF_IDLE] = 'nvidia'
                k.remember_host_drivers()
                self.assertEqual(self.store('/sys/bus/pci/devices/%s/sriov_numvfs' % VGPU_PF_IDLE, '2'), 0)
                vfs = k.vfs_of(VGPU_PF_IDLE)
                self.assertEqual(vfs, ['0000:c2:00.4', '0000:c2:00.5'])
                for vf in vfs:
                        self.assertEqual(k.driver_of(vf), 'nvidia')
                        self.assertEqual(k.vgpu_current(vf), 0)
                        self.assertEqual(len(k.vgpu_creatable(vf)), len(NVIDIA_L40S_VGPU_TYPES))
                k.unbind(vfs[0])
                self.assertIsNone(k.vgpu_current(vfs[0]), 'the vendor driver unbound: no nvidia/ directory')


# ---------------------------------------------------------------------------
# The daemon: Mdev objects, CreateMdev/RemoveMdev, [Mdev]/[VGPU] files.

def _load_reconcile():
        """test-reconcile.py's case (directories, daemon start, non-root calls, holders): shared."""
        import importlib.util
        spec = importlib.util.spec_from_file_location(
                'test_reconcile', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'test-reconcile.py'))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod


R = _load_reconcile()
MDEV_IFACE = h.MDEV_IFACE
ERR = 'org.hostdevd1.Error.'
ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied'
MTTY_SYSPATH = '/sys/devices/virtual/mtty/mtty'


def mdev_conf(match=None, **mdev):
        out = []
        if match:
                out += ['[Match]'] + ['%s=%s' % kv for kv in match.items()]
        out += ['[Mdev]']
        for k, v in mdev.items():
                for one in (v if isinstance(v, list) else [v]):
                        out.append('%s=%s' % (k, one))
        return '\n'.join(out) + '\n'


class MdevDaemonCase(R.ReconcileTestCase):
        """hostdevd on mdev-host.umockdev (+ vgpu-host.umockdev), the fake kernel's capacities set."""

        mtty_at_start = True

        def setUp(self):
                super().setUp()
                k = self.H.k
                if self.mtty_at_start:
                        self.H.recording('mdev-host.umockdev')
                else:
                        self.add_t4()
                self.H.recording('vgpu-host.umockdev')
                if self.mtty_at_start:
                        k.mdev_parent_capacity(MTTY, 24, {'mtty-1': 1, 'mtty-2': 2}, 'vfio_mtty')
                k.mdev_parent_capacity(T4, 16, {'nvidia-222': 1, 'nvidia-223': 2, 'nvidia-230': 16},
                                       'nvidia-vgpu-vfio', one_type=True)
                k.vgpu_gpu(VGPU_PF, NVIDIA_L40S_VGPU_TYPES)

        def add_t4(self):
                """Only the T4 of mdev-host.umockdev (no mtty yet), with its active vGPU."""
                with open(os.path.join(h.env_path('RECORDINGS_DIR'), 'mdev-host.umockdev')) as f:
                        text = f.read()
                self.H.t.add_text(text.split('P: /devices/virtual/mtty/mtty')[0])

        def avail(self, parent, type_id):
                return int(h.Testbed.read(os.path.join(self.H.k.mdev_parent_dir(parent), 'mdev_supported_types',
                                                       type_id, 'available_instances')))

        def mdev(self, uuid, prop):
                return self.c.get(h.mdev_path(uuid), MDEV_IFACE, prop)

        def mdev_or_none(self, uuid, prop):
                try:
                        return self.mdev(uuid, prop)
                except R.dbus.exceptions.DBusException as e:
                        if e.get_dbus_name() != 'org.freedesktop.DBus.Error.UnknownObject':
                                raise
                        return None

        def wait_mdev(self, uuid, prop, value, limit=30):
                return self.c.wait_for(lambda: self.mdev_or_none(uuid, prop) == value, limit,
                                       lambda: 'mdev %s %s = %r (now %r)' %
                                       (uuid, prop, value, self.mdev_or_none(uuid, prop)))

        def mdev_type_of(self, uuid):
                d = self.H.t.real(self.H.t.mdev_syspath(uuid))
                return os.path.basename(os.readlink(os.path.join(d, 'mdev_type')))

        def typed(self):
                """The mdevs that are whole: a create in progress has no mdev_type link yet, and one
                the fake kernel is removing may go between the listing and the read (not whole)."""
                t = self.H.t
                whole = []
                for u in t.mdev_uuids():
                        try:
                                if os.path.islink(os.path.join(t.real(t.mdev_syspath(u)), 'mdev_type')):
                                        whole.append(u)
                        except FileNotFoundError:
                                pass
                return whole

        def parent_of(self, uuid):
                return os.path.basename(os.path.dirname(self.H.t.mdev_syspath(uuid)))

        def mdev_writes(self):
                return [w for w in self.reactor.writes if w[0].endswith('/create') or w[0].endswith('/remove')
                        or w[0].endswith('current_vgpu_type')]

        def request_files(self):
                return sorted(f for d in self.request_dirs if os.path.isdir(d) for f in os.listdir(d))


class MdevBus(MdevDaemonCase):
        """Mdev objects and Manager.CreateMdev/RemoveMdev."""

        def test_foreign_instance_properties(self):
                """No rule: the recording's vGPU is foreign, converged, with its type's name and group node;
                a process holding /dev/vfio/21 is its holder."""
                c = self.start()
                m = c.get_all(h.mdev_path(ACTIVE), MDEV_IFACE)
                self.assertEqual(m, h.expected_mdev(self.H.t, ACTIVE))
                self.assertEqual((m['Owner'], m['State'], m['StateReason'], m['TypeName'], m['VfioGroup']),
                                 ('foreign', 'converged', '', 'GRID T4-1B', '/dev/vfio/21'))
                p = self.hold(21)
                # the open reaches the daemon as an fanotify event, handled on its own time
                c.wait_for(lambda: [tuple(x) for x in self.mdev(ACTIVE, 'Holders')] == [(p.pid, 'sleep')], 30,
                           lambda: 'the holder in Holders (now %r)' % self.mdev(ACTIVE, 'Holders'))
                self.assertEqual(self.mdev_writes(), [])

        def test_create_remove_by_method(self):
                """CreateMdev stores [Mdev] with the UUID, the instance appears, owned by hostdevd;
                RemoveMdev drops the file and the instance. "persist" goes to the state directory."""
                c = self.start()
                path = self.call('CreateMdev', MTTY, 'mtty-2', U1.upper(), R.dbus.UInt64(0))
                self.assertEqual(path, h.mdev_path(U1))
                self.assertIn(U1, self.H.t.mdev_uuids())
                self.assertEqual((self.parent_of(U1), self.mdev_type_of(U1)), (MTTY, 'mtty-2'))
                self.assertEqual(os.listdir(self.request_dirs[0]), ['90-runtime-mdev-%s.conf' % U1])
                self.assertIn('UUID=%s' % U1, h.Testbed.read(
                        os.path.join(self.request_dirs[0], '90-runtime-mdev-%s.conf' % U1)))
                self.wait_mdev(U1, 'Owner', 'hostdevd')
                self.wait_mdev(U1, 'State', 'converged')
                self.assertEqual(self.mdev(U1, 'TypeName'), 'Dual port serial')
                # by name, any parent, hostdevd picks the UUID; persisted
                path = self.call('CreateMdev', '', 'GRID T4-1B', '', R.dbus.UInt64(1))
                u2 = path[len('/org/hostdevd1/mdevs/mdev_'):].replace('_', '-')
                self.assertEqual((self.parent_of(u2), self.mdev_type_of(u2)), (T4, 'nvidia-222'))
                self.assertEqual(os.listdir(self.request_dirs[1]), ['90-runtime-mdev-%s.conf' % u2])
                # remove both
                self.call('RemoveMdev', U1)
                self.call('RemoveMdev', u2.upper())
                self.assertNotIn(U1, self.H.t.mdev_uuids())
                self.assertNotIn(u2, self.H.t.mdev_uuids())
                self.assertEqual(self.request_files(), [])
                self.assertIn(ACTIVE, self.H.t.mdev_uuids(), 'the foreign instance is untouched')
                # RemoveMdev of what no request declared
                msg = self.assertDBusError(ERR + 'NotFound', 'RemoveMdev', ACTIVE)
                self.assertIn(ACTIVE, msg)
                self.assertIn(ACTIVE, self.H.t.mdev_uuids())

        def test_remove_held_is_blocked(self):
                """RemoveMdev of an instance a process holds: Blocked naming pid and command; the declaration
                and the instance stay; once released, RemoveMdev removes it."""
                self.start()
                self.call('CreateMdev', MTTY, 'mtty-1', U1, R.dbus.UInt64(0))
                p = self.hold(self.mdev(U1, 'IommuGroup'))
                msg = self.assertDBusError(ERR + 'Blocked', 'RemoveMdev', U1)
                self.assertIn(str(p.pid), msg)
                self.assertIn('sleep', msg)
                self.assertIn(U1, self.typed())
                self.assertEqual(self.request_files(), ['90-runtime-mdev-%s.conf' % U1])
                self.assertFalse([w for w in self.mdev_writes() if w[0].endswith('/remove')])
                p.kill()
                p.wait()
                self.call('RemoveMdev', U1)
                self.assertNotIn(U1, self.H.t.mdev_uuids())
                self.assertEqual(self.request_files(), [])

        def test_held_mdev_blocks_parent_driver(self):
                """Safety rule 4: a process holding an mdev holds its parent. SetDeviceDriver of the parent
                (whose unbind would destroy the mdev) is Blocked naming pid and command, a
                ResetDeviceDriver back to a file's rule leaves it blocked; nothing is written until the
                holder exits."""
                self.H.k.register_driver('vfio-pci')
                c = self.start()
                p = self.hold(21)  # the recording's vGPU on the T4
                c.wait_for(lambda: len(self.mdev(ACTIVE, 'Holders')) == 1, 30, 'the holder seen')
                msg = self.assertDBusError(ERR + 'Blocked', 'SetDeviceDriver', T4, 'vfio-pci',
                                           R.dbus.Array([], signature='s'))
                self.assertIn('pid %d (sleep) via /dev/vfio/21 of mdev %s' % (p.pid, ACTIVE), msg)
                self.assertEqual(self.driver(T4), 'nvidia')
                # a file wants vfio-pci, a request keeps nvidia (no change); dropping the request leaves
                # the file's rule, which waits for the holder
                self.call('SetDeviceDriver', T4, 'nvidia', R.dbus.Array([], signature='s'))
                self.write_conf('50-t4.conf', R.conf({'Address': T4}, {'Driver': 'vfio-pci'}))
                self.call('Reload')
                self.call('ResetDeviceDriver', T4)
                self.wait_dev(T4, 'State', 'blocked')
                self.assertIn('pid %d (sleep)' % p.pid, self.dev(T4, 'StateReason'))
                self.H.barrier(c)
                self.assertEqual(self.driver(T4), 'nvidia')
                self.assertEqual(self.writes_naming(T4), [])
                self.assertIn(ACTIVE, self.H.t.mdev_uuids())
                p.kill()
                p.wait()
                self.call('Apply')
                self.wait_converged(T4, 'vfio-pci')

        def test_invalid_arguments_change_nothing(self):
                c = self.start()
                gen = c.manager('Generation')
                u0 = R.dbus.UInt64(0)
                cases = [
                        (ERR + 'InvalidArgument', 'CreateMdev', MTTY, 'mtty-1', 'not-a-uuid', u0),
                        (ERR + 'InvalidArgument', 'CreateMdev', MTTY, 'mtty-1', U1, R.dbus.UInt64(2)),
                        (ERR + 'InvalidArgument', 'CreateMdev', MTTY, 'mtty-1\nUUID=' + U2, U1, u0),
                        (ERR + 'InvalidArgument', 'CreateMdev', '../mtty', 'mtty-1', U1, u0),
                        (ERR + 'InvalidArgument', 'CreateMdev', MTTY, '', U1, u0),
                        (ERR + 'NotFound', 'CreateMdev', 'nosuchparent', 'mtty-1', U1, u0),
                        (ERR + 'NotFound', 'CreateMdev', MTTY, 'nvidia-222', U1, u0),
                        (ERR + 'NotFound', 'CreateMdev', '', 'no such type', U1, u0),
                        (ERR + 'Refused', 'CreateMdev', T4, 'nvidia-222', ACTIVE, u0),
                        (ERR + 'InvalidArgument', 'RemoveMdev', 'xyz'),
                        (ERR + 'NotFound', 'RemoveMdev', U1),
                ]
                for name, method, *args in cases:
                        msg = self.assertDBusError(name, method, *args)
                        self.assertTrue(msg, (method, args))
                self.assertIn("'not-a-uuid'", self.assertDBusError(ERR + 'InvalidArgument', 'CreateMdev', MTTY,
                                                                    'mtty-1', 'not-a-uuid', u0))
                self.H.barrier(c)
                self.assertEqual(self.mdev_writes(), [])
                self.assertEqual(self.request_files(), [])
                self.assertEqual(c.manager('Generation'), gen)
                self.assertEqual(self.H.t.mdev_uuids(), [ACTIVE])


class MdevPolkit(MdevDaemonCase):
        """A non-root caller: CreateMdev/RemoveMdev behind org.hostdevd1.manage-mdevs."""

        def setUp(self):
                super().setUp()
                self.start({'50-mtty.conf': mdev_conf(Parent=MTTY, Type='mtty-1', UUID=U3)})
                self.wait_mdev(U3, 'State', 'converged')
                for d in (self.H.workdir, self.bus.dir):
                        os.chmod(d, 0o755)
                self.mocks = [subprocess.Popen(['/usr/bin/python3', '-m', 'dbusmock', '--system', '--template',
                                                'polkitd'],
                                               env=h.preload_free_env({'DBUS_SYSTEM_BUS_ADDRESS': self.bus.address}),
                                               stdout=subprocess.DEVNULL)]
                self.c.wait_for(lambda: self.c.conn.name_has_owner('org.freedesktop.PolicyKit1'), 30, 'polkitd mock')
                self.polkit = R.dbus.Interface(self.c.conn.get_object('org.freedesktop.PolicyKit1',
                                                                      '/org/freedesktop/PolicyKit1/Authority'),
                                               'org.freedesktop.DBus.Mock')

        def test_denied_changes_nothing(self):
                """Denied callers change nothing: files, sysfs, properties."""
                self.polkit.SetAllowed(R.dbus.Array(['org.hostdevd1.manage-devices'], signature='s'))
                before = (self.request_files(), self.H.t.mdev_uuids(), self.c.get_all(h.mdev_path(U3), MDEV_IFACE),
                          self.c.manager('Generation'))
                n_writes = len(self.mdev_writes())
                for method, sig, *args in [('CreateMdev', 'ssst', MTTY, 'mtty-1', U1, 0),
                                           ('CreateMdev', 'ssst', '', 'mtty-2', '', 1),
                                           ('RemoveMdev', 's', U3)]:
                        r = self.nonroot_call(method, sig, *args)
                        self.assertEqual(r.get('error'), ACCESS_DENIED, '%s: %r' % (method, r))
                        self.assertIn('manage mdevs', r['message'])
                self.H.barrier(self.c)
                self.assertEqual(len(self.mdev_writes()), n_writes)
                self.assertEqual((self.request_files(), self.H.t.mdev_uuids(),
                                  self.c.get_all(h.mdev_path(U3), MDEV_IFACE), self.c.manager('Generation')), before)

        def test_allowed(self):
                self.polkit.SetAllowed(R.dbus.Array(['org.hostdevd1.manage-mdevs'], signature='s'))
                r = self.nonroot_call('CreateMdev', 'ssst', MTTY, 'mtty-1', U1, 0)
                self.assertIn('ok', r, r)
                self.assertIn(U1, self.H.t.mdev_uuids())
                r = self.nonroot_call('RemoveMdev', 's', U1)
                self.assertIn('ok', r, r)
                self.assertNotIn(U1, self.H.t.mdev_uuids())


class MdevReconcile(MdevDaemonCase):
        """[Mdev]/[VGPU] files: create, place, remove, adopt, hold, never touch foreign instances."""

        def test_file_fixed_and_count(self):
                """UUID= and Count= instances; Count= UUIDs are kept in the state directory; a rule removed
                removes its instances, never the foreign one."""
                c = self.start({'50-fixed.conf': mdev_conf(Parent=MTTY, Type='mtty-2', UUID=U1),
                                '60-count.conf': mdev_conf(Parent=MTTY, Type='Single port serial', Count=2)})
                self.wait_mdev(U1, 'State', 'converged')
                c.wait_for(lambda: len(self.typed()) == 4, 30, 'four mdevs')
                counted = sorted(set(self.H.t.mdev_uuids()) - {U1, ACTIVE})
                for u in counted:
                        self.assertEqual((self.parent_of(u), self.mdev_type_of(u)), (MTTY, 'mtty-1'))
                        self.wait_mdev(u, 'Owner', 'hostdevd')
                stored = h.Testbed.read(os.path.join(self.dirs['state'], 'mdev-uuids.json'))
                for u in counted:
                        self.assertIn(u, stored)
                self.assertEqual(self.avail(MTTY, 'mtty-1'), 24 - 2 - 2)
                os.unlink(self.etc('60-count.conf'))
                self.call('Reload')
                c.wait_for(lambda: sorted(self.H.t.mdev_uuids()) == sorted([U1, ACTIVE]), 30, 'counted removed')
                self.assertEqual(self.mdev(ACTIVE, 'Owner'), 'foreign')

        def test_spread_and_pack(self):
                """Two parents with the type (a second mtty-like parent): spread alternates, pack fills one."""
                k = self.H.k
                # a second non-PCI parent with the same types
                with open(os.path.join(h.env_path('RECORDINGS_DIR'), 'mdev-host.umockdev')) as f:
                        text = f.read()
                mt = text[text.index('P: /devices/virtual/mtty/mtty'):]
                self.H.t.add_text(mt.replace('/devices/virtual/mtty/mtty', '/devices/virtual/mtty/mtty2'))
                k.mdev_parent_capacity('mtty2', 24, {'mtty-1': 1, 'mtty-2': 2}, 'vfio_mtty')
                c = self.start({'50-spread.conf': mdev_conf(Parent=[MTTY, 'mtty2'], Type='mtty-2', Count=4)})
                c.wait_for(lambda: len(self.typed()) == 5, 30, 'four mdevs')
                parents = sorted(self.parent_of(u) for u in self.H.t.mdev_uuids() if u != ACTIVE)
                self.assertEqual(parents, [MTTY, MTTY, 'mtty2', 'mtty2'])
                self.write_conf('60-pack.conf', mdev_conf(Parent=[MTTY, 'mtty2'], Type='mtty-1', Count=3,
                                                          Placement='pack'))
                self.call('Reload')
                c.wait_for(lambda: len(self.typed()) == 8, 30, 'seven mdevs')
                packed = [self.parent_of(u) for u in self.H.t.mdev_uuids()
                          if u != ACTIVE and self.mdev_type_of(u) == 'mtty-1']
                self.assertEqual(len(set(packed)), 1, packed)

        def test_plan_records_nothing(self):
                """Plan() is a dry run: a UUID= rule naming an instance hostdevd did not make (the foreign
                nvidia-222 one) is planned as adopted, but owned-mdevs.json keeps its bytes and mtime;
                the real plan (once the executor is free) records it."""
                self.reactor.stuck_create.add(U1)
                c = self.start({'50-fixed.conf': mdev_conf(Parent=MTTY, Type='mtty-1', UUID=U1)})
                self.reactor.wait_stuck()
                owned = os.path.join(self.dirs['state'], 'owned-mdevs.json')
                self.assertIn(U1, h.Testbed.read(owned), 'recorded before the create write')
                self.write_conf('60-adopt.conf', mdev_conf(Parent=T4, Type='nvidia-222', UUID=ACTIVE))
                self.call('Reload')
                before = (h.Testbed.read(owned), os.stat(owned).st_mtime_ns)
                gen, actions, devices, conflicts = self.call('Plan')
                h.hostdevctl(self.bus.address, 'plan', check=0)
                self.assertEqual((h.Testbed.read(owned), os.stat(owned).st_mtime_ns), before, 'Plan() wrote the file')
                self.assertNotIn(ACTIVE, before[0])
                self.assertEqual([a for a in actions if ACTIVE in a[3]], [], 'adopted: nothing to do for it')
                self.assertEqual(self.mdev(ACTIVE, 'Owner'), 'foreign')
                self.reactor.release_stuck()
                self.wait_mdev(ACTIVE, 'Owner', 'hostdevd')
                self.assertIn(ACTIVE, h.Testbed.read(owned))
                self.assertEqual(self.H.t.mdev_uuids().count(ACTIVE), 1)

        def test_type_change_failure_restores_old(self):
                """A UUID= rule changes its instance's type: removed, then created with the new type; the
                fake kernel refuses the new type, so the old instance comes back with its old type and
                the failure is reported."""
                c = self.start({'50-fixed.conf': mdev_conf(Parent=MTTY, Type='mtty-1', UUID=U1)})
                self.wait_mdev(U1, 'State', 'converged')
                self.reactor.refuse_create.add('mtty-2')
                self.write_conf('50-fixed.conf', mdev_conf(Parent=MTTY, Type='mtty-2', UUID=U1))
                self.call('Reload')
                self.wait_mdev(U1, 'State', 'failed')
                self.assertIn('the old mdev mtty/mtty-1 created again', self.mdev(U1, 'StateReason'))
                self.H.barrier(c)
                base = 'devices/virtual/mtty/mtty/mdev_supported_types/'
                self.assertEqual([(w[0].split('/')[-2:], w[2]) for w in self.mdev_writes()][-3:],
                                 [([U1, 'remove'], 0), (['mtty-2', 'create'], errno.ENOSPC),
                                  (['mtty-1', 'create'], 0)])
                self.assertIn((base + 'mtty-1/create', U1, 0), self.mdev_writes())
                self.assertIn(U1, self.typed())
                self.assertEqual(self.mdev_type_of(U1), 'mtty-1')
                self.assertEqual(self.mdev(U1, 'Owner'), 'hostdevd')

        def test_holder_blocks_removal(self):
                c = self.start({'50-fixed.conf': mdev_conf(Parent=MTTY, Type='mtty-1', UUID=U1)})
                self.wait_mdev(U1, 'State', 'converged')
                group = self.mdev(U1, 'IommuGroup')
                p = self.hold(group)
                os.unlink(self.etc('50-fixed.conf'))
                self.call('Reload')
                self.wait_mdev(U1, 'State', 'blocked')
                reason = self.mdev(U1, 'StateReason')
                self.assertIn(str(p.pid), reason)
                self.assertIn('sleep', reason)
                self.H.barrier(c)
                self.assertIn(U1, self.H.t.mdev_uuids())
                self.assertFalse([w for w in self.mdev_writes() if U1 in w[0]])
                p.kill()
                p.wait()
                self.call('Apply')
                c.wait_for(lambda: U1 not in self.H.t.mdev_uuids(), 30, 'removed once released')

        def test_cdev_holder_blocks_removal(self):
                """6.6+: a VMM that opened the mdev's VFIO cdev (/dev/vfio/devices/vfioN, for
                <mdev>/vfio-dev/vfioN), not its group, holds it as well: shown in Holders, removal
                blocked naming it, removed once it is gone."""
                self.H.k.mdev_cdevs = True
                os.makedirs(os.path.join(self.H.t.root, 'dev', 'vfio', 'devices'), exist_ok=True)
                c = self.start({'50-fixed.conf': mdev_conf(Parent=MTTY, Type='mtty-1', UUID=U1)})
                self.wait_mdev(U1, 'State', 'converged')
                cdevs = os.listdir(os.path.join(self.H.t.real(self.H.t.mdev_syspath(U1)), 'vfio-dev'))
                self.assertEqual(len(cdevs), 1)
                self.assertEqual(self.mdev(U1, 'VfioDevice'), '/dev/vfio/devices/' + cdevs[0])
                p = self.hold('devices/' + cdevs[0])
                c.wait_for(lambda: self.mdev(U1, 'Holders') == [(p.pid, 'sleep')], 30,
                           lambda: 'the cdev holder in Holders (now %r)' % self.mdev(U1, 'Holders'))
                os.unlink(self.etc('50-fixed.conf'))
                self.call('Reload')
                self.wait_mdev(U1, 'State', 'blocked')
                reason = self.mdev(U1, 'StateReason')
                self.assertIn('pid %d (sleep) via /dev/vfio/devices/%s' % (p.pid, cdevs[0]), reason)
                self.H.barrier(c)
                self.assertIn(U1, self.H.t.mdev_uuids())
                self.assertFalse([w for w in self.mdev_writes() if U1 in w[0]])
                p.kill()
                p.wait()
                self.call('Apply')
                c.wait_for(lambda: U1 not in self.H.t.mdev_uuids(), 30, 'removed once released')

        def test_foreign_never_touched(self):
                """An instance made by hand on a parent that a Count= rule uses is counted, never removed,
                even when its UUID is one hostdevd would pick or a rule is removed."""
                c = self.start({'50-count.conf': mdev_conf(Parent=MTTY, Type='mtty-1', Count=1)})
                c.wait_for(lambda: len(self.typed()) == 2, 30, 'the counted mdev')
                self.assertEqual(self.H.k.mdev_create_written(MTTY, 'mtty-1', U2), 0)
                self.wait_mdev(U2, 'Owner', 'foreign')
                os.unlink(self.etc('50-count.conf'))
                self.call('Reload')
                c.wait_for(lambda: len(self.typed()) == 2, 30, 'the counted mdev removed')
                self.assertEqual(sorted(self.H.t.mdev_uuids()), sorted([ACTIVE, U2]))
                self.assertFalse([w for w in self.mdev_writes() if U2 in w[0] or U2 in w[1]])
                self.assertEqual(self.mdev(U2, 'State'), 'converged')

        def test_malformed_keeps_last_good(self):
                c = self.start({'50-fixed.conf': mdev_conf(Parent=MTTY, Type='mtty-1', UUID=U1)})
                self.wait_mdev(U1, 'State', 'converged')
                gen = c.manager('Generation')
                n = len(self.mdev_writes())
                for name, text, where in [
                        ('70-bad.conf', '[Mdev]\nParent=mtty\nType=mtty-1\nUUID=%s\nCount=2\n' % U2, '70-bad.conf:'),
                        ('70-bad.conf', '[Mdev]\nParent=mtty\nType=mtty-1\nCount=many\n', '70-bad.conf:4'),
                        ('70-bad.conf', '[Mdev]\nParent=mtty\nType=no-such-type\nCount=1\n', '70-bad.conf:3'),
                        ('70-bad.conf', '[Mdev]\nParent=mtty\nType=mtty-1\nUUID=%s\n' % U1, '70-bad.conf:'),
                ]:
                        self.write_conf(name, text)
                        msg = self.assertDBusError(ERR + 'ConfigInvalid', 'Reload')
                        self.assertIn('70-bad.conf', msg)
                        errors = c.manager('ConfigErrors')
                        self.assertTrue(any(where in e for e in errors), (text, errors))
                        self.assertEqual(c.manager('Generation'), gen)
                self.H.barrier(c)
                self.assertEqual(len(self.mdev_writes()), n, 'a rejected reload wrote sysfs')
                self.assertEqual(sorted(self.H.t.mdev_uuids()), sorted([ACTIVE, U1]))
                self.assertEqual(self.mdev(U1, 'State'), 'converged')
                os.unlink(self.etc('70-bad.conf'))
                self.call('Reload')
                self.assertEqual(c.manager('ConfigErrors'), [])

        def test_unresolved_rule_holds_only_its_parents(self):
                """A rule that cannot be resolved (its type unknown at start) holds back removals on the
                parents it could select, and only there: an unwanted instance of hostdevd's on another
                parent is removed; one on a parent the bad rule names stays, pending, naming the rule."""
                c = self.start({'50-u1.conf': mdev_conf(Parent=MTTY, Type='mtty-1', UUID=U1)})
                self.wait_mdev(U1, 'State', 'converged')
                self.assertEqual(self.daemon.stop(), 0)
                os.unlink(self.etc('50-u1.conf'))
                self.write_conf('60-bad.conf', mdev_conf(Parent=T4, Type='nvidia-999', UUID=U2))
                c = self.start()
                c.wait_for(lambda: U1 not in self.H.t.mdev_uuids(), 30, 'U1 (mtty) removed despite 60-bad.conf (T4)')
                self.assertTrue(any('60-bad.conf' in e for e in c.manager('ConfigErrors')))
                self.assertEqual(self.H.t.mdev_uuids(), [ACTIVE])

                # The same with the bad rule on mtty: U1 is kept while it stands.
                self.assertEqual(self.daemon.stop(), 0)
                os.unlink(self.etc('60-bad.conf'))
                c = self.start({'50-u1.conf': mdev_conf(Parent=MTTY, Type='mtty-1', UUID=U1)})
                self.wait_mdev(U1, 'State', 'converged')
                self.assertEqual(self.daemon.stop(), 0)
                os.unlink(self.etc('50-u1.conf'))
                self.write_conf('60-bad.conf', mdev_conf(Parent=MTTY, Type='mtty-9', UUID=U2))
                n = len(self.mdev_writes())
                c = self.start()
                self.wait_mdev(U1, 'State', 'pending')
                self.H.barrier(c)
                self.assertIn('60-bad.conf:', self.mdev(U1, 'StateReason'))
                self.assertIn('cannot be resolved', self.mdev(U1, 'StateReason'))
                self.assertEqual(self.mdev_writes()[n:], [])
                self.assertEqual(sorted(self.H.t.mdev_uuids()), sorted([ACTIVE, U1]))

        def test_restart_adopts_without_writes(self):
                c = self.start({'50-fixed.conf': mdev_conf(Parent=MTTY, Type='mtty-2', UUID=U1),
                                '60-count.conf': mdev_conf(Parent=MTTY, Type='mtty-1', Count=2)})
                c.wait_for(lambda: len(self.typed()) == 4, 30, 'four mdevs')
                self.wait_mdev(U1, 'State', 'converged')
                uuids = self.H.t.mdev_uuids()
                self.assertEqual(self.daemon.stop(), 0)
                n = len(self.reactor.writes)
                self.start()
                self.H.barrier(self.c)
                for u in uuids:
                        self.wait_mdev(u, 'State', 'converged')
                self.assertEqual(self.H.t.mdev_uuids(), uuids)
                self.assertEqual(self.reactor.writes[n:], [], 'a restart wrote sysfs')
                for u in set(uuids) - {ACTIVE}:
                        self.assertEqual(self.mdev(u, 'Owner'), 'hostdevd')

        def test_vgpu_by_name_never_flaps(self):
                """[VGPU] Type= by name: once set, no VF lists the type any more (L40S-24Q: two per GPU);
                the name learnt from the VFs before still resolves it, so it converges and stays so:
                no 0 written, no ConfigErrors, and Apply, a Reload and a plan later find nothing to do."""
                self.start({'50-vgpu.conf': '[Match]\nVendor=10de\nDevice=26b9\n[VGPU]\nType=NVIDIA L40S-24Q\nCount=2\n'})
                k = self.H.k
                self.c.wait_for(lambda: sorted(k.vgpu_current(v) for v in VGPU_VFS) == [0, 0, 1163, 1163], 30,
                                lambda: 'two VFs with 1163 (now %r)' % [k.vgpu_current(v) for v in VGPU_VFS])
                self.assertEqual([k.vgpu_creatable(v) for v in VGPU_VFS], [[], [], [], []], 'no VF lists it')
                self.assertEqual(self.call('Apply'), 'converged')
                self.assertEqual(self.c.manager('ConfigErrors'), [])
                self.call('Reload')
                self.assertEqual(self.call('Apply'), 'converged')
                self.H.barrier(self.c)
                self.assertEqual(self.c.manager('ConfigErrors'), [])
                self.assertEqual(self.call('Plan')[1], [])
                self.assertEqual([k.vgpu_current(v) for v in VGPU_VFS], [1163, 1163, 0, 0])
                self.assertEqual([w[1] for w in self.mdev_writes()], ['1163', '1163'])

        def test_vgpu_by_name_after_restart(self):
                """The names learnt from the VFs are kept in the state directory: after a restart, when every
                VF that should carry the type does and none lists it, the by-name rule still resolves: no
                ConfigErrors, converged, nothing written."""
                self.start({'50-vgpu.conf': '[Match]\nVendor=10de\nDevice=26b9\n[VGPU]\nType=NVIDIA L40S-24Q\nCount=2\n'})
                k = self.H.k
                self.c.wait_for(lambda: sorted(k.vgpu_current(v) for v in VGPU_VFS) == [0, 0, 1163, 1163], 30,
                                lambda: 'two VFs with 1163 (now %r)' % [k.vgpu_current(v) for v in VGPU_VFS])
                self.assertEqual(self.call('Apply'), 'converged')
                with open(os.path.join(self.dirs['state'], 'vgpu-type-names.json')) as f:
                        self.assertEqual(json.load(f)['gpus'][VGPU_PF]['1163'], 'NVIDIA L40S-24Q')
                self.assertEqual(self.daemon.stop(), 0)
                n = len(self.reactor.writes)
                self.start()
                self.assertEqual(self.call('Apply'), 'converged')
                self.H.barrier(self.c)
                self.assertEqual(self.c.manager('ConfigErrors'), [])
                self.assertEqual(self.call('Plan')[1], [])
                self.assertEqual([k.vgpu_current(v) for v in VGPU_VFS], [1163, 1163, 0, 0])
                self.assertEqual(self.reactor.writes[n:], [], 'a restart wrote sysfs')

        def test_sigkill_mid_create_leaves_no_orphan(self):
                """SIGKILL while the create write is in the kernel, the rule removed, restart: the instance
                the kernel finished is hostdevd's (recorded before the write) and is removed."""
                self.reactor.stuck_create.add(U1)
                self.start({'50-fixed.conf': mdev_conf(Parent=MTTY, Type='mtty-1', UUID=U1)})
                self.reactor.wait_stuck()
                self.daemon.proc.kill()
                self.daemon.proc.wait()
                self.reactor.release_stuck()
                self.reactor.wait_written(('devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/create', U1, 0))
                self.assertIn(U1, self.typed())
                os.unlink(self.etc('50-fixed.conf'))
                c = self.start()
                c.wait_for(lambda: U1 not in self.H.t.mdev_uuids(), 30, 'the interrupted instance removed')
                self.assertEqual(self.H.t.mdev_uuids(), [ACTIVE])
                self.wait_manager('State', 'converged')

        def test_sigkill_mid_create_then_adopted(self):
                """The same with the rule kept: the restart adopts the instance without a write."""
                self.reactor.stuck_create.add(U1)
                self.start({'50-fixed.conf': mdev_conf(Parent=MTTY, Type='mtty-1', UUID=U1)})
                self.reactor.wait_stuck()
                self.daemon.proc.kill()
                self.daemon.proc.wait()
                self.reactor.release_stuck()
                self.reactor.wait_written(('devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/create', U1, 0))
                n = len(self.reactor.writes)
                self.start()
                self.wait_mdev(U1, 'State', 'converged')
                self.wait_mdev(U1, 'Owner', 'hostdevd')
                self.H.barrier(self.c)
                self.assertEqual(self.mdev_writes()[-1:], [('devices/virtual/mtty/mtty/mdev_supported_types/mtty-1/create',
                                                            U1, 0)])
                self.assertEqual([w for w in self.reactor.writes[n:] if 'mdev' in w[0] or 'mtty' in w[0]], [])

        def test_vgpu_on_vfs(self):
                """[VGPU] Type= (the type id), Count=2 across the GPU's VFs: two VFs get it, in address order,
                and it stays: an Apply afterwards writes nothing."""
                self.start({'50-vgpu.conf': '[Match]\nVendor=10de\nDevice=26b9\n[VGPU]\nType=1163\nCount=2\n'})
                k = self.H.k
                self.c.wait_for(lambda: sorted(k.vgpu_current(v) for v in VGPU_VFS) == [0, 0, 1163, 1163], 30,
                                lambda: 'two VFs with 1163 (now %r)' % [k.vgpu_current(v) for v in VGPU_VFS])
                self.assertEqual([k.vgpu_current(v) for v in VGPU_VFS], [1163, 1163, 0, 0], 'address order')
                self.assertEqual(self.call('Apply'), 'converged')
                self.H.barrier(self.c)
                self.assertEqual([k.vgpu_current(v) for v in VGPU_VFS], [1163, 1163, 0, 0])
                self.assertEqual([w[1] for w in self.mdev_writes()], ['1163', '1163'])


class MdevLateParent(MdevDaemonCase):
        """A parent that registers after hostdevd started gets its declared instances at once."""

        mtty_at_start = False

        def test_mtty_loads_late(self):
                c = self.start({'50-mtty.conf': mdev_conf(Parent=MTTY, Type='mtty-2', UUID=U1),
                                '60-count.conf': mdev_conf(Parent=MTTY, Type='mtty-1', Count=2)})
                self.H.barrier(c)
                self.assertEqual(self.H.t.mdev_uuids(), [ACTIVE])
                self.assertEqual(c.manager('ConfigErrors'), [])
                # mtty_dev_init(): device_register() ('add'), then mdev_register_parent(): the types,
                # the class link and 'change' MDEV_STATE=registered
                t, k = self.H.t, self.H.k
                k.before_send()
                t.tb.add_from_string('P: %s\nE: SUBSYSTEM=mtty\n' % MTTY_SYSPATH[4:])
                with open(os.path.join(h.env_path('RECORDINGS_DIR'), 'mdev-host.umockdev')) as f:
                        text = f.read()
                for line in text[text.index('P: /devices/virtual/mtty/mtty'):].splitlines():
                        if line.startswith('A: '):
                                name, value = line[3:].split('=', 1)
                                path = os.path.join(t.real(MTTY_SYSPATH), name)
                                os.makedirs(os.path.dirname(path), exist_ok=True)
                                t.write(path, value.replace('\\n', '\n'))
                t.link_outside(t.real(MTTY_SYSPATH), 'mtty')
                k.mdev_parent_capacity(MTTY, 24, {'mtty-1': 1, 'mtty-2': 2}, 'vfio_mtty')
                k.mdev_parent_registered(MTTY_SYSPATH)
                c.wait_for(lambda: len(self.typed()) == 4, 30,
                           lambda: 'the declared instances (now %r)' % self.H.t.mdev_uuids())
                self.wait_mdev(U1, 'State', 'converged')
                self.assertEqual(self.mdev_type_of(U1), 'mtty-2')

        def test_vf_gets_vendor_driver(self):
                """NumVFs on the idle GPU; its VFs bind the vendor driver; [VGPU] then sets their type: one file."""
                k = self.H.k
                k.vgpu_gpu(VGPU_PF_IDLE, NVIDIA_L40S_VGPU_TYPES)
                k.vf_host_drivers[VGPU_PF_IDLE] = 'nvidia'
                self.start({'50-gpu.conf': '[Match]\nAddress=%s\n[SRIOV]\nNumVFs=2\n' % VGPU_PF_IDLE,
                            '60-vgpu.conf': '[Match]\nVendor=10de\nDevice=26b9\nPF=%s\n[VGPU]\nType=1156\n'
                            % VGPU_PF_IDLE})

                def types():
                        # The fake kernel links virtfnN before the VF's own entries exist (as
                        # _set_sriov_numvfs() adds it): a VF half added reads as "not yet".
                        try:
                                return [k.vgpu_current(v) for v in k.vfs_of(VGPU_PF_IDLE)]
                        except FileNotFoundError:
                                return None

                self.c.wait_for(lambda: types() == [1156, 1156], 30,
                                lambda: 'both new VFs carry 1156 (now %r)' % types())


# A uevent listener (libudev through umockdev's preload, as hostdevd listens): one line per event.
MONITOR = r'''
import ctypes, select
u = ctypes.CDLL('libudev.so.1')
u.udev_new.restype = ctypes.c_void_p
u.udev_monitor_new_from_netlink.restype = ctypes.c_void_p
u.udev_monitor_new_from_netlink.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
u.udev_monitor_enable_receiving.argtypes = [ctypes.c_void_p]
u.udev_monitor_get_fd.argtypes = [ctypes.c_void_p]
u.udev_monitor_receive_device.restype = ctypes.c_void_p
u.udev_monitor_receive_device.argtypes = [ctypes.c_void_p]
for f in ('action', 'subsystem', 'syspath', 'driver'):
        getattr(u, 'udev_device_get_' + f).restype = ctypes.c_char_p
        getattr(u, 'udev_device_get_' + f).argtypes = [ctypes.c_void_p]
u.udev_device_unref.argtypes = [ctypes.c_void_p]
mon = u.udev_monitor_new_from_netlink(u.udev_new(), b'udev')
u.udev_monitor_enable_receiving(mon)
fd = u.udev_monitor_get_fd(mon)
print('ready', flush=True)
while True:
        select.select([fd], [], [])
        d = u.udev_monitor_receive_device(mon)
        if not d:
                continue
        g = lambda f: (getattr(u, 'udev_device_get_' + f)(d) or b'-').decode()
        print(g('action'), g('subsystem'), g('syspath'), g('driver'), flush=True)
        u.udev_device_unref(d)
'''


if __name__ == '__main__':
        unittest.main(verbosity=2)
