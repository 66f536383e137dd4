/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The holder watch (holder-watch.h): fanotify on /dev/vfio, a pidfd per holder, full scans off the loop. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "event-priorities.h"
#include "holder-watch.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "strv.h"
#include "watch-worker.h"

/* An open of a VFIO node, its close, and the creation of /dev/vfio or /dev/vfio/devices. */
#define MASK_NODES (FAN_OPEN | FAN_CLOSE | FAN_EVENT_ON_CHILD)
#define MASK_SUBDIRS (FAN_CREATE | FAN_ONDIR)

static const char *const holder_tracking_table[_HOLDER_TRACKING_MAX] = {
        [HOLDER_TRACKING_FANOTIFY] = "fanotify",
        [HOLDER_TRACKING_SCAN] = "scan",
};

const char *holder_tracking_to_string(HolderTracking t) {
        return t >= 0 && t < _HOLDER_TRACKING_MAX ? holder_tracking_table[t] : NULL;
}

HolderTracking holder_tracking_from_string(const char *s) {
        for (int i = 0; s && i < _HOLDER_TRACKING_MAX; i++)
                if (streq(s, holder_tracking_table[i]))
                        return i;
        return _HOLDER_TRACKING_INVALID;
}

typedef struct Tracked {
        pid_t pid;
        sd_event_source *source; /* the pidfd's io source (owns the fd) */
} Tracked;

typedef struct Tentative {
        pid_t pid;
        char *node;
        unsigned tries;
} Tentative;

/* Re-reads of a tentative open: after 1, 2, 4 ... 256 ms (about half a second in all). */
#define TENTATIVE_TRIES 9
#define TENTATIVE_FIRST_USEC 1000ULL

typedef struct ScanResult {
        int error;
        Holder *holders;
        size_t n;
} ScanResult;

struct HolderWatch {
        sd_event *event;
        char *proc_root; /* read by the worker: immutable */
        HolderTracking tracking;
        HolderWatchChanged changed;
        void *userdata;

        Holder *set;
        size_t n;

        WatchWorker *worker;
        pid_t *touched; /* processes read again on the loop while a full scan ran: again after it */
        size_t n_touched;

        int fan_fd;
        sd_event_source *fan_source;
        bool vfio_marked, cdev_marked;
        bool primed; /* a full scan came in since the marks */

        Tracked *tracked;
        size_t n_tracked;

        sd_event_source *rescan_timer; /* scan tracking: while any holder exists */
        uint64_t names_iteration; /* of the last holder_watch_refresh_names() + 1 */

        /* Opens the kernel reported before the fd is in the process's table (fsnotify_open() comes
         * before fd_install()): held in the set on the event's word until /proc shows them, the
         * process is gone, or TENTATIVE_TRIES re-reads did not find them (opened and closed again). */
        Tentative *tentative;
        size_t n_tentative;
        sd_event_source *verify_timer;
};

/* ---- full scans, on the worker thread ------------------------------------------------------------ */

static void scan_result_free(void *p) {
        ScanResult *s = p;

        if (!s)
                return;
        holders_free(s->holders, s->n);
        free(s);
}

static void *scan_run(void *userdata) {
        HolderWatch *w = userdata;
        ScanResult *s = calloc(1, sizeof(ScanResult));
        struct timespec a, b;

        if (!s)
                return NULL;
        (void)clock_gettime(CLOCK_MONOTONIC, &a);
        s->error = holders_scan(w->proc_root, &s->holders, &s->n);
        (void)clock_gettime(CLOCK_MONOTONIC, &b);
        /* What a plan on the loop paid before this watch (tests/bench/holders-bench.py reads it). */
        log_debug(
                "Scanned for VFIO holders off the loop: %lld us, %zu found",
                (long long)(b.tv_sec - a.tv_sec) * 1000000LL + (b.tv_nsec - a.tv_nsec) / 1000, s->n);
        return s;
}

static void holder_watch_request_scan(HolderWatch *w) {
        (void)watch_worker_request(w->worker);
}

static bool scan_in_flight(const HolderWatch *w) {
        return watch_worker_requested(w->worker) != watch_worker_completed(w->worker);
}

/* ---- pidfds ---------------------------------------------------------------------------------------- */

static bool set_has_pid(const HolderWatch *w, pid_t pid) {
        for (size_t i = 0; i < w->n; i++)
                if (w->set[i].pid == pid)
                        return true;
        return false;
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HolderWatch *w = userdata;

        /* Gone with no close event (the kernel releases a file only with its last holder): a child may
         * hold what it inherited. The entry stays until the scan says who holds the node now. */
        (void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
        log_debug("A VFIO holder exited: scanning for the holders of its nodes");
        holder_watch_request_scan(w);
        return 0;
}

static void sync_pidfds(HolderWatch *w) {
        size_t keep = 0;

        for (size_t i = 0; i < w->n_tracked; i++)
                if (set_has_pid(w, w->tracked[i].pid))
                        w->tracked[keep++] = w->tracked[i];
                else
                        sd_event_source_disable_unref(w->tracked[i].source);
        w->n_tracked = keep;

        for (size_t i = 0; i < w->n; i++) {
                pid_t pid = w->set[i].pid;
                sd_event_source *src = NULL;
                bool known = false;
                Tracked *t;
                int fd, r;

                for (size_t j = 0; j < w->n_tracked; j++)
                        known = known || w->tracked[j].pid == pid;
                if (known)
                        continue;
                fd = (int)syscall(SYS_pidfd_open, pid, 0);
                if (fd < 0) {
                        /* Gone already (ESRCH), or no pidfds (ENOSYS, kernel < 5.3): a scan finds out. */
                        log_debug_errno(errno, "pidfd_open(%i) failed: %m; scanning", (int)pid);
                        holder_watch_request_scan(w);
                        continue;
                }
                r = sd_event_add_io(w->event, &src, fd, EPOLLIN, on_pidfd, w);
                if (r < 0) {
                        (void)close(fd);
                        log_debug_errno(r, "Cannot watch holder %i: %m, ignoring", (int)pid);
                        continue;
                }
                (void)sd_event_source_set_io_fd_own(src, true);
                (void)sd_event_source_set_priority(src, EVENT_PRIORITY_HOLDER_EXIT);
                (void)sd_event_source_set_description(src, "holder-pidfd");
                t = reallocarray(w->tracked, w->n_tracked + 1, sizeof(Tracked));
                if (!t) {
                        sd_event_source_disable_unref(src);
                        continue;
                }
                w->tracked = t;
                w->tracked[w->n_tracked++] = (Tracked){ .pid = pid, .source = src };
        }
}

/* ---- changes -------------------------------------------------------------------------------------- */

static void arm_rescan_timer(HolderWatch *w) {
        if (!w->rescan_timer)
                return;
        if (w->n == 0) {
                (void)sd_event_source_set_enabled(w->rescan_timer, SD_EVENT_OFF);
                return;
        }
        (void)sd_event_source_set_time_relative(w->rescan_timer, HOLDER_WATCH_RESCAN_USEC);
        (void)sd_event_source_set_enabled(w->rescan_timer, SD_EVENT_ONESHOT);
}

static int on_rescan_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        holder_watch_request_scan(userdata);
        return 0;
}

/* Read |pid| again; returns 1 when the set changed. */
static int recheck_pid(HolderWatch *w, pid_t pid) {
        Holder *fresh = NULL;
        size_t n_fresh = 0;
        pid_t *t;
        int r;

        if (scan_in_flight(w)) {
                t = reallocarray(w->touched, w->n_touched + 1, sizeof(pid_t));
                if (t) {
                        w->touched = t;
                        w->touched[w->n_touched++] = pid;
                } else
                        holder_watch_request_scan(w); /* a later scan, from the start */
        }
        r = holders_scan_pid(w->proc_root, pid, &fresh, &n_fresh);
        if (r < 0) {
                holders_free(fresh, n_fresh);
                holder_watch_request_scan(w);
                return 0;
        }
        /* Opens not in the fd table yet: kept on the event's word until it shows (on_verify_timer()). */
        size_t keep = 0;
        for (size_t i = 0; i < w->n_tentative; i++) {
                Tentative te = w->tentative[i];
                bool found = false;
                Holder *h;

                if (te.pid != pid) {
                        w->tentative[keep++] = te;
                        continue;
                }
                for (size_t j = 0; j < n_fresh; j++)
                        found = found || streq(fresh[j].node, te.node);
                if (found) { /* confirmed: /proc has it from now on */
                        free(te.node);
                        continue;
                }
                w->tentative[keep++] = te;
                h = reallocarray(fresh, n_fresh + 1, sizeof(Holder));
                if (!h)
                        continue;
                fresh = h;
                fresh[n_fresh++] = (Holder){ .pid = pid,
                                             .comm = holders_read_comm(w->proc_root, pid),
                                             .node = strdup(te.node) };
                if (!fresh[n_fresh - 1].comm || !fresh[n_fresh - 1].node) {
                        free(fresh[n_fresh - 1].comm);
                        free(fresh[n_fresh - 1].node);
                        n_fresh--;
                }
        }
        w->n_tentative = keep;
        r = holders_set_replace_pid(&w->set, &w->n, pid, fresh, n_fresh);
        if (r < 0) {
                holder_watch_request_scan(w);
                return 0;
        }
        return r;
}

static void tentative_arm(HolderWatch *w) {
        unsigned tries = TENTATIVE_TRIES;

        for (size_t i = 0; i < w->n_tentative; i++)
                if (w->tentative[i].tries < tries)
                        tries = w->tentative[i].tries;
        if (w->n_tentative == 0 || !w->verify_timer) {
                if (w->verify_timer)
                        (void)sd_event_source_set_enabled(w->verify_timer, SD_EVENT_OFF);
                return;
        }
        (void)sd_event_source_set_time_relative(
                w->verify_timer, TENTATIVE_FIRST_USEC << (tries < 8 ? tries : 8));
        (void)sd_event_source_set_enabled(w->verify_timer, SD_EVENT_ONESHOT);
}

static int on_verify_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        HolderWatch *w = userdata;
        _cleanup_free_ pid_t *pids = NULL;
        size_t n_pids = 0, keep = 0;
        bool changed = false;

        pids = calloc(w->n_tentative ?: 1, sizeof(pid_t));
        if (!pids)
                return 0;
        /* Tries used up (or confirmed): no longer kept on the event's word. */
        for (size_t i = 0; i < w->n_tentative; i++) {
                Tentative *te = &w->tentative[i];

                pids[n_pids++] = te->pid;
                if (++te->tries >= TENTATIVE_TRIES)
                        free(te->node);
                else
                        w->tentative[keep++] = *te;
        }
        w->n_tentative = keep;
        for (size_t i = 0; i < n_pids; i++)
                if (recheck_pid(w, pids[i]) > 0)
                        changed = true;
        tentative_arm(w);
        if (changed) {
                sync_pidfds(w);
                if (w->changed)
                        w->changed(true, w->userdata);
        }
        return 0;
}

static void tentative_drop(HolderWatch *w, pid_t pid, const char *node) {
        size_t keep = 0;

        for (size_t i = 0; i < w->n_tentative; i++)
                if (w->tentative[i].pid == pid && streq(w->tentative[i].node, node))
                        free(w->tentative[i].node);
                else
                        w->tentative[keep++] = w->tentative[i];
        w->n_tentative = keep;
        tentative_arm(w);
}

/* |pid| opened |node|: a holder from now on, even before its fd shows in /proc. */
static void tentative_add(HolderWatch *w, pid_t pid, const char *node) {
        Tentative *t;

        for (size_t i = 0; i < w->n_tentative; i++)
                if (w->tentative[i].pid == pid && streq(w->tentative[i].node, node)) {
                        w->tentative[i].tries = 0;
                        tentative_arm(w);
                        return;
                }
        t = reallocarray(w->tentative, w->n_tentative + 1, sizeof(Tentative));
        if (!t)
                return;
        w->tentative = t;
        w->tentative[w->n_tentative] = (Tentative){ .pid = pid, .node = strdup(node) };
        if (!w->tentative[w->n_tentative].node)
                return;
        w->n_tentative++;
        tentative_arm(w);
}

/* Install a full scan; returns whether the set changed. */
static bool install_scan(HolderWatch *w, ScanResult *s) {
        _cleanup_free_ pid_t *touched = NULL;
        size_t n_touched;
        bool changed = false;

        if (!s || s->error < 0)
                log_debug_errno(
                        s ? s->error : -ENOMEM, "Scan for VFIO holders failed: %m; keeping the last set");
        else {
                changed = !holders_set_equal(w->set, w->n, s->holders, s->n);
                holders_free(w->set, w->n);
                w->set = TAKE_PTR(s->holders);
                w->n = s->n;
                s->n = 0;
                w->primed = true;
        }

        /* What the loop read while the scan ran may be newer than the scan. */
        touched = TAKE_PTR(w->touched);
        n_touched = w->n_touched;
        w->n_touched = 0;
        for (size_t i = 0; i < n_touched; i++)
                if (recheck_pid(w, touched[i]) > 0)
                        changed = true;
        for (size_t i = 0; i < w->n_tentative; i++)
                if (recheck_pid(w, w->tentative[i].pid) > 0)
                        changed = true;

        sync_pidfds(w);
        if (w->tracking == HOLDER_TRACKING_SCAN)
                arm_rescan_timer(w);
        return changed;
}

static void scan_done(void *result, uint64_t generation, void *userdata) {
        HolderWatch *w = userdata;
        bool changed = install_scan(w, result);

        scan_result_free(result);
        /* Always: a ticket may be reached. */
        if (w->changed)
                w->changed(changed, w->userdata);
}

void holder_watch_scan_now(HolderWatch *w) {
        ScanResult *s = scan_run(w);

        (void)install_scan(w, s);
        scan_result_free(s);
}

/* ---- fanotify ------------------------------------------------------------------------------------- */

static int mark_dir(HolderWatch *w, const char *path, uint64_t mask) {
        _cleanup_close_ int fd = -EBADF;

        /* Opened by path (not named to fanotify_mark()), so umockdev's preload redirects it. */
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fanotify_mark(w->fan_fd, FAN_MARK_ADD | FAN_MARK_ONLYDIR, mask, fd, NULL) < 0)
                return -errno;
        return 0;
}

/* Mark /dev/vfio and /dev/vfio/devices where they exist now; returns 1 when one was marked anew. */
static int mark_vfio_dirs(HolderWatch *w) {
        int r, marked = 0;

        if (!w->vfio_marked) {
                r = mark_dir(w, DEV_VFIO_DIR, MASK_NODES | MASK_SUBDIRS);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r >= 0)
                        w->vfio_marked = true, marked = 1;
        }
        if (w->vfio_marked && !w->cdev_marked) {
                r = mark_dir(w, DEV_VFIO_DEVICES_DIR, MASK_NODES);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r >= 0)
                        w->cdev_marked = true, marked = 1;
        }
        return marked;
}

/* The node an event's entry name stands for: the names of /dev/vfio ("12") and of /dev/vfio/devices
 * ("vfio3") do not overlap, and the container "vfio" pins nothing. */
static bool event_node(const HolderEvent *ev, char *buf, size_t size) {
        const char *digits = ev->name;

        if (strneq(ev->name, "vfio", 4))
                digits += 4; /* a cdev of /dev/vfio/devices */
        if (!*digits || strspn(digits, "0123456789") != strlen(digits))
                return false;
        (void)snprintf(
                buf, size, "%s/%s", digits == ev->name ? DEV_VFIO_DIR : DEV_VFIO_DEVICES_DIR, ev->name);
        return true;
}

static void holder_watch_handle(HolderWatch *w, const HolderEvent *ev, bool *changed) {
        _cleanup_free_ pid_t *pids = NULL;
        char node[sizeof(DEV_VFIO_DEVICES_DIR) + sizeof(ev->name) + 1];
        size_t n_pids = 0;
        int r;

        if (ev->mask & FAN_Q_OVERFLOW) {
                log_info("The fanotify queue of /dev/vfio overflowed: scanning for VFIO holders");
                holder_watch_request_scan(w);
                return;
        }
        if ((ev->mask & FAN_CREATE) && (ev->mask & FAN_ONDIR)) {
                if (!streq(ev->name, "vfio") && !streq(ev->name, "devices"))
                        return;
                r = mark_vfio_dirs(w);
                if (r < 0)
                        log_warning_errno(
                                r, "Cannot watch %s: %m; VFIO holders may be missed until the next scan",
                                DEV_VFIO_DIR);
                if (r != 0)
                        holder_watch_request_scan(w); /* opened between its creation and the mark */
                return;
        }
        if (!(ev->mask & (FAN_OPEN | FAN_CLOSE)) || ev->pid <= 0 || !event_node(ev, node, sizeof(node)))
                return;

        /* A close by the opener released what it opened (merged events included: the close of the
         * file comes after its fd_install()); /proc says the rest. */
        if (ev->mask & FAN_CLOSE)
                tentative_drop(w, ev->pid, node);
        else if (ev->mask & FAN_OPEN)
                tentative_add(w, ev->pid, node);
        r = holders_pids_to_check(w->set, w->n, ev->pid, node, &pids, &n_pids);
        if (r < 0) {
                holder_watch_request_scan(w);
                return;
        }
        for (size_t i = 0; i < n_pids; i++)
                if (recheck_pid(w, pids[i]) > 0)
                        *changed = true;
}

static int on_fanotify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HolderWatch *w = userdata;
        bool changed = false;

        for (;;) {
                _cleanup_free_ HolderEvent *events = NULL;
                _Alignas(struct fanotify_event_metadata) uint8_t buf[8192];
                size_t n_events = 0;
                ssize_t k;
                int r;

                k = read(fd, buf, sizeof(buf));
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                break;
                        log_debug_errno(errno, "Reading fanotify events failed: %m; scanning");
                        holder_watch_request_scan(w);
                        break;
                }
                if (k == 0)
                        break;
                r = holders_parse_fanotify(buf, (size_t)k, &events, &n_events);
                if (r < 0) {
                        log_debug_errno(r, "Unreadable fanotify event: %m; scanning");
                        holder_watch_request_scan(w);
                        continue;
                }
                for (size_t i = 0; i < n_events; i++)
                        holder_watch_handle(w, &events[i], &changed);
        }

        if (changed) {
                sync_pidfds(w);
                if (w->changed)
                        w->changed(true, w->userdata);
        }
        return 0;
}

/* 0 when fanotify watches /dev/vfio (or /dev, for its creation); -errno when it cannot. */
static int setup_fanotify(HolderWatch *w) {
        int r;

        w->fan_fd = fanotify_init(
                FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME, O_RDONLY | O_CLOEXEC);
        if (w->fan_fd < 0)
                return -errno;
        r = mark_dir(w, "/dev", MASK_SUBDIRS);
        if (r < 0)
                return r;
        r = mark_vfio_dirs(w);
        if (r < 0)
                return r;
        r = sd_event_add_io(w->event, &w->fan_source, w->fan_fd, EPOLLIN, on_fanotify, w);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(
                w->event, &w->verify_timer, CLOCK_MONOTONIC, TENTATIVE_FIRST_USEC, 0, on_verify_timer, w);
        if (r < 0)
                return r;
        (void)sd_event_source_set_enabled(w->verify_timer, SD_EVENT_OFF);
        (void)sd_event_source_set_priority(w->verify_timer, EVENT_PRIORITY_HOLDER_EVENTS);
        (void)sd_event_source_set_description(w->verify_timer, "holder-verify-open");
        (void)sd_event_source_set_priority(w->fan_source, EVENT_PRIORITY_HOLDER_EVENTS);
        (void)sd_event_source_set_description(w->fan_source, "holder-fanotify");
        return 0;
}

/* ---- lifecycle ----------------------------------------------------------------------------------- */

int holder_watch_new(
        sd_event *event, const char *proc_root, HolderTracking force, HolderWatchChanged changed,
        void *userdata, HolderWatch **ret) {
        HolderWatch *w;
        int r;

        assert(event && ret);

        w = calloc(1, sizeof(HolderWatch));
        if (!w)
                return -ENOMEM;
        w->event = sd_event_ref(event);
        w->fan_fd = -EBADF;
        w->changed = changed;
        w->userdata = userdata;
        if (proc_root && !(w->proc_root = strdup(proc_root))) {
                holder_watch_free(w);
                return -ENOMEM;
        }

        r = watch_worker_new(
                event, "holder-scan", EVENT_PRIORITY_HOLDER_EVENTS, scan_run, scan_done, scan_result_free, w,
                &w->worker);
        if (r < 0) {
                holder_watch_free(w);
                return r;
        }

        /* A fake /proc has no fanotify to go with it. */
        w->tracking =
                proc_root || force == HOLDER_TRACKING_SCAN ? HOLDER_TRACKING_SCAN : HOLDER_TRACKING_FANOTIFY;
        if (w->tracking == HOLDER_TRACKING_FANOTIFY) {
                r = setup_fanotify(w);
                if (r < 0) {
                        log_notice_errno(
                                r,
                                "Cannot watch %s with fanotify (%m): VFIO holders are found by scanning /proc",
                                DEV_VFIO_DIR);
                        w->fan_source = sd_event_source_disable_unref(w->fan_source);
                        w->verify_timer = sd_event_source_disable_unref(w->verify_timer);
                        if (w->fan_fd >= 0)
                                (void)close(w->fan_fd);
                        w->fan_fd = -EBADF;
                        w->tracking = HOLDER_TRACKING_SCAN;
                }
        }
        if (w->tracking == HOLDER_TRACKING_SCAN) {
                r = sd_event_add_time_relative(
                        event, &w->rescan_timer, CLOCK_MONOTONIC, HOLDER_WATCH_RESCAN_USEC, 0,
                        on_rescan_timer, w);
                if (r < 0) {
                        holder_watch_free(w);
                        return r;
                }
                (void)sd_event_source_set_enabled(w->rescan_timer, SD_EVENT_OFF);
                (void)sd_event_source_set_description(w->rescan_timer, "holder-rescan");
        }
        log_debug("VFIO holder tracking: %s", holder_tracking_to_string(w->tracking));
        /* The holders from before the marks: holder_watch_scan_now(), or the first request. */
        *ret = w;
        return 0;
}

HolderWatch *holder_watch_free(HolderWatch *w) {
        if (!w)
                return NULL;
        w->worker = watch_worker_free(w->worker);
        w->fan_source = sd_event_source_disable_unref(w->fan_source);
        if (w->fan_fd >= 0)
                (void)close(w->fan_fd);
        for (size_t i = 0; i < w->n_tracked; i++)
                sd_event_source_disable_unref(w->tracked[i].source);
        free(w->tracked);
        w->rescan_timer = sd_event_source_disable_unref(w->rescan_timer);
        w->verify_timer = sd_event_source_disable_unref(w->verify_timer);
        for (size_t i = 0; i < w->n_tentative; i++)
                free(w->tentative[i].node);
        free(w->tentative);
        holders_free(w->set, w->n);
        free(w->touched);
        free(w->proc_root);
        sd_event_unref(w->event);
        free(w);
        return NULL;
}

HolderTracking holder_watch_tracking(const HolderWatch *w) {
        return w->tracking;
}

void holder_watch_get(const HolderWatch *w, const Holder **ret, size_t *ret_n) {
        *ret = w->set;
        *ret_n = w->n;
}

void holder_watch_refresh_names(HolderWatch *w) {
        uint64_t iteration = 0;

        (void)sd_event_get_iteration(w->event, &iteration);
        if (w->names_iteration == iteration + 1)
                return;
        w->names_iteration = iteration + 1;
        for (size_t i = 0; i < w->n; i++) {
                char *comm;

                if (i > 0 && w->set[i].pid == w->set[i - 1].pid)
                        comm = strdup(w->set[i - 1].comm);
                else
                        comm = holders_read_comm(w->proc_root, w->set[i].pid);
                if (!comm || streq(comm, "?")) {
                        free(comm);
                        continue; /* gone meanwhile (a scan follows), or out of memory: the old name stays */
                }
                free(w->set[i].comm);
                w->set[i].comm = comm;
        }
}

uint64_t holder_watch_request(HolderWatch *w) {
        if (w->tracking == HOLDER_TRACKING_SCAN)
                return watch_worker_request(w->worker);
        /* fanotify: current, unless a full scan is due. */
        if (!w->primed && !scan_in_flight(w))
                return watch_worker_request(w->worker);
        return watch_worker_requested(w->worker);
}

bool holder_watch_reached(const HolderWatch *w, uint64_t ticket) {
        return watch_worker_completed(w->worker) >= ticket;
}
