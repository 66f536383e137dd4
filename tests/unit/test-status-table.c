/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The status table (src/status-table.h): holds, -ESTALE retries, LastError kept, announcements. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "status-table.h"
#include "strv.h"

#define A "0000:01:00.0"
#define B "0000:02:00.0"
#define C "0000:03:00.0"

/* A plan of |n| functions, each "ADDR STATE" (no actions: the table reads only the devices). */
static Plan *plan_of(const char *const *specs, size_t n) {
        Plan *p = calloc(1, sizeof(Plan));

        assert_non_null(p);
        p->devices = calloc(n ?: 1, sizeof(PlanDevice));
        assert_non_null(p->devices);
        p->n_devices = n;
        for (size_t i = 0; i < n; i++) {
                PlanDevice *d = &p->devices[i];
                const char *sp = strchr(specs[i], ' ');

                assert_non_null(sp);
                memcpy(d->address, specs[i], (size_t)(sp - specs[i]));
                d->state = device_state_from_string(sp + 1);
                assert_true(d->state >= 0);
                d->desired_driver = strdup("vfio-pci");
                d->source = strdup("50-x.conf:4");
                d->reason = d->state == DEVICE_STATE_CONVERGED ? NULL : strdup("plan says so");
        }
        return p;
}

static void update(StatusTable *t, const char *const *specs, size_t n) {
        Plan *p = plan_of(specs, n);

        assert_int_equal(status_table_update_from_plan(t, p, NULL, NULL, NULL), 0);
        plan_free(p);
}

static void collect(const char *address, void *userdata) {
        assert_int_equal(strv_extend(userdata, address), 0);
}

/* The dirty and dropped functions, joined by ",", then cleared. */
static char *take_dirty(StatusTable *t) {
        _cleanup_strv_free_ char **l = NULL;
        size_t len = 1;
        char *s;

        status_table_take_dirty(t, collect, &l);
        STRV_FOREACH (a, l)
                len += strlen(*a) + 1;
        s = calloc(1, len);
        assert_non_null(s);
        STRV_FOREACH (a, l) {
                if (*s)
                        strcat(s, ",");
                strcat(s, *a);
        }
        return s;
}

static void assert_dirty(StatusTable *t, const char *expected) {
        char *s = take_dirty(t);

        assert_string_equal(s, expected);
        free(s);
}

static void test_state_worst(void **state) {
        DeviceState all[] = {
                DEVICE_STATE_CONVERGED, DEVICE_STATE_PENDING, DEVICE_STATE_BLOCKED,
                DEVICE_STATE_REFUSED,   DEVICE_STATE_FAILED,  DEVICE_STATE_STUCK,
        };

        assert_int_equal(device_state_worst(NULL, 0), DEVICE_STATE_CONVERGED);
        /* The XML's precedence: stuck, failed, refused, blocked, pending. */
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                assert_int_equal(device_state_worst(all, i + 1), all[i]);
                assert_int_equal(
                        device_state_worst(all + i, sizeof(all) / sizeof(all[0]) - i), DEVICE_STATE_STUCK);
        }
        assert_int_equal(
                device_state_worst(
                        (DeviceState[]){ DEVICE_STATE_REFUSED, DEVICE_STATE_PENDING, DEVICE_STATE_BLOCKED },
                        3),
                DEVICE_STATE_REFUSED);
}

static void test_plan_view(void **state) {
        StatusTable *t = status_table_new();
        const DeviceStatus *s;

        assert_non_null(t);
        assert_int_equal(status_table_worst(t), DEVICE_STATE_CONVERGED);
        update(t, (const char *const[]){ B " pending", A " converged" }, 2);
        assert_int_equal(status_table_size(t), 2);
        assert_int_equal(status_table_worst(t), DEVICE_STATE_PENDING);
        s = status_table_get(t, A);
        assert_non_null(s);
        assert_string_equal(s->desired_driver, "vfio-pci");
        assert_string_equal(s->reason, "");
        assert_string_equal(status_table_get(t, B)->reason, "plan says so");
        assert_null(status_table_get(t, C));
        /* Both are new: announced, in address order, once. */
        assert_dirty(t, A "," B);
        assert_dirty(t, "");

        /* The same view again changes nothing; a changed state does. */
        update(t, (const char *const[]){ A " converged", B " pending" }, 2);
        assert_dirty(t, "");
        update(t, (const char *const[]){ A " converged", B " converged" }, 2);
        assert_dirty(t, B);
        status_table_free(t);
}

static void test_hold(void **state) {
        StatusTable *t = status_table_new();
        _cleanup_strv_free_ char **held = NULL;
        const DeviceStatus *s;

        update(t, (const char *const[]){ A " pending", B " pending" }, 2);
        assert_int_equal(
                status_table_set_outcome(t, A, DEVICE_STATE_FAILED, -EIO, "probe bound nothing"), 0);
        assert_true(status_table_is_held(t, A));
        assert_false(status_table_is_held(t, B));
        assert_int_equal(status_table_worst(t), DEVICE_STATE_FAILED);
        assert_int_equal(status_table_list_held(t, &held), 0);
        assert_int_equal(strv_length(held), 1);
        assert_string_equal(held[0], A);

        /* A plan that would retry it keeps showing the failure and its reason. */
        update(t, (const char *const[]){ A " pending", B " pending" }, 2);
        s = status_table_get(t, A);
        assert_int_equal(s->state, DEVICE_STATE_FAILED);
        assert_string_equal(s->reason, "probe bound nothing");
        assert_string_equal(s->last_error, "probe bound nothing");

        /* Released (Apply(), a new function): the plan's view counts again. */
        status_table_release(t, A);
        update(t, (const char *const[]){ A " pending", B " pending" }, 2);
        assert_int_equal(status_table_get(t, A)->state, DEVICE_STATE_PENDING);

        /* Converged clears the hold, keeps LastError. */
        assert_int_equal(status_table_set_outcome(t, A, DEVICE_STATE_FAILED, -EIO, "again"), 0);
        assert_int_equal(status_table_set_outcome(t, A, DEVICE_STATE_CONVERGED, 0, "ignored"), 0);
        s = status_table_get(t, A);
        assert_false(s->hold);
        assert_string_equal(s->reason, "");
        assert_string_equal(s->last_error, "again");

        status_table_release_all(t);
        status_table_free(t);
}

static void test_stale(void **state) {
        StatusTable *t = status_table_new();

        update(t, (const char *const[]){ A " pending" }, 1);
        for (unsigned i = 0; i < STATUS_TABLE_STALE_RETRIES; i++) {
                assert_int_equal(status_table_set_outcome(t, A, DEVICE_STATE_FAILED, -ESTALE, "rebound"), 0);
                assert_false(status_table_is_held(t, A));
        }
        /* One more in a row: someone keeps rebinding it; stop fighting. */
        assert_int_equal(status_table_set_outcome(t, A, DEVICE_STATE_FAILED, -ESTALE, "rebound"), 0);
        assert_true(status_table_is_held(t, A));
        /* A success resets the count. */
        assert_int_equal(status_table_set_outcome(t, A, DEVICE_STATE_CONVERGED, 0, NULL), 0);
        assert_int_equal(status_table_set_outcome(t, A, DEVICE_STATE_FAILED, -ESTALE, "rebound"), 0);
        assert_false(status_table_is_held(t, A));
        status_table_free(t);
}

static void test_dropped(void **state) {
        StatusTable *t = status_table_new();
        const DeviceStatus *s;

        update(t, (const char *const[]){ A " pending", B " pending", C " pending" }, 3);
        assert_int_equal(status_table_set_outcome(t, B, DEVICE_STATE_REFUSED, -EPERM, "host-critical"), 0);
        assert_dirty(t, A "," B "," C);

        /* The rule went: A drops out and is announced; B keeps its LastError with the defaults. */
        update(t, (const char *const[]){ C " pending" }, 1);
        assert_null(status_table_get(t, A));
        s = status_table_get(t, B);
        assert_non_null(s);
        assert_int_equal(s->state, DEVICE_STATE_CONVERGED);
        assert_string_equal(s->desired_driver, "");
        assert_string_equal(s->last_error, "host-critical");
        assert_dirty(t, B "," A);
        assert_dirty(t, "");

        /* An outcome for a function not in the table adds it. */
        assert_int_equal(status_table_set_outcome(t, A, DEVICE_STATE_STUCK, -ETIME, "write overran"), 0);
        assert_int_equal(status_table_worst(t), DEVICE_STATE_STUCK);
        assert_dirty(t, A);
        status_table_free(t);
}

static bool stuck_b(const char *address, void *userdata) {
        (*(unsigned *)userdata)++;
        return strcmp(address, B) == 0;
}

static void test_stuck(void **state) {
        StatusTable *t = status_table_new();
        const char *const specs[] = { A " pending", B " pending" };
        Plan *p = plan_of(specs, 2);
        unsigned calls = 0;

        free(p->devices[1].reason);
        p->devices[1].reason = strdup("a new reason");
        assert_int_equal(status_table_set_outcome(t, B, DEVICE_STATE_STUCK, -ETIME, "write overran"), 0);
        assert_int_equal(status_table_update_from_plan(t, p, NULL, stuck_b, &calls), 0);
        assert_true(calls >= 2);
        assert_int_equal(status_table_get(t, A)->state, DEVICE_STATE_PENDING);
        assert_int_equal(status_table_get(t, B)->state, DEVICE_STATE_STUCK);
        /* Stuck keeps the reason it was stuck for. */
        assert_string_equal(status_table_get(t, B)->reason, "write overran");
        assert_true(status_table_is_held(t, B));
        plan_free(p);
        assert_false(status_table_has_group(t, 3)); /* no model given: no groups */
        status_table_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_state_worst), cmocka_unit_test(test_plan_view),
                cmocka_unit_test(test_hold),        cmocka_unit_test(test_stale),
                cmocka_unit_test(test_dropped),     cmocka_unit_test(test_stuck),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
