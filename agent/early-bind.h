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

#include "critical.h"
#include "desired-state.h"
#include "model.h"
#include "planner.h"

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
