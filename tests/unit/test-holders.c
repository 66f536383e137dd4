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
#include <sys/fanotify.h>
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
        /* The same for an mdev, by its group and cdev. */
        assert_true(holder_holds_node(&group, 12, NULL));
        assert_false(holder_holds_node(&group, -1, "/dev/vfio/devices/vfio3"));
        assert_true(holder_holds_node(&cdev, 40, "/dev/vfio/devices/vfio3"));
        assert_false(holder_holds_node(&cdev, 40, NULL));

        assert_true(holder_node_is_group("/dev/vfio/12", &g));
        assert_int_equal(g, 12);
        assert_false(holder_node_is_group("/dev/vfio/vfio", NULL));
        assert_false(holder_node_is_group("/dev/vfio/", NULL));
        assert_false(holder_node_is_group(NULL, NULL));
}

static void remove_fd(Fixture *f, const char *pid, const char *fd) {
        char path[256];

        snprintf(path, sizeof(path), "%s/%s/fd/%s", f->root, pid, fd);
        assert_int_equal(unlink(path), 0);
}

static void test_scan_pid(void **state) {
        Fixture *f = *state;
        Holder *h = NULL;
        size_t n = 0;

        add_process(f, "4242", "qemu-system-x86");
        add_fd(f, "4242", "3", "/dev/vfio/vfio");
        add_fd(f, "4242", "4", "/dev/vfio/12");
        add_fd(f, "4242", "5", "/dev/vfio/12");
        add_process(f, "77", "cloud-hypervisor");
        add_fd(f, "77", "9", "/dev/vfio/7");

        assert_int_equal(holders_scan_pid(f->root, 4242, &h, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(h[0].pid, 4242);
        assert_string_equal(h[0].comm, "qemu-system-x86");
        assert_string_equal(h[0].node, "/dev/vfio/12");
        /* Appends; a process that is gone adds nothing. */
        assert_int_equal(holders_scan_pid(f->root, 31337, &h, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(holders_scan_pid(f->root, 77, &h, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(h[1].node, "/dev/vfio/7");
        holders_free(h, n);
}

static Holder *one(pid_t pid, const char *comm, const char *node) {
        Holder *h = calloc(1, sizeof(Holder));

        assert_non_null(h);
        h->pid = pid;
        h->comm = strdup(comm);
        h->node = strdup(node);
        return h;
}

static void test_replace_pid(void **state) {
        Holder *set = NULL, *fresh;
        size_t n = 0;

        /* Into an empty set. */
        assert_int_equal(holders_set_replace_pid(&set, &n, 50, one(50, "qemu", "/dev/vfio/3"), 1), 1);
        assert_int_equal(n, 1);
        /* Sorted by pid: before and after. */
        assert_int_equal(holders_set_replace_pid(&set, &n, 7, one(7, "ch", "/dev/vfio/9"), 1), 1);
        assert_int_equal(holders_set_replace_pid(&set, &n, 90, one(90, "vmm", "/dev/vfio/1"), 1), 1);
        assert_int_equal(n, 3);
        assert_int_equal(set[0].pid, 7);
        assert_int_equal(set[1].pid, 50);
        assert_int_equal(set[2].pid, 90);
        /* The same node again (a new comm after an exec) is no change of the set. */
        assert_int_equal(holders_set_replace_pid(&set, &n, 50, one(50, "qemu-kvm", "/dev/vfio/3"), 1), 0);
        assert_int_equal(n, 3);
        assert_string_equal(set[1].comm, "qemu-kvm");
        /* Two nodes for one process, given unsorted: sorted by node. */
        fresh = calloc(2, sizeof(Holder));
        assert_non_null(fresh);
        fresh[0] = (Holder){ .pid = 50, .comm = strdup("qemu"), .node = strdup("/dev/vfio/devices/vfio0") };
        fresh[1] = (Holder){ .pid = 50, .comm = strdup("qemu"), .node = strdup("/dev/vfio/3") };
        assert_int_equal(holders_set_replace_pid(&set, &n, 50, fresh, 2), 1);
        assert_int_equal(n, 4);
        assert_string_equal(set[1].node, "/dev/vfio/3");
        assert_string_equal(set[2].node, "/dev/vfio/devices/vfio0");
        /* Gone: removed; unknown and gone: nothing. */
        assert_int_equal(holders_set_replace_pid(&set, &n, 50, NULL, 0), 1);
        assert_int_equal(n, 2);
        assert_int_equal(set[0].pid, 7);
        assert_int_equal(set[1].pid, 90);
        assert_int_equal(holders_set_replace_pid(&set, &n, 51, NULL, 0), 0);
        assert_int_equal(n, 2);
        holders_free(set, n);
}

static void test_set_equal_copy(void **state) {
        Holder *a = NULL, *c;
        size_t n = 0;
        bool oom;

        assert_true(holders_set_equal(NULL, 0, NULL, 0));
        assert_int_equal(holders_set_replace_pid(&a, &n, 5, one(5, "x", "/dev/vfio/1"), 1), 1);
        c = holders_copy(a, n, &oom);
        assert_false(oom);
        assert_true(holders_set_equal(a, n, c, n));
        assert_false(holders_set_equal(a, n, NULL, 0));
        free(c[0].node);
        c[0].node = strdup("/dev/vfio/2");
        assert_false(holders_set_equal(a, n, c, n));
        holders_free(c, n);
        assert_null(holders_copy(a, 0, &oom));
        assert_false(oom);
        holders_free(a, n);
}

/* One event as the kernel writes it for a FAN_REPORT_DFID_NAME group: metadata, then a DFID_NAME
 * record (header, fsid, struct file_handle with |handle_bytes| of handle, the name, padding). */
static size_t put_event(uint8_t *buf, uint64_t mask, pid_t pid, const char *name, size_t handle_bytes) {
        struct fanotify_event_metadata m = {
                .metadata_len = FAN_EVENT_METADATA_LEN,
                .vers = FANOTIFY_METADATA_VERSION,
                .mask = mask,
                .fd = FAN_NOFD,
                .pid = pid,
        };
        size_t info = 0;

        if (name) {
                struct fanotify_event_info_fid fid = { .hdr = { .info_type =
                                                                        FAN_EVENT_INFO_TYPE_DFID_NAME } };
                struct file_handle fh = { .handle_bytes = (unsigned)handle_bytes, .handle_type = 1 };
                size_t off = FAN_EVENT_METADATA_LEN;

                info = sizeof(fid) + sizeof(fh) + handle_bytes + strlen(name) + 1;
                info = (info + 7) & ~(size_t)7;
                fid.hdr.len = (uint16_t)info;
                memset(buf + off, 0, info);
                memcpy(buf + off, &fid, sizeof(fid));
                memcpy(buf + off + sizeof(fid), &fh, sizeof(fh));
                memset(buf + off + sizeof(fid) + sizeof(fh), 0xab, handle_bytes);
                memcpy(buf + off + sizeof(fid) + sizeof(fh) + handle_bytes, name, strlen(name) + 1);
        }
        m.event_len = (uint32_t)(FAN_EVENT_METADATA_LEN + info);
        memcpy(buf, &m, sizeof(m));
        return m.event_len;
}

static void test_parse_fanotify(void **state) {
        _Alignas(8) uint8_t buf[1024];
        HolderEvent *ev = NULL;
        struct fanotify_event_metadata m;
        size_t n = 0, len = 0;

        len += put_event(buf + len, FAN_OPEN | FAN_CLOSE_NOWRITE, 4242, "12", 8);
        len += put_event(buf + len, FAN_CLOSE_WRITE, 77, "vfio3", 12);
        len += put_event(buf + len, FAN_CREATE | FAN_ONDIR, 1, "vfio", 8);
        len += put_event(buf + len, FAN_Q_OVERFLOW, 0, NULL, 0);
        assert_int_equal(holders_parse_fanotify(buf, len, &ev, &n), 0);
        assert_int_equal(n, 4);
        assert_int_equal(ev[0].pid, 4242);
        assert_true(ev[0].mask & FAN_OPEN);
        assert_true(ev[0].mask & FAN_CLOSE_NOWRITE);
        assert_string_equal(ev[0].name, "12");
        assert_int_equal(ev[1].pid, 77);
        assert_string_equal(ev[1].name, "vfio3");
        assert_true(ev[2].mask & FAN_ONDIR);
        assert_string_equal(ev[2].name, "vfio");
        assert_true(ev[3].mask & FAN_Q_OVERFLOW);
        assert_int_equal(ev[3].pid, 0);
        assert_string_equal(ev[3].name, "");
        free(ev);

        assert_int_equal(holders_parse_fanotify(buf, 0, &ev, &n), 0);
        assert_null(ev);
        assert_int_equal(n, 0);

        /* Cut short: the last event overruns what was read. */
        len = put_event(buf, FAN_OPEN, 5, "12", 8);
        assert_int_equal(holders_parse_fanotify(buf, len - 1, &ev, &n), -EBADMSG);
        assert_int_equal(holders_parse_fanotify(buf, 10, &ev, &n), -EBADMSG);
        /* Another metadata version. */
        memcpy(&m, buf, sizeof(m));
        m.vers = FANOTIFY_METADATA_VERSION + 1;
        memcpy(buf, &m, sizeof(m));
        assert_int_equal(holders_parse_fanotify(buf, len, &ev, &n), -EBADMSG);
        /* A name with no NUL inside its record. */
        len = put_event(buf, FAN_OPEN, 5, "1234567", 8);
        memset(buf + len - 8, 'x', 8);
        assert_int_equal(holders_parse_fanotify(buf, len, &ev, &n), -EBADMSG);
        /* A handle longer than its record. */
        len = put_event(buf, FAN_OPEN, 5, "12", 8);
        {
                struct file_handle fh = { .handle_bytes = 200 };
                memcpy(buf + FAN_EVENT_METADATA_LEN + sizeof(struct fanotify_event_info_fid), &fh,
                       sizeof(fh));
        }
        assert_int_equal(holders_parse_fanotify(buf, len, &ev, &n), -EBADMSG);
}

/* What the holder watch does for an open or close event of |node| by |pid| (holder-watch.c). */
static int apply_event(Fixture *f, Holder **set, size_t *n, pid_t pid, const char *node) {
        pid_t *pids = NULL;
        size_t n_pids = 0;
        int changed = 0;

        assert_int_equal(holders_pids_to_check(*set, *n, pid, node, &pids, &n_pids), 0);
        for (size_t i = 0; i < n_pids; i++) {
                Holder *fresh = NULL;
                size_t n_fresh = 0;
                int r;

                assert_int_equal(holders_scan_pid(f->root, pids[i], &fresh, &n_fresh), 0);
                r = holders_set_replace_pid(set, n, pids[i], fresh, n_fresh);
                assert_true(r >= 0);
                changed |= r;
        }
        free(pids);
        return changed;
}

static void test_pids_to_check(void **state) {
        Holder set[] = {
                { .pid = 9, .comm = (char *)"a", .node = (char *)"/dev/vfio/12" },
                { .pid = 40, .comm = (char *)"b", .node = (char *)"/dev/vfio/3" },
                { .pid = 70, .comm = (char *)"c", .node = (char *)"/dev/vfio/12" },
        };
        pid_t *pids = NULL;
        size_t n = 0;

        assert_int_equal(holders_pids_to_check(set, 3, 50, "/dev/vfio/12", &pids, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(pids[0], 9);
        assert_int_equal(pids[1], 50);
        assert_int_equal(pids[2], 70);
        free(pids);
        /* The event's own process once. */
        assert_int_equal(holders_pids_to_check(set, 3, 40, "/dev/vfio/3", &pids, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(pids[0], 40);
        free(pids);
        assert_int_equal(holders_pids_to_check(NULL, 0, 5, "/dev/vfio/1", &pids, &n), 0);
        assert_int_equal(n, 1);
        free(pids);
}

/* fanotify events -> the holder set, against a fake /proc. */
static void test_events_to_set(void **state) {
        Fixture *f = *state;
        Holder *set = NULL;
        size_t n = 0;

        add_process(f, "4242", "qemu-system-x86");
        add_process(f, "300", "helper");

        /* An open: the process is read, it holds the node. */
        add_fd(f, "4242", "20", "/dev/vfio/12");
        assert_int_equal(apply_event(f, &set, &n, 4242, "/dev/vfio/12"), 1);
        assert_int_equal(n, 1);
        assert_int_equal(set[0].pid, 4242);
        assert_string_equal(set[0].node, "/dev/vfio/12");
        /* An open of the same node by the same process again (merged events): no change. */
        assert_int_equal(apply_event(f, &set, &n, 4242, "/dev/vfio/12"), 0);

        /* 4242 hands its fd to 300 (SCM_RIGHTS) and closes its own copy: no event (the file lives
         * on); the close by 300 releases the file, and both are read again: neither holds it. */
        add_fd(f, "300", "5", "/dev/vfio/12");
        remove_fd(f, "4242", "20");
        assert_int_equal(n, 1); /* no event yet: the set still names 4242 */
        remove_fd(f, "300", "5");
        assert_int_equal(apply_event(f, &set, &n, 300, "/dev/vfio/12"), 1);
        assert_int_equal(n, 0);

        /* An event whose process is gone by the time it is read: nothing. */
        assert_int_equal(apply_event(f, &set, &n, 31337, "/dev/vfio/12"), 0);
        assert_int_equal(n, 0);
        holders_free(set, n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
                cmocka_unit_test_setup_teardown(test_empty_and_missing, setup, teardown),
                cmocka_unit_test(test_holds_device),
                cmocka_unit_test_setup_teardown(test_scan_pid, setup, teardown),
                cmocka_unit_test(test_replace_pid),
                cmocka_unit_test(test_set_equal_copy),
                cmocka_unit_test(test_parse_fanotify),
                cmocka_unit_test(test_pids_to_check),
                cmocka_unit_test_setup_teardown(test_events_to_set, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
