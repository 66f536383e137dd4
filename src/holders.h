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
#include <stdint.h>
#include <sys/types.h>

#include "pci-device.h"

typedef struct Holder {
        pid_t pid;
        char *comm; /* /proc/PID/comm without the newline; "?" when it could not be read */
        char *node; /* "/dev/vfio/12" or "/dev/vfio/devices/vfio0" */
} Holder;

/*
 * Scan |proc_root|/[0-9]* /fd (NULL: "/proc"; tests pass a temporary tree
 * of symlinks). One entry per (pid, node), sorted by pid then node. A
 * link that names a VFIO node but whose open file is not the node of that
 * name in the caller's mount namespace (another namespace's /dev) is not a
 * holder: the same st_rdev for character devices, or the same st_dev/st_ino.
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
/* The same for a device known by its IOMMU group (-1: none) and VFIO cdev (NULL: none), e.g. an mdev. */
bool holder_holds_node(const Holder *h, int32_t iommu_group, const char *vfio_device);

/* ---- keeping a holder set current (agent/holder-watch.c) -------------------------------------- */

/*
 * Re-read one process: append its entries (one per node, in fd order) to *holders / *n. A process
 * that is gone, or whose fd directory cannot be read, adds nothing. Returns 0, or -ENOMEM (then
 * *holders / *n still describe a valid array the caller frees).
 */
int holders_scan_pid(const char *proc_root, pid_t pid, Holder **holders, size_t *n);

/*
 * |set| (sorted as holders_scan() sorts it) with every entry of |pid| replaced by |fresh| (entries of
 * |pid| only; ownership of |fresh| and its strings moves into the set; the array itself is freed).
 * Returns 1 when the set changed, 0 when it is the same, -ENOMEM (then |fresh| is freed and the set
 * is unchanged).
 */
int holders_set_replace_pid(Holder **set, size_t *n, pid_t pid, Holder *fresh, size_t n_fresh);

/* Whether the two sorted sets list the same (pid, node) pairs. */
bool holders_set_equal(const Holder *a, size_t n_a, const Holder *b, size_t n_b);

/* /proc/PID/comm of |pid| now (it changes on exec(2), which raises no event on the node): a new string,
 * "?" when it cannot be read; NULL on OOM. */
char *holders_read_comm(const char *proc_root, pid_t pid);

/* A deep copy of |n| entries; NULL when |n| is 0 or on OOM (*ret_oom then true). */
Holder *holders_copy(const Holder *h, size_t n, bool *ret_oom);

/*
 * One fanotify event about a VFIO node, parsed from what read(2) returns on a group created with
 * FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME (fanotify(7), kernel 5.9+): struct fanotify_event_metadata,
 * then an info record of type FAN_EVENT_INFO_TYPE_DFID_NAME (the directory's file handle, then the
 * entry's NUL-terminated name). No file descriptor: the kernel opens none for such a group, which
 * matters for VFIO groups, whose open is exclusive (an fd-reporting group would open the group node
 * itself for every event). Events of one object and process may be merged: |mask| can carry
 * FAN_OPEN and FAN_CLOSE_* together, so an event says "look at this process again", not what it did.
 */
typedef struct HolderEvent {
        uint64_t mask; /* FAN_OPEN, FAN_CLOSE_WRITE, FAN_CLOSE_NOWRITE, FAN_CREATE, FAN_ONDIR, FAN_Q_OVERFLOW
                        */
        pid_t pid; /* the process (thread group) that caused it; 0 for an overflow */
        char name[256]; /* the directory entry ("12", "vfio3", "devices"); "" when the record has none */
} HolderEvent;

/*
 * Parse the |size| bytes one read(2) returned. Returns 0 and a new array (NULL, 0 when empty), or
 * -EBADMSG when a record is malformed (metadata version other than FANOTIFY_METADATA_VERSION, a
 * length that overruns the buffer, a name that is not terminated) - the caller then treats it as an
 * overflow and rescans - or -ENOMEM. Events of an unknown info type keep an empty name.
 */
int holders_parse_fanotify(const void *buf, size_t size, HolderEvent **ret, size_t *ret_n);

/*
 * The processes to read again after an open or close of |node| by |pid|: |pid| and every process
 * |set| lists as a holder of |node| (a close by one process says nothing about which file was
 * released: another holder of the same node may have closed a copy it inherited). Sorted, unique.
 * Returns 0 and a new array (never empty: |pid| is in it), or -ENOMEM.
 */
int holders_pids_to_check(
        const Holder *set, size_t n, pid_t pid, const char *node, pid_t **ret, size_t *ret_n);
