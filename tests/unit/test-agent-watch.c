/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The watches that keep holders and the host-critical set current off the loop (issues 13, 15):
 * the worker thread's generations, the holder watch on a fake /proc with a real holder process (its
 * pidfd), and the critical watch woken by a real mount in a private mount namespace. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "critical-watch.h"
#include "holder-watch.h"
#include "macro.h"
#include "watch-worker.h"

/* Waits are bounded only so that a broken watch fails instead of hanging; no timing is asserted. */
#define WAIT_ITERATIONS 600
#define WAIT_STEP_USEC (100 * 1000ULL)

static void run_until(sd_event *e, bool (*cond)(void *), void *userdata) {
        for (int i = 0; i < WAIT_ITERATIONS && !cond(userdata); i++)
                assert_true(sd_event_run(e, WAIT_STEP_USEC) >= 0);
        assert_true(cond(userdata));
}

/* ---- the worker ---------------------------------------------------------------------------------- */

typedef struct WorkerState {
        WatchWorker *w;
        int runs; /* worker thread only, read after a result */
        int results;
        uint64_t last_generation;
        uint64_t target;
} WorkerState;

static void *worker_run(void *userdata) {
        WorkerState *s = userdata;
        int *v = malloc(sizeof(int));

        if (v)
                *v = ++s->runs;
        return v;
}

static void worker_done(void *result, uint64_t generation, void *userdata) {
        WorkerState *s = userdata;

        assert_non_null(result);
        s->results++;
        s->last_generation = generation;
        free(result);
}

static bool worker_reached(void *userdata) {
        WorkerState *s = userdata;

        return watch_worker_completed(s->w) >= s->target;
}

static void test_worker(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        WorkerState s = {};
        uint64_t a, b, c;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(watch_worker_new(e, "test", 0, worker_run, worker_done, free, &s, &s.w), 0);
        assert_int_equal(watch_worker_completed(s.w), 0);
        assert_int_equal(watch_worker_requested(s.w), 0);

        /* Requests while one is pending coalesce into it: at most one run in flight, one pending. */
        a = watch_worker_request(s.w);
        b = watch_worker_request(s.w);
        c = watch_worker_request(s.w);
        assert_true(a >= 1);
        assert_true(b >= a && c >= b && c <= a + 1);
        s.target = c;
        run_until(e, worker_reached, &s);
        assert_int_equal(watch_worker_completed(s.w), c);
        assert_int_equal(s.last_generation, c);
        assert_true(s.runs <= 2);
        assert_int_equal(watch_worker_requested(s.w), c);

        /* A request after the last run needs a new one. */
        s.target = watch_worker_request(s.w);
        assert_int_equal(s.target, c + 1);
        run_until(e, worker_reached, &s);
        s.w = watch_worker_free(s.w);
}

/* ---- the holder watch on a fake /proc ------------------------------------------------------------ */

typedef struct HolderState {
        HolderWatch *w;
        char root[64];
        int calls, changes;
        uint64_t ticket;
} HolderState;

static void on_holders(bool set_changed, void *userdata) {
        HolderState *s = userdata;

        s->calls++;
        s->changes += set_changed;
}

static bool holder_reached(void *userdata) {
        HolderState *s = userdata;

        return holder_watch_reached(s->w, s->ticket);
}

static bool holder_set_empty(void *userdata) {
        HolderState *s = userdata;
        const Holder *h;
        size_t n;

        holder_watch_get(s->w, &h, &n);
        return n == 0;
}

static void fake_holder(const char *root, pid_t pid, const char *node) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%i", root, (int)pid);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/%i/fd", root, (int)pid);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/%i/comm", root, (int)pid);
        f = fopen(path, "we");
        assert_non_null(f);
        fprintf(f, "qemu\n");
        assert_int_equal(fclose(f), 0);
        snprintf(path, sizeof(path), "%s/%i/fd/7", root, (int)pid);
        assert_int_equal(symlink(node, path), 0);
}

static void test_holder_watch_scan(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        HolderState s = {};
        const Holder *h;
        char path[256], cmd[128];
        size_t n;
        pid_t child;

        strcpy(s.root, "/tmp/test-agent-watch-XXXXXX");
        assert_non_null(mkdtemp(s.root));
        assert_int_equal(sd_event_new(&e), 0);

        /* A fake /proc means scan tracking. */
        assert_int_equal(holder_watch_new(e, s.root, _HOLDER_TRACKING_INVALID, on_holders, &s, &s.w), 0);
        assert_int_equal(holder_watch_tracking(s.w), HOLDER_TRACKING_SCAN);
        assert_string_equal(holder_tracking_to_string(holder_watch_tracking(s.w)), "scan");

        /* A real process (for its pidfd) listed in the fake /proc as holding group 12. */
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                pause();
                _exit(0);
        }
        fake_holder(s.root, child, "/dev/vfio/12");

        /* Not seen until a scan: a plan's request starts one off the loop. */
        holder_watch_get(s.w, &h, &n);
        assert_int_equal(n, 0);
        s.ticket = holder_watch_request(s.w);
        assert_false(holder_watch_reached(s.w, s.ticket));
        run_until(e, holder_reached, &s);
        holder_watch_get(s.w, &h, &n);
        assert_int_equal(n, 1);
        assert_int_equal(h[0].pid, child);
        assert_string_equal(h[0].node, "/dev/vfio/12");
        assert_int_equal(s.changes, 1);

        /* It exits (its entry gone from the fake /proc too): the pidfd starts a scan by itself. */
        snprintf(path, sizeof(path), "%s/%i/fd/7", s.root, (int)child);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(kill(child, SIGKILL), 0);
        assert_int_equal(waitpid(child, NULL, 0), child);
        run_until(e, holder_set_empty, &s);
        assert_int_equal(s.changes, 2);

        s.w = holder_watch_free(s.w);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s.root);
        assert_int_equal(system(cmd), 0);
}

/* ---- the critical watch ------------------------------------------------------------------------ */

typedef struct CriticalState {
        CriticalWatch *w;
        int calls, changes;
        uint64_t ticket;
} CriticalState;

static void on_critical(bool set_changed, void *userdata) {
        CriticalState *s = userdata;

        s->calls++;
        s->changes += set_changed;
}

static bool critical_called(void *userdata) {
        return ((CriticalState *)userdata)->calls > 0;
}

static bool critical_reached(void *userdata) {
        CriticalState *s = userdata;

        return critical_watch_reached(s->w, s->ticket);
}

/* A test root: scan tracking; each request is answered by a computation after it. */
static void test_critical_watch_scan(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        char root[] = "/tmp/test-agent-watch-XXXXXX", path[256], cmd[128];
        CriticalState s = {};
        const char *error = NULL;
        int err = 0;

        assert_non_null(mkdtemp(root));
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(critical_watch_new(e, root, _CRITICAL_TRACKING_INVALID, on_critical, &s, &s.w), 0);
        assert_int_equal(critical_watch_tracking(s.w), CRITICAL_TRACKING_SCAN);
        assert_null(critical_watch_get(s.w, &error, &err));
        assert_int_equal(err, -ENODATA);

        /* No mountinfo under the root: the computation fails, and the set is unknown. */
        s.ticket = critical_watch_request(s.w);
        run_until(e, critical_reached, &s);
        assert_null(critical_watch_get(s.w, &error, &err));
        assert_true(err < 0);

        /* An empty mount table: a known, empty set. */
        snprintf(path, sizeof(path), "%s/proc", root);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/proc/self", root);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/proc/self/mountinfo", root);
        assert_int_equal(close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644)), 0);
        s.ticket = critical_watch_request(s.w);
        run_until(e, critical_reached, &s);
        assert_non_null(critical_watch_get(s.w, &error, &err));
        assert_int_equal(err, 0);
        assert_int_equal(critical_watch_get(s.w, NULL, NULL)->n_devices, 0);
        assert_int_equal(s.changes, 2); /* unknown, then known */

        s.w = critical_watch_free(s.w);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        assert_int_equal(system(cmd), 0);
}

/* In a child with a private mount namespace: a tmpfs mounted there makes /proc/self/mountinfo poll,
 * and the watch computes again on its own. */
static int critical_events_child(void) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        char dir[] = "/tmp/test-agent-watch-XXXXXX";
        CriticalState s = {};
        uint64_t before;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 77; /* not root, or a container without CAP_SYS_ADMIN */
        if (!mkdtemp(dir) || sd_event_new(&e) < 0)
                return 1;
        if (critical_watch_new(e, NULL, _CRITICAL_TRACKING_INVALID, on_critical, &s, &s.w) < 0)
                return 2;
        if (critical_watch_tracking(s.w) != CRITICAL_TRACKING_EVENTS)
                return 77; /* no rtnetlink or mountinfo poll here */
        critical_watch_compute_now(s.w);
        /* Current at once: no event since. */
        before = critical_watch_request(s.w);
        if (!critical_watch_reached(s.w, before))
                return 3;

        if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") < 0)
                return 4;
        for (int i = 0; i < WAIT_ITERATIONS && !critical_called(&s); i++)
                if (sd_event_run(e, WAIT_STEP_USEC) < 0)
                        return 5;
        (void)umount(dir);
        (void)rmdir(dir);
        if (!critical_called(&s))
                return 6; /* the mount was not noticed */
        if (s.changes != 0)
                return 7; /* a tmpfs has no PCI function: the set is the same */
        s.w = critical_watch_free(s.w);
        return 0;
}

static void test_critical_watch_events(void **state) {
        pid_t pid = fork();
        int status;

        assert_true(pid >= 0);
        if (pid == 0)
                _exit(critical_events_child());
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == 77)
                skip();
        assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_worker),
                cmocka_unit_test(test_holder_watch_scan),
                cmocka_unit_test(test_critical_watch_scan),
                cmocka_unit_test(test_critical_watch_events),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
