#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Trim a `umockdev-record` dump of PCI functions to what hostdevd reads.

umockdev-record copies every attribute, including time-varying ones
(power/runtime_*), per-boot noise (irq, msi_irqs/*) and the full 4 KiB
config space. Those make recordings large and unstable to diff. Keep the
attributes hostdevd reads (src/names.h, Documentation/ABI/testing/
sysfs-bus-pci) and the links it follows, and cut config space to
--config-bytes (256 = conventional space; extended capabilities such as
the Device Serial Number need 4096).

Usage: umockdev-record /sys/bus/pci/devices/* | trim-recording.py > host.umockdev
"""
import argparse
import sys

KEEP_ATTRS = {
        'vendor', 'device', 'subsystem_vendor', 'subsystem_device', 'class',
        'revision', 'driver_override', 'numa_node', 'resource', 'reset_method',
        'boot_vga', 'modalias', 'sriov_totalvfs', 'sriov_numvfs',
        'sriov_drivers_autoprobe', 'sriov_offset', 'sriov_stride',
        'sriov_vf_device', 'config',
}
KEEP_LINKS = {'driver', 'iommu_group', 'physfn'}


def keep(line, config_bytes):
        kind, _, rest = line.partition(': ')
        if kind in ('P', 'E', 'N', 'V'):
                return line
        name, _, value = rest.partition('=')
        if kind == 'L':
                return line if name in KEEP_LINKS or name.startswith('virtfn') else None
        if name.startswith('mdev_supported_types/'):
                return line
        if name not in KEEP_ATTRS:
                return None
        if kind == 'H' and name == 'config':
                return 'H: config=' + value[:2 * config_bytes]
        return line


def main():
        ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        ap.add_argument('--config-bytes', type=int, default=256)
        args = ap.parse_args()
        out = []
        for line in sys.stdin.read().splitlines():
                if not line:
                        out.append('')
                        continue
                kept = keep(line, args.config_bytes)
                if kept is not None:
                        out.append(kept)
        sys.stdout.write('\n'.join(out).rstrip('\n') + '\n')


if __name__ == '__main__':
        main()
