/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The loop's schedule: the priority of every event source hostdevd adds to its sd-event loop, in
 * one table. sd-event dispatches one source per iteration, the pending source with the lowest
 * priority value first (sd_event_source_set_priority(3)), so this order is the order in which one
 * burst of work flows through the daemon:
 *
 *   priority     source                                     room            why there
 *   IMPORTANT    early kernel monitor (udev source only)    monitor.c       a new function's kernel "add":
 *                                                                           its early driver_override must
 *                                                                           land before the kernel's first
 *                                                                           probe, ahead of anything else
 *   NORMAL       uevent monitor io                          monitor.c       receiving only queues (and runs
 *                bus connection io                          bus-util.c      the early job); method calls
 *                executor completions (eventfd)             executor-lanes  and finished jobs are answered
 *                signals (SIGHUP: reload)                   daemon.c        promptly
 *                lease owners' pidfds                       lease-manager.c a VMM's exit ends its lease in
 *                                                                           the iteration it is seen
 *   NORMAL + 1   holder events (fanotify), holder and       holder-watch.c  the holder set and the critical
 *                critical scan results, mount/route        critical-watch  set are current before a plan
 *                events                                                    reads them
 *   NORMAL + 2   holder exits (pidfds)                      holder-watch.c  after the close events of the
 *                                                                           same exit: an exit with no
 *                                                                           close is what needs a scan
 *   NORMAL + 3   uevent queue, one event per iteration      intake.c        sysfs is read for queued uevents
 *                                                                           once every socket was drained
 *   NORMAL + 4   fresh plan (functions that just came)      reconciler.c    after the queue: a plan sees
 *   NORMAL + 5   full plan                                  reconciler.c    every applied uevent
 *   NORMAL + 9   status publish (State, DesiredDriver...)   reconciler.c    hands what the plans changed to
 *                                                                           the emitter, before ...
 *   NORMAL + 10  signal flush                               bus-emitter.c   ... one flush announces the
 *                                                                           model's and the reconciler's
 *                                                                           changes: objects first, then
 *                                                                           PropertiesChanged
 *   (timers)     add settle, mdev settle (intake.c), the watchdog (sd-event): armed only while something
 *                waits, so an idle daemon never wakes
 *
 * Every room takes its priority from here; none picks a number of its own.
 */

#include <systemd/sd-event.h>

#define EVENT_PRIORITY_EARLY_MONITOR SD_EVENT_PRIORITY_IMPORTANT
#define EVENT_PRIORITY_MONITOR SD_EVENT_PRIORITY_NORMAL
#define EVENT_PRIORITY_BUS SD_EVENT_PRIORITY_NORMAL
#define EVENT_PRIORITY_EXECUTOR SD_EVENT_PRIORITY_NORMAL
#define EVENT_PRIORITY_LEASE_OWNER SD_EVENT_PRIORITY_NORMAL
#define EVENT_PRIORITY_HOLDER_EVENTS (SD_EVENT_PRIORITY_NORMAL + 1)
#define EVENT_PRIORITY_CRITICAL_EVENTS (SD_EVENT_PRIORITY_NORMAL + 1)
#define EVENT_PRIORITY_HOLDER_EXIT (SD_EVENT_PRIORITY_NORMAL + 2)
#define EVENT_PRIORITY_UEVENT_QUEUE (SD_EVENT_PRIORITY_NORMAL + 3)
#define EVENT_PRIORITY_PLAN_FRESH (SD_EVENT_PRIORITY_NORMAL + 4)
#define EVENT_PRIORITY_PLAN (SD_EVENT_PRIORITY_NORMAL + 5)
#define EVENT_PRIORITY_STATUS_PUBLISH (SD_EVENT_PRIORITY_NORMAL + 9)
#define EVENT_PRIORITY_SIGNAL_FLUSH (SD_EVENT_PRIORITY_NORMAL + 10)

_Static_assert(
        EVENT_PRIORITY_EARLY_MONITOR < EVENT_PRIORITY_MONITOR &&
                EVENT_PRIORITY_MONITOR < EVENT_PRIORITY_UEVENT_QUEUE &&
                EVENT_PRIORITY_UEVENT_QUEUE < EVENT_PRIORITY_PLAN_FRESH &&
                EVENT_PRIORITY_PLAN_FRESH < EVENT_PRIORITY_PLAN &&
                EVENT_PRIORITY_PLAN < EVENT_PRIORITY_STATUS_PUBLISH &&
                EVENT_PRIORITY_STATUS_PUBLISH < EVENT_PRIORITY_SIGNAL_FLUSH,
        "the schedule above");
