/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev-bench: the guest's timing helper for tests/bench/mdev-bench.sh (kernel lane, mtty).
 *
 *   mdev-bench raw-create PARENT TYPE N   write N UUIDs to PARENT/mdev_supported_types/TYPE/create
 *                                         (/sys/class/mdev_bus/PARENT), one write each, as the
 *                                         kernel's mdev core expects (drivers/vfio/mdev/mdev_sysfs.c:
 *                                         create_store)
 *   mdev-bench raw-remove N               write "1" to /sys/bus/mdev/devices/UUID/remove of the same N
 *   mdev-bench wait N                     return once /sys/bus/mdev/devices holds exactly N entries
 *                                         (woken by the kernel's mdev uevents on a netlink socket,
 *                                         never a poll that takes the guest's one CPU; 60 s at most)
 *   mdev-bench time CMD [ARG...]          run CMD, print its wall time in microseconds
 *   mdev-bench hup PID N|-                trigger: SIGHUP to hostdevd PID (it re-reads its
 *                                         desired state, agent/daemon.c on_sighup())
 *   mdev-bench reload N|-                 trigger: org.hostdevd1.Manager.Reload from this process,
 *                                         on a bus connection opened before the clock starts (a
 *                                         client already running; no interactive authorization)
 *
 * hup and reload print two times in microseconds, "SYSFS BUS": from the trigger until N mdevs
 * exist (the Nth mdev "add"/"remove" uevent, checked by a directory count), and until hostdevd
 * announces MdevCount = N on the bus (its model has them all; PropertiesChanged of the Manager).
 * With "-" (a reload with nothing to do): both are the time until hostdevd announces the new
 * Generation, which it does after the plan that follows the reload (agent/event-priorities.h:
 * the plan runs before the status publish).
 *
 * raw-create and raw-remove print their own wall time in microseconds. The UUIDs are
 * mdev_bench_uuid(i), i = 0..N-1, the ones mdev-bench.sh gives mdevctl too.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define MDEV_DEVICES "/sys/bus/mdev/devices"
#define MDEV_BUS_CLASS "/sys/class/mdev_bus"

static uint64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void mdev_bench_uuid(unsigned i, char buf[static 37]) {
        snprintf(buf, 37, "6f1d2a3b-0000-4000-8000-%012x", 0xbe00u + i);
}

static int write_string(const char *path, const char *value) {
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC);
        ssize_t n;

        if (fd < 0) {
                fprintf(stderr, "open %s: %s\n", path, strerror(errno));
                return -1;
        }
        n = write(fd, value, strlen(value));
        if (n != (ssize_t)strlen(value)) {
                fprintf(stderr, "write %s to %s: %s\n", value, path,
                        n < 0 ? strerror(errno) : "short write");
                close(fd);
                return -1;
        }
        if (close(fd) < 0) {
                fprintf(stderr, "close %s: %s\n", path, strerror(errno));
                return -1;
        }
        return 0;
}

static int count_mdevs(void) {
        DIR *d = opendir(MDEV_DEVICES);
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static int cmd_raw(const char *parent, const char *type, unsigned n) {
        char path[512], uuid[37];
        uint64_t t0 = now_us();

        for (unsigned i = 0; i < n; i++) {
                mdev_bench_uuid(i, uuid);
                if (parent)
                        snprintf(
                                path, sizeof(path), MDEV_BUS_CLASS "/%s/mdev_supported_types/%s/create",
                                parent, type);
                else
                        snprintf(path, sizeof(path), MDEV_DEVICES "/%s/remove", uuid);
                if (write_string(path, parent ? uuid : "1") < 0)
                        return 1;
        }
        printf("%llu\n", (unsigned long long)(now_us() - t0));
        return 0;
}

/* ---- the waiter: the kernel's uevents, and hostdevd's Manager signals ----------------------------- */

typedef struct Waiter {
        int uevents; /* NETLINK_KOBJECT_UEVENT, the kernel's group */
        int want; /* mdevs wanted; -1: a Generation announcement */
        int count; /* mdevs by the uevents seen since the last directory count */
        bool down; /* fewer wanted than there were at the start */
        uint64_t t_sysfs, t_bus; /* when each was reached; 0: not yet */
        sd_bus *bus;
        uint64_t generation; /* the last one announced */
} Waiter;

static int uevent_socket(void) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 /* the kernel's */ };
        int fd, size = 4 * 1024 * 1024;

        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
        if (fd < 0) {
                fprintf(stderr, "netlink socket: %s\n", strerror(errno));
                return -1;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                fprintf(stderr, "netlink bind: %s\n", strerror(errno));
                close(fd);
                return -1;
        }
        return fd;
}

/* Read what the socket holds; counts mdev "add"/"remove" (an overrun: count the directory). */
static void waiter_read_uevents(Waiter *w) {
        char buf[8192];

        for (;;) {
                ssize_t n = recv(w->uevents, buf, sizeof(buf) - 1, 0);
                bool mdev = false;
                int delta = 0;

                if (n < 0) {
                        if (errno == ENOBUFS)
                                w->count = count_mdevs();
                        if (errno == EINTR || errno == ENOBUFS)
                                continue;
                        return; /* EAGAIN */
                }
                buf[n] = 0;
                /* "ACTION@DEVPATH\0KEY=VALUE\0..." (lib/kobject_uevent.c) */
                for (char *p = buf; p < buf + n; p += strlen(p) + 1) {
                        if (strcmp(p, "SUBSYSTEM=mdev") == 0)
                                mdev = true;
                        else if (strcmp(p, "ACTION=add") == 0)
                                delta = 1;
                        else if (strcmp(p, "ACTION=remove") == 0)
                                delta = -1;
                }
                if (mdev)
                        w->count += delta;
        }
}

/* PropertiesChanged of the Manager: MdevCount, Generation. */
static int on_manager_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Waiter *w = userdata;

        const char *iface, *name;
        int r;

        (void)error;
        if (sd_bus_message_read(m, "s", &iface) < 0 || strcmp(iface, "org.hostdevd1.Manager") != 0)
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return 0;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                if (sd_bus_message_read(m, "s", &name) < 0)
                        return 0;
                if (strcmp(name, "MdevCount") == 0) {
                        uint32_t v;
                        if (sd_bus_message_read(m, "v", "u", &v) < 0)
                                return 0;
                        if (w->want >= 0 && (int)v == w->want && !w->t_bus)
                                w->t_bus = now_us();
                } else if (strcmp(name, "Generation") == 0) {
                        uint64_t v;
                        if (sd_bus_message_read(m, "v", "t", &v) < 0)
                                return 0;
                        if (w->want < 0 && v > w->generation && !w->t_bus)
                                w->t_bus = w->t_sysfs = now_us();
                        w->generation = v;
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        return 0;
}

static int waiter_open(Waiter *w, int want, bool bus) {
        int r;

        *w = (Waiter){ .want = want, .uevents = -1 };
        w->uevents = uevent_socket();
        if (w->uevents < 0)
                return -1;
        w->count = count_mdevs();
        w->down = w->count > want;
        if (!bus)
                return 0;
        r = sd_bus_open_system(&w->bus);
        if (r >= 0)
                r = sd_bus_match_signal(
                        w->bus, NULL, "org.hostdevd1", "/org/hostdevd1", "org.freedesktop.DBus.Properties",
                        "PropertiesChanged", on_manager_changed, w);
        if (r >= 0)
                r = sd_bus_get_property_trivial(
                        w->bus, "org.hostdevd1", "/org/hostdevd1", "org.hostdevd1.Manager", "Generation",
                        NULL, 't', &w->generation);
        if (r < 0) {
                fprintf(stderr, "the system bus, hostdevd's Manager: %s\n", strerror(-r));
                return -1;
        }
        return 0;
}

/* Until both ends are reached (with no bus: the sysfs one); 60 s at most. */
static int waiter_run(Waiter *w) {
        uint64_t deadline = now_us() + 60u * 1000000u;
        /* The events said done but the directory did not agree: the kernel sends an mdev's "remove"
         * before it deletes its directory (device_del(), drivers/base/core.c), so count again soon
         * rather than wait for an event that will not come. */
        bool settle = false;

        for (;;) {
                struct pollfd p[2] = { { .fd = w->uevents, .events = POLLIN } };
                int n = 1, r;

                waiter_read_uevents(w);
                /* The events say so (or overshoot: an event that came between the socket's bind and the
                 * first count is counted twice); the directory decides. */
                if (!w->t_sysfs && w->want >= 0 &&
                    (settle || (w->down ? w->count <= w->want : w->count >= w->want))) {
                        w->count = count_mdevs();
                        settle = w->count != w->want;
                        if (!settle)
                                w->t_sysfs = now_us();
                }
                while (w->bus && (r = sd_bus_process(w->bus, NULL)) > 0)
                        ;
                if (w->t_sysfs && (!w->bus || w->t_bus))
                        return 0;
                if (now_us() > deadline) {
                        fprintf(stderr, "after 60 s: %d mdevs (want %d), %s\n", count_mdevs(), w->want,
                                w->t_bus ? "announced" : "not announced");
                        return 1;
                }
                if (w->bus) {
                        p[1] = (struct pollfd){ .fd = sd_bus_get_fd(w->bus),
                                                .events = (short)sd_bus_get_events(w->bus) };
                        n = 2;
                }
                (void)poll(p, n, settle ? 1 : 1000);
        }
}

static void waiter_close(Waiter *w) {
        if (w->uevents >= 0)
                close(w->uevents);
        sd_bus_flush_close_unref(w->bus);
}

static int cmd_wait(int n) {
        Waiter w;
        int r;

        if (waiter_open(&w, n, false) < 0)
                return 1;
        r = waiter_run(&w);
        waiter_close(&w);
        return r;
}

static int parse_want(const char *s) {
        return strcmp(s, "-") == 0 ? -1 : atoi(s);
}

/* hup PID N|- and reload N|-: the trigger, then the waiter; prints "SYSFS BUS" microseconds. */
static int cmd_trigger(pid_t hup, const char *want) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *call = NULL, *reply = NULL;
        uint64_t t0;
        Waiter w;
        int r = 0;

        if (waiter_open(&w, parse_want(want), true) < 0)
                return 1;
        if (!hup) {
                r = sd_bus_message_new_method_call(
                        w.bus, &call, "org.hostdevd1", "/org/hostdevd1", "org.hostdevd1.Manager", "Reload");
                if (r >= 0)
                        r = sd_bus_message_set_allow_interactive_authorization(call, false);
                if (r < 0) {
                        fprintf(stderr, "Reload: %s\n", strerror(-r));
                        waiter_close(&w);
                        return 1;
                }
        }

        t0 = now_us();
        if (hup)
                r = kill(hup, SIGHUP) < 0 ? -errno : 0;
        else
                r = sd_bus_call(w.bus, call, 0, &error, &reply);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", hup ? "SIGHUP" : "Reload", error.message ?: strerror(-r));
                r = 1;
        } else
                r = waiter_run(&w);
        if (r == 0)
                printf("%llu %llu\n", (unsigned long long)(w.t_sysfs - t0),
                       (unsigned long long)(w.t_bus - t0));
        sd_bus_error_free(&error);
        sd_bus_message_unref(call);
        sd_bus_message_unref(reply);
        waiter_close(&w);
        return r;
}

static int cmd_time(char **argv) {
        uint64_t t0 = now_us();
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return 1;
        if (pid == 0) {
                execvp(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return 1;
        printf("%llu\n", (unsigned long long)(now_us() - t0));
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
        if (argc == 5 && strcmp(argv[1], "raw-create") == 0)
                return cmd_raw(argv[2], argv[3], (unsigned)atoi(argv[4]));
        if (argc == 3 && strcmp(argv[1], "raw-remove") == 0)
                return cmd_raw(NULL, NULL, (unsigned)atoi(argv[2]));
        if (argc == 3 && strcmp(argv[1], "wait") == 0)
                return cmd_wait(atoi(argv[2]));
        if (argc == 4 && strcmp(argv[1], "hup") == 0 && atoi(argv[2]) > 0)
                return cmd_trigger((pid_t)atoi(argv[2]), argv[3]);
        if (argc == 3 && strcmp(argv[1], "reload") == 0)
                return cmd_trigger(0, argv[2]);
        if (argc >= 3 && strcmp(argv[1], "time") == 0)
                return cmd_time(argv + 2);
        if (argc == 3 && strcmp(argv[1], "uuid") == 0) {
                char uuid[37];
                mdev_bench_uuid((unsigned)atoi(argv[2]), uuid);
                puts(uuid);
                return 0;
        }
        fprintf(stderr,
                "usage: mdev-bench raw-create PARENT TYPE N | raw-remove N | wait N | time CMD [ARG...] | "
                "hup PID N|- | reload N|- | uuid I\n");
        return 2;
}
