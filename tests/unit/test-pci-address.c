/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pci-address.h"

static void check_parse(
        const char *s, uint32_t domain, uint8_t bus, uint8_t slot, uint8_t function, const char *canonical) {
        char buf[PCI_ADDRESS_STRING_MAX];
        PciAddress a = {};

        assert_int_equal(pci_address_from_string(s, &a), 0);
        assert_int_equal(a.domain, domain);
        assert_int_equal(a.bus, bus);
        assert_int_equal(a.slot, slot);
        assert_int_equal(a.function, function);
        assert_string_equal(pci_address_format(&a, buf), canonical);
        assert_true(pci_address_is_valid(s));
}

static void check_reject(const char *s) {
        PciAddress a = { .domain = 0xdead, .bus = 1, .slot = 2, .function = 3 };

        assert_int_equal(pci_address_from_string(s, &a), -EINVAL);
        /* ret written only on success */
        assert_int_equal(a.domain, 0xdead);
        assert_int_equal(a.bus, 1);
        assert_false(pci_address_is_valid(s));
}

static void test_parse_good(void **state) {
        check_parse("0000:41:00.0", 0, 0x41, 0, 0, "0000:41:00.0");
        check_parse("0000:00:1f.7", 0, 0, 0x1f, 7, "0000:00:1f.7");
        /* short form: domain 0 */
        check_parse("41:00.1", 0, 0x41, 0, 1, "0000:41:00.1");
        /* uppercase hex */
        check_parse("0000:AB:1F.3", 0, 0xab, 0x1f, 3, "0000:ab:1f.3");
        /* Intel VMD domains are 0x10000+ */
        check_parse("10000:e1:00.0", 0x10000, 0xe1, 0, 0, "10000:e1:00.0");
        check_parse("ffffffff:ff:1f.7", 0xffffffffu, 0xff, 0x1f, 7, "ffffffff:ff:1f.7");
}

static void test_parse_bad(void **state) {
        check_reject("");
        check_reject("0000:41:20.0"); /* slot 0x20 > 0x1f */
        check_reject("0000:41:00.8"); /* function 8 */
        check_reject("0000:41:00.0\n"); /* trailing garbage */
        check_reject("0000:41:00.0x");
        check_reject("0000:41:00.");
        check_reject("000:41:00.0"); /* domain too short */
        check_reject("100000000:41:00.0"); /* domain 9 digits */
        check_reject("0000:4:00.0");
        check_reject("0000:041:00.0");
        check_reject("0000:41:000.0");
        check_reject("0000:41:00.00");
        check_reject("0000:g1:00.0");
        check_reject("0000-41-00.0");
        check_reject(" 0000:41:00.0");
        check_reject("0000:41:00:0");
        assert_false(pci_address_is_valid(NULL));
}

static void test_compare(void **state) {
        PciAddress a, b;

        assert_int_equal(pci_address_from_string("0000:41:00.0", &a), 0);
        assert_int_equal(pci_address_from_string("0000:41:00.1", &b), 0);
        assert_true(pci_address_compare(&a, &b) < 0);
        assert_true(pci_address_compare(&b, &a) > 0);
        assert_int_equal(pci_address_compare(&a, &a), 0);
        assert_int_equal(pci_address_from_string("10000:00:00.0", &b), 0);
        assert_true(pci_address_compare(&a, &b) < 0);
        assert_int_equal(pci_address_from_string("0000:40:1f.7", &b), 0);
        assert_true(pci_address_compare(&a, &b) > 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_good),
                cmocka_unit_test(test_parse_bad),
                cmocka_unit_test(test_compare),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
