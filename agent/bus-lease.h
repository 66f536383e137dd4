/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Leases on the bus (dbus/org.hostdevd1.xml): Manager.Acquire, the org.hostdevd1.Lease objects at
 * /org/hostdevd1/leases/lease_<id> (fallback vtable + node enumerator, so the ObjectManager lists them)
 * and Lease.Release. Acquire and Release run as requests (bus-request.h): polkit
 * org.hostdevd1.acquire with the details "devices" and "vmm.pid", then the lease manager
 * (lease-manager.h) acts and the reply follows.
 */

#include "bus-context.h"
#include "pci-address.h"

struct Request;

/* Append every Lease object to |reply|, as bus_device_append_managed_objects() (bus-manager.c's
 * GetManagedObjects). */
int bus_lease_append_managed_objects(BusContext *d, sd_bus_message *reply, sd_bus_error *error);
/* Register the Lease vtable and enumerator on d->bus. Returns 0 or -errno (logged). */
int bus_lease_add(BusContext *d);

/* The Manager.Acquire handler (in the Manager's vtable, bus-manager.c). */
int bus_lease_method_acquire(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Request.execute of ACQUIRE and RELEASE: the authorized request runs; replies and frees |q| (now or
 * later). */
void bus_lease_execute(struct Request *q);

/* 0 if no lease holds |address|; else -EBUSY with |error| (Error.Blocked) naming the lease and its owner:
 * SetDeviceDriver and ResetDeviceDriver leave a leased function alone (its lease's declaration would
 * mask theirs, and the planner protects it anyway). */
int bus_lease_check_not_leased(BusContext *d, const char *address, sd_bus_error *error);
/* The same for mdev |uuid| (lowercase): RemoveMdev leaves an instance a lease holds alone. */
int bus_lease_check_mdev_not_leased(BusContext *d, const char *uuid, sd_bus_error *error);
