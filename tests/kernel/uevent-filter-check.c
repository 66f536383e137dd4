/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * uevent-filter-check FILTER SYSPATH ACTION
 *
 * The kernel lane's check of src/uevent-filter.c on a real NETLINK_KOBJECT_UEVENT socket (the unit test
 * runs the programs on an AF_UNIX pair). FILTER: "pci-add-bind" or "no-vfio-groups".
 *
 * Opens two sockets on the kernel's uevent group, one with FILTER attached, writes ACTION to
 * SYSPATH/uevent (a synthetic uevent: Documentation/ABI/testing/sysfs-uevent), waits up to 10 s for
 * the message "ACTION@DEVPATH" on the unfiltered socket, then looks for it on the filtered one: the
 * kernel delivers one broadcast to every socket in the same call (net/netlink/af_netlink.c,
 * netlink_broadcast()), so it is there by then unless the filter dropped it.
 *
 * Prints "passed" or "dropped"; exit status 0 passed, 1 dropped, 2 bad usage or a failed step.
 * Writes sysfs: for the kernel lane's guest only.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "uevent-filter.h"

static int open_uevent_socket(void) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
        int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* Whether a message whose first string is |header| is queued on |fd| (drains what is queued). */
static bool drain_for(int fd, const char *header) {
        char buf[8192];
        bool found = false;
        ssize_t n;

        while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) >= 0) {
                buf[n] = 0;
                if (strcmp(buf, header) == 0)
                        found = true;
        }
        return found;
}

static long long now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
        char real[PATH_MAX], header[PATH_MAX + 32], path[PATH_MAX + 16];
        UeventFilter filter;
        int plain, filtered, fd, r;
        long long deadline;
        bool seen = false;

        if (argc != 4) {
                fprintf(stderr, "usage: uevent-filter-check pci-add-bind|no-vfio-groups SYSPATH ACTION\n");
                return 2;
        }
        if (strcmp(argv[1], "pci-add-bind") == 0)
                filter = UEVENT_FILTER_PCI_ADD_BIND;
        else if (strcmp(argv[1], "no-vfio-groups") == 0)
                filter = UEVENT_FILTER_NO_VFIO_GROUPS;
        else {
                fprintf(stderr, "uevent-filter-check: no filter '%s'\n", argv[1]);
                return 2;
        }
        if (!realpath(argv[2], real) || strncmp(real, "/sys/", 5) != 0) {
                fprintf(stderr, "uevent-filter-check: '%s' is not a sysfs device directory\n", argv[2]);
                return 2;
        }
        snprintf(header, sizeof(header), "%s@%s", argv[3], real + strlen("/sys"));

        plain = open_uevent_socket();
        filtered = open_uevent_socket();
        if (plain < 0 || filtered < 0) {
                fprintf(stderr, "uevent-filter-check: netlink socket: %s\n",
                        strerror(-(plain < 0 ? plain : filtered)));
                return 2;
        }
        r = uevent_filter_attach(filtered, filter);
        if (r < 0) {
                fprintf(stderr, "uevent-filter-check: attaching %s: %s\n", argv[1], strerror(-r));
                return 2;
        }

        snprintf(path, sizeof(path), "%s/uevent", real);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, argv[3], strlen(argv[3])) != (ssize_t)strlen(argv[3])) {
                fprintf(stderr, "uevent-filter-check: writing '%s' to %s: %m\n", argv[3], path);
                return 2;
        }
        close(fd);

        deadline = now_ms() + 10000;
        while (!seen && now_ms() < deadline) {
                struct pollfd p = { .fd = plain, .events = POLLIN };

                if (poll(&p, 1, 100) > 0)
                        seen = drain_for(plain, header);
        }
        if (!seen) {
                fprintf(stderr, "uevent-filter-check: the unfiltered socket never got '%s'\n", header);
                return 2;
        }
        if (drain_for(filtered, header)) {
                printf("passed\n");
                return 0;
        }
        printf("dropped\n");
        return 1;
}
