/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The early-bind thread (executor-early.h): a hot-added function's driver_override before its first probe.
 */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor-early.h"
#include "executor-internal.h"
#include "file-util.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "sysfs-write.h"
#include "uevent-filter.h"

#define UEVENT_BUFFER_SIZE 8192 /* UEVENT_BUFFER_SIZE of include/linux/kobject.h is 2048 */
#define SOCKET_RECEIVE_BUFFER (4 * 1024 * 1024)

struct EarlyWriter {
        sd_event_source *io; /* the ring's eventfd on the loop */
        EarlyWriteFunc func;
        void *userdata;

        int sock; /* NETLINK_KOBJECT_UEVENT, kernel group */
        int wake_fd; /* eventfd: the loop -> the thread (stop, resolved intents) */
        int ring_fd; /* eventfd: the thread -> the loop */
        int intent_fd; /* O_APPEND; -1: none (then the thread writes nothing) */
        pthread_t thread;
        bool started;
        bool fifo;

        _Atomic(EarlyBindSnapshot *) pending; /* published, not taken yet */
        atomic_bool stop;
        atomic_uint_fast64_t intents_resolved;
        uint64_t intents_written; /* the thread's own */

        pthread_mutex_t lock; /* the ring; priority inheritance: the loop never delays the thread long */
        EarlyWrite *ring;
        size_t head, n;
};

/* ---- the thread ---------------------------------------------------------------------------------- */

static bool link_exists(const char *dir, const char *name, char *target, size_t size) {
        char path[PATH_MAX], buf[PATH_MAX];
        ssize_t n;

        if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
                return false;
        n = readlink(path, buf, sizeof(buf) - 1);
        if (n < 0)
                return false;
        buf[n] = 0;
        if (target) {
                const char *base = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
                size_t l = strlen(base);

                if (l >= size)
                        return false;
                memcpy(target, base, l + 1);
        }
        return true;
}

/* The kernfs facts of one new function (EarlyBindFacts). */
static void facts_read(EarlyBindFacts *f) {
        char dir[PATH_MAX], group[32], path[PATH_MAX];
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        char *end;
        long v;

        f->iommu_group = -1;
        if (!f->u.syspath)
                return;
        snprintf(dir, sizeof(dir), "%s", f->u.syspath);
        f->has_driver = link_exists(dir, SYSFS_ATTR_DRIVER, NULL, 0);
        f->has_physfn = link_exists(dir, SYSFS_ATTR_PHYSFN, NULL, 0);
        if (!link_exists(dir, SYSFS_ATTR_IOMMU_GROUP, group, sizeof(group)))
                return;
        errno = 0;
        v = strtol(group, &end, 10);
        if (errno != 0 || *end != 0 || end == group || v < 0 || v > INT32_MAX)
                return;
        f->iommu_group = (int32_t)v;
        snprintf(path, sizeof(path), "%s/%s/devices", SYSFS_IOMMU_GROUPS, group);
        d = opendir(path);
        if (!d) {
                f->n_peers = EARLY_BIND_MAX_PEERS + 1; /* unknown: as if crowded */
                return;
        }
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || streq(de->d_name, f->u.sysname))
                        continue;
                if (strlen(de->d_name) >= sizeof(f->peers[0])) {
                        f->n_peers = EARLY_BIND_MAX_PEERS + 1; /* not a PCI address: unknown */
                        break;
                }
                if (f->n_peers < EARLY_BIND_MAX_PEERS)
                        memcpy(f->peers[f->n_peers], de->d_name, strlen(de->d_name) + 1);
                f->n_peers++;
        }
}

/* The value of KEY in a kernel uevent's environment, NULL if absent. */
static const char *uevent_get(const char *buf, size_t len, const char *key) {
        size_t k = strlen(key);

        for (size_t i = 0; i < len;) {
                const char *s = buf + i;
                size_t l = strnlen(s, len - i);

                if (l > k && strneq(s, key, k) && s[k] == '=')
                        return s + k + 1;
                i += l + 1;
        }
        return NULL;
}

static void copy_field(char *dst, size_t size, const char *src) {
        snprintf(dst, size, "%s", src ?: "");
}

static void ring_push(EarlyWriter *w, const EarlyWrite *e) {
        uint64_t one = 1;

        pthread_mutex_lock(&w->lock);
        if (w->n < EARLY_WRITER_RING) {
                w->ring[(w->head + w->n) % EARLY_WRITER_RING] = *e;
                w->n++;
        }
        pthread_mutex_unlock(&w->lock);
        (void)!write(w->ring_fd, &one, sizeof(one));
}

static bool ring_full(EarlyWriter *w) {
        bool full;

        pthread_mutex_lock(&w->lock);
        full = w->n >= EARLY_WRITER_RING;
        pthread_mutex_unlock(&w->lock);
        return full;
}

static void handle_uevent(EarlyWriter *w, EarlyBindSnapshot *snapshot, const char *buf, size_t len) {
        EarlyBindFacts f = {};
        EarlyWrite e_buf = {}, *e = &e_buf;
        const char *action, *subsystem, *devpath, *why = NULL;
        char syspath[256], line[128];
        uint64_t received = now_usec();

        /* "ACTION@DEVPATH" first (kernel format; libudev's starts with "libudev"). */
        if (len == 0 || !memchr(buf, '@', strnlen(buf, len)))
                return;
        action = uevent_get(buf, len, "ACTION");
        subsystem = uevent_get(buf, len, "SUBSYSTEM");
        devpath = uevent_get(buf, len, "DEVPATH");
        if (!(action && streq(action, UEVENT_ACTION_ADD)) ||
            !(subsystem && streq(subsystem, UEVENT_SUBSYSTEM_PCI)) || !devpath)
                return;
        if (snprintf(syspath, sizeof(syspath), "/sys%s", devpath) >= (int)sizeof(syspath))
                return;
        if (ring_full(w))
                return; /* the loop is far behind: its full plan handles this one */

        f.u.syspath = syspath;
        f.u.sysname = strrchr(syspath, '/') + 1;
        f.u.pci_id = uevent_get(buf, len, UEVENT_KEY_PCI_ID);
        f.u.pci_subsys_id = uevent_get(buf, len, UEVENT_KEY_PCI_SUBSYS_ID);
        f.u.pci_class = uevent_get(buf, len, UEVENT_KEY_PCI_CLASS);
        f.synthetic = uevent_get(buf, len, "SYNTH_UUID") != NULL;
        if (!f.synthetic && snapshot)
                facts_read(&f);

        e->received_usec = received;
        if (w->intent_fd < 0)
                why = "no intent file";
        else if (early_bind_snapshot_decide(snapshot, &f, &e->decision, &why)) {
                _cleanup_free_ char *message = NULL;
                int n;

                /* The intent first: a crash right after the sysfs write must not leave an override that
                 * no record names. */
                n = snprintf(line, sizeof(line), "%s %s\n", f.u.sysname, e->decision.driver);
                if (n <= 0 || n >= (int)sizeof(line) || write(w->intent_fd, line, (size_t)n) != n)
                        why = "the intent file is not writable";
                else {
                        w->intents_written++;
                        e->written = true;
                        e->error = sysfs_write_attribute(
                                syspath, SYSFS_ATTR_DRIVER_OVERRIDE, e->decision.driver, &message);
                        e->written_usec = now_usec();
                        copy_field(e->message, sizeof(e->message), message);
                }
        }
        e->why = why;
        copy_field(e->syspath, sizeof(e->syspath), f.u.syspath);
        copy_field(e->sysname, sizeof(e->sysname), f.u.sysname);
        copy_field(e->pci_id, sizeof(e->pci_id), f.u.pci_id);
        copy_field(e->pci_subsys_id, sizeof(e->pci_subsys_id), f.u.pci_subsys_id);
        copy_field(e->pci_class, sizeof(e->pci_class), f.u.pci_class);
        ring_push(w, e);
}

static void *early_thread(void *userdata) {
        EarlyWriter *w = userdata;
        EarlyBindSnapshot *snapshot = NULL;
        char *buf;

        buf = malloc(UEVENT_BUFFER_SIZE);
        if (!buf)
                return NULL;

        while (!atomic_load(&w->stop)) {
                struct pollfd p[2] = {
                        { .fd = w->sock, .events = POLLIN },
                        { .fd = w->wake_fd, .events = POLLIN },
                };
                EarlyBindSnapshot *next;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break; /* never spin at SCHED_FIFO; new functions are then planned from the model */
                }

                next = atomic_exchange(&w->pending, NULL);
                if (next) {
                        early_bind_snapshot_free(snapshot);
                        snapshot = next;
                }

                if (p[1].revents & POLLIN) {
                        uint64_t v;
                        (void)!read(w->wake_fd, &v, sizeof(v));
                        /* Every intent recorded by the loop: none is left to adopt after a crash. */
                        if (w->intents_written > 0 &&
                            atomic_load(&w->intents_resolved) == w->intents_written &&
                            ftruncate(w->intent_fd, 0) >= 0) {
                                w->intents_written = 0;
                                atomic_store(&w->intents_resolved, 0);
                        }
                }

                for (;;) {
                        struct sockaddr_nl sender = {};
                        struct iovec iov = { .iov_base = buf, .iov_len = UEVENT_BUFFER_SIZE - 1 };
                        struct msghdr msg = {
                                .msg_name = &sender,
                                .msg_namelen = sizeof(sender),
                                .msg_iov = &iov,
                                .msg_iovlen = 1,
                        };
                        ssize_t n;

                        n = recvmsg(w->sock, &msg, MSG_DONTWAIT);
                        if (n < 0 && errno == ENOBUFS)
                                continue; /* lost some: the loop's monitors rescan */
                        if (n <= 0)
                                break;
                        if (sender.nl_pid != 0)
                                continue; /* not the kernel */
                        buf[n] = 0;
                        handle_uevent(w, snapshot, buf, (size_t)n);
                }
        }
        early_bind_snapshot_free(snapshot);
        free(buf);
        return NULL;
}

/* ---- the loop's side ----------------------------------------------------------------------------- */

static void close_fd(int fd) {
        if (fd >= 0)
                (void)close(fd);
}

static int on_ring(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        EarlyWriter *w = userdata;
        uint64_t v;

        (void)!read(w->ring_fd, &v, sizeof(v));
        for (;;) {
                _cleanup_free_ EarlyWrite *e = malloc(sizeof(EarlyWrite));

                if (!e)
                        return 0;
                pthread_mutex_lock(&w->lock);
                if (w->n == 0) {
                        pthread_mutex_unlock(&w->lock);
                        return 0;
                }
                *e = w->ring[w->head];
                w->head = (w->head + 1) % EARLY_WRITER_RING;
                w->n--;
                pthread_mutex_unlock(&w->lock);
                w->func(e, w->userdata);
        }
}

static int intent_path(const char *runtime_dir, char **ret) {
        if (asprintf(ret, "%s/%s", runtime_dir ?: HOSTDEVD_RUNTIME_DIR, EARLY_WRITER_INTENTS) < 0)
                return -ENOMEM;
        return 0;
}

int early_intents_read(
        const char *runtime_dir, void (*func)(const char *address, const char *driver, void *userdata),
        void *userdata) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char line[256];
        int k, n = 0;

        k = intent_path(runtime_dir, &path);
        if (k < 0)
                return k;
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        while (fgets(line, sizeof(line), f)) {
                char address[PCI_ADDRESS_STRING_MAX], driver[EARLY_BIND_DRIVER_MAX];

                /* A line a crash cut short has no newline: its write to driver_override never came. */
                if (!strchr(line, '\n') || sscanf(line, "%16s %63s", address, driver) != 2)
                        continue;
                func(address, driver, userdata);
                n++;
        }
        return n;
}

static int socket_open(void) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = 1 };
        _cleanup_close_ int fd = -EBADF;
        int size = SOCKET_RECEIVE_BUFFER, k;

        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
                (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        k = uevent_filter_attach(fd, UEVENT_FILTER_PCI_ADD_BIND);
        if (k < 0)
                log_debug_errno(k, "Failed to filter the early-bind socket: %m, ignoring");
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* Start the thread at SCHED_FIFO when allowed, else as a normal thread; *ret_why: why not FIFO. */
static int thread_start(EarlyWriter *w, bool no_realtime, int *ret_fifo_error) {
        pthread_attr_t attr;
        struct sched_param param = { .sched_priority = EARLY_WRITER_RT_PRIORITY };
        int k;

        *ret_fifo_error = no_realtime ? -ECANCELED : 0;
        if (!no_realtime) {
                k = pthread_attr_init(&attr);
                if (k != 0)
                        return -k;
                k = pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
                if (k == 0)
                        k = pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
                if (k == 0)
                        k = pthread_attr_setschedparam(&attr, &param);
                if (k == 0)
                        k = pthread_create(&w->thread, &attr, early_thread, w);
                pthread_attr_destroy(&attr);
                if (k == 0) {
                        w->fifo = true;
                        return 0;
                }
                *ret_fifo_error = -k;
        }
        k = pthread_create(&w->thread, NULL, early_thread, w);
        return -k;
}

int early_writer_new(
        sd_event *event, int64_t priority, const EarlyWriterOptions *options, EarlyWriteFunc func,
        void *userdata, EarlyWriter **ret) {
        _cleanup_(early_writer_freep) EarlyWriter *w = NULL;
        _cleanup_free_ char *path = NULL;
        pthread_mutexattr_t mattr;
        int k, fifo_error;

        assert(event);
        assert(func);
        assert(ret);

        w = calloc(1, sizeof(EarlyWriter));
        if (!w)
                return -ENOMEM;
        w->sock = w->wake_fd = w->ring_fd = w->intent_fd = -EBADF;
        w->func = func;
        w->userdata = userdata;
        atomic_init(&w->pending, NULL);
        atomic_init(&w->stop, false);
        atomic_init(&w->intents_resolved, 0);
        pthread_mutexattr_init(&mattr);
        (void)pthread_mutexattr_setprotocol(&mattr, PTHREAD_PRIO_INHERIT);
        pthread_mutex_init(&w->lock, &mattr);
        pthread_mutexattr_destroy(&mattr);
        w->ring = calloc(EARLY_WRITER_RING, sizeof(EarlyWrite));
        if (!w->ring)
                return -ENOMEM;

        w->sock = socket_open();
        if (w->sock < 0)
                return w->sock;
        w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        w->ring_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->wake_fd < 0 || w->ring_fd < 0)
                return -errno;

        k = intent_path(options ? options->runtime_dir : NULL, &path);
        if (k < 0)
                return k;
        /* systemd makes it (RuntimeDirectory=); started by hand, hostdevd may be the first. */
        if (mkdir(options && options->runtime_dir ? options->runtime_dir : HOSTDEVD_RUNTIME_DIR, 0755) < 0 &&
            errno != EEXIST)
                log_debug_errno(errno, "Failed to create the runtime directory: %m, ignoring");
        w->intent_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (w->intent_fd < 0)
                log_warning_errno(
                        errno, "Failed to open %s: %m; the early-bind thread writes nothing", path);

        k = sd_event_add_io(event, &w->io, w->ring_fd, EPOLLIN, on_ring, w);
        if (k < 0)
                return k;
        k = sd_event_source_set_priority(w->io, priority);
        if (k < 0)
                return k;
        (void)sd_event_source_set_description(w->io, "early-bind");

        k = thread_start(w, options && options->no_realtime, &fifo_error);
        if (k < 0)
                return k;
        w->started = true;
        /* For ps(1) and chrt(1) (hostdevd(8)). */
        (void)pthread_setname_np(w->thread, "hostdevd-early");
        if (w->fifo)
                log_info(
                        "Early-bind thread: SCHED_FIFO priority %d, writes driver_override on the kernel's "
                        "\"add\"",
                        EARLY_WRITER_RT_PRIORITY);
        else
                log_info_errno(
                        fifo_error,
                        "Early-bind thread: SCHED_OTHER (SCHED_FIFO refused: %m; hostdevd(8), HOT-ADDED "
                        "FUNCTIONS), writes driver_override on the kernel's \"add\"");
        *ret = TAKE_PTR(w);
        return 0;
}

EarlyWriter *early_writer_free(EarlyWriter *w) {
        uint64_t one = 1;

        if (!w)
                return NULL;
        if (w->started) {
                atomic_store(&w->stop, true);
                (void)!write(w->wake_fd, &one, sizeof(one));
                pthread_join(w->thread, NULL);
        }
        early_bind_snapshot_free(atomic_exchange(&w->pending, NULL));
        sd_event_source_disable_unref(w->io);
        close_fd(w->sock);
        close_fd(w->wake_fd);
        close_fd(w->ring_fd);
        close_fd(w->intent_fd);
        pthread_mutex_destroy(&w->lock);
        free(w->ring);
        free(w);
        return NULL;
}

void early_writer_publish(EarlyWriter *w, EarlyBindSnapshot *snapshot) {
        uint64_t one = 1;

        if (!w) {
                early_bind_snapshot_free(snapshot);
                return;
        }
        /* Replaced before the thread took it: the thread never saw it. */
        early_bind_snapshot_free(atomic_exchange(&w->pending, snapshot));
        (void)!write(w->wake_fd, &one, sizeof(one));
}

void early_writer_resolved(EarlyWriter *w) {
        uint64_t one = 1;

        if (!w)
                return;
        atomic_fetch_add(&w->intents_resolved, 1);
        (void)!write(w->wake_fd, &one, sizeof(one));
}

const char *early_writer_scheduling(EarlyWriter *w) {
        if (!w)
                return NULL;
        return w->fifo ? "sched-fifo" : "sched-other";
}
