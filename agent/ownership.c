/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The ownership journal (ownership.h): the ownership records behind one lock. */

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"
#include "mdev-owned.h"
#include "names.h"
#include "ownership.h"
#include "state-store.h"
#include "strv.h"

struct Ownership {
        pthread_mutex_t lock;
        StateStore *store; /* NULL when it could not be loaded: then nothing is mutated */
        char *error;
        MdevOwned *mdevs; /* issue 14; NULL when it could not be loaded: no mdev is touched */
        char *mdevs_error;
};

/* The journal hook's record of one transaction, from BEGIN to END (ExecutorJournal.state). */
typedef struct JournalTx {
        uint64_t transaction; /* the store's id */
        bool *was_owned; /* per ExecutorJournal.devices: in the store before BEGIN */
        size_t n_was_owned;
} JournalTx;

static void journal_tx_free(JournalTx *t) {
        if (t) {
                free(t->was_owned);
                free(t);
        }
}

/* The state store logs nothing above debug (src/): what went wrong without failing, as warnings.
 * Under the lock. */
static void log_store_warnings(Ownership *o) {
        _cleanup_strv_free_ char **w = o->store ? state_store_take_warnings(o->store) : NULL;

        STRV_FOREACH (m, w)
                log_warning("%s", *m);
}

int ownership_new(const char *state_dir, Ownership **ret) {
        Ownership *o;
        int k;

        assert(state_dir);
        assert(ret);

        o = calloc(1, sizeof(Ownership));
        if (!o)
                return -ENOMEM;
        pthread_mutex_init(&o->lock, NULL);

        k = state_store_load(state_dir, &o->store, &o->error);
        if (k == -ENOMEM) {
                ownership_free(o);
                return k;
        }
        if (k < 0) {
                if (!o->error &&
                    asprintf(&o->error, "%s/%s: %s", state_dir, HOSTDEVD_STATE_FILE, strerror(-k)) < 0)
                        o->error = NULL;
                log_error(
                        "Cannot load the ownership records: %s. hostdevd will plan but change nothing "
                        "until the file is repaired or removed.",
                        strna(o->error));
                o->store = NULL;
        } else {
                free(o->error);
                o->error = NULL;
                log_store_warnings(o);
        }

        k = mdev_owned_load(state_dir, &o->mdevs, &o->mdevs_error);
        if (k == -ENOMEM) {
                ownership_free(o);
                return k;
        }
        if (k < 0) {
                log_error(
                        "Cannot load the mdev ownership records: %s. hostdevd will create and remove no mdev "
                        "until the file is repaired or removed.",
                        strna(o->mdevs_error));
                o->mdevs = NULL;
        }
        *ret = o;
        return 0;
}

Ownership *ownership_free(Ownership *o) {
        if (!o)
                return NULL;
        state_store_free(o->store);
        free(o->error);
        mdev_owned_free(o->mdevs);
        free(o->mdevs_error);
        pthread_mutex_destroy(&o->lock);
        free(o);
        return NULL;
}

bool ownership_usable(Ownership *o) {
        bool usable;

        if (!o)
                return false;
        pthread_mutex_lock(&o->lock);
        usable = o->store;
        pthread_mutex_unlock(&o->lock);
        return usable;
}

const char *ownership_error(Ownership *o) {
        /* Set once by ownership_new(), never changed: no lock needed. */
        return o ? o->error : NULL;
}

bool ownership_any(Ownership *o) {
        size_t n = 0;
        bool any;

        if (!o)
                return false;
        pthread_mutex_lock(&o->lock);
        any = o->store && state_store_get_devices(o->store, &n) && n > 0;
        pthread_mutex_unlock(&o->lock);
        return any;
}

int ownership_list_owned(Ownership *o, char ***ret) {
        int k;

        assert(ret);

        *ret = NULL;
        if (!o)
                return 0;
        pthread_mutex_lock(&o->lock);
        k = o->store ? state_store_list_owned(o->store, ret) : 0;
        pthread_mutex_unlock(&o->lock);
        return k;
}

int ownership_forget(Ownership *o, const char *address) {
        int k;

        if (!o)
                return -ENOENT;
        pthread_mutex_lock(&o->lock);
        k = o->store ? state_store_forget(o->store, address) : -ENOENT;
        log_store_warnings(o);
        pthread_mutex_unlock(&o->lock);
        return k;
}

int ownership_list_sriov(Ownership *o, OwnedSriov **ret, size_t *ret_n, char ***ret_strings) {
        _cleanup_strv_free_ char **strings = NULL;
        _cleanup_free_ OwnedSriov *list = NULL;
        const OwnedDevice *devices;
        size_t n = 0, k = 0;
        int r = 0;

        assert(ret && ret_n && ret_strings);

        *ret = NULL;
        *ret_n = 0;
        *ret_strings = NULL;
        if (!o)
                return 0;
        pthread_mutex_lock(&o->lock);
        devices = o->store ? state_store_get_devices(o->store, &n) : NULL;
        for (size_t i = 0; i < n && r >= 0; i++)
                if (devices[i].has_sriov)
                        r = strv_extend(&strings, devices[i].address);
        if (r >= 0 && strings) {
                list = calloc(strv_length(strings), sizeof(OwnedSriov));
                if (!list)
                        r = -ENOMEM;
        }
        for (size_t i = 0; i < n && r >= 0 && list; i++)
                if (devices[i].has_sriov) {
                        list[k] = (OwnedSriov){
                                .address = strings[k],
                                .original_numvfs = devices[i].original_sriov_numvfs,
                                .original_drivers_autoprobe = devices[i].original_sriov_drivers_autoprobe,
                                .numvfs = devices[i].sriov_numvfs,
                                .drivers_autoprobe = devices[i].sriov_drivers_autoprobe,
                        };
                        k++;
                }
        pthread_mutex_unlock(&o->lock);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(list);
        *ret_n = k;
        *ret_strings = TAKE_PTR(strings);
        return 0;
}

bool ownership_has_sriov(Ownership *o, const char *address) {
        const OwnedDevice *d;
        bool has;

        if (!o)
                return false;
        pthread_mutex_lock(&o->lock);
        d = o->store ? state_store_get(o->store, address) : NULL;
        has = d && d->has_sriov;
        pthread_mutex_unlock(&o->lock);
        return has;
}

int ownership_forget_sriov(Ownership *o, const char *address) {
        int k;

        if (!o)
                return -ENOENT;
        pthread_mutex_lock(&o->lock);
        k = o->store ? state_store_forget_sriov(o->store, address) : -ENOENT;
        log_store_warnings(o);
        pthread_mutex_unlock(&o->lock);
        return k;
}

void ownership_log_interrupted(Ownership *o) {
        _cleanup_free_ const OwnedDevice **devices = NULL;
        size_t n = 0;

        if (!o)
                return;
        pthread_mutex_lock(&o->lock);
        if (o->store && state_store_list_interrupted(o->store, &devices, &n) >= 0)
                for (size_t i = 0; i < n; i++)
                        log_warning(
                                "PCI function %s: transaction %" PRIu64
                                " was interrupted (before it: driver %s, driver_override %s); re-planning it",
                                devices[i]->address, devices[i]->transaction,
                                strna(devices[i]->previous_driver),
                                strna(devices[i]->previous_driver_override));
        pthread_mutex_unlock(&o->lock);
}

/* Issue 14: an mdev/vGPU transaction. BEGIN records what it creates before the write; END CONVERGED
 * forgets what it removed. A failed or stuck one keeps its record: an owned instance that does not
 * exist is harmless, an unrecorded one that does would be an orphan. Under the lock. */
static int journal_mdev(Ownership *o, const ExecutorJournal *j) {
        const ExecutorJournalMdev *m = &j->mdevs[0];
        bool vgpu = !m->uuid || !*m->uuid;
        const char *key = vgpu ? m->parent : m->uuid;
        int k = 0;

        if (!o->mdevs)
                return j->phase == EXECUTOR_JOURNAL_BEGIN ? -EUCLEAN : 0;
        if (j->phase == EXECUTOR_JOURNAL_BEGIN && m->create) {
                k = mdev_owned_add(o->mdevs, vgpu, key, vgpu ? NULL : m->parent, m->type);
                if (k < 0)
                        log_error_errno(
                                k, "Failed to record %s %s as hostdevd's: %m; not creating it",
                                vgpu ? "the vGPU of" : "mdev", key);
        } else if (j->phase == EXECUTOR_JOURNAL_END && m->remove && j->outcome == DEVICE_STATE_CONVERGED) {
                k = mdev_owned_forget(o->mdevs, vgpu, key);
                if (k < 0)
                        log_warning_errno(
                                k, "Failed to drop %s %s from the mdev ownership records: %m",
                                vgpu ? "the vGPU of" : "mdev", key);
        }
        return k < 0 ? k : 0;
}

int ownership_list_owned_mdevs(Ownership *o, bool vgpu, char ***ret) {
        int k;

        assert(ret);
        *ret = NULL;
        if (!o)
                return 0;
        pthread_mutex_lock(&o->lock);
        k = o->mdevs ? mdev_owned_list(o->mdevs, vgpu, ret) : 0;
        pthread_mutex_unlock(&o->lock);
        return k;
}

int ownership_adopt_mdev(Ownership *o, const char *uuid, const char *parent, const char *type) {
        int k;

        if (!o)
                return -ENOENT;
        pthread_mutex_lock(&o->lock);
        k = o->mdevs ? mdev_owned_add(o->mdevs, false, uuid, parent, type) : -EUCLEAN;
        pthread_mutex_unlock(&o->lock);
        return k;
}

bool ownership_mdevs_usable(Ownership *o) {
        bool usable;

        if (!o)
                return false;
        pthread_mutex_lock(&o->lock);
        usable = o->mdevs;
        pthread_mutex_unlock(&o->lock);
        return usable;
}

int ownership_adopt_override(Ownership *o, const char *address, const char *driver) {
        uint64_t transaction;
        int k;

        assert(o);
        assert(address);
        assert(driver);

        pthread_mutex_lock(&o->lock);
        if (!o->store)
                k = -EUCLEAN;
        else if (state_store_get(o->store, address))
                k = 0;
        else {
                /* A new function had neither before the thread wrote the override. */
                OwnedChange c = {
                        .address = address,
                        .driver_override = driver,
                        .driver = driver,
                };

                k = state_store_begin(o->store, &c, 1, &transaction);
                if (k >= 0)
                        k = state_store_commit(o->store, transaction);
                if (k >= 0)
                        k = 1;
        }
        log_store_warnings(o);
        pthread_mutex_unlock(&o->lock);
        return k;
}

/* BEGIN: record the originals of every function of the transaction before any write. Under the lock. */
static int journal_begin(Ownership *o, const ExecutorJournal *j) {
        _cleanup_free_ OwnedChange *changes = NULL;
        JournalTx *t;
        int k;

        if (!o->store)
                return -EUCLEAN; /* the ownership records are unknown: mutate nothing */
        changes = calloc(j->n_devices ?: 1, sizeof(OwnedChange));
        t = calloc(1, sizeof(JournalTx));
        if (t)
                t->was_owned = calloc(j->n_devices ?: 1, sizeof(bool));
        if (!changes || !t || !t->was_owned) {
                journal_tx_free(t);
                return -ENOMEM;
        }
        t->n_was_owned = j->n_devices;
        for (size_t i = 0; i < j->n_devices; i++) {
                const ExecutorJournalDevice *jd = &j->devices[i];

                t->was_owned[i] = state_store_get(o->store, jd->address) != NULL;
                changes[i] = (OwnedChange){
                        .address = jd->address,
                        .driver_now = jd->driver,
                        .driver_override_now = jd->driver_override,
                        .driver_override =
                                jd->has_target_override ? jd->target_override : jd->driver_override,
                        .driver = jd->has_target_driver ? jd->target_driver : jd->driver,
                        .sriov = jd->sriov,
                        .sriov_numvfs_now = jd->sriov_numvfs,
                        .sriov_drivers_autoprobe_now = jd->sriov_drivers_autoprobe,
                        .writes_sriov_numvfs = jd->writes_sriov_numvfs,
                        .sriov_numvfs = jd->target_sriov_numvfs,
                        .writes_sriov_drivers_autoprobe = jd->writes_sriov_drivers_autoprobe,
                        .sriov_drivers_autoprobe = jd->target_sriov_drivers_autoprobe,
                };
        }
        k = state_store_begin(o->store, changes, j->n_devices, &t->transaction);
        if (k < 0) {
                log_error_errno(
                        k, "Failed to record the originals in %s: %m; not touching the devices",
                        state_store_path(o->store));
                journal_tx_free(t);
                return k;
        }
        *j->state = t;
        return 0;
}

/* END: commit, and drop the records of what is no longer ours. Under the lock. */
static int journal_end(Ownership *o, const ExecutorJournal *j) {
        JournalTx *t = *j->state;
        int k = 0;

        *j->state = NULL;
        if (!o->store || !t) {
                journal_tx_free(t);
                return 0;
        }
        switch (j->outcome) {
        case DEVICE_STATE_CONVERGED:
                k = state_store_commit(o->store, t->transaction);
                for (size_t i = 0; k >= 0 && i < j->n_devices; i++)
                        if (j->devices[i].release)
                                (void)state_store_forget(o->store, j->devices[i].address);
                break;
        case DEVICE_STATE_FAILED:
                /* Rolled back: what was not ours before is not ours now. */
                k = state_store_commit(o->store, t->transaction);
                for (size_t i = 0; i < j->n_devices && i < t->n_was_owned; i++)
                        if (!t->was_owned[i])
                                (void)state_store_forget(o->store, j->devices[i].address);
                break;
        default:
                /* Stuck: keep the begun record; the next start finishes or rolls back. */
                break;
        }
        if (k < 0)
                log_warning_errno(k, "Failed to update %s: %m", state_store_path(o->store));
        journal_tx_free(t);
        return k;
}

int ownership_journal(const ExecutorJournal *j, void *userdata) {
        Ownership *o = userdata;
        int k;

        assert(j);
        assert(o);

        pthread_mutex_lock(&o->lock);
        if (j->n_mdevs > 0)
                k = journal_mdev(o, j);
        else
                k = j->phase == EXECUTOR_JOURNAL_BEGIN ? journal_begin(o, j) : journal_end(o, j);
        log_store_warnings(o);
        pthread_mutex_unlock(&o->lock);
        return k;
}
