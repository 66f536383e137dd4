#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Lease object's handoff (issue 15): QemuArgs, CloudHypervisorArgs, LibvirtHostdevXml, VfioPaths,
MmioWindow, Fingerprint and OpenVfioGroup on a real lease of a GPU and its audio function (a child
process as the VMM), on the reconciler's host with the fake kernel's write reactor.
Run through meson (`meson test integration-lease-handoff`)."""
import importlib.util
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dbus  # noqa: E402

import hostdevtest as h  # noqa: E402
from hostdevtest import MANAGER_IFACE, ROOT_PATH, device_path  # noqa: E402


def _load(name, file):
        spec = importlib.util.spec_from_file_location(
                name, os.path.join(os.path.dirname(os.path.abspath(__file__)), file))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod


R = _load('test_reconcile', 'test-reconcile.py')
HO = _load('test_handoff', 'test-handoff.py')

LEASE_IFACE = 'org.hostdevd1.Lease'
ERR = 'org.hostdevd1.Error.'
GPU, AUDIO = '0000:41:00.0', '0000:41:00.1'   # no driver, both in group 20
GROUP_NODE = '/dev/vfio/20'
G = 1 << 30
M = 1 << 20


class LeaseHandoff(R.ReconcileTestCase):
        def setUp(self):
                super().setUp()
                R.build_host(self.H)
                t = self.H.t
                # A large-BAR GPU: 16M registers, a 32G 64-bit prefetchable aperture, 32M more; its audio.
                t.add_pci('devices/pci0000:00/0000:00:01.0/' + GPU, 0x10de, 0x2204, 0x030000, group=20,
                          bars={0: (0xfb000000, 16 * M, h.MEM32), 1: (0x6000000000, 32 * G, h.MEM64P),
                                3: (0x6800000000, 32 * M, h.MEM64P)})
                t.add_pci('devices/pci0000:00/0000:00:01.0/' + AUDIO, 0x10de, 0x1aef, 0x040300, group=20,
                          bars={0: (0xfc080000, 0x4000, h.MEM32)})
                # The group node as the daemon (under umockdev) opens it: the testbed's /dev.
                os.makedirs(os.path.join(t.root, 'dev/vfio'), exist_ok=True)
                t.write(os.path.join(t.root, 'dev/vfio/20'), 'group 20 node\n')
                self.vmms = []

        def tearDown(self):
                for p in self.vmms:
                        if p.poll() is None:
                                p.kill()
                                p.wait()
                super().tearDown()

        def lease(self, **options):
                p = subprocess.Popen(['sleep', '600'], env=h.preload_free_env())
                self.vmms.append(p)
                fd = os.pidfd_open(p.pid)
                try:
                        opts = {'pidfd': dbus.types.UnixFd(fd)}
                        opts.update({k.replace('_', '-'): v for k, v in options.items()})
                        path, devices = self.call('Acquire', dbus.Array([AUDIO, GPU], signature='s'),
                                                  dbus.Dictionary(opts, signature='sv'))
                finally:
                        os.close(fd)
                self.assertEqual(list(devices), [GPU, AUDIO])
                return path

        def test_properties(self):
                # A name for the GPU ([Device] Name=): CheckFingerprint takes names too.
                self.start({'40-gpu.conf': R.conf({'Address': GPU}, {'Name': 'vm-gpu'})})
                path = self.lease()
                props = self.c.get_all(path, LEASE_IFACE)

                self.assertEqual(props['QemuArgs'], [
                        '-device', 'pcie-root-port,id=hostdevd-rp1,bus=pcie.0,addr=0x10.0x0,chassis=1,slot=1',
                        '-device', 'vfio-pci,host=%s,id=hostdevd-dev1,bus=hostdevd-rp1,addr=0x0.0x0,multifunction=on'
                        % GPU,
                        '-device', 'vfio-pci,host=%s,id=hostdevd-dev2,bus=hostdevd-rp1,addr=0x0.0x1' % AUDIO,
                        '-global', 'q35-pcihost.pci-hole64-size=128G'])
                self.assertEqual(props['CloudHypervisorArgs'], [
                        '--device', 'path=/sys/bus/pci/devices/%s/' % GPU,
                        '--device', 'path=/sys/bus/pci/devices/%s/' % AUDIO])
                xml = props['LibvirtHostdevXml']
                self.assertEqual(xml.count("<hostdev mode='subsystem' type='pci' managed='no'>"), 2)
                self.assertIn("<address domain='0x0000' bus='0x41' slot='0x00' function='0x1'/>", xml)
                self.assertEqual(props['VfioPaths'], [GROUP_NODE])

                below, above, hole, bars = props['MmioWindow']
                self.assertEqual(above, 32 * G + 32 * M)
                self.assertEqual(below, 17 * M)          # 16M + 16K, one port: rounded to 1M
                self.assertEqual(hole, 128 * G)
                self.assertIn((GPU, 1, 32 * G, 32 * G, True, True, True), bars)
                self.assertIn((AUDIO, 0, 0x4000, 0x4000, False, False, False), bars)

                want, _ = HO.oracle_fingerprint(self.H.t, [GPU, AUDIO])
                self.assertEqual(props['Fingerprint'], want)
                self.assertEqual(self.call('CheckFingerprint', dbus.Array(props['Devices'], signature='s'),
                                           props['Fingerprint']), (True, []))
                self.assertEqual(self.call('CheckFingerprint', dbus.Array([AUDIO, 'vm-gpu'], signature='s'),
                                           props['Fingerprint']), (True, []))
                self.assertIn("'vm-gpu'", self.assertDBusError(ERR + 'InvalidArgument', 'CheckFingerprint',
                                                                dbus.Array([GPU, 'vm-gpu'], signature='s'),
                                                                props['Fingerprint']))
                self.assertEqual(self.call('GetDevicesByVfioNode', GROUP_NODE), [device_path(GPU), device_path(AUDIO)])

        def test_handoff_not_in_signals(self):
                """The handoff properties are read, never sent: the lease's InterfacesAdded (sent while it is
                prepared) leaves them out, and its State change to "active" invalidates them."""
                handoff = ['QemuArgs', 'CloudHypervisorArgs', 'LibvirtHostdevXml', 'VfioPaths', 'MmioWindow',
                           'Fingerprint']
                self.start()
                since = len(self.c.signals)
                path = self.lease()
                added = self.c.wait_signal(lambda s: s[0] == 'InterfacesAdded' and s[3][0] == path, since,
                                           what='InterfacesAdded of the lease')
                props = added[3][1][LEASE_IFACE]
                self.assertEqual(props['State'], 'preparing')
                self.assertEqual(sorted(set(handoff) & set(props)), [])
                changed = self.c.wait_signal(
                        lambda s: s[0] == 'PropertiesChanged' and s[1] == path and s[3][1].get('State') == 'active',
                        since, what='State "active" of the lease')
                self.assertEqual(sorted(changed[3][2]), sorted(handoff))
                self.assertEqual(sorted(set(handoff) & set(changed[3][1])), [])
                # Read, they are there (test_properties checks their values).
                self.assertEqual(self.c.get_all(path, LEASE_IFACE)['VfioPaths'], [GROUP_NODE])

        def test_open_vfio_group(self):
                self.start()
                path = self.lease()
                lease = dbus.Interface(self.c.obj(path), LEASE_IFACE)
                for node in ('', GROUP_NODE):
                        fd = lease.OpenVfioGroup(node).take()
                        try:
                                self.assertEqual(os.read(fd, 100), b'group 20 node\n')
                        finally:
                                os.close(fd)
                for bad in ('/dev/vfio/10', '/dev/vfio/2O'):
                        with self.assertRaises(dbus.DBusException) as e:
                                lease.OpenVfioGroup(bad)
                        self.assertEqual(e.exception.get_dbus_name(), ERR + 'InvalidArgument')
                        self.assertIn(repr(bad), e.exception.get_dbus_message())
                # Another uid than the lease's owner (root here): refused before polkit is asked.
                r = self.nonroot_call('OpenVfioGroup', 's', '', path=path, iface=LEASE_IFACE)
                self.assertEqual(r.get('error'), R.ACCESS_DENIED, r)
                self.assertIn('belongs to uid 0', r['message'])
                # A lease that ended hands out nothing.
                self.call_lease(path, 'Release')
                with self.assertRaises(dbus.DBusException) as e:
                        lease.OpenVfioGroup('')
                self.assertIn(e.exception.get_dbus_name(), (ERR + 'NotFound', 'org.freedesktop.DBus.Error.UnknownObject',
                                                            'org.freedesktop.DBus.Error.UnknownMethod'))

        def test_hostdevctl_handoff(self):
                """hostdevctl handoff prints the lease's properties in each format."""
                import json
                self.start()
                path = self.lease()
                lid = path.rsplit('_', 1)[1]
                props = self.c.get_all(path, LEASE_IFACE)

                def ctl(*args, check=0):
                        return h.hostdevctl(self.bus.address, *args, check=check)

                qemu = ctl('handoff', lid).stdout
                self.assertEqual(qemu, ctl('handoff', path, '--format=qemu').stdout)
                self.assertEqual(qemu.splitlines(), [
                        '-device pcie-root-port,id=hostdevd-rp1,bus=pcie.0,addr=0x10.0x0,chassis=1,slot=1 \\',
                        '-device vfio-pci,host=%s,id=hostdevd-dev1,bus=hostdevd-rp1,addr=0x0.0x0,multifunction=on \\'
                        % GPU,
                        '-device vfio-pci,host=%s,id=hostdevd-dev2,bus=hostdevd-rp1,addr=0x0.0x1 \\' % AUDIO,
                        '-global q35-pcihost.pci-hole64-size=128G'])
                # What a shell makes of it is the property's argv again.
                argv = subprocess.run(['sh', '-c', 'printf "%s\\n" ' + qemu], capture_output=True, text=True,
                                      check=True).stdout.splitlines()
                self.assertEqual(argv, props['QemuArgs'])
                self.assertEqual(ctl('handoff', 'lease_' + lid, '--format=cloud-hypervisor').stdout.splitlines(), [
                        '--device path=/sys/bus/pci/devices/%s/ \\' % GPU,
                        '--device path=/sys/bus/pci/devices/%s/' % AUDIO])
                self.assertEqual(ctl('handoff', lid, '--format=libvirt').stdout, props['LibvirtHostdevXml'])
                j = json.loads(ctl('handoff', lid, '--format=json').stdout)
                self.assertEqual(j['lease'], path)
                self.assertEqual(j['devices'], [GPU, AUDIO])
                self.assertEqual(j['qemu'], props['QemuArgs'])
                self.assertEqual(j['cloud-hypervisor'], props['CloudHypervisorArgs'])
                self.assertEqual(j['libvirt'], props['LibvirtHostdevXml'])
                self.assertEqual(j['vfio-paths'], [GROUP_NODE])
                self.assertEqual(j['fingerprint'], props['Fingerprint'])
                self.assertEqual((j['mmio-window']['below-4g'], j['mmio-window']['above-4g'],
                                  j['mmio-window']['pci-hole64-size']), (17 * M, 32 * G + 32 * M, 128 * G))
                self.assertIn({'address': GPU, 'index': 1, 'size': 32 * G, 'alignment': 32 * G, '64bit': True,
                               'prefetchable': True, 'above-4g': True}, j['mmio-window']['bars'])
                self.assertEqual(json.loads(ctl('--json', 'handoff', lid).stdout), j)

                # bash completion offers the lease ids from the daemon's object tree.
                top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _hostdevctl; '
                          'printf "%s\\n" "${COMPREPLY[@]}"')
                r = subprocess.run(['bash', '-c', script, 'bash', os.path.join(top, 'completion', 'hostdevctl'),
                                    'hostdevctl', '--address', self.bus.address, 'handoff', ''],
                                   capture_output=True, text=True, env=h.preload_free_env(), timeout=60)
                self.assertEqual(r.stdout.split(), [lid], r.stderr)

                # Usage errors and a lease that is not there.
                self.assertIn("'yaml'", ctl('handoff', lid, '--format=yaml', check=2).stderr)
                self.assertIn("'lease_x'", ctl('handoff', 'lease_x', check=2).stderr)
                self.assertIn('does not apply', ctl('list', '--format=json', check=2).stderr)
                self.assertIn('No lease', ctl('handoff', '999', check=4).stderr)

        def test_vfio_owner(self):
                """"vfio-owner": the group node belongs to the lease's uid while it lasts, then goes back."""
                import json
                node = os.path.join(self.H.t.root, 'dev/vfio/20')
                os.chown(node, 65534, 65534)
                self.start()
                path = self.lease(vfio_owner=True)
                st = os.stat(node)
                self.assertEqual((st.st_uid, st.st_gid), (0, 65534))   # the lease's uid (the caller: root)
                with open(os.path.join(self.dirs['run'], 'leases', path.rsplit('_', 1)[1] + '.json')) as f:
                        rec = json.load(f)
                self.assertEqual((rec['vfio-owner'], rec['vfio-restore']),
                                 (True, [{'node': GROUP_NODE, 'uid': 65534, 'gid': 65534}]))
                self.call_lease(path, 'Release')
                st = os.stat(node)
                self.assertEqual((st.st_uid, st.st_gid), (65534, 65534))

                # Without the option nothing changes hands; a wrong type is refused.
                path = self.lease()
                self.assertEqual(os.stat(node).st_uid, 65534)
                self.call_lease(path, 'Release')
                with self.assertRaises(dbus.DBusException) as e:
                        self.lease(vfio_owner='yes')
                self.assertEqual(e.exception.get_dbus_name(), ERR + 'InvalidArgument')

        def call_lease(self, path, method, *args):
                return self.c.call(path, LEASE_IFACE, method, *args)


if __name__ == '__main__':
        unittest.main(verbosity=2)
