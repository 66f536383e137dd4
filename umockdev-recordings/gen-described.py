#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Write the described (hand-designed) hosts as .umockdev files.

These hosts were not recorded: they are written from the kernel's ABI
documents (Documentation/ABI/testing/sysfs-bus-pci, sysfs-bus-vfio-mdev,
Documentation/driver-api/vfio-mediated-device.rst, Documentation/PCI/pci-iov-howto.rst)
and the PCI Express config-space layout (tests/integration/sysfstext.py), so
the lane covers GPUs, SR-IOV and mdevs that the build machine lacks.

umockdev files describe devices only. What lives elsewhere in /sys is
derived by tests/integration/hostdevtest.py (IOMMU groups, driver
directories, /sys/class/mdev_bus links) or written as "#@" directive
comments that its loader applies ("#@ slot NAME DDDD:BB:SS").

Usage: gen-described.py [OUTDIR]   (writes gpu-host.umockdev, mdev-host.umockdev, vgpu-host.umockdev)
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
from sysfstext import (IORESOURCE_IO, MEM32, MEM64P, NVIDIA_L40S_VGPU_TYPES, mdev_text, mdev_types_attrs,  # noqa: E402
                       pci_text, vgpu_vf_attrs)

ROOT_PORT = dict(cls=0x060400, driver='pcieport')


def gpu_host():
        d = ['#@ slot 1 0000:01:00\n#@ slot 2 0000:3b:00\n']
        d.append(pci_text('devices/pci0000:00/0000:00:00.0', 0x8086, 0x09a2, 0x060000, rev=0x04, group=0))
        d.append(pci_text('devices/pci0000:00/0000:00:01.0', 0x8086, 0x347a, rev=0x04, group=1, **ROOT_PORT))
        # GPU + its HDA function: one IOMMU group (functions of one slot without ACS).
        d.append(pci_text('devices/pci0000:00/0000:00:01.0/0000:01:00.0', 0x10de, 0x2236, 0x030200, rev=0xa1,
                          subvendor=0x10de, subdevice=0x1482, driver='nvidia', group=2, numa=0,
                          bars={0: (0xd8000000, 16 << 20, MEM32),
                                1: (0x38000000000, 32 << 30, MEM64P),
                                3: (0x38800000000, 32 << 20, MEM64P)},
                          reset='flr bus', boot_vga=False))
        d.append(pci_text('devices/pci0000:00/0000:00:01.0/0000:01:00.1', 0x10de, 0x1aef, 0x040300, rev=0xa1,
                          driver='snd_hda_intel', group=2, numa=0,
                          bars={0: (0xd9080000, 16 << 10, MEM32)}, reset='bus'))
        # The firmware console: a BMC's ASPEED VGA (boot_vga = 1).
        d.append(pci_text('devices/pci0000:00/0000:00:02.0', 0x1a03, 0x2000, 0x030000, rev=0x41,
                          driver='ast', group=3,
                          bars={0: (0xdc000000, 64 << 20, MEM32), 1: (0xde000000, 256 << 10, MEM32),
                                2: (0x3000, 128, IORESOURCE_IO)},
                          boot_vga=True))
        d.append(pci_text('devices/pci0000:00/0000:00:03.0', 0x8086, 0x347b, rev=0x04, group=4, **ROOT_PORT))
        d.append(pci_text('devices/pci0000:00/0000:00:03.0/0000:02:00.0', 0x144d, 0xa80a, 0x010802, rev=0x00,
                          driver='nvme', group=5, numa=0,
                          bars={0: (0xdd000000, 16 << 10, MEM64P & ~0x2000)}, reset='flr bus'))
        d.append(pci_text('devices/pci0000:00/0000:00:04.0', 0x8086, 0x347c, rev=0x04, group=6, **ROOT_PORT))
        # X710-like SR-IOV PF with 4 VFs enabled (offset 16, stride 1: 3b:00.0 -> 3b:02.0..3b:02.3)
        # and a Device Serial Number.
        vfs = ['0000:3b:02.%d' % i for i in range(4)]
        d.append(pci_text('devices/pci0000:00/0000:00:04.0/0000:3b:00.0', 0x8086, 0x1572, 0x020000,
                          subdevice=0x0007, driver='i40e', group=7, numa=0,
                          bars={0: (0x39ffe000000, 16 << 20, MEM64P), 3: (0x39fff800000, 32 << 10, MEM64P),
                                6: (0xdf000000, 512 << 10, MEM32)},
                          reset='flr bus', serial=0x001b21fffea1b2c3,
                          attrs=[('sriov_totalvfs', '64'), ('sriov_numvfs', '4'),
                                 ('sriov_drivers_autoprobe', '1'), ('sriov_offset', '16'),
                                 ('sriov_stride', '1'), ('sriov_vf_device', '154c')],
                          links=[('virtfn%d' % i, '../' + vf) for i, vf in enumerate(vfs)]))
        for i, vf in enumerate(vfs):
                d.append(pci_text('devices/pci0000:00/0000:00:04.0/' + vf, 0x8086, 0x154c, 0x020000,
                                  subdevice=0x0000, driver='iavf', group=8 + i, numa=0,
                                  bars={0: (0x39ffd000000 + i * (64 << 10), 64 << 10, MEM64P),
                                        3: (0x39ffd400000 + i * (16 << 10), 16 << 10, MEM64P)},
                                  reset='flr', links=[('physfn', '../0000:3b:00.0')]))
        return '\n'.join(d)


# Tesla T4 vGPU types (type id, name, framebuffer MiB, max instances).
NVIDIA_T4_TYPES = [('nvidia-222', 'GRID T4-1B', 1024, 16),
                   ('nvidia-223', 'GRID T4-2B', 2048, 8),
                   ('nvidia-230', 'GRID T4-16Q', 16384, 1)]
ACTIVE_MDEV = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001'


def mdev_host():
        d = []
        d.append(pci_text('devices/pci0000:40/0000:40:00.0', 0x1022, 0x1480, 0x060000, rev=0x00, group=19))
        d.append(pci_text('devices/pci0000:40/0000:40:01.1', 0x1022, 0x1483, rev=0x00, group=19, **ROOT_PORT))
        types = [(tid, name,
                  'num_heads=4, frl_config=60, framebuffer=%dM, max_resolution=5120x2880, max_instance=%d'
                  % (fb, maxi), 'vfio-pci', maxi - 1 if tid == 'nvidia-222' else maxi)
                 for tid, name, fb, maxi in NVIDIA_T4_TYPES]
        gpu = 'devices/pci0000:40/0000:40:01.1/0000:41:00.0'
        d.append(pci_text(gpu, 0x10de, 0x1eb8, 0x030200, rev=0xa1, subvendor=0x10de, subdevice=0x12a2,
                          driver='nvidia', group=20, numa=1,
                          bars={0: (0xf0000000, 16 << 20, MEM32), 1: (0x20000000000, 256 << 20, MEM64P),
                                3: (0x20010000000, 32 << 20, MEM64P)},
                          reset='bus', boot_vga=False, attrs=mdev_types_attrs(types)))
        # The active vGPU: a child of its parent on the mdev bus, bound to vfio_mdev.
        d.append(mdev_text(gpu, ACTIVE_MDEV, 'nvidia-222', driver='vfio_mdev', group=21))
        # A non-PCI parent: the kernel's mtty sample (samples/vfio-mdev/mtty.c), no description.
        mtty = mdev_types_attrs([('mtty-1', 'Single port serial', None, 'vfio-pci', 24),
                                 ('mtty-2', 'Dual port serial', None, 'vfio-pci', 12)])
        d.append('P: /devices/virtual/mtty/mtty\nE: SUBSYSTEM=mtty\n' +
                 ''.join('A: %s=%s\\n\n' % (k, v) for k, v in mtty))
        return '\n'.join(d)


VGPU_PF = '0000:c1:00.0'
VGPU_PF_IDLE = '0000:c2:00.0'


def vgpu_host():
        """Two L40S-like GPUs whose vendor driver sets vGPU types on SR-IOV VFs (no mdev): the
        first with 4 VFs enabled (offset 4, stride 1: c1:00.4..c1:00.7), each on the vendor driver
        with its nvidia/ directory and no type yet; the second with SR-IOV off (a NumVFs rule's)."""
        d = []
        d.append(pci_text('devices/pci0000:c0/0000:c0:01.1', 0x1022, 0x1483, rev=0x00, group=40, **ROOT_PORT))
        d.append(pci_text('devices/pci0000:c0/0000:c0:03.1', 0x1022, 0x1483, rev=0x00, group=41, **ROOT_PORT))
        sriov = [('sriov_totalvfs', '32'), ('sriov_drivers_autoprobe', '1'), ('sriov_offset', '4'),
                 ('sriov_stride', '1'), ('sriov_vf_device', '26b9')]
        vfs = ['0000:c1:00.%d' % (4 + i) for i in range(4)]
        for pf, port, group, numvfs in ((VGPU_PF, '0000:c0:01.1', 42, 4), (VGPU_PF_IDLE, '0000:c0:03.1', 43, 0)):
                d.append(pci_text('devices/pci0000:c0/%s/%s' % (port, pf), 0x10de, 0x26b9, 0x030200, rev=0xa1,
                                  subvendor=0x10de, subdevice=0x1851, driver='nvidia', group=group, numa=0,
                                  bars={0: (0xf4000000 + (group - 42) * (16 << 20), 16 << 20, MEM32),
                                        1: (0x28000000000 + (group - 42) * (64 << 30), 64 << 30, MEM64P),
                                        3: (0x28800000000 + (group - 42) * (64 << 30), 32 << 20, MEM64P)},
                                  reset='bus', boot_vga=False,
                                  attrs=sriov + [('sriov_numvfs', str(numvfs))],
                                  links=[('virtfn%d' % i, '../' + vf) for i, vf in enumerate(vfs[:numvfs])]))
        for i, vf in enumerate(vfs):
                d.append(pci_text('devices/pci0000:c0/0000:c0:01.1/' + vf, 0x10de, 0x26b9, 0x030200, rev=0xa1,
                                  subvendor=0x10de, subdevice=0x0000, driver='nvidia', group=44 + i, numa=0,
                                  reset='flr', attrs=vgpu_vf_attrs(NVIDIA_L40S_VGPU_TYPES),
                                  links=[('physfn', '../' + VGPU_PF)]))
        return '\n'.join(d)


HEADER = '''\
# %s: described topology, hand-written from kernel ABI docs
# (Documentation/ABI/testing/sysfs-bus-pci, sysfs-bus-vfio-mdev,
# driver-api/vfio-mediated-device.rst). Generated by
# umockdev-recordings/gen-described.py: edit that, not this file.
# '#' lines are stripped by tests/integration/hostdevtest.py, '#@' lines are
# its directives (README.md).
'''


# Sources beyond the kernel's ABI documents, per file.
EXTRA_PROVENANCE = {
        'vgpu-host.umockdev': '''\
# The VFs' nvidia/ directory (creatable_vgpu_types, current_vgpu_type) as the
# NVIDIA Virtual GPU Software User Guide (releases 17 and 18, "Creating an
# NVIDIA vGPU that Supports SR-IOV on a Linux with KVM Hypervisor") shows it;
# type ids and counts are illustrative (sysfstext.NVIDIA_L40S_VGPU_TYPES).
''',
}


def main():
        out = sys.argv[1] if len(sys.argv) > 1 else HERE
        for name, fn in (('gpu-host.umockdev', gpu_host), ('mdev-host.umockdev', mdev_host),
                         ('vgpu-host.umockdev', vgpu_host)):
                with open(os.path.join(out, name), 'w') as f:
                        f.write(HEADER % name + EXTRA_PROVENANCE.get(name, '') + fn())


if __name__ == '__main__':
        main()
