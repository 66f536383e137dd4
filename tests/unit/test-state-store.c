/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "names.h"
#include "pci-address.h"
#include "state-store.h"
#include "strv.h"

typedef struct Fixture {
        char dir[64];
        char path[128];
        char log[128];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        strcpy(f->dir, "/tmp/test-state-store-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, HOSTDEVD_STATE_FILE);
        snprintf(f->log, sizeof(f->log), "%s/%s", f->dir, HOSTDEVD_STATE_LOG);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void write_text(const char *path, const char *text) {
        FILE *file = fopen(path, "we");

        assert_non_null(file);
        fputs(text, file);
        assert_int_equal(fclose(file), 0);
}

static StateStore *load_ok(Fixture *f) {
        StateStore *s = NULL;
        char *error = NULL;
        int r;

        r = state_store_load(f->dir, &s, &error);
        if (r < 0)
                fail_msg("load: %s: %s", strerror(-r), strna(error));
        assert_null(error);
        return s;
}

static void test_round_trip(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL, *s2 = NULL;
        _cleanup_strv_free_ char **owned = NULL;
        Fixture *f = *state;
        const OwnedDevice *d;
        uint64_t t1, t2;
        size_t n;

        /* Missing file: empty, nothing written. */
        s = load_ok(f);
        assert_string_equal(state_store_path(s), f->path);
        assert_int_equal(access(f->path, F_OK), -1);
        state_store_get_devices(s, &n);
        assert_int_equal(n, 0);

        const OwnedChange group[] = {
                { .address = "0000:41:00.1",
                  .driver_now = "snd_hda_intel",
                  .driver_override = "vfio-pci",
                  .driver = "vfio-pci" },
                { .address = "0000:41:00.0",
                  .driver_now = "nouveau",
                  .driver_override_now = "nouveau",
                  .driver_override = "vfio-pci",
                  .driver = "vfio-pci" },
        };
        assert_int_equal(state_store_begin(s, group, ELEMENTSOF(group), &t1), 0);
        assert_int_equal(t1, 1);
        assert_int_equal(state_store_commit(s, t1), 0);
        assert_int_equal(state_store_commit(s, t1), -ENOENT); /* nothing begun any more */

        /* The GPU changes again: its original stays nouveau, previous is vfio-pci. */
        const OwnedChange again[] = {
                { .address = "0000:41:00.0", .driver_now = "vfio-pci", .driver_override_now = "vfio-pci" },
        };
        assert_int_equal(state_store_begin(s, again, 1, &t2), 0);
        assert_int_equal(t2, 2);

        s2 = load_ok(f);
        d = state_store_get_devices(s2, &n);
        assert_int_equal(n, 2);
        assert_string_equal(d[0].address, "0000:41:00.0");
        assert_int_equal(d[0].transaction, 2);
        assert_int_equal(d[0].phase, OWNED_PHASE_BEGUN);
        assert_string_equal(d[0].original_driver, "nouveau");
        assert_string_equal(d[0].original_driver_override, "nouveau");
        assert_string_equal(d[0].previous_driver, "vfio-pci");
        assert_string_equal(d[0].previous_driver_override, "vfio-pci");
        assert_null(d[0].driver_override);
        assert_null(d[0].driver);
        assert_string_equal(d[1].address, "0000:41:00.1");
        assert_int_equal(d[1].transaction, 1);
        assert_int_equal(d[1].phase, OWNED_PHASE_COMMITTED);
        assert_string_equal(d[1].original_driver, "snd_hda_intel");
        assert_null(d[1].original_driver_override);
        assert_string_equal(d[1].driver_override, "vfio-pci");
        assert_string_equal(d[1].driver, "vfio-pci");

        assert_int_equal(state_store_list_owned(s2, &owned), 0);
        assert_int_equal(strv_length(owned), 2);
        assert_string_equal(owned[0], "0000:41:00.0");
        assert_string_equal(owned[1], "0000:41:00.1");

        /* Forget; a new transaction id never reuses an old one, even after a reload. */
        assert_int_equal(state_store_forget(s2, "0000:41:00.1"), 0);
        assert_int_equal(state_store_forget(s2, "0000:41:00.1"), -ENOENT);
        state_store_free(s);
        s = load_ok(f);
        assert_null(state_store_get(s, "0000:41:00.1"));
        assert_non_null(state_store_get(s, "0000:41:00.0"));
        const OwnedChange vf[] = { { .address = "0000:05:10.2",
                                     .driver_now = "ixgbevf",
                                     .driver_override = "vfio-pci",
                                     .driver = "vfio-pci" } };
        assert_int_equal(state_store_begin(s, vf, 1, &t1), 0);
        assert_int_equal(t1, 3);
        assert_int_equal(state_store_forget(s, "0000:41:00.0"), 0);
        assert_int_equal(state_store_forget(s, "0000:05:10.2"), 0);
        state_store_free(s2);
        s2 = load_ok(f);
        state_store_get_devices(s2, &n);
        assert_int_equal(n, 0);
}

static void test_bad_changes(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL;
        Fixture *f = *state;
        uint64_t t = 99;

        s = load_ok(f);
        const OwnedChange bad_address[] = { { .address = "41:00.0" } }; /* short form: not canonical */
        const OwnedChange bad_driver[] = { { .address = "0000:41:00.0", .driver = "vfio pci" } };
        const OwnedChange dup[] = { { .address = "0000:41:00.0" }, { .address = "0000:41:00.0" } };
        assert_int_equal(state_store_begin(s, bad_address, 1, &t), -EINVAL);
        assert_int_equal(state_store_begin(s, bad_driver, 1, &t), -EINVAL);
        assert_int_equal(state_store_begin(s, dup, 2, &t), -EINVAL);
        assert_int_equal(state_store_begin(s, dup, 0, &t), -EINVAL);
        assert_int_equal(t, 99);
        assert_int_equal(access(f->path, F_OK), -1);
}

static void test_atomic_write(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL, *s2 = NULL;
        Fixture *f = *state;
        char tmp[192], other[192];
        struct stat st;
        uint64_t t;

        /* A crash between mkostemp and rename leaves a half-written temp file: ignored and removed. */
        snprintf(tmp, sizeof(tmp), "%s/.%s.Ab12Cd", f->dir, HOSTDEVD_STATE_FILE);
        write_text(tmp, "{ \"version\": 1, \"devi");
        snprintf(other, sizeof(other), "%s/unrelated.conf", f->dir);
        write_text(other, "keep me");
        s = load_ok(f);
        assert_int_equal(access(tmp, F_OK), -1);
        assert_int_equal(access(other, F_OK), 0);

        const OwnedChange c[] = { { .address = "0000:03:00.0",
                                    .driver_now = "e1000e",
                                    .driver_override = "vfio-pci",
                                    .driver = "vfio-pci" } };
        assert_int_equal(state_store_begin(s, c, 1, &t), 0);
        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);

        /* A write that cannot happen changes nothing, in memory or on disk (a new store's first change
         * writes owned.json whole). */
        state_store_free(s);
        s = load_ok(f);
        assert_int_equal(chmod(f->dir, 0500), 0);
        if (geteuid() != 0) {
                assert_int_equal(state_store_commit(s, t), -EACCES);
                assert_int_equal(state_store_get(s, "0000:03:00.0")->phase, OWNED_PHASE_BEGUN);
        }
        assert_int_equal(chmod(f->dir, 0700), 0);
        s2 = load_ok(f);
        assert_int_equal(state_store_get(s2, "0000:03:00.0")->phase, OWNED_PHASE_BEGUN);
        assert_int_equal(state_store_commit(s, t), 0);
        state_store_free(s2);
        s2 = load_ok(f);
        assert_int_equal(state_store_get(s2, "0000:03:00.0")->phase, OWNED_PHASE_COMMITTED);
}

static void test_missing_dir(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL;
        Fixture *f = *state;
        char dir[128];
        uint64_t t;

        /* The directory is made at the first write (StateDirectory= makes it in production). */
        snprintf(dir, sizeof(dir), "%s/sub", f->dir);
        assert_int_equal(state_store_load(dir, &s, NULL), 0);
        const OwnedChange c[] = { { .address = "0000:03:00.0" } };
        assert_int_equal(state_store_begin(s, c, 1, &t), 0);
        snprintf(dir, sizeof(dir), "%s/sub/%s", f->dir, HOSTDEVD_STATE_FILE);
        assert_int_equal(access(dir, F_OK), 0);
}

static void expect_bad(Fixture *f, const char *text, int error, const char *message) {
        StateStore *s = NULL;
        _cleanup_free_ char *e = NULL;
        int r;

        write_text(f->path, text);
        r = state_store_load(f->dir, &s, &e);
        if (r != error)
                fail_msg("expected %s, got %s (%s) for: %s", strerror(-error), strerror(-r), strna(e), text);
        assert_null(s);
        assert_non_null(e);
        if (!strstr(e, f->path) || !strstr(e, message))
                fail_msg("error '%s' lacks the path or '%s'", e, message);
        if (strchr(e, '\n'))
                fail_msg("error '%s' is more than one line", e);
}

#define DEVICE(extra)                                                                                          \
        "{ \"version\": 1, \"last-transaction\": 4, \"devices\": [ { \"address\": \"0000:41:00.0\", "          \
        "\"transaction\": 4, \"phase\": \"begun\", \"original-driver\": \"nouveau\", "                         \
        "\"original-driver-override\": null, \"previous-driver\": \"nouveau\", \"previous-driver-override\": " \
        "null, \"driver-override\": \"vfio-pci\", \"driver\": \"vfio-pci\"" extra " } ] }"

static void test_corrupt(void **state) {
        Fixture *f = *state;

        expect_bad(f, "", -EBADMSG, "not JSON: unexpected end of file");
        expect_bad(f, "{ \"version\": 1, ", -EBADMSG, "not JSON");
        expect_bad(f, "{ \"version\": 1 } xyz", -EBADMSG, "not JSON at offset 17");
        expect_bad(f, "[1, 2]", -EBADMSG, "expected a JSON object");
        expect_bad(f, "{ \"version\": 1, }", -EBADMSG, "not JSON"); /* strict mode: no trailing comma */
}

static void test_wrong_types(void **state) {
        Fixture *f = *state;
        _cleanup_(state_store_freep) StateStore *s = NULL;

        /* The template itself is good. */
        write_text(f->path, DEVICE(""));
        s = load_ok(f);
        assert_non_null(state_store_get(s, "0000:41:00.0"));

        expect_bad(
                f, "{ \"version\": \"1\", \"last-transaction\": 0, \"devices\": [] }", -EBADMSG,
                "version: missing or not an integer");
        expect_bad(
                f, "{ \"version\": 1, \"last-transaction\": -3, \"devices\": [] }", -EBADMSG,
                "last-transaction: out of range: -3");
        expect_bad(
                f, "{ \"version\": 1, \"last-transaction\": 0, \"devices\": {} }", -EBADMSG,
                "devices: missing or not an array");
        expect_bad(
                f, "{ \"version\": 1, \"last-transaction\": 0, \"devices\": [], \"x\": 1 }", -EBADMSG,
                "unknown key \"x\"");
        expect_bad(
                f, "{ \"version\": 1, \"last-transaction\": 1, \"devices\": [ 7 ] }", -EBADMSG,
                "devices[0]: expected an object, got 7");
        expect_bad(f, DEVICE(", \"colour\": \"red\""), -EBADMSG, "devices[0]: unknown key \"colour\"");

        const struct {
                const char *from, *to, *message;
        } edits[] = {
                { "\"address\": \"0000:41:00.0\"", "\"address\": \"41:00.0\"",
                  "devices[0].address: not a canonical PCI address: '41:00.0'" },
                { "\"address\": \"0000:41:00.0\"", "\"address\": 4100",
                  "devices[0].address: missing or not a string" },
                { "\"transaction\": 4,", "\"transaction\": \"4\",",
                  "devices[0].transaction: expected a positive integer, got \"4\"" },
                { "\"transaction\": 4,", "\"transaction\": 0,", "devices[0].transaction: out of range: 0" },
                { "\"transaction\": 4,", "\"transaction\": 5,",
                  "devices[0].transaction: 5 is greater than last-transaction 4" },
                { "\"transaction\": 4,", "\"transaction\": 1e3,",
                  "devices[0].transaction: expected a positive integer, got 1e3" },
                { "\"phase\": \"begun\"", "\"phase\": \"done\"", "devices[0].phase: unknown value 'done'" },
                { "\"original-driver\": \"nouveau\"", "\"original-driver\": 1",
                  "devices[0].original-driver: expected a string or null, got 1" },
                { "\"original-driver\": \"nouveau\"", "\"original-driver\": \"\"",
                  "devices[0].original-driver: invalid value ''" },
                { "\"driver\": \"vfio-pci\"", "\"driver\": \"../../x\"",
                  "devices[0].driver: invalid value '../../x'" },
                { "\"driver\": \"vfio-pci\"", "\"driver\": \"a\\nb\"", "devices[0].driver: invalid value" },
                { ", \"driver-override\": \"vfio-pci\"", "", "devices[0]: missing \"driver-override\"" },
        };
        for (size_t i = 0; i < ELEMENTSOF(edits); i++) {
                char text[2048];
                const char *tmpl = DEVICE(""), *at = strstr(tmpl, edits[i].from);

                assert_non_null(at);
                snprintf(
                        text, sizeof(text), "%.*s%s%s", (int)(at - tmpl), tmpl, edits[i].to,
                        at + strlen(edits[i].from));
                expect_bad(f, text, -EBADMSG, edits[i].message);
        }

        /* The same address twice */
        expect_bad(
                f,
                "{ \"version\": 1, \"last-transaction\": 4, \"devices\": [ "
                "{ \"address\": \"0000:41:00.0\", \"transaction\": 4, \"phase\": \"begun\", \"original-driver\": null, "
                "\"original-driver-override\": null, \"previous-driver\": null, \"previous-driver-override\": null, "
                "\"driver-override\": null, \"driver\": null }, "
                "{ \"address\": \"0000:41:00.0\", \"transaction\": 3, \"phase\": \"committed\", \"original-driver\": null, "
                "\"original-driver-override\": null, \"previous-driver\": null, \"previous-driver-override\": null, "
                "\"driver-override\": null, \"driver\": null } ] }",
                -EBADMSG, "devices: address '0000:41:00.0' listed twice");
}

/* Found by tests/fuzz/fuzz-state-store: a key or value with a control character in it (JSON escapes) was
 * quoted raw, so the message ran over several lines. */
static void test_error_one_line(void **state) {
        Fixture *f = *state;
        StateStore *s = NULL;
        _cleanup_free_ char *e = NULL;

        expect_bad(
                f, "{ \"version\": 1, \"last-transaction\": 0, \"devices\": [], \"ve\\nsi\": 1 }", -EBADMSG,
                "unknown key \"ve\\nsi\"");
        expect_bad(
                f,
                "{ \"version\": 1, \"last-transaction\": 1, \"devices\": [ { \"address\": \"0000:41:00.0\\u0001\\t\" } ] }",
                -EBADMSG, "not a canonical PCI address: '0000:41:00.0\\x01\\t'");

        assert_int_equal(unlink(f->path), 0); /* the log alone */
        write_text(f->log, "{\"record\":1,\"commit\":1,\"wh\\r\\nen\":3}\n");
        assert_int_equal(state_store_load(f->dir, &s, &e), -EBADMSG);
        assert_null(s);
        if (!strstr(e, "unknown key \"wh\\x0d\\nen\""))
                fail_msg("error '%s' lacks the key, escaped", e);
        assert_null(strchr(e, '\n'));
        assert_null(strchr(e, '\r'));
}

static void test_unknown_version(void **state) {
        Fixture *f = *state;

        expect_bad(
                f, "{ \"version\": 2, \"last-transaction\": 0, \"devices\": [] }", -EPROTONOSUPPORT,
                "version: unsupported value 2 (this hostdevd reads 1)");
}

static void assert_sorted_and_found(const StateStore *s, size_t n_expected);

static void test_too_big(void **state) {
        Fixture *f = *state;
        StateStore *s = NULL;
        _cleanup_free_ char *e = NULL;
        FILE *file = fopen(f->path, "we");

        assert_non_null(file);
        assert_int_equal(ftruncate(fileno(file), STATE_STORE_FILE_MAX + 1), 0);
        assert_int_equal(fclose(file), 0);
        assert_int_equal(state_store_load(f->dir, &s, &e), -EFBIG);
        assert_null(s);
        char expected[96];

        snprintf(
                expected, sizeof(expected), "%u bytes, more than the limit of %u", STATE_STORE_FILE_MAX + 1,
                STATE_STORE_FILE_MAX);
        if (!strstr(e, expected))
                fail_msg("'%s' lacks '%s'", e, expected);
}

/* Thousands of VFs recorded (owned.json past 1 MiB, the limit until it held ~3600): written, folded and
 * read back whole. */
static void test_thousands(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL, *s2 = NULL;
        Fixture *f = *state;
        char addr[PCI_ADDRESS_STRING_MAX];
        struct stat st;
        uint64_t t;
        size_t n;

        s = load_ok(f);
        for (unsigned i = 0; i < 4096; i++) {
                PciAddress a = { .bus = (uint8_t)(0x10 + i / 256),
                                 .slot = (uint8_t)(i / 8 % 32),
                                 .function = (uint8_t)(i % 8) };
                OwnedChange c = { .address = pci_address_format(&a, addr),
                                  .driver_now = "mlx5_core",
                                  .driver_override = "vfio-pci",
                                  .driver = "vfio-pci" };

                assert_int_equal(state_store_begin(s, &c, 1, &t), 0);
                assert_int_equal(state_store_commit(s, t), 0);
        }
        assert_int_equal(stat(f->path, &st), 0);
        assert_true(st.st_size > 1024 * 1024);
        s2 = load_ok(f);
        assert_sorted_and_found(s2, 4096);
        assert_int_equal(state_store_get(s2, "0000:1f:1f.7")->phase, OWNED_PHASE_COMMITTED);
        state_store_get_devices(s2, &n);
        assert_int_equal(n, 4096);
}

static void test_interrupted(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL, *s2 = NULL;
        _cleanup_free_ const OwnedDevice **l = NULL;
        Fixture *f = *state;
        uint64_t t1, t2, t3;
        size_t n;

        s = load_ok(f);
        const OwnedChange a[] = { { .address = "0000:06:00.0",
                                    .driver_now = "nvme",
                                    .driver_override = "vfio-pci",
                                    .driver = "vfio-pci" } };
        const OwnedChange b[] = {
                { .address = "0000:02:01.0",
                  .driver_now = "e1000",
                  .driver_override = "vfio-pci",
                  .driver = "vfio-pci" },
                { .address = "0000:02:02.0",
                  .driver_now = "e1000",
                  .driver_override = "vfio-pci",
                  .driver = "vfio-pci" },
        };
        const OwnedChange c[] = { { .address = "0000:01:00.0",
                                    .driver_now = "e1000e",
                                    .driver_override = "vfio-pci",
                                    .driver = "vfio-pci" } };
        assert_int_equal(state_store_begin(s, a, 1, &t1), 0);
        assert_int_equal(state_store_commit(s, t1), 0);
        assert_int_equal(state_store_begin(s, c, 1, &t2), 0);
        assert_int_equal(state_store_begin(s, b, 2, &t3), 0);
        /* "crash": reload from disk */
        s2 = load_ok(f);
        assert_int_equal(state_store_list_interrupted(s2, &l, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(l[0]->transaction, t2);
        assert_string_equal(l[0]->address, "0000:01:00.0");
        assert_int_equal(l[1]->transaction, t3);
        assert_string_equal(l[1]->address, "0000:02:01.0");
        assert_string_equal(l[2]->address, "0000:02:02.0");
        assert_string_equal(l[2]->previous_driver, "e1000");
        free(l);
        l = NULL;
        /* finish one, roll back the other */
        assert_int_equal(state_store_commit(s2, t3), 0);
        assert_int_equal(state_store_forget(s2, "0000:01:00.0"), 0);
        assert_int_equal(state_store_list_interrupted(s2, &l, &n), 0);
        assert_int_equal(n, 0);
        assert_null(l);
}

static char *read_text(const char *path) {
        FILE *file = fopen(path, "re");
        struct stat st;
        char *text;

        assert_non_null(file);
        assert_int_equal(fstat(fileno(file), &st), 0);
        text = calloc(1, (size_t)st.st_size + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, (size_t)st.st_size, file), (size_t)st.st_size);
        assert_int_equal(fclose(file), 0);
        return text;
}

static size_t count_lines(const char *text) {
        size_t n = 0;

        for (const char *p = text; *p; p++)
                n += *p == '\n';
        return n;
}

static void append_text(const char *path, const char *text) {
        FILE *file = fopen(path, "ae");

        assert_non_null(file);
        fputs(text, file);
        assert_int_equal(fclose(file), 0);
}

static void test_log(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL, *s2 = NULL;
        _cleanup_free_ char *file = NULL, *file2 = NULL, *log = NULL;
        Fixture *f = *state;
        const OwnedDevice *d;
        struct stat st, st2;
        uint64_t t1, t2;
        size_t n;

        /* The first change writes owned.json and empties (creates) the log. */
        s = load_ok(f);
        const OwnedChange nic[] = { { .address = "0000:03:00.0",
                                      .driver_now = "e1000e",
                                      .driver_override = "vfio-pci",
                                      .driver = "vfio-pci" } };
        assert_int_equal(state_store_begin(s, nic, 1, &t1), 0);
        assert_int_equal(stat(f->log, &st), 0);
        assert_int_equal(st.st_size, 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(stat(f->path, &st), 0);
        file = read_text(f->path);
        assert_non_null(strstr(file, "\"last-record\": 1"));

        /* Later ones are appended to the log, one line each; owned.json stays as it was. */
        assert_int_equal(state_store_commit(s, t1), 0);
        const OwnedChange vf[] = { { .address = "0000:05:10.2",
                                     .driver_now = "ixgbevf",
                                     .driver_override = "vfio-pci",
                                     .driver = "vfio-pci" } };
        assert_int_equal(state_store_begin(s, vf, 1, &t2), 0);
        assert_int_equal(state_store_forget(s, "0000:03:00.0"), 0);
        assert_int_equal(stat(f->path, &st2), 0);
        assert_int_equal(st.st_ino, st2.st_ino);
        file2 = read_text(f->path);
        assert_string_equal(file, file2);
        log = read_text(f->log);
        assert_int_equal(count_lines(log), 3);
        assert_non_null(strstr(log, "{\"record\":2,\"commit\":1}\n"));
        assert_non_null(strstr(log, "{\"record\":3,\"begin\":2,\"devices\":[{\"address\":\"0000:05:10.2\""));
        assert_non_null(strstr(log, "{\"record\":4,\"forget\":\"0000:03:00.0\"}\n"));

        /* A load applies them. */
        s2 = load_ok(f);
        d = state_store_get_devices(s2, &n);
        assert_int_equal(n, 1);
        assert_string_equal(d[0].address, "0000:05:10.2");
        assert_int_equal(d[0].phase, OWNED_PHASE_BEGUN);
        assert_string_equal(d[0].original_driver, "ixgbevf");
        assert_string_equal(d[0].driver_override, "vfio-pci");
        assert_int_equal(d[0].transaction, t2);

        /* A crash cut the last record short: it never counted. */
        append_text(f->log, "{\"record\":5,\"commit\"");
        state_store_free(s2);
        s2 = load_ok(f);
        assert_int_equal(state_store_get(s2, "0000:05:10.2")->phase, OWNED_PHASE_BEGUN);
        /* The caller learns it (src/ logs it at debug only), once. */
        {
                _cleanup_strv_free_ char **w = state_store_take_warnings(s2);
                char expected[256];

                snprintf(expected, sizeof(expected), "%s: line 4: incomplete record, ignored", f->log);
                assert_non_null(w);
                assert_string_equal(w[0], expected);
                assert_null(w[1]);
                assert_null(state_store_take_warnings(s2));
        }
        /* The new store's first change folds the log into owned.json, cut record and all. */
        assert_int_equal(state_store_commit(s2, t2), 0);
        assert_int_equal(stat(f->log, &st), 0);
        assert_int_equal(st.st_size, 0);
        free(file);
        file = read_text(f->path);
        assert_non_null(strstr(file, "\"last-record\": 5"));
        state_store_free(s2);
        s2 = load_ok(f);
        assert_int_equal(state_store_get(s2, "0000:05:10.2")->phase, OWNED_PHASE_COMMITTED);

        /* A crash after owned.json was written, before the log was emptied: the records the file holds
         * are skipped, not applied twice (a forget applied twice would fail the load). */
        write_text(f->log, log);
        state_store_free(s2);
        s2 = load_ok(f);
        d = state_store_get_devices(s2, &n);
        assert_int_equal(n, 1);
        assert_int_equal(d[0].phase, OWNED_PHASE_COMMITTED);
        /* ...and the next record is numbered after the file's. */
        assert_int_equal(state_store_forget(s2, "0000:05:10.2"), 0);
        free(file);
        file = read_text(f->path);
        assert_non_null(strstr(file, "\"last-record\": 6"));
        state_store_free(s);
        s = load_ok(f);
        state_store_get_devices(s, &n);
        assert_int_equal(n, 0);

        /* A new store (the caller gave up on a broken one) starts counting at 1: its first change empties
         * the log, whose records count higher. */
        write_text(f->log, log);
        state_store_free(s);
        assert_int_equal(state_store_new(f->dir, &s), 0);
        assert_int_equal(state_store_begin(s, nic, 1, &t1), 0);
        assert_int_equal(t1, 1);
        assert_int_equal(stat(f->log, &st), 0);
        assert_int_equal(st.st_size, 0);
        state_store_free(s2);
        s2 = load_ok(f);
        d = state_store_get_devices(s2, &n);
        assert_int_equal(n, 1);
        assert_string_equal(d[0].address, "0000:03:00.0");
}

static void test_log_folds(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL, *s2 = NULL;
        _cleanup_free_ char *log = NULL;
        Fixture *f = *state;
        const OwnedDevice *d;
        uint64_t t = 0;
        size_t n;

        /* The log never holds more than STATE_STORE_LOG_MAX_RECORDS records: it is folded into
         * owned.json and emptied, and what a load sees stays the same. */
        s = load_ok(f);
        for (unsigned i = 0; i < STATE_STORE_LOG_MAX_RECORDS + 10; i++) {
                const OwnedChange c[] = { { .address = "0000:41:00.0",
                                            .driver_now = i % 2 ? "vfio-pci" : "nouveau",
                                            .driver_override = "vfio-pci",
                                            .driver = "vfio-pci" } };
                assert_int_equal(state_store_begin(s, c, 1, &t), 0);
                assert_int_equal(state_store_commit(s, t), 0);
                free(log);
                log = read_text(f->log);
                assert_true(count_lines(log) <= STATE_STORE_LOG_MAX_RECORDS);
        }
        assert_int_equal(t, STATE_STORE_LOG_MAX_RECORDS + 10);
        s2 = load_ok(f);
        d = state_store_get_devices(s2, &n);
        assert_int_equal(n, 1);
        assert_int_equal(d[0].transaction, t);
        assert_int_equal(d[0].phase, OWNED_PHASE_COMMITTED);
        assert_string_equal(d[0].original_driver, "nouveau");
        assert_string_equal(d[0].previous_driver, "vfio-pci");
}

static void expect_bad_log(Fixture *f, const char *text, const char *message) {
        StateStore *s = NULL;
        _cleanup_free_ char *e = NULL, *where = NULL;
        int r;

        write_text(f->log, text);
        r = state_store_load(f->dir, &s, &e);
        if (r != -EBADMSG)
                fail_msg("expected EBADMSG, got %s (%s) for: %s", strerror(-r), strna(e), text);
        assert_null(s);
        assert_non_null(e);
        assert_true(asprintf(&where, "%s: line ", f->log) > 0);
        if (!strstr(e, where) || !strstr(e, message))
                fail_msg("error '%s' lacks '%s' or '%s'", e, where, message);
}

#define LOG_DEVICE(t)                                                                                   \
        "{\"address\":\"0000:41:00.0\",\"transaction\":" #t                                             \
        ",\"phase\":\"begun\",\"original-driver\":null,"                                                \
        "\"original-driver-override\":null,\"previous-driver\":null,\"previous-driver-override\":null," \
        "\"driver-override\":\"vfio-pci\",\"driver\":\"vfio-pci\"}"

#define LOG_DEVICE_COMMITTED                                                                                \
        "{\"address\":\"0000:41:00.0\",\"transaction\":1,\"phase\":\"committed\",\"original-driver\":null," \
        "\"original-driver-override\":null,\"previous-driver\":null,\"previous-driver-override\":null,"     \
        "\"driver-override\":\"vfio-pci\",\"driver\":\"vfio-pci\"}"

static void test_log_corrupt(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL;
        Fixture *f = *state;
        size_t n;

        /* Without owned.json: the log alone. */
        write_text(
                f->log,
                "{\"record\":1,\"begin\":1,\"devices\":[" LOG_DEVICE(1) "]}\n{\"record\":2,\"commit\":1}\n");
        s = load_ok(f);
        state_store_get_devices(s, &n);
        assert_int_equal(n, 1);
        assert_int_equal(state_store_get(s, "0000:41:00.0")->phase, OWNED_PHASE_COMMITTED);

        expect_bad_log(f, "{\"record\":1,\"commit\":1}\n", "line 1: commit: no begun transaction 1");
        expect_bad_log(
                f, "{\"record\":1,\"forget\":\"0000:41:00.0\"}\n", "forget: '0000:41:00.0' is not recorded");
        expect_bad_log(f, "{\"record\":1,\"forget\":7}\n", "forget: not a string");
        expect_bad_log(f, "not json\n", "line 1: not one JSON value");
        expect_bad_log(f, "{\"record\":1,\"commit\":1} {}\n", "not one JSON value");
        expect_bad_log(f, "[1]\n", "expected a JSON object");
        expect_bad_log(f, "{\"record\":1,\"commit\":1,\"forget\":\"0000:41:00.0\"}\n", "exactly one of");
        expect_bad_log(f, "{\"record\":1}\n", "exactly one of");
        expect_bad_log(f, "{\"record\":1,\"commit\":1,\"when\":3}\n", "unknown key \"when\"");
        expect_bad_log(f, "{\"record\":1,\"commit\":1,\"devices\":[]}\n", "\"devices\" without \"begin\"");
        expect_bad_log(f, "{\"record\":0,\"commit\":1}\n", "record: out of range: 0");
        expect_bad_log(f, "{\"commit\":1}\n", "record: expected a positive integer, got null");
        expect_bad_log(
                f, "{\"record\":1,\"begin\":1,\"devices\":[]}\n", "devices: missing, empty or not an array");
        expect_bad_log(
                f, "{\"record\":1,\"begin\":2,\"devices\":[" LOG_DEVICE(1) "]}\n",
                "devices[0].transaction: 1, expected 2");
        expect_bad_log(
                f, "{\"record\":1,\"begin\":1,\"devices\":[" LOG_DEVICE_COMMITTED "]}\n",
                "devices[0].phase: 'committed' in a begin record");
        expect_bad_log(
                f, "{\"record\":1,\"begin\":1,\"devices\":[" LOG_DEVICE(1) "," LOG_DEVICE(1) "]}\n",
                "address '0000:41:00.0' listed twice");
        expect_bad_log(
                f,
                "{\"record\":1,\"begin\":1,\"devices\":[" LOG_DEVICE(
                        1) "]}\n"
                           "{\"record\":2,\"begin\":1,\"devices\":[" LOG_DEVICE(1) "]}\n",
                "line 2: begin: transaction 1 is not after 1");
        expect_bad_log(
                f, "{\"record\":1,\"begin\":1,\"devices\":[{\"address\":\"41:00.0\"}]}\n",
                "devices[0].address: not a canonical PCI address");
        expect_bad_log(
                f, "{\"record\":1,\"begin\":1,\"devices\":[" LOG_DEVICE(1) "]}\n\n",
                "line 2: not one JSON value");
        expect_bad_log(
                f,
                "{\"record\":1,\"begin\":1,\"devices\":[" LOG_DEVICE(
                        1) "]}\n"
                           "{\"record\":2,\"commit\":1}\n{\"record\":2,\"commit\":1}\n",
                "line 3: record: 2 is not after 2");
}

/* Every entry in numeric address order, each found by state_store_get(). */
/* Issue 13 section 2: a PF's SR-IOV originals survive later transactions, restarts and the log, and go
 * with forget-sriov alone. */
static void test_sriov(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL;
        Fixture *f = *state;
        const OwnedDevice *d;
        uint64_t t;

        s = load_ok(f);
        /* hostdevd sets 8 VFs and autoprobe 0 on a PF that had none and autoprobe 1. */
        assert_int_equal(
                state_store_begin(
                        s,
                        &(OwnedChange){ .address = "0000:03:00.0",
                                        .driver_now = "igb",
                                        .driver = "igb",
                                        .driver_override = NULL,
                                        .sriov = true,
                                        .sriov_numvfs_now = 0,
                                        .sriov_drivers_autoprobe_now = true,
                                        .writes_sriov_numvfs = true,
                                        .sriov_numvfs = 8,
                                        .writes_sriov_drivers_autoprobe = true,
                                        .sriov_drivers_autoprobe = false },
                        1, &t),
                0);
        assert_int_equal(state_store_commit(s, t), 0);
        /* Then 4 VFs: the originals stay. */
        assert_int_equal(
                state_store_begin(
                        s,
                        &(OwnedChange){ .address = "0000:03:00.0",
                                        .driver_now = "igb",
                                        .driver = "igb",
                                        .sriov = true,
                                        .sriov_numvfs_now = 8,
                                        .sriov_drivers_autoprobe_now = false,
                                        .writes_sriov_numvfs = true,
                                        .sriov_numvfs = 4,
                                        .sriov_drivers_autoprobe = false },
                        1, &t),
                0);
        assert_int_equal(state_store_commit(s, t), 0);
        /* A transaction that writes only autoprobe leaves the count hostdevd set as it was. */
        assert_int_equal(
                state_store_begin(
                        s,
                        &(OwnedChange){ .address = "0000:03:00.0",
                                        .driver_now = "igb",
                                        .driver = "igb",
                                        .sriov = true,
                                        .sriov_numvfs_now = 3, /* someone else's */
                                        .sriov_drivers_autoprobe_now = false,
                                        .writes_sriov_drivers_autoprobe = true,
                                        .sriov_drivers_autoprobe = false },
                        1, &t),
                0);
        assert_int_equal(state_store_commit(s, t), 0);
        /* A driver transaction of the PF keeps the SR-IOV part. */
        assert_int_equal(
                state_store_begin(
                        s,
                        &(OwnedChange){ .address = "0000:03:00.0",
                                        .driver_now = "igb",
                                        .driver_override = "vfio-pci",
                                        .driver = "vfio-pci" },
                        1, &t),
                0);
        assert_int_equal(state_store_commit(s, t), 0);
        for (int round = 0; round < 2; round++) {
                d = state_store_get(s, "0000:03:00.0");
                assert_non_null(d);
                assert_true(d->has_sriov);
                assert_int_equal(d->original_sriov_numvfs, 0);
                assert_true(d->original_sriov_drivers_autoprobe);
                assert_int_equal(d->sriov_numvfs, 4);
                assert_false(d->sriov_drivers_autoprobe);
                assert_string_equal(d->driver, "vfio-pci");
                /* Reloaded from owned.json and the log. */
                state_store_free(s);
                s = load_ok(f);
        }

        assert_int_equal(state_store_forget_sriov(s, "0000:03:00.0"), 0);
        assert_int_equal(state_store_forget_sriov(s, "0000:03:00.0"), -ENOENT);
        assert_int_equal(state_store_forget_sriov(s, "0000:04:00.0"), -ENOENT);
        state_store_free(s);
        s = load_ok(f);
        d = state_store_get(s, "0000:03:00.0");
        assert_non_null(d); /* the driver part stays */
        assert_false(d->has_sriov);
        assert_string_equal(d->driver, "vfio-pci");
}

static void test_sriov_bad(void **state) {
        Fixture *f = *state;

        expect_bad(f, DEVICE(", \"sriov-numvfs\": 8"), -EBADMSG, "the SR-IOV keys come together");
        expect_bad(
                f,
                DEVICE(", \"original-sriov-numvfs\": -1, \"original-sriov-drivers-autoprobe\": true, "
                       "\"sriov-numvfs\": 8, \"sriov-drivers-autoprobe\": false"),
                -EBADMSG, "devices[0].original-sriov-numvfs: expected a VF count, got -1");
        expect_bad(
                f,
                DEVICE(", \"original-sriov-numvfs\": 0, \"original-sriov-drivers-autoprobe\": 1, "
                       "\"sriov-numvfs\": 8, \"sriov-drivers-autoprobe\": false"),
                -EBADMSG, "devices[0].original-sriov-drivers-autoprobe: expected true or false, got 1");
        unlink(f->path);
        expect_bad_log(
                f,
                "{\"record\":1,\"begin\":1,\"devices\":[" LOG_DEVICE(
                        1) "]}\n{\"record\":2,\"forget-sriov\":\"0000:41:00.0\"}\n",
                "forget-sriov: '0000:41:00.0' has no SR-IOV record");
}

static void assert_sorted_and_found(const StateStore *s, size_t n_expected) {
        const OwnedDevice *d;
        size_t n;

        d = state_store_get_devices(s, &n);
        assert_int_equal(n, n_expected);
        for (size_t i = 0; i < n; i++) {
                PciAddress a, b;

                assert_ptr_equal(state_store_get(s, d[i].address), &d[i]);
                if (i == 0)
                        continue;
                assert_int_equal(pci_address_from_string(d[i - 1].address, &a), 0);
                assert_int_equal(pci_address_from_string(d[i].address, &b), 0);
                if (pci_address_compare(&a, &b) >= 0)
                        fail_msg("%s listed before %s", d[i - 1].address, d[i].address);
        }
}

/* Many functions in mixed order (a VMD domain's 5 digits among them); changes of one that fail change
 * nothing and leak nothing (ASan, valgrind), with the others' strings shared between old and new
 * state. */
static void test_many(void **state) {
        _cleanup_(state_store_freep) StateStore *s = NULL, *s2 = NULL;
        Fixture *f = *state;
        const OwnedDevice *d;
        char addr[PCI_ADDRESS_STRING_MAX];
        uint64_t t;
        size_t n = 0;

        s = load_ok(f);
        for (unsigned i = 0; i < 60; i++) {
                /* descending, then the domains 0x10000 and 0xffff, which sort by number, not text */
                unsigned k = 59 - i;
                PciAddress a = { .domain = k % 3 == 0 ? 0x10000
                                         : k % 3 == 1 ? 0xffff
                                                      : 0,
                                 .bus = (uint8_t)(k / 8),
                                 .slot = (uint8_t)(k % 32),
                                 .function = (uint8_t)(k % 8) };
                OwnedChange c = { .address = pci_address_format(&a, addr),
                                  .driver_now = "ixgbevf",
                                  .driver_override = "vfio-pci",
                                  .driver = "vfio-pci" };

                if (state_store_get(s, addr))
                        continue;
                assert_int_equal(state_store_begin(s, &c, 1, &t), 0);
                if (i % 2 == 0)
                        assert_int_equal(state_store_commit(s, t), 0);
                n++;
        }
        assert_sorted_and_found(s, n);
        s2 = load_ok(f);
        assert_sorted_and_found(s2, n);
        state_store_free(s2);
        s2 = NULL;

        /* A begin that re-records one, a begin of a new one and a forget, none of which can be written
         * (owned.json whole: the first change after a load): nothing changes. */
        state_store_free(s);
        s = load_ok(f);
        d = state_store_get_devices(s, &n);
        strcpy(addr, d[n / 2].address);
        const OwnedChange again[] = {
                { .address = addr, .driver_now = "vfio-pci", .driver_override_now = "vfio-pci" },
                { .address = "0000:ff:1f.7", .driver_now = "e1000e", .driver_override = "vfio-pci" },
        };
        if (geteuid() != 0) {
                assert_int_equal(chmod(f->dir, 0500), 0);
                assert_int_equal(state_store_begin(s, again, ELEMENTSOF(again), &t), -EACCES);
                assert_int_equal(state_store_forget(s, addr), -EACCES);
                assert_int_equal(chmod(f->dir, 0700), 0);
                assert_sorted_and_found(s, n);
                assert_null(state_store_get(s, "0000:ff:1f.7"));
                assert_string_equal(state_store_get(s, addr)->original_driver, "ixgbevf");
                assert_null(state_store_get(s, addr)->previous_driver_override);
        }

        /* The same, written: the re-recorded one keeps its original, the others are untouched. */
        assert_int_equal(state_store_begin(s, again, ELEMENTSOF(again), &t), 0);
        assert_sorted_and_found(s, n + 1);
        d = state_store_get(s, addr);
        assert_int_equal(d->transaction, t);
        assert_string_equal(d->original_driver, "ixgbevf");
        assert_string_equal(d->previous_driver, "vfio-pci");
        assert_string_equal(d->previous_driver_override, "vfio-pci");
        assert_null(d->driver);
        assert_int_equal(state_store_commit(s, t), 0);
        assert_int_equal(state_store_forget(s, "0000:ff:1f.7"), 0);
        assert_int_equal(state_store_forget(s, addr), 0);
        assert_null(state_store_get(s, addr));
        assert_sorted_and_found(s, n - 1);
        s2 = load_ok(f);
        assert_sorted_and_found(s2, n - 1);
        d = state_store_get_devices(s2, &n);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(d[i].original_driver, "ixgbevf");
                assert_string_equal(d[i].driver_override, "vfio-pci");
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_changes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_atomic_write, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_version, setup, teardown),
                cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
                cmocka_unit_test_setup_teardown(test_interrupted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_log, setup, teardown),
                cmocka_unit_test_setup_teardown(test_log_folds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_log_corrupt, setup, teardown),
                cmocka_unit_test_setup_teardown(test_error_one_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many, setup, teardown),
                cmocka_unit_test_setup_teardown(test_thousands, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sriov, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sriov_bad, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
