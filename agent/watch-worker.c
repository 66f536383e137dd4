/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A worker thread for whole-host scans (watch-worker.h). */

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "watch-worker.h"

struct WatchWorker {
        WatchWorkerRun run;
        WatchWorkerDone done;
        WatchWorkerFreeResult free_result;
        void *userdata;

        int event_fd;
        sd_event_source *source;
        pthread_t thread;
        bool thread_started;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* With |lock|: */
        bool stop;
        uint64_t requested; /* generations asked for */
        uint64_t started; /* the generation the run in flight (or the last one) answers */
        bool have_result;
        void *result;
        uint64_t result_generation;

        uint64_t completed; /* loop only */
};

static void *worker_main(void *arg) {
        WatchWorker *w = arg;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                uint64_t gen;
                void *result;

                while (!w->stop && w->started == w->requested)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (w->stop)
                        break;
                gen = w->started = w->requested;
                pthread_mutex_unlock(&w->lock);

                result = w->run(w->userdata);

                pthread_mutex_lock(&w->lock);
                if (w->have_result && w->free_result)
                        w->free_result(w->result); /* superseded before the loop took it */
                w->result = result;
                w->result_generation = gen;
                w->have_result = true;
                /* An eventfd counter cannot overflow from these writes; EAGAIN means it is readable. */
                (void)write(w->event_fd, &(uint64_t){ 1 }, sizeof(uint64_t));
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static int on_worker_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        WatchWorker *w = userdata;
        uint64_t counter, gen;
        void *result;

        (void)read(fd, &counter, sizeof(counter));
        pthread_mutex_lock(&w->lock);
        if (!w->have_result) {
                pthread_mutex_unlock(&w->lock);
                return 0;
        }
        result = w->result;
        gen = w->result_generation;
        w->result = NULL;
        w->have_result = false;
        pthread_mutex_unlock(&w->lock);

        w->completed = gen;
        w->done(result, gen, w->userdata);
        return 0;
}

int watch_worker_new(
        sd_event *event, const char *description, int64_t priority, WatchWorkerRun run, WatchWorkerDone done,
        WatchWorkerFreeResult free_result, void *userdata, WatchWorker **ret) {
        WatchWorker *w;
        int r;

        assert(event && run && done && ret);

        w = calloc(1, sizeof(WatchWorker));
        if (!w)
                return -ENOMEM;
        *w = (WatchWorker){
                .run = run,
                .done = done,
                .free_result = free_result,
                .userdata = userdata,
                .event_fd = -EBADF,
        };
        (void)pthread_mutex_init(&w->lock, NULL);
        (void)pthread_cond_init(&w->cond, NULL);

        w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->event_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(event, &w->source, w->event_fd, EPOLLIN, on_worker_done, w);
        if (r >= 0)
                r = sd_event_source_set_priority(w->source, priority);
        if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(w->source, description);

        r = -pthread_create(&w->thread, NULL, worker_main, w);
        if (r < 0)
                goto fail;
        w->thread_started = true;
        *ret = w;
        return 0;
fail:
        watch_worker_free(w);
        return r;
}

WatchWorker *watch_worker_free(WatchWorker *w) {
        if (!w)
                return NULL;
        if (w->thread_started) {
                pthread_mutex_lock(&w->lock);
                w->stop = true;
                pthread_cond_signal(&w->cond);
                pthread_mutex_unlock(&w->lock);
                (void)pthread_join(w->thread, NULL);
        }
        if (w->have_result && w->free_result)
                w->free_result(w->result);
        w->source = sd_event_source_disable_unref(w->source);
        if (w->event_fd >= 0)
                (void)close(w->event_fd);
        (void)pthread_cond_destroy(&w->cond);
        (void)pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}

uint64_t watch_worker_request(WatchWorker *w) {
        uint64_t gen;

        pthread_mutex_lock(&w->lock);
        /* A run that has not started yet answers this request too. */
        if (w->requested == w->started)
                w->requested++;
        gen = w->requested;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        return gen;
}

uint64_t watch_worker_completed(const WatchWorker *w) {
        return w->completed;
}

uint64_t watch_worker_requested(const WatchWorker *w) {
        uint64_t gen;

        pthread_mutex_lock((pthread_mutex_t *)&w->lock);
        gen = w->requested;
        pthread_mutex_unlock((pthread_mutex_t *)&w->lock);
        return gen;
}
