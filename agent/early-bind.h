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
 * Threading: the loop thread (it reads the model).
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
         * not create: driver_override is written on the kernel's "add" uevent, which races the
         * kernel's first probe (won on an idle host, lost at times on a busy one); a lost race is
         * taken from the host driver in one transaction. */
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
