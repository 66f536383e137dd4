#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""hostdevctl against a contract-faithful fake hostdevd (fake_hostdevd.py) on
a private dbus-daemon: table output, --json compared with the fake's values,
show by full and short address, exit statuses, and monitor's lines for
signals the fake emits.

Environment: HOSTDEVCTL (the binary), HOSTDEVD_XML (dbus/org.hostdevd1.xml).
"""

import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import ctypes
import signal

import dbus

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fake_hostdevd as fake  # noqa: E402

TOP = os.path.dirname(os.path.dirname(HERE))
HOSTDEVCTL = os.environ.get("HOSTDEVCTL", os.path.join(TOP, "build", "cli", "hostdevctl"))
XML = os.environ.get("HOSTDEVD_XML", os.path.join(TOP, "dbus", "org.hostdevd1.xml"))

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=%s</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

# The struct key names hostdevctl(1) documents, per (value name, struct signature).
STRUCT_KEYS = {
    ("Bars", "ystbb"): ["Index", "Type", "Size", "Is64Bit", "Prefetchable"],
    ("MdevTypes", "ssssu"): ["Type", "Name", "Description", "DeviceApi", "AvailableInstances"],
    ("MdevTypes", "sssssu"): ["Parent", "Type", "Name", "Description", "DeviceApi", "AvailableInstances"],
}


def expected_json(name, sig, value):
    """What --json must print for a value of this signature (independent of the C code)."""
    if sig.startswith("a(") or sig == "as":
        return [expected_json(name, sig[1:], v) for v in value]
    if sig.startswith("("):
        fields = fake.split_signature(sig[1:-1])
        keys = STRUCT_KEYS.get((name, sig[1:-1]))
        values = [expected_json(None, f, v) for f, v in zip(fields, value)]
        return dict(zip(keys, values)) if keys else values
    return value


def expected_props(interface, values):
    sigs = fake.load_contract(XML)[0][interface]
    return {n: expected_json(n, sigs[n], values[n]) for n in sigs}


class Bus:
    """A private dbus-daemon in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hostdevctl-test-")
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONF % self.dir)
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--print-address=1"],
                                     stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
        self.address = self.proc.stdout.readline().strip()
        assert self.address.startswith("unix:"), self.address

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Fake:
    def __init__(self, bus, extra_devices=0):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_hostdevd.py"), "--address",
                                      bus.address, "--xml", XML, "--extra-devices", str(extra_devices)],
                                     stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
        line = self.proc.stdout.readline().strip()
        assert line == "READY", "fake hostdevd did not start: %r" % line
        self.conn = dbus.bus.BusConnection(bus.address)
        self.test = dbus.Interface(self.conn.get_object(fake.BUS_NAME, fake.ROOT), fake.TEST)

    def stop(self):
        self.conn.close()
        self.proc.terminate()
        self.proc.wait()
        self.proc.stdout.close()


def die_with_parent():
    """preexec_fn: the child gets SIGTERM when the test dies, so no bus or fake outlives a killed run."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run(*args, address=None, env=None, timeout=30):
    cmd = [HOSTDEVCTL] + (["--address", address] if address else []) + list(args)
    e = dict(os.environ)
    e.pop("COLUMNS", None)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)


class HostdevctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bus = Bus()
        cls.fake = Fake(cls.bus)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.bus.stop()

    def ctl(self, *args, **kw):
        return run(*args, address=self.bus.address, **kw)

    def ok(self, *args, **kw):
        r = self.ctl(*args, **kw)
        self.assertEqual(r.returncode, 0, "hostdevctl %s: %s" % (" ".join(args), r.stderr))
        self.assertEqual(r.stderr, "")
        return r.stdout

    # ---- list ----

    def test_list_table(self):
        lines = self.ok("list").splitlines()
        self.assertEqual(lines[0].split(), ["BDF", "CLASS", "IDS", "NAME", "DRIVER", "GROUP", "NUMA", "SR-IOV"])
        rows = lines[1:]
        # Sorted by address, the 5-digit VMD domain last.
        self.assertEqual([r.split()[0] for r in rows], [d["Address"] for d in fake.DEVICES])
        pf = next(r for r in rows if r.startswith("0000:02:00.0"))
        for cell in ("Ethernet controller", "8086:1572", "Intel Corporation Ethernet Controller X710", "i40e",
                     "pf 2/64"):
            self.assertIn(cell, pf)
        vf = next(r for r in rows if r.startswith("0000:02:02.1"))
        self.assertIn("vf 1 of 0000:02:00.0", vf)
        self.assertIn("vfio-pci", vf)
        # No names, group or NUMA node: class in hex and "-".
        vmd = rows[-1].split()
        self.assertEqual(vmd[:5], ["10000:00:00.0", "0xff0000", "1234:5678", "-", "-"])
        # Columns line up: every row has its driver at the DRIVER header's offset.
        col = lines[0].index("DRIVER")
        self.assertEqual(pf[col:].split()[0], "i40e")
        # Pipes get whole names.
        self.assertIn("with an unusually long marketing name for truncation", self.ok("list"))

    def test_list_truncates_names_to_columns(self):
        out = self.ok("list", env={"COLUMNS": "110"})
        for line in out.splitlines():
            self.assertLessEqual(len(line), 110, line)
        self.assertIn("...", out)
        self.assertNotIn("truncation", out)
        self.assertIn("pf 2/64", out)

    def test_list_json(self):
        devices = json.loads(self.ok("--json", "list"))
        self.assertEqual(devices, [expected_props(fake.DEVICE, d) for d in fake.DEVICES])
        gpu = devices[2]
        self.assertEqual(gpu["VendorId"], 0x10DE)
        self.assertEqual(gpu["Bars"][1], {"Index": 1, "Type": "memory", "Size": 16 << 30, "Is64Bit": True,
                                          "Prefetchable": True})
        self.assertEqual(gpu["MdevTypes"][0]["AvailableInstances"], 8)
        # --json may come after the verb too.
        self.assertEqual(json.loads(self.ok("list", "--json")), devices)

    def test_list_is_the_default(self):
        self.assertEqual(self.ok(), self.ok("list"))

    # ---- show ----

    def test_show_full_and_short_address(self):
        full = self.ok("show", "0000:02:00.0")
        self.assertEqual(self.ok("show", "02:00.0"), full)
        self.assertEqual(self.ok("show", "0000:02:00.0".upper()), full)
        fields = {}
        for line in full.splitlines():
            m = re.match(r"^ *([A-Za-z0-9]+): (.*)$", line)  # continuation lines have no "Name: "
            if m:
                fields[m.group(1)] = m.group(2)
        sigs = fake.load_contract(XML)[0][fake.DEVICE]
        self.assertEqual(set(fields), set(sigs), "show prints every property")
        self.assertEqual(fields["Address"], "0000:02:00.0")
        self.assertEqual(fields["VendorId"], "0x8086")
        self.assertEqual(fields["Class"], "0x020000")
        self.assertEqual(fields["SriovNumVFs"], "2")
        self.assertEqual(fields["SriovDriversAutoprobe"], "yes")
        self.assertEqual(fields["Bars"], "0: memory, 8 MiB, 64-bit, prefetchable")
        self.assertEqual(fields["VirtFns"], "0000:02:02.0")
        self.assertIn("\n" + " " * (len("SriovDriversAutoprobe") + 2) + "0000:02:02.1\n", full)
        self.assertEqual(fields["PhysFn"], "-")

    def test_show_json(self):
        for arg in ("0000:01:00.0", "01:00.0"):
            got = json.loads(self.ok("--json", "show", arg))
            self.assertEqual(got, expected_props(fake.DEVICE, fake.DEVICES[2]))

    def test_show_mdev(self):
        m = fake.MDEVS[0]
        got = json.loads(self.ok("--json", "show", m["Uuid"].upper()))
        self.assertEqual(got, expected_props(fake.MDEV, m))
        self.assertIn("Parent: 0000:01:00.0", self.ok("show", m["Uuid"]))

    def test_show_not_found(self):
        r = self.ctl("show", "0000:41:00.0")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("0000:41:00.0", r.stderr)
        self.assertEqual(r.stdout, "")
        r = self.ctl("--json", "show", "41:00.0")
        self.assertEqual(r.returncode, 4, r.stderr)
        r = self.ctl("show", "00000000-0000-0000-0000-000000000000")
        self.assertEqual(r.returncode, 4, r.stderr)

    def test_show_bad_address(self):
        for bad in ("zz:00.0", "0000:00:20.0", "1:00.0", "0000:00:00.0x"):
            r = self.ctl("show", bad)
            self.assertEqual(r.returncode, 2, "%s: %s" % (bad, r.stderr))
            self.assertIn("'%s'" % bad, r.stderr)

    # ---- groups ----

    def test_groups_json(self):
        groups = json.loads(self.ok("--json", "groups"))
        self.assertEqual([g["IommuGroup"] for g in groups], [0, 1, 2, 3, 4])
        by_number = {g["IommuGroup"]: g for g in groups}
        g1 = by_number[1]
        self.assertEqual([d["Address"] for d in g1["Devices"]], ["0000:00:01.0", "0000:01:00.0", "0000:01:00.1"])
        self.assertEqual(g1["Devices"][1], expected_props(fake.DEVICE, fake.DEVICES[2]))
        # bridge (pcieport) + vfio-pci + driverless: viable
        self.assertTrue(g1["Viable"])
        self.assertFalse(by_number[2]["Viable"])  # i40e
        self.assertTrue(by_number[4]["Viable"])  # vfio-pci VF
        self.assertTrue(by_number[0]["Viable"])  # driverless

    def test_groups_table(self):
        lines = self.ok("groups").splitlines()
        self.assertEqual(lines[0].split(), ["GROUP", "VIABLE", "BDF", "IDS", "DRIVER", "NAME"])
        self.assertEqual(lines[2].split()[:4], ["1", "yes", "0000:00:01.0", "1b36:000c"])
        # Further members of group 1 leave GROUP and VIABLE blank.
        self.assertEqual(lines[3].split()[:3], ["0000:01:00.0", "10de:1eb8", "vfio-pci"])
        self.assertTrue(lines[3].startswith(" "))
        self.assertEqual(lines[5].split()[:4], ["2", "no", "0000:02:00.0", "8086:1572"])

    # ---- mdev ----

    def test_mdev_list(self):
        got = json.loads(self.ok("--json", "mdev", "list"))
        self.assertEqual(got, [expected_props(fake.MDEV, m) for m in fake.MDEVS])
        lines = self.ok("mdev", "list").splitlines()
        self.assertEqual(lines[0].split(), ["UUID", "TYPE", "PARENT", "GROUP", "DRIVER"])
        self.assertEqual(lines[1].split(), ["83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "nvidia-556", "0000:01:00.0",
                                            "12", "vfio_mdev"])
        self.assertEqual(self.ok("mdev"), self.ok("mdev", "list"))

    def test_mdev_types(self):
        got = json.loads(self.ok("--json", "mdev", "types"))
        self.assertEqual(got, expected_json("MdevTypes", "a(sssssu)", fake.manager_props()["MdevTypes"]))
        self.assertEqual(got[2], {"Parent": "mtty", "Type": "mtty-1", "Name": "Single port serial",
                                  "Description": "", "DeviceApi": "vfio-pci", "AvailableInstances": 24})
        lines = self.ok("mdev", "types").splitlines()
        self.assertEqual(lines[0].split(), ["PARENT", "TYPE", "NAME", "AVAILABLE", "API", "DESCRIPTION"])
        # Multi-line descriptions stay on their row.
        self.assertEqual(len(lines), 4)
        self.assertIn("num_heads=4, framebuffer=4096M", lines[2])

    # ---- usage and errors ----

    def test_usage_errors(self):
        for args in (["frobnicate"], ["--frobnicate", "list"], ["show"], ["show", "a", "b"], ["list", "x"],
                     ["mdev", "frob"], ["--address"]):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
            self.assertNotEqual(r.stderr, "")
            self.assertEqual(r.stdout, "")

    def test_help_and_version(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for verb in ("list", "show DEV", "groups", "mdev list", "mdev types", "monitor", "--json", "--address"):
            self.assertIn(verb, r.stdout)
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^hostdevctl \d+\.\d+")

    def test_system_bus_address_from_environment(self):
        r = run("--json", "show", "02:02.0", env={"DBUS_SYSTEM_BUS_ADDRESS": self.bus.address})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["Driver"], "iavf")

    def test_no_daemon(self):
        empty = Bus()
        try:
            for args in (["list"], ["show", "0000:00:00.0"], ["groups"], ["mdev", "types"], ["monitor"]):
                r = run(*args, address=empty.address)
                self.assertEqual(r.returncode, 1, "%s: %s" % (args, r.stderr))
                self.assertIn("not running", r.stderr)
        finally:
            empty.stop()
        r = run("list", address="unix:path=/nonexistent/bus")
        self.assertEqual(r.returncode, 1, r.stderr)
        r = run("list", env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/bus"})
        self.assertEqual(r.returncode, 1, r.stderr)

    # ---- monitor ----

    def start_monitor(self, *args):
        before = int(self.fake.test.CallCount("GetManagedObjects"))
        proc = subprocess.Popen([HOSTDEVCTL, "--address", self.bus.address] + list(args) + ["monitor"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=die_with_parent)
        proc.pending = b""
        # monitor subscribes before it reads the objects: once the fake saw the call, no signal is missed.
        deadline = time.monotonic() + 10
        while int(self.fake.test.CallCount("GetManagedObjects")) == before:
            if proc.poll() is not None:
                self.fail("monitor exited: %r" % proc.stderr.read())
            self.assertLess(time.monotonic(), deadline, "monitor never read the objects")
            time.sleep(0.05)
        return proc

    def read_line(self, proc, timeout=10):
        # Unbuffered: a buffered readline() would hide lines already read from select().
        deadline = time.monotonic() + timeout
        while b"\n" not in proc.pending:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
            self.assertTrue(ready, "no line from monitor within %ss (got %r)" % (timeout, proc.pending))
            data = os.read(proc.stdout.fileno(), 65536)
            if not data:
                self.fail("monitor closed its output: %r" % proc.stderr.read())
            proc.pending += data
        line, proc.pending = proc.pending.split(b"\n", 1)
        return line.decode()

    def stop_monitor(self, proc):
        proc.terminate()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    def emit_changes(self):
        t = self.fake.test
        t.ChangeDevice("0000:01:00.0", json.dumps({"Driver": "nvidia", "DriverOverride": ""}))
        t.AddDevice(json.dumps({"Address": "0000:05:00.0", "VendorId": 0x8086, "DeviceId": 0x10D3,
                                "Class": 0x020000, "Driver": "e1000e", "IommuGroup": 9}))
        t.ChangeDevice("0000:05:00.0", json.dumps({"IommuGroupPeers": ["0000:05:00.1", "0000:05:00.2"]}))
        t.RemoveDevice("0000:05:00.0")
        t.ChangeManager(json.dumps({"DeviceCount": len(fake.DEVICES)}))
        t.AddMdev(json.dumps({"Uuid": "11111111-2222-3333-4444-555555555555", "SysfsPath": "/sys/x",
                              "Type": "mtty-1", "Parent": "mtty", "ParentDevice": "/", "IommuGroup": 13,
                              "Driver": "", "Errors": []}))
        t.RemoveMdev("11111111-2222-3333-4444-555555555555")
        # Back as it was, for the other tests.
        t.ChangeDevice("0000:01:00.0", json.dumps({"Driver": "vfio-pci", "DriverOverride": "vfio-pci"}))

    def test_monitor(self):
        proc = self.start_monitor()
        try:
            self.emit_changes()
            lines = [self.read_line(proc) for _ in range(8)]
        finally:
            self.stop_monitor(proc)
        self.assertEqual(lines, [
            "changed 0000:01:00.0 Driver=nvidia DriverOverride=",
            "added 0000:05:00.0 8086:10d3 e1000e",
            "changed 0000:05:00.0 IommuGroupPeers=0000:05:00.1,0000:05:00.2",
            "removed 0000:05:00.0",
            "changed manager DeviceCount=%d" % len(fake.DEVICES),
            "added 11111111-2222-3333-4444-555555555555 mtty-1 mtty",
            "removed 11111111-2222-3333-4444-555555555555",
            "changed 0000:01:00.0 Driver=vfio-pci DriverOverride=vfio-pci",
        ])

    def test_monitor_json(self):
        proc = self.start_monitor("--json")
        try:
            self.emit_changes()
            events = [json.loads(self.read_line(proc)) for _ in range(8)]
        finally:
            self.stop_monitor(proc)
        dev = "/org/hostdevd1/devices/pci_0000_01_00_0"
        self.assertEqual(events[0], {"event": "changed", "path": dev, "Address": "0000:01:00.0",
                                     "interface": fake.DEVICE,
                                     "properties": {"Driver": "nvidia", "DriverOverride": ""}, "invalidated": []})
        added = events[1]
        self.assertEqual(added["event"], "added")
        self.assertEqual(added["Address"], "0000:05:00.0")
        self.assertEqual(added["interfaces"], [fake.DEVICE])
        self.assertEqual(added["properties"]["DeviceId"], 0x10D3)
        self.assertEqual(added["properties"]["IommuGroup"], 9)
        self.assertEqual(set(added["properties"]), set(fake.load_contract(XML)[0][fake.DEVICE]))
        self.assertEqual(events[2]["properties"], {"IommuGroupPeers": ["0000:05:00.1", "0000:05:00.2"]})
        self.assertEqual(events[3], {"event": "removed", "path": "/org/hostdevd1/devices/pci_0000_05_00_0",
                                     "Address": "0000:05:00.0", "interfaces": [fake.DEVICE]})
        self.assertEqual(events[4]["path"], "/org/hostdevd1")
        self.assertNotIn("Address", events[4])
        self.assertEqual(events[4]["properties"], {"DeviceCount": len(fake.DEVICES)})
        self.assertEqual(events[5]["Uuid"], "11111111-2222-3333-4444-555555555555")
        self.assertEqual(events[5]["properties"]["Type"], "mtty-1")
        self.assertEqual(events[6]["event"], "removed")
        self.assertEqual(events[6]["Uuid"], "11111111-2222-3333-4444-555555555555")

    def test_monitor_exits_when_bus_goes_away(self):
        bus = Bus()
        f = Fake(bus)
        proc = subprocess.Popen([HOSTDEVCTL, "--address", bus.address, "monitor"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
        try:
            deadline = time.monotonic() + 10
            while int(f.test.CallCount("GetManagedObjects")) == 0:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            f.stop()
            bus.stop()
            self.assertEqual(proc.wait(timeout=10), 1)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


class ManyDevicesTest(unittest.TestCase):
    """4096 extra functions: list is one GetManagedObjects call, no per-object calls."""

    def test_list_many(self):
        bus = Bus()
        f = Fake(bus, extra_devices=4096)
        try:
            start = time.monotonic()
            r = run("--json", "list", address=bus.address, timeout=60)
            elapsed = time.monotonic() - start
            self.assertEqual(r.returncode, 0, r.stderr)
            devices = json.loads(r.stdout)
            self.assertEqual(len(devices), len(fake.DEVICES) + 4096)
            addresses = [d["Address"] for d in devices]
            self.assertEqual(addresses[-1], "10000:00:00.0")
            self.assertEqual(addresses[7], "0002:00:00.0")
            r = run("list", address=bus.address, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(r.stdout.splitlines()), len(fake.DEVICES) + 4096 + 1)
            self.assertEqual(int(f.test.CallCount("GetManagedObjects")), 2)
            self.assertEqual(int(f.test.CallCount("GetAll")), 0)
            self.assertEqual(int(f.test.CallCount("Get")), 0)
            print("list --json of %d devices: %.2fs (the fake's marshalling included)" % (len(devices), elapsed),
                  file=sys.stderr)
        finally:
            f.stop()
            bus.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
