#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A slow polkitd for the integration tests: CheckAuthorization replies are held
until the test releases them.

python-dbusmock's polkitd template answers every check at once, so it cannot
show what hostdevd does while checks are outstanding. This service owns
org.freedesktop.PolicyKit1 on $DBUS_SYSTEM_BUS_ADDRESS and implements
org.freedesktop.PolicyKit1.Authority.CheckAuthorization (polkit(8),
org.freedesktop.PolicyKit1.Authority.xml):

  CheckAuthorization(IN (sa{sv}) subject, IN s action_id, IN a{ss} details, IN u flags,
                     IN s cancellation_id, OUT (bba{ss}) result)

with asynchronous replies. The test drives it through a control interface on
the same object, org.hostdevd1.test.HeldPolkit:

  SetHold(b hold, s verdict)   hold new checks (true), or answer them at once
                               with |verdict|
  Held() -> u                  checks waiting for an answer now
  Received() -> a(ssa{ss}u)    every check received: (subject's bus name,
                               action_id, details, flags), in order
  Release(u n, s verdict) -> u answer the |n| oldest held checks with
                               |verdict|; returns how many were answered

A verdict is "allow" (is_authorized true), "deny" (false, not a challenge) or
"error" (an org.freedesktop.PolicyKit1.Error.Failed error reply, as polkitd
sends when a check cannot be made).

Usage: DBUS_SYSTEM_BUS_ADDRESS=ADDRESS polkitd-held.py; runs until SIGTERM.
"""
import os
import signal
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

POLKIT_NAME = 'org.freedesktop.PolicyKit1'
POLKIT_PATH = '/org/freedesktop/PolicyKit1/Authority'
POLKIT_IFACE = 'org.freedesktop.PolicyKit1.Authority'
CONTROL_IFACE = 'org.hostdevd1.test.HeldPolkit'
POLKIT_ERROR_FAILED = 'org.freedesktop.PolicyKit1.Error.Failed'
VERDICTS = ('allow', 'deny', 'error')


def check_verdict(verdict):
        if verdict not in VERDICTS:
                raise dbus.DBusException('unknown verdict %r (expected one of %s)' % (verdict, ', '.join(VERDICTS)),
                                         name='org.freedesktop.DBus.Error.InvalidArgs')


class HeldAuthority(dbus.service.Object):
        def __init__(self, conn):
                super().__init__(conn, POLKIT_PATH)
                self.hold = True
                self.verdict = 'allow'
                self.held = []          # (reply, error) callbacks, oldest first
                self.received = []      # (subject name, action_id, details, flags)

        @staticmethod
        def answer(callbacks, verdict):
                reply, error = callbacks
                if verdict == 'error':
                        error(dbus.DBusException('held polkitd: this check fails on purpose', name=POLKIT_ERROR_FAILED))
                else:
                        reply(dbus.Struct((verdict == 'allow', False, dbus.Dictionary({}, signature='ss')),
                                          signature='bba{ss}'))

        @dbus.service.method(POLKIT_IFACE, in_signature='(sa{sv})sa{ss}us', out_signature='(bba{ss})',
                             async_callbacks=('reply', 'error'))
        def CheckAuthorization(self, subject, action_id, details, flags, cancellation_id, reply, error):
                kind, props = subject
                name = str(props.get('name', '')) if kind == 'system-bus-name' else ''
                self.received.append((name, str(action_id), dbus.Dictionary(details, signature='ss'),
                                      dbus.UInt32(flags)))
                if self.hold:
                        self.held.append((reply, error))
                else:
                        self.answer((reply, error), self.verdict)

        @dbus.service.method(POLKIT_IFACE, in_signature='s', out_signature='')
        def CancelCheckAuthorization(self, cancellation_id):
                pass

        @dbus.service.method(CONTROL_IFACE, in_signature='bs', out_signature='')
        def SetHold(self, hold, verdict):
                check_verdict(verdict)
                self.hold = bool(hold)
                self.verdict = str(verdict)

        @dbus.service.method(CONTROL_IFACE, in_signature='', out_signature='u')
        def Held(self):
                return len(self.held)

        @dbus.service.method(CONTROL_IFACE, in_signature='', out_signature='a(ssa{ss}u)')
        def Received(self):
                return dbus.Array(self.received, signature='(ssa{ss}u)')

        @dbus.service.method(CONTROL_IFACE, in_signature='us', out_signature='u')
        def Release(self, n, verdict):
                check_verdict(verdict)
                batch, self.held = self.held[:n], self.held[n:]
                for callbacks in batch:
                        self.answer(callbacks, str(verdict))
                return len(batch)


def main():
        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        address = os.environ.get('DBUS_SYSTEM_BUS_ADDRESS')
        if not address:
                sys.exit('DBUS_SYSTEM_BUS_ADDRESS is not set')
        conn = dbus.bus.BusConnection(address)
        authority = HeldAuthority(conn)
        name = dbus.service.BusName(POLKIT_NAME, conn, do_not_queue=True)
        loop = GLib.MainLoop()
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
        loop.run()
        del name, authority


if __name__ == '__main__':
        main()
