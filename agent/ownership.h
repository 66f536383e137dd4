/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The ownership journal: the daemon's one handle on the ownership records (state-store.h, safety rule 5
 * in hostdevd(8)) and the executor's journal hook (executor.h, ExecutorJournalFunc) that writes them.
 *
 * It owns the store and the lock that guards it: the executor's lanes call ownership_journal() for
 * BEGIN (record the originals before any sysfs write) and END (commit, or drop what a rollback
 * gave back), possibly two lanes at once, while the loop thread asks what is owned when it plans.
 * Every function here takes the lock; nothing else in the daemon touches the store, so the
 * reconciler runs on the loop thread only and needs no lock of its own.
 *
 * A store that does not load (corrupt, unreadable) leaves the journal unusable: ownership_usable()
 * is false, ownership_error() says why, and every BEGIN fails with -EUCLEAN so that nothing is
 * mutated until the file is repaired or removed.
 */

#include <stdbool.h>

#include "executor.h"
#include "planner.h"

typedef struct Ownership Ownership;

/* Load the records from |state_dir| (copied). Returns 0 (check ownership_usable()) or -ENOMEM. */
int ownership_new(const char *state_dir, Ownership **ret);
Ownership *ownership_free(Ownership *o);
static inline void ownership_freep(Ownership **o) {
        if (*o)
                ownership_free(*o);
}

bool ownership_usable(Ownership *o);
/* Why the records could not be loaded ("PATH: reason"), borrowed; NULL when usable. */
const char *ownership_error(Ownership *o);

/* Whether any function is recorded. */
bool ownership_any(Ownership *o);
/* The addresses of every recorded function (new strv, sorted; NULL when none). Returns 0 or -ENOMEM. */
int ownership_list_owned(Ownership *o, char ***ret);
/* Drop |address|'s record: hostdevd no longer owns it (it is back as it was). Returns 0, -ENOENT
 * (not recorded, or the journal is unusable), -errno from writing. */
int ownership_forget(Ownership *o, const char *address);
/* The PFs whose SR-IOV settings hostdevd changed (PlannerInput.owned_sriov): a new array whose addresses
 * point into *ret_strings (a new strv, sorted), both NULL when none. Returns 0 or -ENOMEM. */
int ownership_list_sriov(Ownership *o, OwnedSriov **ret, size_t *ret_n, char ***ret_strings);
/* Whether |address| has an SR-IOV record. */
bool ownership_has_sriov(Ownership *o, const char *address);
/* Drop only the SR-IOV part of |address|'s record (state_store_forget_sriov()). 0, -ENOENT, -errno. */
int ownership_forget_sriov(Ownership *o, const char *address);
/* Record |address| as hostdevd's with no driver and no driver_override before it, and |driver| written
 * to its driver_override: the early-bind thread's write (executor-early.h), recorded on the loop after
 * the fact, or found in its intent file after a crash. Returns 1 recorded, 0 already recorded,
 * -EUCLEAN (the records are unusable), -errno from writing them. */
int ownership_adopt_override(Ownership *o, const char *address, const char *driver);
/* Log each transaction a crash interrupted (at start; the plan re-plans those functions). */
void ownership_log_interrupted(Ownership *o);

/* ---- mdevs and vendor vGPUs (issue 14; mdev-owned.h: owned-mdevs.json) ---------------------- */

/* Whether the mdev records loaded (when not, every mdev transaction's BEGIN fails with -EUCLEAN). */
bool ownership_mdevs_usable(Ownership *o);
/* The UUIDs of the mdevs hostdevd owns, or with |vgpu| the VFs whose vGPU type it set (new strv,
 * sorted; NULL when none): PlannerInput.owned_mdevs / owned_vgpus. Returns 0 or -ENOMEM. */
int ownership_list_owned_mdevs(Ownership *o, bool vgpu, char ***ret);
/* Record an mdev that a UUID= rule named and the plan adopted (no write), so that it is removed when
 * no rule wants it any more. Returns 1 recorded, 0 already, -EUCLEAN (records unusable), -errno. */
int ownership_adopt_mdev(Ownership *o, const char *uuid, const char *parent, const char *type);

/* The executor's journal hook (ExecutorJournalFunc), |userdata| the Ownership. Thread-safe. */
int ownership_journal(const ExecutorJournal *j, void *userdata);
