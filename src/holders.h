/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Holders: processes with a VFIO node open, found the way fuser(1) does, by
 * reading every /proc/PID/fd/N link (proc(5)). The nodes that pin devices
 * (Documentation/driver-api/vfio.rst):
 *   /dev/vfio/<group>          the group: holds every function of IOMMU group <group>
 *   /dev/vfio/devices/vfioN    a device cdev (6.6+): holds the function whose vfio-dev/vfioN it is
 * The container node /dev/vfio/vfio pins nothing and is not reported.
 * Read-only; the caller decides what a holder blocks (the planner).
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pci-device.h"

typedef struct Holder {
        pid_t pid;
        char *comm; /* /proc/PID/comm without the newline; "?" when it could not be read */
        char *node; /* "/dev/vfio/12" or "/dev/vfio/devices/vfio0" */
} Holder;

/*
 * Scan |proc_root|/[0-9]* /fd (NULL: "/proc"; tests pass a temporary tree
 * of symlinks). One entry per (pid, node), sorted by pid then node.
 * Processes that vanish or whose fd directory cannot be read (EACCES when
 * not root) are skipped. Returns 0 and a new array (NULL, 0 when none),
 * -ENOMEM, or -errno when |proc_root| itself cannot be opened.
 */
int holders_scan(const char *proc_root, Holder **ret, size_t *ret_n);
void holders_free(Holder *h, size_t n);

/* True if |node| is a group node "/dev/vfio/<N>" (*ret_group = N) - NULL-safe. */
bool holder_node_is_group(const char *node, int32_t *ret_group);

/*
 * True if |h| holds |d|: its node is d's group node (d in an IOMMU group,
 * whether or not vfio is bound right now) or d's VFIO cdev.
 */
bool holder_holds_device(const Holder *h, const PciDevice *d);
