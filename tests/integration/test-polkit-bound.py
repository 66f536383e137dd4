#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""hostdevd's bound on outstanding polkit checks (agent/bus-polkit.c,
BUS_POLKIT_PENDING_MAX): with that many CheckAuthorization calls unanswered,
one more privileged call from a non-root caller is refused at once with
org.hostdevd1.Error.Failed instead of queueing; reads and root's calls keep
working; once polkit answers (allowed, denied or failed), every held call
completes and new calls are checked again (the count went back to zero).
One user holds at most BUS_POLKIT_PENDING_PER_UID_MAX of those slots: its next
call is refused while other users' are still checked.
Also: polkitd going away with every slot taken, and hostdevd stopping then
(exit 0, no leak: run under ASan or valgrind to see leaks); a caller that
disconnects while its check is held is not served once polkit allows it.

polkit is tests/integration/polkitd-held.py, which holds its replies until
the test releases them; the callers run as non-root users of the passwd
database, gid 65534 (root skips polkit).

Run through meson (`meson test --suite integration integration-polkit-bound`),
or by hand as test-integration.py says, plus
HOSTDEVTEST_KERNEL_SHIM=<build>/tests/integration/kernel-shim.so and
HOSTDEVTEST_POLKIT_HEADER=<src>/agent/bus-polkit.h.
"""
import json
import os
import pwd
import re
import select
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dbus  # noqa: E402

import hostdevtest as h  # noqa: E402
from hostdevtest import MANAGER_IFACE, ROOT_PATH  # noqa: E402

NIC = '0000:03:00.0'
ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied'
NO_REPLY = 'org.freedesktop.DBus.Error.NoReply'
ERROR_FAILED = 'org.hostdevd1.Error.Failed'
ACTION_RELOAD = 'org.hostdevd1.reload'
POLKIT_NAME = 'org.freedesktop.PolicyKit1'
POLKIT_PATH = '/org/freedesktop/PolicyKit1/Authority'
CONTROL_IFACE = 'org.hostdevd1.test.HeldPolkit'
MOCK = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'polkitd-held.py')


def header_define(name):
        """A number #defined in agent/bus-polkit.h (BUS_POLKIT_PENDING_MAX, ..._PER_UID_MAX)."""
        with open(h.env_path('HOSTDEVTEST_POLKIT_HEADER')) as f:
                m = re.search(r'^#define\s+%s\s+(\d+)u?\s*$' % name, f.read(), re.M)
        if not m:
                raise RuntimeError('no %s in bus-polkit.h' % name)
        return int(m.group(1))


def nonroot_uids():
        """Non-root users of the passwd database, nobody first: the slots are filled by several users
        (at most the per-uid bound each), and one more call comes from a user of its own. Only known
        users: the bus daemon looks up each connection's groups and drops a uid it cannot."""
        return sorted((p.pw_uid for p in pwd.getpwall() if p.pw_uid != 0), key=lambda u: (u != 65534, -u))


# N asynchronous calls on one connection, made by a non-root process. Prints its
# unique name at once, then one JSON line [index, answer] per answer as it
# arrives: {'ok': repr} or {'error': name, 'message': text}, with 'elapsed' (s).
CALLER = r'''
import json, sys, time
import dbus, dbus.mainloop.glib
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
address, path, iface, method, signature, args, n, limit = sys.argv[1:9]
n, args, limit = int(n), json.loads(args), float(limit)
conn = dbus.bus.BusConnection(address)
print(conn.get_unique_name(), flush=True)
proxy = dbus.Interface(conn.get_object('org.hostdevd1', path, introspect=False), iface)
loop = GLib.MainLoop()
left = [n]
t0 = time.monotonic()

def done(i, r):
        r['elapsed'] = time.monotonic() - t0
        print(json.dumps([i, r]), flush=True)
        left[0] -= 1
        if not left[0]:
                loop.quit()

for i in range(n):
        getattr(proxy, method)(*args, signature=signature, timeout=limit,
                               reply_handler=lambda *a, i=i: done(i, {'ok': repr(a)}),
                               error_handler=lambda e, i=i: done(i, {'error': e.get_dbus_name(),
                                                                     'message': e.get_dbus_message()}))
loop.run()
'''


class Caller:
        """A process of |uid| running CALLER; its answers are read as they arrive."""

        def __init__(self, bus, workdir, n, method, signature, args, path, iface, limit, uid):
                self.n = n
                self.uid = uid
                fd, self.errpath = tempfile.mkstemp(prefix='caller.', suffix='.err', dir=workdir)
                with os.fdopen(fd, 'w') as err:
                        # unbuffered: readline() below takes the name line and nothing after it
                        self.p = subprocess.Popen(['/usr/bin/python3', '-c', CALLER, bus.address, path, iface, method,
                                                   signature, json.dumps(list(args)), str(n), str(limit)],
                                                  env=h.preload_free_env(), preexec_fn=lambda: drop_to(uid),
                                                  stdout=subprocess.PIPE, stderr=err, bufsize=0)
                self.name = self.p.stdout.readline().decode().strip()
                os.set_blocking(self.p.stdout.fileno(), False)
                self.buf = b''
                self.eof = False
                self.answers = {}

        def stderr(self):
                return h.Testbed.read(self.errpath, '')

        @property
        def returncode(self):
                return self.p.returncode

        def poll(self):
                """Read what has arrived; returns the number of answers so far."""
                while not self.eof:
                        try:
                                chunk = os.read(self.p.stdout.fileno(), 65536)
                        except BlockingIOError:
                                break
                        self.eof = not chunk
                        self.buf += chunk
                *lines, self.buf = self.buf.split(b'\n')
                for line in lines:
                        i, r = json.loads(line)
                        self.answers[i] = r
                return len(self.answers)

        def wait(self, limit):
                """Every answer, in call order; None if they did not all come within |limit| s."""
                deadline = time.monotonic() + h.timeout(limit)
                while self.poll() < self.n and not self.eof:
                        rem = deadline - time.monotonic()
                        if rem <= 0:
                                return None
                        select.select([self.p.stdout], [], [], rem)
                if self.poll() < self.n:
                        return None
                self.p.wait(timeout=h.timeout(10))
                return [self.answers[i] for i in range(self.n)]

        def stop(self):
                if self.p.poll() is None:
                        self.p.kill()
                self.p.wait()
                self.p.stdout.close()


class Callers:
        """|n| calls made by len(callers) Caller processes of different users, as one Caller: answers
        in call order over all of them."""

        def __init__(self, callers):
                self.callers = callers
                self.n = sum(c.n for c in callers)
                self.names = [c.name for c in callers]

        @property
        def answers(self):
                out, base = {}, 0
                for c in self.callers:
                        out.update({base + i: r for i, r in c.answers.items()})
                        base += c.n
                return out

        @property
        def eof(self):
                return any(c.eof for c in self.callers)

        def poll(self):
                return sum(c.poll() for c in self.callers)

        def wait(self, limit):
                deadline = time.monotonic() + h.timeout(limit)
                out = []
                for c in self.callers:
                        r = c.wait(max(0.1, deadline - time.monotonic()))
                        if r is None:
                                return None
                        out += r
                return out

        def stderr(self):
                return ''.join(c.stderr() for c in self.callers)

        @property
        def returncode(self):
                return next((c.returncode for c in self.callers if c.returncode != 0), 0)

        def stop(self):
                for c in self.callers:
                        c.stop()


def drop_to(uid):
        h.die_with_parent()
        os.setgroups([])
        os.setgid(65534)
        os.setuid(uid)


class PolkitBound(unittest.TestCase):
        maxDiff = None

        def setUp(self):
                if not h.daemon_has_option('--config-dirs'):
                        self.skipTest('waiting for: hostdevd --config-dirs (Reload needs the reconciler)')
                self.max = header_define('BUS_POLKIT_PENDING_MAX')
                self.per_uid = header_define('BUS_POLKIT_PENDING_PER_UID_MAX')
                self.assertLess(self.per_uid, self.max)
                need = -(-self.max // self.per_uid) + 1
                self.uids = nonroot_uids()
                self.assertGreaterEqual(len(self.uids), need, 'non-root users in /etc/passwd: %s' % self.uids)
                self.other_uid = self.uids[need - 1]
                self.procs, self.callers = [], []
                self.H = h.Harness()
                # Sysfs writes would reach the fake kernel's reactor and be recorded: there must be none.
                self.reactor = h.KernelReactor(self.H.k, self.H.workdir)
                self.H.t.add_pci('devices/pci0000:00/' + NIC, 0x8086, 0x10d3, 0x020000, driver='e1000e', group=10,
                                 bars={0: (0xf7000000, 0x20000, h.MEM32)})
                self.bus, self.daemon, self.c = self.H.start(env=self.reactor.env())
                # the non-root callers must reach the bus socket
                for d in (self.H.workdir, self.bus.dir):
                        os.chmod(d, 0o755)
                self.start_mock()

        def start_mock(self):
                """Start polkitd-held.py; it holds every check until told otherwise."""
                self.mock = subprocess.Popen(['/usr/bin/python3', MOCK],
                                             env=h.preload_free_env({'DBUS_SYSTEM_BUS_ADDRESS': self.bus.address}),
                                             preexec_fn=h.die_with_parent)
                self.procs.append(self.mock)
                self.c.wait_for(lambda: self.c.conn.name_has_owner(POLKIT_NAME) or self.mock.poll() is not None,
                                30, 'held polkitd on the bus')
                self.assertIsNone(self.mock.poll(), 'polkitd-held.py exited')
                self.polkit = dbus.Interface(self.c.conn.get_object(POLKIT_NAME, POLKIT_PATH, introspect=False),
                                             CONTROL_IFACE)

        def tearDown(self):
                try:
                        if hasattr(self, 'polkit') and self.mock.poll() is None:
                                # never leave the daemon's checks hanging
                                self.polkit.SetHold(False, 'deny')
                                self.polkit.Release(dbus.UInt32(1 << 31), 'deny')
                        if os.environ.get('HOSTDEVTEST_DEBUG'):
                                for d in self.H.daemons:
                                        sys.stderr.write('\n--- hostdevd log ---\n%s\n' % d.output()[-20000:])
                        for d in self.H.daemons:
                                if d.proc.poll() is None:
                                        rc = d.stop()
                                        self.assertEqual(rc, 0, 'hostdevd exited %d\n%s' % (rc, d.output()))
                finally:
                        for c in self.callers:
                                c.stop()
                        for p in self.procs:
                                if p.poll() is None:
                                        p.terminate()
                                        p.wait()
                        self.reactor.close()
                        self.H.cleanup()

        # -- the held polkitd
        def held(self):
                return int(self.polkit.Held())

        def received(self):
                return h.unwrap(self.polkit.Received())

        def wait_held(self, n, caller, limit=15):
                """Wait until polkit holds |n| checks of |caller|'s, and it has no answer yet."""
                try:
                        self.c.wait_for(lambda: self.held() + caller.poll() >= n or caller.eof, limit,
                                        '%d held polkit checks' % n)
                except AssertionError as e:
                        self.fail('%s (held: %d)\n%s' % (e, self.held(), self.daemon.output()[-4000:]))
                self.assertEqual(caller.answers, {}, 'answers while polkit held %d checks' % self.held())
                self.assertEqual(self.held(), n)

        # -- non-root callers
        def spawn_calls(self, n, method='Reload', signature='', args=(), path=ROOT_PATH, iface=MANAGER_IFACE,
                        limit=120, uid=None):
                """Start processes making |n| asynchronous calls: one Caller of |uid|, or without |uid| as
                many Callers as the per-uid bound needs, of users self.uids[0], [1], ... (Callers)."""
                if uid is not None:
                        chunks = [(uid, n)]
                else:
                        chunks = [(self.uids[i], min(self.per_uid, n - k))
                                  for i, k in enumerate(range(0, n, self.per_uid))]
                callers = []
                for u, m in chunks:
                        caller = Caller(self.bus, self.H.workdir, m, method, signature, args, path, iface,
                                        h.timeout(limit), uid=u)
                        self.callers.append(caller)
                        self.assertTrue(caller.name.startswith(':'),
                                        'caller printed %r\n%s' % (caller.name, caller.stderr()))
                        callers.append(caller)
                return callers[0] if uid is not None else Callers(callers)

        def results(self, caller, limit=30):
                """The caller's answers once it has them all."""
                r = caller.wait(limit)
                if r is None:
                        self.fail('the caller has %d of %d answers after %d s (held checks: %d)\n%s\n%s'
                                  % (len(caller.answers), caller.n, limit, self.held(), caller.stderr(),
                                     self.daemon.output()[-4000:]))
                self.assertEqual(caller.returncode, 0, caller.stderr())
                return r

        def nonroot_calls(self, n, limit=30, uid=None, **kw):
                """|n| calls of one user (by default self.other_uid: none of its calls pending), with their
                answers."""
                uid = self.other_uid if uid is None else uid
                return self.results(self.spawn_calls(n, limit=limit, uid=uid, **kw), limit + 10)

        # -- checks
        def assert_saturated(self, callers):
                """With |self.max| checks of |callers| held: one more is refused at once, reads and root's
                calls still work."""
                received = len(self.received())
                gen = self.c.manager('Generation')

                # One more privileged call: refused without reaching polkit. A call that queued would
                # never be answered while polkit holds its replies: the caller would get NoReply.
                (r,) = self.nonroot_calls(1, limit=10)
                self.assertEqual(r.get('error'), ERROR_FAILED, r)
                self.assertRegex(r['message'], r'(?i)too many pending authorization checks')
                sys.stderr.write('call %d refused after %.3f s: %s\n' % (self.max + 1, r['elapsed'], r['message']))
                # the other kinds of privileged call are bounded by the same count
                (r,) = self.nonroot_calls(1, limit=10, method='SetDeviceDriver', signature='ssas',
                                          args=(NIC, 'vfio-pci', []))
                self.assertEqual(r.get('error'), ERROR_FAILED, r)
                self.assertEqual(self.held(), self.max)
                self.assertEqual(len(self.received()), received, 'a refused call reached polkit')

                # reads need no authorization, from root and from the non-root caller
                self.assertEqual(self.c.manager('Version'), h.env_path('HOSTDEVD_VERSION'))
                self.assertEqual(self.c.manager('DeviceCount'), 1)
                self.assertEqual(self.c.manager('Generation'), gen)
                self.assertIn(h.device_path(NIC), self.c.managed_objects())
                (r,) = self.nonroot_calls(1, method='GetAll', signature='s', args=(MANAGER_IFACE,),
                                          iface=h.PROPS_IFACE)
                self.assertIn('ok', r)
                (r,) = self.nonroot_calls(1, method='GetDeviceByAddress', signature='s', args=(NIC,))
                self.assertIn('ok', r)
                self.assertEqual(self.held(), self.max)

                # root skips polkit, so the bound does not apply to it
                self.c.call(ROOT_PATH, MANAGER_IFACE, 'Reload', timeout_s=h.timeout(20))
                self.assertEqual(self.c.manager('Generation'), gen + 1)
                self.assertEqual(len(self.received()), received)

                # the held checks are the callers', for the action of their method, at most the per-uid
                # bound each (no details for Reload; dbus-python does not allow interactive
                # authorization: flags 0)
                checks = self.received()[-self.max:]
                self.assertEqual(sorted(tuple(c) for c in checks),
                                 sorted((name, ACTION_RELOAD, {}, 0) for c in callers.callers for name in
                                        [c.name] * c.n))
                self.assertTrue(all(c.n <= self.per_uid for c in callers.callers))

        def test_bound(self):
                n = self.max

                # Round 1: n checks held, then allowed: every call completes and runs.
                self.polkit.SetHold(True, 'allow')
                caller = self.spawn_calls(n)
                self.wait_held(n, caller)
                self.assert_saturated(caller)
                gen = self.c.manager('Generation')
                self.assertEqual(self.polkit.Release(dbus.UInt32(n), 'allow'), n)
                results = self.results(caller)
                self.assertEqual([sorted(r) for r in results], [['elapsed', 'ok']] * n, results)
                # each Reload ran before its reply: one generation each
                self.assertEqual(self.c.manager('Generation'), gen + n)
                self.assertEqual(self.held(), 0)

                # the count went back down: a new call is checked and runs
                self.polkit.SetHold(False, 'allow')
                (r,) = self.nonroot_calls(1)
                self.assertIn('ok', r)
                self.assertEqual(self.c.manager('Generation'), gen + n + 1)

                # Round 2: n checks held again (all of them: the count is exactly zero after round 1),
                # then denied or failed: every caller gets AccessDenied, and nothing runs.
                self.polkit.SetHold(True, 'allow')
                caller = self.spawn_calls(n)
                self.wait_held(n, caller)
                self.assert_saturated(caller)
                gen = self.c.manager('Generation')
                half = n // 2
                self.assertEqual(self.polkit.Release(dbus.UInt32(half), 'deny'), half)
                self.assertEqual(self.polkit.Release(dbus.UInt32(n), 'error'), n - half)
                results = self.results(caller)
                self.assertEqual([r.get('error') for r in results], [ACCESS_DENIED] * n, results)
                failed = [r['message'] for r in results if r['message'].startswith('Authorization check failed')]
                denied = [r['message'] for r in results if r['message'].startswith('Not authorized')]
                self.assertEqual(len(denied), half, results)
                self.assertEqual(len(failed), n - half, results)
                self.assertTrue(all('this check fails on purpose' in m for m in failed), failed)
                self.assertEqual(self.c.manager('Generation'), gen)
                self.assertEqual(self.held(), 0)

                # Round 3: after denials and failures the count is back to zero too: n held again,
                # one more refused, then allowed.
                caller = self.spawn_calls(n)
                self.wait_held(n, caller)
                (r,) = self.nonroot_calls(1, limit=10)
                self.assertEqual(r.get('error'), ERROR_FAILED, r)
                self.assertEqual(self.polkit.Release(dbus.UInt32(n), 'allow'), n)
                self.assertEqual([sorted(r) for r in self.results(caller)], [['elapsed', 'ok']] * n)
                self.polkit.SetHold(False, 'allow')
                (r,) = self.nonroot_calls(1)
                self.assertIn('ok', r)
                self.assertEqual(self.c.manager('Generation'), gen + n + 1)

                # none of it touched the host; the daemon exits cleanly in tearDown (ASan: no leaks)
                self.assertEqual(self.reactor.writes, [])
                self.assertEqual(self.H.k.driver_of(NIC), 'e1000e')
                self.assertIsNone(self.daemon.proc.poll())

        def test_bound_per_uid(self):
                """One user's checks are bounded apart from the others': with
                BUS_POLKIT_PENDING_PER_UID_MAX of one user held, that user's next call is refused at once,
                naming the bound, while another user's is still checked; released, all of them run."""
                n = self.per_uid
                self.polkit.SetHold(True, 'allow')
                mine = self.spawn_calls(n, uid=self.uids[0])
                self.wait_held(n, mine)
                received = len(self.received())
                (r,) = self.nonroot_calls(1, uid=self.uids[0], limit=10)
                self.assertEqual(r.get('error'), ERROR_FAILED, r)
                self.assertIn('of this user (%d)' % n, r['message'])
                self.assertEqual(len(self.received()), received, 'a refused call reached polkit')

                other = self.spawn_calls(1, uid=self.other_uid)
                self.wait_held(n + 1, other)
                gen = self.c.manager('Generation')
                self.assertEqual(self.polkit.Release(dbus.UInt32(n + 1), 'allow'), n + 1)
                self.assertEqual([sorted(r) for r in self.results(mine)], [['elapsed', 'ok']] * n)
                self.assertEqual([sorted(r) for r in self.results(other)], [['elapsed', 'ok']])
                self.assertEqual(self.c.manager('Generation'), gen + n + 1)

                # that user's count went back down
                self.polkit.SetHold(False, 'allow')
                (r,) = self.nonroot_calls(1, uid=self.uids[0])
                self.assertIn('ok', r)
                self.assertEqual(self.reactor.writes, [])

        def test_polkit_gone(self):
                """polkitd exits with every slot taken: each held check fails (AccessDenied, the bus's
                NoReply as reason), the count goes back to zero, and a new polkitd is asked again."""
                n = self.max
                self.polkit.SetHold(True, 'allow')
                caller = self.spawn_calls(n)
                self.wait_held(n, caller)
                self.mock.kill()
                self.mock.wait()
                results = self.results(caller)
                self.assertEqual([r.get('error') for r in results], [ACCESS_DENIED] * n, results)
                self.assertTrue(all(r['message'].startswith('Authorization check failed') for r in results), results)

                self.start_mock()
                caller = self.spawn_calls(n)
                self.wait_held(n, caller)
                self.assertEqual(self.polkit.Release(dbus.UInt32(n), 'allow'), n)
                self.assertEqual([sorted(r) for r in self.results(caller)], [['elapsed', 'ok']] * n)

        def test_caller_gone_before_authorized(self):
                """A caller that disconnects while polkit holds its check is not served when polkit allows it
                afterwards (dbus/org.hostdevd1.xml: nobody could learn the outcome): its Reload does not run,
                and a notice says why. A caller that stays, checked after it, is served."""
                gen0 = self.c.manager('Generation')
                self.polkit.SetHold(True, 'allow')
                gone = self.spawn_calls(1, uid=self.other_uid)
                self.wait_held(1, gone)
                gone.stop()
                self.c.wait_for(lambda: not self.c.conn.name_has_owner(gone.name), 10, '%s gone' % gone.name)
                stays = self.spawn_calls(1, uid=self.other_uid)
                self.wait_held(2, stays)
                self.assertEqual(self.polkit.Release(dbus.UInt32(2), 'allow'), 2)
                # polkit answered the gone caller first, and the bus answers hostdevd's questions in order:
                # by the time the one that stays has its answer, the other one was dropped.
                self.assertEqual([sorted(r) for r in self.results(stays)], [['elapsed', 'ok']])
                self.assertEqual(self.c.manager('Generation'), gen0 + 1, self.daemon.output()[-4000:])
                self.assertEqual(self.daemon.output().count(
                        'Reload: the caller %s disconnected before it could run, dropping the request' % gone.name),
                        1, self.daemon.output()[-4000:])

        def test_stop_with_checks_pending(self):
                """SIGTERM while every slot is taken: the daemon exits 0 with nothing leaked (ASan: the
                pending requests, and through their messages the bus connection, used to leak), and no
                caller hangs. Its bus is closed by then (sd-bus closes it when the event loop exits), so
                the callers hear of it from the bus: NoReply, recipient disconnected."""
                n = self.max
                self.polkit.SetHold(True, 'allow')
                caller = self.spawn_calls(n)
                self.wait_held(n, caller)
                rc = self.daemon.stop()
                self.assertEqual(rc, 0, 'hostdevd exited %d\n%s' % (rc, self.daemon.output()[-8000:]))
                results = self.results(caller)
                self.assertTrue(all(r.get('error') in (NO_REPLY, ACCESS_DENIED) for r in results), results)

if __name__ == '__main__':
        unittest.main(verbosity=2)
