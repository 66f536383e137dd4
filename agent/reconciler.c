/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The reconciler (reconciler.h): desired state in, plans out, jobs in the executor, outcomes published. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "critical-watch.h"
#include "critical.h"
#include "early-bind.h"
#include "escape.h"
#include "event-priorities.h"
#include "executor.h"
#include "file-util.h"
#include "holder-watch.h"
#include "holders.h"
#include "log.h"
#include "macro.h"
#include "mdev-uuids.h"
#include "mdev.h"
#include "module-loader.h"
#include "names.h"
#include "object-path.h"
#include "ownership.h"
#include "status-table.h"
#include "pci-address.h"
#include "reconciler.h"
#include "request.h"
#include "strv.h"
#include "sysfs.h"

typedef struct Waiter {
        uint64_t seq; /* done when the job of this submit sequence finished */
        ReconcilerDoneFunc done;
        void *userdata;
} Waiter;

/* A job of ours in the executor. A full one planned every function; a fresh one only functions that
 * just appeared (reconciler_run_fresh()), possibly while a full one runs. */
typedef struct InflightJob {
        uint64_t id;
        bool full;
        bool mdevs; /* it creates or removes mdevs (or sets vGPU types): their uevents are held */
        char **addresses; /* every function its actions touch */
} InflightJob;

struct Reconciler {
        sd_event *event;
        Model *model; /* the observed model, owned by the daemon */
        ReconcilerHooks hooks;
        void *hooks_userdata;
        char **dirs;
        char *state_dir;
        char *request_dir_run; /* RUNTIME_DIR/devices.d */
        char *request_dir_persist; /* STATE_DIR/devices.d */
        char *proc_root;
        char *critical_root;

        DesiredState *desired;
        char **config_errors;
        uint64_t generation;
        char **logged_conflicts; /* the conflicts of the last plan, logged (reconciler_log_conflicts()) */

        Executor *executor;
        ModuleLoader *module_loader; /* NULL: module loading disabled */
        sd_event_source *plan_source;
        sd_event_source *fresh_source;
        char **fresh; /* functions that appeared since the last fresh plan (reconciler_run_fresh()) */
        sd_event_source *publish_source;
        InflightJob *inflight; /* our jobs in the executor, queued or running */
        size_t n_inflight;
        bool queued; /* plan again once they are done */
        bool force; /* the next plan retries held functions */
        uint64_t n_submitted; /* full jobs (every function planned) submitted */
        uint64_t n_full_done; /* of them, done */

        Waiter *waiters;
        size_t n_waiters;

        StatusTable *status; /* what is published per function (status-table.h) */
        bool manager_dirty;
        char *published_state;
        uint64_t published_generation;
        HotplugGuard published_guard;
        char **published_config_errors;

        /* The holders and the host-critical set, kept current off the loop; a full plan asks for
         * current sets (the tickets) and runs once both watches have answered. */
        HolderWatch *holder_watch;
        CriticalWatch *critical_watch;
        bool inputs_asked;
        bool inputs_stale; /* a plan was asked for since the tickets were taken */
        uint64_t holders_ticket, critical_ticket;
        char **logged_holders; /* "PID NODE" of the unleased holders logged already */
        bool holders_dirty; /* Manager.UnleasedHolders to announce */

        /* The ownership records and the executor's journal hook (thread-safe; the only state the
         * executor's lanes share with the loop). */
        Ownership *ownership;

        /* Issue 14: mdevs and vendor vGPUs. */
        bool has_mdev_rules; /* the desired state has an [Mdev] or [VGPU] rule */
        MdevUuids *mdev_uuids; /* the stable UUIDs of Count= rules (mdev-uuids.h) */
        char **owned_mdevs, **owned_vgpus; /* of the last plan (ownership_list_owned_mdevs()) */
        VgpuTypeNames *vgpu_type_names; /* vGPU type names every VF read so far listed (mdev.h) */
        bool vgpu_type_names_save; /* false: the state file was bad, left for the operator to look at */
        char **mdev_errors; /* the rules the last resolution could not place ("FILE:LINE: ...") */
        char **all_config_errors; /* config_errors, then mdev_errors: Manager.ConfigErrors */
        PlanMdev *mdev_status; /* the last plan's instances (PlanMdev copies), published on Mdev objects */
        size_t n_mdev_status;
        /* Instances whose transaction failed or got stuck (key: UUID, or "vgpu:VF"), with the outcome:
         * not retried until the desired state changes or Apply() (else a create the kernel refuses
         * would be retried on its own add/remove uevents forever). */
        char **mdev_failed, **mdev_failed_reasons;
        DeviceState *mdev_failed_states;
};

static int mdev_status_update(Reconciler *r, const Plan *plan);

static int str_ptr_compare(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- status table --------------------------------------------------------------------------------- */

static void reconciler_schedule_publish(Reconciler *r) {
        if (r->publish_source)
                (void)sd_event_source_set_enabled(r->publish_source, SD_EVENT_ONESHOT);
}

static bool status_is_stuck(const char *address, void *userdata) {
        Reconciler *r = userdata;

        return r->executor && executor_is_stuck(r->executor, address);
}

/* Replace the table with the plan's view, keeping what the executor found (failed, stuck, LastError). */
static int status_update_from_plan(Reconciler *r, const Plan *plan) {
        int k;

        k = status_table_update_from_plan(r->status, plan, r->model, status_is_stuck, r);
        if (k < 0)
                return k;
        k = mdev_status_update(r, plan);
        if (k < 0)
                return k;
        r->manager_dirty = true;
        reconciler_schedule_publish(r);
        return 0;
}

/* An executor outcome for one function. */
static int status_set_outcome(
        Reconciler *r, const char *address, DeviceState state, int error, const char *reason) {
        int k;

        k = status_table_set_outcome(r->status, address, state, error, reason);
        r->manager_dirty = true;
        reconciler_schedule_publish(r);
        return k;
}

static bool streq_null(const char *a, const char *b) {
        return streq(strempty(a), strempty(b));
}

/* ---- published state --------------------------------------------------------------------------- */

const char *reconciler_manager_state(Reconciler *r) {
        DeviceState worst = DEVICE_STATE_CONVERGED;

        worst = status_table_worst(r->status);
        for (size_t i = 0; i < r->n_mdev_status; i++)
                worst = device_state_worst((const DeviceState[]){ worst, r->mdev_status[i].state }, 2);
        if (worst == DEVICE_STATE_CONVERGED && (r->n_inflight > 0 || r->queued))
                worst = DEVICE_STATE_PENDING;
        return device_state_to_string(worst);
}

uint64_t reconciler_generation(Reconciler *r) {
        return r->generation;
}

const char *reconciler_hotplug_guard(Reconciler *r) {
        return hotplug_guard_to_string(early_bind_guard(r ? r->desired : NULL));
}

char **reconciler_config_errors(Reconciler *r) {
        return r->all_config_errors;
}

/* Manager.ConfigErrors: the files' problems, then the [Mdev]/[VGPU] rules that could not be placed. */
static void config_errors_rebuild(Reconciler *r) {
        _cleanup_strv_free_ char **all = NULL;

        STRV_FOREACH (e, r->config_errors)
                if (strv_extend(&all, *e) < 0)
                        return;
        STRV_FOREACH (e, r->mdev_errors)
                if (!strv_contains(all, *e) && strv_extend(&all, *e) < 0)
                        return;
        strv_free(r->all_config_errors);
        r->all_config_errors = TAKE_PTR(all);
}

const char *reconciler_store_error(Reconciler *r) {
        return ownership_error(r->ownership);
}

void reconciler_device_status(Reconciler *r, const char *address, DeviceStatusView *ret) {
        const DeviceStatus *s = r ? status_table_get(r->status, address) : NULL;

        if (!s) {
                *ret = (DeviceStatusView){
                        .state = DEVICE_STATE_CONVERGED,
                        .desired_driver = "",
                        .source = "",
                        .reason = "",
                        .last_error = "",
                };
                return;
        }
        *ret = (DeviceStatusView){
                .state = s->state,
                .desired_driver = strempty(s->desired_driver),
                .source = strempty(s->source),
                .reason = strempty(s->reason),
                .last_error = strempty(s->last_error),
        };
}

/* Hand a function's changed status to the publisher (ReconcilerHooks.status_changed). */
static void publish_device(const char *address, void *userdata) {
        Reconciler *r = userdata;

        if (r->hooks.status_changed && model_get_device(r->model, address))
                r->hooks.status_changed(r->hooks_userdata, address);
}

static int on_publish(sd_event_source *source, void *userdata) {
        Reconciler *r = userdata;
        const char *names[5];
        const char *state;
        size_t n = 0;

        status_table_take_dirty(r->status, publish_device, r);

        if (!r->manager_dirty)
                return 0;
        r->manager_dirty = false;

        state = reconciler_manager_state(r);
        if (!streq_null(state, r->published_state)) {
                char *s = strdup(state);

                if (s) {
                        free(r->published_state);
                        r->published_state = s;
                }
                names[n++] = "State";
        }
        if (r->generation != r->published_generation) {
                r->published_generation = r->generation;
                names[n++] = "Generation";
        }
        if (early_bind_guard(r->desired) != r->published_guard) {
                r->published_guard = early_bind_guard(r->desired);
                names[n++] = "HotplugGuard";
        }
        if (!strv_equal(r->all_config_errors, r->published_config_errors)) {
                char **copy = NULL;
                bool ok = true;

                STRV_FOREACH (e, r->all_config_errors)
                        if (strv_extend(&copy, *e) < 0)
                                ok = false;
                if (ok) {
                        strv_free(r->published_config_errors);
                        r->published_config_errors = copy;
                } else
                        strv_free(copy);
                names[n++] = "ConfigErrors";
        }
        if (r->holders_dirty) {
                r->holders_dirty = false;
                names[n++] = "UnleasedHolders";
        }
        names[n] = NULL;

        if (n > 0 && r->hooks.manager_status_changed)
                r->hooks.manager_status_changed(r->hooks_userdata, (char **)names);
        return 0;
}

int reconciler_holders(Reconciler *r, const Holder **ret, size_t *ret_n) {
        holder_watch_refresh_names(r->holder_watch);
        holder_watch_get(r->holder_watch, ret, ret_n);
        return 0;
}

bool reconciler_holder_is_leased(Reconciler *r, pid_t pid) {
        return r->hooks.holder_is_leased && r->hooks.holder_is_leased(r->hooks_userdata, pid);
}

const char *reconciler_holder_tracking(Reconciler *r) {
        return holder_tracking_to_string(holder_watch_tracking(r->holder_watch));
}

const char *reconciler_critical_tracking(Reconciler *r) {
        return critical_tracking_to_string(critical_watch_tracking(r->critical_watch));
}

/* The host-critical set the plans use (critical-watch.h); NULL when unknown. */
static const CriticalSet *reconciler_critical(Reconciler *r) {
        return critical_watch_get(r->critical_watch, NULL, NULL);
}

static bool reconciler_is_active(Reconciler *r);
static void reconciler_schedule_plan(Reconciler *r);

/* ---- holders and the host-critical set ------------------------------------------------------------ */

/* The PCI functions |h| holds, for the journal: "0000:41:00.0, 0000:41:00.1"; NULL on OOM. */
static char *holder_devices(Reconciler *r, const Holder *h, const char **ret_first) {
        const PciDevice *const *devices;
        size_t n = 0;
        char *s = strdup("");

        *ret_first = NULL;
        devices = model_get_devices(r->model, &n);
        for (size_t i = 0; s && i < n; i++) {
                char *t;

                if (!holder_holds_device(h, devices[i]))
                        continue;
                if (!*ret_first)
                        *ret_first = devices[i]->address;
                if (asprintf(&t, "%s%s%s", s, *s ? ", " : "", devices[i]->address) < 0)
                        t = NULL;
                free(s);
                s = t;
        }
        return s;
}

/* Each unleased holder once in the journal, with VMM_PID= and PCI_ADDR= (its first function). */
static void reconciler_log_holders(Reconciler *r) {
        _cleanup_strv_free_ char **seen = NULL;
        const Holder *holders;
        size_t n;

        holder_watch_refresh_names(r->holder_watch);
        holder_watch_get(r->holder_watch, &holders, &n);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *key = NULL, *devices = NULL, *fields = NULL;
                const char *first;

                if (reconciler_holder_is_leased(r, holders[i].pid))
                        continue;
                if (asprintf(&key, "%i %s", (int)holders[i].pid, holders[i].node) < 0 ||
                    strv_extend(&seen, key) < 0)
                        return; /* out of memory: logged again later at worst */
                if (strv_contains(r->logged_holders, key))
                        continue;
                devices = holder_devices(r, &holders[i], &first);
                if (!devices)
                        return;
                if (asprintf(
                            &fields, JOURNAL_FIELD_VMM_PID "=%i%s%s", (int)holders[i].pid,
                            first ? "\n" JOURNAL_FIELD_PCI_ADDR "=" : "", strempty(first)) < 0)
                        return;
                log_field_full_errno(
                        LOG_NOTICE, 0, fields, NULL,
                        "Process %i (%s) holds %s with no lease (PCI functions: %s): protected while it holds it",
                        (int)holders[i].pid, holders[i].comm, holders[i].node,
                        *devices ? devices : "none known");
        }
        strv_free(r->logged_holders);
        r->logged_holders = TAKE_PTR(seen);
}

static void on_holders_changed(bool set_changed, void *userdata) {
        Reconciler *r = userdata;

        if (set_changed) {
                reconciler_log_holders(r);
                r->holders_dirty = true;
                r->manager_dirty = true;
                reconciler_schedule_publish(r);
        }
        /* A plan waits for this answer, or what a plan decided may differ now (a blocked function). */
        if (r->inputs_asked || (set_changed && reconciler_is_active(r)))
                reconciler_schedule_plan(r);
}

static void on_critical_changed(bool set_changed, void *userdata) {
        Reconciler *r = userdata;

        if (r->inputs_asked || (set_changed && reconciler_is_active(r)))
                reconciler_schedule_plan(r);
}

/* Whether both watches have a set that is current for this plan; if not, they were asked, and their
 * answer schedules the plan again. */
static bool reconciler_inputs_current(Reconciler *r) {
        if (!r->inputs_asked || r->inputs_stale) {
                r->holders_ticket = holder_watch_request(r->holder_watch);
                r->critical_ticket = critical_watch_request(r->critical_watch);
                r->inputs_asked = true;
                r->inputs_stale = false;
        }
        if (!holder_watch_reached(r->holder_watch, r->holders_ticket) ||
            !critical_watch_reached(r->critical_watch, r->critical_ticket))
                return false;
        r->inputs_asked = false;
        return true;
}

/* ---- planning ------------------------------------------------------------------------------------ */

static bool reconciler_is_active(Reconciler *r) {
        if (r->desired && r->desired->n_rules > 0)
                return true;
        return ownership_any(r->ownership) || status_table_size(r->status) > 0 || r->owned_mdevs ||
                r->owned_vgpus;
}

static bool desired_has_mdev_rules(const DesiredState *s) {
        for (size_t i = 0; s && i < s->n_rules; i++)
                if (s->rules[i].mdev.present || s->rules[i].vgpu.present)
                        return true;
        return false;
}

/* ---- mdevs and vendor vGPUs (issue 14) --------------------------------------------------------- */

/* What the mdev resolution and the planner see of mdevs: the model's arrays (borrowed) and the vGPU
 * VFs read now (owned). */
typedef struct MdevInputs {
        const Mdev *const *mdevs;
        size_t n_mdevs;
        const MdevParent *const *parents;
        size_t n_parents;
        VgpuVf **vfs;
        size_t n_vfs;
} MdevInputs;

static void mdev_inputs_done(MdevInputs *m) {
        for (size_t i = 0; i < m->n_vfs; i++)
                vgpu_vf_free(m->vfs[i]);
        free(m->vfs);
        *m = (MdevInputs){};
}

/* The model's mdevs and parents, and nvidia/ of every VF (mdev.h: vgpu_vf_read()). Only when some
 * rule or record concerns them: a host without vGPUs reads nothing more per plan. */
static int mdev_inputs_read(
        Reconciler *r, const PciDevice *const *devices, size_t n_devices, MdevInputs *ret) {
        MdevInputs m = {};

        m.mdevs = model_get_mdevs(r->model, &m.n_mdevs);
        m.parents = model_get_mdev_parents(r->model, &m.n_parents);
        if (r->has_mdev_rules || r->owned_vgpus)
                for (size_t i = 0; i < n_devices; i++) {
                        VgpuVf *v = NULL, **a;
                        int k;

                        if (devices[i]->sriov_role != SRIOV_ROLE_VF)
                                continue;
                        k = vgpu_vf_read(devices[i]->address, &v);
                        if (k == -ENOMEM) {
                                mdev_inputs_done(&m);
                                return k;
                        }
                        if (k < 0) /* -ENOENT: no vendor vGPU on this VF */
                                continue;
                        a = reallocarray(m.vfs, m.n_vfs + 1, sizeof(VgpuVf *));
                        if (!a) {
                                vgpu_vf_free(v);
                                mdev_inputs_done(&m);
                                return -ENOMEM;
                        }
                        m.vfs = a;
                        m.vfs[m.n_vfs++] = v;
                }
        /* Kept for a by-name [VGPU] Type= once no VF lists the type any more, across restarts too. */
        if (m.n_vfs > 0) {
                int learnt =
                        vgpu_type_names_learn(&r->vgpu_type_names, (const VgpuVf *const *)m.vfs, m.n_vfs);

                if (learnt == -ENOMEM) {
                        mdev_inputs_done(&m);
                        return -ENOMEM;
                }
                if (learnt > 0 && r->vgpu_type_names_save) {
                        int k = vgpu_type_names_save(r->vgpu_type_names, r->state_dir);
                        if (k < 0)
                                log_warning_errno(
                                        k, "Failed to save the vGPU type names to %s/%s, ignoring: %m",
                                        r->state_dir, HOSTDEVD_VGPU_TYPE_NAMES_FILE);
                }
        }
        *ret = m;
        return 0;
}

/* Resolve |s|'s [Mdev]/[VGPU] rules against what |m| and |devices| show into |res|. */
static int reconciler_resolve_mdevs(
        Reconciler *r, const DesiredState *s, const PciDevice *const *devices, size_t n_devices,
        const MdevInputs *m, DesiredResolution *res) {
        MdevResolveInput mi = {
                .devices = devices,
                .n_devices = n_devices,
                .parents = m->parents,
                .n_parents = m->n_parents,
                .mdevs = m->mdevs,
                .n_mdevs = m->n_mdevs,
                .vgpu_vfs = (const VgpuVf *const *)m->vfs,
                .n_vgpu_vfs = m->n_vfs,
                .owned_mdevs = r->owned_mdevs, /* a UUID= rule may change what hostdevd owns */
                .vgpu_type_names = r->vgpu_type_names,
        };

        if (!desired_has_mdev_rules(s))
                return 0;
        return desired_state_resolve_mdevs(s, &mi, r->mdev_uuids, res);
}

/* The rules the last resolution could not place, in Manager.ConfigErrors and the journal. */
static void reconciler_set_mdev_errors(Reconciler *r, char **errors) {
        _cleanup_strv_free_ char **copy = NULL;

        if (strv_equal(errors, r->mdev_errors))
                return;
        STRV_FOREACH (e, errors) {
                if (!strv_contains(r->mdev_errors, *e))
                        log_error("%s", *e);
                if (strv_extend(&copy, *e) < 0)
                        return;
        }
        strv_free(r->mdev_errors);
        r->mdev_errors = TAKE_PTR(copy);
        config_errors_rebuild(r);
        r->manager_dirty = true;
        reconciler_schedule_publish(r);
}

/* The mdev ownership records (ownership.h; the executor's journal writes them before a create and
 * drops an instance after its verified removal), for the planner and reconciler_is_active(). */
static int reconciler_read_owned_mdevs(Reconciler *r) {
        _cleanup_strv_free_ char **mdevs = NULL, **vgpus = NULL;

        if (ownership_list_owned_mdevs(r->ownership, false, &mdevs) < 0 ||
            ownership_list_owned_mdevs(r->ownership, true, &vgpus) < 0)
                return -ENOMEM;
        strv_free(r->owned_mdevs);
        r->owned_mdevs = TAKE_PTR(mdevs);
        strv_free(r->owned_vgpus);
        r->owned_vgpus = TAKE_PTR(vgpus);
        return 0;
}

/* An instance a UUID= rule names that exists and that no record lists yet (made before the rule, or
 * by hand): the rule makes it hostdevd's, so it is removed when no rule wants it any more. A dry run
 * (Plan(), hostdevctl plan) plans as if adopted but records nothing: it changes nothing on disk. */
static int reconciler_adopt_named_mdevs(Reconciler *r, const DesiredResolution *res, char ***dry_run_owned) {
        STRV_FOREACH (o, dry_run_owned ? r->owned_mdevs : NULL)
                if (strv_extend(dry_run_owned, *o) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < res->n_mdevs; i++) {
                const DesiredMdev *dm = &res->mdevs[i];
                const Mdev *m = model_get_mdev(r->model, dm->uuid);
                int k;

                if (!dm->named || !m || strv_contains(r->owned_mdevs, dm->uuid))
                        continue;
                if (dry_run_owned) {
                        if (strv_extend(dry_run_owned, dm->uuid) < 0)
                                return -ENOMEM;
                        continue;
                }
                k = ownership_adopt_mdev(r->ownership, dm->uuid, strempty(m->parent), strempty(m->type_id));
                if (k < 0)
                        log_warning_errno(
                                k, "Failed to record mdev %s as hostdevd's: %m, ignoring", dm->uuid);
                else if (k > 0 && strv_extend(&r->owned_mdevs, dm->uuid) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Before the writes of |todo| run: the stable UUIDs picked for Count= rules, durably, so that an
 * instance created now gets the same UUID after a restart (mdev-uuids.h). The ownership record of
 * each instance is the executor journal's (ownership.h). Returns 0 or -errno of saving. */
static int reconciler_save_mdev_uuids(Reconciler *r, const Plan *todo) {
        bool any = false;
        int k;

        for (size_t i = 0; i < todo->n_actions; i++)
                any = any || todo->actions[i].type == PLAN_ACTION_MDEV_CREATE;
        if (!any)
                return 0;
        k = mdev_uuids_save(r->mdev_uuids);
        if (k < 0)
                return log_error_errno(k, "Failed to save the stable mdev UUIDs: %m");
        return 0;
}

static const char *plan_mdev_key(const char *uuid, const char *vf, char *buf, size_t size) {
        if (uuid && *uuid)
                return uuid;
        (void)snprintf(buf, size, "vgpu:%s", strempty(vf));
        return buf;
}

static ssize_t mdev_failed_find(Reconciler *r, const char *key) {
        for (size_t i = 0; r->mdev_failed && r->mdev_failed[i]; i++)
                if (streq(r->mdev_failed[i], key))
                        return (ssize_t)i;
        return -1;
}

static void mdev_failed_clear(Reconciler *r) {
        r->mdev_failed = strv_free(r->mdev_failed);
        r->mdev_failed_reasons = strv_free(r->mdev_failed_reasons);
        r->mdev_failed_states = mfree(r->mdev_failed_states);
}

static void mdev_failed_set(Reconciler *r, const char *key, DeviceState state, const char *reason) {
        ssize_t i = mdev_failed_find(r, key);
        size_t n = strv_length(r->mdev_failed);
        DeviceState *states;
        char *copy;

        if (i >= 0) {
                copy = strdup(strempty(reason));
                if (!copy)
                        return;
                free(r->mdev_failed_reasons[i]);
                r->mdev_failed_reasons[i] = copy;
                r->mdev_failed_states[i] = state;
                return;
        }
        states = reallocarray(r->mdev_failed_states, n + 1, sizeof(DeviceState));
        if (!states)
                return;
        r->mdev_failed_states = states;
        if (strv_extend(&r->mdev_failed, key) < 0)
                return;
        if (strv_extend(&r->mdev_failed_reasons, strempty(reason)) < 0) {
                mdev_failed_clear(r); /* keep the lists parallel: at worst retried */
                return;
        }
        states[n] = state;
}

/* Drop the transactions of failed instances from |todo| (one instance per mdev transaction). While a
 * [Mdev]/[VGPU] rule cannot be resolved, the planner itself plans no removal on the parents and VFs
 * it could select (DesiredResolution.held). */
static void reconciler_drop_failed_mdevs(Reconciler *r, Plan *todo) {
        size_t n = 0;

        if (!r->mdev_failed)
                return;
        for (size_t i = 0; i < todo->n_actions; i++) {
                PlanAction *a = &todo->actions[i];
                char buf[PCI_ADDRESS_STRING_MAX + 8];

                if (plan_action_type_is_mdev(a->type) &&
                    mdev_failed_find(r, plan_mdev_key(a->uuid, a->address, buf, sizeof(buf))) >= 0) {
                        free(a->driver);
                        free(a->reason);
                        free(a->parent);
                        free(a->mdev_type);
                        free(a->attr_name);
                        free(a->attr_value);
                        continue;
                }
                todo->actions[n++] = *a;
        }
        todo->n_actions = n;
}

/* The published per-instance state: copy the plan's instances, announce those that changed. */
static bool plan_mdev_same(const PlanMdev *a, const PlanMdev *b) {
        return a->state == b->state && a->owner == b->owner && streq_null(a->reason, b->reason) &&
                streq_null(a->source, b->source);
}

static void mdev_status_free(PlanMdev *m, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(m[i].parent);
                free(m[i].type);
                free(m[i].source);
                free(m[i].reason);
        }
        free(m);
}

static int mdev_status_update(Reconciler *r, const Plan *plan) {
        PlanMdev *copy = NULL;
        size_t n = 0;

        if (plan->n_mdevs > 0) {
                copy = calloc(plan->n_mdevs, sizeof(PlanMdev));
                if (!copy)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < plan->n_mdevs; i++) {
                const PlanMdev *m = &plan->mdevs[i];
                PlanMdev *c = &copy[n++];

                char buf[PCI_ADDRESS_STRING_MAX + 8];
                ssize_t f = mdev_failed_find(r, plan_mdev_key(m->uuid, m->parent, buf, sizeof(buf)));
                bool failed = f >= 0 && m->state != DEVICE_STATE_CONVERGED;

                *c = (PlanMdev){ .state = failed ? r->mdev_failed_states[f] : m->state, .owner = m->owner };
                memcpy(c->uuid, m->uuid, sizeof(c->uuid));
                if (failed && !(c->reason = strdup(r->mdev_failed_reasons[f]))) {
                        mdev_status_free(copy, n);
                        return -ENOMEM;
                }
                if ((m->parent && !(c->parent = strdup(m->parent))) ||
                    (m->type && !(c->type = strdup(m->type))) ||
                    (m->source && !(c->source = strdup(m->source))) ||
                    (!failed && m->reason && !(c->reason = strdup(m->reason)))) {
                        mdev_status_free(copy, n);
                        return -ENOMEM;
                }
        }

        /* Announce instances whose state, owner or reason changed, or that came or went from the plan. */
        if (r->hooks.mdev_status_changed) {
                for (size_t i = 0; i < n; i++) {
                        const PlanMdev *old = NULL;

                        if (!copy[i].uuid[0])
                                continue;
                        for (size_t j = 0; j < r->n_mdev_status; j++)
                                if (streq(r->mdev_status[j].uuid, copy[i].uuid))
                                        old = &r->mdev_status[j];
                        if ((!old || !plan_mdev_same(old, &copy[i])) &&
                            model_get_mdev(r->model, copy[i].uuid))
                                r->hooks.mdev_status_changed(r->hooks_userdata, copy[i].uuid);
                }
                for (size_t j = 0; j < r->n_mdev_status; j++) {
                        bool kept = false;

                        for (size_t i = 0; i < n && !kept; i++)
                                kept = streq(copy[i].uuid, r->mdev_status[j].uuid);
                        if (!kept && r->mdev_status[j].uuid[0] &&
                            model_get_mdev(r->model, r->mdev_status[j].uuid))
                                r->hooks.mdev_status_changed(r->hooks_userdata, r->mdev_status[j].uuid);
                }
        }
        mdev_status_free(r->mdev_status, r->n_mdev_status);
        r->mdev_status = copy;
        r->n_mdev_status = n;
        return 0;
}

void reconciler_mdev_status(Reconciler *r, const char *uuid, MdevStatusView *ret) {
        for (size_t i = 0; r && uuid && i < r->n_mdev_status; i++) {
                const PlanMdev *m = &r->mdev_status[i];

                if (!streq(m->uuid, uuid))
                        continue;
                *ret = (MdevStatusView){
                        .state = m->state,
                        .owner = m->owner,
                        .source = strempty(m->source),
                        .reason = strempty(m->reason),
                };
                return;
        }
        /* Not in the last plan: as it is, and hostdevd's only if recorded. */
        *ret = (MdevStatusView){
                .state = DEVICE_STATE_CONVERGED,
                .owner = r && uuid && strv_contains(r->owned_mdevs, uuid) ? MDEV_OWNER_HOSTDEVD
                                                                          : MDEV_OWNER_FOREIGN,
                .source = "",
                .reason = "",
        };
}

static int plan_empty(Plan **ret) {
        Plan *p = calloc(1, sizeof(Plan));

        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* hostdevd.conf(5) promises the journal names each conflict: logged when it appears (a reload or a
 * runtime request that creates it, a function plugged in that a conflict concerns), not on every
 * plan while it lasts; one that went away and comes back is logged again. */
static void reconciler_log_conflicts(Reconciler *r, const Plan *plan) {
        _cleanup_strv_free_ char **copy = NULL;

        STRV_FOREACH (c, plan->conflicts) {
                if (!strv_contains(r->logged_conflicts, *c))
                        log_notice("Conflicting rules: %s", *c);
                if (strv_extend(&copy, *c) < 0)
                        return; /* out of memory: at worst logged again */
        }
        strv_free(r->logged_conflicts);
        r->logged_conflicts = TAKE_PTR(copy);
}

/*
 * |ret_released|: owned functions no rule names that are back on their host driver already (a crash
 * between the ownership record and the first write, or a release whose record update was lost).
 *
 * |dry_run|: Plan() and hostdevctl plan: nothing is recorded on disk (a UUID= instance is planned as
 * adopted without its ownership record).
 *
 * |cached|: plan with the host-critical set of the last full plan and the last /proc scan, for
 * functions that just appeared (their first write races the kernel's probe). -ENODATA when the
 * critical set is unknown. A function that appeared cannot be a mount's, swap's or route's
 * ancestor yet (it has no driver), nor the boot VGA; it can be a group peer of a critical function,
 * which the caller checks (reconciler_fresh_is_safe()).
 */
static int reconciler_plan_full(Reconciler *r, bool cached, bool dry_run, Plan **ret, char ***ret_released) {
        _cleanup_(desired_resolution_freep) DesiredResolution *resolution = NULL;
        _cleanup_free_ CriticalDevice *all_critical = NULL;
        _cleanup_strv_free_ char **owned = NULL, **sriov_strings = NULL, **dry_run_owned = NULL;
        _cleanup_free_ OwnedSriov *owned_sriov = NULL;
        _cleanup_free_ Holder *merged_holders = NULL; /* shallow copies: the scan's and the leases' */
        _cleanup_(mdev_inputs_done) MdevInputs mdev = {};
        const PciDevice *const *devices;
        const CriticalSet *critical;
        const char *critical_error = NULL;
        const Holder *holders = NULL;
        size_t n_devices = 0, n_holders = 0;
        PlannerInput in = {};
        int k, critical_errno = 0;

        assert(r && ret);

        /* Every uevent received so far in the model first (a plan right after a job's end must see
         * the functions it changed; their refreshes wait in the queue). */
        if (r->hooks.flush_uevents)
                r->hooks.flush_uevents(r->hooks_userdata);

        /* The mdev records as the executor's journal left them (it adds before a create). */
        k = reconciler_read_owned_mdevs(r);
        if (k < 0)
                return k;
        if (!reconciler_is_active(r))
                return plan_empty(ret);
        critical = critical_watch_get(r->critical_watch, &critical_error, &critical_errno);
        if (cached && !critical)
                return -ENODATA;

        devices = model_get_devices(r->model, &n_devices);

        k = desired_state_resolve(r->desired, r->model, &resolution);
        if (k < 0)
                return k;
        k = mdev_inputs_read(r, devices, n_devices, &mdev);
        if (k < 0)
                return k;
        k = reconciler_resolve_mdevs(r, r->desired, devices, n_devices, &mdev, resolution);
        if (k < 0)
                return k;
        if (!cached)
                reconciler_set_mdev_errors(r, resolution->errors);
        k = reconciler_adopt_named_mdevs(r, resolution, dry_run ? &dry_run_owned : NULL);
        if (k < 0)
                return k;

        /* Kept current by the holder watch; a full plan was run once it answered
         * (reconciler_inputs_current()). */
        holder_watch_refresh_names(r->holder_watch);
        holder_watch_get(r->holder_watch, &holders, &n_holders);
        if (r->hooks.lease_holders) {
                const Holder *leased = NULL;
                size_t n_leased = 0;

                r->hooks.lease_holders(r->hooks_userdata, &leased, &n_leased);
                if (n_leased > 0) {
                        merged_holders = calloc(n_holders + n_leased, sizeof(Holder));
                        if (!merged_holders)
                                return -ENOMEM;
                        if (n_holders > 0)
                                memcpy(merged_holders, holders, n_holders * sizeof(Holder));
                        memcpy(merged_holders + n_holders, leased, n_leased * sizeof(Holder));
                        holders = merged_holders;
                        n_holders += n_leased;
                }
        }

        in = (PlannerInput){
                .desired = resolution,
                .devices = devices,
                .n_devices = n_devices,
                .holders = holders,
                .n_holders = n_holders,
                /* The rules were authorized when written: /etc and /usr by root, runtime requests with
                 * AllowCritical only after org.hostdevd1.override-critical (bus-manager.c). */
                .critical_authorized = true,
        };

        /* Computed off the loop after mount, swap and route events (critical-watch.h). */
        if (!critical) {
                /* Unknown means refuse: every function is critical now. */
                if (!cached)
                        log_warning_errno(
                                critical_errno,
                                "Cannot compute the host-critical functions: %s; refusing every change",
                                strna(critical_error));
                all_critical = calloc(n_devices ?: 1, sizeof(CriticalDevice));
                if (!all_critical)
                        return -ENOMEM;
                for (size_t i = 0; i < n_devices; i++)
                        all_critical[i] = (CriticalDevice){
                                .address = devices[i]->address,
                                .reason = "the host-critical set is unknown (see the journal)",
                        };
                in.critical = all_critical;
                in.n_critical = n_devices;
                in.critical_authorized = false;
        } else {
                in.critical = critical->devices;
                in.n_critical = critical->n_devices;
        }

        k = ownership_list_owned(r->ownership, &owned);
        if (k < 0)
                return k;
        in.owned = owned;
        k = ownership_list_sriov(r->ownership, &owned_sriov, &in.n_owned_sriov, &sriov_strings);
        if (k < 0)
                return k;
        in.owned_sriov = owned_sriov;
        in.mdevs = mdev.mdevs;
        in.n_mdevs = mdev.n_mdevs;
        in.mdev_parents = mdev.parents;
        in.n_mdev_parents = mdev.n_parents;
        in.vgpu_vfs = (const VgpuVf *const *)mdev.vfs;
        in.n_vgpu_vfs = mdev.n_vfs;
        in.owned_mdevs = dry_run ? dry_run_owned : r->owned_mdevs;
        in.owned_vgpus = r->owned_vgpus;

        k = planner_plan(&in, ret);
        if (k >= 0)
                reconciler_log_conflicts(r, *ret);
        if (k >= 0)
                log_debug(
                        "Planned%s: %zu functions, %zu actions", cached ? " (cached critical set)" : "",
                        (*ret)->n_devices, (*ret)->n_actions);
        if (k < 0 || !ret_released)
                return k;
        STRV_FOREACH (o, owned) {
                const PlanDevice *pd = plan_get_device(*ret, *o);

                if (!desired_resolution_get_device(resolution, *o) && pd &&
                    pd->state == DEVICE_STATE_CONVERGED && pd->desired_driver &&
                    streq(pd->desired_driver, CONF_DRIVER_HOST) && strv_extend(ret_released, *o) < 0)
                        return -ENOMEM;
        }
        return 0;
}

const char *reconciler_device_name(Reconciler *r, const char *address) {
        const PciDevice *d = model_get_device(r->model, address);

        return d ? desired_state_device_name(r->desired, d) : NULL;
}

int reconciler_find_name(Reconciler *r, const char *name, const char **ret_address) {
        const PciDevice *const *devices;
        const PciDevice *d = NULL;
        size_t n = 0;
        int k;

        devices = model_get_devices(r->model, &n);
        k = desired_state_find_name(r->desired, devices, n, name, &d);
        if (k < 0)
                return k;
        *ret_address = d->address;
        return 0;
}

int reconciler_compute_critical(Reconciler *r, CriticalSet **ret, char **ret_error) {
        const CriticalSet *cached = reconciler_critical(r);
        const PciDevice *const *devices;
        size_t n = 0;

        /* The set the plans use, kept current off the loop (critical-watch.h); computed here, on the
         * loop, only while it is unknown. */
        if (cached) {
                *ret = critical_set_copy(cached);
                return *ret ? 0 : -ENOMEM;
        }
        if (r->hooks.flush_uevents)
                r->hooks.flush_uevents(r->hooks_userdata);
        devices = model_get_devices(r->model, &n);
        return critical_compute(r->critical_root, devices, n, ret, ret_error);
}

int reconciler_plan(Reconciler *r, Plan **ret) {
        return reconciler_plan_full(r, false, true, ret, NULL);
}

static void waiters_complete(Reconciler *r, uint64_t seq, int error) {
        _cleanup_free_ Waiter *done = NULL;
        size_t n_done = 0, n_keep = 0;

        if (r->n_waiters == 0)
                return;
        done = calloc(r->n_waiters, sizeof(Waiter));
        if (!done)
                return;
        for (size_t i = 0; i < r->n_waiters; i++)
                if (r->waiters[i].seq <= seq)
                        done[n_done++] = r->waiters[i];
                else
                        r->waiters[n_keep++] = r->waiters[i];
        r->n_waiters = n_keep;

        for (size_t i = 0; i < n_done; i++)
                done[i].done(r, error, done[i].userdata);
}

/* Someone waits for a job not submitted yet (older waiters wait for the job that is done already). */
static bool waiters_want_next(Reconciler *r) {
        for (size_t i = 0; i < r->n_waiters; i++)
                if (r->waiters[i].seq > r->n_submitted)
                        return true;
        return false;
}

/* ---- our jobs in the executor ----------------------------------------------------------------- */

static size_t inflight_mdev_jobs(Reconciler *r) {
        size_t n = 0;

        for (size_t i = 0; i < r->n_inflight; i++)
                n += r->inflight[i].mdevs;
        return n;
}

/* The mdevs of our own jobs are read once, when the last of them ends (intake_hold_mdevs()): a burst
 * of creates does not re-read the parent's type list per uevent on the CPU the creates run on. */
static void reconciler_hold_mdev_uevents(Reconciler *r, bool hold) {
        if (r->hooks.hold_mdev_uevents)
                r->hooks.hold_mdev_uevents(r->hooks_userdata, hold);
}

static int inflight_add(Reconciler *r, uint64_t id, bool full, const Plan *plan) {
        _cleanup_strv_free_ char **addresses = NULL;
        _cleanup_free_ const char **v = NULL;
        bool mdevs = false;
        size_t n = 0;
        InflightJob *t;

        for (size_t i = 0; i < plan->n_actions && !mdevs; i++)
                mdevs = plan_action_type_is_mdev(plan->actions[i].type);

        /* Sorted and unique (a plan lists a function in each of its actions). */
        if (plan->n_actions > 0) {
                v = reallocarray(NULL, plan->n_actions, sizeof(char *));
                if (!v)
                        return -ENOMEM;
                for (size_t i = 0; i < plan->n_actions; i++)
                        v[i] = plan->actions[i].address;
                qsort(v, plan->n_actions, sizeof(char *), str_ptr_compare);
                addresses = calloc(plan->n_actions + 1, sizeof(char *));
                if (!addresses)
                        return -ENOMEM;
                for (size_t i = 0; i < plan->n_actions; i++) {
                        if (n > 0 && streq(addresses[n - 1], v[i]))
                                continue;
                        addresses[n] = strdup(v[i]);
                        if (!addresses[n])
                                return -ENOMEM;
                        n++;
                }
        }
        t = reallocarray(r->inflight, r->n_inflight + 1, sizeof(InflightJob));
        if (!t)
                return -ENOMEM;
        r->inflight = t;
        r->inflight[r->n_inflight++] = (InflightJob){
                .id = id,
                .full = full,
                .mdevs = mdevs,
                .addresses = TAKE_PTR(addresses),
        };
        if (mdevs && inflight_mdev_jobs(r) == 1)
                reconciler_hold_mdev_uevents(r, true);
        return 0;
}

/* Forget job |id|; returns whether it was a full one. */
static bool inflight_remove(Reconciler *r, uint64_t id) {
        for (size_t i = 0; i < r->n_inflight; i++) {
                bool full = r->inflight[i].full, mdevs = r->inflight[i].mdevs;

                if (r->inflight[i].id != id)
                        continue;
                strv_free(r->inflight[i].addresses);
                memmove(r->inflight + i, r->inflight + i + 1, (r->n_inflight - i - 1) * sizeof(InflightJob));
                r->n_inflight--;
                /* Before the plan that follows the job: it must see them. */
                if (mdevs && inflight_mdev_jobs(r) == 0)
                        reconciler_hold_mdev_uevents(r, false);
                return full;
        }
        return false;
}

/* Held functions (failed or stuck at this generation) and every function a job of ours in the
 * executor touches, for plan_filter() (duplicates do no harm there). */
static int reconciler_exclude(Reconciler *r, char ***ret) {
        if (status_table_list_held(r->status, ret) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_inflight; i++)
                STRV_FOREACH (a, r->inflight[i].addresses)
                        if (strv_extend(ret, *a) < 0)
                                return -ENOMEM;
        return 0;
}

bool reconciler_job_touches(Reconciler *r, const char *address) {
        for (size_t i = 0; r && address && i < r->n_inflight; i++)
                if (strv_contains(r->inflight[i].addresses, address))
                        return true;
        return false;
}

static bool reconciler_store_usable(Reconciler *r) {
        return ownership_usable(r->ownership);
}

/* Plan, update the published state, and submit what may run. Only while no job of ours runs. */
static uint64_t now_monotonic_usec(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static int reconciler_run(Reconciler *r) {
        _cleanup_(plan_freep) Plan *plan = NULL, *todo = NULL;
        _cleanup_strv_free_ char **exclude = NULL, **released = NULL;
        bool force = r->force;
        uint64_t job, started = 0, planned, published, filtered, saved;
        int k;

        assert(r->n_inflight == 0);
        if (!reconciler_inputs_current(r)) {
                log_debug("Plan waits for the holder and host-critical watches");
                return 0; /* planned when the watches answer (on_holders_changed(), on_critical_changed()) */
        }
        r->force = false;

        started = now_monotonic_usec();
        k = reconciler_plan_full(r, false, false, &plan, &released);
        /* The loop time of a full plan (tests/bench/holders-bench.py reads it): proportional to the
         * functions, never to the processes or mounts of the host. */
        log_debug("Full plan on the loop: %" PRIu64 " us", now_monotonic_usec() - started);
        if (k < 0) {
                log_error_errno(k, "Failed to plan: %m");
                waiters_complete(r, r->n_submitted + 1, k);
                return k;
        }

        if (force) {
                status_table_release_all(r->status);
                mdev_failed_clear(r);
        }

        /* Nothing left to own: no record, so a later rule for it starts from what it is now. A PF's
         * SR-IOV settings are given back first: its record stays until they are. */
        STRV_FOREACH (a, plan->sriov_released)
                if (!strv_contains(released, *a) && ownership_forget_sriov(r->ownership, *a) >= 0)
                        log_info(
                                "PCI function %s: its SR-IOV settings are as before hostdevd changed them, "
                                "or someone else's now: no longer owned",
                                *a);
        STRV_FOREACH (a, released) {
                if (ownership_has_sriov(r->ownership, *a) && !strv_contains(plan->sriov_released, *a))
                        continue;
                if (ownership_forget(r->ownership, *a) >= 0)
                        log_debug("PCI function %s is on its host driver again: no longer owned", *a);
        }

        planned = now_monotonic_usec();
        k = status_update_from_plan(r, plan);
        if (k < 0) {
                waiters_complete(r, r->n_submitted + 1, k);
                return k;
        }
        published = now_monotonic_usec();

        k = reconciler_exclude(r, &exclude);
        if (k < 0)
                return k;
        k = plan_filter(plan, exclude, NULL, &todo);
        if (k < 0)
                return k;
        reconciler_drop_failed_mdevs(r, todo);
        filtered = now_monotonic_usec();

        if (todo->n_actions == 0 && !waiters_want_next(r))
                return 0;

        if (todo->n_actions > 0 && !reconciler_store_usable(r)) {
                log_error(
                        "Not changing any device: the ownership records could not be loaded (%s)",
                        strna(ownership_error(r->ownership)));
                waiters_complete(r, r->n_submitted + 1, -EUCLEAN);
                return -EUCLEAN;
        }

        k = reconciler_save_mdev_uuids(r, todo);
        if (k < 0) {
                waiters_complete(r, r->n_submitted + 1, k);
                return k;
        }
        saved = now_monotonic_usec();

        k = executor_submit(r->executor, todo, &job);
        if (k >= 0)
                k = inflight_add(r, job, true, todo);
        if (k < 0) {
                log_error_errno(k, "Failed to start the sysfs writes: %m");
                waiters_complete(r, r->n_submitted + 1, k);
                return k;
        }
        r->n_submitted++;
        r->manager_dirty = true;
        reconciler_schedule_publish(r);

        if (todo->n_actions > 0)
                log_info(
                        "Converging: %zu sysfs steps in %u transactions (job %" PRIu64 ")", todo->n_actions,
                        todo->n_transactions, job);
        /* Where the time from a reload to the first sysfs write goes (tests/bench/mdev-bench.sh). */
        log_debug(
                "Job %" PRIu64 " on the loop: status %" PRIu64 " us, filter %" PRIu64
                " us, stable UUIDs %" PRIu64 " us, submit %" PRIu64 " us",
                job, published - planned, filtered - published, saved - filtered,
                now_monotonic_usec() - saved);
        return 0;
}

/*
 * A function that appeared in an IOMMU group with a host-critical function is left to the full
 * plan (the cached critical set does not list it as a peer yet).
 */
static bool reconciler_fresh_is_safe(Reconciler *r, char *const *fresh) {
        for (char *const *a = fresh; a && *a; a++) {
                _cleanup_strv_free_ char **peers = NULL;

                if (critical_set_get(reconciler_critical(r), *a))
                        return false;
                if (model_get_iommu_group_peers(r->model, *a, &peers) < 0)
                        return false;
                STRV_FOREACH (p, peers)
                        if (critical_set_get(reconciler_critical(r), *p))
                                return false;
        }
        return true;
}

/*
 * Functions that just appeared (hotplug, new VFs): plan and submit their transactions at once, as
 * an urgent job, even while a job of ours runs, so the first write (driver_override) has a chance
 * to come before the kernel's own probe of the function. Planned with the cached critical set and
 * holders (reconciler_plan_full()); transactions that touch a function of a job in the executor
 * wait for the full plan that follows. Returns 1 when a job was submitted, 0 when there was
 * nothing to do here (the full plan still runs), or a negative errno.
 */
static int reconciler_run_fresh(Reconciler *r, char *const *fresh) {
        _cleanup_(plan_freep) Plan *plan = NULL, *todo = NULL;
        _cleanup_strv_free_ char **exclude = NULL;
        uint64_t job;
        int k;

        if (!r->executor || !reconciler_critical(r) || !reconciler_fresh_is_safe(r, fresh) ||
            !reconciler_store_usable(r))
                return 0;

        k = reconciler_plan_full(r, true, false, &plan, NULL);
        if (k == -ENODATA)
                return 0;
        if (k < 0)
                return log_error_errno(k, "Failed to plan for new PCI functions: %m");

        k = status_update_from_plan(r, plan);
        if (k < 0)
                return k;

        k = reconciler_exclude(r, &exclude);
        if (k < 0)
                return k;
        k = plan_filter(plan, exclude, fresh, &todo);
        if (k < 0)
                return k;
        reconciler_drop_failed_mdevs(r, todo);
        if (todo->n_actions == 0)
                return 0;

        /* An unbound new function without an override: the kernel's own first probe may still be to
         * come. */
        for (size_t i = 0; i < todo->n_actions; i++) {
                PlanAction *a = &todo->actions[i];
                const PciDevice *dev;

                if (a->type != PLAN_ACTION_VERIFY || a->verify != PLAN_VERIFY_DRIVER ||
                    !strv_contains(fresh, a->address))
                        continue;
                dev = model_get_device(r->model, a->address);
                if (dev && !dev->driver && !dev->driver_override)
                        a->verify = PLAN_VERIFY_DRIVER_SETTLE;
        }

        k = reconciler_save_mdev_uuids(r, todo);
        if (k < 0)
                return k;

        k = executor_submit_first(r->executor, todo, &job);
        if (k >= 0)
                k = inflight_add(r, job, false, todo);
        if (k < 0)
                return log_error_errno(k, "Failed to start the sysfs writes for new PCI functions: %m");
        r->manager_dirty = true;
        reconciler_schedule_publish(r);
        log_info(
                "Converging new PCI functions: %zu sysfs steps in %u transactions (job %" PRIu64 ")",
                todo->n_actions, todo->n_transactions, job);
        return 1;
}

void reconciler_on_pci_bind(Reconciler *r, const char *sysname) {
        if (!r || r->n_inflight == 0)
                return;
        log_debug("PCI function %s bound: waking the jobs waiting for a first probe", sysname);
        executor_notify_bind(r->executor);
}

bool reconciler_on_pci_add(
        Reconciler *r, const char *syspath, const char *sysname, const char *pci_id,
        const char *pci_subsys_id, const char *pci_class) {
        _cleanup_(plan_freep) Plan *plan = NULL;
        _cleanup_free_ char *driver = NULL;
        EarlyBindUevent u = {
                .syspath = syspath,
                .sysname = sysname,
                .pci_id = pci_id,
                .pci_subsys_id = pci_subsys_id,
                .pci_class = pci_class,
        };
        uint64_t job;
        int k;

        if (!r || !r->desired || r->desired->n_rules == 0 || !r->executor)
                return false;
        k = early_bind_plan(r->desired, r->model, reconciler_critical(r), &u, &plan, &driver);
        if (k <= 0)
                return false;
        if (!reconciler_store_usable(r)) {
                log_debug(
                        "PCI function %s: no driver_override on its \"add\" (the ownership records are "
                        "unusable); planned once read",
                        sysname);
                return false;
        }

        k = executor_submit_first(r->executor, plan, &job);
        if (k >= 0)
                k = inflight_add(r, job, false, plan);
        if (k < 0) {
                log_debug_errno(k, "PCI function %s: no early driver_override: %m", sysname);
                return false;
        }
        log_info(
                "New PCI function %s: driver_override %s before the kernel's first probe (job %" PRIu64 ")",
                sysname, driver, job);
        return true;
}

/* ---- the early-bind thread (executor-early.h) ---------------------------------------------------- */

static void reconciler_early_rules_changed(Reconciler *r) {
        if (r->hooks.early_rules_changed)
                r->hooks.early_rules_changed(r->hooks_userdata);
}

int reconciler_early_bind_snapshot(Reconciler *r, EarlyBindSnapshot **ret) {
        const PciDevice *const *devices;
        size_t n = 0;

        devices = model_get_devices(r->model, &n);
        return early_bind_snapshot_new(
                r->desired, devices, n, reconciler_critical(r), reconciler_store_usable(r), ret);
}

int reconciler_on_early_write(Reconciler *r, const char *address, const char *driver, const char *source) {
        _cleanup_(plan_freep) Plan *plan = NULL;
        PciDevice d = { .iommu_group = -1, .numa_node = -1, .vf_index = -1 };
        DriverSpec want = { .kind = DRIVER_KIND_NAMED, .name = (char *)driver };
        uint64_t job;
        int k;

        assert(r);

        /* Owned before anything else can act on it: a crash from here on finds the record. */
        k = ownership_adopt_override(r->ownership, address, driver);
        if (k < 0)
                return log_error_errno(
                        k,
                        "PCI function %s: failed to record the driver_override %s written on its \"add\": %m",
                        address, driver);

        snprintf(d.address, sizeof(d.address), "%s", address);
        if (!r->executor || planner_plan_new_function(&d, &want, source, &plan) < 0)
                return 0;
        k = executor_submit_first(r->executor, plan, &job);
        if (k >= 0)
                k = inflight_add(r, job, false, plan);
        if (k < 0) {
                log_debug_errno(k, "PCI function %s: no early job: %m", address);
                return 0;
        }
        log_info(
                "New PCI function %s: driver_override %s written before the kernel's first probe (early-bind "
                "thread, job %" PRIu64 ")",
                address, driver, job);
        return 0;
}

int reconciler_adopt_early_intent(Reconciler *r, const char *address, const char *driver) {
        const PciDevice *d;
        int k;

        assert(r);

        d = model_get_device(r->model, address);
        if (!d || !d->driver_override || !streq(d->driver_override, driver))
                return 0; /* the write never came, or someone changed it since: not ours */
        k = ownership_adopt_override(r->ownership, address, driver);
        if (k <= 0)
                return k;
        log_info(
                "PCI function %s: driver_override %s written by the early-bind thread before a crash, "
                "recorded as hostdevd's",
                address, driver);
        return 1;
}

static int on_fresh(sd_event_source *source, void *userdata) {
        Reconciler *r = userdata;
        _cleanup_strv_free_ char **fresh = TAKE_PTR(r->fresh);
        _cleanup_strv_free_ char **present = NULL;

        /* Gone again meanwhile: nothing to plan for them. */
        STRV_FOREACH (f, fresh)
                if (model_get_device(r->model, *f) && strv_extend(&present, *f) < 0)
                        return 0;
        if (present)
                (void)reconciler_run_fresh(r, present);
        return 0;
}

static int on_plan(sd_event_source *source, void *userdata) {
        Reconciler *r = userdata;

        if (r->n_inflight > 0) {
                r->queued = true;
                return 0;
        }
        (void)reconciler_run(r);
        return 0;
}

void reconciler_start(Reconciler *r) {
        if (!r)
                return;
        /* Before the loop serves anyone: the first plan (and the first caller) sees both sets. */
        holder_watch_scan_now(r->holder_watch);
        critical_watch_compute_now(r->critical_watch);
        reconciler_early_rules_changed(r);
        reconciler_log_holders(r);
        if (r->n_inflight == 0)
                (void)reconciler_run(r);
}

static void reconciler_schedule_plan(Reconciler *r) {
        int k;

        if (!r || !r->plan_source)
                return;
        k = sd_event_source_set_enabled(r->plan_source, SD_EVENT_ONESHOT);
        if (k < 0)
                log_warning_errno(k, "Failed to schedule a plan: %m");
}

void reconciler_schedule(Reconciler *r) {
        if (!r)
                return;
        /* Something changed: the plan needs sets at least as new as this (a scan that started before
         * it does not answer it). */
        r->inputs_stale = true;
        reconciler_schedule_plan(r);
}

int reconciler_converge(Reconciler *r, ReconcilerDoneFunc done, void *userdata) {
        Waiter *w;

        assert(r);

        if (done) {
                w = reallocarray(r->waiters, r->n_waiters + 1, sizeof(Waiter));
                if (!w)
                        return -ENOMEM;
                r->waiters = w;
                /* The next job submitted (the running one may have planned with an older state). */
                r->waiters[r->n_waiters++] = (Waiter){
                        .seq = r->n_submitted + 1,
                        .done = done,
                        .userdata = userdata,
                };
        }
        r->force = true;
        reconciler_schedule(r);
        return 0;
}

/* Re-read a function the executor touched, so the next plan sees it without waiting for its uevents
 * (queued; nothing is read twice when its uevent is queued already). */
static void reconciler_refresh_device(Reconciler *r, const char *address) {
        if (r->hooks.queue_refresh)
                r->hooks.queue_refresh(r->hooks_userdata, address);
}

void reconciler_reread_device(Reconciler *r, const char *address) {
        assert(r);
        assert(address);

        reconciler_refresh_device(r, address);
        if (r->hooks.flush_uevents)
                r->hooks.flush_uevents(r->hooks_userdata);
}

/* For a failure to load the driver's module: the reason, and when the load is tried again
 * (module-loader.h). NULL otherwise, or on OOM. */
static char *reason_with_backoff(Reconciler *r, const ExecutorEvent *ev) {
        _cleanup_free_ char *backoff = NULL;
        const DeviceStatus *s = status_table_get(r->status, ev->address);
        ModuleLoaderBackoff b;
        char *buf;

        if (ev->state != DEVICE_STATE_FAILED || !s || !s->desired_driver || !*s->desired_driver ||
            module_loader_get_backoff(r->module_loader, s->desired_driver, &b) <= 0 ||
            b.error != ev->error ||
            module_loader_backoff_reason(r->module_loader, s->desired_driver, &backoff) <= 0 ||
            asprintf(&buf, "%s; %s", strempty(ev->reason), backoff) < 0)
                return NULL;
        return buf;
}

static void on_executor_event(Executor *e, const ExecutorEvent *ev, void *userdata) {
        Reconciler *r = userdata;

        switch (ev->type) {
        case EXECUTOR_EVENT_DEVICE: {
                _cleanup_free_ char *reason = reason_with_backoff(r, ev);

                if (ev->state != DEVICE_STATE_CONVERGED)
                        log_warning(
                                "PCI function %s %s: %s", ev->address, device_state_to_string(ev->state),
                                strna(reason ?: ev->reason));
                (void)status_set_outcome(r, ev->address, ev->state, ev->error, reason ?: ev->reason);
                reconciler_refresh_device(r, ev->address);
                if (ev->error == -ESTALE && status_table_get(r->status, ev->address) &&
                    !status_table_is_held(r->status, ev->address))
                        reconciler_schedule(r);
                break;
        }
        case EXECUTOR_EVENT_RELEASED: {
                log_notice(
                        "PCI function %s: the stuck sysfs access returned (%d); re-planning", ev->address,
                        ev->error);
                status_table_release(r->status, ev->address);
                reconciler_refresh_device(r, ev->address);
                reconciler_schedule(r);
                break;
        }
        case EXECUTOR_EVENT_MDEV: {
                char buf[PCI_ADDRESS_STRING_MAX + 8];
                const char *key = plan_mdev_key(ev->uuid, ev->address, buf, sizeof(buf));

                if (ev->state == DEVICE_STATE_CONVERGED) {
                        /* Its uevents may have been read before its mdev_type link existed. */
                        if (ev->uuid && *ev->uuid && r->hooks.queue_mdev_refresh)
                                r->hooks.queue_mdev_refresh(r->hooks_userdata, ev->uuid);
                        break; /* the uevents that follow re-plan and publish */
                }
                log_warning(
                        "%s %s %s: %s", ev->uuid && *ev->uuid ? "mdev" : "vGPU of VF",
                        ev->uuid && *ev->uuid ? ev->uuid : strna(ev->address),
                        device_state_to_string(ev->state), strna(ev->reason));
                mdev_failed_set(r, key, ev->state, ev->reason);
                for (size_t i = 0; i < r->n_mdev_status; i++) {
                        PlanMdev *m = &r->mdev_status[i];
                        char *reason;

                        if (!streq(plan_mdev_key(m->uuid, m->parent, buf, sizeof(buf)), key) ||
                            !(reason = strdup(strempty(ev->reason))))
                                continue;
                        free(m->reason);
                        m->reason = reason;
                        m->state = ev->state;
                        if (m->uuid[0] && r->hooks.mdev_status_changed && model_get_mdev(r->model, m->uuid))
                                r->hooks.mdev_status_changed(r->hooks_userdata, m->uuid);
                }
                r->manager_dirty = true;
                reconciler_schedule_publish(r);
                break;
        }
        case EXECUTOR_EVENT_JOB_DONE:
                if (inflight_remove(r, ev->job))
                        r->n_full_done++;
                r->manager_dirty = true;
                reconciler_schedule_publish(r);
                if (ev->n_failed + ev->n_stuck > 0 || ev->n_converged > 0)
                        log_info(
                                "Job %" PRIu64 " done: %u converged, %u failed, %u stuck", ev->job,
                                ev->n_converged, ev->n_failed, ev->n_stuck);
                if (r->queued && r->n_inflight == 0) {
                        r->queued = false;
                        /* Plan before answering, so the waiters see the state after this job. */
                        (void)reconciler_run(r);
                }
                waiters_complete(r, r->n_full_done, 0);
                break;
        default:
                break;
        }
}

void reconciler_on_model_changes(Reconciler *r, const ModelChange *changes, size_t n) {
        _cleanup_strv_free_ char **fresh = NULL;
        const Model *model;
        bool active, mdevs, schedule = false;

        if (!r || n == 0)
                return;
        active = r->desired && r->desired->n_rules > 0;
        model = r->model;
        /* Issue 14: a parent that appears or registers (a vendor driver or mtty loaded late), an mdev
         * that comes or goes, a VF that gets its vendor driver (its nvidia/ appears): plan at once. */
        mdevs = r->has_mdev_rules || r->owned_mdevs || r->owned_vgpus || r->n_mdev_status > 0;

        /* A function that came or went may change the host-critical set (its boot_vga, the disks and
         * NICs under it): computed again off the loop; the next full plan waits for it. */
        for (size_t i = 0; i < n; i++)
                if (changes[i].object == MODEL_OBJECT_DEVICE &&
                    (changes[i].kind == MODEL_CHANGE_ADDED || changes[i].kind == MODEL_CHANGE_REMOVED)) {
                        critical_watch_invalidate(r->critical_watch);
                        break;
                }

        for (size_t i = 0; i < n; i++) {
                const ModelChange *c = &changes[i];
                const PciDevice *dev;
                bool s;

                if (c->object == MODEL_OBJECT_PARENT || c->object == MODEL_OBJECT_MDEV) {
                        schedule = schedule || mdevs;
                        continue;
                }
                if (c->object != MODEL_OBJECT_DEVICE)
                        continue;
                if (mdevs && c->kind == MODEL_CHANGE_CHANGED && (c->fields & PCI_DEVICE_FIELD_DRIVER))
                        schedule = true;
                s = status_table_get(r->status, c->key) != NULL;
                if (c->kind == MODEL_CHANGE_ADDED) {
                        status_table_release(r->status, c->key); /* a new function: try again */
                        if (active && strv_extend(&fresh, c->key) < 0)
                                log_warning("Out of memory: %s waits for the next full plan", c->key);
                        schedule = schedule || active || s;
                        continue;
                }
                if (c->kind == MODEL_CHANGE_REMOVED) {
                        schedule = schedule || s;
                        continue;
                }
                if (!(c->fields &
                      (PCI_DEVICE_FIELD_DRIVER | PCI_DEVICE_FIELD_DRIVER_OVERRIDE | PCI_DEVICE_FIELD_SRIOV |
                       PCI_DEVICE_FIELD_IOMMU_GROUP)))
                        continue;
                if (s) {
                        schedule = true;
                        continue;
                }
                dev = model_get_device(model, c->key);
                if (dev && status_table_has_group(r->status, dev->iommu_group))
                        schedule = true;
        }

        /* One fresh plan for every function of a uevent burst (a PF's VFs): after the queue drained.
         * The full plan follows either way: it refreshes the critical set and the holders. */
        STRV_FOREACH (f, fresh)
                if (!strv_contains(r->fresh, *f) && strv_extend(&r->fresh, *f) < 0)
                        log_warning("Out of memory: %s waits for the next full plan", *f);
        if (r->fresh && r->fresh_source)
                (void)sd_event_source_set_enabled(r->fresh_source, SD_EVENT_ONESHOT);
        if (schedule)
                reconciler_schedule(r);
}

/* ---- desired state -------------------------------------------------------------------------------- */

int reconciler_reload(Reconciler *r) {
        _cleanup_(desired_state_freep) DesiredState *s = NULL;
        uint64_t started = now_monotonic_usec(), loaded;
        int k;

        assert(r);

        /* An operator who just installed a missing module expects the next try now. */
        module_loader_reset(r->module_loader);

        k = desired_state_load((const char *const *)r->dirs, &s);
        if (k < 0)
                return log_error_errno(k, "Failed to read the desired state: %m");
        loaded = now_monotonic_usec();

        /* [Mdev]/[VGPU] rules that parse but cannot be placed (an unknown type, a UUID= that a foreign
         * instance carries, Count= beyond what the parents hold) reject the reload like a parse error:
         * the last good state stays (hostdevd.conf(5)). At start, they add nothing and the rest applies. */
        if (!s->errors && r->desired && desired_has_mdev_rules(s)) {
                _cleanup_(desired_resolution_freep) DesiredResolution *trial = NULL;
                _cleanup_(mdev_inputs_done) MdevInputs m = {};
                const PciDevice *const *devices;
                size_t n_devices = 0;

                if (r->hooks.flush_uevents)
                        r->hooks.flush_uevents(r->hooks_userdata);
                devices = model_get_devices(r->model, &n_devices);
                r->has_mdev_rules = true; /* read the VFs for the trial */
                k = reconciler_read_owned_mdevs(r);
                if (k >= 0)
                        k = desired_state_resolve(s, r->model, &trial);
                if (k >= 0)
                        k = mdev_inputs_read(r, devices, n_devices, &m);
                if (k >= 0)
                        k = reconciler_resolve_mdevs(r, s, devices, n_devices, &m, trial);
                r->has_mdev_rules = desired_has_mdev_rules(r->desired);
                if (k < 0)
                        return log_error_errno(k, "Failed to resolve the desired mdevs: %m");
                if (trial->errors) {
                        s->errors = TAKE_PTR(trial->errors);
                        s->n_rejected = 1;
                }
        }

        strv_free(r->config_errors);
        r->config_errors = TAKE_PTR(s->errors);
        config_errors_rebuild(r);
        r->manager_dirty = true;
        reconciler_schedule_publish(r);

        if (r->config_errors) {
                STRV_FOREACH (e, r->config_errors)
                        log_error("%s", *e);
                if (r->desired) {
                        log_error(
                                "Rejected %zu desired-state file(s): keeping the last good desired state",
                                s->n_rejected);
                        return -EBADMSG;
                }
                /* At start there is nothing to keep: the good files apply. */
                log_error("Rejected %zu desired-state file(s) at start: the others apply", s->n_rejected);
        }

        desired_state_free(r->desired);
        r->desired = TAKE_PTR(s);
        r->has_mdev_rules = desired_has_mdev_rules(r->desired);
        r->generation++;
        status_table_release_all(r->status);
        mdev_failed_clear(r);
        log_info("Desired state generation %" PRIu64 ": %zu rule(s)", r->generation, r->desired->n_rules);
        log_debug(
                "Reload on the loop: files %" PRIu64 " us, the rest (mdev trial) %" PRIu64 " us",
                loaded - started, now_monotonic_usec() - loaded);
        reconciler_early_rules_changed(r);
        reconciler_schedule(r);
        return r->config_errors ? -EBADMSG : 1;
}

int reconciler_write_request(
        Reconciler *r, RequestKind kind, const char *address, const char *content, bool persist) {
        int k;

        k = request_write(r->request_dir_run, r->request_dir_persist, kind, address, content, persist);
        if (k < 0)
                return log_error_errno(k, "Failed to write the request for %s: %m", address);
        k = reconciler_reload(r);
        return k < 0 ? k : 0;
}

int reconciler_remove_requests(Reconciler *r, RequestKind kind, const char *address) {
        int k;

        k = request_remove(r->request_dir_run, r->request_dir_persist, kind, address);
        if (k == -ENOENT)
                return k;
        if (k < 0)
                return log_error_errno(k, "Failed to remove the request for %s: %m", address);
        k = reconciler_reload(r);
        return k < 0 ? k : 0;
}

int reconciler_backup_requests(Reconciler *r, RequestKind kind, const char *address, RequestBackup **ret) {
        return request_backup(r->request_dir_run, r->request_dir_persist, kind, address, ret);
}

int reconciler_restore_requests(Reconciler *r, RequestBackup *b) {
        int k, ret;

        ret = request_restore(b);
        if (ret < 0)
                log_error_errno(ret, "Failed to restore the request files: %m");
        k = reconciler_reload(r);
        return ret < 0 ? ret : k < 0 ? k : 0;
}

/* ---- lifecycle ----------------------------------------------------------------------------------- */

/* $HOSTDEVD_WRITE_TIMEOUT_MS, else the executor's default (0). A bad value is logged and ignored. */
static uint64_t reconciler_write_timeout(void) {
        const char *e = getenv(ENV_HOSTDEVD_WRITE_TIMEOUT_MS);
        int64_t ms;

        if (!e)
                return 0;
        if (sysfs_parse_int(e, 100, 3600 * 1000, &ms) < 0) {
                log_warning(
                        "$%s=%s is not a number of milliseconds from 100 to 3600000, ignoring",
                        ENV_HOSTDEVD_WRITE_TIMEOUT_MS, ESCAPE_QUOTE(e));
                return 0;
        }
        return (uint64_t)ms * 1000;
}

int reconciler_new(
        sd_event *event, Model *model, const ReconcilerHooks *hooks, void *userdata,
        const ReconcilerOptions *options, Reconciler **ret) {
        _cleanup_(reconciler_freep) Reconciler *r = NULL;
        ExecutorOptions eo = {};
        int k;

        assert(event && model && ret);

        r = calloc(1, sizeof(Reconciler));
        if (!r)
                return -ENOMEM;
        r->status = status_table_new();
        if (!r->status)
                return -ENOMEM;
        r->event = sd_event_ref(event);
        r->model = model;
        if (hooks)
                r->hooks = *hooks;
        r->hooks_userdata = userdata;

        r->state_dir = strdup(options && options->state_dir ? options->state_dir : HOSTDEVD_STATE_DIR);
        if (!r->state_dir)
                return -ENOMEM;
        if (asprintf(&r->request_dir_persist, "%s/" HOSTDEVD_REQUESTS_SUBDIR, r->state_dir) < 0 ||
            asprintf(
                    &r->request_dir_run, "%s/" HOSTDEVD_REQUESTS_SUBDIR,
                    options && options->runtime_dir ? options->runtime_dir : HOSTDEVD_RUNTIME_DIR) < 0)
                return -ENOMEM;
        if (options && options->proc_root && !(r->proc_root = strdup(options->proc_root)))
                return -ENOMEM;
        if (options && options->critical_root && !(r->critical_root = strdup(options->critical_root)))
                return -ENOMEM;
        k = request_load_dirs(
                options ? options->config_dirs : NULL, r->state_dir,
                options && options->runtime_dir ? options->runtime_dir : HOSTDEVD_RUNTIME_DIR, &r->dirs);
        if (k < 0)
                return k;

        k = holder_watch_new(
                r->event, r->proc_root, holder_tracking_from_string(getenv(ENV_HOSTDEVD_HOLDER_TRACKING)),
                on_holders_changed, r, &r->holder_watch);
        if (k < 0)
                return log_error_errno(k, "Failed to set up the VFIO holder watch: %m");
        k = critical_watch_new(
                r->event, r->critical_root,
                critical_tracking_from_string(getenv(ENV_HOSTDEVD_CRITICAL_TRACKING)), on_critical_changed,
                r, &r->critical_watch);
        if (k < 0)
                return log_error_errno(k, "Failed to set up the host-critical watch: %m");

        k = ownership_new(r->state_dir, &r->ownership);
        if (k < 0)
                return k;
        if (ownership_usable(r->ownership))
                ownership_log_interrupted(r->ownership);

        {
                _cleanup_free_ char *error = NULL;

                /* A damaged file: start with none, saved nowhere, so no UUID is handed out twice. */
                k = mdev_uuids_load(r->state_dir, &r->mdev_uuids, &error);
                if (k == -ENOMEM)
                        return k;
                if (k < 0) {
                        log_error(
                                "Cannot load the stable mdev UUIDs (%s): Count= rules get new ones, not saved",
                                strna(error));
                        k = mdev_uuids_new(NULL, &r->mdev_uuids);
                        if (k < 0)
                                return k;
                }
                k = reconciler_read_owned_mdevs(r);
                if (k < 0)
                        return k;
        }
        {
                _cleanup_free_ char *error = NULL;

                /* Names learnt before a restart: the VFs may all carry their type and list none now. A
                 * damaged file is left as it is (not overwritten): names are learnt again from the VFs. */
                k = vgpu_type_names_load(r->state_dir, &r->vgpu_type_names, &error);
                if (k == -ENOMEM)
                        return k;
                r->vgpu_type_names_save = k >= 0;
                if (k < 0)
                        log_error(
                                "Cannot load the learnt vGPU type names (%s), ignoring: a [VGPU] Type= by name "
                                "resolves only once a VF lists the type again",
                                error ?: strerror(-k));
        }

        eo.write_timeout_usec = reconciler_write_timeout();
        eo.journal = ownership_journal;
        eo.journal_userdata = r->ownership;
        if (options && options->load_modules) {
                k = module_loader_new(NULL, &r->module_loader);
                if (k < 0)
                        return log_error_errno(k, "Failed to set up the module loader: %m");
                eo.load_driver = module_loader_load;
                eo.load_driver_userdata = r->module_loader;
        }
        k = executor_new(r->event, &eo, on_executor_event, r, &r->executor);
        if (k < 0)
                return log_error_errno(k, "Failed to set up the executor: %m");

        k = sd_event_add_defer(r->event, &r->plan_source, on_plan, r);
        if (k >= 0)
                k = sd_event_source_set_enabled(r->plan_source, SD_EVENT_OFF);
        if (k >= 0)
                k = sd_event_source_set_priority(r->plan_source, EVENT_PRIORITY_PLAN);
        if (k < 0)
                return k;
        (void)sd_event_source_set_description(r->plan_source, "reconciler-plan");

        k = sd_event_add_defer(r->event, &r->fresh_source, on_fresh, r);
        if (k >= 0)
                k = sd_event_source_set_enabled(r->fresh_source, SD_EVENT_OFF);
        if (k >= 0)
                k = sd_event_source_set_priority(r->fresh_source, EVENT_PRIORITY_PLAN_FRESH);
        if (k < 0)
                return k;
        (void)sd_event_source_set_description(r->fresh_source, "reconciler-fresh");

        k = sd_event_add_defer(r->event, &r->publish_source, on_publish, r);
        if (k >= 0)
                k = sd_event_source_set_enabled(r->publish_source, SD_EVENT_OFF);
        if (k >= 0)
                k = sd_event_source_set_priority(r->publish_source, EVENT_PRIORITY_STATUS_PUBLISH);
        if (k < 0)
                return k;
        (void)sd_event_source_set_description(r->publish_source, "reconciler-publish");

        k = reconciler_reload(r);
        if (k < 0 && k != -EBADMSG)
                return k;
        /* What clients see first: not a change. */
        r->published_generation = r->generation;
        r->published_guard = early_bind_guard(r->desired);
        r->published_state = strdup(reconciler_manager_state(r));
        STRV_FOREACH (e, r->all_config_errors)
                if (strv_extend(&r->published_config_errors, *e) < 0)
                        return -ENOMEM;
        r->manager_dirty = false;
        (void)sd_event_source_set_enabled(r->publish_source, SD_EVENT_OFF);

        *ret = TAKE_PTR(r);
        return 0;
}

Reconciler *reconciler_free(Reconciler *r) {
        if (!r)
                return NULL;

        /* Waits for the running transaction at most; undoes nothing (safety rule 6 in hostdevd(8)). */
        r->executor = executor_free(r->executor);
        r->module_loader = module_loader_free(r->module_loader); /* after: its runner thread is gone */
        r->plan_source = sd_event_source_disable_unref(r->plan_source);
        r->fresh_source = sd_event_source_disable_unref(r->fresh_source);
        r->fresh = strv_free(r->fresh);
        r->publish_source = sd_event_source_disable_unref(r->publish_source);

        for (size_t i = 0; i < r->n_waiters; i++)
                r->waiters[i].done(r, -ECANCELED, r->waiters[i].userdata);
        free(r->waiters);

        r->status = status_table_free(r->status);
        free(r->published_state);
        strv_free(r->published_config_errors);
        r->holder_watch = holder_watch_free(r->holder_watch);
        r->critical_watch = critical_watch_free(r->critical_watch);
        strv_free(r->logged_holders);
        for (size_t i = 0; i < r->n_inflight; i++)
                strv_free(r->inflight[i].addresses);
        free(r->inflight);

        /* After the executor: no lane journals any more. */
        r->ownership = ownership_free(r->ownership);

        desired_state_free(r->desired);
        strv_free(r->config_errors);
        strv_free(r->mdev_errors);
        strv_free(r->all_config_errors);
        mdev_status_free(r->mdev_status, r->n_mdev_status);
        mdev_uuids_free(r->mdev_uuids);
        vgpu_type_names_free(r->vgpu_type_names);
        strv_free(r->owned_mdevs);
        strv_free(r->owned_vgpus);
        mdev_failed_clear(r);
        strv_free(r->logged_conflicts);
        strv_free(r->dirs);
        free(r->state_dir);
        free(r->request_dir_run);
        free(r->request_dir_persist);
        free(r->proc_root);
        free(r->critical_root);
        sd_event_unref(r->event);
        free(r);
        return NULL;
}
