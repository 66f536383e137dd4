/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Leases, the pure part (src/lease.h): policies and states, the record's JSON round trip and its
 * rejections, /proc/PID/stat start times (comm with spaces and parentheses), and lease_check() over
 * tables of functions, groups, leases and host-critical entries.
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

#include "lease.h"
#include "macro.h"
#include "strv.h"

static void test_policies(void **state) {
        assert_int_equal(lease_policy_from_string("host"), LEASE_POLICY_HOST);
        assert_int_equal(lease_policy_from_string("keep"), LEASE_POLICY_KEEP);
        assert_int_equal(lease_policy_from_string("remove"), LEASE_POLICY_REMOVE);
        assert_int_equal(lease_policy_from_string("Host"), -EINVAL);
        assert_int_equal(lease_policy_from_string(NULL), -EINVAL);
        assert_true(lease_policy_applies_to_function(LEASE_POLICY_HOST));
        assert_true(lease_policy_applies_to_function(LEASE_POLICY_KEEP));
        /* remove destroys vGPU instances: never a PCI function */
        assert_false(lease_policy_applies_to_function(LEASE_POLICY_REMOVE));
        for (int s = 0; s < _LEASE_STATE_MAX; s++)
                assert_int_equal(lease_state_from_string(lease_state_to_string(s)), s);
        assert_null(lease_state_to_string(_LEASE_STATE_MAX));
}

static void test_record_round_trip(void **state) {
        LeaseDevice devices[] = {
                { "0000:04:00.0", LEASE_POLICY_HOST },
                { "0000:04:00.1", LEASE_POLICY_KEEP },
        };
        LeaseRecord rec = {
                .id = 7,
                .pid = 4242,
                .start_time = UINT64_C(123456789012),
                .uid = 1000,
                .since_usec = UINT64_C(1765140000000000),
                .whole_group = true,
                .state = LEASE_STATE_ACTIVE,
                .devices = devices,
                .n_devices = 2,
        };
        _cleanup_(lease_record_freep) LeaseRecord *back = NULL;
        _cleanup_free_ char *text = NULL, *text2 = NULL, *error = NULL, *name = NULL;

        assert_int_equal(lease_record_to_json(&rec, &text), 0);
        assert_int_equal(lease_record_from_json(text, &back, &error), 0);
        assert_null(error);
        assert_true(back->id == 7 && back->pid == 4242 && back->uid == 1000 && back->whole_group);
        assert_true(back->start_time == UINT64_C(123456789012));
        assert_true(back->since_usec == UINT64_C(1765140000000000));
        assert_int_equal(back->state, LEASE_STATE_ACTIVE);
        assert_int_equal(back->n_devices, 2);
        assert_string_equal(back->devices[1].address, "0000:04:00.1");
        assert_int_equal(back->devices[1].policy, LEASE_POLICY_KEEP);
        assert_non_null(lease_record_get_device(back, "0000:04:00.0"));
        assert_null(lease_record_get_device(back, "0000:04:00.2"));
        assert_int_equal(lease_record_to_json(back, &text2), 0);
        assert_string_equal(text, text2);
        assert_int_equal(lease_record_file_name(7, &name), 0);
        assert_string_equal(name, "7.json");

        /* unsorted or non-canonical records are not written */
        devices[0].address[3] = 'A';
        free(text);
        text = NULL;
        assert_int_equal(lease_record_to_json(&rec, &text), -EINVAL);
}

static void test_record_rejected(void **state) {
        static const struct {
                const char *json;
                const char *error;
        } table[] = {
                { "", "not JSON" },
                { "[]", "expected a JSON object" },
                { "{}", "\"version\" is missing" },
                { "{\"version\":2}", "not supported" },
                { "{\"version\":1,\"id\":0}", "\"id\" is 0" },
                { "{\"version\":1,\"id\":1,\"pid\":-5}", "\"pid\" is out of range" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"gone\",\"devices\":[]}",
                  "'gone' is unknown" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[]}",
                  "has 0 entries" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[{\"address\":\"04:00.0\","
                  "\"policy\":\"host\"}]}",
                  "not a canonical PCI address" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[{\"address\":\"0000:04:00.0\","
                  "\"policy\":\"remove-all\"}]}",
                  "policy 'remove-all' is unknown" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[{\"address\":\"0000:04:00.0\","
                  "\"policy\":\"host\"},{\"address\":\"0000:04:00.0\",\"policy\":\"keep\"}]}",
                  "listed twice" },
                { "{\"version\":1} x", "not JSON" },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_(lease_record_freep) LeaseRecord *rec = NULL;
                _cleanup_free_ char *error = NULL;

                assert_int_equal(lease_record_from_json(table[i].json, &rec, &error), -EBADMSG);
                assert_null(rec);
                assert_non_null(error);
                if (!strstr(error, table[i].error))
                        fail_msg("%zu: '%s' does not say '%s'", i, error, table[i].error);
        }
}

static void test_stat_start_time(void **state) {
        uint64_t t = 0, t2 = 1;

        assert_int_equal(
                lease_parse_stat_start_time(
                        "42 (qemu) ) x) S 1 42 42 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 3 0 987654 1000 200 "
                        "18446744073709551615\n",
                        &t),
                0);
        assert_true(t == 987654);
        assert_int_equal(lease_parse_stat_start_time("42 (x) S 1 2 3", &t), -EBADMSG);
        assert_int_equal(lease_parse_stat_start_time("no parenthesis", &t), -EBADMSG);
        assert_int_equal(
                lease_parse_stat_start_time("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12z 0\n", &t),
                -EBADMSG);

        /* this very process: a start time, the same on every read */
        assert_int_equal(lease_read_start_time(NULL, getpid(), &t), 0);
        assert_int_equal(lease_read_start_time(NULL, getpid(), &t2), 0);
        assert_true(t == t2);
        assert_int_equal(lease_read_start_time(NULL, 0, &t), -EINVAL);
        assert_int_equal(lease_read_start_time("/nonexistent-proc", 1, &t), -ESRCH);
}

/* ---- lease_check() tables ---- */

static PciDevice fn(const char *address, int32_t group, const char *driver, uint32_t class_code) {
        PciDevice d = { .iommu_group = group, .driver = (char *)driver, .class_code = class_code };

        memcpy(d.address, address, strlen(address) + 1);
        return d;
}

#define NIC 0x020000u
#define BRIDGE 0x060400u

static void test_check_table(void **state) {
        PciDevice devs[] = {
                fn("0000:03:00.0", 10, "e1000e", NIC), /* alone */
                fn("0000:04:00.0", 11, "e1000e", NIC), /* pair */
                fn("0000:04:00.1", 11, "e1000e", NIC),
                fn("0000:05:00.0", 12, "igb", NIC), /* with a driverless peer and a bridge */
                fn("0000:05:00.1", 12, NULL, NIC),
                fn("0000:05:01.0", 12, "pcieport", BRIDGE),
                fn("0000:06:00.0", -1, "e1000e", NIC), /* no IOMMU group */
                fn("0000:00:1f.2", 13, "ahci", 0x010601u), /* host-critical */
                fn("0000:07:00.0", 14, "vfio-pci", NIC), /* leased */
                fn("0000:08:00.0", 15, "e1000e", NIC), /* group peer of a leased driverless one */
                fn("0000:08:00.1", 15, NULL, NIC),
        };
        const PciDevice *ptrs[ELEMENTSOF(devs)];
        CriticalDevice critical[] = { { "0000:00:1f.2", "controller of / (/dev/sda2, ext4)" } };
        LeasedFunction leased[] = {
                { "0000:07:00.0", 3, 4242 },
                { "0000:08:00.1", 4, 4343 },
        };
        static const struct {
                const char *asked;
                bool whole_group;
                LeaseCheckVerdict verdict;
                const char *expect; /* members (space-joined), or a part of the reason */
        } table[] = {
                { "0000:03:00.0", false, LEASE_CHECK_OK, "0000:03:00.0" },
                { "0000:04:00.0", false, LEASE_CHECK_REFUSED,
                  "0000:04:00.1 is on e1000e and not in the lease" },
                { "0000:04:00.1 0000:04:00.0", false, LEASE_CHECK_OK, "0000:04:00.0 0000:04:00.1" },
                { "0000:04:00.0", true, LEASE_CHECK_OK, "0000:04:00.0 0000:04:00.1" },
                { "0000:05:00.0", false, LEASE_CHECK_OK, "0000:05:00.0" },
                { "0000:05:00.0", true, LEASE_CHECK_OK, "0000:05:00.0 0000:05:00.1" },
                { "0000:05:01.0", false, LEASE_CHECK_REFUSED, "is a PCI bridge" },
                { "0000:06:00.0", false, LEASE_CHECK_REFUSED, "in no IOMMU group" },
                { "0000:00:1f.2", false, LEASE_CHECK_REFUSED, "host-critical: controller of /" },
                { "0000:07:00.0", false, LEASE_CHECK_LEASED, "leased to pid 4242 (lease 3)" },
                { "0000:08:00.0", false, LEASE_CHECK_LEASED, "leased to pid 4343 (lease 4)" },
                { "0000:08:00.0", true, LEASE_CHECK_LEASED, "(IOMMU group peer of 0000:08:00.0) is leased" },
                { "0000:09:00.0", false, LEASE_CHECK_NOT_FOUND, "No PCI function '0000:09:00.0'" },
                { "0000:03:00.0 0000:07:00.0", false, LEASE_CHECK_LEASED, "0000:07:00.0 is leased" },
        };

        for (size_t i = 0; i < ELEMENTSOF(devs); i++)
                ptrs[i] = &devs[i];

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_strv_free_ char **asked = NULL, **members = NULL;
                _cleanup_free_ char *reason = NULL, *joined = NULL;
                LeaseCheckVerdict v;
                LeaseCheckInput in;

                assert_int_equal(strv_split(table[i].asked, " ", &asked), 0);
                in = (LeaseCheckInput){
                        .addresses = asked,
                        .whole_group = table[i].whole_group,
                        .devices = ptrs,
                        .n_devices = ELEMENTSOF(ptrs),
                        .critical = critical,
                        .n_critical = ELEMENTSOF(critical),
                        .leased = leased,
                        .n_leased = ELEMENTSOF(leased),
                };
                assert_int_equal(lease_check(&in, &v, &members, &reason), 0);
                if (v != table[i].verdict)
                        fail_msg(
                                "%zu (%s): verdict %d, expected %d (%s)", i, table[i].asked, v,
                                table[i].verdict, strna(reason));
                if (v == LEASE_CHECK_OK) {
                        joined = strv_join(members, " ");
                        assert_non_null(joined);
                        assert_null(reason);
                        if (!streq(joined, table[i].expect))
                                fail_msg("%zu: members '%s', expected '%s'", i, joined, table[i].expect);
                } else if (!reason || !strstr(reason, table[i].expect))
                        fail_msg("%zu: reason '%s' does not say '%s'", i, strna(reason), table[i].expect);
        }
}

static void test_check_bounds(void **state) {
        _cleanup_strv_free_ char **members = NULL;
        _cleanup_free_ char *reason = NULL;
        LeaseCheckVerdict v;
        LeaseCheckInput in = {};

        assert_int_equal(lease_check(&in, &v, &members, &reason), 0);
        assert_int_equal(v, LEASE_CHECK_REFUSED);
        assert_non_null(strstr(reason, "1 to 64 functions"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policies),        cmocka_unit_test(test_record_round_trip),
                cmocka_unit_test(test_record_rejected), cmocka_unit_test(test_stat_start_time),
                cmocka_unit_test(test_check_table),     cmocka_unit_test(test_check_bounds),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
