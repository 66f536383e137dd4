/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The agent's pure parts: the module loading gate and module names, the hot-plug guard of a desired state.
 */

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
#include "desired-state.h"
#include "early-bind.h"
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

/* early_bind_guard(): the guard a desired state needs, from rules written as files (Manager.HotplugGuard).
 */
static HotplugGuard guard_of(const char *const *files) {
        char dir[] = "/tmp/test-guard.XXXXXX";
        DesiredState *s;
        HotplugGuard g;

        assert_non_null(mkdtemp(dir));
        s = calloc(1, sizeof(DesiredState));
        assert_non_null(s);
        for (size_t i = 0; files[i]; i++) {
                _cleanup_free_ char *path = NULL;
                FILE *f;

                assert_true(asprintf(&path, "%s/%02zu.conf", dir, i) > 0);
                f = fopen(path, "we");
                assert_non_null(f);
                assert_true(fputs(files[i], f) >= 0);
                assert_int_equal(fclose(f), 0);
                assert_int_equal(desired_state_add_file(s, path), 1);
                assert_int_equal(unlink(path), 0);
        }
        assert_int_equal(rmdir(dir), 0);
        g = early_bind_guard(s);
        desired_state_free(s);
        return g;
}

#define NIC_VFIO "[Match]\nVendor=8086\nDevice=10d3\n\n[Device]\nDriver=vfio-pci\n"
#define NIC_HOST "[Match]\nVendor=8086\nDevice=10d3\n\n[Device]\nDriver=host\n"
#define NIC_NONE "[Match]\nAddress=0000:01:00.0\n\n[Device]\nDriver=none\n"
#define PF_VFIO "[Match]\nAddress=0000:03:00.0\n\n[SRIOV]\nNumVFs=4\nVFDriver=vfio-pci\n"
#define PF_HOSTVF "[Match]\nAddress=0000:03:00.0\n\n[SRIOV]\nNumVFs=4\nVFDriver=host\n"
#define PF_ZERO "[Match]\nAddress=0000:03:00.0\n\n[SRIOV]\nNumVFs=0\nVFDriver=vfio-pci\n"
#define VF1_VFIO "[Match]\nPF=0000:03:00.0\nVFIndex=1\n\n[Device]\nDriver=vfio-pci\n"
#define VF_OTHER "[Match]\nPF=0000:04:00.0\n\n[Device]\nDriver=vfio-pci\n"

static void test_hotplug_guard(void **state) {
        assert_string_equal(hotplug_guard_to_string(HOTPLUG_GUARD_NONE), "none");
        assert_string_equal(hotplug_guard_to_string(HOTPLUG_GUARD_SRIOV_AUTOPROBE), "sriov-autoprobe");
        assert_string_equal(hotplug_guard_to_string(HOTPLUG_GUARD_DRIVER_OVERRIDE), "driver-override");
        assert_null(hotplug_guard_to_string(_HOTPLUG_GUARD_MAX));

        /* Nothing claims a function: the host keeps the kernel's own probe. */
        assert_int_equal(early_bind_guard(NULL), HOTPLUG_GUARD_NONE);
        assert_int_equal(guard_of((const char *[]){ NULL }), HOTPLUG_GUARD_NONE);
        assert_int_equal(
                guard_of((const char *[]){ NIC_HOST, PF_HOSTVF, PF_ZERO, NULL }), HOTPLUG_GUARD_NONE);
        /* Only VFs hostdevd creates with sriov_drivers_autoprobe 0, per PF or per VF index. */
        assert_int_equal(guard_of((const char *[]){ PF_VFIO, NULL }), HOTPLUG_GUARD_SRIOV_AUTOPROBE);
        assert_int_equal(
                guard_of((const char *[]){ NIC_HOST, PF_VFIO, VF1_VFIO, NULL }),
                HOTPLUG_GUARD_SRIOV_AUTOPROBE);
        /* A function that may be hot-added, or VFs of a PF whose autoprobe hostdevd leaves on: the race. */
        assert_int_equal(guard_of((const char *[]){ NIC_VFIO, NULL }), HOTPLUG_GUARD_DRIVER_OVERRIDE);
        assert_int_equal(
                guard_of((const char *[]){ PF_VFIO, NIC_NONE, NULL }), HOTPLUG_GUARD_DRIVER_OVERRIDE);
        assert_int_equal(
                guard_of((const char *[]){ PF_VFIO, VF_OTHER, NULL }), HOTPLUG_GUARD_DRIVER_OVERRIDE);
        assert_int_equal(
                guard_of((const char *[]){ PF_HOSTVF, VF1_VFIO, NULL }), HOTPLUG_GUARD_DRIVER_OVERRIDE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_module_name),
                cmocka_unit_test(test_hotplug_guard),
                cmocka_unit_test(test_module_loading_gate),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
