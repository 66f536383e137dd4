#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hostile desired-state files, file names and D-Bus arguments (issue 17), replayed
from tests/corpus/ against the real hostdevd on umockdev (the reconciler's host of
test-reconcile.py): whatever the daemon reads, every property of every object stays
readable, every call is answered, and what it sends and logs is valid UTF-8.

Run through meson (`meson test --suite integration integration-hostile`).
"""
import codecs
import importlib.util
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dbus  # noqa: E402

import hostdevtest as h  # noqa: E402
from hostdevtest import (DEVICE_IFACE, LOG_CONTROL_PATH, MANAGER_IFACE, OM_IFACE, ROOT_PATH,  # noqa: E402
                         device_path)

_spec = importlib.util.spec_from_file_location(
        'test_reconcile', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'test-reconcile.py'))
rc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rc)

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'corpus')
NIC, PF = rc.NIC, rc.PF
ERR = rc.ERR
GOOD_RULE = rc.conf({'Address': NIC}, {'Driver': 'vfio-pci'})  # Driver= on line 4
# No quoted value may come back longer than this (escape.h: ESCAPE_QUOTE_MAX is 80 bytes).
MESSAGE_MAX = 400


def corpus_files(sub):
        d = os.path.join(CORPUS, sub)
        return sorted((n, open(os.path.join(d, n), 'rb').read()) for n in os.listdir(d))


def corpus_names():
        """tests/corpus/conf-names.txt: one Python-escaped file name per line, as bytes."""
        out = []
        with open(os.path.join(CORPUS, 'conf-names.txt'), 'rb') as f:
                for line in f.read().split(b'\n'):
                        if line and not line.startswith(b'#'):
                                out.append(codecs.escape_decode(line)[0])
        return out


def escape(b):
        """hostdevd's escaped form (src/escape.h), written independently as the test's oracle."""
        out, i = [], 0
        while i < len(b):
                ch = None
                for k in (1, 2, 3, 4):
                        try:
                                s = b[i:i + k].decode('utf-8')  # strict: no overlong, surrogate, > U+10FFFF
                        except UnicodeDecodeError:
                                continue
                        if len(s) == 1:
                                ch = s
                                break
                c = ord(ch) if ch is not None else None
                if ch is not None and 0x20 <= c < 0x7f:
                        out.append('\\' + ch if ch in '\\"\'' else ch)
                elif ch is not None and c > 0x9f:
                        out.append(ch)
                else:
                        # controls, C1 controls and invalid bytes: the first byte alone, as \xNN
                        out.append('\\x%02x' % b[i])
                        i += 1
                        continue
                i += len(ch.encode())
        return ''.join(out)


class Hostile(rc.ReconcileTestCase):

        def setUp(self):
                super().setUp()
                rc.build_host(self.H)

        # -- what must hold whatever the files say
        def read_everything(self):
                """GetManagedObjects, then GetAll and Get of every property of every interface of every
                object, the root's included: every call must succeed. Returns the number of properties."""
                c = self.c
                objs = c.call(ROOT_PATH, OM_IFACE, 'GetManagedObjects', timeout_s=120)
                self.assertIn(device_path(NIC), objs)
                targets = [(p, i) for p, ifaces in objs.items() for i in ifaces]
                targets += [(ROOT_PATH, MANAGER_IFACE), (LOG_CONTROL_PATH, 'org.freedesktop.LogControl1')]
                n = 0
                for path, iface in targets:
                        props = c.get_all(path, iface)
                        for name in props:
                                c.get(path, iface, name)
                                n += 1
                self.assertGreater(n, 0)
                return n

        def assert_responsive(self):
                """Reload, Plan and SetDeviceDriver are answered (with whatever result)."""
                for method, args in (('Reload', ()), ('Plan', ()),
                                     ('SetDeviceDriver', (NIC, 'vfio-pci', dbus.Array([], signature='s')))):
                        try:
                                self.call(method, *args, timeout_s=h.timeout(60))
                        except dbus.DBusException as e:
                                self.assertTrue(e.get_dbus_name().startswith(ERR),
                                                '%s: %s %s' % (method, e.get_dbus_name(), e.get_dbus_message()))
                                self.assertLess(len(e.get_dbus_message()), 1 << 20)

        def assert_cli_ok(self, *args):
                """hostdevctl exits 0 and prints UTF-8 (strict)."""
                r = subprocess.run([h.env_path('HOSTDEVCTL'), '--address', self.bus.address] + list(args),
                                   env=h.preload_free_env(), capture_output=True, timeout=h.timeout(60))
                self.assertEqual(r.returncode, 0, 'hostdevctl %s: %r' % (' '.join(args), r.stderr))
                return r.stdout.decode('utf-8')

        def assert_log_utf8(self):
                raw = self.daemon.output_bytes()
                try:
                        raw.decode('utf-8')
                except UnicodeDecodeError as e:
                        self.fail('hostdevd logged bytes that are not UTF-8: %s: %r' % (e, raw[e.start - 80:e.end + 80]))

        def put(self, name, data):
                with open(os.path.join(os.fsencode(self.conf_dirs[1]), name), 'wb') as f:
                        f.write(data)

        # -- the tests
        def test_hostile_contents(self):
                """Every file of tests/corpus/conf/ is rejected with a readable error naming it; the
                previous state stays; every property stays readable; every call is answered."""
                c = self.start({'50-good.conf': GOOD_RULE})
                self.wait_converged(NIC, 'vfio-pci')
                before = self.read_everything()
                files = corpus_files('conf')
                self.assertGreaterEqual(len(files), 10)
                for name, data in files:
                        self.put(os.fsencode('70-' + name), data)
                msg = self.assertDBusError(ERR + 'ConfigInvalid', 'Reload')
                self.assertLess(len(msg), 1 << 16)
                errors = c.manager('ConfigErrors')
                for name, _ in files:
                        prefix = os.path.join(self.conf_dirs[1], '70-' + name) + ':'
                        mine = [e for e in errors if e.startswith(prefix)]
                        self.assertTrue(mine, '%s not rejected: %s' % (name, errors))
                        for e in mine:
                                self.assertLess(len(e.encode()), len(prefix) + MESSAGE_MAX, e)
                # the cases, quoted escaped and cut at a character boundary
                self.assertIn(os.path.join(self.conf_dirs[1], '70-invalid-utf8-value.conf') +
                              ':4: Driver=vfio\\xff: not vfio-pci, host, none or a driver name '
                              "([A-Za-z0-9_-], not starting with '-', at most 64)", errors)
                cut = [e for e in errors if '70-long-invalid-value.conf:4: Driver=' in e]
                self.assertEqual(len(cut), 1)
                self.assertIn('\\xff' * 19 + '\u2026: not vfio-pci', cut[0])
                # nothing was applied from the rejected files, the good rule still decides
                self.assertEqual(self.dev(NIC, 'DesiredSource'), os.path.join(self.conf_dirs[1], '50-good.conf') + ':4')
                self.assertEqual(self.read_everything(), before)
                self.assert_responsive()
                self.assert_cli_ok('status')
                self.assert_cli_ok('list')
                self.assert_cli_ok('show', NIC)
                self.assert_log_utf8()
                # removing them makes the next reload good again
                for name, _ in files:
                        os.unlink(os.path.join(self.conf_dirs[1], '70-' + name))
                self.call('Reload')
                self.assertEqual(c.manager('ConfigErrors'), [])

        def test_hostile_names(self):
                """A drop-in whose name is not UTF-8 (or holds controls) applies, and is published escaped
                in DesiredSource; GetManagedObjects and hostdevctl keep working (hostdevd.conf(5))."""
                self.start({'50-good.conf': GOOD_RULE})
                self.wait_converged(NIC, 'vfio-pci')
                names = corpus_names()
                self.assertGreaterEqual(len(names), 10)
                etc = os.fsencode(self.conf_dirs[1])
                for name in names:
                        with self.subTest(name=name):
                                self.put(name, GOOD_RULE.encode())
                                self.call('Reload')
                                want = escape(os.path.join(etc, name)) + ':4'
                                self.wait_dev(NIC, 'DesiredSource', want)
                                self.assertEqual(self.c.manager('ConfigErrors'), [])
                                self.read_everything()
                                self.assertIn(escape(name), self.assert_cli_ok('show', NIC))
                                self.assert_cli_ok('list')
                                os.unlink(os.path.join(etc, name))
                self.call('Reload')
                self.wait_dev(NIC, 'DesiredSource', os.path.join(self.conf_dirs[1], '50-good.conf') + ':4')
                self.assert_responsive()
                self.assert_log_utf8()

        def test_non_regular_on_reload(self):
                """A FIFO, a socket and a directory named *.conf are rejected on reload without being
                opened; the daemon answers at once, and a file of the corpus names them."""
                c = self.start({'50-good.conf': GOOD_RULE})
                self.wait_converged(NIC, 'vfio-pci')
                etc = self.conf_dirs[1]
                os.mkfifo(os.path.join(etc, '90-fifo.conf'))
                os.mkdir(os.path.join(etc, '91-dir.conf'))
                os.symlink('/dev/null', os.path.join(etc, '92-null.conf'))  # masks: not an error
                self.assertDBusError(ERR + 'ConfigInvalid', 'Reload')
                self.assertEqual(sorted(c.manager('ConfigErrors')),
                                 [os.path.join(etc, '90-fifo.conf') + ':0: not a regular file (a FIFO)',
                                  os.path.join(etc, '91-dir.conf') + ':0: not a regular file (a directory)'])
                self.read_everything()
                self.assert_responsive()
                os.unlink(os.path.join(etc, '90-fifo.conf'))
                os.rmdir(os.path.join(etc, '91-dir.conf'))
                self.call('Reload')
                self.assertEqual(c.manager('ConfigErrors'), [])

        def test_fifo_at_start(self):
                """A FIFO in the drop-in directory at start: READY=1 comes (H.start waits for it), the
                FIFO is listed in ConfigErrors, the good files apply."""
                os.mkfifo(os.path.join(self.conf_dirs[1], '90-fifo.conf'))
                c = self.start({'50-good.conf': GOOD_RULE})
                self.assertEqual(c.manager('ConfigErrors'),
                                 [os.path.join(self.conf_dirs[1], '90-fifo.conf') + ':0: not a regular file (a FIFO)'])
                self.wait_converged(NIC, 'vfio-pci')
                self.read_everything()
                self.assert_responsive()

        def test_hostile_sysfs(self):
                """sysfs values that are not UTF-8 (driver_override takes any bytes from root; a slot name is
                the hotplug driver's) are published escaped, and everything stays readable."""
                t = self.H.t
                other = rc.PAIR[1]  # named by no rule: hostdevd only observes it
                with open(os.path.join(t.devdir(other), 'driver_override'), 'wb') as f:
                        f.write(b'bad\xff\xc3\n')
                t.add_slot(os.fsdecode(b'slot\xff\x1b'), other[:-2])
                self.start({'50-good.conf': GOOD_RULE})
                self.wait_converged(NIC, 'vfio-pci')
                self.assertEqual(self.dev(other, 'DriverOverride'), 'bad\\xff\\xc3')
                self.assertEqual(self.dev(other, 'PhysicalSlot'), 'slot\\xff\\x1b')
                self.read_everything()
                self.assert_cli_ok('show', other)
                self.assert_cli_ok('list')
                self.assert_responsive()
                self.assert_log_utf8()

        def test_hostile_arguments(self):
                """Every string of tests/corpus/dbus-args/ (and an 8 MiB one), in every string argument of
                the Manager's methods, gets an error whose message is bounded, and the daemon goes on."""
                self.start()
                cases = [(n, d.decode('utf-8')) for n, d in corpus_files('dbus-args')]
                self.assertGreaterEqual(len(cases), 5)
                cases.append(('8 MiB', '\u00e9' * (4 << 20)))
                empty = dbus.Array([], signature='s')
                for name, arg in cases:
                        calls = [('GetDeviceByAddress', (arg,)), ('GetMdevByUuid', (arg,)),
                                 ('SetDeviceDriver', (arg, 'vfio-pci', empty)),
                                 ('SetDeviceDriver', (NIC, arg, empty)),
                                 ('SetDeviceDriver', (NIC, 'vfio-pci', dbus.Array([arg], signature='s'))),
                                 ('ResetDeviceDriver', (arg,)),
                                 ('SetNumVFs', (PF, dbus.UInt32(0), arg, empty))]
                        for method, args in calls:
                                with self.subTest(arg=name, method=method):
                                        with self.assertRaises(dbus.DBusException) as e:
                                                self.call(method, *args, timeout_s=h.timeout(60))
                                        self.assertTrue(e.exception.get_dbus_name().startswith(ERR),
                                                        e.exception.get_dbus_name())
                                        self.assertLess(len(e.exception.get_dbus_message().encode()), MESSAGE_MAX,
                                                        e.exception.get_dbus_message()[:MESSAGE_MAX])
                self.read_everything()
                self.assert_responsive()
                self.assert_log_utf8()


if __name__ == '__main__':
        unittest.main(verbosity=2)
