/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * VFIO nodes a VMM holds, named the way a caller has them: a path or the device number it got from
 * fstat() on an open fd (Documentation/driver-api/vfio.rst):
 *   /dev/vfio/N                 the group node of IOMMU group N
 *   /dev/vfio/noiommu-N         the same in no-IOMMU mode (vfio's enable_unsafe_noiommu_mode)
 *   /dev/vfio/devices/vfioN     a VFIO device cdev (Linux 6.6+)
 *   MAJOR:MINOR                 decimal; resolved through /sys/dev/char/MAJOR:MINOR
 *                               (Documentation/ABI/testing/sysfs-dev), whose target is a device of
 *                               class "vfio" (group nodes, under /sys/devices/virtual/vfio/) or
 *                               "vfio-dev" (cdevs, <pci device>/vfio-dev/vfioN).
 * Which devices are behind a node: every PCI function of IOMMU group N and every mdev in group N
 * for a group node (the group fd reaches all of them), the function whose vfio-dev/vfioN it is for
 * a cdev.
 */

#include <stdbool.h>
#include <stdint.h>

#include "mdev.h"
#include "pci-device.h"

typedef enum VfioNodeKind {
        VFIO_NODE_GROUP,
        VFIO_NODE_NOIOMMU_GROUP,
        VFIO_NODE_DEVICE,
} VfioNodeKind;

typedef struct VfioNode {
        VfioNodeKind kind;
        uint32_t number; /* group number, or N of vfioN */
        char path[64]; /* canonical /dev path */
} VfioNode;

/*
 * Parse |spec|. A device number is looked up in sysfs; the rest is text only. Returns 0, -EINVAL
 * (not one of the forms above), -ENOENT (no character device MAJOR:MINOR), -ENODEV (a character
 * device that is not a VFIO node).
 */
int vfio_node_parse(const char *spec, VfioNode *ret);

bool vfio_node_has_device(const VfioNode *n, const PciDevice *d);
bool vfio_node_has_mdev(const VfioNode *n, const Mdev *m);
