/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The status table (status-table.h). */

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "status-table.h"
#include "strv.h"

struct StatusTable {
        DeviceStatus *entries; /* sorted by address */
        size_t n;
        int32_t *groups; /* IOMMU groups of the entries the last plan gave, sorted */
        size_t n_groups;
        char **dropped; /* addresses dropped from the table since the last take_dirty */
};

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

static int int32_compare(const void *a, const void *b) {
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

        return x < y ? -1 : x > y;
}

static bool streq_null(const char *a, const char *b) {
        return streq(strempty(a), strempty(b));
}

StatusTable *status_table_new(void) {
        return calloc(1, sizeof(StatusTable));
}

StatusTable *status_table_free(StatusTable *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n; i++)
                device_status_done(&t->entries[i]);
        free(t->entries);
        free(t->groups);
        strv_free(t->dropped);
        free(t);
        return NULL;
}

static DeviceStatus *status_find(const StatusTable *t, const char *address) {
        DeviceStatus key = {};

        if (!t || !address || t->n == 0 || strlen(address) >= sizeof(key.address))
                return NULL;
        strcpy(key.address, address);
        return bsearch(&key, t->entries, t->n, sizeof(DeviceStatus), device_status_compare);
}

const DeviceStatus *status_table_get(const StatusTable *t, const char *address) {
        return status_find(t, address);
}

size_t status_table_size(const StatusTable *t) {
        return t ? t->n : 0;
}

int status_table_update_from_plan(
        StatusTable *t, const Plan *plan, const Model *model, StatusTableStuckFunc is_stuck,
        void *userdata) {
        DeviceStatus *table = NULL;
        int32_t *groups = NULL;
        size_t n_groups = 0, n_table = plan->n_devices, n_kept = 0;
        char **dropped = NULL;

        assert(t);
        assert(plan);

        /* Functions the plan no longer concerns keep their LastError (a refused or failed request is
         * undone, and its caller still wants to read why). */
        for (size_t i = 0; i < t->n; i++)
                if (t->entries[i].last_error && *t->entries[i].last_error &&
                    !plan_get_device(plan, t->entries[i].address))
                        n_kept++;

        if (n_table + n_kept > 0) {
                table = calloc(n_table + n_kept, sizeof(DeviceStatus));
                groups = calloc(plan->n_devices ?: 1, sizeof(int32_t));
                if (!table || !groups) {
                        free(table);
                        free(groups);
                        return -ENOMEM;
                }
        }

        /* Build the new table without touching the old one: an OOM leaves everything as it was. */
        for (size_t i = 0; i < plan->n_devices; i++) {
                const PlanDevice *pd = &plan->devices[i];
                DeviceStatus *s = &table[i];
                const DeviceStatus *old = status_find(t, pd->address);
                const PciDevice *dev = model ? model_get_device(model, pd->address) : NULL;

                memcpy(s->address, pd->address, sizeof(s->address));
                s->state = pd->state;
                s->desired_driver = strdup(strempty(pd->desired_driver));
                s->source = strdup(strempty(pd->source));
                s->reason = strdup(strempty(pd->reason));
                if (!s->desired_driver || !s->source || !s->reason)
                        goto oom;

                if (is_stuck && is_stuck(pd->address, userdata) && pd->state != DEVICE_STATE_CONVERGED) {
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
                        if (old->last_error && !(s->last_error = strdup(old->last_error)))
                                goto oom;
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
        for (size_t i = 0; i < t->n; i++) {
                const DeviceStatus *old = &t->entries[i];

                if (plan_get_device(plan, old->address))
                        continue;
                if (old->last_error && *old->last_error) {
                        DeviceStatus *s = &table[n_table++];

                        memcpy(s->address, old->address, sizeof(s->address));
                        s->state = DEVICE_STATE_CONVERGED;
                        s->desired_driver = strdup("");
                        s->source = strdup("");
                        s->reason = strdup("");
                        s->last_error = strdup(old->last_error);
                        s->dirty = true;
                        if (!s->desired_driver || !s->source || !s->reason || !s->last_error)
                                goto oom;
                } else if (strv_extend(&dropped, old->address) < 0)
                        goto oom;
        }

        /* Commit: nothing fails from here. */
        STRV_FOREACH (a, dropped)
                if (!strv_contains(t->dropped, *a) && strv_extend(&t->dropped, *a) < 0)
                        break; /* only the announcement of a dropped entry is lost */
        strv_free(dropped);
        for (size_t i = 0; i < t->n; i++)
                device_status_done(&t->entries[i]);
        free(t->entries);
        t->entries = table;
        t->n = n_table;
        /* The planner sorts its devices by address; keep the table sorted whatever it does. */
        if (t->n > 1)
                qsort(t->entries, t->n, sizeof(DeviceStatus), device_status_compare);

        if (n_groups > 1)
                qsort(groups, n_groups, sizeof(int32_t), int32_compare);
        free(t->groups);
        t->groups = groups;
        t->n_groups = n_groups;
        return 0;

oom:
        for (size_t i = 0; i < n_table + n_kept && table; i++)
                device_status_done(&table[i]);
        free(table);
        free(groups);
        strv_free(dropped);
        return -ENOMEM;
}

int status_table_set_outcome(
        StatusTable *t, const char *address, DeviceState state, int error, const char *reason) {
        DeviceStatus *s;
        char *new_reason, *new_error = NULL;

        assert(t);
        assert(address);

        s = status_find(t, address);
        if (!s) {
                DeviceStatus *e = reallocarray(t->entries, t->n + 1, sizeof(DeviceStatus));

                if (!e)
                        return -ENOMEM;
                t->entries = e;
                s = &t->entries[t->n];
                *s = (DeviceStatus){};
                (void)snprintf(s->address, sizeof(s->address), "%s", address);
                s->desired_driver = strdup("");
                s->source = strdup("");
                s->reason = strdup("");
                if (!s->desired_driver || !s->source || !s->reason) {
                        device_status_done(s);
                        return -ENOMEM;
                }
                t->n++;
                qsort(t->entries, t->n, sizeof(DeviceStatus), device_status_compare);
                s = status_find(t, address);
        }

        new_reason = strdup(state == DEVICE_STATE_CONVERGED ? "" : strempty(reason));
        if (state != DEVICE_STATE_CONVERGED)
                new_error = strdup(strempty(reason));
        if (!new_reason || (state != DEVICE_STATE_CONVERGED && !new_error)) {
                free(new_reason);
                free(new_error);
                return -ENOMEM;
        }

        s->state = state;
        free(s->reason);
        s->reason = new_reason;
        if (state != DEVICE_STATE_CONVERGED) {
                free(s->last_error);
                s->last_error = new_error;
                /* -ESTALE: the host changed under the plan (a rebind by hand): plan again, that is no
                 * failure of the device. Anything else waits for a new desired state or Apply(). */
                if (error == -ESTALE)
                        s->hold = ++s->stale > STATUS_TABLE_STALE_RETRIES;
                else
                        s->hold = true;
        } else {
                s->hold = false;
                s->stale = 0;
        }
        s->dirty = true;
        return 0;
}

DeviceState status_table_worst(const StatusTable *t) {
        DeviceState worst = DEVICE_STATE_CONVERGED;

        for (size_t i = 0; t && i < t->n; i++)
                worst = device_state_worst((const DeviceState[]){ worst, t->entries[i].state }, 2);
        return worst;
}

bool status_table_has_group(const StatusTable *t, int32_t group) {
        return t && group >= 0 && t->n_groups > 0 &&
                bsearch(&group, t->groups, t->n_groups, sizeof(int32_t), int32_compare);
}

bool status_table_is_held(const StatusTable *t, const char *address) {
        const DeviceStatus *s = status_find(t, address);

        return s && s->hold;
}

void status_table_release(StatusTable *t, const char *address) {
        DeviceStatus *s = status_find(t, address);

        if (s)
                s->hold = false;
}

void status_table_release_all(StatusTable *t) {
        for (size_t i = 0; t && i < t->n; i++)
                t->entries[i].hold = false;
}

int status_table_list_held(const StatusTable *t, char ***l) {
        for (size_t i = 0; t && i < t->n; i++)
                if (t->entries[i].hold && strv_extend(l, t->entries[i].address) < 0)
                        return -ENOMEM;
        return 0;
}

void status_table_take_dirty(
        StatusTable *t, void (*f)(const char *address, void *userdata), void *userdata) {
        _cleanup_strv_free_ char **dropped = NULL;

        if (!t)
                return;
        for (size_t i = 0; i < t->n; i++)
                if (t->entries[i].dirty) {
                        t->entries[i].dirty = false;
                        f(t->entries[i].address, userdata);
                }
        dropped = TAKE_PTR(t->dropped);
        STRV_FOREACH (a, dropped)
                if (!status_find(t, *a))
                        f(*a, userdata);
}
