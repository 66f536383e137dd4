/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The executor's mdev and vendor vGPU protocol (executor.h, "Mdev and vendor vGPU transactions"):
 * one instance per transaction, on a lane, every access through the lane's I/O worker
 * (runner_io()) but the lstat/readlink of links, which take no device lock (kernfs only).
 * No write here may skip the worker to save its two thread switches: a type's create
 * (mdev_device_create(), drivers/vfio/mdev/mdev_core.c) adds the device and so runs the mdev
 * driver's probe, an mdev's remove its remove, and the attributes and current_vgpu_type are the
 * vendor driver's own stores; each can sleep in a driver for as long as a PCI unbind.
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor-internal.h"
#include "executor.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "strv.h"
#include "sysfs.h"

/* MDEV_CREATE's wait for the mdev_type link: first poll after this, doubling up to the max. */
#define MDEV_SETTLE_POLL_FIRST_USEC (1000ULL)
#define MDEV_SETTLE_POLL_MAX_USEC (32 * 1000ULL)

typedef struct MdevTx {
        Executor *e;
        Lane *lane;
        Job *job;
        unsigned number;
        const JobAction *actions;
        size_t n_actions;

        bool vgpu;
        const char *uuid; /* "" for a vGPU */
        const char *parent; /* the parent's name; a vGPU's VF */
        char key[PCI_ADDRESS_STRING_MAX]; /* the stuck list's key: the parent (truncated) or the VF */
        char *mdev_dir; /* ROOT/sys/bus/mdev/devices/<uuid> */
        char *vgpu_path; /* ROOT/sys/bus/pci/devices/<VF>/nvidia/current_vgpu_type */
        char *create_type; /* the type id of its MDEV_CREATE, NULL if none */

        /* A type change (MDEV_REMOVE, then MDEV_CREATE of the same UUID): the old instance, to
         * create again if the new one cannot be made. */
        const JobAction *removed; /* its MDEV_REMOVE, once that succeeded (parent, type: the old ones) */
        char **old_attrs; /* strv NAME, VALUE, ...: the values the transaction's attributes had before */
        char *restored; /* "the old mdev ... created again", for the reason */

        /* originals and what was attempted */
        bool existed;
        uint32_t vgpu_original;
        bool create_written, vgpu_written;

        /* outcome */
        bool failed, stuck;
        int error;
        char *reason;
        char *rollback;
        void *journal_state;
} MdevTx;

_printf_(3, 4) static void mtx_fail(MdevTx *t, int error, const char *format, ...) {
        va_list ap;

        if (t->failed)
                return;
        t->failed = true;
        t->error = error;
        va_start(ap, format);
        if (vasprintf(&t->reason, format, ap) < 0)
                t->reason = NULL;
        va_end(ap);
}

_printf_(2, 3) static void mtx_rollback_note(MdevTx *t, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        char *j;
        int k;

        va_start(ap, format);
        k = vasprintf(&msg, format, ap);
        va_end(ap);
        if (k < 0)
                return;
        if (asprintf(&j, "%s%s%s", strempty(t->rollback), t->rollback ? "; " : "", msg) < 0)
                return;
        free(t->rollback);
        t->rollback = j;
}

static char *strjoin_path(const char *dir, const char *name) {
        char *p;
        return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* One access; a failed write or a deadline overrun marks the transaction failed (stuck). */
static int mtx_io(MdevTx *t, IoOp op, const char *path, const char *value, char **ret_result) {
        _cleanup_free_ char *message = NULL;
        bool stuck = false;
        int r;

        r = runner_io(t->lane, t->key, op, path, value, ret_result, &message, &stuck);
        if (stuck) {
                t->stuck = true;
                mtx_fail(t, -ETIMEDOUT, "%s", message ?: "a sysfs access overran its deadline");
                return r;
        }
        if (r < 0 && op == IO_WRITE)
                mtx_fail(t, r, "%s", message ?: "a sysfs write failed");
        return r;
}

static bool mdev_exists(const MdevTx *t) {
        struct stat st;
        return lstat(t->mdev_dir, &st) >= 0;
}

/* MDEV_CREATE: the mdev_type link, once it is there, must name |type|. */
static int mtx_verify_created(MdevTx *t, const char *type) {
        uint64_t settle = t->e->settle_usec < t->e->timeout_usec ? t->e->settle_usec : t->e->timeout_usec;
        uint64_t until = now_usec() + settle, poll = MDEV_SETTLE_POLL_FIRST_USEC;
        _cleanup_free_ char *now = NULL;
        int r;

        for (;;) {
                r = sysfs_read_link_basename(t->mdev_dir, SYSFS_ATTR_MDEV_TYPE, &now);
                if (r != -ENOENT || now_usec() >= until)
                        break;
                /* The kernel adds the device (and its uevent) before the type link shows up on some
                 * versions; only the link says which type it is. */
                (void)usleep((useconds_t)poll);
                poll = poll * 2 < MDEV_SETTLE_POLL_MAX_USEC ? poll * 2 : MDEV_SETTLE_POLL_MAX_USEC;
        }
        if (r == -ENOENT) {
                mtx_fail(
                        t, -ENODEV,
                        "wrote %s to %s's type %s, but %s/%s did not appear within %" PRIu64 " ms", t->uuid,
                        t->parent, type, t->mdev_dir, SYSFS_ATTR_MDEV_TYPE, settle / 1000);
                return -ENODEV;
        }
        if (r < 0) {
                mtx_fail(
                        t, r, "Failed to read %s/%s: %s", t->mdev_dir, SYSFS_ATTR_MDEV_TYPE,
                        strerrordesc_np(-r) ?: "?");
                return r;
        }
        if (!streq(now, type)) {
                mtx_fail(t, -EIO, "mdev %s was created with type %s, expected %s", t->uuid, now, type);
                return -EIO;
        }
        return 0;
}

static int mtx_create(MdevTx *t, const JobAction *a) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(
                    &path, "%s%s/%s/%s/%s/%s", t->e->root, SYSFS_MDEV_BUS_CLASS, a->parent,
                    SYSFS_ATTR_MDEV_SUPPORTED_TYPES, a->mdev_type, SYSFS_ATTR_MDEV_CREATE) < 0)
                return -ENOMEM;
        if (mdev_exists(t)) {
                mtx_fail(
                        t, -EEXIST, "mdev %s exists already (%s): not creating it again (re-plan)", t->uuid,
                        t->mdev_dir);
                return -EEXIST;
        }
        t->create_written = true;
        r = mtx_io(t, IO_WRITE, path, t->uuid, NULL);
        if (r < 0)
                return r;
        return mtx_verify_created(t, a->mdev_type);
}

static bool mtx_creates(const MdevTx *t) {
        for (size_t i = 0; i < t->n_actions; i++)
                if (t->actions[i].type == PLAN_ACTION_MDEV_CREATE)
                        return true;
        return false;
}

/* Before a type change removes the old instance: what the attributes this transaction sets read now
 * (those that can be read), to write back if the old instance must be created again. */
static int mtx_save_old_attrs(MdevTx *t) {
        for (size_t i = 0; i < t->n_actions; i++) {
                const JobAction *a = &t->actions[i];
                _cleanup_free_ char *path = NULL, *value = NULL;

                if (a->type != PLAN_ACTION_MDEV_SET_ATTR || strv_contains(t->old_attrs, a->attr_name))
                        continue;
                path = strjoin_path(t->mdev_dir, a->attr_name);
                if (!path)
                        return -ENOMEM;
                if (mtx_io(t, IO_READ, path, NULL, &value) < 0) {
                        if (t->stuck)
                                return -ETIMEDOUT;
                        continue; /* write-only or absent on the old type: nothing to restore */
                }
                if (strv_extend(&t->old_attrs, a->attr_name) < 0 || strv_extend(&t->old_attrs, value) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int mtx_remove(MdevTx *t, const JobAction *a) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (!mdev_exists(t))
                return 0; /* gone already (removed by hand, or with its parent) */
        path = strjoin_path(t->mdev_dir, SYSFS_ATTR_MDEV_REMOVE);
        if (!path)
                return -ENOMEM;
        if (mtx_creates(t)) {
                r = mtx_save_old_attrs(t);
                if (r < 0) {
                        mtx_fail(
                                t, r, "Failed to read the attributes of mdev %s before its type change",
                                t->uuid);
                        return r;
                }
        }
        r = mtx_io(t, IO_WRITE, path, "1", NULL);
        if (r < 0)
                return r;
        /* remove_store() unregisters the device before it returns (drivers/vfio/mdev/mdev_sysfs.c). */
        if (mdev_exists(t)) {
                mtx_fail(t, -EBUSY, "wrote 1 to %s, but the mdev is still there", path);
                return -EBUSY;
        }
        t->removed = a;
        return 0;
}

/* Attribute=: write, then read back; a driver may refuse a value silently or store another one
 * (mdevctl's attrs are applied the same way, in order). */
static int mtx_set_attr(MdevTx *t, const JobAction *a) {
        _cleanup_free_ char *path = strjoin_path(t->mdev_dir, a->attr_name), *back = NULL;
        size_t n;
        int r;

        if (!path)
                return -ENOMEM;
        r = mtx_io(t, IO_WRITE, path, a->attr_value, NULL);
        if (r < 0)
                return r;
        r = mtx_io(t, IO_READ, path, NULL, &back); /* the trailing newline stripped */
        if (r < 0) {
                if (!t->stuck)
                        mtx_fail(
                                t, r, "Attribute %s of mdev %s: wrote '%s', but reading it back failed: %s",
                                a->attr_name, t->uuid, a->attr_value, strerrordesc_np(-r) ?: "?");
                return r;
        }
        n = strlen(a->attr_value);
        if (!streq(back, a->attr_value) &&
            !(n > 0 && a->attr_value[n - 1] == '\n' && strlen(back) == n - 1 &&
              strncmp(back, a->attr_value, n - 1) == 0)) {
                mtx_fail(
                        t, -EIO, "Attribute %s of mdev %s: wrote '%s', but it reads back '%s'", a->attr_name,
                        t->uuid, a->attr_value, back);
                return -EIO;
        }
        return 0;
}

static int mtx_read_vgpu(MdevTx *t, uint32_t *ret) {
        _cleanup_free_ char *s = NULL;
        int64_t v;
        int r;

        r = mtx_io(t, IO_READ, t->vgpu_path, NULL, &s);
        if (r < 0) {
                if (!t->stuck)
                        mtx_fail(t, r, "Failed to read %s: %s", t->vgpu_path, strerrordesc_np(-r) ?: "?");
                return r;
        }
        r = sysfs_parse_int(s, 0, UINT32_MAX, &v);
        if (r < 0) {
                mtx_fail(t, r, "%s reads '%s', not a vGPU type id", t->vgpu_path, s);
                return r;
        }
        *ret = (uint32_t)v;
        return 0;
}

static int mtx_set_vgpu(MdevTx *t, uint32_t value) {
        char buf[16];
        uint32_t back;
        int r;

        (void)snprintf(buf, sizeof(buf), "%" PRIu32, value);
        t->vgpu_written = true;
        r = mtx_io(t, IO_WRITE, t->vgpu_path, buf, NULL);
        if (r < 0)
                return r;
        r = mtx_read_vgpu(t, &back);
        if (r < 0)
                return r;
        if (back != value) {
                mtx_fail(t, -EIO, "wrote %s to %s, but it reads back %" PRIu32, buf, t->vgpu_path, back);
                return -EIO;
        }
        return 0;
}

static int mtx_run_action(MdevTx *t, const JobAction *a) {
        switch (a->type) {
        case PLAN_ACTION_MDEV_CREATE:
                return mtx_create(t, a);
        case PLAN_ACTION_MDEV_SET_ATTR:
                return mtx_set_attr(t, a);
        case PLAN_ACTION_MDEV_REMOVE:
                return mtx_remove(t, a);
        case PLAN_ACTION_SET_VGPU_TYPE:
                return mtx_set_vgpu(t, a->value);
        default:
                mtx_fail(t, -EINVAL, "unknown action %d", (int)a->type);
                return -EINVAL;
        }
}

static bool name_is_component(const char *s) {
        return s && *s && !strchr(s, '/') && !streq(s, ".") && !streq(s, "..");
}

/* A type change whose create failed: create the old instance again (the same UUID, its old parent and
 * type), then write back the attribute values saved before its removal. */
static void mtx_restore_old(MdevTx *t) {
        const JobAction *old = t->removed;
        _cleanup_free_ char *path = NULL, *message = NULL, *now = NULL;
        bool stuck = false;
        int r;

        if (!name_is_component(old->parent) || !name_is_component(old->mdev_type)) {
                mtx_rollback_note(
                        t, "the old mdev %s cannot be created again: its parent or type is unknown",
                        t->uuid);
                return;
        }
        if (mdev_exists(t)) {
                mtx_rollback_note(t, "the old mdev %s cannot be created again: the UUID is in use", t->uuid);
                return;
        }
        if (asprintf(
                    &path, "%s%s/%s/%s/%s/%s", t->e->root, SYSFS_MDEV_BUS_CLASS, old->parent,
                    SYSFS_ATTR_MDEV_SUPPORTED_TYPES, old->mdev_type, SYSFS_ATTR_MDEV_CREATE) < 0)
                return;
        r = runner_io(t->lane, t->key, IO_WRITE, path, t->uuid, NULL, &message, &stuck);
        t->stuck = t->stuck || stuck;
        if (r < 0) {
                mtx_rollback_note(t, "the old mdev %s/%s could not be created again: %s", old->parent,
                                  old->mdev_type, message ?: strerrordesc_np(-r) ?: "?");
                return;
        }
        /* The link may come late, as after any create (mtx_verify_created()). */
        for (uint64_t until = now_usec() + t->e->settle_usec, poll = MDEV_SETTLE_POLL_FIRST_USEC;;) {
                now = mfree(now);
                r = sysfs_read_link_basename(t->mdev_dir, SYSFS_ATTR_MDEV_TYPE, &now);
                if (r != -ENOENT || now_usec() >= until)
                        break;
                (void)usleep((useconds_t)poll);
                poll = poll * 2 < MDEV_SETTLE_POLL_MAX_USEC ? poll * 2 : MDEV_SETTLE_POLL_MAX_USEC;
        }
        if (r < 0 || !streq(now, old->mdev_type)) {
                mtx_rollback_note(
                        t, "the old mdev %s/%s was written again but did not appear with its type",
                        old->parent, old->mdev_type);
                return;
        }
        for (size_t i = 0; t->old_attrs && t->old_attrs[i] && t->old_attrs[i + 1]; i += 2) {
                _cleanup_free_ char *attr = strjoin_path(t->mdev_dir, t->old_attrs[i]), *m = NULL;

                r = attr ? runner_io(t->lane, t->key, IO_WRITE, attr, t->old_attrs[i + 1], NULL, &m, &stuck)
                         : -ENOMEM;
                t->stuck = t->stuck || stuck;
                if (r < 0)
                        mtx_rollback_note(t, "attribute %s of the old mdev could not be written back: %s",
                                          t->old_attrs[i], m ?: strerrordesc_np(-r) ?: "?");
        }
        if (asprintf(&t->restored, "the old mdev %s/%s created again", old->parent, old->mdev_type) < 0)
                t->restored = NULL;
}

/* Step 5: undo only what this transaction made: the mdev it created, the vGPU type it set on a free VF;
 * and, after a type change whose create failed, the old instance it removed. */
static void mtx_rollback(MdevTx *t) {
        int r;

        if (t->stuck)
                return; /* the stuck access may still act: leave it to the next plan */
        if (t->create_written && mdev_exists(t)) {
                _cleanup_free_ char *path = strjoin_path(t->mdev_dir, SYSFS_ATTR_MDEV_REMOVE);
                _cleanup_free_ char *message = NULL;
                bool stuck = false;

                r = path ? runner_io(t->lane, t->key, IO_WRITE, path, "1", NULL, &message, &stuck) : -ENOMEM;
                if (r < 0 || mdev_exists(t))
                        mtx_rollback_note(t, "the mdev it created could not be removed: %s",
                                          message ?: strerrordesc_np(-r) ?: "still there");
                t->stuck = t->stuck || stuck;
        }
        if (t->removed && !t->stuck && !t->rollback)
                mtx_restore_old(t);
        if (t->vgpu_written && t->vgpu_original == 0) {
                _cleanup_free_ char *message = NULL;
                bool stuck = false;

                r = runner_io(
                        t->lane, t->key, IO_WRITE, t->vgpu_path, SYSFS_NVIDIA_VGPU_TYPE_NONE, NULL, &message,
                        &stuck);
                if (r < 0)
                        mtx_rollback_note(t, "could not clear %s: %s", t->vgpu_path,
                                          message ?: strerrordesc_np(-r) ?: "?");
                t->stuck = t->stuck || stuck;
        }
}

static void mtx_journal(MdevTx *t, ExecutorJournalPhase phase, DeviceState outcome, int *ret) {
        char type[16];
        ExecutorJournalMdev m = {
                .uuid = t->uuid,
                .parent = t->parent,
        };
        int r;

        *ret = 0;
        if (!t->e->journal)
                return;
        for (size_t i = 0; i < t->n_actions; i++) {
                const JobAction *a = &t->actions[i];
                switch (a->type) {
                case PLAN_ACTION_MDEV_CREATE:
                        m.create = true;
                        m.type = a->mdev_type;
                        break;
                case PLAN_ACTION_MDEV_REMOVE:
                        m.remove = true;
                        break;
                case PLAN_ACTION_SET_VGPU_TYPE:
                        if (a->value == 0)
                                m.remove = true;
                        else {
                                (void)snprintf(type, sizeof(type), "%" PRIu32, a->value);
                                m.create = true;
                                m.type = type;
                        }
                        break;
                default:
                        break;
                }
        }
        /* Removed and created again: at END it is there, owned. */
        if (m.create)
                m.remove = false;
        r = t->e->journal(
                &(const ExecutorJournal){
                        .phase = phase,
                        .job = t->job->id,
                        .transaction = t->number,
                        .mdevs = &m,
                        .n_mdevs = 1,
                        .outcome = outcome,
                        .state = &t->journal_state,
                },
                t->e->journal_userdata);
        *ret = r < 0 ? r : 0;
}

static void mtx_post(MdevTx *t, DeviceState state, int error, const char *reason) {
        Core *c = t->e->core;

        pthread_mutex_lock(&c->lock);
        (void)core_post_mdev_locked(c, t->job->id, t->number, t->parent, t->uuid, state, error, reason);
        if (state == DEVICE_STATE_CONVERGED)
                t->job->n_converged++;
        else if (state == DEVICE_STATE_STUCK)
                t->job->n_stuck++;
        else
                t->job->n_failed++;
        pthread_mutex_unlock(&c->lock);
}

static void mtx_run(MdevTx *t) {
        Core *c = t->e->core;
        int r;

        log_debug(
                "Job %" PRIu64 " transaction %u: %s %s, %zu actions", t->job->id, t->number,
                t->vgpu ? "vGPU of" : "mdev", t->vgpu ? t->parent : t->uuid, t->n_actions);

        /* 1. A stuck parent (or VF) takes no work. */
        pthread_mutex_lock(&c->lock);
        StuckEntry *s = core_find_stuck_locked(c, t->key);
        if (s) {
                t->stuck = true;
                mtx_fail(t, -ETIMEDOUT, "%s is still stuck in the kernel: %s", t->key, strna(s->reason));
        }
        pthread_mutex_unlock(&c->lock);
        if (t->failed) {
                mtx_post(t, DEVICE_STATE_STUCK, t->error, t->reason);
                return;
        }

        /* 2.-3. Originals; the record before the first write. */
        if (t->vgpu)
                r = mtx_read_vgpu(t, &t->vgpu_original);
        else {
                t->existed = mdev_exists(t);
                r = 0;
        }
        if (r >= 0) {
                mtx_journal(t, EXECUTOR_JOURNAL_BEGIN, DEVICE_STATE_PENDING, &r);
                if (r < 0)
                        mtx_fail(
                                t, r, "Failed to record the ownership before writing: %s (%s)",
                                strerrordesc_np(-r) ?: "?", strerrorname_np(-r) ?: "?");
                else {
                        /* 4. The actions, each verified. */
                        for (size_t i = 0; i < t->n_actions; i++)
                                if (mtx_run_action(t, &t->actions[i]) < 0)
                                        break;
                        if (t->failed)
                                mtx_rollback(t);
                        mtx_journal(
                                t, EXECUTOR_JOURNAL_END,
                                !t->failed         ? DEVICE_STATE_CONVERGED
                                        : t->stuck ? DEVICE_STATE_STUCK
                                                   : DEVICE_STATE_FAILED,
                                &r);
                }
        }

        if (!t->failed) {
                mtx_post(t, DEVICE_STATE_CONVERGED, 0, NULL);
                return;
        }
        _cleanup_free_ char *reason = NULL;
        if (t->rollback)
                r = asprintf(&reason, "%s; rollback incomplete: %s", strna(t->reason), t->rollback);
        else if (t->restored)
                r = asprintf(&reason, "%s; rolled back: %s", strna(t->reason), t->restored);
        else
                r = asprintf(
                        &reason, "%s%s", strna(t->reason),
                        t->create_written || t->vgpu_written ? "; rolled back" : "");
        if (r < 0)
                reason = NULL;
        mtx_post(t, t->stuck ? DEVICE_STATE_STUCK : DEVICE_STATE_FAILED, t->error, reason ?: t->reason);
}

void job_run_mdev_tx(Lane *l, Job *job, const JobTx *jt) {
        const JobAction *first = &job->actions[jt->start];
        MdevTx t = {
                .e = l->e,
                .lane = l,
                .job = job,
                .number = first->transaction,
                .actions = job->actions + jt->start,
                .n_actions = jt->end - jt->start,
                .vgpu = first->type == PLAN_ACTION_SET_VGPU_TYPE,
                .uuid = first->uuid,
        };
        int r = 0;

        t.parent = t.vgpu ? first->address : first->parent;
        if (!t.parent)
                t.parent = "";
        (void)snprintf(t.key, sizeof(t.key), "%s", t.parent);
        if (t.vgpu)
                r = asprintf(
                        &t.vgpu_path, "%s%s/%s/%s/%s", t.e->root, SYSFS_PCI_DEVICES, first->address,
                        SYSFS_ATTR_NVIDIA_DIR, SYSFS_ATTR_NVIDIA_CURRENT_VGPU_TYPE);
        else
                r = asprintf(&t.mdev_dir, "%s%s/%s", t.e->root, SYSFS_MDEV_DEVICES, t.uuid);
        if (r < 0) {
                t.vgpu_path = t.mdev_dir = NULL;
                mtx_fail(&t, -ENOMEM, "Out of memory");
                mtx_post(&t, DEVICE_STATE_FAILED, -ENOMEM, "Out of memory");
        } else
                mtx_run(&t);

        free(t.mdev_dir);
        free(t.vgpu_path);
        free(t.create_type);
        strv_free(t.old_attrs);
        free(t.restored);
        free(t.reason);
        free(t.rollback);
}
