/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* org.hostdevd1.Device objects below /org/hostdevd1/devices, one per PCI function of the model. */

#include <stddef.h>
#include <systemd/sd-bus.h>

typedef struct BusContext BusContext;

/* Enough for every property of org.hostdevd1.Device, plus the NULL terminator. */
#define BUS_DEVICE_PROPERTIES_MAX 40

/* Register the fallback vtable and the node enumerator. Returns 0 or -errno (logged). */
int bus_device_add(BusContext *d);

/*
 * Append every Device object of the model to |reply|, a GetManagedObjects reply with its
 * "a{oa{sa{sv}}}" open (bus_append_managed_object()); called from a callback whose slot's userdata
 * is |d|. Returns 0 or -errno.
 */
int bus_device_append_managed_objects(BusContext *d, sd_bus_message *reply, sd_bus_error *error);

/*
 * The Device properties that PciDeviceField bits |fields| cover, as a
 * NULL-terminated list into |names| (static strings; BUS_DEVICE_PROPERTIES_MAX
 * slots). Returns the number of names.
 */
size_t bus_device_property_names(unsigned fields, const char *names[static BUS_DEVICE_PROPERTIES_MAX]);
