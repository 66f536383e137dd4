/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Plan filters (plan-filter.h). */

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "plan-filter.h"
#include "strv.h"

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
                b->driver = b->reason = b->parent = b->mdev_type = b->attr_name = b->attr_value = NULL;
                if (strdup_null(a->driver, &b->driver) < 0 || strdup_null(a->reason, &b->reason) < 0 ||
                    strdup_null(a->parent, &b->parent) < 0 || strdup_null(a->mdev_type, &b->mdev_type) < 0 ||
                    strdup_null(a->attr_name, &b->attr_name) < 0 ||
                    strdup_null(a->attr_value, &b->attr_value) < 0)
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
        if (plan->n_mdevs > 0) {
                p->mdevs = calloc(plan->n_mdevs, sizeof(PlanMdev));
                if (!p->mdevs)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < plan->n_mdevs; i++) {
                const PlanMdev *a = &plan->mdevs[i];
                PlanMdev *b = &p->mdevs[p->n_mdevs++];

                memcpy(b->uuid, a->uuid, sizeof(b->uuid));
                b->state = a->state;
                b->owner = a->owner;
                if (strdup_null(a->parent, &b->parent) < 0 || strdup_null(a->type, &b->type) < 0 ||
                    strdup_null(a->source, &b->source) < 0 || strdup_null(a->reason, &b->reason) < 0)
                        return -ENOMEM;
        }
        STRV_FOREACH (c, plan->conflicts)
                if (strv_extend(&p->conflicts, *c) < 0)
                        return -ENOMEM;

        *ret = TAKE_PTR(p);
        return 0;
}
