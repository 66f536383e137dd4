/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The critical watch (critical-watch.h): mount, swap and route events; the set computed off the loop. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "critical-watch.h"
#include "event-priorities.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "watch-worker.h"

static const char *const critical_tracking_table[_CRITICAL_TRACKING_MAX] = {
        [CRITICAL_TRACKING_EVENTS] = "events",
        [CRITICAL_TRACKING_SCAN] = "scan",
};

const char *critical_tracking_to_string(CriticalTracking t) {
        return t >= 0 && t < _CRITICAL_TRACKING_MAX ? critical_tracking_table[t] : NULL;
}

CriticalTracking critical_tracking_from_string(const char *s) {
        for (int i = 0; s && i < _CRITICAL_TRACKING_MAX; i++)
                if (streq(s, critical_tracking_table[i]))
                        return i;
        return _CRITICAL_TRACKING_INVALID;
}

typedef struct ComputeResult {
        int error;
        CriticalSet *set;
        char *message;
} ComputeResult;

struct CriticalWatch {
        sd_event *event;
        char *root; /* read by the worker: immutable */
        CriticalTracking tracking;
        CriticalWatchChanged changed;
        void *userdata;

        WatchWorker *worker;
        bool computed; /* a result (or a failure) is in */
        CriticalSet *set; /* NULL: unknown */
        char *error_message;
        int error;

        sd_event_source *mountinfo_source, *swaps_source, *netlink_source;
};

static void compute_result_free(void *p) {
        ComputeResult *c = p;

        if (!c)
                return;
        critical_set_free(c->set);
        free(c->message);
        free(c);
}

static void *compute_run(void *userdata) {
        CriticalWatch *w = userdata;
        ComputeResult *c = calloc(1, sizeof(ComputeResult));
        struct timespec a, b;

        if (!c)
                return NULL;
        (void)clock_gettime(CLOCK_MONOTONIC, &a);
        /* No model here (it belongs to the loop): boot_vga is read from sysfs. */
        c->error = critical_compute(w->root, NULL, 0, &c->set, &c->message);
        (void)clock_gettime(CLOCK_MONOTONIC, &b);
        log_debug(
                "Computed the host-critical set off the loop: %lld us",
                (long long)(b.tv_sec - a.tv_sec) * 1000000LL + (b.tv_nsec - a.tv_nsec) / 1000);
        return c;
}

static bool install(CriticalWatch *w, ComputeResult *c) {
        ComputeResult oom = { .error = -ENOMEM };
        CriticalSet *old = w->set;
        bool changed;

        if (!c)
                c = &oom;
        if (c->error < 0) {
                critical_set_free(c->set);
                c->set = NULL;
        }
        changed = !w->computed || !critical_set_equal(old, c->set);
        critical_set_free(old);
        w->set = TAKE_PTR(c->set);
        free(w->error_message);
        w->error_message = TAKE_PTR(c->message);
        w->error = c->error;
        w->computed = true;
        return changed;
}

static void compute_done(void *result, uint64_t generation, void *userdata) {
        CriticalWatch *w = userdata;
        bool changed = install(w, result);

        compute_result_free(result);
        if (changed)
                log_debug("The host-critical set changed");
        if (w->changed)
                w->changed(changed, w->userdata);
}

void critical_watch_compute_now(CriticalWatch *w) {
        ComputeResult *c = compute_run(w);

        (void)install(w, c);
        compute_result_free(c);
}

/* ---- events ---------------------------------------------------------------------------------------- */

static int on_proc_poll(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CriticalWatch *w = userdata;

        /* The kernel's poll acknowledges the change itself (mounts_poll(), swaps_poll()). */
        log_debug("The mounts or swaps changed: computing the host-critical set");
        (void)watch_worker_request(w->worker);
        return 0;
}

static int on_netlink(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CriticalWatch *w = userdata;
        uint8_t buf[8192];
        bool any = false;

        /* Any route or link message is a reason; their content is read from /proc and /sys. */
        for (;;) {
                ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

                if (k >= 0) {
                        any = true;
                        continue;
                }
                if (errno == ENOBUFS) { /* lost messages: whatever they said, compute again */
                        any = true;
                        continue;
                }
                break;
        }
        if (any)
                (void)watch_worker_request(w->worker);
        return 0;
}

static int add_proc_poll(CriticalWatch *w, const char *path, sd_event_source **ret) {
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = sd_event_add_io(w->event, ret, fd, EPOLLPRI, on_proc_poll, w);
        if (r < 0) {
                (void)close(fd);
                return r;
        }
        (void)sd_event_source_set_io_fd_own(*ret, true);
        (void)sd_event_source_set_priority(*ret, EVENT_PRIORITY_CRITICAL_EVENTS);
        (void)sd_event_source_set_description(*ret, path);
        return 0;
}

static int setup_events(CriticalWatch *w) {
        struct sockaddr_nl sa = {
                .nl_family = AF_NETLINK,
                .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
        };
        int fd, r;

        r = add_proc_poll(w, PROC_SELF_MOUNTINFO, &w->mountinfo_source);
        if (r < 0)
                return r;
        r = add_proc_poll(w, PROC_SWAPS, &w->swaps_source);
        if (r < 0 && r != -ENOENT) /* a kernel without swap has none: nothing to watch */
                return r;

        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                (void)close(fd);
                return r;
        }
        r = sd_event_add_io(w->event, &w->netlink_source, fd, EPOLLIN, on_netlink, w);
        if (r < 0) {
                (void)close(fd);
                return r;
        }
        (void)sd_event_source_set_io_fd_own(w->netlink_source, true);
        (void)sd_event_source_set_priority(w->netlink_source, EVENT_PRIORITY_CRITICAL_EVENTS);
        (void)sd_event_source_set_description(w->netlink_source, "critical-rtnetlink");
        return 0;
}

/* ---- lifecycle ----------------------------------------------------------------------------------- */

int critical_watch_new(
        sd_event *event, const char *root, CriticalTracking force, CriticalWatchChanged changed,
        void *userdata, CriticalWatch **ret) {
        CriticalWatch *w;
        int r;

        assert(event && ret);

        w = calloc(1, sizeof(CriticalWatch));
        if (!w)
                return -ENOMEM;
        w->event = sd_event_ref(event);
        w->changed = changed;
        w->userdata = userdata;
        if (root && !(w->root = strdup(root))) {
                critical_watch_free(w);
                return -ENOMEM;
        }
        r = watch_worker_new(
                event, "critical-compute", EVENT_PRIORITY_CRITICAL_EVENTS, compute_run, compute_done,
                compute_result_free, w, &w->worker);
        if (r < 0) {
                critical_watch_free(w);
                return r;
        }

        /* A test root's files are plain files: nothing polls them. */
        w->tracking = (root && !streq(root, "/")) || force == CRITICAL_TRACKING_SCAN
                ? CRITICAL_TRACKING_SCAN
                : CRITICAL_TRACKING_EVENTS;
        if (w->tracking == CRITICAL_TRACKING_EVENTS) {
                r = setup_events(w);
                if (r < 0) {
                        log_notice_errno(
                                r,
                                "Cannot watch mounts, swaps and routes (%m): the host-critical set is computed for every plan");
                        w->mountinfo_source = sd_event_source_disable_unref(w->mountinfo_source);
                        w->swaps_source = sd_event_source_disable_unref(w->swaps_source);
                        w->netlink_source = sd_event_source_disable_unref(w->netlink_source);
                        w->tracking = CRITICAL_TRACKING_SCAN;
                }
        }
        log_debug("Host-critical tracking: %s", critical_tracking_to_string(w->tracking));
        *ret = w;
        return 0;
}

CriticalWatch *critical_watch_free(CriticalWatch *w) {
        if (!w)
                return NULL;
        w->worker = watch_worker_free(w->worker);
        w->mountinfo_source = sd_event_source_disable_unref(w->mountinfo_source);
        w->swaps_source = sd_event_source_disable_unref(w->swaps_source);
        w->netlink_source = sd_event_source_disable_unref(w->netlink_source);
        critical_set_free(w->set);
        free(w->error_message);
        free(w->root);
        sd_event_unref(w->event);
        free(w);
        return NULL;
}

CriticalTracking critical_watch_tracking(const CriticalWatch *w) {
        return w->tracking;
}

const CriticalSet *critical_watch_get(const CriticalWatch *w, const char **ret_error, int *ret_errno) {
        if (ret_error)
                *ret_error = w->error_message;
        if (ret_errno)
                *ret_errno = w->computed ? w->error : -ENODATA;
        return w->set;
}

void critical_watch_invalidate(CriticalWatch *w) {
        if (w->tracking == CRITICAL_TRACKING_EVENTS)
                (void)watch_worker_request(w->worker);
}

uint64_t critical_watch_request(CriticalWatch *w) {
        if (w->tracking == CRITICAL_TRACKING_SCAN || !w->computed)
                return watch_worker_request(w->worker);
        return watch_worker_requested(w->worker);
}

bool critical_watch_reached(const CriticalWatch *w, uint64_t ticket) {
        return w->computed && watch_worker_completed(w->worker) >= ticket;
}
