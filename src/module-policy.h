/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Which kernel modules a request may make hostdevd load without org.hostdevd1.load-module (issue 17).
 *
 * SetDeviceDriver names a driver; when it is not registered, the executor loads the module of that
 * name (agent/module-loader.h). Loading an arbitrary module on request is an escalation path, so a
 * caller that is not root, or lacks the separate polkit action org.hostdevd1.load-module, may only
 * name a driver that is meant for the function:
 *   - vfio-pci itself;
 *   - a module one of whose aliases matches the function's modalias: its PCI driver ("pci:v...",
 *     the kernel's MODULE_DEVICE_TABLE(pci, ...)) or a VFIO variant driver for it ("vfio_pci:v...",
 *     PCI_DRIVER_OVERRIDE_DEVICE_VFIO in include/linux/mod_devicetable.h, written by
 *     scripts/mod/file2alias.c).
 * The module index answers both questions (agent/module-index.h); the decision here is pure.
 * Desired-state files are root's and are not limited: the check runs when a request is made, before
 * its file is written, so a request file only ever names a module that passed.
 */

#include <stdbool.h>

#include "pci-device.h"

/* Modalias prefixes: drivers/pci/pci-driver.c pci_uevent() MODALIAS=, and VFIO variant drivers. */
#define PCI_MODALIAS_PREFIX "pci"
#define VFIO_PCI_MODALIAS_PREFIX "vfio_pci"
/* "vfio_pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X" and its NUL */
#define PCI_MODALIAS_STRING_MAX 59

/*
 * The modalias of function |d| with |prefix| (PCI_MODALIAS_PREFIX or VFIO_PCI_MODALIAS_PREFIX), as the
 * kernel prints it (drivers/pci/pci-sysfs.c modalias_show(), pci_uevent()): vendor, device, subsystem
 * vendor and device as 8 upper-case hex digits, then base class, subclass and programming interface
 * as 2 each: "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00". |prefix| at most 8 characters.
 */
void module_policy_format_modalias(
        const char *prefix, const PciDevice *d, char ret[static PCI_MODALIAS_STRING_MAX]);

typedef enum ModuleVerdict {
        MODULE_VERDICT_VFIO_PCI, /* the driver is vfio-pci: allowed */
        MODULE_VERDICT_MATCHES, /* every module of that name matches the function: allowed */
        MODULE_VERDICT_NOT_FOUND, /* no module of that name in the index: nothing shows it is meant for the
                                     function */
        MODULE_VERDICT_NO_MATCH, /* a module of that name carries no alias matching the function */
        _MODULE_VERDICT_MAX,
} ModuleVerdict;

/*
 * The verdict on a request for driver |driver| (a name: not "host" or "none"). |modules|: the names of
 * the modules the loader would find for |driver| (the module index's lookup of the driver name, as
 * module_loader_load_driver() makes it); |matching|: the names of the modules whose aliases match the
 * function's PCI or VFIO modalias. Either may be NULL (empty). Names compare with '-' and '_' alike,
 * as kmod and the kernel treat them. vfio-pci is allowed whatever the index says.
 */
ModuleVerdict module_policy_decide(const char *driver, char *const *modules, char *const *matching);

/* Whether |v| lets the request go on without org.hostdevd1.load-module. */
bool module_verdict_allowed(ModuleVerdict v);

/* Why, as a phrase for an error message ("it is not vfio-pci and no module of that name is known"). */
const char *module_verdict_to_string(ModuleVerdict v);
