#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A fake hostdevd for testing hostdevctl: publishes org.hostdevd1 on a
private bus exactly as dbus/org.hostdevd1.xml describes it.

Every property's D-Bus type is taken from the XML, and the fixture must
define exactly the XML's properties, so the fake cannot drift from the
contract unnoticed. A test-only interface, org.hostdevd1.Test, lets the
test add/remove/change objects (emitting the daemon's signals) and count
calls.

    fake_hostdevd.py --address ADDR --xml dbus/org.hostdevd1.xml [--extra-devices N]

prints "READY" on stdout once it owns the name.
"""

import argparse
import copy
import json
import re
import sys
import xml.etree.ElementTree as ET

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

BUS_NAME = "org.hostdevd1"
ROOT = "/org/hostdevd1"
MANAGER = "org.hostdevd1.Manager"
DEVICE = "org.hostdevd1.Device"
MDEV = "org.hostdevd1.Mdev"
TEST = "org.hostdevd1.Test"
OM = "org.freedesktop.DBus.ObjectManager"
PROPS = "org.freedesktop.DBus.Properties"
ERR_NOT_FOUND = "org.hostdevd1.Error.NotFound"
ERR_INVALID = "org.hostdevd1.Error.InvalidArgument"
ERR_CONFIG_INVALID = "org.hostdevd1.Error.ConfigInvalid"
ERR_REFUSED = "org.hostdevd1.Error.Refused"
ERR_BLOCKED = "org.hostdevd1.Error.Blocked"
ERR_FAILED = "org.hostdevd1.Error.Failed"
ERR_ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"

# ---- fixture ---------------------------------------------------------------


def device(address, vendor, dev, cls, **kw):
    d = {
        "Address": address,
        "SysfsPath": "/sys/devices/pci0000:00/" + address,
        "VendorId": vendor,
        "DeviceId": dev,
        "SubsystemVendorId": vendor,
        "SubsystemDeviceId": 0,
        "Class": cls,
        "Revision": 1,
        "VendorName": "",
        "DeviceName": "",
        "ClassName": "",
        "IommuGroup": -1,
        "IommuGroupPeers": [],
        "Driver": "",
        "DriverOverride": "",
        "NumaNode": -1,
        "PhysicalSlot": "",
        "Serial": "",
        "SriovRole": "none",
        "SriovTotalVFs": 0,
        "SriovNumVFs": 0,
        "SriovDriversAutoprobe": False,
        "SriovVFOffset": 0,
        "SriovVFStride": 0,
        "PhysFn": "",
        "VFIndex": -1,
        "VirtFns": [],
        "Bars": [],
        "ResetMethods": [],
        "BootVga": False,
        "VfioGroup": "",
        "VfioDevice": "",
        "MdevTypes": [],
        "DesiredDriver": "",
        "DesiredSource": "",
        "State": "converged",
        "StateReason": "",
        "LastError": "",
        "Holders": [],
        "Name": "",
        "Errors": [],
    }
    d.update(kw)
    return d


GPU_TYPES = [
    ["nvidia-556", "GRID T4-2Q", "num_heads=4, frl_config=60, framebuffer=2048M", "vfio-pci", 8],
    ["nvidia-557", "GRID T4-4Q", "num_heads=4,\nframebuffer=4096M", "vfio-pci", 0],
]

DEVICES = [
    device("0000:00:00.0", 0x8086, 0x29C0, 0x060000, VendorName="Intel Corporation",
           DeviceName="82G33/G31/P35/P31 Express DRAM Controller", ClassName="Host bridge",
           IommuGroup=0, ResetMethods=[]),
    device("0000:00:01.0", 0x1B36, 0x000C, 0x060400, VendorName="Red Hat, Inc.",
           DeviceName="QEMU PCIe Root port", ClassName="PCI bridge", IommuGroup=1,
           IommuGroupPeers=["0000:01:00.0", "0000:01:00.1"], Driver="pcieport", NumaNode=0),
    device("0000:01:00.0", 0x10DE, 0x1EB8, 0x030200, VendorName="NVIDIA Corporation",
           DeviceName="TU104GL [Tesla T4] with an unusually long marketing name for truncation",
           ClassName="3D controller", IommuGroup=1, IommuGroupPeers=["0000:00:01.0", "0000:01:00.1"],
           Driver="vfio-pci", DriverOverride="vfio-pci", NumaNode=0, PhysicalSlot="3",
           Serial="01-23-45-67-89-ab-cd-ef", VfioGroup="/dev/vfio/1",
           Bars=[[0, "memory", 16 << 20, False, False], [1, "memory", 16 << 30, True, True],
                 [3, "memory", 32 << 20, True, True], [6, "memory", 512 << 10, False, False]],
           ResetMethods=["flr", "bus"], BootVga=True, MdevTypes=copy.deepcopy(GPU_TYPES),
           DesiredDriver="vfio-pci", DesiredSource="/etc/hostdevd/devices.d/50-gpu.conf:6"),
    device("0000:01:00.1", 0x10DE, 0x10F8, 0x040300, VendorName="NVIDIA Corporation",
           DeviceName="TU104 HD Audio Controller", ClassName="Audio device", IommuGroup=1,
           IommuGroupPeers=["0000:00:01.0", "0000:01:00.0"], NumaNode=0, DesiredDriver="snd_hda_intel",
           DesiredSource="/etc/hostdevd/devices.d/50-gpu.conf:9", State="refused",
           StateReason="IOMMU group 1: peer 0000:01:00.0 is on vfio-pci"),
    device("0000:02:00.0", 0x8086, 0x1572, 0x020000, VendorName="Intel Corporation",
           DeviceName="Ethernet Controller X710 for 10GbE SFP+", ClassName="Ethernet controller",
           IommuGroup=2, Driver="i40e", NumaNode=1, SriovRole="pf", SriovTotalVFs=64, SriovNumVFs=2,
           SriovDriversAutoprobe=True, SriovVFOffset=16, SriovVFStride=1,
           VirtFns=["0000:02:02.0", "0000:02:02.1"], Bars=[[0, "memory", 8 << 20, True, True]],
           ResetMethods=["flr"]),
    device("0000:02:02.0", 0x8086, 0x154C, 0x020000, VendorName="Intel Corporation",
           DeviceName="Ethernet Virtual Function 700 Series", ClassName="Ethernet controller",
           IommuGroup=3, Driver="iavf", NumaNode=1, SriovRole="vf", PhysFn="0000:02:00.0", VFIndex=0),
    device("0000:02:02.1", 0x8086, 0x154C, 0x020000, VendorName="Intel Corporation",
           DeviceName="Ethernet Virtual Function 700 Series", ClassName="Ethernet controller",
           IommuGroup=4, Driver="vfio-pci", NumaNode=1, SriovRole="vf", PhysFn="0000:02:00.0", VFIndex=1,
           VfioGroup="/dev/vfio/4", VfioDevice="/dev/vfio/devices/vfio0",
           Holders=[[4242, "qemu-system-x86", "/dev/vfio/4"]], Name="vf-vm"),
    # A VMD domain (5 hex digits) sorts after the 4-digit ones; no names, no group.
    device("10000:00:00.0", 0x1234, 0x5678, 0xFF0000, Errors=["numa_node: not a number 'x'"]),
]

MDEVS = [
    {
        "Uuid": "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001",
        "SysfsPath": "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001",
        "Type": "nvidia-556",
        "Parent": "0000:01:00.0",
        "ParentDevice": "/org/hostdevd1/devices/pci_0000_01_00_0",
        "IommuGroup": 12,
        "Driver": "vfio_mdev",
        "Errors": [],
        "TypeName": "GRID T4-2Q",
        "Owner": "hostdevd",
        "State": "converged",
        "StateReason": "",
        "Holders": [],
        "VfioGroup": "/dev/vfio/12",
        "VfioDevice": "",
    },
    # Made by hand: shown, never touched; a VM holds it.
    {
        "Uuid": "a0e1d2c3-0000-4000-8000-00000000f0f0",
        "SysfsPath": "/sys/devices/virtual/mtty/mtty/a0e1d2c3-0000-4000-8000-00000000f0f0",
        "Type": "mtty-1",
        "Parent": "mtty",
        "ParentDevice": "/",
        "IommuGroup": 13,
        "Driver": "vfio_mdev",
        "Errors": [],
        "TypeName": "Single port serial",
        "Owner": "foreign",
        "State": "converged",
        "StateReason": "",
        "Holders": [[4243, "qemu-system-x86"]],
        "VfioGroup": "/dev/vfio/13",
        "VfioDevice": "",
    },
]


def manager_props():
    types = [["0000:01:00.0"] + t for t in GPU_TYPES]
    types.append(["mtty", "mtty-1", "Single port serial", "", "vfio-pci", 24])
    return {
        "Version": "0.1.0-fake",
        "DeviceCount": len(DEVICES),
        "MdevCount": len(MDEVS),
        "IommuEnabled": True,
        "IommuReason": "",
        "EventSource": "udev",
        "HotplugGuard": "driver-override",
        "EarlyBindThread": "sched-fifo",
        "MdevTypes": types,
        "Rescans": 0,
        "State": "refused",
        "Generation": 3,
        "ConfigErrors": [],
        "HolderTracking": "fanotify",
        "CriticalTracking": "events",
        "UnleasedHolders": [],
    }


# What Plan() returns until a test sets another with Test.SetPlan.
PLAN = [
    3,
    [[1, "set-override", "0000:02:02.0", "vfio-pci", "Driver=vfio-pci (/etc/hostdevd/devices.d/60-vf.conf:5)"],
     [1, "unbind", "0000:02:02.0", "iavf", ""],
     [1, "probe", "0000:02:02.0", "", ""],
     [1, "verify", "0000:02:02.0", "vfio-pci", ""]],
    [["0000:01:00.1", "refused", "IOMMU group 1: peer 0000:01:00.0 is on vfio-pci"],
     ["0000:02:02.0", "pending", "bound to iavf, wants vfio-pci"]],
    [],
]


# ---- contract --------------------------------------------------------------


def load_contract(path):
    """{interface: {property: signature}} and {interface: {method: (in_sig, out_sig)}} from the XML."""
    props, methods = {}, {}
    for iface in ET.parse(path).getroot().findall("interface"):
        name = iface.get("name")
        props[name] = {p.get("name"): p.get("type") for p in iface.findall("property")}
        methods[name] = {}
        for m in iface.findall("method"):
            ins = "".join(a.get("type") for a in m.findall("arg") if a.get("direction", "in") == "in")
            outs = "".join(a.get("type") for a in m.findall("arg") if a.get("direction") == "out")
            methods[name][m.get("name")] = (ins, outs)
    return props, methods


def split_signature(sig):
    """Split a signature into its complete types."""
    out, i = [], 0
    while i < len(sig):
        j = i
        while sig[j] == "a":
            j += 1
        if sig[j] in "({":
            depth = 0
            while True:
                depth += {"(": 1, "{": 1, ")": -1, "}": -1}.get(sig[j], 0)
                j += 1
                if depth == 0:
                    break
        else:
            j += 1
        out.append(sig[i:j])
        i = j
    return out


BASIC = {
    "s": dbus.String, "o": dbus.ObjectPath, "b": dbus.Boolean, "y": dbus.Byte, "n": dbus.Int16,
    "q": dbus.UInt16, "i": dbus.Int32, "u": dbus.UInt32, "x": dbus.Int64, "t": dbus.UInt64,
    "d": dbus.Double,
}


def typed(sig, value, variant_level=0):
    """Python value -> dbus-python value of exactly this signature."""
    if sig in BASIC:
        return BASIC[sig](value, variant_level=variant_level)
    if sig.startswith("a{"):
        k, v = split_signature(sig[2:-1])
        return dbus.Dictionary({typed(k, a): typed(v, b) for a, b in value.items()}, signature=k + v,
                               variant_level=variant_level)
    if sig.startswith("a"):
        return dbus.Array([typed(sig[1:], e) for e in value], signature=sig[1:], variant_level=variant_level)
    if sig.startswith("("):
        fields = split_signature(sig[1:-1])
        assert len(fields) == len(value), (sig, value)
        return dbus.Struct([typed(f, v) for f, v in zip(fields, value)], signature=sig[1:-1],
                           variant_level=variant_level)
    raise ValueError("unsupported signature " + sig)


# ---- objects ---------------------------------------------------------------

CANONICAL = re.compile(r"^(?:([0-9a-fA-F]{4,8}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
DRIVER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def device_path(address):
    return ROOT + "/devices/pci_" + re.sub(r"[:.]", "_", address)


def mdev_path(uuid):
    return ROOT + "/mdevs/mdev_" + uuid.replace("-", "_")


class PropertyObject(dbus.service.Object):
    """An object with one of our interfaces and the Properties interface."""

    def __init__(self, fake, path, interface, values):
        self.fake = fake
        self.interface = interface
        self.values = values
        signatures = fake.props[interface]
        if set(values) != set(signatures):
            raise AssertionError("fixture for %s does not match the contract: missing %s, extra %s" % (
                path, sorted(set(signatures) - set(values)), sorted(set(values) - set(signatures))))
        self.path = path
        super().__init__(fake.conn, path)

    def typed_props(self, names=None):
        sigs = self.fake.props[self.interface]
        return dbus.Dictionary({n: typed(sigs[n], self.values[n], variant_level=1) for n in (names or sigs)},
                               signature="sv")

    @dbus.service.method(PROPS, in_signature="ss", out_signature="v")
    def Get(self, interface, name):
        self.fake.count("Get")
        if interface != self.interface or name not in self.values:
            raise dbus.exceptions.DBusException("no such property " + name,
                                                name="org.freedesktop.DBus.Error.UnknownProperty")
        return typed(self.fake.props[interface][name], self.values[name], variant_level=1)

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        self.fake.count("GetAll")
        if interface != self.interface:
            return dbus.Dictionary({}, signature="sv")
        return self.typed_props()

    @dbus.service.signal(PROPS, signature="sa{sv}as")
    def PropertiesChanged(self, interface, changed, invalidated):
        pass

    def update(self, changes):
        self.values.update(changes)
        self.PropertiesChanged(self.interface, self.typed_props(list(changes)), dbus.Array([], signature="s"))


class Root(PropertyObject):
    def __init__(self, fake):
        super().__init__(fake, ROOT, MANAGER, manager_props())

    @dbus.service.method(OM, out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        self.fake.count("GetManagedObjects")
        return dbus.Dictionary({o.path: {o.interface: o.typed_props()} for o in self.fake.children()},
                               signature="oa{sa{sv}}")

    @dbus.service.signal(OM, signature="oa{sa{sv}}")
    def InterfacesAdded(self, path, interfaces):
        pass

    @dbus.service.signal(OM, signature="oas")
    def InterfacesRemoved(self, path, interfaces):
        pass

    @dbus.service.method(MANAGER, in_signature="s", out_signature="o")
    def GetDeviceByAddress(self, address):
        self.fake.count("GetDeviceByAddress")
        m = CANONICAL.match(address)
        if not m or int(m.group(3), 16) > 0x1F:
            raise dbus.exceptions.DBusException("Invalid PCI address '%s'" % address, name=ERR_INVALID)
        canonical = "%04x:%s:%s.%s" % (int(m.group(1) or "0", 16), m.group(2).lower(), m.group(3).lower(),
                                       m.group(4))
        if canonical not in self.fake.devices:
            raise dbus.exceptions.DBusException("No PCI function %s" % canonical, name=ERR_NOT_FOUND)
        return dbus.ObjectPath(self.fake.devices[canonical].path)

    @dbus.service.method(MANAGER, in_signature="s", out_signature="o")
    def GetDeviceByName(self, name):
        self.fake.count("GetDeviceByName")
        if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$", name):
            raise dbus.exceptions.DBusException("Not a device name: '%s'" % name, name=ERR_INVALID)
        for obj in self.fake.devices.values():
            if obj.values.get("Name") == name:
                return dbus.ObjectPath(obj.path)
        raise dbus.exceptions.DBusException("No device named '%s'" % name, name=ERR_NOT_FOUND)

    @dbus.service.method(MANAGER, in_signature="asa{sv}", out_signature="oas", message_keyword="msg")
    def Acquire(self, devices, options, msg):
        self.fake.record("Acquire", [list(devices), {str(k): v for k, v in options.items() if k != "pidfd"}], msg)
        addresses = []
        for d in devices:
            obj = self.lookup(d) if ":" in d else \
                next((o for o in self.fake.devices.values() if o.values.get("Name") == d), None)
            if obj is None:
                raise dbus.exceptions.DBusException("No device named '%s'" % d, name=ERR_NOT_FOUND)
            addresses.append(obj.values["Address"])
        path = "/" if options.get("dry-run") else ROOT + "/leases/lease_1"
        return dbus.ObjectPath(path), dbus.Array(sorted(addresses), signature="s")

    @dbus.service.method(MANAGER, in_signature="s", out_signature="o")
    def GetMdevByUuid(self, uuid):
        self.fake.count("GetMdevByUuid")
        if not UUID.match(uuid):
            raise dbus.exceptions.DBusException("Invalid UUID '%s'" % uuid, name=ERR_INVALID)
        if uuid.lower() not in self.fake.mdevs:
            raise dbus.exceptions.DBusException("No mdev %s" % uuid.lower(), name=ERR_NOT_FOUND)
        return dbus.ObjectPath(self.fake.mdevs[uuid.lower()].path)

    @dbus.service.method(MANAGER, out_signature="a(susqqsssssiisuuis)")
    def ListDevices(self):
        """The table's columns, in the daemon's address order (the domain compared as a number)."""
        self.fake.count("ListDevices")
        failure = self.fake.failures.pop("ListDevices", None)
        if failure:
            raise dbus.exceptions.DBusException(failure[1], name=failure[0])
        columns = ("Address", "Class", "ClassName", "VendorId", "DeviceId", "VendorName", "DeviceName", "Driver",
                   "DesiredDriver", "State", "IommuGroup", "NumaNode", "SriovRole", "SriovNumVFs",
                   "SriovTotalVFs", "VFIndex", "PhysFn")
        devices = sorted(self.fake.devices.values(),
                         key=lambda d: (int(d.values["Address"].split(":")[0], 16), d.values["Address"]))
        return typed("a(susqqsssssiisuuis)", [[d.values[c] for c in columns] for d in devices])

    @dbus.service.method(MANAGER, out_signature="a(uas)")
    def ListIommuGroups(self):
        self.fake.count("ListIommuGroups")
        groups = {}
        for d in self.fake.devices.values():
            if d.values["IommuGroup"] >= 0:
                groups.setdefault(d.values["IommuGroup"], []).append(d.values["Address"])
        # Deliberately unsorted by group: hostdevctl sorts.
        return typed("a(uas)", [[g, sorted(groups[g])] for g in sorted(groups, reverse=True)])

    # ---- handoff (issue 15): hostdevctl does not call these; here so the fake keeps the contract ----

    @dbus.service.method(MANAGER, in_signature="ass", out_signature="bas")
    def CheckFingerprint(self, devices, fingerprint):
        self.fake.count("CheckFingerprint")
        raise dbus.exceptions.DBusException("not faked", name="org.hostdevd1.Error.Failed")

    @dbus.service.method(MANAGER, in_signature="s", out_signature="ao")
    def GetDevicesByVfioNode(self, node):
        self.fake.count("GetDevicesByVfioNode")
        return typed("ao", [d.path for d in self.fake.devices.values() if d.values["VfioGroup"] == node])

    # ---- desired state: canned behaviour, every call recorded ----

    def canonical_address(self, address):
        m = CANONICAL.match(address)
        if not m or int(m.group(3), 16) > 0x1F:
            raise dbus.exceptions.DBusException("Invalid PCI address '%s'" % address, name=ERR_INVALID)
        return "%04x:%s:%s.%s" % (int(m.group(1) or "0", 16), m.group(2).lower(), m.group(3).lower(), m.group(4))

    def lookup(self, address):
        canonical = self.canonical_address(address)
        if canonical not in self.fake.devices:
            raise dbus.exceptions.DBusException("No PCI function %s" % canonical, name=ERR_NOT_FOUND)
        return self.fake.devices[canonical]

    def bump_generation(self):
        self.update({"Generation": self.values["Generation"] + 1})

    @dbus.service.method(MANAGER, in_signature="", out_signature="", message_keyword="msg")
    def Reload(self, msg):
        self.fake.record("Reload", [], msg)
        self.bump_generation()

    @dbus.service.method(MANAGER, in_signature="", out_signature="ta(ussss)a(sss)as", message_keyword="msg")
    def Plan(self, msg):
        self.fake.record("Plan", [], msg)
        generation, actions, devices, conflicts = self.fake.plan
        return (dbus.UInt64(generation), typed("a(ussss)", actions), typed("a(sss)", devices),
                dbus.Array(conflicts, signature="s"))

    @dbus.service.method(MANAGER, in_signature="", out_signature="s", message_keyword="msg")
    def Apply(self, msg):
        self.fake.record("Apply", [], msg)
        return self.values["State"]

    @dbus.service.method(MANAGER, in_signature="ssas", out_signature="", message_keyword="msg")
    def SetDeviceDriver(self, address, driver, flags, msg):
        self.fake.record("SetDeviceDriver", [address, driver, list(flags)], msg)
        obj = self.lookup(address)
        if not DRIVER.match(driver):
            raise dbus.exceptions.DBusException("Invalid driver '%s'" % driver, name=ERR_INVALID)
        for f in flags:
            if f not in ("persist", "whole-group", "allow-critical"):
                raise dbus.exceptions.DBusException("Invalid flag '%s'" % f, name=ERR_INVALID)
        directory = "/var/lib/hostdevd/devices.d" if "persist" in flags else "/run/hostdevd/devices.d"
        changes = {"DesiredDriver": driver,
                   "DesiredSource": "%s/50-hostdevctl-%s.conf:5" % (directory, obj.values["Address"])}
        if driver == "none":
            changes["Driver"] = ""
        elif driver != "host":
            changes["Driver"] = driver
        self.settle(obj, changes)
        self.bump_generation()

    @dbus.service.method(MANAGER, in_signature="s", out_signature="", message_keyword="msg")
    def ResetDeviceDriver(self, address, msg):
        self.fake.record("ResetDeviceDriver", [address], msg)
        obj = self.lookup(address)
        source = obj.values["DesiredSource"]
        if not source.startswith(("/run/", "/var/lib/")):
            raise dbus.exceptions.DBusException("No runtime declaration for %s" % obj.values["Address"],
                                                name=ERR_NOT_FOUND)
        self.settle(obj, {"DesiredDriver": "", "DesiredSource": ""})
        self.bump_generation()

    @dbus.service.method(MANAGER, in_signature="susas", out_signature="", message_keyword="msg")
    def SetNumVFs(self, pf, num_vfs, vf_driver, flags, msg):
        self.fake.record("SetNumVFs", [pf, int(num_vfs), vf_driver, list(flags)], msg)
        obj = self.lookup(pf)
        if vf_driver and not DRIVER.match(vf_driver):
            raise dbus.exceptions.DBusException("Invalid driver '%s'" % vf_driver, name=ERR_INVALID)
        for f in flags:
            if f != "persist":
                raise dbus.exceptions.DBusException("Invalid flag '%s'" % f, name=ERR_INVALID)
        if obj.values["SriovRole"] != "pf":
            raise dbus.exceptions.DBusException("%s is not an SR-IOV PF" % obj.values["Address"], name=ERR_REFUSED)
        if num_vfs > obj.values["SriovTotalVFs"]:
            raise dbus.exceptions.DBusException("%u VFs requested, %s has at most %u" % (
                num_vfs, obj.values["Address"], obj.values["SriovTotalVFs"]), name=ERR_REFUSED)
        self.settle(obj, {"SriovNumVFs": int(num_vfs)})
        self.bump_generation()

    def settle(self, obj, changes):
        """Apply changes plus the state the test asked for (Test.SetNextState), else "converged"."""
        outcome, self.fake.next_state = self.fake.next_state or {"State": "converged", "StateReason": ""}, None
        later = outcome.pop("Then", None)
        delay = outcome.pop("AfterMs", 0)
        changes.update(outcome)
        obj.update(changes)
        if later is not None:
            GLib.timeout_add(delay, lambda: obj.update(later) and False)

    # ---- mdevs (issue 14): CreateMdev/RemoveMdev as the contract describes them ----

    def mdev_parents(self):
        """{parent: [[type, name, description, device_api, available], ...]} from the Manager's MdevTypes."""
        parents = {}
        for t in self.values["MdevTypes"]:
            parents.setdefault(t[0], []).append(t)
        return parents

    def set_available(self, parent, type_id, delta):
        types = copy.deepcopy(self.values["MdevTypes"])
        for t in types:
            if t[0] == parent and t[1] == type_id:
                t[5] += delta
        self.update({"MdevTypes": types})

    @dbus.service.method(MANAGER, in_signature="ssst", out_signature="o", message_keyword="msg")
    def CreateMdev(self, parent, type_, uuid, flags, msg):
        self.fake.record("CreateMdev", [parent, type_, uuid, int(flags)], msg)
        if uuid and not UUID.match(uuid):
            raise dbus.exceptions.DBusException("Invalid UUID '%s'" % uuid, name=ERR_INVALID)
        if flags & ~1:
            raise dbus.exceptions.DBusException("Invalid flags 0x%x" % flags, name=ERR_INVALID)
        parents = self.mdev_parents()
        if parent and parent not in parents:
            raise dbus.exceptions.DBusException("No mdev parent '%s'" % parent, name=ERR_NOT_FOUND)
        # The type by id or by name, on the parent given, else on the first parent with room (spread).
        candidates = [t for p in ([parent] if parent else sorted(parents)) for t in parents[p]
                      if type_ in (t[1], t[2])]
        if not candidates:
            raise dbus.exceptions.DBusException("No mdev parent offers type '%s'" % type_, name=ERR_NOT_FOUND)
        uuid = (uuid or "%08x-0000-4000-8000-%012x" % (0xfeed0000 + self.fake.calls["CreateMdev"],
                                                          self.fake.calls["CreateMdev"])).lower()
        if uuid in self.fake.mdevs and self.fake.mdevs[uuid].values["Owner"] == "foreign":
            raise dbus.exceptions.DBusException("mdev %s is foreign: hostdevd does not take it over" % uuid,
                                                name=ERR_REFUSED)
        if uuid in self.fake.mdevs:
            raise dbus.exceptions.DBusException("UUID %s is declared by another file" % uuid, name=ERR_CONFIG_INVALID)
        room = [t for t in candidates if t[5] > 0]
        if not room:
            raise dbus.exceptions.DBusException("No parent has an instance of '%s' left" % type_, name=ERR_FAILED)
        t = room[0]
        directory = "/var/lib/hostdevd/devices.d" if flags & 1 else "/run/hostdevd/devices.d"
        m = {"Uuid": uuid, "SysfsPath": "/sys/bus/mdev/devices/" + uuid, "Type": t[1], "Parent": t[0],
             "ParentDevice": device_path(t[0]) if t[0] in self.fake.devices else "/", "IommuGroup": 20,
             "Driver": "vfio_mdev", "Errors": [], "TypeName": t[2], "Owner": "hostdevd", "State": "converged",
             "StateReason": "", "Holders": [], "VfioGroup": "/dev/vfio/20", "VfioDevice": "",
             "RequestFile": directory}
        outcome, self.fake.next_state = self.fake.next_state or {}, None
        later = outcome.pop("Then", None)
        delay = outcome.pop("AfterMs", 0)
        m.update(outcome)
        m.pop("RequestFile")
        obj = self.fake.add_mdev(m)
        self.fake.requested.add(uuid)
        self.InterfacesAdded(obj.path, {MDEV: obj.typed_props()})
        if later is not None:
            GLib.timeout_add(delay, lambda: obj.update(later) and False)
        self.set_available(t[0], t[1], -1)
        self.bump_generation()
        return dbus.ObjectPath(obj.path)

    @dbus.service.method(MANAGER, in_signature="s", out_signature="", message_keyword="msg")
    def RemoveMdev(self, uuid, msg):
        self.fake.record("RemoveMdev", [uuid], msg)
        if not UUID.match(uuid):
            raise dbus.exceptions.DBusException("Invalid UUID '%s'" % uuid, name=ERR_INVALID)
        obj = self.fake.mdevs.get(uuid.lower())
        # Only what CreateMdev declared: a file's instances and foreign ones are not RemoveMdev's.
        if obj is None or uuid.lower() not in self.fake.requested:
            raise dbus.exceptions.DBusException("No runtime declaration for mdev %s" % uuid.lower(),
                                                name=ERR_NOT_FOUND)
        v = obj.values
        if v["Holders"]:
            pid, command = v["Holders"][0][:2]
            raise dbus.exceptions.DBusException("mdev %s is in use by pid %d (%s)" % (v["Uuid"], pid, command),
                                                name=ERR_BLOCKED)
        del self.fake.mdevs[v["Uuid"]]
        self.fake.requested.discard(v["Uuid"])
        obj.remove_from_connection()
        self.InterfacesRemoved(obj.path, dbus.Array([MDEV], signature="s"))
        self.set_available(v["Parent"], v["Type"], +1)
        self.bump_generation()

    # ---- test control ----

    @dbus.service.method(TEST, in_signature="s", out_signature="u")
    def CallCount(self, method):
        return self.fake.calls.get(method, 0)

    @dbus.service.method(TEST, in_signature="s", out_signature="s")
    def Calls(self, method):
        """JSON: [{"args": [...], "interactive": bool}, ...] of every call of method."""
        return json.dumps(self.fake.recorded.get(method, []))

    @dbus.service.method(TEST, in_signature="sss")
    def FailNext(self, method, error_name, message):
        """The next call of method fails with this D-Bus error (after recording its arguments)."""
        self.fake.failures[method] = (error_name, message)

    @dbus.service.method(TEST, in_signature="s")
    def SetNextState(self, outcome_json):
        """{"State": ..., "StateReason": ..., ["Then": {...}, "AfterMs": N]} for the next Set*/Reset* call."""
        self.fake.next_state = json.loads(outcome_json)

    @dbus.service.method(TEST, in_signature="s")
    def SetPlan(self, plan_json):
        self.fake.plan = json.loads(plan_json)

    @dbus.service.method(TEST, in_signature="s")
    def AddDevice(self, props_json):
        props = json.loads(props_json)
        d = device(props.pop("Address"), props.pop("VendorId"), props.pop("DeviceId"), props.pop("Class"),
                   **props)
        obj = self.fake.add_device(d)
        self.InterfacesAdded(obj.path, {DEVICE: obj.typed_props()})

    @dbus.service.method(TEST, in_signature="s")
    def RemoveDevice(self, address):
        obj = self.fake.devices.pop(address)
        obj.remove_from_connection()
        self.InterfacesRemoved(obj.path, dbus.Array([DEVICE], signature="s"))

    @dbus.service.method(TEST, in_signature="ss")
    def ChangeDevice(self, address, changes_json):
        self.fake.devices[address].update(json.loads(changes_json))

    @dbus.service.method(TEST, in_signature="s")
    def ChangeManager(self, changes_json):
        self.update(json.loads(changes_json))

    @dbus.service.method(TEST, in_signature="s")
    def AddMdev(self, props_json):
        obj = self.fake.add_mdev(json.loads(props_json))
        self.InterfacesAdded(obj.path, {MDEV: obj.typed_props()})

    @dbus.service.method(TEST, in_signature="ss")
    def ChangeMdev(self, uuid, changes_json):
        self.fake.mdevs[uuid].update(json.loads(changes_json))

    # Not "RemoveMdev": dbus-python names members after the Python method, and the Manager has one.
    @dbus.service.method(TEST, in_signature="s")
    def DeleteMdev(self, uuid):
        obj = self.fake.mdevs.pop(uuid)
        obj.remove_from_connection()
        self.InterfacesRemoved(obj.path, dbus.Array([MDEV], signature="s"))


class Fake:
    def __init__(self, conn, xml, extra_devices):
        self.conn = conn
        self.props, self.methods = load_contract(xml)
        self.calls = {}
        self.recorded = {}
        self.failures = {}
        self.next_state = None
        self.plan = copy.deepcopy(PLAN)
        self.devices = {}
        self.mdevs = {}
        self.requested = set()  # UUIDs CreateMdev declared
        for d in DEVICES:
            self.add_device(copy.deepcopy(d))
        for i in range(extra_devices):
            # Synthetic functions on domain 0002 for the many-devices test.
            self.add_device(device("0002:%02x:%02x.%d" % (i // 256, (i // 8) % 32, i % 8), 0x8086, 0x10D3,
                                   0x020000, VendorName="Intel Corporation", DeviceName="82574L Gigabit",
                                   ClassName="Ethernet controller", IommuGroup=1000 + i, Driver="e1000e"))
        for m in MDEVS:
            self.add_mdev(copy.deepcopy(m))
        self.root = Root(self)
        self.check_methods()

    def check_methods(self):
        """Every Manager method of the contract exists here with its signatures."""
        for name, (ins, outs) in self.methods[MANAGER].items():
            fn = getattr(Root, name, None)
            if fn is None or (fn._dbus_in_signature or "") != ins or (fn._dbus_out_signature or "") != outs:
                raise AssertionError("fake Manager.%s does not match the contract (%s -> %s)" % (name, ins, outs))

    def count(self, method):
        self.calls[method] = self.calls.get(method, 0) + 1

    def record(self, method, args, msg):
        """Count and record a call, then raise the error a test asked for with FailNext."""
        self.count(method)
        self.recorded.setdefault(method, []).append(
            {"args": args, "interactive": bool(msg.get_allow_interactive_authorization())})
        failure = self.failures.pop(method, None)
        if failure:
            raise dbus.exceptions.DBusException(failure[1], name=failure[0])

    def children(self):
        return list(self.devices.values()) + list(self.mdevs.values())

    def add_device(self, d):
        obj = PropertyObject(self, device_path(d["Address"]), DEVICE, d)
        self.devices[d["Address"]] = obj
        return obj

    def add_mdev(self, m):
        obj = PropertyObject(self, mdev_path(m["Uuid"]), MDEV, m)
        self.mdevs[m["Uuid"]] = obj
        return obj


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--xml", required=True)
    ap.add_argument("--extra-devices", type=int, default=0)
    args = ap.parse_args()

    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    conn = dbus.bus.BusConnection(args.address)
    Fake(conn, args.xml, args.extra_devices)
    name = dbus.service.BusName(BUS_NAME, conn, do_not_queue=True)
    assert name
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    sys.exit(main())
