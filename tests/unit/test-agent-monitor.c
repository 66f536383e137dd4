/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * agent/monitor.c: which uevents reach the model, and which source is watched.
 *
 * The event tests run on a umockdev testbed (LD_PRELOAD=libumockdev-preload.so.0):
 * umockdev_testbed_uevent() delivers a synthetic uevent (ACTION, DEVPATH,
 * SUBSYSTEM, SEQNUM and the lines of the device's uevent file) to the libudev
 * monitor of this process, for both the "udev" and "kernel" sources.
 *
 * The /run/udev/control test runs in a child in its own user and mount
 * namespace with a tmpfs on /run, so it never touches the host's /run; it is
 * skipped where unprivileged user namespaces are not available.
 */

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <umockdev.h>

#include "monitor.h"
#include "names.h"

#define UUID "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"

/* ---- the filter ---- */

static void test_filter(void **state) {
        /* pci and mdev: always, with or without MDEV_STATE. */
        assert_true(monitor_event_is_relevant("pci", NULL));
        assert_true(monitor_event_is_relevant("mdev", NULL));
        assert_true(monitor_event_is_relevant("pci", "registered"));
        assert_true(monitor_event_is_relevant("mdev", "unregistered"));

        /* Any other subsystem: only an mdev parent's (un)registration (mdev_core.c). */
        assert_true(monitor_event_is_relevant("mtty", "registered"));
        assert_true(monitor_event_is_relevant("mtty", "unregistered"));
        assert_true(monitor_event_is_relevant("mbochs", "registered"));
        assert_true(monitor_event_is_relevant("ccw", "registered"));
        assert_true(monitor_event_is_relevant("mtty", "")); /* present but empty is still present */
        assert_false(monitor_event_is_relevant("mtty", NULL));
        assert_false(monitor_event_is_relevant("usb", NULL));
        assert_false(monitor_event_is_relevant("net", NULL));
        assert_false(monitor_event_is_relevant("block", NULL));
        assert_false(monitor_event_is_relevant("vfio", NULL));
        assert_false(monitor_event_is_relevant("mdev_bus", NULL));

        /* Exact names only: the PCIe port service bus and case variants are not "pci". */
        assert_false(monitor_event_is_relevant("pci_express", NULL));
        assert_false(monitor_event_is_relevant("pci_bus", NULL));
        assert_false(monitor_event_is_relevant("PCI", NULL));
        assert_false(monitor_event_is_relevant("pc", NULL));
        assert_false(monitor_event_is_relevant("mdevs", NULL));
        assert_false(monitor_event_is_relevant("", NULL));

        /* No subsystem: nothing to route it by, even with MDEV_STATE. */
        assert_false(monitor_event_is_relevant(NULL, NULL));
        assert_false(monitor_event_is_relevant(NULL, "registered"));
}

/* ---- source selection ---- */

static void test_source_forced(void **state) {
        const char *s = NULL;

        assert_int_equal(unsetenv(ENV_HOSTDEVD_UEVENT_SOURCE), 0);

        assert_int_equal(monitor_pick_source("udev", &s), 0);
        assert_string_equal(s, "udev");
        assert_int_equal(monitor_pick_source("kernel", &s), 0);
        assert_string_equal(s, "kernel");

        s = NULL;
        assert_int_equal(monitor_pick_source("bad", &s), -EINVAL);
        assert_int_equal(monitor_pick_source("", &s), -EINVAL);
        assert_int_equal(monitor_pick_source("UDEV", &s), -EINVAL);
        assert_int_equal(monitor_pick_source("udev ", &s), -EINVAL);
        assert_null(s); /* untouched on error */
}

static void test_source_env(void **state) {
        const char *s = NULL;

        assert_string_equal(ENV_HOSTDEVD_UEVENT_SOURCE, "HOSTDEVD_UEVENT_SOURCE");

        assert_int_equal(setenv("HOSTDEVD_UEVENT_SOURCE", "kernel", 1), 0);
        assert_int_equal(monitor_pick_source(NULL, &s), 0);
        assert_string_equal(s, "kernel");

        assert_int_equal(setenv("HOSTDEVD_UEVENT_SOURCE", "udev", 1), 0);
        assert_int_equal(monitor_pick_source(NULL, &s), 0);
        assert_string_equal(s, "udev");

        /* A bad value is an error, not a silent fallback. */
        s = NULL;
        assert_int_equal(setenv("HOSTDEVD_UEVENT_SOURCE", "bad", 1), 0);
        assert_int_equal(monitor_pick_source(NULL, &s), -EINVAL);
        assert_null(s);

        /* The explicit option wins over the environment, even over a bad one. */
        assert_int_equal(monitor_pick_source("kernel", &s), 0);
        assert_string_equal(s, "kernel");
        assert_int_equal(setenv("HOSTDEVD_UEVENT_SOURCE", "kernel", 1), 0);
        assert_int_equal(monitor_pick_source("udev", &s), 0);
        assert_string_equal(s, "udev");

        /* Empty means unset: auto-detection answers, whichever it is here. */
        assert_int_equal(setenv("HOSTDEVD_UEVENT_SOURCE", "", 1), 0);
        assert_int_equal(monitor_pick_source(NULL, &s), 0);
        assert_true(strcmp(s, "udev") == 0 || strcmp(s, "kernel") == 0);

        assert_int_equal(unsetenv(ENV_HOSTDEVD_UEVENT_SOURCE), 0);
}

static int write_file(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ssize_t n;

        if (fd < 0)
                return -1;
        n = write(fd, text, strlen(text));
        close(fd);
        return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Child: private /run; returns an exit code (0 ok, 77 skip, else the failed check). */
static int check_autodetect_in_namespace(void) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        const char *s;
        char map[64];

        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                return 77;
        /* Map ourselves, so files on the new tmpfs can be created. */
        if (write_file("/proc/self/setgroups", "deny") < 0)
                return 77;
        snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
        if (write_file("/proc/self/uid_map", map) < 0)
                return 77;
        snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
        if (write_file("/proc/self/gid_map", map) < 0)
                return 77;
        /* Nothing of what follows may propagate to the host's mounts. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 77;
        if (mount("hostdevd-test", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
                return 77;

        if (unsetenv(ENV_HOSTDEVD_UEVENT_SOURCE) < 0)
                return 10;

        /* No udevd: the kernel's own netlink group. */
        if (access("/run/udev/control", F_OK) == 0)
                return 11;
        if (monitor_pick_source(NULL, &s) != 0 || strcmp(s, "kernel") != 0)
                return 12;

        /* /run/udev without the control socket is not a running udevd. */
        if (mkdir("/run/udev", 0755) < 0)
                return 13;
        if (monitor_pick_source(NULL, &s) != 0 || strcmp(s, "kernel") != 0)
                return 14;

        /* udevd runs: its processed events. */
        if (write_file(UDEV_CONTROL_SOCKET, "") < 0)
                return 15;
        if (monitor_pick_source(NULL, &s) != 0 || strcmp(s, "udev") != 0)
                return 16;

        /* The environment still overrides, both ways, and is still checked. */
        if (setenv(ENV_HOSTDEVD_UEVENT_SOURCE, "kernel", 1) < 0)
                return 17;
        if (monitor_pick_source(NULL, &s) != 0 || strcmp(s, "kernel") != 0)
                return 18;
        if (setenv(ENV_HOSTDEVD_UEVENT_SOURCE, "bad", 1) < 0)
                return 19;
        if (monitor_pick_source(NULL, &s) != -EINVAL)
                return 20;
        if (unsetenv(ENV_HOSTDEVD_UEVENT_SOURCE) < 0)
                return 21;

        /* udevd gone again. */
        if (unlink(UDEV_CONTROL_SOCKET) < 0)
                return 22;
        if (monitor_pick_source(NULL, &s) != 0 || strcmp(s, "kernel") != 0)
                return 23;

        return 0;
}

static void test_source_autodetect(void **state) {
        int status = 0;
        pid_t pid;

        assert_string_equal(UDEV_CONTROL_SOCKET, "/run/udev/control");

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(check_autodetect_in_namespace());

        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77)
                skip();
        if (WEXITSTATUS(status) != 0)
                fail_msg("auto-detection check %d failed", WEXITSTATUS(status));
}

static void test_new_bad_source(void **state) {
        Monitor *m = NULL;
        sd_event *event = NULL;

        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(monitor_new(event, "bad", NULL, NULL, &m), -EINVAL);
        assert_null(m);
        assert_int_equal(monitor_new(event, "", NULL, NULL, &m), -EINVAL);
        assert_null(m);
        sd_event_unref(event);
}

/* ---- real uevents through the monitor ---- */

typedef struct Received {
        char *action, *subsystem, *syspath, *sysname, *mdev_state;
} Received;

typedef struct Recorder {
        Received events[32];
        size_t n;
        unsigned overflows;
        bool sentinel;
} Recorder;

#define SENTINEL "0000:ff:1f.7"

static int on_uevent(
        void *userdata, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state) {
        Recorder *rec = userdata;

        assert_true(rec->n < sizeof(rec->events) / sizeof(rec->events[0]));
        rec->events[rec->n++] = (Received){
                .action = strdup(action),
                .subsystem = strdup(subsystem),
                .syspath = strdup(syspath),
                .sysname = strdup(sysname),
                .mdev_state = mdev_state ? strdup(mdev_state) : NULL,
        };
        if (strcmp(sysname, SENTINEL) == 0)
                rec->sentinel = true;
        /* The return value is only logged: an error must not stop the monitor. */
        return -EIO;
}

static int on_overflow(void *userdata) {
        Recorder *rec = userdata;

        rec->overflows++;
        return 0;
}

static void recorder_done(Recorder *rec) {
        for (size_t i = 0; i < rec->n; i++) {
                free(rec->events[i].action);
                free(rec->events[i].subsystem);
                free(rec->events[i].syspath);
                free(rec->events[i].sysname);
                free(rec->events[i].mdev_state);
        }
        memset(rec, 0, sizeof(*rec));
}

static void assert_received(
        const Recorder *rec, size_t i, const char *action, const char *subsystem, const char *syspath,
        const char *sysname, const char *mdev_state) {
        if (i >= rec->n)
                fail_msg("expected event %zu (%s %s), only %zu received", i, action, sysname, rec->n);
        assert_string_equal(rec->events[i].action, action);
        assert_string_equal(rec->events[i].subsystem, subsystem);
        assert_string_equal(rec->events[i].syspath, syspath);
        assert_string_equal(rec->events[i].sysname, sysname);
        if (mdev_state)
                assert_string_equal(rec->events[i].mdev_state, mdev_state);
        else
                assert_null(rec->events[i].mdev_state);
}

typedef struct Bed {
        UMockdevTestbed *bed;
        char *gpu, *igd, *mdev, *mtty, *mtty_plain, *usb, *net, *pcie_port, *sentinel;
} Bed;

static int bed_setup(void **state) {
        Bed *b = calloc(1, sizeof(Bed));

        b->bed = umockdev_testbed_new();
        assert_non_null(b->bed);
        assert_true(umockdev_in_mock_environment());

        b->gpu = umockdev_testbed_add_device(
                b->bed, "pci", "0000:01:00.0", NULL, "vendor", "0x10de\n", NULL, "PCI_SLOT_NAME",
                "0000:01:00.0", NULL);
        /* An mdev parent on the PCI bus (i915 GVT-g) registering: MDEV_STATE on a pci event. */
        b->igd = umockdev_testbed_add_device(
                b->bed, "pci", "0000:00:02.0", NULL, "vendor", "0x8086\n", NULL, "PCI_SLOT_NAME",
                "0000:00:02.0", "MDEV_STATE", "registered", NULL);
        b->mdev = umockdev_testbed_add_device(
                b->bed, "mdev", UUID, b->igd, NULL, "MDEV_TYPE", "i915-GVTg_V5_4", NULL);
        /* The mtty sample's parent: its own subsystem, MDEV_STATE on a change event. */
        b->mtty = umockdev_testbed_add_device(
                b->bed, "mtty", "mtty", NULL, NULL, "MDEV_STATE", "registered", NULL);
        b->mtty_plain = umockdev_testbed_add_device(b->bed, "mtty", "mtty-other", NULL, NULL, NULL);
        b->usb = umockdev_testbed_add_device(b->bed, "usb", "usb1", NULL, "idVendor", "1d6b\n", NULL, NULL);
        b->net = umockdev_testbed_add_device(b->bed, "net", "eth0", NULL, NULL, "INTERFACE", "eth0", NULL);
        b->pcie_port =
                umockdev_testbed_add_device(b->bed, "pci_express", "0000:00:1c.0:pcie002", NULL, NULL, NULL);
        b->sentinel = umockdev_testbed_add_device(
                b->bed, "pci", SENTINEL, NULL, "vendor", "0x8086\n", NULL, "PCI_SLOT_NAME", SENTINEL, NULL);
        assert_non_null(b->gpu);
        assert_non_null(b->igd);
        assert_non_null(b->mdev);
        assert_non_null(b->mtty);
        assert_non_null(b->mtty_plain);
        assert_non_null(b->usb);
        assert_non_null(b->net);
        assert_non_null(b->pcie_port);
        assert_non_null(b->sentinel);

        *state = b;
        return 0;
}

static int bed_teardown(void **state) {
        Bed *b = *state;

        g_free(b->gpu);
        g_free(b->igd);
        g_free(b->mdev);
        g_free(b->mtty);
        g_free(b->mtty_plain);
        g_free(b->usb);
        g_free(b->net);
        g_free(b->pcie_port);
        g_free(b->sentinel);
        g_object_unref(b->bed);
        free(b);
        return 0;
}

static const char *basename_of(const char *path) {
        return strrchr(path, '/') + 1;
}

/* Send one of each kind, then the sentinel; only pci, mdev and MDEV_STATE events may come through. */
static void send_mix(Bed *b) {
        umockdev_testbed_uevent(b->bed, b->usb, "add");
        umockdev_testbed_uevent(b->bed, b->gpu, "add");
        umockdev_testbed_uevent(b->bed, b->net, "add");
        umockdev_testbed_uevent(b->bed, b->mtty_plain, "change");
        umockdev_testbed_uevent(b->bed, b->igd, "change");
        umockdev_testbed_uevent(b->bed, b->mdev, "add");
        umockdev_testbed_uevent(b->bed, b->pcie_port, "add");
        umockdev_testbed_uevent(b->bed, b->mtty, "change");
        umockdev_testbed_uevent(b->bed, b->gpu, "bind");
        umockdev_testbed_uevent(b->bed, b->usb, "remove");
        umockdev_testbed_uevent(b->bed, b->sentinel, "change");
}

static void assert_mix(const Recorder *rec, Bed *b) {
        assert_received(rec, 0, "add", "pci", b->gpu, "0000:01:00.0", NULL);
        assert_received(rec, 1, "change", "pci", b->igd, "0000:00:02.0", "registered");
        assert_received(rec, 2, "add", "mdev", b->mdev, UUID, NULL);
        assert_received(rec, 3, "change", "mtty", b->mtty, "mtty", "registered");
        assert_received(rec, 4, "bind", "pci", b->gpu, "0000:01:00.0", NULL);
        assert_received(rec, 5, "change", "pci", b->sentinel, SENTINEL, NULL);
        assert_int_equal(rec->n, 6);
        assert_int_equal(rec->overflows, 0);
}

static void check_events_on_loop(Bed *b, const char *source) {
        static const MonitorCallbacks callbacks = {
                .on_uevent = on_uevent,
                .on_overflow = on_overflow,
        };
        Recorder rec = {};
        sd_event *event = NULL;
        Monitor *m = NULL;

        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(monitor_new(event, source, &callbacks, &rec, &m), 0);
        assert_string_equal(monitor_get_source(m), source);

        send_mix(b);
        /* Through the sd-event io source, as the daemon receives them. */
        for (unsigned i = 0; i < 100 && !rec.sentinel; i++)
                assert_true(sd_event_run(event, 100 * 1000) >= 0);
        assert_true(rec.sentinel);
        assert_mix(&rec, b);
        recorder_done(&rec);

        /* Nothing left queued once the sentinel came. */
        assert_int_equal(monitor_drain(m), 0);
        assert_int_equal(rec.n, 0);

        /* The MDEV_STATE value is passed on as it is. */
        umockdev_testbed_set_property(b->bed, b->mtty, "MDEV_STATE", "unregistered");
        umockdev_testbed_uevent(b->bed, b->mtty, "change");
        umockdev_testbed_uevent(b->bed, b->sentinel, "change");
        for (unsigned i = 0; i < 100 && !rec.sentinel; i++)
                assert_true(sd_event_run(event, 100 * 1000) >= 0);
        assert_received(&rec, 0, "change", "mtty", b->mtty, "mtty", "unregistered");
        assert_int_equal(rec.n, 2);
        recorder_done(&rec);
        umockdev_testbed_set_property(b->bed, b->mtty, "MDEV_STATE", "registered");

        monitor_free(m);
        sd_event_unref(event);
}

static void test_events_udev(void **state) {
        check_events_on_loop(*state, "udev");
}

static void test_events_kernel(void **state) {
        check_events_on_loop(*state, "kernel");
}

/* monitor_drain() empties the socket in one call: every queued event, relevant or not, is consumed. */
static void test_drain(void **state) {
        static const MonitorCallbacks callbacks = {
                .on_uevent = on_uevent,
        };
        Bed *b = *state;
        Recorder rec = {};
        sd_event *event = NULL;
        Monitor *m = NULL;

        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(monitor_new(event, "udev", &callbacks, &rec, &m), 0);

        /* Nothing queued yet: the devices were created before the monitor, their events went nowhere. */
        assert_int_equal(monitor_drain(m), 0);

        send_mix(b);
        /* umockdev writes synchronously into the socket: all 11 are queued, 6 pass the filter. */
        assert_int_equal(monitor_drain(m), 11);
        assert_true(rec.sentinel);
        assert_mix(&rec, b);
        recorder_done(&rec);
        assert_int_equal(monitor_drain(m), 0);
        assert_int_equal(rec.n, 0);

        /* Callbacks are optional. */
        monitor_free(m);
        m = NULL;
        assert_int_equal(monitor_new(event, "kernel", NULL, NULL, &m), 0);
        umockdev_testbed_uevent(b->bed, b->gpu, "change");
        assert_int_equal(monitor_drain(m), 1);

        monitor_free(m);
        sd_event_unref(event);
        (void)basename_of;
}

/* ---- MonitorCallbacks.on_pci_add ---- */

#define NEWNIC "0000:05:00.0"

/* Both callbacks in one log, in call order: "pci-add SYSNAME ID SUBSYS CLASS" / "uevent ACTION SYSNAME". */
typedef struct AddLog {
        char *lines[32];
        size_t n;
        bool sentinel;
} AddLog;

static void add_log_line(AddLog *l, char *line) {
        assert_non_null(line);
        assert_true(l->n < sizeof(l->lines) / sizeof(l->lines[0]));
        l->lines[l->n++] = line;
}

static void log_pci_add(
        void *userdata, const char *syspath, const char *sysname, const char *pci_id,
        const char *pci_subsys_id, const char *pci_class) {
        AddLog *l = userdata;
        char *line = NULL;

        /* The function's own directory, as on_uevent gets it. */
        assert_non_null(syspath);
        assert_non_null(strrchr(syspath, '/'));
        assert_string_equal(strrchr(syspath, '/') + 1, sysname);
        assert_true(
                asprintf(
                        &line, "pci-add %s %s %s %s", sysname, pci_id ?: "-", pci_subsys_id ?: "-",
                        pci_class ?: "-") > 0);
        add_log_line(l, line);
}

static void log_pci_bind(void *userdata, const char *sysname) {
        AddLog *l = userdata;
        char *line = NULL;

        assert_true(asprintf(&line, "pci-bind %s", sysname) > 0);
        add_log_line(l, line);
}

static int log_uevent(
        void *userdata, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state) {
        AddLog *l = userdata;
        char *line = NULL;

        assert_true(asprintf(&line, "uevent %s %s %s", action, subsystem, sysname) > 0);
        add_log_line(l, line);
        if (strcmp(sysname, SENTINEL) == 0)
                l->sentinel = true;
        return 0;
}

static void add_log_done(AddLog *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->lines[i]);
        memset(l, 0, sizeof(*l));
}

static void assert_log(const AddLog *l, const char *const *expected) {
        size_t n = 0;

        for (; expected[n]; n++) {
                if (n >= l->n)
                        fail_msg("line %zu missing: expected '%s'", n, expected[n]);
                if (strcmp(l->lines[n], expected[n]) != 0)
                        fail_msg("line %zu: got '%s', expected '%s'", n, l->lines[n], expected[n]);
        }
        if (l->n != n)
                fail_msg("%zu lines, expected %zu; extra: '%s'", l->n, n, l->lines[n]);
}

/* A hot-added function's "add" (with the ids pci_uevent() puts in it), its bind and remove, and the
 * bed's others: a pci "add" without ids, a non-PCI "add", an mdev "add", a PCIe port service "add". */
static void send_adds(Bed *b, const char *newnic) {
        umockdev_testbed_uevent(b->bed, newnic, "add");
        umockdev_testbed_uevent(b->bed, newnic, "bind");
        umockdev_testbed_uevent(b->bed, b->usb, "add");
        umockdev_testbed_uevent(b->bed, b->mdev, "add");
        umockdev_testbed_uevent(b->bed, b->pcie_port, "add");
        umockdev_testbed_uevent(b->bed, b->gpu, "add");
        umockdev_testbed_uevent(b->bed, newnic, "change");
        umockdev_testbed_uevent(b->bed, newnic, "remove");
        umockdev_testbed_uevent(b->bed, b->sentinel, "change");
}

static void run_until_sentinel(sd_event *event, AddLog *l) {
        for (unsigned i = 0; i < 100 && !l->sentinel; i++)
                assert_true(sd_event_run(event, 100 * 1000) >= 0);
        assert_true(l->sentinel);
}

static void test_pci_add(void **state) {
        static const MonitorCallbacks both = {
                .on_uevent = log_uevent,
                .on_pci_add = log_pci_add,
                .on_pci_bind = log_pci_bind,
        };
        static const MonitorCallbacks add_only = {
                .on_pci_add = log_pci_add,
                .on_pci_bind = log_pci_bind,
        };
        Bed *b = *state;
        AddLog l = {};
        sd_event *event = NULL;
        Monitor *m = NULL;
        char *newnic;

        /* drivers/pci/pci-driver.c pci_uevent(): "%04X:%04X", "%04X:%04X", "%04X" of the 24-bit class. */
        newnic = umockdev_testbed_add_device(
                b->bed, "pci", NEWNIC, NULL, "vendor", "0x8086\n", NULL, "PCI_SLOT_NAME", NEWNIC, "PCI_ID",
                "8086:10D3", "PCI_SUBSYS_ID", "8086:A01F", "PCI_CLASS", "20000", NULL);
        assert_non_null(newnic);
        assert_int_equal(sd_event_new(&event), 0);

        /* Kernel source: on_pci_add for each pci "add" only, with its ids, just before on_uevent; so is
         * on_pci_bind for each pci "bind". */
        assert_int_equal(monitor_new(event, "kernel", &both, &l, &m), 0);
        send_adds(b, newnic);
        run_until_sentinel(event, &l);
        assert_log(
                &l,
                (const char *const[]){ "pci-add " NEWNIC " 8086:10D3 8086:A01F 20000",
                                       "uevent add pci " NEWNIC, "pci-bind " NEWNIC,
                                       "uevent bind pci " NEWNIC, "uevent add mdev " UUID,
                                       "pci-add 0000:01:00.0 - - -", "uevent add pci 0000:01:00.0",
                                       "uevent change pci " NEWNIC, "uevent remove pci " NEWNIC,
                                       "uevent change pci " SENTINEL, NULL });
        add_log_done(&l);
        m = monitor_free(m);

        /* udev source: its "add" comes after the kernel's probe; on_pci_add and on_pci_bind are never
         * called. */
        assert_int_equal(monitor_new(event, "udev", &both, &l, &m), 0);
        send_adds(b, newnic);
        run_until_sentinel(event, &l);
        for (size_t i = 0; i < l.n; i++)
                if (strncmp(l.lines[i], "pci-", 4) == 0)
                        fail_msg("on_pci_add or _bind called from the udev source: '%s'", l.lines[i]);
        assert_int_equal(l.n, 7);
        add_log_done(&l);
        m = monitor_free(m);

        /* Without on_uevent (the daemon's second, kernel-source monitor): the adds and binds still come. */
        assert_int_equal(monitor_new(event, "kernel", &add_only, &l, &m), 0);
        send_adds(b, newnic);
        assert_int_equal(monitor_drain(m), 9);
        assert_log(
                &l,
                (const char *const[]){ "pci-add " NEWNIC " 8086:10D3 8086:A01F 20000", "pci-bind " NEWNIC,
                                       "pci-add 0000:01:00.0 - - -", NULL });
        add_log_done(&l);
        m = monitor_free(m);

        sd_event_unref(event);
        g_free(newnic);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_filter),
                cmocka_unit_test(test_source_forced),
                cmocka_unit_test(test_source_env),
                cmocka_unit_test(test_source_autodetect),
                cmocka_unit_test(test_new_bad_source),
                cmocka_unit_test_setup_teardown(test_events_udev, bed_setup, bed_teardown),
                cmocka_unit_test_setup_teardown(test_events_kernel, bed_setup, bed_teardown),
                cmocka_unit_test_setup_teardown(test_drain, bed_setup, bed_teardown),
                cmocka_unit_test_setup_teardown(test_pci_add, bed_setup, bed_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
