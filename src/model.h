/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The observed model: every PCI function, mdev parent and mdev on the host,
 * keyed by PCI address / parent name / UUID, built by a full enumeration and
 * then kept current by uevents. No sd-bus or sd-event here: the agent feeds
 * uevents in and publishes the change records that come out.
 *
 * Invariant (tested): after any sequence of model_handle_uevent() calls that
 * mirrors what the kernel did, the model equals a fresh model_enumerate()
 * (model_equal()).
 */

#include <stdbool.h>
#include <stddef.h>

#include "mdev.h"
#include "pci-device.h"

struct pci_access;

typedef struct Model Model;

/* What one update did to one object, for D-Bus signals and the journal. */
typedef enum ModelChangeKind {
        MODEL_CHANGE_ADDED,
        MODEL_CHANGE_REMOVED,
        MODEL_CHANGE_CHANGED,
} ModelChangeKind;

typedef enum ModelObjectKind {
        MODEL_OBJECT_DEVICE, /* key: PCI address */
        MODEL_OBJECT_MDEV, /* key: UUID */
        MODEL_OBJECT_PARENT, /* key: mdev parent name; surfaces as Manager.MdevTypes */
        MODEL_OBJECT_MANAGER, /* key: "" - device/mdev counts, IOMMU state */
} ModelObjectKind;

typedef struct ModelChange {
        ModelChangeKind kind;
        ModelObjectKind object;
        char key[64];
        unsigned fields; /* CHANGED: PciDeviceField or MdevField bits; 0 for PARENT/MANAGER */
} ModelChange;

/* A growable list of changes, appended by model_* calls; the caller owns and resets it. */
typedef struct ModelChangeList {
        ModelChange *changes;
        size_t n, allocated;
} ModelChangeList;
/* n = 0; keeps the buffer unless it grew past a few hundred changes (a rescan, a storm) */
void model_change_list_clear(ModelChangeList *l);
void model_change_list_done(ModelChangeList *l); /* frees the buffer */

/*
 * New empty model. pacc: libpci handle (pci.ids loaded, config space
 * readable) or NULL; borrowed, must outlive the model.
 */
int model_new(struct pci_access *pacc, Model **ret);
Model *model_free(Model *m);
static inline void model_freep(Model **m) {
        if (*m)
                model_free(*m);
}

/*
 * Read everything from sysfs (opendir/readdir of SYSFS_PCI_DEVICES,
 * SYSFS_MDEV_BUS_CLASS, SYSFS_MDEV_DEVICES, SYSFS_IOMMU_GROUPS) and replace
 * the model's content. With |changes|, appends the difference to what the
 * model held before (used for the ENOBUFS rescan). Returns 0 or -errno
 * (only for OOM or an unreadable /sys/bus/pci: per-device problems are
 * recorded on the device).
 */
int model_enumerate(Model *m, ModelChangeList *changes);

/*
 * Apply one uevent. action: "add", "remove", "change", "bind", "unbind",
 * "move"; subsystem: "pci", "mdev", or the subsystem of an mdev parent
 * (e.g. "mtty", with MDEV_STATE in |mdev_state|, may be NULL); syspath:
 * /sys/devices/... of the device; sysname: its basename.
 * Re-reads what the event can have changed (the device; for a VF, its PF's
 * numvfs/virtfns; for an mdev, its parent's available_instances; group peers)
 * and appends the differences to |changes|.
 * Returns 1 if the model changed, 0 if not (an event for an unknown or
 * uninteresting device), -EINVAL for an event that makes no sense (no action,
 * unknown action: nothing changes), -ENOMEM.
 */
int model_handle_uevent(
        Model *m, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state, ModelChangeList *changes);

/*
 * Re-read the mdevs |uuids| (strv; invalid UUIDs are skipped) from /sys/bus/mdev/devices, as their
 * uevents would (an mdev that is gone is dropped, a new one added), then each parent that one of them
 * had or has once: the batch form of their "add"/"bind"/"change"/"remove" uevents, for a burst the
 * agent held back (a job creating many mdevs reads each parent's types once, not per uevent). After
 * it, the model holds what the kernel shows for these mdevs and their parents (the invariant above).
 * Appends the differences to |changes|. Returns 1 if the model changed, 0 if not, -ENOMEM or another
 * -errno of a read that failed for a reason other than absence.
 */
int model_refresh_mdevs(Model *m, char *const *uuids, ModelChangeList *changes);

/* Lookups; NULL if absent. Pointers stay valid until the next model update. */
const PciDevice *model_get_device(const Model *m, const char *address);
const Mdev *model_get_mdev(const Model *m, const char *uuid);
const MdevParent *model_get_mdev_parent(const Model *m, const char *name);

/* Sorted arrays (by address / UUID / name); valid until the next update. */
const PciDevice *const *model_get_devices(const Model *m, size_t *ret_n);
const Mdev *const *model_get_mdevs(const Model *m, size_t *ret_n);
const MdevParent *const *model_get_mdev_parents(const Model *m, size_t *ret_n);

/* Group peers of a device: other addresses in the same IOMMU group, sorted; new strv (NULL if none). */
int model_get_iommu_group_peers(const Model *m, const char *address, char ***ret);
/*
 * The functions of IOMMU group |group| (the device itself included), sorted by address: a borrowed
 * array, valid until the next update; none for group < 0 or a group without functions. For readers
 * of every group (GetManagedObjects) that need no copy. Returns 0 or -ENOMEM.
 */
int model_get_iommu_group_members(
        const Model *m, int32_t group, const PciDevice *const **ret, size_t *ret_n);

/*
 * IOMMU state: enabled when /sys/kernel/iommu_groups has at least one group
 * (or /sys/class/iommu has an entry). reason: a sentence for operators when
 * disabled ("no IOMMU groups in /sys/kernel/iommu_groups: boot with
 * intel_iommu=on or amd_iommu=on"), "" when enabled.
 */
bool model_iommu_enabled(const Model *m);
const char *model_iommu_reason(const Model *m);

/* Deep comparison of every observable field (for the rescan invariant). */
bool model_equal(const Model *a, const Model *b);
