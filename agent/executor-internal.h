/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the executor's two halves share; included by executor-lanes.c and executor-transaction.c
 * only (executor.h is the public header):
 *   - executor-transaction.c, the kernel protocol: one transaction's originals, driver_override,
 *     unbind, probe, verification, rollback and journal records (steps 1-6 of executor.h);
 *   - executor-lanes.c, the thread machinery: the shared core (events to the loop, the stuck
 *     list), the I/O workers with their deadlines, the job queues and the lanes, and the loop side
 *     (executor_new(), executor_submit(), the eventfd handler).
 *
 * Locking: one mutex (Core.lock) guards everything shared between the loop, the lanes and the
 * I/O workers: the event queue, the job queues and the transactions' progress, the stuck list, the
 * abandoned count and each worker's request slot. Nothing blocking runs under it. Abandoned workers outlive
 * the Executor, so what they touch (Core) is reference counted.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "executor.h"
#include "mdev.h"
#include "pci-address.h"

typedef struct EventNode {
        ExecutorEvent ev;
        char *address;
        char *uuid;
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

typedef enum IoOp {
        IO_WRITE, /* write value to path */
        IO_READ, /* read path (trailing newline stripped) */
} IoOp;

typedef struct IoWorker IoWorker;

typedef struct JobAction {
        PlanActionType type;
        unsigned transaction;
        char address[PCI_ADDRESS_STRING_MAX];
        char *driver;
        PlanVerify verify;
        uint32_t value;
        /* mdev actions (issue 14), as PlanAction */
        char uuid[MDEV_UUID_STRING_MAX];
        char *parent, *mdev_type, *attr_name, *attr_value;
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

/* ---- executor-lanes.c, for the transaction ----------------------------------------------------- */

/* CLOCK_MONOTONIC, in microseconds. */
uint64_t now_usec(void);

/* Queue an event for the loop; call with c->lock held. NULL on OOM (the event is lost). */
EventNode *core_post_locked(
        Core *c, ExecutorEventType type, uint64_t job, unsigned transaction, const char *address,
        DeviceState state, int error, const char *reason);

/* Under c->lock: the stuck entry of |address|, or NULL. */
StuckEntry *core_find_stuck_locked(Core *c, const char *address);

/*
 * Run one access on the current worker (starting one if needed) and wait at most the deadline.
 * Returns the access's own result (>= 0 or -errno; *ret_result / *ret_message filled by it), or
 * -ETIMEDOUT with *ret_stuck = true when the deadline passed: the worker is then abandoned and the
 * function |address| recorded as stuck with *ret_message as reason. -EBUSY with a message when no
 * worker may be started because too many are abandoned.
 */
int runner_io(
        Lane *l, const char *address, IoOp op, const char *path, const char *value, char **ret_result,
        char **ret_message, bool *ret_stuck);

/* The number of kernel "bind" uevents reported so far (executor_notify_bind()). */
uint64_t executor_get_bind_seq(Executor *e);

/* Sleep until a "bind" after *seq is reported or |until| (CLOCK_MONOTONIC usec); *seq: now. */
void executor_wait_bind(Executor *e, uint64_t *seq, uint64_t until);

/* ---- executor-transaction.c, for the lanes ----------------------------------------------------- */

/* Run one transaction of |job| on lane |l| and post what became of each of its functions. */
void job_run_tx(Lane *l, Job *job, const JobTx *jt);

/* ---- executor-mdev.c, for the transaction and the lanes (issue 14) ------------------------------ */

/* An mdev or vGPU transaction (its first action is one, plan_action_type_is_mdev()): run it. */
void job_run_mdev_tx(Lane *l, Job *job, const JobTx *jt);
/* Under c->lock: queue an EXECUTOR_EVENT_MDEV. */
EventNode *core_post_mdev_locked(
        Core *c, uint64_t job, unsigned transaction, const char *key, const char *uuid, DeviceState state,
        int error, const char *reason);
