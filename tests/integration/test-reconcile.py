#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""hostdevd reconciler integration tests: desired-state files, the fake kernel's
write reactor (hostdevtest.KernelReactor + kernel-shim.so), failure injection,
polkit through python-dbusmock's polkitd template, a non-root caller.

Run through meson (`meson test --suite integration`), or by hand as
test-integration.py says, plus HOSTDEVTEST_KERNEL_SHIM=<build>/tests/integration/kernel-shim.so.

Safety: every driver the desired state names is registered in the testbed
(/sys/bus/pci/drivers/<name>), so the daemon never has a reason to load a
module on the build machine.
"""
import errno
import json
import shutil
import os
import stat
import subprocess
import tempfile
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dbus  # noqa: E402

import hostdevtest as h  # noqa: E402
from hostdevtest import DEVICE_IFACE, MANAGER_IFACE, ROOT_PATH, device_path  # noqa: E402

NIC = '0000:03:00.0'                  # Intel 82574L on e1000e, alone in group 10
PAIR = ('0000:04:00.0', '0000:04:00.1')  # Intel 82571EB, two ports on e1000e, both in group 11
PF = '0000:05:00.0'                   # Intel X710 on i40e, SR-IOV (VFs: iavf), group 12
VF0 = '0000:05:02.0'                  # first VF: routing ID 0x0500 + offset 16
IGPU = '0000:00:02.0'                 # the boot VGA on i915, alone in group 1: host-critical

ERR = 'org.hostdevd1.Error.'
ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied'


def build_host(H):
        """The reconciler's host: see the constants above; vfio-pci and iavf registered."""
        t, k = H.t, H.k
        t.add_pci('devices/pci0000:00/' + NIC, 0x8086, 0x10d3, 0x020000, driver='e1000e', group=10,
                  bars={0: (0xf7000000, 0x20000, h.MEM32)}, reset='flr bus')
        for a in PAIR:
                t.add_pci('devices/pci0000:00/' + a, 0x8086, 0x105e, 0x020000, driver='e1000e', group=11,
                          bars={0: (0xf6000000 + int(a[-1]) * 0x20000, 0x20000, h.MEM32)})
        t.add_pci('devices/pci0000:00/' + PF, 0x8086, 0x1572, 0x020000, driver='i40e', group=12,
                  bars={0: (0x38000000000, 0x800000, h.MEM64P)}, reset='flr',
                  attrs=[('sriov_totalvfs', '8'), ('sriov_numvfs', '0'), ('sriov_offset', '16'),
                         ('sriov_stride', '1'), ('sriov_vf_device', '154c'), ('sriov_drivers_autoprobe', '1')])
        t.add_pci('devices/pci0000:00/' + IGPU, 0x8086, 0x4680, 0x030000, driver='i915', group=1, boot_vga=True,
                  bars={0: (0x6000000000, 0x1000000, h.MEM64P)})
        k.vf_host_drivers[PF] = 'iavf'
        for d in ('vfio-pci', 'iavf'):
                k.register_driver(d)


def conf(match, device=None, sriov=None):
        """A hostdevd.conf(5) drop-in from {key: value} dicts."""
        out = ['[Match]'] + ['%s=%s' % kv for kv in match.items()]
        if device:
                out += ['[Device]'] + ['%s=%s' % kv for kv in device.items()]
        if sriov:
                out += ['[SRIOV]'] + ['%s=%s' % kv for kv in sriov.items()]
        return '\n'.join(out) + '\n'


# A D-Bus call made by a non-root process (uid/gid 65534), printed as JSON.
CALLER = r'''
import json, sys
import dbus
address, path, iface, method, signature, args = sys.argv[1:7]
try:
        conn = dbus.bus.BusConnection(address)
        obj = conn.get_object('org.hostdevd1', path, introspect=False)
        r = getattr(dbus.Interface(obj, iface), method)(*json.loads(args), signature=signature, timeout=120)
        print(json.dumps({'ok': repr(r)}))
except dbus.DBusException as e:
        print(json.dumps({'error': e.get_dbus_name(), 'message': e.get_dbus_message()}))
'''


def drop_to_nobody():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)


class ReconcileTestCase(unittest.TestCase):
        maxDiff = None
        needs_daemon = True

        def setUp(self):
                if self.needs_daemon and not h.daemon_has_option('--config-dirs'):
                        self.skipTest('waiting for: hostdevd --config-dirs/--state-dir/--runtime-dir (the reconciler)')
                self.H = h.Harness()
                self.reactor = h.KernelReactor(self.H.k, self.H.workdir)
                w = self.H.workdir
                self.dirs = {n: os.path.join(w, n) for n in ('usr', 'etc', 'run', 'state')}
                self.conf_dirs = [os.path.join(self.dirs[n], 'devices.d') for n in ('usr', 'etc')]
                # where the daemon keeps transient (runtime-dir) and persistent (state-dir) requests
                self.request_dirs = [os.path.join(self.dirs[n], 'devices.d') for n in ('run', 'state')]
                for d in self.conf_dirs + [self.dirs['run'], self.dirs['state']]:
                        os.makedirs(d)
                self.holders = []

        def tearDown(self):
                try:
                        for p in self.holders:
                                if p.poll() is None:
                                        p.kill()
                                        p.wait()
                        self.reactor.release_stuck()
                        if os.environ.get('HOSTDEVTEST_DEBUG'):
                                for d in self.H.daemons:
                                        sys.stderr.write('\n--- hostdevd log ---\n%s\n' % d.output()[-20000:])
                                sys.stderr.write('--- writes ---\n%s\n' % '\n'.join(map(repr, self.reactor.writes)))
                        for d in self.H.daemons:
                                if d.proc.poll() is None:
                                        rc = d.stop()
                                        self.assertEqual(rc, 0, 'hostdevd exited %d\n%s' % (rc, d.output()))
                finally:
                        self.reactor.close()
                        for p in getattr(self, 'mocks', []):
                                p.terminate()
                                p.wait()
                        self.H.cleanup()

        # -- desired state
        def etc(self, name):
                return os.path.join(self.conf_dirs[1], name)

        def write_conf(self, name, text):
                with open(self.etc(name), 'w') as f:
                        f.write(text)

        def start(self, files=None, sentinel=True, **kw):
                """Write |files| into the etc layer, start hostdevd with the test's directories."""
                for name, text in (files or {}).items():
                        self.write_conf(name, text)
                if sentinel and not self.H.k.exists(h.Harness.SENTINEL):
                        self.H.add_sentinel()
                self.H.k.remember_host_drivers()
                env = dict(kw.pop('env', {}))
                env.update(self.reactor.env())
                args = ['--config-dirs=' + ':'.join(self.conf_dirs), '--state-dir=' + self.dirs['state'],
                        '--runtime-dir=' + self.dirs['run']] + list(kw.pop('args', []))
                self.bus, self.daemon, self.c = self.H.start(env=env, args=args, **kw)
                if sentinel:
                        self.H.pace_with(self.c)
                return self.c

        # -- reading the daemon
        def dev(self, address, prop):
                return self.c.get(device_path(address), DEVICE_IFACE, prop)

        def dev_or_none(self, address, prop):
                """The property, or None while the daemon has not published the function (yet)."""
                try:
                        return self.dev(address, prop)
                except dbus.exceptions.DBusException as e:
                        if e.get_dbus_name() != 'org.freedesktop.DBus.Error.UnknownObject':
                                raise
                        return None

        def wait_dev(self, address, prop, value, limit=30):
                # The function may exist in the fake kernel before the daemon applied its uevents.
                return self.c.wait_for(lambda: self.dev_or_none(address, prop) == value, limit,
                                       lambda: '%s %s = %r (now %r)' %
                                       (address, prop, value, self.dev_or_none(address, prop)))

        def wait_manager(self, prop, value, limit=30):
                return self.c.wait_for(lambda: self.c.manager(prop) == value, limit,
                                       'Manager.%s = %r' % (prop, value))

        def wait_converged(self, address, driver, limit=30):
                self.wait_dev(address, 'Driver', driver, limit)
                self.wait_dev(address, 'State', 'converged', limit)

        def call(self, method, *args, **kw):
                return self.c.call(ROOT_PATH, MANAGER_IFACE, method, *args, **kw)

        def assertDBusError(self, name, method, *args):
                with self.assertRaises(dbus.DBusException) as e:
                        self.call(method, *args)
                self.assertEqual(e.exception.get_dbus_name(), name, e.exception.get_dbus_message())
                return e.exception.get_dbus_message()

        # -- reading the testbed
        def override(self, address):
                return h.Testbed.read(os.path.join(self.H.t.devdir(address), 'driver_override'))

        def driver(self, address):
                return self.H.k.driver_of(address)

        def writes_naming(self, address):
                return [w for w in self.reactor.writes if address in w[0] or w[1].strip() == address]

        # -- processes
        def nonroot_call(self, method, signature='', *args, path=ROOT_PATH, iface=MANAGER_IFACE):
                """Call |method| as uid 65534; returns {'ok': ...} or {'error': name, 'message': ...}."""
                r = subprocess.run(['/usr/bin/python3', '-c', CALLER, self.bus.address, path, iface, method,
                                    signature, json.dumps(list(args))],
                                   env=h.preload_free_env(), preexec_fn=drop_to_nobody, capture_output=True,
                                   text=True, timeout=h.timeout(180))
                self.assertEqual(r.returncode, 0, r.stderr)
                return json.loads(r.stdout)

        def hold(self, group, closable=False, foreign=False):
                """A process holding /dev/vfio/<group> open, as a VMM does.

                The node is a plain file in the testbed's dev/vfio, the directory the daemon
                watches with fanotify (its open("/dev/vfio") goes through umockdev's preload).
                The holder must not run under umockdev: it gets a private mount namespace with a
                tmpfs on /dev and the testbed's dev/vfio bind-mounted on /dev/vfio, so it opens
                the very inode the daemon watches, its /proc/PID/fd link reads
                "/dev/vfio/<group>" to the daemon, and the build machine's /dev is not touched.
                |closable|: it closes the node when a line is written to its stdin (and then
                prints "closed"), staying alive; its command name is "sh" then, else "sleep".
                |group| may also be a path below /dev/vfio ('devices/vfio3': a VFIO cdev).
                |foreign|: its /dev/vfio is a directory of its own, as in a container with a /dev of
                its own: the same path, another file, so not a holder of the testbed's node."""
                node = '/dev/vfio/%s' % group
                tb_vfio = os.path.join(self.H.t.root, 'dev', 'vfio')
                if foreign:
                        tb_vfio = tempfile.mkdtemp(prefix='foreign-vfio-')
                        self.addCleanup(shutil.rmtree, tb_vfio, True)
                # mknod, not open(): an open by this (unrelated) process would be an fanotify open event
                # of its own, a holder for the daemon until its close is seen.
                os.makedirs(os.path.dirname(os.path.join(tb_vfio, str(group))), exist_ok=True)
                try:
                        os.mknod(os.path.join(tb_vfio, str(group)), 0o644 | stat.S_IFREG)
                except FileExistsError:
                        pass
                tail = ('echo ready && read x && exec 3<&- && echo closed && exec sleep 600' if closable
                        else 'echo ready && exec sleep 600')
                p = subprocess.Popen(
                        ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
                         'mount -t tmpfs tmpfs /dev && mkdir /dev/vfio && mount --bind %s /dev/vfio && '
                         'exec 3<%s && %s' % (tb_vfio, node, tail)],
                        env=h.preload_free_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                self.holders.append(p)
                self.assertEqual(p.stdout.readline().strip(), 'ready')
                comm = 'sh' if closable else 'sleep'
                # the exec of sleep follows the echo at once; wait for it
                deadline = time.monotonic() + h.timeout(10)
                while time.monotonic() < deadline:
                        if h.Testbed.read('/proc/%d/comm' % p.pid, '').strip() == comm and \
                           os.readlink('/proc/%d/fd/3' % p.pid) == node:
                                return p
                        time.sleep(0.01)
                self.fail('holder did not open %s' % node)

        def release(self, holder):
                """Make a closable holder close its node; it stays alive."""
                holder.stdin.write('\n')
                holder.stdin.flush()
                self.assertEqual(holder.stdout.readline().strip(), 'closed')



class LeaseClient:
        """Mixed into a ReconcileTestCase (before it) by the lease tests: child processes standing in
        for VMMs (not under umockdev), ended at tearDown, and Manager.Acquire for them."""
        LEASE_IFACE = 'org.hostdevd1.Lease'

        def setUp(self):
                super().setUp()
                self.vmms = []

        def tearDown(self):
                for p in self.vmms:
                        if p.poll() is None:
                                p.kill()
                                p.wait()
                super().tearDown()

        def vmm(self):
                """A child process standing in for a VMM."""
                p = subprocess.Popen(['sleep', '600'], env=h.preload_free_env())
                self.vmms.append(p)
                return p

        def acquire(self, devices, pid=None, **options):
                """Acquire |devices| for |pid| (its pidfd; None: the caller); option names with '-' as '_'."""
                opts = {}
                fd = None
                if pid is not None:
                        fd = os.pidfd_open(pid)
                        opts['pidfd'] = dbus.types.UnixFd(fd)
                for k, v in options.items():
                        opts[k.replace('_', '-')] = v
                try:
                        return self.call('Acquire', dbus.Array(devices, signature='s'),
                                         dbus.Dictionary(opts, signature='sv'))
                finally:
                        if fd is not None:
                                os.close(fd)

        def acquire_error(self, devices, pid=None, **options):
                with self.assertRaises(dbus.DBusException) as e:
                        self.acquire(devices, pid, **options)
                return e.exception.get_dbus_name(), e.exception.get_dbus_message()

        def leases(self):
                return {p: i[self.LEASE_IFACE] for p, i in self.c.managed_objects().items()
                        if self.LEASE_IFACE in i}

# ---------------------------------------------------------------------------
# The fake kernel's write reactor, without a daemon: a child process under the
# shim and umockdev writes, as hostdevd's sysfs_write() does.

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


class Reactor(ReconcileTestCase):
        """Kernel semantics of the attributes hostdevd writes (Documentation/ABI/testing/sysfs-bus-pci)."""

        needs_daemon = False

        def setUp(self):
                super().setUp()
                build_host(self.H)
                self.H.k.remember_host_drivers()

        def spawn(self, path, value):
                env = dict(os.environ)
                env.update(self.reactor.env())
                return subprocess.Popen(['/usr/bin/python3', '-c', WRITER, path, value], env=env,
                                        stdout=subprocess.PIPE, text=True)

        def store(self, path, value):
                """Write as the daemon does; returns the errno (0: stored)."""
                p = self.spawn(path, value)
                out, _ = p.communicate(timeout=h.timeout(30))
                return int(out)

        def dev_attr(self, address, name):
                return os.path.join('/sys/bus/pci/devices', address, name)

        def test_bind_sequence(self):
                """driver_override -> unbind -> drivers_probe binds the override; "\\n" clears it."""
                k = self.H.k
                self.assertEqual(self.store(self.dev_attr(NIC, 'driver_override'), 'vfio-pci'), 0)
                self.assertEqual(self.override(NIC), 'vfio-pci\n')
                self.assertEqual(self.driver(NIC), 'e1000e', 'driver_override alone binds nothing')
                # unbind through the wrong driver: -ENODEV, nothing changes
                self.assertEqual(self.store('/sys/bus/pci/drivers/iavf/unbind', NIC), errno.ENODEV)
                self.assertEqual(self.driver(NIC), 'e1000e')
                self.assertEqual(self.store('/sys/bus/pci/drivers/e1000e/unbind', NIC), 0)
                self.assertIsNone(self.driver(NIC))
                self.assertNotIn('DRIVER=', h.Testbed.read(os.path.join(self.H.t.devdir(NIC), 'uevent')))
                self.assertNotIn(NIC, os.listdir(os.path.join(self.H.t.sys, 'bus/pci/drivers/e1000e')))
                self.assertEqual(self.store('/sys/bus/pci/drivers_probe', NIC), 0)
                self.assertEqual(self.driver(NIC), 'vfio-pci')
                self.assertIn('DRIVER=vfio-pci', h.Testbed.read(os.path.join(self.H.t.devdir(NIC), 'uevent')))
                # probing a bound device changes nothing
                self.assertEqual(self.store('/sys/bus/pci/drivers_probe', NIC), 0)
                self.assertEqual(self.driver(NIC), 'vfio-pci')
                # release: clear, unbind, probe -> the host driver
                self.assertEqual(self.store(self.dev_attr(NIC, 'driver_override'), '\n'), 0)
                self.assertEqual(self.override(NIC), '(null)\n')
                self.assertEqual(self.store('/sys/bus/pci/drivers/vfio-pci/unbind', NIC), 0)
                self.assertEqual(self.store('/sys/bus/pci/drivers_probe', NIC), 0)
                self.assertEqual(self.driver(NIC), 'e1000e')
                # drivers_probe of no such device
                self.assertEqual(self.store('/sys/bus/pci/drivers_probe', '0000:ee:00.0'), errno.ENODEV)
                # bind: only a matching driver (else -ENODEV), only when unbound (else -EBUSY)
                self.assertEqual(self.store('/sys/bus/pci/drivers/vfio-pci/bind', NIC), errno.ENODEV)
                self.assertEqual(self.store('/sys/bus/pci/drivers/e1000e/bind', NIC), errno.EBUSY)
                self.assertEqual(self.store('/sys/bus/pci/drivers/e1000e/unbind', NIC), 0)
                self.assertEqual(self.store('/sys/bus/pci/drivers/vfio-pci/bind', NIC), errno.ENODEV,
                                 'vfio-pci has no id for the NIC and no override names it')
                self.assertEqual(self.store('/sys/bus/pci/drivers/e1000e/bind', NIC), 0)
                self.assertEqual(self.driver(NIC), 'e1000e')
                self.assertEqual([e for _, _, e in self.reactor.kernel_errors],
                                 [errno.ENODEV, errno.ENODEV, errno.ENODEV, errno.EBUSY, errno.ENODEV])
                self.assertEqual(k.binds, [(NIC, 'vfio-pci'), (NIC, 'e1000e'), (NIC, 'e1000e')])

        def test_probe_to_missing_driver(self):
                """An override naming a driver that is not registered binds nothing."""
                self.assertEqual(self.store(self.dev_attr(NIC, 'driver_override'), 'nosuchdrv'), 0)
                self.assertEqual(self.store('/sys/bus/pci/drivers/e1000e/unbind', NIC), 0)
                self.assertEqual(self.store('/sys/bus/pci/drivers_probe', NIC), 0)
                self.assertIsNone(self.driver(NIC))

        def test_sriov(self):
                """autoprobe 0 -> VFs unbound; a new count while VFs exist is EBUSY; 0 removes them."""
                t, k = self.H.t, self.H.k
                self.assertEqual(self.store(self.dev_attr(PF, 'sriov_drivers_autoprobe'), '0'), 0)
                self.assertEqual(h.Testbed.read(os.path.join(t.devdir(PF), 'sriov_drivers_autoprobe')), '0\n')
                self.assertEqual(self.store(self.dev_attr(PF, 'sriov_drivers_autoprobe'), 'maybe'), errno.EINVAL)
                self.assertEqual(self.store(self.dev_attr(PF, 'sriov_numvfs'), '2'), 0)
                self.assertEqual(h.Testbed.read(os.path.join(t.devdir(PF), 'sriov_numvfs')), '2\n')
                vfs = ['0000:05:02.0', '0000:05:02.1']
                self.assertEqual([a for a in t.addresses() if a.startswith('0000:05:02')], vfs)
                for vf in vfs:
                        self.assertIsNone(self.driver(vf), 'autoprobe 0: no driver probed %s' % vf)
                        self.assertEqual(os.path.basename(os.readlink(os.path.join(t.devdir(vf), 'physfn'))), PF)
                        self.assertTrue(os.path.islink(os.path.join(t.devdir(vf), 'iommu_group')))
                # a VF without override under autoprobe 0 is not probed; with one it is
                self.assertEqual(self.store('/sys/bus/pci/drivers_probe', vfs[0]), 0)
                self.assertIsNone(self.driver(vfs[0]))
                self.assertEqual(self.store(self.dev_attr(vfs[0], 'driver_override'), 'vfio-pci'), 0)
                self.assertEqual(self.store('/sys/bus/pci/drivers_probe', vfs[0]), 0)
                self.assertEqual(self.driver(vfs[0]), 'vfio-pci')
                # EBUSY: the kernel requires 0 first; the count stays
                self.assertEqual(self.store(self.dev_attr(PF, 'sriov_numvfs'), '4'), errno.EBUSY)
                self.assertEqual(h.Testbed.read(os.path.join(t.devdir(PF), 'sriov_numvfs')), '2\n')
                self.assertIn(('%s/sriov_numvfs' % os.path.relpath(t.devdir(PF), t.sys), '4', errno.EBUSY),
                              self.reactor.kernel_errors)
                self.assertEqual(self.store(self.dev_attr(PF, 'sriov_numvfs'), '9'), errno.EBUSY)
                self.assertEqual(self.store(self.dev_attr(PF, 'sriov_numvfs'), '2'), 0, 'same count: no-op')
                self.assertEqual(self.store(self.dev_attr(PF, 'sriov_numvfs'), '0'), 0)
                self.assertEqual([a for a in t.addresses() if a.startswith('0000:05:02')], [])
                self.assertEqual(self.store(self.dev_attr(PF, 'sriov_numvfs'), '9'), errno.ERANGE)
                # autoprobe 1: new VFs get the PF's VF driver
                self.assertEqual(self.store(self.dev_attr(PF, 'sriov_drivers_autoprobe'), '1'), 0)
                self.assertEqual(self.store(self.dev_attr(PF, 'sriov_numvfs'), '1'), 0)
                self.assertEqual(self.driver(vfs[0]), 'iavf')
                self.assertEqual(k.host_drivers[vfs[0]], 'iavf')

        def test_injected_failures(self):
                t = self.H.t
                # a probe that binds nothing (vfio-pci's probe fails for this device)
                self.reactor.probe_binds_nothing[NIC] = 'vfio-pci'
                self.assertEqual(self.store(self.dev_attr(NIC, 'driver_override'), 'vfio-pci'), 0)
                self.assertEqual(self.store('/sys/bus/pci/drivers/e1000e/unbind', NIC), 0)
                self.assertEqual(self.store('/sys/bus/pci/drivers_probe', NIC), 0, 'drivers_probe still succeeds')
                self.assertIsNone(self.driver(NIC))
                self.assertEqual(self.store(self.dev_attr(NIC, 'driver_override'), '\n'), 0)
                self.assertEqual(self.store('/sys/bus/pci/drivers_probe', NIC), 0)
                self.assertEqual(self.driver(NIC), 'e1000e', 'the host driver still probes')
                # a bind that is ignored
                self.reactor.ignore_bind.add(PAIR[0])
                self.assertEqual(self.store('/sys/bus/pci/drivers/e1000e/unbind', PAIR[0]), 0)
                self.assertEqual(self.store('/sys/bus/pci/drivers/e1000e/bind', PAIR[0]), 0)
                self.assertIsNone(self.driver(PAIR[0]))
                # an unbind that never completes: the writer blocks until released
                self.reactor.stuck_unbind.add(PAIR[1])
                p = self.spawn('/sys/bus/pci/drivers/e1000e/unbind', PAIR[1])
                path, value = self.reactor.wait_stuck()
                self.assertEqual((path, value), ('bus/pci/drivers/e1000e/unbind', PAIR[1]))
                with self.assertRaises(subprocess.TimeoutExpired):
                        p.communicate(timeout=1)
                self.assertEqual(self.driver(PAIR[1]), 'e1000e')
                # meanwhile other writes (another process, another attribute) are served
                self.assertEqual(self.store(self.dev_attr(NIC, 'driver_override'), 'vfio-pci'), 0)
                self.reactor.release_stuck()
                out, _ = p.communicate(timeout=h.timeout(30))
                self.assertEqual(int(out), errno.EIO)
                self.assertEqual(self.driver(PAIR[1]), 'e1000e')
                self.assertIn(('bus/pci/drivers/e1000e/unbind', PAIR[1], errno.EIO), self.reactor.kernel_errors)
                self.assertTrue(os.path.isdir(t.devdir(PAIR[1])))


# ---------------------------------------------------------------------------
# The reconciler on that host


class Reconcile(ReconcileTestCase):
        def setUp(self):
                super().setUp()
                build_host(self.H)

        def test_converge_nic(self):
                """An Intel NIC to vfio-pci: driver_override, unbind, probe, verified; nothing else touched."""
                c = self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                # Planned before the name was taken: the very first read knows the rule.
                self.assertEqual(self.dev(NIC, 'DesiredDriver'), 'vfio-pci')
                self.assertIn(self.dev(NIC, 'State'), ('pending', 'converged'))
                self.wait_converged(NIC, 'vfio-pci')
                self.wait_manager('State', 'converged')
                self.assertEqual(self.override(NIC), 'vfio-pci\n')
                self.assertEqual(self.driver(NIC), 'vfio-pci')
                self.assertEqual(self.dev(NIC, 'DesiredDriver'), 'vfio-pci')
                self.assertIn('50-nic.conf', self.dev(NIC, 'DesiredSource'))
                self.assertEqual(self.dev(NIC, 'StateReason'), '')
                self.assertEqual(self.dev(NIC, 'LastError'), '')
                self.assertEqual(self.dev(NIC, 'VfioGroup'), '/dev/vfio/10')
                devdir = os.path.relpath(self.H.t.devdir(NIC), self.H.t.sys)
                steps = [(p, v.strip()) for p, v, e in self.writes_naming(NIC)]
                self.assertEqual(steps, [(devdir + '/driver_override', 'vfio-pci'),
                                         ('bus/pci/drivers/e1000e/unbind', NIC),
                                         ('bus/pci/drivers_probe', NIC)])
                self.assertEqual(self.reactor.kernel_errors, [])
                for other in PAIR + (PF,):
                        self.assertEqual(self.writes_naming(other), [], other)
                        self.assertEqual(self.dev(other, 'State'), 'converged')
                        self.assertEqual(self.dev(other, 'DesiredDriver'), '')
                self.assertGreaterEqual(c.manager('Generation'), 1)
                self.assertEqual(c.manager('ConfigErrors'), [])
                # the model equals the testbed (the oracle knows the reconciler's properties)
                self.H.barrier(c)
                for a in (NIC,) + PAIR:
                        exp = h.expected_device(self.H.t, a)
                        got = c.get_all(device_path(a), DEVICE_IFACE)
                        for key in ('Driver', 'DriverOverride', 'VfioGroup', 'IommuGroupPeers'):
                                self.assertEqual(got[key], exp[key], '%s %s' % (a, key))
                # Plan: nothing left to do
                gen, actions, devices, conflicts = self.call('Plan')
                self.assertEqual(actions, [])
                self.assertIn((NIC, 'converged', ''), devices)

        def test_plan_is_a_dry_run(self):
                """Plan() shows the bind sequence of a pending rule without writing."""
                c = self.start()
                self.assertEqual(c.manager('State'), 'converged')
                self.assertEqual(self.reactor.writes, [])
                self.write_conf('50-nic.conf', conf({'Address': NIC}, {'Driver': 'vfio-pci'}))
                gen0 = c.manager('Generation')
                # Reload applies; so plan against a rule the executor cannot finish: hold the unbind
                self.reactor.stuck_unbind.add(NIC)
                self.call('Reload')
                self.reactor.wait_stuck()
                self.assertGreater(c.manager('Generation'), gen0)
                gen, actions, devices, conflicts = self.call('Plan')
                self.assertEqual(gen, c.manager('Generation'))
                self.assertEqual(self.driver(NIC), 'e1000e')
                for tx, action, address, argument, reason in actions:
                        self.assertIn(action, ('set-sriov-autoprobe', 'set-numvfs', 'set-override', 'clear-override',
                                               'unbind', 'probe', 'verify'))
                n_writes = len(self.reactor.writes)
                self.call('Plan')
                self.assertEqual(len(self.reactor.writes), n_writes, 'Plan() wrote sysfs')
                self.reactor.stuck_unbind.discard(NIC)

        def test_conflict_reported(self):
                """Two files want different drivers for the NIC: the later file wins, and the rule that lost is
                reported by Plan(), hostdevctl plan and the journal (once while it lasts)."""
                c = self.start({'40-a.conf': conf({'Address': NIC}, {'Driver': 'host'}),
                                '50-b.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.wait_converged(NIC, 'vfio-pci')
                self.wait_manager('State', 'converged')
                gen, actions, devices, conflicts = self.call('Plan')
                self.assertEqual(actions, [])
                self.assertEqual(conflicts, ['%s: Driver=vfio-pci (%s:4) overrides Driver=host (%s:4)'
                                             % (NIC, self.etc('50-b.conf'), self.etc('40-a.conf'))])
                out = h.hostdevctl(self.bus.address, 'plan', check=0).stdout
                self.assertIn('Conflicting rules (the first named wins):\n  %s\n' % conflicts[0], out)
                self.assertIn('Nothing to do (generation %d).' % gen, out)
                got = json.loads(h.hostdevctl(self.bus.address, '--json', 'plan', check=0).stdout)
                self.assertEqual(got['Conflicts'], conflicts)
                line = 'Conflicting rules: ' + conflicts[0]
                self.assertEqual(self.daemon.output().count(line), 1, self.daemon.output()[-4000:])
                # A reload that keeps the conflict does not log it again; one that ends it reports none.
                self.call('Reload')
                self.assertEqual(self.call('Plan')[3], conflicts)
                self.assertEqual(self.daemon.output().count(line), 1)
                os.unlink(self.etc('40-a.conf'))
                self.call('Reload')
                self.assertEqual(self.call('Plan')[3], [])
                self.assertNotIn('Conflicting', h.hostdevctl(self.bus.address, 'plan', check=0).stdout)
                # It comes back: logged again.
                self.write_conf('40-a.conf', conf({'Address': NIC}, {'Driver': 'host'}))
                self.call('Reload')
                self.assertEqual(self.call('Plan')[3], conflicts)
                self.assertEqual(self.daemon.output().count(line), 2)
                self.assertEqual(self.driver(NIC), 'vfio-pci')

        def test_group_strict_refused(self):
                """Group=strict with an uncovered peer on a host driver: refused, naming the peer, no write."""
                c = self.start({'60-port.conf': conf({'Address': PAIR[0]}, {'Driver': 'vfio-pci', 'Group': 'strict'})})
                self.wait_dev(PAIR[0], 'State', 'refused')
                self.assertIn(PAIR[1], self.dev(PAIR[0], 'StateReason'))
                self.wait_manager('State', 'refused')
                self.H.barrier(c)
                self.assertEqual(self.reactor.writes, [])
                self.assertEqual([self.driver(a) for a in PAIR], ['e1000e', 'e1000e'])
                self.assertEqual(self.dev(PAIR[0], 'Driver'), 'e1000e')
                gen, actions, devices, conflicts = self.call('Plan')
                self.assertEqual([a for a in actions if a[2] in PAIR], [])
                refused = [d for d in devices if d[0] == PAIR[0]]
                self.assertEqual(len(refused), 1)
                self.assertEqual(refused[0][1], 'refused')
                self.assertIn(PAIR[1], refused[0][2])

        def test_group_whole(self):
                """Group=whole binds every peer with the device, each verified."""
                c = self.start({'60-port.conf': conf({'Address': PAIR[0]}, {'Driver': 'vfio-pci', 'Group': 'whole'})})
                for a in PAIR:
                        self.wait_converged(a, 'vfio-pci')
                        self.assertEqual(self.override(a), 'vfio-pci\n')
                        self.assertEqual(self.dev(a, 'DesiredDriver'), 'vfio-pci')
                self.wait_manager('State', 'converged')
                self.assertEqual(self.writes_naming(NIC), [])
                self.assertEqual(c.manager('ConfigErrors'), [])

        def test_group_peer_drift_repaired(self):
                """Group=whole converged; a rebind by hand of the peer (not named by the rule) is repaired."""
                c = self.start({'60-port.conf': conf({'Address': PAIR[0]}, {'Driver': 'vfio-pci', 'Group': 'whole'})})
                for a in PAIR:
                        self.wait_converged(a, 'vfio-pci')
                since = len(c.signals)
                self.H.k.rebind(PAIR[1], 'e1000e')
                c.wait_property(device_path(PAIR[1]), DEVICE_IFACE, 'Driver', 'e1000e', since)
                for a in PAIR:
                        self.wait_converged(a, 'vfio-pci')
                self.assertEqual(self.override(PAIR[1]), 'vfio-pci\n')
                self.wait_manager('State', 'converged')

        def test_config_error_keeps_last_good(self):
                c = self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.wait_converged(NIC, 'vfio-pci')
                gen = c.manager('Generation')
                # the good rule goes away and a broken file arrives in the same reload
                os.unlink(self.etc('50-nic.conf'))
                self.write_conf('70-bad.conf', '[Match]\nAddress=0000:04:00.0\n[Device]\nDriver=vfio pci!\n')
                n_writes = len(self.reactor.writes)
                msg = self.assertDBusError(ERR + 'ConfigInvalid', 'Reload')
                self.assertIn('70-bad.conf', msg)
                errors = c.manager('ConfigErrors')
                self.assertTrue(errors)
                self.assertTrue(any('70-bad.conf:4' in e and 'Driver=vfio pci!' in e for e in errors), errors)
                self.assertEqual(c.manager('Generation'), gen)
                self.H.barrier(c)
                self.assertEqual(len(self.reactor.writes), n_writes, 'a rejected reload wrote sysfs')
                self.assertEqual(self.driver(NIC), 'vfio-pci')
                self.assertEqual(self.dev(NIC, 'DesiredDriver'), 'vfio-pci', 'the last good state stays')
                self.assertEqual(self.dev(PAIR[0], 'DesiredDriver'), '')
                # SIGHUP re-reads the same way. The errors of the Reload above are still published,
                # so a stale ConfigErrors would satisfy a check for "some errors": break the file
                # differently and wait for the new error, which only the SIGHUP's read can report.
                self.write_conf('70-bad.conf', '[Match]\nAddress=0000:04:00.0\n[Device]\nDriver=still bad!\n')
                self.daemon.proc.send_signal(1)
                c.wait_for(lambda: any('Driver=still bad!' in e for e in c.manager('ConfigErrors')), 30,
                           lambda: 'ConfigErrors naming the SIGHUP\'s read (now %r)' % c.manager('ConfigErrors'))
                self.H.barrier(c)
                self.assertEqual(len(self.reactor.writes), n_writes, 'a rejected SIGHUP wrote sysfs')
                self.assertEqual(c.manager('Generation'), gen)
                self.assertEqual(self.dev(NIC, 'DesiredDriver'), 'vfio-pci')
                # fixed: the reload applies (the rule is gone: back to the host driver)
                os.unlink(self.etc('70-bad.conf'))
                self.call('Reload')
                self.assertEqual(c.manager('ConfigErrors'), [])
                self.assertGreater(c.manager('Generation'), gen)
                self.wait_converged(NIC, 'e1000e')

        def test_drift_repaired(self):
                """A rebind by hand of a managed device is repaired at once."""
                c = self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.wait_converged(NIC, 'vfio-pci')
                n_probes = len(self.reactor.writes_to('drivers_probe'))
                since = len(c.signals)
                self.H.k.rebind(NIC, 'e1000e')
                c.wait_property(device_path(NIC), DEVICE_IFACE, 'Driver', 'e1000e', since)
                self.wait_converged(NIC, 'vfio-pci')
                self.assertEqual(self.override(NIC), 'vfio-pci\n')
                self.assertGreater(len(self.reactor.writes_to('drivers_probe')), n_probes)
                self.assertEqual(self.reactor.writes_to('bus/pci/drivers/e1000e/unbind'),
                                 [('bus/pci/drivers/e1000e/unbind', NIC, 0)] * 2)
                self.wait_manager('State', 'converged')

        def test_drift_during_repair(self):
                """A rebind by hand in three steps, each with its uevent, racing the repair the
                first one triggers: the host ends as declared all the same."""
                self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.wait_converged(NIC, 'vfio-pci')
                c = self.c
                k = self.H.k
                n_writes = len(self.reactor.writes)
                n_binds = len(k.binds)
                k.unbind(NIC)
                k.set_driver_override(NIC, None)
                k.bind(NIC, 'e1000e')
                # The drift is in the fake kernel; the daemon's Driver still says vfio-pci until it
                # applies the drift's uevents, so waiting on the daemon's properties alone could pass
                # before it saw anything. Only a repair written after the last step (a drivers_probe
                # with driver_override vfio-pci stored again) takes the kernel back to vfio-pci.
                # The drift happened in the fake kernel. Its state is not asserted here: the repair
                # races the three steps (a plan no longer scans /proc or mounts on the loop, so the
                # repair of the first step can land before the third).
                self.assertIn((NIC, 'e1000e'), k.binds[n_binds:])
                devdir = os.path.relpath(self.H.t.devdir(NIC), self.H.t.sys)

                def repaired():
                        # (the reactor records a write once the fake kernel applied it)
                        repair = [(p, v.strip(), e) for p, v, e in self.reactor.writes[n_writes:]]
                        return ((self.driver(NIC), self.override(NIC)) == ('vfio-pci', 'vfio-pci\n') and
                                ('bus/pci/drivers_probe', NIC, 0) in repair and
                                (devdir + '/driver_override', 'vfio-pci', 0) in repair)
                c.wait_for(repaired, 30, lambda: 'a repair after the drift (kernel: %r, override %r; writes %r)' %
                           (self.driver(NIC), self.override(NIC), self.reactor.writes[n_writes:]))
                # every uevent of the drift applied: the daemon's view follows the kernel's
                self.H.barrier(c)
                self.wait_converged(NIC, 'vfio-pci')
                self.wait_manager('State', 'converged')

        def test_rule_removed_returns_to_host(self):
                self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.wait_converged(NIC, 'vfio-pci')
                os.unlink(self.etc('50-nic.conf'))
                self.call('Reload')
                self.wait_converged(NIC, 'e1000e')
                self.assertEqual(self.override(NIC), '(null)\n')
                self.assertEqual(self.dev(NIC, 'DriverOverride'), '')
                # org.hostdevd1.xml: DesiredDriver is "" when no rule names the function
                self.wait_dev(NIC, 'DesiredDriver', '', limit=10)
                self.assertEqual(self.dev(NIC, 'DesiredSource'), '')
                self.wait_manager('State', 'converged')

        def test_set_device_driver_and_reset(self):
                self.start()
                self.call('SetDeviceDriver', NIC, 'vfio-pci', dbus.Array([], signature='s'))
                self.wait_converged(NIC, 'vfio-pci')
                self.assertTrue(os.listdir(self.request_dirs[0]), 'transient request stored in the runtime directory')
                self.call('ResetDeviceDriver', NIC)
                self.wait_converged(NIC, 'e1000e')
                self.assertEqual(self.override(NIC), '(null)\n')
                self.assertDBusError(ERR + 'NotFound', 'ResetDeviceDriver', NIC)
                msg = self.assertDBusError(ERR + 'InvalidArgument', 'SetDeviceDriver', 'zz:00.0', 'vfio-pci',
                                           dbus.Array([], signature='s'))
                self.assertIn('zz:00.0', msg)
                msg = self.assertDBusError(ERR + 'InvalidArgument', 'SetDeviceDriver', NIC, 'vfio-pci',
                                           dbus.Array(['sideways'], signature='s'))
                self.assertIn('sideways', msg)
                # persistent: in the state directory
                self.call('SetDeviceDriver', NIC, 'vfio-pci', dbus.Array(['persist'], signature='s'))
                self.wait_converged(NIC, 'vfio-pci')
                found = [f for f in os.listdir(self.request_dirs[1]) if f.endswith('.conf')]
                self.assertTrue(found, 'persistent request stored in the state directory')

        def concurrent_calls(self, calls, limit=120):
                """Send every (method, args) of |calls| at once on our connection, then wait for all of them:
                [(answer index in arrival order, 'ok' | error name, message)] in call order."""
                manager = dbus.Interface(self.c.obj(ROOT_PATH), MANAGER_IFACE)
                answers = {}

                def done(i, name, message=''):
                        answers[i] = (len(answers), name, message)

                for i, (method, args) in enumerate(calls):
                        getattr(manager, method)(*args, timeout=h.timeout(limit),
                                                 reply_handler=lambda *a, i=i: done(i, 'ok'),
                                                 error_handler=lambda e, i=i: done(i, e.get_dbus_name(),
                                                                                   e.get_dbus_message()))
                self.c.wait_for(lambda: len(answers) == len(calls), limit,
                                lambda: '%d of %d answers: %r' % (len(answers), len(calls), answers))
                return [answers[i] for i in range(len(calls))]

        def request_file(self, address):
                return h.Testbed.read(os.path.join(self.request_dirs[0], '90-runtime-%s.conf'
                                                   % address.replace(':', '_').replace('.', '_')))

        def test_concurrent_requests_one_function(self):
                """Requests for one function sent at once run one after the other, in order: each caller is
                answered about its own request, and a failed one leaves the declaration and the function as
                the request before it left them."""
                self.start()
                none = dbus.Array([], signature='s')
                drivers = ['none', 'HOST', '--help', 'vfio-pci', 'NOPE', 'host', 'vfio-pci', 'NOPE2']
                got = self.concurrent_calls([('SetDeviceDriver', (NIC, d, none)) for d in drivers])
                names = [name for _, name, _ in got]
                self.assertEqual(names, ['ok', ERR + 'Failed', ERR + 'InvalidArgument', 'ok', ERR + 'Failed', 'ok',
                                         'ok', ERR + 'Failed'], got)
                for d, (_, name, message) in zip(drivers, got):
                        if name != 'ok':
                                # about its own driver, not the state another request left
                                self.assertIn(d, message, got)
                # --help was refused before it was queued; the others were answered in call order
                self.assertEqual(got[2][0], 0, got)
                queued = [order for i, (order, _, _) in enumerate(got) if i != 2]
                self.assertEqual(queued, sorted(queued), got)
                # the last request failed: the declaration and the function are the one before it's
                self.assertIn('Driver=vfio-pci\n', self.request_file(NIC))
                self.wait_converged(NIC, 'vfio-pci')
                self.assertEqual(self.dev(NIC, 'DesiredDriver'), 'vfio-pci')
                self.wait_manager('State', 'converged')
                for bad in ('HOST', 'NOPE', '--help'):
                        self.assertNotIn(bad, self.request_file(NIC))
                        self.assertNotIn(bad, self.override(NIC))

        def test_concurrent_requests_failed_last_restores_none(self):
                """A failed request after 'none': the function stays unbound, declared 'none'."""
                self.start()
                none = dbus.Array([], signature='s')
                got = self.concurrent_calls([('SetDeviceDriver', (NIC, 'none', none)),
                                             ('SetDeviceDriver', (NIC, 'HOST', none))])
                self.assertEqual([name for _, name, _ in got], ['ok', ERR + 'Failed'], got)
                self.assertIn('HOST', got[1][2])
                self.assertIn('Driver=none\n', self.request_file(NIC))
                self.wait_dev(NIC, 'State', 'converged')
                self.assertIsNone(self.driver(NIC))

        def test_queue_bound_and_gone_caller(self):
                """While a request for the NIC hangs in the kernel, 16 more wait for it and the 17th is refused at
                once; a waiting caller that disconnects is dropped at its turn; the rest run in order."""
                # The stuck unbind must outlast 17 calls on a loaded machine: a deadline of 10 s did not.
                self.start(env={'HOSTDEVD_WRITE_TIMEOUT_MS': '120000'})
                none = dbus.Array([], signature='s')
                manager = dbus.Interface(self.c.obj(ROOT_PATH), MANAGER_IFACE)
                answers = {}

                def call(i, driver):
                        manager.SetDeviceDriver(NIC, driver, none, timeout=h.timeout(120),
                                                reply_handler=lambda: answers.setdefault(i, ('ok', '')),
                                                error_handler=lambda e: answers.setdefault(
                                                        i, (e.get_dbus_name(), e.get_dbus_message())))

                self.reactor.stuck_unbind.add(NIC)
                call(0, 'vfio-pci')
                self.reactor.wait_stuck()
                # a caller on a connection of its own; it leaves only once its request waits (below):
                # gone before hostdevd looked it up, it would be refused as an unknown caller instead
                other = dbus.bus.BusConnection(self.bus.address)
                gone = other.get_unique_name()
                dbus.Interface(other.get_object(h.BUS_NAME, ROOT_PATH, introspect=False),
                               MANAGER_IFACE).SetDeviceDriver(NIC, 'NOPE', none, reply_handler=lambda: None,
                                                              error_handler=lambda e: None)
                # a round trip on the same connection: hostdevd has read that call before the ones below
                dbus.Interface(other.get_object(h.BUS_NAME, ROOT_PATH, introspect=False),
                               'org.freedesktop.DBus.Peer').Ping()
                drivers = ['vfio-pci' if i % 2 == 0 else 'none' for i in range(15)]
                for i, d in enumerate(drivers):
                        call(1 + i, d)
                call(16, 'none')
                # refused at once: the 16 before it (the other connection's too) all wait
                self.c.wait_for(lambda: 16 in answers, 30, 'the 17th waiting request refused')
                other.close()
                self.c.wait_for(lambda: not self.c.conn.name_has_owner(gone), 10, '%s gone' % gone)
                self.assertEqual(answers[16][0], ERR + 'Failed')
                self.assertIn('too many requests waiting', answers[16][1])
                self.assertEqual(sorted(answers), [16], answers)
                self.reactor.stuck_unbind.discard(NIC)
                self.reactor.release_stuck()
                self.c.wait_for(lambda: len(answers) == 17, 120, lambda: 'all answered: %r' % answers)
                # the stuck unbind failed (EIO); every later one is answered about its own request
                self.assertEqual(answers[0][0], ERR + 'Failed', answers)
                self.assertEqual([answers[1 + i][0] for i in range(15)], ['ok'] * 15, answers)
                log = self.daemon.output()
                self.assertIn('SetDeviceDriver of %s: the caller %s disconnected before it could run' % (NIC, gone), log)
                self.assertNotIn('NOPE', self.request_file(NIC))
                self.assertNotIn('driver NOPE', log)
                self.assertIn('Driver=vfio-pci\n', self.request_file(NIC))
                self.wait_converged(NIC, 'vfio-pci')

        def test_stop_with_requests_waiting(self):
                """SIGTERM while a request hangs in the kernel and two wait for its function: no caller hangs,
                none is told it succeeded, and the daemon exits 0 (under ASan: the waiting requests are not
                leaked). sd-bus closes the connection when the loop exits, so the callers may hear it from the
                bus (NoReply) rather than from hostdevd (Error.Failed "hostdevd is stopping")."""
                self.start()
                none = dbus.Array([], signature='s')
                manager = dbus.Interface(self.c.obj(ROOT_PATH), MANAGER_IFACE)
                answers = {}
                self.reactor.stuck_unbind.add(NIC)
                for i, d in enumerate(('vfio-pci', 'none', 'vfio-pci')):
                        manager.SetDeviceDriver(NIC, d, none, timeout=h.timeout(120),
                                                reply_handler=lambda i=i: answers.setdefault(i, ('ok', '')),
                                                error_handler=lambda e, i=i: answers.setdefault(
                                                        i, (e.get_dbus_name(), e.get_dbus_message())))
                        if i == 0:
                                self.reactor.wait_stuck()
                self.c.wait_for(lambda: self.call('Plan') is not None, 10, 'the daemon read the calls')
                self.daemon.proc.terminate()
                self.c.wait_for(lambda: 1 in answers and 2 in answers, 30,
                                lambda: 'waiting requests answered at stop: %r\n%s' % (answers, self.daemon.output()))
                for i in (1, 2):
                        self.assertIn(answers[i], ((ERR + 'Failed', 'hostdevd is stopping'),
                                                   ('org.freedesktop.DBus.Error.NoReply', answers[i][1])), answers)
                self.reactor.stuck_unbind.discard(NIC)
                self.reactor.release_stuck()
                self.assertEqual(self.daemon.proc.wait(timeout=h.timeout(30)), 0, self.daemon.output())
                self.c.wait_for(lambda: 0 in answers, 30, 'the hung request answered')
                self.assertNotEqual(answers[0][0], 'ok', answers)
                # none of them is in force: the hung one restored what was there before it (nothing)
                self.assertIsNone(self.request_file(NIC))

        def test_concurrent_requests_many_functions(self):
                """Requests for different functions at once: each answered about its own function."""
                self.start()
                none = dbus.Array([], signature='s')
                got = self.concurrent_calls([('SetDeviceDriver', (NIC, 'vfio-pci', none)),
                                             ('SetDeviceDriver', (PAIR[0], 'vfio-pci', none)),
                                             ('SetDeviceDriver', (PF, 'vfio-pci', none)),
                                             ('ResetDeviceDriver', (PAIR[1],))])
                self.assertEqual([name for _, name, _ in got], ['ok', ERR + 'Refused', 'ok', ERR + 'NotFound'], got)
                self.assertIn(PAIR[0], got[1][2])
                self.assertIn(PAIR[1], got[3][2])
                self.wait_converged(NIC, 'vfio-pci')
                self.wait_converged(PF, 'vfio-pci')
                self.assertEqual(self.driver(PAIR[0]), 'e1000e')
                self.assertIsNone(self.request_file(PAIR[0]))
                self.assertIn('Driver=vfio-pci\n', self.request_file(PF))

        def test_set_num_vfs(self):
                """SetNumVFs on a PF: autoprobe 0 before the VFs exist, each VF on vfio-pci, no iavf probe."""
                c = self.start()
                self.call('SetNumVFs', PF, dbus.UInt32(2), 'vfio-pci', dbus.Array([], signature='s'))
                vfs = ['0000:05:02.0', '0000:05:02.1']
                for vf in vfs:
                        c.wait_for(lambda vf=vf: self.H.k.exists(vf), 30, '%s created' % vf)
                        self.wait_converged(vf, 'vfio-pci')
                self.assertEqual(self.dev(PF, 'SriovNumVFs'), 2)
                self.assertEqual(self.dev(PF, 'VirtFns'), vfs)
                self.assertEqual(self.driver(PF), 'i40e', 'the PF keeps its driver')
                names = [os.path.basename(p) for p, v, e in self.reactor.writes if PF in p or
                         os.path.relpath(self.H.t.devdir(PF), self.H.t.sys) in p]
                self.assertLess(names.index('sriov_drivers_autoprobe'), names.index('sriov_numvfs'))
                self.assertNotIn('iavf', [d for a, d in self.H.k.binds if a in vfs], 'a VF was probed by iavf')
                self.wait_manager('State', 'converged')
                # a change goes through 0
                self.call('SetNumVFs', PF, dbus.UInt32(3), 'vfio-pci', dbus.Array([], signature='s'))
                vf2 = '0000:05:02.2'
                c.wait_for(lambda: self.H.k.exists(vf2), 30, '%s created' % vf2)
                self.wait_converged(vf2, 'vfio-pci')
                numvfs = [v.strip() for p, v, e in self.reactor.writes if p.endswith('/sriov_numvfs')]
                self.assertEqual(numvfs, ['2', '0', '3'])
                self.assertEqual(self.reactor.kernel_errors, [])
                self.assertDBusError(ERR + 'Refused', 'SetNumVFs', PF, dbus.UInt32(9), 'vfio-pci',
                                     dbus.Array([], signature='s'))
                self.assertDBusError(ERR + 'Refused', 'SetNumVFs', NIC, dbus.UInt32(1), 'vfio-pci',
                                     dbus.Array([], signature='s'))

        def test_sriov_file(self):
                """[SRIOV] NumVFs=/VFDriver= in a file converges at start."""
                self.start({'40-pf.conf': conf({'Address': PF}, sriov={'NumVFs': '2', 'VFDriver': 'vfio-pci'})})
                for vf in ('0000:05:02.0', '0000:05:02.1'):
                        self.c.wait_for(lambda vf=vf: self.H.k.exists(vf), 30, '%s created' % vf)
                        self.wait_converged(vf, 'vfio-pci')
                self.wait_manager('State', 'converged')


        # -- issue 13 section 2: a removed rule gives back what hostdevd changed on the PF
        def pf_attr(self, name):
                return h.Testbed.read(os.path.join(self.H.t.devdir(PF), name)).strip()

        def converge_sriov_rule(self):
                self.start({'40-pf.conf': conf({'Address': PF}, sriov={'NumVFs': '2', 'VFDriver': 'vfio-pci'})})
                vfs = ['0000:05:02.0', '0000:05:02.1']
                for vf in vfs:
                        self.c.wait_for(lambda vf=vf: self.H.k.exists(vf), 30, '%s created' % vf)
                        self.wait_converged(vf, 'vfio-pci')
                self.wait_manager('State', 'converged')
                self.assertEqual((self.pf_attr('sriov_numvfs'), self.pf_attr('sriov_drivers_autoprobe')), ('2', '0'))
                return vfs

        def owned_record(self, address):
                with open(os.path.join(self.dirs['state'], 'owned.json')) as f:
                        devices = json.load(f)['devices']
                log = os.path.join(self.dirs['state'], 'owned.log')
                forgotten = False
                if os.path.exists(log):
                        with open(log) as f:
                                for line in f:
                                        r = json.loads(line)
                                        if 'begin' in r:
                                                devices = [d for d in devices if d['address'] not in
                                                           {x['address'] for x in r['devices']}] + r['devices']
                                        elif r.get('forget') == address:
                                                forgotten = True
                                                devices = [d for d in devices if d['address'] != address]
                                        elif r.get('forget-sriov') == address:
                                                for d in devices:
                                                        if d['address'] == address:
                                                                for k in ('original-sriov-numvfs', 'sriov-numvfs',
                                                                          'original-sriov-drivers-autoprobe',
                                                                          'sriov-drivers-autoprobe'):
                                                                        d.pop(k)
                return next((d for d in devices if d['address'] == address), None), forgotten

        def assert_given_back(self, vfs, n_writes):
                self.c.wait_for(lambda: self.pf_attr('sriov_numvfs') == '0', 30, 'sriov_numvfs back to 0')
                self.c.wait_for(lambda: self.pf_attr('sriov_drivers_autoprobe') == '1', 30, 'autoprobe back to 1')
                for vf in vfs:
                        self.c.wait_for(lambda vf=vf: not self.H.k.exists(vf), 30, '%s removed' % vf)
                self.wait_dev(PF, 'SriovNumVFs', 0)
                self.wait_dev(PF, 'SriovDriversAutoprobe', True)
                self.wait_manager('State', 'converged')
                self.assertEqual(self.driver(PF), 'i40e', 'the PF keeps its driver')
                # autoprobe first, so VFs a later count creates find their host driver
                names = [(os.path.basename(p), v.strip()) for p, v, e in self.reactor.writes[n_writes:]
                         if os.path.relpath(self.H.t.devdir(PF), self.H.t.sys) in p]
                self.assertEqual(names, [('sriov_drivers_autoprobe', '1'), ('sriov_numvfs', '0')])
                # nothing of hostdevd's is left on the PF: its record is gone
                self.c.wait_for(lambda: self.owned_record(PF)[0] is None, 30, 'the PF record forgotten')

        def test_removed_sriov_rule_gives_back(self):
                """A PF's NumVFs/VFDriver rule removed: sriov_drivers_autoprobe and sriov_numvfs go back to what
                they were before hostdevd changed them (issue 13 section 2)."""
                vfs = self.converge_sriov_rule()
                rec, _ = self.owned_record(PF)
                self.assertEqual((rec['original-sriov-numvfs'], rec['original-sriov-drivers-autoprobe'],
                                  rec['sriov-numvfs'], rec['sriov-drivers-autoprobe']), (0, True, 2, False))
                n = len(self.reactor.writes)
                os.unlink(self.etc('40-pf.conf'))
                self.call('Reload')
                self.assert_given_back(vfs, n)

        def test_removed_sriov_rule_across_restart(self):
                """Removed while hostdevd is stopped: the next start gives the settings back."""
                vfs = self.converge_sriov_rule()
                self.assertEqual(self.daemon.stop(), 0)
                self.assertEqual(self.pf_attr('sriov_numvfs'), '2', 'stopping undoes nothing')
                os.unlink(self.etc('40-pf.conf'))
                n = len(self.reactor.writes)
                self.start()
                self.assert_given_back(vfs, n)

        def test_removed_sriov_rule_blocked_by_vf_holder(self):
                """A VF held open: the count is not given back (blocked, naming the holder) until it goes."""
                vfs = self.converge_sriov_rule()
                holder = self.hold(self.dev(vfs[1], 'IommuGroup'))
                n = len(self.reactor.writes)
                os.unlink(self.etc('40-pf.conf'))
                self.call('Reload')
                self.wait_dev(PF, 'State', 'blocked')
                reason = self.dev(PF, 'StateReason')
                self.assertIn('VF %s held by ' % vfs[1], reason)
                self.assertIn('pid %d (sleep) via /dev/vfio/' % holder.pid, reason)
                self.H.barrier(self.c)
                self.assertEqual(self.pf_attr('sriov_numvfs'), '2')
                self.assertEqual([w for w in self.reactor.writes[n:] if 'sriov' in w[0]], [])
                holder.kill()
                holder.wait()
                self.call('Apply')
                self.assert_given_back(vfs, n)

        def test_sriov_changed_by_others_is_theirs(self):
                """Someone else wrote the VF count after hostdevd: not hostdevd's to give back."""
                vfs = self.converge_sriov_rule()
                self.assertEqual(self.daemon.stop(), 0)
                os.unlink(self.etc('40-pf.conf'))
                self.H.k.pace = None  # no daemon to pace with until start()
                self.H.k.set_sriov_numvfs(PF, 0)
                self.H.k.set_sriov_numvfs(PF, 3)
                n = len(self.reactor.writes)
                self.start()
                self.wait_manager('State', 'converged')
                self.c.wait_for(lambda: self.owned_record(PF)[0] is None or
                                'sriov-numvfs' not in self.owned_record(PF)[0], 30, 'SR-IOV record dropped')
                self.H.barrier(self.c)
                self.assertEqual(self.pf_attr('sriov_numvfs'), '3')
                self.assertEqual([w for w in self.reactor.writes[n:] if 'sriov_numvfs' in w[0]], [])
                del vfs

        def test_hotplug_converges(self):
                """A hot-added function that a Vendor/Device rule matches converges with no command."""
                c = self.start({'50-82574.conf': conf({'Vendor': '8086', 'Device': '10d3'}, {'Driver': 'vfio-pci'})})
                self.wait_converged(NIC, 'vfio-pci')
                new = '0000:06:00.0'
                since = len(c.signals)
                self.H.k.hot_add('devices/pci0000:00/' + new, 0x8086, 0x10d3, 0x020000, driver='e1000e', group=20,
                                 bars={0: (0xf5000000, 0x20000, h.MEM32)})
                c.wait_signal(lambda s: s[0] == 'InterfacesAdded' and s[3][0] == device_path(new), since,
                              what='InterfacesAdded ' + new)
                self.wait_converged(new, 'vfio-pci')
                self.assertEqual(self.override(new), 'vfio-pci\n')
                # The fake kernel binds e1000e right after the 'add' (holding its lock, so before any
                # write of the daemon lands), as pci_bus_add_device() does when driver_override came
                # too late. Whether the daemon acted on the kernel's 'add' (its early monitor) or on
                # udevd's, the new function's one transaction takes it from e1000e: driver_override
                # first, then unbind and probe; never a rollback (no override cleared) in between.
                writes = [(p, v.strip()) for p, v, e in self.writes_naming(new)]
                override = ('devices/pci0000:00/%s/driver_override' % new, 'vfio-pci')
                unbind, probe = ('bus/pci/drivers/e1000e/unbind', new), ('bus/pci/drivers_probe', new)
                self.assertEqual(writes[0], override, writes)
                self.assertIn(writes[1:], ([unbind, probe], [probe, unbind, probe]), writes)
                self.assertEqual(self.writes_naming(PAIR[0]), [], 'another device id: not matched')
                self.wait_manager('State', 'converged')

        def test_hotplug_unclaimed(self):
                """Issue 13: a hot-added function that no rule claims keeps the driver of the kernel's own
                probe, with nothing written for it; no host-wide setting is ever written
                (drivers_autoprobe), and Manager.HotplugGuard follows the rules."""
                c = self.start()
                self.assertEqual(c.manager('HotplugGuard'), 'none')
                for name, expected in (('none', None), ('driver-override', conf({'Address': NIC}, {'Driver': 'vfio-pci'}))):
                        if expected is not None:
                                since = len(c.signals)
                                self.write_conf('50-nic.conf', expected)
                                self.call('Reload')
                                c.wait_signal(lambda s: s[0] == 'PropertiesChanged' and s[1] == ROOT_PATH and
                                              s[3][0] == MANAGER_IFACE and
                                              ('HotplugGuard' in s[3][1] or 'HotplugGuard' in s[3][2]),
                                              since, limit=60, what='HotplugGuard changed')
                                self.assertEqual(c.manager('HotplugGuard'), name)
                                self.wait_converged(NIC, 'vfio-pci')
                        new = '0000:06:00.0' if expected is None else '0000:07:00.0'
                        since = len(c.signals)
                        self.H.k.hot_add('devices/pci0000:00/' + new, 0x8086, 0x10d3, 0x020000, driver='e1000e',
                                         group=20 if expected is None else 21,
                                         bars={0: (0xf5000000, 0x20000, h.MEM32)})
                        c.wait_signal(lambda s: s[0] == 'InterfacesAdded' and s[3][0] == device_path(new), since,
                                      limit=60, what='InterfacesAdded ' + new)
                        self.H.barrier(c)
                        self.assertEqual(self.dev(new, 'Driver'), 'e1000e', name)
                        self.assertEqual(self.dev(new, 'State'), 'converged', name)
                        self.assertEqual(self.writes_naming(new), [], name)
                        self.assertEqual(self.driver(new), 'e1000e', name)
                self.assertEqual([w for w in self.reactor.writes if 'drivers_autoprobe' in w[0]], [])
                self.assertEqual(self.H.t.read(os.path.join(self.H.t.sys, 'bus/pci/drivers_autoprobe')), '1\n')

        def test_hotplug_before_first_probe(self):
                """From the kernel's uevents, a hot-added function gets driver_override on its 'add':
                the host driver never binds it, and the daemon reads it once it is bound."""
                c = self.start({'50-82574.conf': conf({'Vendor': '8086', 'Device': '10d3'}, {'Driver': 'vfio-pci'})},
                               source='kernel')
                self.wait_converged(NIC, 'vfio-pci')
                new = '0000:06:00.0'
                since = len(c.signals)
                # 'add' only: the fake kernel's first probe is the daemon's drivers_probe.
                self.H.k.before_send()
                self.H.t.add_pci('devices/pci0000:00/' + new, 0x8086, 0x10d3, 0x020000, group=20,
                                 bars={0: (0xf5000000, 0x20000, h.MEM32)})
                c.wait_signal(lambda s: s[0] == 'InterfacesAdded' and s[3][0] == device_path(new), since,
                              what='InterfacesAdded ' + new)
                self.wait_converged(new, 'vfio-pci')
                added = [s for s in c.signals[since:] if s[0] == 'InterfacesAdded' and s[3][0] == device_path(new)]
                self.assertEqual(len(added), 1, added)
                self.assertEqual(added[0][3][1][DEVICE_IFACE]['Driver'], 'vfio-pci',
                                 'first published once bound, not in between')
                self.assertEqual([(p, v.strip()) for p, v, e in self.writes_naming(new)],
                                 [('devices/pci0000:00/%s/driver_override' % new, 'vfio-pci'),
                                  ('bus/pci/drivers_probe', new)])
                self.assertNotIn((new, 'e1000e'), self.H.k.binds)
                self.assertIn("driver_override vfio-pci before the kernel", self.daemon.output())
                self.wait_manager('State', 'converged')

        def test_hotplug_into_critical_group(self):
                """A hot-added function that a rule names, in the IOMMU group of the boot VGA: no
                driver_override on its 'add' (a group peer), and the plan refuses it as host-critical,
                naming the peer; nothing is written for it."""
                gpu, audio = '0000:07:00.0', '0000:07:00.1'
                self.H.t.add_pci('devices/pci0000:00/' + gpu, 0x10de, 0x2236, 0x030000, driver='nouveau', group=30,
                                 boot_vga=True, bars={0: (0xf0000000, 0x1000000, h.MEM32)})
                c = self.start({'50-audio.conf': conf({'Vendor': '10de', 'Device': '1aef'}, {'Driver': 'vfio-pci'})},
                               source='kernel')
                self.wait_manager('State', 'converged')
                since = len(c.signals)
                self.H.k.before_send()
                self.H.t.add_pci('devices/pci0000:00/' + audio, 0x10de, 0x1aef, 0x040300, group=30)
                c.wait_signal(lambda s: s[0] == 'InterfacesAdded' and s[3][0] == device_path(audio), since,
                              what='InterfacesAdded ' + audio)
                self.wait_dev(audio, 'State', 'refused')
                self.assertIn(gpu, self.dev(audio, 'StateReason'))
                self.H.barrier(c)
                self.assertEqual(self.writes_naming(audio) + self.writes_naming(gpu), [])
                self.assertNotIn('before the kernel', self.daemon.output())
                self.assertEqual((self.driver(gpu), self.driver(audio)), ('nouveau', None))
                self.wait_manager('State', 'refused')

        def test_kernel_source_reads_new_function_after_probe(self):
                """From the kernel's uevents, a new function is read on its first 'bind' (published
                once, with that driver), or after the settle time when nothing binds it."""
                c = self.start({}, source='kernel')
                since = len(c.signals)
                bound, unbound = '0000:06:00.0', '0000:06:00.1'
                self.H.k.hot_add('devices/pci0000:00/' + bound, 0x8086, 0x10d3, 0x020000, driver='e1000e',
                                 group=20, bars={0: (0xf5000000, 0x20000, h.MEM32)})
                self.H.k.before_send()
                t0 = time.monotonic()
                self.H.t.add_pci('devices/pci0000:00/' + unbound, 0x8086, 0x10d3, 0x020000, group=21,
                                 bars={0: (0xf6000000, 0x20000, h.MEM32)})
                for a in (bound, unbound):
                        c.wait_signal(lambda s, a=a: s[0] == 'InterfacesAdded' and s[3][0] == device_path(a), since,
                                      what='InterfacesAdded ' + a)
                self.assertGreaterEqual(time.monotonic() - t0, 0.045, 'read before the settle time')
                added = {s[3][0]: s[3][1][DEVICE_IFACE] for s in c.signals[since:] if s[0] == 'InterfacesAdded'}
                self.assertEqual(added[device_path(bound)]['Driver'], 'e1000e')
                self.assertEqual(added[device_path(unbound)]['Driver'], '')
                changed = [s for s in c.signals[since:] if s[0] == 'PropertiesChanged' and s[1] == device_path(bound)
                           and 'Driver' in s[3][1]]
                self.assertEqual(changed, [], 'published once, with its driver')
                self.assertEqual(self.dev(unbound, 'VendorId'), 0x8086)

        def test_hotplug_early_needs_whole_read(self):
                """A rule with Serial= cannot be decided on the 'add' uevent: the function is read
                whole first, then converges through the usual plan."""
                c = self.start({'50-82574.conf': conf({'Vendor': '8086', 'Device': '10d3'}, {'Driver': 'vfio-pci'}),
                                '60-serial.conf': conf({'Serial': '00-11-22-33-44-55-66-77'}, {'Driver': 'vfio-pci'})},
                               source='kernel')
                self.wait_converged(NIC, 'vfio-pci')
                new = '0000:06:00.0'
                self.H.k.hot_add('devices/pci0000:00/' + new, 0x8086, 0x10d3, 0x020000, driver='e1000e', group=20,
                                 bars={0: (0xf5000000, 0x20000, h.MEM32)})
                self.wait_converged(new, 'vfio-pci')
                self.assertNotIn("before the kernel", self.daemon.output())
                self.wait_manager('State', 'converged')

        def test_boot_vga_refused(self):
                """The boot VGA and its group peer are host-critical: refused with the reason, no write."""
                gpu, audio = '0000:07:00.0', '0000:07:00.1'
                self.H.t.add_pci('devices/pci0000:00/' + gpu, 0x10de, 0x2236, 0x030000, driver='nouveau', group=30,
                                 boot_vga=True, bars={0: (0xf0000000, 0x1000000, h.MEM32)})
                self.H.t.add_pci('devices/pci0000:00/' + audio, 0x10de, 0x1aef, 0x040300, driver='snd_hda_intel',
                                 group=30)
                c = self.start({'50-gpu.conf': conf({'Address': gpu}, {'Driver': 'vfio-pci', 'Group': 'whole'}),
                                '51-audio.conf': conf({'Address': audio}, {'Driver': 'vfio-pci'})})
                self.wait_dev(gpu, 'State', 'refused')
                self.wait_dev(audio, 'State', 'refused')
                self.assertIn('VGA', self.dev(gpu, 'StateReason').upper())
                self.assertIn(gpu, self.dev(audio, 'StateReason'))
                self.H.barrier(c)
                self.assertEqual(self.writes_naming(gpu) + self.writes_naming(audio), [])
                self.assertEqual((self.driver(gpu), self.driver(audio)), ('nouveau', 'snd_hda_intel'))
                self.wait_manager('State', 'refused')


        def test_sighup_reloads(self):
                c = self.start()
                gen = c.manager('Generation')
                self.write_conf('50-nic.conf', conf({'Address': NIC}, {'Driver': 'vfio-pci'}))
                self.daemon.proc.send_signal(1)
                self.wait_converged(NIC, 'vfio-pci')
                self.assertGreater(c.manager('Generation'), gen)

        def test_restart_adopts(self):
                """Exit undoes nothing; a restart adopts what is already as declared without writing."""
                self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.wait_converged(NIC, 'vfio-pci')
                self.wait_manager('State', 'converged')
                n = len(self.reactor.writes)
                self.assertEqual(self.daemon.stop(), 0)
                self.assertEqual(len(self.reactor.writes), n, 'writes on exit')
                self.assertEqual((self.driver(NIC), self.override(NIC)), ('vfio-pci', 'vfio-pci\n'))
                c = self.start()
                # (right after READY=1 the first plan may not be published yet: wait for it)
                self.wait_dev(NIC, 'DesiredDriver', 'vfio-pci')
                self.wait_dev(NIC, 'State', 'converged')
                self.wait_manager('State', 'converged')
                self.H.barrier(c)
                self.assertEqual(self.reactor.writes[n:], [], 'a restart wrote sysfs for an adopted device')

        def test_sigkill_mid_apply(self):
                """SIGKILL while an unbind hangs, the rule removed, restart: the interrupted transaction is
                rolled back; no stale driver_override is left."""
                self.reactor.stuck_unbind.add(NIC)
                self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.reactor.wait_stuck()
                self.assertEqual(self.override(NIC), 'vfio-pci\n')
                self.daemon.proc.kill()
                self.daemon.proc.wait()
                # the driver gives up: the unbind returns (to nobody) and changed nothing
                self.reactor.stuck_unbind.discard(NIC)
                self.reactor.release_stuck()
                self.reactor.wait_written(('bus/pci/drivers/e1000e/unbind', NIC, errno.EIO))
                os.unlink(self.etc('50-nic.conf'))
                self.start()
                self.c.wait_for(lambda: self.override(NIC) == '(null)\n', 30, 'driver_override cleared')
                self.wait_converged(NIC, 'e1000e')
                self.wait_manager('State', 'converged')


class Failures(ReconcileTestCase):
        """Failure injection in the fake kernel."""

        def setUp(self):
                super().setUp()
                build_host(self.H)

        def test_probe_binds_nothing(self):
                """vfio-pci's probe binds nothing: State failed, override cleared, the host driver back."""
                self.reactor.probe_binds_nothing[NIC] = 'vfio-pci'
                self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.wait_dev(NIC, 'State', 'failed')
                err = self.dev(NIC, 'LastError')
                self.assertIn(NIC, err)
                self.assertIn('vfio-pci', err)
                self.assertIn('probe', err)
                self.assertTrue(self.dev(NIC, 'StateReason'))
                # Driver said e1000e before the transaction too: a wait on it alone proves nothing
                # until the daemon applied the uevents of the unbind and the rollback's probe.
                self.assertIn(('bus/pci/drivers/e1000e/unbind', NIC, 0),
                              [(p, v.strip(), e) for p, v, e in self.reactor.writes])
                self.H.barrier(self.c)
                self.wait_dev(NIC, 'Driver', 'e1000e')
                self.assertEqual(self.override(NIC), '(null)\n')
                self.assertEqual(self.driver(NIC), 'e1000e')
                self.wait_manager('State', 'failed')
                self.assertEqual(self.dev(NIC, 'DriverOverride'), '')

        def test_unbind_never_completes(self):
                """An unbind stuck in the kernel: State stuck, and the daemon keeps answering."""
                self.reactor.stuck_unbind.add(NIC)
                c = self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                path, value = self.reactor.wait_stuck()
                self.assertEqual((path, value), ('bus/pci/drivers/e1000e/unbind', NIC))
                t0 = time.monotonic()
                objs = c.managed_objects(timeout_s=5)
                self.assertIn(device_path(NIC), objs)
                self.assertLess(time.monotonic() - t0, 5)
                self.wait_dev(NIC, 'State', 'stuck', limit=120)
                self.assertTrue(self.dev(NIC, 'StateReason'))
                self.wait_manager('State', 'stuck')
                # still serving: reads, Plan, another device's properties
                self.assertEqual(self.dev(PAIR[0], 'Driver'), 'e1000e')
                self.call('Plan')
                self.assertIn(device_path(PF), c.managed_objects(timeout_s=5))
                # the write returns at last (the driver gave up): no more stuck
                self.reactor.stuck_unbind.discard(NIC)
                self.reactor.release_stuck()
                c.wait_for(lambda: self.dev(NIC, 'State') != 'stuck', 60, 'NIC no longer stuck')

        def test_numvfs_ebusy(self):
                """The PF driver refuses the VF count (EBUSY from sriov_numvfs): failed, named, rolled back."""
                self.reactor.numvfs_busy.add(PF)
                self.start({'40-pf.conf': conf({'Address': PF}, sriov={'NumVFs': '2', 'VFDriver': 'vfio-pci'})})
                self.wait_dev(PF, 'State', 'failed')
                err = self.dev(PF, 'LastError')
                self.assertIn('sriov_numvfs', err)
                self.assertIn('EBUSY', err)
                self.assertIn(('%s/sriov_numvfs' % os.path.relpath(self.H.t.devdir(PF), self.H.t.sys), '2',
                               errno.EBUSY), self.reactor.kernel_errors)
                self.assertEqual(self.dev(PF, 'SriovNumVFs'), 0)
                self.assertEqual(h.Testbed.read(os.path.join(self.H.t.devdir(PF), 'sriov_drivers_autoprobe')),
                                 '1\n', 'rolled back')
                self.wait_manager('State', 'failed')

        def test_numvfs_ebusy_method(self):
                """The same through SetNumVFs: the caller learns it (Error.Failed naming the write) or
                the PF shows failed; either way the PF's LastError names it and nothing stays changed."""
                self.reactor.numvfs_busy.add(PF)
                self.start()
                try:
                        self.call('SetNumVFs', PF, dbus.UInt32(2), 'vfio-pci', dbus.Array([], signature='s'))
                except dbus.DBusException as e:
                        # org.hostdevd1.Error.Failed: "anything else, with the errno text"
                        self.assertEqual(e.get_dbus_name(), ERR + 'Failed', e.get_dbus_message())
                        self.assertIn('sriov_numvfs', e.get_dbus_message())
                        self.assertIn('EBUSY', e.get_dbus_message())
                else:
                        self.wait_dev(PF, 'State', 'failed')
                err = self.dev(PF, 'LastError')
                self.assertIn('sriov_numvfs', err)
                self.assertIn('EBUSY', err)
                self.assertEqual(self.dev(PF, 'SriovNumVFs'), 0)
                self.assertEqual(h.Testbed.read(os.path.join(self.H.t.devdir(PF), 'sriov_drivers_autoprobe')),
                                 '1\n', 'rolled back')

        def test_holder_blocks_unbind(self):
                """A process holding /dev/vfio/10 blocks the NIC's return to the host; its exit is seen."""
                c = self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.wait_converged(NIC, 'vfio-pci')
                self.assertEqual(c.manager('HolderTracking'), 'fanotify')
                holder = self.hold(10)
                # fanotify: the open alone shows it, with no plan
                expected = [(holder.pid, 'sleep', '/dev/vfio/10')]
                c.wait_for(lambda: self.dev(NIC, 'Holders') == expected, 30, 'the holder on the NIC')
                self.assertEqual(c.manager('UnleasedHolders'), [(holder.pid, 'sleep', [NIC])])
                n_writes = len(self.writes_naming(NIC))
                os.unlink(self.etc('50-nic.conf'))
                self.call('Reload')
                self.wait_dev(NIC, 'State', 'blocked')
                reason = self.dev(NIC, 'StateReason')
                self.assertIn(str(holder.pid), reason)
                self.assertIn('sleep', reason)
                self.wait_manager('State', 'blocked')
                self.H.barrier(c)
                self.assertEqual(len(self.writes_naming(NIC)), n_writes, 'a held device was written')
                self.assertEqual(self.driver(NIC), 'vfio-pci')
                # the holder exits: its pidfd (and the close) let the blocked work go on, no Apply
                holder.kill()
                holder.wait()
                self.wait_converged(NIC, 'e1000e')
                self.wait_manager('State', 'converged')
                self.assertEqual(self.dev(NIC, 'Holders'), [])
                self.assertEqual(c.manager('UnleasedHolders'), [])
                # logged once at the open: "sh" then, when the open came before the exec of sleep
                self.assertRegex(self.daemon.output(),
                                 r'Process %d \((sh|sleep)\) holds /dev/vfio/10 with no lease' % holder.pid)

        def test_holder_close_unblocks(self):
                """A holder that closes its node (and lives on) is noticed: the work proceeds, no Apply."""
                c = self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.wait_converged(NIC, 'vfio-pci')
                holder = self.hold(10, closable=True)
                c.wait_for(lambda: self.dev(NIC, 'Holders') == [(holder.pid, 'sh', '/dev/vfio/10')], 30,
                           'the holder on the NIC')
                os.unlink(self.etc('50-nic.conf'))
                self.call('Reload')
                self.wait_dev(NIC, 'State', 'blocked')
                self.assertEqual(self.driver(NIC), 'vfio-pci')
                self.release(holder)
                self.wait_converged(NIC, 'e1000e')
                self.wait_manager('State', 'converged')
                self.assertIsNone(holder.poll(), 'the holder lives on')
                self.assertEqual(self.dev(NIC, 'Holders'), [])

        def test_holder_scan_tracking(self):
                """With HOSTDEVD_HOLDER_TRACKING=scan: a plan sees the holder (scanned off the loop),
                a close with no exit is found by the rescan while holders exist, an exit by its pidfd."""
                c = self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})},
                               env={'HOSTDEVD_HOLDER_TRACKING': 'scan'})
                self.wait_converged(NIC, 'vfio-pci')
                self.assertEqual(c.manager('HolderTracking'), 'scan')
                holder = self.hold(10, closable=True)
                os.unlink(self.etc('50-nic.conf'))
                self.call('Reload')
                self.wait_dev(NIC, 'State', 'blocked')
                self.assertEqual(self.dev(NIC, 'Holders'), [(holder.pid, 'sh', '/dev/vfio/10')])
                self.release(holder)
                self.wait_converged(NIC, 'e1000e')
                self.wait_manager('State', 'converged')
                # back to vfio-pci, held again; this time the holder exits
                self.write_conf('50-nic.conf', conf({'Address': NIC}, {'Driver': 'vfio-pci'}))
                self.call('Reload')
                self.wait_converged(NIC, 'vfio-pci')
                holder = self.hold(10)
                os.unlink(self.etc('50-nic.conf'))
                self.call('Reload')
                self.wait_dev(NIC, 'State', 'blocked')
                holder.kill()
                holder.wait()
                self.wait_converged(NIC, 'e1000e')

        def test_holder_of_another_namespace_node(self):
                """A process whose /dev/vfio/10 is another file (its own mount namespace) holds nothing
                here: the NIC is given back (scan mode, where only the path was compared before)."""
                c = self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})},
                               env={'HOSTDEVD_HOLDER_TRACKING': 'scan'})
                self.wait_converged(NIC, 'vfio-pci')
                self.assertEqual(c.manager('HolderTracking'), 'scan')
                stranger = self.hold(10, foreign=True)
                os.unlink(self.etc('50-nic.conf'))
                self.call('Reload')
                self.wait_converged(NIC, 'e1000e')
                self.wait_manager('State', 'converged')
                self.assertEqual(self.dev(NIC, 'Holders'), [])
                self.assertEqual(c.manager('UnleasedHolders'), [])
                self.assertIsNone(stranger.poll(), 'the stranger still holds its own node')

        def test_apply_returns_state_after(self):
                """org.hostdevd1.xml: Apply returns when every transaction finished, with Manager.State."""
                c = self.start({'50-nic.conf': conf({'Address': NIC}, {'Driver': 'vfio-pci'})})
                self.wait_converged(NIC, 'vfio-pci')
                holder = self.hold(10)
                os.unlink(self.etc('50-nic.conf'))
                self.call('Reload')
                self.wait_dev(NIC, 'State', 'blocked')
                holder.kill()
                holder.wait()
                self.assertEqual(self.call('Apply'), 'converged')
                self.assertEqual(self.driver(NIC), 'e1000e')
                self.assertEqual(c.manager('State'), 'converged')


class Polkit(ReconcileTestCase):
        """Mutations checked with polkit (python-dbusmock's polkitd) for a non-root caller."""

        def setUp(self):
                super().setUp()
                build_host(self.H)
                self.start()
                # the non-root caller must reach the bus socket
                for d in (self.H.workdir, self.bus.dir):
                        os.chmod(d, 0o755)
                self.mocks = [subprocess.Popen(['/usr/bin/python3', '-m', 'dbusmock', '--system', '--template',
                                                'polkitd'],
                                               env=h.preload_free_env({'DBUS_SYSTEM_BUS_ADDRESS': self.bus.address}),
                                               stdout=subprocess.DEVNULL)]
                self.c.wait_for(lambda: self.c.conn.name_has_owner('org.freedesktop.PolicyKit1'), 30, 'polkitd mock')
                self.polkit = dbus.Interface(self.c.conn.get_object('org.freedesktop.PolicyKit1',
                                                                    '/org/freedesktop/PolicyKit1/Authority'),
                                             'org.freedesktop.DBus.Mock')

        def allow(self, *actions):
                self.polkit.SetAllowed(dbus.Array(actions, signature='s'))

        def test_denied_changes_nothing(self):
                self.allow()
                calls = [('Reload', ''), ('Apply', ''),
                         ('SetDeviceDriver', 'ssas', NIC, 'vfio-pci', []),
                         ('SetDeviceDriver', 'ssas', NIC, 'vfio-pci', ['persist']),
                         ('ResetDeviceDriver', 's', NIC),
                         ('SetNumVFs', 'susas', PF, 2, 'vfio-pci', [])]
                gen = self.c.manager('Generation')
                for method, sig, *args in calls:
                        r = self.nonroot_call(method, sig, *args)
                        self.assertEqual(r.get('error'), ACCESS_DENIED, '%s: %r' % (method, r))
                self.H.barrier(self.c)
                self.assertEqual(self.reactor.writes, [])
                self.assertEqual(self.c.manager('Generation'), gen)
                self.assertEqual([f for d in self.conf_dirs + self.request_dirs if os.path.isdir(d)
                                  for f in os.listdir(d) if f.endswith('.conf')], [])
                self.assertEqual(self.dev(NIC, 'DesiredDriver'), '')
                self.assertEqual(self.driver(NIC), 'e1000e')
                # reads need no authorization
                r = self.nonroot_call('Plan')
                self.assertIn('ok', r)
                r = self.nonroot_call('GetManagedObjects', path=ROOT_PATH, iface=h.OM_IFACE)
                self.assertIn('ok', r)

        def test_allowed(self):
                self.allow('org.hostdevd1.manage-devices')
                r = self.nonroot_call('SetDeviceDriver', 'ssas', NIC, 'vfio-pci', [])
                self.assertEqual(r, {'ok': 'None'})
                self.wait_converged(NIC, 'vfio-pci')
                # manage-devices does not cover SR-IOV or reload
                self.assertEqual(self.nonroot_call('SetNumVFs', 'susas', PF, 2, 'vfio-pci', []).get('error'),
                                 ACCESS_DENIED)
                self.assertEqual(self.nonroot_call('Reload').get('error'), ACCESS_DENIED)
                self.allow('org.hostdevd1.manage-devices', 'org.hostdevd1.manage-sriov', 'org.hostdevd1.reload')
                self.assertIn('ok', self.nonroot_call('Reload'))
                self.assertIn('ok', self.nonroot_call('SetNumVFs', 'susas', PF, 1, '', []))
                self.c.wait_for(lambda: self.dev(PF, 'SriovNumVFs') == 1, 30, 'one VF')
                self.assertIn('ok', self.nonroot_call('ResetDeviceDriver', 's', NIC))
                self.wait_converged(NIC, 'e1000e')

        def test_override_critical(self):
                """allow-critical needs org.hostdevd1.override-critical on top of manage-devices."""
                self.allow('org.hostdevd1.manage-devices')
                r = self.nonroot_call('SetDeviceDriver', 'ssas', IGPU, 'vfio-pci', ['allow-critical'])
                self.assertEqual(r.get('error'), ACCESS_DENIED, r)
                self.H.barrier(self.c)
                self.assertEqual(self.writes_naming(IGPU), [])
                self.assertEqual(self.dev(IGPU, 'DesiredDriver'), '')
                # without the flag: declared, but refused as critical
                r = self.nonroot_call('SetDeviceDriver', 'ssas', IGPU, 'vfio-pci', [])
                if 'error' in r:
                        # refused at once: the request is not kept
                        self.assertEqual(r['error'], ERR + 'Refused', r)
                        self.assertIn('VGA', r['message'].upper())
                        self.assertEqual(self.dev(IGPU, 'DesiredDriver'), '')
                else:
                        self.wait_dev(IGPU, 'State', 'refused')
                self.H.barrier(self.c)
                self.assertEqual(self.writes_naming(IGPU), [])
                self.assertEqual(self.driver(IGPU), 'i915')
                self.allow('org.hostdevd1.manage-devices', 'org.hostdevd1.override-critical')
                r = self.nonroot_call('SetDeviceDriver', 'ssas', IGPU, 'vfio-pci', ['allow-critical'])
                self.assertEqual(r, {'ok': 'None'})
                self.wait_converged(IGPU, 'vfio-pci')

        def test_root_skips_polkit(self):
                self.allow()
                self.call('SetDeviceDriver', NIC, 'vfio-pci', dbus.Array([], signature='s'))
                self.wait_converged(NIC, 'vfio-pci')


APPLY_NIC = '0000:06:00.0'            # Intel 82574L on e1000e, alone in group 13: Apply's work
LOG_CONTROL_IFACE = 'org.freedesktop.LogControl1'
POLKIT_NAME = 'org.freedesktop.PolicyKit1'
POLKIT_PATH = '/org/freedesktop/PolicyKit1/Authority'
HELD_POLKITD = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'polkitd-held.py')

# Tries to own hostdevd's name as the calling uid; prints the outcome as JSON.
OWNER = r'''
import json, sys
import dbus
try:
        conn = dbus.bus.BusConnection(sys.argv[1])
        print(json.dumps({'ok': conn.request_name('org.hostdevd1', dbus.bus.NAME_FLAG_DO_NOT_QUEUE)}))
except dbus.DBusException as e:
        print(json.dumps({'error': e.get_dbus_name(), 'message': e.get_dbus_message()}))
'''


class Authorization(ReconcileTestCase):
        """Every mutation of org.hostdevd1.xml x {caller root, polkit allows, polkit denies, polkit
        fails}, through the installed bus policy (hostdevtest.Bus includes dbus/org.hostdevd1.conf);
        callers other than root run as uid 65534. Denied: AccessDenied and nothing changed (request
        files, the fake kernel's sysfs, every property); allowed: the change happened. Reads and
        Plan work for everybody."""

        ACTIONS = ('org.hostdevd1.reload', 'org.hostdevd1.manage-devices', 'org.hostdevd1.manage-sriov')

        def setUp(self):
                super().setUp()
                build_host(self.H)
                self.H.t.add_pci('devices/pci0000:00/' + APPLY_NIC, 0x8086, 0x10d3, 0x020000, driver='e1000e',
                                 group=13, bars={0: (0xf5000000, 0x20000, h.MEM32)})
                # Apply's work: vfio-pci's first probe of APPLY_NIC fails; the function waits for Apply
                self.reactor.probe_binds_nothing[APPLY_NIC] = 'vfio-pci'
                self.start({'50-apply.conf': conf({'Address': APPLY_NIC}, {'Driver': 'vfio-pci'})})
                self.wait_dev(APPLY_NIC, 'State', 'failed')
                del self.reactor.probe_binds_nothing[APPLY_NIC]
                self.mocks = []

        # -- polkit
        def polkitd(self, verdict, actions=ACTIONS):
                """python-dbusmock's polkitd allowing |actions| ("allow") or nothing ("deny"), or
                polkitd-held.py answering every check with an error ("error"), in place of the one
                running."""
                for p in self.mocks:
                        p.terminate()
                        p.wait()
                self.c.wait_for(lambda: not self.c.conn.name_has_owner(POLKIT_NAME), 30, 'no polkitd')
                self.mocks = []
                env = h.preload_free_env({'DBUS_SYSTEM_BUS_ADDRESS': self.bus.address})
                if verdict == 'error':
                        cmd = ['/usr/bin/python3', HELD_POLKITD]
                else:
                        cmd = ['/usr/bin/python3', '-m', 'dbusmock', '--system', '--template', 'polkitd']
                p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, preexec_fn=h.die_with_parent)
                self.mocks.append(p)
                self.c.wait_for(lambda: self.c.conn.name_has_owner(POLKIT_NAME) or p.poll() is not None, 30,
                                'polkitd mock')
                self.assertIsNone(p.poll(), '%s exited' % cmd)
                obj = self.c.conn.get_object(POLKIT_NAME, POLKIT_PATH, introspect=False)
                if verdict == 'error':
                        dbus.Interface(obj, 'org.hostdevd1.test.HeldPolkit').SetHold(False, 'error')
                else:
                        dbus.Interface(obj, 'org.freedesktop.DBus.Mock').SetAllowed(
                                dbus.Array(actions if verdict == 'allow' else [], signature='s'))

        # -- the caller
        def as_caller(self, method, signature='', *args, path=ROOT_PATH, iface=MANAGER_IFACE):
                """|method| called by the test's caller: root, or uid 65534. {'ok': ...} or {'error': ...}."""
                r = subprocess.run(['/usr/bin/python3', '-c', CALLER, self.bus.address, path, iface, method,
                                    signature, json.dumps(list(args))],
                                   env=h.preload_free_env(), preexec_fn=None if self.root else drop_to_nobody,
                                   capture_output=True, text=True, timeout=h.timeout(180))
                self.assertEqual(r.returncode, 0, r.stderr)
                return json.loads(r.stdout)

        def set_log(self, prop, value):
                return self.as_caller('Set', 'ssv', LOG_CONTROL_IFACE, prop, value, path=h.LOG_CONTROL_PATH,
                                      iface=h.PROPS_IFACE)

        def log(self, prop):
                return self.c.get(h.LOG_CONTROL_PATH, LOG_CONTROL_IFACE, prop)

        # -- the state a denied call must leave alone
        def snapshot(self):
                files = {}
                for d in self.conf_dirs + self.request_dirs:
                        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                                files[os.path.join(d, f)] = h.Testbed.read(os.path.join(d, f))
                sysfs = {a: (self.driver(a), self.override(a)) for a in self.H.t.addresses() if a != h.Harness.SENTINEL}
                sysfs[PF] += (h.Testbed.read(os.path.join(self.H.t.devdir(PF), 'sriov_numvfs')),)
                objects = self.c.managed_objects()
                objects.pop(device_path(h.Harness.SENTINEL), None)   # the barrier's own device
                return {'files': files, 'sysfs': sysfs, 'objects': objects,
                        'manager': self.c.get_all(ROOT_PATH, MANAGER_IFACE),
                        'log': (self.log('LogLevel'), self.log('LogTarget')), 'writes': len(self.reactor.writes)}

        def attempt(self, allowed, verdict, what, call, done):
                """Make |call|; when |allowed|, wait for |done|, else check the refusal and that nothing
                changed."""
                before = self.snapshot()
                r = call()
                if allowed:
                        self.assertIn('ok', r, '%s: %r' % (what, r))
                        done()
                        self.wait_manager('State', 'converged')  # settled before the next snapshot
                        return
                self.assertEqual(r.get('error'), ACCESS_DENIED, '%s: %r' % (what, r))
                if verdict == 'error' and not what.startswith('Log'):
                        self.assertIn('Authorization check failed', r['message'], what)
                self.H.barrier(self.c)
                self.assertEqual(self.snapshot(), before, '%s changed something' % what)

        def check_reads(self):
                """Reads and Plan need no authorization: answered by hostdevd, whoever calls."""
                for method, sig, *args in [('Plan', ''), ('GetDeviceByAddress', 's', NIC), ('ListIommuGroups', ''),
                                           ('GetManagedObjects', '')]:
                        iface = h.OM_IFACE if method == 'GetManagedObjects' else MANAGER_IFACE
                        r = self.as_caller(method, sig, *args, iface=iface)
                        self.assertIn('ok', r, '%s: %r' % (method, r))
                r = self.as_caller('GetMdevByUuid', 's', '00000000-0000-4000-8000-000000000000')
                self.assertEqual(r.get('error'), ERR + 'NotFound', r)
                for path, iface in ((ROOT_PATH, MANAGER_IFACE), (h.LOG_CONTROL_PATH, LOG_CONTROL_IFACE)):
                        r = self.as_caller('GetAll', 's', iface, path=path, iface=h.PROPS_IFACE)
                        self.assertIn('ok', r, '%s: %r' % (iface, r))
                r = self.as_caller('Introspect', path=ROOT_PATH, iface='org.freedesktop.DBus.Introspectable')
                self.assertIn('SetDeviceDriver', r.get('ok', ''), r)

        def matrix(self, verdict):
                self.root = verdict == 'root'
                self.polkitd('deny' if self.root else verdict)
                allowed = verdict in ('root', 'allow')
                self.check_reads()

                # Apply first: any other change of the desired state would retry APPLY_NIC itself
                self.attempt(allowed, verdict, 'Apply', lambda: self.as_caller('Apply'),
                             lambda: self.wait_converged(APPLY_NIC, 'vfio-pci'))

                def declared():
                        self.wait_converged(NIC, 'vfio-pci')
                        self.assertTrue(os.listdir(self.request_dirs[1]), 'no persistent request file')
                        self.assertEqual(self.dev(NIC, 'DesiredDriver'), 'vfio-pci')
                self.attempt(allowed, verdict, 'SetDeviceDriver',
                             lambda: self.as_caller('SetDeviceDriver', 'ssas', NIC, 'vfio-pci', ['persist']), declared)

                if not allowed:
                        # something for ResetDeviceDriver to drop, declared by root
                        self.call('SetDeviceDriver', NIC, 'vfio-pci', dbus.Array(['persist'], signature='s'))
                        self.wait_converged(NIC, 'vfio-pci')

                def dropped():
                        self.wait_converged(NIC, 'e1000e')
                        self.assertEqual([f for d in self.request_dirs if os.path.isdir(d) for f in os.listdir(d)], [])
                self.attempt(allowed, verdict, 'ResetDeviceDriver', lambda: self.as_caller('ResetDeviceDriver', 's', NIC),
                             dropped)

                def vfs():
                        self.wait_converged(VF0, 'vfio-pci')
                        self.assertEqual(self.dev(PF, 'SriovNumVFs'), 2)
                        self.assertEqual(h.Testbed.read(os.path.join(self.H.t.devdir(PF), 'sriov_numvfs')), '2\n')
                self.attempt(allowed, verdict, 'SetNumVFs',
                             lambda: self.as_caller('SetNumVFs', 'susas', PF, 2, 'vfio-pci', []), vfs)

                self.write_conf('60-pair.conf', conf({'Vendor': '8086', 'Device': '105e'}, {'Driver': 'vfio-pci'}))
                gen = self.c.manager('Generation')

                def reloaded():
                        self.assertGreater(self.c.manager('Generation'), gen)
                        for a in PAIR:
                                self.wait_converged(a, 'vfio-pci')
                self.attempt(allowed, verdict, 'Reload', lambda: self.as_caller('Reload'), reloaded)

                # LogControl1's writes are root's alone, whatever polkit says
                for prop, values in (('LogLevel', ('notice', 'debug')), ('LogTarget', ('console', 'auto'))):
                        new = values[1] if self.log(prop) == values[0] else values[0]
                        self.attempt(self.root, verdict, prop, lambda: self.set_log(prop, new),
                                     lambda: self.assertEqual(self.log(prop), new))

                # only root owns the name
                r = subprocess.run(['/usr/bin/python3', '-c', OWNER, self.bus.address], env=h.preload_free_env(),
                                   preexec_fn=drop_to_nobody, capture_output=True, text=True, timeout=h.timeout(60))
                self.assertEqual(json.loads(r.stdout).get('error'), ACCESS_DENIED, r.stdout + r.stderr)

        def test_module_loading(self):
                """A driver whose module is not meant for the function needs org.hostdevd1.load-module on
                top of manage-devices (src/module-policy.h), checked before anything is written; the
                daemons of this lane look modules up in the fixture index of make-module-index.sh."""
                if not os.environ.get('HOSTDEVD_MODULES_DIR'):
                        self.skipTest('no fixture module index (depmod not found)')
                self.root = False
                self.polkitd('allow')  # ACTIONS: not org.hostdevd1.load-module
                # not a PCI driver, another device's driver, no module at all
                for driver in ('notpci', 'fakegpu', 'nosuch'):
                        before = self.snapshot()
                        r = self.as_caller('SetDeviceDriver', 'ssas', NIC, driver, [])
                        self.assertEqual(r.get('error'), ACCESS_DENIED, r)
                        self.assertIn("driver '%s' for %s" % (driver, NIC), r['message'])
                        self.assertIn('org.hostdevd1.load-module', r['message'])
                        self.H.barrier(self.c)
                        self.assertEqual(self.snapshot(), before, driver)
                # VFs do not exist yet: only vfio-pci is known to be meant for them
                before = self.snapshot()
                r = self.as_caller('SetNumVFs', 'susas', PF, 1, 'iavf', [])
                self.assertEqual(r.get('error'), ACCESS_DENIED, r)
                self.assertIn("VF driver 'iavf'", r['message'])
                self.H.barrier(self.c)
                self.assertEqual(self.snapshot(), before, 'SetNumVFs')

                def passes(driver):
                        """The request passed authorization: the reconciler has it and cannot load the
                        module here (module loading is disabled under umockdev), so the request fails
                        there and is withdrawn."""
                        r = self.as_caller('SetDeviceDriver', 'ssas', NIC, driver, [])
                        self.assertNotEqual(r.get('error'), ACCESS_DENIED, r)
                        self.assertIn('not loaded', r.get('message', ''), r)
                        self.assertEqual(self.dev(NIC, 'DesiredDriver'), '')
                        self.assertEqual(self.driver(NIC), 'e1000e')

                # the NIC's own driver, a driver of its class, a VFIO variant driver for it
                for driver in ('fakenic', 'fakeclass', 'fake-vfio-nic'):
                        passes(driver)
                # with org.hostdevd1.load-module, any module; and root needs nothing
                self.polkitd('allow', self.ACTIONS + ('org.hostdevd1.load-module',))
                passes('notpci')
                self.polkitd('deny')
                self.root = True
                passes('nosuch')

        def test_root(self):
                self.matrix('root')

        def test_polkit_allows(self):
                self.matrix('allow')

        def test_polkit_denies(self):
                self.matrix('deny')

        def test_polkit_fails(self):
                self.matrix('error')


class ReconcileLarge(ReconcileTestCase):
        """4096 functions, a Vendor/Device rule matching 1024 VFs."""

        def test_plan_1024_vfs(self):
                t, k = self.H.t, self.H.k
                n, n_vf = 4096, 1024
                for i in range(n):
                        bus, slot, fn = 0x10 + i // 256, (i // 8) % 32, i % 8
                        addr = '0000:%02x:%02x.%d' % (bus, slot, fn)
                        is_vf = i % 4 == 3
                        t.add_pci('devices/pci0000:%02x/%s' % (bus, addr), 0x8086, 0x154c if is_vf else 0x10fb,
                                  0x020000, driver='iavf' if is_vf else 'ixgbe', group=i,
                                  bars={0: (0x80000000 + i * 0x100000, 0x80000, h.MEM32)})
                k.register_driver('vfio-pci')
                self.assertEqual(sum(1 for a in t.addresses() if a[-1] in '37'), n_vf)
                t0 = time.monotonic()
                c = self.start({'50-vfs.conf': conf({'Vendor': '8086', 'Device': '154c'}, {'Driver': 'vfio-pci'})},
                               ready_timeout=300)
                ready = time.monotonic() - t0
                t1 = time.monotonic()
                gen, actions, devices, conflicts = self.call('Plan', timeout_s=300)
                plan_s = time.monotonic() - t1
                c.wait_for(lambda: c.manager('State') == 'converged', 900, 'converged')
                converged = time.monotonic() - t0
                t2 = time.monotonic()
                gen, actions, devices, conflicts = self.call('Plan', timeout_s=300)
                plan2_s = time.monotonic() - t2
                self.assertEqual(actions, [])
                matched = [d for d in devices if d[1] == 'converged']
                self.assertGreaterEqual(len(matched), n_vf)
                for a in ('0000:10:00.3', '0000:1f:1f.7'):
                        self.assertEqual(self.driver(a), 'vfio-pci')
                self.assertEqual(self.driver('0000:10:00.0'), 'ixgbe')
                sys.stderr.write('\n4096 functions, 1024 VFs matched: READY %.2f s, first Plan() %.3f s, '
                                 'converged after %.1f s, Plan() when converged %.3f s\n'
                                 % (ready, plan_s, converged, plan2_s))


if __name__ == '__main__':
        unittest.main(verbosity=2)
