/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mdev.h"
#include "object-path.h"

static void test_pci_roundtrip(void **state) {
        static const struct {
                const char *address, *element;
        } cases[] = {
                { "0000:41:00.0", "pci_0000_41_00_0" },
                { "0000:00:1f.7", "pci_0000_00_1f_7" },
                { "10000:e1:00.3", "pci_10000_e1_00_3" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *e = object_path_element_from_pci_address(cases[i].address), *a = NULL, *p;
                char buf[64], small[24];

                assert_non_null(e);
                assert_string_equal(e, cases[i].element);
                assert_int_equal(object_path_element_to_pci_address(e, &a), 0);
                assert_string_equal(a, cases[i].address);
                p = object_path_from_pci_address(cases[i].address);
                assert_non_null(p);
                assert_string_equal(p + strlen("/org/hostdevd1/devices/"), cases[i].element);
                assert_memory_equal(p, "/org/hostdevd1/devices/", strlen("/org/hostdevd1/devices/"));
                /* The unchecked formatter of the GetManagedObjects walk writes the same path. */
                assert_ptr_equal(object_path_format_pci_address(cases[i].address, buf, sizeof(buf)), buf);
                assert_string_equal(buf, p);
                assert_null(object_path_format_pci_address(cases[i].address, small, sizeof(small)));
                assert_null(object_path_format_pci_address(cases[i].address, buf, strlen(p)));
                assert_ptr_equal(object_path_format_pci_address(cases[i].address, buf, strlen(p) + 1), buf);
                assert_string_equal(buf, p);
                free(e);
                free(a);
                free(p);
        }
}

static void test_pci_reject(void **state) {
        char *a = (char *)0x1;

        /* Only canonical addresses have an object. */
        assert_null(object_path_element_from_pci_address("41:00.0"));
        assert_null(object_path_element_from_pci_address("0000:AB:00.0"));
        assert_null(object_path_element_from_pci_address("0000:41:20.0"));
        assert_null(object_path_element_from_pci_address(""));
        assert_null(object_path_element_from_pci_address(NULL));
        assert_null(object_path_from_pci_address("garbage"));

        assert_int_equal(object_path_element_to_pci_address("pci_0000_AB_00_0", &a), -EINVAL);
        assert_int_equal(object_path_element_to_pci_address("pci_41_00_0", &a), -EINVAL);
        assert_int_equal(object_path_element_to_pci_address("pci_0000_41_00_0_", &a), -EINVAL);
        assert_int_equal(object_path_element_to_pci_address("pci_0000_41_20_0", &a), -EINVAL);
        assert_int_equal(object_path_element_to_pci_address("pcx_0000_41_00_0", &a), -EINVAL);
        assert_int_equal(object_path_element_to_pci_address("pci_0000:41:00.0", &a), -EINVAL);
        assert_int_equal(object_path_element_to_pci_address("pci_", &a), -EINVAL);
        /* Found by tests/fuzz/fuzz-identifiers: ':' or '.' where the encoding has '_' made a second element
         * for the same function. */
        assert_int_equal(object_path_element_to_pci_address("pci_0000_44:00_0", &a), -EINVAL);
        assert_int_equal(object_path_element_to_pci_address("pci_0000:44_00_0", &a), -EINVAL);
        assert_int_equal(object_path_element_to_pci_address("pci_0000_44_00.0_0", &a), -EINVAL);
        assert_int_equal(
                object_path_element_to_pci_address("mdev_83b8f4f2_509f_382f_3c1e_e6bfe0fa1001", &a),
                -EINVAL);
        assert_ptr_equal(a, (char *)0x1); /* untouched on failure */
}

static void test_mdev_roundtrip(void **state) {
        const char *uuid = "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001";
        char *e = object_path_element_from_mdev_uuid(uuid), *u = NULL, *p;

        assert_non_null(e);
        assert_string_equal(e, "mdev_83b8f4f2_509f_382f_3c1e_e6bfe0fa1001");
        assert_int_equal(object_path_element_to_mdev_uuid(e, &u), 0);
        assert_string_equal(u, uuid);
        p = object_path_from_mdev_uuid(uuid);
        assert_string_equal(p, "/org/hostdevd1/mdevs/mdev_83b8f4f2_509f_382f_3c1e_e6bfe0fa1001");
        free(e);
        free(u);
        free(p);
}

static void test_mdev_reject(void **state) {
        char *u = NULL;

        assert_null(object_path_element_from_mdev_uuid("83B8F4F2-509F-382F-3C1E-E6BFE0FA1001"));
        assert_null(object_path_element_from_mdev_uuid("83b8f4f2509f382f3c1ee6bfe0fa1001"));
        assert_null(object_path_element_from_mdev_uuid("not-a-uuid"));
        assert_null(object_path_from_mdev_uuid(NULL));
        assert_int_equal(
                object_path_element_to_mdev_uuid("mdev_83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", &u), -EINVAL);
        assert_int_equal(
                object_path_element_to_mdev_uuid("mdev_83B8F4F2_509F_382F_3C1E_E6BFE0FA1001", &u), -EINVAL);
        assert_int_equal(object_path_element_to_mdev_uuid("mdev_83b8f4f2_509f_382f_3c1e", &u), -EINVAL);
        assert_int_equal(object_path_element_to_mdev_uuid("pci_0000_41_00_0", &u), -EINVAL);
        assert_null(u);
}

static void test_uuid_valid(void **state) {
        assert_true(mdev_uuid_is_valid("83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"));
        assert_true(mdev_uuid_is_valid("00000000-0000-0000-0000-000000000000"));
        assert_false(mdev_uuid_is_valid("83B8F4F2-509F-382F-3C1E-E6BFE0FA1001")); /* not canonical */
        assert_false(mdev_uuid_is_valid("83b8f4f2-509f-382f-3c1e-e6bfe0fa100"));
        assert_false(mdev_uuid_is_valid("83b8f4f2-509f-382f-3c1e-e6bfe0fa10011"));
        assert_false(mdev_uuid_is_valid("83b8f4f2_509f_382f_3c1e_e6bfe0fa1001"));
        assert_false(mdev_uuid_is_valid("83b8f4f2-509f-382f-3c1e-e6bfe0fa100g"));
        assert_false(mdev_uuid_is_valid(""));
        assert_false(mdev_uuid_is_valid(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pci_roundtrip),  cmocka_unit_test(test_pci_reject),
                cmocka_unit_test(test_mdev_roundtrip), cmocka_unit_test(test_mdev_reject),
                cmocka_unit_test(test_uuid_valid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
