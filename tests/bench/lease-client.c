/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lease-client: the timed side of the lease benchmark (tests/bench/lease.sh), inside the kernel
 * lane's guest only (it writes /sys). One process that is already running and already on the system
 * bus, so that what it times is hostdevd's and the kernel's work, not an exec or a bus connection.
 * Times on CLOCK_MONOTONIC, in microseconds (the clock of hostdevd's HOSTDEVD_LOG_TIME=1 log lines).
 * Every timed step starts once the guest's CPU is idle again (settle(), untimed), so that the work
 * that follows the last change (hostdevd's uevents, plans, the host-critical set computed again when a
 * NIC comes or goes; the driver's own) has ended: each figure is one step from an idle machine, as a
 * VM start is.
 * Every row on stdout is "NAME<TAB>ROUND<TAB>MICROSECONDS"; trace rounds add
 * "trace<TAB>ROUND<TAB>STEP<TAB>MONOTONIC_USEC" rows for the breakdown.
 *
 *   lease-client acquire BDF ROUNDS [trace]
 *       per round: Manager.Acquire([BDF], {}) with this process as the lease owner, timed from the
 *       call sent to the reply received (hostdevd replies once the function is verified on vfio-pci:
 *       row acquire-client); the driver link is checked; then Lease.Release() and, untimed, a wait
 *       until BDF is on its host driver again (its "bind" uevent). "trace": LogControl1.LogLevel is "debug"
 * for these rounds (and "info" after), and each round's send and reply times are printed as trace rows.
 *   lease-client dry BDF ROUNDS
 *       Acquire with "dry-run": the bus call, the caller's credentials, polkit (root: no prompt, no
 *       polkitd), the caller check and the validation, and nothing else (row acquire-dry).
 *   lease-client ping ROUNDS
 *       org.freedesktop.DBus.Peer.Ping to hostdevd: one bus round trip (row bus-ping).
 *   lease-client exec ROUNDS PROGRAM [ARG...]
 *       fork + exec + wait of PROGRAM (row exec, e.g. `hostdevctl --version`).
 *   lease-client run BDF ROUNDS HOSTDEVCTL
 *       per round: `HOSTDEVCTL run --device=BDF -- lease-client vmm FD FD` forked; timed from the fork
 *       to the byte the VMM (this program, exec'd by hostdevctl once the lease is ready) writes
 *       (row acquire-hostdevctl); then the VMM is told to exit and the time to BDF back on its host
 *       driver is taken (row exit-hostdevd: until the kernel's "bind" uevent with the host driver, sent once
 * the driver's probe returned, as drivers_probe returns for exit-kernel; the driver link exists during the
 *       probe already).
 *   lease-client raw BDF HOSTDRIVER ROUNDS
 *       the raw writes, as hostdevd's executor does them: driver_override=vfio-pci, unbind,
 *       drivers_probe, driver link read (row acquire-raw); then back: driver_override cleared,
 *       unbind, drivers_probe, driver link = HOSTDRIVER (row exit-kernel).
 *       Documentation/ABI/testing/sysfs-bus-pci.
 *
 * Exit status 0, 1 on a failure (said on stderr), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>

#include <systemd/sd-bus.h>

#include "names.h"

#define PCI_DEVICES "/sys/bus/pci/devices"
#define WAIT_USEC (30 * UINT64_C(1000000))
#define SETTLE_SAMPLE_USEC 100000
#define SETTLE_MAX_USEC (10 * UINT64_C(1000000))

static uint64_t now_usec(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * UINT64_C(1000000) + (uint64_t)ts.tv_nsec / 1000;
}

static void row(const char *name, unsigned round, uint64_t usec) {
        printf("%s\t%u\t%" PRIu64 "\n", name, round, usec);
        fflush(stdout);
}

static void trace(unsigned round, const char *step, uint64_t at) {
        printf("trace\t%u\t%s\t%" PRIu64 "\n", round, step, at);
        fflush(stdout);
}

static int fail(const char *what, int r) {
        fprintf(stderr, "lease-client: %s: %s\n", what, strerror(r < 0 ? -r : r));
        return 1;
}

/* The driver |bdf| is bound to now, "" for none. */
static void driver_of(const char *bdf, char *buf, size_t size) {
        char path[PATH_MAX], link[PATH_MAX];
        ssize_t n;
        char *slash;

        snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver", bdf);
        n = readlink(path, link, sizeof(link) - 1);
        if (n < 0) {
                buf[0] = '\0';
                return;
        }
        link[n] = '\0';
        slash = strrchr(link, '/');
        slash = slash ? slash + 1 : link;
        if (strlen(slash) >= size)
                slash = "?";
        memcpy(buf, slash, strlen(slash) + 1);
}

static bool bound_to(const char *bdf, const char *driver) {
        char now[NAME_MAX + 1];

        driver_of(bdf, now, sizeof(now));
        return strcmp(now, driver) == 0;
}

/* The guest's CPU time in jiffies from /proc/stat's "cpu" line: *ret_busy (user, nice, system, irq,
 * softirq, steal) and *ret_all (those + idle + iowait). Documentation/filesystems/proc.rst. */
static int cpu_times(uint64_t *ret_busy, uint64_t *ret_all) {
        unsigned long long v[8] = {};
        FILE *f = fopen("/proc/stat", "re");
        int n;

        if (!f)
                return -errno;
        n =
                fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                       &v[5], &v[6], &v[7]);
        fclose(f);
        if (n < 5)
                return -EIO;
        *ret_busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        *ret_all = *ret_busy + v[3] + v[4];
        return 0;
}

/* Untimed: wait until a 100 ms sample of the guest's CPU is at least 95% idle (10 s at most). */
static void settle(void) {
        uint64_t until = now_usec() + SETTLE_MAX_USEC;

        while (now_usec() < until) {
                uint64_t b0, a0, b1, a1;

                if (cpu_times(&b0, &a0) < 0)
                        break;
                (void)usleep(SETTLE_SAMPLE_USEC);
                if (cpu_times(&b1, &a1) < 0)
                        break;
                if (a1 > a0 && (b1 - b0) * 20 <= a1 - a0)
                        return;
        }
}

/* A socket on the kernel's uevents (NETLINK_KOBJECT_UEVENT, group 1), opened before the change it waits
 * for, or -errno. */
static int uevent_open(void) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
        int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;

                (void)close(fd);
                return r;
        }
        return fd;
}

/* Wait for the kernel's "bind" uevent of |bdf| with DRIVER=|driver|: sent by driver_bound() once the
 * driver's probe returned (drivers/base/dd.c), unlike the driver link, which exists while it probes.
 * 0, or -ETIMEDOUT. */
static int uevent_wait_bind(int fd, const char *bdf, const char *driver) {
        uint64_t until = now_usec() + WAIT_USEC;
        char want_driver[NAME_MAX + 8], suffix[64];

        snprintf(want_driver, sizeof(want_driver), "DRIVER=%s", driver);
        snprintf(suffix, sizeof(suffix), "/%s", bdf);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char buf[8192];
                uint64_t now = now_usec();
                bool ours = false, named = false;
                ssize_t n;

                if (now >= until)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int)((until - now) / 1000) + 1) <= 0)
                        continue;
                n = recv(fd, buf, sizeof(buf) - 1, 0);
                if (n <= 0)
                        continue;
                buf[n] = '\0';
                for (char *f = buf; f < buf + n; f += strlen(f) + 1) {
                        size_t len = strlen(f);

                        if (f == buf)
                                ours = strncmp(f, "bind@", 5) == 0 && len > strlen(suffix) &&
                                        strcmp(f + len - strlen(suffix), suffix) == 0;
                        else if (strcmp(f, want_driver) == 0)
                                named = true;
                }
                if (ours && named)
                        return 0;
        }
}

static int write_attr(const char *path, const char *value) {
        size_t n = strlen(value);
        int fd, r = 0;

        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, value, n) != (ssize_t)n)
                r = -errno;
        (void)close(fd);
        return r;
}

static int write_dev_attr(const char *bdf, const char *attr, const char *value) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), PCI_DEVICES "/%s/%s", bdf, attr);
        return write_attr(path, value);
}

/* driver_override, unbind, drivers_probe, verify: what hostdevd's executor writes for one function. */
static int raw_bind(const char *bdf, const char *override, const char *expect) {
        int r;

        r = write_dev_attr(bdf, "driver_override", override);
        if (r >= 0)
                r = write_dev_attr(bdf, "driver/unbind", bdf);
        if (r >= 0)
                r = write_attr("/sys/bus/pci/drivers_probe", bdf);
        if (r < 0)
                return r;
        return bound_to(bdf, expect) ? 0 : -EIO;
}

static int set_log_level(sd_bus *bus, const char *level) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_set_property(
                bus, HOSTDEVD_BUS_NAME, LOG_CONTROL_PATH, LOG_CONTROL_INTERFACE, "LogLevel", &error, "s",
                level);
        if (r < 0)
                fprintf(stderr, "lease-client: LogLevel=%s: %s\n", level, error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

static int call_acquire(sd_bus *bus, const char *bdf, bool dry, char **ret_path) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_message_new_method_call(
                bus, &m, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, "Acquire");
        if (r >= 0)
                r = sd_bus_message_append(m, "as", 1, bdf);
        if (r >= 0 && dry)
                r = sd_bus_message_append(m, "a{sv}", 1, LEASE_OPTION_DRY_RUN, "b", 1);
        else if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call(bus, m, 60 * UINT64_C(1000000), &error, &reply);
        if (r < 0)
                fprintf(stderr, "lease-client: Acquire %s: %s\n", bdf, error.message ?: strerror(-r));
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0 && ret_path)
                *ret_path = strdup(path);
        sd_bus_error_free(&error);
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        return r;
}

static int call_release(sd_bus *bus, const char *path) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(
                bus, HOSTDEVD_BUS_NAME, path, HOSTDEVD_LEASE_INTERFACE, "Release", &error, NULL, "");
        if (r < 0)
                fprintf(stderr, "lease-client: Release %s: %s\n", path, error.message ?: strerror(-r));
        sd_bus_error_free(&error);
        return r;
}

/* Connected, authenticated and Hello'd before anything is timed: sd_bus_open_system() only starts the
 * connection, and the first call would wait for the rest; sd_bus_get_unique_name() waits for it (the
 * unique name comes with the Hello reply). */
static int open_bus(sd_bus **ret) {
        const char *unique;
        int r = sd_bus_open_system(ret);

        if (r < 0)
                return fail("connect to the system bus", r);
        r = sd_bus_get_unique_name(*ret, &unique);
        return r < 0 ? fail("finish the connection to the system bus", r) : 0;
}

static int do_acquire(const char *bdf, unsigned rounds, bool traced) {
        sd_bus *bus = NULL;
        char host[NAME_MAX + 1];
        int r = 0;

        if (open_bus(&bus) != 0)
                return 1;
        driver_of(bdf, host, sizeof(host));
        if (!*host || strcmp(host, "vfio-pci") == 0) {
                fprintf(stderr, "lease-client: %s is on '%s', not on a host driver\n", bdf, host);
                return 1;
        }
        if (traced && set_log_level(bus, "debug") < 0)
                return 1;
        for (unsigned i = 1; i <= rounds && r >= 0; i++) {
                char *path = NULL;
                uint64_t t0, t1;
                int ufd;

                /* Each round from an idle hostdevd: the last round's release (its uevents, plans and
                 * the host-critical set computed again) has ended. Untimed. */
                settle();
                t0 = now_usec();
                r = call_acquire(bus, bdf, false, &path);
                t1 = now_usec();
                if (r < 0)
                        break;
                if (traced) {
                        trace(i, "client-send", t0);
                        trace(i, "client-reply", t1);
                }
                row(traced ? "acquire-client-traced" : "acquire-client", i, t1 - t0);
                if (!bound_to(bdf, "vfio-pci")) {
                        fprintf(stderr, "lease-client: %s is not on vfio-pci after Acquire replied\n", bdf);
                        r = -EIO;
                }
                ufd = uevent_open();
                if (ufd < 0) {
                        free(path);
                        return fail("uevent socket", ufd);
                }
                if (call_release(bus, path) < 0 && r >= 0)
                        r = -EIO;
                free(path);
                if (r >= 0 && uevent_wait_bind(ufd, bdf, host) < 0) {
                        fprintf(stderr, "lease-client: %s not back on %s after Release\n", bdf, host);
                        r = -ETIMEDOUT;
                }
                (void)close(ufd);
        }
        if (traced)
                (void)set_log_level(bus, "info");
        sd_bus_flush_close_unref(bus);
        return r < 0 ? 1 : 0;
}

static int do_dry(const char *bdf, unsigned rounds) {
        sd_bus *bus = NULL;
        int r = 0;

        if (open_bus(&bus) != 0)
                return 1;
        for (unsigned i = 1; i <= rounds && r >= 0; i++) {
                uint64_t t0;

                settle();
                t0 = now_usec();
                r = call_acquire(bus, bdf, true, NULL);
                if (r >= 0)
                        row("acquire-dry", i, now_usec() - t0);
        }
        sd_bus_flush_close_unref(bus);
        return r < 0 ? 1 : 0;
}

static int do_ping(unsigned rounds) {
        sd_bus *bus = NULL;
        int r = 0;

        if (open_bus(&bus) != 0)
                return 1;
        for (unsigned i = 1; i <= rounds && r >= 0; i++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                uint64_t t0;

                settle();
                t0 = now_usec();
                r = sd_bus_call_method(
                        bus, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, "org.freedesktop.DBus.Peer", "Ping",
                        &error, NULL, "");
                if (r >= 0)
                        row("bus-ping", i, now_usec() - t0);
                else
                        fprintf(stderr, "lease-client: Ping: %s\n", error.message ?: strerror(-r));
                sd_bus_error_free(&error);
        }
        sd_bus_flush_close_unref(bus);
        return r < 0 ? 1 : 0;
}

static int spawn_wait(char **argv, int *ret_status) {
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                if (null >= 0)
                        (void)dup2(null, STDOUT_FILENO);
                execvp(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, ret_status, 0) < 0)
                return -errno;
        return 0;
}

static int do_exec(unsigned rounds, char **argv) {
        for (unsigned i = 1; i <= rounds; i++) {
                uint64_t t0;
                int status, r;

                settle();
                t0 = now_usec();
                r = spawn_wait(argv, &status);
                if (r < 0)
                        return fail("fork", r);
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr, "lease-client: %s failed (status %d)\n", argv[0], status);
                        return 1;
                }
                row("exec", i, now_usec() - t0);
        }
        return 0;
}

/* The VMM of "run": one byte on |ready_fd|, then wait until |go_fd| is closed (or readable). */
static int do_vmm(int ready_fd, int go_fd) {
        char c = 'r';
        struct pollfd p = { .fd = go_fd, .events = POLLIN };

        if (write(ready_fd, &c, 1) != 1)
                return fail("write the ready byte", -errno);
        (void)close(ready_fd);
        (void)poll(&p, 1, -1);
        return 0;
}

static int do_run(const char *bdf, unsigned rounds, const char *hostdevctl, const char *self) {
        char host[NAME_MAX + 1];

        driver_of(bdf, host, sizeof(host));
        if (!*host || strcmp(host, "vfio-pci") == 0) {
                fprintf(stderr, "lease-client: %s is on '%s', not on a host driver\n", bdf, host);
                return 1;
        }
        for (unsigned i = 1; i <= rounds; i++) {
                int ready[2], go[2], status;
                char device[64], rfd[16], gfd[16], c;
                uint64_t t0, t1;
                int ufd;
                pid_t pid;

                /* The child's ends survive both execs (no CLOEXEC); ours are closed in the child. */
                if (pipe(ready) < 0 || pipe(go) < 0)
                        return fail("pipe", -errno);
                snprintf(device, sizeof(device), "--device=%s", bdf);
                snprintf(rfd, sizeof(rfd), "%d", ready[1]);
                snprintf(gfd, sizeof(gfd), "%d", go[0]);
                settle();
                t0 = now_usec();
                pid = fork();
                if (pid < 0)
                        return fail("fork", -errno);
                if (pid == 0) {
                        (void)close(ready[0]);
                        (void)close(go[1]);
                        execl(hostdevctl, hostdevctl, "--no-ask-password", "run", device, "--", self, "vmm",
                              rfd, gfd, (char *)NULL);
                        _exit(127);
                }
                (void)close(ready[1]);
                (void)close(go[0]);
                if (read(ready[0], &c, 1) != 1) {
                        fprintf(stderr, "lease-client: hostdevctl run ended before its command ran\n");
                        (void)waitpid(pid, &status, 0);
                        return 1;
                }
                t1 = now_usec();
                (void)close(ready[0]);
                if (!bound_to(bdf, "vfio-pci")) {
                        fprintf(stderr, "lease-client: %s is not on vfio-pci in the VMM\n", bdf);
                        return 1;
                }
                row("acquire-hostdevctl", i, t1 - t0);
                /* The VMM exits: its lease ends, the function goes back to its host driver (its probe
                 * returned: the "bind" uevent, as drivers_probe's return for exit-kernel). */
                ufd = uevent_open();
                if (ufd < 0)
                        return fail("uevent socket", ufd);
                settle();
                t0 = now_usec();
                (void)close(go[1]);
                if (uevent_wait_bind(ufd, bdf, host) < 0) {
                        fprintf(stderr, "lease-client: %s not back on %s after the VMM exited\n", bdf, host);
                        return 1;
                }
                t1 = now_usec();
                (void)close(ufd);
                (void)waitpid(pid, &status, 0);
                row("exit-hostdevd", i, t1 - t0);
        }
        return 0;
}

static int do_raw(const char *bdf, const char *host, unsigned rounds) {
        for (unsigned i = 1; i <= rounds; i++) {
                uint64_t t0;
                int r;

                settle();
                t0 = now_usec();
                r = raw_bind(bdf, "vfio-pci", "vfio-pci");
                if (r < 0)
                        return fail("raw bind to vfio-pci", r);
                row("acquire-raw", i, now_usec() - t0);
                t0 = now_usec();
                r = raw_bind(bdf, "\n", host);
                if (r < 0)
                        return fail("raw bind back to the host driver", r);
                row("exit-kernel", i, now_usec() - t0);
        }
        return 0;
}

static int parse_rounds(const char *s, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end || v == 0 || v > 10000) {
                fprintf(stderr, "lease-client: '%s' is not a number of rounds (1-10000)\n", s);
                return -EINVAL;
        }
        *ret = (unsigned)v;
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned rounds;

        if (argc == 4 && strcmp(argv[1], "vmm") == 0)
                return do_vmm(atoi(argv[2]), atoi(argv[3]));
        if ((argc == 4 || (argc == 5 && strcmp(argv[4], "trace") == 0)) && strcmp(argv[1], "acquire") == 0)
                return parse_rounds(argv[3], &rounds) < 0 ? 2 : do_acquire(argv[2], rounds, argc == 5);
        if (argc == 4 && strcmp(argv[1], "dry") == 0)
                return parse_rounds(argv[3], &rounds) < 0 ? 2 : do_dry(argv[2], rounds);
        if (argc == 3 && strcmp(argv[1], "ping") == 0)
                return parse_rounds(argv[2], &rounds) < 0 ? 2 : do_ping(rounds);
        if (argc >= 4 && strcmp(argv[1], "exec") == 0)
                return parse_rounds(argv[2], &rounds) < 0 ? 2 : do_exec(rounds, argv + 3);
        if (argc == 5 && strcmp(argv[1], "run") == 0)
                return parse_rounds(argv[3], &rounds) < 0 ? 2 : do_run(argv[2], rounds, argv[4], argv[0]);
        if (argc == 5 && strcmp(argv[1], "raw") == 0)
                return parse_rounds(argv[4], &rounds) < 0 ? 2 : do_raw(argv[2], argv[3], rounds);
        fprintf(stderr,
                "usage: lease-client acquire BDF ROUNDS [trace] | dry BDF ROUNDS | ping ROUNDS |\n"
                "       exec ROUNDS PROGRAM [ARG...] | run BDF ROUNDS HOSTDEVCTL | raw BDF HOSTDRIVER ROUNDS\n");
        return 2;
}
