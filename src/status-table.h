/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The status table: what hostdevd publishes about each PCI function it plans for (Device.State,
 * StateReason, DesiredDriver, DesiredSource, LastError; dbus/org.hostdevd1.xml), built from the
 * planner's view (planner.h) and the executor's outcomes. Pure: no I/O, no loop; the reconciler
 * owns one and publishes what changed.
 *
 * Rules kept here:
 *   - A function whose transaction failed or got stuck is "held": not retried automatically until
 *     the desired state changes, Apply() is called, a stuck write returns, or the function is new
 *     again (status_table_release()). A plan that says "pending" for a held function keeps showing
 *     the held state and its reason.
 *   - -ESTALE (the host changed under the plan: a rebind by hand) is no failure of the function: it
 *     is retried, up to STATUS_TABLE_STALE_RETRIES times in a row, so that something else that
 *     keeps rebinding it (a udev rule, a script) is not fought forever.
 *   - A function the plan no longer concerns goes back to the defaults (converged, empty strings)
 *     but keeps its LastError, so a caller whose request was undone can still read why.
 *
 * Entries are kept sorted by address. Every change marks the function "dirty"; a function dropped
 * from the table is remembered too, so status_table_take_dirty() names every function whose
 * published values changed since its last call.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "pci-address.h"
#include "planner.h"

#define STATUS_TABLE_STALE_RETRIES 3u

typedef struct DeviceStatus {
        char address[PCI_ADDRESS_STRING_MAX];
        DeviceState state;
        char *desired_driver; /* "" when none */
        char *source;
        char *reason;
        char *last_error;
        bool hold; /* failed or stuck at this generation: not retried automatically */
        bool dirty; /* published values changed since the last status_table_take_dirty() */
        unsigned stale; /* transactions in a row that found the host changed under them (-ESTALE) */
} DeviceStatus;

typedef struct StatusTable StatusTable;

/* Returns NULL on OOM. */
StatusTable *status_table_new(void);
StatusTable *status_table_free(StatusTable *t);
static inline void status_table_freep(StatusTable **t) {
        if (*t)
                status_table_free(*t);
}

/* Whether the executor holds a write of |address| that overran its deadline (executor_is_stuck()). */
typedef bool (*StatusTableStuckFunc)(const char *address, void *userdata);

/*
 * Replace the table with |plan|'s view of its functions, keeping what the executor found (held
 * failures, stuck writes, LastError). |model| gives the functions' IOMMU groups
 * (status_table_has_group()); |is_stuck| may be NULL. Returns 0, or -ENOMEM with the table
 * unchanged.
 */
int status_table_update_from_plan(
        StatusTable *t, const Plan *plan, const Model *model, StatusTableStuckFunc is_stuck, void *userdata);

/*
 * The executor's outcome for one function: |state| with |reason| (also LastError unless
 * converged); |error| the negative errno behind a failure (-ESTALE: see above). A function not in
 * the table is added. Returns 0 or -ENOMEM.
 */
int status_table_set_outcome(
        StatusTable *t, const char *address, DeviceState state, int error, const char *reason);

/* The entry of |address| (borrowed, valid until the next change), or NULL. */
const DeviceStatus *status_table_get(const StatusTable *t, const char *address);
size_t status_table_size(const StatusTable *t);
/* The worst state of every entry (device_state_worst() order); converged when empty. */
DeviceState status_table_worst(const StatusTable *t);
/* Whether a function of IOMMU group |group| is in the table (a peer's drift concerns it). */
bool status_table_has_group(const StatusTable *t, int32_t group);

/* Whether |address| is held; release one function's hold, or every one. */
bool status_table_is_held(const StatusTable *t, const char *address);
void status_table_release(StatusTable *t, const char *address);
void status_table_release_all(StatusTable *t);
/* Append the held functions' addresses to |*l| (strv). Returns 0 or -ENOMEM. */
int status_table_list_held(const StatusTable *t, char ***l);

/* Call |f| for each function whose published values changed since the last call (in the table and
 * dirty, or dropped from it), and clear that. */
void status_table_take_dirty(StatusTable *t, void (*f)(const char *address, void *userdata), void *userdata);

/* The worst of |n| states for Manager.State: stuck > failed > refused > blocked > pending > converged. */
DeviceState device_state_worst(const DeviceState *states, size_t n);
