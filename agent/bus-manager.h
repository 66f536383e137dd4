/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* org.hostdevd1.Manager and the ObjectManager at /org/hostdevd1. */

typedef struct BusContext BusContext;

/* Register the Manager vtable and the ObjectManager on d->bus. Returns 0 or -errno (logged). */
int bus_manager_add(BusContext *d);

/* At stop, before the reconciler goes: answer (org.hostdevd1.Error.Failed) and free the method calls
 * that wait for their function or for the bus to confirm their caller; running ones are answered
 * when the reconciler cancels what they wait for. */
void bus_manager_cancel_requests(BusContext *d);
