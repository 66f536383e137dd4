/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Early bind: the decision, on a PCI function's kernel "add" uevent and before the model has read
 * the function, whether a rule names a driver for it and it is safe to write its driver_override at
 * once, so that the kernel's first probe binds that driver and no host driver ever touches it
 * (README, hostdevd(8)). The reconciler submits the plan it returns as an urgent job.
 *
 * What the uevent carries is enough for most rules: PCI_ID, PCI_SUBSYS_ID and PCI_CLASS
 * (drivers/pci/pci-driver.c, pci_uevent()). Two links are read: iommu_group and physfn
 * (Documentation/ABI/testing/sysfs-bus-pci); for a VF whose physfn link does not exist yet, its
 * PF's sriov_offset and sriov_stride. Nothing is written here.
 *
 * Anything it cannot decide on what the uevent and those links tell (rules with Slot= or Serial=,
 * IOMMU group peers, unknown PF, unusable ids, a function the model knows already) is declined, with
 * the reason logged at debug level: the normal plans that follow the model's update handle it.
 *
 * Threading: early_bind_plan() on the loop thread (it reads the model); the snapshot below is built
 * on the loop and read, immutable, by the early-bind thread.
 */

#include <errno.h>

#include "critical.h"
#include "desired-state.h"
#include "model.h"
#include "planner.h"

/*
 * How a function that appears, and that a rule claims, is kept from its host driver's first probe:
 * Manager.HotplugGuard, chosen in hostdevd(8) ("Hot-added functions"). The kernel probes a hot-added
 * function from pci_bus_add_device() with device_attach() (drivers/pci/bus.c), which does not read
 * /sys/bus/pci/drivers_autoprobe (only bus_probe_device() and bus_add_driver() do,
 * drivers/base/bus.c; measured on Debian's 6.1 in tests/kernel/scenarios/hotplug-guarantee.sh), so
 * hostdevd never writes that host-wide setting: on such a kernel it protects nothing and stops what
 * it should not (drivers registered later, deferred probes). A VF's probe does read its PF's
 * sriov_drivers_autoprobe (pci_device_can_probe(), drivers/pci/pci-driver.c).
 */
typedef enum HotplugGuard {
        /* "none": no rule claims a function (Driver= or VFDriver= naming a driver, or "none"): a new
         * function gets the kernel's own probe and hostdevd writes nothing for it. */
        HOTPLUG_GUARD_NONE,
        /* "sriov-autoprobe": rules claim only VFs that hostdevd creates (NumVFs= with such a VFDriver=,
         * and Driver= rules matching PF= of such a PF): sriov_drivers_autoprobe is 0 before
         * sriov_numvfs is written, so no driver but driver_override's can probe them. A guarantee. */
        HOTPLUG_GUARD_SRIOV_AUTOPROBE,
        /* "driver-override": a rule may claim a hot-added function, or a VF of a PF whose VFs it does
         * not create: driver_override is written on the kernel's "add" uevent (by the early-bind
         * thread, executor-early.h), which races the kernel's first probe; a lost race is taken from
         * the host driver in one transaction. */
        HOTPLUG_GUARD_DRIVER_OVERRIDE,
        _HOTPLUG_GUARD_MAX,
        _HOTPLUG_GUARD_INVALID = -EINVAL,
} HotplugGuard;
const char *hotplug_guard_to_string(HotplugGuard g); /* "none", "sriov-autoprobe", "driver-override" */

/* The guard |desired| needs (NULL: none). Pure. */
HotplugGuard early_bind_guard(const DesiredState *desired);

/* The fields of a PCI function's kernel "add" uevent (any may be NULL). */
typedef struct EarlyBindUevent {
        const char *syspath; /* the function's directory under /sys/devices */
        const char *sysname; /* its address */
        const char *pci_id; /* PCI_ID=VVVV:DDDD */
        const char *pci_subsys_id; /* PCI_SUBSYS_ID=VVVV:DDDD */
        const char *pci_class; /* PCI_CLASS=CCCCCC (4 to 6 hex digits) */
} EarlyBindUevent;

/*
 * Decide for one new function. |critical| may be NULL (not known yet: declined). Returns 1 with the
 * plan (planner_plan_new_function()) and the driver's name (new string) when the early
 * driver_override should be written, 0 when declined, or -ENOMEM.
 */
int early_bind_plan(
        const DesiredState *desired, const Model *model, const CriticalSet *critical,
        const EarlyBindUevent *u, Plan **ret_plan, char **ret_driver);

/* ---- the early-bind thread's snapshot (executor-early.h) ------------------------------------------ */

/*
 * What the early-bind thread may decide alone: an immutable copy of the rules' [Match] and Driver=
 * (no model, no pointer into the loop's state), built on the loop by early_bind_snapshot_new() on every
 * (re)load and handed to the thread whole. It decides only for a function that is plainly new and
 * alone (early_bind_snapshot_decide()); everything else is declined and goes to early_bind_plan() on
 * the loop, as before the thread existed.
 */
typedef struct EarlyBindSnapshot EarlyBindSnapshot;

/*
 * Build the snapshot of |desired| (may be NULL: no rule). |devices| (the model's functions, any order;
 * nothing is kept) give the bridges (a peer that does not keep a function from being alone in its IOMMU
 * group unless host-critical) and the SR-IOV PFs (a new function beside one may be its VF, whose physfn
 * link comes after its "add": declined). |critical| NULL (not known yet) or |store_usable| false make a
 * snapshot that declines every function. Returns 0 and a new snapshot, or -ENOMEM.
 */
int early_bind_snapshot_new(
        const DesiredState *desired, const PciDevice *const *devices, size_t n_devices,
        const CriticalSet *critical, bool store_usable, EarlyBindSnapshot **ret);
EarlyBindSnapshot *early_bind_snapshot_free(EarlyBindSnapshot *s);
static inline void early_bind_snapshot_freep(EarlyBindSnapshot **s) {
        if (*s)
                early_bind_snapshot_free(*s);
}

#define EARLY_BIND_MAX_PEERS 8u
#define EARLY_BIND_DRIVER_MAX 64u /* a PCI driver's name (struct device_driver.name) fits */
#define EARLY_BIND_SOURCE_MAX 512u

/* What the thread read for one PCI "add" uevent (kernfs only: links and a directory listing, none of
 * which takes the device lock that the kernel's probe holds). */
typedef struct EarlyBindFacts {
        EarlyBindUevent u;
        bool synthetic; /* SYNTH_UUID=: an "add" written to a uevent file, not a new function */
        bool has_driver; /* its driver link exists: the kernel's first probe already bound one */
        bool has_physfn; /* its physfn link exists: a VF */
        int32_t iommu_group; /* its iommu_group link's number; -1: none */
        /* The other functions in /sys/kernel/iommu_groups/<group>/devices, at most EARLY_BIND_MAX_PEERS;
         * n_peers > EARLY_BIND_MAX_PEERS: more than that */
        char peers[EARLY_BIND_MAX_PEERS][PCI_ADDRESS_STRING_MAX];
        size_t n_peers;
} EarlyBindFacts;

typedef struct EarlyBindDecision {
        char driver[EARLY_BIND_DRIVER_MAX]; /* what to write to driver_override */
        char source[EARLY_BIND_SOURCE_MAX]; /* "FILE:LINE" of the deciding Driver= */
} EarlyBindDecision;

/*
 * Decide for one function from |s| and |f| alone. No allocation, no I/O, no lock: safe on the
 * early-bind thread. Returns true and fills |ret| when driver_override should be written now; false
 * when declined, with a static sentence in *ret_why (the loop's early_bind_plan() then decides).
 */
bool early_bind_snapshot_decide(
        const EarlyBindSnapshot *s, const EarlyBindFacts *f, EarlyBindDecision *ret, const char **ret_why);
