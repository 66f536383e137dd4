/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The reconciler: the loop-side owner of the desired state, the ownership
 * records and the executor (hostdevd(8), SAFETY RULES). It plans with the pure planner
 * (planner.h) from
 *   - the desired state (desired_state_load() over the configuration
 *     directories, then desired_state_resolve() against the model),
 *   - the observed functions (the daemon's model),
 *   - the holders (holder-watch.h: fanotify on /dev/vfio and pidfds, or scans off the loop),
 *   - the host-critical set (critical-watch.h: computed off the loop after mount, swap and route
 *     events, or for every plan; a failure makes every function critical: unknown means refuse),
 *   - the functions hostdevd owns (ownership.h),
 * and hands the plan to the executor, whose journal hook (ownership_journal())
 * records the originals before any write, on the executor's lanes under the
 * ownership journal's own lock. The reconciler itself runs on the loop thread
 * only. A new function's kernel "add" is decided by early-bind.h.
 *
 * Convergence runs at start, after a reload that parsed, after a runtime
 * request, after Apply(), and when a uevent concerns it: a function added,
 * or a driver/driver_override change of a function the desired state or the
 * store concerns, or of a peer in one of their IOMMU groups (drift). Requests
 * within one loop iteration collapse into one plan (a defer source); while
 * a job runs, one more plan is queued for after it. A full plan first asks
 * both watches for a current set and waits (on the loop, not blocking it)
 * until they have one; a change of either set plans again, so a holder that
 * closes its node or exits lets blocked work proceed with no Apply(). A function whose
 * transaction failed (or got stuck) is not retried automatically until the
 * desired state changes, Apply() is called, or (stuck) its write returns:
 * otherwise the rollback's own uevents would retry it forever.
 *
 * With no rule and no owned function the reconciler plans nothing and
 * starts no thread: hostdevd only observes, as before issue 3.
 *
 * Issue 14: the planner also gets the model's mdevs and parents, the VFs' vendor vGPU state
 * (vgpu_vf_read()), the [Mdev]/[VGPU] resolution (desired_state_resolve_mdevs(), with the stable
 * Count= UUIDs of mdev-uuids.h) and the mdev ownership record (mdev-ownership.h), which is saved with
 * the UUIDs before any write that creates an instance. A parent that appears or registers, an mdev
 * that comes or goes and a function's driver change (a VF getting its vendor driver) schedule a plan
 * when a rule or record concerns mdevs: no polling. A rule that cannot be placed at a reload rejects
 * the reload (ConfigErrors); found at a later plan, it is listed in ConfigErrors and adds nothing.
 *
 * Runtime requests (SetDeviceDriver/SetNumVFs/CreateMdev) are desired-state files,
 * hostdevd.conf(5) format: RUNTIME_DIR/devices.d (transient) or
 * STATE_DIR/devices.d ("persist"), named and written by request.h.
 * The directories planned from are the configuration directories, then
 * STATE_DIR/devices.d, then RUNTIME_DIR/devices.d (each once; later ones
 * take precedence for files of the same name).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "critical.h"
#include "desired-state.h"
#include "early-bind.h"
#include "plan-filter.h"
#include "request.h"
#include "planner.h"
#include "status-table.h"

typedef struct Reconciler Reconciler;

/*
 * What the reconciler needs from the rooms around it, given by its owner (daemon.c): it includes
 * none of them. Every hook runs on the loop thread; any may be NULL.
 */
typedef struct ReconcilerHooks {
        /* Apply every uevent that waits (intake_flush()): a plan must see them all. */
        void (*flush_uevents)(void *userdata);
        /* Re-read the PCI function at |address| soon (intake_queue_refresh()): a job touched it. */
        void (*queue_refresh)(void *userdata, const char *address);
        /* Re-read mdev |uuid| soon (intake_queue_mdev_refresh()): a job created it. */
        void (*queue_mdev_refresh)(void *userdata, const char *uuid);
        /* Hold the mdev uevents while a job of ours with mdev actions runs (intake_hold_mdevs()):
         * |hold| true when the first such job is submitted, false (read them now, before the plan
         * that follows) when the last one ends. May be NULL. */
        void (*hold_mdev_uevents)(void *userdata, bool hold);
        /* Published status: the function's DesiredDriver, DesiredSource, State, StateReason or
         * LastError changed; or these Manager properties did (strv: "State", "Generation",
         * "ConfigErrors"). Called from the status publish (event-priorities.h), at most once per
         * function per loop iteration; the publisher (bus-emitter.h) announces them. */
        void (*status_changed)(void *userdata, const char *address);
        void (*manager_status_changed)(void *userdata, char *const *names);
        /* Issue 14: the published Owner, State or StateReason of mdev |uuid| changed (an instance the
         * model has); from the plan's publish, at most once per plan. */
        void (*mdev_status_changed)(void *userdata, const char *uuid);
        /* The functions of the leases in force, as holders (lease-manager.h): planned like the
         * functions a process holds open, never unbound or reset. Borrowed for the plan's duration. */
        void (*lease_holders)(void *userdata, const Holder **ret, size_t *ret_n);
        /* Whether |pid| holds its VFIO nodes under a lease (the lease store's lookup by pid, issue 15);
         * NULL: no leases, every holder is unleased. Holders it denies are reported as unleased holders
         * (Manager.UnleasedHolders, the journal). Either kind blocks destructive changes. */
        bool (*holder_is_leased)(void *userdata, pid_t pid);
        /* The early-bind thread's snapshot (reconciler_early_bind_snapshot()) is out of date: a reload
         * changed the rules, or the host-critical set became known. Optional. */
        void (*early_rules_changed)(void *userdata);
} ReconcilerHooks;

typedef struct ReconcilerOptions {
        char **config_dirs; /* strv, lowest priority first; NULL: the three HOSTDEVD_CONF_DIR_* */
        const char *state_dir; /* NULL: HOSTDEVD_STATE_DIR (owned.json, devices.d/ of persistent requests) */
        const char *runtime_dir; /* NULL: HOSTDEVD_RUNTIME_DIR (devices.d/ of transient requests) */
        const char *proc_root; /* NULL: /proc (holders) */
        const char *critical_root; /* NULL: the running system (critical_compute()'s root) */
        bool load_modules; /* load the module of a driver that is not registered (module-loader.h) */
} ReconcilerOptions;

/* ---- the daemon's reconciler ------------------------------------------------------------------- */

/*
 * Load the desired state and the state store and attach to |event| (nothing
 * is planned yet). |model| is the observed model, borrowed for the
 * reconciler's lifetime; |hooks| and |userdata| as above. A store that does not load (corrupt, unreadable)
 * is logged; the reconciler then plans but refuses to mutate anything (Apply fails, automatic convergence
 * only reports). Returns 0 or -ENOMEM, -errno from sd-event.
 */
int reconciler_new(
        sd_event *event, Model *model, const ReconcilerHooks *hooks, void *userdata,
        const ReconcilerOptions *options, Reconciler **ret);
Reconciler *reconciler_free(Reconciler *r);
static inline void reconciler_freep(Reconciler **r) {
        if (*r)
                reconciler_free(*r);
}

/* Plan and submit at once: at start, before the bus name is taken, so that the first caller already
 * sees each function's DesiredDriver and State. Later plans follow reconciler_schedule(). */
void reconciler_start(Reconciler *r);

/* Schedule a plan (+ apply) for this loop iteration; after the running job if one runs. */
void reconciler_schedule(Reconciler *r);

/*
 * A PCI function's "add" uevent, before the model reads it (MonitorCallbacks.on_pci_add; ids as
 * the uevent carries them, any may be NULL; |syspath| its directory, may be NULL). When a rule
 * names a driver for it on what the uevent and two links (iommu_group, physfn) tell, and it is
 * alone in its IOMMU group, submit driver_override and the verification as an urgent job at once
 * (planner_plan_new_function()), so the kernel's first probe binds that driver and no host driver
 * ever touches the function. Anything else (rules with Slot= or Serial=, group peers, bad ids, a
 * function already known) is left to the plans that follow the model's update. Never fails: what
 * it cannot do here, the normal path does. Returns true when it submitted a job.
 */
bool reconciler_on_pci_add(
        Reconciler *r, const char *syspath, const char *sysname, const char *pci_id,
        const char *pci_subsys_id, const char *pci_class);

/* ---- the early-bind thread (executor-early.h) ---------------------------------------------------- */

/* The snapshot of the rules in force for the early-bind thread (early_bind_snapshot_new() with the
 * model's bridges and PFs, the host-critical set, and whether the ownership records are usable).
 * ReconcilerHooks.early_rules_changed says when it changed. Returns 0 and a new snapshot, or -ENOMEM. */
int reconciler_early_bind_snapshot(Reconciler *r, EarlyBindSnapshot **ret);

/*
 * The early-bind thread wrote |driver| to |address|'s driver_override on its "add" (rule |source|):
 * record the function as owned (ownership_adopt_override(), before anything else can act on it), then
 * submit its transaction (planner_plan_new_function(): the override again, read back, and the wait for
 * the kernel's first probe) as an urgent job. Returns 0 when recorded (the job may still have been
 * refused: the plans that follow handle the function), or -errno when the record failed.
 */
int reconciler_on_early_write(Reconciler *r, const char *address, const char *driver, const char *source);

/* At start, an intent the early-bind thread left (executor-early.h, early_intents_read()): when the
 * model shows |driver| in |address|'s driver_override and no record names the function, record it as
 * owned (a crash came between the write and its record). Returns 1 adopted, 0 nothing to do, <0. */
int reconciler_adopt_early_intent(Reconciler *r, const char *address, const char *driver);

/* A PCI function's "bind" uevent from the kernel (MonitorCallbacks.on_pci_bind): wakes the early
 * jobs that wait for the kernel's first probe (executor_notify_bind()). */
void reconciler_on_pci_bind(Reconciler *r, const char *sysname);

/* Whether a job of ours in the executor (queued or running) touches |address|: its outcome re-reads
 * the function (ReconcilerHooks.queue_refresh). */
bool reconciler_job_touches(Reconciler *r, const char *address);

/*
 * Re-read the PCI function at |address| now and publish what changed (ReconcilerHooks.queue_refresh,
 * then .flush_uevents): for an answer that quotes the model right after a job. The job verified the
 * driver from sysfs, but the kernel's "bind" uevent that updates the model may still be on its way.
 */
void reconciler_reread_device(Reconciler *r, const char *address);

/* Model changes were applied (from uevents, a rescan): schedule a plan if one concerns us. */
void reconciler_on_model_changes(Reconciler *r, const ModelChange *changes, size_t n);

/*
 * Re-read the desired-state files. Returns 1 when the desired state changed
 * (Generation incremented, convergence scheduled), 0 when it parsed and is
 * the same, -EBADMSG when a file was rejected (the last good state stays,
 * ConfigErrors says why), -errno when a directory could not be read.
 */
int reconciler_reload(Reconciler *r);

/* Plan now without changing anything (Plan()). Returns 0 or -errno. */
int reconciler_plan(Reconciler *r, Plan **ret);

/* What a method waits for: called on the loop once the job it waited for finished (the caller reads
 * the outcome with reconciler_device_status() / reconciler_manager_state()), with error < 0 when
 * nothing could run (-EUCLEAN: the ownership records are unusable; -ECANCELED: shutting down). */
typedef void (*ReconcilerDoneFunc)(Reconciler *r, int error, void *userdata);

/*
 * Converge now (Apply(), or after a request); |done| runs once the resulting
 * job finished (at once with an error when the store is unusable or the
 * executor refuses). Failed functions are retried. Returns 0 or -ENOMEM.
 */
int reconciler_converge(Reconciler *r, ReconcilerDoneFunc done, void *userdata);

/* Runtime requests: write or remove the file, reload. Returns 0, -EBADMSG (the files in force do not
 * parse), -ENOENT (Reset: no request for |address|), -errno from writing. */
int reconciler_write_request(
        Reconciler *r, RequestKind kind, const char *address, const char *content, bool persist);
int reconciler_remove_requests(Reconciler *r, RequestKind kind, const char *address);
/* Save the request files of |address| (kind) so a refused request can be undone (request_backup());
 * restore writes them back, or removes what is new, and reloads. */
int reconciler_backup_requests(Reconciler *r, RequestKind kind, const char *address, RequestBackup **ret);
int reconciler_restore_requests(Reconciler *r, RequestBackup *b);

/* ---- published state --------------------------------------------------------------------------- */

const char *reconciler_manager_state(Reconciler *r); /* "converged", ... */
uint64_t reconciler_generation(Reconciler *r);
char **reconciler_config_errors(Reconciler *r); /* borrowed strv, may be NULL */
/* Manager.HotplugGuard: early_bind_guard() of the desired state in force ("none" before the first). */
const char *reconciler_hotplug_guard(Reconciler *r);

typedef struct DeviceStatusView {
        DeviceState state;
        const char *desired_driver; /* "" when no rule names it */
        const char *source;
        const char *reason;
        const char *last_error;
} DeviceStatusView;
/* The published state of |address|: converged with empty strings for functions nobody named. */
void reconciler_device_status(Reconciler *r, const char *address, DeviceStatusView *ret);

typedef struct MdevStatusView {
        DeviceState state;
        MdevOwner owner;
        const char *source; /* "FILE:LINE" of the rule that wants it, "" none */
        const char *reason; /* "" when converged */
} MdevStatusView;
/* The published state of mdev |uuid| (the last plan's PlanMdev): one the plan does not list is
 * converged, and hostdevd's only when the ownership record lists it (mdev-ownership.h). Strings
 * borrowed until the next plan. */
void reconciler_mdev_status(Reconciler *r, const char *uuid, MdevStatusView *ret);

/* The current holders (holder-watch.h), sorted by pid then node. Borrowed until the loop's next
 * iteration. Returns 0. */
int reconciler_holders(Reconciler *r, const Holder **ret, size_t *ret_n);
/* Whether |pid| holds under a lease (ReconcilerHooks.holder_is_leased; false without the hook). */
bool reconciler_holder_is_leased(Reconciler *r, pid_t pid);
/* How holders and the host-critical set are tracked: "fanotify" | "scan", "events" | "scan". */
const char *reconciler_holder_tracking(Reconciler *r);
const char *reconciler_critical_tracking(Reconciler *r);

/* Device names ([Device] Name=, desired-state.h) over the desired state in force and the model. The
 * name of |address| (borrowed, NULL if none); the function called |name|: 0 and its address
 * (borrowed), -ENOENT/-ENXIO/-ENOTUNIQ as desired_state_find_name(). */
const char *reconciler_device_name(Reconciler *r, const char *address);
int reconciler_find_name(Reconciler *r, const char *name, const char **ret_address);

/* The host-critical set (a copy of the one the plans use, critical-watch.h; computed on the spot
 * while that one is unknown). Returns 0 and a new set, or -errno with *ret_error (new string, may be
 * NULL) saying why it is unknown. */
int reconciler_compute_critical(Reconciler *r, CriticalSet **ret, char **ret_error);

/* The store could not be loaded: why (borrowed), else NULL. */
const char *reconciler_store_error(Reconciler *r);
