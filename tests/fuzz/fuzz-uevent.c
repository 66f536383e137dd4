/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Uevents, from the socket to the model. The input is one or more messages
 * in the kernel's format ("ACTION@DEVPATH" NUL, then KEY=VALUE NUL pairs,
 * lib/kobject_uevent.c), separated by an empty pair (two NULs). Each
 * message goes
 *
 *   1. through both socket filters (src/uevent-filter.c), run by this
 *      machine's kernel on an AF_UNIX datagram pair as in
 *      tests/unit/test-uevent-filter.c: a message the filter's contract
 *      says a listener wants must pass, one it promises to prune must not;
 *   2. through the monitor's own filter (agent/monitor.c,
 *      monitor_event_is_relevant());
 *   3. into the model (src/model.c, model_handle_uevent()) over a umockdev
 *      testbed: a PF with two VFs, a GPU, an mdev parent with an mdev, and
 *      a non-PCI mdev parent.
 *
 * The model never holds an object that sysfs does not, and a rescan
 * (model_enumerate()) after any sequence of events gives exactly a fresh
 * enumeration (so the one model kept across inputs starts each input
 * clean). In the daemon, libudev turns the datagram into the fields
 * of step 2; it only takes messages from the kernel or udevd, so here the
 * fields are read from the message as libudev reads them (the properties
 * ACTION, DEVPATH, SUBSYSTEM, MDEV_STATE; the sysname is DEVPATH's last
 * element).
 */

#include <errno.h>
#include <pci/pci.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../unit/sysfs-tree.h"
#include "fuzz.h"
#include "macro.h"
#include "model.h"
#include "monitor.h"
#include "uevent-filter.h"

#define MAX_EVENTS 16
#define IGD_PATH "/sys/devices/pci0000:04/0000:04:00.0"
#define MTTY_PATH "/sys/devices/virtual/mtty/mtty"

static int filter_send[_UEVENT_FILTER_MAX], filter_recv[_UEVENT_FILTER_MAX];
static struct pci_access *pacc;
static SysfsTree *tree;
/* |model| lives across inputs: each input's rescan must bring it back to |baseline|, a fresh enumeration
 * of the testbed, which no input changes. */
static Model *model, *baseline;

static void quiet(char *msg, ...) {
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        SysfsTree *t;

        for (int f = 0; f < _UEVENT_FILTER_MAX; f++) {
                int fds[2];

                if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds) < 0)
                        abort();
                filter_send[f] = fds[0];
                filter_recv[f] = fds[1];
                fuzz_check(uevent_filter_attach(fds[1], f) == 0, "attach filter %d", f);
        }

        /* Kept for the process's life: the testbed is the /sys every event is checked against. */
        t = tree = sysfs_tree_new();
        sysfs_tree_add_pci(t, "0000:00:00.0", 0x8086, 0x1237, 0x060000);
        sysfs_tree_set_group(t, "0000:00:00.0", 0);
        sysfs_tree_add_pci(t, "0000:01:00.0", 0x10de, 0x1eb8, 0x030000);
        sysfs_tree_set_group(t, "0000:01:00.0", 1);
        sysfs_tree_bind(t, "0000:01:00.0", "nouveau");
        sysfs_tree_add_pci(t, "0000:03:00.0", 0x8086, 0x1572, 0x020000);
        sysfs_tree_set_group(t, "0000:03:00.0", 3);
        sysfs_tree_bind(t, "0000:03:00.0", "i40e");
        sysfs_tree_make_pf(t, "0000:03:00.0", 4);
        sysfs_tree_add_vf(t, "0000:03:00.0", 0, "0000:03:02.0", 0x154c);
        sysfs_tree_set_group(t, "0000:03:02.0", 4);
        sysfs_tree_add_vf(t, "0000:03:00.0", 1, "0000:03:02.1", 0x154c);
        sysfs_tree_set_group(t, "0000:03:02.1", 5);
        sysfs_tree_bind(t, "0000:03:02.1", "vfio-pci");
        sysfs_tree_add_pci(t, "0000:04:00.0", 0x8086, 0x3e92, 0x030000);
        sysfs_tree_set_group(t, "0000:04:00.0", 6);
        sysfs_tree_bind(t, "0000:04:00.0", "i915");
        sysfs_tree_add_mdev_type(t, IGD_PATH, "i915-GVTg_V5_4", "GVTg_V5_4", 0);
        sysfs_tree_register_parent(t, IGD_PATH);
        sysfs_tree_add_mdev(t, IGD_PATH, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "i915-GVTg_V5_4", 7);
        sysfs_tree_mkdir(t, MTTY_PATH);
        sysfs_tree_add_mdev_type(t, MTTY_PATH, "mtty-1", "Single-port-serial", 24);
        sysfs_tree_register_parent(t, MTTY_PATH);

        pacc = pci_alloc();
        pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        pacc->warning = quiet;
        pci_init(pacc);
        fuzz_check(model_new(pacc, &model) == 0 && model_enumerate(model, NULL) == 0, "model");
        fuzz_check(model_new(pacc, &baseline) == 0 && model_enumerate(baseline, NULL) == 0, "baseline");
        return 0;
}

/* Whether |filter| lets the message through, whole. */
static bool filter_passes(UeventFilter f, const uint8_t *msg, size_t len) {
        uint8_t got[8192];
        ssize_t n;

        fuzz_check(send(filter_send[f], msg, len, 0) == (ssize_t)len, "send: %s", strerror(errno));
        n = recv(filter_recv[f], got, sizeof(got), MSG_DONTWAIT);
        if (n < 0) {
                fuzz_check(errno == EAGAIN, "recv: %s", strerror(errno));
                return false;
        }
        fuzz_check((size_t)n == len && memcmp(got, msg, len) == 0, "filter %d changed the message", f);
        return true;
}

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The value of property |key| among the message's KEY=VALUE pairs (after the header), or NULL. */
static const char *property(const char *msg, size_t len, const char *key) {
        size_t klen = strlen(key);

        for (size_t i = strnlen(msg, len) + 1; i < len; i += strnlen(msg + i, len - i) + 1)
                if (strncmp(msg + i, key, klen) == 0 && msg[i + klen] == '=')
                        return msg + i + klen + 1;
        return NULL;
}

/* The filters' contracts (uevent-filter.h), on a message of the kernel's shape: a header "ACTION@DEVPATH"
 * with one of the kernel's actions (kobject_action_type, lib/kobject_uevent.c), then the properties the
 * kernel always adds. */
static void check_filters(const char *msg, size_t len, bool passed[_UEVENT_FILTER_MAX]) {
        static const char *const actions[] = { "add",    "remove",  "change", "move",
                                               "online", "offline", "bind",   "unbind" };
        size_t header = strnlen(msg, len);
        const char *at = memchr(msg, '@', header), *devpath;
        bool known = false;

        if (header + 1 >= len || !at || has_prefix(msg, "libudev"))
                return;
        /* The kernel adds these to every message (kobject_uevent_env()), so a message is never shorter than
         * the filters' loads reach (DEVPATH + 22 bytes). */
        if (!property(msg, len, "ACTION") || !property(msg, len, "DEVPATH") ||
            !property(msg, len, "SUBSYSTEM") || !property(msg, len, "SEQNUM"))
                return;
        for (size_t i = 0; i < ELEMENTSOF(actions); i++)
                known = known || ((size_t)(at - msg) == strlen(actions[i]) && has_prefix(msg, actions[i]));
        if (!known)
                return;
        devpath = at + 1;

        /* PCI_ADD_BIND: every add under /devices/ outside /devices/virtual/ and every bind pass; the other
         * actions, and an add of a module, bus, driver or virtual device, are pruned. */
        if ((has_prefix(msg, "add@") && has_prefix(devpath, "/devices/") &&
             !has_prefix(devpath, "/devices/virtual/")) ||
            has_prefix(msg, "bind@"))
                fuzz_check(passed[UEVENT_FILTER_PCI_ADD_BIND], "PCI_ADD_BIND dropped '%s'", msg);
        else if (
                !has_prefix(msg, "add@") || !has_prefix(devpath, "/devices") ||
                has_prefix(devpath, "/devices/virtual/"))
                fuzz_check(!passed[UEVENT_FILTER_PCI_ADD_BIND], "PCI_ADD_BIND passed '%s'", msg);

        /* NO_VFIO_GROUPS: drops exactly the vfio group class devices. */
        fuzz_check(
                passed[UEVENT_FILTER_NO_VFIO_GROUPS] != has_prefix(devpath, "/devices/virtual/vfio/"),
                "NO_VFIO_GROUPS %s '%s'", passed[UEVENT_FILTER_NO_VFIO_GROUPS] ? "passed" : "dropped", msg);
}

static void check_model_in_sysfs(const Model *m) {
        const PciDevice *const *devices;
        const Mdev *const *mdevs;
        size_t n;
        char path[512];

        devices = model_get_devices(m, &n);
        for (size_t i = 0; i < n; i++) {
                snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", devices[i]->address);
                fuzz_check(access(path, F_OK) == 0, "model holds %s, sysfs does not", devices[i]->address);
        }
        mdevs = model_get_mdevs(m, &n);
        for (size_t i = 0; i < n; i++) {
                snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s", mdevs[i]->uuid);
                fuzz_check(access(path, F_OK) == 0, "model holds mdev %s, sysfs does not", mdevs[i]->uuid);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *parts[MAX_EVENTS];
        size_t sizes[MAX_EVENTS], n;
        ModelChangeList changes = {};
        Model *m = model;
        int r;

        if (size > 16 * 1024)
                return 0;

        n = fuzz_split(data, size, FUZZ_SEP("\0\0"), parts, sizes, MAX_EVENTS);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *msg = NULL, *syspath = NULL;
                bool passed[_UEVENT_FILTER_MAX];
                const char *action, *devpath, *subsystem, *mdev_state, *sysname;
                size_t len = sizes[i];

                if (len == 0 || len > 4096)
                        continue;
                for (int f = 0; f < _UEVENT_FILTER_MAX; f++)
                        passed[f] = filter_passes(f, parts[i], len);
                msg = fuzz_strndup(parts[i], len); /* one NUL more, so the last property ends */
                check_filters(msg, len + 1, passed);

                action = property(msg, len + 1, "ACTION");
                devpath = property(msg, len + 1, "DEVPATH");
                subsystem = property(msg, len + 1, "SUBSYSTEM");
                mdev_state = property(msg, len + 1, "MDEV_STATE");
                if (!monitor_event_is_relevant(subsystem, mdev_state)) {
                        fuzz_check(
                                !subsystem ||
                                        (strcmp(subsystem, "pci") != 0 && strcmp(subsystem, "mdev") != 0),
                                "a %s event judged irrelevant", subsystem);
                        continue;
                }
                if (!action || !devpath)
                        continue;
                if (asprintf(&syspath, "/sys%s", devpath) < 0)
                        abort();
                sysname = strrchr(syspath, '/') + 1;

                r = model_handle_uevent(m, action, subsystem, syspath, sysname, mdev_state, &changes);
                fuzz_check(
                        r >= 0 || r == -EINVAL || r == -ENOENT, "model_handle_uevent(%s %s %s) = %d", action,
                        subsystem, syspath, r);
                check_model_in_sysfs(m);
        }

        /* A rescan repairs whatever the events did. */
        fuzz_check(model_enumerate(m, &changes) == 0, "rescan");
        fuzz_check(model_equal(m, baseline), "the model after a rescan differs from a fresh enumeration");

        model_change_list_done(&changes);
        return 0;
}
