/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The agent's module loading: the gate (daemon options, umockdev) and module names. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "macro.h"
#include "module-loader.h"
#include "names.h"

/* Module loading: on by default, off with --no-load-modules, and always off under umockdev (its /sys is
 * fake, the kernel is this machine's). Only the gate: nothing here loads a module. */
static void test_module_loading_gate(void **state) {
        const char *saved = getenv(ENV_UMOCKDEV_DIR);
        _cleanup_free_ char *keep = saved ? strdup(saved) : NULL;
        DaemonOptions o = {};
        Daemon *d = NULL;

        assert_int_equal(unsetenv(ENV_UMOCKDEV_DIR), 0);
        assert_int_equal(daemon_new(NULL, &d), 0);
        assert_true(d->load_modules);
        d = daemon_free(d);
        o.no_load_modules = true;
        assert_int_equal(daemon_new(&o, &d), 0);
        assert_false(d->load_modules);
        d = daemon_free(d);

        assert_int_equal(setenv(ENV_UMOCKDEV_DIR, "/tmp/umockdev.test", 1), 0);
        o.no_load_modules = false;
        assert_int_equal(daemon_new(&o, &d), 0);
        assert_false(d->load_modules);
        d = daemon_free(d);

        if (keep)
                assert_int_equal(setenv(ENV_UMOCKDEV_DIR, keep, 1), 0);
        else
                assert_int_equal(unsetenv(ENV_UMOCKDEV_DIR), 0);
}

static void test_module_name(void **state) {
        _cleanup_free_ char *a = module_loader_module_name("vfio-pci");
        _cleanup_free_ char *b = module_loader_module_name("mlx5_vfio_pci");

        assert_string_equal(a, "vfio_pci");
        assert_string_equal(b, "mlx5_vfio_pci");
        assert_null(module_loader_module_name(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_module_name),
                cmocka_unit_test(test_module_loading_gate),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
