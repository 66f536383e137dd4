/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Runtime requests (src/request.h): flags, file names and contents (read back by the real
 * desired-state parser), the request files and their backups, and the directory list.
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
#include <sys/stat.h>
#include <unistd.h>

#include "desired-state.h"
#include "macro.h"
#include "names.h"
#include "request.h"
#include "strv.h"

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-request.XXXXXX");

        assert_non_null(d);
        assert_non_null(mkdtemp(d));
        return d;
}

static void rm_rf(const char *dir) {
        char cmd[512];

        assert_true(strlen(dir) > strlen("/tmp/"));
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

static char *read_all(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = calloc(1, 65536);
        size_t n;

        assert_non_null(f);
        assert_non_null(buf);
        n = fread(buf, 1, 65535, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static void test_flags(void **state) {
        char *ok[] = { "persist", "whole-group", "allow-critical", NULL };
        char *twice[] = { "persist", "persist", NULL };
        char *unknown[] = { "persist", "bogus", NULL };
        char *empty[] = { "", NULL };
        const char *bad = NULL;
        unsigned bits = 0;

        assert_int_equal(request_flags_parse(NULL, REQUEST_FLAG_PERSIST, &bits, &bad), 0);
        assert_int_equal(bits, 0);

        assert_int_equal(
                request_flags_parse(
                        ok, REQUEST_FLAG_PERSIST | REQUEST_FLAG_WHOLE_GROUP | REQUEST_FLAG_ALLOW_CRITICAL,
                        &bits, &bad),
                0);
        assert_int_equal(
                bits, REQUEST_FLAG_PERSIST | REQUEST_FLAG_WHOLE_GROUP | REQUEST_FLAG_ALLOW_CRITICAL);

        /* SetNumVFs takes "persist" only: the others name the offending value. */
        assert_int_equal(request_flags_parse(ok, REQUEST_FLAG_PERSIST, &bits, &bad), -EINVAL);
        assert_string_equal(bad, "whole-group");
        assert_int_equal(request_flags_parse(twice, REQUEST_FLAG_PERSIST, &bits, &bad), -EINVAL);
        assert_string_equal(bad, "persist");
        assert_int_equal(request_flags_parse(unknown, REQUEST_FLAG_PERSIST, &bits, &bad), -EINVAL);
        assert_string_equal(bad, "bogus");
        assert_int_equal(request_flags_parse(empty, REQUEST_FLAG_PERSIST, &bits, &bad), -EINVAL);
        assert_string_equal(bad, "");
}

static void test_file_name(void **state) {
        char *s = NULL;

        assert_int_equal(request_file_name(REQUEST_DEVICE, "0000:41:00.0", &s), 0);
        assert_string_equal(s, "90-runtime-0000_41_00_0.conf");
        free(s);
        assert_int_equal(request_file_name(REQUEST_SRIOV, "0001:a1:1f.7", &s), 0);
        assert_string_equal(s, "90-runtime-sriov-0001_a1_1f_7.conf");
        free(s);

        /* Only canonical addresses: no short form, no upper case, nothing that reaches a path. */
        assert_int_equal(request_file_name(REQUEST_DEVICE, "41:00.0", &s), -EINVAL);
        assert_int_equal(request_file_name(REQUEST_DEVICE, "0000:A1:00.0", &s), -EINVAL);
        assert_int_equal(request_file_name(REQUEST_DEVICE, "../../etc/x", &s), -EINVAL);
        assert_int_equal(request_file_name(REQUEST_DEVICE, "", &s), -EINVAL);

        /* mdev requests are keyed by their UUID, lowercase canonical only. */
        assert_int_equal(request_file_name(REQUEST_MDEV, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", &s), 0);
        assert_string_equal(s, "90-runtime-mdev-83b8f4f2-509f-382f-3c1e-e6bfe0fa1001.conf");
        free(s);
        assert_int_equal(
                request_file_name(REQUEST_MDEV, "83B8F4F2-509F-382F-3C1E-E6BFE0FA1001", &s), -EINVAL);
        assert_int_equal(request_file_name(REQUEST_MDEV, "0000:41:00.0", &s), -EINVAL);
        assert_int_equal(
                request_file_name(REQUEST_MDEV, "../83b8f4f2-509f-382f-3c1e-e6bfe0fa10", &s), -EINVAL);
        assert_int_equal(request_file_name(REQUEST_MDEV, NULL, &s), -EINVAL);
        assert_int_equal(
                request_file_name(REQUEST_DEVICE, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", &s), -EINVAL);
}

/* CreateMdev's own check of a parent or type: nothing that the INI parser could read differently. */
static void test_mdev_value_is_valid(void **state) {
        static const char *const bad[] = {
                NULL,      "",    " GRID", "GRID ", "a\nType=x", "a;b",         "a#b",
                "[Match]", "a=b", "a\\b",  "../x",  "\x7f",      "caf\xc3\xa9",
        };
        static const char *const good[] = { "mtty", "mtty-2", "0000:41:00.0", "GRID T4-1Q",
                                            "NVIDIA L40S-24Q" };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_false(request_mdev_value_is_valid(bad[i]));
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                assert_true(request_mdev_value_is_valid(good[i]));
}

/* Write |content| as the only drop-in and parse it with the daemon's own parser. */
static DesiredState *load_one(const char *content) {
        char *dir = make_tmpdir(), *path = NULL;
        const char *dirs[] = { dir, NULL };
        DesiredState *s = NULL;

        FILE *f;

        assert_true(asprintf(&path, "%s/90-runtime-x.conf", dir) > 0);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_true(fputs(content, f) >= 0);
        assert_int_equal(fclose(f), 0);
        free(path);
        assert_int_equal(desired_state_load(dirs, &s), 0);
        rm_rf(dir);
        free(dir);
        return s;
}

/* What CreateMdev stores parses back, with the daemon's own parser, to what it asked for. */
static void test_mdev_request_one_parent(void **state) {
        const char *uuid = "11111111-2222-4333-8444-555555555501";
        DesiredState *s;
        char *text = NULL;

        assert_int_equal(
                request_format_mdev((char *[]){ (char *)"0000:41:00.0", NULL }, "GRID T4-1B", uuid, &text),
                0);
        s = load_one(text);
        assert_null(s->errors);
        assert_int_equal(s->n_rules, 1);
        assert_true(s->rules[0].mdev.present);
        assert_non_null(s->rules[0].mdev.parents);
        assert_string_equal(s->rules[0].mdev.parents[0], "0000:41:00.0");
        assert_null(s->rules[0].mdev.parents[1]);
        assert_string_equal(s->rules[0].mdev.type, "GRID T4-1B");
        assert_true(s->rules[0].mdev.has_uuid);
        assert_string_equal(s->rules[0].mdev.uuid, uuid);
        assert_false(s->rules[0].mdev.has_count);
        assert_int_equal(s->rules[0].driver.kind, DRIVER_KIND_UNSET);
        desired_state_free(s);
        free(text);
}

static void test_device_request_roundtrip(void **state) {
        DesiredState *s;
        char *text = NULL;

        assert_int_equal(
                request_format_device(
                        "0000:41:00.0", "vfio-pci", REQUEST_FLAG_WHOLE_GROUP | REQUEST_FLAG_ALLOW_CRITICAL,
                        &text),
                0);
        s = load_one(text);
        assert_null(s->errors);
        assert_int_equal(s->n_rules, 1);
        assert_true(s->rules[0].match.has_address);
        assert_int_equal(s->rules[0].match.address.bus, 0x41);
        assert_int_equal(s->rules[0].driver.kind, DRIVER_KIND_NAMED);
        assert_string_equal(s->rules[0].driver.name, "vfio-pci");
        assert_int_equal(s->rules[0].group, GROUP_POLICY_WHOLE);
        assert_true(s->rules[0].allow_critical);
        assert_false(s->rules[0].has_num_vfs);
        desired_state_free(s);
        free(text);

        /* Without flags: strict, not critical; "host" and "none" are kinds of their own. */
        assert_int_equal(request_format_device("0000:03:00.0", "host", 0, &text), 0);
        assert_null(strstr(text, "Group="));
        assert_null(strstr(text, "AllowCritical="));
        s = load_one(text);
        assert_int_equal(s->n_rules, 1);
        assert_int_equal(s->rules[0].driver.kind, DRIVER_KIND_HOST);
        assert_int_equal(s->rules[0].group, GROUP_POLICY_STRICT);
        assert_false(s->rules[0].allow_critical);
        desired_state_free(s);
        free(text);

        assert_int_equal(request_format_device("0000:03:00.0", "none", 0, &text), 0);
        s = load_one(text);
        assert_int_equal(s->rules[0].driver.kind, DRIVER_KIND_NONE);
        desired_state_free(s);
        free(text);
}

static void test_device_request_refuses_injection(void **state) {
        char *text = NULL;

        /* A value that would add a line or a section to the file is refused, not escaped. */
        assert_int_equal(
                request_format_device("0000:41:00.0", "vfio-pci\nAllowCritical=yes", 0, &text), -EINVAL);
        assert_int_equal(request_format_device("0000:41:00.0", "vfio pci", 0, &text), -EINVAL);
        assert_int_equal(request_format_device("0000:41:00.0", "", 0, &text), -EINVAL);
        assert_int_equal(request_format_device("0000:41:00.0", NULL, 0, &text), -EINVAL);
        assert_int_equal(request_format_device("41:00.0\n[Device]", "vfio-pci", 0, &text), -EINVAL);
        assert_int_equal(request_format_sriov("0000:41:00.0", 4, "vfio-pci]\n[Device", &text), -EINVAL);
        assert_null(text);
}

static void test_sriov_request_roundtrip(void **state) {
        DesiredState *s;
        char *text = NULL;

        assert_int_equal(request_format_sriov("0000:05:00.0", 4, "vfio-pci", &text), 0);
        s = load_one(text);
        assert_null(s->errors);
        assert_int_equal(s->n_rules, 1);
        assert_true(s->rules[0].has_num_vfs);
        assert_int_equal(s->rules[0].num_vfs, 4);
        assert_int_equal(s->rules[0].vf_driver.kind, DRIVER_KIND_NAMED);
        assert_string_equal(s->rules[0].vf_driver.name, "vfio-pci");
        assert_int_equal(s->rules[0].driver.kind, DRIVER_KIND_UNSET);
        desired_state_free(s);
        free(text);

        /* "" leaves the VFs alone: no VFDriver= at all. */
        assert_int_equal(request_format_sriov("0000:05:00.0", 0, "", &text), 0);
        assert_null(strstr(text, "VFDriver"));
        s = load_one(text);
        assert_int_equal(s->n_rules, 1);
        assert_int_equal(s->rules[0].num_vfs, 0);
        assert_int_equal(s->rules[0].vf_driver.kind, DRIVER_KIND_UNSET);
        desired_state_free(s);
        free(text);
}

/* CreateMdev (issue 14): an [Mdev] file with UUID=, read back by the parser; names checked. */
static void test_mdev_request_roundtrip(void **state) {
        static const char *const uuid = "b1d8f0aa-3c1e-4d0b-9a35-1f2e3d4c5b6a";
        _cleanup_strv_free_ char **parents = NULL;
        _cleanup_free_ char *name = NULL;
        DesiredState *s;
        char *text = NULL;

        assert_int_equal(strv_extend(&parents, "mtty"), 0);
        assert_int_equal(strv_extend(&parents, "0000:41:00.0"), 0);
        assert_int_equal(request_format_mdev(parents, "GRID T4-1Q", uuid, &text), 0);
        s = load_one(text);
        assert_null(s->errors);
        assert_int_equal(s->n_rules, 1);
        assert_true(s->rules[0].mdev.present);
        assert_true(strv_equal(s->rules[0].mdev.parents, parents));
        assert_string_equal(s->rules[0].mdev.type, "GRID T4-1Q");
        assert_true(s->rules[0].mdev.has_uuid);
        assert_string_equal(s->rules[0].mdev.uuid, uuid);
        desired_state_free(s);
        free(text);

        assert_int_equal(request_file_name(REQUEST_MDEV, uuid, &name), 0);
        assert_string_equal(name, "90-runtime-mdev-b1d8f0aa-3c1e-4d0b-9a35-1f2e3d4c5b6a.conf");
        assert_int_equal(
                request_file_name(REQUEST_MDEV, "B1D8F0AA-3C1E-4D0B-9A35-1F2E3D4C5B6A", &text), -EINVAL);
        assert_int_equal(request_file_name(REQUEST_MDEV, "0000:41:00.0", &text), -EINVAL);

        /* Nothing that would not parse back, or would reach another file, is written. */
        assert_int_equal(request_format_mdev(NULL, "mtty-2", uuid, &text), -EINVAL);
        assert_int_equal(request_format_mdev(parents, "mtty-2\nRemove=1", uuid, &text), -EINVAL);
        assert_int_equal(request_format_mdev(parents, "../x", uuid, &text), -EINVAL);
        assert_int_equal(request_format_mdev(parents, " mtty-2", uuid, &text), -EINVAL);
        assert_int_equal(request_format_mdev(parents, "mtty-2", "not-a-uuid", &text), -EINVAL);
        assert_int_equal(strv_extend(&parents, "a b"), 0);
        assert_int_equal(request_format_mdev(parents, "mtty-2", uuid, &text), -EINVAL);
}

/* A request goes to one directory only, a backup restores both as they were, a FIFO is refused. */
static void test_request_files(void **state) {
        char *dir = make_tmpdir(), *run = NULL, *persist = NULL, *path_run = NULL, *path_persist = NULL,
             *got;
        RequestBackup *b = NULL;
        struct stat st;

        assert_true(asprintf(&run, "%s/run", dir) > 0);
        assert_true(asprintf(&persist, "%s/state", dir) > 0);
        assert_true(asprintf(&path_run, "%s/90-runtime-0000_41_00_0.conf", run) > 0);
        assert_true(asprintf(&path_persist, "%s/90-runtime-0000_41_00_0.conf", persist) > 0);

        /* Nothing yet: a backup of nothing, a removal of nothing. */
        assert_int_equal(request_remove(run, persist, REQUEST_DEVICE, "0000:41:00.0"), -ENOENT);
        assert_int_equal(request_backup(run, persist, REQUEST_DEVICE, "0000:41:00.0", &b), 0);
        assert_null(b->content[0]);
        assert_null(b->content[1]);

        /* Transient, then persistent: the transient one goes (the directories are created). */
        assert_int_equal(request_write(run, persist, REQUEST_DEVICE, "0000:41:00.0", "one\n", false), 0);
        got = read_all(path_run);
        assert_string_equal(got, "one\n");
        free(got);
        assert_int_equal(stat(path_run, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(request_write(run, persist, REQUEST_DEVICE, "0000:41:00.0", "two\n", true), 0);
        assert_int_equal(access(path_run, F_OK), -1);
        got = read_all(path_persist);
        assert_string_equal(got, "two\n");
        free(got);

        /* The backup taken before any file existed removes what is new. */
        assert_int_equal(request_restore(b), 0);
        assert_int_equal(access(path_run, F_OK), -1);
        assert_int_equal(access(path_persist, F_OK), -1);
        request_backup_free(b);

        /* A backup of a persistent request brings it back after a removal. */
        assert_int_equal(request_write(run, persist, REQUEST_DEVICE, "0000:41:00.0", "three\n", true), 0);
        assert_int_equal(request_backup(run, persist, REQUEST_DEVICE, "0000:41:00.0", &b), 0);
        assert_null(b->content[0]);
        assert_string_equal(b->content[1], "three\n");
        assert_int_equal(request_remove(run, persist, REQUEST_DEVICE, "0000:41:00.0"), 0);
        assert_int_equal(request_restore(b), 0);
        got = read_all(path_persist);
        assert_string_equal(got, "three\n");
        free(got);
        request_backup_free(b);

        /* A FIFO of the request's name is refused, not waited on; bad addresses never reach a path. */
        assert_int_equal(unlink(path_persist), 0);
        assert_int_equal(mkfifo(path_persist, 0644), 0);
        assert_int_equal(request_backup(run, persist, REQUEST_DEVICE, "0000:41:00.0", &b), -EBADFD);
        assert_int_equal(request_write(run, persist, REQUEST_DEVICE, "../x", "x", false), -EINVAL);
        assert_int_equal(request_remove(run, persist, REQUEST_DEVICE, "0000:41:00"), -EINVAL);

        rm_rf(dir);
        free(dir);
        free(run);
        free(persist);
        free(path_run);
        free(path_persist);
}

static void test_dirs(void **state) {
        char **l = NULL;
        char *custom[] = { "/a", "/b", "/s/devices.d", NULL };
        char *none[] = { NULL };

        /* Defaults: usr < etc < run, the persistent requests before the transient ones, each once. */
        assert_int_equal(request_load_dirs(NULL, NULL, NULL, &l), 0);
        assert_int_equal(strv_length(l), 4);
        assert_string_equal(l[0], HOSTDEVD_CONF_DIR_USR);
        assert_string_equal(l[1], HOSTDEVD_CONF_DIR_ETC);
        assert_string_equal(l[2], HOSTDEVD_STATE_DIR "/" HOSTDEVD_REQUESTS_SUBDIR);
        assert_string_equal(l[3], HOSTDEVD_RUNTIME_DIR "/" HOSTDEVD_REQUESTS_SUBDIR);
        assert_string_equal(l[3], HOSTDEVD_CONF_DIR_RUN);
        l = strv_free(l);

        assert_int_equal(request_load_dirs(custom, "/s", "/r", &l), 0);
        assert_int_equal(strv_length(l), 4);
        assert_string_equal(l[0], "/a");
        assert_string_equal(l[1], "/b");
        assert_string_equal(l[2], "/s/devices.d");
        assert_string_equal(l[3], "/r/devices.d");
        l = strv_free(l);

        assert_int_equal(request_load_dirs(none, "/s", "/r", &l), 0);
        assert_int_equal(strv_length(l), 2);
        l = strv_free(l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_flags),
                cmocka_unit_test(test_file_name),
                cmocka_unit_test(test_mdev_value_is_valid),
                cmocka_unit_test(test_mdev_request_one_parent),
                cmocka_unit_test(test_device_request_roundtrip),
                cmocka_unit_test(test_device_request_refuses_injection),
                cmocka_unit_test(test_sriov_request_roundtrip),
                cmocka_unit_test(test_mdev_request_roundtrip),
                cmocka_unit_test(test_request_files),
                cmocka_unit_test(test_dirs),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
