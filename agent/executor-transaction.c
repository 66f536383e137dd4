/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The executor's kernel protocol (executor.h, steps 1-6): one transaction of a plan on the
 * functions it names: ensure the driver is registered, read the originals, record them in the
 * journal, then driver_override, unbind, drivers_probe and the SR-IOV attributes, each verified by
 * reading back; on the first failure, roll back what this transaction changed; the journal's END
 * record with the outcome. It runs on a lane (executor-lanes.c) and makes every access that can
 * block through the lane's I/O worker (runner_io()).
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor-internal.h"
#include "executor.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "sysfs.h"

/* How often tx_ensure_driver() looks for a freshly loaded driver's directory. */
#define EXECUTOR_DRIVER_POLL_USEC (10 * 1000)
/* PLAN_VERIFY_DRIVER_SETTLE's reads without a notify: from settle_poll_usec, doubling up to this. */
#define EXECUTOR_SETTLE_POLL_MAX_USEC (32 * 1000ULL)

/* ---- one transaction ---------------------------------------------------------------------------- */

typedef struct TxDevice {
        const char *address;
        char *syspath;
        /* originals */
        char *driver, *driver_override;
        bool sriov;
        uint32_t numvfs;
        bool autoprobe;
        /* attempted by this transaction (a failed write may still have acted) */
        bool override_written, unbind_written, probe_written, numvfs_written, autoprobe_written;
        /* outcome */
        bool failed, stuck, reported;
        int error;
        char *reason;
        char *rollback; /* what went wrong undoing it */
} TxDevice;

typedef struct Tx {
        Executor *e;
        Lane *lane;
        Job *job;
        unsigned number;
        const JobAction *actions;
        size_t n_actions;
        TxDevice *devices;
        size_t n_devices;
        void *journal_state; /* ExecutorJournal.state: the hook's, from BEGIN to END */
} Tx;

static TxDevice *tx_device(Tx *t, const char *address) {
        for (size_t i = 0; i < t->n_devices; i++)
                if (streq(t->devices[i].address, address))
                        return &t->devices[i];
        return NULL;
}

static bool override_is_clear(const char *s) {
        /* driver_override_show() prints "(null)" for a clear override; a testbed file holds "" after "\n".
         */
        return !s || streq(s, "") || streq(s, SYSFS_DRIVER_OVERRIDE_UNSET);
}

_printf_(4, 5) static void tx_fail(Tx *t, TxDevice *d, int error, const char *format, ...) {
        va_list ap;

        if (d->failed)
                return;
        d->failed = true;
        d->error = error;
        va_start(ap, format);
        if (vasprintf(&d->reason, format, ap) < 0)
                d->reason = NULL;
        va_end(ap);
}

static void tx_post(Tx *t, TxDevice *d, DeviceState state, int error, const char *reason);

/* One access for |d|; on failure marks |d| failed or stuck with the access's message and returns < 0. */
static int tx_io(Tx *t, TxDevice *d, IoOp op, const char *path, const char *value, char **ret_result) {
        _cleanup_free_ char *message = NULL;
        bool stuck;
        int r;

        r = runner_io(t->lane, d->address, op, path, value, ret_result, &message, &stuck);
        if (stuck) {
                /* Reported at once: the daemon shows it while the rest of the transaction rolls back. */
                d->stuck = true;
                tx_fail(t, d, -ETIMEDOUT, "%s", message ?: "a sysfs access overran its deadline");
                tx_post(t, d, DEVICE_STATE_STUCK, -ETIMEDOUT,
                        message ?: "a sysfs access overran its deadline");
                return r;
        }
        if (r < 0 && op == IO_WRITE) {
                tx_fail(t, d, r, "%s", message ?: "a sysfs write failed");
                return r;
        }
        return r; /* read errors are judged by the caller */
}

static char *path_of(const char *a, const char *b) {
        char *p;
        return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

static int tx_read_attr(Tx *t, TxDevice *d, const char *attr, char **ret) {
        _cleanup_free_ char *path = path_of(d->syspath, attr);
        int r;

        if (!path)
                return -ENOMEM;
        r = tx_io(t, d, IO_READ, path, NULL, ret);
        if (r < 0 && !d->stuck)
                tx_fail(t, d, r, "Failed to read %s: %s (%s)", path, strerrordesc_np(-r) ?: "?",
                        strerrorname_np(-r) ?: "?");
        return r;
}

/* The driver bound now: 0 and *ret (NULL if none), or < 0 with |d| failed/stuck. */
/*
 * The driver link, read on the lane itself: readlink(2) of a sysfs link takes no device lock (kernfs
 * only), so it cannot hang behind a probe or a remove the way driver_override or sriov_numvfs can,
 * and it is the read that a verification repeats (the settle polls): no worker round trip for it.
 */
static int tx_read_driver(Tx *t, TxDevice *d, char **ret) {
        int r;

        *ret = NULL;
        r = sysfs_read_link_basename(d->syspath, SYSFS_ATTR_DRIVER, ret);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                tx_fail(t, d, r, "Failed to read the driver link %s/%s: %s (%s)", d->syspath,
                        SYSFS_ATTR_DRIVER, strerrordesc_np(-r) ?: "?", strerrorname_np(-r) ?: "?");
        return r;
}

static int tx_write_attr(Tx *t, TxDevice *d, const char *attr, const char *value) {
        _cleanup_free_ char *path = path_of(d->syspath, attr);

        if (!path)
                return -ENOMEM;
        return tx_io(t, d, IO_WRITE, path, value, NULL);
}

static int tx_read_u32(Tx *t, TxDevice *d, const char *attr, uint32_t *ret) {
        _cleanup_free_ char *s = NULL;
        int64_t v;
        int r;

        r = tx_read_attr(t, d, attr, &s);
        if (r < 0)
                return r;
        r = sysfs_parse_int(s, 0, UINT32_MAX, &v);
        if (r < 0) {
                tx_fail(t, d, r, "%s/%s reads '%s', not a number", d->syspath, attr, s);
                return r;
        }
        *ret = (uint32_t)v;
        return 0;
}

/* Write |value| to |attr| and read it back as a number: 0 or < 0 with |d| failed/stuck. */
static int tx_write_u32_verified(Tx *t, TxDevice *d, const char *attr, uint32_t value) {
        char buf[16];
        uint32_t back;
        int r;

        (void)snprintf(buf, sizeof(buf), "%" PRIu32, value);
        r = tx_write_attr(t, d, attr, buf);
        if (r < 0)
                return r;
        r = tx_read_u32(t, d, attr, &back);
        if (r < 0)
                return r;
        if (back != value) {
                tx_fail(t, d, -EIO, "wrote '%s' to %s/%s, but it reads back %" PRIu32, buf, d->syspath, attr,
                        back);
                return -EIO;
        }
        return 0;
}

/* Whether |d| is a function that just appeared, without driver_override (PLAN_VERIFY_DRIVER_SETTLE's
 * premise): nothing but a writer of ours could have set one since. */
static bool tx_device_is_new(const Tx *t, const TxDevice *d) {
        for (size_t i = 0; i < t->n_actions; i++)
                if (t->actions[i].type == PLAN_ACTION_VERIFY &&
                    t->actions[i].verify == PLAN_VERIFY_DRIVER_SETTLE &&
                    streq(t->actions[i].address, d->address))
                        return true;
        return false;
}

static int tx_write_override_verified(Tx *t, TxDevice *d, const char *driver) {
        _cleanup_free_ char *back = NULL;
        int r;

        r = tx_write_attr(t, d, SYSFS_ATTR_DRIVER_OVERRIDE, driver ?: SYSFS_DRIVER_OVERRIDE_CLEAR);
        if (r < 0)
                return r;
        r = tx_read_attr(t, d, SYSFS_ATTR_DRIVER_OVERRIDE, &back);
        if (r < 0)
                return r;
        if (driver ? !streq(back, driver) : !override_is_clear(back)) {
                tx_fail(t, d, -EIO, "wrote '%s' to %s/%s, but it reads back '%s'", driver ?: "\\n",
                        d->syspath, SYSFS_ATTR_DRIVER_OVERRIDE, back);
                return -EIO;
        }
        return 0;
}

static int tx_unbind(Tx *t, TxDevice *d, const char *driver) {
        _cleanup_free_ char *dir = NULL, *path = NULL, *now = NULL;
        int r;

        if (asprintf(&dir, "%s%s/%s", t->e->root, SYSFS_PCI_DRIVERS, driver) < 0)
                return -ENOMEM;
        path = path_of(dir, SYSFS_ATTR_UNBIND);
        if (!path)
                return -ENOMEM;
        r = tx_io(t, d, IO_WRITE, path, d->address, NULL);
        if (r < 0)
                return r;
        r = tx_read_driver(t, d, &now);
        if (r < 0)
                return r;
        if (now) {
                tx_fail(t, d, -EBUSY, "wrote %s to %s, but %s is still bound to %s", d->address, path,
                        d->address, now);
                return -EBUSY;
        }
        return 0;
}

static int tx_probe(Tx *t, TxDevice *d) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s%s", t->e->root, SYSFS_PCI_DRIVERS_PROBE) < 0)
                return -ENOMEM;
        return tx_io(t, d, IO_WRITE, path, d->address, NULL);
}

static bool driver_is_vfio(const char *driver) {
        /* As pci_device_is_vfio_bound(): vfio-pci and its variant drivers (mlx5_vfio_pci, ...). */
        return driver && (strstr(driver, "vfio_pci") || strstr(driver, "vfio-pci"));
}

static int tx_verify(Tx *t, TxDevice *d, const JobAction *a) {
        _cleanup_free_ char *now = NULL, *override = NULL;
        /* Taken before the first read: a "bind" between that read and the wait still wakes it. */
        uint64_t seq = a->verify == PLAN_VERIFY_DRIVER_SETTLE ? executor_get_bind_seq(t->e) : 0;
        int r;

        r = tx_read_driver(t, d, &now);
        if (r < 0)
                return r;
        if (a->verify == PLAN_VERIFY_DRIVER_SETTLE && !now) {
                uint64_t settle =
                        t->e->settle_usec < t->e->timeout_usec ? t->e->settle_usec : t->e->timeout_usec;
                uint64_t start = now_usec(), until = start + settle;
                uint64_t poll = t->e->settle_poll_usec;
                bool probed = false;

                /* The kernel's own first probe of a function that just appeared is still to come:
                 * wait for its "bind" uevent (or the next poll) without taking the CPU from it. */
                while (!now && now_usec() < until) {
                        uint64_t wake = now_usec() + poll;

                        if (poll < EXECUTOR_SETTLE_POLL_MAX_USEC)
                                poll = poll * 2 < EXECUTOR_SETTLE_POLL_MAX_USEC
                                        ? poll * 2
                                        : EXECUTOR_SETTLE_POLL_MAX_USEC;
                        if (!probed && wake > start + t->e->settle_probe_usec)
                                wake = start + t->e->settle_probe_usec;
                        if (wake > until)
                                wake = until;
                        executor_wait_bind(t->e, &seq, wake);
                        if (!probed && now_usec() >= start + t->e->settle_probe_usec) {
                                probed = true;
                                r = tx_probe(t, d);
                                if (r < 0)
                                        return r;
                        }
                        r = tx_read_driver(t, d, &now);
                        if (r < 0)
                                return r;
                }
                if (!now) {
                        r = tx_probe(t, d);
                        if (r < 0)
                                return r;
                        r = tx_read_driver(t, d, &now);
                        if (r < 0)
                                return r;
                }
        }
        if (a->verify == PLAN_VERIFY_DRIVER_SETTLE && now && a->driver && !streq(now, a->driver)) {
                /* The kernel's first probe came before driver_override: take the function from the
                 * host driver it bound (what the full plan would do next), no rollback in between. */
                d->unbind_written = true;
                r = tx_unbind(t, d, now);
                if (r < 0)
                        return r;
                r = tx_probe(t, d);
                if (r < 0)
                        return r;
                now = mfree(now);
                r = tx_read_driver(t, d, &now);
                if (r < 0)
                        return r;
        }
        switch (a->verify) {
        case PLAN_VERIFY_DRIVER:
        case PLAN_VERIFY_DRIVER_SETTLE:
                if (!now) {
                        tx_fail(t, d, -ENODEV, "drivers_probe bound nothing: %s has no driver, expected %s",
                                d->address, strna(a->driver));
                        return -ENODEV;
                }
                if (!a->driver || !streq(now, a->driver)) {
                        /* With driver_override read back as the named driver, drivers_probe cannot bind
                         * another one: someone else bound it meanwhile. The host changed: re-plan. */
                        tx_fail(t, d, -ESTALE, "%s is bound to %s after drivers_probe, expected %s",
                                d->address, now, strna(a->driver));
                        return -ESTALE;
                }
                return 0;
        case PLAN_VERIFY_UNBOUND:
                if (now) {
                        tx_fail(t, d, -EBUSY, "%s is bound to %s, expected no driver", d->address, now);
                        return -EBUSY;
                }
                return 0;
        case PLAN_VERIFY_HOST:
                r = tx_read_attr(t, d, SYSFS_ATTR_DRIVER_OVERRIDE, &override);
                if (r < 0)
                        return r;
                if (!override_is_clear(override)) {
                        tx_fail(t, d, -EBUSY, "%s still has driver_override=%s, expected it clear",
                                d->address, override);
                        return -EBUSY;
                }
                if (driver_is_vfio(now)) {
                        tx_fail(t, d, -EBUSY, "%s is still bound to %s, expected a host driver or none",
                                d->address, now);
                        return -EBUSY;
                }
                return 0;
        default:
                tx_fail(t, d, -EINVAL, "unknown verification %d", (int)a->verify);
                return -EINVAL;
        }
}

static int tx_run_action(Tx *t, const JobAction *a) {
        TxDevice *d = tx_device(t, a->address);
        _cleanup_free_ char *now = NULL;
        int r;

        assert(d);
        switch (a->type) {
        case PLAN_ACTION_SET_OVERRIDE:
                d->override_written = true;
                /* A new function races the kernel's first probe, which waits for the CPU meanwhile: no
                 * read-back; the driver it binds, verified next, shows what the override was. */
                if (tx_device_is_new(t, d))
                        return tx_write_attr(t, d, SYSFS_ATTR_DRIVER_OVERRIDE, a->driver);
                return tx_write_override_verified(t, d, a->driver);
        case PLAN_ACTION_CLEAR_OVERRIDE:
                d->override_written = true;
                return tx_write_override_verified(t, d, NULL);
        case PLAN_ACTION_UNBIND:
                r = tx_read_driver(t, d, &now);
                if (r < 0)
                        return r;
                if (!now)
                        return 0; /* already unbound (by hand, or the driver went away): nothing to do */
                if (!a->driver || !streq(now, a->driver)) {
                        tx_fail(t, d, -ESTALE,
                                "%s is bound to %s, the plan expected %s; not unbinding (re-plan)",
                                d->address, now, strna(a->driver));
                        return -ESTALE;
                }
                d->unbind_written = true;
                return tx_unbind(t, d, now);
        case PLAN_ACTION_PROBE:
                d->probe_written = true;
                return tx_probe(t, d);
        case PLAN_ACTION_VERIFY:
                return tx_verify(t, d, a);
        case PLAN_ACTION_SET_SRIOV_AUTOPROBE:
                d->autoprobe_written = true;
                return tx_write_u32_verified(t, d, SYSFS_ATTR_SRIOV_DRIVERS_AUTOPROBE, a->value ? 1 : 0);
        case PLAN_ACTION_SET_NUMVFS:
                d->numvfs_written = true;
                return tx_write_u32_verified(t, d, SYSFS_ATTR_SRIOV_NUMVFS, a->value);
        default:
                tx_fail(t, d, -EINVAL, "unknown action %d", (int)a->type);
                return -EINVAL;
        }
}

/* Read what the transaction may change, for the journal and the rollback. */
static int tx_read_originals(Tx *t) {
        int r;

        for (size_t i = 0; i < t->n_devices; i++) {
                TxDevice *d = &t->devices[i];
                _cleanup_free_ char *path = NULL, *o = NULL;
                uint32_t v;

                r = tx_read_driver(t, d, &d->driver);
                if (r < 0)
                        return r;
                /* Spare a new function's race with the kernel's first probe the worker's round trip: its
                 * override is known clear (the driver link, read above, shows whether the probe came). */
                if (!d->sriov && tx_device_is_new(t, d))
                        continue;

                path = path_of(d->syspath, SYSFS_ATTR_DRIVER_OVERRIDE);
                if (!path)
                        return -ENOMEM;
                r = tx_io(t, d, IO_READ, path, NULL, &o);
                if (r < 0 && r != -ENOENT) {
                        /* -ENOENT: no such attribute; the write will fail and name it. */
                        if (!d->stuck)
                                tx_fail(t, d, r, "Failed to read %s: %s (%s)", path,
                                        strerrordesc_np(-r) ?: "?", strerrorname_np(-r) ?: "?");
                        return r;
                }
                if (!override_is_clear(o))
                        d->driver_override = TAKE_PTR(o);

                if (!d->sriov)
                        continue;
                r = tx_read_u32(t, d, SYSFS_ATTR_SRIOV_NUMVFS, &d->numvfs);
                if (r < 0)
                        return r;
                r = tx_read_u32(t, d, SYSFS_ATTR_SRIOV_DRIVERS_AUTOPROBE, &v);
                if (r < 0)
                        return r;
                d->autoprobe = v != 0;
        }
        return 0;
}

_printf_(2, 3) static void rollback_note(TxDevice *d, const char *format, ...) {
        _cleanup_free_ char *m = NULL;
        char *j;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&m, format, ap) < 0)
                m = NULL;
        va_end(ap);
        if (!m)
                return;
        if (asprintf(&j, "%s%s%s", strempty(d->rollback), d->rollback ? "; " : "", m) < 0)
                return;
        free(d->rollback);
        d->rollback = j;
}

static bool tx_device_touched(const TxDevice *d) {
        return d->override_written || d->unbind_written || d->probe_written || d->numvfs_written ||
                d->autoprobe_written;
}

/*
 * Undo what this transaction did, on every function it touched except the stuck ones, in the order
 * of a bind (SR-IOV, overrides, unbind, probe, verify) so no probe in between binds a wrong driver.
 * Errors are noted per function and do not stop the rest. Accesses here may get stuck as well.
 */
static void tx_rollback(Tx *t) {
        for (size_t i = 0; i < t->n_devices; i++) {
                TxDevice *d = &t->devices[i];
                _cleanup_free_ char *reason = NULL;
                uint32_t now;
                int r;

                if (d->stuck || !d->sriov || !(d->autoprobe_written || d->numvfs_written))
                        continue;
                /* tx_* helpers record a failure in d->failed/reason: keep the original reason. */
                reason = TAKE_PTR(d->reason);
                bool failed = d->failed;
                int error = d->error;
                d->failed = false;

                if (d->autoprobe_written) {
                        r = tx_read_u32(t, d, SYSFS_ATTR_SRIOV_DRIVERS_AUTOPROBE, &now);
                        if (r >= 0 && (now != 0) != d->autoprobe)
                                r = tx_write_u32_verified(
                                        t, d, SYSFS_ATTR_SRIOV_DRIVERS_AUTOPROBE, d->autoprobe);
                }
                if (!d->stuck && d->numvfs_written) {
                        r = tx_read_u32(t, d, SYSFS_ATTR_SRIOV_NUMVFS, &now);
                        /* The kernel takes a new count only from 0 (sysfs-bus-pci sriov_numvfs). */
                        if (r >= 0 && now != d->numvfs && now != 0)
                                r = tx_write_u32_verified(t, d, SYSFS_ATTR_SRIOV_NUMVFS, 0);
                        if (r >= 0 && now != d->numvfs && d->numvfs != 0)
                                r = tx_write_u32_verified(t, d, SYSFS_ATTR_SRIOV_NUMVFS, d->numvfs);
                }
                if (d->failed)
                        rollback_note(d, "%s", strna(d->reason));
                free(d->reason);
                d->reason = TAKE_PTR(reason);
                d->failed = failed;
                d->error = error;
        }

        for (int phase = 0; phase < 4; phase++)
                for (size_t i = 0; i < t->n_devices; i++) {
                        TxDevice *d = &t->devices[i];
                        _cleanup_free_ char *reason = NULL, *now = NULL;
                        bool failed;
                        int error, r = 0;

                        if (d->stuck || !tx_device_touched(d))
                                continue;
                        reason = TAKE_PTR(d->reason);
                        failed = d->failed;
                        error = d->error;
                        d->failed = false;

                        switch (phase) {
                        case 0: /* driver_override back to what it was ("\n" clears it) */
                                if (d->override_written)
                                        r = tx_write_override_verified(t, d, d->driver_override);
                                break;
                        case 1: /* release a driver that is not the original */
                                r = tx_read_driver(t, d, &now);
                                if (r >= 0 && now && !(d->driver && streq(now, d->driver)))
                                        r = tx_unbind(t, d, now);
                                break;
                        case 2: /* re-probe the original driver */
                                r = tx_read_driver(t, d, &now);
                                if (r >= 0 && d->driver && !now)
                                        r = tx_probe(t, d);
                                break;
                        case 3: /* read back */
                                r = tx_read_driver(t, d, &now);
                                if (r >= 0 &&
                                    !(now == d->driver || (now && d->driver && streq(now, d->driver))))
                                        rollback_note(
                                                d, "left on %s, was %s", now ?: "no driver",
                                                d->driver ?: "no driver");
                                break;
                        }
                        if (d->failed)
                                rollback_note(d, "%s", strna(d->reason));
                        (void)r;
                        free(d->reason);
                        d->reason = TAKE_PTR(reason);
                        d->failed = failed;
                        d->error = error;
                }
}

static void tx_journal(Tx *t, ExecutorJournalPhase phase, DeviceState outcome, int *ret) {
        _cleanup_free_ ExecutorJournalDevice *jd = NULL;
        int r;

        *ret = 0;
        if (!t->e->journal)
                return;
        jd = calloc(t->n_devices, sizeof(ExecutorJournalDevice));
        if (!jd) {
                *ret = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < t->n_devices; i++)
                jd[i] = (ExecutorJournalDevice){
                        .address = t->devices[i].address,
                        .driver = t->devices[i].driver,
                        .driver_override = t->devices[i].driver_override,
                        .sriov = t->devices[i].sriov,
                        .sriov_numvfs = t->devices[i].numvfs,
                        .sriov_drivers_autoprobe = t->devices[i].autoprobe,
                };
        /* The targets, in action order (the last one for a function wins). */
        for (size_t i = 0; i < t->n_actions; i++) {
                const JobAction *a = &t->actions[i];
                ExecutorJournalDevice *d = NULL;

                for (size_t k = 0; k < t->n_devices && !d; k++)
                        if (streq(t->devices[k].address, a->address))
                                d = &jd[k];
                if (!d)
                        continue;
                switch (a->type) {
                case PLAN_ACTION_SET_OVERRIDE:
                case PLAN_ACTION_CLEAR_OVERRIDE:
                        d->has_target_override = true;
                        d->target_override = a->type == PLAN_ACTION_SET_OVERRIDE ? a->driver : NULL;
                        break;
                case PLAN_ACTION_VERIFY:
                        d->has_target_driver = true;
                        d->target_driver =
                                a->verify == PLAN_VERIFY_DRIVER || a->verify == PLAN_VERIFY_DRIVER_SETTLE
                                ? a->driver
                                : NULL;
                        d->release = a->verify == PLAN_VERIFY_HOST;
                        break;
                case PLAN_ACTION_SET_NUMVFS:
                        d->writes_sriov_numvfs = true;
                        d->target_sriov_numvfs = a->value;
                        break;
                case PLAN_ACTION_SET_SRIOV_AUTOPROBE:
                        d->writes_sriov_drivers_autoprobe = true;
                        d->target_sriov_drivers_autoprobe = a->value != 0;
                        break;
                default:
                        break;
                }
        }
        r = t->e->journal(
                &(const ExecutorJournal){
                        .phase = phase,
                        .job = t->job->id,
                        .transaction = t->number,
                        .devices = jd,
                        .n_devices = t->n_devices,
                        .outcome = outcome,
                        .state = &t->journal_state,
                },
                t->e->journal_userdata);
        *ret = r < 0 ? r : 0;
}

static void tx_post(Tx *t, TxDevice *d, DeviceState state, int error, const char *reason) {
        Core *c = t->e->core;

        pthread_mutex_lock(&c->lock);
        (void)core_post_locked(
                c, EXECUTOR_EVENT_DEVICE, t->job->id, t->number, d->address, state, error, reason);
        if (state == DEVICE_STATE_CONVERGED)
                t->job->n_converged++;
        else if (state == DEVICE_STATE_STUCK)
                t->job->n_stuck++;
        else
                t->job->n_failed++;
        pthread_mutex_unlock(&c->lock);
        d->reported = true;
}

/* Report the outcome of a transaction that failed: the culprit, the stuck, and the peers. */
static void tx_post_failure(Tx *t, bool rolled_back) {
        const TxDevice *culprit = NULL;

        for (size_t i = 0; i < t->n_devices; i++)
                if (t->devices[i].failed) {
                        culprit = &t->devices[i];
                        break;
                }
        assert(culprit);

        for (size_t i = 0; i < t->n_devices; i++) {
                TxDevice *d = &t->devices[i];
                _cleanup_free_ char *reason = NULL;
                const char *tail = !rolled_back ? ""
                        : d->stuck              ? ""
                        : !tx_device_touched(d) ? ""
                        : d->rollback           ? "; rollback incomplete: "
                                                : "; rolled back";

                if (d->reported)
                        continue;
                if (d->failed) {
                        if (asprintf(&reason, "%s%s%s", strna(d->reason), tail, strempty(d->rollback)) < 0)
                                reason = NULL;
                        tx_post(t, d, d->stuck ? DEVICE_STATE_STUCK : DEVICE_STATE_FAILED, d->error,
                                reason ?: d->reason);
                } else {
                        if (asprintf(
                                    &reason, "not done: transaction peer %s %s: %s%s%s", culprit->address,
                                    culprit->stuck ? "is stuck" : "failed", strna(culprit->reason), tail,
                                    strempty(d->rollback)) < 0)
                                reason = NULL;
                        tx_post(t, d, DEVICE_STATE_FAILED, -ECANCELED, reason ?: "transaction peer failed");
                }
        }
}

static int tx_add_device(Tx *t, const JobAction *a) {
        TxDevice *d = tx_device(t, a->address);

        if (!d) {
                d = &t->devices[t->n_devices++];
                d->address = a->address;
                if (asprintf(&d->syspath, "%s%s/%s", t->e->root, SYSFS_PCI_DEVICES, a->address) < 0) {
                        d->syspath = NULL;
                        return -ENOMEM;
                }
        }
        if (a->type == PLAN_ACTION_SET_NUMVFS || a->type == PLAN_ACTION_SET_SRIOV_AUTOPROBE)
                d->sriov = true;
        return 0;
}

static void tx_done(Tx *t) {
        for (size_t i = 0; i < t->n_devices; i++) {
                TxDevice *d = &t->devices[i];
                free(d->syspath);
                free(d->driver);
                free(d->driver_override);
                free(d->reason);
                free(d->rollback);
        }
        free(t->devices);
}

/*
 * Step 1: the driver |a| names must be registered before anything is written. When it is not, load
 * its module (if loading is enabled) and wait for /sys/bus/pci/drivers/<name>: the driver registers
 * in the module's init, but a module that was already loading elsewhere (modprobe in parallel)
 * returns before its init finished. Returns 0, or a negative errno with the function failed.
 */
static int tx_ensure_driver(Tx *t, const JobAction *a) {
        Executor *e = t->e;
        _cleanup_free_ char *path = NULL, *module = NULL;
        uint64_t until;
        int r;

        if (asprintf(&path, "%s%s/%s", e->root, SYSFS_PCI_DRIVERS, a->driver) < 0) {
                tx_fail(t, tx_device(t, a->address), -ENOMEM, "Out of memory");
                return -ENOMEM;
        }
        if (access(path, F_OK) >= 0)
                return 0;
        r = negative_errno();
        if (!e->load_driver) {
                tx_fail(t, tx_device(t, a->address), r,
                        "driver %s is not loaded (%s: %s), and module loading is disabled", a->driver, path,
                        strerrordesc_np(-r) ?: "?");
                return r;
        }

        r = e->load_driver(a->driver, &module, e->load_driver_userdata);
        if (r < 0) {
                tx_fail(t, tx_device(t, a->address), r, "Failed to load module '%s' for driver '%s': %s",
                        module ?: a->driver, a->driver, strerrordesc_np(-r) ?: "?");
                return r;
        }

        until = now_usec() + e->timeout_usec;
        for (;;) {
                if (access(path, F_OK) >= 0)
                        return 0;
                r = negative_errno();
                if (r != -ENOENT || now_usec() >= until)
                        break;
                (void)usleep(EXECUTOR_DRIVER_POLL_USEC);
        }
        if (r == -ENOENT)
                r = -ETIMEDOUT;
        tx_fail(t, tx_device(t, a->address), r,
                "module '%s' was loaded but driver '%s' did not appear in %s within %" PRIu64 " ms",
                module ?: a->driver, a->driver, path, e->timeout_usec / 1000);
        return r;
}

static void tx_run(Tx *t) {
        Core *c = t->e->core;
        bool refused = false;
        int r;

        log_debug(
                "Job %" PRIu64 " transaction %u: %zu functions, %zu actions", t->job->id, t->number,
                t->n_devices, t->n_actions);

        /* 1. A stuck function takes no work; a transaction that touches one is refused whole. */
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < t->n_devices && !refused; i++) {
                StuckEntry *s = core_find_stuck_locked(c, t->devices[i].address);
                if (!s)
                        continue;
                t->devices[i].stuck = true;
                tx_fail(t, &t->devices[i], -ETIMEDOUT, "still stuck in the kernel: %s", strna(s->reason));
                refused = true;
        }
        pthread_mutex_unlock(&c->lock);
        for (size_t i = 0; i < t->n_devices && refused; i++)
                if (t->devices[i].stuck)
                        tx_post(t, &t->devices[i], DEVICE_STATE_STUCK, -ETIMEDOUT, t->devices[i].reason);

        /* The drivers named in driver_override must be registered, or drivers_probe binds nothing. */
        for (size_t i = 0; i < t->n_actions && !refused; i++)
                if (t->actions[i].type == PLAN_ACTION_SET_OVERRIDE &&
                    tx_ensure_driver(t, &t->actions[i]) < 0)
                        refused = true;

        /* 2.-3. Originals, recorded before the first write. */
        if (!refused && tx_read_originals(t) < 0)
                refused = true;
        if (!refused) {
                tx_journal(t, EXECUTOR_JOURNAL_BEGIN, DEVICE_STATE_PENDING, &r);
                if (r < 0) {
                        tx_fail(t, &t->devices[0], r,
                                "Failed to record the originals before writing: %s (%s)",
                                strerrordesc_np(-r) ?: "?", strerrorname_np(-r) ?: "?");
                        refused = true;
                }
        }
        if (refused) {
                tx_post_failure(t, false);
                return;
        }

        /* 4. The actions, each verified. */
        log_debug("Job %" PRIu64 " transaction %u: originals recorded", t->job->id, t->number);
        for (size_t i = 0; i < t->n_actions; i++) {
                r = tx_run_action(t, &t->actions[i]);
                log_debug(
                        "Job %" PRIu64 " transaction %u: %s %s done (%d)", t->job->id, t->number,
                        plan_action_type_to_string(t->actions[i].type), t->actions[i].address, r);
                if (r < 0)
                        break;
        }

        bool failed = false, stuck = false;
        for (size_t i = 0; i < t->n_devices; i++) {
                failed = failed || t->devices[i].failed;
                stuck = stuck || t->devices[i].stuck;
        }
        if (!failed) {
                for (size_t i = 0; i < t->n_devices; i++)
                        tx_post(t, &t->devices[i], DEVICE_STATE_CONVERGED, 0, NULL);
                tx_journal(t, EXECUTOR_JOURNAL_END, DEVICE_STATE_CONVERGED, &r);
                return;
        }

        /* 5. Undo only what this transaction did. */
        tx_rollback(t);
        for (size_t i = 0; i < t->n_devices; i++)
                stuck = stuck || t->devices[i].stuck;
        tx_post_failure(t, true);
        tx_journal(t, EXECUTOR_JOURNAL_END, stuck ? DEVICE_STATE_STUCK : DEVICE_STATE_FAILED, &r);
}

/* One transaction of |job|, on lane |l|. */
void job_run_tx(Lane *l, Job *job, const JobTx *jt) {
        if (plan_action_type_is_mdev(job->actions[jt->start].type)) {
                job_run_mdev_tx(l, job, jt);
                return;
        }
        Tx t = {
                .e = l->e,
                .lane = l,
                .job = job,
                .number = job->actions[jt->start].transaction,
                .actions = job->actions + jt->start,
                .n_actions = jt->end - jt->start,
        };

        t.devices = calloc(t.n_actions, sizeof(TxDevice));
        if (t.devices) {
                int r = 0;
                for (size_t k = 0; k < t.n_actions && r >= 0; k++)
                        r = tx_add_device(&t, &t.actions[k]);
                if (r >= 0)
                        tx_run(&t);
                else
                        tx_post_failure(&t, false);
        }
        tx_done(&t);
}
