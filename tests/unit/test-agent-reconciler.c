/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The reconciler's pure parts (agent/reconciler.h): request flags, request
 * file names and contents (read back by the real desired-state parser),
 * atomic writes and the directory list.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "desired-state.h"
#include "macro.h"
#include "module-loader.h"
#include "names.h"
#include "planner.h"
#include "reconciler.h"
#include "strv.h"

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-agent-reconciler.XXXXXX");

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

        assert_int_equal(reconciler_request_file_name(REQUEST_DEVICE, "0000:41:00.0", &s), 0);
        assert_string_equal(s, "90-runtime-0000_41_00_0.conf");
        free(s);
        assert_int_equal(reconciler_request_file_name(REQUEST_SRIOV, "0001:a1:1f.7", &s), 0);
        assert_string_equal(s, "90-runtime-sriov-0001_a1_1f_7.conf");
        free(s);

        /* Only canonical addresses: no short form, no upper case, nothing that reaches a path. */
        assert_int_equal(reconciler_request_file_name(REQUEST_DEVICE, "41:00.0", &s), -EINVAL);
        assert_int_equal(reconciler_request_file_name(REQUEST_DEVICE, "0000:A1:00.0", &s), -EINVAL);
        assert_int_equal(reconciler_request_file_name(REQUEST_DEVICE, "../../etc/x", &s), -EINVAL);
        assert_int_equal(reconciler_request_file_name(REQUEST_DEVICE, "", &s), -EINVAL);
}

/* Write |content| as the only drop-in and parse it with the daemon's own parser. */
static DesiredState *load_one(const char *content) {
        char *dir = make_tmpdir();
        const char *dirs[] = { dir, NULL };
        DesiredState *s = NULL;

        assert_int_equal(write_file_atomic(dir, "90-runtime-x.conf", content), 0);
        assert_int_equal(desired_state_load(dirs, &s), 0);
        rm_rf(dir);
        free(dir);
        return s;
}

static void test_device_request_roundtrip(void **state) {
        DesiredState *s;
        char *text = NULL;

        assert_int_equal(
                reconciler_format_device_request(
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
        assert_int_equal(reconciler_format_device_request("0000:03:00.0", "host", 0, &text), 0);
        assert_null(strstr(text, "Group="));
        assert_null(strstr(text, "AllowCritical="));
        s = load_one(text);
        assert_int_equal(s->n_rules, 1);
        assert_int_equal(s->rules[0].driver.kind, DRIVER_KIND_HOST);
        assert_int_equal(s->rules[0].group, GROUP_POLICY_STRICT);
        assert_false(s->rules[0].allow_critical);
        desired_state_free(s);
        free(text);

        assert_int_equal(reconciler_format_device_request("0000:03:00.0", "none", 0, &text), 0);
        s = load_one(text);
        assert_int_equal(s->rules[0].driver.kind, DRIVER_KIND_NONE);
        desired_state_free(s);
        free(text);
}

static void test_device_request_refuses_injection(void **state) {
        char *text = NULL;

        /* A value that would add a line or a section to the file is refused, not escaped. */
        assert_int_equal(
                reconciler_format_device_request("0000:41:00.0", "vfio-pci\nAllowCritical=yes", 0, &text),
                -EINVAL);
        assert_int_equal(reconciler_format_device_request("0000:41:00.0", "vfio pci", 0, &text), -EINVAL);
        assert_int_equal(reconciler_format_device_request("0000:41:00.0", "", 0, &text), -EINVAL);
        assert_int_equal(reconciler_format_device_request("0000:41:00.0", NULL, 0, &text), -EINVAL);
        assert_int_equal(
                reconciler_format_device_request("41:00.0\n[Device]", "vfio-pci", 0, &text), -EINVAL);
        assert_int_equal(
                reconciler_format_sriov_request("0000:41:00.0", 4, "vfio-pci]\n[Device", &text), -EINVAL);
        assert_null(text);
}

static void test_sriov_request_roundtrip(void **state) {
        DesiredState *s;
        char *text = NULL;

        assert_int_equal(reconciler_format_sriov_request("0000:05:00.0", 4, "vfio-pci", &text), 0);
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
        assert_int_equal(reconciler_format_sriov_request("0000:05:00.0", 0, "", &text), 0);
        assert_null(strstr(text, "VFDriver"));
        s = load_one(text);
        assert_int_equal(s->n_rules, 1);
        assert_int_equal(s->rules[0].num_vfs, 0);
        assert_int_equal(s->rules[0].vf_driver.kind, DRIVER_KIND_UNSET);
        desired_state_free(s);
        free(text);
}

static void test_write_file_atomic(void **state) {
        char *dir = make_tmpdir(), *sub = NULL, *path = NULL, *got;
        struct stat st;
        DIR *d;
        struct dirent *de;
        size_t n = 0;

        /* Creates one missing level, replaces the content whole, leaves no temporary file. */
        assert_true(asprintf(&sub, "%s/devices.d", dir) > 0);
        assert_int_equal(write_file_atomic(sub, "a.conf", "one\n"), 0);
        assert_int_equal(write_file_atomic(sub, "a.conf", "two\n"), 0);
        assert_true(asprintf(&path, "%s/a.conf", sub) > 0);
        got = read_all(path);
        assert_string_equal(got, "two\n");
        free(got);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);

        d = opendir(sub);
        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
                        n++;
        closedir(d);
        assert_int_equal(n, 1);

        /* Names are one path component. */
        assert_int_equal(write_file_atomic(sub, "../escape.conf", "x"), -EINVAL);
        assert_int_equal(write_file_atomic(sub, ".hidden", "x"), -EINVAL);
        assert_int_equal(write_file_atomic(sub, "", "x"), -EINVAL);

        rm_rf(dir);
        free(dir);
        free(sub);
        free(path);
}

static void test_dirs(void **state) {
        char **l = NULL;
        char *custom[] = { "/a", "/b", "/s/devices.d", NULL };
        char *none[] = { NULL };

        /* Defaults: usr < etc < run, the persistent requests before the transient ones, each once. */
        assert_int_equal(reconciler_dirs(NULL, NULL, NULL, &l), 0);
        assert_int_equal(strv_length(l), 4);
        assert_string_equal(l[0], HOSTDEVD_CONF_DIR_USR);
        assert_string_equal(l[1], HOSTDEVD_CONF_DIR_ETC);
        assert_string_equal(l[2], HOSTDEVD_STATE_DIR "/" HOSTDEVD_REQUESTS_SUBDIR);
        assert_string_equal(l[3], HOSTDEVD_RUNTIME_DIR "/" HOSTDEVD_REQUESTS_SUBDIR);
        assert_string_equal(l[3], HOSTDEVD_CONF_DIR_RUN);
        l = strv_free(l);

        assert_int_equal(reconciler_dirs(custom, "/s", "/r", &l), 0);
        assert_int_equal(strv_length(l), 4);
        assert_string_equal(l[0], "/a");
        assert_string_equal(l[1], "/b");
        assert_string_equal(l[2], "/s/devices.d");
        assert_string_equal(l[3], "/r/devices.d");
        l = strv_free(l);

        assert_int_equal(reconciler_dirs(none, "/s", "/r", &l), 0);
        assert_int_equal(strv_length(l), 2);
        l = strv_free(l);
}

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
                cmocka_unit_test(test_flags),
                cmocka_unit_test(test_file_name),
                cmocka_unit_test(test_device_request_roundtrip),
                cmocka_unit_test(test_device_request_refuses_injection),
                cmocka_unit_test(test_sriov_request_roundtrip),
                cmocka_unit_test(test_write_file_atomic),
                cmocka_unit_test(test_dirs),
                cmocka_unit_test(test_module_name),
                cmocka_unit_test(test_module_loading_gate),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
