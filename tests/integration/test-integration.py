#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""hostdevd integration tests: the real daemon on a umockdev testbed.

Run through meson (`meson test --suite integration`), or by hand:
  HOSTDEVD=build/agent/hostdevd HOSTDEVCTL=build/cli/hostdevctl \\
  HOSTDEVD_XML=dbus/org.hostdevd1.xml RECORDINGS_DIR=umockdev-recordings \\
  umockdev-wrapper /usr/bin/python3 tests/integration/test-integration.py [Class[.test]] ...
"""
import os
import sys
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dbus  # noqa: E402

import hostdevtest as h  # noqa: E402
from hostdevtest import DEVICE_IFACE, MANAGER_IFACE, MDEV_IFACE, ROOT_PATH, device_path, mdev_path  # noqa: E402

RECORDINGS = ('this-host-virtio.umockdev', 'gpu-host.umockdev', 'mdev-host.umockdev')
ACTIVE_MDEV = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001'


class HostdevTestCase(unittest.TestCase):
        maxDiff = None

        def setUp(self):
                self.H = h.Harness()

        def tearDown(self):
                # Every daemon must stop cleanly on SIGTERM (under valgrind: without
                # errors or definite leaks, which make valgrind exit 1).
                try:
                        for d in self.H.daemons:
                                if d.proc.poll() is None:
                                        rc = d.stop()
                                        self.assertEqual(rc, 0, 'hostdevd exited %d\n%s' % (rc, d.output()))
                finally:
                        self.H.cleanup()

        def assertObjects(self, client, expected=None, what=''):
                expected = h.expected_objects(self.H.t) if expected is None else expected
                got = client.managed_objects()
                self.assertEqual(sorted(got), sorted(expected), 'object paths differ ' + what)
                for path in expected:
                        self.assertEqual(got[path], expected[path], '%s differs %s' % (path, what))

        def assertDevice(self, client, address):
                path = client.device_by_address(address)
                self.assertEqual(path, device_path(address))
                self.assertEqual(client.get_all(path, DEVICE_IFACE), h.expected_device(self.H.t, address))


class Recordings(HostdevTestCase):
        """Each recording's every function is published with the testbed's values."""

        def check_recording(self, name):
                self.H.recording(name)
                bus, daemon, c = self.H.start()
                t = self.H.t
                self.assertGreater(len(t.addresses()), 0)
                self.assertObjects(c, what='in ' + name)
                self.assertEqual(c.manager('DeviceCount'), len(t.addresses()))
                self.assertEqual(c.manager('MdevCount'), len(t.mdev_uuids()))
                self.assertEqual(c.manager('EventSource'), 'udev')
                self.assertEqual(c.manager('Rescans'), 0)
                self.assertEqual(c.manager('MdevTypes'), h.expected_manager_types(t))
                has_groups = bool(os.listdir(os.path.join(t.sys, 'kernel/iommu_groups')))
                self.assertEqual(c.manager('IommuEnabled'), has_groups)
                self.assertEqual(c.manager('IommuReason') == '', has_groups)
                self.assertEqual(c.manager('Version'), h.env_path('HOSTDEVD_VERSION'))
                groups = {}
                for a in t.addresses():
                        g = h.expected_device(t, a)['IommuGroup']
                        if g >= 0:
                                groups.setdefault(g, []).append(a)
                self.assertEqual(sorted(c.call(ROOT_PATH, MANAGER_IFACE, 'ListIommuGroups')),
                                 sorted((g, sorted(m)) for g, m in groups.items()))

                # hostdevctl agrees with the bus, key for key.
                r = h.hostdevctl(bus.address, 'list', '--json', check=0)
                listed = h.json_devices(r.stdout)
                self.assertEqual(sorted(listed), t.addresses())
                for a, props in listed.items():
                        exp = h.expected_device(t, a)
                        for k, v in props.items():
                                self.assertIn(k, exp, 'hostdevctl list --json: unknown key %s' % k)
                                # structs come as JSON objects (field names are the CLI's;
                                # fields in D-Bus order) or arrays
                                got = [list(x.values()) if isinstance(x, dict) else x for x in v] \
                                        if isinstance(v, list) else v
                                want = [list(x) if isinstance(x, tuple) else x for x in exp[k]] \
                                        if isinstance(exp[k], list) else exp[k]
                                self.assertEqual(got, want, '%s %s' % (a, k))
                # show by short address (domain 0 implied), any case
                first = t.addresses()[-1]
                r = h.hostdevctl(bus.address, 'show', first[5:].upper(), '--json', check=0)
                shown = h.json_devices('[' + r.stdout + ']')
                self.assertEqual(shown[first]['Driver'], h.expected_device(t, first)['Driver'])
                self.assertEqual(shown[first]['VendorId'], h.expected_device(t, first)['VendorId'])
                r = h.hostdevctl(bus.address, 'show', '0000:ee:1f.7', check=4)
                self.assertIn('0000:ee:1f.7', r.stderr)
                # a word that could be a device name ([Device] Name=) is looked up as one: not found, 4;
                # one that is neither an address nor a name is a usage error, 2
                self.assertIn("No device named 'not-an-address'",
                              h.hostdevctl(bus.address, 'show', 'not-an-address', check=4).stderr)
                h.hostdevctl(bus.address, 'show', 'not:an:address', check=2)
                with self.assertRaises(dbus.DBusException) as e:
                        c.device_by_address('0000:ee:1f.7')
                self.assertEqual(e.exception.get_dbus_name(), 'org.hostdevd1.Error.NotFound')
                with self.assertRaises(dbus.DBusException) as e:
                        c.device_by_address('zz:00.0')
                self.assertEqual(e.exception.get_dbus_name(), 'org.hostdevd1.Error.InvalidArgument')
                self.assertIn('zz:00.0', e.exception.get_dbus_message())
                return c

        def test_this_host(self):
                self.check_recording('this-host-virtio.umockdev')

        def test_gpu_host(self):
                c = self.check_recording('gpu-host.umockdev')
                # spot checks that the oracle itself read what the recording says
                gpu = c.get_all(c.device_by_address('01:00.0'), DEVICE_IFACE)
                self.assertEqual((gpu['VendorId'], gpu['DeviceId'], gpu['Class']), (0x10de, 0x2236, 0x030200))
                self.assertEqual(gpu['IommuGroupPeers'], ['0000:01:00.1'])
                self.assertEqual(gpu['PhysicalSlot'], '1')
                self.assertIn((1, 'memory', 32 << 30, True, True), gpu['Bars'])
                self.assertFalse(gpu['BootVga'])
                self.assertTrue(c.get(c.device_by_address('00:02.0'), DEVICE_IFACE, 'BootVga'))
                pf = c.get_all(c.device_by_address('3b:00.0'), DEVICE_IFACE)
                self.assertEqual(pf['Serial'], '00-1b-21-ff-fe-a1-b2-c3')
                self.assertEqual((pf['SriovRole'], pf['SriovNumVFs'], pf['SriovTotalVFs']), ('pf', 4, 64))
                self.assertEqual(pf['VirtFns'], ['0000:3b:02.%d' % i for i in range(4)])
                vf = c.get_all(c.device_by_address('3b:02.3'), DEVICE_IFACE)
                self.assertEqual((vf['SriovRole'], vf['PhysFn'], vf['VFIndex']), ('vf', '0000:3b:00.0', 3))

        def test_mdev_host(self):
                c = self.check_recording('mdev-host.umockdev')
                path = c.call(ROOT_PATH, MANAGER_IFACE, 'GetMdevByUuid', ACTIVE_MDEV.upper())
                self.assertEqual(path, mdev_path(ACTIVE_MDEV))
                m = c.get_all(path, MDEV_IFACE)
                self.assertEqual((m['Type'], m['Parent'], m['Driver'], m['IommuGroup']),
                                 ('nvidia-222', '0000:41:00.0', 'vfio_mdev', 21))
                types = {x[0]: x for x in c.get(c.device_by_address('41:00.0'), DEVICE_IFACE, 'MdevTypes')}
                self.assertEqual(types['nvidia-222'][4], 15)
                self.assertEqual(types['nvidia-222'][1], 'GRID T4-1B')
                self.assertIn(('mtty', 'mtty-2', 'Dual port serial', '', 'vfio-pci', 12), c.manager('MdevTypes'))
                with self.assertRaises(dbus.DBusException) as e:
                        c.call(ROOT_PATH, MANAGER_IFACE, 'GetMdevByUuid', '00000000-0000-0000-0000-000000000001')
                self.assertEqual(e.exception.get_dbus_name(), 'org.hostdevd1.Error.NotFound')
                with self.assertRaises(dbus.DBusException) as e:
                        c.call(ROOT_PATH, MANAGER_IFACE, 'GetMdevByUuid', 'no-uuid')
                self.assertEqual(e.exception.get_dbus_name(), 'org.hostdevd1.Error.InvalidArgument')


class Events(HostdevTestCase):
        """uevents from the fake kernel become exactly the right D-Bus signals."""

        def setUp(self):
                super().setUp()
                self.H.recording('gpu-host.umockdev')
                self.H.recording('mdev-host.umockdev')
                self.H.add_sentinel()
                self.bus, self.daemon, self.c = self.H.start()
                self.H.pace_with(self.c)

        def changes_since(self, since, ignore_sentinel=True):
                """{path: [changed dicts]} of PropertiesChanged since |since|."""
                out = {}
                for m, p, i, a in self.c.signals[since:]:
                        if m == 'PropertiesChanged':
                                if ignore_sentinel and p == device_path(h.Harness.SENTINEL):
                                        continue
                                out.setdefault(p, []).append(a[1])
                return out

        def test_bind_unbind(self):
                gpu, audio = '0000:01:00.0', '0000:01:00.1'
                since = len(self.c.signals)
                self.H.k.unbind(gpu)
                self.H.k.bind(gpu, 'vfio-pci')
                self.c.wait_property(device_path(gpu), DEVICE_IFACE, 'Driver', 'vfio-pci', since)
                self.H.barrier(self.c)
                changes = self.changes_since(since)
                self.assertEqual(list(changes), [device_path(gpu)], 'only the GPU changed')
                last = changes[device_path(gpu)][-1]
                self.assertEqual(last['Driver'], 'vfio-pci')
                self.assertEqual(last['VfioGroup'], '/dev/vfio/2')
                self.assertDevice(self.c, gpu)
                self.assertDevice(self.c, audio)

                since = len(self.c.signals)
                self.H.k.unbind(gpu)
                self.c.wait_property(device_path(gpu), DEVICE_IFACE, 'Driver', '', since)
                self.H.barrier(self.c)
                changes = self.changes_since(since)
                self.assertEqual(list(changes), [device_path(gpu)])
                self.assertEqual(changes[device_path(gpu)][-1]['VfioGroup'], '')
                self.assertEqual(self.c.get(device_path(gpu), DEVICE_IFACE, 'Driver'), '')

        def test_hot_add_remove(self):
                addr = '0000:5e:00.0'
                since = len(self.c.signals)
                self.H.t.add_slot('9', '0000:5e:00')
                self.H.k.hot_add('devices/pci0000:5d/' + addr, 0x15b3, 0x101d, 0x020000, driver='mlx5_core',
                                 group=40, numa=1, reset='flr', bars={0: (0x3a000000000, 32 << 20, h.MEM64P)})
                s = self.c.wait_signal(lambda s: s[0] == 'InterfacesAdded' and s[3][0] == device_path(addr),
                                       since, what='InterfacesAdded ' + addr)
                props = s[3][1][DEVICE_IFACE]
                exp = h.expected_device(self.H.t, addr)
                for k in ('Address', 'VendorId', 'DeviceId', 'Class', 'IommuGroup', 'NumaNode', 'PhysicalSlot',
                          'Bars', 'ResetMethods', 'SysfsPath', 'VendorName'):
                        self.assertEqual(props[k], exp[k], k)
                # 'bind' follows 'add' at once: a slow daemon may already read the driver
                # on 'add' (then no PropertiesChanged follows), so wait for the value.
                self.c.wait_for(lambda: self.c.get(device_path(addr), DEVICE_IFACE, 'Driver') == 'mlx5_core',
                                10, 'Driver = mlx5_core')
                self.H.barrier(self.c)
                self.assertDevice(self.c, addr)
                self.assertEqual(self.c.manager('DeviceCount'), len(self.H.t.addresses()))

                since = len(self.c.signals)
                self.H.k.hot_remove(addr)
                self.c.wait_signal(lambda s: s[0] == 'InterfacesRemoved' and s[3][0] == device_path(addr),
                                   since, what='InterfacesRemoved ' + addr)
                self.assertIn(DEVICE_IFACE, [s for s in self.c.signals[since:] if s[0] == 'InterfacesRemoved'][-1][3][1])
                with self.assertRaises(dbus.DBusException):
                        self.c.device_by_address(addr)
                self.assertEqual(self.c.manager('DeviceCount'), len(self.H.t.addresses()))
                self.assertObjects(self.c)

        def test_group_peer_joins(self):
                """A hot-added function in an existing group shows up in its peers' IommuGroupPeers."""
                since = len(self.c.signals)
                self.H.k.hot_add('devices/pci0000:00/0000:00:01.0/0000:01:00.2', 0x10de, 0x1ad6, 0x0c0330,
                                 group=2)
                self.c.wait_signal(lambda s: s[0] == 'InterfacesAdded' and s[3][0] == device_path('0000:01:00.2'),
                                   since)
                self.c.wait_property(device_path('0000:01:00.0'), DEVICE_IFACE, 'IommuGroupPeers',
                                     ['0000:01:00.1', '0000:01:00.2'], since)
                self.H.barrier(self.c)
                self.assertObjects(self.c)

        def test_sriov_vfs(self):
                pf = '0000:3b:00.0'
                since = len(self.c.signals)
                self.H.k.set_sriov_numvfs(pf, 0)
                for i in range(4):
                        vf = '0000:3b:02.%d' % i
                        self.c.wait_signal(lambda s, vf=vf: s[0] == 'InterfacesRemoved' and s[3][0] == device_path(vf),
                                           since, what='VF %s removed' % vf)
                self.c.wait_property(device_path(pf), DEVICE_IFACE, 'SriovNumVFs', 0, since)
                self.H.barrier(self.c)
                self.assertEqual(self.c.get(device_path(pf), DEVICE_IFACE, 'VirtFns'), [])

                since = len(self.c.signals)
                vfs = self.H.k.set_sriov_numvfs(pf, 8, vf_driver='vfio-pci', first_group=60)
                self.assertEqual(vfs[-1], '0000:3b:02.7')
                for i, vf in enumerate(vfs):
                        s = self.c.wait_signal(lambda s, vf=vf: s[0] == 'InterfacesAdded'
                                               and s[3][0] == device_path(vf), since, what='VF %s added' % vf)
                        props = s[3][1][DEVICE_IFACE]
                        self.assertEqual((props['PhysFn'], props['VFIndex'], props['SriovRole']), (pf, i, 'vf'))
                self.c.wait_property(device_path(pf), DEVICE_IFACE, 'SriovNumVFs', 8, since)
                self.H.barrier(self.c)
                self.assertEqual(self.c.get(device_path(pf), DEVICE_IFACE, 'VirtFns'), vfs)
                for vf in vfs:
                        self.assertDevice(self.c, vf)
                self.assertEqual(self.c.get(device_path(vfs[5]), DEVICE_IFACE, 'VfioGroup'), '/dev/vfio/65')
                self.assertObjects(self.c)

        def test_mdev_create_remove(self):
                parent, uuid = '0000:41:00.0', 'c0ffee00-1234-4abc-8def-0123456789ab'
                since = len(self.c.signals)
                self.H.k.mdev_create(parent, 'nvidia-223', uuid, driver='vfio_mdev', group=70)
                s = self.c.wait_signal(lambda s: s[0] == 'InterfacesAdded' and s[3][0] == mdev_path(uuid), since,
                                       what='mdev added')
                props = s[3][1][MDEV_IFACE]
                self.assertEqual((props['Uuid'], props['Type'], props['Parent'], props['ParentDevice']),
                                 (uuid, 'nvidia-223', parent, device_path(parent)))
                # the parent's available_instances follows (7 left of 8)
                self.c.wait_for(lambda: dict((x[0], x[4]) for x in self.c.get(
                        device_path(parent), DEVICE_IFACE, 'MdevTypes'))['nvidia-223'] == 7, 10,
                        'nvidia-223 available_instances = 7')
                self.H.barrier(self.c)
                self.assertEqual(self.c.manager('MdevCount'), 2)
                self.assertEqual(self.c.get_all(mdev_path(uuid), MDEV_IFACE), h.expected_mdev(self.H.t, uuid))
                self.assertEqual(self.c.manager('MdevTypes'), h.expected_manager_types(self.H.t))
                self.assertIn(device_path(parent), self.changes_since(since))

                since = len(self.c.signals)
                self.H.k.mdev_remove(uuid)
                self.c.wait_signal(lambda s: s[0] == 'InterfacesRemoved' and s[3][0] == mdev_path(uuid), since,
                                   what='mdev removed')
                self.H.barrier(self.c)
                self.assertEqual(dict((x[0], x[4]) for x in self.c.get(
                        device_path(parent), DEVICE_IFACE, 'MdevTypes'))['nvidia-223'], 8)
                self.assertEqual(self.c.manager('MdevCount'), 1)
                self.assertObjects(self.c)

        def test_mdev_type_link_after_events(self):
                # Linux 6.1 creates the mdev_type link after the mdev's last uevent: the daemon must
                # still learn the type, without an event, and not keep an error for the missing link.
                parent, uuid = '0000:41:00.0', 'c0ffee00-1234-4abc-8def-0123456789ac'
                since = len(self.c.signals)
                self.H.k.mdev_create(parent, 'nvidia-223', uuid, driver='vfio_mdev', group=71,
                                     late_type_link=True)
                self.c.wait_signal(lambda s: s[0] == 'InterfacesAdded' and s[3][0] == mdev_path(uuid), since,
                                   what='mdev added')
                self.c.wait_for(lambda: self.c.get(mdev_path(uuid), MDEV_IFACE, 'Type') == 'nvidia-223', 10,
                                'Type learnt after the mdev_type link appeared')
                self.assertEqual(self.c.get(mdev_path(uuid), MDEV_IFACE, 'Errors'), [])
                self.assertEqual(self.c.get_all(mdev_path(uuid), MDEV_IFACE), h.expected_mdev(self.H.t, uuid))
                self.H.k.mdev_remove(uuid)
                self.c.wait_signal(lambda s: s[0] == 'InterfacesRemoved' and s[3][0] == mdev_path(uuid), since,
                                   what='mdev removed')
                self.assertObjects(self.c)

        def test_garbage_vendor(self):
                addr = '0000:6a:00.0'
                since = len(self.c.signals)
                self.H.t.pre_link('devices/pci0000:6a/' + addr, group=50)
                text = h.pci_text('devices/pci0000:6a/' + addr, 0x1234, 0x5678, 0x020000, group=50)
                self.H.t.tb.add_from_string(text.replace('A: vendor=0x1234\\n', 'A: vendor=zz\\n'))
                s = self.c.wait_signal(lambda s: s[0] == 'InterfacesAdded' and s[3][0] == device_path(addr), since,
                                       what='garbage device added')
                errors = s[3][1][DEVICE_IFACE]['Errors']
                self.assertTrue(any('vendor' in e and "'zz'" in e for e in errors), errors)
                # everything that parsed is still there
                self.assertEqual(s[3][1][DEVICE_IFACE]['DeviceId'], 0x5678)
                self.assertEqual(s[3][1][DEVICE_IFACE]['IommuGroup'], 50)
                # and the daemon still answers
                self.assertEqual(self.c.manager('DeviceCount'), len(self.H.t.addresses()))
                self.assertEqual(self.c.device_by_address(addr), device_path(addr))
                self.H.barrier(self.c)

        def test_fresh_daemon_agrees(self):
                """Invariant: after a sequence of events, the model equals what a fresh hostdevd reads."""
                k = self.H.k
                k.bind('0000:01:00.0', 'vfio-pci')
                k.unbind('0000:01:00.1')
                k.set_driver_override('0000:01:00.1', 'vfio-pci')
                k.bind('0000:01:00.1', 'vfio-pci')
                k.set_sriov_numvfs('0000:3b:00.0', 0)
                k.set_sriov_numvfs('0000:3b:00.0', 2, vf_driver='iavf', first_group=80)
                k.hot_remove('0000:02:00.0')
                k.hot_add('devices/pci0000:00/0000:00:03.0/0000:02:00.0', 0x144d, 0xa824, 0x010802,
                          driver='nvme', group=5)
                k.mdev_create('0000:41:00.0', 'nvidia-222', '11111111-2222-4333-8444-555555555555',
                              driver='vfio_mdev', group=90)
                k.mdev_remove(ACTIVE_MDEV)
                self.H.barrier(self.c)
                live = self.c.managed_objects()
                self.assertObjects(self.c, what='(live daemon vs testbed)')
                _, _, fresh = self.H.start()
                self.assertEqual(fresh.managed_objects(), live)
                for prop in ('DeviceCount', 'MdevCount', 'MdevTypes', 'IommuEnabled'):
                        self.assertEqual(fresh.manager(prop), self.c.manager(prop), prop)


class Storm(HostdevTestCase):
        """500+ bind/unbind uevents back to back (in bursts of Kernel.burst, the most
        umockdev's sender can queue, see Kernel.__init__): the last state wins,
        signals coalesce."""

        N = 501

        def test_storm(self):
                self.H.recording('gpu-host.umockdev')
                self.H.add_sentinel()
                bus, daemon, c = self.H.start()
                self.H.pace_with(c)
                addr = '0000:02:00.0'
                self.H.k.unbind(addr)
                self.H.barrier(c)
                since = len(c.signals)
                for i in range(self.N):
                        if i % 2 == 0:
                                self.H.k.bind(addr, 'vfio-pci')
                        else:
                                self.H.k.unbind(addr)
                self.H.barrier(c, limit=120)
                self.assertEqual(c.get(device_path(addr), DEVICE_IFACE, 'Driver'), 'vfio-pci')
                changes = [ch for ch, _ in c.properties_changed(device_path(addr), since)]
                driver_changes = [ch['Driver'] for ch in changes if 'Driver' in ch]
                self.assertGreaterEqual(len(driver_changes), 1)
                self.assertLessEqual(len(driver_changes), self.N)
                self.assertEqual(driver_changes[-1], 'vfio-pci', 'the last signal carries the final state')
                # no signal for any other device
                others = {p for m, p, i, a in c.signals[since:]
                          if m == 'PropertiesChanged' and p not in (device_path(addr), device_path(h.Harness.SENTINEL))}
                self.assertEqual(others, set())
                self.assertObjects(c)
                sys.stderr.write('\nstorm: %d uevents -> %d PropertiesChanged(Driver)\n'
                                 % (self.N, len(driver_changes)))


class Enobufs(HostdevTestCase):
        """Lost uevents (ENOBUFS) trigger a rescan that repairs the model."""

        def test_enobufs_rescan(self):
                shim = os.environ.get('HOSTDEVTEST_ENOBUFS_SHIM')
                if not shim:
                        self.skipTest('HOSTDEVTEST_ENOBUFS_SHIM not set')
                self.H.recording('gpu-host.umockdev')
                self.H.add_sentinel()
                trigger = os.path.join(self.H.workdir, 'enobufs')
                preload = ' '.join(filter(None, [shim, os.environ.get('LD_PRELOAD')]))
                bus, daemon, c = self.H.start(env={'LD_PRELOAD': preload,
                                                   'HOSTDEVTEST_ENOBUFS_TRIGGER': trigger})
                self.assertEqual(c.manager('Rescans'), 0)
                # State changes whose uevents are lost in the "overflow". (A real
                # overflow cannot be provoked under umockdev: its sender aborts with
                # EAGAIN once the listener is max_dgram_qlen datagrams behind.)
                self.H.k.muted = True
                self.H.k.unbind('0000:01:00.0')
                self.H.k.bind('0000:01:00.0', 'vfio-pci')
                self.H.k.hot_remove('0000:02:00.0')
                self.H.k.set_sriov_numvfs('0000:3b:00.0', 0)
                self.H.k.muted = False
                since = len(c.signals)
                with open(trigger, 'w'):
                        pass
                # The next uevent wakes hostdevd; its read drains the queue and fails
                # with ENOBUFS; hostdevd must rescan. The sentinel's own change is only
                # seen through that rescan.
                self.H.barrier(c)
                self.assertFalse(os.path.exists(trigger), 'the injected ENOBUFS was not consumed')
                # the lost changes arrive as signals from the rescan
                c.wait_signal(lambda s: s[0] == 'InterfacesRemoved' and s[3][0] == device_path('0000:02:00.0'),
                              since, what='NVMe removal seen by the rescan')
                c.wait_property(device_path('0000:01:00.0'), DEVICE_IFACE, 'Driver', 'vfio-pci', since)
                self.assertEqual(c.manager('Rescans'), 1)
                self.assertObjects(c, what='after the rescan')
                self.assertEqual(c.get(device_path('0000:01:00.0'), DEVICE_IFACE, 'Driver'), 'vfio-pci')
                self.assertEqual(c.get(device_path('0000:3b:00.0'), DEVICE_IFACE, 'SriovNumVFs'), 0)


class Large(HostdevTestCase):
        """4096 functions, built device by device."""

        def test_4096(self):
                n = h.build_large(self.H.t, 4096)
                bus, daemon, c = self.H.start(ready_timeout=120)
                self.assertEqual(c.manager('DeviceCount'), n)
                objs = c.managed_objects()
                self.assertEqual(len(objs), n)
                exp = h.expected_objects(self.H.t)
                self.assertEqual(sorted(objs), sorted(exp))
                for path in (device_path('0000:10:00.0'), device_path('0000:1f:1f.7'), device_path('0000:17:0a.3')):
                        self.assertEqual(objs[path], exp[path])
                self.assertEqual(len(c.call(ROOT_PATH, MANAGER_IFACE, 'ListIommuGroups')), n // 8)
                sys.stderr.write('\n4096 functions: READY after %.2f s\n' % daemon.ready_s)


# ---------------------------------------------------------------------------
# The XML contract


def effective_emits(iface_el, prop_el):
        name = 'org.freedesktop.DBus.Property.EmitsChangedSignal'
        for el in (prop_el, iface_el):
                for a in el.findall('annotation'):
                        if a.get('name') == name:
                                return a.get('value')
        return 'true'


def interface_shapes(xml_text):
        """{interface: {'methods', 'signals', 'properties'}} without org.freedesktop.DBus.*."""
        root = ET.fromstring(xml_text)
        out = {}
        for i in root.findall('interface'):
                name = i.get('name')
                if name.startswith('org.freedesktop.DBus.'):
                        continue
                out[name] = {
                        'methods': {m.get('name'): [(a.get('name'), a.get('type'), a.get('direction', 'in'))
                                                    for a in m.findall('arg')] for m in i.findall('method')},
                        'signals': {s.get('name'): [(a.get('name'), a.get('type')) for a in s.findall('arg')]
                                    for s in i.findall('signal')},
                        'properties': {p.get('name'): (p.get('type'), p.get('access'), effective_emits(i, p))
                                       for p in i.findall('property')},
                }
        return out


def contract_diff(want, got):
        """Human-readable differences between two interface_shapes() results ([] if equal)."""
        diffs = []
        for iface in sorted(set(want) | set(got)):
                if iface not in got:
                        diffs.append('%s: missing from the daemon' % iface)
                        continue
                if iface not in want:
                        diffs.append('%s: not in the contract' % iface)
                        continue
                for kind in ('methods', 'signals', 'properties'):
                        w, g = want[iface][kind], got[iface][kind]
                        for member in sorted(set(w) | set(g)):
                                if w.get(member) != g.get(member):
                                        diffs.append('%s.%s (%s): contract %r, daemon %r'
                                                     % (iface, member, kind[:-1], w.get(member), g.get(member)))
        return diffs


class Contract(HostdevTestCase):
        """The live daemon's introspection equals dbus/org.hostdevd1.xml."""

        def test_contract(self):
                with open(h.env_path('HOSTDEVD_XML')) as f:
                        contract = interface_shapes(f.read())
                self.H.recording('mdev-host.umockdev')
                bus, daemon, c = self.H.start()
                objects = {ROOT_PATH: {'org.hostdevd1.Manager'},
                           c.device_by_address('0000:41:00.0'): {'org.hostdevd1.Device'},
                           c.call(ROOT_PATH, MANAGER_IFACE, 'GetMdevByUuid', ACTIVE_MDEV): {'org.hostdevd1.Mdev'},
                           h.LOG_CONTROL_PATH: {'org.freedesktop.LogControl1'}}
                live = {}
                for path, ifaces in objects.items():
                        xml_text = c.call(path, 'org.freedesktop.DBus.Introspectable', 'Introspect')
                        shapes = interface_shapes(xml_text)
                        self.assertEqual(set(shapes), ifaces, 'interfaces on %s' % path)
                        live.update(shapes)
                # A Lease object exists only while a lease does: test-lease.py compares that interface.
                contract.pop('org.hostdevd1.Lease', None)
                diffs = contract_diff(contract, live)
                self.assertEqual(diffs, [], '\n'.join(diffs))


class ContractSelfTest(unittest.TestCase):
        """The contract comparison notices each kind of difference (no daemon needed)."""

        def test_detects_differences(self):
                with open(h.env_path('HOSTDEVD_XML')) as f:
                        text = f.read()
                base = interface_shapes(text)
                self.assertEqual(contract_diff(base, interface_shapes(text)), [])
                self.assertIn('org.freedesktop.LogControl1', base)
                self.assertEqual(base['org.hostdevd1.Device']['properties']['Address'], ('s', 'read', 'const'))
                self.assertEqual(base['org.hostdevd1.Device']['properties']['Driver'], ('s', 'read', 'true'))
                mutations = [
                        ('name="Driver" type="s"', 'name="Driver" type="o"'),                     # signature
                        ('<arg name="address" type="s" direction="in"/>',
                         '<arg name="addr" type="s" direction="in"/>'),                          # arg name
                        ('<arg name="device" type="o" direction="out"/>',
                         '<arg name="device" type="o" direction="in"/>'),                        # direction
                        ('name="LogLevel" type="s" access="readwrite"', 'name="LogLevel" type="s" access="read"'),
                        ('<property name="Rescans" type="t" access="read"/>', ''),                # member gone
                        ('<property name="Uuid" type="s" access="read">\n      <annotation '
                         'name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="const"/>',
                         '<property name="Uuid" type="s" access="read">'),                       # annotation
                        ('<interface name="org.hostdevd1.Mdev">', '<interface name="org.hostdevd1.Mdev2">'),
                ]
                for old, new in mutations:
                        self.assertIn(old, text)
                        diffs = contract_diff(base, interface_shapes(text.replace(old, new, 1)))
                        self.assertNotEqual(diffs, [], 'not detected: %r -> %r' % (old, new))


if __name__ == '__main__':
        unittest.main(verbosity=2)
