#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""hostdevd lease integration tests: real child processes as VMMs, their pidfds passed over the
private bus, the fake kernel's write reactor (test-reconcile.py's host). Run through meson
(`meson test --suite integration integration-lease`)."""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dbus  # noqa: E402

import hostdevtest as h  # noqa: E402
from hostdevtest import MANAGER_IFACE, ROOT_PATH  # noqa: E402

import importlib.util  # noqa: E402

_spec = importlib.util.spec_from_file_location(
        'test_reconcile', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'test-reconcile.py'))
R = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(R)
_spec = importlib.util.spec_from_file_location(
        'test_integration', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'test-integration.py'))
I = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(I)

LEASE_IFACE = 'org.hostdevd1.Lease'
ERR = 'org.hostdevd1.Error.'


class Lease(R.LeaseClient, R.ReconcileTestCase):
        def setUp(self):
                super().setUp()
                R.build_host(self.H)

        def leases_path(self):
                paths = list(self.leases())
                self.assertEqual(len(paths), 1, paths)
                return paths[0]

        def record_path(self, lease_path):
                return os.path.join(self.dirs['run'], 'leases', lease_path.rsplit('_', 1)[1] + '.json')

        def test_exit_releases(self):
                """The owner's exit ends the lease with no Apply: NIC back on its host driver."""
                self.start()
                p = self.vmm()
                path, devices = self.acquire([R.NIC], p.pid)
                self.assertEqual(list(devices), [R.NIC])
                self.assertEqual(self.driver(R.NIC), 'vfio-pci')
                # the published model agrees at the reply, whether or not the bind uevent came yet
                self.assertEqual(self.dev(R.NIC, 'Driver'), 'vfio-pci')
                lease = self.c.get_all(path, LEASE_IFACE)
                self.assertEqual(lease['State'], 'active')
                self.assertEqual(int(lease['Pid']), p.pid)
                self.assertEqual(dict(lease['Policies']), {R.NIC: 'host'})
                self.assertEqual(lease['Command'], 'sleep')
                with open(self.record_path(path)) as f:
                        rec = json.load(f)
                self.assertEqual((rec['pid'], rec['state']), (p.pid, 'active'))
                # the planner protects it: another declaration is refused while leased
                msg = self.assertDBusError(ERR + 'Blocked', 'SetDeviceDriver', R.NIC, 'e1000e',
                                           dbus.Array([], signature='s'))
                self.assertIn('leased to pid %d' % p.pid, msg)
                p.kill()
                p.wait()
                self.wait_converged(R.NIC, 'e1000e')
                self.c.wait_for(lambda: self.leases() == {}, 30, 'lease object gone')
                self.assertFalse(os.path.exists(self.record_path(path)))
                self.assertEqual(self.override(R.NIC), '(null)\n')  # the fake kernel's cleared override

        def test_leased_holder_is_not_unleased(self):
                """A lease owner holding its function's group node is a holder (Device.Holders) but not an
                unleased one (Manager.UnleasedHolders); a process without a lease holding it is."""
                # on vfio-pci already, as a VMM started by hand finds it
                self.start({'50-nic.conf': R.conf({'Address': R.NIC}, {'Driver': 'vfio-pci'})})
                self.wait_converged(R.NIC, 'vfio-pci')
                owner = self.hold(10)  # a holder of /dev/vfio/10 (test-reconcile.py), then its lease
                self.c.wait_for(lambda: self.c.manager('UnleasedHolders') == [(owner.pid, 'sleep', [R.NIC])], 30,
                                'the holder, unleased')
                path, devices = self.acquire([R.NIC], owner.pid)
                self.assertEqual(list(devices), [R.NIC])
                self.assertEqual(self.dev(R.NIC, 'Holders'), [(owner.pid, 'sleep', '/dev/vfio/10')])
                self.assertEqual(self.c.manager('UnleasedHolders'), [])
                other = self.hold(10)
                self.c.wait_for(lambda: self.c.manager('UnleasedHolders') == [(other.pid, 'sleep', [R.NIC])], 30,
                                'the second holder, unleased')
                self.assertRegex(self.daemon.output(),
                                 r'Process %d \((sh|sleep)\) holds /dev/vfio/10 with no lease' % other.pid)

        def test_acquire_asks_the_bus_once(self):
                """A root caller's Acquire asks the bus daemon one thing, the caller's credentials: polkit's
                root shortcut takes the euid read for the owner, and a request authorized within its own
                call's dispatch runs without a GetNameOwner check (held or queued ones keep it:
                test-polkit-bound, test-reconcile)."""
                self.start()
                p = self.vmm()
                daemon = self.c.conn.get_name_owner(h.BUS_NAME)
                mon = dbus.bus.BusConnection(self.bus.address)
                seen = []
                def on_message(conn, msg):
                        seen.append((msg.get_sender(), msg.get_member()))
                        # handled: no UnknownMethod answer to the Get it sees (a monitor that sends is cut off;
                        # libdbus answers a Peer.Ping itself, so that cannot be the marker)
                        return dbus.lowlevel.HANDLER_RESULT_HANDLED

                mon.add_message_filter(on_message)
                mon.call_blocking(
                        'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.Monitoring',
                        'BecomeMonitor', 'asu',
                        (["type='method_call',sender='%s',destination='org.freedesktop.DBus'" % daemon,
                          "type='method_call',interface='org.freedesktop.DBus.Properties',member='Get'"], 0))
                try:
                        self.acquire([R.NIC], p.pid, dry_run=True)
                        # Everything the daemon asked before it answered was routed before this Get.
                        self.c.manager('State')
                        self.c.wait_for(lambda: any(m == 'Get' for _, m in seen), 10,
                                        lambda: 'the monitor sees the Get (seen: %r)' % seen)
                finally:
                        mon.close()
                asked = [m for sender, m in seen if sender == daemon]
                self.assertNotIn('GetNameOwner', asked)
                self.assertEqual(len(asked), 1, asked)
                self.assertIn(asked[0], ('GetConnectionCredentials', 'GetConnectionUnixProcessID'))

        def test_names(self):
                """[Device] Name=: Device.Name, GetDeviceByName, and methods that take a name."""
                self.start({'40-nic.conf': R.conf({'Address': R.NIC}, {'Name': 'vm-nic'}),
                            '41-pair.conf': R.conf({'Device': '105e'}, {'Name': 'pair'})})
                self.assertEqual(self.dev(R.NIC, 'Name'), 'vm-nic')
                self.assertEqual(self.dev(R.PF, 'Name'), '')
                self.assertEqual(self.call('GetDeviceByName', 'vm-nic'), h.device_path(R.NIC))
                self.assertEqual(self.assertDBusError(ERR + 'NotFound', 'GetDeviceByName', 'nope'),
                                 "No device named 'nope'")
                self.assertIn('matches several', self.assertDBusError(ERR + 'InvalidArgument', 'GetDeviceByName',
                                                                      'pair'))
                self.assertIn('Not a device name', self.assertDBusError(ERR + 'InvalidArgument',
                                                                        'GetDeviceByName', '-x'))
                # a lease by name, and by object path
                p = self.vmm()
                path, devices = self.acquire(['vm-nic'], p.pid)
                self.assertEqual(list(devices), [R.NIC])
                self.c.call(path, LEASE_IFACE, 'Release')
                self.wait_converged(R.NIC, 'e1000e')
                path, devices = self.acquire([h.device_path(R.NIC)], p.pid, dry_run=True)
                self.assertEqual(list(devices), [R.NIC])
                # SetDeviceDriver / ResetDeviceDriver by name
                self.call('SetDeviceDriver', 'vm-nic', 'vfio-pci', dbus.Array([], signature='s'))
                self.wait_converged(R.NIC, 'vfio-pci')
                self.call('ResetDeviceDriver', 'vm-nic')
                self.wait_converged(R.NIC, 'e1000e')
                # a duplicate name in a later file is rejected with file:line; the last good state stays
                self.write_conf('42-dup.conf', R.conf({'Address': R.PF}, {'Name': 'vm-nic'}))
                self.assertDBusError(ERR + 'ConfigInvalid', 'Reload')
                errors = self.c.manager('ConfigErrors')
                self.assertEqual(len(errors), 1, errors)
                self.assertIn('42-dup.conf:4: Name=vm-nic: already used by ', errors[0])
                self.assertIn('40-nic.conf:4', errors[0])
                self.assertEqual(self.dev(R.NIC, 'Name'), 'vm-nic')

        def ctl(self, *args, check=0):
                return h.hostdevctl(self.bus.address, *args, check=check)

        def test_hostdevctl(self):
                """acquire --pid / --dry-run, leases (--json), release, and the usage errors."""
                self.start({'40-nic.conf': R.conf({'Address': R.NIC}, {'Name': 'vm-nic'})})
                p = self.vmm()
                out = self.ctl('acquire', '--dry-run', '--whole-group', R.PAIR[0]).stdout
                self.assertEqual(out, 'Could lease: %s %s\n' % R.PAIR)
                self.assertEqual(self.reactor.writes, [])
                self.ctl('acquire', 'vm-nic', check=2)  # no --pid
                self.ctl('acquire', '--pid=0', 'vm-nic', check=2)
                self.ctl('acquire', '--release=remove', '--pid=%d' % p.pid, 'vm-nic', check=2)
                r = self.ctl('acquire', '--pid=%d' % p.pid, R.PAIR[0], check=3)  # incomplete group
                self.assertIn('IOMMU group 11', r.stderr)
                out = self.ctl('--json', 'acquire', '--release=keep', '--pid=%d' % p.pid, 'vm-nic').stdout
                got = json.loads(out)
                self.assertEqual(got['devices'], [R.NIC])
                path = got['lease']
                leases = json.loads(self.ctl('--json', 'leases').stdout)
                self.assertEqual(len(leases), 1)
                self.assertEqual((leases[0]['Pid'], leases[0]['State'], leases[0]['Policies']),
                                 (p.pid, 'active', {R.NIC: 'keep'}))
                table = self.ctl('leases').stdout.splitlines()
                self.assertEqual(table[0].split(), ['LEASE', 'PID', 'COMMAND', 'STATE', 'POLICY', 'DEVICES'])
                self.assertEqual(table[1].split(), [path.rsplit('_', 1)[1], str(p.pid), 'sleep', 'active', 'keep',
                                                    R.NIC])
                self.ctl('release', 'lease_999', check=4)
                self.ctl('release', 'x', check=2)
                self.ctl('release', path.rsplit('_', 1)[1])
                self.assertEqual(json.loads(self.ctl('--json', 'leases').stdout), [])
                self.H.barrier(self.c)
                self.assertEqual(self.driver(R.NIC), 'vfio-pci')  # keep

        def test_hostdevctl_run(self):
                """run: COMMAND is the lease owner (same pid), sees the lease, and its exit releases."""
                self.start()
                out = os.path.join(self.H.workdir, 'run.out')
                script = ('echo "$$ $HOSTDEVD_LEASE $HOSTDEVD_LEASE_DEVICES" > %s; '
                          'read line < %s.go; exit 7' % (out, out))
                os.mkfifo(out + '.go')
                proc = subprocess.Popen([h.env_path('HOSTDEVCTL'), '--address', self.bus.address, 'run',
                                         '--device=%s' % R.NIC, '--', 'sh', '-c', script],
                                        env=h.preload_free_env())
                self.vmms.append(proc)
                self.c.wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 0, 60, 'COMMAND started')
                # the owner's command is read when asked: the one hostdevctl became
                self.assertEqual(self.c.get(self.leases_path(), LEASE_IFACE, 'Command'), 'sh')
                with open(out) as f:
                        pid, lease, devices = f.read().split()
                self.assertEqual(int(pid), proc.pid)  # hostdevctl became COMMAND
                self.assertEqual(devices, R.NIC)
                got = self.c.get_all(lease, LEASE_IFACE)
                self.assertEqual((int(got['Pid']), got['State']), (proc.pid, 'active'))
                self.assertEqual(self.driver(R.NIC), 'vfio-pci')
                with open(out + '.go', 'w') as f:
                        f.write('go\n')
                self.assertEqual(proc.wait(timeout=h.timeout(30)), 7)
                self.wait_converged(R.NIC, 'e1000e')
                self.c.wait_for(lambda: self.leases() == {}, 30, 'lease gone')
                # usage errors
                self.ctl('run', '--', 'true', check=2)
                self.ctl('run', '--device=%s' % R.NIC, check=2)

        def test_contract(self):
                """A live Lease object's introspection equals dbus/org.hostdevd1.xml's org.hostdevd1.Lease."""
                with open(h.env_path('HOSTDEVD_XML')) as f:
                        contract = I.interface_shapes(f.read())
                self.start()
                p = self.vmm()
                path, _ = self.acquire([R.NIC], p.pid)
                live = I.interface_shapes(self.c.call(path, 'org.freedesktop.DBus.Introspectable', 'Introspect'))
                self.assertEqual(set(live), {LEASE_IFACE})
                diffs = I.contract_diff({LEASE_IFACE: contract[LEASE_IFACE]}, live)
                self.assertEqual(diffs, [], '\n'.join(diffs))

        def test_keep_policy_and_release(self):
                """Release() with "keep": the function stays on vfio-pci as a transient declaration."""
                self.start()
                p = self.vmm()
                path, _ = self.acquire([R.NIC], p.pid, release='keep')
                self.c.call(path, LEASE_IFACE, 'Release')
                self.assertEqual(self.leases(), {})
                self.assertTrue(os.path.exists(os.path.join(self.request_dirs[0], '90-runtime-0000_03_00_0.conf')))
                self.H.barrier(self.c)
                self.assertEqual(self.driver(R.NIC), 'vfio-pci')
                self.assertEqual(self.dev(R.NIC, 'State'), 'converged')

        def test_caller_is_owner(self):
                """Without a pidfd the caller owns the lease (here: this test process)."""
                self.start()
                path, _ = self.acquire([R.NIC])
                self.assertEqual(int(self.c.get(path, LEASE_IFACE, 'Pid')), os.getpid())
                self.c.call(path, LEASE_IFACE, 'Release')
                self.wait_converged(R.NIC, 'e1000e')

        def test_restart_adopts_without_writes(self):
                """hostdevd killed mid-lease and started again: the lease is adopted, nothing written."""
                self.start()
                p = self.vmm()
                path, _ = self.acquire([R.NIC], p.pid)
                self.daemon.stop(signal.SIGKILL)
                n_writes = len(self.reactor.writes)
                self.c.close()
                self.bus.stop()
                self.start(sentinel=False)
                self.H.barrier(self.c)
                leases = self.leases()
                self.assertEqual(list(leases), [path])
                self.assertEqual(leases[path]['State'], 'active')
                self.assertEqual(self.reactor.writes[n_writes:], [])
                self.assertEqual(self.driver(R.NIC), 'vfio-pci')
                # and the new daemon watches the owner
                p.kill()
                p.wait()
                self.wait_converged(R.NIC, 'e1000e')

        def test_pid_reuse_detected(self):
                """A record whose start time does not match its pid's process ends at start."""
                self.start()
                p = self.vmm()
                path, _ = self.acquire([R.NIC], p.pid)
                self.daemon.stop(signal.SIGKILL)
                self.c.close()
                self.bus.stop()
                with open(self.record_path(path)) as f:
                        rec = json.load(f)
                rec['start-time'] += 1
                with open(self.record_path(path), 'w') as f:
                        json.dump(rec, f)
                self.start(sentinel=False)
                self.wait_converged(R.NIC, 'e1000e')
                self.assertEqual(self.leases(), {})
                self.assertIsNone(p.poll())  # the process itself is left alone

        def test_validation(self):
                """Incomplete group, host-critical, unknown, bad option: refused, nothing written."""
                self.start()
                p = self.vmm()
                self.assertEqual(self.acquire_error([R.PAIR[0]], p.pid)[0], ERR + 'Refused')
                self.assertEqual(self.acquire_error([R.IGPU], p.pid)[0], ERR + 'Refused')
                self.assertEqual(self.acquire_error(['0000:99:00.0'], p.pid)[0], ERR + 'NotFound')
                self.assertEqual(self.acquire_error([R.NIC], p.pid, release='remove')[0], ERR + 'InvalidArgument')
                self.assertEqual(self.acquire_error([R.NIC], p.pid, bogus=True)[0], ERR + 'InvalidArgument')
                self.assertEqual(self.reactor.writes, [])
                # dry-run: valid, "/" and the would-be members, no write
                path, devices = self.acquire([R.PAIR[0]], p.pid, whole_group=True, dry_run=True)
                self.assertEqual((path, list(devices)), ('/', list(R.PAIR)))
                self.assertEqual(self.reactor.writes, [])
                self.assertEqual(self.leases(), {})
                # whole-group for real
                path, devices = self.acquire([R.PAIR[0]], p.pid, whole_group=True)
                for a in R.PAIR:
                        self.assertEqual(self.driver(a), 'vfio-pci')
                # leased already
                q = self.vmm()
                self.assertEqual(self.acquire_error([R.PAIR[1]], q.pid)[0], ERR + 'Blocked')

        def test_denied_caller_changes_nothing(self):
                """A caller polkit does not authorize gets AccessDenied; nothing is written or recorded."""
                self.start()
                r = self.nonroot_call('Acquire', 'asa{sv}', [R.NIC], {})
                self.assertEqual(r.get('error'), 'org.freedesktop.DBus.Error.AccessDenied', r)
                self.assertEqual(self.reactor.writes, [])
                self.assertEqual(self.leases(), {})
                self.assertFalse(os.listdir(os.path.join(self.dirs['run'], 'leases'))
                                 if os.path.isdir(os.path.join(self.dirs['run'], 'leases')) else [])

        def test_race_one_wins(self):
                """Two clients ask for one function at once: exactly one lease, the other Blocked."""
                self.start()
                a, b = self.vmm(), self.vmm()
                results = []
                fds = [os.pidfd_open(a.pid), os.pidfd_open(b.pid)]
                mgr = dbus.Interface(self.c.obj(ROOT_PATH), MANAGER_IFACE)
                for fd in fds:
                        mgr.Acquire([R.NIC], {'pidfd': dbus.types.UnixFd(fd)}, signature='asa{sv}',
                                    reply_handler=lambda *r: results.append(('ok', r)),
                                    error_handler=lambda e: results.append(('error', e.get_dbus_name())))
                for fd in fds:
                        os.close(fd)
                self.c.wait_for(lambda: len(results) == 2, 60, 'both replies')
                self.assertEqual(sorted(r[0] for r in results), ['error', 'ok'], results)
                self.assertIn(('error', ERR + 'Blocked'), results)
                self.assertEqual(len(self.leases()), 1)


if __name__ == '__main__':
        unittest.main(verbosity=2)
