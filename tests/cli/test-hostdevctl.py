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
    ("Holders", "uss"): ["Pid", "Command", "Node"],
    ("Holders", "is"): ["Pid", "Command"],
    ("Plan", "ussss"): ["Transaction", "Action", "Address", "Argument", "Reason"],
    ("Plan", "sss"): ["Address", "State", "Reason"],
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
        self.assertEqual(lines[0].split(), ["BDF", "CLASS", "IDS", "NAME", "DRIVER", "DESIRED", "STATE", "GROUP",
                                            "NUMA", "SR-IOV"])
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
        self.assertEqual(vmd, ["10000:00:00.0", "0xff0000", "1234:5678", "-", "-", "-", "converged", "-", "-", "-"])
        # The desired driver and state, where a rule names the function.
        audio = next(r for r in rows if r.startswith("0000:01:00.1"))
        self.assertEqual(audio[lines[0].index("DESIRED"):].split()[:2], ["snd_hda_intel", "refused"])
        # Columns line up: every row has its driver at the DRIVER header's offset.
        col = lines[0].index("DRIVER")
        self.assertEqual(pf[col:].split()[0], "i40e")
        # Pipes get whole names.
        self.assertIn("with an unusually long marketing name for truncation", self.ok("list"))

    def test_list_compact_and_fallback(self):
        # The table comes from ListDevices alone; from GetManagedObjects when the daemon has no
        # ListDevices (an older one), the same table.
        lists, objects = (int(self.fake.test.CallCount(m)) for m in ("ListDevices", "GetManagedObjects"))
        compact = self.ok("list")
        self.assertEqual(int(self.fake.test.CallCount("ListDevices")), lists + 1)
        self.assertEqual(int(self.fake.test.CallCount("GetManagedObjects")), objects)
        self.fake.test.FailNext("ListDevices", "org.freedesktop.DBus.Error.UnknownMethod", "No such method")
        self.assertEqual(self.ok("list"), compact)
        self.assertEqual(int(self.fake.test.CallCount("GetManagedObjects")), objects + 1)
        # Any other error is reported, not papered over.
        self.fake.test.FailNext("ListDevices", "org.freedesktop.DBus.Error.AccessDenied", "Denied")
        r = self.ctl("list")
        self.assertEqual(r.returncode, 1)
        self.assertIn("Failed to list devices", r.stderr)

    def test_list_truncates_names_to_columns(self):
        out = self.ok("list", env={"COLUMNS": "140"})
        for line in out.splitlines():
            self.assertLessEqual(len(line), 140, line)
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
        self.assertEqual(got[1]["Holders"], [{"Pid": 4243, "Command": "qemu-system-x86"}])
        self.assertEqual(got[1]["Owner"], "foreign")
        lines = self.ok("mdev", "list").splitlines()
        self.assertEqual(lines[0].split(), ["UUID", "TYPE", "PARENT", "GROUP", "OWNER", "STATE", "HOLDERS"])
        self.assertEqual(lines[1].split(), ["83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "nvidia-556", "(GRID", "T4-2Q)",
                                            "0000:01:00.0", "12", "hostdevd", "converged", "-"])
        self.assertEqual(lines[2].split(), ["a0e1d2c3-0000-4000-8000-00000000f0f0", "mtty-1", "(Single", "port",
                                            "serial)", "mtty", "13", "foreign", "converged", "4243",
                                            "(qemu-system-x86)"])
        # Columns line up.
        self.assertEqual(lines[2][lines[0].index("OWNER"):].split()[0], "foreign")
        self.assertEqual(self.ok("mdev"), self.ok("mdev", "list"))

    def test_show_mdev_new_properties(self):
        out = self.ok("show", "a0e1d2c3-0000-4000-8000-00000000f0f0")
        self.assertRegex(out, r"(?m)^ *Owner: foreign$")
        self.assertRegex(out, r"(?m)^ *Holders: pid 4243 \(qemu-system-x86\)$")
        self.assertRegex(out, r"(?m)^ *VfioGroup: /dev/vfio/13$")
        self.assertRegex(out, r"(?m)^ *TypeName: Single port serial$")

    def test_mdev_types_of_one_parent(self):
        types = expected_json("MdevTypes", "a(sssssu)", fake.manager_props()["MdevTypes"])
        # Full or short PCI address, or a parent's name.
        for arg in ("0000:01:00.0", "01:00.0"):
            got = json.loads(self.ok("--json", "mdev", "types", arg))
            self.assertEqual(got, [t for t in types if t["Parent"] == "0000:01:00.0"])
            self.assertEqual(len(got), 2)
            lines = self.ok("mdev", "types", arg).splitlines()
            self.assertEqual(len(lines), 3)
            self.assertTrue(all(line.startswith("0000:01:00.0") for line in lines[1:]))
        self.assertEqual(json.loads(self.ok("--json", "mdev", "types", "mtty")), [types[2]])
        for arg in ("0000:09:00.0", "nosuch"):
            r = self.ctl("mdev", "types", arg)
            self.assertEqual(r.returncode, 4, r.stderr)
            self.assertIn("No mdev parent '%s'" % arg, r.stderr)
            self.assertEqual(r.stdout, "")

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
                     ["mdev", "frob"], ["--address"], ["mdev", "list", "x"], ["mdev", "types", "a", "b"],
                     ["mdev", "create"], ["mdev", "create", "a", "b"], ["mdev", "remove"],
                     ["mdev", "list", "--uuid", "x"], ["mdev", "remove", "--persist", "x"],
                     ["mdev", "types", "--parent", "mtty"], ["bind", "--uuid", "x", "a", "b"],
                     ["list", "--parent", "mtty"], ["mdev", "remove", "--timeout", "1", "x"]):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
            self.assertNotEqual(r.stderr, "")
            self.assertEqual(r.stdout, "")

    def test_help_and_version(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for verb in ("list", "show DEV", "groups", "mdev list", "mdev types", "monitor", "--json", "--address",
                     "status", "plan", "apply", "reload", "bind DEV DRIVER", "unbind DEV", "reset DEV", "vfs PF N",
                     "export [DIR]", "import driverctl [DIR]", "--persist", "--whole-group", "--allow-critical",
                     "--driver=DRIVER", "--output=DIR", "--no-ask-password", "--timeout=SEC", "mdev types [PARENT]",
                     "mdev create TYPE", "mdev remove UUID", "import mdevctl [DIR]", "--parent=PARENT",
                     "--uuid=UUID"):
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

    # ---- bash completion ----

    def complete(self, *words):
        """COMPREPLY of completion/hostdevctl for the command line words (the last one is being typed)."""
        words = ["hostdevctl", "--address", self.bus.address] + list(words)
        script = 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _hostdevctl; ' \
                 'printf "%s\\n" "${COMPREPLY[@]}"'
        env = dict(os.environ, PATH=os.path.dirname(HOSTDEVCTL) + os.pathsep + os.environ["PATH"])
        r = subprocess.run(["bash", "-c", script, "bash", os.path.join(TOP, "completion", "hostdevctl")] + words,
                           capture_output=True, text=True, env=env, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return sorted(w for w in r.stdout.splitlines() if w)

    def test_completion(self):
        self.assertEqual(self.complete(""), sorted(
            "list show groups mdev monitor status plan apply reload bind unbind reset vfs acquire release leases run "
            "handoff export import".split()))
        self.assertEqual(self.complete("re"), ["release", "reload", "reset"])
        addresses = sorted(d["Address"] for d in fake.DEVICES)
        self.assertEqual(self.complete("bind", ""), addresses)
        self.assertEqual(self.complete("unbind", "0000:02:0"), ["0000:02:00.0", "0000:02:02.0", "0000:02:02.1"])
        self.assertEqual(self.complete("vfs", ""), ["0000:02:00.0"])  # PFs only
        self.assertIn("vfio-pci", self.complete("bind", "0000:02:02.0", ""))
        self.assertEqual(self.complete("bind", "0000:02:02.0", "ho"), ["host"])
        self.assertEqual(self.complete("vfs", "0000:02:00.0", "4", "--driver", "no"), ["none"])
        self.assertEqual(self.complete("bind", "--p"), ["--persist"])
        self.assertEqual(self.complete("mdev", ""), ["create", "list", "remove", "types"])
        self.assertEqual(self.complete("mdev", "types", ""), ["0000:01:00.0", "mtty"])
        self.assertEqual(self.complete("mdev", "create", "nv"), ["nvidia-556", "nvidia-557"])
        self.assertEqual(self.complete("mdev", "create", "mtty-1", "--parent", ""), ["0000:01:00.0", "mtty"])
        self.assertEqual(self.complete("mdev", "remove", "a0"), ["a0e1d2c3-0000-4000-8000-00000000f0f0"])
        self.assertEqual(self.complete("mdev", "create", "--"), sorted(
            "--json --address --no-ask-password --help --version --persist --parent --uuid --timeout".split()))
        self.assertEqual(self.complete("vfs", "--"), sorted(
            "--json --address --no-ask-password --help --version --persist --driver --timeout".split()))
        self.assertEqual(self.complete("reset", "--t"), ["--timeout"])
        self.assertNotIn("--persist", self.complete("list", "--"))
        self.assertEqual(self.complete("import", ""), ["driverctl", "mdevctl"])
        self.assertEqual(self.complete("import", "driverctl", "--o"), ["--output"])
        self.assertEqual(self.complete("acquire", "--d"), ["--dry-run"])
        self.assertEqual(self.complete("acquire", "--release", ""), ["host", "keep"])
        self.assertEqual(self.complete("run", "--device", "0000:02:02"), ["0000:02:02.0", "0000:02:02.1"])
        self.assertEqual(self.complete("acquire", "0000:02:00.0", "0000:02:02."), ["0000:02:02.0", "0000:02:02.1"])
        self.assertEqual(self.complete("handoff", "--f"), ["--format"])
        self.assertEqual(self.complete("handoff", "7", "--format", "c"), ["cloud-hypervisor"])
        self.assertEqual(self.complete("handoff", "--format", "json", ""), [])  # the fake has no leases

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
                              "Driver": "", "Errors": [], "TypeName": "", "Owner": "foreign", "State": "converged",
                              "StateReason": "", "Holders": [], "VfioGroup": "",
                              "VfioDevice": ""}))
        t.DeleteMdev("11111111-2222-3333-4444-555555555555")
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


CONF_DUMP = os.environ.get("CONF_DUMP", os.path.join(TOP, "build", "tests", "cli", "conf-dump"))


def conf_dump(*dirs):
    """What the daemon's parser (desired_state_load) reads from dirs."""
    r = subprocess.run([CONF_DUMP] + list(dirs), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


class ManageTest(unittest.TestCase):
    """The desired-state verbs against a fresh fake per test (they change its state)."""

    @classmethod
    def setUpClass(cls):
        cls.bus = Bus()

    @classmethod
    def tearDownClass(cls):
        cls.bus.stop()

    def setUp(self):
        self.fake = Fake(self.bus)
        self.addCleanup(self.fake.stop)
        self.test = self.fake.test

    def ctl(self, *args, **kw):
        return run(*args, address=self.bus.address, **kw)

    def expect(self, code, *args, **kw):
        r = self.ctl(*args, **kw)
        self.assertEqual(r.returncode, code, "hostdevctl %s: rc %d\nstdout: %s\nstderr: %s" % (
            " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def calls(self, method):
        return json.loads(self.test.Calls(method))

    def args_of(self, method):
        return [c["args"] for c in self.calls(method)]

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="hostdevctl-conf-")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        return d

    # ---- status ----

    def test_status(self):
        out = self.expect(0, "status").stdout
        lines = out.splitlines()
        names = [l.split(":")[0].strip() for l in lines[:14]]
        self.assertEqual(names, ["Version", "State", "Generation", "DeviceCount", "MdevCount", "IommuEnabled",
                                 "IommuReason", "EventSource", "HotplugGuard", "EarlyBindThread", "Rescans",
                                 "ConfigErrors", "HolderTracking", "CriticalTracking"])
        self.assertIn("State: refused\n", out)
        self.assertIn("Generation: 3\n", out)
        self.assertIn("HotplugGuard: driver-override\n", out)
        self.assertIn("EarlyBindThread: sched-fifo\n", out)
        self.assertIn("ConfigErrors: -\n", out)
        self.assertIn("HolderTracking: fanotify\n", out)
        self.assertIn("CriticalTracking: events\n", out)
        # No unleased holder: no table of them.
        self.assertNotIn("UNLEASED", out)
        # The functions that keep the host from converged, with the reason.
        self.assertEqual(lines[15].split(), ["ADDRESS", "STATE", "REASON"])
        self.assertEqual(lines[16].split(None, 2),
                         ["0000:01:00.1", "refused", "IOMMU group 1: peer 0000:01:00.0 is on vfio-pci"])
        self.assertEqual(len(lines), 17)

    def test_status_unleased_holders(self):
        self.test.ChangeManager(json.dumps({"UnleasedHolders": [[4242, "qemu-system-x86", ["0000:01:00.0",
                                                                                           "0000:01:00.1"]],
                                                               [77, "cloud-hypervisor", []]]}))
        lines = self.expect(0, "status").stdout.splitlines()
        i = [l.split()[:2] for l in lines].index(["UNLEASED", "HOLDER"])
        self.assertEqual(lines[i + 1].split(), ["4242", "qemu-system-x86", "0000:01:00.0", "0000:01:00.1"])
        self.assertEqual(lines[i + 2].split(), ["77", "cloud-hypervisor", "-"])

    def test_status_json(self):
        got = json.loads(self.expect(0, "--json", "status").stdout)
        self.assertEqual(got, expected_props(fake.MANAGER, fake.manager_props()))

    def test_status_config_errors(self):
        errors = ["/etc/hostdevd/devices.d/50-gpu.conf:3: Driver=vfio pci: invalid driver name",
                  "/etc/hostdevd/devices.d/60-x.conf:7: NumVFs=-1: not a number"]
        self.test.ChangeManager(json.dumps({"ConfigErrors": errors, "State": "converged"}))
        self.test.ChangeDevice("0000:01:00.1", json.dumps({"State": "converged", "StateReason": ""}))
        out = self.expect(0, "status").stdout
        # continuation lines under the values: the longest name is "CriticalTracking"
        self.assertIn("ConfigErrors: " + errors[0] + "\n" + " " * (len("CriticalTracking") + 2) + errors[1] + "\n",
                      out)
        self.assertNotIn("ADDRESS", out)

    # ---- plan ----

    def test_plan(self):
        out = self.expect(0, "plan").stdout
        lines = out.splitlines()
        self.assertEqual(lines[0], "Generation 3: 4 actions in 1 transaction.")
        self.assertEqual(lines[2].split(), ["TX", "ACTION", "ADDRESS", "ARGUMENT", "REASON"])
        self.assertEqual(lines[3].split(None, 4), ["1", "set-override", "0000:02:02.0", "vfio-pci",
                                                   "Driver=vfio-pci (/etc/hostdevd/devices.d/60-vf.conf:5)"])
        self.assertEqual(lines[4].split(), ["1", "unbind", "0000:02:02.0", "iavf", "-"])
        self.assertEqual(lines[8].split(), ["ADDRESS", "STATE", "REASON"])
        self.assertEqual(lines[10].split(None, 2), ["0000:02:02.0", "pending", "bound to iavf, wants vfio-pci"])
        # A read: no password prompt asked for, nothing applied.
        self.assertEqual(self.calls("Plan"), [{"args": [], "interactive": False}])
        self.assertEqual(self.calls("Apply"), [])

    def test_plan_json(self):
        got = json.loads(self.expect(0, "--json", "plan").stdout)
        generation, actions, devices, conflicts = fake.PLAN
        self.assertEqual(got, {
            "Generation": generation,
            "Actions": [dict(zip(["Transaction", "Action", "Address", "Argument", "Reason"], a)) for a in actions],
            "Devices": [dict(zip(["Address", "State", "Reason"], d)) for d in devices],
            "Conflicts": conflicts,
        })

    def test_plan_transactions_and_nothing_to_do(self):
        self.test.SetPlan(json.dumps([7, [[1, "unbind", "0000:01:00.0", "vfio-pci", ""],
                                          [2, "set-numvfs", "0000:02:00.0", "0", "NumVFs=4"],
                                          [2, "set-numvfs", "0000:02:00.0", "4", "NumVFs=4"]], [], []]))
        out = self.expect(0, "plan").stdout
        self.assertTrue(out.startswith("Generation 7: 3 actions in 2 transactions.\n"), out)
        self.assertNotIn("STATE", out)
        self.test.SetPlan(json.dumps([8, [], [["0000:01:00.0", "converged", ""]], []]))
        out = self.expect(0, "plan").stdout
        self.assertTrue(out.startswith("Nothing to do (generation 8).\n"), out)
        self.assertNotIn("Conflicting", out)
        self.assertEqual(json.loads(self.expect(0, "--json", "plan").stdout),
                         {"Generation": 8, "Actions": [],
                          "Devices": [{"Address": "0000:01:00.0", "State": "converged", "Reason": ""}],
                          "Conflicts": []})

    def test_plan_conflicts(self):
        # The later file won, so nothing is left to do; the rule that lost is still reported.
        conflicts = ["0000:01:00.0: Driver=vfio-pci (/etc/hostdevd/devices.d/50-b.conf:4) overrides "
                     "Driver=host (/etc/hostdevd/devices.d/40-a.conf:4)",
                     "0000:02:00.0: NumVFs=4 (/etc/hostdevd/devices.d/60-c.conf:3) overrides "
                     "NumVFs=2 (/etc/hostdevd/devices.d/55-d.conf:3)"]
        self.test.SetPlan(json.dumps([9, [], [["0000:01:00.0", "converged", ""]], conflicts]))
        out = self.expect(0, "plan").stdout
        self.assertEqual(out.splitlines()[:5], ["Conflicting rules (the first named wins):",
                                                "  " + conflicts[0], "  " + conflicts[1], "",
                                                "Nothing to do (generation 9)."])
        got = json.loads(self.expect(0, "--json", "plan").stdout)
        self.assertEqual(got["Conflicts"], conflicts)
        self.assertEqual(got["Generation"], 9)

    # ---- apply ----

    def test_apply_not_converged(self):
        r = self.expect(3, "apply")
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "State: refused")
        self.assertEqual(lines[3].split(None, 2),
                         ["0000:01:00.1", "refused", "IOMMU group 1: peer 0000:01:00.0 is on vfio-pci"])
        self.assertEqual(self.args_of("Apply"), [[]])
        got = json.loads(self.expect(3, "--json", "apply").stdout)
        self.assertEqual(got["State"], "refused")
        self.assertEqual([d["Address"] for d in got["Devices"]], ["0000:01:00.1"])
        self.assertEqual(got["Devices"][0], expected_props(fake.DEVICE, fake.DEVICES[3]))

    def test_apply_converged(self):
        self.test.ChangeManager(json.dumps({"State": "converged"}))
        self.test.ChangeDevice("0000:01:00.1", json.dumps({"State": "converged", "StateReason": ""}))
        self.assertEqual(self.expect(0, "apply").stdout, "State: converged\n")
        self.assertEqual(json.loads(self.expect(0, "--json", "apply").stdout), {"State": "converged", "Devices": []})

    def test_apply_stuck_shows_last_error(self):
        self.test.ChangeManager(json.dumps({"State": "stuck"}))
        self.test.ChangeDevice("0000:01:00.1", json.dumps({
            "State": "stuck", "StateReason": "",
            "LastError": "/sys/bus/pci/drivers/snd_hda_intel/unbind: '0000:01:00.1': timed out after 10 s"}))
        out = self.expect(3, "apply").stdout
        self.assertIn("0000:01:00.1  stuck  /sys/bus/pci/drivers/snd_hda_intel/unbind", out)

    def test_apply_denied(self):
        self.test.FailNext("Apply", fake.ERR_ACCESS_DENIED, "Permission denied")
        r = self.expect(1, "apply")
        self.assertIn("Failed to apply: not authorized", r.stderr)
        self.assertEqual(r.stdout, "")

    # ---- reload ----

    def test_reload(self):
        r = self.expect(0, "reload")
        self.assertEqual((r.stdout, r.stderr), ("", ""))
        self.assertEqual(self.args_of("Reload"), [[]])

    def test_reload_config_invalid(self):
        errors = ["/etc/hostdevd/devices.d/50-gpu.conf:3: Driver=vfio pci: invalid driver name"]
        self.test.ChangeManager(json.dumps({"ConfigErrors": errors}))
        self.test.FailNext("Reload", fake.ERR_CONFIG_INVALID, "1 file rejected, the last good state stays")
        r = self.expect(1, "reload")
        self.assertEqual(r.stderr.splitlines(), [
            "hostdevctl: Failed to reload: the desired-state files do not parse; the last good state stays:",
            errors[0]])
        self.assertEqual(r.stdout, "")
        # Without ConfigErrors, the error's own message.
        self.test.ChangeManager(json.dumps({"ConfigErrors": []}))
        self.test.FailNext("Reload", fake.ERR_CONFIG_INVALID, "1 file rejected, the last good state stays")
        r = self.expect(1, "reload")
        self.assertEqual(r.stderr, "hostdevctl: Failed to reload: 1 file rejected, the last good state stays\n")
        self.assertEqual(r.stdout, "")

    def test_reload_denied(self):
        self.test.FailNext("Reload", fake.ERR_ACCESS_DENIED, "")
        self.assertIn("not authorized", self.expect(1, "reload").stderr)

    # ---- bind, unbind, reset ----

    def test_bind(self):
        r = self.expect(0, "bind", "02:02.0", "vfio-pci")
        self.assertEqual(r.stdout, "0000:02:02.0: converged, driver vfio-pci\n")
        self.assertEqual(r.stderr, "")
        # The canonical address goes to the daemon; the password prompt is allowed only on a terminal.
        self.assertEqual(self.calls("SetDeviceDriver"),
                         [{"args": ["0000:02:02.0", "vfio-pci", []], "interactive": False}])

    def test_bind_flags(self):
        self.expect(0, "bind", "--persist", "0000:02:02.0", "vfio-pci", "--whole-group", "--allow-critical")
        self.expect(0, "bind", "0000:02:02.0", "host", "--persist")
        self.assertEqual(self.args_of("SetDeviceDriver"), [
            ["0000:02:02.0", "vfio-pci", ["persist", "whole-group", "allow-critical"]],
            ["0000:02:02.0", "host", ["persist"]]])

    def test_bind_whole_group_waits_for_the_peers(self):
        # 01:00.0's peers: the bridge 00:01.0 (converged) and 01:00.1 (refused in the fixture).
        r = self.expect(3, "bind", "01:00.0", "vfio-pci", "--whole-group")
        self.assertEqual(r.stdout, "0000:01:00.0: converged, driver vfio-pci\n"
                                   "0000:01:00.1: refused, no driver: IOMMU group 1: peer 0000:01:00.0 is on vfio-pci\n")
        self.test.ChangeDevice("0000:01:00.1", json.dumps({"State": "converged", "StateReason": ""}))
        self.assertEqual(self.expect(0, "bind", "01:00.0", "vfio-pci", "--whole-group").stdout,
                         "0000:01:00.0: converged, driver vfio-pci\n")
        # Without --whole-group the peers are not this request's business.
        self.test.ChangeDevice("0000:01:00.1", json.dumps({"State": "refused"}))
        self.expect(0, "bind", "01:00.0", "vfio-pci")

    def test_bind_json(self):
        got = json.loads(self.expect(0, "--json", "bind", "02:02.0", "vfio-pci").stdout)
        self.assertEqual(got["Address"], "0000:02:02.0")
        self.assertEqual(got["DesiredDriver"], "vfio-pci")
        self.assertEqual(got["DesiredSource"], "/run/hostdevd/devices.d/50-hostdevctl-0000:02:02.0.conf:5")
        self.assertEqual(set(got), set(fake.load_contract(XML)[0][fake.DEVICE]))

    def test_unbind(self):
        r = self.expect(0, "unbind", "02:02.0", "--persist")
        self.assertEqual(r.stdout, "0000:02:02.0: converged, no driver\n")
        self.assertEqual(self.args_of("SetDeviceDriver"), [["0000:02:02.0", "none", ["persist"]]])

    def test_bind_errors(self):
        # Looked up first: no such function (4) or a malformed address (2) never reach SetDeviceDriver.
        self.assertIn("0000:41:00.0", self.expect(4, "bind", "41:00.0", "vfio-pci").stderr)
        self.assertIn("'zz:00.0'", self.expect(2, "bind", "zz:00.0", "vfio-pci").stderr)
        self.assertEqual(self.calls("SetDeviceDriver"), [])
        # The daemon's InvalidArgument names the value: 2.
        self.assertIn("'vfio pci'", self.expect(2, "bind", "02:02.0", "vfio pci").stderr)
        # Refused and Blocked: not converged, 3, with the daemon's reason.
        self.test.FailNext("SetDeviceDriver", fake.ERR_REFUSED, "0000:00:1f.2 is host-critical: it holds /")
        r = self.expect(3, "bind", "02:02.0", "vfio-pci")
        self.assertEqual(r.stderr, "hostdevctl: Failed to set the driver of 0000:02:02.0 to vfio-pci: "
                                   "0000:00:1f.2 is host-critical: it holds /\n")
        self.test.FailNext("SetDeviceDriver", fake.ERR_BLOCKED, "held by pid 4242 (qemu-system-x86)")
        self.assertIn("held by pid 4242", self.expect(3, "unbind", "02:02.1").stderr)
        # polkit said no: 1, "not authorized".
        self.test.FailNext("SetDeviceDriver", fake.ERR_ACCESS_DENIED, "")
        self.assertIn("Failed to set the driver of 0000:02:02.0 to vfio-pci: not authorized",
                      self.expect(1, "bind", "02:02.0", "vfio-pci").stderr)
        self.test.FailNext("SetDeviceDriver", "org.hostdevd1.Error.Failed", "Input/output error")
        self.assertIn("Input/output error", self.expect(1, "bind", "02:02.0", "vfio-pci").stderr)

    def test_bind_ends_refused(self):
        self.test.SetNextState(json.dumps({"State": "refused", "StateReason": "IOMMU group 3: peer 0000:03:00.1"}))
        r = self.expect(3, "bind", "02:02.0", "vfio-pci")
        self.assertEqual(r.stdout, "0000:02:02.0: refused, driver vfio-pci: IOMMU group 3: peer 0000:03:00.1\n")

    def test_bind_ends_failed_with_last_error(self):
        self.test.SetNextState(json.dumps({"State": "failed", "StateReason": "vfio-pci did not bind",
                                           "LastError": "verify: driver is '' after drivers_probe"}))
        r = self.expect(3, "bind", "02:02.0", "vfio-pci")
        self.assertIn("0000:02:02.0: last error: verify: driver is '' after drivers_probe\n", r.stdout)

    def test_bind_waits_while_pending(self):
        self.test.SetNextState(json.dumps({"State": "pending", "StateReason": "queued",
                                           "Then": {"State": "converged", "StateReason": ""}, "AfterMs": 500}))
        start = time.monotonic()
        r = self.expect(0, "bind", "02:02.0", "vfio-pci")
        self.assertGreaterEqual(time.monotonic() - start, 0.4)
        self.assertEqual(r.stdout, "0000:02:02.0: converged, driver vfio-pci\n")

    def test_bind_waits_for_the_declaration(self):
        # A daemon that replies before its planner ran: the old declaration and "converged" are not the answer.
        self.test.SetNextState(json.dumps({"State": "converged", "StateReason": "", "DesiredDriver": "",
                                           "Then": {"DesiredDriver": "vfio-pci"}, "AfterMs": 500}))
        start = time.monotonic()
        r = self.expect(0, "bind", "02:02.0", "vfio-pci")
        self.assertGreaterEqual(time.monotonic() - start, 0.4)
        self.assertEqual(r.stdout, "0000:02:02.0: converged, driver vfio-pci\n")

    def test_timeout(self):
        # Still pending when --timeout runs out: 3, with the state as it is.
        self.test.SetNextState(json.dumps({"State": "pending", "StateReason": "queued"}))
        start = time.monotonic()
        r = self.expect(3, "bind", "02:02.0", "vfio-pci", "--timeout=1")
        self.assertGreaterEqual(time.monotonic() - start, 0.9)
        self.assertEqual(r.stdout, "0000:02:02.0: pending, driver vfio-pci: queued\n")
        # The declaration never shows: 3, naming both drivers.
        self.test.SetNextState(json.dumps({"State": "converged", "StateReason": "", "DesiredDriver": "e1000e"}))
        r = self.expect(3, "bind", "02:02.0", "vfio-pci", "--timeout", "1")
        self.assertIn("0000:02:02.0: the daemon still wants 'e1000e', not 'vfio-pci', after 1 s.", r.stderr)
        # 0: no waiting at all.
        self.test.SetNextState(json.dumps({"State": "pending", "StateReason": "queued",
                                           "Then": {"State": "converged"}, "AfterMs": 2000}))
        start = time.monotonic()
        self.expect(3, "bind", "02:02.0", "vfio-pci", "--timeout=0")
        self.assertLess(time.monotonic() - start, 1.5)
        for bad in ("x", "-1", "1.5", "86401", ""):
            self.assertIn("Invalid --timeout", self.expect(2, "bind", "02:02.0", "vfio-pci", "--timeout=" + bad).stderr)
        self.assertIn("--timeout does not apply", self.expect(2, "apply", "--timeout=1").stderr)

    def test_interactive_authorization_on_a_terminal(self):
        master, slave = os.openpty()
        try:
            cmd = [HOSTDEVCTL, "--address", self.bus.address]
            for extra in ([], ["--no-ask-password"]):
                r = subprocess.run(cmd + extra + ["bind", "02:02.0", "vfio-pci"], stdin=slave, capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            os.close(master)
            os.close(slave)
        self.assertEqual([c["interactive"] for c in self.calls("SetDeviceDriver")], [True, False])
        # Reads never ask.
        self.assertEqual(self.calls("Plan"), [])

    def test_reset(self):
        self.expect(0, "bind", "02:02.0", "vfio-pci")
        r = self.expect(0, "reset", "02:02.0")
        self.assertEqual(r.stdout, "0000:02:02.0: converged, driver vfio-pci\n")
        self.assertEqual(self.args_of("ResetDeviceDriver"), [["0000:02:02.0"]])
        # A declaration from /etc is not SetDeviceDriver's to drop: NotFound, 4.
        self.assertIn("No runtime declaration for 0000:01:00.0", self.expect(4, "reset", "01:00.0").stderr)
        self.assertEqual(self.expect(4, "reset", "41:00.0").returncode, 4)
        self.test.FailNext("ResetDeviceDriver", fake.ERR_ACCESS_DENIED, "")
        self.assertIn("not authorized", self.expect(1, "reset", "02:02.0").stderr)

    # ---- names and leases ----

    def test_names_and_acquire(self):
        # a name is looked up with GetDeviceByName, an address with GetDeviceByAddress
        self.assertIn("0000:02:02.1", self.expect(0, "show", "vf-vm").stdout)
        self.assertIn("No device named 'nope'", self.expect(4, "show", "nope").stderr)
        r = self.expect(0, "acquire", "--dry-run", "--whole-group", "vf-vm", "02:00.0")
        self.assertEqual(r.stdout, "Could lease: 0000:02:00.0 0000:02:02.1\n")
        self.assertEqual(self.args_of("Acquire"),
                         [[["vf-vm", "02:00.0"], {"whole-group": True, "dry-run": True}]])
        r = self.expect(0, "--json", "acquire", "--pid", str(os.getpid()), "--release", "keep", "vf-vm")
        self.assertEqual(json.loads(r.stdout), {"lease": "/org/hostdevd1/leases/lease_1",
                                                "devices": ["0000:02:02.1"], "dry-run": False})
        self.assertEqual(self.args_of("Acquire")[1], [["vf-vm"], {"release": "keep"}])
        self.assertIn("needs --pid", self.expect(2, "acquire", "vf-vm").stderr)
        self.assertIn("Invalid --release", self.expect(2, "acquire", "--release", "remove", "vf-vm").stderr)
        self.expect(2, "leases", "--pid", "1")  # an option the command does not take
        self.expect(2, "run", "--", "true")  # no --device
        self.assertEqual(len(self.args_of("Acquire")), 2)

    # ---- vfs ----

    def test_vfs(self):
        r = self.expect(0, "vfs", "02:00.0", "8", "--driver", "vfio-pci", "--persist")
        self.assertEqual(r.stdout, "0000:02:00.0: converged, 8 VFs\n")
        self.expect(0, "vfs", "0000:02:00.0", "0")
        self.assertEqual(self.args_of("SetNumVFs"), [["0000:02:00.0", 8, "vfio-pci", ["persist"]],
                                                     ["0000:02:00.0", 0, "", []]])

    def test_vfs_waits_for_the_vfs(self):
        # The PF converged, but a VF did not bind: not converged (3), and the VF says why.
        self.test.ChangeDevice("0000:02:02.1", json.dumps({
            "State": "failed", "StateReason": "vfio-pci did not bind", "Driver": ""}))
        r = self.expect(3, "vfs", "02:00.0", "2", "--driver", "vfio-pci")
        self.assertEqual(r.stdout, "0000:02:00.0: converged, 2 VFs\n"
                                   "0000:02:02.1: failed, no driver: vfio-pci did not bind\n")
        # --json: the PF's object only.
        got = json.loads(self.expect(3, "--json", "vfs", "02:00.0", "2").stdout)
        self.assertEqual(got["Address"], "0000:02:00.0")

    def test_vfs_errors(self):
        for bad in ("x", "4x", "", "99999999999", "+1"):
            self.assertIn("'%s'" % bad, self.expect(2, "vfs", "02:00.0", bad).stderr)
        self.assertIn("'-1'", self.expect(2, "vfs", "02:00.0", "--", "-1").stderr)
        self.assertEqual(self.calls("SetNumVFs"), [])
        self.assertIn("has at most 64", self.expect(3, "vfs", "02:00.0", "65").stderr)
        self.assertIn("not an SR-IOV PF", self.expect(3, "vfs", "01:00.0", "1").stderr)
        self.assertEqual(self.expect(4, "vfs", "41:00.0", "1").returncode, 4)
        self.test.FailNext("SetNumVFs", fake.ERR_BLOCKED, "VF 0000:02:02.1 is held by pid 4242 (qemu-system-x86)")
        self.assertIn("held by pid 4242", self.expect(3, "vfs", "02:00.0", "4").stderr)
        self.test.FailNext("SetNumVFs", fake.ERR_ACCESS_DENIED, "")
        self.assertIn("not authorized", self.expect(1, "vfs", "02:00.0", "4").stderr)

    # ---- usage ----

    def test_usage(self):
        for args in (["list", "--persist"], ["status", "--driver=x"], ["plan", "--output=/tmp"],
                     ["reset", "--persist", "02:02.0"], ["bind", "02:02.0", "--driver", "x", "vfio-pci"],
                     ["vfs", "02:00.0", "1", "--whole-group"], ["bind", "02:02.0"], ["bind"], ["unbind"],
                     ["vfs", "02:00.0"], ["reset"], ["status", "x"], ["apply", "x"], ["import"],
                     ["import", "frob"], ["export", "a", "b"], ["import", "driverctl", "a", "b"]):
            r = self.expect(2, *args)
            self.assertNotEqual(r.stderr, "")
            self.assertEqual(r.stdout, "")
        for m in ("SetDeviceDriver", "SetNumVFs", "ResetDeviceDriver", "Apply", "Reload"):
            self.assertEqual(self.calls(m), [], m)

    def test_no_daemon(self):
        empty = Bus()
        try:
            for args in (["status"], ["plan"], ["apply"], ["reload"], ["bind", "02:02.0", "vfio-pci"],
                         ["unbind", "02:02.0"], ["reset", "02:02.0"], ["vfs", "02:00.0", "1"], ["export"]):
                r = run(*args, address=empty.address)
                self.assertEqual(r.returncode, 1, "%s: %s" % (args, r.stderr))
                self.assertIn("not running", r.stderr)
        finally:
            empty.stop()

    # ---- show ----

    def test_show_desired_state(self):
        out = self.expect(0, "show", "02:02.1").stdout
        self.assertIn("      Holders: pid 4242 (qemu-system-x86) /dev/vfio/4\n", out)
        out = self.expect(0, "show", "01:00.1").stdout
        self.assertIn("  DesiredDriver: snd_hda_intel\n", out)
        self.assertIn("  DesiredSource: /etc/hostdevd/devices.d/50-gpu.conf:9\n", out)
        self.assertIn("          State: refused\n", out)
        self.assertIn("    StateReason: IOMMU group 1: peer 0000:01:00.0 is on vfio-pci\n", out)
        self.assertIn("      LastError: -\n", out)
        got = json.loads(self.expect(0, "--json", "show", "02:02.1").stdout)
        self.assertEqual(got["Holders"], [{"Pid": 4242, "Command": "qemu-system-x86", "Node": "/dev/vfio/4"}])

    # ---- export ----

    def test_export_stdout(self):
        out = self.expect(0, "export").stdout
        self.assertEqual(out, """\
# 80-export-0000:01:00.0.conf
# hostdevctl export: 0000:01:00.0 10de:1eb8
[Match]
Address=0000:01:00.0

[Device]
Driver=vfio-pci

# 80-export-0000:02:00.0.conf
# hostdevctl export: 0000:02:00.0 8086:1572
[Match]
Address=0000:02:00.0

[SRIOV]
NumVFs=2
VFDriver=vfio-pci

# 80-export-0000:02:02.0.conf
# hostdevctl export: VF 0 (0000:02:02.0) of 0000:02:00.0
[Match]
PF=0000:02:00.0
VFIndex=0

[Device]
Driver=host
""")

    def test_export_dir_parses(self):
        d = self.tmpdir()
        r = self.expect(0, "export", d)
        self.assertEqual(r.stdout, "")
        self.assertEqual(sorted(os.listdir(d)), ["80-export-0000:01:00.0.conf", "80-export-0000:02:00.0.conf",
                                                 "80-export-0000:02:02.0.conf"])
        self.assertEqual(os.stat(os.path.join(d, "80-export-0000:01:00.0.conf")).st_mode & 0o777, 0o644)
        dump = conf_dump(d)
        self.assertEqual(dump["errors"], [])
        self.assertEqual(dump["rules"], [
            {"file": "80-export-0000:01:00.0.conf", "Address": "0000:01:00.0", "Driver": "vfio-pci",
             "Group": "strict", "AllowCritical": False},
            {"file": "80-export-0000:02:00.0.conf", "Address": "0000:02:00.0", "NumVFs": 2, "VFDriver": "vfio-pci"},
            {"file": "80-export-0000:02:02.0.conf", "PF": "0000:02:00.0", "VFIndex": [0, 0], "Driver": "host",
             "Group": "strict", "AllowCritical": False},
        ])
        # Exporting again replaces the files in place (same names, same content).
        before = {f: open(os.path.join(d, f)).read() for f in os.listdir(d)}
        self.expect(0, "export", d)
        self.assertEqual({f: open(os.path.join(d, f)).read() for f in os.listdir(d)}, before)

    def test_export_replaces_the_previous_checkpoint(self):
        d = self.tmpdir()
        self.expect(0, "export", d)
        mine = {"50-mine.conf": "[Match]\nAddress=0000:01:00.1\n\n[Device]\nDriver=none\n",
                "80-export-by-hand.conf": "# not written by hostdevctl\n[Match]\nVendor=8086\n\n[Device]\nDriver=host\n"}
        for name, text in mine.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        # 01:00.0 back on its host driver: its old rule must not survive the next checkpoint.
        self.test.ChangeDevice("0000:01:00.0", json.dumps({"Driver": "nouveau", "DriverOverride": ""}))
        self.expect(0, "export", d)
        self.assertEqual(sorted(os.listdir(d)), ["50-mine.conf", "80-export-0000:02:00.0.conf",
                                                 "80-export-0000:02:02.0.conf", "80-export-by-hand.conf"])
        for name, text in mine.items():
            self.assertEqual(open(os.path.join(d, name)).read(), text)

    def test_export_and_import_skip_fifos(self):
        # A FIFO named like a checkpoint file (or a driverctl override) is never opened for reading:
        # the command does not wait for a writer (issue 17).
        d = self.tmpdir()
        fifo = os.path.join(d, "80-export-0000:09:00.0.conf")
        os.mkfifo(fifo)
        self.expect(0, "export", d)
        self.assertTrue(os.path.exists(fifo), "not a checkpoint of ours: left alone")
        src = self.driverctl_dir({"pci-0000:05:00.0": "vfio-pci\n"})
        os.mkfifo(os.path.join(src, "pci-0000:01:00.0"))
        r = self.expect(1, "import", "driverctl", src)
        self.assertIn("%s/pci-0000:01:00.0: not a regular file." % src, r.stderr)

    def test_export_vf_driver_and_none(self):
        # Both VFs on vfio-pci: one VFDriver= on the PF, no VF rules. An unbound function held by an override
        # ("none", as driverctl sets) or declared "none" exports as Driver=none.
        self.test.ChangeDevice("0000:02:02.0", json.dumps({"Driver": "vfio-pci"}))
        self.test.ChangeDevice("0000:01:00.1", json.dumps({"DriverOverride": "none"}))
        self.test.ChangeDevice("0000:00:00.0", json.dumps({"DesiredDriver": "none"}))
        d = self.tmpdir()
        self.expect(0, "export", d)
        dump = conf_dump(d)
        self.assertEqual(dump["errors"], [])
        self.assertEqual(dump["rules"], [
            {"file": "80-export-0000:00:00.0.conf", "Address": "0000:00:00.0", "Driver": "none", "Group": "strict",
             "AllowCritical": False},
            {"file": "80-export-0000:01:00.0.conf", "Address": "0000:01:00.0", "Driver": "vfio-pci",
             "Group": "strict", "AllowCritical": False},
            {"file": "80-export-0000:01:00.1.conf", "Address": "0000:01:00.1", "Driver": "none", "Group": "strict",
             "AllowCritical": False},
            {"file": "80-export-0000:02:00.0.conf", "Address": "0000:02:00.0", "NumVFs": 2, "VFDriver": "vfio-pci"},
        ])

    def test_export_vfs_on_host_drivers_and_unbound(self):
        # No VF needs a Driver=: no VFDriver= (autoprobe), no VF rules.
        self.test.ChangeDevice("0000:02:02.1", json.dumps({"Driver": "iavf"}))
        self.assertEqual(conf_dump(self.export_dir())["rules"][1:], [
            {"file": "80-export-0000:02:00.0.conf", "Address": "0000:02:00.0", "NumVFs": 2}])
        # The majority's driver for VFDriver=; an unbound VF keeps its state with Driver=none.
        self.test.ChangeDevice("0000:02:02.1", json.dumps({"Driver": "vfio-pci"}))
        self.test.ChangeDevice("0000:02:02.0", json.dumps({"Driver": ""}))
        self.assertEqual(conf_dump(self.export_dir())["rules"][1:], [
            {"file": "80-export-0000:02:00.0.conf", "Address": "0000:02:00.0", "NumVFs": 2, "VFDriver": "vfio-pci"},
            {"file": "80-export-0000:02:02.0.conf", "PF": "0000:02:00.0", "VFIndex": [0, 0], "Driver": "none",
             "Group": "strict", "AllowCritical": False}])

    def export_dir(self):
        d = self.tmpdir()
        self.expect(0, "export", d)
        return d

    def test_export_host_drivers_only(self):
        # Functions on the kernel's own match need no rule: nothing to export.
        for a in ("0000:01:00.0", "0000:02:02.1"):
            self.test.ChangeDevice(a, json.dumps({"Driver": "nouveau" if a == "0000:01:00.0" else "iavf",
                                                  "DriverOverride": ""}))
        self.test.ChangeDevice("0000:02:00.0", json.dumps({"SriovNumVFs": 0, "VirtFns": []}))
        self.assertEqual(self.expect(0, "export").stdout, "")

    # ---- import driverctl ----

    def driverctl_dir(self, entries):
        d = self.tmpdir()
        for name, content in entries.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(content)
        return d

    def test_import_driverctl(self):
        src = self.driverctl_dir({"pci-0000:01:00.0": "vfio-pci\n", "pci-0000:3b:00.1": "none\n",
                                  "pci-0000:02:02.0": "mlx5_vfio_pci", ".hidden": "junk"})
        out = self.expect(0, "import", "driverctl", src).stdout
        self.assertEqual(out, """\
# 50-driverctl-0000:01:00.0.conf
# hostdevctl import driverctl: {src}/pci-0000:01:00.0
[Match]
Address=0000:01:00.0

[Device]
Driver=vfio-pci

# 50-driverctl-0000:02:02.0.conf
# hostdevctl import driverctl: {src}/pci-0000:02:02.0
[Match]
Address=0000:02:02.0

[Device]
Driver=mlx5_vfio_pci

# 50-driverctl-0000:3b:00.1.conf
# hostdevctl import driverctl: {src}/pci-0000:3b:00.1
[Match]
Address=0000:3b:00.1

[Device]
Driver=none
""".format(src=src))
        # No bus needed: a file conversion.
        r = run("import", "driverctl", src, address="unix:path=/nonexistent/bus")
        self.assertEqual((r.returncode, r.stdout), (0, out))

        # Round trip through the daemon's parser.
        out_dir = os.path.join(self.tmpdir(), "devices.d")
        r = self.expect(0, "import", "driverctl", src, "--output", out_dir)
        self.assertEqual(r.stdout, "")
        dump = conf_dump(out_dir)
        self.assertEqual(dump["errors"], [])
        self.assertEqual([(x["Address"], x["Driver"], x["Group"]) for x in dump["rules"]], [
            ("0000:01:00.0", "vfio-pci", "strict"), ("0000:02:02.0", "mlx5_vfio_pci", "strict"),
            ("0000:3b:00.1", "none", "strict")])

    def test_import_driverctl_bad_entries(self):
        out_dir = os.path.join(self.tmpdir(), "out")
        cases = {
            "pci-0000:01:00.0": ("vfio pci\n", "invalid driver name 'vfio pci'"),
            "pci-0000:01:00.1": ("\n", "empty"),
            "pci-0000:01:00.2": ("a\nb\n", "invalid driver name 'a\nb'"),
            "pci-0000:01:00.3": ("x" * 300, "longer than a driver name"),
            "pci-0000:01:00.4": ("x" * 257, "longer than a driver name"),
            "pci-zz:00.0": ("vfio-pci\n", "not a PCI override"),
            "usb-1-1": ("usbhid\n", "not a PCI override"),
        }
        for name, (content, message) in cases.items():
            src = self.driverctl_dir({"pci-0000:05:00.0": "vfio-pci\n", name: content})
            r = self.expect(1, "import", "driverctl", src, "--output", out_dir)
            self.assertIn("%s/%s: %s" % (src, name, message), r.stderr)
            self.assertIn("nothing written", r.stderr)
            self.assertFalse(os.path.exists(out_dir), "written despite %s" % name)
            r = self.expect(1, "import", "driverctl", src)
            self.assertEqual(r.stdout, "")
        # Not a regular file: refused by name; a FIFO with no writer must not block the import
        # (run() times out after 30 s).
        for make in (os.mkfifo, os.mkdir):
            src = self.driverctl_dir({"pci-0000:05:00.0": "vfio-pci\n"})
            make(os.path.join(src, "pci-0000:01:00.5"))
            r = self.expect(1, "import", "driverctl", src)
            self.assertIn("%s/pci-0000:01:00.5: not a regular file" % src, r.stderr)
        # Two names for one function.
        src = self.driverctl_dir({"pci-0000:05:00.0": "vfio-pci\n", "pci-05:00.0": "vfio-pci\n"})
        self.assertIn("a second override for 0000:05:00.0", self.expect(1, "import", "driverctl", src).stderr)
        # A missing directory.
        self.assertIn("/nonexistent/driverctl.d", self.expect(1, "import", "driverctl",
                                                              "/nonexistent/driverctl.d").stderr)

    def test_export_import_round_trip(self):
        # driverctl's overrides -> files -> the same rules as exporting a host in that state.
        src = self.driverctl_dir({"pci-0000:01:00.0": "vfio-pci\n"})
        imported = self.tmpdir()
        self.expect(0, "import", "driverctl", src, "--output", imported)
        self.test.ChangeDevice("0000:02:02.1", json.dumps({"Driver": "iavf"}))
        self.test.ChangeDevice("0000:02:00.0", json.dumps({"SriovNumVFs": 0, "VirtFns": []}))
        exported = self.tmpdir()
        self.expect(0, "export", exported)

        def strip(rules):
            return [{k: v for k, v in r.items() if k != "file"} for r in rules]
        self.assertEqual(strip(conf_dump(imported)["rules"]), strip(conf_dump(exported)["rules"]))


    # ---- mdev create / remove (issue 14) ----

    U = "12345678-aaaa-4bbb-8ccc-1234567890ab"

    def mdev(self, uuid):
        return next((m for m in json.loads(self.expect(0, "--json", "mdev", "list").stdout) if m["Uuid"] == uuid),
                    None)

    def available(self, parent, type_id):
        return next(t["AvailableInstances"] for t in json.loads(self.expect(0, "--json", "mdev", "types").stdout)
                    if t["Parent"] == parent and t["Type"] == type_id)

    def test_mdev_create(self):
        r = self.expect(0, "mdev", "create", "mtty-1", "--parent", "mtty", "--uuid", self.U)
        self.assertEqual(r.stdout, "%s: converged, mtty-1 on mtty\n" % self.U)
        self.assertEqual(r.stderr, "")
        self.assertEqual(self.calls("CreateMdev"), [{"args": ["mtty", "mtty-1", self.U, 0], "interactive": False}])
        m = self.mdev(self.U)
        self.assertEqual((m["Owner"], m["State"], m["Parent"], m["Type"]), ("hostdevd", "converged", "mtty", "mtty-1"))
        self.assertEqual(self.available("mtty", "mtty-1"), 23)

    def test_mdev_create_by_name_placed_persistent(self):
        # A type's name, a short PCI parent, --persist (flag bit 0); the daemon picks the UUID.
        r = self.expect(0, "--json", "mdev", "create", "GRID T4-2Q", "--parent", "01:00.0", "--persist")
        m = json.loads(r.stdout)
        self.assertEqual(self.args_of("CreateMdev"), [["0000:01:00.0", "GRID T4-2Q", "", 1]])
        self.assertEqual((m["Parent"], m["Type"], m["TypeName"], m["Owner"]),
                         ("0000:01:00.0", "nvidia-556", "GRID T4-2Q", "hostdevd"))
        self.assertEqual(m, self.mdev(m["Uuid"]))
        # No parent: "" lets hostdevd place it.
        r = self.expect(0, "mdev", "create", "mtty-1")
        self.assertEqual(self.args_of("CreateMdev")[1], ["", "mtty-1", "", 0])
        self.assertRegex(r.stdout, r"^[0-9a-f-]{36}: converged, mtty-1 on mtty\n$")

    def test_mdev_create_errors(self):
        # Checked here first: no call.
        for args, message in ((["--uuid", "xyz"], "Invalid UUID 'xyz'"),
                              (["--uuid", self.U + "0"], "Invalid UUID '%s0'" % self.U),
                              (["--parent", ""], "Invalid --parent ''")):
            r = self.expect(2, "mdev", "create", "mtty-1", *args)
            self.assertIn(message, r.stderr)
            self.assertEqual(r.stdout, "")
        self.assertEqual(self.expect(2, "mdev", "create", "").stderr.count("Invalid mdev type ''"), 1)
        self.assertEqual(self.calls("CreateMdev"), [])
        # The daemon's answers: its message, and the exit status hostdevctl(1) gives each error.
        for code, args, message in (
                (4, ["mtty-1", "--parent", "nosuch"], "No mdev parent 'nosuch'"),
                (4, ["nvidia-999", "--parent", "01:00.0"], "No mdev parent offers type 'nvidia-999'"),
                (1, ["nvidia-557"], "No parent has an instance of 'nvidia-557' left"),
                (3, ["mtty-1", "--uuid", "A0E1D2C3-0000-4000-8000-00000000F0F0"], "is foreign"),
                (1, ["mtty-1", "--uuid", "83B8F4F2-509F-382F-3C1E-E6BFE0FA1001"], "declared by another file")):
            r = self.expect(code, "mdev", "create", *args)
            self.assertIn(message, r.stderr)
            self.assertIn("Failed to create an mdev of type '%s'" % args[0], r.stderr)
            self.assertEqual(r.stdout, "")
        self.test.FailNext("CreateMdev", fake.ERR_ACCESS_DENIED, "")
        self.assertIn("not authorized", self.expect(1, "mdev", "create", "mtty-1").stderr)
        self.assertEqual(len(json.loads(self.expect(0, "--json", "mdev", "list").stdout)), len(fake.MDEVS))

    def test_mdev_create_waits_and_reports(self):
        self.test.SetNextState(json.dumps({"State": "pending", "StateReason": "creating",
                                           "Then": {"State": "converged", "StateReason": ""}, "AfterMs": 300}))
        r = self.expect(0, "mdev", "create", "mtty-1", "--uuid", self.U)
        self.assertEqual(r.stdout, "%s: converged, mtty-1 on mtty\n" % self.U)
        self.test.SetNextState(json.dumps({"State": "failed",
                                           "StateReason": "mdev_type link missing after create"}))
        r = self.expect(3, "mdev", "create", "mtty-1")
        self.assertIn(": failed, mtty-1 on mtty: mdev_type link missing after create", r.stdout)
        # Still pending at --timeout: not converged.
        self.test.SetNextState(json.dumps({"State": "pending", "StateReason": "waiting for the parent"}))
        r = self.expect(3, "mdev", "create", "mtty-1", "--timeout", "0")
        self.assertIn(": pending, mtty-1 on mtty: waiting for the parent", r.stdout)

    def test_mdev_remove(self):
        self.expect(0, "mdev", "create", "mtty-1", "--uuid", self.U)
        # Any hex case, as GetMdevByUuid.
        r = self.expect(0, "mdev", "remove", self.U.upper())
        self.assertEqual(r.stdout, "%s: removed\n" % self.U.upper())
        self.assertEqual(self.args_of("RemoveMdev"), [[self.U.upper()]])
        self.assertIsNone(self.mdev(self.U))
        self.assertEqual(self.available("mtty", "mtty-1"), 24)
        self.expect(0, "mdev", "create", "mtty-1", "--uuid", self.U)
        self.assertEqual(json.loads(self.expect(0, "--json", "mdev", "remove", self.U).stdout),
                         {"Uuid": self.U, "Removed": True})

    def test_mdev_remove_errors(self):
        r = self.expect(2, "mdev", "remove", "not-a-uuid")
        self.assertIn("Invalid UUID 'not-a-uuid'", r.stderr)
        self.assertEqual(self.calls("RemoveMdev"), [])
        # No runtime declaration: an unknown UUID, a foreign instance, one a file declares.
        for uuid in (self.U, fake.MDEVS[1]["Uuid"], fake.MDEVS[0]["Uuid"]):
            r = self.expect(4, "mdev", "remove", uuid)
            self.assertIn("Failed to remove mdev %s: No runtime declaration for mdev %s" % (uuid, uuid), r.stderr)
        # Held by a VM: blocked, naming the holder; the instance stays.
        ours = self.U
        self.expect(0, "mdev", "create", "mtty-1", "--uuid", ours)
        self.test.ChangeMdev(ours, json.dumps({"Holders": [[777, "qemu-kvm"]]}))
        r = self.expect(3, "mdev", "remove", ours)
        self.assertIn("in use by pid 777 (qemu-kvm)", r.stderr)
        self.assertIsNotNone(self.mdev(ours))
        self.test.FailNext("RemoveMdev", fake.ERR_ACCESS_DENIED, "")
        self.assertIn("not authorized", self.expect(1, "mdev", "remove", ours).stderr)
        self.assertEqual(len(json.loads(self.expect(0, "--json", "mdev", "list").stdout)), len(fake.MDEVS) + 1)

    def test_mdev_no_daemon(self):
        empty = Bus()
        try:
            for args in (["mdev", "create", "mtty-1"], ["mdev", "remove", self.U], ["mdev", "types", "mtty"]):
                r = run(*args, address=empty.address)
                self.assertEqual(r.returncode, 1, "%s: %s" % (args, r.stderr))
                self.assertIn("not running", r.stderr)
        finally:
            empty.stop()

    # ---- import mdevctl ----

    def mdevctl_dir(self, files):
        """An /etc/mdevctl.d: {"PARENT/UUID": text}."""
        d = self.tmpdir()
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, name)), exist_ok=True)
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        return d

    # As mdevctl 1.x writes them (serde_json::to_string_pretty of MDev::to_json(), src/mdev.rs).
    AUTO = '{\n  "mdev_type": "mtty-2",\n  "start": "auto",\n  "attrs": [\n    {\n      "a": "1"\n    },\n' \
           '    {\n      "b": "x y"\n    }\n  ]\n}'
    MANUAL = '{\n  "mdev_type": "nvidia-556",\n  "start": "manual",\n  "attrs": []\n}'
    U2 = "5269fe7a-18d1-48ad-88e1-3fda4176f536"

    def test_import_mdevctl(self):
        src = self.mdevctl_dir({"mtty/" + self.U: self.AUTO, "0000:01:00.0/" + self.U2.upper(): self.MANUAL,
                                "scripts.d/callouts/x.sh": "#!/bin/sh\n", "mtty/.hidden": "junk"})
        with open(os.path.join(src, "stray-file"), "w") as f:
            f.write("x")
        r = self.expect(0, "import", "mdevctl", src)
        self.assertEqual(r.stdout, """\
# 50-mdevctl-{u}.conf
# hostdevctl import mdevctl: {src}/mtty/{u}
[Mdev]
Parent=mtty
Type=mtty-2
UUID={u}
Attribute=a=1
Attribute=b=x y

# 50-mdevctl-{u2}.conf
# hostdevctl import mdevctl: {src}/0000:01:00.0/{u2up}
# mdevctl creates this mdev on request only ("start": "manual"), but hostdevd
# creates every [Mdev] it reads, so the rule below is commented out.
# To create the mdev until the next reboot:
#   hostdevctl mdev create nvidia-556 --parent 0000:01:00.0 --uuid {u2}
# To have hostdevd create it always, remove the '#' before the lines below.
#[Mdev]
#Parent=0000:01:00.0
#Type=nvidia-556
#UUID={u2}
""".format(src=src, u=self.U, u2=self.U2, u2up=self.U2.upper()))
        # The manual one and the stray file are reported, scripts.d is mdevctl's own.
        self.assertIn("%s/0000:01:00.0/%s: \"start\": \"manual\"" % (src, self.U2.upper()), r.stderr)
        self.assertIn("%s/stray-file: not a parent's directory, ignoring" % src, r.stderr)
        self.assertNotIn("scripts.d", r.stderr)
        # No bus needed.
        self.assertEqual(run("import", "mdevctl", src, address="unix:path=/nonexistent/bus").stdout, r.stdout)

        out_dir = os.path.join(self.tmpdir(), "devices.d")
        self.assertEqual(self.expect(0, "import", "mdevctl", src, "--output", out_dir).stdout, "")
        self.assertEqual(sorted(os.listdir(out_dir)), ["50-mdevctl-%s.conf" % u for u in sorted((self.U, self.U2))])
        with open(os.path.join(out_dir, "50-mdevctl-%s.conf" % self.U)) as f:
            self.assertIn("Attribute=a=1\nAttribute=b=x y\n", f.read())

        # What the daemon's parser reads: the auto one as an [Mdev] rule, the manual one as an empty file.
        dump = conf_dump(out_dir)
        self.assertEqual(dump["errors"], [])
        self.assertEqual([(r["file"], r["Mdev"]) for r in dump["rules"]], [
            ("50-mdevctl-%s.conf" % self.U, {"Parent": ["mtty"], "Type": "mtty-2", "UUID": self.U,
                                               "Attributes": [["a", "1"], ["b", "x y"]]})])

        got = json.loads(self.expect(0, "--json", "import", "mdevctl", src).stdout)
        self.assertEqual([g["File"] for g in got], ["50-mdevctl-%s.conf" % self.U, "50-mdevctl-%s.conf" % self.U2])
        self.assertTrue(got[0]["Text"].startswith("# hostdevctl import mdevctl: %s/mtty/%s\n[Mdev]\n" % (src, self.U)))

    def test_import_mdevctl_bad_entries(self):
        out_dir = os.path.join(self.tmpdir(), "out")
        cases = {
            "mtty/not-a-uuid": (self.AUTO, "file name 'not-a-uuid' is not a UUID"),
            "mtty/" + self.U2: ("{", "not valid JSON"),
            "mtty/" + self.U2 + " ": (self.AUTO, "file name '%s ' is not a UUID" % self.U2),
            "0000:01:00.0/" + self.U2: ('{"mdev_type": "x", "start": "later"}', "invalid start '\"later\"'"),
            "0000:01:00.1/" + self.U2: ('{"mdev_type": "x", "start": "auto", "attrs": [{"a": "1", "b": "2"}]}',
                                        "attribute 1 has 2 keys"),
            "0000:01:00.2/" + self.U2: ('{"mdev_type": "x", "start": "auto", "attrs": [{"../remove": "1"}]}',
                                        "invalid attribute name '../remove'"),
            "0000:01:00.3/" + self.U2: ("x" * (64 * 1024 + 1), "larger than an mdevctl definition"),
            # The same UUID under a second parent.
            "other/" + self.U: (self.AUTO, "UUID %s is also defined by" % self.U),
        }
        for name, (content, message) in cases.items():
            src = self.mdevctl_dir({"mtty/" + self.U: self.AUTO, name: content})
            r = self.expect(1, "import", "mdevctl", src, "--output", out_dir)
            self.assertIn("%s/%s: %s" % (src, name, message), r.stderr)
            self.assertIn("nothing written", r.stderr)
            self.assertFalse(os.path.exists(out_dir), "written despite %s" % name)
            self.assertEqual(self.expect(1, "import", "mdevctl", src).stdout, "")
            self.assertEqual(self.expect(1, "--json", "import", "mdevctl", src).stdout, "")
        # Not a regular file (a FIFO must not block), a missing directory, an unknown format.
        src = self.mdevctl_dir({"mtty/" + self.U: self.AUTO})
        os.mkfifo(os.path.join(src, "mtty", self.U2))
        self.assertIn("%s/mtty/%s: not a regular file" % (src, self.U2), self.expect(1, "import", "mdevctl", src).stderr)
        self.assertIn("/nonexistent/mdevctl.d", self.expect(1, "import", "mdevctl", "/nonexistent/mdevctl.d").stderr)
        self.assertIn("Unknown import format 'frob'", self.expect(2, "import", "frob").stderr)


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
            self.assertEqual(int(f.test.CallCount("GetManagedObjects")), 1)  # --json
            self.assertEqual(int(f.test.CallCount("ListDevices")), 1)  # the table
            self.assertEqual(int(f.test.CallCount("GetAll")), 0)
            self.assertEqual(int(f.test.CallCount("Get")), 0)
            print("list --json of %d devices: %.2fs (the fake's marshalling included)" % (len(devices), elapsed),
                  file=sys.stderr)
        finally:
            f.stop()
            bus.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
