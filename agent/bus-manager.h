/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* org.hostdevd1.Manager and the ObjectManager at /org/hostdevd1. */

typedef struct BusContext BusContext;

/* Register the Manager vtable and the ObjectManager on d->bus. Returns 0 or -errno (logged). */
int bus_manager_add(BusContext *d);
