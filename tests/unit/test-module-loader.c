/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The ModuleLoader's backoff (agent/module-loader.c) with a fake clock and a fake loader. Nothing here
 * loads a module: the one test of the default (libkmod) loader links its own kmod_new() below, which
 * fails, so module_loader_load_driver() stops before any lookup or insertion.
 */

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libkmod.h>

#include "log.h"
#include "macro.h"
#include "module-loader.h"

#define SEC 1000000ULL

/* ---- libkmod, replaced: the executable's definition wins over libkmod.so's at link time ---------- */

static unsigned kmod_new_calls;

struct kmod_ctx *kmod_new(const char *dirname, const char *const *config_paths) {
        (void)dirname;
        (void)config_paths;
        kmod_new_calls++;
        return NULL; /* module_loader_load_driver(): -ENOMEM before anything else of libkmod */
}

int kmod_module_probe_insert_module(
        struct kmod_module *mod, unsigned int flags, const char *extra_options,
        int (*run_install)(struct kmod_module *m, const char *cmdline, void *data), const void *data,
        void (*print_action)(struct kmod_module *m, bool install, const char *options)) {
        (void)mod;
        (void)flags;
        (void)extra_options;
        (void)run_install;
        (void)data;
        (void)print_action;
        fail_msg("the test reached libkmod's module insertion");
        return -EPERM;
}

/* ---- fakes --------------------------------------------------------------------------------------- */

typedef struct Fake {
        uint64_t now; /* µs */
        int result; /* what the loader returns */
        const char *module; /* what it names in *ret_module; NULL: nothing */
        unsigned calls;
        char last_driver[64];
        pthread_mutex_t lock; /* the threaded test */
} Fake;

static uint64_t fake_now(void *userdata) {
        Fake *f = userdata;
        uint64_t now;

        pthread_mutex_lock(&f->lock);
        now = f->now;
        pthread_mutex_unlock(&f->lock);
        return now;
}

static int fake_load(const char *driver, char **ret_module, void *userdata) {
        Fake *f = userdata;
        int r;

        pthread_mutex_lock(&f->lock);
        f->calls++;
        snprintf(f->last_driver, sizeof(f->last_driver), "%s", driver);
        if (f->module)
                *ret_module = strdup(f->module);
        r = f->result;
        pthread_mutex_unlock(&f->lock);
        return r;
}

typedef struct Fixture {
        Fake fake;
        ModuleLoader *loader;
} Fixture;

static int setup(void **state) {
        Fixture *x = calloc(1, sizeof(Fixture));

        assert_non_null(x);
        assert_int_equal(pthread_mutex_init(&x->fake.lock, NULL), 0);
        x->fake.now = 1000 * SEC; /* any start: only differences count */
        x->fake.result = -ENOENT;
        assert_int_equal(
                module_loader_new(
                        &(ModuleLoaderOptions){
                                .now = fake_now,
                                .now_userdata = &x->fake,
                                .load = fake_load,
                                .load_userdata = &x->fake,
                        },
                        &x->loader),
                0);
        *state = x;
        return 0;
}

static int teardown(void **state) {
        Fixture *x = *state;

        assert_null(module_loader_free(x->loader));
        pthread_mutex_destroy(&x->fake.lock);
        free(x);
        return 0;
}

/* Loads |driver|; asserts the result, whether the fake loader ran, and *ret_module. */
static void load_expect(Fixture *x, const char *driver, int result, bool called, const char *module) {
        _cleanup_free_ char *m = NULL;
        unsigned before = x->fake.calls;

        assert_int_equal(module_loader_load(driver, &m, x->loader), result);
        assert_int_equal(x->fake.calls, before + (called ? 1 : 0));
        if (module)
                assert_string_equal(m, module);
        else
                assert_null(m);
}

/* ---- tests --------------------------------------------------------------------------------------- */

static void test_backoff_doubles_to_cap(void **state) {
        Fixture *x = *state;
        static const uint64_t expected[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300 };
        ModuleLoaderBackoff b;

        assert_int_equal(module_loader_get_backoff(x->loader, "foo", &b), 0);
        load_expect(x, "foo", -ENOENT, true, "foo"); /* no module named: the name asked for */

        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                uint64_t failed = x->fake.now;

                assert_int_equal(module_loader_get_backoff(x->loader, "foo", &b), 1);
                assert_int_equal(b.error, -ENOENT);
                assert_int_equal(b.failures, i + 1);
                assert_int_equal(b.failed_usec, failed);
                assert_int_equal(b.retry_usec, failed + expected[i] * SEC);
                assert_int_equal(b.remaining_usec, expected[i] * SEC);

                /* Within the window, up to its last microsecond: no libkmod, the remembered error. */
                load_expect(x, "foo", -ENOENT, false, "foo");
                x->fake.now = failed + expected[i] * SEC - 1;
                load_expect(x, "foo", -ENOENT, false, "foo");
                assert_int_equal(module_loader_get_backoff(x->loader, "foo", &b), 1);
                assert_int_equal(b.remaining_usec, 1);

                /* At its end: tried again, failing again. */
                x->fake.now = failed + expected[i] * SEC;
                assert_int_equal(module_loader_get_backoff(x->loader, "foo", NULL), 0);
                load_expect(x, "foo", -ENOENT, true, "foo");
        }
        assert_int_equal(module_loader_get_backoff(x->loader, "foo", &b), 1);
        assert_int_equal(b.failures, ELEMENTSOF(expected) + 1);
        assert_int_equal(b.remaining_usec, MODULE_LOADER_BACKOFF_MAX_USEC);
        assert_int_equal(MODULE_LOADER_BACKOFF_INITIAL_USEC, 1 * SEC);
        assert_int_equal(MODULE_LOADER_BACKOFF_MAX_USEC, 300 * SEC);
}

static void test_errno_and_module_remembered(void **state) {
        Fixture *x = *state;

        /* Blacklisted: -EPERM, and the loader names the module it found by alias. */
        x->fake.result = -EPERM;
        x->fake.module = "vfio_pci";
        load_expect(x, "vfio-pci", -EPERM, true, "vfio_pci");
        assert_string_equal(x->fake.last_driver, "vfio-pci"); /* the driver is passed as given */

        /* The loader would now say something else: not asked; the remembered error and module. */
        x->fake.result = -ENOEXEC;
        x->fake.module = "other";
        x->fake.now += SEC / 2;
        load_expect(x, "vfio-pci", -EPERM, false, "vfio_pci");
        /* '-' and '_' are one module. */
        load_expect(x, "vfio_pci", -EPERM, false, "vfio_pci");

        x->fake.now += SEC / 2;
        load_expect(x, "vfio-pci", -ENOEXEC, true, "other");
        load_expect(x, "vfio-pci", -ENOEXEC, false, "other");

        /* ret_module may be NULL. */
        assert_int_equal(module_loader_load("vfio-pci", NULL, x->loader), -ENOEXEC);
}

static void test_success_clears(void **state) {
        Fixture *x = *state;
        ModuleLoaderBackoff b;

        load_expect(x, "foo", -ENOENT, true, "foo");
        x->fake.now += 1 * SEC;
        load_expect(x, "foo", -ENOENT, true, "foo");
        x->fake.now += 2 * SEC;
        load_expect(x, "foo", -ENOENT, true, "foo");
        assert_int_equal(module_loader_get_backoff(x->loader, "foo", &b), 1);
        assert_int_equal(b.failures, 3);

        x->fake.now += 4 * SEC;
        x->fake.result = 0;
        load_expect(x, "foo", 0, true, "foo");
        assert_int_equal(module_loader_get_backoff(x->loader, "foo", NULL), 0);
        /* Every success calls the loader (it answers at once for a loaded module). */
        load_expect(x, "foo", 0, true, "foo");

        /* A later failure starts over at 1 s. */
        x->fake.result = -EIO;
        load_expect(x, "foo", -EIO, true, "foo");
        assert_int_equal(module_loader_get_backoff(x->loader, "foo", &b), 1);
        assert_int_equal(b.failures, 1);
        assert_int_equal(b.remaining_usec, 1 * SEC);
}

static void test_reset_clears(void **state) {
        Fixture *x = *state;

        for (unsigned i = 0; i < 5; i++) {
                if (i > 0)
                        x->fake.now += 16 * SEC;
                load_expect(x, "foo", -ENOENT, true, "foo");
        } /* foo: 5 failures, held back for 16 s */
        x->fake.result = -EPERM;
        load_expect(x, "bar", -EPERM, true, "bar");
        load_expect(x, "foo", -ENOENT, false, "foo");

        module_loader_reset(x->loader);
        assert_int_equal(module_loader_get_backoff(x->loader, "foo", NULL), 0);
        assert_int_equal(module_loader_get_backoff(x->loader, "bar", NULL), 0);
        /* At once, and counting from the first failure again. */
        x->fake.result = -ENOENT;
        load_expect(x, "foo", -ENOENT, true, "foo");
        x->fake.now += 1 * SEC;
        load_expect(x, "foo", -ENOENT, true, "foo");
        load_expect(x, "bar", -ENOENT, true, "bar");

        module_loader_reset(NULL);
        module_loader_reset(x->loader);
        module_loader_reset(x->loader); /* nothing to forget */
        load_expect(x, "foo", -ENOENT, true, "foo");
}

static void test_modules_independent(void **state) {
        Fixture *x = *state;
        ModuleLoaderBackoff b;

        load_expect(x, "foo", -ENOENT, true, "foo");
        x->fake.now += 1 * SEC;
        load_expect(x, "foo", -ENOENT, true, "foo"); /* foo: 2 failures, 2 s */

        /* bar is not held back by foo. */
        x->fake.result = -EPERM;
        load_expect(x, "bar", -EPERM, true, "bar");
        load_expect(x, "bar", -EPERM, false, "bar");
        load_expect(x, "foo", -ENOENT, false, "foo");
        x->fake.result = 0;
        load_expect(x, "baz", 0, true, "baz");

        assert_int_equal(module_loader_get_backoff(x->loader, "foo", &b), 1);
        assert_int_equal(b.error, -ENOENT);
        assert_int_equal(b.failures, 2);
        assert_int_equal(module_loader_get_backoff(x->loader, "bar", &b), 1);
        assert_int_equal(b.error, -EPERM);
        assert_int_equal(b.failures, 1);

        /* bar's window ends first; its success leaves foo's failures alone. */
        x->fake.now += 1 * SEC;
        load_expect(x, "bar", 0, true, "bar");
        load_expect(x, "foo", -ENOENT, false, "foo");
        x->fake.now += 1 * SEC;
        x->fake.result = -ENOENT;
        load_expect(x, "foo", -ENOENT, true, "foo");
        assert_int_equal(module_loader_get_backoff(x->loader, "foo", &b), 1);
        assert_int_equal(b.failures, 3);
}

static void test_reason(void **state) {
        Fixture *x = *state;
        _cleanup_free_ char *reason = NULL;
        char *none = (char *)"x";

        assert_int_equal(module_loader_backoff_reason(x->loader, "foo", &none), 0);
        assert_null(none);

        load_expect(x, "foo", -ENOENT, true, "foo");
        x->fake.now += 1 * SEC;
        load_expect(x, "foo", -ENOENT, true, "foo");
        x->fake.now += SEC / 2; /* 1.5 s left: rounded up */
        assert_int_equal(module_loader_backoff_reason(x->loader, "foo", &reason), 1);
        assert_string_equal(
                reason, "not retrying until 2 s from now (2 failures in a row; Reload() retries at once)");
        free(reason);

        x->fake.now += 3 * SEC / 2 - 1;
        assert_int_equal(module_loader_backoff_reason(x->loader, "foo", &reason), 1);
        assert_string_equal(
                reason, "not retrying until 1 s from now (2 failures in a row; Reload() retries at once)");
        free(reason);
        x->fake.now += 1;
        assert_int_equal(module_loader_backoff_reason(x->loader, "foo", &reason), 0);
        assert_null(reason);

        load_expect(x, "bar", -ENOENT, true, "bar");
        assert_int_equal(module_loader_backoff_reason(x->loader, "bar", &reason), 1);
        assert_string_equal(
                reason, "not retrying until 1 s from now (1 failure in a row; Reload() retries at once)");
}

static void test_arguments(void **state) {
        Fixture *x = *state;
        char *m = (char *)"x";

        assert_int_equal(module_loader_load(NULL, &m, x->loader), -EINVAL);
        assert_null(m);
        assert_int_equal(module_loader_load("", NULL, x->loader), -EINVAL);
        assert_int_equal(x->fake.calls, 0);
        assert_int_equal(module_loader_get_backoff(x->loader, "", NULL), -EINVAL);
        assert_int_equal(module_loader_get_backoff(x->loader, NULL, NULL), -EINVAL);
        /* Loading disabled: no loader, nothing held back. */
        assert_int_equal(module_loader_get_backoff(NULL, "foo", NULL), 0);
        assert_int_equal(module_loader_backoff_reason(NULL, "foo", &m), 0);
        assert_null(m);
        assert_null(module_loader_free(NULL));
        /* A result > 0 from the loader is success, 0. */
        x->fake.result = 1;
        load_expect(x, "foo", 0, true, "foo");
}

static void test_bounded(void **state) {
        Fixture *x = *state;
        char name[32];

        /* One more module than remembered, each failing later than the one before: the oldest goes. */
        for (unsigned i = 0; i <= MODULE_LOADER_MAX_ENTRIES; i++) {
                snprintf(name, sizeof(name), "mod%u", i);
                load_expect(x, name, -ENOENT, true, name);
                x->fake.now += 1;
        }
        assert_int_equal(module_loader_get_backoff(x->loader, "mod0", NULL), 0);
        for (unsigned i = 1; i <= MODULE_LOADER_MAX_ENTRIES; i++) {
                snprintf(name, sizeof(name), "mod%u", i);
                assert_int_equal(module_loader_get_backoff(x->loader, name, NULL), 1);
        }
}

/* Loads on one thread (the runner's) while another resets (the loop's): for ASan/TSan and helgrind.
 * No cmocka assertion off the main thread (they longjmp to it): the count of bad results returns. */
static void *hammer_load(void *userdata) {
        Fixture *x = userdata;
        uintptr_t bad = 0;

        for (unsigned i = 0; i < 2000; i++) {
                _cleanup_free_ char *m = NULL;
                int r = module_loader_load(i % 2 ? "foo" : "bar", &m, x->loader);

                if (r != -ENOENT || !m || !streq(m, i % 2 ? "foo" : "bar"))
                        bad++;
        }
        return (void *)bad;
}

static void test_threads(void **state) {
        Fixture *x = *state;
        pthread_t t;
        void *bad = NULL;

        assert_int_equal(pthread_create(&t, NULL, hammer_load, x), 0);
        for (unsigned i = 0; i < 2000; i++) {
                _cleanup_free_ char *reason = NULL;

                module_loader_reset(x->loader);
                assert_true(module_loader_backoff_reason(x->loader, "foo", &reason) >= 0);
        }
        assert_int_equal(pthread_join(t, &bad), 0);
        assert_int_equal((uintptr_t)bad, 0);
        /* Every load either called the loader or was held back: at least the first of each module ran. */
        assert_true(x->fake.calls >= 2);
}

/* No fake loader: module_loader_load_driver(), i.e. libkmod, whose kmod_new() is ours (fails). */
static void test_default_is_libkmod(void **state) {
        _cleanup_(module_loader_freep) ModuleLoader *l = NULL;
        _cleanup_free_ char *m = NULL, *reason = NULL;
        ModuleLoaderBackoff b;
        struct timespec ts;
        uint64_t now;

        (void)state;
        kmod_new_calls = 0;
        assert_int_equal(module_loader_new(NULL, &l), 0);
        assert_int_equal(module_loader_load("hostdevd-test-no-such-driver", &m, l), -ENOMEM);
        assert_int_equal(kmod_new_calls, 1);
        assert_string_equal(m, "hostdevd_test_no_such_driver");
        free(m);

        /* Held back on the real monotonic clock: libkmod is not asked again within the second. */
        assert_int_equal(module_loader_load("hostdevd-test-no-such-driver", &m, l), -ENOMEM);
        assert_int_equal(kmod_new_calls, 1);
        assert_int_equal(module_loader_get_backoff(l, "hostdevd-test-no-such-driver", &b), 1);
        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        now = (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec / 1000;
        assert_true(b.failed_usec <= now && now - b.failed_usec < 60 * SEC);
        assert_int_equal(b.retry_usec, b.failed_usec + 1 * SEC);

        /* Reset: libkmod is asked again at once. */
        module_loader_reset(l);
        assert_int_equal(module_loader_load("hostdevd-test-no-such-driver", NULL, l), -ENOMEM);
        assert_int_equal(kmod_new_calls, 2);
}

static void test_default_loader_with_fake_clock(void **state) {
        _cleanup_(module_loader_freep) ModuleLoader *l = NULL;
        Fake fake = { .now = 5 * SEC };

        (void)state;
        assert_int_equal(pthread_mutex_init(&fake.lock, NULL), 0);
        kmod_new_calls = 0;
        assert_int_equal(
                module_loader_new(&(ModuleLoaderOptions){ .now = fake_now, .now_userdata = &fake }, &l), 0);
        assert_int_equal(module_loader_load("hostdevd-test-no-such-driver", NULL, l), -ENOMEM);
        assert_int_equal(module_loader_load("hostdevd-test-no-such-driver", NULL, l), -ENOMEM);
        assert_int_equal(kmod_new_calls, 1);
        fake.now += 1 * SEC;
        assert_int_equal(module_loader_load("hostdevd-test-no-such-driver", NULL, l), -ENOMEM);
        assert_int_equal(kmod_new_calls, 2);
        pthread_mutex_destroy(&fake.lock);
}

int main(void) {
        /* Every failure logs a warning; keep the test's output to cmocka's lines. */
        log_set_max_level(LOG_ERR);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_backoff_doubles_to_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errno_and_module_remembered, setup, teardown),
                cmocka_unit_test_setup_teardown(test_success_clears, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reset_clears, setup, teardown),
                cmocka_unit_test_setup_teardown(test_modules_independent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reason, setup, teardown),
                cmocka_unit_test_setup_teardown(test_arguments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
                cmocka_unit_test(test_default_is_libkmod),
                cmocka_unit_test(test_default_loader_with_fake_clock),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
