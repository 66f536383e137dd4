/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "module-policy.h"

static void test_modalias(void **state) {
        /* An Intel 82574L as drivers/pci/pci-sysfs.c modalias_show() prints it: upper-case hex. */
        PciDevice d = {
                .vendor_id = 0x8086,
                .device_id = 0x10d3,
                .subsystem_vendor_id = 0x8086,
                .subsystem_device_id = 0xa01f,
                .class_code = 0x020000,
        };
        char s[PCI_MODALIAS_STRING_MAX];

        module_policy_format_modalias(PCI_MODALIAS_PREFIX, &d, s);
        assert_string_equal(s, "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00");
        module_policy_format_modalias(VFIO_PCI_MODALIAS_PREFIX, &d, s);
        assert_string_equal(s, "vfio_pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00");

        /* every field at its widest: the buffer holds it whole */
        d = (PciDevice){
                .vendor_id = 0xffff,
                .device_id = 0xffff,
                .subsystem_vendor_id = 0xffff,
                .subsystem_device_id = 0xffff,
                .class_code = 0xffffff,
        };
        module_policy_format_modalias(VFIO_PCI_MODALIAS_PREFIX, &d, s);
        assert_string_equal(s, "vfio_pci:v0000FFFFd0000FFFFsv0000FFFFsd0000FFFFbcFFscFFiFF");
        assert_int_equal(strlen(s) + 1, PCI_MODALIAS_STRING_MAX);
        /* the prog-if byte is the class code's low byte */
        d.class_code = 0x0c0330;
        module_policy_format_modalias(PCI_MODALIAS_PREFIX, &d, s);
        assert_non_null(strstr(s, "bc0Csc03i30"));
}

static void test_decide(void **state) {
        char *none[] = { NULL };
        char *fakenic[] = { (char *)"fakenic", NULL };
        char *two[] = { (char *)"fakenic", (char *)"fs_other", NULL };
        char *dashed[] = { (char *)"fake-vfio-nic", NULL };
        char *matching[] = { (char *)"fakenic", (char *)"fake_vfio_nic", (char *)"fakeclass", NULL };

        /* vfio-pci, with '-' or '_', whatever the index says */
        assert_int_equal(module_policy_decide("vfio-pci", NULL, NULL), MODULE_VERDICT_VFIO_PCI);
        assert_int_equal(module_policy_decide("vfio_pci", none, none), MODULE_VERDICT_VFIO_PCI);
        assert_int_equal(module_policy_decide("vfio-pci", fakenic, none), MODULE_VERDICT_VFIO_PCI);
        /* near misses of vfio-pci are ordinary names */
        assert_int_equal(module_policy_decide("vfio-pci2", NULL, NULL), MODULE_VERDICT_NOT_FOUND);
        assert_int_equal(module_policy_decide("vfio", NULL, matching), MODULE_VERDICT_NOT_FOUND);
        assert_int_equal(module_policy_decide("VFIO-PCI", NULL, NULL), MODULE_VERDICT_NOT_FOUND);

        /* the name's module matches the function */
        assert_int_equal(module_policy_decide("fakenic", fakenic, matching), MODULE_VERDICT_MATCHES);
        /* '-' and '_' alike on both sides */
        assert_int_equal(module_policy_decide("fake-vfio-nic", dashed, matching), MODULE_VERDICT_MATCHES);
        /* no module of that name */
        assert_int_equal(module_policy_decide("nosuch", NULL, matching), MODULE_VERDICT_NOT_FOUND);
        assert_int_equal(module_policy_decide("nosuch", none, matching), MODULE_VERDICT_NOT_FOUND);
        /* a module that matches nothing of the function */
        assert_int_equal(module_policy_decide("fakenic", fakenic, NULL), MODULE_VERDICT_NO_MATCH);
        assert_int_equal(module_policy_decide("fakenic", fakenic, none), MODULE_VERDICT_NO_MATCH);
        /* the loader tries every module of the name: one that does not match refuses the request */
        assert_int_equal(module_policy_decide("fakenic", two, matching), MODULE_VERDICT_NO_MATCH);

        assert_true(module_verdict_allowed(MODULE_VERDICT_VFIO_PCI));
        assert_true(module_verdict_allowed(MODULE_VERDICT_MATCHES));
        assert_false(module_verdict_allowed(MODULE_VERDICT_NOT_FOUND));
        assert_false(module_verdict_allowed(MODULE_VERDICT_NO_MATCH));
        for (int v = 0; v < _MODULE_VERDICT_MAX; v++)
                assert_non_null(module_verdict_to_string(v));
        assert_null(module_verdict_to_string(_MODULE_VERDICT_MAX));
        assert_null(module_verdict_to_string(-1));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_modalias),
                cmocka_unit_test(test_decide),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
