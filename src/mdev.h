/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Mediated devices and their parents, per
 * Documentation/driver-api/vfio-mediated-device.rst and
 * Documentation/ABI/testing/sysfs-bus-vfio-mdev:
 *   /sys/class/mdev_bus/<parent>            -> link to the parent device (PCI or not:
 *                                              the mtty sample's parent is /sys/devices/virtual/mtty/mtty)
 *   <parent>/mdev_supported_types/<type>/{name,description,device_api,available_instances,create,devices/}
 *   /sys/bus/mdev/devices/<uuid>            -> link to the mdev, a child of its parent
 *   <mdev>/mdev_type                        -> link to the type directory
 *   <mdev>/iommu_group                      -> link, once a vfio_mdev driver is bound
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci-device.h" /* MdevType */

#define MDEV_UUID_STRING_MAX 37

typedef struct Mdev {
        char uuid[MDEV_UUID_STRING_MAX]; /* lowercase canonical, the key */
        char *syspath;
        char *type_id; /* basename of the mdev_type link's target; NULL if unreadable */
        char *parent; /* parent device name: a PCI address, or another sysfs name ("mtty") */
        bool parent_is_pci; /* parent is a PCI function (then ->parent is its canonical address) */
        int32_t iommu_group; /* -1: none */
        char *driver; /* bound driver (e.g. "vfio_mdev"), NULL: none */
        char **errors; /* strv of parse errors, NULL if none */
} Mdev;

/* Read /sys/bus/mdev/devices/<uuid>. Returns 0, -ENOENT, -EINVAL (not a UUID), -ENOMEM. */
int mdev_read(const char *uuid, Mdev **ret);
Mdev *mdev_free(Mdev *m);
static inline void mdev_freep(Mdev **m) {
        if (*m)
                mdev_free(*m);
}

typedef enum MdevField {
        MDEV_FIELD_TYPE = 1u << 0,
        MDEV_FIELD_PARENT = 1u << 1,
        MDEV_FIELD_IOMMU_GROUP = 1u << 2,
        MDEV_FIELD_DRIVER = 1u << 3,
        MDEV_FIELD_ERRORS = 1u << 4,
        MDEV_FIELD_SYSPATH = 1u << 5,
} MdevField;
unsigned mdev_diff(const Mdev *a, const Mdev *b);

/*
 * An mdev parent: any device listed in /sys/class/mdev_bus. PCI parents also
 * carry their types in PciDevice.mdev_types; this list covers all parents.
 */
typedef struct MdevParent {
        char *name; /* basename under /sys/class/mdev_bus (a PCI address for PCI parents) */
        char *syspath; /* resolved device path */
        bool is_pci;
        MdevType *types;
        size_t n_types;
        char **errors;
} MdevParent;

/* Read the types below <dir>/mdev_supported_types into a new array (sorted by id). */
int mdev_types_read(const char *dir, MdevType **ret, size_t *ret_n, char ***errors);
void mdev_types_free(MdevType *types, size_t n);
bool mdev_types_equal(const MdevType *a, size_t n_a, const MdevType *b, size_t n_b);

/* Read /sys/class/mdev_bus/<name>. Returns 0, -ENOENT, -ENOMEM. */
int mdev_parent_read(const char *name, MdevParent **ret);
MdevParent *mdev_parent_free(MdevParent *p);
static inline void mdev_parent_freep(MdevParent **p) {
        if (*p)
                mdev_parent_free(*p);
}
/* Canonical lowercase UUID check via libuuid. */
bool mdev_uuid_is_valid(const char *s);
