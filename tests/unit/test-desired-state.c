/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "desired-state.h"
#include "escape.h"
#include "strv.h"

/* A temporary root with usr/, etc/ and run/ drop-in directories, lowest priority first. */
typedef struct Fixture {
        char root[64];
        char dirs[3][128];
        const char *dir_list[4];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        static const char *const names[] = { "usr", "etc", "run" };

        strcpy(f->root, "/tmp/test-desired-state-XXXXXX");
        assert_non_null(mkdtemp(f->root));
        for (size_t i = 0; i < 3; i++) {
                snprintf(f->dirs[i], sizeof(f->dirs[i]), "%s/%s", f->root, names[i]);
                assert_int_equal(mkdir(f->dirs[i], 0755), 0);
                f->dir_list[i] = f->dirs[i];
        }
        f->dir_list[3] = NULL;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* Write |content| to dirs[dir]/name; returns the path in a static buffer. */
static const char *put(Fixture *f, int dir, const char *name, const char *content) {
        static char path[256];
        FILE *file;

        snprintf(path, sizeof(path), "%s/%s", f->dirs[dir], name);
        file = fopen(path, "we");
        assert_non_null(file);
        fputs(content, file);
        assert_int_equal(fclose(file), 0);
        return path;
}

static DesiredState *load(Fixture *f) {
        DesiredState *s = NULL;

        assert_int_equal(desired_state_load(f->dir_list, &s), 0);
        assert_non_null(s);
        return s;
}

static void test_good_file(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        const DesiredRule *r;

        put(f, 1, "50-gpu.conf",
            "# the GPU and its audio function\n"
            "[Match]\n"
            "Address=0000:41:00.0\n"
            "Vendor=10de\n"
            "Device=0x1EB8\n"
            "SubsystemVendor=10de\n"
            "SubsystemDevice=12a2\n"
            "Class=0x030000/0xff0000\n"
            "Slot=5\n"
            "Serial=00-25-38-B3-81-b0-a1-c2\n"
            "\n"
            "; comment\n"
            "[Device]\n"
            "Driver=vfio-pci\n"
            "Group=whole\n"
            "AllowCritical=yes\n");
        put(f, 1, "60-nic.conf",
            "[Match]\n"
            "Vendor=8086\n"
            "Device=1572\n"
            "[SRIOV]\n"
            "NumVFs=8\n"
            "VFDriver=vfio-pci\n");
        put(f, 1, "70-vf.conf",
            "[Match]\n"
            "PF=0000:03:00.0\n"
            "VFIndex=2-5\n"
            "[Device]\n"
            "Driver=none\n");

        s = load(f);
        assert_null(s->errors);
        assert_int_equal(s->n_rules, 3);
        assert_int_equal(s->n_rejected, 0);

        r = &s->rules[0];
        assert_true(strstr(r->path, "/etc/50-gpu.conf") != NULL);
        assert_true(r->match.has_address);
        assert_int_equal(r->match.address.bus, 0x41);
        assert_int_equal(r->match.vendor, 0x10de);
        assert_int_equal(r->match.device, 0x1eb8);
        assert_int_equal(r->match.subsystem_vendor, 0x10de);
        assert_int_equal(r->match.subsystem_device, 0x12a2);
        assert_true(r->match.has_class);
        assert_int_equal(r->match.class_value, 0x030000);
        assert_int_equal(r->match.class_mask, 0xff0000);
        assert_string_equal(r->match.slot, "5");
        assert_true(r->match.has_serial);
        assert_true(r->match.serial == UINT64_C(0x002538b381b0a1c2));
        assert_int_equal(r->match_line, 3);
        assert_int_equal(r->driver.kind, DRIVER_KIND_NAMED);
        assert_string_equal(r->driver.name, "vfio-pci");
        assert_int_equal(r->driver_line, 14);
        assert_int_equal(r->group, GROUP_POLICY_WHOLE);
        assert_true(r->allow_critical);
        assert_false(r->has_num_vfs);

        r = &s->rules[1];
        assert_int_equal(r->driver.kind, DRIVER_KIND_UNSET);
        assert_int_equal(r->group, GROUP_POLICY_STRICT); /* default */
        assert_false(r->allow_critical);
        assert_true(r->has_num_vfs);
        assert_int_equal(r->num_vfs, 8);
        assert_int_equal(r->num_vfs_line, 5);
        assert_int_equal(r->vf_driver.kind, DRIVER_KIND_NAMED);
        assert_string_equal(r->vf_driver.name, "vfio-pci");

        r = &s->rules[2];
        assert_true(r->match.has_pf);
        assert_int_equal(r->match.pf.bus, 3);
        assert_true(r->match.has_vf_index);
        assert_int_equal(r->match.vf_index_first, 2);
        assert_int_equal(r->match.vf_index_last, 5);
        assert_int_equal(r->driver.kind, DRIVER_KIND_NONE);

        desired_state_free(s);
}

/* Each bad file is rejected whole with exactly this message (path prefix added by the test). */
static void test_rejections(void **state) {
        static const struct {
                const char *content;
                const char *message; /* after "PATH:" */
        } table[] = {
                { "[Match]\nAddress=0000:41:00.0\n[Devices]\nDriver=vfio-pci\n",
                  "4: [Devices] Driver=vfio-pci: unknown section" },
                { "[Match]\nAddress=0000:41:00.0\nAdress=0000:41:00.1\n[Device]\nDriver=vfio-pci\n",
                  "3: Adress=0000:41:00.1: unknown key in [Match]" },
                { "[Match]\nAddress=0000:41:20.0\n[Device]\nDriver=vfio-pci\n",
                  "2: Address=0000:41:20.0: not a PCI address (DDDD:BB:SS.F)" },
                { "[Match]\nVendor=808g\n[Device]\nDriver=vfio-pci\n",
                  "2: Vendor=808g: not a 16-bit hex ID (e.g. 8086 or 0x8086)" },
                { "[Match]\nDevice=12345\n[Device]\nDriver=vfio-pci\n",
                  "2: Device=12345: not a 16-bit hex ID (e.g. 8086 or 0x8086)" },
                { "[Match]\nClass=0x020000/0x00ff00\n[Device]\nDriver=vfio-pci\n",
                  "2: Class=0x020000/0x00ff00: class has bits outside the mask" },
                { "[Match]\nClass=0x020000/0\n[Device]\nDriver=vfio-pci\n",
                  "2: Class=0x020000/0: mask 0 would match every function" },
                { "[Match]\nClass=network\n[Device]\nDriver=vfio-pci\n",
                  "2: Class=network: not a 24-bit hex class with optional /mask (e.g. 0x020000/0xff0000)" },
                { "[Match]\nPF=0000:03:00.0\nVFIndex=5-2\n[Device]\nDriver=vfio-pci\n",
                  "3: VFIndex=5-2: range is empty (first > last)" },
                { "[Match]\nPF=0000:03:00.0\nVFIndex=-1\n[Device]\nDriver=vfio-pci\n",
                  "3: VFIndex=-1: not a VF index or range (e.g. 2 or 0-3)" },
                { "[Match]\nVendor=8086\nVFIndex=1\n[Device]\nDriver=vfio-pci\n",
                  "3: VFIndex= needs PF= in the same [Match]" },
                { "[Match]\nSerial=00-25-38-b3-81-b0-a1\n[Device]\nDriver=vfio-pci\n",
                  "2: Serial=00-25-38-b3-81-b0-a1: not a PCIe serial number (xx-xx-xx-xx-xx-xx-xx-xx)" },
                { "[Match]\nSlot=a/b\n[Device]\nDriver=vfio-pci\n",
                  "2: Slot=a/b: not a slot name (as in /sys/bus/pci/slots/)" },
                { "[Match]\nVendor=8086\n[Device]\nDriver=vfio pci\n",
                  "4: Driver=vfio pci: not vfio-pci, host, none or a driver name ([A-Za-z0-9_-], not starting with '-', at most 64)" },
                { "[Match]\nVendor=8086\n[Device]\nDriver=vfio-pci # inline\n",
                  "4: Driver=vfio-pci # inline: not vfio-pci, host, none or a driver name ([A-Za-z0-9_-], not starting with '-', at most 64)" },
                { "[Match]\nVendor=8086\n[Device]\nDriver=vfio-pci\nGroup=all\n",
                  "5: Group=all: not whole or strict" },
                { "[Match]\nVendor=8086\n[Device]\nDriver=vfio-pci\nAllowCritical=maybe\n",
                  "5: AllowCritical=maybe: not a boolean (yes/no)" },
                { "[Match]\nVendor=8086\n[SRIOV]\nNumVFs=70000\n",
                  "4: NumVFs=70000: not a number of VFs (0..65535)" },
                { "[Match]\nVendor=8086\n[SRIOV]\nNumVFs=-1\n",
                  "4: NumVFs=-1: not a number of VFs (0..65535)" },
                { "[Match]\nVendor=8086\n[Device]\nDriver=vfio-pci\nDriver=host\n",
                  "5: Driver=host: assigned twice (first at line 4)" },
                { "[Match]\nVendor=\n[Device]\nDriver=vfio-pci\n", "2: Vendor=: empty value" },
                { "[Device]\nDriver=vfio-pci\n",
                  "1: [Match] section missing or empty: a rule needs at least one match key" },
                { "\n[Match]\n[Device]\nDriver=vfio-pci\n",
                  "2: [Match] section missing or empty: a rule needs at least one match key" },
                { "[Match]\nVendor=8086\n",
                  "1: nothing to do: set [Device] Driver= or Name=, or [SRIOV] NumVFs=/VFDriver=" },
                { "[Match]\nVendor=8086\n[Device]\nGroup=whole\n[SRIOV]\nNumVFs=2\n",
                  "4: Group= needs Driver= in the same [Device]" },
                { "Vendor=8086\n[Device]\nDriver=vfio-pci\n",
                  "1: Vendor=8086: assignment outside of a section" },
                { "[Match]\nVendor=8086\n[Device]\nDriver\n",
                  "4: syntax error: expected [Section] or Key=Value" },
                /* Hostile bytes are quoted escaped (issue 17). */
                { "[Match]\nAddress=0000:04:00.0\n[Device]\nDriver=vfio\xff\n",
                  "4: Driver=vfio\\xff: not vfio-pci, host, none or a driver name ([A-Za-z0-9_-], not starting with '-', at most 64)" },
                { "[Match]\nVend\xc0\xafor=8086\n[Device]\nDriver=vfio-pci\n",
                  "2: Vend\\xc0\\xafor=8086: unknown key in [Match]" },
                { "[Match]\nSlot=\x1b[2J\n[Device]\nDriver=vfio-pci\n",
                  "2: Slot=\\x1b[2J: not a slot name (as in /sys/bus/pci/slots/)" },
                { "[Match]\nVendor=8086\n[\xed\xa0\x80]\nX=\\\"\n[Device]\nDriver=vfio-pci\n",
                  "4: [\\xed\\xa0\\x80] X=\\\\\\\": unknown section" },
                /* Sections: an empty unknown one and a repeated known one are errors (hostdevd.conf(5)). */
                { "[Match]\nVendor=8086\n[Device]\nDriver=vfio-pci\n[Extra]\n",
                  "5: [Extra]: unknown section" },
                { "[Match]\nVendor=8086\n[Bad\xff]\n[Device]\nDriver=vfio-pci\n",
                  "3: [Bad\\xff]: unknown section" },
                { "[Match]\nVendor=8086\n[Match]\nDevice=1234\n[Device]\nDriver=vfio-pci\n",
                  "3: [Match]: section repeated (first at line 1), put its keys in one" },
                { "[Match]\nVendor=8086\n[Device]\nDriver=vfio-pci\n[Device]\nGroup=whole\n",
                  "5: [Device]: section repeated (first at line 3), put its keys in one" },
                { "\xef\xbb\xbf[Match]\nVendor=8086\n\n[SRIOV]\nNumVFs=1\n# c\n[SRIOV]\nVFDriver=vfio-pci\n",
                  "7: [SRIOV]: section repeated (first at line 4), put its keys in one" },
                { "[Match]\nVendor=8086\n[Device]\n [Match]\nDriver=vfio-pci\n",
                  "4: [Match]: section repeated (first at line 1), put its keys in one" },
                /* libinih reads an indented line after a key as its continuation, not as a section */
                { "[Match]\nVendor=8086\n [Match]\n[Device]\nDriver=vfio-pci\n",
                  "3: Vendor=[Match]: assigned twice (first at line 2)" },
        };
        Fixture *f = *state;

        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                char name[32], expected[512];
                const char *path;
                DesiredState *s;

                snprintf(name, sizeof(name), "%02zu-bad.conf", i);
                path = put(f, 0, name, table[i].content);
                snprintf(expected, sizeof(expected), "%s:%s", path, table[i].message);

                s = load(f);
                if (s->n_rules != 0 || !s->errors || !streq(s->errors[0], expected))
                        print_error(
                                "case %zu: got '%s', expected '%s'\n", i,
                                s->errors ? s->errors[0] : "(none)", expected);
                assert_int_equal(s->n_rules, 0);
                assert_int_equal(s->n_rejected, 1);
                assert_non_null(s->errors);
                assert_string_equal(s->errors[0], expected);
                STRV_FOREACH (e, s->errors)
                        assert_true(utf8_is_valid(*e));
                desired_state_free(s);
                assert_int_equal(unlink(path), 0);
        }
}

static void test_reject_collects_every_error(void **state) {
        Fixture *f = *state;
        const char *path;
        DesiredState *s;
        char e1[256], e2[256];

        path = put(f, 0, "10-two.conf", "[Match]\nVendor=zz\n[Device]\nDriver=vfio-pci\nGroup=every\n");
        s = load(f);
        assert_int_equal(strv_length(s->errors), 2);
        snprintf(e1, sizeof(e1), "%s:2: Vendor=zz: not a 16-bit hex ID (e.g. 8086 or 0x8086)", path);
        snprintf(e2, sizeof(e2), "%s:5: Group=every: not whole or strict", path);
        assert_string_equal(s->errors[0], e1);
        assert_string_equal(s->errors[1], e2);
        desired_state_free(s);
}

/* A quoted value is cut at a character boundary, never inside one (issue 17: 63 x 'a' + U+00E9). */
static void test_quote_bound(void **state) {
        Fixture *f = *state;
        char content[256], value[128], expected[512];
        const char *path;
        DesiredState *s;

        memset(value, 'a', ESCAPE_QUOTE_MAX - 1);
        strcpy(value + ESCAPE_QUOTE_MAX - 1, "\xc3\xa9"); /* one byte more than the bound */
        snprintf(content, sizeof(content), "[Match]\nVendor=8086\n[Device]\nDriver=%s\n", value);
        path = put(f, 0, "10-long.conf", content);
        s = load(f);
        assert_non_null(s->errors);
        assert_true(utf8_is_valid(s->errors[0]));
        /* ESCAPE_QUOTE_MAX - 3 'a's, then the marker: the 2-byte character is dropped whole. */
        value[ESCAPE_QUOTE_MAX - 3] = '\0';
        snprintf(
                expected, sizeof(expected),
                "%s:4: Driver=%s" ESCAPE_ELLIPSIS
                ": not vfio-pci, host, none or a driver name ([A-Za-z0-9_-], not starting with '-', at most 64)",
                path, value);
        assert_string_equal(s->errors[0], expected);
        desired_state_free(s);
}

/* Non-regular files are rejected without being opened (a FIFO would block), /dev/null masks, a file
 * removed since readdir() is skipped, a name that is not UTF-8 is published escaped. */
static void test_hostile_files(void **state) {
        Fixture *f = *state;
        char path[256], expected[512];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const DesiredRule *r;
        DesiredState *s;
        int fd;

        snprintf(path, sizeof(path), "%s/90-fifo.conf", f->dirs[1]);
        assert_int_equal(mkfifo(path, 0600), 0);
        snprintf(path, sizeof(path), "%s/91-dir.conf", f->dirs[1]);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof(path), "%s/92-dangling.conf", f->dirs[1]);
        assert_int_equal(symlink("/nonexistent/hostdevd-test", path), 0);
        snprintf(path, sizeof(path), "%s/93-null.conf", f->dirs[1]);
        assert_int_equal(symlink("/dev/null", path), 0);
        snprintf(path, sizeof(path), "%s/94-sock.conf", f->dirs[1]);
        assert_true(strlen(path) < sizeof(sa.sun_path));
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        put(f, 1, "60-\xff\\.conf", "[Match]\nVendor=8086\n[Device]\nDriver=vfio-pci\n");

        s = load(f);
        close(fd);
        assert_int_equal(s->n_rules, 1);
        r = &s->rules[0];
        snprintf(expected, sizeof(expected), "%s/60-\\xff\\\\.conf", f->dirs[1]);
        assert_string_equal(r->path, expected);
        assert_int_equal(s->n_rejected, 4);
        assert_int_equal(strv_length(s->errors), 4);
        snprintf(expected, sizeof(expected), "%s/90-fifo.conf:0: not a regular file (a FIFO)", f->dirs[1]);
        assert_string_equal(s->errors[0], expected);
        snprintf(
                expected, sizeof(expected), "%s/91-dir.conf:0: not a regular file (a directory)",
                f->dirs[1]);
        assert_string_equal(s->errors[1], expected);
        snprintf(
                expected, sizeof(expected), "%s/92-dangling.conf:0: cannot open: No such file or directory",
                f->dirs[1]);
        assert_string_equal(s->errors[2], expected);
        snprintf(expected, sizeof(expected), "%s/94-sock.conf:0: not a regular file (a socket)", f->dirs[1]);
        assert_string_equal(s->errors[3], expected);
        assert_int_equal(strv_length(s->masked), 1);
        snprintf(expected, sizeof(expected), "%s/93-null.conf", f->dirs[1]);
        assert_string_equal(s->masked[0], expected);
        desired_state_free(s);

        /* Gone between readdir() and open(): skipped, no error. */
        s = calloc(1, sizeof(DesiredState));
        assert_non_null(s);
        snprintf(path, sizeof(path), "%s/95-gone.conf", f->dirs[1]);
        assert_int_equal(desired_state_add_file(s, path), 0);
        assert_null(s->errors);
        assert_int_equal(s->n_rejected, 0);
        assert_null(s->masked);
        desired_state_free(s);
}

static void test_long_line(void **state) {
        Fixture *f = *state;
        char content[1024], expected[512];
        const char *path;
        DesiredState *s;

        /* libinih would split a line longer than its buffer and parse the tail as a line of its own. */
        snprintf(
                content, sizeof(content),
                "[Match]\nVendor=8086\n[Device]\nDriver=vfio-pci\n#%0600d\nSlot=x\n", 0);
        path = put(f, 0, "10-long.conf", content);
        s = load(f);
        assert_int_equal(s->n_rules, 0);
        assert_non_null(s->errors);
        snprintf(expected, sizeof(expected), "%s:5: line longer than", path);
        assert_true(strneq(s->errors[0], expected, strlen(expected)));
        desired_state_free(s);
}

/* A bad file does not take the others down, and the caller's previous state is a separate object. */
static void test_bad_file_keeps_good_ones(void **state) {
        Fixture *f = *state;
        DesiredState *old, *new;

        put(f, 1, "50-gpu.conf", "[Match]\nAddress=0000:41:00.0\n[Device]\nDriver=vfio-pci\n");
        put(f, 1, "60-nic.conf", "[Match]\nVendor=8086\n[SRIOV]\nNumVFs=4\n");
        old = load(f);
        assert_int_equal(old->n_rules, 2);

        /* The operator breaks 60-nic.conf: the new load rejects it, the old object is untouched. */
        put(f, 1, "60-nic.conf", "[Match]\nVendor=8086\n[SRIOV]\nNumVFs=four\n");
        new = load(f);
        assert_int_equal(new->n_rules, 1);
        assert_true(strstr(new->rules[0].path, "50-gpu.conf") != NULL);
        assert_int_equal(new->n_rejected, 1);
        assert_int_equal(strv_length(new->errors), 1);
        assert_true(strstr(new->errors[0], "60-nic.conf:4: NumVFs=four: ") != NULL);

        assert_int_equal(old->n_rules, 2);
        assert_int_equal(old->rules[1].num_vfs, 4);
        assert_null(old->errors);
        desired_state_free(old);
        desired_state_free(new);
}

static void test_layering(void **state) {
        Fixture *f = *state;
        char path[256];
        DesiredState *s;

        /* Lexical order of basenames across all directories, whatever directory holds them. */
        put(f, 2, "10-run.conf", "[Match]\nVendor=0001\n[Device]\nDriver=none\n");
        put(f, 0, "20-usr.conf", "[Match]\nVendor=0002\n[Device]\nDriver=none\n");
        put(f, 1, "30-etc.conf", "[Match]\nVendor=0003\n[Device]\nDriver=none\n");
        /* Same name: /etc replaces /usr/lib. */
        put(f, 0, "40-same.conf", "[Match]\nVendor=0004\n[Device]\nDriver=none\n");
        put(f, 1, "40-same.conf", "[Match]\nVendor=0044\n[Device]\nDriver=none\n");
        /* /run masks with a symlink to /dev/null, even a broken file below it. */
        put(f, 1, "50-masked.conf", "[Match]\nVendor=zzzz\n");
        snprintf(path, sizeof(path), "%s/50-masked.conf", f->dirs[2]);
        assert_int_equal(symlink("/dev/null", path), 0);
        /* An empty file masks too. */
        put(f, 0, "60-empty.conf", "[Match]\nVendor=0006\n[Device]\nDriver=none\n");
        put(f, 2, "60-empty.conf", "");
        /* Not drop-ins. */
        put(f, 1, "70-other.txt", "garbage");
        put(f, 1, ".80-hidden.conf", "garbage");
        /* Only comments: as empty. */
        put(f, 1, "90-comments.conf", "# nothing yet\n; really\n");

        s = load(f);
        assert_null(s->errors);
        assert_int_equal(s->n_rules, 4);
        assert_int_equal(s->rules[0].match.vendor, 0x0001);
        assert_true(strstr(s->rules[0].path, "/run/10-run.conf") != NULL);
        assert_int_equal(s->rules[1].match.vendor, 0x0002);
        assert_int_equal(s->rules[2].match.vendor, 0x0003);
        assert_int_equal(s->rules[3].match.vendor, 0x0044);
        assert_true(strstr(s->rules[3].path, "/etc/40-same.conf") != NULL);
        assert_int_equal(strv_length(s->masked), 3);
        assert_true(strstr(s->masked[0], "/run/50-masked.conf") != NULL);
        assert_true(strstr(s->masked[1], "/run/60-empty.conf") != NULL);
        assert_true(strstr(s->masked[2], "/etc/90-comments.conf") != NULL);
        desired_state_free(s);
}

static void test_missing_dirs(void **state) {
        const char *dirs[] = { "/nonexistent/hostdevd-a", "/nonexistent/hostdevd-b", NULL };
        DesiredState *s = NULL;

        assert_int_equal(desired_state_load(dirs, &s), 0);
        assert_int_equal(s->n_rules, 0);
        assert_null(s->errors);
        desired_state_free(s);
}

static void test_driver_spec(void **state) {
        DriverSpec d = {};

        assert_int_equal(driver_spec_parse("host", &d), 0);
        assert_int_equal(d.kind, DRIVER_KIND_HOST);
        assert_string_equal(driver_spec_to_string(&d), "host");
        assert_int_equal(driver_spec_parse("none", &d), 0);
        assert_int_equal(d.kind, DRIVER_KIND_NONE);
        assert_int_equal(driver_spec_parse("snd_hda_intel", &d), 0);
        assert_int_equal(d.kind, DRIVER_KIND_NAMED);
        assert_string_equal(driver_spec_to_string(&d), "snd_hda_intel");
        driver_spec_done(&d);
        assert_int_equal(driver_spec_parse("", &d), -EINVAL);
        assert_int_equal(driver_spec_parse("../x", &d), -EINVAL);
        assert_int_equal(driver_spec_parse("vfio-pci\n", &d), -EINVAL);
        /* A leading '-' names no driver and reads as an option; one inside or a leading digit is fine. */
        assert_int_equal(driver_spec_parse("--help", &d), -EINVAL);
        assert_int_equal(driver_spec_parse("-", &d), -EINVAL);
        assert_int_equal(driver_spec_parse("3c59x", &d), 0);
        assert_string_equal(driver_spec_to_string(&d), "3c59x");
        driver_spec_done(&d);
        assert_true(driver_name_is_vfio("vfio-pci"));
        assert_true(driver_name_is_vfio("mlx5_vfio_pci"));
        assert_false(driver_name_is_vfio("nvme"));
        assert_string_equal(group_policy_to_string(GROUP_POLICY_WHOLE), "whole");
        assert_int_equal(group_policy_from_string("strict"), GROUP_POLICY_STRICT);
        assert_int_equal(group_policy_from_string("Strict"), _GROUP_POLICY_INVALID);
        assert_string_equal(driver_kind_to_string(DRIVER_KIND_NAMED), "named");
}

/* ---- resolution on in-memory functions ------------------------------------------------------ */

static PciDevice *dev(const char *address, uint16_t vendor, uint16_t device, uint32_t class_code) {
        PciDevice *d = calloc(1, sizeof(PciDevice));

        assert_non_null(d);
        strcpy(d->address, address);
        d->vendor_id = vendor;
        d->device_id = device;
        d->class_code = class_code;
        d->iommu_group = -1;
        d->vf_index = -1;
        return d;
}

static void test_match(void **state) {
        Fixture *f = *state;
        _cleanup_(pci_device_freep) PciDevice *nic = dev("0000:03:00.0", 0x8086, 0x1572, 0x020000);
        _cleanup_(pci_device_freep) PciDevice *vf = dev("0000:03:02.1", 0x8086, 0x154c, 0x020000);
        DesiredState *s;

        nic->subsystem_vendor_id = 0x8086;
        nic->subsystem_device_id = 0x0001;
        nic->physical_slot = strdup("7");
        nic->has_serial = true;
        nic->serial = UINT64_C(0x0011223344556677);
        vf->sriov_role = SRIOV_ROLE_VF;
        vf->physfn = strdup("0000:03:00.0");
        vf->vf_index = 1;

        put(f, 1, "01.conf", "[Match]\nClass=0x020000/0xff0000\n[Device]\nDriver=none\n");
        put(f, 1, "02.conf", "[Match]\nClass=0x010000/0xff0000\n[Device]\nDriver=none\n");
        put(f, 1, "03.conf", "[Match]\nPF=0000:03:00.0\nVFIndex=0-1\n[Device]\nDriver=none\n");
        put(f, 1, "04.conf", "[Match]\nPF=0000:03:00.0\nVFIndex=2\n[Device]\nDriver=none\n");
        put(f, 1, "05.conf", "[Match]\nSlot=7\nSerial=00-11-22-33-44-55-66-77\n[Device]\nDriver=none\n");
        put(f, 1, "06.conf", "[Match]\nSlot=7\nSerial=00-11-22-33-44-55-66-78\n[Device]\nDriver=none\n");
        put(f, 1, "07.conf",
            "[Match]\nVendor=8086\nSubsystemVendor=8086\nSubsystemDevice=0001\n[Device]\nDriver=none\n");
        put(f, 1, "08.conf", "[Match]\nVendor=8086\nSubsystemDevice=0002\n[Device]\nDriver=none\n");
        put(f, 1, "09.conf", "[Match]\nAddress=03:00.0\n[Device]\nDriver=none\n");
        s = load(f);
        assert_int_equal(s->n_rules, 9);

        assert_true(device_match_test(&s->rules[0].match, nic));
        assert_true(device_match_test(&s->rules[0].match, vf));
        assert_false(device_match_test(&s->rules[1].match, nic));
        assert_false(device_match_test(&s->rules[2].match, nic)); /* PF= never matches the PF */
        assert_true(device_match_test(&s->rules[2].match, vf));
        assert_false(device_match_test(&s->rules[3].match, vf)); /* index 1 not in 2..2 */
        assert_true(device_match_test(&s->rules[4].match, nic));
        assert_false(device_match_test(&s->rules[5].match, nic));
        assert_false(device_match_test(&s->rules[4].match, vf)); /* no slot, no serial */
        assert_true(device_match_test(&s->rules[6].match, nic));
        assert_false(device_match_test(&s->rules[7].match, nic));
        assert_true(device_match_test(&s->rules[8].match, nic)); /* short address form */
        assert_false(device_match_test(&s->rules[8].match, vf));
        desired_state_free(s);
}

/* [Device] Name=: the pattern, uniqueness across files (file:line), lookups both ways. */
static void test_names(void **state) {
        Fixture *f = *state;
        _cleanup_(pci_device_freep) PciDevice *gpu = dev("0000:41:00.0", 0x10de, 0x2236, 0x030200);
        _cleanup_(pci_device_freep) PciDevice *nic = dev("0000:03:00.0", 0x8086, 0x10d3, 0x020000);
        _cleanup_(pci_device_freep) PciDevice *nic2 = dev("0000:03:00.1", 0x8086, 0x10d3, 0x020000);
        const PciDevice *all[] = { gpu, nic, nic2 };
        const PciDevice *found = NULL;
        DesiredState *s;

        assert_true(device_name_is_valid("gpu0"));
        assert_true(device_name_is_valid("A.b_c-9"));
        assert_false(device_name_is_valid("g")); /* at least 2 */
        assert_false(device_name_is_valid("-gpu"));
        assert_false(device_name_is_valid("_gpu"));
        assert_false(device_name_is_valid("gpu 0"));
        assert_false(device_name_is_valid("0000:41:00.0"));
        assert_false(device_name_is_valid("/org/x"));
        assert_false(device_name_is_valid(""));
        assert_false(device_name_is_valid(NULL));

        /* Name= alone is a rule; Name= with a driver too */
        put(f, 1, "50-gpu.conf", "[Match]\nAddress=0000:41:00.0\n[Device]\nName=gpu0\nDriver=vfio-pci\n");
        put(f, 1, "60-nics.conf", "[Match]\nVendor=8086\n[Device]\nName=nics\n");
        s = load(f);
        assert_null(s->errors);
        assert_int_equal(s->n_rules, 2);
        assert_string_equal(s->rules[0].name, "gpu0");
        assert_int_equal(s->rules[0].name_line, 4);
        assert_string_equal(desired_state_device_name(s, gpu), "gpu0");
        assert_string_equal(desired_state_device_name(s, nic), "nics");
        assert_int_equal(desired_state_find_name(s, all, 3, "gpu0", &found), 0);
        assert_ptr_equal(found, gpu);
        assert_int_equal(desired_state_find_name(s, all, 3, "nics", &found), -ENOTUNIQ);
        assert_int_equal(desired_state_find_name(s, all, 1, "nics", &found), -ENXIO);
        assert_int_equal(desired_state_find_name(s, all, 3, "nope", &found), -ENOENT);
        desired_state_free(s);

        /* a later file renames one of the two: each then has its own name */
        put(f, 1, "70-nic1.conf", "[Match]\nAddress=0000:03:00.1\n[Device]\nName=nic1\n");
        s = load(f);
        assert_null(s->errors);
        assert_string_equal(desired_state_device_name(s, nic2), "nic1");
        assert_int_equal(desired_state_find_name(s, all, 3, "nics", &found), 0);
        assert_ptr_equal(found, nic);
        desired_state_free(s);

        /* duplicates: the later file is rejected, naming the first */
        put(f, 2, "80-dup.conf", "[Match]\nVendor=10de\n[Device]\n\nName=gpu0\n");
        put(f, 1, "90-bad.conf", "[Match]\nVendor=10de\n[Device]\nName=-x\n");
        s = load(f);
        assert_int_equal(s->n_rejected, 2);
        assert_int_equal(strv_length(s->errors), 2);
        assert_non_null(strstr(s->errors[0], "80-dup.conf:5: Name=gpu0: already used by "));
        assert_non_null(strstr(s->errors[0], "50-gpu.conf:4"));
        assert_non_null(strstr(s->errors[1], "90-bad.conf:4: Name=-x: not a device name"));
        desired_state_free(s);
}

static void test_resolve_conflicts(void **state) {
        Fixture *f = *state;
        _cleanup_(pci_device_freep) PciDevice *gpu = dev("0000:41:00.0", 0x10de, 0x1eb8, 0x030000);
        _cleanup_(pci_device_freep) PciDevice *pf = dev("0000:03:00.0", 0x8086, 0x1572, 0x020000);
        _cleanup_(pci_device_freep) PciDevice *vf0 = dev("0000:03:02.0", 0x8086, 0x154c, 0x020000);
        _cleanup_(pci_device_freep) PciDevice *vf1 = dev("0000:03:02.1", 0x8086, 0x154c, 0x020000);
        _cleanup_(pci_device_freep) PciDevice *other = dev("0000:05:00.0", 0x1234, 0x5678, 0x020000);
        const PciDevice *devices[] = { other, vf1, gpu, vf0, pf }; /* any order */
        DesiredResolution *r = NULL;
        const DesiredDevice *dd;
        const DesiredPf *dp;
        DesiredState *s;
        char expected[1024];

        pf->sriov_role = SRIOV_ROLE_PF;
        pf->sriov_total_vfs = 8;
        vf0->sriov_role = vf1->sriov_role = SRIOV_ROLE_VF;
        vf0->physfn = strdup("0000:03:00.0");
        vf1->physfn = strdup("0000:03:00.0");
        vf0->vf_index = 0;
        vf1->vf_index = 1;

        /* Two rules for the GPU: the later file wins, the conflict names both. */
        put(f, 0, "50-gpu.conf", "[Match]\nVendor=10de\n[Device]\nDriver=host\n");
        put(f, 1, "60-gpu.conf", "[Match]\nAddress=0000:41:00.0\n[Device]\nDriver=vfio-pci\nGroup=whole\n");
        /* Same outcome twice: no conflict. */
        put(f, 1, "61-gpu-again.conf", "[Match]\nDevice=1eb8\n[Device]\nDriver=vfio-pci\nGroup=whole\n");
        /* PF: NumVFs from two rules, VFDriver from one; VF 1 has its own rule, which beats VFDriver=. */
        put(f, 0, "70-nic.conf", "[Match]\nDevice=1572\n[SRIOV]\nNumVFs=2\nVFDriver=vfio-pci\n");
        put(f, 2, "71-nic.conf", "[Match]\nAddress=0000:03:00.0\n[SRIOV]\nNumVFs=4\n");
        put(f, 1, "72-vf1.conf", "[Match]\nPF=0000:03:00.0\nVFIndex=1\n[Device]\nDriver=iavf\n");

        s = load(f);
        assert_null(s->errors);
        assert_int_equal(s->n_rules, 6);
        assert_int_equal(desired_state_resolve_devices(s, devices, 5, &r), 0);

        assert_int_equal(r->n_devices, 3); /* gpu, vf0, vf1; pf and other have no driver rule */
        assert_string_equal(r->devices[0].address, "0000:03:02.0");
        assert_string_equal(r->devices[1].address, "0000:03:02.1");
        assert_string_equal(r->devices[2].address, "0000:41:00.0");

        dd = desired_resolution_get_device(r, "0000:41:00.0");
        assert_non_null(dd);
        assert_string_equal(driver_spec_to_string(&dd->driver), "vfio-pci");
        assert_int_equal(dd->group, GROUP_POLICY_WHOLE);
        snprintf(expected, sizeof(expected), "%s/61-gpu-again.conf:4", f->dirs[1]);
        assert_string_equal(dd->source, expected);

        dd = desired_resolution_get_device(r, "0000:03:02.0");
        assert_string_equal(driver_spec_to_string(&dd->driver), "vfio-pci");
        assert_true(dd->from_vf_driver);
        snprintf(expected, sizeof(expected), "%s/70-nic.conf:5", f->dirs[0]);
        assert_string_equal(dd->source, expected);

        dd = desired_resolution_get_device(r, "0000:03:02.1");
        assert_string_equal(driver_spec_to_string(&dd->driver), "iavf");
        assert_false(dd->from_vf_driver);

        assert_null(desired_resolution_get_device(r, "0000:05:00.0"));

        assert_int_equal(r->n_pfs, 1);
        dp = desired_resolution_get_pf(r, "0000:03:00.0");
        assert_non_null(dp);
        assert_true(dp->has_num_vfs);
        assert_int_equal(dp->num_vfs, 4);
        snprintf(expected, sizeof(expected), "%s/71-nic.conf:4", f->dirs[2]);
        assert_string_equal(dp->num_vfs_source, expected);
        assert_string_equal(driver_spec_to_string(&dp->vf_driver), "vfio-pci");

        /* Conflicts, in address order: NumVFs of the PF, VF 1's rule over VFDriver=, the GPU. */
        assert_int_equal(strv_length(r->conflicts), 3);
        snprintf(
                expected, sizeof(expected),
                "0000:03:02.1: Driver=iavf (%s/72-vf1.conf:5) overrides VFDriver=vfio-pci (%s/70-nic.conf:5) of PF 0000:03:00.0",
                f->dirs[1], f->dirs[0]);
        assert_string_equal(r->conflicts[1], expected);
        snprintf(
                expected, sizeof(expected),
                "0000:03:00.0: NumVFs=4 (%s/71-nic.conf:4) overrides NumVFs=2 (%s/70-nic.conf:4)",
                f->dirs[2], f->dirs[0]);
        assert_string_equal(r->conflicts[0], expected);
        snprintf(
                expected, sizeof(expected),
                "0000:41:00.0: Driver=vfio-pci Group=whole (%s/61-gpu-again.conf:4) overrides Driver=host (%s/50-gpu.conf:4)",
                f->dirs[1], f->dirs[0]);
        assert_string_equal(r->conflicts[2], expected);

        desired_resolution_free(r);
        desired_state_free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_driver_spec),
                cmocka_unit_test(test_missing_dirs),
                cmocka_unit_test_setup_teardown(test_good_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reject_collects_every_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
                cmocka_unit_test_setup_teardown(test_quote_bound, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_file_keeps_good_ones, setup, teardown),
                cmocka_unit_test_setup_teardown(test_layering, setup, teardown),
                cmocka_unit_test_setup_teardown(test_match, setup, teardown),
                cmocka_unit_test_setup_teardown(test_resolve_conflicts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
