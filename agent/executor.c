/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "executor.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "pci-address.h"
#include "strv.h"
#include "sysfs-write.h"
#include "sysfs.h"

/*
 * Locking: one mutex (Core.lock) guards everything shared between the loop, the lanes and the
 * I/O workers: the event queue, the job queues and the transactions' progress, the stuck list, the
 * abandoned count and each worker's request slot. Nothing blocking runs under it. Abandoned workers outlive
 * the Executor, so what they touch (Core) is reference counted.
 */

static const char *const executor_event_type_table[_EXECUTOR_EVENT_TYPE_MAX] = {
        [EXECUTOR_EVENT_DEVICE] = "device",
        [EXECUTOR_EVENT_RELEASED] = "released",
        [EXECUTOR_EVENT_JOB_DONE] = "job-done",
};

const char *executor_event_type_to_string(ExecutorEventType t) {
        return t >= 0 && t < _EXECUTOR_EVENT_TYPE_MAX ? executor_event_type_table[t] : NULL;
}

/* How often tx_ensure_driver() looks for a freshly loaded driver's directory. */
#define EXECUTOR_DRIVER_POLL_USEC (10 * 1000)
/* PLAN_VERIFY_DRIVER_SETTLE's reads without a notify: from settle_poll_usec, doubling up to this. */
#define EXECUTOR_SETTLE_POLL_MAX_USEC (32 * 1000ULL)

static uint64_t now_usec(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                abort(); /* cannot fail with a valid clock id */
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

/* ---- shared core: events to the loop, stuck functions ----------------------------------------- */

typedef struct EventNode {
        ExecutorEvent ev;
        char *address;
        char *reason;
        struct EventNode *next;
} EventNode;

typedef struct StuckEntry {
        char address[PCI_ADDRESS_STRING_MAX];
        char *reason;
        struct StuckEntry *next;
} StuckEntry;

typedef struct Core {
        pthread_mutex_t lock;
        unsigned n_ref;
        int event_fd;
        EventNode *events, **events_tail;
        StuckEntry *stuck;
        unsigned n_abandoned;
} Core;

static void event_node_free(EventNode *n) {
        if (!n)
                return;
        free(n->address);
        free(n->reason);
        free(n);
}

static Core *core_new(void) {
        Core *c = calloc(1, sizeof(Core));

        if (!c)
                return NULL;
        c->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->event_fd < 0) {
                int r = errno;
                free(c);
                errno = r;
                return NULL;
        }
        (void)pthread_mutex_init(&c->lock, NULL);
        c->n_ref = 1;
        c->events_tail = &c->events;
        return c;
}

static void core_unref(Core *c) {
        unsigned n;

        if (!c)
                return;
        pthread_mutex_lock(&c->lock);
        n = --c->n_ref;
        pthread_mutex_unlock(&c->lock);
        if (n > 0)
                return;
        while (c->events) {
                EventNode *e = c->events;
                c->events = e->next;
                event_node_free(e);
        }
        while (c->stuck) {
                StuckEntry *s = c->stuck;
                c->stuck = s->next;
                free(s->reason);
                free(s);
        }
        (void)close(c->event_fd);
        (void)pthread_mutex_destroy(&c->lock);
        free(c);
}

/* Queue an event for the loop. Call with c->lock held. On OOM the event is lost; the loop then learns
 * the outcome from uevents and the next plan (nothing else can be done from a worker). */
static EventNode *core_post_locked(
        Core *c, ExecutorEventType type, uint64_t job, unsigned transaction, const char *address,
        DeviceState state, int error, const char *reason) {
        EventNode *n = calloc(1, sizeof(EventNode));
        uint64_t one = 1;

        if (!n)
                return NULL;
        n->ev = (ExecutorEvent){
                .type = type,
                .job = job,
                .transaction = transaction,
                .state = state,
                .error = error,
        };
        n->address = address ? strdup(address) : NULL;
        n->reason = reason ? strdup(reason) : NULL;
        *c->events_tail = n;
        c->events_tail = &n->next;
        /* An eventfd counter cannot overflow from these writes; EAGAIN would mean it is already readable. */
        (void)!write(c->event_fd, &one, sizeof(one));
        return n;
}

static StuckEntry *core_find_stuck_locked(Core *c, const char *address) {
        for (StuckEntry *s = c->stuck; s; s = s->next)
                if (streq(s->address, address))
                        return s;
        return NULL;
}

static void core_remove_stuck_locked(Core *c, const char *address) {
        for (StuckEntry **p = &c->stuck; *p; p = &(*p)->next)
                if (streq((*p)->address, address)) {
                        StuckEntry *s = *p;
                        *p = s->next;
                        free(s->reason);
                        free(s);
                        return;
                }
}

/* ---- I/O workers -------------------------------------------------------------------------------- */

typedef enum IoOp {
        IO_WRITE, /* write value to path */
        IO_READ, /* read path (trailing newline stripped) */
} IoOp;

typedef struct IoWorker {
        Core *core; /* owns a reference */
        pthread_t thread;
        pthread_cond_t request_cond, done_cond; /* with core->lock */
        ExecutorWriteFunc write;
        void *write_userdata;

        /* Request slot, under core->lock. */
        bool has_request, done, abandoned, quit;
        IoOp op;
        char *path, *value;
        char address[PCI_ADDRESS_STRING_MAX]; /* for the RELEASED event */
        uint64_t started_usec;
        int r;
        char *result, *message;
} IoWorker;

static int write_default(const char *path, const char *value, char **ret_message, void *userdata) {
        return sysfs_write(path, value, ret_message);
}

static void io_worker_clear_request(IoWorker *w) {
        w->path = mfree(w->path);
        w->value = mfree(w->value);
        w->result = mfree(w->result);
        w->message = mfree(w->message);
        w->has_request = w->done = false;
}

static void io_worker_destroy(IoWorker *w) {
        Core *c = w->core;

        io_worker_clear_request(w);
        (void)pthread_cond_destroy(&w->request_cond);
        (void)pthread_cond_destroy(&w->done_cond);
        free(w);
        core_unref(c);
}

static int io_perform(
        IoWorker *w, IoOp op, const char *path, const char *value, char **ret_result, char **ret_message) {
        _cleanup_free_ char *dir = NULL;
        const char *slash;

        switch (op) {
        case IO_WRITE:
                return w->write(path, value, ret_message, w->write_userdata);
        case IO_READ:
                slash = strrchr(path, '/');
                if (!slash)
                        return -EINVAL;
                dir = strndup(path, (size_t)(slash - path));
                if (!dir)
                        return -ENOMEM;
                return sysfs_read_string(dir, slash + 1, ret_result);
        }
        return -EINVAL;
}

static void *io_worker_main(void *userdata) {
        IoWorker *w = userdata;
        Core *c = w->core;
        bool abandoned = false;

        pthread_mutex_lock(&c->lock);
        for (;;) {
                IoOp op;
                char *path, *value, *result = NULL, *message = NULL;
                int r;

                while (!w->has_request && !w->quit)
                        pthread_cond_wait(&w->request_cond, &c->lock);
                if (w->quit)
                        break;

                /* Taken: the slot's strings stay until the lane collects the result. */
                w->has_request = false;
                op = w->op;
                path = w->path;
                value = w->value;
                pthread_mutex_unlock(&c->lock);

                r = io_perform(w, op, path, value, &result, &message);

                pthread_mutex_lock(&c->lock);
                w->r = r;
                w->result = result;
                w->message = message;
                w->done = true;
                if (w->abandoned) {
                        /* Nobody waits any more: tell the loop the function is free again, and go. */
                        _cleanup_free_ char *q = NULL, *reason = NULL;
                        uint64_t ms = (now_usec() - w->started_usec) / 1000;

                        q = value ? sysfs_write_quote_value(value) : NULL;
                        if (asprintf(
                                    &reason,
                                    "%s %s%s%s returned after %" PRIu64 " ms, past its deadline%s%s",
                                    op == IO_WRITE ? "write of" : "read of",
                                    op == IO_WRITE ? strempty(q) : "", op == IO_WRITE ? " to " : "", path,
                                    ms, message ? ": " : "", strempty(message)) < 0)
                                reason = NULL;
                        core_remove_stuck_locked(c, w->address);
                        c->n_abandoned--;
                        (void)core_post_locked(
                                c, EXECUTOR_EVENT_RELEASED, 0, 0, w->address, DEVICE_STATE_PENDING, r,
                                reason);
                        abandoned = true;
                        break;
                }
                pthread_cond_signal(&w->done_cond);
        }
        pthread_mutex_unlock(&c->lock);

        if (abandoned)
                io_worker_destroy(w); /* detached: nobody joins */
        return NULL;
}

/* Start a thread with every signal blocked: signals are the loop's (sd-event signalfd), and a stray
 * EINTR must never turn one sysfs store into two. */
static int thread_start(pthread_t *t, void *(*fn)(void *), void *arg) {
        sigset_t all, old;
        int r;

        sigfillset(&all);
        r = -pthread_sigmask(SIG_SETMASK, &all, &old);
        if (r < 0)
                return r;
        r = -pthread_create(t, NULL, fn, arg);
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        return r;
}

static int io_worker_new(Core *c, ExecutorWriteFunc write, void *write_userdata, IoWorker **ret) {
        pthread_condattr_t attr;
        IoWorker *w;
        int r;

        w = calloc(1, sizeof(IoWorker));
        if (!w)
                return -ENOMEM;
        w->write = write;
        w->write_userdata = write_userdata;
        (void)pthread_condattr_init(&attr);
        (void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        (void)pthread_cond_init(&w->request_cond, &attr);
        (void)pthread_cond_init(&w->done_cond, &attr);
        (void)pthread_condattr_destroy(&attr);

        pthread_mutex_lock(&c->lock);
        c->n_ref++;
        pthread_mutex_unlock(&c->lock);
        w->core = c;

        r = thread_start(&w->thread, io_worker_main, w);
        if (r < 0) {
                io_worker_destroy(w);
                return r;
        }
        *ret = w;
        return 0;
}

/* An idle worker: stop and join it. */
static void io_worker_stop(IoWorker *w) {
        if (!w)
                return;
        pthread_mutex_lock(&w->core->lock);
        w->quit = true;
        pthread_cond_signal(&w->request_cond);
        pthread_mutex_unlock(&w->core->lock);
        (void)pthread_join(w->thread, NULL);
        io_worker_destroy(w);
}

/* ---- executor ----------------------------------------------------------------------------------- */

typedef struct JobAction {
        PlanActionType type;
        unsigned transaction;
        char address[PCI_ADDRESS_STRING_MAX];
        char *driver;
        PlanVerify verify;
        uint32_t value;
} JobAction;

/* One transaction of a job: its actions and what it must not run beside (conflict keys). */
typedef struct JobTx {
        size_t start, end; /* [start, end) in Job.actions */
        /* The function addresses, the PF address of each VF and "iommu-group:N" of each function
         * (read at submit): two transactions sharing a key never run at the same time, and the later
         * one waits for the earlier. */
        char **keys;
        bool started, done;
} JobTx;

typedef struct Job {
        uint64_t id;
        JobAction *actions;
        size_t n_actions;
        JobTx *txs;
        size_t n_txs, n_txs_done;
        unsigned n_converged, n_failed, n_stuck; /* under core->lock */
        bool urgent; /* executor_submit_first(): runs between the transactions of a normal job */
        struct Job *next;
} Job;

/* A thread that runs transactions (up to ExecutorOptions.max_parallel of them). */
typedef struct Lane {
        Executor *e;
        pthread_t thread;
        IoWorker *worker; /* this lane's thread only */
} Lane;

struct Executor {
        sd_event *event;
        sd_event_source *io;
        ExecutorEventHandler handler;
        void *userdata;

        /* Immutable after executor_new(). */
        char *root; /* "" for the real /sys */
        uint64_t timeout_usec;
        uint64_t settle_usec, settle_probe_usec, settle_poll_usec;
        unsigned max_abandoned;
        unsigned max_parallel;
        ExecutorJournalFunc journal;
        void *journal_userdata;
        ExecutorWriteFunc write;
        void *write_userdata;
        ExecutorLoadDriverFunc load_driver;
        void *load_driver_userdata;

        Core *core;

        /* Under core->lock. */
        pthread_cond_t jobs_cond; /* work queued, a transaction done, or quit */
        pthread_cond_t bind_cond; /* bind_seq moved */
        uint64_t bind_seq; /* kernel "bind" uevents reported by executor_notify_bind() */
        Job *jobs, **jobs_tail;
        Job *urgent, **urgent_tail; /* executor_submit_first(), in order */
        size_t n_jobs;
        Job *current; /* the normal job whose transactions the lanes take now */
        unsigned n_busy; /* lanes running a transaction or an urgent job */
        bool quit;
        uint64_t next_job;

        /* Loop thread only. */
        Lane *lanes; /* max_parallel of them, started as work needs them */
        unsigned n_lanes;
};
static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        for (size_t i = 0; i < j->n_actions; i++)
                free(j->actions[i].driver);
        free(j->actions);
        for (size_t i = 0; i < j->n_txs; i++)
                strv_free(j->txs[i].keys);
        free(j->txs);
        free(j);
        return NULL;
}

/*
 * Run one access on the current worker (starting one if needed) and wait at most the deadline.
 * Returns the access's own result (>= 0 or -errno; *ret_result / *ret_message filled by it), or
 * -ETIMEDOUT with *ret_stuck = true when the deadline passed: the worker is then abandoned and the
 * function |address| recorded as stuck with *ret_message as reason. -EBUSY with a message when no
 * worker may be started because too many are abandoned.
 */
static int runner_io(
        Lane *l, const char *address, IoOp op, const char *path, const char *value, char **ret_result,
        char **ret_message, bool *ret_stuck) {
        Executor *e = l->e;
        Core *c = e->core;
        IoWorker *w;
        struct timespec deadline;
        uint64_t until;
        int r;

        *ret_stuck = false;
        if (!l->worker) {
                unsigned n;

                pthread_mutex_lock(&c->lock);
                n = c->n_abandoned;
                pthread_mutex_unlock(&c->lock);
                if (n >= e->max_abandoned) {
                        if (asprintf(
                                    ret_message,
                                    "%u sysfs writes are stuck in the kernel (the limit); no new work until "
                                    "one returns",
                                    n) < 0)
                                *ret_message = NULL;
                        return -EBUSY;
                }
                r = io_worker_new(c, e->write, e->write_userdata, &l->worker);
                if (r < 0) {
                        if (asprintf(
                                    ret_message, "Failed to start an I/O worker: %s",
                                    strerrordesc_np(-r) ?: "unknown error") < 0)
                                *ret_message = NULL;
                        return r;
                }
        }
        w = l->worker;

        pthread_mutex_lock(&c->lock);
        w->op = op;
        w->path = strdup(path);
        w->value = value ? strdup(value) : NULL;
        if (!w->path || (value && !w->value)) {
                io_worker_clear_request(w);
                pthread_mutex_unlock(&c->lock);
                return -ENOMEM;
        }
        (void)snprintf(w->address, sizeof(w->address), "%s", address);
        w->started_usec = now_usec();
        w->has_request = true;
        w->done = false;
        pthread_cond_signal(&w->request_cond);

        until = w->started_usec + e->timeout_usec;
        deadline = (struct timespec){ .tv_sec = (time_t)(until / 1000000ULL),
                                      .tv_nsec = (long)(until % 1000000ULL) * 1000L };
        while (!w->done) {
                r = pthread_cond_timedwait(&w->done_cond, &c->lock, &deadline);
                if (r == ETIMEDOUT && !w->done) {
                        _cleanup_free_ char *q = NULL;
                        StuckEntry *s;

                        /* Stuck in the kernel: no way to cancel it. Leave the worker to it. */
                        w->abandoned = true;
                        c->n_abandoned++;
                        q = value ? sysfs_write_quote_value(value) : NULL;
                        if (asprintf(
                                    ret_message, "%s%s%s%s did not return within %" PRIu64 " ms",
                                    op == IO_WRITE ? "write of " : "read of ",
                                    op == IO_WRITE ? strempty(q) : "", op == IO_WRITE ? " to " : "", path,
                                    e->timeout_usec / 1000) < 0)
                                *ret_message = NULL;
                        s = calloc(1, sizeof(StuckEntry));
                        if (s) {
                                (void)snprintf(s->address, sizeof(s->address), "%s", address);
                                s->reason = *ret_message ? strdup(*ret_message) : NULL;
                                s->next = c->stuck;
                                c->stuck = s;
                        }
                        pthread_mutex_unlock(&c->lock);
                        (void)pthread_detach(w->thread);
                        l->worker = NULL;
                        *ret_stuck = true;
                        return -ETIMEDOUT;
                }
        }
        r = w->r;
        if (ret_result)
                *ret_result = TAKE_PTR(w->result);
        *ret_message = TAKE_PTR(w->message);
        io_worker_clear_request(w);
        pthread_mutex_unlock(&c->lock);
        return r;
}

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

/* The number of kernel "bind" uevents reported so far. */
static uint64_t executor_get_bind_seq(Executor *e) {
        uint64_t seq;

        pthread_mutex_lock(&e->core->lock);
        seq = e->bind_seq;
        pthread_mutex_unlock(&e->core->lock);
        return seq;
}

/* Sleep until a "bind" after *seq is reported or |until| (CLOCK_MONOTONIC usec); *seq: now. As the
 * plain sleep it replaces, executor_free() does not cut it short: the kernel's probe still comes. */
static void executor_wait_bind(Executor *e, uint64_t *seq, uint64_t until) {
        struct timespec deadline = { .tv_sec = (time_t)(until / 1000000ULL),
                                     .tv_nsec = (long)(until % 1000000ULL) * 1000L };

        pthread_mutex_lock(&e->core->lock);
        while (e->bind_seq == *seq)
                if (pthread_cond_timedwait(&e->bind_cond, &e->core->lock, &deadline) == ETIMEDOUT)
                        break;
        *seq = e->bind_seq;
        pthread_mutex_unlock(&e->core->lock);
}

void executor_notify_bind(Executor *e) {
        if (!e)
                return;
        pthread_mutex_lock(&e->core->lock);
        e->bind_seq++;
        pthread_cond_broadcast(&e->bind_cond);
        pthread_mutex_unlock(&e->core->lock);
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
        for (size_t i = 0; i < t->n_actions; i++) {
                r = tx_run_action(t, &t->actions[i]);
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

/* Under core->lock: the first job of a queue (e->urgent or e->jobs, with its tail), taken off it;
 * NULL when none. */
static Job *executor_pop_locked(Executor *e, Job **head, Job ***tail) {
        Job *job = *head;

        if (!job)
                return NULL;
        *head = job->next;
        if (!*head)
                *tail = head;
        job->next = NULL;
        e->n_jobs--;
        return job;
}

static Job *executor_pop_urgent_locked(Executor *e) {
        return executor_pop_locked(e, &e->urgent, &e->urgent_tail);
}

static Job *executor_pop_job_locked(Executor *e) {
        return executor_pop_locked(e, &e->jobs, &e->jobs_tail);
}

static bool keys_overlap(char *const *a, char *const *b) {
        for (size_t i = 0; a && a[i]; i++)
                if (strv_contains(b, a[i]))
                        return true;
        return false;
}

/* Under core->lock: the first transaction of |job| not started whose keys meet no transaction before
 * it that is not done (so conflicting transactions keep the plan's order); NULL when none may start. */
static JobTx *job_next_tx_locked(Job *job) {
        for (size_t i = 0; i < job->n_txs; i++) {
                JobTx *t = &job->txs[i];
                bool blocked = false;

                if (t->started)
                        continue;
                for (size_t k = 0; k < i && !blocked; k++)
                        blocked = !job->txs[k].done && keys_overlap(t->keys, job->txs[k].keys);
                if (!blocked)
                        return t;
        }
        return NULL;
}

/* Under core->lock: JOB_DONE with the job's counts. */
static void job_post_done_locked(Executor *e, Job *job) {
        EventNode *n = core_post_locked(
                e->core, EXECUTOR_EVENT_JOB_DONE, job->id, 0, NULL, DEVICE_STATE_PENDING, 0, NULL);
        if (n) {
                n->ev.n_converged = job->n_converged;
                n->ev.n_failed = job->n_failed;
                n->ev.n_stuck = job->n_stuck;
        }
}

/* One transaction of |job|, on lane |l|. */
static void job_run_tx(Lane *l, Job *job, const JobTx *jt) {
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

/*
 * A lane: urgent jobs first (each whole, its transactions in order, on this lane), then the
 * transactions of the current normal job that may start (other lanes take the others), then the next
 * normal job. A normal job is done, and the next one taken, when its last transaction is done.
 */
static void *lane_main(void *userdata) {
        Lane *l = userdata;
        Executor *e = l->e;
        Core *c = e->core;

        pthread_mutex_lock(&c->lock);
        while (!e->quit) {
                Job *job;
                JobTx *jt;

                job = executor_pop_urgent_locked(e);
                if (job) {
                        bool quit = false;

                        e->n_busy++;
                        pthread_mutex_unlock(&c->lock);
                        for (size_t i = 0; i < job->n_txs && !quit; i++) {
                                job_run_tx(l, job, &job->txs[i]);
                                pthread_mutex_lock(&c->lock);
                                quit = e->quit;
                                pthread_mutex_unlock(&c->lock);
                        }
                        pthread_mutex_lock(&c->lock);
                        e->n_busy--;
                        if (!quit)
                                job_post_done_locked(e, job);
                        job_free(job);
                        pthread_cond_broadcast(&e->jobs_cond);
                        continue;
                }

                if (!e->current) {
                        e->current = executor_pop_job_locked(e);
                        if (!e->current) {
                                pthread_cond_wait(&e->jobs_cond, &c->lock);
                                continue;
                        }
                        if (e->current->n_txs == 0) {
                                job_post_done_locked(e, e->current);
                                e->current = job_free(e->current);
                                continue;
                        }
                        /* Other lanes may take its transactions too. */
                        pthread_cond_broadcast(&e->jobs_cond);
                }

                job = e->current;
                jt = job_next_tx_locked(job);
                if (!jt) {
                        /* Every transaction started, or the next ones wait for a conflicting one. */
                        pthread_cond_wait(&e->jobs_cond, &c->lock);
                        continue;
                }
                jt->started = true;
                e->n_busy++;
                pthread_mutex_unlock(&c->lock);

                job_run_tx(l, job, jt);

                pthread_mutex_lock(&c->lock);
                e->n_busy--;
                jt->done = true;
                if (++job->n_txs_done == job->n_txs) {
                        job_post_done_locked(e, job);
                        e->current = job_free(job);
                }
                pthread_cond_broadcast(&e->jobs_cond);
        }
        pthread_mutex_unlock(&c->lock);

        io_worker_stop(l->worker);
        l->worker = NULL;
        return NULL;
}

/* ---- the loop side ------------------------------------------------------------------------------ */

static void executor_log_event(const ExecutorEvent *ev) {
        char field[sizeof(JOURNAL_FIELD_PCI_ADDR "=") + PCI_ADDRESS_STRING_MAX];

        (void)snprintf(field, sizeof(field), JOURNAL_FIELD_PCI_ADDR "=%s", strempty(ev->address));
        switch (ev->type) {
        case EXECUTOR_EVENT_DEVICE:
                if (ev->state == DEVICE_STATE_STUCK)
                        (void)log_field_full_errno(
                                LOG_ERR, ev->error, field, MESSAGE_ID_DEVICE_STUCK, "%s is stuck: %s",
                                ev->address, strna(ev->reason));
                else if (ev->state == DEVICE_STATE_FAILED)
                        (void)log_field_full_errno(
                                LOG_WARNING, ev->error, field, MESSAGE_ID_DEVICE_FAILED, "%s failed: %s",
                                ev->address, strna(ev->reason));
                else
                        log_debug(
                                "%s converged (job %" PRIu64 ", transaction %u)", ev->address, ev->job,
                                ev->transaction);
                break;
        case EXECUTOR_EVENT_RELEASED:
                (void)log_field_full_errno(
                        LOG_NOTICE, 0, field, NULL, "%s is no longer stuck: %s", ev->address,
                        strna(ev->reason));
                break;
        default:
                break;
        }
}

static int on_executor_event(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Executor *e = userdata;
        Core *c = e->core;
        uint64_t n;

        (void)!read(fd, &n, sizeof(n)); /* EAGAIN: already drained; the queue is what counts */
        for (;;) {
                EventNode *node;

                pthread_mutex_lock(&c->lock);
                node = c->events;
                if (node) {
                        c->events = node->next;
                        if (!c->events)
                                c->events_tail = &c->events;
                }
                pthread_mutex_unlock(&c->lock);
                if (!node)
                        break;

                node->ev.address = node->address;
                node->ev.reason = node->reason;
                executor_log_event(&node->ev);
                if (e->handler)
                        e->handler(e, &node->ev, e->userdata);
                event_node_free(node);
        }
        return 0;
}

int executor_new(
        sd_event *event, const ExecutorOptions *options, ExecutorEventHandler handler, void *userdata,
        Executor **ret) {
        _cleanup_(executor_freep) Executor *e = NULL;
        pthread_condattr_t attr;
        const char *root;
        int r;

        if (!event || !ret)
                return -EINVAL;

        e = calloc(1, sizeof(Executor));
        if (!e)
                return -ENOMEM;
        e->event = sd_event_ref(event);
        e->handler = handler;
        e->userdata = userdata;
        e->jobs_tail = &e->jobs;
        e->urgent_tail = &e->urgent;
        (void)pthread_condattr_init(&attr);
        (void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        (void)pthread_cond_init(&e->jobs_cond, &attr);
        (void)pthread_cond_init(&e->bind_cond, &attr);
        (void)pthread_condattr_destroy(&attr);

        root = options && options->sysfs_root ? options->sysfs_root : "";
        if (streq(root, "/"))
                root = "";
        e->root = strdup(root);
        if (!e->root)
                return -ENOMEM;
        e->timeout_usec = options && options->write_timeout_usec > 0 ? options->write_timeout_usec
                                                                     : EXECUTOR_WRITE_TIMEOUT_USEC_DEFAULT;
        e->settle_usec =
                options && options->settle_usec > 0 ? options->settle_usec : EXECUTOR_SETTLE_USEC_DEFAULT;
        e->settle_probe_usec = options && options->settle_probe_usec > 0
                ? options->settle_probe_usec
                : EXECUTOR_SETTLE_PROBE_USEC_DEFAULT;
        e->settle_poll_usec = options && options->settle_poll_usec > 0 ? options->settle_poll_usec
                                                                       : EXECUTOR_SETTLE_POLL_USEC_DEFAULT;
        e->max_abandoned = options && options->max_abandoned > 0 ? options->max_abandoned
                                                                 : EXECUTOR_MAX_ABANDONED_DEFAULT;
        e->max_parallel =
                options && options->max_parallel > 0 ? options->max_parallel : EXECUTOR_MAX_PARALLEL_DEFAULT;
        e->lanes = calloc(e->max_parallel, sizeof(Lane));
        if (!e->lanes)
                return -ENOMEM;
        e->journal = options ? options->journal : NULL;
        e->journal_userdata = options ? options->journal_userdata : NULL;
        e->write = options && options->write ? options->write : write_default;
        e->write_userdata = options ? options->write_userdata : NULL;
        e->load_driver = options ? options->load_driver : NULL;
        e->load_driver_userdata = options ? options->load_driver_userdata : NULL;

        e->core = core_new();
        if (!e->core)
                return negative_errno();

        r = sd_event_add_io(event, &e->io, e->core->event_fd, EPOLLIN, on_executor_event, e);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(e->io, "executor");

        *ret = TAKE_PTR(e);
        return 0;
}

Executor *executor_free(Executor *e) {
        if (!e)
                return NULL;

        if (e->core) {
                pthread_mutex_lock(&e->core->lock);
                e->quit = true;
                pthread_cond_broadcast(&e->jobs_cond);
                pthread_mutex_unlock(&e->core->lock);
        }
        for (unsigned i = 0; i < e->n_lanes; i++)
                (void)pthread_join(e->lanes[i].thread, NULL);
        free(e->lanes);
        e->current = job_free(e->current);
        for (Job *j; (j = executor_pop_urgent_locked(e));)
                job_free(j);
        for (Job *j; (j = executor_pop_job_locked(e));)
                job_free(j);
        sd_event_source_disable_unref(e->io);
        sd_event_unref(e->event);
        core_unref(e->core);
        (void)pthread_cond_destroy(&e->jobs_cond);
        (void)pthread_cond_destroy(&e->bind_cond);
        free(e->root);
        free(e);
        return NULL;
}

static bool driver_name_is_valid(const char *s) {
        /* One path component below /sys/bus/pci/drivers/; the kernel's names are short. */
        return s && *s && strlen(s) < 64 && !strchr(s, '/') && !streq(s, ".") && !streq(s, "..");
}

/* Loop thread: start one more lane. */
static int lane_start(Executor *e) {
        Lane *l = &e->lanes[e->n_lanes];
        int r;

        assert(e->n_lanes < e->max_parallel);
        l->e = e;
        r = thread_start(&l->thread, lane_main, l);
        if (r < 0)
                return r;
        e->n_lanes++;
        return 0;
}

/* |key| (a new string) into |keys| unless there. */
static int keys_add(char ***keys, char *key) {
        if (!key)
                return -ENOMEM;
        if (strv_contains(*keys, key)) {
                free(key);
                return 0;
        }
        return strv_push(keys, key);
}

/*
 * Split |job|'s actions into its transactions, each with its conflict keys: every function's address,
 * its IOMMU group ("iommu-group:N", from the iommu_group link) and, for a VF, its PF's address (the
 * physfn link; Documentation/ABI/testing/sysfs-bus-pci). A function not there (yet) has its address
 * only. Reads links on the loop thread: they take no device lock. Without |keys| (an urgent job: it
 * runs whole on one lane, and races the kernel's first probe), the transactions only.
 */
static int job_split(Executor *e, Job *job, bool keys) {
        size_t n = 0;

        for (size_t i = 0; i < job->n_actions; i++)
                if (i == 0 || job->actions[i].transaction != job->actions[i - 1].transaction)
                        n++;
        job->txs = calloc(n ?: 1, sizeof(JobTx));
        if (!job->txs)
                return -ENOMEM;
        for (size_t i = 0; i < job->n_actions; i++) {
                const JobAction *a = &job->actions[i];
                _cleanup_free_ char *dir = NULL, *group = NULL, *pf = NULL;
                JobTx *t;
                int r;

                if (i == 0 || a->transaction != job->actions[i - 1].transaction) {
                        t = &job->txs[job->n_txs++];
                        t->start = i;
                } else
                        t = &job->txs[job->n_txs - 1];
                t->end = i + 1;
                if (!keys || strv_contains(t->keys, a->address))
                        continue;
                r = keys_add(&t->keys, strdup(a->address));
                if (r < 0)
                        return r;
                if (asprintf(&dir, "%s%s/%s", e->root, SYSFS_PCI_DEVICES, a->address) < 0)
                        return -ENOMEM;
                if (sysfs_read_link_basename(dir, SYSFS_ATTR_IOMMU_GROUP, &group) >= 0) {
                        char *k;
                        if (asprintf(&k, "iommu-group:%s", group) < 0)
                                return -ENOMEM;
                        r = keys_add(&t->keys, k);
                        if (r < 0)
                                return r;
                }
                if (sysfs_read_link_basename(dir, SYSFS_ATTR_PHYSFN, &pf) >= 0) {
                        r = keys_add(&t->keys, TAKE_PTR(pf));
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int executor_submit_internal(Executor *e, const Plan *plan, bool urgent, uint64_t *ret_job) {
        Job *job;
        unsigned last = 0, want;
        uint64_t id;
        int r;

        if (!e || !plan)
                return -EINVAL;

        /* Validate first: these strings become paths and values under /sys. */
        for (size_t i = 0; i < plan->n_actions; i++) {
                const PlanAction *a = &plan->actions[i];
                bool needs_driver = a->type == PLAN_ACTION_SET_OVERRIDE || a->type == PLAN_ACTION_UNBIND;

                if (a->type < 0 || a->type >= _PLAN_ACTION_TYPE_MAX || !pci_address_is_valid(a->address))
                        return -EINVAL;
                if (needs_driver && !driver_name_is_valid(a->driver))
                        return -EINVAL;
                if (a->driver && !driver_name_is_valid(a->driver))
                        return -EINVAL;
                /* Transactions contiguous and increasing: each runs once, as a whole. */
                if (a->transaction == 0 || a->transaction < last)
                        return -EINVAL;
                last = a->transaction;
        }

        pthread_mutex_lock(&e->core->lock);
        r = e->core->n_abandoned >= e->max_abandoned    ? -EBUSY
                : e->n_jobs >= EXECUTOR_MAX_QUEUED_JOBS ? -EBUSY
                                                        : 0;
        pthread_mutex_unlock(&e->core->lock);
        if (r < 0)
                return r;

        job = calloc(1, sizeof(Job));
        if (!job)
                return -ENOMEM;
        job->actions = calloc(plan->n_actions ?: 1, sizeof(JobAction));
        if (!job->actions) {
                free(job);
                return -ENOMEM;
        }
        for (size_t i = 0; i < plan->n_actions; i++) {
                const PlanAction *a = &plan->actions[i];
                JobAction *j = &job->actions[i];

                j->type = a->type;
                j->transaction = a->transaction;
                (void)snprintf(j->address, sizeof(j->address), "%s", a->address);
                j->verify = a->verify;
                j->value = a->value;
                if (a->driver) {
                        j->driver = strdup(a->driver);
                        if (!j->driver) {
                                job->n_actions = i;
                                job_free(job);
                                return -ENOMEM;
                        }
                }
        }
        job->n_actions = plan->n_actions;

        r = job_split(e, job, !urgent);
        if (r >= 0 && e->n_lanes == 0)
                r = lane_start(e);
        if (r < 0) {
                job_free(job);
                return r;
        }

        pthread_mutex_lock(&e->core->lock);
        id = job->id = ++e->next_job;
        job->urgent = urgent;
        /* Lanes for the work: one per transaction that may run now, at most max_parallel. */
        want = e->n_busy + (urgent ? 1 : job->n_txs) + (e->current ? 1 : 0);
        if (urgent) {
                *e->urgent_tail = job;
                e->urgent_tail = &job->next;
        } else {
                *e->jobs_tail = job;
                e->jobs_tail = &job->next;
        }
        e->n_jobs++;
        pthread_mutex_unlock(&e->core->lock);
        /* One idle lane for an urgent job (waking every lane takes the CPU from the probe it races).
         * After the unlock: a lane woken with the lock still held would only block on it again, one
         * more switch on a single CPU. */
        if (urgent)
                pthread_cond_signal(&e->jobs_cond);
        else
                pthread_cond_broadcast(&e->jobs_cond);

        if (want > e->max_parallel)
                want = e->max_parallel;
        while (e->n_lanes < want && lane_start(e) >= 0)
                ; /* best effort: the lanes there are take the work */

        if (ret_job)
                *ret_job = id; /* not job->id: a lane may have run and freed it by now */
        return 0;
}

int executor_submit(Executor *e, const Plan *plan, uint64_t *ret_job) {
        return executor_submit_internal(e, plan, false, ret_job);
}

int executor_submit_first(Executor *e, const Plan *plan, uint64_t *ret_job) {
        return executor_submit_internal(e, plan, true, ret_job);
}

bool executor_is_stuck(Executor *e, const char *address) {
        bool b;

        if (!e || !address)
                return false;
        pthread_mutex_lock(&e->core->lock);
        b = core_find_stuck_locked(e->core, address) != NULL;
        pthread_mutex_unlock(&e->core->lock);
        return b;
}

bool executor_is_busy(Executor *e) {
        bool b;

        if (!e)
                return false;
        pthread_mutex_lock(&e->core->lock);
        b = e->jobs || e->urgent || e->current || e->n_busy > 0;
        pthread_mutex_unlock(&e->core->lock);
        return b;
}

unsigned executor_get_n_abandoned(Executor *e) {
        unsigned n;

        if (!e)
                return 0;
        pthread_mutex_lock(&e->core->lock);
        n = e->core->n_abandoned;
        pthread_mutex_unlock(&e->core->lock);
        return n;
}
