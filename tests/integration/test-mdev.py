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
