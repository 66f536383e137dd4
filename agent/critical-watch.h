/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The critical watch: the host-critical set (critical.h) kept current by events and computed off the
 * event loop, so a plan reads a cached set and never walks mounts, swaps, routes and their sysfs
 * links itself (issue 13).
 *
 * Tracking "events": a change makes the worker thread (watch-worker.h) compute the set again:
 *  - /proc/self/mountinfo polls EPOLLPRI | EPOLLERR when the mount table of our namespace changes
 *    (proc(5) "/proc/PID/mountinfo"; fs/proc_namespace.c mounts_poll());
 *  - /proc/swaps the same after swapon/swapoff (mm/swapfile.c swaps_poll());
 *  - an rtnetlink socket (rtnetlink(7)) joined to RTNLGRP_LINK, RTNLGRP_IPV4_ROUTE and
 *    RTNLGRP_IPV6_ROUTE: routes, and links joining or leaving a bond, bridge or VLAN; ENOBUFS (lost
 *    messages) computes again as well.
 * Tracking "scan" ($HOSTDEVD_CRITICAL_TRACKING=scan, a test root, or a source that cannot be
 * watched): every plan that asks gets a set computed after its request, still on the worker thread.
 *
 * A plan asks with critical_watch_request() and waits until critical_watch_reached(): in events
 * tracking that is at once unless an event came in since the last computation started.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "critical.h"

typedef enum CriticalTracking {
        CRITICAL_TRACKING_EVENTS,
        CRITICAL_TRACKING_SCAN,
        _CRITICAL_TRACKING_MAX,
        _CRITICAL_TRACKING_INVALID = -EINVAL,
} CriticalTracking;

const char *critical_tracking_to_string(CriticalTracking t); /* "events", "scan" */
CriticalTracking critical_tracking_from_string(const char *s);

typedef struct CriticalWatch CriticalWatch;

/* A computation finished; |set_changed|: the set (or whether it is known) differs from before. Loop. */
typedef void (*CriticalWatchChanged)(bool set_changed, void *userdata);

/* |root|: as critical_compute() (NULL: this host; a test root implies "scan"). */
int critical_watch_new(
        sd_event *event, const char *root, CriticalTracking force, CriticalWatchChanged changed,
        void *userdata, CriticalWatch **ret);
CriticalWatch *critical_watch_free(CriticalWatch *w);

CriticalTracking critical_watch_tracking(const CriticalWatch *w);

/*
 * The last computed set, borrowed until the watch's next result; NULL when unknown: not computed yet,
 * or the computation failed (*ret_error, if not NULL, then says why: critical_compute()'s message,
 * borrowed likewise, or NULL; *ret_errno the error).
 */
const CriticalSet *critical_watch_get(const CriticalWatch *w, const char **ret_error, int *ret_errno);

/* Compute on the calling thread now (at start, before the loop serves anyone). */
void critical_watch_compute_now(CriticalWatch *w);

/* Something the set is computed from changed without an event of ours (a PCI function came or went:
 * its boot_vga, the block and net devices under it): compute again (events tracking; scan tracking
 * computes for every plan anyway). */
void critical_watch_invalidate(CriticalWatch *w);

uint64_t critical_watch_request(CriticalWatch *w);
bool critical_watch_reached(const CriticalWatch *w, uint64_t ticket);
