/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The executor: the only code that writes sysfs (hostdevd(8), SAFETY RULES). It runs the
 * transactions of a Plan (planner.h) off the event loop and reports what
 * became of each function on the loop.
 *
 * Its code is in two files that share executor-internal.h: executor-transaction.c, the kernel
 * protocol of one transaction (steps 1-6 below), and executor-lanes.c, the thread machinery (lanes,
 * I/O workers with their deadlines, job queues, the loop side). sysfs-write.h, the one sysfs
 * writer, is included by executor-*.c files only (tests/check-layers.py checks it).
 *
 * Threads: up to ExecutorOptions.max_parallel lanes run the transactions of the job at the head of
 * the queue side by side: a transaction starts when no transaction before it in the job that is not
 * done shares a function, a PF (a VF's physfn) or an IOMMU group with it, so conflicting ones keep
 * the plan's order while independent ones overlap (an e1000e's unbind sleeps ~30 ms in its remove,
 * during which another function's writes go on). The next job starts when the last transaction of
 * the one before is done. Lanes are started only as far as a job's transactions could ever run side
 * by side (the creates of one mdev parent share its key: one lane), and a lane that takes work wakes
 * one idle lane only when more may start now; a finished transaction wakes none (its lane looks for
 * the next itself). Every sysfs access of a transaction (writes and the reads that verify
 * them: driver_override_show() and sriov_numvfs_show() take the device lock, so a read can block as
 * long as a write) but the readlink of the driver link (kernfs only, no device lock) is handed to
 * the lane's I/O worker thread and waited for with a deadline
 * (ExecutorOptions.write_timeout_usec). A worker that overruns is stuck in
 * the kernel and can never be cancelled: it is abandoned (detached), its
 * function is marked `stuck` and reported at once, and the next access uses
 * a new worker. At most max_abandoned workers may be abandoned at a time;
 * past that the executor refuses work (-EBUSY) until one returns. A stuck
 * function gets no further writes until its write returns
 * (EXECUTOR_EVENT_RELEASED); a transaction that touches it is refused.
 *
 * A transaction (the actions of one PlanAction.transaction number) runs as:
 *   1. refuse it if one of its functions is stuck; for a driver it names in driver_override that
 *      is not registered (no /sys/bus/pci/drivers/<name>), load its module with
 *      ExecutorOptions.load_driver and wait, at most write_timeout_usec, for the directory to
 *      appear; refuse the transaction when loading is disabled (load_driver NULL), fails, or the
 *      driver does not appear in time (nothing is written; modules are never unloaded);
 *   2. read the originals of each function (driver link, driver_override,
 *      and for a PF whose SR-IOV settings change, sriov_numvfs and
 *      sriov_drivers_autoprobe);
 *   3. the journal hook (EXECUTOR_JOURNAL_BEGIN) records them; a failure
 *      there refuses the transaction before any write;
 *   4. the actions in order, each write verified by reading back:
 *      driver_override and the SR-IOV attributes must read back the value
 *      written, an unbind must leave no driver link, and PLAN_ACTION_VERIFY
 *      reads the driver link after drivers_probe (which returns success
 *      even when nothing bound; Documentation/ABI/testing/sysfs-bus-pci);
 *      PLAN_VERIFY_DRIVER_SETTLE first waits (settle_usec) for the kernel's own first probe of a
 *      function that just appeared, reading the driver link on each executor_notify_bind() and
 *      else from settle_poll_usec on (doubling up to 32 ms), writing drivers_probe once
 *      settle_probe_usec into the wait and once more at its end while no driver is bound; when
 *      that first probe bound another driver (it came before driver_override), it unbinds that
 *      driver and probes again within the transaction;
 *      an unbind of a function no longer on the planned driver fails with
 *      -ESTALE (the host changed since the plan; re-plan), and so does a
 *      VERIFY that finds another driver than the named one bound (with
 *      driver_override set, drivers_probe binds no other: someone else did);
 *   5. on the first failure, roll back only what this transaction changed,
 *      on every function it touched but the stuck ones: sriov_drivers_autoprobe
 *      and sriov_numvfs back to the originals (through 0), driver_override
 *      back to its original (cleared with "\n" when there was none), unbind
 *      a driver that is not the original one and re-probe the original;
 *   6. the journal hook (EXECUTOR_JOURNAL_END) with the outcome.
 * Exiting or freeing the executor never undoes anything (safety rule 6 in hostdevd(8)).
 *
 * Mdev and vendor vGPU transactions (issue 14; the plan's last ones, one instance each; the code is
 * executor-mdev.c) run as:
 *   1. refuse it if its key (the parent's name, or the VF for a vGPU) is stuck;
 *   2. read the originals: whether the mdev exists; the VF's current_vgpu_type;
 *   3. the journal hook (EXECUTOR_JOURNAL_BEGIN, ExecutorJournal.mdevs) records an instance the
 *      transaction creates BEFORE the create write, so a crash (SIGKILL) mid-create leaves a record
 *      and the next start adopts the instance if still wanted, else removes it: never an orphan;
 *   4. MDEV_REMOVE writes 1 to /sys/bus/mdev/devices/<uuid>/remove and verifies the device is gone;
 *      MDEV_CREATE writes the UUID to /sys/class/mdev_bus/<parent>/mdev_supported_types/<type>/create
 *      (Documentation/driver-api/vfio-mediated-device.rst), then waits (settle_usec, polling from
 *      1 ms, doubling up to 32 ms) for /sys/bus/mdev/devices/<uuid>/mdev_type and verifies it names
 *      <type> (6.1's mdev uevents carry no MDEV_TYPE and the link can appear after the write
 *      returns); MDEV_SET_ATTR writes each attribute to the mdev's directory, in order, and reads
 *      it back (equal to the value written, a trailing newline aside, or the step fails naming the
 *      attribute and both values); SET_VGPU_TYPE writes the id to <VF>/nvidia/current_vgpu_type
 *      and reads it back. Before an MDEV_REMOVE followed by an MDEV_CREATE (a type change), the
 *      values of the attributes the transaction sets are read from the old instance;
 *   5. on the first failure: remove the mdev this transaction created (only that one: an instance
 *      that existed before is never removed by a rollback), or write 0 to a VF whose type it set
 *      (when the original was 0); after a type change, create the old instance again (its UUID, its
 *      MDEV_REMOVE's parent and type, the attribute values read in 4) and say so in the reason
 *      ("rolled back: the old mdev P/T created again", or "rollback incomplete: ...");
 *   6. one EXECUTOR_EVENT_MDEV with the outcome, then the journal hook (END).
 *
 * Paths: the SYSFS_* paths of names.h, below ExecutorOptions.sysfs_root
 * (NULL in the daemon: the real /sys; a directory in the unit tests).
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "planner.h"

#define EXECUTOR_WRITE_TIMEOUT_USEC_DEFAULT (10 * 1000 * 1000ULL) /* 10 s per sysfs access */
#define EXECUTOR_MAX_ABANDONED_DEFAULT 8u /* workers left stuck in the kernel */
/* PLAN_VERIFY_DRIVER_SETTLE: how long to wait for the kernel's first probe of a new function */
#define EXECUTOR_SETTLE_USEC_DEFAULT (2 * 1000 * 1000ULL)
/* ...and when, while nothing is bound, it writes drivers_probe once: the kernel's first probe may have come
 * before driver_override and found no driver (none for this device), or never come (a rescan's function
 * whose "add" was seen late). Not at once: before the kernel's probe, drivers_probe binds nothing (the
 * function is not yet matchable) and takes the CPU the kernel's probe waits for. */
#define EXECUTOR_SETTLE_PROBE_USEC_DEFAULT (50 * 1000ULL)
/* ...and when it first reads the driver link without executor_notify_bind(): the kernel creates the
 * link before the probe runs and removes it when the probe fails (drivers/base/dd.c: really_probe()),
 * so only the "bind" uevent says the probe is done; each read takes CPU from the probe it waits for. */
#define EXECUTOR_SETTLE_POLL_USEC_DEFAULT (20 * 1000ULL)
#define EXECUTOR_MAX_QUEUED_JOBS 64u /* submitted jobs not yet run */
#define EXECUTOR_MAX_PARALLEL_DEFAULT 4u /* transactions run side by side (lanes) */

typedef struct Executor Executor;

typedef enum ExecutorEventType {
        EXECUTOR_EVENT_DEVICE, /* the outcome of one function in one transaction */
        EXECUTOR_EVENT_RELEASED, /* a stuck access returned: the function takes work again; re-plan */
        EXECUTOR_EVENT_JOB_DONE, /* every transaction of a job ran (or was refused) */
        EXECUTOR_EVENT_MDEV, /* the outcome of one mdev or vendor vGPU transaction (issue 14) */
        _EXECUTOR_EVENT_TYPE_MAX,
        _EXECUTOR_EVENT_TYPE_INVALID = -EINVAL,
} ExecutorEventType;
/* "device", "released", "job-done", "mdev" */
const char *executor_event_type_to_string(ExecutorEventType t);

typedef struct ExecutorEvent {
        ExecutorEventType type;
        uint64_t job; /* as returned by executor_submit(); 0 for RELEASED */
        unsigned transaction; /* DEVICE: PlanAction.transaction */
        const char
                *address; /* DEVICE, RELEASED: the PCI address; MDEV: the parent's name (a vGPU: the VF) */
        const char *uuid; /* MDEV: the mdev's UUID; "" for a vendor vGPU; NULL for other events */
        DeviceState state; /* DEVICE: DEVICE_STATE_CONVERGED, _FAILED or _STUCK */
        int error; /* DEVICE: 0, or negative errno (-ETIMEDOUT when stuck, -ECANCELED when rolled back
                    * for a peer's failure); RELEASED: the late access's own result */
        const char *reason; /* NULL when converged; else a sentence naming path, value and errno */
        unsigned n_converged, n_failed, n_stuck; /* JOB_DONE: DEVICE events of the job by state */
} ExecutorEvent;

/* Called on the event loop's thread for each event, in order. Borrowed strings, valid during the call.
 * It may submit work; it must not free the executor. */
typedef void (*ExecutorEventHandler)(Executor *e, const ExecutorEvent *ev, void *userdata);

/* ---- journal hook (crash safety: record originals before mutating, safety rule 5) ---------- */

typedef enum ExecutorJournalPhase {
        EXECUTOR_JOURNAL_BEGIN, /* before the first write of a transaction */
        EXECUTOR_JOURNAL_END, /* after it: committed, rolled back, or left with a stuck write */
        _EXECUTOR_JOURNAL_PHASE_MAX,
        _EXECUTOR_JOURNAL_PHASE_INVALID = -EINVAL,
} ExecutorJournalPhase;

typedef struct ExecutorJournalDevice {
        const char *address;
        const char *driver; /* bound before the transaction; NULL: none */
        const char *driver_override; /* before the transaction; NULL: clear */
        bool sriov; /* the transaction changes this PF's SR-IOV settings; then: */
        uint32_t sriov_numvfs;
        bool sriov_drivers_autoprobe;
        /* What the transaction sets, from its actions (for the ownership record): */
        bool has_target_override; /* a SET_OVERRIDE or CLEAR_OVERRIDE; then: */
        const char *target_override; /* NULL: cleared */
        bool has_target_driver; /* a VERIFY; then: */
        const char *target_driver; /* PLAN_VERIFY_DRIVER: the driver; else NULL */
        bool release; /* PLAN_VERIFY_HOST: back to the host driver */
        /* With ->sriov, what the transaction leaves in sriov_numvfs and sriov_drivers_autoprobe: its last
         * SET_NUMVFS / SET_SRIOV_AUTOPROBE, when it has one: */
        bool writes_sriov_numvfs;
        uint32_t target_sriov_numvfs;
        bool writes_sriov_drivers_autoprobe;
        bool target_sriov_drivers_autoprobe;
} ExecutorJournalDevice;

/* One mdev or vendor vGPU instance of an mdev transaction (issue 14). */
typedef struct ExecutorJournalMdev {
        const char *uuid; /* the mdev; "" for a vendor vGPU */
        const char *parent; /* the parent's name; for a vGPU, the VF's address */
        const char *type; /* the type id it creates or sets (a vGPU's as decimal); NULL: none */
        bool create; /* BEGIN: it creates (or sets a vGPU type): record ownership before the write */
        bool remove; /* it removes it (or clears the vGPU type): at END CONVERGED, forget it */
} ExecutorJournalMdev;

typedef struct ExecutorJournal {
        ExecutorJournalPhase phase;
        uint64_t job;
        unsigned transaction;
        const ExecutorJournalDevice *devices; /* every function the transaction touches, in plan order */
        size_t n_devices; /* 0 for an mdev transaction */
        const ExecutorJournalMdev *mdevs; /* an mdev transaction's instance (1), else NULL */
        size_t n_mdevs;
        DeviceState outcome; /* END: CONVERGED (committed), FAILED (rolled back; see the DEVICE events),
                              * STUCK (a write never returned: keep the record for recovery) */
        /* The hook's own per-transaction slot, NULL at BEGIN: what BEGIN stores there, END gets back
         * (transactions run side by side, so this is where a hook keeps what it needs from BEGIN to
         * END). END is called only after a BEGIN that returned 0, so a BEGIN that fails frees what it
         * stored; END frees it. */
        void **state;
} ExecutorJournal;

/*
 * Called on a lane's thread (not the loop: it may fsync), for several transactions at once when they
 * run side by side, so it must not touch loop-owned or shared state without its own locking. BEGIN: return 0
 * to go on, or a negative errno to refuse the transaction before any write (every function then fails with
 * that errno). END: the return value is ignored.
 */
typedef int (*ExecutorJournalFunc)(const ExecutorJournal *j, void *userdata);

/* The write primitive: sysfs_write() (sysfs-write.h) unless a test replaces it to emulate the kernel.
 * Called on an I/O worker thread. */
typedef int (*ExecutorWriteFunc)(const char *path, const char *value, char **ret_message, void *userdata);

/*
 * The module loader: module_loader_load_driver() (module-loader.h) in the daemon, a fake in the unit
 * tests. Loads the module of PCI driver |driver|; returns 0 or a negative errno, and in *ret_module a
 * new string naming the module (for messages; may be left NULL). Called on a lane thread, maybe for
 * two transactions at once; may block (the module's init runs in finit_module(2)).
 */
typedef int (*ExecutorLoadDriverFunc)(const char *driver, char **ret_module, void *userdata);

typedef struct ExecutorOptions {
        const char *sysfs_root; /* NULL or "": "/" (the real /sys); copied */
        uint64_t write_timeout_usec; /* deadline of each sysfs access; 0: the default */
        uint64_t settle_usec; /* PLAN_VERIFY_DRIVER_SETTLE's wait (at most the deadline); 0: default */
        uint64_t settle_probe_usec; /* its drivers_probe this long into the wait; 0: default */
        uint64_t settle_poll_usec; /* its first read of the driver link without a notify; 0: default */
        unsigned max_abandoned; /* 0: the default */
        unsigned max_parallel; /* transactions run at the same time; 0: the default; 1: one by one */
        ExecutorJournalFunc journal; /* NULL: none */
        void *journal_userdata;
        ExecutorWriteFunc write; /* NULL: sysfs_write() */
        void *write_userdata;
        ExecutorLoadDriverFunc load_driver; /* NULL: loading disabled (unregistered driver: refused) */
        void *load_driver_userdata;
} ExecutorOptions;

/* ---- lifecycle and work ----------------------------------------------------------------------- */

/*
 * Attach an executor to |event| (an eventfd io source delivers the threads' results). |options| may
 * be NULL. No thread starts before the first submit. Returns 0, -ENOMEM, or what sd-event or
 * eventfd() reported.
 */
int executor_new(
        sd_event *event, const ExecutorOptions *options, ExecutorEventHandler handler, void *userdata,
        Executor **ret);
/*
 * Stop after the transaction running now (waiting for it, so at most the deadline of each of its
 * remaining accesses), drop queued jobs without running them and without events, join the threads.
 * Abandoned workers stay stuck in the kernel; they free what they own when they return. NULL-safe.
 */
Executor *executor_free(Executor *e);
static inline void executor_freep(Executor **e) {
        if (*e)
                executor_free(*e);
}

/*
 * Queue the actions of |plan| (copied: the plan may be freed at once) as one job, run in order
 * after any job queued before. Returns 0 and the job id (> 0) in *ret_job (may be NULL);
 * -EINVAL for a malformed plan (an address that is not a PCI address, a driver name that is not
 * one path component, transactions not contiguous); -EBUSY when max_abandoned workers are stuck
 * or EXECUTOR_MAX_QUEUED_JOBS are waiting; -ENOMEM; -errno when no lane thread can start.
 * A plan with no actions still gets its JOB_DONE event.
 */
int executor_submit(Executor *e, const Plan *plan, uint64_t *ret_job);
/*
 * The same, as an urgent job: it runs before every normal job still queued, and between two
 * transactions of the normal job running now (urgent jobs run in the order submitted, whole). For
 * a function that just appeared, whose first write races the kernel's own probe. The caller must
 * not put a function in it that a job queued or running touches as well.
 */
int executor_submit_first(Executor *e, const Plan *plan, uint64_t *ret_job);

/*
 * The loop saw the kernel's "bind" uevent of a PCI function (drivers/base/dd.c: driver_bound(), sent
 * once the probe returned success). Wakes the transactions that wait for the kernel's own first probe
 * of a function that just appeared (PLAN_VERIFY_DRIVER_SETTLE): each re-reads its driver link, so
 * any "bind" will do. Without these reports they poll the link (20 ms, doubling up to 32 ms).
 * Any thread; NULL is a no-op.
 */
void executor_notify_bind(Executor *e);

/* A write to |address| overran its deadline and has not returned. */
bool executor_is_stuck(Executor *e, const char *address);
/* Jobs queued or running. */
bool executor_is_busy(Executor *e);
/* Workers abandoned in the kernel and not yet returned. */
unsigned executor_get_n_abandoned(Executor *e);
/* Lane threads started so far (they stay until executor_free()): at most max_parallel, and no more
 * than the transactions of the jobs submitted could ever run side by side (conflict keys). Loop
 * thread only. */
unsigned executor_get_n_lanes(Executor *e);
