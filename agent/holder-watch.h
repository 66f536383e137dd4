/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The holder watch: which processes hold a VFIO node open (holders.h), kept current by events so a
 * plan never scans /proc on the event loop (issue 13, issue 15).
 *
 * Tracking "fanotify" (fanotify(7); CAP_SYS_ADMIN, kernel 5.9+ for FAN_REPORT_DFID_NAME):
 *  - /dev/vfio (and /dev/vfio/devices, the cdevs of 6.6+) are marked for FAN_OPEN | FAN_CLOSE on
 *    their entries; /dev and /dev/vfio for FAN_CREATE of a directory, so a /dev/vfio that appears
 *    later (vfio loaded after hostdevd started) is marked then;
 *  - an event names the process and the node: that process, and every process known to hold the
 *    node, are read again (/proc/PID/fd of those few only), on the loop; an open counts at once,
 *    on the event's word: the kernel reports it (fsnotify_open()) before the fd is in the process's
 *    table (fd_install()), so /proc may not show it yet; it is read again after 1, 2, 4 ... 256 ms
 *    until /proc shows it, the process is gone, it closes it (FAN_CLOSE, also merged with the open),
 *    or about half a second passed;
 *  - every holder process has a pidfd (pidfd_open(2), 5.3+) in the loop: its exit without a close
 *    event (an fd it shares with a child it forked, SCM_RIGHTS) starts a full scan;
 *  - a full scan of every /proc/PID/fd runs on a worker thread (watch-worker.h): at start, after a
 *    queue overflow (FAN_Q_OVERFLOW) or an unreadable event, when /dev/vfio is marked anew, and on
 *    such an exit.
 * Tracking "scan" (no fanotify: kernel, capability, a container, or $HOSTDEVD_HOLDER_TRACKING=scan):
 * the same full scan on the worker thread, once for each plan that asks (holder_watch_request()),
 * after a holder's exit (its pidfd), and every HOLDER_WATCH_RESCAN_USEC while any holder exists, so
 * a close with no exit is seen without an Apply.
 *
 * Under umockdev, /dev/vfio is opened through the preload, so the testbed's dev/vfio is what is
 * marked: a process that opens a node there (by its real path, or a bind mount of it) is seen.
 *
 * The loop only ever reads the /proc entries of holders and of processes an event names.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "holders.h"

typedef enum HolderTracking {
        HOLDER_TRACKING_FANOTIFY,
        HOLDER_TRACKING_SCAN,
        _HOLDER_TRACKING_MAX,
        _HOLDER_TRACKING_INVALID = -EINVAL,
} HolderTracking;

const char *holder_tracking_to_string(HolderTracking t); /* "fanotify", "scan" */
HolderTracking holder_tracking_from_string(const char *s);

/* A holder in scan tracking is looked for again this often while any exists (2 s). */
#define HOLDER_WATCH_RESCAN_USEC (2 * 1000 * 1000ULL)

typedef struct HolderWatch HolderWatch;

/* The set changed (|set_changed|), or a scan finished (a ticket of holder_watch_request() may be
 * reached). On the loop. */
typedef void (*HolderWatchChanged)(bool set_changed, void *userdata);

/*
 * |proc_root|: NULL for /proc (tests: a fake tree, where tracking is always "scan").
 * |force|: _HOLDER_TRACKING_INVALID to try fanotify first; else that tracking (fanotify, when it
 * cannot be set up, falls back to scan with a notice).
 */
int holder_watch_new(
        sd_event *event, const char *proc_root, HolderTracking force, HolderWatchChanged changed,
        void *userdata, HolderWatch **ret);
HolderWatch *holder_watch_free(HolderWatch *w);

HolderTracking holder_watch_tracking(const HolderWatch *w);

/* The current set, sorted by pid then node; borrowed until the loop next dispatches a watch source. */
void holder_watch_get(const HolderWatch *w, const Holder **ret, size_t *ret_n);
/* Read each holder's command name again (an exec(2) after the open changes it and raises no event),
 * at most once per loop iteration: for what is published. O(holders). */
void holder_watch_refresh_names(HolderWatch *w);

/*
 * A plan about to read the set asks for one that is current: returns a ticket; holder_watch_reached()
 * says when the set answers it (the changed hook runs then). With fanotify the set is current except
 * while a full scan is due (start, overflow); with scan, every request is answered by a scan that
 * starts after it.
 */
uint64_t holder_watch_request(HolderWatch *w);
/* Scan on the calling thread now (at start, before the loop serves anyone). */
void holder_watch_scan_now(HolderWatch *w);
bool holder_watch_reached(const HolderWatch *w, uint64_t ticket);
