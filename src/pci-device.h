/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * One PCI function as observed in sysfs and config space.
 *
 * Sources (Documentation/ABI/testing/sysfs-bus-pci unless noted):
 *   vendor, device, subsystem_vendor, subsystem_device, class, revision
 *   driver (link), driver_override, iommu_group (link; kernel-iommu_groups ABI),
 *   numa_node, resource (drivers/pci/pci-sysfs.c resource_show), reset_method,
 *   boot_vga, sriov_totalvfs, sriov_numvfs, sriov_drivers_autoprobe,
 *   sriov_offset, sriov_stride, physfn/virtfnN links,
 *   /sys/bus/pci/slots/<name>/address (physical slot; sysfs-bus-pci "slots"),
 *   vfio-dev/vfioN (VFIO device cdev, Documentation/driver-api/vfio.rst "cdev"),
 *   mdev_supported_types/ (Documentation/driver-api/vfio-mediated-device.rst),
 *   config space via libpci: Device Serial Number extended capability (PCIe r6.0 §7.9.3).
 *   Names from pci.ids via libpci's pci_lookup_name().
 *
 * Every value that fails to parse is recorded in ->errors ("ATTR: message 'value'")
 * and the field keeps its "unknown" value; reading goes on.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci-address.h"

struct pci_access;

typedef enum SriovRole {
        SRIOV_ROLE_NONE, /* neither PF nor VF */
        SRIOV_ROLE_PF, /* has the SR-IOV capability (sriov_totalvfs exists) */
        SRIOV_ROLE_VF, /* has a physfn link */
        _SRIOV_ROLE_MAX,
        _SRIOV_ROLE_INVALID = -EINVAL,
} SriovRole;
const char *sriov_role_to_string(SriovRole r); /* "none", "pf", "vf" */
SriovRole sriov_role_from_string(const char *s);

typedef enum PciBarType {
        PCI_BAR_TYPE_MEMORY,
        PCI_BAR_TYPE_IO,
        _PCI_BAR_TYPE_MAX,
        _PCI_BAR_TYPE_INVALID = -EINVAL,
} PciBarType;
const char *pci_bar_type_to_string(PciBarType t); /* "memory", "io" */

/* BARs 0..5 and the expansion ROM (index 6), as in the first 7 lines of "resource". */
#define PCI_BAR_MAX 7
#define PCI_BAR_ROM_INDEX 6

typedef struct PciBar {
        uint8_t index; /* 0..5, 6 = ROM */
        PciBarType type;
        uint64_t size; /* bytes: end - start + 1 */
        bool is_64bit; /* IORESOURCE_MEM_64 */
        bool prefetchable; /* IORESOURCE_PREFETCH */
} PciBar;

typedef struct MdevType {
        char *id; /* directory name under mdev_supported_types, e.g. "nvidia-556", "mtty-1" */
        char *name; /* "name" attribute, optional (NULL) */
        char *description; /* "description" attribute, optional (NULL) */
        char *device_api; /* "device_api", e.g. "vfio-pci" */
        uint32_t available_instances;
} MdevType;

void mdev_type_done(MdevType *t); /* frees members, not t */

typedef struct PciDevice {
        char address[PCI_ADDRESS_STRING_MAX]; /* canonical BDF, the key */
        char *syspath; /* /sys/devices/... (resolved) or /sys/bus/pci/devices/<addr> */

        uint16_t vendor_id, device_id;
        uint16_t subsystem_vendor_id, subsystem_device_id;
        uint32_t class_code; /* 24 bits: base class, subclass, prog-if */
        uint8_t revision;

        char *vendor_name; /* from pci.ids; NULL if unknown */
        char *device_name;
        char *class_name; /* e.g. "Ethernet controller" */

        int32_t iommu_group; /* -1: none (no IOMMU, or not translated) */
        char *driver; /* bound driver name; NULL: none */
        char *driver_override; /* NULL: not set ("(null)" in sysfs) */
        int32_t numa_node; /* -1: none */
        char *physical_slot; /* slot name from /sys/bus/pci/slots; NULL: none */
        bool has_serial;
        uint64_t serial; /* PCIe DSN, 64 bits */

        SriovRole sriov_role;
        uint32_t sriov_total_vfs, sriov_num_vfs; /* PF only */
        bool sriov_drivers_autoprobe; /* PF only */
        uint32_t sriov_vf_offset, sriov_vf_stride; /* PF only; 0 if the attributes are absent */
        char *physfn; /* VF only: PF address */
        int32_t vf_index; /* VF only: N of the PF's virtfnN link pointing here; -1 otherwise */
        char **virtfns; /* PF only: VF addresses ordered by index (strv, may be NULL) */

        PciBar bars[PCI_BAR_MAX];
        size_t n_bars; /* only implemented BARs (size > 0) are listed */

        char **reset_methods; /* strv from "reset_method" (space separated), NULL if absent */
        bool boot_vga; /* "boot_vga" == 1 (attribute only exists on VGA devices) */

        char *vfio_group; /* "/dev/vfio/<group>" when bound to a VFIO driver and in a group */
        char *vfio_device; /* "/dev/vfio/devices/vfioN" when vfio-dev/vfioN exists (VFIO cdev, 6.6+) */

        MdevType *mdev_types; /* non-NULL iff this function is an mdev parent */
        size_t n_mdev_types;

        char **errors; /* strv of parse errors, NULL if none */
} PciDevice;

/*
 * Read the function at |address| ("DDDD:BB:SS.F") from SYSFS_PCI_DEVICES.
 * |pacc| (may be NULL): a libpci handle with pci.ids loaded, for names and
 * config-space capabilities; without it names and serial stay unknown.
 * Returns 0 and a new device (parse problems go into ->errors),
 * -ENOENT if the device does not exist (any more), -EINVAL for a bad address,
 * -ENOMEM.
 */
int pci_device_read(const char *address, struct pci_access *pacc, PciDevice **ret);
/*
 * The same, for a function read before as |old| (NULL: as pci_device_read()): when the ids, class
 * and revision read now equal old's, the names and the serial are taken from |old| instead of
 * pci.ids and config space (a bind, unbind or "change" uevent changes neither; config space reads
 * are trapped accesses, slow in a VM). A function removed and added again is read whole ("add").
 */
int pci_device_reread(const char *address, struct pci_access *pacc, const PciDevice *old, PciDevice **ret);

PciDevice *pci_device_free(PciDevice *d);
static inline void pci_device_freep(PciDevice **d) {
        if (*d)
                pci_device_free(*d);
}

/* True if d is bound to vfio-pci or a VFIO variant driver (name contains "vfio_pci"/"vfio-pci"). */
bool pci_device_is_vfio_bound(const PciDevice *d);
/* Class 0x06 0x04 (PCI-to-PCI bridge) or 0x06 0x00..0x07 host/ISA/...: used by the group rules. */
bool pci_device_is_bridge(const PciDevice *d);

/*
 * Which observable fields differ between a and b; one bit per D-Bus
 * property group so the bus layer emits PropertiesChanged for exactly those.
 */
typedef enum PciDeviceField {
        PCI_DEVICE_FIELD_IDS = 1u << 0, /* vendor/device/subsystem ids, class, revision, names */
        PCI_DEVICE_FIELD_IOMMU_GROUP = 1u << 1,
        PCI_DEVICE_FIELD_DRIVER = 1u << 2, /* driver, vfio_group, vfio_device */
        PCI_DEVICE_FIELD_DRIVER_OVERRIDE = 1u << 3,
        PCI_DEVICE_FIELD_NUMA_NODE = 1u << 4,
        PCI_DEVICE_FIELD_PHYSICAL_SLOT = 1u << 5,
        PCI_DEVICE_FIELD_SERIAL = 1u << 6,
        PCI_DEVICE_FIELD_SRIOV =
                1u << 7, /* role, total/num VFs, autoprobe, offset, stride, physfn, vf_index, virtfns */
        PCI_DEVICE_FIELD_BARS = 1u << 8,
        PCI_DEVICE_FIELD_RESET_METHODS = 1u << 9,
        PCI_DEVICE_FIELD_BOOT_VGA = 1u << 10,
        PCI_DEVICE_FIELD_MDEV_TYPES = 1u << 11,
        PCI_DEVICE_FIELD_ERRORS = 1u << 12,
        PCI_DEVICE_FIELD_SYSPATH = 1u << 13,
        PCI_DEVICE_FIELD_IOMMU_PEERS = 1u << 14, /* derived: set by the model when a peer joins/leaves */
} PciDeviceField;

/* Bitmask of PciDeviceField that differ (0: equal in every observable field). */
unsigned pci_device_diff(const PciDevice *a, const PciDevice *b);
