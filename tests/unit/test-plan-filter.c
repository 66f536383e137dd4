/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Plan filters (src/plan-filter.h): transactions kept or dropped whole, renumbered, at scale. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "plan-filter.h"
#include "strv.h"

static void add_action(Plan *p, unsigned t, PlanActionType type, const char *address, const char *driver) {
        PlanAction *a;

        p->actions = reallocarray(p->actions, p->n_actions + 1, sizeof(PlanAction));
        assert_non_null(p->actions);
        a = &p->actions[p->n_actions++];
        *a = (PlanAction){ .type = type, .transaction = t };
        snprintf(a->address, sizeof(a->address), "%s", address);
        a->driver = driver ? strdup(driver) : NULL;
        a->reason = strdup("test");
        if (t > p->n_transactions)
                p->n_transactions = t;
}

static void test_plan_without(void **state) {
        Plan *p = calloc(1, sizeof(Plan)), *q = NULL;
        char *exclude[] = { "0000:02:00.0", NULL };

        assert_non_null(p);
        /* T1: a group of two; T2: the excluded one alone; T3: another. */
        add_action(p, 1, PLAN_ACTION_SET_OVERRIDE, "0000:01:00.0", "vfio-pci");
        add_action(p, 1, PLAN_ACTION_SET_OVERRIDE, "0000:01:00.1", "vfio-pci");
        add_action(p, 2, PLAN_ACTION_SET_OVERRIDE, "0000:02:00.0", "vfio-pci");
        add_action(p, 2, PLAN_ACTION_PROBE, "0000:02:00.0", NULL);
        add_action(p, 3, PLAN_ACTION_UNBIND, "0000:03:00.0", "e1000e");
        p->devices = calloc(1, sizeof(PlanDevice));
        assert_non_null(p->devices);
        p->n_devices = 1;
        snprintf(p->devices[0].address, sizeof(p->devices[0].address), "0000:02:00.0");
        p->devices[0].state = DEVICE_STATE_PENDING;
        p->devices[0].reason = strdup("why");
        assert_int_equal(strv_extend(&p->conflicts, "a conflict"), 0);

        assert_int_equal(plan_without(p, exclude, &q), 0);
        assert_int_equal(q->n_actions, 3);
        assert_int_equal(q->n_transactions, 2);
        assert_string_equal(q->actions[0].address, "0000:01:00.0");
        assert_int_equal(q->actions[0].transaction, 1);
        assert_int_equal(q->actions[1].transaction, 1);
        /* Renumbered: the executor wants contiguous transactions. */
        assert_string_equal(q->actions[2].address, "0000:03:00.0");
        assert_int_equal(q->actions[2].transaction, 2);
        assert_string_equal(q->actions[2].driver, "e1000e");
        /* Devices and conflicts are copied whole (the published view). */
        assert_int_equal(q->n_devices, 1);
        assert_string_equal(q->devices[0].reason, "why");
        assert_string_equal(q->conflicts[0], "a conflict");
        plan_free(q);

        /* Excluding a member drops its whole transaction. */
        exclude[0] = "0000:01:00.1";
        assert_int_equal(plan_without(p, exclude, &q), 0);
        assert_int_equal(q->n_actions, 3);
        assert_string_equal(q->actions[0].address, "0000:02:00.0");
        assert_int_equal(q->actions[0].transaction, 1);
        assert_int_equal(q->actions[2].transaction, 2);
        plan_free(q);

        /* Nothing excluded: the same plan. */
        assert_int_equal(plan_without(p, NULL, &q), 0);
        assert_int_equal(q->n_actions, p->n_actions);
        assert_int_equal(q->n_transactions, 3);
        plan_free(q);

        plan_free(p);
}

/* plan_filter() with |only|: the transactions of a function that just appeared, nothing else. */
static void test_plan_filter_only(void **state) {
        Plan *p = calloc(1, sizeof(Plan)), *q = NULL;
        char *only[] = { "0000:05:00.0", "0000:03:00.0", "0000:01:00.1", "0000:0f:00.0", NULL };
        char *exclude[] = { "0000:05:00.0", NULL };
        char *only_b[] = { "0000:02:00.0", NULL };
        char *none[] = { NULL };

        assert_non_null(p);
        /* T1: a group (one member listed in |only|); T2: not listed; T3: listed; T4: a group with a listed
         * member that is excluded too. */
        add_action(p, 1, PLAN_ACTION_SET_OVERRIDE, "0000:01:00.0", "vfio-pci");
        add_action(p, 1, PLAN_ACTION_SET_OVERRIDE, "0000:01:00.1", "vfio-pci");
        add_action(p, 2, PLAN_ACTION_SET_OVERRIDE, "0000:02:00.0", "vfio-pci");
        add_action(p, 3, PLAN_ACTION_SET_OVERRIDE, "0000:03:00.0", "nvme");
        add_action(p, 3, PLAN_ACTION_PROBE, "0000:03:00.0", NULL);
        add_action(p, 4, PLAN_ACTION_SET_OVERRIDE, "0000:04:00.0", "vfio-pci");
        add_action(p, 4, PLAN_ACTION_SET_OVERRIDE, "0000:05:00.0", "vfio-pci");
        p->devices = calloc(1, sizeof(PlanDevice));
        assert_non_null(p->devices);
        p->n_devices = 1;
        snprintf(p->devices[0].address, sizeof(p->devices[0].address), "0000:02:00.0");
        p->devices[0].state = DEVICE_STATE_PENDING;
        p->devices[0].desired_driver = strdup("vfio-pci");
        assert_int_equal(strv_extend(&p->conflicts, "a conflict"), 0);

        /* T1 (whole, with the member not listed) and T3, renumbered 1 and 2; T4 excluded, T2 not listed. */
        assert_int_equal(plan_filter(p, exclude, only, &q), 0);
        assert_int_equal(q->n_transactions, 2);
        assert_int_equal(q->n_actions, 4);
        assert_string_equal(q->actions[0].address, "0000:01:00.0");
        assert_int_equal(q->actions[0].transaction, 1);
        assert_string_equal(q->actions[1].address, "0000:01:00.1");
        assert_int_equal(q->actions[1].transaction, 1);
        assert_string_equal(q->actions[2].address, "0000:03:00.0");
        assert_int_equal(q->actions[2].transaction, 2);
        assert_string_equal(q->actions[2].driver, "nvme");
        assert_string_equal(q->actions[2].reason, "test");
        assert_int_equal(q->actions[3].type, PLAN_ACTION_PROBE);
        assert_int_equal(q->actions[3].transaction, 2);
        /* Devices and conflicts still copied whole. */
        assert_int_equal(q->n_devices, 1);
        assert_string_equal(q->devices[0].desired_driver, "vfio-pci");
        assert_string_equal(q->conflicts[0], "a conflict");
        plan_free(q);

        /* Without exclusions, T4 is kept for its listed member. */
        assert_int_equal(plan_filter(p, NULL, only, &q), 0);
        assert_int_equal(q->n_transactions, 3);
        assert_int_equal(q->n_actions, 6);
        assert_string_equal(q->actions[4].address, "0000:04:00.0");
        assert_int_equal(q->actions[4].transaction, 3);
        assert_int_equal(q->actions[5].transaction, 3);
        plan_free(q);

        /* One listed function alone in the middle: renumbered 1. */
        assert_int_equal(plan_filter(p, NULL, only_b, &q), 0);
        assert_int_equal(q->n_transactions, 1);
        assert_int_equal(q->n_actions, 1);
        assert_string_equal(q->actions[0].address, "0000:02:00.0");
        assert_int_equal(q->actions[0].transaction, 1);
        plan_free(q);

        /* An empty |only| keeps nothing (NULL keeps everything: plan_without()). */
        assert_int_equal(plan_filter(p, NULL, none, &q), 0);
        assert_int_equal(q->n_transactions, 0);
        assert_int_equal(q->n_actions, 0);
        assert_int_equal(q->n_devices, 1);
        plan_free(q);
        assert_int_equal(plan_filter(p, NULL, NULL, &q), 0);
        assert_int_equal(q->n_transactions, 4);
        assert_int_equal(q->n_actions, p->n_actions);
        plan_free(q);

        plan_free(p);
}

/* Thousands of transactions against thousands of exclusions (the 4096-function host): the right ones
 * stay, in order. Addresses are given in scrambled order. */
static void test_plan_filter_large(void **state) {
        enum { N = 3000 };
        Plan *p = calloc(1, sizeof(Plan)), *q = NULL;
        char **exclude = NULL, **only = NULL, address[PCI_ADDRESS_STRING_MAX];
        unsigned expected = 0;

        assert_non_null(p);
        p->actions = calloc(2 * N, sizeof(PlanAction));
        assert_non_null(p->actions);
        for (unsigned i = 0; i < N; i++) {
                snprintf(address, sizeof(address), "0000:%02x:%02x.%u", i / 64, (i / 8) % 8, i % 8);
                for (unsigned k = 0; k < 2; k++) {
                        PlanAction *a = &p->actions[p->n_actions++];

                        *a = (PlanAction){ .type = k == 0 ? PLAN_ACTION_SET_OVERRIDE : PLAN_ACTION_PROBE,
                                           .transaction = i + 1 };
                        snprintf(a->address, sizeof(a->address), "%s", address);
                        a->driver = k == 0 ? strdup("vfio-pci") : NULL;
                }
        }
        p->n_transactions = N;

        /* Excluded: the even ones (1500); listed: every third, and some that are not in the plan. A
         * permutation (i * 7 mod N, 7 prime to 3000) scrambles the order of both lists. */
        for (unsigned j = 0; j < N; j++) {
                unsigned i = (j * 7) % N;

                if (i % 2 == 0)
                        assert_int_equal(strv_extend(&exclude, p->actions[2 * i].address), 0);
                if (i % 3 == 0)
                        assert_int_equal(strv_extend(&only, p->actions[2 * i].address), 0);
        }
        assert_int_equal(strv_extend(&only, "0001:00:00.0"), 0);
        assert_int_equal(strv_extend(&exclude, "0001:00:00.1"), 0);
        assert_int_equal(strv_length(exclude), N / 2 + 1);

        assert_int_equal(plan_filter(p, exclude, only, &q), 0);
        /* Kept: odd multiples of 3, i = 3, 9, 15, ...: 500 of them. */
        for (unsigned i = 0; i < N; i++)
                if (i % 2 != 0 && i % 3 == 0) {
                        assert_true(2 * expected + 1 < q->n_actions);
                        assert_string_equal(q->actions[2 * expected].address, p->actions[2 * i].address);
                        assert_string_equal(q->actions[2 * expected + 1].address, p->actions[2 * i].address);
                        assert_int_equal(q->actions[2 * expected].transaction, expected + 1);
                        assert_int_equal(q->actions[2 * expected + 1].transaction, expected + 1);
                        assert_int_equal(q->actions[2 * expected + 1].type, PLAN_ACTION_PROBE);
                        expected++;
                }
        assert_int_equal(expected, 500);
        assert_int_equal(q->n_transactions, expected);
        assert_int_equal(q->n_actions, 2 * expected);
        plan_free(q);

        /* plan_without() on the same: the 1500 odd ones. */
        assert_int_equal(plan_without(p, exclude, &q), 0);
        assert_int_equal(q->n_transactions, N / 2);
        assert_int_equal(q->n_actions, N);
        for (unsigned t = 0; t < N / 2; t++) {
                assert_string_equal(q->actions[2 * t].address, p->actions[2 * (2 * t + 1)].address);
                assert_int_equal(q->actions[2 * t].transaction, t + 1);
        }
        plan_free(q);

        strv_free(exclude);
        strv_free(only);
        plan_free(p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plan_without),
                cmocka_unit_test(test_plan_filter_only),
                cmocka_unit_test(test_plan_filter_large),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
