#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Handoff to the VMM on the bus (issue 15): Manager.CheckFingerprint, Manager.GetDevicesByVfioNode.

The fingerprint oracle here is computed from the testbed's files with Python's hashlib, by the
rules in src/handoff.h, not read back from the daemon.

Run through meson (`meson test integration-handoff`), or by hand as test-integration.py says.
"""
import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dbus  # noqa: E402

import hostdevtest as h  # noqa: E402
from hostdevtest import MANAGER_IFACE, ROOT_PATH, device_path, mdev_path  # noqa: E402

GPU, AUDIO = '0000:01:00.0', '0000:01:00.1'   # gpu-host.umockdev: group 2
VF = '0000:05:00.0'                          # added here: vfio-pci, group 30, cdev vfio0
ACTIVE_MDEV = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001'   # mdev-host.umockdev: group 21


def bar_kind(index, kind, is64, pref):
        if kind == 'io':
                return 'io'
        if index == 6:
                return 'rom'
        return ('mem64' if is64 else 'mem32') + ('-pref' if pref else '')


def pci_line(functions):
        """functions: [(guest function number, expected_device dict)]."""
        out = 'pci'
        for i, (fn, d) in enumerate(functions):
                out += '%s fn%d %04x:%04x sub %04x:%04x class %06x rev %02x' % (
                        ' /' if i else '', fn, d['VendorId'], d['DeviceId'], d['SubsystemVendorId'],
                        d['SubsystemDeviceId'], d['Class'], d['Revision'])
                for index, kind, size, is64, pref in d['Bars']:
                        out += ' bar%d %s 0x%x' % (index, bar_kind(index, kind, is64, pref), size)
        return out


def oracle_fingerprint(t, addresses, mdev_types=()):
        devs = {a: h.expected_device(t, a) for a in addresses}
        slots = {}
        for a in sorted(addresses):
                slots.setdefault(a.rsplit('.', 1)[0], []).append(a)
        lines = []
        for fns in slots.values():
                grouped = [a for a in fns if devs[a]['SriovRole'] != 'vf']
                if len(grouped) > 1 and any(a.endswith('.0') for a in grouped):
                        lines.append(pci_line([(int(a[-1]), devs[a]) for a in grouped]))
                        fns = [a for a in fns if a not in grouped]
                lines += [pci_line([(0, devs[a])]) for a in fns]
        lines += ['mdev type ' + m for m in mdev_types]
        lines.sort()
        text = 'hostdevd-fingerprint v1\n' + ''.join(line + '\n' for line in lines)
        units = sorted(hashlib.sha256(line.encode()).hexdigest()[:16] for line in lines)
        return 'v1:%s:%s' % (hashlib.sha256(text.encode()).hexdigest(), ','.join(units)), lines


class Handoff(unittest.TestCase):
        maxDiff = None

        def setUp(self):
                self.H = h.Harness()
                self.H.recording('gpu-host.umockdev')
                self.H.recording('mdev-host.umockdev')
                t = self.H.t
                path = t.add_pci('devices/pci0000:00/' + VF, 0x8086, 0x154c, 0x020000,
                                 driver='vfio-pci', group=30,
                                 bars={0: (0x3a000000000, 0x10000, h.MEM64P), 3: (0x3a000010000, 0x4000, h.MEM64P)})
                os.makedirs(t.real(path) + '/vfio-dev/vfio0')
                t.write(t.real(path) + '/vfio-dev/vfio0/dev', '510:0\n')
                # /sys/dev/char (Documentation/ABI/testing/sysfs-dev): the group node and the cdev.
                os.makedirs(os.path.join(t.sys, 'dev/char'), exist_ok=True)
                os.makedirs(os.path.join(t.sys, 'devices/virtual/vfio/30'), exist_ok=True)
                os.makedirs(os.path.join(t.sys, 'devices/virtual/tty/tty1'), exist_ok=True)
                for num, target in (('511:30', 'devices/virtual/vfio/30'),
                                    ('510:0', os.path.relpath(t.real(path), t.sys) + '/vfio-dev/vfio0'),
                                    ('4:1', 'devices/virtual/tty/tty1')):
                        t.symlink('../../' + target, os.path.join(t.sys, 'dev/char', num))

        def tearDown(self):
                try:
                        for d in self.H.daemons:
                                if d.proc.poll() is None:
                                        rc = d.stop()
                                        self.assertEqual(rc, 0, 'hostdevd exited %d\n%s' % (rc, d.output()))
                finally:
                        self.H.cleanup()

        def assertBusError(self, name, fn, *args):
                with self.assertRaises(dbus.DBusException) as e:
                        fn(*args)
                self.assertEqual(e.exception.get_dbus_name(), name, str(e.exception))
                return e.exception.get_dbus_message()

        def check(self, c, devices, fingerprint):
                return c.call(ROOT_PATH, MANAGER_IFACE, 'CheckFingerprint', dbus.Array(devices, signature='s'),
                              fingerprint)

        def test_check_fingerprint(self):
                _, _, c = self.H.start()
                t = self.H.t
                mtype = c.get(mdev_path(ACTIVE_MDEV), h.MDEV_IFACE, 'Type')
                want, lines = oracle_fingerprint(t, [GPU, AUDIO, VF], [mtype])
                self.assertEqual(len(lines), 3)
                self.assertTrue(lines[1].startswith('pci fn0 10de:2236 ') and ' / fn1 10de:' in lines[1], lines)

                # Any order, any reference form.
                for devices in ([GPU, AUDIO, VF, ACTIVE_MDEV],
                                [ACTIVE_MDEV.upper(), '05:00.0', device_path(AUDIO), '01:00.0'],
                                [mdev_path(ACTIVE_MDEV), device_path(VF), AUDIO, device_path(GPU)]):
                        self.assertEqual(self.check(c, devices, want), (True, []), devices)

                # Fewer devices than the snapshot had: the missing unit, named by its hash.
                match, diff = self.check(c, [GPU, AUDIO, ACTIVE_MDEV], want)
                self.assertFalse(match)
                vf_unit = hashlib.sha256(pci_line([(0, h.expected_device(t, VF))]).encode()).hexdigest()[:16]
                self.assertEqual(diff, ['only in fingerprint: unit ' + vf_unit])

                # The GPU without its audio function is another guest device: both units differ.
                match, diff = self.check(c, [GPU, VF, ACTIVE_MDEV], want)
                self.assertFalse(match)
                self.assertIn('only here: ' + pci_line([(0, h.expected_device(t, GPU))]), diff)
                self.assertEqual(len(diff), 2, diff)

                # Malformed input, unknown devices: errors naming the value, never a silent mismatch.
                self.assertIn("'v1:nope'", self.assertBusError('org.hostdevd1.Error.InvalidArgument', self.check,
                                                               c, [GPU], 'v1:nope'))
                self.assertIn("'0000:77:00.0'", self.assertBusError('org.hostdevd1.Error.NotFound', self.check,
                                                                    c, ['0000:77:00.0'], want))
                self.assertIn("'01:00.0'", self.assertBusError('org.hostdevd1.Error.InvalidArgument', self.check,
                                                               c, [GPU, '01:00.0'], want))
                self.assertBusError('org.hostdevd1.Error.InvalidArgument', self.check, c, ['gpu!'], want)

        def test_fingerprint_survives_restart(self):
                """Another daemon reading the same host agrees (nothing of the process in it)."""
                t = self.H.t
                want, _ = oracle_fingerprint(t, [GPU, AUDIO])
                _, d1, c1 = self.H.start()
                self.assertEqual(self.check(c1, [AUDIO, GPU], want), (True, []))
                self.assertEqual(d1.stop(), 0)
                _, _, c2 = self.H.start()
                self.assertEqual(self.check(c2, [GPU, AUDIO], want), (True, []))

        def test_devices_by_vfio_node(self):
                _, _, c = self.H.start()

                def lookup(node):
                        return c.call(ROOT_PATH, MANAGER_IFACE, 'GetDevicesByVfioNode', node)

                self.assertEqual(lookup('/dev/vfio/2'), [device_path(GPU), device_path(AUDIO)])
                self.assertEqual(lookup('/dev/vfio/30'), [device_path(VF)])
                self.assertEqual(lookup('/dev/vfio/21'), [mdev_path(ACTIVE_MDEV)])
                self.assertEqual(lookup('/dev/vfio/devices/vfio0'), [device_path(VF)])
                # By device number, as fstat() on an open fd gives it.
                self.assertEqual(lookup('511:30'), [device_path(VF)])
                self.assertEqual(lookup('510:0'), [device_path(VF)])

                self.assertBusError('org.hostdevd1.Error.NotFound', lookup, '4:1')      # a tty
                self.assertBusError('org.hostdevd1.Error.NotFound', lookup, '9:9')      # no such device
                self.assertBusError('org.hostdevd1.Error.NotFound', lookup, '/dev/vfio/999')
                self.assertBusError('org.hostdevd1.Error.NotFound', lookup, '/dev/vfio/devices/vfio7')
                for bad in ('/dev/sda', '/dev/vfio/02', '/dev/vfio/x', '30', '1:2:3', ''):
                        self.assertIn(repr(bad) if bad else "''",
                                      self.assertBusError('org.hostdevd1.Error.InvalidArgument', lookup, bad))


if __name__ == '__main__':
        unittest.main(verbosity=2)
