# SPDX-License-Identifier: LGPL-2.1-or-later
"""Describe PCI functions and mdevs as umockdev text (P:/E:/A:/H:/L: lines).

Shared by the integration harness (programmatic and hot-added devices) and
umockdev-recordings/gen-described.py (the described hosts). Values follow
Documentation/ABI/testing/sysfs-bus-pci and the PCI Express Base
Specification's config-space layout; every device gets a `config`, since
libpci's sysfs access needs one.
"""
import os
import struct

# Resource flags, include/linux/ioport.h.
IORESOURCE_IO = 0x100
IORESOURCE_MEM = 0x200
IORESOURCE_PREFETCH = 0x2000
IORESOURCE_MEM_64 = 0x100000
MEM32 = IORESOURCE_MEM
MEM64P = IORESOURCE_MEM | IORESOURCE_MEM_64 | IORESOURCE_PREFETCH | 0x4  # 0x4: PCI_BASE_ADDRESS_MEM_TYPE_64


def config_space(vendor, device, cls, rev, subvendor, subdevice, serial=None):
        """Type-0 header + PCI Express capability; + Device Serial Number
        extended capability (PCIe r6.0 §7.9.3) at 0x100 when serial is given."""
        c = bytearray(0x110 if serial is not None else 0x100)
        struct.pack_into('<HHHHI', c, 0, vendor, device, 0x0006, 0x0010, (cls << 8) | rev)
        struct.pack_into('<HH', c, 0x2c, subvendor, subdevice)
        c[0x34] = 0x40                  # capabilities pointer
        c[0x40] = 0x10                  # PCI Express capability, last in the list
        c[0x42] = 0x02                  # capability version 2, endpoint
        if serial is not None:
                # header: id 0x0003 (DSN), version 1, next 0; then the low and high dwords
                struct.pack_into('<III', c, 0x100, 0x00010003, serial & 0xffffffff, serial >> 32)
        return bytes(c)


def resource(bars, bridge=False):
        """bars: {index: (start, size, flags)} -> "resource" as resource_show() prints it.

        With CONFIG_PCI_IOV an endpoint has 13 lines (BARs 0-5, ROM, IOV BARs 7-12)
        and a bridge 17 (+ 4 windows); hostdevd reads the first 7."""
        lines = []
        for i in range(17 if bridge else 13):
                start, size, flags = bars.get(i, (0, 0, 0))
                end = start + size - 1 if size else 0
                lines.append('0x%016x 0x%016x 0x%016x' % (start, end, flags))
        return '\n'.join(lines) + '\n'


def escape(value):
        return value.replace('\\', '\\\\').replace('\n', '\\n')


def pci_text(path, vendor, device, cls, rev=0x01, subvendor=None, subdevice=None, driver=None,
             group=None, numa=-1, bars=None, reset=None, boot_vga=None, serial=None,
             attrs=(), links=(), props=(), config=None):
        """umockdev text for the PCI function at /sys/<path> ("devices/pci0000:00/0000:00:01.0").

        attrs: extra (name, value) attributes (value without the trailing newline);
        links: extra (name, target) links; props: extra "KEY=value" uevent lines.
        driver/group create the driver and iommu_group links (targets are the
        harness's: /sys/bus/pci/drivers/<driver>, /sys/kernel/iommu_groups/<group>)."""
        addr = os.path.basename(path)
        subvendor = vendor if subvendor is None else subvendor
        subdevice = device if subdevice is None else subdevice
        up = '/'.join(['..'] * (path.count('/') + 1))   # from the device's directory to /sys
        modalias = 'pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X' % (
                vendor, device, subvendor, subdevice, cls >> 16, (cls >> 8) & 0xff, cls & 0xff)
        out = ['P: /%s' % path]
        if driver:
                out.append('E: DRIVER=%s' % driver)
        out += ['E: MODALIAS=' + modalias, 'E: PCI_CLASS=%X' % cls, 'E: PCI_ID=%04X:%04X' % (vendor, device),
                'E: PCI_SLOT_NAME=' + addr, 'E: PCI_SUBSYS_ID=%04X:%04X' % (subvendor, subdevice),
                'E: SUBSYSTEM=pci']
        out += ['E: %s' % p for p in props]
        a = [('vendor', '0x%04x' % vendor), ('device', '0x%04x' % device),
             ('subsystem_vendor', '0x%04x' % subvendor), ('subsystem_device', '0x%04x' % subdevice),
             ('class', '0x%06x' % cls), ('revision', '0x%02x' % rev), ('driver_override', '(null)'),
             ('numa_node', str(numa)), ('modalias', modalias)]
        if reset:
                a.append(('reset_method', reset))
        if boot_vga is not None:
                a.append(('boot_vga', '1' if boot_vga else '0'))
        for k, v in list(a) + list(attrs):
                out.append('A: %s=%s' % (k, escape(v + '\n')))
        out.append('A: resource=' + escape(resource(bars or {}, bridge=(cls >> 8) == 0x0604)))
        if config is None:
                config = config_space(vendor, device, cls, rev, subvendor, subdevice, serial)
        out.append('H: config=' + config.hex().upper())
        if driver:
                out.append('L: driver=%s/bus/pci/drivers/%s' % (up, driver))
        if group is not None:
                out.append('L: iommu_group=%s/kernel/iommu_groups/%d' % (up, group))
        for k, v in links:
                out.append('L: %s=%s' % (k, v))
        return '\n'.join(out) + '\n'


def mdev_types_attrs(types):
        """types: [(id, name, description, device_api, available_instances)] -> attrs for pci_text()."""
        a = []
        for tid, name, desc, api, avail in types:
                base = 'mdev_supported_types/' + tid
                if name is not None:
                        a.append((base + '/name', name))
                if desc is not None:
                        a.append((base + '/description', desc))
                a += [(base + '/device_api', api), (base + '/available_instances', str(avail))]
        return a


def mdev_text(parent_path, uuid, type_id, driver=None, group=None, type_link=True):
        """umockdev text for mdev <uuid> under /sys/<parent_path>, of type <type_id>
        (without the mdev_type link if not type_link)."""
        path = '%s/%s' % (parent_path, uuid)
        up = '/'.join(['..'] * (path.count('/') + 1))
        out = ['P: /' + path]
        if driver:
                out.append('E: DRIVER=' + driver)
        out += ['E: MDEV_TYPE=' + type_id, 'E: SUBSYSTEM=mdev']
        if driver:
                out.append('L: driver=%s/bus/mdev/drivers/%s' % (up, driver))
        if group is not None:
                out.append('L: iommu_group=%s/kernel/iommu_groups/%d' % (up, group))
        if type_link:
                out.append('L: mdev_type=../mdev_supported_types/' + type_id)
        return '\n'.join(out) + '\n'


# Vendor vGPU on SR-IOV VFs, laid out as the NVIDIA Virtual GPU Software User Guide shows it for
# GPUs whose vGPU manager no longer uses mdev ("Creating an NVIDIA vGPU that supports SR-IOV on a
# Linux with KVM hypervisor"): <VF>/nvidia/creatable_vgpu_types lists a header line, then one
# "ID : NAME" line per type the VF can take now; <VF>/nvidia/current_vgpu_type holds the VF's type
# id, 0 for none. An L40S-like GPU; the type ids and counts are illustrative, not NVIDIA's.
# (id, name, max_instances per GPU)
NVIDIA_L40S_VGPU_TYPES = [(1155, 'NVIDIA L40S-1Q', 32),
                          (1156, 'NVIDIA L40S-2Q', 24),
                          (1158, 'NVIDIA L40S-4Q', 12),
                          (1163, 'NVIDIA L40S-24Q', 2),
                          (1164, 'NVIDIA L40S-48Q', 1)]


def vgpu_creatable_text(offer):
        """offer: [(id, name)] -> the text of nvidia/creatable_vgpu_types."""
        return 'ID    : vGPU Name\n' + ''.join('%-5d : %s\n' % o for o in offer)


def vgpu_vf_attrs(types, current=0):
        """attrs for pci_text() of a VF bound to the vendor driver, no vGPU type set yet."""
        text = vgpu_creatable_text([(i, n) for i, n, _ in types] if not current else [])
        return [('nvidia/creatable_vgpu_types', text.rstrip('\n')), ('nvidia/current_vgpu_type', str(current))]
