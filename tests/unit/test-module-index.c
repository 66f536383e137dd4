/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * agent/module-index.c's libkmod lookups on the fixture index of make-module-index.sh
 * ($HOSTDEVD_MODULES_DIR, set by meson): fake modules whose only content is their aliases.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "module-index.h"
#include "module-policy.h"
#include "strv.h"

static const PciDevice nic = {
        .address = "0000:03:00.0",
        .vendor_id = 0x8086,
        .device_id = 0x10d3,
        .subsystem_vendor_id = 0x8086,
        .subsystem_device_id = 0xa01f,
        .class_code = 0x020000,
};

static const PciDevice gpu = {
        .address = "0000:01:00.0",
        .vendor_id = 0x10de,
        .device_id = 0x2204,
        .subsystem_vendor_id = 0x10de,
        .subsystem_device_id = 0x1454,
        .class_code = 0x030000,
};

static void check_lookup(const char *name, const char *const *want) {
        _cleanup_strv_free_ char **got = NULL;
        size_t n = 0;

        assert_int_equal(module_index_lookup(name, &got), 0);
        for (; want && want[n]; n++)
                assert_true(strv_contains(got, want[n]));
        assert_int_equal(strv_length(got), n);
}

static void test_fixture(void **state) {
        /* the fixture, not this machine's /lib/modules */
        assert_non_null(module_index_dir());
        assert_non_null(strstr(module_index_dir(), "hostdevd-fixture"));
}

static void test_lookup_names(void **state) {
        check_lookup("fakenic", (const char *const[]){ "fakenic", NULL });
        check_lookup("fake-vfio-nic", (const char *const[]){ "fake_vfio_nic", NULL });
        check_lookup("notpci", (const char *const[]){ "notpci", NULL });
        /* by one of its aliases, as modprobe(8) resolves names */
        check_lookup("fs-notpci", (const char *const[]){ "notpci", NULL });
        check_lookup("nosuch", NULL);
}

static void test_lookup_modalias(void **state) {
        /* every module whose alias pattern matches, not only the vendor/device one */
        check_lookup(
                "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00",
                (const char *const[]){ "fakenic", "fakeclass", NULL });
        check_lookup(
                "vfio_pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00",
                (const char *const[]){ "fake_vfio_nic", "vfio_pci", NULL });
        check_lookup(
                "pci:v000010DEd00002204sv000010DEsd00001454bc03sc00i00",
                (const char *const[]){ "fakegpu", NULL });
        check_lookup("pci:v00001234d00005678sv00000000sd00000000bcFFsc00i00", NULL);
}

static void test_lookup_arguments(void **state) {
        char **l = NULL;

        assert_int_equal(module_index_lookup("", &l), -EINVAL);
        assert_int_equal(module_index_lookup(NULL, &l), -EINVAL);
        assert_null(l);
}

static void test_check(void **state) {
        /* the function's own driver, by vendor/device and by class */
        assert_int_equal(module_index_check(&nic, "fakenic"), MODULE_VERDICT_MATCHES);
        assert_int_equal(module_index_check(&nic, "fakeclass"), MODULE_VERDICT_MATCHES);
        /* a VFIO variant driver for it, named with '-' */
        assert_int_equal(module_index_check(&nic, "fake-vfio-nic"), MODULE_VERDICT_MATCHES);
        assert_int_equal(module_index_check(&nic, "vfio-pci"), MODULE_VERDICT_VFIO_PCI);
        /* another device's driver, a module that drives no PCI device, a name that is no module */
        assert_int_equal(module_index_check(&nic, "fakegpu"), MODULE_VERDICT_NO_MATCH);
        assert_int_equal(module_index_check(&nic, "notpci"), MODULE_VERDICT_NO_MATCH);
        assert_int_equal(module_index_check(&nic, "fs-notpci"), MODULE_VERDICT_NO_MATCH);
        assert_int_equal(module_index_check(&nic, "nosuch"), MODULE_VERDICT_NOT_FOUND);
        /* and the other way round */
        assert_int_equal(module_index_check(&gpu, "fakegpu"), MODULE_VERDICT_MATCHES);
        assert_int_equal(module_index_check(&gpu, "fakenic"), MODULE_VERDICT_NO_MATCH);
        assert_int_equal(module_index_check(&gpu, "fake_vfio_nic"), MODULE_VERDICT_NO_MATCH);
        assert_int_equal(module_index_check(&gpu, "vfio_pci"), MODULE_VERDICT_VFIO_PCI);
}

static void test_missing_index(void **state) {
        const char *dir = getenv(ENV_HOSTDEVD_MODULES_DIR);
        _cleanup_free_ char *saved = dir ? strdup(dir) : NULL;
        char **l = NULL;

        /* no index at all: nothing is found, so nothing but vfio-pci passes */
        assert_non_null(saved);
        assert_int_equal(setenv(ENV_HOSTDEVD_MODULES_DIR, "/nonexistent/hostdevd-test", 1), 0);
        assert_int_equal(module_index_lookup("fakenic", &l), 0);
        assert_null(l);
        assert_int_equal(module_index_check(&nic, "fakenic"), MODULE_VERDICT_NOT_FOUND);
        assert_int_equal(module_index_check(&nic, "vfio-pci"), MODULE_VERDICT_VFIO_PCI);
        assert_int_equal(setenv(ENV_HOSTDEVD_MODULES_DIR, saved, 1), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fixture),         cmocka_unit_test(test_lookup_names),
                cmocka_unit_test(test_lookup_modalias), cmocka_unit_test(test_lookup_arguments),
                cmocka_unit_test(test_check),           cmocka_unit_test(test_missing_index),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
