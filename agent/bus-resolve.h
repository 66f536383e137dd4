/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The one resolver of every method that takes a device (SetDeviceDriver, ResetDeviceDriver,
 * SetNumVFs, GetDeviceByName, Acquire): a PCI address, a device name or a Device object path.
 */

#include <systemd/sd-bus.h>

#include "bus-context.h"
#include "pci-address.h"

/*
 * The canonical address of an existing PCI function named by |s|, which is a PCI address (any form
 * pci_address_from_string() takes), a Device object path (/org/hostdevd1/devices/pci_...), or a device
 * name ([Device] Name=, hostdevd.conf(5)). Returns 0, or a negative errno with |error| set naming the
 * value: -EINVAL (none of the three; a name whose [Match] matches several functions), -ENOENT (no such
 * function or name; a name that matches no function now).
 */
int bus_resolve_device(
        BusContext *d, const char *s, char ret[static PCI_ADDRESS_STRING_MAX], sd_bus_error *error);
