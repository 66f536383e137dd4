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

static void test_mdev_policies(void **state) {
        static const struct {
                const char *name;
                bool function, mdev;
        } table[] = {
                { "host", true, false },
                { "keep", true, true },
                { "remove", false, true },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                LeasePolicy p = lease_policy_from_string(table[i].name);

                assert_true(p >= 0);
                assert_int_equal(lease_policy_applies_to_function(p), table[i].function);
                assert_int_equal(lease_policy_applies_to_mdev(p), table[i].mdev);
        }
        assert_false(lease_policy_applies_to_mdev(_LEASE_POLICY_INVALID));
}

/* A lease of two mdevs and no function: written, read back the same, sorted by UUID. */
static void test_record_mdevs_round_trip(void **state) {
        LeaseMdev mdevs[] = {
                { .uuid = "f0000000-0000-4000-8000-000000000002",
                  .parent = (char *)"0000:41:00.0",
                  .type = (char *)"nvidia-222",
                  .policy = LEASE_POLICY_KEEP },
                { .uuid = "10000000-0000-4000-8000-000000000001",
                  .parent = (char *)"mtty",
                  .type = (char *)"mtty-2",
                  .policy = LEASE_POLICY_REMOVE },
        };
        LeaseRecord rec = {
                .id = 3,
                .pid = 77,
                .start_time = 5,
                .uid = 0,
                .since_usec = 9,
                .state = LEASE_STATE_ACTIVE,
                .mdevs = mdevs,
                .n_mdevs = 2,
        };
        _cleanup_(lease_record_freep) LeaseRecord *back = NULL;
        _cleanup_free_ char *text = NULL, *text2 = NULL, *error = NULL;

        /* unsorted: refused as a record never looks */
        assert_int_equal(lease_record_to_json(&rec, &text), -EINVAL);
        mdevs[0] = (LeaseMdev){ .uuid = "10000000-0000-4000-8000-000000000001",
                                .parent = (char *)"mtty",
                                .type = (char *)"mtty-2",
                                .policy = LEASE_POLICY_REMOVE };
        mdevs[1] = (LeaseMdev){ .uuid = "f0000000-0000-4000-8000-000000000002",
                                .parent = (char *)"0000:41:00.0",
                                .type = (char *)"nvidia-222",
                                .policy = LEASE_POLICY_KEEP };
        /* "host" is no mdev policy */
        mdevs[1].policy = LEASE_POLICY_HOST;
        assert_int_equal(lease_record_to_json(&rec, &text), -EINVAL);
        mdevs[1].policy = LEASE_POLICY_KEEP;
        assert_int_equal(lease_record_to_json(&rec, &text), 0);
        assert_non_null(strstr(text, "\"mdevs\""));
        assert_int_equal(lease_record_from_json(text, &back, &error), 0);
        assert_int_equal(back->n_devices, 0);
        assert_int_equal(back->n_mdevs, 2);
        assert_string_equal(back->mdevs[0].uuid, "10000000-0000-4000-8000-000000000001");
        assert_string_equal(back->mdevs[0].parent, "mtty");
        assert_string_equal(back->mdevs[0].type, "mtty-2");
        assert_int_equal(back->mdevs[0].policy, LEASE_POLICY_REMOVE);
        assert_string_equal(back->mdevs[1].parent, "0000:41:00.0");
        assert_int_equal(back->mdevs[1].policy, LEASE_POLICY_KEEP);
        assert_ptr_equal(
                lease_record_get_mdev(back, "f0000000-0000-4000-8000-000000000002"), &back->mdevs[1]);
        assert_null(lease_record_get_mdev(back, "f0000000-0000-4000-8000-000000000003"));
        assert_int_equal(lease_record_to_json(back, &text2), 0);
        assert_string_equal(text, text2);
}

/* ---- vGPU/mdev placement ---- */

static MdevType mtty_types[] = {
        { .id = (char *)"mtty-1", .name = (char *)"Single port serial", .available_instances = 2 },
        { .id = (char *)"mtty-2", .name = (char *)"Dual port serial", .available_instances = 1 },
};
static MdevType mtty2_types[] = {
        { .id = (char *)"mtty-1", .name = (char *)"Single port serial", .available_instances = 1 },
};
static MdevType t4_types[] = {
        { .id = (char *)"nvidia-222", .name = (char *)"GRID T4-1B", .available_instances = 4 },
        { .id = (char *)"nvidia-223", .name = (char *)"GRID T4-2B", .available_instances = 2 },
};
static const MdevParent mtty = { .name = (char *)"mtty", .types = mtty_types, .n_types = 2 };
static const MdevParent mtty2 = { .name = (char *)"mtty2", .types = mtty2_types, .n_types = 1 };
static const MdevParent t4 = {
        .name = (char *)"0000:41:00.0", .is_pci = true, .types = t4_types, .n_types = 2
};
static const PciDevice t4_fn = { .address = "0000:41:00.0", .vendor_id = 0x10de };

typedef struct MdevCase {
        const char *what;
        LeaseMdevAsk asks[3];
        size_t n_asks;
        const Mdev *existing; /* one existing mdev or NULL */
        LeaseMdevUse pending; /* one pending instance (parent NULL: none) */
        LeaseCheckVerdict verdict;
        const char *parents[3]; /* OK: where each went */
        const char *reason; /* otherwise: a part of the reason */
} MdevCase;

static void test_mdev_check_table(void **state) {
        static const Mdev t4_other = { .uuid = "20000000-0000-4000-8000-000000000000",
                                       .type_id = (char *)"nvidia-223",
                                       .parent = (char *)"0000:41:00.0",
                                       .parent_is_pci = true,
                                       .iommu_group = -1 };
        static const MdevCase table[] = {
                { "by id, any parent: the most left (mtty: 2 vs mtty2: 1)",
                  { { "mtty-1", NULL } },
                  1,
                  NULL,
                  { NULL, NULL },
                  LEASE_CHECK_OK,
                  { "mtty" },
                  NULL },
                { "by name",
                  { { "Dual port serial", "" } },
                  1,
                  NULL,
                  { NULL, NULL },
                  LEASE_CHECK_OK,
                  { "mtty" },
                  NULL },
                { "spread over parents: mtty 2, then 1 left each, tie by name",
                  { { "mtty-1", NULL }, { "mtty-1", NULL }, { "mtty-1", NULL } },
                  3,
                  NULL,
                  { NULL, NULL },
                  LEASE_CHECK_OK,
                  { "mtty", "mtty", "mtty2" },
                  NULL },
                { "named parent",
                  { { "mtty-1", "mtty2" } },
                  1,
                  NULL,
                  { NULL, NULL },
                  LEASE_CHECK_OK,
                  { "mtty2" },
                  NULL },
                { "no such parent",
                  { { "mtty-1", "mtty9" } },
                  1,
                  NULL,
                  { NULL, NULL },
                  LEASE_CHECK_NOT_FOUND,
                  { NULL },
                  "No mdev parent 'mtty9'" },
                { "no such type",
                  { { "mtty-7", NULL } },
                  1,
                  NULL,
                  { NULL, NULL },
                  LEASE_CHECK_NOT_FOUND,
                  { NULL },
                  "No mdev type 'mtty-7' on any parent" },
                { "type not on the named parent",
                  { { "mtty-2", "mtty2" } },
                  1,
                  NULL,
                  { NULL, NULL },
                  LEASE_CHECK_NOT_FOUND,
                  { NULL },
                  "No mdev type 'mtty-2' on parent mtty2" },
                { "no room: the second mtty-2",
                  { { "mtty-2", NULL }, { "mtty-2", NULL } },
                  2,
                  NULL,
                  { NULL, NULL },
                  LEASE_CHECK_REFUSED,
                  { NULL },
                  "No room for another mdev of type 'mtty-2'" },
                { "a pending instance of another lease takes the room",
                  { { "mtty-2", NULL } },
                  1,
                  NULL,
                  { "mtty", "mtty-2" },
                  LEASE_CHECK_REFUSED,
                  { NULL },
                  "available_instances used up" },
                { "a pending instance of another type does not (one type per GPU is NVIDIA's)",
                  { { "mtty-2", NULL } },
                  1,
                  NULL,
                  { "mtty", "mtty-1" },
                  LEASE_CHECK_OK,
                  { "mtty" },
                  NULL },
                { "NVIDIA: another type active on the GPU blocks it",
                  { { "nvidia-222", NULL } },
                  1,
                  &t4_other,
                  { NULL, NULL },
                  LEASE_CHECK_REFUSED,
                  { NULL },
                  "one type per physical GPU" },
                { "NVIDIA: the active type itself is fine",
                  { { "GRID T4-2B", NULL } },
                  1,
                  &t4_other,
                  { NULL, NULL },
                  LEASE_CHECK_OK,
                  { "0000:41:00.0" },
                  NULL },
                { "NVIDIA: an earlier ask of the lease blocks another type",
                  { { "nvidia-222", NULL }, { "nvidia-223", NULL } },
                  2,
                  NULL,
                  { NULL, NULL },
                  LEASE_CHECK_REFUSED,
                  { NULL },
                  "one type per physical GPU" },
                { "NVIDIA: two of one type",
                  { { "nvidia-223", NULL }, { "nvidia-223", NULL } },
                  2,
                  NULL,
                  { NULL, NULL },
                  LEASE_CHECK_OK,
                  { "0000:41:00.0", "0000:41:00.0" },
                  NULL },
        };
        const MdevParent *parents[] = { &mtty, &mtty2, &t4 };
        const PciDevice *devices[] = { &t4_fn };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                const MdevCase *c = &table[i];
                LeaseMdevCheckInput in = {
                        .asks = c->asks,
                        .n_asks = c->n_asks,
                        .parents = parents,
                        .n_parents = ELEMENTSOF(parents),
                        .devices = devices,
                        .n_devices = ELEMENTSOF(devices),
                        .mdevs = c->existing ? &c->existing : NULL,
                        .n_mdevs = c->existing ? 1 : 0,
                        .pending = c->pending.parent ? &c->pending : NULL,
                        .n_pending = c->pending.parent ? 1 : 0,
                };
                LeaseMdevPlace places[3] = {};
                LeaseCheckVerdict verdict = (LeaseCheckVerdict)-1;
                _cleanup_free_ char *reason = NULL;

                assert_int_equal(lease_mdev_check(&in, &verdict, places, &reason), 0);
                if (verdict != c->verdict)
                        fail_msg(
                                "%zu (%s): verdict %d, expected %d (%s)", i, c->what, verdict, c->verdict,
                                strna(reason));
                if (c->verdict != LEASE_CHECK_OK) {
                        if (!reason || !strstr(reason, c->reason))
                                fail_msg(
                                        "%zu (%s): '%s' does not say '%s'", i, c->what, strna(reason),
                                        c->reason);
                        continue;
                }
                assert_null(reason);
                for (size_t k = 0; k < c->n_asks; k++) {
                        if (!places[k].parent || !streq(places[k].parent, c->parents[k]))
                                fail_msg(
                                        "%zu (%s): ask %zu on %s, expected %s", i, c->what, k,
                                        strna(places[k].parent), c->parents[k]);
                        assert_non_null(places[k].type_id);
                }
        }
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

/* "vfio-owner" (issue 15, handoff): the nodes' previous owners survive a restart; records without it
 * carry neither key. */
static void test_record_vfio_owner(void **state) {
        LeaseDevice devices[] = { { "0000:41:00.0", LEASE_POLICY_HOST } };
        LeaseNodeOwner owners[] = { { "/dev/vfio/20", 65534, 44 } };
        LeaseRecord rec = {
                .id = 3,
                .pid = 77,
                .start_time = 1,
                .uid = 1000,
                .since_usec = 1,
                .state = LEASE_STATE_ACTIVE,
                .devices = devices,
                .n_devices = 1,
                .vfio_owner = true,
                .node_owners = owners,
                .n_node_owners = 1,
        };
        _cleanup_(lease_record_freep) LeaseRecord *back = NULL, *plain = NULL;
        _cleanup_free_ char *text = NULL, *text2 = NULL, *error = NULL;
        static const char *const bad[] = {
                "\"vfio-owner\":1,\"vfio-restore\":[]",
                "\"vfio-owner\":true",
                "\"vfio-owner\":false,\"vfio-restore\":[{\"node\":\"/dev/vfio/1\",\"uid\":0,\"gid\":0}]",
                "\"vfio-owner\":true,\"vfio-restore\":[{\"node\":\"/etc/shadow\",\"uid\":0,\"gid\":0}]",
                "\"vfio-owner\":true,\"vfio-restore\":[{\"node\":\"/dev/vfio/../sda\",\"uid\":0,\"gid\":0}]",
                "\"vfio-owner\":true,\"vfio-restore\":[{\"node\":\"/dev/vfio/1\",\"uid\":-1,\"gid\":0}]",
                "\"vfio-restore\":[]",
        };

        assert_int_equal(lease_record_to_json(&rec, &text), 0);
        assert_non_null(strstr(text, "\"vfio-owner\":true"));
        assert_int_equal(lease_record_from_json(text, &back, &error), 0);
        assert_true(back->vfio_owner);
        assert_int_equal(back->n_node_owners, 1);
        assert_string_equal(back->node_owners[0].node, "/dev/vfio/20");
        assert_int_equal(back->node_owners[0].uid, 65534);
        assert_int_equal(back->node_owners[0].gid, 44);
        assert_int_equal(lease_record_to_json(back, &text2), 0);
        assert_string_equal(text, text2);

        rec.vfio_owner = false;
        rec.n_node_owners = 0;
        free(text);
        assert_int_equal(lease_record_to_json(&rec, &text), 0);
        assert_null(strstr(text, "vfio"));
        assert_int_equal(lease_record_from_json(text, &plain, &error), 0);
        assert_false(plain->vfio_owner);
        assert_int_equal(plain->n_node_owners, 0);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(lease_record_freep) LeaseRecord *r = NULL;
                _cleanup_free_ char *json = NULL, *e = NULL;

                assert_true(
                        asprintf(
                                &json,
                                "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,"
                                "\"since-usec\":1,\"whole-group\":false,\"state\":\"active\",\"devices\":"
                                "[{\"address\":\"0000:04:00.0\",\"policy\":\"host\"}],%s}",
                                bad[i]) > 0);
                if (lease_record_from_json(json, &r, &e) != -EBADMSG)
                        fail_msg("%zu: %s accepted", i, bad[i]);
                assert_non_null(e);
        }
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
                  "neither \"devices\" nor \"mdevs\" lists anything" },
                /* vGPU/mdev entries */
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[],\"mdevs\":[]}",
                  "\"mdevs\" has 0 entries" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[],\"mdevs\":{}}",
                  "\"mdevs\" is not an array" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[],\"mdevs\":[{\"uuid\":"
                  "\"8D0F4A62-1A8E-4E0C-9C3E-6A1B2C3D4E5F\",\"parent\":\"mtty\",\"type\":\"mtty-1\","
                  "\"policy\":\"remove\"}]}",
                  "is not a lowercase UUID" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[],\"mdevs\":[{\"uuid\":"
                  "\"8d0f4a62-1a8e-4e0c-9c3e-6a1b2c3d4e5f\",\"parent\":\"mtty\",\"type\":\"mtty-1\","
                  "\"policy\":\"host\"}]}",
                  "policy 'host' is not \"remove\" or \"keep\"" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[],\"mdevs\":[{\"uuid\":"
                  "\"8d0f4a62-1a8e-4e0c-9c3e-6a1b2c3d4e5f\",\"parent\":\"../mtty\",\"type\":\"mtty-1\","
                  "\"policy\":\"keep\"}]}",
                  "is not a sysfs name" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[],\"mdevs\":[{\"uuid\":"
                  "\"8d0f4a62-1a8e-4e0c-9c3e-6a1b2c3d4e5f\",\"parent\":\"mtty\",\"policy\":\"keep\"}]}",
                  "\"type\" is missing" },
                { "{\"version\":1,\"id\":1,\"pid\":5,\"start-time\":1,\"uid\":0,\"since-usec\":1,"
                  "\"whole-group\":false,\"state\":\"active\",\"devices\":[],\"mdevs\":[{\"uuid\":"
                  "\"8d0f4a62-1a8e-4e0c-9c3e-6a1b2c3d4e5f\",\"parent\":\"mtty\",\"type\":\"mtty-1\","
                  "\"policy\":\"keep\"},{\"uuid\":\"8d0f4a62-1a8e-4e0c-9c3e-6a1b2c3d4e5f\",\"parent\":"
                  "\"mtty\",\"type\":\"mtty-2\",\"policy\":\"remove\"}]}",
                  "listed twice" },
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
                cmocka_unit_test(test_policies),
                cmocka_unit_test(test_record_round_trip),
                cmocka_unit_test(test_record_rejected),
                cmocka_unit_test(test_stat_start_time),
                cmocka_unit_test(test_check_table),
                cmocka_unit_test(test_check_bounds),
                cmocka_unit_test(test_record_vfio_owner),
                cmocka_unit_test(test_mdev_policies),
                cmocka_unit_test(test_record_mdevs_round_trip),
                cmocka_unit_test(test_mdev_check_table),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
