/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A worker thread for work proportional to the host (every process, every mount): it runs one
 * function off the event loop and hands the result back through an eventfd, so the loop never waits
 * for it (issue 13: "the loop never blocks on work proportional to the number of processes or
 * mounts"). Used by the holder watch (every /proc/PID/fd) and the critical watch (mountinfo, swaps,
 * routes, block and net links).
 *
 * Requests coalesce: at most one run is in flight and one more is pending; a run started after a
 * request answers it. Generations count requests: watch_worker_request() returns the generation
 * whose completion answers this request; watch_worker_completed() is the generation of the last
 * result handed to |done| (0 before the first).
 *
 * Threading: |run| runs on the worker thread and may only read what does not change while the
 * worker lives (its |userdata| is given to it as it is to |done|: keep the fields |run| reads
 * immutable). |done| and |free_result| run on the loop (free_result also on the worker's free).
 */

#include <stdint.h>

#include <systemd/sd-event.h>

typedef struct WatchWorker WatchWorker;

typedef void *(*WatchWorkerRun)(void *userdata); /* the result (NULL is a valid result) */
typedef void (*WatchWorkerDone)(void *result, uint64_t generation, void *userdata); /* takes the result */
typedef void (*WatchWorkerFreeResult)(void *result);

int watch_worker_new(
        sd_event *event, const char *description, int64_t priority, WatchWorkerRun run, WatchWorkerDone done,
        WatchWorkerFreeResult free_result, void *userdata, WatchWorker **ret);
/* Joins the thread (waits for a run in flight); frees a result not handed over. NULL-tolerant. */
WatchWorker *watch_worker_free(WatchWorker *w);

/* Ask for a run; returns the generation whose completion answers it. */
uint64_t watch_worker_request(WatchWorker *w);
/* The generation of the last result handed to |done|. */
uint64_t watch_worker_completed(const WatchWorker *w);
/* The generation of the last request (== completed when nothing is in flight or pending). */
uint64_t watch_worker_requested(const WatchWorker *w);
