/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The executor's thread machinery (executor.h, "Threads"): the shared core (events to the loop, the
 * stuck functions), the I/O workers that make each sysfs access with a deadline and are abandoned
 * when one overruns, the job queues and the lanes that take transactions from them, and the loop
 * side (executor_new(), executor_submit(), the eventfd handler). What a transaction writes and
 * verifies is executor-transaction.c's; the two share executor-internal.h.
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "event-priorities.h"
#include "executor-internal.h"
#include "executor.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "pci-address.h"
#include "strv.h"
#include "sysfs-write.h"
#include "sysfs.h"

static const char *const executor_event_type_table[_EXECUTOR_EVENT_TYPE_MAX] = {
        [EXECUTOR_EVENT_DEVICE] = "device",
        [EXECUTOR_EVENT_RELEASED] = "released",
        [EXECUTOR_EVENT_JOB_DONE] = "job-done",
        [EXECUTOR_EVENT_MDEV] = "mdev",
};

const char *executor_event_type_to_string(ExecutorEventType t) {
        return t >= 0 && t < _EXECUTOR_EVENT_TYPE_MAX ? executor_event_type_table[t] : NULL;
}

uint64_t now_usec(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                abort(); /* cannot fail with a valid clock id */
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

/* ---- shared core: events to the loop, stuck functions ----------------------------------------- */

static void event_node_free(EventNode *n) {
        if (!n)
                return;
        free(n->address);
        free(n->uuid);
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
EventNode *core_post_locked(
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

EventNode *core_post_mdev_locked(
        Core *c, uint64_t job, unsigned transaction, const char *key, const char *uuid, DeviceState state,
        int error, const char *reason) {
        EventNode *n = core_post_locked(c, EXECUTOR_EVENT_MDEV, job, transaction, key, state, error, reason);

        if (n) {
                n->uuid = strdup(strempty(uuid));
                /* Without it the event would read as another kind: drop the UUID's absence to "". */
        }
        return n;
}

StuckEntry *core_find_stuck_locked(Core *c, const char *address) {
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

static Job *job_free(Job *j) {
        if (!j)
                return NULL;
        for (size_t i = 0; i < j->n_actions; i++) {
                free(j->actions[i].driver);
                free(j->actions[i].parent);
                free(j->actions[i].mdev_type);
                free(j->actions[i].attr_name);
                free(j->actions[i].attr_value);
        }
        free(j->actions);
        for (size_t i = 0; i < j->n_txs; i++)
                strv_free(j->txs[i].keys);
        free(j->txs);
        free(j);
        return NULL;
}

/* executor-internal.h: one access, with the deadline. */
int runner_io(
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

/* The number of kernel "bind" uevents reported so far. */
uint64_t executor_get_bind_seq(Executor *e) {
        uint64_t seq;

        pthread_mutex_lock(&e->core->lock);
        seq = e->bind_seq;
        pthread_mutex_unlock(&e->core->lock);
        return seq;
}

/* Sleep until a "bind" after *seq is reported or |until| (CLOCK_MONOTONIC usec); *seq: now. As the
 * plain sleep it replaces, executor_free() does not cut it short: the kernel's probe still comes. */
void executor_wait_bind(Executor *e, uint64_t *seq, uint64_t until) {
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

/* Under core->lock: whether a lane could take more work now (an urgent job, or a transaction of the
 * current job that may start; a next job only when there is no current one). */
static bool executor_has_work_locked(Executor *e) {
        if (e->urgent)
                return true;
        if (!e->current)
                return e->jobs != NULL;
        return job_next_tx_locked(e->current) != NULL;
}

/*
 * Called by a lane right after it took work, with core->lock released: wake one idle lane when more
 * work may be taken now (|more|, computed under the lock). That lane, when it takes work, wakes the
 * next in the same way, so as many lanes run as there is work that shares no conflict key, and none
 * wakes only to find nothing: the 24 creates of one mdev parent share a key and run on one lane with
 * no other lane woken. A lane that finishes work takes the next itself (its loop), so a finished
 * transaction wakes nobody. A spurious wakeup costs one look at the queues.
 */
static void executor_wake_one(Executor *e, bool more) {
        if (more)
                pthread_cond_signal(&e->jobs_cond);
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
                bool more;

                job = executor_pop_urgent_locked(e);
                if (job) {
                        bool quit = false;

                        e->n_busy++;
                        more = executor_has_work_locked(e);
                        pthread_mutex_unlock(&c->lock);
                        executor_wake_one(e, more);
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
                more = executor_has_work_locked(e);
                pthread_mutex_unlock(&c->lock);
                executor_wake_one(e, more);

                job_run_tx(l, job, jt);

                pthread_mutex_lock(&c->lock);
                e->n_busy--;
                jt->done = true;
                if (++job->n_txs_done == job->n_txs) {
                        job_post_done_locked(e, job);
                        e->current = job_free(job);
                }
                /* No wakeup: this lane looks for the next work itself. */
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
        case EXECUTOR_EVENT_MDEV: {
                char mfield[sizeof(JOURNAL_FIELD_MDEV_UUID "=") + MDEV_UUID_STRING_MAX];
                bool vgpu = !ev->uuid || !*ev->uuid;
                const char *what = vgpu ? "vGPU of" : "mdev";
                const char *who = vgpu ? strna(ev->address) : ev->uuid;

                (void)snprintf(mfield, sizeof(mfield), JOURNAL_FIELD_MDEV_UUID "=%s", strempty(ev->uuid));
                if (ev->state == DEVICE_STATE_STUCK || ev->state == DEVICE_STATE_FAILED)
                        (void)log_field_full_errno(
                                ev->state == DEVICE_STATE_STUCK ? LOG_ERR : LOG_WARNING, ev->error,
                                vgpu ? field : mfield,
                                ev->state == DEVICE_STATE_STUCK ? MESSAGE_ID_DEVICE_STUCK
                                                                : MESSAGE_ID_DEVICE_FAILED,
                                "%s %s %s: %s", what, who, device_state_to_string(ev->state),
                                strna(ev->reason));
                else
                        log_debug(
                                "%s %s converged (job %" PRIu64 ", transaction %u)", what, who, ev->job,
                                ev->transaction);
                break;
        }
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
                node->ev.uuid = node->ev.type == EXECUTOR_EVENT_MDEV ? (node->uuid ?: "") : NULL;
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
        r = sd_event_source_set_priority(e->io, EVENT_PRIORITY_EXECUTOR);
        if (r < 0)
                return r;

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
                if (keys && plan_action_type_is_mdev(a->type) && a->type != PLAN_ACTION_SET_VGPU_TYPE) {
                        /* An mdev: its parent (a PCI parent also by its address, below, so that it waits
                         * for the parent's driver transaction). */
                        char *k;
                        if (a->parent && asprintf(&k, "mdev-parent:%s", a->parent) >= 0) {
                                r = keys_add(&t->keys, k);
                                if (r < 0)
                                        return r;
                        } else if (a->parent)
                                return -ENOMEM;
                        if (!pci_address_is_valid(a->address))
                                continue;
                }
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

/*
 * An upper bound on how many of |job|'s transactions can ever run side by side, at most |max|: the
 * transactions are put in groups whose members all share a conflict key pairwise (each joins the
 * first group all of whose members it conflicts with), and two transactions of one group never run at
 * the same time, so no more than one per group runs at once. The 24 creates of one mdev parent
 * ("mdev-parent:P" in each) make one group: one lane, not four. Keys as job_split() left them.
 */
static unsigned job_width(const Job *job, unsigned max) {
        _cleanup_free_ size_t *group = NULL; /* the group of each transaction */
        unsigned n_groups = 0;

        if (job->n_txs <= 1 || max <= 1)
                return job->n_txs < max ? (unsigned)job->n_txs : max;
        group = calloc(job->n_txs, sizeof(size_t));
        if (!group)
                return max; /* no bound known: as many lanes as may run */
        for (size_t i = 0; i < job->n_txs; i++) {
                unsigned g;

                for (g = 0; g < n_groups; g++) {
                        bool all = true;

                        for (size_t k = 0; k < i && all; k++)
                                if (group[k] == g)
                                        all = keys_overlap(job->txs[i].keys, job->txs[k].keys);
                        if (all)
                                break;
                }
                group[i] = g;
                if (g == n_groups && ++n_groups >= max)
                        return max;
        }
        return n_groups;
}

/* A name that becomes one path component under /sys. */
static bool component_is_valid(const char *s) {
        return s && *s && !strchr(s, '/') && !streq(s, ".") && !streq(s, "..") && strlen(s) <= NAME_MAX;
}

/* The strings of an mdev action become paths and values under /sys: check them as the parser does. */
static int mdev_action_validate(const PlanAction *a) {
        switch (a->type) {
        case PLAN_ACTION_MDEV_CREATE:
                return mdev_uuid_is_valid(a->uuid) && component_is_valid(a->parent) &&
                                component_is_valid(a->mdev_type)
                        ? 0
                        : -EINVAL;
        case PLAN_ACTION_MDEV_REMOVE:
                return mdev_uuid_is_valid(a->uuid) ? 0 : -EINVAL;
        case PLAN_ACTION_MDEV_SET_ATTR:
                return mdev_uuid_is_valid(a->uuid) && component_is_valid(a->attr_name) && a->attr_value
                        ? 0
                        : -EINVAL;
        case PLAN_ACTION_SET_VGPU_TYPE:
                return pci_address_is_valid(a->address) ? 0 : -EINVAL;
        default:
                return -EINVAL;
        }
}

static int executor_submit_internal(Executor *e, const Plan *plan, bool urgent, uint64_t *ret_job) {
        Job *job;
        unsigned last = 0, want, width = 0;
        uint64_t id;
        int r;

        if (!e || !plan)
                return -EINVAL;

        /* Validate first: these strings become paths and values under /sys. */
        for (size_t i = 0; i < plan->n_actions; i++) {
                const PlanAction *a = &plan->actions[i];
                bool needs_driver = a->type == PLAN_ACTION_SET_OVERRIDE || a->type == PLAN_ACTION_UNBIND;

                if (a->type < 0 || a->type >= _PLAN_ACTION_TYPE_MAX)
                        return -EINVAL;
                if (plan_action_type_is_mdev(a->type)) {
                        if (mdev_action_validate(a) < 0)
                                return -EINVAL;
                } else if (!pci_address_is_valid(a->address))
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
                (void)snprintf(j->uuid, sizeof(j->uuid), "%s", a->uuid);
                if (strdup_null(a->parent, &j->parent) < 0 || strdup_null(a->mdev_type, &j->mdev_type) < 0 ||
                    strdup_null(a->attr_name, &j->attr_name) < 0 ||
                    strdup_null(a->attr_value, &j->attr_value) < 0) {
                        job->n_actions = i + 1;
                        job_free(job);
                        return -ENOMEM;
                }
                if (a->driver) {
                        j->driver = strdup(a->driver);
                        if (!j->driver) {
                                job->n_actions = i + 1;
                                job_free(job);
                                return -ENOMEM;
                        }
                }
        }
        job->n_actions = plan->n_actions;

        r = job_split(e, job, !urgent);
        if (r >= 0 && !urgent)
                width = job_width(job, e->max_parallel);
        if (r >= 0 && e->n_lanes == 0)
                r = lane_start(e);
        if (r < 0) {
                job_free(job);
                return r;
        }

        pthread_mutex_lock(&e->core->lock);
        id = job->id = ++e->next_job;
        job->urgent = urgent;
        /* Lanes for the work: one per transaction that may ever run beside the others, at most
         * max_parallel (job_width(); the keys are the job's own until it is queued). */
        want = e->n_busy + (urgent ? 1 : width) + (e->current ? 1 : 0);
        if (urgent) {
                *e->urgent_tail = job;
                e->urgent_tail = &job->next;
        } else {
                *e->jobs_tail = job;
                e->jobs_tail = &job->next;
        }
        e->n_jobs++;
        pthread_mutex_unlock(&e->core->lock);
        /* One idle lane (waking every lane takes the CPU from the probe an urgent job races): when it
         * takes work and more may start, it wakes the next (executor_wake_one()). After the unlock: a
         * lane woken with the lock still held would only block on it again, one more switch on a
         * single CPU. */
        pthread_cond_signal(&e->jobs_cond);

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

unsigned executor_get_n_lanes(Executor *e) {
        return e ? e->n_lanes : 0;
}
