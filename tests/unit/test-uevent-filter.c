/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The kernel monitors' socket filters (src/uevent-filter.c), run by this machine's kernel: attached to the
 * receiving end of an AF_UNIX datagram pair (unix_dgram_sendmsg() runs sk_filter() on the receiver, as
 * netlink's broadcast does), fed messages in the kernel's uevent format.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "uevent-filter.h"

typedef struct Pair {
        int send, recv;
} Pair;

static int setup_filter(void **state, UeventFilter filter) {
        static Pair p;
        int fds[2];

        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds) < 0)
                return -1;
        p = (Pair){ .send = fds[0], .recv = fds[1] };
        if (uevent_filter_attach(p.recv, filter) < 0)
                return -1;
        *state = &p;
        return 0;
}

static int setup_add_bind(void **state) {
        return setup_filter(state, UEVENT_FILTER_PCI_ADD_BIND);
}

static int setup_no_vfio(void **state) {
        return setup_filter(state, UEVENT_FILTER_NO_VFIO_GROUPS);
}

static int teardown(void **state) {
        Pair *p = *state;

        close(p->send);
        close(p->recv);
        return 0;
}

/* A message as lib/kobject_uevent.c builds it: "ACTION@DEVPATH\0ACTION=..\0DEVPATH=..\0SUBSYSTEM=..\0". */
static size_t build(char *buf, size_t size, const char *action, const char *devpath, const char *subsystem) {
        int n = snprintf(
                buf, size, "%s@%s%cACTION=%s%cDEVPATH=%s%cSUBSYSTEM=%s%cSEQNUM=4711", action, devpath, 0,
                action, 0, devpath, 0, subsystem, 0);

        assert_true(n > 0 && (size_t)n < size);
        return (size_t)n + 1;
}

/* Whether a message sent on p->send arrives on p->recv, whole. */
static bool passes(const Pair *p, const char *msg, size_t len) {
        char got[512];
        ssize_t n;

        assert_int_equal(send(p->send, msg, len, 0), (ssize_t)len);
        n = recv(p->recv, got, sizeof(got), MSG_DONTWAIT);
        if (n < 0) {
                assert_int_equal(errno, EAGAIN);
                return false;
        }
        assert_int_equal(n, (ssize_t)len);
        assert_memory_equal(got, msg, len);
        return true;
}

typedef struct Case {
        const char *action, *devpath, *subsystem;
} Case;

/* Each of |cases| sent in the kernel's format: passes the filter (|pass|) or is dropped. */
static void check_cases(const Pair *p, const Case *cases, size_t n, bool pass) {
        char buf[512];

        for (size_t i = 0; i < n; i++) {
                size_t len = build(buf, sizeof(buf), cases[i].action, cases[i].devpath, cases[i].subsystem);

                if (passes(p, buf, len) != pass)
                        fail_msg(
                                "%s: %s@%s", pass ? "dropped" : "passed", cases[i].action, cases[i].devpath);
        }
}

static void test_add_bind_passes(void **state) {
        static const Case cases[] = {
                { "add", "/devices/pci0000:00/0000:00:1c.5/0000:06:00.0", "pci" },
                { "add", "/devices/pci0000:00/0000:00:02.0", "pci" },
                /* VMD's own domain, a host bridge under a platform device, Hyper-V's vPCI */
                { "add", "/devices/pci0000:00/0000:00:0e.0/pci10000:e0/10000:e0:06.0", "pci" },
                { "add", "/devices/platform/soc/30e00000.pcie/pci0000:00/0000:00:00.0", "pci" },
                { "add",
                  "/devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00/"
                  "a3b1c2d4-0000-1111-2222-333344445555/pci0d1f:00/0d1f:00:02.0",
                  "pci" },
                /* an mdev (its own "add" under its parent) and a netdev under a PCI function: the
                 * listener judges SUBSYSTEM itself */
                { "add", "/devices/pci0000:00/0000:00:02.0/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "mdev" },
                { "add", "/devices/pci0000:00/0000:00:1c.5/0000:06:00.0/net/eth1", "net" },
                { "bind", "/devices/pci0000:00/0000:00:1c.5/0000:06:00.0", "pci" },
                { "bind", "/devices/platform/serial8250", "platform" },
        };

        check_cases(*state, cases, sizeof(cases) / sizeof(cases[0]), true);
        /* libudev's own format (umockdev's test bed): the listener judges it */
        if (!passes(*state, "libudev\0\xfe\xed\xca\xfe", 12))
                fail_msg("dropped: a libudev header");
}

static void test_add_bind_drops(void **state) {
        static const Case cases[] = {
                /* vfio-pci's probe registers the group's class device */
                { "add", "/devices/virtual/vfio/5", "vfio" },
                { "add", "/devices/virtual/block/dm-0", "block" },
                { "add", "/devices/virtual/net/bond0", "net" },
                /* not devices */
                { "add", "/module/vfio_pci", "module" },
                { "add", "/bus/pci/drivers/vfio-pci", "drivers" },
                /* actions the early monitor does not act on */
                { "remove", "/devices/pci0000:00/0000:00:1c.5/0000:06:00.0", "pci" },
                { "unbind", "/devices/pci0000:00/0000:00:1c.5/0000:06:00.0", "pci" },
                { "change", "/devices/pci0000:00/0000:00:02.0", "pci" },
                { "move", "/devices/pci0000:00/0000:00:1c.5/0000:06:00.0/net/eth1", "net" },
                { "online", "/devices/system/cpu/cpu1", "cpu" },
                { "binder", "/devices/pci0000:00/0000:00:1c.5/0000:06:00.0", "pci" },
                { "adds", "/devices/pci0000:00/0000:00:1c.5/0000:06:00.0", "pci" },
        };

        check_cases(*state, cases, sizeof(cases) / sizeof(cases[0]), false);
        /* shorter than the loads reach: dropped, not read past its end */
        if (passes(*state, "add@", 4) || passes(*state, "add@/devices/vir", 16) || passes(*state, "bind", 4))
                fail_msg("passed: a message shorter than the filter's loads");
}

/* Every action's shape (where DEVPATH starts moves with the action's length). */
static const char *const actions[] = { "add",    "remove",  "change", "move",
                                       "online", "offline", "bind",   "unbind" };

static void test_no_vfio_passes(void **state) {
        static const struct {
                const char *devpath, *subsystem;
        } cases[] = {
                { "/devices/pci0000:00/0000:00:1c.5/0000:06:00.0", "pci" },
                /* an mdev under a virtual parent (the mtty sample) and that parent's MDEV_STATE change */
                { "/devices/virtual/mtty/mtty/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "mdev" },
                { "/devices/virtual/mtty/mtty", "mtty" },
                /* near misses */
                { "/devices/virtual/vfio", "vfio" },
                { "/devices/virtual/vfio-dev/vfio0", "vfio-dev" },
                { "/devices/virtual/vfiox/1", "vfiox" },
                { "/devices/pci0000:00/0000:00:1c.5/0000:06:00.0/vfio-dev/vfio0", "vfio-dev" },
                { "/module/vfio_pci", "module" },
        };
        char buf[512];

        for (size_t a = 0; a < sizeof(actions) / sizeof(actions[0]); a++)
                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                        size_t len =
                                build(buf, sizeof(buf), actions[a], cases[i].devpath, cases[i].subsystem);

                        if (!passes(*state, buf, len))
                                fail_msg("dropped: %s@%s", actions[a], cases[i].devpath);
                }
        /* a shape it does not know passes: the listener judges */
        if (!passes(*state, "libudev\0\xfe\xed\xca\xfe", 12))
                fail_msg("dropped: a libudev header");
}

static void test_no_vfio_drops(void **state) {
        static const char *const devpaths[] = { "/devices/virtual/vfio/5",
                                                "/devices/virtual/vfio/noiommu-0" };
        char buf[512];

        for (size_t a = 0; a < sizeof(actions) / sizeof(actions[0]); a++)
                for (size_t i = 0; i < sizeof(devpaths) / sizeof(devpaths[0]); i++) {
                        size_t len = build(buf, sizeof(buf), actions[a], devpaths[i], "vfio");

                        if (passes(*state, buf, len))
                                fail_msg("passed: %s@%s", actions[a], devpaths[i]);
                }
}

static void test_attach_errors(void **state) {
        int fds[2];

        (void)state;
        assert_int_equal(uevent_filter_attach(-1, UEVENT_FILTER_PCI_ADD_BIND), -EBADF);
        assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds), 0);
        assert_int_equal(uevent_filter_attach(fds[1], _UEVENT_FILTER_MAX), -EINVAL);
        /* a closed descriptor: setsockopt's errno */
        close(fds[0]);
        close(fds[1]);
        assert_int_equal(uevent_filter_attach(fds[1], UEVENT_FILTER_NO_VFIO_GROUPS), -EBADF);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_add_bind_passes, setup_add_bind, teardown),
                cmocka_unit_test_setup_teardown(test_add_bind_drops, setup_add_bind, teardown),
                cmocka_unit_test_setup_teardown(test_no_vfio_passes, setup_no_vfio, teardown),
                cmocka_unit_test_setup_teardown(test_no_vfio_drops, setup_no_vfio, teardown),
                cmocka_unit_test(test_attach_errors),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
