/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * raw-bind: the floor that hostdevd is measured against in the kernel lane
 * benchmark (tests/bench/kernel-lane.sh): the same sysfs writes as
 * hostdevd's executor, in a plain loop, with nothing else. Linked with
 * libudev (monitor-safe-udev only) and put into the guest's initramfs with
 * its libraries; runs as root inside the QEMU guest only (it writes /sys).
 *
 *   raw-bind bind DRIVER PF NUMVFS [BDF...]
 *       sriov_drivers_autoprobe=0 and sriov_numvfs=NUMVFS on PF (when it has
 *       none yet), then for each BDF and each VF: driver_override=DRIVER,
 *       unbind from the current driver, drivers_probe, verify the driver
 *       link (Documentation/ABI/testing/sysfs-bus-pci). Prints the
 *       microseconds it took.
 *   raw-bind reset PF [BDF...]
 *       sriov_numvfs=0; each BDF: driver_override cleared with "\n",
 *       unbound when on another driver than its host one, re-probed.
 *   raw-bind converge-wait PID DRIVER PF NUMVFS [BDF...]
 *       SIGHUP to PID (hostdevd re-reads its files), then check after every
 *       kernel uevent (and every 20 ms) until PF has NUMVFS VFs and every BDF
 *       and VF is bound to DRIVER (60 s at most; fails early when PID dies).
 *       Prints the microseconds from the signal to that.
 *   raw-bind watch VENDOR DEVICE DRIVER [PID]
 *       listen to kernel uevents (NETLINK_KOBJECT_UEVENT); for the first PCI
 *       function added with PCI_ID VENDOR:DEVICE print the microseconds from
 *       its "add" to its "bind" with DRIVER=DRIVER, then exit (killed by
 *       SIGALRM after 30 s without). Creates /run/raw-bind.ready once
 *       listening. With PID, a second number on the line: the microseconds
 *       of CPU that PID's threads ran from then until the "bind" was seen
 *       (/proc/PID/task/N/schedstat, first field, nanoseconds).
 *   raw-bind monitor VENDOR DEVICE DRIVER
 *       the raw monitor-and-bind loop: on every "add" of such a function,
 *       the bind sequence above (override, unbind, drivers_probe, verify).
 *       Runs until killed.
 *   raw-bind monitor-fifo VENDOR DEVICE DRIVER
 *       monitor at SCHED_FIFO priority 1, the class and priority of
 *       hostdevd's early-bind thread (executor-early.h), so that the floor
 *       it is compared with runs under the same scheduling; fails when the
 *       class is refused.
 *   raw-bind monitor-safe VENDOR DEVICE DRIVER RECORDFILE
 *       the same loop plus the steps issue 3 asks of any tool before such a
 *       bind, each done the cheapest way a stateless loop can: DRIVER's
 *       directory checked under /sys/bus/pci/drivers (the step would load a
 *       missing module; here it is loaded), the IOMMU group read and every
 *       peer checked (driverless, on DRIVER or a bridge), the original driver and
 *       driver_override appended to RECORDFILE with fdatasync before the
 *       first write, and the sysfs writes done by a worker thread that the
 *       loop waits for with a deadline (10 s; past it the loop exits, as
 *       the worker cannot be taken back). What any tool following those
 *       rules pays on top of the raw loop.
 *   raw-bind monitor-safe-udev VENDOR DEVICE DRIVER RECORDFILE
 *       monitor-safe with the uevents received and parsed by libudev (a
 *       monitor on the "kernel" source, as hostdevd's) instead of by hand:
 *       the project's rule for every parser it does not exist for.
 *   raw-bind sriov PF NUMVFS
 *       sriov_drivers_autoprobe 0, then sriov_numvfs NUMVFS (from 0); prints
 *       the microseconds until that write returned, when the VFs exist:
 *       the part of a converge no tool can shorten.
 *   raw-bind trace
 *       print every PCI uevent as "USEC ACTION DEVPATH DRIVER" (USEC on
 *       CLOCK_MONOTONIC, as converge-wait's "t0" line on stderr), until
 *       killed. Creates /run/raw-bind.ready once listening.
 *   raw-bind time CMD [ARG...]
 *       run CMD, print the microseconds it took (CLOCK_MONOTONIC).
 *
 * Exit status 0 on success, 1 on a failed write, verify or timeout, 2 on
 * bad usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdbool.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <libudev.h>
#include <unistd.h>

#define PCI_DEVICES "/sys/bus/pci/devices"
#define MAX_VFS 64
#define WAIT_TIMEOUT_USEC (60ULL * 1000 * 1000)
#define WATCH_TIMEOUT_SEC 30

static unsigned long long now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

/* Write |value| to |path| in one write(); 0 or -errno. */
static int write_attr(const char *path, const char *value) {
        int fd, r = 0;
        size_t n = strlen(value);

        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, value, n) != (ssize_t)n)
                r = -errno;
        close(fd);
        if (r < 0)
                fprintf(stderr, "raw-bind: write '%s' to %s: %s\n", value, path, strerror(-r));
        return r;
}

static int write_dev_attr(const char *bdf, const char *attr, const char *value) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), PCI_DEVICES "/%s/%s", bdf, attr);
        return write_attr(path, value);
}

/* The first line of an attribute, without the newline; "" when unreadable. */
static void read_attr(const char *bdf, const char *attr, char *buf, size_t size) {
        char path[PATH_MAX];
        ssize_t n;
        int fd;

        buf[0] = 0;
        snprintf(path, sizeof(path), PCI_DEVICES "/%s/%s", bdf, attr);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read(fd, buf, size - 1);
        close(fd);
        buf[n > 0 ? n : 0] = 0;
        buf[strcspn(buf, "\n")] = 0;
}

/* The last path element of |link| into |buf| (truncated to fit). */
static void copy_basename(char *buf, size_t size, const char *link) {
        const char *slash = strrchr(link, '/');
        const char *name = slash ? slash + 1 : link;
        size_t n = strlen(name);

        if (n >= size)
                n = size - 1;
        memcpy(buf, name, n);
        buf[n] = 0;
}

/* The bound driver's name into |buf| ("" when none). */
static void driver_of(const char *bdf, char *buf, size_t size) {
        char path[PATH_MAX], link[PATH_MAX];
        ssize_t n;

        buf[0] = 0;
        snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver", bdf);
        n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0)
                return;
        link[n] = 0;
        copy_basename(buf, size, link);
}

/* The sequence of safety rule 1 in hostdevd(8): override, unbind, drivers_probe, verify. */
static int bind_one(const char *bdf, const char *driver) {
        char cur[64], path[PATH_MAX];
        int r;

        r = write_dev_attr(bdf, "driver_override", driver);
        if (r < 0)
                return r;
        driver_of(bdf, cur, sizeof(cur));
        if (strcmp(cur, driver) == 0)
                return 0;
        if (cur[0]) {
                snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver/unbind", bdf);
                r = write_attr(path, bdf);
                if (r < 0)
                        return r;
        }
        r = write_attr("/sys/bus/pci/drivers_probe", bdf);
        if (r < 0)
                return r;
        driver_of(bdf, cur, sizeof(cur));
        if (strcmp(cur, driver) != 0) {
                fprintf(stderr, "raw-bind: %s is on '%s', not %s\n", bdf, cur, driver);
                return -EIO;
        }
        return 0;
}

/* The PF's VFs (virtfnN links) into |vfs|; returns how many. */
static int vfs_of(const char *pf, char vfs[][16], int max) {
        char path[PATH_MAX], link[PATH_MAX];
        int n = 0;

        for (int i = 0; i < max; i++) {
                ssize_t l;

                snprintf(path, sizeof(path), PCI_DEVICES "/%s/virtfn%d", pf, i);
                l = readlink(path, link, sizeof(link) - 1);
                if (l <= 0)
                        break;
                link[l] = 0;
                copy_basename(vfs[n++], 16, link);
        }
        return n;
}

static int cmd_bind(const char *driver, const char *pf, const char *numvfs, char **bdfs, int n_bdfs) {
        char vfs[MAX_VFS][16], cur[32];
        unsigned long long t0 = now_usec();
        int n_vfs, r;

        fprintf(stderr, "t0 %llu\n", t0);
        read_attr(pf, "sriov_numvfs", cur, sizeof(cur));
        if (strcmp(cur, numvfs) != 0) {
                if (strcmp(cur, "0") != 0 && write_dev_attr(pf, "sriov_numvfs", "0") < 0)
                        return 1;
                if (write_dev_attr(pf, "sriov_drivers_autoprobe", "0") < 0 ||
                    write_dev_attr(pf, "sriov_numvfs", numvfs) < 0)
                        return 1;
        }
        for (int i = 0; i < n_bdfs; i++) {
                r = bind_one(bdfs[i], driver);
                if (r < 0)
                        return 1;
        }
        n_vfs = vfs_of(pf, vfs, MAX_VFS);
        for (int i = 0; i < n_vfs; i++) {
                r = bind_one(vfs[i], driver);
                if (r < 0)
                        return 1;
        }
        printf("%llu\n", now_usec() - t0);
        return 0;
}

static int cmd_reset(const char *pf, char **bdfs, int n_bdfs) {
        char path[PATH_MAX], ov[64], cur[64];

        if (write_dev_attr(pf, "sriov_numvfs", "0") < 0)
                return 1;
        for (int i = 0; i < n_bdfs; i++) {
                read_attr(bdfs[i], "driver_override", ov, sizeof(ov));
                driver_of(bdfs[i], cur, sizeof(cur));
                if (strcmp(ov, "(null)") == 0 && cur[0])
                        continue;
                if (write_dev_attr(bdfs[i], "driver_override", "\n") < 0)
                        return 1;
                if (cur[0]) {
                        snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver/unbind", bdfs[i]);
                        if (write_attr(path, bdfs[i]) < 0)
                                return 1;
                }
                if (write_attr("/sys/bus/pci/drivers_probe", bdfs[i]) < 0)
                        return 1;
        }
        return 0;
}

static bool all_bound(const char *driver, const char *pf, const char *numvfs, char **bdfs, int n_bdfs) {
        char vfs[MAX_VFS][16], cur[64];
        int n_vfs;

        read_attr(pf, "sriov_numvfs", cur, sizeof(cur));
        if (strcmp(cur, numvfs) != 0)
                return false;
        for (int i = 0; i < n_bdfs; i++) {
                driver_of(bdfs[i], cur, sizeof(cur));
                if (strcmp(cur, driver) != 0)
                        return false;
        }
        n_vfs = vfs_of(pf, vfs, MAX_VFS);
        if (n_vfs != atoi(numvfs))
                return false;
        for (int i = 0; i < n_vfs; i++) {
                driver_of(vfs[i], cur, sizeof(cur));
                if (strcmp(cur, driver) != 0)
                        return false;
        }
        return true;
}

/* The process exists and is not a zombie (proc(5): the state after the comm's ')'). */
static bool process_alive(pid_t pid) {
        char path[64], buf[512];
        const char *paren;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = 0;
        paren = strrchr(buf, ')');
        return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

static int uevent_socket(void);

/* Sleeps on the uevent socket between checks: polling sysfs would take the single guest CPU from
 * the daemon being timed. Checks again on every uevent, and every 20 ms whatever happens. */
static int cmd_converge_wait(
        pid_t pid, const char *driver, const char *pf, const char *numvfs, char **bdfs, int n_bdfs) {
        unsigned long long t0;
        char buf[8192];
        int fd;

        fd = uevent_socket();
        if (fd < 0) {
                fprintf(stderr, "raw-bind: uevent socket: %s\n", strerror(-fd));
                return 1;
        }
        t0 = now_usec();
        fprintf(stderr, "t0 %llu\n", t0);
        if (kill(pid, SIGHUP) < 0) {
                fprintf(stderr, "raw-bind: SIGHUP to %d: %m\n", (int)pid);
                return 1;
        }
        for (unsigned i = 0; !all_bound(driver, pf, numvfs, bdfs, n_bdfs); i++) {
                struct pollfd p = { .fd = fd, .events = POLLIN };

                if (i % 50 == 49 && !process_alive(pid)) {
                        fprintf(stderr, "raw-bind: process %d is gone\n", (int)pid);
                        return 1;
                }
                if (now_usec() - t0 > WAIT_TIMEOUT_USEC) {
                        fprintf(stderr, "raw-bind: not converged after %llu s\n",
                                WAIT_TIMEOUT_USEC / 1000000);
                        return 1;
                }
                if (poll(&p, 1, 20) > 0)
                        while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                                ;
        }
        printf("%llu\n", now_usec() - t0);
        close(fd);
        return 0;
}

/* A kernel uevent: "ACTION@DEVPATH\0KEY=VALUE\0..."; the value of |key| or NULL. */
static const char *uevent_get(const char *buf, size_t len, const char *key) {
        size_t klen = strlen(key);

        for (size_t off = strlen(buf) + 1; off < len; off += strlen(buf + off) + 1)
                if (strncmp(buf + off, key, klen) == 0 && buf[off + klen] == '=')
                        return buf + off + klen + 1;
        return NULL;
}

static int uevent_socket(void) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
        int fd, size = 8 * 1024 * 1024;

        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
        if (fd < 0)
                return -errno;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(fd);
                return -errno;
        }
        return fd;
}

static int cmd_trace(void) {
        char buf[8192];
        int fd;

        fd = uevent_socket();
        if (fd < 0) {
                fprintf(stderr, "raw-bind: netlink: %s\n", strerror(-fd));
                return 1;
        }
        close(open("/run/raw-bind.ready", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        for (;;) {
                const char *action, *path, *subsystem, *drv;
                ssize_t len = recv(fd, buf, sizeof(buf) - 1, 0);
                unsigned long long t = now_usec();

                if (len <= 0) {
                        if (len < 0 && errno == EINTR)
                                continue;
                        return 1;
                }
                buf[len] = 0;
                action = uevent_get(buf, len, "ACTION");
                path = uevent_get(buf, len, "DEVPATH");
                subsystem = uevent_get(buf, len, "SUBSYSTEM");
                drv = uevent_get(buf, len, "DRIVER");
                if (action && path && subsystem && strcmp(subsystem, "pci") == 0)
                        printf("%llu %s %s %s\n", t, action,
                               strrchr(path, '/') ? strrchr(path, '/') + 1 : path, drv ? drv : "-");
        }
}

/* The CPU time |pid|'s threads have run, in microseconds; 0 when unreadable. */
static unsigned long long cpu_usec(pid_t pid) {
        char path[PATH_MAX], line[128];
        unsigned long long ns = 0;
        struct dirent *de;
        DIR *dir;

        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        dir = opendir(path);
        if (!dir)
                return 0;
        while ((de = readdir(dir))) {
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                if (fgets(line, sizeof(line), f))
                        ns += strtoull(line, NULL, 10);
                fclose(f);
        }
        closedir(dir);
        return ns / 1000;
}

/* ---- monitor-safe ------------------------------------------------------------------------- */

#define WORKER_DEADLINE_SEC 10

/* One job at a time: the loop sets bdf, the worker runs bind_one and sets done. */
struct worker {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        const char *bdf, *driver;
        bool done;
        int result;
};

static void *worker_main(void *arg) {
        struct worker *w = arg;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                const char *bdf, *driver;
                int r;

                while (!w->bdf)
                        pthread_cond_wait(&w->cond, &w->lock);
                bdf = w->bdf;
                driver = w->driver;
                pthread_mutex_unlock(&w->lock);
                r = bind_one(bdf, driver);
                pthread_mutex_lock(&w->lock);
                w->bdf = NULL;
                w->result = r;
                w->done = true;
                pthread_cond_broadcast(&w->cond);
        }
        return NULL;
}

/* Hands the bind to the worker and waits at most WORKER_DEADLINE_SEC; -ETIMEDOUT past it (a
 * daemon would mark the function stuck and go on). */
static int worker_bind(struct worker *w, const char *bdf, const char *driver) {
        struct timespec deadline;
        int r = 0;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += WORKER_DEADLINE_SEC;
        pthread_mutex_lock(&w->lock);
        w->bdf = bdf;
        w->driver = driver;
        w->done = false;
        pthread_mutex_unlock(&w->lock);
        /* Woken after the unlock, the worker does not block on the lock again (one switch less). */
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_lock(&w->lock);
        while (!w->done && r == 0)
                r = pthread_cond_timedwait(&w->cond, &w->lock, &deadline);
        r = w->done ? w->result : -ETIMEDOUT;
        pthread_mutex_unlock(&w->lock);
        return r;
}

/* The function's IOMMU group: every other member driverless, on |driver| or a bridge (class
 * 0x0604); 0, -ENODEV without a group, -EBUSY naming the peer otherwise. */
static int group_check(const char *bdf, const char *driver) {
        char path[PATH_MAX], link[PATH_MAX], group[32], cur[64], class[32];
        struct dirent *de;
        ssize_t n;
        DIR *dir;
        int r = 0;

        snprintf(path, sizeof(path), PCI_DEVICES "/%s/iommu_group", bdf);
        n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0) {
                fprintf(stderr, "raw-bind: %s has no IOMMU group\n", bdf);
                return -ENODEV;
        }
        link[n] = 0;
        copy_basename(group, sizeof(group), link);
        snprintf(path, sizeof(path), "/sys/kernel/iommu_groups/%s/devices", group);
        dir = opendir(path);
        if (!dir)
                return -errno;
        while (r == 0 && (de = readdir(dir))) {
                if (de->d_name[0] == '.' || strcmp(de->d_name, bdf) == 0)
                        continue;
                driver_of(de->d_name, cur, sizeof(cur));
                read_attr(de->d_name, "class", class, sizeof(class));
                if (cur[0] && strcmp(cur, driver) != 0 && strncmp(class, "0x0604", 6) != 0) {
                        fprintf(stderr, "raw-bind: %s: group peer %s is on %s\n", bdf, de->d_name, cur);
                        r = -EBUSY;
                }
        }
        closedir(dir);
        return r;
}

/* Appends the function's original driver and driver_override to |fd|, on disk before return. */
static int record_original(int fd, const char *bdf) {
        char cur[64], ov[64], line[256];
        int n;

        driver_of(bdf, cur, sizeof(cur));
        read_attr(bdf, "driver_override", ov, sizeof(ov));
        n = snprintf(
                line, sizeof(line), "{\"address\":\"%s\",\"driver\":\"%s\",\"driver_override\":\"%s\"}\n",
                bdf, cur, ov);
        if (write(fd, line, (size_t)n) != n || fdatasync(fd) < 0) {
                fprintf(stderr, "raw-bind: record: %m\n");
                return -EIO;
        }
        return 0;
}

struct safe {
        struct worker worker;
        int record_fd;
};

static int safe_bind(struct safe *s, const char *bdf, const char *driver) {
        char path[PATH_MAX];
        int r;

        snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s", driver);
        if (access(path, F_OK) < 0) {
                fprintf(stderr, "raw-bind: driver %s is not loaded\n", driver);
                return -ENOENT;
        }
        r = group_check(bdf, driver);
        if (r < 0)
                return r;
        r = record_original(s->record_fd, bdf);
        if (r < 0)
                return r;
        return worker_bind(&s->worker, bdf, driver);
}

/* One "add" of the wanted function in a monitor mode, with the steps of monitor-safe when |s| is set:
 * 0 to go on (a failed bind is reported), -1 when a write is stuck in the kernel (the worker cannot
 * be taken back: the loop exits). */
static int monitor_bind(struct safe *s, const char *slot, const char *driver) {
        int r = s ? safe_bind(s, slot, driver) : bind_one(slot, driver);

        if (r == -ETIMEDOUT) {
                fprintf(stderr, "raw-bind: binding %s is stuck in the kernel\n", slot);
                return -1;
        }
        if (r < 0)
                fprintf(stderr, "raw-bind: binding %s failed\n", slot);
        return 0;
}

static int safe_init(struct safe *s, const char *record_file) {
        pthread_t t;

        *s = (struct safe){ .worker = { .lock = PTHREAD_MUTEX_INITIALIZER,
                                        .cond = PTHREAD_COND_INITIALIZER } };
        s->record_fd = open(record_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (s->record_fd < 0) {
                fprintf(stderr, "raw-bind: %s: %m\n", record_file);
                return -errno;
        }
        if (pthread_create(&t, NULL, worker_main, &s->worker) != 0)
                return -EAGAIN;
        return 0;
}

/* watch (monitor false), monitor, or monitor-safe (monitor true, record_file set). */
static int cmd_uevents(
        bool monitor, const char *vendor, const char *device, const char *driver, pid_t cpu_pid,
        const char *record_file) {
        char want[32], buf[8192], devpath[PATH_MAX] = "";
        unsigned long long t_add = 0, cpu0 = 0;
        struct safe safe;
        int fd;

        snprintf(want, sizeof(want), "%s:%s", vendor, device);
        if (record_file && safe_init(&safe, record_file) < 0)
                return 1;
        fd = uevent_socket();
        if (fd < 0) {
                fprintf(stderr, "raw-bind: netlink: %s\n", strerror(-fd));
                return 1;
        }
        if (cpu_pid > 0)
                cpu0 = cpu_usec(cpu_pid);
        close(open("/run/raw-bind.ready", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        if (!monitor)
                (void)alarm(WATCH_TIMEOUT_SEC);
        for (;;) {
                const char *action, *path, *subsystem, *id, *drv, *slot;
                ssize_t len = recv(fd, buf, sizeof(buf) - 1, 0);

                if (len <= 0) {
                        if (len < 0 && errno == EINTR)
                                continue;
                        fprintf(stderr, "raw-bind: recv: %m\n");
                        return 1;
                }
                buf[len] = 0;
                action = uevent_get(buf, len, "ACTION");
                path = uevent_get(buf, len, "DEVPATH");
                subsystem = uevent_get(buf, len, "SUBSYSTEM");
                if (!action || !path || !subsystem || strcmp(subsystem, "pci") != 0)
                        continue;
                if (strcmp(action, "add") == 0) {
                        id = uevent_get(buf, len, "PCI_ID");
                        slot = uevent_get(buf, len, "PCI_SLOT_NAME");
                        if (!id || !slot || strcasecmp(id, want) != 0)
                                continue;
                        if (monitor) {
                                if (monitor_bind(record_file ? &safe : NULL, slot, driver) < 0)
                                        return 1;
                                continue;
                        }
                        if (!t_add) {
                                t_add = now_usec();
                                snprintf(devpath, sizeof(devpath), "%s", path);
                        }
                } else if (!monitor && t_add && strcmp(action, "bind") == 0 && strcmp(path, devpath) == 0) {
                        drv = uevent_get(buf, len, "DRIVER");
                        if (drv && strcmp(drv, driver) == 0) {
                                unsigned long long t = now_usec() - t_add;

                                if (cpu_pid > 0)
                                        printf("%llu %llu\n", t, cpu_usec(cpu_pid) - cpu0);
                                else
                                        printf("%llu\n", t);
                                return 0;
                        }
                }
        }
}

/* monitor-safe with libudev: the same bind for every "add" of VENDOR:DEVICE. Runs until killed. */
static int cmd_monitor_udev(
        const char *vendor, const char *device, const char *driver, const char *record_file) {
        struct udev_monitor *mon = NULL;
        struct udev *udev;
        struct safe safe;
        char want[32];
        int fd;

        snprintf(want, sizeof(want), "%s:%s", vendor, device);
        if (safe_init(&safe, record_file) < 0)
                return 1;
        udev = udev_new();
        if (udev)
                mon = udev_monitor_new_from_netlink(udev, "kernel");
        if (!mon || udev_monitor_set_receive_buffer_size(mon, 8 * 1024 * 1024) < 0 ||
            udev_monitor_enable_receiving(mon) < 0) {
                fprintf(stderr, "raw-bind: libudev monitor: %m\n");
                return 1;
        }
        fd = udev_monitor_get_fd(mon);
        close(open("/run/raw-bind.ready", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                struct udev_device *dev;
                const char *action, *subsystem, *id, *slot;

                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                        return 1;
                /* The socket is non-blocking: NULL once drained. */
                while ((dev = udev_monitor_receive_device(mon))) {
                        action = udev_device_get_action(dev);
                        subsystem = udev_device_get_subsystem(dev);
                        id = udev_device_get_property_value(dev, "PCI_ID");
                        slot = udev_device_get_sysname(dev);
                        if (action && subsystem && id && slot && strcmp(action, "add") == 0 &&
                            strcmp(subsystem, "pci") == 0 && strcasecmp(id, want) == 0) {
                                if (monitor_bind(&safe, slot, driver) < 0)
                                        return 1;
                        }
                        udev_device_unref(dev);
                }
        }
}

static int cmd_sriov(const char *pf, const char *numvfs) {
        unsigned long long t0 = now_usec();

        if (write_dev_attr(pf, "sriov_drivers_autoprobe", "0") < 0 ||
            write_dev_attr(pf, "sriov_numvfs", numvfs) < 0)
                return 1;
        printf("%llu\n", now_usec() - t0);
        return 0;
}

static int cmd_time(char **argv) {
        unsigned long long t0 = now_usec();
        int status;
        pid_t pid;

        pid = fork();
        if (pid < 0)
                return 1;
        if (pid == 0) {
                execvp(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return 1;
        printf("%llu\n", now_usec() - t0);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
        const char *cmd = argc > 1 ? argv[1] : "";

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (strcmp(cmd, "bind") == 0 && argc >= 5)
                return cmd_bind(argv[2], argv[3], argv[4], argv + 5, argc - 5);
        if (strcmp(cmd, "reset") == 0 && argc >= 3)
                return cmd_reset(argv[2], argv + 3, argc - 3);
        if (strcmp(cmd, "converge-wait") == 0 && argc >= 6)
                return cmd_converge_wait(
                        (pid_t)atoi(argv[2]), argv[3], argv[4], argv[5], argv + 6, argc - 6);
        if (strcmp(cmd, "watch") == 0 && (argc == 5 || argc == 6))
                return cmd_uevents(false, argv[2], argv[3], argv[4], argc == 6 ? atoi(argv[5]) : 0, NULL);
        if (strcmp(cmd, "monitor") == 0 && argc == 5)
                return cmd_uevents(true, argv[2], argv[3], argv[4], 0, NULL);
        if (strcmp(cmd, "monitor-fifo") == 0 && argc == 5) {
                struct sched_param p = { .sched_priority = 1 };

                if (sched_setscheduler(0, SCHED_FIFO, &p) < 0) {
                        fprintf(stderr, "sched_setscheduler(SCHED_FIFO, 1): %s\n", strerror(errno));
                        return 1;
                }
                return cmd_uevents(true, argv[2], argv[3], argv[4], 0, NULL);
        }
        if (strcmp(cmd, "monitor-safe") == 0 && argc == 6)
                return cmd_uevents(true, argv[2], argv[3], argv[4], 0, argv[5]);
        if (strcmp(cmd, "monitor-safe-udev") == 0 && argc == 6)
                return cmd_monitor_udev(argv[2], argv[3], argv[4], argv[5]);
        if (strcmp(cmd, "sriov") == 0 && argc == 4)
                return cmd_sriov(argv[2], argv[3]);
        if (strcmp(cmd, "trace") == 0 && argc == 2)
                return cmd_trace();
        if (strcmp(cmd, "time") == 0 && argc >= 3)
                return cmd_time(argv + 2);
        fprintf(stderr,
                "usage: raw-bind bind DRIVER PF NUMVFS [BDF...] | reset PF [BDF...] |\n"
                "       converge-wait PID DRIVER PF NUMVFS [BDF...] | watch VENDOR DEVICE DRIVER [PID] |\n"
                "       monitor VENDOR DEVICE DRIVER | monitor-fifo VENDOR DEVICE DRIVER | monitor-safe VENDOR DEVICE DRIVER RECORDFILE |\n"
                "       monitor-safe-udev VENDOR DEVICE DRIVER RECORDFILE |\n"
                "       sriov PF NUMVFS |\n"
                "       trace | time CMD [ARG...]\n");
        return 2;
}
