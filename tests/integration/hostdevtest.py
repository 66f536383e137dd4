# SPDX-License-Identifier: LGPL-2.1-or-later
"""Integration harness: umockdev testbed + fake kernel + private bus + hostdevd.

Runs under umockdev-wrapper (the testbed owner must itself run under the
preload: outside it umockdev sends no uevents for the devices it adds).
Pieces:

  Testbed     a umockdev testbed filled from .umockdev files or device by
              device, plus what umockdev does not create: IOMMU groups,
              driver directories, PCI slots, /sys/class/mdev_bus.
  Kernel      the "fake kernel": applies driver-core semantics to the
              testbed (bind, unbind, hot add/remove, SR-IOV, mdev create/
              remove) and emits the uevents the real kernel would, always
              after the sysfs state is published.
  KernelReactor  the fake kernel's reaction to the DAEMON's writes: with
              kernel-shim.so preloaded into hostdevd, each write() to a
              testbed attribute is a synchronous call into the harness,
              which applies the store function's semantics (driver_override,
              bind/unbind, drivers_probe, sriov_numvfs, sriov_drivers_autoprobe),
              sends the uevents and answers the errno; failure injection
              (a probe that binds nothing, an unbind that never returns, an
              ignored bind, EBUSY from sriov_numvfs).
  Bus         a private dbus-daemon with the system bus's default policy and
              the project's own bus policy; its printed address is the readiness.
  Daemon      hostdevd on that bus, ready when it sends READY=1 on our
              NOTIFY_SOCKET; optionally under a wrapper (valgrind).
  Client      python-dbus connection that records every signal hostdevd
              sends; wait_for() iterates the main loop until a predicate
              holds or a timeout passes (no sleeps as synchronisation).
  expected_*  an independent reading of the testbed's sysfs that says what
              each D-Bus property must be (the test oracle).

Environment (set by tests/integration/meson.build): HOSTDEVD, HOSTDEVCTL,
HOSTDEVD_XML, HOSTDEVD_BUS_POLICY (dbus/org.hostdevd1.conf), RECORDINGS_DIR,
HOSTDEVTEST_KERNEL_SHIM, HOSTDEVD_MODULES_DIR (the fixture module index, passed on
to hostdevd); optional HOSTDEVD_WRAPPER (a command prefix, e.g. valgrind),
HOSTDEVTEST_TIMEOUT_SCALE (multiplies every timeout).
"""
import ctypes
import errno
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import gi
gi.require_version('UMockdev', '1.0')
from gi.repository import GLib, UMockdev  # noqa: E402

import dbus  # noqa: E402
import dbus.mainloop.glib  # noqa: E402

from sysfstext import MEM32, MEM64P, mdev_text, pci_text  # noqa: E402,F401

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)

BUS_NAME = 'org.hostdevd1'
ROOT_PATH = '/org/hostdevd1'
MANAGER_IFACE = 'org.hostdevd1.Manager'
DEVICE_IFACE = 'org.hostdevd1.Device'
MDEV_IFACE = 'org.hostdevd1.Mdev'
PROPS_IFACE = 'org.freedesktop.DBus.Properties'
OM_IFACE = 'org.freedesktop.DBus.ObjectManager'
LOG_CONTROL_PATH = '/org/freedesktop/LogControl1'

TIMEOUT_SCALE = float(os.environ.get('HOSTDEVTEST_TIMEOUT_SCALE', '1'))



_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def die_with_parent():
        """preexec_fn: the child gets SIGTERM when the test process dies, so no
        bus or daemon outlives a crashed test (and keeps meson waiting on its
        inherited stderr)."""
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

def timeout(seconds):
        return seconds * TIMEOUT_SCALE


def env_path(name):
        v = os.environ.get(name)
        if not v:
                raise RuntimeError('%s is not set (run through meson test)' % name)
        return v


def device_path(address):
        """0000:41:00.0 -> /org/hostdevd1/devices/pci_0000_41_00_0 (object-path.h; for
        expectations only: tests look objects up by identity as clients must)."""
        return '/org/hostdevd1/devices/pci_' + re.sub(r'[:.]', '_', address)


UUID_RE = re.compile(r'[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}')


def mdev_path(uuid):
        return '/org/hostdevd1/mdevs/mdev_' + uuid.replace('-', '_')


def unwrap(v):
        """dbus-python values -> plain Python (bool before int: dbus.Boolean is an int)."""
        if isinstance(v, dbus.Boolean):
                return bool(v)
        if isinstance(v, (dbus.String, dbus.ObjectPath, dbus.Signature)):
                return str(v)
        if isinstance(v, (dbus.Byte, dbus.Int16, dbus.UInt16, dbus.Int32, dbus.UInt32,
                          dbus.Int64, dbus.UInt64)):
                return int(v)
        if isinstance(v, dbus.Double):
                return float(v)
        if isinstance(v, dbus.Struct):
                return tuple(unwrap(x) for x in v)
        if isinstance(v, dbus.Array):
                return [unwrap(x) for x in v]
        if isinstance(v, dbus.Dictionary):
                return {unwrap(k): unwrap(x) for k, x in v.items()}
        return v


def preload_free_env(extra=None):
        """Environment for helpers that must not see the testbed (dbus-daemon, hostdevctl)."""
        env = dict(os.environ)
        for k in ('LD_PRELOAD', 'UMOCKDEV_DIR'):
                env.pop(k, None)
        env.update(extra or {})
        return env


# ---------------------------------------------------------------------------
# Testbed


class Testbed:
        """A umockdev testbed and the sysfs pieces umockdev does not make."""

        def __init__(self):
                self.tb = UMockdev.Testbed.new()
                # The testbed sets UMOCKDEV_DIR with setenv(); Python's os.environ (what
                # subprocess passes on) is a copy taken at start-up: keep it in step.
                os.environ['UMOCKDEV_DIR'] = self.tb.get_root_dir()
                self.root = self.tb.get_root_dir()
                self.sys = self.tb.get_sys_dir()
                for d in ('kernel/iommu_groups', 'bus/pci/drivers', 'bus/pci/slots',
                          'class/mdev_bus', 'bus/mdev/devices', 'bus/mdev/drivers'):
                        os.makedirs(os.path.join(self.sys, d), exist_ok=True)
                # Pre-create what the daemon may write: fopen("w") on a missing testbed
                # attribute would create it, where real sysfs fails.
                for f in ('bus/pci/drivers_probe', 'bus/pci/rescan'):
                        self.write(os.path.join(self.sys, f), '')
                # /dev/vfio of the testbed: the daemon's open("/dev/vfio") lands here (the preload),
                # so its fanotify mark is on this directory; a holder opens a node here (test-reconcile.py).
                os.makedirs(os.path.join(self.root, 'dev', 'vfio'), exist_ok=True)
                # bus_register() starts the bus with drivers_autoprobe 1. The fake kernel reads it nowhere, as
                # Linux 6.1 does not for a new function (FakeKernel.hot_add()); the daemon must never write it.
                self.write(os.path.join(self.sys, 'bus/pci/drivers_autoprobe'), '1\n')

        # -- paths
        def real(self, syspath):
                """/sys/devices/... -> its directory in the testbed."""
                assert syspath.startswith('/sys/')
                return self.root + syspath

        def syspath(self, address):
                """Resolved /sys/devices/... path of PCI function |address|."""
                link = os.path.join(self.sys, 'bus/pci/devices', address)
                return '/sys/' + os.path.normpath(os.path.join('bus/pci/devices', os.readlink(link)))

        def mdev_syspath(self, uuid):
                link = os.path.join(self.sys, 'bus/mdev/devices', uuid)
                return '/sys/' + os.path.normpath(os.path.join('bus/mdev/devices', os.readlink(link)))

        def devdir(self, address):
                return self.real(self.syspath(address))

        def addresses(self):
                return sorted(os.listdir(os.path.join(self.sys, 'bus/pci/devices')))

        def mdev_uuids(self):
                return sorted(os.listdir(os.path.join(self.sys, 'bus/mdev/devices')))

        @staticmethod
        def write(path, value):
                with open(path, 'w') as f:
                        f.write(value)

        @staticmethod
        def read(path, default=None):
                # surrogateescape: a test may store bytes that are not UTF-8 (test-hostile.py)
                try:
                        with open(path, errors='surrogateescape') as f:
                                return f.read()
                except FileNotFoundError:
                        return default

        @staticmethod
        def symlink(target, link):
                try:
                        os.unlink(link)
                except FileNotFoundError:
                        pass
                os.symlink(target, link)

        def rel_from(self, devdir, sys_rel):
                """Relative link text from |devdir| to /sys/<sys_rel>."""
                return os.path.relpath(os.path.join(self.sys, sys_rel), devdir)

        # -- filling
        def load(self, path):
                """Load a .umockdev file: '#' lines are comments, '#@' lines directives."""
                with open(path) as f:
                        text = f.read()
                self.add_text(text)

        def add_text(self, text):
                body = []
                directives = []
                for line in text.splitlines():
                        if line.startswith('#@'):
                                directives.append(line[2:].split())
                        elif not line.startswith('#'):
                                body.append(line)
                body = '\n'.join(body).strip('\n') + '\n'
                for d in directives:
                        if d[0] == 'slot':
                                self.add_slot(d[1], d[2])
                        else:
                                raise ValueError('unknown directive #@ %s' % ' '.join(d))
                if body.strip():
                        self.tb.add_from_string(body)
                self.complete()

        def add_slot(self, name, slot_address):
                """/sys/bus/pci/slots/NAME/address = DDDD:BB:SS (sysfs-bus-pci "slots")."""
                d = os.path.join(self.sys, 'bus/pci/slots', name)
                os.makedirs(d, exist_ok=True)
                self.write(os.path.join(d, 'address'), slot_address + '\n')

        def link_outside(self, devdir, name):
                """Create the kernel-side links for a device dir: driver dir entry,
                IOMMU group member, mdev_bus class link, mdev type devices/ entry."""
                rel_dev = os.path.relpath(devdir, self.sys)
                drv = os.path.join(devdir, 'driver')
                if os.path.islink(drv):
                        ddir = os.path.normpath(os.path.join(devdir, os.readlink(drv)))
                        self.ensure_driver_dir(ddir)
                        self.symlink(os.path.relpath(devdir, ddir), os.path.join(ddir, name))
                grp = os.path.join(devdir, 'iommu_group')
                if os.path.islink(grp):
                        gdir = os.path.normpath(os.path.join(devdir, os.readlink(grp)))
                        os.makedirs(os.path.join(gdir, 'devices'), exist_ok=True)
                        if not os.path.exists(os.path.join(gdir, 'type')):
                                self.write(os.path.join(gdir, 'type'), 'DMA\n')
                        self.symlink(os.path.relpath(devdir, os.path.join(gdir, 'devices')),
                                     os.path.join(gdir, 'devices', name))
                types = os.path.join(devdir, 'mdev_supported_types')
                if os.path.isdir(types):
                        self.symlink('../../' + rel_dev, os.path.join(self.sys, 'class/mdev_bus', name))
                        for t in os.listdir(types):
                                os.makedirs(os.path.join(types, t, 'devices'), exist_ok=True)
                                if not os.path.exists(os.path.join(types, t, 'create')):
                                        self.write(os.path.join(types, t, 'create'), '')
                mt = os.path.join(devdir, 'mdev_type')
                if os.path.islink(mt):
                        tdir = os.path.normpath(os.path.join(devdir, os.readlink(mt)))
                        os.makedirs(os.path.join(tdir, 'devices'), exist_ok=True)
                        self.symlink(os.path.relpath(devdir, os.path.join(tdir, 'devices')),
                                     os.path.join(tdir, 'devices', name))
                        if not os.path.exists(os.path.join(devdir, 'remove')):
                                self.write(os.path.join(devdir, 'remove'), '')

        def ensure_driver_dir(self, ddir):
                os.makedirs(ddir, exist_ok=True)
                for f in ('bind', 'unbind', 'new_id', 'remove_id'):
                        p = os.path.join(ddir, f)
                        if not os.path.exists(p):
                                self.write(p, '')

        def complete(self):
                """Derive the outside-of-/sys/devices state for every device present."""
                for addr in self.addresses():
                        self.link_outside(self.devdir(addr), addr)
                for uuid in self.mdev_uuids():
                        self.link_outside(self.real(self.mdev_syspath(uuid)), uuid)
                # non-PCI mdev parents (e.g. mtty under /sys/devices/virtual)
                vroot = os.path.join(self.sys, 'devices/virtual')
                if os.path.isdir(vroot):
                        for dirpath, dirnames, _ in os.walk(vroot):
                                if 'mdev_supported_types' in dirnames:
                                        self.link_outside(dirpath, os.path.basename(dirpath))
                                        dirnames.remove('mdev_supported_types')

        def pre_link(self, path, driver=None, group=None):
                """Publish a not-yet-added device's driver/group entries (dangling
                until the device exists), so its 'add' uevent finds them in place."""
                name = os.path.basename(path)
                devdir = os.path.join(self.sys, path)
                if driver:
                        ddir = os.path.join(self.sys, 'bus/pci/drivers', driver)
                        self.ensure_driver_dir(ddir)
                        self.symlink(os.path.relpath(devdir, ddir), os.path.join(ddir, name))
                if group is not None:
                        gdir = os.path.join(self.sys, 'kernel/iommu_groups', str(group))
                        os.makedirs(os.path.join(gdir, 'devices'), exist_ok=True)
                        if not os.path.exists(os.path.join(gdir, 'type')):
                                self.write(os.path.join(gdir, 'type'), 'DMA\n')
                        self.symlink(os.path.relpath(devdir, os.path.join(gdir, 'devices')),
                                     os.path.join(gdir, 'devices', name))

        def add_pci(self, path, vendor, device, cls, **kw):
                """Add one PCI function at /sys/<path> (see sysfstext.pci_text); the
                testbed sends its 'add' uevent once every entry is in place."""
                self.pre_link(path, kw.get('driver'), kw.get('group'))
                self.tb.add_from_string(pci_text(path, vendor, device, cls, **kw))
                self.link_outside(os.path.join(self.sys, path), os.path.basename(path))
                return '/sys/' + path

        def slots(self):
                """{DDDD:BB:SS: slot name} from /sys/bus/pci/slots."""
                sdir = os.path.join(self.sys, 'bus/pci/slots')
                return {self.read(os.path.join(sdir, n, 'address')).strip(): n for n in sorted(os.listdir(sdir))}

        def uevent_vars(self, devdir):
                return dict(line.split('=', 1) for line in (self.read(os.path.join(devdir, 'uevent'), '')
                                                             .splitlines()) if '=' in line)

        def set_uevent_var(self, devdir, key, value):
                """Keep the device's uevent file (the payload of every uevent) current."""
                lines = [line for line in self.read(os.path.join(devdir, 'uevent'), '').splitlines()
                         if not line.startswith(key + '=')]
                if value is not None:
                        lines.append('%s=%s' % (key, value))
                self.write(os.path.join(devdir, 'uevent'), '\n'.join(lines) + '\n')


# ---------------------------------------------------------------------------
# The fake kernel


class Kernel:
        """Driver-core semantics on a Testbed, with the kernel's uevents.

        The order is always: publish every sysfs change, then send the uevent
        (a listener that reads sysfs on the event must find the new state);
        for removal, send 'remove' while the directory still exists (umockdev
        needs it to build the event), then delete."""

        def __init__(self, testbed):
                self.t = testbed
                self.events = 0
                self.muted = False
                # umockdev sends uevents with a non-blocking sendmsg() on a unix
                # datagram socket and aborts the sender on EAGAIN, which happens once
                # the listener is net.unix.max_dgram_qlen (default 10) datagrams
                # behind. A slow daemon (valgrind, a loaded machine) would kill the
                # test, so every |burst| events the kernel calls |pace| (a barrier).
                self.pace = None
                self.burst = max(1, int(Testbed.read('/proc/sys/net/unix/max_dgram_qlen', '10')) - 3)
                self._unpaced = 0
                self._pacing = False
                # Every change to the testbed goes through this lock: the write reactor
                # (KernelReactor) applies the daemon's writes on its own threads.
                self.lock = threading.RLock()
                # The driver each function returns to when probed without driver_override
                # (the kernel's default match): learnt by remember_host_drivers() and when
                # the fake kernel binds a hot-added function or a new VF.
                self.host_drivers = {}
                # VF driver per PF, for VFs the reactor creates (None: VFs get no driver).
                self.vf_host_drivers = {}
                self.overrides = {}         # driver_override as last stored (None: clear)
                self.binds = []             # (address, driver) of every bind, in order
                # mdev parents whose vendor driver counts instances itself (mdev_parent_capacity());
                # any other parent counts in the mdev core: one type's available_instances each.
                self.mdev_pools = {}
                # vendor vGPU GPUs (vgpu_gpu()): {PF address: VgpuGpu}
                self.vgpu_gpus = {}
                self.mdev_drivers = {}      # {parent: its mdev driver} for core-counted parents
                # 6.6+: an mdev's VFIO device gets a cdev, <mdev>/vfio-dev/vfioN with "dev"
                # (vfio_device_add(), drivers/vfio/vfio_main.c); off by default (6.1's layout).
                self.mdev_cdevs = False

        def before_send(self):
                """Account for one uevent about to be sent (also umockdev's own 'add').
                Only the main thread paces (the barrier iterates its main loop); the
                reactor's reactions send a few uevents each and are not paced."""
                if self.pace and not self._pacing and self._unpaced >= self.burst \
                   and threading.current_thread() is threading.main_thread():
                        self._pacing = True
                        try:
                                self.pace()
                        finally:
                                self._pacing = False
                        self._unpaced = 0
                self._unpaced += 1
                self.events += 1

        def uevent(self, syspath, action):
                if self.muted:
                        return
                self.before_send()
                self.t.tb.uevent(syspath, action)

        def bind(self, address, driver, send=True):
                with self.lock:
                        return self._bind(address, driver, send=send)

        def _bind(self, address, driver, send=True):
                """drivers/base/dd.c driver_bound(): driver link, DRIVER= in uevent, 'bind'."""
                t = self.t
                devdir = t.devdir(address)
                ddir = os.path.join(t.sys, 'bus/pci/drivers', driver)
                t.ensure_driver_dir(ddir)
                t.symlink(os.path.relpath(devdir, ddir), os.path.join(ddir, address))
                t.symlink(os.path.relpath(ddir, devdir), os.path.join(devdir, 'driver'))
                t.set_uevent_var(devdir, 'DRIVER', driver)
                self.binds.append((address, driver))
                self._vgpu_probe(address, driver)
                if send:
                        self.uevent(t.syspath(address), 'bind')

        def unbind(self, address, send=True):
                with self.lock:
                        return self._unbind(address, send=send)

        def _unbind(self, address, send=True):
                """__device_release_driver(): link gone, then 'unbind' without DRIVER=."""
                t = self.t
                devdir = t.devdir(address)
                drv = os.path.join(devdir, 'driver')
                if os.path.islink(drv):
                        ddir = os.path.normpath(os.path.join(devdir, os.readlink(drv)))
                        os.unlink(drv)
                        try:
                                os.unlink(os.path.join(ddir, address))
                        except FileNotFoundError:
                                pass
                self._vgpu_release(address)
                t.set_uevent_var(devdir, 'DRIVER', None)
                if send:
                        self.uevent(t.syspath(address), 'unbind')

        def rebind(self, address, driver):
                with self.lock:
                        return self._rebind(address, driver)

        def _rebind(self, address, driver):
                """A rebind by hand, published at once: driver_override cleared, the driver
                unbound and |driver| bound; then the 'unbind' and 'bind' uevents (a listener
                that reads sysfs on 'unbind' already finds the end state)."""
                t = self.t
                devdir = t.devdir(address)
                self.set_driver_override(address, None)
                self.unbind(address, send=False)
                self.bind(address, driver, send=False)
                t.set_uevent_var(devdir, 'DRIVER', None)
                self.uevent(t.syspath(address), 'unbind')
                t.set_uevent_var(devdir, 'DRIVER', driver)
                self.uevent(t.syspath(address), 'bind')

        def set_driver_override(self, address, value):
                with self.lock:
                        return self._set_driver_override(address, value)

        def _set_driver_override(self, address, value):
                """driver_override_store(): no uevent (the kernel sends none)."""
                self.t.write(os.path.join(self.t.devdir(address), 'driver_override'),
                             (value or '(null)') + '\n')
                self.overrides[address] = value or None

        def hot_add(self, path, vendor, device, cls, **kw):
                with self.lock:
                        return self._hot_add(path, vendor, device, cls, **kw)

        def _hot_add(self, path, vendor, device, cls, **kw):
                """A function appears (hotplug, rescan): 'add', then 'bind' if a driver probes it.
                Whatever bus/pci/drivers_autoprobe says: pci_bus_add_device() probes with device_attach(),
                which does not read it (drivers/pci/bus.c; hostdevd(8), HOT-ADDED FUNCTIONS)."""
                driver = kw.pop('driver', None)
                self.before_send()
                syspath = self.t.add_pci(path, vendor, device, cls, **kw)   # sends 'add'
                if driver:
                        self.host_drivers.setdefault(os.path.basename(path), driver)
                        self.bind(os.path.basename(path), driver)
                return syspath

        def hot_remove(self, address):
                with self.lock:
                        return self._hot_remove(address)

        def _hot_remove(self, address):
                """pci_stop_and_remove_bus_device(): children (VFs, mdevs) first, then the function."""
                t = self.t
                devdir = t.devdir(address)
                if os.path.exists(os.path.join(devdir, 'sriov_numvfs')):
                        self.set_sriov_numvfs(address, 0)
                for uuid in t.mdev_uuids():
                        if os.path.dirname(t.mdev_syspath(uuid)) == t.syspath(address):
                                self.mdev_remove(uuid)
                syspath = t.syspath(address)
                if os.path.islink(os.path.join(devdir, 'driver')):
                        self.unbind(address)
                self.uevent(syspath, 'remove')
                grp = os.path.join(devdir, 'iommu_group')
                if os.path.islink(grp):
                        gdir = os.path.normpath(os.path.join(devdir, os.readlink(grp)))
                        os.unlink(os.path.join(gdir, 'devices', address))
                        if not os.listdir(os.path.join(gdir, 'devices')):
                                shutil.rmtree(gdir)
                if os.path.islink(os.path.join(t.sys, 'class/mdev_bus', address)):
                        os.unlink(os.path.join(t.sys, 'class/mdev_bus', address))
                t.tb.remove_device(syspath)

        def set_sriov_numvfs(self, pf, n, vf_driver=None, first_group=None):
                with self.lock:
                        return self._set_sriov_numvfs(pf, n, vf_driver=vf_driver, first_group=first_group)

        def _set_sriov_numvfs(self, pf, n, vf_driver=None, first_group=None):
                """sriov_numvfs_store() -> sriov_enable()/sriov_disable() (drivers/pci/iov.c):
                num_VFs is set, each VF is added ('add', then 'bind' when autoprobe
                and a driver match), and the PF gets a 'change'.  Disabling removes
                every VF (the kernel requires 0 before a new count)."""
                t = self.t
                pfdir = t.devdir(pf)
                # the number of VFs is what exists: the attribute may hold a value being stored
                cur = len([e for e in os.listdir(pfdir) if re.fullmatch(r'virtfn\d+', e)])
                pfsys = t.syspath(pf)
                if n == 0:
                        for i in reversed(range(cur)):
                                link = os.path.join(pfdir, 'virtfn%d' % i)
                                vf = os.path.basename(os.readlink(link))
                                vfdir = t.devdir(vf)
                                if os.path.islink(os.path.join(vfdir, 'driver')):
                                        self.unbind(vf)
                                self.uevent(t.syspath(vf), 'remove')
                                grp = os.path.join(vfdir, 'iommu_group')
                                if os.path.islink(grp):
                                        gdir = os.path.normpath(os.path.join(vfdir, os.readlink(grp)))
                                        shutil.rmtree(gdir)
                                t.tb.remove_device(t.syspath(vf))
                                os.unlink(link)
                        t.write(os.path.join(pfdir, 'sriov_numvfs'), '0\n')
                        self.uevent(pfsys, 'change')
                        return []
                assert cur == 0, 'the kernel refuses a new VF count unless sriov_numvfs is 0 (EBUSY)'
                total = int(t.read(os.path.join(pfdir, 'sriov_totalvfs')).strip())
                assert n <= total
                offset = int(t.read(os.path.join(pfdir, 'sriov_offset')).strip())
                stride = int(t.read(os.path.join(pfdir, 'sriov_stride')).strip())
                vf_device = int(t.read(os.path.join(pfdir, 'sriov_vf_device')).strip(), 16)
                vendor = int(t.read(os.path.join(pfdir, 'vendor')).strip(), 16)
                cls = int(t.read(os.path.join(pfdir, 'class')).strip(), 16)
                autoprobe = t.read(os.path.join(pfdir, 'sriov_drivers_autoprobe'), '1').strip() == '1'
                dom, bus, sf = pf.split(':')
                slot, fn = sf.split('.')
                rid = (int(bus, 16) << 8) | (int(slot, 16) << 3) | int(fn)
                parent = os.path.dirname(pfsys)[len('/sys/'):]
                t.write(os.path.join(pfdir, 'sriov_numvfs'), '%d\n' % n)
                vfs = []
                for i in range(n):
                        r = rid + offset + i * stride
                        vf = '%s:%02x:%02x.%d' % (dom, r >> 8, (r >> 3) & 0x1f, r & 7)
                        path = '%s/%s' % (parent, vf)
                        t.symlink('../' + vf, os.path.join(pfdir, 'virtfn%d' % i))
                        group = None if first_group is None else first_group + i
                        self.before_send()
                        t.add_pci(path, vendor, vf_device, cls, subdevice=0, group=group,
                                  reset='flr', links=[('physfn', '../' + pf)])
                        if vf_driver:
                                self.host_drivers[vf] = vf_driver
                        if vf_driver and autoprobe:
                                self.bind(vf, vf_driver)
                        vfs.append(vf)
                self.uevent(pfsys, 'change')
                return vfs

        def mdev_create(self, parent, type_id, uuid, driver=None, group=None, late_type_link=False):
                with self.lock:
                        return self._mdev_create(parent, type_id, uuid, driver=driver, group=group,
                                                 late_type_link=late_type_link)

        def _mdev_create(self, parent, type_id, uuid, driver=None, group=None, late_type_link=False):
                """echo UUID > <parent>/mdev_supported_types/<type>/create
                (vfio-mediated-device.rst): the mdev appears as a child of its
                parent on the mdev bus ('add', subsystem mdev), then its driver
                probes it, which takes an instance (available_instances drops:
                the vendor driver counts in probe, e.g. samples/vfio-mdev/mtty.c
                mtty_probe()), then 'bind'.  Without a driver the instance is taken
                before 'add'.  The kernel sends no uevent on the parent here
                (MDEV_STATE change uevents only surround mdev_register_parent()/
                mdev_unregister_parent(): see mdev_parent_registered())."""
                t = self.t
                if os.path.exists(os.path.join(t.sys, 'bus/pci/devices', parent)):
                        pdir = t.devdir(parent)
                else:
                        link = os.path.join(t.sys, 'class/mdev_bus', parent)
                        pdir = os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))
                avail = os.path.join(pdir, 'mdev_supported_types', type_id, 'available_instances')
                n = int(t.read(avail).strip())
                assert n > 0, 'the kernel refuses: no available instances'
                if not driver:
                        t.write(avail, '%d\n' % (n - 1))
                ppath = os.path.relpath(pdir, t.sys)
                if group is not None:
                        t.pre_link('%s/%s' % (ppath, uuid), group=group)
                self.before_send()
                t.tb.add_from_string(mdev_text(ppath, uuid, type_id, group=group,
                                               type_link=not late_type_link))   # sends 'add'
                devdir = os.path.join(pdir, uuid)
                t.link_outside(devdir, uuid)
                syspath = '/sys/' + os.path.relpath(devdir, t.sys)
                if driver:
                        t.write(avail, '%d\n' % (n - 1))
                        ddir = os.path.join(t.sys, 'bus/mdev/drivers', driver)
                        t.ensure_driver_dir(ddir)
                        t.symlink(os.path.relpath(devdir, ddir), os.path.join(ddir, uuid))
                        t.symlink(os.path.relpath(ddir, devdir), os.path.join(devdir, 'driver'))
                        t.set_uevent_var(devdir, 'DRIVER', driver)
                        self.uevent(syspath, 'bind')
                if late_type_link:
                        # mdev_create_sysfs_files(): the type's devices/ entry, then mdev_type.
                        t.symlink('../mdev_supported_types/' + type_id, os.path.join(devdir, 'mdev_type'))
                        t.link_outside(devdir, uuid)
                return syspath

        def mdev_remove(self, uuid):
                with self.lock:
                        return self._mdev_remove(uuid)

        def _mdev_remove(self, uuid):
                """echo 1 > /sys/bus/mdev/devices/UUID/remove: device_del() unbinds the
                driver (which frees the instance: available_instances rises), 'unbind',
                then 'remove'; the directory goes last."""
                t = self.t
                syspath = t.mdev_syspath(uuid)
                devdir = t.real(syspath)
                tdir = os.path.normpath(os.path.join(devdir, os.readlink(os.path.join(devdir, 'mdev_type'))))
                pool = self.mdev_pools.get(os.path.basename(os.path.dirname(devdir)))
                if pool is not None:
                        pool['used'].pop(uuid, None)
                        self._mdev_recount(os.path.basename(os.path.dirname(devdir)))
                else:
                        avail = os.path.join(tdir, 'available_instances')
                        t.write(avail, '%d\n' % (int(t.read(avail).strip()) + 1))
                drv = os.path.join(devdir, 'driver')
                if os.path.islink(drv):
                        ddir = os.path.normpath(os.path.join(devdir, os.readlink(drv)))
                        os.unlink(drv)
                        os.unlink(os.path.join(ddir, uuid))
                        t.set_uevent_var(devdir, 'DRIVER', None)
                        self.uevent(syspath, 'unbind')
                self.uevent(syspath, 'remove')
                grp = os.path.join(devdir, 'iommu_group')
                if os.path.islink(grp):
                        shutil.rmtree(os.path.normpath(os.path.join(devdir, os.readlink(grp))))
                os.unlink(os.path.join(tdir, 'devices', uuid))
                t.tb.remove_device(syspath)

        def mdev_parent_registered(self, parent_syspath, registered=True):
                with self.lock:
                        return self._mdev_parent_registered(parent_syspath, registered=registered)

        def _mdev_parent_registered(self, parent_syspath, registered=True):
                """mdev_register_parent()/mdev_unregister_parent(): a 'change' on the
                parent with MDEV_STATE=registered|unregistered (kernel >= 5.3)."""
                devdir = self.t.real(parent_syspath)
                state = 'registered' if registered else 'unregistered'
                self.t.set_uevent_var(devdir, 'MDEV_STATE', state)
                self.uevent(parent_syspath, 'change')
                self.t.set_uevent_var(devdir, 'MDEV_STATE', None)


        # -- mediated devices as Linux 6.1 makes them on a write to a type's create
        #    (drivers/vfio/mdev/mdev_core.c, mdev_sysfs.c), and vendor vGPUs on VFs

        def mdev_parent_dir(self, parent):
                """The device directory of mdev parent |parent| (its /sys/class/mdev_bus name)."""
                link = os.path.join(self.t.sys, 'class/mdev_bus', parent)
                return os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))

        def mdev_parent_capacity(self, parent, units, costs, driver, one_type=False):
                """Make |parent|'s vendor driver count its instances itself (mdev_driver.get_available,
                e.g. samples/vfio-mdev/mtty.c): |units| shared by its types, each instance of type T
                taking costs[T] (mtty: 24 ports, mtty-1 one, mtty-2 two), available_instances =
                free units // cost, checked in the driver's probe (mtty_probe(): -ENOSPC). one_type:
                while one type has instances the others show 0 (NVIDIA's time-sliced vGPUs of one
                size per GPU). |driver|: the parent's mdev driver (mtty: "vfio_mtty"). Instances that
                exist already are counted. Without this the mdev core counts (6.1:
                parent->available_instances, one number per type here)."""
                with self.lock:
                        pdir = self.mdev_parent_dir(parent)
                        used = {}
                        for uuid in self.t.mdev_uuids():
                                d = self.t.real(self.t.mdev_syspath(uuid))
                                if os.path.dirname(d) == pdir and os.path.islink(os.path.join(d, 'mdev_type')):
                                        used[uuid] = os.path.basename(os.readlink(os.path.join(d, 'mdev_type')))
                        self.mdev_pools[parent] = {'units': units, 'costs': dict(costs), 'driver': driver,
                                                   'one_type': one_type, 'used': used}
                        self._mdev_recount(parent)

        def _mdev_recount(self, parent):
                pool = self.mdev_pools[parent]
                tdir = os.path.join(self.mdev_parent_dir(parent), 'mdev_supported_types')
                free = pool['units'] - sum(pool['costs'][x] for x in pool['used'].values())
                active = set(pool['used'].values())
                for typ, cost in pool['costs'].items():
                        n = 0 if pool['one_type'] and active and typ not in active else free // cost
                        self.t.write(os.path.join(tdir, typ, 'available_instances'), '%d\n' % n)

        def mdev_create_written(self, parent, type_id, value):
                with self.lock:
                        return self.store_mdev_create(parent, type_id, value)

        def store_mdev_create(self, parent, type_id, value):
                """create_store() (mdev_sysfs.c): 36 or 37 bytes (UUID_STRING_LEN, or one more) else
                EINVAL; guid_parse() of the first 36 else EINVAL (any hex case; the mdev is named
                lowercase, "%pUl"). mdev_device_create() (mdev_core.c): a UUID any mdev has: EEXIST; a
                parent the core counts with no instance left: EUSERS, before anything appears. Then
                device_add(): the directory with uevent and remove, the /sys/bus/mdev/devices link,
                'add' (SUBSYSTEM=mdev only: 6.1 adds no MDEV_TYPE); device_driver_attach(): the
                parent's mdev driver probes (a driver that counts itself and has no room fails with
                ENOSPC: device_del() sends 'remove' and the directory goes), registers a VFIO device
                in a new IOMMU group (vfio_register_emulated_iommu_dev()) and binds: 'bind' with
                DRIVER=; only then mdev_create_sysfs_files(): the type's devices/ entry and the
                mdev_type link, with no uevent. The write returns after all of it."""
                t = self.t
                if len(value) not in (36, 37) or not UUID_RE.fullmatch(value[:36]):
                        return errno.EINVAL
                uuid = value[:36].lower()
                if uuid in t.mdev_uuids():
                        return errno.EEXIST
                pdir = self.mdev_parent_dir(parent)
                tdir = os.path.join(pdir, 'mdev_supported_types', type_id)
                pool = self.mdev_pools.get(parent)
                if pool is None:
                        avail = os.path.join(tdir, 'available_instances')
                        n = int(t.read(avail).strip())
                        if n == 0:
                                return errno.EUSERS
                        t.write(avail, '%d\n' % (n - 1))
                        driver = self.mdev_drivers.get(parent, 'vfio_mdev')
                else:
                        driver = pool['driver']
                path = '%s/%s' % (os.path.relpath(pdir, t.sys), uuid)
                devdir = os.path.join(t.sys, path)
                syspath = '/sys/' + path
                self.before_send()
                t.tb.add_from_string('P: /%s\nE: SUBSYSTEM=mdev\nA: remove=\n' % path)    # sends 'add'
                if pool is not None:
                        used = pool['used']
                        free = pool['units'] - sum(pool['costs'][x] for x in used.values())
                        if pool['costs'][type_id] > free or (pool['one_type'] and used
                                                            and type_id not in used.values()):
                                self.uevent(syspath, 'remove')
                                t.tb.remove_device(syspath)
                                return errno.ENOSPC
                        used[uuid] = type_id
                        self._mdev_recount(parent)
                group = self.next_free_group()
                t.pre_link(path, group=group)
                t.symlink(t.rel_from(devdir, 'kernel/iommu_groups/%d' % group), os.path.join(devdir, 'iommu_group'))
                ddir = os.path.join(t.sys, 'bus/mdev/drivers', driver)
                t.ensure_driver_dir(ddir)
                t.symlink(os.path.relpath(devdir, ddir), os.path.join(ddir, uuid))
                t.symlink(os.path.relpath(ddir, devdir), os.path.join(devdir, 'driver'))
                t.set_uevent_var(devdir, 'DRIVER', driver)
                if self.mdev_cdevs:
                        n = self.next_free_cdev()
                        os.makedirs(os.path.join(devdir, 'vfio-dev', 'vfio%d' % n))
                        t.write(os.path.join(devdir, 'vfio-dev', 'vfio%d' % n, 'dev'), '511:%d\n' % n)
                self.uevent(syspath, 'bind')
                os.makedirs(os.path.join(tdir, 'devices'), exist_ok=True)
                t.symlink(os.path.relpath(devdir, os.path.join(tdir, 'devices')), os.path.join(tdir, 'devices', uuid))
                t.symlink('../mdev_supported_types/' + type_id, os.path.join(devdir, 'mdev_type'))
                return 0

        def store_mdev_remove(self, uuid, value):
                """remove_store() (mdev_sysfs.c): kstrtoul(buf, 0) (one trailing newline) else
                EINVAL; 0 does nothing; else mdev_device_remove(): see _mdev_remove()."""
                if not re.fullmatch(r'(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\n?', value):
                        return errno.EINVAL
                if int(value.strip(), 16 if value[:2] in ('0x', '0X') else 8 if value.startswith('0') else 10):
                        self._mdev_remove(uuid)
                return 0

        def next_free_cdev(self):
                """The lowest N no mdev's vfio-dev/vfioN uses (the kernel's ida)."""
                used = set()
                for uuid in self.t.mdev_uuids():
                        d = os.path.join(self.t.real(self.t.mdev_syspath(uuid)), 'vfio-dev')
                        if os.path.isdir(d):
                                used.update(int(x[4:]) for x in os.listdir(d) if x[4:].isdigit())
                return min(set(range(len(used) + 1)) - used)

        def next_free_group(self):
                gdir = os.path.join(self.t.sys, 'kernel/iommu_groups')
                used = [int(g) for g in os.listdir(gdir) if g.isdigit()]
                return max(used + [0]) + 1

        def vgpu_gpu(self, pf, types, driver='nvidia'):
                """PF |pf| is a GPU whose vendor driver puts vGPU types on its SR-IOV VFs (NVIDIA
                Virtual GPU Software User Guide, "Creating an NVIDIA vGPU that supports SR-IOV on a
                Linux with KVM hypervisor", drivers that no longer use mdev): a VF bound to |driver|
                gets <VF>/nvidia/creatable_vgpu_types and current_vgpu_type ("0": none).
                types: [(id, name, max_instances)]. Time-sliced vGPUs of one type per GPU: while
                some VF carries type T, the others offer only T, until max_instances of T exist; a VF
                that carries a type offers none."""
                with self.lock:
                        self.vgpu_gpus[pf] = {'types': [(int(i), n, m) for i, n, m in types], 'driver': driver,
                                              'current': {}}
                        for vf in self.vfs_of(pf):
                                self._vgpu_probe(vf, self.driver_of(vf))

        def vfs_of(self, pf):
                pfdir = self.t.devdir(pf)
                links = sorted((int(e[6:]), e) for e in os.listdir(pfdir) if re.fullmatch(r'virtfn\d+', e))
                return [os.path.basename(os.readlink(os.path.join(pfdir, e))) for _, e in links]

        def _vgpu_pf(self, address):
                pf = _link_base(self.t.devdir(address), 'physfn')
                return pf if pf in self.vgpu_gpus else None

        def _vgpu_probe(self, address, driver):
                pf = self._vgpu_pf(address)
                if not pf or driver != self.vgpu_gpus[pf]['driver']:
                        return
                ndir = os.path.join(self.t.devdir(address), 'nvidia')
                os.makedirs(ndir, exist_ok=True)
                # what a recording says, else none
                cur = (self.t.read(os.path.join(ndir, 'current_vgpu_type')) or '0').strip()
                self.vgpu_gpus[pf]['current'][address] = int(cur)
                self.t.write(os.path.join(ndir, 'current_vgpu_type'), cur + '\n')
                self._vgpu_recount(pf)

        def _vgpu_release(self, address):
                pf = self._vgpu_pf(address)
                ndir = os.path.join(self.t.devdir(address), 'nvidia')
                if pf and os.path.isdir(ndir):
                        shutil.rmtree(ndir)
                        self.vgpu_gpus[pf]['current'].pop(address, None)
                        self._vgpu_recount(pf)

        def vgpu_current(self, vf):
                """The VF's vGPU type id (0: none), None without the vendor driver."""
                pf = self._vgpu_pf(vf)
                return self.vgpu_gpus[pf]['current'].get(vf) if pf else None

        def vgpu_creatable(self, vf):
                """[(id, name)] as <VF>/nvidia/creatable_vgpu_types lists them."""
                text = self.t.read(os.path.join(self.t.devdir(vf), 'nvidia', 'creatable_vgpu_types'), '')
                return [(int(i), n.strip()) for i, n in (line.split(':', 1) for line in text.splitlines()[1:])]

        def _vgpu_recount(self, pf):
                gpu = self.vgpu_gpus[pf]
                current = gpu['current']
                active = [c for c in current.values() if c]
                for vf, c in current.items():
                        offer = [] if c else [(i, n) for i, n, m in gpu['types']
                                               if (not active or set(active) == {i}) and active.count(i) < m]
                        # the layout the NVIDIA guide shows: a header, then "ID : NAME" per type
                        self.t.write(os.path.join(self.t.devdir(vf), 'nvidia', 'creatable_vgpu_types'),
                                     'ID    : vGPU Name\n' + ''.join('%-5d : %s\n' % o for o in offer))

        def store_current_vgpu_type(self, vf, value):
                """A write to <VF>/nvidia/current_vgpu_type (the NVIDIA guide: echo a type id from
                creatable_vgpu_types; echo 0 to delete the vGPU). The guide gives no errno: this fake
                answers EINVAL for what is no decimal id or not creatable on the VF now, EBUSY for a
                new type over another one (0 first). No uevent (the guide names none)."""
                path = os.path.join(self.t.devdir(vf), 'nvidia', 'current_vgpu_type')
                cur = self.vgpu_current(vf)
                try:
                        v = int(value.strip(), 10)
                        if v < 0:
                                raise ValueError
                except ValueError:
                        self.t.write(path, '%d\n' % cur)
                        return errno.EINVAL
                e = 0
                if v and cur and v != cur:
                        e = errno.EBUSY
                elif v and v != cur and v not in [i for i, _ in self.vgpu_creatable(vf)]:
                        e = errno.EINVAL
                pf = self._vgpu_pf(vf)
                if not e:
                        self.vgpu_gpus[pf]['current'][vf] = v
                self.t.write(path, '%d\n' % self.vgpu_current(vf))
                self._vgpu_recount(pf)
                return e

        # -- the kernel's side of the attributes the daemon writes (KernelReactor calls these
        #    with the lock held; each returns 0 or the errno the store function returns)

        def remember_host_drivers(self):
                """Record every bound function's driver as its host driver (the kernel's
                default match), unless already known."""
                with self.lock:
                        for a in self.t.addresses():
                                self.overrides.setdefault(a, self.override_of(a))
                                drv = _link_base(self.t.devdir(a), 'driver')
                                if drv:
                                        self.host_drivers.setdefault(a, drv)

        def exists(self, address):
                return os.path.exists(os.path.join(self.t.sys, 'bus/pci/devices', address))

        def driver_of(self, address):
                return _link_base(self.t.devdir(address), 'driver')

        def override_of(self, address):
                v = (self.t.read(os.path.join(self.t.devdir(address), 'driver_override'), '') or '').strip()
                return None if v in ('', '(null)') else v

        def driver_registered(self, driver):
                return os.path.isdir(os.path.join(self.t.sys, 'bus/pci/drivers', driver))

        def register_driver(self, driver):
                """The module is loaded: /sys/bus/pci/drivers/<driver> with bind/unbind/new_id/remove_id."""
                self.t.ensure_driver_dir(os.path.join(self.t.sys, 'bus/pci/drivers', driver))

        def can_probe(self, address):
                """pci_device_can_probe() (drivers/pci/pci-driver.c): a VF of a PF with
                sriov_drivers_autoprobe 0 is probed only with a driver_override."""
                d = self.t.devdir(address)
                pf = _link_base(d, 'physfn')
                if pf and self.override_of(address) is None:
                        return (self.t.read(os.path.join(self.t.devdir(pf), 'sriov_drivers_autoprobe'), '1')
                                .strip() == '1')
                return True

        def matches(self, address, driver):
                """pci_match_device(): with driver_override only that driver matches (any
                device); without, the device's host driver (its id table)."""
                o = self.override_of(address)
                if o is not None:
                        return o == driver
                return self.host_drivers.get(address) == driver

        def probe(self, address, reactor=None):
                """device_attach(): bind the first matching registered driver, if any."""
                if self.driver_of(address) or not self.can_probe(address):
                        return
                o = self.override_of(address)
                target = o if o is not None else self.host_drivers.get(address)
                if reactor and address in reactor.probe_binds_nothing \
                   and reactor.probe_binds_nothing[address] in (None, target):
                        return
                if target and self.driver_registered(target):
                        self.bind(address, target)

        def store_driver_override(self, address, value):
                """driver_override_store(): one trailing newline stripped; empty clears
                (shows "(null)"); >= PAGE_SIZE is EINVAL. No uevent."""
                path = os.path.join(self.t.devdir(address), 'driver_override')
                if len(value) >= 4096:
                        # the shim's plain write replaced the file: show the old value again
                        self.t.write(path, (self.overrides.get(address) or '(null)') + '\n')
                        return errno.EINVAL
                v = value[:-1] if value.endswith('\n') else value
                self.t.write(path, (v or '(null)') + '\n')
                self.overrides[address] = v or None
                return 0

        def store_unbind(self, driver, address):
                """unbind_store() (drivers/base/bus.c): -ENODEV unless bound to this driver."""
                if not self.exists(address) or self.driver_of(address) != driver:
                        return errno.ENODEV
                self.unbind(address)
                return 0

        def store_bind(self, driver, address, reactor=None):
                """bind_store(): -ENODEV unless unbound and the driver matches; -EBUSY if bound."""
                if not self.exists(address) or not self.matches(address, driver):
                        return errno.ENODEV
                if self.driver_of(address):
                        return errno.EBUSY
                if reactor and address in reactor.ignore_bind:
                        return 0
                self.bind(address, driver)
                return 0

        def store_drivers_probe(self, address, reactor=None):
                """drivers_probe_store() (drivers/base/bus.c): -ENODEV for no such device;
                else success whether or not anything bound."""
                if not self.exists(address):
                        return errno.ENODEV
                self.probe(address, reactor)
                return 0

        def store_sriov_drivers_autoprobe(self, pf, value):
                """sriov_drivers_autoprobe_store(): kstrtobool."""
                path = os.path.join(self.t.devdir(pf), 'sriov_drivers_autoprobe')
                v = value.strip().lower()
                if v in ('1', 'y', 'yes', 'on', 't', 'true'):
                        self.t.write(path, '1\n')
                        return 0
                if v in ('0', 'n', 'no', 'off', 'f', 'false'):
                        self.t.write(path, '0\n')
                        return 0
                return errno.EINVAL

        def store_sriov_numvfs(self, pf, value, reactor=None):
                """sriov_numvfs_store() (drivers/pci/iov.c): kstrtou16; the same count is a
                no-op; 0 disables; a new count while VFs exist is -EBUSY ("Disable before
                enabling"); above sriov_totalvfs -ERANGE. New VFs are probed unless
                sriov_drivers_autoprobe is 0."""
                pfdir = self.t.devdir(pf)
                path = os.path.join(pfdir, 'sriov_numvfs')
                cur = len([e for e in os.listdir(pfdir) if re.fullmatch(r'virtfn\d+', e)])
                total = int(self.t.read(os.path.join(pfdir, 'sriov_totalvfs')).strip())
                try:
                        n = int(value.strip(), 0)
                        if not 0 <= n <= 0xffff:
                                raise ValueError
                except ValueError:
                        self.t.write(path, '%d\n' % cur)
                        return errno.EINVAL
                if reactor and pf in reactor.numvfs_busy:
                        # the PF driver's sriov_configure() refuses (e.g. VFs assigned)
                        self.t.write(path, '%d\n' % cur)
                        return errno.EBUSY
                if n == cur:
                        self.t.write(path, '%d\n' % cur)
                        return 0
                if n == 0:
                        self.t.write(path, '%d\n' % cur)
                        self.set_sriov_numvfs(pf, 0)
                        return 0
                if cur != 0:
                        self.t.write(path, '%d\n' % cur)
                        return errno.EBUSY
                if n > total:
                        self.t.write(path, '0\n')
                        return errno.ERANGE
                self.t.write(path, '0\n')
                first = reactor.next_free_group() if reactor else None
                self.set_sriov_numvfs(pf, n, vf_driver=self.vf_host_drivers.get(pf), first_group=first)
                return 0


class KernelReactor:
        """The fake kernel's reaction to the daemon's sysfs writes.

        The daemon runs with kernel-shim.so before umockdev's preload; the shim
        turns each write() to a testbed attribute into a synchronous request on
        a unix socket (see kernel-shim.c for why a watcher alone cannot work:
        the executor reads back at once, and errors come back from write()).
        Each request is served on its own thread, under Kernel.lock, by the
        Kernel.store_* methods; the reply is the errno the kernel would return.

        Handled: <device>/driver_override, drivers/<drv>/bind and unbind,
        bus/pci/drivers_probe, <pf>/sriov_numvfs and sriov_drivers_autoprobe,
        <parent>/mdev_supported_types/<type>/create, <mdev>/remove,
        <VF>/nvidia/current_vgpu_type.
        Other attributes are plain file writes (reply 0), recorded in |writes|.

        Failure injection (PCI addresses):
          probe_binds_nothing  {address: driver}: a probe that would bind |driver| (None:
                               any) succeeds and binds nothing (the driver's probe failed)
          ignore_bind          a write to drivers/*/bind succeeds and binds nothing
          stuck_unbind         the unbind write never returns (until release_stuck())
          numvfs_busy          sriov_numvfs writes fail with EBUSY (the PF driver refuses)
          stuck_create         (UUIDs) the create write of that UUID is held until release_stuck();
                               then the kernel completes it (the mdev appears) whether or not the
                               writer is still there
          refuse_create        (type ids) a create of that type fails with ENOSPC and creates
                               nothing (a driver out of room)
        |writes|: every request (path relative to /sys, value, errno), in order;
        |kernel_errors|: those answered with an errno.
        """

        def __init__(self, kernel, workdir):
                self.k = kernel
                self.t = kernel.t
                self.path = os.path.join(workdir, 'kernel.sock')
                self.probe_binds_nothing = {}
                self.numvfs_busy = set()
                self.ignore_bind = set()
                self.stuck_unbind = set()
                self.stuck_create = set()
                self.refuse_create = set()
                self.writes = []
                self.kernel_errors = []
                self.stuck = []              # (path, value) of writes being held
                self._release = threading.Event()
                self._cond = threading.Condition()
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
                self.sock.bind(self.path)
                self.sock.listen(64)
                self._closing = False
                self.thread = threading.Thread(target=self._accept, name='kernel-reactor', daemon=True)
                self.thread.start()

        def env(self):
                """Environment for the daemon: the shim first, then umockdev's preload."""
                shim = env_path('HOSTDEVTEST_KERNEL_SHIM')
                return {'LD_PRELOAD': ' '.join(filter(None, [shim, os.environ.get('LD_PRELOAD')])),
                        'HOSTDEVTEST_KERNEL_SOCKET': self.path}

        def next_free_group(self):
                return self.k.next_free_group()

        def _accept(self):
                while True:
                        try:
                                conn, _ = self.sock.accept()
                        except OSError:
                                return
                        if self._closing:
                                conn.close()
                                return
                        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

        def _serve(self, conn):
                try:
                        buf = b''
                        while buf.count(b'\n') < 2:
                                chunk = conn.recv(65536)
                                if not chunk:
                                        return
                                buf += chunk
                        path, length, rest = buf.split(b'\n', 2)
                        length = int(length)
                        while len(rest) < length:
                                chunk = conn.recv(65536)
                                if not chunk:
                                        return
                                rest += chunk
                        value = rest[:length].decode('utf-8', 'replace')
                        e = self.react(path.decode(), value)
                        try:
                                conn.sendall(b'%d\n' % e)
                        except (BrokenPipeError, ConnectionResetError):
                                pass    # the writer is gone (a killed daemon): the store happened all the same
                except Exception as ex:   # noqa: BLE001 - a harness bug must not hang the daemon
                        sys.stderr.write('kernel reactor: %r\n' % ex)
                        try:
                                conn.sendall(b'%d\n' % errno.EIO)
                        except OSError:
                                pass
                finally:
                        conn.close()

        def react(self, path, value):
                sysdir = self.t.sys.rstrip('/') + '/'
                rel = path[len(sysdir):] if path.startswith(sysdir) else path
                name = os.path.basename(rel)
                m = re.fullmatch(r'bus/pci/drivers/([^/]+)/(bind|unbind)', rel)
                if m and m.group(2) == 'unbind' and value.strip() in self.stuck_unbind:
                        with self._cond:
                                self.stuck.append((rel, value))
                                self._cond.notify_all()
                        self._release.wait()
                        with self._cond:
                                self.stuck.remove((rel, value))
                        e = errno.EIO
                        self._record(rel, value, e)
                        return e
                if name == 'create' and value[:36].lower() in self.stuck_create:
                        with self._cond:
                                self.stuck.append((rel, value))
                                self._cond.notify_all()
                        self._release.wait()
                        with self._cond:
                                self.stuck.remove((rel, value))
                with self.k.lock:
                        if rel == 'bus/pci/drivers_probe':
                                e = self.k.store_drivers_probe(value.strip(), self)
                        elif m and m.group(2) == 'unbind':
                                e = self.k.store_unbind(m.group(1), value.strip())
                        elif m:
                                e = self.k.store_bind(m.group(1), value.strip(), self)
                        elif name == 'driver_override':
                                e = self.k.store_driver_override(os.path.basename(os.path.dirname(rel)), value)
                        elif name == 'sriov_numvfs':
                                e = self.k.store_sriov_numvfs(os.path.basename(os.path.dirname(rel)), value, self)
                        elif name == 'sriov_drivers_autoprobe':
                                e = self.k.store_sriov_drivers_autoprobe(os.path.basename(os.path.dirname(rel)),
                                                                          value)
                        elif name == 'create' and rel.split('/')[-3:-2] == ['mdev_supported_types']:
                                # write-only in sysfs: nothing stays in the file
                                self.t.write(path, '')
                                parts = rel.split('/')
                                if parts[-2] in self.refuse_create:
                                        e = errno.ENOSPC
                                else:
                                        e = self.k.store_mdev_create(parts[-4], parts[-2], value)
                        elif name == 'remove' and UUID_RE.fullmatch(os.path.basename(os.path.dirname(rel))):
                                self.t.write(path, '')
                                e = self.k.store_mdev_remove(os.path.basename(os.path.dirname(rel)), value)
                        elif name == 'current_vgpu_type' and rel.split('/')[-2:-1] == ['nvidia']:
                                e = self.k.store_current_vgpu_type(rel.split('/')[-3], value)
                        else:
                                e = 0
                self._record(rel, value, e)
                return e

        def _record(self, rel, value, e):
                with self._cond:
                        self.writes.append((rel, value, e))
                        if e:
                                self.kernel_errors.append((rel, value, e))
                        self._cond.notify_all()

        def wait_stuck(self, limit=30):
                """Block until a write is being held (stuck_unbind); returns (path, value)."""
                with self._cond:
                        if not self._cond.wait_for(lambda: self.stuck, timeout(limit)):
                                raise AssertionError('no write got stuck in %.0f s' % limit)
                        return self.stuck[0]

        def wait_written(self, write, limit=30):
                """Block until |write| (path relative to /sys, value, errno) was answered."""
                with self._cond:
                        if not self._cond.wait_for(lambda: write in self.writes, timeout(limit)):
                                raise AssertionError('no write %r in %.0f s' % (write, limit))

        def release_stuck(self):
                """Let every held write return (with EIO, as a driver giving up)."""
                self._release.set()

        def writes_to(self, suffix):
                with self._cond:
                        return [(p, v, e) for p, v, e in self.writes if p.endswith(suffix)]

        def close(self):
                self._closing = True
                self.release_stuck()
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:   # wake accept()
                        try:
                                wake.connect(self.path)
                        except OSError:
                                pass
                self.sock.close()
                self.thread.join(5)


# ---------------------------------------------------------------------------
# The oracle: what hostdevd must publish for a testbed, read independently.


class PciIds:
        """Minimal pci.ids reader (vendor, device, class, subclass names)."""

        def __init__(self, path='/usr/share/misc/pci.ids'):
                self.vendors, self.devices, self.classes, self.subclasses = {}, {}, {}, {}
                vendor = cls = None
                with open(path, encoding='utf-8', errors='replace') as f:
                        for line in f:
                                if not line.strip() or line.startswith('#'):
                                        continue
                                if line.startswith('C '):
                                        cls = int(line[2:4], 16)
                                        self.classes[cls] = line[4:].strip()
                                        vendor = None
                                elif line[0] != '\t':
                                        cls = None
                                        vendor = int(line[:4], 16)
                                        self.vendors[vendor] = line[4:].strip()
                                elif line.startswith('\t\t'):
                                        continue
                                elif vendor is not None:
                                        self.devices[(vendor, int(line[1:5], 16))] = line[5:].strip()
                                elif cls is not None:
                                        self.subclasses[(cls, int(line[1:3], 16))] = line[3:].strip()

        def class_name(self, code):
                """As libpci's pci_lookup_name(PCI_LOOKUP_CLASS | PCI_LOOKUP_NO_NUMBERS) and lspci:
                the subclass name, else the class name with the number ("Unassigned class [ffff]")."""
                sub = self.subclasses.get((code >> 16, (code >> 8) & 0xff))
                if sub:
                        return sub
                return '%s [%04x]' % (self.classes[code >> 16], code >> 8) if code >> 16 in self.classes else ''


_PCI_IDS = None


def pci_ids():
        global _PCI_IDS
        if _PCI_IDS is None:
                _PCI_IDS = PciIds(os.environ.get('HOSTDEVD_PCI_IDS', '/usr/share/misc/pci.ids'))
        return _PCI_IDS


def _attr(devdir, name):
        v = Testbed.read(os.path.join(devdir, name))
        return None if v is None else v.strip()


def _link_base(devdir, name):
        p = os.path.join(devdir, name)
        return os.path.basename(os.readlink(p)) if os.path.islink(p) else None


def parse_dsn(config):
        """Walk the extended capability list (from 0x100) for the DSN (id 0x0003)."""
        pos, seen = 0x100, set()
        while pos and pos + 12 <= len(config) and pos not in seen:
                seen.add(pos)
                header = int.from_bytes(config[pos:pos + 4], 'little')
                if header in (0, 0xffffffff):
                        return ''
                if header & 0xffff == 0x0003:
                        lo = int.from_bytes(config[pos + 4:pos + 8], 'little')
                        hi = int.from_bytes(config[pos + 8:pos + 12], 'little')
                        return '-'.join('%02x' % b for b in ((hi << 32) | lo).to_bytes(8, 'big'))
                pos = (header >> 20) & 0xffc
        return ''


def parse_bars(resource):
        bars = []
        for i, line in enumerate((resource or '').splitlines()[:7]):
                start, end, flags = (int(x, 16) for x in line.split())
                if end == 0 and start == 0:
                        continue
                bars.append((i, 'io' if flags & 0x100 else 'memory', end - start + 1,
                             bool(flags & 0x100000), bool(flags & 0x2000)))
        return bars


def mdev_types_of(devdir):
        tdir = os.path.join(devdir, 'mdev_supported_types')
        if not os.path.isdir(tdir):
                return []
        out = []
        for t in sorted(os.listdir(tdir)):
                d = os.path.join(tdir, t)
                out.append((t, _attr(d, 'name') or '', _attr(d, 'description') or '',
                            _attr(d, 'device_api') or '', int(_attr(d, 'available_instances'))))
        return out


def expected_device(t, address):
        """Every org.hostdevd1.Device property of |address|, from the testbed."""
        d = t.devdir(address)
        ids = pci_ids()
        vendor = int(_attr(d, 'vendor'), 16)
        device = int(_attr(d, 'device'), 16)
        cls = int(_attr(d, 'class'), 16)
        group = _link_base(d, 'iommu_group')
        group = int(group) if group is not None else -1
        peers = []
        if group >= 0:
                gdev = os.path.join(t.sys, 'kernel/iommu_groups/%d/devices' % group)
                peers = sorted(a for a in os.listdir(gdev)
                               if a != address and os.path.exists(os.path.join(t.sys, 'bus/pci/devices', a)))
        driver = _link_base(d, 'driver') or ''
        override = _attr(d, 'driver_override') or ''
        if override == '(null)':
                override = ''
        numa = _attr(d, 'numa_node')
        slot = t.slots().get(address.rsplit('.', 1)[0], '')
        with open(os.path.join(d, 'config'), 'rb') as f:
                config = f.read()
        physfn = _link_base(d, 'physfn') or ''
        vf_index = -1
        if physfn:
                pfdir = t.devdir(physfn)
                for e in os.listdir(pfdir):
                        if e.startswith('virtfn') and os.path.basename(os.readlink(os.path.join(pfdir, e))) == address:
                                vf_index = int(e[len('virtfn'):])
        virtfns = sorted(((int(e[len('virtfn'):]), os.path.basename(os.readlink(os.path.join(d, e))))
                          for e in os.listdir(d) if re.fullmatch(r'virtfn\d+', e)))
        is_pf = _attr(d, 'sriov_totalvfs') is not None
        vfio = driver in ('vfio-pci',) or 'vfio_pci' in driver or 'vfio-pci' in driver
        vfio_dev = ''
        if os.path.isdir(os.path.join(d, 'vfio-dev')):
                names = sorted(os.listdir(os.path.join(d, 'vfio-dev')))
                vfio_dev = '/dev/vfio/devices/' + names[0] if names else ''
        reset = _attr(d, 'reset_method')
        return {
                'Address': address,
                'SysfsPath': t.syspath(address),
                'VendorId': vendor,
                'DeviceId': device,
                'SubsystemVendorId': int(_attr(d, 'subsystem_vendor'), 16),
                'SubsystemDeviceId': int(_attr(d, 'subsystem_device'), 16),
                'Class': cls,
                'Revision': int(_attr(d, 'revision'), 16),
                'VendorName': ids.vendors.get(vendor, ''),
                'DeviceName': ids.devices.get((vendor, device), ''),
                'ClassName': ids.class_name(cls),
                'IommuGroup': group,
                'IommuGroupPeers': peers,
                'Driver': driver,
                'DriverOverride': override,
                'NumaNode': int(numa) if numa is not None else -1,
                'PhysicalSlot': slot,
                'Serial': parse_dsn(config),
                'SriovRole': 'pf' if is_pf else ('vf' if physfn else 'none'),
                'SriovTotalVFs': int(_attr(d, 'sriov_totalvfs') or 0) if is_pf else 0,
                'SriovNumVFs': int(_attr(d, 'sriov_numvfs') or 0) if is_pf else 0,
                'SriovDriversAutoprobe': (_attr(d, 'sriov_drivers_autoprobe') == '1') if is_pf else False,
                'SriovVFOffset': int(_attr(d, 'sriov_offset') or 0) if is_pf else 0,
                'SriovVFStride': int(_attr(d, 'sriov_stride') or 0) if is_pf else 0,
                'PhysFn': physfn,
                'VFIndex': vf_index,
                'VirtFns': [a for _, a in virtfns],
                'Bars': parse_bars(_attr(d, 'resource')),
                'ResetMethods': reset.split() if reset else [],
                'BootVga': _attr(d, 'boot_vga') == '1',
                'VfioGroup': '/dev/vfio/%d' % group if vfio and group >= 0 else '',
                'VfioDevice': vfio_dev if vfio else '',
                'MdevTypes': mdev_types_of(d),
                'Errors': [],
                **reconciler_defaults(),
        }


# The reconciler's per-function properties (issue 3) as they read for a function no
# rule names, for the oracle of hosts without desired state; only when the contract
# (HOSTDEVD_XML) declares them, so the oracle follows the committed contract.
RECONCILER_DEVICE_DEFAULTS = {
        'DesiredDriver': '',
        'DesiredSource': '',
        'State': 'converged',
        'StateReason': '',
        'LastError': '',
        'Holders': [],
        'Name': '',  # no [Device] Name= in the recordings' (absent) desired state
}
_reconciler_defaults = None


def reconciler_defaults():
        global _reconciler_defaults
        if _reconciler_defaults is None:
                import xml.etree.ElementTree as ET
                root = ET.parse(env_path('HOSTDEVD_XML')).getroot()
                names = {p.get('name') for i in root.findall('interface') if i.get('name') == DEVICE_IFACE
                         for p in i.findall('property')}
                _reconciler_defaults = {k: v for k, v in RECONCILER_DEVICE_DEFAULTS.items() if k in names}
        return dict(_reconciler_defaults)


def _mdev_cdev(d):
        """/dev/vfio/devices/vfioN for <mdev>/vfio-dev/vfioN with a dev attribute, else ''."""
        vdir = os.path.join(d, 'vfio-dev')
        names = sorted(n for n in os.listdir(vdir) if os.path.exists(os.path.join(vdir, n, 'dev'))) \
                if os.path.isdir(vdir) else []
        return '/dev/vfio/devices/' + names[0] if names else ''


def expected_mdev(t, uuid, owner='foreign'):
        syspath = t.mdev_syspath(uuid)
        d = t.real(syspath)
        parent = os.path.basename(os.path.dirname(syspath))
        is_pci = os.path.exists(os.path.join(t.sys, 'bus/pci/devices', parent))
        group = _link_base(d, 'iommu_group')
        type_dir = os.path.join(d, 'mdev_type')
        return {
                'Uuid': uuid,
                'SysfsPath': syspath,
                'Type': _link_base(d, 'mdev_type') or '',
                'Parent': parent,
                'ParentDevice': device_path(parent) if is_pci else '/',
                'IommuGroup': int(group) if group is not None else -1,
                'Driver': _link_base(d, 'driver') or '',
                'Errors': [],
                'TypeName': (_attr(type_dir, 'name') or '') if os.path.islink(type_dir) else '',
                'VfioGroup': '/dev/vfio/%s' % group if group is not None else '',
                'VfioDevice': _mdev_cdev(d),
                # a daemon without rules or records: every instance is someone else's, as it is
                'Owner': owner,
                'State': 'converged',
                'StateReason': '',
                'Holders': [],
        }


def expected_manager_types(t):
        out = []
        cdir = os.path.join(t.sys, 'class/mdev_bus')
        for name in sorted(os.listdir(cdir)):
                pdir = os.path.normpath(os.path.join(cdir, os.readlink(os.path.join(cdir, name))))
                out += [(name,) + typ for typ in mdev_types_of(pdir)]
        return out


def expected_objects(t):
        """{object path: {interface: {property: value}}} as GetManagedObjects must return."""
        objs = {device_path(a): {DEVICE_IFACE: expected_device(t, a)} for a in t.addresses()}
        objs.update({mdev_path(u): {MDEV_IFACE: expected_mdev(t, u)} for u in t.mdev_uuids()})
        return objs


# ---------------------------------------------------------------------------
# Processes: bus, daemon, client


class Bus:
        """A private dbus-daemon configured as the system bus is, with hostdevd's own policy.

        The default context is the system bus's (dbus's system.conf): everybody may connect,
        receive, send signals and replies and talk to the bus driver; nobody may own a name
        or send a method call unless a policy punches a hole. The holes are the project's
        installed policy, dbus/org.hostdevd1.conf ($HOSTDEVD_BUS_POLICY, included as
        system.d/ files are), and, for the test's own services, what polkit's own policy
        allows: root owns org.freedesktop.PolicyKit1 (the mocks run as root), everybody
        may call it. Nothing here allows org.hostdevd1: the daemon (root) owns it and every
        caller reaches it through the included policy alone.

        The socket's directory is open to every uid (as /run/dbus is), so that tests can
        call as an unprivileged user."""

        CONFIG = '''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <!-- hostdevd integration tests: a private bus with the system bus's default policy -->
  <type>system</type>
  <listen>unix:path=%(socket)s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>

  <!-- the test's polkitd (python-dbusmock's template or polkitd-held.py) -->
  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>

  <include>%(policy)s</include>
</busconfig>
'''

        def __init__(self, workdir, name='bus'):
                self.dir = tempfile.mkdtemp(prefix=name + '.', dir=workdir)
                # every uid reaches the socket: the workdir is passable, the bus directory readable
                os.chmod(workdir, 0o711)
                os.chmod(self.dir, 0o755)
                conf = os.path.join(self.dir, 'bus.conf')
                with open(conf, 'w') as f:
                        f.write(self.CONFIG % {'socket': os.path.join(self.dir, 'socket'),
                                               'policy': env_path('HOSTDEVD_BUS_POLICY')})
                r, w = os.pipe()
                self.proc = subprocess.Popen(
                        ['dbus-daemon', '--nofork', '--nopidfile', '--config-file=' + conf,
                         '--print-address=%d' % w],
                        pass_fds=(w,), env=preload_free_env(), stdout=subprocess.DEVNULL,
                        preexec_fn=die_with_parent)
                os.close(w)
                addr = b''
                deadline = time.monotonic() + timeout(20)
                while not addr.endswith(b'\n'):
                        rem = deadline - time.monotonic()
                        if rem <= 0 or not select.select([r], [], [], rem)[0]:
                                raise RuntimeError('dbus-daemon did not print its address')
                        chunk = os.read(r, 4096)
                        if not chunk:
                                raise RuntimeError('dbus-daemon exited: %s' % self.proc.poll())
                        addr += chunk
                os.close(r)
                self.address = addr.decode().strip()

        def stop(self):
                if self.proc.poll() is None:
                        self.proc.terminate()
                        self.proc.wait(timeout=10)
                shutil.rmtree(self.dir, ignore_errors=True)


_daemon_help = None


def daemon_has_option(option):
        """Whether hostdevd --help lists |option| (the harness serves daemons with and without
        the reconciler's options)."""
        global _daemon_help
        if _daemon_help is None:
                r = subprocess.run([env_path('HOSTDEVD'), '--help'], env=preload_free_env(), capture_output=True,
                                   text=True, timeout=timeout(30))
                _daemon_help = r.stdout
        return option in _daemon_help


class Daemon:
        """hostdevd on a Bus, ready when it sends READY=1 to our NOTIFY_SOCKET."""

        def __init__(self, bus, workdir, env=None, wrapper=None, ready_timeout=30, source='udev', args=()):
                self.dir = tempfile.mkdtemp(prefix='hostdevd.', dir=workdir)
                self.notify_path = os.path.join(self.dir, 'notify')
                self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self.notify.bind(self.notify_path)
                self.log_path = os.path.join(self.dir, 'hostdevd.log')
                self.log = open(self.log_path, 'w+')
                e = dict(os.environ)
                e.update({'NOTIFY_SOCKET': self.notify_path, 'HOSTDEVD_UEVENT_SOURCE': source,
                          'DBUS_SYSTEM_BUS_ADDRESS': bus.address, 'SYSTEMD_LOG_LEVEL': 'debug'})
                # ASan refuses to run behind the umockdev preload unless told (notes/umockdev.md).
                e['ASAN_OPTIONS'] = ':'.join(filter(None, [e.get('ASAN_OPTIONS'), 'verify_asan_link_order=0']))
                e.update(env or {})
                if wrapper is None:
                        wrapper = shlex.split(os.environ.get('HOSTDEVD_WRAPPER', ''))
                self.wrapped = bool(wrapper)
                cmd = list(wrapper) + [env_path('HOSTDEVD'), '--bus-address', bus.address]
                if daemon_has_option('--config-dirs') and not any(a.startswith('--config-dirs') for a in args):
                        # Never the build machine's /etc/hostdevd, /run/hostdevd, /var/lib/hostdevd: no
                        # desired state (observe only), and state under the test's own directory.
                        for sub in ('run', 'state'):
                                os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
                        cmd += ['--config-dirs=', '--state-dir=' + os.path.join(self.dir, 'state'),
                                '--runtime-dir=' + os.path.join(self.dir, 'run')]
                if daemon_has_option('--no-load-modules'):
                        # Never this machine's kernel modules (the daemon also refuses under umockdev).
                        cmd += ['--no-load-modules']
                cmd += list(args)
                self.t0 = time.monotonic()
                self.proc = subprocess.Popen(cmd, env=e, stdout=self.log, stderr=subprocess.STDOUT,
                                             preexec_fn=die_with_parent)
                self.ready_s = None
                self.status = {}
                self.wait_ready(timeout(ready_timeout * (10 if self.wrapped else 1)))

        @property
        def pid(self):
                return self.proc.pid

        def wait_ready(self, limit):
                deadline = time.monotonic() + limit
                while True:
                        rem = deadline - time.monotonic()
                        if rem <= 0:
                                raise RuntimeError('hostdevd sent no READY=1 in %.0f s\n%s' % (limit, self.output()))
                        if select.select([self.notify], [], [], min(rem, 0.2))[0]:
                                msg = self.notify.recv(4096).decode()
                                for line in msg.splitlines():
                                        k, _, v = line.partition('=')
                                        self.status[k] = v
                                if self.status.get('READY') == '1':
                                        self.ready_s = time.monotonic() - self.t0
                                        return
                        elif self.proc.poll() is not None:
                                raise RuntimeError('hostdevd exited with %d before READY=1\n%s'
                                                   % (self.proc.returncode, self.output()))

        def output_bytes(self):
                self.log.flush()
                with open(self.log_path, 'rb') as f:
                        return f.read()

        def output(self):
                """The log as text; bytes that are not UTF-8 (hostdevd escapes them, but a library it
                calls might not) show as \\xNN instead of failing the test that reads it."""
                return self.output_bytes().decode('utf-8', errors='backslashreplace')

        def stop(self, sig=signal.SIGTERM, limit=30):
                """Stop the daemon; returns its exit status (valgrind: 1 on errors)."""
                if self.proc.poll() is None:
                        self.proc.send_signal(sig)
                        try:
                                self.proc.wait(timeout=timeout(limit * (10 if self.wrapped else 1)))
                        except subprocess.TimeoutExpired:
                                self.proc.kill()
                                self.proc.wait()
                                raise RuntimeError('hostdevd ignored %s\n%s' % (sig, self.output()))
                self.notify.close()
                return self.proc.returncode

        def cleanup(self):
                if self.proc.poll() is None:
                        self.proc.kill()
                        self.proc.wait()
                self.log.close()
                shutil.rmtree(self.dir, ignore_errors=True)


class Client:
        """A connection to the private bus recording every signal from hostdevd."""

        def __init__(self, bus):
                self.address = bus.address
                self.conn = dbus.bus.BusConnection(bus.address)
                self.signals = []      # (member, path, interface, args) in arrival order
                self.conn.add_signal_receiver(self._on_signal, sender_keyword='sender',
                                              member_keyword='member', path_keyword='path',
                                              interface_keyword='interface')
                self.ctx = GLib.MainContext.default()
                self.owner = None

        def _on_signal(self, *args, sender=None, member=None, path=None, interface=None):
                if self.owner is None:
                        try:
                                self.owner = self.conn.get_name_owner(BUS_NAME)
                        except dbus.DBusException:
                                return
                if sender != self.owner:
                        return
                self.signals.append((str(member), str(path), str(interface), unwrap(list(args))))

        def obj(self, path):
                return self.conn.get_object(BUS_NAME, path, introspect=False)

        def call(self, path, iface, method, *args, timeout_s=60):
                return unwrap(getattr(dbus.Interface(self.obj(path), iface), method)(*args, timeout=timeout_s))

        def get(self, path, iface, prop):
                return self.call(path, PROPS_IFACE, 'Get', iface, prop)

        def get_all(self, path, iface):
                return self.call(path, PROPS_IFACE, 'GetAll', iface)

        def manager(self, prop):
                return self.get(ROOT_PATH, MANAGER_IFACE, prop)

        def managed_objects(self, timeout_s=120):
                """GetManagedObjects with the standard interfaces dropped."""
                objs = self.call(ROOT_PATH, OM_IFACE, 'GetManagedObjects', timeout_s=timeout_s)
                return {p: {i: props for i, props in ifaces.items() if not i.startswith('org.freedesktop.DBus.')}
                        for p, ifaces in objs.items()}

        def device_by_address(self, address):
                return self.call(ROOT_PATH, MANAGER_IFACE, 'GetDeviceByAddress', address)

        def pump(self):
                while self.ctx.pending():
                        try:
                                self.ctx.iteration(False)
                        except SystemError as e:
                                # dbus-python dispatching a message of a connection whose Python object
                                # is gone (the Client of a daemon an earlier start() replaced): nothing
                                # of this client's. Anything else is raised.
                                cause = e
                                while cause is not None and 'does not have a Connection instance' not in str(cause):
                                        cause = cause.__cause__
                                if cause is None:
                                        raise

        def wait_for(self, predicate, limit=10, what='condition'):
                """Iterate the main loop until predicate() is true; fail after |limit| s.
                |what| names the condition; a callable is called for it only on failure."""
                deadline = time.monotonic() + timeout(limit)
                fired = []
                src = None
                while True:
                        self.pump()
                        r = predicate()
                        if r:
                                if src is not None:
                                        GLib.source_remove(src)
                                return r
                        rem = deadline - time.monotonic()
                        if rem <= 0:
                                raise AssertionError('timed out after %.1f s waiting for %s' %
                                                     (limit, what() if callable(what) else what))
                        if src is not None:
                                GLib.source_remove(src)
                        fired.clear()
                        src = GLib.timeout_add(max(1, int(min(rem, 0.5) * 1000)), lambda: fired.append(1) or False)
                        self.ctx.iteration(True)
                        if fired:
                                src = None

        def properties_changed(self, path, since=0):
                """[(changed dict, invalidated list)] for |path| since signal index |since|."""
                return [(a[1], a[2]) for m, p, i, a in self.signals[since:]
                        if m == 'PropertiesChanged' and p == path]

        def wait_signal(self, match, since=0, limit=10, what='signal'):
                """Wait for a signal s (member, path, interface, args) with match(s) true."""
                def found():
                        for s in self.signals[since:]:
                                if match(s):
                                        return s
                        return None
                return self.wait_for(found, limit, what)

        def wait_property(self, path, iface, prop, value, since=0, limit=10):
                """Wait for a PropertiesChanged on |path| carrying prop == value."""
                return self.wait_signal(
                        lambda s: s[0] == 'PropertiesChanged' and s[1] == path and s[3][0] == iface
                        and s[3][1].get(prop) == value, since, limit,
                        '%s %s.%s = %r' % (path, iface, prop, value))

        def close(self):
                self.conn.close()


def hostdevctl(address, *args, check=None):
        """Run hostdevctl on the private bus; returns CompletedProcess (text)."""
        r = subprocess.run([env_path('HOSTDEVCTL'), '--address', address] + list(args),
                           env=preload_free_env(), capture_output=True, encoding='utf-8',
                           errors='backslashreplace', timeout=timeout(60))
        if check is not None and r.returncode != check:
                raise AssertionError('hostdevctl %s: exit %d (expected %d)\nstdout: %s\nstderr: %s'
                                     % (' '.join(args), r.returncode, check, r.stdout, r.stderr))
        return r


def json_devices(text):
        """hostdevctl list --json -> {address: {property: value}} (list or map accepted)."""
        data = json.loads(text)
        if isinstance(data, dict):
                data = data.get('devices', data)
        if isinstance(data, dict):
                return {v.get('Address', k): v for k, v in data.items()}
        return {d['Address']: d for d in data}


# ---------------------------------------------------------------------------
# Large synthetic hosts


def build_large(t, n=4096, mdev_parents=0):
        """n functions: 8 per slot, 32 slots per bus, buses from 0x10 on; one IOMMU
        group per slot, every function bound (alternating drivers), each with BARs
        and a config; added device by device (one add_from_string per device:
        a single string of all of them is quadratic in umockdev)."""
        drivers = ('vfio-pci', 'ixgbe', 'nvme', None)
        for i in range(n):
                bus, slot, fn = 0x10 + i // 256, (i // 8) % 32, i % 8
                addr = '0000:%02x:%02x.%d' % (bus, slot, fn)
                path = 'devices/pci0000:%02x/%s' % (bus, addr)
                t.add_pci(path, 0x8086, 0x10fb, 0x020000, rev=0x01, driver=drivers[i % 4],
                          group=i // 8, numa=bus & 1,
                          bars={0: (0x80000000 + i * 0x100000, 0x80000, MEM32),
                                2: (0x10000000000 + i * 0x400000, 0x4000, MEM64P)},
                          reset='flr bus')
        return n


class Harness:
        """One test's world: a testbed, its fake kernel, buses, daemons, clients."""

        def __init__(self):
                self.t = Testbed()
                self.k = Kernel(self.t)
                self.workdir = tempfile.mkdtemp(prefix='hostdevtest.')
                self.buses, self.daemons, self.clients = [], [], []

        def recording(self, name):
                self.t.load(os.path.join(env_path('RECORDINGS_DIR'), name))

        def start(self, **kw):
                """Start a bus + hostdevd + client; returns (bus, daemon, client)."""
                bus = Bus(self.workdir)
                self.buses.append(bus)
                client = Client(bus)
                self.clients.append(client)
                daemon = Daemon(bus, self.workdir, **kw)
                self.daemons.append(daemon)
                client.wait_for(lambda: client.conn.name_has_owner(BUS_NAME), 10, 'org.hostdevd1 on the bus')
                return bus, daemon, client

        def cleanup(self):
                for c in self.clients:
                        c.close()
                for d in self.daemons:
                        d.cleanup()
                for b in self.buses:
                        b.stop()
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.t.tb = None

        # sentinel-based barrier: a device whose only purpose is to prove that
        # every earlier uevent has been processed (uevents are handled in order).
        SENTINEL = '0000:ff:1f.7'

        def add_sentinel(self):
                self.t.add_pci('devices/pci0000:ff/' + self.SENTINEL, 0x1b36, 0x0005, 0x00ff00)
                self._sentinel_bound = False

        def pace_with(self, client):
                """Make the fake kernel wait for hostdevd every Kernel.burst uevents."""
                self.k.pace = lambda: self.barrier(client, limit=120)

        def barrier(self, client, limit=30):
                """Return once hostdevd has processed every uevent sent before this call."""
                since = len(client.signals)
                # The sentinel's own uevent is not paced: the pace is a barrier, which would toggle the
                # sentinel again under this one and leave _sentinel_bound the opposite of the testbed.
                pacing, self.k._pacing = self.k._pacing, True
                try:
                        if self._sentinel_bound:
                                self.k.unbind(self.SENTINEL)
                                want = ''
                        else:
                                self.k.bind(self.SENTINEL, 'pci-stub')
                                want = 'pci-stub'
                finally:
                        self.k._pacing = pacing
                self._sentinel_bound = not self._sentinel_bound
                client.wait_property(device_path(self.SENTINEL), DEVICE_IFACE, 'Driver', want, since, limit)
                if not pacing:
                        self.k._unpaced = 0  # hostdevd has taken every uevent sent so far
