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

#include "holders.h"

/* A fake /proc: PID/comm and PID/fd/N symlinks (dangling: readlink() is all the scan does). */
typedef struct Fixture {
        char root[64];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        strcpy(f->root, "/tmp/test-holders-XXXXXX");
        assert_non_null(mkdtemp(f->root));
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void add_process(Fixture *f, const char *pid, const char *comm) {
        char path[256];
        FILE *file;

        snprintf(path, sizeof(path), "%s/%s", f->root, pid);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/%s/fd", f->root, pid);
        assert_int_equal(mkdir(path, 0755), 0);
        if (!comm)
                return;
        snprintf(path, sizeof(path), "%s/%s/comm", f->root, pid);
        file = fopen(path, "we");
        assert_non_null(file);
        fprintf(file, "%s\n", comm);
        assert_int_equal(fclose(file), 0);
}

static void add_fd(Fixture *f, const char *pid, const char *fd, const char *target) {
        char path[256];

        snprintf(path, sizeof(path), "%s/%s/fd/%s", f->root, pid, fd);
        assert_int_equal(symlink(target, path), 0);
}

static void test_scan(void **state) {
        Fixture *f = *state;
        Holder *h = NULL;
        size_t n = 0;
        char path[256];

        add_process(f, "4242", "qemu-system-x86");
        add_fd(f, "4242", "0", "/dev/null");
        add_fd(f, "4242", "3", "/dev/vfio/vfio"); /* container: pins nothing */
        add_fd(f, "4242", "4", "/dev/vfio/12");
        add_fd(f, "4242", "5", "/dev/vfio/12"); /* same node twice: one entry */
        add_fd(f, "4242", "6", "/dev/vfio/devices/vfio3");
        add_fd(f, "4242", "7", "socket:[1234]");
        add_process(f, "77", "cloud-hypervisor");
        add_fd(f, "77", "9", "/dev/vfio/7");
        add_process(f, "100", NULL); /* comm unreadable */
        add_fd(f, "100", "1", "/dev/vfio/8");
        add_process(f, "200", "bash");
        add_fd(f, "200", "1", "/dev/vfio/12x");
        add_fd(f, "200", "2", "/dev/vfio/devices/vfio");
        add_fd(f, "200", "3", "/dev/vfio/devices/foo");
        /* Not processes. */
        snprintf(path, sizeof(path), "%s/self", f->root);
        assert_int_equal(symlink("4242", path), 0);
        snprintf(path, sizeof(path), "%s/sys", f->root);
        assert_int_equal(mkdir(path, 0755), 0);
        /* A process without an fd directory (exited, or not ours). */
        snprintf(path, sizeof(path), "%s/555", f->root);
        assert_int_equal(mkdir(path, 0755), 0);

        assert_int_equal(holders_scan(f->root, &h, &n), 0);
        assert_int_equal(n, 4);
        assert_int_equal(h[0].pid, 77);
        assert_string_equal(h[0].comm, "cloud-hypervisor");
        assert_string_equal(h[0].node, "/dev/vfio/7");
        assert_int_equal(h[1].pid, 100);
        assert_string_equal(h[1].comm, "?");
        assert_string_equal(h[1].node, "/dev/vfio/8");
        assert_int_equal(h[2].pid, 4242);
        assert_string_equal(h[2].comm, "qemu-system-x86");
        assert_string_equal(h[2].node, "/dev/vfio/12");
        assert_int_equal(h[3].pid, 4242);
        assert_string_equal(h[3].node, "/dev/vfio/devices/vfio3");
        holders_free(h, n);
}

static void test_empty_and_missing(void **state) {
        Fixture *f = *state;
        Holder *h = (Holder *)0x1;
        size_t n = 99;
        char path[256];

        assert_int_equal(holders_scan(f->root, &h, &n), 0);
        assert_null(h);
        assert_int_equal(n, 0);

        snprintf(path, sizeof(path), "%s/nope", f->root);
        assert_int_equal(holders_scan(path, &h, &n), -ENOENT);
}

static void test_holds_device(void **state) {
        Holder group = { .pid = 1, .comm = (char *)"qemu", .node = (char *)"/dev/vfio/12" };
        Holder cdev = { .pid = 1, .comm = (char *)"qemu", .node = (char *)"/dev/vfio/devices/vfio3" };
        PciDevice d = { .iommu_group = 12 };
        int32_t g = -1;

        /* The group node holds every function of the group. */
        assert_true(holder_holds_device(&group, &d));
        d.iommu_group = 13;
        assert_false(holder_holds_device(&group, &d));
        d.iommu_group = -1;
        assert_false(holder_holds_device(&group, &d));
        /* The cdev only the function it belongs to. */
        assert_false(holder_holds_device(&cdev, &d));
        d.vfio_device = (char *)"/dev/vfio/devices/vfio3";
        assert_true(holder_holds_device(&cdev, &d));
        d.vfio_device = (char *)"/dev/vfio/devices/vfio30";
        assert_false(holder_holds_device(&cdev, &d));

        assert_true(holder_node_is_group("/dev/vfio/12", &g));
        assert_int_equal(g, 12);
        assert_false(holder_node_is_group("/dev/vfio/vfio", NULL));
        assert_false(holder_node_is_group("/dev/vfio/", NULL));
        assert_false(holder_node_is_group(NULL, NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
                cmocka_unit_test_setup_teardown(test_empty_and_missing, setup, teardown),
                cmocka_unit_test(test_holds_device),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
