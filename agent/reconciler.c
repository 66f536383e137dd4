/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "critical.h"
#include "daemon.h"
#include "executor.h"
#include "file-util.h"
#include "holders.h"
#include "log.h"
#include "macro.h"
#include "module-loader.h"
#include "names.h"
#include "object-path.h"
#include "pci-address.h"
#include "reconciler.h"
#include "state-store.h"
#include "strv.h"
#include "sysfs.h"

/* Plans run after the uevent queue was drained (the monitor's io source is NORMAL), before the bus
 * emitter flushes (NORMAL + 10), so one flush carries the model's and the reconciler's changes. */
#define RECONCILER_FRESH_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 4)
#define RECONCILER_PLAN_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 5)
#define RECONCILER_PUBLISH_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 11)

typedef struct DeviceStatus {
        char address[PCI_ADDRESS_STRING_MAX];
        DeviceState state;
        char *desired_driver; /* "" when none */
        char *source;
        char *reason;
        char *last_error;
        bool hold; /* failed or stuck at this generation: not retried automatically */
        bool dirty; /* published values changed since the last flush */
        unsigned stale; /* transactions in a row that found the host changed under them (-ESTALE) */
} DeviceStatus;

/* A function that someone else keeps rebinding (a udev rule, a script) is not fought forever. */
#define RECONCILER_STALE_RETRIES 3u

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
        char **addresses; /* every function its actions touch */
} InflightJob;

struct Reconciler {
        Daemon *daemon;
        char **dirs;
        char *state_dir;
        char *request_dir_run; /* RUNTIME_DIR/devices.d */
        char *request_dir_persist; /* STATE_DIR/devices.d */
        char *proc_root;
        char *critical_root;

        DesiredState *desired;
        char **config_errors;
        uint64_t generation;

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

        DeviceStatus *status; /* sorted by address */
        size_t n_status;
        int32_t *groups; /* IOMMU groups of status entries, sorted */
        size_t n_groups;
        char **unpublished; /* addresses dropped from the table, to announce */
        bool manager_dirty;
        char *published_state;
        uint64_t published_generation;
        char **published_config_errors;

        CriticalSet *critical; /* of the last full plan; NULL when unknown */

        Holder *holders;
        size_t n_holders;
        uint64_t holders_iteration;
        bool holders_valid;

        /* Shared with the executor's lanes (journal hook). */
        pthread_mutex_t lock;
        StateStore *store; /* NULL when it could not be loaded: then nothing is mutated */
        char *store_error;
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

/* ---- pure helpers ------------------------------------------------------------------------------ */

static const char *const request_flag_names[] = {
        [0] = "persist",
        [1] = "whole-group",
        [2] = "allow-critical",
};

int request_flags_parse(char *const *flags, unsigned allowed, unsigned *ret, const char **ret_bad) {
        unsigned bits = 0;

        assert(ret);

        for (char *const *f = flags; f && *f; f++) {
                unsigned bit = 0;

                for (size_t i = 0; i < ELEMENTSOF(request_flag_names); i++)
                        if (streq(*f, request_flag_names[i]))
                                bit = 1u << i;
                if (bit == 0 || !(allowed & bit) || (bits & bit)) {
                        if (ret_bad)
                                *ret_bad = *f;
                        return -EINVAL;
                }
                bits |= bit;
        }

        *ret = bits;
        return 0;
}

static bool address_is_canonical(const char *address) {
        char buf[PCI_ADDRESS_STRING_MAX];
        PciAddress a;

        if (!address || pci_address_from_string(address, &a) < 0)
                return false;
        pci_address_format(&a, buf);
        return streq(buf, address);
}

int reconciler_request_file_name(RequestKind kind, const char *address, char **ret) {
        char element[PCI_ADDRESS_STRING_MAX];
        char *s;

        assert(ret);

        if (!address_is_canonical(address) || kind < 0 || kind >= _REQUEST_KIND_MAX)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(element); i++) {
                element[i] = address[i] == ':' || address[i] == '.' ? '_' : address[i];
                if (address[i] == '\0')
                        break;
        }

        if (asprintf(
                    &s, "90-runtime-%s%s" HOSTDEVD_CONF_SUFFIX, kind == REQUEST_SRIOV ? "sriov-" : "",
                    element) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static bool driver_value_is_valid(const char *driver) {
        DriverSpec spec = {};
        bool ok;

        ok = driver && driver_spec_parse(driver, &spec) >= 0 && spec.kind != DRIVER_KIND_UNSET;
        driver_spec_done(&spec);
        return ok;
}

int reconciler_format_device_request(const char *address, const char *driver, unsigned flags, char **ret) {
        char *s;

        assert(ret);

        if (!address_is_canonical(address) || !driver_value_is_valid(driver))
                return -EINVAL;

        if (asprintf(
                    &s,
                    "# Written by hostdevd for SetDeviceDriver(); ResetDeviceDriver() removes it.\n"
                    "[" CONF_SECTION_MATCH "]\n"
                    "Address=%s\n"
                    "\n"
                    "[" CONF_SECTION_DEVICE "]\n"
                    "Driver=%s\n"
                    "%s%s",
                    address, driver, flags & REQUEST_FLAG_WHOLE_GROUP ? "Group=whole\n" : "",
                    flags & REQUEST_FLAG_ALLOW_CRITICAL ? "AllowCritical=yes\n" : "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int reconciler_format_sriov_request(
        const char *address, uint32_t num_vfs, const char *vf_driver, char **ret) {
        bool has_driver = vf_driver && *vf_driver;
        char *s;

        assert(ret);

        if (!address_is_canonical(address) || (has_driver && !driver_value_is_valid(vf_driver)))
                return -EINVAL;

        if (asprintf(
                    &s,
                    "# Written by hostdevd for SetNumVFs().\n"
                    "[" CONF_SECTION_MATCH "]\n"
                    "Address=%s\n"
                    "\n"
                    "[" CONF_SECTION_SRIOV "]\n"
                    "NumVFs=%" PRIu32 "\n"
                    "%s%s%s",
                    address, num_vfs, has_driver ? "VFDriver=" : "", has_driver ? vf_driver : "",
                    has_driver ? "\n" : "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int write_file_atomic(const char *dir, const char *name, const char *content) {
        assert(dir && name && content);

        return file_write_atomic(dir, name, content, strlen(content), 0644, 0755);
}

DeviceState device_state_worst(const DeviceState *states, size_t n) {
        /* Rank by the precedence of dbus/org.hostdevd1.xml Manager.State. */
        static const int rank[_DEVICE_STATE_MAX] = {
                [DEVICE_STATE_CONVERGED] = 0, [DEVICE_STATE_PENDING] = 1, [DEVICE_STATE_BLOCKED] = 2,
                [DEVICE_STATE_REFUSED] = 3,   [DEVICE_STATE_FAILED] = 4,  [DEVICE_STATE_STUCK] = 5,
        };
        DeviceState worst = DEVICE_STATE_CONVERGED;

        for (size_t i = 0; i < n; i++)
                if (states[i] >= 0 && states[i] < _DEVICE_STATE_MAX && rank[states[i]] > rank[worst])
                        worst = states[i];
        return worst;
}

static int str_ptr_compare(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* |l| as a sorted array of borrowed pointers, for in_sorted(). NULL with *ret_n = 0 when empty. */
static int sorted_view(char *const *l, const char ***ret, size_t *ret_n) {
        size_t n = strv_length((char **)l);
        const char **v;

        *ret = NULL;
        *ret_n = 0;
        if (n == 0)
                return 0;
        v = reallocarray(NULL, n, sizeof(char *));
        if (!v)
                return -ENOMEM;
        memcpy(v, l, n * sizeof(char *));
        qsort(v, n, sizeof(char *), str_ptr_compare);
        *ret = v;
        *ret_n = n;
        return 0;
}

static bool in_sorted(const char **v, size_t n, const char *s) {
        return n > 0 && bsearch(&s, v, n, sizeof(char *), str_ptr_compare);
}

int plan_without(const Plan *plan, char *const *exclude, Plan **ret) {
        return plan_filter(plan, exclude, NULL, ret);
}

int plan_filter(const Plan *plan, char *const *exclude, char *const *only, Plan **ret) {
        _cleanup_(plan_freep) Plan *p = NULL;
        _cleanup_free_ bool *drop = NULL, *touches = NULL;
        _cleanup_free_ unsigned *renumber = NULL;
        _cleanup_free_ const char **ex = NULL, **on = NULL;
        size_t n_ex, n_on;
        unsigned next = 0;

        assert(plan && ret);

        p = calloc(1, sizeof(Plan));
        if (!p)
                return -ENOMEM;

        /* Sorted views: a plan for thousands of functions against thousands of exclusions. */
        if (sorted_view(exclude, &ex, &n_ex) < 0 || sorted_view(only, &on, &n_on) < 0)
                return -ENOMEM;
        drop = calloc(plan->n_transactions + 1, sizeof(bool));
        touches = calloc(plan->n_transactions + 1, sizeof(bool));
        renumber = calloc(plan->n_transactions + 1, sizeof(unsigned));
        if (!drop || !touches || !renumber)
                return -ENOMEM;
        for (size_t i = 0; i < plan->n_actions; i++) {
                unsigned t = plan->actions[i].transaction;

                if (t > plan->n_transactions)
                        continue;
                if (in_sorted(ex, n_ex, plan->actions[i].address))
                        drop[t] = true;
                if (in_sorted(on, n_on, plan->actions[i].address))
                        touches[t] = true;
        }
        for (unsigned t = 1; t <= plan->n_transactions; t++) {
                if (only && !touches[t])
                        drop[t] = true;
                if (!drop[t])
                        renumber[t] = ++next;
        }

        if (plan->n_actions > 0) {
                p->actions = calloc(plan->n_actions, sizeof(PlanAction));
                if (!p->actions)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < plan->n_actions; i++) {
                const PlanAction *a = &plan->actions[i];
                PlanAction *b;

                if (a->transaction > plan->n_transactions || drop[a->transaction])
                        continue;
                b = &p->actions[p->n_actions++];
                *b = *a;
                b->transaction = renumber[a->transaction];
                b->driver = NULL;
                b->reason = NULL;
                if (strdup_null(a->driver, &b->driver) < 0 || strdup_null(a->reason, &b->reason) < 0)
                        return -ENOMEM;
        }
        p->n_transactions = next;

        if (plan->n_devices > 0) {
                p->devices = calloc(plan->n_devices, sizeof(PlanDevice));
                if (!p->devices)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < plan->n_devices; i++) {
                const PlanDevice *a = &plan->devices[i];
                PlanDevice *b = &p->devices[p->n_devices++];

                memcpy(b->address, a->address, sizeof(b->address));
                b->state = a->state;
                if (strdup_null(a->desired_driver, &b->desired_driver) < 0 ||
                    strdup_null(a->source, &b->source) < 0 || strdup_null(a->reason, &b->reason) < 0)
                        return -ENOMEM;
        }
        STRV_FOREACH (c, plan->conflicts)
                if (strv_extend(&p->conflicts, *c) < 0)
                        return -ENOMEM;

        *ret = TAKE_PTR(p);
        return 0;
}

int reconciler_dirs(char *const *config_dirs, const char *state_dir, const char *runtime_dir, char ***ret) {
        static const char *const defaults[] = {
                HOSTDEVD_CONF_DIR_USR,
                HOSTDEVD_CONF_DIR_ETC,
                HOSTDEVD_CONF_DIR_RUN,
                NULL,
        };
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *persist = NULL, *run = NULL;

        assert(ret);

        if (asprintf(&persist, "%s/" HOSTDEVD_REQUESTS_SUBDIR, state_dir ?: HOSTDEVD_STATE_DIR) < 0 ||
            asprintf(&run, "%s/" HOSTDEVD_REQUESTS_SUBDIR, runtime_dir ?: HOSTDEVD_RUNTIME_DIR) < 0)
                return -ENOMEM;

        for (const char *const *d = config_dirs ? (const char *const *)config_dirs : defaults; *d; d++)
                if (!streq(*d, persist) && !streq(*d, run) && !strv_contains(l, *d) &&
                    strv_extend(&l, *d) < 0)
                        return -ENOMEM;
        if (strv_extend(&l, persist) < 0 || strv_extend(&l, run) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(l);
        return 0;
}

/* ---- status table --------------------------------------------------------------------------------- */

static void device_status_done(DeviceStatus *s) {
        free(s->desired_driver);
        free(s->source);
        free(s->reason);
        free(s->last_error);
}

static int device_status_compare(const void *a, const void *b) {
        const DeviceStatus *x = a, *y = b;

        return strcmp(x->address, y->address);
}

static DeviceStatus *status_find(Reconciler *r, const char *address) {
        DeviceStatus key = {};

        if (!address || r->n_status == 0 || strlen(address) >= sizeof(key.address))
                return NULL;
        strcpy(key.address, address);
        return bsearch(&key, r->status, r->n_status, sizeof(DeviceStatus), device_status_compare);
}

static int int32_compare(const void *a, const void *b) {
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

        return x < y ? -1 : x > y;
}

static bool streq_null(const char *a, const char *b) {
        return streq(strempty(a), strempty(b));
}

static void reconciler_schedule_publish(Reconciler *r) {
        if (r->publish_source)
                (void)sd_event_source_set_enabled(r->publish_source, SD_EVENT_ONESHOT);
}

/* Replace the table with the plan's view, keeping what the executor found (failed, stuck, LastError). */
static int status_update_from_plan(Reconciler *r, const Plan *plan) {
        const Model *model = r->daemon->model;
        DeviceStatus *table = NULL;
        int32_t *groups = NULL;
        size_t n_groups = 0, n_table = plan->n_devices, n_kept = 0;

        /* Functions the plan no longer concerns keep their LastError (a refused or failed request is
         * undone, and its caller still wants to read why). */
        for (size_t i = 0; i < r->n_status; i++)
                if (r->status[i].last_error && *r->status[i].last_error &&
                    !plan_get_device(plan, r->status[i].address))
                        n_kept++;

        if (n_table + n_kept > 0) {
                table = calloc(n_table + n_kept, sizeof(DeviceStatus));
                groups = calloc(plan->n_devices, sizeof(int32_t));
                if (!table || !groups) {
                        free(table);
                        free(groups);
                        return -ENOMEM;
                }
        }

        for (size_t i = 0; i < plan->n_devices; i++) {
                const PlanDevice *pd = &plan->devices[i];
                DeviceStatus *s = &table[i], *old = status_find(r, pd->address);
                const PciDevice *dev = model_get_device(model, pd->address);

                memcpy(s->address, pd->address, sizeof(s->address));
                s->state = pd->state;
                s->desired_driver = strdup(strempty(pd->desired_driver));
                s->source = strdup(strempty(pd->source));
                s->reason = strdup(strempty(pd->reason));
                if (!s->desired_driver || !s->source || !s->reason)
                        goto oom;

                if (r->executor && executor_is_stuck(r->executor, pd->address) &&
                    pd->state != DEVICE_STATE_CONVERGED) {
                        s->state = DEVICE_STATE_STUCK;
                        s->hold = true;
                } else if (old && old->hold && pd->state == DEVICE_STATE_PENDING) {
                        /* Not retried automatically: keep showing why. */
                        s->state = old->state;
                        s->hold = true;
                }
                if (old) {
                        if ((s->hold && old->hold) || s->state == DEVICE_STATE_STUCK) {
                                free(s->reason);
                                s->reason = strdup(strempty(old->reason));
                                if (!s->reason)
                                        goto oom;
                        }
                        s->last_error = TAKE_PTR(old->last_error);
                        s->stale = old->stale;
                        s->dirty = old->dirty || old->state != s->state ||
                                !streq_null(old->desired_driver, s->desired_driver) ||
                                !streq_null(old->source, s->source) || !streq_null(old->reason, s->reason);
                } else
                        s->dirty = true;
                if (s->state == DEVICE_STATE_CONVERGED) {
                        s->hold = false;
                        if (!streq(s->reason, "")) {
                                free(s->reason);
                                s->reason = strdup("");
                                if (!s->reason)
                                        goto oom;
                        }
                }

                if (dev && dev->iommu_group >= 0)
                        groups[n_groups++] = dev->iommu_group;
        }

        /* Functions no longer concerned go back to the defaults (but LastError): announce them. */
        for (size_t i = 0; i < r->n_status; i++) {
                DeviceStatus *old = &r->status[i];

                if (plan_get_device(plan, old->address))
                        continue;
                if (old->last_error && *old->last_error) {
                        DeviceStatus *s = &table[n_table++];

                        memcpy(s->address, old->address, sizeof(s->address));
                        s->state = DEVICE_STATE_CONVERGED;
                        s->desired_driver = strdup("");
                        s->source = strdup("");
                        s->reason = strdup("");
                        s->last_error = TAKE_PTR(old->last_error);
                        s->dirty = true;
                        if (!s->desired_driver || !s->source || !s->reason)
                                goto oom;
                } else if (strv_extend(&r->unpublished, old->address) < 0)
                        goto oom;
        }

        for (size_t i = 0; i < r->n_status; i++)
                device_status_done(&r->status[i]);
        free(r->status);
        r->status = table;
        r->n_status = n_table;
        /* The planner sorts its devices by address; keep the table sorted whatever it does. */
        if (r->n_status > 1)
                qsort(r->status, r->n_status, sizeof(DeviceStatus), device_status_compare);

        if (n_groups > 1)
                qsort(groups, n_groups, sizeof(int32_t), int32_compare);
        free(r->groups);
        r->groups = groups;
        r->n_groups = n_groups;

        r->manager_dirty = true;
        reconciler_schedule_publish(r);
        return 0;

oom:
        for (size_t i = 0; i < n_table + n_kept && table; i++)
                device_status_done(&table[i]);
        free(table);
        free(groups);
        return -ENOMEM;
}

/* An executor outcome for one function. */
static int status_set_outcome(
        Reconciler *r, const char *address, DeviceState state, int error, const char *reason) {
        DeviceStatus *s = status_find(r, address);

        if (!s) {
                DeviceStatus *t = reallocarray(r->status, r->n_status + 1, sizeof(DeviceStatus));

                if (!t)
                        return -ENOMEM;
                r->status = t;
                s = &r->status[r->n_status];
                *s = (DeviceStatus){};
                (void)snprintf(s->address, sizeof(s->address), "%s", address);
                s->desired_driver = strdup("");
                s->source = strdup("");
                r->n_status++;
                if (!s->desired_driver || !s->source) {
                        device_status_done(s);
                        r->n_status--;
                        return -ENOMEM;
                }
                qsort(r->status, r->n_status, sizeof(DeviceStatus), device_status_compare);
                s = status_find(r, address);
        }

        s->state = state;
        free(s->reason);
        s->reason = strdup(state == DEVICE_STATE_CONVERGED ? "" : strempty(reason));
        if (state != DEVICE_STATE_CONVERGED) {
                free(s->last_error);
                s->last_error = strdup(strempty(reason));
                /* -ESTALE: the host changed under the plan (a rebind by hand): plan again, that is no
                 * failure of the device. Anything else waits for a new desired state or Apply(). */
                if (error == -ESTALE)
                        s->hold = ++s->stale > RECONCILER_STALE_RETRIES;
                else
                        s->hold = true;
        } else {
                s->hold = false;
                s->stale = 0;
        }
        s->dirty = true;
        r->manager_dirty = true;
        reconciler_schedule_publish(r);
        return s->reason ? 0 : -ENOMEM;
}

/* ---- published state --------------------------------------------------------------------------- */

const char *reconciler_manager_state(Reconciler *r) {
        DeviceState worst = DEVICE_STATE_CONVERGED;

        for (size_t i = 0; i < r->n_status; i++)
                worst = device_state_worst((const DeviceState[]){ worst, r->status[i].state }, 2);
        if (worst == DEVICE_STATE_CONVERGED && (r->n_inflight > 0 || r->queued))
                worst = DEVICE_STATE_PENDING;
        return device_state_to_string(worst);
}

uint64_t reconciler_generation(Reconciler *r) {
        return r->generation;
}

char **reconciler_config_errors(Reconciler *r) {
        return r->config_errors;
}

const char *reconciler_store_error(Reconciler *r) {
        return r->store_error;
}

void reconciler_device_status(Reconciler *r, const char *address, DeviceStatusView *ret) {
        const DeviceStatus *s = r ? status_find(r, address) : NULL;

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

static void emit_device(Reconciler *r, const char *address) {
        sd_bus *bus = r->daemon->bus;
        _cleanup_free_ char *path = NULL;
        int k;

        if (!bus || !model_get_device(r->daemon->model, address))
                return;
        path = object_path_from_pci_address(address);
        if (!path)
                return;
        k = sd_bus_emit_properties_changed(
                bus, path, HOSTDEVD_DEVICE_INTERFACE, "DesiredDriver", "DesiredSource", "State",
                "StateReason", "LastError", NULL);
        if (k < 0)
                log_debug_errno(k, "Failed to emit PropertiesChanged for %s: %m, ignoring", path);
}

static int on_publish(sd_event_source *source, void *userdata) {
        Reconciler *r = userdata;
        sd_bus *bus = r->daemon->bus;
        const char *names[4];
        const char *state;
        size_t n = 0;

        for (size_t i = 0; i < r->n_status; i++)
                if (r->status[i].dirty) {
                        r->status[i].dirty = false;
                        emit_device(r, r->status[i].address);
                }
        STRV_FOREACH (a, r->unpublished)
                if (!status_find(r, *a))
                        emit_device(r, *a);
        r->unpublished = strv_free(r->unpublished);

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
        if (!strv_equal(r->config_errors, r->published_config_errors)) {
                char **copy = NULL;
                bool ok = true;

                STRV_FOREACH (e, r->config_errors)
                        if (strv_extend(&copy, *e) < 0)
                                ok = false;
                if (ok) {
                        strv_free(r->published_config_errors);
                        r->published_config_errors = copy;
                } else
                        strv_free(copy);
                names[n++] = "ConfigErrors";
        }
        names[n] = NULL;

        if (n > 0 && bus) {
                int k = sd_bus_emit_properties_changed_strv(
                        bus, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, (char **)names);
                if (k < 0)
                        log_debug_errno(k, "Failed to emit PropertiesChanged for the manager: %m, ignoring");
        }
        return 0;
}

int reconciler_holders(Reconciler *r, const Holder **ret, size_t *ret_n) {
        uint64_t iteration = 0;
        int k;

        /* One scan per loop iteration: every getter of GetManagedObjects shares it. */
        (void)sd_event_get_iteration(r->daemon->event, &iteration);
        if (!r->holders_valid || r->holders_iteration != iteration) {
                Holder *h = NULL;
                size_t n = 0;

                k = holders_scan(r->proc_root, &h, &n);
                if (k < 0)
                        return log_debug_errno(
                                k, "Failed to scan %s for VFIO holders: %m", r->proc_root ?: PROC_ROOT);
                holders_free(r->holders, r->n_holders);
                r->holders = h;
                r->n_holders = n;
                r->holders_iteration = iteration;
                r->holders_valid = true;
        }
        *ret = r->holders;
        *ret_n = r->n_holders;
        return 0;
}

/* ---- planning ------------------------------------------------------------------------------------ */

static bool reconciler_is_active(Reconciler *r) {
        size_t n = 0;
        bool owned;

        if (r->desired && r->desired->n_rules > 0)
                return true;
        pthread_mutex_lock(&r->lock);
        owned = r->store && state_store_get_devices(r->store, &n) && n > 0;
        pthread_mutex_unlock(&r->lock);
        return owned || r->n_status > 0;
}

static int plan_empty(Plan **ret) {
        Plan *p = calloc(1, sizeof(Plan));

        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

/*
 * |ret_released|: owned functions no rule names that are back on their host driver already (a crash
 * between the ownership record and the first write, or a release whose record update was lost).
 *
 * |cached|: plan with the host-critical set of the last full plan and the last /proc scan, for
 * functions that just appeared (their first write races the kernel's probe). -ENODATA when the
 * critical set is unknown. A function that appeared cannot be a mount's, swap's or route's
 * ancestor yet (it has no driver), nor the boot VGA; it can be a group peer of a critical function,
 * which the caller checks (reconciler_fresh_is_safe()).
 */
static int reconciler_plan_full(Reconciler *r, bool cached, Plan **ret, char ***ret_released) {
        _cleanup_(desired_resolution_freep) DesiredResolution *resolution = NULL;
        _cleanup_(critical_set_freep) CriticalSet *critical = NULL;
        _cleanup_free_ CriticalDevice *all_critical = NULL;
        _cleanup_strv_free_ char **owned = NULL;
        _cleanup_free_ char *critical_error = NULL;
        const PciDevice *const *devices;
        const Holder *holders = NULL;
        size_t n_devices = 0, n_holders = 0;
        PlannerInput in = {};
        int k;

        assert(r && ret);

        /* Every uevent received so far in the model first (a plan right after a job's end must see
         * the functions it changed; their refreshes wait in the queue). */
        daemon_flush_uevents(r->daemon);

        if (!reconciler_is_active(r))
                return plan_empty(ret);
        if (cached && !r->critical)
                return -ENODATA;

        devices = model_get_devices(r->daemon->model, &n_devices);

        k = desired_state_resolve(r->desired, r->daemon->model, &resolution);
        if (k < 0)
                return k;

        if (cached && r->holders_valid) {
                holders = r->holders;
                n_holders = r->n_holders;
                k = 0;
        } else
                k = reconciler_holders(r, &holders, &n_holders);
        if (k < 0) {
                holders = NULL;
                n_holders = 0;
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

        /* Mounts, swap and routes change without a uevent we watch: compute on every full plan. */
        if (cached)
                k = 0;
        else
                k = critical_compute(r->critical_root, devices, n_devices, &critical, &critical_error);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                r->critical = critical_set_free(r->critical);
                /* Unknown means refuse: every function is critical now. */
                log_warning_errno(
                        k, "Cannot compute the host-critical functions: %s; refusing every change",
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
                if (!cached) {
                        critical_set_free(r->critical);
                        r->critical = TAKE_PTR(critical);
                }
                in.critical = r->critical->devices;
                in.n_critical = r->critical->n_devices;
        }

        pthread_mutex_lock(&r->lock);
        k = r->store ? state_store_list_owned(r->store, &owned) : 0;
        pthread_mutex_unlock(&r->lock);
        if (k < 0)
                return k;
        in.owned = owned;

        k = planner_plan(&in, ret);
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

int reconciler_plan(Reconciler *r, Plan **ret) {
        return reconciler_plan_full(r, false, ret, NULL);
}

/* The state store logs nothing above debug (src/): what went wrong without failing, as warnings. */
static void reconciler_log_store_warnings(Reconciler *r) {
        _cleanup_strv_free_ char **w = state_store_take_warnings(r->store);

        STRV_FOREACH (m, w)
                log_warning("%s", *m);
}

/* On one of the executor's lanes, maybe two at once: everything under r->lock. */
static int on_journal(const ExecutorJournal *j, void *userdata) {
        Reconciler *r = userdata;
        _cleanup_free_ OwnedChange *changes = NULL;
        JournalTx *t = NULL;
        int k = 0;

        pthread_mutex_lock(&r->lock);

        if (j->phase == EXECUTOR_JOURNAL_BEGIN) {
                if (!r->store) {
                        k = -EUCLEAN; /* the ownership records are unknown: mutate nothing */
                        goto finish;
                }
                changes = calloc(j->n_devices ?: 1, sizeof(OwnedChange));
                t = calloc(1, sizeof(JournalTx));
                if (t)
                        t->was_owned = calloc(j->n_devices ?: 1, sizeof(bool));
                if (!changes || !t || !t->was_owned) {
                        journal_tx_free(t);
                        k = -ENOMEM;
                        goto finish;
                }
                t->n_was_owned = j->n_devices;
                for (size_t i = 0; i < j->n_devices; i++) {
                        const ExecutorJournalDevice *jd = &j->devices[i];

                        t->was_owned[i] = state_store_get(r->store, jd->address) != NULL;
                        changes[i] = (OwnedChange){
                                .address = jd->address,
                                .driver_now = jd->driver,
                                .driver_override_now = jd->driver_override,
                                .driver_override =
                                        jd->has_target_override ? jd->target_override : jd->driver_override,
                                .driver = jd->has_target_driver ? jd->target_driver : jd->driver,
                        };
                }
                k = state_store_begin(r->store, changes, j->n_devices, &t->transaction);
                if (k < 0) {
                        log_error_errno(
                                k, "Failed to record the originals in %s: %m; not touching the devices",
                                state_store_path(r->store));
                        journal_tx_free(t);
                        goto finish;
                }
                *j->state = t;
                goto finish;
        }

        /* END */
        t = *j->state;
        *j->state = NULL;
        if (!r->store || !t) {
                journal_tx_free(t);
                goto finish;
        }
        switch (j->outcome) {
        case DEVICE_STATE_CONVERGED:
                k = state_store_commit(r->store, t->transaction);
                for (size_t i = 0; k >= 0 && i < j->n_devices; i++)
                        if (j->devices[i].release)
                                (void)state_store_forget(r->store, j->devices[i].address);
                break;
        case DEVICE_STATE_FAILED:
                /* Rolled back: what was not ours before is not ours now. */
                k = state_store_commit(r->store, t->transaction);
                for (size_t i = 0; i < j->n_devices && i < t->n_was_owned; i++)
                        if (!t->was_owned[i])
                                (void)state_store_forget(r->store, j->devices[i].address);
                break;
        default:
                /* Stuck: keep the begun record; the next start finishes or rolls back. */
                break;
        }
        if (k < 0)
                log_warning_errno(k, "Failed to update %s: %m", state_store_path(r->store));
        journal_tx_free(t);

finish:
        reconciler_log_store_warnings(r);
        pthread_mutex_unlock(&r->lock);
        return k;
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

static int inflight_add(Reconciler *r, uint64_t id, bool full, const Plan *plan) {
        _cleanup_strv_free_ char **addresses = NULL;
        _cleanup_free_ const char **v = NULL;
        size_t n = 0;
        InflightJob *t;

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
                .addresses = TAKE_PTR(addresses),
        };
        return 0;
}

/* Forget job |id|; returns whether it was a full one. */
static bool inflight_remove(Reconciler *r, uint64_t id) {
        for (size_t i = 0; i < r->n_inflight; i++) {
                bool full = r->inflight[i].full;

                if (r->inflight[i].id != id)
                        continue;
                strv_free(r->inflight[i].addresses);
                memmove(r->inflight + i, r->inflight + i + 1, (r->n_inflight - i - 1) * sizeof(InflightJob));
                r->n_inflight--;
                return full;
        }
        return false;
}

/* Held functions (failed or stuck at this generation) and every function a job of ours in the
 * executor touches, for plan_filter() (duplicates do no harm there). */
static int reconciler_exclude(Reconciler *r, char ***ret) {
        for (size_t i = 0; i < r->n_status; i++)
                if (r->status[i].hold && strv_extend(ret, r->status[i].address) < 0)
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
        bool usable;

        pthread_mutex_lock(&r->lock);
        usable = r->store;
        pthread_mutex_unlock(&r->lock);
        return usable;
}

/* Plan, update the published state, and submit what may run. Only while no job of ours runs. */
static int reconciler_run(Reconciler *r) {
        _cleanup_(plan_freep) Plan *plan = NULL, *todo = NULL;
        _cleanup_strv_free_ char **exclude = NULL, **released = NULL;
        bool force = r->force;
        uint64_t job;
        int k;

        assert(r->n_inflight == 0);
        r->force = false;

        k = reconciler_plan_full(r, false, &plan, &released);
        if (k < 0) {
                log_error_errno(k, "Failed to plan: %m");
                waiters_complete(r, r->n_submitted + 1, k);
                return k;
        }

        if (force)
                for (size_t i = 0; i < r->n_status; i++)
                        r->status[i].hold = false;

        /* Nothing left to own: no record, so a later rule for it starts from what it is now. */
        pthread_mutex_lock(&r->lock);
        STRV_FOREACH (a, released)
                if (r->store && state_store_forget(r->store, *a) >= 0)
                        log_debug("PCI function %s is on its host driver again: no longer owned", *a);
        pthread_mutex_unlock(&r->lock);

        k = status_update_from_plan(r, plan);
        if (k < 0) {
                waiters_complete(r, r->n_submitted + 1, k);
                return k;
        }

        k = reconciler_exclude(r, &exclude);
        if (k < 0)
                return k;
        k = plan_filter(plan, exclude, NULL, &todo);
        if (k < 0)
                return k;

        if (todo->n_actions == 0 && !waiters_want_next(r))
                return 0;

        if (todo->n_actions > 0 && !reconciler_store_usable(r)) {
                log_error(
                        "Not changing any device: the ownership records could not be loaded (%s)",
                        strna(r->store_error));
                waiters_complete(r, r->n_submitted + 1, -EUCLEAN);
                return -EUCLEAN;
        }

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
        return 0;
}

/*
 * A function that appeared in an IOMMU group with a host-critical function is left to the full
 * plan (the cached critical set does not list it as a peer yet).
 */
static bool reconciler_fresh_is_safe(Reconciler *r, char *const *fresh) {
        for (char *const *a = fresh; a && *a; a++) {
                _cleanup_strv_free_ char **peers = NULL;

                if (critical_set_get(r->critical, *a))
                        return false;
                if (model_get_iommu_group_peers(r->daemon->model, *a, &peers) < 0)
                        return false;
                STRV_FOREACH (p, peers)
                        if (critical_set_get(r->critical, *p))
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

        if (!r->executor || !r->critical || !reconciler_fresh_is_safe(r, fresh) ||
            !reconciler_store_usable(r))
                return 0;

        k = reconciler_plan_full(r, true, &plan, NULL);
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
                dev = model_get_device(r->daemon->model, a->address);
                if (dev && !dev->driver && !dev->driver_override)
                        a->verify = PLAN_VERIFY_DRIVER_SETTLE;
        }

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

/* "VVVV:DDDD" (pci_uevent()'s "%04X:%04X") */
static int parse_id_pair(const char *s, uint16_t *ret_a, uint16_t *ret_b) {
        unsigned a, b;
        int n = 0;

        if (!s || strlen(s) != 9 || strspn(s, "0123456789abcdefABCDEF:") != 9 || s[4] != ':' ||
            sscanf(s, "%4x:%4x%n", &a, &b, &n) != 2 || n != 9)
                return -EINVAL;
        *ret_a = (uint16_t)a;
        *ret_b = (uint16_t)b;
        return 0;
}

/* "CCCCCC": pci_uevent() prints the 24-bit class with "%04X", so 4 to 6 digits */
static int parse_class(const char *s, uint32_t *ret) {
        unsigned c;
        int n = 0;

        if (!s || strlen(s) < 4 || strlen(s) > 6 || s[strspn(s, "0123456789abcdefABCDEF")] != 0 ||
            sscanf(s, "%6x%n", &c, &n) != 1 || (size_t)n != strlen(s))
                return -EINVAL;
        *ret = c;
        return 0;
}

/* Rules that match on what no uevent carries (Slot=, Serial=) need the function read whole. */
static bool desired_needs_full_read(const DesiredState *s) {
        for (size_t i = 0; i < s->n_rules; i++)
                if (s->rules[i].match.slot || s->rules[i].match.has_serial)
                        return true;
        return false;
}

/* Whether a rule matches on a VF index range: only then does a new VF's index matter (device_match()
 * reads PciDevice.vf_index for nothing else), and it costs two sysfs reads per VF. */
static bool desired_needs_vf_index(const DesiredState *s) {
        for (size_t i = 0; i < s->n_rules; i++)
                if (s->rules[i].match.has_vf_index)
                        return true;
        return false;
}

/*
 * VF index of |vf| under |pf| from the PF's First VF Offset and VF Stride (PCIe SR-IOV §9.3.3.9-10):
 * routing ID of VF n = PF's + offset + n * stride. Both may change with NumVFs (the kernel re-reads
 * them in pci_iov_set_numvfs()), so they are read now from sriov_offset and sriov_stride
 * (sysfs-bus-pci), not taken from the model. The virtfnN link that names the index is created only
 * after the VF's "add" uevent (pci_iov_add_virtfn()). -1 when it does not compute.
 */
static int32_t vf_index_of(const PciDevice *pf, const char *vf) {
        _cleanup_free_ char *dir = NULL;
        PciAddress a, b;
        int64_t rid_pf, rid_vf, d, offset, stride;

        if (!pf || pci_address_from_string(pf->address, &a) < 0 || pci_address_from_string(vf, &b) < 0 ||
            a.domain != b.domain)
                return -1;
        rid_pf = (int64_t)a.bus << 8 | (int64_t)a.slot << 3 | a.function;
        rid_vf = (int64_t)b.bus << 8 | (int64_t)b.slot << 3 | b.function;
        /* A VF's routing ID is above its PF's (offset >= 1): no sysfs read for the others. */
        if (rid_vf <= rid_pf || asprintf(&dir, "%s/%s", SYSFS_PCI_DEVICES, pf->address) < 0)
                return -1;
        if (sysfs_read_int(dir, SYSFS_ATTR_SRIOV_OFFSET, 1, UINT16_MAX, &offset) < 0 ||
            sysfs_read_int(dir, SYSFS_ATTR_SRIOV_STRIDE, 0, UINT16_MAX, &stride) < 0)
                return -1;
        d = rid_vf - rid_pf - offset;
        if (stride == 0) /* unused with one VF */
                return d == 0 ? 0 : -1;
        if (d < 0 || d % stride != 0 || d / stride > INT32_MAX)
                return -1;
        return (int32_t)(d / stride);
}

/* Whether the device directories |a| and |b| sit in the same directory. NULL or an unresolved path
 * (/sys/bus/pci/devices/...) on either side: maybe. */
static bool maybe_siblings(const char *a, const char *b) {
        static const char devices[] = "/sys/devices/";
        size_t n;

        if (!a || !b || !strneq(a, devices, strlen(devices)) || !strneq(b, devices, strlen(devices)))
                return true;
        n = (size_t)(strrchr(a, '/') - a);
        return n == (size_t)(strrchr(b, '/') - b) && strneq(a, b, n);
}

/*
 * A VF's "add" uevent comes before its physfn link (pci_iov_add_virtfn(): pci_device_add(), then
 * pci_iov_sysfs_link()). The PF is then the one SR-IOV function of the model whose First VF Offset
 * and VF Stride put a VF index below its TotalVFs at |address|. Only PFs beside |syspath|, the new
 * function's directory (may be NULL): a VF's device is a child of its PF's parent
 * (pci_iov_add_virtfn() sets virtfn->dev.parent = dev->dev.parent, drivers/pci/iov.c), and that
 * spares reading the offset and stride of PFs elsewhere. Returns 0 and the PF's address, -ENOENT
 * when no PF or several do.
 */
static int vf_physfn_guess(Reconciler *r, const char *address, const char *syspath, char **ret) {
        const PciDevice *const *devices, *found = NULL;
        size_t n = 0;

        devices = model_get_devices(r->daemon->model, &n);
        for (size_t i = 0; i < n; i++) {
                int32_t index;

                if (devices[i]->sriov_total_vfs == 0 || !maybe_siblings(devices[i]->syspath, syspath))
                        continue;
                index = vf_index_of(devices[i], address);
                if (index < 0 || (uint32_t)index >= devices[i]->sriov_total_vfs)
                        continue;
                if (found)
                        return -ENOENT;
                found = devices[i];
        }
        if (!found)
                return -ENOENT;
        *ret = strdup(found->address);
        return *ret ? 0 : -ENOMEM;
}

static bool early_skip(const char *address, const char *why) {
        log_debug(
                "PCI function %s: no driver_override on its \"add\" (%s); planned once read", address, why);
        return false;
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
        _cleanup_(desired_resolution_freep) DesiredResolution *resolution = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        _cleanup_free_ char *dir = NULL, *group = NULL, *physfn = NULL;
        const PciDevice *const *devices;
        const PciDevice *list[2], *pf = NULL;
        const DesiredDevice *want;
        PciDevice d = { .iommu_group = -1, .numa_node = -1, .vf_index = -1 };
        PciAddress a;
        uint32_t class;
        size_t n_devices = 0;
        int64_t v;
        uint64_t job;
        int k;

        if (!r || !r->desired || r->desired->n_rules == 0 || !r->executor || !sysname ||
            pci_address_from_string(sysname, &a) < 0)
                return false;
        pci_address_format(&a, d.address);
        if (!r->critical)
                return early_skip(d.address, "the host-critical functions are not known yet");
        if (model_get_device(r->daemon->model, d.address))
                return early_skip(d.address, "already known");
        if (desired_needs_full_read(r->desired))
                return early_skip(d.address, "a rule matches on Slot= or Serial=");
        if (parse_id_pair(pci_id, &d.vendor_id, &d.device_id) < 0 ||
            parse_id_pair(pci_subsys_id, &d.subsystem_vendor_id, &d.subsystem_device_id) < 0 ||
            parse_class(pci_class, &class) < 0) {
                return early_skip(d.address, "no usable ids in its \"add\" uevent");
        }
        d.class_code = class;

        if (asprintf(&dir, "%s/%s", SYSFS_PCI_DEVICES, d.address) < 0)
                return false;
        if (sysfs_read_link_basename(dir, SYSFS_ATTR_IOMMU_GROUP, &group) >= 0) {
                if (sysfs_parse_int(group, 0, INT32_MAX, &v) < 0)
                        return early_skip(d.address, "unreadable iommu_group");
                d.iommu_group = (int32_t)v;
        }
        k = sysfs_read_link_basename(dir, SYSFS_ATTR_PHYSFN, &physfn);
        if (k == -ENOENT)
                k = vf_physfn_guess(r, d.address, syspath, &physfn);
        if (k >= 0) {
                pf = model_get_device(r->daemon->model, physfn);
                d.sriov_role = SRIOV_ROLE_VF;
                d.physfn = physfn;
                if (!pf)
                        return early_skip(d.address, "its PF is unknown");
                if (desired_needs_vf_index(r->desired)) {
                        d.vf_index = vf_index_of(pf, d.address);
                        if (d.vf_index < 0)
                                return early_skip(d.address, "its VF index is unknown");
                }
        } else if (k != -ENOENT)
                return early_skip(d.address, "unreadable physfn");

        /* Alone in its group (bridges aside): no peer to cover, none held. A bridge peer that is
         * host-critical makes the whole group critical (planner.c): the full plan refuses it. */
        devices = model_get_devices(r->daemon->model, &n_devices);
        for (size_t i = 0; d.iommu_group >= 0 && i < n_devices; i++)
                if (devices[i]->iommu_group == d.iommu_group &&
                    (!pci_device_is_bridge(devices[i]) ||
                     critical_set_get(r->critical, devices[i]->address)))
                        return early_skip(d.address, "IOMMU group peers");

        list[0] = &d;
        list[1] = pf;
        k = desired_state_resolve_devices(r->desired, list, pf ? 2 : 1, &resolution);
        if (k < 0)
                return false;
        want = desired_resolution_get_device(resolution, d.address);
        if (!want || want->driver.kind != DRIVER_KIND_NAMED)
                return early_skip(d.address, "no rule names a driver for it");
        if (driver_name_is_vfio(want->driver.name) && d.iommu_group < 0)
                return early_skip(d.address, "no IOMMU group");
        if (!reconciler_store_usable(r))
                return early_skip(d.address, "the ownership records are unusable");

        k = planner_plan_new_function(&d, &want->driver, want->source, &plan);
        if (k >= 0)
                k = executor_submit_first(r->executor, plan, &job);
        if (k >= 0)
                k = inflight_add(r, job, false, plan);
        if (k < 0) {
                log_debug_errno(k, "PCI function %s: no early driver_override: %m", d.address);
                return false;
        }
        log_info(
                "New PCI function %s: driver_override %s before the kernel's first probe (job %" PRIu64 ")",
                d.address, want->driver.name, job);
        return true;
}

static int on_fresh(sd_event_source *source, void *userdata) {
        Reconciler *r = userdata;
        _cleanup_strv_free_ char **fresh = TAKE_PTR(r->fresh);
        _cleanup_strv_free_ char **present = NULL;

        /* Gone again meanwhile: nothing to plan for them. */
        STRV_FOREACH (f, fresh)
                if (model_get_device(r->daemon->model, *f) && strv_extend(&present, *f) < 0)
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
        if (r && r->n_inflight == 0)
                (void)reconciler_run(r);
}

void reconciler_schedule(Reconciler *r) {
        int k;

        if (!r || !r->plan_source)
                return;
        k = sd_event_source_set_enabled(r->plan_source, SD_EVENT_ONESHOT);
        if (k < 0)
                log_warning_errno(k, "Failed to schedule a plan: %m");
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
        daemon_queue_refresh(r->daemon, address);
}

/* For a failure to load the driver's module: the reason, and when the load is tried again
 * (module-loader.h). NULL otherwise, or on OOM. */
static char *reason_with_backoff(Reconciler *r, const ExecutorEvent *ev) {
        _cleanup_free_ char *backoff = NULL;
        const DeviceStatus *s = status_find(r, ev->address);
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
                if (ev->error == -ESTALE) {
                        DeviceStatus *s = status_find(r, ev->address);

                        if (s && !s->hold)
                                reconciler_schedule(r);
                }
                break;
        }
        case EXECUTOR_EVENT_RELEASED: {
                DeviceStatus *s = status_find(r, ev->address);

                log_notice(
                        "PCI function %s: the stuck sysfs access returned (%d); re-planning", ev->address,
                        ev->error);
                if (s)
                        s->hold = false;
                reconciler_refresh_device(r, ev->address);
                reconciler_schedule(r);
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
        bool active, schedule = false;

        if (!r || n == 0)
                return;
        active = r->desired && r->desired->n_rules > 0;
        model = r->daemon->model;

        for (size_t i = 0; i < n; i++) {
                const ModelChange *c = &changes[i];
                const PciDevice *dev;
                DeviceStatus *s;

                if (c->object != MODEL_OBJECT_DEVICE)
                        continue;
                s = status_find(r, c->key);
                if (c->kind == MODEL_CHANGE_ADDED) {
                        if (s)
                                s->hold = false; /* a new function: try again */
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
                if (dev && dev->iommu_group >= 0 && r->n_groups > 0 &&
                    bsearch(&dev->iommu_group, r->groups, r->n_groups, sizeof(int32_t), int32_compare))
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
        int k;

        assert(r);

        /* An operator who just installed a missing module expects the next try now. */
        module_loader_reset(r->module_loader);

        k = desired_state_load((const char *const *)r->dirs, &s);
        if (k < 0)
                return log_error_errno(k, "Failed to read the desired state: %m");

        strv_free(r->config_errors);
        r->config_errors = TAKE_PTR(s->errors);
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
        r->generation++;
        for (size_t i = 0; i < r->n_status; i++)
                r->status[i].hold = false;
        log_info("Desired state generation %" PRIu64 ": %zu rule(s)", r->generation, r->desired->n_rules);
        reconciler_schedule(r);
        return r->config_errors ? -EBADMSG : 1;
}

static const char *request_dir(Reconciler *r, bool persist) {
        return persist ? r->request_dir_persist : r->request_dir_run;
}

int reconciler_write_request(
        Reconciler *r, RequestKind kind, const char *address, const char *content, bool persist) {
        _cleanup_free_ char *name = NULL, *other = NULL;
        int k;

        k = reconciler_request_file_name(kind, address, &name);
        if (k < 0)
                return k;
        k = write_file_atomic(request_dir(r, persist), name, content);
        if (k < 0)
                return log_error_errno(k, "Failed to write %s/%s: %m", request_dir(r, persist), name);

        /* One declaration per function: a transient one would mask the persistent one, and a persistent
         * one must not come back after the transient one is gone. */
        if (asprintf(&other, "%s/%s", request_dir(r, !persist), name) < 0)
                return -ENOMEM;
        if (unlink(other) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "Failed to remove %s: %m, ignoring", other);

        k = reconciler_reload(r);
        return k < 0 ? k : 0;
}

int reconciler_remove_requests(Reconciler *r, RequestKind kind, const char *address) {
        _cleanup_free_ char *name = NULL;
        bool found = false;
        int k;

        k = reconciler_request_file_name(kind, address, &name);
        if (k < 0)
                return k;
        for (int persist = 0; persist <= 1; persist++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/%s", request_dir(r, persist), name) < 0)
                        return -ENOMEM;
                if (unlink(path) >= 0)
                        found = true;
                else if (errno != ENOENT)
                        return log_error_errno(-errno, "Failed to remove %s: %m", path);
        }
        if (!found)
                return -ENOENT;

        k = reconciler_reload(r);
        return k < 0 ? k : 0;
}

struct RequestBackup {
        char *path[2];
        char *content[2]; /* NULL: did not exist */
};

void request_backup_free(RequestBackup *b) {
        if (!b)
                return;
        for (int i = 0; i < 2; i++) {
                free(b->path[i]);
                free(b->content[i]);
        }
        free(b);
}

static int read_small_file(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t n;

        *ret = NULL;
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        buf = calloc(1, DESIRED_STATE_FILE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, DESIRED_STATE_FILE_MAX, f);
        if (ferror(f))
                return -EIO;
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 1;
}

int reconciler_backup_requests(Reconciler *r, RequestKind kind, const char *address, RequestBackup **ret) {
        _cleanup_free_ char *name = NULL;
        RequestBackup *b;
        int k;

        k = reconciler_request_file_name(kind, address, &name);
        if (k < 0)
                return k;
        b = calloc(1, sizeof(RequestBackup));
        if (!b)
                return -ENOMEM;
        for (int i = 0; i < 2; i++) {
                if (asprintf(&b->path[i], "%s/%s", request_dir(r, i), name) < 0) {
                        request_backup_free(b);
                        return -ENOMEM;
                }
                k = read_small_file(b->path[i], &b->content[i]);
                if (k < 0) {
                        request_backup_free(b);
                        return k;
                }
        }
        *ret = b;
        return 0;
}

int reconciler_restore_requests(Reconciler *r, RequestBackup *b) {
        int k, ret = 0;

        for (int i = 0; i < 2; i++) {
                if (b->content[i]) {
                        const char *slash = strrchr(b->path[i], '/');
                        _cleanup_free_ char *dir = strndup(b->path[i], (size_t)(slash - b->path[i]));

                        if (!dir)
                                return -ENOMEM;
                        k = write_file_atomic(dir, slash + 1, b->content[i]);
                } else
                        k = unlink(b->path[i]) < 0 && errno != ENOENT ? -errno : 0;
                if (k < 0 && ret == 0)
                        ret = log_error_errno(k, "Failed to restore %s: %m", b->path[i]);
        }
        k = reconciler_reload(r);
        return ret < 0 ? ret : k < 0 ? k : 0;
}

/* ---- lifecycle ----------------------------------------------------------------------------------- */

static void reconciler_log_interrupted(Reconciler *r) {
        _cleanup_free_ const OwnedDevice **devices = NULL;
        size_t n = 0;

        if (state_store_list_interrupted(r->store, &devices, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                log_warning(
                        "PCI function %s: transaction %" PRIu64
                        " was interrupted (before it: driver %s, driver_override %s); re-planning it",
                        devices[i]->address, devices[i]->transaction, strna(devices[i]->previous_driver),
                        strna(devices[i]->previous_driver_override));
}

int reconciler_new(Daemon *d, const ReconcilerOptions *options, Reconciler **ret) {
        _cleanup_(reconciler_freep) Reconciler *r = NULL;
        ExecutorOptions eo = {};
        int k;

        assert(d && ret);

        r = calloc(1, sizeof(Reconciler));
        if (!r)
                return -ENOMEM;
        r->daemon = d;
        pthread_mutex_init(&r->lock, NULL);

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
        k = reconciler_dirs(
                options ? options->config_dirs : NULL, r->state_dir,
                options && options->runtime_dir ? options->runtime_dir : HOSTDEVD_RUNTIME_DIR, &r->dirs);
        if (k < 0)
                return k;

        k = state_store_load(r->state_dir, &r->store, &r->store_error);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                if (!r->store_error)
                        (void)asprintf(
                                &r->store_error, "%s/%s: %s", r->state_dir, HOSTDEVD_STATE_FILE,
                                strerror(-k));
                log_error(
                        "Cannot load the ownership records: %s. hostdevd will plan but change nothing "
                        "until the file is repaired or removed.",
                        strna(r->store_error));
                r->store = NULL;
        } else {
                reconciler_log_store_warnings(r);
                reconciler_log_interrupted(r);
        }

        eo.journal = on_journal;
        eo.journal_userdata = r;
        if (options && options->load_modules) {
                k = module_loader_new(NULL, &r->module_loader);
                if (k < 0)
                        return log_error_errno(k, "Failed to set up the module loader: %m");
                eo.load_driver = module_loader_load;
                eo.load_driver_userdata = r->module_loader;
        }
        k = executor_new(d->event, &eo, on_executor_event, r, &r->executor);
        if (k < 0)
                return log_error_errno(k, "Failed to set up the executor: %m");

        k = sd_event_add_defer(d->event, &r->plan_source, on_plan, r);
        if (k >= 0)
                k = sd_event_source_set_enabled(r->plan_source, SD_EVENT_OFF);
        if (k >= 0)
                k = sd_event_source_set_priority(r->plan_source, RECONCILER_PLAN_PRIORITY);
        if (k < 0)
                return k;
        (void)sd_event_source_set_description(r->plan_source, "reconciler-plan");

        k = sd_event_add_defer(d->event, &r->fresh_source, on_fresh, r);
        if (k >= 0)
                k = sd_event_source_set_enabled(r->fresh_source, SD_EVENT_OFF);
        if (k >= 0)
                k = sd_event_source_set_priority(r->fresh_source, RECONCILER_FRESH_PRIORITY);
        if (k < 0)
                return k;
        (void)sd_event_source_set_description(r->fresh_source, "reconciler-fresh");

        k = sd_event_add_defer(d->event, &r->publish_source, on_publish, r);
        if (k >= 0)
                k = sd_event_source_set_enabled(r->publish_source, SD_EVENT_OFF);
        if (k >= 0)
                k = sd_event_source_set_priority(r->publish_source, RECONCILER_PUBLISH_PRIORITY);
        if (k < 0)
                return k;
        (void)sd_event_source_set_description(r->publish_source, "reconciler-publish");

        k = reconciler_reload(r);
        if (k < 0 && k != -EBADMSG)
                return k;
        /* What clients see first: not a change. */
        r->published_generation = r->generation;
        r->published_state = strdup(reconciler_manager_state(r));
        STRV_FOREACH (e, r->config_errors)
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

        /* Waits for the running transaction at most; undoes nothing (DESIGN.md rule 6). */
        r->executor = executor_free(r->executor);
        r->module_loader = module_loader_free(r->module_loader); /* after: its runner thread is gone */
        r->plan_source = sd_event_source_disable_unref(r->plan_source);
        r->fresh_source = sd_event_source_disable_unref(r->fresh_source);
        r->fresh = strv_free(r->fresh);
        r->publish_source = sd_event_source_disable_unref(r->publish_source);

        for (size_t i = 0; i < r->n_waiters; i++)
                r->waiters[i].done(r, -ECANCELED, r->waiters[i].userdata);
        free(r->waiters);

        for (size_t i = 0; i < r->n_status; i++)
                device_status_done(&r->status[i]);
        free(r->status);
        free(r->groups);
        strv_free(r->unpublished);
        free(r->published_state);
        strv_free(r->published_config_errors);
        holders_free(r->holders, r->n_holders);
        critical_set_free(r->critical);
        for (size_t i = 0; i < r->n_inflight; i++)
                strv_free(r->inflight[i].addresses);
        free(r->inflight);

        state_store_free(r->store);
        free(r->store_error);
        pthread_mutex_destroy(&r->lock);

        desired_state_free(r->desired);
        strv_free(r->config_errors);
        strv_free(r->dirs);
        free(r->state_dir);
        free(r->request_dir_run);
        free(r->request_dir_persist);
        free(r->proc_root);
        free(r->critical_root);
        free(r);
        return NULL;
}
