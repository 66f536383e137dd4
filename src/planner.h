/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The planner: a pure function (desired resolution, observed functions,
 * holders, host-critical set) -> Plan. No I/O, no clock, no logging above
 * debug; the same call serves Plan() (dry run), Apply() and the tests.
 *
 * It enforces the safety rules of hostdevd(8):
 *  1. binding is set-override -> unbind -> probe -> verify, per function
 *     (driver_override and drivers_probe, Documentation/ABI/testing/
 *     sysfs-bus-pci); never new_id;
 *  2. a function goes to a VFIO driver only if every IOMMU group peer is on
 *     a VFIO driver, driverless, a bridge, or covered (its own rule wants
 *     VFIO, or Group=whole adds it); the group is one transaction;
 *  3. host-critical functions and their group peers are refused unless the
 *     rule says AllowCritical=yes AND the caller is authorized;
 *  4. a function with a holder is never unbound; a PF whose VFs have
 *     holders never has sriov_numvfs changed (the kernel needs 0 first,
 *     which destroys every VF): both are `blocked`, naming pid and comm.
 * Functions that already are as desired get no action (adoption: a restart
 * writes nothing).
 *
 * Mdevs and vendor vGPUs (issue 14), after the functions:
 *  5. an instance the desired state wants and that is missing is created (MDEV_CREATE, then its
 *     MDEV_SET_ATTRs: one transaction) on its parent, but only once the parent is present and no
 *     SR-IOV or driver change of this plan touches it (PCI parent or its PF): `pending` until then,
 *     the next plan creates it; an instance that exists with the wanted parent and type is adopted
 *     (converged, no action);
 *  6. an instance is removed only when hostdevd owns it (PlannerInput.owned_mdevs: created by it,
 *     or named by UUID=) and no rule wants it any more, or wants it with another parent or type
 *     (then removed and created again in one transaction); never while a process holds its
 *     /dev/vfio/<iommu_group> (`blocked`, naming pid and command);
 *  7. an instance nobody asked hostdevd for is `foreign`: shown, never touched; a UUID= colliding
 *     with one is `refused`;
 *  8. vendor vGPU: SET_VGPU_TYPE on a VF that carries no type (or one hostdevd set, when held:
 *     `blocked`); a VF with another type set by someone else is `refused`; owned_vgpus no rule wants
 *     any more are cleared (0) unless held.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "desired-state.h"
#include "holders.h"
#include "mdev.h"
#include "pci-device.h"

/* Per-function state as published on D-Bus (Device.State). The planner yields the first four. */
typedef enum DeviceState {
        DEVICE_STATE_CONVERGED,
        DEVICE_STATE_PENDING,
        DEVICE_STATE_BLOCKED, /* waits for a holder to go away */
        DEVICE_STATE_REFUSED, /* against a safety rule or impossible: needs a config change */
        DEVICE_STATE_STUCK, /* executor: a write overran its deadline */
        DEVICE_STATE_FAILED, /* executor: a write or verification failed */
        _DEVICE_STATE_MAX,
        _DEVICE_STATE_INVALID = -EINVAL,
} DeviceState;
const char *device_state_to_string(DeviceState s); /* "converged", "pending", ... */
DeviceState device_state_from_string(const char *s);

typedef enum PlanActionType {
        PLAN_ACTION_SET_SRIOV_AUTOPROBE, /* write value to the PF's sriov_drivers_autoprobe */
        PLAN_ACTION_SET_NUMVFS, /* write value to the PF's sriov_numvfs */
        PLAN_ACTION_SET_OVERRIDE, /* write driver to driver_override */
        PLAN_ACTION_CLEAR_OVERRIDE, /* write "\n" to driver_override */
        PLAN_ACTION_UNBIND, /* write the address to /sys/bus/pci/drivers/<driver>/unbind */
        PLAN_ACTION_PROBE, /* write the address to /sys/bus/pci/drivers_probe */
        PLAN_ACTION_VERIFY, /* read the driver link back; see PlanVerify */
        /* Issue 14, after every SR-IOV and driver transaction (Documentation/driver-api/
         * vfio-mediated-device.rst; for vendor vGPU, mdev.h): */
        PLAN_ACTION_MDEV_CREATE, /* write ->uuid to <parent>/mdev_supported_types/<mdev_type>/create,
                                  * then verify the mdev's mdev_type link */
        PLAN_ACTION_MDEV_SET_ATTR, /* write ->attr_value to the mdev's <attr_name> (after its create) */
        PLAN_ACTION_MDEV_REMOVE, /* write 1 to the mdev's remove */
        PLAN_ACTION_SET_VGPU_TYPE, /* write ->value (a type id; 0: none) to <VF>/nvidia/current_vgpu_type */
        _PLAN_ACTION_TYPE_MAX,
        _PLAN_ACTION_TYPE_INVALID = -EINVAL,
} PlanActionType;
/* "set-sriov-autoprobe", "set-numvfs", ..., "mdev-create", "mdev-set-attr", "mdev-remove", "set-vgpu-type"
 */
const char *plan_action_type_to_string(PlanActionType t);
/* True for the four mdev/vGPU actions. */
bool plan_action_type_is_mdev(PlanActionType t);
PlanActionType plan_action_type_from_string(const char *s);

typedef enum PlanVerify {
        PLAN_VERIFY_DRIVER, /* bound to exactly ->driver */
        PLAN_VERIFY_UNBOUND, /* no driver */
        PLAN_VERIFY_HOST, /* driver_override clear, not on a VFIO driver (whatever the kernel chose, or none)
                           */
        /* As DRIVER, for a function that just appeared unbound and without driver_override (the
         * reconciler's fast path; the executor does not read back an override it knows clear; the
         * full planner never emits it): pci_bus_add_device() attaches a driver only after the "add"
         * uevent (drivers/pci/bus.c), so a drivers_probe before that binds nothing, and the kernel's
         * own first probe then binds ->driver through driver_override. While the function has no
         * driver, wait for that (the executor's settle time; drivers_probe once early in the wait, in
         * case that probe came first and found no driver), then probe once more and verify; when
         * the first probe came before driver_override and bound another driver, unbind that one
         * and probe again. */
        PLAN_VERIFY_DRIVER_SETTLE,
        _PLAN_VERIFY_MAX,
        _PLAN_VERIFY_INVALID = -EINVAL,
} PlanVerify;
const char *plan_verify_to_string(PlanVerify v); /* "driver", "unbound", "host", "driver-settle" */

typedef struct PlanAction {
        PlanActionType type;
        unsigned transaction; /* 1-based; the actions of one transaction succeed or are rolled back together
                               */
        char address[PCI_ADDRESS_STRING_MAX];
        char *driver; /* SET_OVERRIDE: to write; UNBIND: the driver bound now; VERIFY/DRIVER: expected */
        PlanVerify verify; /* VERIFY only */
        uint32_t value; /* SET_NUMVFS: VF count; SET_SRIOV_AUTOPROBE: 0 or 1; SET_VGPU_TYPE: type id */
        char *reason; /* why, naming the rule ("FILE:LINE") */
        /* MDEV_*: ->address is the parent's PCI address for a PCI parent, "" otherwise; SET_VGPU_TYPE:
         * ->address is the VF. One mdev per transaction. */
        char uuid[MDEV_UUID_STRING_MAX]; /* MDEV_*: the instance; "" otherwise */
        char *parent; /* MDEV_CREATE, MDEV_REMOVE: the parent's /sys/class/mdev_bus name */
        char *mdev_type; /* MDEV_CREATE: the type id; SET_VGPU_TYPE: the type's name if known */
        char *attr_name, *attr_value; /* MDEV_SET_ATTR */
} PlanAction;

/* One function the desired state concerns, with its planned state. */
typedef struct PlanDevice {
        char address[PCI_ADDRESS_STRING_MAX];
        DeviceState state;
        char *desired_driver; /* "vfio-pci", "host", "none", a name; NULL if only SR-IOV settings apply */
        char *source; /* "FILE:LINE" of the deciding rule, or a sentence for peers/releases */
        char *reason; /* NULL when converged; else what will happen / what blocks it ("; "-joined) */
} PlanDevice;

typedef enum MdevOwner {
        MDEV_OWNER_HOSTDEVD, /* created by hostdevd, or named by UUID= in the desired state */
        MDEV_OWNER_FOREIGN, /* made by someone else: shown, never touched */
        _MDEV_OWNER_MAX,
        _MDEV_OWNER_INVALID = -EINVAL,
} MdevOwner;
const char *mdev_owner_to_string(MdevOwner o); /* "hostdevd", "foreign" */
MdevOwner mdev_owner_from_string(const char *s);

/* One mdev (or vendor vGPU) instance the plan concerns: wanted, existing, or both. */
typedef struct PlanMdev {
        char uuid[MDEV_UUID_STRING_MAX]; /* the key; "" for a vendor vGPU (then ->parent is the VF) */
        char *parent; /* parent name (mdev) or VF address (vGPU); NULL: no parent yet */
        char *type; /* the type id wanted, else the existing one; NULL if unknown */
        DeviceState state;
        MdevOwner owner;
        char *source; /* "FILE:LINE" of the rule's Type=, or NULL (not wanted) */
        char *reason; /* NULL when converged (or foreign and untouched); else what happens or blocks */
} PlanMdev;

typedef struct Plan {
        PlanAction *actions; /* in execution order: SR-IOV transactions (by PF), then driver transactions,
                              * then mdev/vGPU transactions (removals first) */
        size_t n_actions;
        unsigned n_transactions;
        PlanDevice *devices; /* sorted by address */
        size_t n_devices;
        PlanMdev *mdevs; /* sorted by (uuid, parent): vendor vGPUs ("" uuid) first, by VF */
        size_t n_mdevs;
        char **conflicts; /* copied from the resolution */
        char **sriov_released; /* PlannerInput.owned_sriov PFs that no rule claims and that need no more
                                * writes (their originals are back, or someone else set them since):
                                * the caller drops their SR-IOV record; NULL when none */
} Plan;

Plan *plan_free(Plan *p);
static inline void plan_freep(Plan **p) {
        if (*p)
                plan_free(*p);
}
const PlanDevice *plan_get_device(const Plan *p, const char *address);
/* The PlanMdev of an mdev by |uuid|, or of a vendor vGPU by its VF |address| (uuid ""). */
const PlanMdev *plan_get_mdev(const Plan *p, const char *uuid);
const PlanMdev *plan_get_vgpu(const Plan *p, const char *address);
/* True if every PlanDevice and PlanMdev is converged (and so there are no actions). */
bool plan_is_converged(const Plan *p);

/* "set-override 0000:41:00.0 vfio-pci: REASON"; new string or NULL on OOM. */
char *plan_action_to_string(const PlanAction *a);
/* "0000:41:00.0 refused: REASON" / "0000:41:00.0 converged"; new string or NULL on OOM. */
char *plan_device_to_string(const PlanDevice *d);
/* "mdev 6f1c...: converged (hostdevd, mtty/mtty-2)" / "vgpu 0000:41:00.4 pending: REASON"; NULL on OOM. */
char *plan_mdev_to_string(const PlanMdev *m);
/* The whole plan, one line each: "T1 <action>", then devices, then mdevs, then "conflict: ...". NULL on
 * OOM. */
char *plan_to_string(const Plan *p);

/* A host-critical function, found by the caller (mounts, swap, default routes, boot VGA). */
typedef struct CriticalDevice {
        const char *address;
        const char *reason; /* "controller of /", "NIC of the default route (eth0)", "boot VGA" */
} CriticalDevice;

/*
 * An SR-IOV PF whose settings hostdevd changed (state-store.h, the record's SR-IOV part). While no rule
 * claims its VF count (no [SRIOV] NumVFs= matches it), the planner gives back what hostdevd changed:
 * sriov_drivers_autoprobe first, then sriov_numvfs through 0 (sysfs-bus-pci: a new count is taken only
 * from 0), each only while it still holds what hostdevd set; the count only while no VF has a holder
 * (else blocked, naming it) and no rule claims one of its VFs.
 */
typedef struct OwnedSriov {
        const char *address;
        uint32_t original_numvfs;
        bool original_drivers_autoprobe;
        uint32_t numvfs; /* what hostdevd set last */
        bool drivers_autoprobe;
} OwnedSriov;

typedef struct PlannerInput {
        const DesiredResolution *desired;
        const PciDevice *const *devices; /* every observed function, any order */
        size_t n_devices;
        const Holder *holders;
        size_t n_holders;
        const CriticalDevice *critical;
        size_t n_critical;
        bool critical_authorized; /* the caller holds org.hostdevd1.override-critical */
        char **owned; /* strv, borrowed: functions hostdevd rebound; with no rule left they go back
                       * to the host driver (safety rule 5); may be NULL */
        const OwnedSriov *owned_sriov; /* PFs whose SR-IOV settings hostdevd changed; any order */
        size_t n_owned_sriov;

        /* Issue 14: mdevs and vendor vGPUs. All borrowed, any order; all may be NULL/0 (no mdev plan
         * beyond what in->desired->mdevs/vgpus want, which then wait for their parents). The
         * reconciler fills them from the model (model_get_mdevs(), model_get_mdev_parents()), the
         * vgpu_vf_read() of each VF, and the ownership journal; desired instances come from
         * in->desired (desired_state_resolve_mdevs()). */
        const Mdev *const *mdevs; /* every existing mdev */
        size_t n_mdevs;
        const MdevParent *const *mdev_parents; /* every /sys/class/mdev_bus entry */
        size_t n_mdev_parents;
        const VgpuVf *const *vgpu_vfs; /* every VF with an nvidia/ directory */
        size_t n_vgpu_vfs;
        char **owned_mdevs; /* strv: UUIDs of mdevs hostdevd created (journal) or adopted because a UUID=
                             * named them; with no rule left they are removed (unless held) */
        char **owned_vgpus; /* strv: VF addresses whose vGPU type hostdevd set; with no rule left it is
                             * cleared (0) unless held */
} PlannerInput;

/* Returns 0 and a new Plan, or -ENOMEM. Never fails for what it refuses: that is in the Plan. */
int planner_plan(const PlannerInput *in, Plan **ret);

/*
 * The plan for one function |d| that has just appeared (its "add" uevent; the kernel has not
 * probed it yet), unbound and without driver_override, alone in its IOMMU group or with no IOMMU
 * (the caller checks; it cannot be host-critical or held yet): one transaction of SET_OVERRIDE
 * |want|'s driver, PROBE for a VF (its first probe already ran in the sriov_numvfs write), and
 * VERIFY PLAN_VERIFY_DRIVER_SETTLE (which writes drivers_probe itself when the kernel's probe bound
 * nothing). When the override lands before the
 * kernel's first probe, that probe binds |want| itself and no host driver ever touches the function
 * (for a VF of a PF with sriov_drivers_autoprobe 0 too: pci_device_can_probe() lets the override's
 * driver probe). Only for a DRIVER_KIND_NAMED |want|: -EINVAL otherwise (host and none need no write
 * before the first probe, or the full plan). |source|: the deciding rule, for the reasons.
 * Returns 0 and a new Plan (one PlanDevice, pending), -EINVAL, or -ENOMEM.
 */
int planner_plan_new_function(const PciDevice *d, const DriverSpec *want, const char *source, Plan **ret);
