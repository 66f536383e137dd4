/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* org.hostdevd1.Mdev objects below /org/hostdevd1/mdevs, one per mediated device of the model. */

#include <stddef.h>
#include <systemd/sd-bus.h>

typedef struct BusContext BusContext;

#define BUS_MDEV_PROPERTIES_MAX 16

/* A change record's field bit (ModelChange.fields of an MODEL_OBJECT_MDEV change) beside the MdevField
 * bits of mdev.h: the reconciler's Owner, State or StateReason changed (reconciler.h,
 * ReconcilerHooks.mdev_status_changed). */
#define BUS_MDEV_FIELD_STATUS (1u << 16)

/* Register the fallback vtable and the node enumerator. Returns 0 or -errno (logged). */
int bus_mdev_add(BusContext *d);

/* Append every Mdev object of the model to |reply|, as bus_device_append_managed_objects(). */
int bus_mdev_append_managed_objects(BusContext *d, sd_bus_message *reply, sd_bus_error *error);

/* The Mdev properties that MdevField bits |fields| cover, NULL-terminated into |names|. Returns the count.
 */
size_t bus_mdev_property_names(unsigned fields, const char *names[static BUS_MDEV_PROPERTIES_MAX]);
