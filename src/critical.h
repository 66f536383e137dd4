/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Host-critical PCI functions (safety rule 3 in hostdevd(8)): what the host itself runs on.
 * Taking one of them from its host driver would take the host down, so the
 * planner refuses it unless the rule says AllowCritical=yes and the caller
 * is authorized. Read-only: this module never writes anything.
 *
 * A function is critical when it is on the PCI path (the function itself and
 * every bridge above it, walked up the resolved sysfs path) of:
 *  - the block device behind every mounted filesystem
 *    (/proc/self/mountinfo, proc(5): field 3 MAJ:MIN -> /sys/dev/block/MAJ:MIN;
 *    for MAJ 0, as btrfs reports, the source when it is a /dev node);
 *  - every active swap area (/proc/swaps: a partition by its /dev node, a
 *    file by the filesystem it lies on);
 *    in both cases through dm, md and LVM: /sys/class/block/X/slaves/ENTRY
 *    recursively (Documentation/ABI/stable/sysfs-block "slaves"), and a
 *    partition's parent disk for the parent's slaves;
 *  - the interface of every default route: IPv4 /proc/net/route with
 *    Destination and Mask 00000000, IPv6 /proc/net/ipv6_route ::/0 (lo and
 *    RTF_REJECT routes excluded), and through bond, bridge, VLAN and team
 *    upper devices their lower devices, recursively
 *    (/sys/class/net/IF/lower_NAME, brif/NAME, bonding/slaves;
 *    Documentation/ABI/testing/sysfs-class-net);
 *  - the boot VGA (PciDevice.boot_vga, sysfs-bus-pci "boot_vga").
 * Block and network devices without a PCI function on their path (loop,
 * nbd, zram, virtio-mmio, virtual NICs with no lower device) are fine: they
 * just add nothing. virtio-pci ones do add their virtio-pci function.
 *
 * IOMMU group peers are NOT added here: the planner does that from the
 * observed devices (planner_critical_reason() in planner.c refuses a
 * function that shares an IOMMU group with a listed one, naming it). One
 * side only, so a reason is never doubled.
 *
 * Known gaps: policy-routing tables other than main (ip rule) are not read
 * (/proc/net/route shows the main table only); btrfs multi-device
 * filesystems and ZFS pools name one source or none in mountinfo, so only
 * that one is found; mounts of other mount namespaces are not seen.
 *
 * Sysfs is read with readlink(), opendir()/readdir() and open() only (no
 * realpath(), scandir(), glob(), nftw()), so it works under umockdev's
 * preload as well as on a temporary tree under |root|.
 */

#include <stdbool.h>
#include <stddef.h>

#include "pci-device.h"
#include "planner.h"

/* Depth limit of dm/md/LVM stacking and of bond/bridge/VLAN nesting; deeper is an error (a loop). */
#define CRITICAL_DEPTH_MAX 16
/* At most this many reasons are spelled out per function; the rest are counted ("and 2 more"). */
#define CRITICAL_REASONS_MAX 3
/* A longer line in a /proc file is an error. */
#define CRITICAL_LINE_MAX (64u * 1024u)

typedef struct CriticalSet {
        /* Sorted by address, one entry per function; the strings are owned by the set. Reasons are
         * sentences: "controller of / (/dev/nvme0n1p2, ext4)", "carries the default route via eth0",
         * "boot VGA", "upstream bridge of 0000:01:00.0: controller of / (/dev/nvme0n1p2, ext4)";
         * several are joined with "; ". */
        CriticalDevice *devices;
        size_t n_devices;
        /* Things that lead to no PCI function, for debug logs: "/ (/dev/loop0, ext4): no PCI function",
         * "default route via wg0: no PCI function". NULL when none. */
        char **notes;
} CriticalSet;

CriticalSet *critical_set_free(CriticalSet *s);
static inline void critical_set_freep(CriticalSet **s) {
        if (*s)
                critical_set_free(*s);
}

/* The entry for |address| (canonical), or NULL. */
const CriticalDevice *critical_set_get(const CriticalSet *s, const char *address);

/*
 * Compute the host-critical set.
 *
 * |root|: NULL or "/" for the running system; else a directory under which
 * /proc/self/mountinfo, /proc/swaps, /proc/net/route, /proc/net/ipv6_route,
 * /sys and /dev are read (tests). Symlinks inside are resolved relative to
 * |root| (an absolute link target is taken under |root|).
 * |devices|: the observed functions, for boot_vga; NULL: read
 * /sys/bus/pci/devices/x/boot_vga directly.
 *
 * Returns 0 and a new set; -EBADMSG when a /proc file has a line that does
 * not parse, -ELOOP when stacking is deeper than CRITICAL_DEPTH_MAX, -errno
 * when /proc/self/mountinfo (required) cannot be read, -ENOMEM. On failure
 * *ret_error (if not NULL) gets a new message naming the file, the line
 * number and the line ("/proc/net/route:3: bad Destination 'zz': ...");
 * the caller must then treat the host-critical set as unknown (refuse).
 * Missing /proc/swaps, /proc/net/route or /proc/net/ipv6_route (kernel
 * without swap, IPv4 or IPv6) count as empty.
 */
int critical_compute(
        const char *root, const PciDevice *const *devices, size_t n_devices, CriticalSet **ret,
        char **ret_error);

/* A deep copy of |s| without its notes; NULL on OOM. */
CriticalSet *critical_set_copy(const CriticalSet *s);

/* Whether both list the same functions with the same reasons (notes aside); NULL equals only NULL. */
bool critical_set_equal(const CriticalSet *a, const CriticalSet *b);

/* "0000:00:1d.0 controller of / (...)\n" for every entry; new string or NULL on OOM. */
char *critical_set_to_string(const CriticalSet *s);
