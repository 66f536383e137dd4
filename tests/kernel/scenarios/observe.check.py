#!/usr/bin/python3
"""Host side of the "observe" scenario, check a: every PCI function in the
guest's sysfs appears in `hostdevctl --json list` (and `show`) with the same
ids, class, IOMMU group, driver and SR-IOV relations.

Input (OUTDIR, shipped by observe.sh): sysfs.txt ("BDF attribute value"
lines, read with busybox in the guest), list.json, show-BDF.json.
Output: "ok - ..." / "not ok - ..." lines, "# ..." diagnostics.

The expected value of each property follows its definition in
dbus/org.hostdevd1.xml, computed from the sysfs attributes named there
(Documentation/ABI/testing/sysfs-bus-pci).
"""

import json
import os
import sys


def load_sysfs(path):
    devs = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) < 2:
                continue
            bdf, attr = parts[0], parts[1]
            devs.setdefault(bdf, {})[attr] = parts[2] if len(parts) > 2 else ""
    return devs


def expected(bdf, a, sysfs):
    """Contract values for one function from its sysfs attributes (sysfs: all functions)."""
    hexint = lambda k: int(a[k], 16)
    virtfns = sorted((k for k in a if k.startswith("virtfn")), key=lambda k: int(k[6:]))
    e = {
        "Address": bdf,
        "VendorId": hexint("vendor"),
        "DeviceId": hexint("device"),
        "SubsystemVendorId": hexint("subsystem_vendor"),
        "SubsystemDeviceId": hexint("subsystem_device"),
        "Class": hexint("class"),
        "Revision": hexint("revision"),
        "IommuGroup": int(a["iommu_group"]) if "iommu_group" in a else -1,
        "Driver": a.get("driver", ""),
        # The kernel prints "(null)" when driver_override is not set.
        "DriverOverride": "" if a.get("driver_override", "(null)") == "(null)" else a["driver_override"],
        "SriovRole": "pf" if "sriov_totalvfs" in a else "vf" if "physfn" in a else "none",
        "SriovTotalVFs": int(a.get("sriov_totalvfs", 0)),
        "SriovNumVFs": int(a.get("sriov_numvfs", 0)),
        "PhysFn": a.get("physfn", ""),
        "VirtFns": [a[k] for k in virtfns],
        # The other functions whose iommu_group link names the same group.
        "IommuGroupPeers": sorted(b for b, o in sysfs.items()
                                  if b != bdf and "iommu_group" in a and o.get("iommu_group") == a["iommu_group"]),
    }
    if "sriov_drivers_autoprobe" in a:
        e["SriovDriversAutoprobe"] = a["sriov_drivers_autoprobe"] == "1"
    if "numa_node" in a:
        e["NumaNode"] = int(a["numa_node"])
    return e


def norm(key, value):
    """hostdevctl may print ids as numbers (D-Bus q/u) or hex strings; accept both."""
    if key in ("VendorId", "DeviceId", "SubsystemVendorId", "SubsystemDeviceId", "Class", "Revision") \
            and isinstance(value, str):
        try:
            return int(value, 16)
        except ValueError:
            return value
    return value


def find_objects(doc, pred):
    """Every JSON object anywhere in doc for which pred holds."""
    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if pred(x):
                yield x
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)


def main():
    outdir = sys.argv[1]
    results = []

    def check(ok, name, diag=()):
        results.append(ok)
        print(("ok - " if ok else "not ok - ") + name)
        for d in diag:
            print("# " + d)

    try:
        sysfs = load_sysfs(os.path.join(outdir, "sysfs.txt"))
    except OSError as e:
        check(False, f"a: guest shipped its sysfs dump ({e})")
        return 1
    try:
        with open(os.path.join(outdir, "list.json")) as f:
            listing = json.load(f)
    except (OSError, ValueError) as e:
        check(False, f"a: hostdevctl --json list is JSON ({e})")
        listing = None

    if listing is not None:
        listed = {o["Address"]: o for o in find_objects(listing, lambda o: isinstance(o.get("Address"), str))}
        missing = sorted(set(sysfs) - set(listed))
        extra = sorted(set(listed) - set(sysfs))
        check(not missing and not extra,
              f"a: hostdevctl list has exactly the {len(sysfs)} PCI functions of sysfs",
              [f"missing: {' '.join(missing)}"] * bool(missing) + [f"extra: {' '.join(extra)}"] * bool(extra))
    else:
        listed = {}

    for bdf in sorted(sysfs):
        try:
            want = expected(bdf, sysfs[bdf], sysfs)
        except (KeyError, ValueError) as e:
            check(False, f"a: {bdf}: the guest's sysfs dump is readable", [f"bad or missing attribute: {e}"])
            continue
        shown = None
        try:
            with open(os.path.join(outdir, f"show-{bdf}.json")) as f:
                doc = json.load(f)
            shown = next(find_objects(doc, lambda o: o.get("Address") == bdf), None)
        except (OSError, ValueError):
            pass
        diffs = []
        for source, obj in (("list", listed.get(bdf)), ("show", shown)):
            if obj is None:
                diffs.append(f"{bdf} is missing from hostdevctl {source}")
                continue
            for key, value in want.items():
                # list may be a summary; show must have every property.
                if key not in obj:
                    if source == "show":
                        diffs.append(f"show: no {key}")
                    continue
                if norm(key, obj[key]) != value:
                    diffs.append(f"{source}: {key} = {obj[key]!r}, sysfs says {value!r}")
        desc = f"{want['VendorId']:04x}:{want['DeviceId']:04x} group {want['IommuGroup']} driver {want['Driver'] or '-'}"
        check(not diffs, f"a: {bdf} ({desc}) agrees with sysfs", diffs)

    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
