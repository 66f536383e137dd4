/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* org.hostdevd1.Manager and the ObjectManager at /org/hostdevd1. */

#include <systemd/sd-bus.h>

#include "pci-address.h"

typedef struct BusContext BusContext;

/* Register the Manager vtable and the ObjectManager on d->bus. Returns 0 or -errno (logged). */
int bus_manager_add(BusContext *d);

/*
 * The one resolver of every method that takes a device: the canonical address of an existing PCI
 * function named by |s|, which is a PCI address (any form pci_address_from_string() takes), a Device
 * object path (/org/hostdevd1/devices/pci_...), or a device name ([Device] Name=, hostdevd.conf(5)).
 * Returns 0, or a negative errno with |error| set naming the value: -EINVAL (none of the three),
 * -ENOENT (no such function or name; a name that matches no function now), -ENOTUNIQ (a name whose
 * [Match] matches several functions: InvalidArgument).
 */
int bus_resolve_device(
        BusContext *d, const char *s, char ret[static PCI_ADDRESS_STRING_MAX], sd_bus_error *error);
