/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A fake sysfs for unit tests: a umockdev testbed (so every /sys path the
 * code under test opens is redirected to it, given the test runs with
 * LD_PRELOAD=libumockdev-preload.so.0) populated with PCI functions, IOMMU
 * groups, drivers, slots, SR-IOV links and mdevs laid out as the kernel
 * does (Documentation/ABI/testing/sysfs-bus-pci, kernel-iommu_groups,
 * vfio-mediated-device.rst). Helpers mutate the tree like the kernel would
 * before it sends the matching uevent; the test then feeds the uevent to
 * the model. All paths are "/sys/..." paths; the helpers write through the
 * testbed's real directory. Any failure aborts the test.
 */

#include <stdbool.h>
#include <stdint.h>

typedef struct SysfsTree SysfsTree;

/* Must be called before anything asks umockdev_in_mock_environment(). */
SysfsTree *sysfs_tree_new(void);
void sysfs_tree_free(SysfsTree *t);

/* Plain file system helpers on /sys paths. */
void sysfs_tree_write(SysfsTree *t, const char *dir, const char *attr, const char *value);
void sysfs_tree_write_binary(SysfsTree *t, const char *dir, const char *attr, const void *data, size_t size);
void sysfs_tree_remove_file(SysfsTree *t, const char *dir, const char *attr);
void sysfs_tree_mkdir(SysfsTree *t, const char *path);
/* Relative symlink at |path| to the /sys path |target| (replacing an existing link). */
void sysfs_tree_symlink(SysfsTree *t, const char *path, const char *target);
void sysfs_tree_rm_rf(SysfsTree *t, const char *path);
bool sysfs_tree_exists(SysfsTree *t, const char *path);

/*
 * A PCI function under /sys/devices/pci<domain>:<bus>/ with the standard attributes (vendor, device,
 * subsystem ids, class, revision 0x01, numa_node -1, driver_override "(null)", a 13-line all-zero
 * resource, a 64-byte config header) and its /sys/bus/pci/devices link. Returns the syspath in a
 * static buffer of the tree (valid until the next call).
 */
const char *sysfs_tree_add_pci(
        SysfsTree *t, const char *address, uint16_t vendor, uint16_t device, uint32_t class_code);
const char *sysfs_tree_pci_path(SysfsTree *t, const char *address); /* syspath of an added function */
void sysfs_tree_remove_pci(SysfsTree *t, const char *address); /* device dir, bus link, group link */

/* Writes a 4 KiB config space with a PCIe capability and a DSN extended capability holding |serial|. */
void sysfs_tree_set_serial(SysfsTree *t, const char *address, uint64_t serial);
/* iommu_group link + /sys/kernel/iommu_groups/N/devices/<address>; group < 0 removes both. */
void sysfs_tree_set_group(SysfsTree *t, const char *address, int group);
/* driver link + /sys/bus/pci/drivers/<driver>/<address>; driver NULL unbinds. */
void sysfs_tree_bind(SysfsTree *t, const char *address, const char *driver);
/* /sys/bus/pci/slots/<name>/address = "DDDD:BB:SS". */
void sysfs_tree_add_slot(SysfsTree *t, const char *name, const char *slot_address);

/* SR-IOV: sriov_* attributes on a PF. */
void sysfs_tree_make_pf(SysfsTree *t, const char *pf, unsigned total_vfs);
/* Create VF n (address |vf|) of |pf|: the function, physfn and virtfnN links, and sriov_numvfs = n+1. */
const char *sysfs_tree_add_vf(SysfsTree *t, const char *pf, unsigned n, const char *vf, uint16_t device);
/* Remove VF n: links, the function, and sriov_numvfs = n. */
void sysfs_tree_remove_vf(SysfsTree *t, const char *pf, unsigned n, const char *vf);

/* mdev parents: a type directory below <parent>/mdev_supported_types, and the mdev_bus class link. */
void sysfs_tree_add_mdev_type(
        SysfsTree *t, const char *parent_syspath, const char *type, const char *name, unsigned available);
void sysfs_tree_set_available(
        SysfsTree *t, const char *parent_syspath, const char *type, unsigned available);
void sysfs_tree_register_parent(SysfsTree *t, const char *parent_syspath); /* /sys/class/mdev_bus/<name> */
void sysfs_tree_unregister_parent(SysfsTree *t, const char *parent_syspath);
/* An mdev under its parent, with mdev_type link and /sys/bus/mdev/devices/<uuid>; group >= 0 adds one. */
const char *sysfs_tree_add_mdev(
        SysfsTree *t, const char *parent_syspath, const char *uuid, const char *type, int group);
void sysfs_tree_remove_mdev(SysfsTree *t, const char *parent_syspath, const char *uuid);
