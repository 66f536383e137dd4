/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Coalesced bus signals for model changes.
 *
 * Model updates append ModelChange records here; one sd-event defer source,
 * enabled only while something is pending (no idle wakeups), flushes them
 * once per loop iteration, after the uevent queue was drained. Several
 * changes to one object in one iteration become one signal:
 *   added ... changed          -> InterfacesAdded (with the current values)
 *   changed + changed          -> one PropertiesChanged, union of the fields
 *   added ... removed          -> nothing (nobody saw it; for an mdev parent,
 *                                 not even Manager.MdevTypes)
 *   removed ... added          -> InterfacesRemoved, then InterfacesAdded
 *   ... removed                -> InterfacesRemoved
 * Objects are announced in the order of their first change. Manager
 * properties (DeviceCount, MdevCount, IommuEnabled, IommuReason, MdevTypes,
 * Rescans) are compared with what was last announced and PropertiesChanged
 * names only those that differ.
 *
 * The one publisher: no other file emits signals. The reconciler's published
 * state reaches clients through here too (bus_emitter_queue_status(),
 * bus_emitter_queue_manager_status(), wired by daemon.c): in the same flush,
 * after the model's signals, so a client learns of a function before its State
 * changes, and the Manager's model and status properties share one
 * PropertiesChanged.
 */

#include <stddef.h>

#include "model.h"

typedef struct BusContext BusContext;
typedef struct BusEmitter BusEmitter;

/* Creates the (disabled) defer source on d->event. Returns 0 or -errno. */
int bus_emitter_new(BusContext *d, BusEmitter **ret);
BusEmitter *bus_emitter_free(BusEmitter *e);
static inline void bus_emitter_freep(BusEmitter **e) {
        if (*e)
                bus_emitter_free(*e);
}

/* Record the Manager values clients saw at export time, as the baseline for later comparisons. */
int bus_emitter_snapshot(BusEmitter *e);

/* Queue |n| changes (copied) and schedule a flush. Returns 0 or -ENOMEM. */
int bus_emitter_queue(BusEmitter *e, const ModelChange *changes, size_t n);

/* A Manager value may have changed outside the model (Rescans): schedule a flush. */
int bus_emitter_manager_changed(BusEmitter *e);

/* The reconciler's status properties of the function at |address| (DesiredDriver, DesiredSource,
 * State, StateReason, LastError) changed: one PropertiesChanged in the next flush, if the function
 * still exists then. Returns 0 or -ENOMEM. */
int bus_emitter_queue_status(BusEmitter *e, const char *address);
/* Manager properties the reconciler owns (|names|, strv: "State", "Generation", "ConfigErrors")
 * changed: named in the next flush's Manager PropertiesChanged. Returns 0 or -ENOMEM. */
int bus_emitter_queue_manager_status(BusEmitter *e, char *const *names);

/* A Lease object (bus-lease.c) appeared, changed its State, or is about to go (still findable):
 * InterfacesAdded, PropertiesChanged, InterfacesRemoved, sent at once. Returns 0 or -errno. */
int bus_emitter_lease_added(BusEmitter *e, const char *path);
int bus_emitter_lease_changed(BusEmitter *e, const char *path);
int bus_emitter_lease_removed(BusEmitter *e, const char *path);
/* Emit everything pending now. Returns the number of signals sent, or -errno. */
int bus_emitter_flush(BusEmitter *e);
