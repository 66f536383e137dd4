/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The executor on a plain directory tree (ExecutorOptions.sysfs_root), with a fake kernel in the write
 * hook: after each real write (sysfs_write() onto the tree's files) it applies the driver core's
 * reaction synchronously (unbind drops the driver link, drivers_probe binds driver_override or the
 * function's host driver), so every read-back sees a consistent tree and the order of writes is
 * recorded exactly. Writes that block forever use a FIFO with no reader in place of an attribute
 * (open(O_WRONLY) blocks). Not under umockdev on purpose: its preload holds one global lock across
 * open(), so one blocked open() would block every other path call of the process.
 * Nothing sleeps to synchronise: tests run the sd-event loop until the expected event arrives; a 10 s
 * timer only turns a hang into a failure. A write can be held on a condition variable (the urgent-job
 * tests submit while the runner is inside a known write). The only sleep is the fake kernel's own delay
 * before its first probe of a new function (PLAN_VERIFY_DRIVER_SETTLE), well inside the settle time.
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-event.h>

#include "executor.h"
#include "macro.h"
#include "names.h"
#include "sysfs-write.h"
#include "sysfs.h"

#define A "0000:01:00.0"
#define B "0000:02:00.0"
#define C "0000:03:00.0"
#define PF "0000:04:00.0"
#define D "0000:05:00.0"
#define E "0000:06:00.0"
#define F "0000:07:00.0"

/* ---- close() that fails once, for the helper's close() check ---------------------------------- */

static atomic_int fail_next_wronly_close;

int close(int fd) {
        static int (*real_close)(int);
        int flags;

        if (!real_close)
                real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
        flags = fcntl(fd, F_GETFL);
        if (flags >= 0 && (flags & O_ACCMODE) == O_WRONLY && atomic_exchange(&fail_next_wronly_close, 0)) {
                (void)real_close(fd);
                errno = EIO; /* what NFS reports for a deferred write error */
                return -1;
        }
        return real_close(fd);
}

/* ---- the tree and the fake kernel ------------------------------------------------------------- */

typedef struct Write {
        char *path; /* relative to root/sys */
        char *value;
        int r;
} Write;

typedef struct FakeDevice {
        const char *address;
        const char *host_driver; /* what the kernel's own match binds */
        bool probe_binds_nothing; /* drivers_probe with an override binds nothing */
        /* With probe_binds_nothing: writing driver_override starts a thread that binds the override's
         * driver this long after it (the kernel's own first probe of a new function, after its "add"
         * uevent, whatever the daemon writes meanwhile). */
        uint64_t bind_later_usec;
        bool bind_later_notify; /* ...and then reports the "bind" (executor_notify_bind()) */
        /* The kernel's first probe bound the host driver just before driver_override was written (the
         * race a new function's first write loses); once. */
        bool probe_before_override;
} FakeDevice;

/* The thread of FakeDevice.bind_later_usec. */
typedef struct LateBinder {
        struct Fixture *f;
        const char *address;
        char driver[64];
        uint64_t usec;
        bool notify; /* then executor_notify_bind(), as the loop on the kernel's "bind" uevent */
        pthread_t thread;
        bool started;
} LateBinder;

typedef struct Event {
        ExecutorEventType type;
        uint64_t job;
        char *address;
        DeviceState state;
        int error;
        char *reason;
        unsigned n_converged, n_failed, n_stuck;
} Event;

typedef struct Fixture {
        char root[64];
        char sys[128];
        sd_event *event;
        Executor *executor;
        ExecutorOptions options;

        pthread_mutex_t lock; /* writes[] and journal[] are filled on the executor's threads */
        Write writes[64];
        size_t n_writes;
        FakeDevice devices[8];
        size_t n_devices;
        const char *fail_suffix; /* inject: a write to a path ending so fails with fail_errno */
        const char *fail_value;
        int fail_errno;

        /* inject: the first write of block_value to a path ending in block_suffix waits, before it is
         * written, until the test sets block_released (block_cond under lock; blocked says it waits) */
        const char *block_suffix;
        const char *block_value;
        bool blocked, block_released;
        pthread_cond_t block_cond;
        LateBinder late;

        ExecutorJournal journal[16];
        ExecutorJournalDevice journal_devices[16]; /* the first device of each call, strings copied */
        size_t n_journal, writes_at_begin;
        int journal_result;

        /* The injected module loader (ExecutorOptions.load_driver), called on the runner thread. */
        unsigned n_loads;
        char loaded[64]; /* the driver it was last asked for */
        size_t writes_at_load;
        int load_errno; /* inject: the load fails so */
        bool load_registers; /* the load creates bus/pci/drivers/<driver> (as the module's init does) */

        Event events[32];
        size_t n_events;
        bool timer_fired;
        size_t events_when_timer_fired;
} Fixture;

static void path_printf(char *buf, size_t size, const char *format, ...) _printf_(3, 4);
static void path_printf(char *buf, size_t size, const char *format, ...) {
        va_list ap;
        int n;

        va_start(ap, format);
        n = vsnprintf(buf, size, format, ap);
        va_end(ap);
        assert_true(n > 0 && (size_t)n < size);
}

static void put(Fixture *f, const char *rel, const char *content) {
        char p[512];
        FILE *file;

        path_printf(p, sizeof(p), "%s/%s", f->sys, rel);
        file = fopen(p, "we");
        assert_non_null(file);
        assert_true(fputs(content, file) >= 0);
        assert_int_equal(fclose(file), 0);
}

static char *get(Fixture *f, const char *rel) {
        char p[512];
        char *s = NULL;
        const char *slash;

        path_printf(p, sizeof(p), "%s/%s", f->sys, rel);
        slash = strrchr(p, '/');
        p[slash - p] = '\0';
        if (sysfs_read_string(p, slash + 1, &s) < 0)
                return NULL;
        return s;
}

static void mkdir_rel(Fixture *f, const char *rel) {
        char p[512];

        path_printf(p, sizeof(p), "%s/%s", f->sys, rel);
        assert_int_equal(mkdir(p, 0755), 0);
}

static void add_driver(Fixture *f, const char *driver) {
        char rel[256];

        path_printf(rel, sizeof(rel), "bus/pci/drivers/%s", driver);
        mkdir_rel(f, rel);
        path_printf(rel, sizeof(rel), "bus/pci/drivers/%s/unbind", driver);
        put(f, rel, "");
}

static char *device_dir(Fixture *f, const char *address) {
        char *p;
        assert_true(asprintf(&p, "%s/bus/pci/devices/%s", f->sys, address) > 0);
        return p;
}

static char *driver_of(Fixture *f, const char *address) {
        _cleanup_free_ char *dir = device_dir(f, address);
        char *s = NULL;

        return sysfs_read_link_basename(dir, "driver", &s) < 0 ? NULL : s;
}

static void bind_link(Fixture *f, const char *address, const char *driver) {
        _cleanup_free_ char *dir = device_dir(f, address), *link = NULL, *target = NULL;

        assert_true(asprintf(&link, "%s/driver", dir) > 0);
        (void)unlink(link);
        if (!driver)
                return;
        assert_true(asprintf(&target, "../../drivers/%s", driver) > 0);
        assert_int_equal(symlink(target, link), 0);
}

static FakeDevice *fake_device(Fixture *f, const char *address) {
        for (size_t i = 0; i < f->n_devices; i++)
                if (streq(f->devices[i].address, address))
                        return &f->devices[i];
        return NULL;
}

static void add_device(Fixture *f, const char *address, const char *driver, const char *host_driver) {
        char rel[256];

        path_printf(rel, sizeof(rel), "bus/pci/devices/%s", address);
        mkdir_rel(f, rel);
        path_printf(rel, sizeof(rel), "bus/pci/devices/%s/driver_override", address);
        put(f, rel, "(null)\n");
        bind_link(f, address, driver);
        f->devices[f->n_devices++] = (FakeDevice){ .address = address, .host_driver = host_driver };
}

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

static void *late_binder_main(void *userdata) {
        LateBinder *l = userdata;

        (void)usleep(l->usec);
        bind_link(l->f, l->address, l->driver);
        if (l->notify)
                executor_notify_bind(l->f->executor);
        return NULL;
}

static void late_binder_join(Fixture *f) {
        if (f->late.started) {
                assert_int_equal(pthread_join(f->late.thread, NULL), 0);
                f->late.started = false;
        }
}

/* The driver core's reaction to a store, applied before the write returns (as the kernel does). */
static void fake_kernel(Fixture *f, const char *path, const char *value) {
        if (ends_with(path, "/" SYSFS_ATTR_DRIVER_OVERRIDE) && !streq(value, SYSFS_DRIVER_OVERRIDE_CLEAR)) {
                _cleanup_free_ char *dir =
                        strndup(path, strlen(path) - strlen("/" SYSFS_ATTR_DRIVER_OVERRIDE));
                FakeDevice *d = fake_device(f, strrchr(dir, '/') + 1);

                if (d && d->probe_before_override) {
                        d->probe_before_override = false;
                        bind_link(f, d->address, d->host_driver);
                }
                if (d && d->probe_binds_nothing && d->bind_later_usec > 0 && !f->late.started) {
                        f->late = (LateBinder){ .f = f,
                                                .address = d->address,
                                                .usec = d->bind_later_usec,
                                                .notify = d->bind_later_notify };
                        path_printf(f->late.driver, sizeof(f->late.driver), "%s", value);
                        assert_int_equal(
                                pthread_create(&f->late.thread, NULL, late_binder_main, &f->late), 0);
                        f->late.started = true;
                }
        } else if (ends_with(path, "/" SYSFS_ATTR_UNBIND)) {
                _cleanup_free_ char *dir = strndup(path, strlen(path) - strlen("/" SYSFS_ATTR_UNBIND));
                _cleanup_free_ char *now = driver_of(f, value);
                const char *drv = strrchr(dir, '/') + 1;

                if (now && streq(now, drv))
                        bind_link(f, value, NULL);
        } else if (ends_with(path, "/drivers_probe")) {
                _cleanup_free_ char *now = driver_of(f, value), *override = NULL, *rel = NULL;
                FakeDevice *d = fake_device(f, value);
                char drvdir[512];

                assert_non_null(d);
                if (now)
                        return;
                assert_true(asprintf(&rel, "bus/pci/devices/%s/driver_override", value) > 0);
                override = get(f, rel);
                if (override && !streq(override, "") && !streq(override, "(null)")) {
                        path_printf(drvdir, sizeof(drvdir), "%s/bus/pci/drivers/%s", f->sys, override);
                        if (!d->probe_binds_nothing && access(drvdir, F_OK) >= 0)
                                bind_link(f, value, override);
                } else if (d->host_driver)
                        bind_link(f, value, d->host_driver);
        }
}

static int fake_write(const char *path, const char *value, char **ret_message, void *userdata) {
        Fixture *f = userdata;
        const char *rel = path + strlen(f->sys) + 1;
        int r;

        assert_true(strneq(path, f->sys, strlen(f->sys)));
        pthread_mutex_lock(&f->lock);
        if (f->block_suffix && !f->blocked && ends_with(path, f->block_suffix) &&
            streq(value, f->block_value)) {
                f->blocked = true;
                (void)pthread_cond_broadcast(&f->block_cond);
                while (!f->block_released)
                        (void)pthread_cond_wait(&f->block_cond, &f->lock);
        }
        pthread_mutex_unlock(&f->lock);
        r = sysfs_write(path, value, ret_message);
        if (r >= 0 && f->fail_suffix && ends_with(path, f->fail_suffix) &&
            (!f->fail_value || streq(value, f->fail_value))) {
                r = -f->fail_errno;
                assert_true(
                        asprintf(ret_message, "injected %s on %s", strerrorname_np(f->fail_errno), path) >
                        0);
        }
        pthread_mutex_lock(&f->lock);
        assert_true(f->n_writes < ELEMENTSOF(f->writes));
        f->writes[f->n_writes++] = (Write){ .path = strdup(rel), .value = strdup(value), .r = r };
        pthread_mutex_unlock(&f->lock);
        if (r >= 0)
                fake_kernel(f, path, value);
        return r;
}

/* A fake module loader: never libkmod, never the machine's kernel. */
static int fake_load_driver(const char *driver, char **ret_module, void *userdata) {
        Fixture *f = userdata;

        pthread_mutex_lock(&f->lock);
        f->n_loads++;
        path_printf(f->loaded, sizeof(f->loaded), "%s", driver);
        f->writes_at_load = f->n_writes;
        pthread_mutex_unlock(&f->lock);

        *ret_module = strdup(driver);
        assert_non_null(*ret_module);
        for (char *p = *ret_module; *p; p++)
                if (*p == '-')
                        *p = '_';
        if (f->load_errno)
                return -f->load_errno;
        if (f->load_registers)
                add_driver(f, driver);
        return 0;
}

static int journal_hook(const ExecutorJournal *j, void *userdata) {
        Fixture *f = userdata;

        pthread_mutex_lock(&f->lock);
        assert_true(f->n_journal < ELEMENTSOF(f->journal));
        f->journal[f->n_journal] = *j;
        if (j->phase == EXECUTOR_JOURNAL_BEGIN)
                f->writes_at_begin = f->n_writes;
        /* Keep the first device's originals and targets (the strings live only during the call). */
        f->journal_devices[f->n_journal] = j->devices[0];
        f->journal_devices[f->n_journal].driver = j->devices[0].driver ? strdup(j->devices[0].driver) : NULL;
        f->journal_devices[f->n_journal].driver_override =
                j->devices[0].driver_override ? strdup(j->devices[0].driver_override) : NULL;
        f->journal_devices[f->n_journal].address = strdup(j->devices[0].address);
        f->journal_devices[f->n_journal].target_override =
                j->devices[0].target_override ? strdup(j->devices[0].target_override) : NULL;
        f->journal_devices[f->n_journal].target_driver =
                j->devices[0].target_driver ? strdup(j->devices[0].target_driver) : NULL;
        f->journal[f->n_journal].devices = NULL;
        f->journal[f->n_journal].state = NULL;
        f->n_journal++;
        pthread_mutex_unlock(&f->lock);

        /* The per-transaction slot: what BEGIN leaves there, END of the same transaction gets back. */
        if (j->phase == EXECUTOR_JOURNAL_BEGIN) {
                assert_null(*j->state);
                if (f->journal_result < 0)
                        return f->journal_result; /* END will not come: nothing stored */
                *j->state = strdup(j->devices[0].address);
                assert_non_null(*j->state);
                return 0;
        }
        assert_non_null(*j->state);
        assert_string_equal(*j->state, j->devices[0].address);
        free(*j->state);
        *j->state = NULL;
        return 0;
}

static void on_event(Executor *e, const ExecutorEvent *ev, void *userdata) {
        Fixture *f = userdata;

        assert_true(f->n_events < ELEMENTSOF(f->events));
        f->events[f->n_events++] = (Event){
                .type = ev->type,
                .job = ev->job,
                .address = ev->address ? strdup(ev->address) : NULL,
                .state = ev->state,
                .error = ev->error,
                .reason = ev->reason ? strdup(ev->reason) : NULL,
                .n_converged = ev->n_converged,
                .n_failed = ev->n_failed,
                .n_stuck = ev->n_stuck,
        };
}

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        assert_non_null(f);
        strcpy(f->root, "/tmp/test-executor-XXXXXX");
        assert_non_null(mkdtemp(f->root));
        path_printf(f->sys, sizeof(f->sys), "%s/sys", f->root);
        assert_int_equal(mkdir(f->sys, 0755), 0);
        mkdir_rel(f, "bus");
        mkdir_rel(f, "bus/pci");
        mkdir_rel(f, "bus/pci/devices");
        mkdir_rel(f, "bus/pci/drivers");
        put(f, "bus/pci/drivers_probe", "");
        add_driver(f, "e1000e");
        add_driver(f, "vfio-pci");
        (void)pthread_mutex_init(&f->lock, NULL);
        (void)pthread_cond_init(&f->block_cond, NULL);

        assert_int_equal(sd_event_new(&f->event), 0);
        f->options = (ExecutorOptions){
                .sysfs_root = f->root,
                .write_timeout_usec = 200 * 1000,
                .max_abandoned = 2,
                .max_parallel = 1, /* the order of writes is the plan's; tests of lanes raise it */
                .journal = journal_hook,
                .journal_userdata = f,
                .write = fake_write,
                .write_userdata = f,
        };
        *state = f;
        return 0;
}

static void rm_rf(const char *path) {
        char cmd[256];
        path_printf(cmd, sizeof(cmd), "rm -rf '%s'", path);
        assert_int_equal(system(cmd), 0);
}

static void rm_rf_rel(Fixture *f, const char *rel) {
        char p[512];

        path_printf(p, sizeof(p), "%s/%s", f->sys, rel);
        rm_rf(p);
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;

        /* A test that failed while a write was held: let it go, or freeing the executor waits forever. */
        pthread_mutex_lock(&f->lock);
        f->block_released = true;
        (void)pthread_cond_broadcast(&f->block_cond);
        pthread_mutex_unlock(&f->lock);
        executor_free(f->executor);
        sd_event_unref(f->event);
        for (size_t i = 0; i < f->n_writes; i++) {
                free(f->writes[i].path);
                free(f->writes[i].value);
        }
        for (size_t i = 0; i < f->n_events; i++) {
                free(f->events[i].address);
                free(f->events[i].reason);
        }
        for (size_t i = 0; i < f->n_journal; i++) {
                free((char *)f->journal_devices[i].address);
                free((char *)f->journal_devices[i].driver);
                free((char *)f->journal_devices[i].driver_override);
                free((char *)f->journal_devices[i].target_override);
                free((char *)f->journal_devices[i].target_driver);
        }
        late_binder_join(f);
        (void)pthread_cond_destroy(&f->block_cond);
        (void)pthread_mutex_destroy(&f->lock);
        rm_rf(f->root);
        free(f);
        return 0;
}

static void start(Fixture *f) {
        assert_int_equal(executor_new(f->event, &f->options, on_event, f, &f->executor), 0);
}

/* ---- plans ---------------------------------------------------------------------------------- */

typedef struct PlanBuilder {
        Plan plan;
        PlanAction actions[32];
} PlanBuilder;

static void act(
        PlanBuilder *b, unsigned t, PlanActionType type, const char *address, const char *driver,
        PlanVerify verify, uint32_t value) {
        PlanAction *a = &b->actions[b->plan.n_actions++];

        *a = (PlanAction){ .type = type,
                           .transaction = t,
                           .driver = driver ? strdup(driver) : NULL,
                           .verify = verify,
                           .value = value };
        /* A malformed address may be longer than the field: kept as far as it fits, still malformed. */
        (void)snprintf(a->address, sizeof(a->address), "%s", address);
        b->plan.actions = b->actions;
        if (t > b->plan.n_transactions)
                b->plan.n_transactions = t;
}

/* The planner's bind sequence for one function (planner.c emit_transaction(), one member). */
static void bind_actions(PlanBuilder *b, unsigned t, const char *address, const char *from, const char *to) {
        act(b, t, PLAN_ACTION_SET_OVERRIDE, address, to, 0, 0);
        if (from)
                act(b, t, PLAN_ACTION_UNBIND, address, from, 0, 0);
        act(b, t, PLAN_ACTION_PROBE, address, NULL, 0, 0);
        act(b, t, PLAN_ACTION_VERIFY, address, to, PLAN_VERIFY_DRIVER, 0);
}

static void plan_builder_done(PlanBuilder *b) {
        for (size_t i = 0; i < b->plan.n_actions; i++)
                free(b->actions[i].driver);
        b->plan.n_actions = 0;
}

static uint64_t submit(Fixture *f, PlanBuilder *b) {
        uint64_t job = 0;

        assert_int_equal(executor_submit(f->executor, &b->plan, &job), 0);
        assert_true(job > 0);
        plan_builder_done(b); /* the executor copied it */
        return job;
}

static uint64_t submit_first(Fixture *f, PlanBuilder *b) {
        uint64_t job = 0;

        assert_int_equal(executor_submit_first(f->executor, &b->plan, &job), 0);
        assert_true(job > 0);
        plan_builder_done(b);
        return job;
}

/* ---- running the loop ------------------------------------------------------------------------ */

static int on_hang(sd_event_source *s, uint64_t usec, void *userdata) {
        fail_msg("no executor event within 10 s");
        return 0;
}

static const Event *find_event(Fixture *f, ExecutorEventType type, uint64_t job, const char *address) {
        for (size_t i = 0; i < f->n_events; i++) {
                const Event *e = &f->events[i];
                if (e->type == type && (!job || e->job == job) &&
                    (!address || (e->address && streq(e->address, address))))
                        return e;
        }
        return NULL;
}

/* Run the loop until the event arrives. */
static const Event *wait_event(Fixture *f, ExecutorEventType type, uint64_t job, const char *address) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *hang = NULL;
        const Event *e;

        assert_int_equal(
                sd_event_add_time_relative(
                        f->event, &hang, CLOCK_MONOTONIC, 10 * 1000 * 1000, 0, on_hang, NULL),
                0);
        while (!(e = find_event(f, type, job, address)))
                assert_true(sd_event_run(f->event, UINT64_MAX) >= 0);
        return e;
}

static const Event *device_event(Fixture *f, uint64_t job, const char *address) {
        const Event *e = find_event(f, EXECUTOR_EVENT_DEVICE, job, address);
        assert_non_null(e);
        return e;
}

static void assert_writes(Fixture *f, size_t from, const char *const *expected) {
        _cleanup_free_ char *error = NULL;
        size_t n = 0;
        int k = 0;

        /* The message is made under the lock, the failure raised after it: fail_msg() does not return,
         * and the teardown takes the lock. */
        pthread_mutex_lock(&f->lock);
        for (; expected[2 * n] && k == 0; n++) {
                if (from + n >= f->n_writes)
                        k = asprintf(
                                &error, "write %zu missing: expected %s=%s", n, expected[2 * n],
                                expected[2 * n + 1]);
                else if (
                        !streq(f->writes[from + n].path, expected[2 * n]) ||
                        !streq(f->writes[from + n].value, expected[2 * n + 1]))
                        k = asprintf(
                                &error, "write %zu: got %s='%s', expected %s='%s'", n,
                                f->writes[from + n].path, f->writes[from + n].value, expected[2 * n],
                                expected[2 * n + 1]);
        }
        if (k == 0 && f->n_writes != from + n)
                k = asprintf(
                        &error, "%zu writes, expected %zu; extra: %s='%s'", f->n_writes - from, n,
                        f->writes[from + n].path, f->writes[from + n].value);
        pthread_mutex_unlock(&f->lock);
        assert_true(k >= 0);
        if (error)
                fail_msg("%s", error);
}

static void assert_contains(const char *s, const char *needle) {
        if (!s || !strstr(s, needle))
                fail_msg("'%s' does not contain '%s'", strna(s), needle);
}

static void assert_driver(Fixture *f, const char *address, const char *driver) {
        _cleanup_free_ char *now = driver_of(f, address);

        if (!driver)
                assert_null(now);
        else {
                assert_non_null(now);
                assert_string_equal(now, driver);
        }
}

static void assert_override_clear(Fixture *f, const char *address) {
        _cleanup_free_ char *rel = NULL, *s = NULL;

        assert_true(asprintf(&rel, "bus/pci/devices/%s/driver_override", address) > 0);
        s = get(f, rel);
        assert_non_null(s);
        assert_true(streq(s, "") || streq(s, "(null)"));
}

/* ---- tests --------------------------------------------------------------------------------------- */

static void test_write_helper(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *dir = NULL, *path = NULL, *msg = NULL, *s = NULL, *q = NULL;

        add_device(f, A, NULL, NULL);
        dir = device_dir(f, A);

        /* O_TRUNC: a shorter value replaces a longer one whole. */
        assert_int_equal(sysfs_write_attribute(dir, "driver_override", "igb", &msg), 0);
        assert_null(msg);
        assert_int_equal(sysfs_read_string(dir, "driver_override", &s), 0);
        assert_string_equal(s, "igb");
        s = mfree(s);
        assert_int_equal(sysfs_write_attribute(dir, "driver_override", "\n", NULL), 0);
        assert_int_equal(sysfs_read_string(dir, "driver_override", &s), 0);
        assert_string_equal(s, "");

        /* A missing attribute is not created: -ENOENT, named with path, value and errno. */
        assert_int_equal(sysfs_write_attribute(dir, "sriov_numvfs", "4", &msg), -ENOENT);
        assert_true(asprintf(&path, "%s/sriov_numvfs", dir) > 0);
        assert_int_equal(access(path, F_OK), -1);
        assert_contains(msg, path);
        assert_contains(msg, "'4'");
        assert_contains(msg, "ENOENT");
        assert_contains(msg, "(open)");
        msg = mfree(msg);

        /* close() is checked. */
        atomic_store(&fail_next_wronly_close, 1);
        assert_int_equal(sysfs_write_attribute(dir, "driver_override", "vfio-pci", &msg), -EIO);
        assert_contains(msg, "(close)");
        assert_contains(msg, "EIO");
        assert_contains(msg, "'vfio-pci'");

        q = sysfs_write_quote_value("\n");
        assert_string_equal(q, "'\\n'");
}

static void test_bind(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        uint64_t job;
        const Event *e;

        add_device(f, A, "e1000e", "e1000e");
        start(f);
        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        job = submit(f, &b);

        e = wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(e->n_converged, 1);
        assert_int_equal(e->n_failed + e->n_stuck, 0);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_CONVERGED);
        assert_int_equal(e->error, 0);
        assert_null(e->reason);

        assert_writes(
                f, 0,
                (const char *const[]){ "bus/pci/devices/" A "/driver_override", "vfio-pci",
                                       "bus/pci/drivers/e1000e/unbind", A, "bus/pci/drivers_probe", A,
                                       NULL });
        assert_driver(f, A, "vfio-pci");

        /* The journal saw the originals before the first write, and the commit after. */
        assert_int_equal(f->n_journal, 2);
        assert_int_equal(f->journal[0].phase, EXECUTOR_JOURNAL_BEGIN);
        assert_int_equal(f->writes_at_begin, 0);
        assert_int_equal(f->journal[0].n_devices, 1);
        assert_string_equal(f->journal_devices[0].address, A);
        assert_string_equal(f->journal_devices[0].driver, "e1000e");
        assert_null(f->journal_devices[0].driver_override);
        assert_int_equal(f->journal[1].phase, EXECUTOR_JOURNAL_END);
        assert_int_equal(f->journal[1].outcome, DEVICE_STATE_CONVERGED);
}

static void test_verify_failure_rolls_back(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        uint64_t job;
        const Event *e;
        size_t n;

        /* T1: C alone, succeeds. T2: the group A + B; B's probe binds nothing. */
        add_device(f, A, "e1000e", "e1000e");
        add_device(f, B, "e1000e", "e1000e");
        add_device(f, C, "e1000e", "e1000e");
        fake_device(f, B)->probe_binds_nothing = true;
        start(f);
        bind_actions(&b, 1, C, "e1000e", "vfio-pci");
        act(&b, 2, PLAN_ACTION_SET_OVERRIDE, A, "vfio-pci", 0, 0);
        act(&b, 2, PLAN_ACTION_SET_OVERRIDE, B, "vfio-pci", 0, 0);
        act(&b, 2, PLAN_ACTION_UNBIND, A, "e1000e", 0, 0);
        act(&b, 2, PLAN_ACTION_UNBIND, B, "e1000e", 0, 0);
        act(&b, 2, PLAN_ACTION_PROBE, A, NULL, 0, 0);
        act(&b, 2, PLAN_ACTION_PROBE, B, NULL, 0, 0);
        act(&b, 2, PLAN_ACTION_VERIFY, A, "vfio-pci", PLAN_VERIFY_DRIVER, 0);
        act(&b, 2, PLAN_ACTION_VERIFY, B, "vfio-pci", PLAN_VERIFY_DRIVER, 0);
        job = submit(f, &b);

        e = wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(e->n_converged, 1);
        assert_int_equal(e->n_failed, 2);

        assert_int_equal(device_event(f, job, C)->state, DEVICE_STATE_CONVERGED);
        e = device_event(f, job, B);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -ENODEV);
        assert_contains(e->reason, "drivers_probe bound nothing");
        assert_contains(e->reason, "rolled back");
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -ECANCELED);
        assert_contains(e->reason, B);

        /* T2 in order, then its rollback: overrides cleared with "\n", A (bound to vfio-pci by T2)
         * unbound, both re-probed to the original driver. C, of T1, is left alone. */
        n = 3; /* T1's writes */
        assert_writes(
                f, n,
                (const char *const[]){ "bus/pci/devices/" A "/driver_override",
                                       "vfio-pci",
                                       "bus/pci/devices/" B "/driver_override",
                                       "vfio-pci",
                                       "bus/pci/drivers/e1000e/unbind",
                                       A,
                                       "bus/pci/drivers/e1000e/unbind",
                                       B,
                                       "bus/pci/drivers_probe",
                                       A,
                                       "bus/pci/drivers_probe",
                                       B,
                                       "bus/pci/devices/" A "/driver_override",
                                       "\n",
                                       "bus/pci/devices/" B "/driver_override",
                                       "\n",
                                       "bus/pci/drivers/vfio-pci/unbind",
                                       A,
                                       "bus/pci/drivers_probe",
                                       A,
                                       "bus/pci/drivers_probe",
                                       B,
                                       NULL });
        assert_driver(f, A, "e1000e");
        assert_driver(f, B, "e1000e");
        assert_driver(f, C, "vfio-pci");
        assert_override_clear(f, A);
        assert_override_clear(f, B);
        assert_int_equal(f->journal[f->n_journal - 1].outcome, DEVICE_STATE_FAILED);
}

static int on_early_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Fixture *f = userdata;

        f->timer_fired = true;
        f->events_when_timer_fired = f->n_events;
        return 0;
}

static void make_fifo(Fixture *f, const char *rel) {
        char p[512];

        path_printf(p, sizeof(p), "%s/%s", f->sys, rel);
        (void)unlink(p);
        assert_int_equal(mkfifo(p, 0600), 0);
}

/* Let the write blocked in open(O_WRONLY) on the FIFO go on: open the reading end, wait for the
 * RELEASED event, and return what it wrote. */
static char *release_fifo(Fixture *f, const char *rel, const char *address) {
        _cleanup_close_ int fd = -EBADF;
        char p[512], buf[64];
        const Event *e;
        ssize_t n;

        path_printf(p, sizeof(p), "%s/%s", f->sys, rel);
        fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(fd >= 0);
        e = wait_event(f, EXECUTOR_EVENT_RELEASED, 0, address);
        assert_int_equal(e->error, 0);
        assert_contains(e->reason, "past its deadline");
        /* The writer closed before RELEASED was posted, so the data is in the pipe. */
        n = read(fd, buf, sizeof(buf) - 1);
        assert_true(n > 0);
        buf[n] = '\0';
        return strdup(buf);
}

static void test_stuck(void **state) {
        Fixture *f = *state;
        _cleanup_(sd_event_source_unrefp) sd_event_source *timer = NULL;
        _cleanup_free_ char *wrote_a = NULL, *wrote_c = NULL;
        PlanBuilder b = {};
        uint64_t job, job2, job3;
        const Event *e;
        size_t n;

        /* A and C are bound to drivers whose unbind never returns (a FIFO nobody reads). */
        add_driver(f, "stuck0");
        add_driver(f, "stuck1");
        make_fifo(f, "bus/pci/drivers/stuck0/unbind");
        make_fifo(f, "bus/pci/drivers/stuck1/unbind");
        add_device(f, A, "stuck0", "stuck0");
        add_device(f, B, "e1000e", "e1000e");
        add_device(f, C, "stuck1", "stuck1");
        start(f);

        /* A loop timer, due long before the deadline, must fire while the write hangs. Higher priority
         * than the executor's source, so the order holds even when both are due in one iteration. */
        assert_int_equal(
                sd_event_add_time_relative(
                        f->event, &timer, CLOCK_MONOTONIC, 20 * 1000, 0, on_early_timer, f),
                0);
        assert_int_equal(sd_event_source_set_priority(timer, SD_EVENT_PRIORITY_IMPORTANT), 0);

        bind_actions(&b, 1, A, "stuck0", "vfio-pci");
        bind_actions(&b, 2, B, "e1000e", "vfio-pci");
        job = submit(f, &b);

        e = wait_event(f, EXECUTOR_EVENT_DEVICE, job, A);
        assert_true(f->timer_fired);
        assert_int_equal(f->events_when_timer_fired, 0);
        assert_int_equal(e->state, DEVICE_STATE_STUCK);
        assert_int_equal(e->error, -ETIMEDOUT);
        assert_contains(e->reason, "stuck0/unbind");
        assert_contains(e->reason, "200 ms");
        assert_true(executor_is_stuck(f->executor, A));
        assert_int_equal(executor_get_n_abandoned(f->executor), 1);

        /* The next transaction, on another function, completes on a new worker. */
        e = wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(e->n_stuck, 1);
        assert_int_equal(e->n_converged, 1);
        assert_int_equal(device_event(f, job, B)->state, DEVICE_STATE_CONVERGED);
        assert_driver(f, B, "vfio-pci");
        assert_int_equal(f->journal[1].outcome, DEVICE_STATE_STUCK);

        /* No new work on a stuck function: refused with no write. */
        pthread_mutex_lock(&f->lock);
        n = f->n_writes;
        pthread_mutex_unlock(&f->lock);
        act(&b, 1, PLAN_ACTION_CLEAR_OVERRIDE, A, NULL, 0, 0);
        job2 = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job2, NULL);
        e = device_event(f, job2, A);
        assert_int_equal(e->state, DEVICE_STATE_STUCK);
        assert_contains(e->reason, "still stuck");
        assert_writes(f, n, (const char *const[]){ NULL });

        /* A second stuck worker reaches the bound (2): further work is refused. */
        bind_actions(&b, 1, C, "stuck1", "vfio-pci");
        job3 = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job3, NULL);
        assert_int_equal(device_event(f, job3, C)->state, DEVICE_STATE_STUCK);
        assert_int_equal(executor_get_n_abandoned(f->executor), 2);
        act(&b, 1, PLAN_ACTION_CLEAR_OVERRIDE, B, NULL, 0, 0);
        assert_int_equal(executor_submit(f->executor, &b.plan, NULL), -EBUSY);
        plan_builder_done(&b);

        /* The writes return at last: the functions are released and work is accepted again. */
        wrote_a = release_fifo(f, "bus/pci/drivers/stuck0/unbind", A);
        assert_string_equal(wrote_a, A);
        assert_false(executor_is_stuck(f->executor, A));
        wrote_c = release_fifo(f, "bus/pci/drivers/stuck1/unbind", C);
        assert_string_equal(wrote_c, C);
        assert_int_equal(executor_get_n_abandoned(f->executor), 0);
        act(&b, 1, PLAN_ACTION_CLEAR_OVERRIDE, B, NULL, 0, 0);
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
}

static void test_write_error(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        const Event *e;
        uint64_t job;
        char p[512];

        add_device(f, A, "e1000e", "e1000e");
        path_printf(p, sizeof(p), "%s/bus/pci/devices/%s/driver_override", f->sys, A);
        assert_int_equal(unlink(p), 0);
        start(f);
        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -ENOENT);
        assert_contains(e->reason, p);
        assert_contains(e->reason, "'vfio-pci'");
        assert_contains(e->reason, "ENOENT");
        /* Never created, not even by the rollback's "\n"; the device stays on its driver. */
        assert_int_equal(access(p, F_OK), -1);
        assert_contains(e->reason, "rollback incomplete");
        assert_driver(f, A, "e1000e");
}

static void test_close_error(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        const Event *e;
        uint64_t job;

        add_device(f, A, "e1000e", "e1000e");
        start(f);
        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        atomic_store(&fail_next_wronly_close, 1);
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -EIO);
        assert_contains(e->reason, "(close)");
        assert_contains(e->reason, "driver_override");
        assert_contains(e->reason, "rolled back");
        /* The store itself landed before close() failed; the rollback cleared it. */
        assert_writes(
                f, 0,
                (const char *const[]){ "bus/pci/devices/" A "/driver_override", "vfio-pci",
                                       "bus/pci/devices/" A "/driver_override", "\n", NULL });
        assert_override_clear(f, A);
        assert_driver(f, A, "e1000e");
}

static void add_pf(Fixture *f, unsigned numvfs, bool autoprobe) {
        char v[16];

        add_device(f, PF, "e1000e", "e1000e");
        path_printf(v, sizeof(v), "%u\n", numvfs);
        put(f, "bus/pci/devices/" PF "/sriov_numvfs", v);
        put(f, "bus/pci/devices/" PF "/sriov_drivers_autoprobe", autoprobe ? "1\n" : "0\n");
}

static void sriov_actions(PlanBuilder *b) {
        act(b, 1, PLAN_ACTION_SET_NUMVFS, PF, NULL, 0, 0);
        act(b, 1, PLAN_ACTION_SET_SRIOV_AUTOPROBE, PF, NULL, 0, 0);
        act(b, 1, PLAN_ACTION_SET_NUMVFS, PF, NULL, 0, 4);
}

static void test_sriov(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *numvfs = NULL, *autoprobe = NULL;
        PlanBuilder b = {};
        uint64_t job;

        add_pf(f, 2, true);
        start(f);
        sriov_actions(&b);
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(device_event(f, job, PF)->state, DEVICE_STATE_CONVERGED);
        assert_writes(
                f, 0,
                (const char *const[]){ "bus/pci/devices/" PF "/sriov_numvfs", "0",
                                       "bus/pci/devices/" PF "/sriov_drivers_autoprobe", "0",
                                       "bus/pci/devices/" PF "/sriov_numvfs", "4", NULL });
        assert_true(f->journal_devices[0].sriov);
        assert_int_equal(f->journal_devices[0].sriov_numvfs, 2);
        assert_true(f->journal_devices[0].sriov_drivers_autoprobe);
        numvfs = get(f, "bus/pci/devices/" PF "/sriov_numvfs");
        assert_string_equal(numvfs, "4");
        autoprobe = get(f, "bus/pci/devices/" PF "/sriov_drivers_autoprobe");
        assert_string_equal(autoprobe, "0");
}

static void test_sriov_ebusy_rolls_back(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *numvfs = NULL, *autoprobe = NULL;
        PlanBuilder b = {};
        const Event *e;
        uint64_t job;

        add_pf(f, 2, true);
        f->fail_suffix = "/sriov_numvfs";
        f->fail_value = "4";
        f->fail_errno = EBUSY;
        start(f);
        sriov_actions(&b);
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        e = device_event(f, job, PF);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -EBUSY);
        assert_contains(e->reason, "EBUSY");
        /* Autoprobe back on first, then the original count through 0 (it failed from 0 here... the
         * injected write landed, so the tree holds 4: 0 first, then 2). */
        assert_writes(
                f, 0,
                (const char *const[]){ "bus/pci/devices/" PF "/sriov_numvfs", "0",
                                       "bus/pci/devices/" PF "/sriov_drivers_autoprobe", "0",
                                       "bus/pci/devices/" PF "/sriov_numvfs", "4",
                                       "bus/pci/devices/" PF "/sriov_drivers_autoprobe", "1",
                                       "bus/pci/devices/" PF "/sriov_numvfs", "0",
                                       "bus/pci/devices/" PF "/sriov_numvfs", "2", NULL });
        numvfs = get(f, "bus/pci/devices/" PF "/sriov_numvfs");
        assert_string_equal(numvfs, "2");
        autoprobe = get(f, "bus/pci/devices/" PF "/sriov_drivers_autoprobe");
        assert_string_equal(autoprobe, "1");
}

static void test_refusals(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        const Event *e;
        uint64_t job;

        add_device(f, A, "e1000e", "e1000e");
        add_device(f, B, "e1000e", "e1000e");
        start(f);

        /* A driver that is not registered: nothing written. */
        bind_actions(&b, 1, A, "e1000e", "nosuch");
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -ENOENT);
        assert_contains(e->reason, "nosuch is not loaded");

        /* The journal refuses: nothing written. */
        f->journal_result = -EROFS;
        bind_actions(&b, 1, B, "e1000e", "vfio-pci");
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        e = device_event(f, job, B);
        assert_int_equal(e->error, -EROFS);
        assert_writes(f, 0, (const char *const[]){ NULL });
        f->journal_result = 0;

        /* The host changed since the plan: B is on vfio-pci, the plan unbinds e1000e. */
        bind_link(f, B, "vfio-pci");
        act(&b, 1, PLAN_ACTION_SET_OVERRIDE, B, "vfio-pci", 0, 0);
        act(&b, 1, PLAN_ACTION_UNBIND, B, "e1000e", 0, 0);
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        e = device_event(f, job, B);
        assert_int_equal(e->error, -ESTALE);
        assert_driver(f, B, "vfio-pci");
        assert_override_clear(f, B);

        /* Malformed plans never reach sysfs. */
        act(&b, 1, PLAN_ACTION_SET_OVERRIDE, A, "../../x", 0, 0);
        assert_int_equal(executor_submit(f->executor, &b.plan, NULL), -EINVAL);
        plan_builder_done(&b);
        act(&b, 1, PLAN_ACTION_PROBE, "0000:01:00.0/..", NULL, 0, 0); /* 15 bytes: fits the field */
        assert_int_equal(executor_submit(f->executor, &b.plan, NULL), -EINVAL);
        plan_builder_done(&b);
        act(&b, 2, PLAN_ACTION_PROBE, A, NULL, 0, 0);
        act(&b, 1, PLAN_ACTION_PROBE, A, NULL, 0, 0);
        assert_int_equal(executor_submit(f->executor, &b.plan, NULL), -EINVAL);
        plan_builder_done(&b);
}

/* vfio-pci not registered: the executor loads its module, waits for the driver, then binds. */
static void test_load_driver(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        const Event *e;
        uint64_t job;

        rm_rf_rel(f, "bus/pci/drivers/vfio-pci");
        add_device(f, A, "e1000e", "e1000e");
        f->options.load_driver = fake_load_driver;
        f->options.load_driver_userdata = f;
        f->load_registers = true;
        start(f);

        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        job = submit(f, &b);
        e = wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(e->n_converged, 1);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_CONVERGED);
        assert_null(e->reason);

        /* Loaded once, by driver name, before anything was written or journaled. */
        assert_int_equal(f->n_loads, 1);
        assert_string_equal(f->loaded, "vfio-pci");
        assert_int_equal(f->writes_at_load, 0);
        assert_int_equal(f->journal[0].phase, EXECUTOR_JOURNAL_BEGIN);
        assert_writes(
                f, 0,
                (const char *const[]){ "bus/pci/devices/" A "/driver_override", "vfio-pci",
                                       "bus/pci/drivers/e1000e/unbind", A, "bus/pci/drivers_probe", A,
                                       NULL });
        assert_driver(f, A, "vfio-pci");

        /* Registered now: the next transaction does not load again. */
        bind_actions(&b, 1, A, "vfio-pci", "e1000e");
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(device_event(f, job, A)->state, DEVICE_STATE_CONVERGED);
        assert_int_equal(f->n_loads, 1);
}

/* The load fails, or the driver never registers: failed, nothing written, nothing journaled. */
static void test_load_driver_fails(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        const Event *e;
        uint64_t job;

        rm_rf_rel(f, "bus/pci/drivers/vfio-pci");
        add_device(f, A, "e1000e", "e1000e");
        f->options.load_driver = fake_load_driver;
        f->options.load_driver_userdata = f;
        f->load_errno = ENOENT;
        start(f);

        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        job = submit(f, &b);
        e = wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(e->n_failed, 1);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -ENOENT);
        assert_string_equal(
                e->reason,
                "Failed to load module 'vfio_pci' for driver 'vfio-pci': No such file or directory");
        assert_int_equal(f->n_loads, 1);
        assert_writes(f, 0, (const char *const[]){ NULL });
        assert_int_equal(f->n_journal, 0);
        assert_driver(f, A, "e1000e");

        /* Loaded, but the driver does not appear within the deadline (200 ms here). */
        f->load_errno = 0;
        f->load_registers = false;
        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -ETIMEDOUT);
        assert_contains(e->reason, "module 'vfio_pci' was loaded but driver 'vfio-pci' did not appear");
        assert_int_equal(f->n_loads, 2);
        assert_writes(f, 0, (const char *const[]){ NULL });
        assert_int_equal(f->n_journal, 0);
        assert_driver(f, A, "e1000e");
}

/* Loading disabled (no loader: --no-load-modules, or under umockdev): refused as before. */
static void test_load_driver_disabled(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        const Event *e;
        uint64_t job;

        rm_rf_rel(f, "bus/pci/drivers/vfio-pci");
        add_device(f, A, "e1000e", "e1000e");
        start(f);

        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -ENOENT);
        assert_contains(e->reason, "driver vfio-pci is not loaded");
        assert_contains(e->reason, "module loading is disabled");
        assert_int_equal(f->n_loads, 0);
        assert_writes(f, 0, (const char *const[]){ NULL });
        assert_int_equal(f->n_journal, 0);
}

/* ---- urgent jobs (executor_submit_first()) ------------------------------------------------------ */

/* Wait (on the test's thread, not the loop) until the injected blocking write holds the runner. */
static void wait_blocked(Fixture *f) {
        struct timespec deadline;

        assert_int_equal(clock_gettime(CLOCK_REALTIME, &deadline), 0);
        deadline.tv_sec += 10;
        pthread_mutex_lock(&f->lock);
        while (!f->blocked)
                if (pthread_cond_timedwait(&f->block_cond, &f->lock, &deadline) == ETIMEDOUT)
                        fail_msg("the blocking write was not reached within 10 s");
        pthread_mutex_unlock(&f->lock);
}

static void release_block(Fixture *f) {
        pthread_mutex_lock(&f->lock);
        f->block_released = true;
        (void)pthread_cond_broadcast(&f->block_cond);
        pthread_mutex_unlock(&f->lock);
}

static size_t event_index(Fixture *f, ExecutorEventType type, uint64_t job, const char *address) {
        const Event *e = find_event(f, type, job, address);

        assert_non_null(e);
        return (size_t)(e - f->events);
}

#define BIND_WRITES(addr)                                                                              \
        "bus/pci/devices/" addr "/driver_override", "vfio-pci", "bus/pci/drivers/e1000e/unbind", addr, \
                "bus/pci/drivers_probe", addr

/*
 * A normal job of two transactions (A, then B) runs; while A's first write is held, a second normal job
 * (C) and two urgent jobs (D then E in one, F in the other) are submitted. The urgent jobs run whole,
 * in the order submitted, between A's and B's transactions; the queued normal job after the running one.
 * Every job gets its own JOB_DONE with its own counts.
 */
static void test_urgent_between_transactions(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        uint64_t n1, n2, u1, u2;
        const Event *e;

        add_device(f, A, "e1000e", "e1000e");
        add_device(f, B, "e1000e", "e1000e");
        add_device(f, C, "e1000e", "e1000e");
        add_device(f, D, "e1000e", "e1000e");
        add_device(f, E, "e1000e", "e1000e");
        add_device(f, F, "e1000e", "e1000e");
        f->options.write_timeout_usec = 10 * 1000 * 1000; /* the held write must not turn stuck */
        f->block_suffix = "/" A "/driver_override";
        f->block_value = "vfio-pci";
        start(f);

        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        bind_actions(&b, 2, B, "e1000e", "vfio-pci");
        n1 = submit(f, &b);
        wait_blocked(f);

        bind_actions(&b, 1, C, "e1000e", "vfio-pci");
        n2 = submit(f, &b);
        bind_actions(&b, 1, D, "e1000e", "vfio-pci");
        bind_actions(&b, 2, E, "e1000e", "vfio-pci");
        u1 = submit_first(f, &b);
        bind_actions(&b, 1, F, "e1000e", "vfio-pci");
        u2 = submit_first(f, &b);
        assert_true(executor_is_busy(f->executor));
        release_block(f);

        wait_event(f, EXECUTOR_EVENT_JOB_DONE, n2, NULL);
        assert_writes(
                f, 0,
                (const char *const[]){ BIND_WRITES(A), BIND_WRITES(D), BIND_WRITES(E), BIND_WRITES(F),
                                       BIND_WRITES(B), BIND_WRITES(C), NULL });
        for (const char *const *a = (const char *const[]){ A, B, C, D, E, F, NULL }; *a; a++)
                assert_driver(f, *a, "vfio-pci");

        /* Each device reported under its own job; the jobs done in the order they ran. */
        assert_int_equal(device_event(f, n1, A)->state, DEVICE_STATE_CONVERGED);
        assert_int_equal(device_event(f, n1, B)->state, DEVICE_STATE_CONVERGED);
        assert_int_equal(device_event(f, n2, C)->state, DEVICE_STATE_CONVERGED);
        assert_int_equal(device_event(f, u1, D)->state, DEVICE_STATE_CONVERGED);
        assert_int_equal(device_event(f, u1, E)->state, DEVICE_STATE_CONVERGED);
        assert_int_equal(device_event(f, u2, F)->state, DEVICE_STATE_CONVERGED);
        assert_null(find_event(f, EXECUTOR_EVENT_DEVICE, u1, A));
        assert_null(find_event(f, EXECUTOR_EVENT_DEVICE, n1, D));
        assert_true(
                event_index(f, EXECUTOR_EVENT_JOB_DONE, u1, NULL) <
                event_index(f, EXECUTOR_EVENT_JOB_DONE, u2, NULL));
        assert_true(
                event_index(f, EXECUTOR_EVENT_JOB_DONE, u2, NULL) <
                event_index(f, EXECUTOR_EVENT_JOB_DONE, n1, NULL));
        assert_true(
                event_index(f, EXECUTOR_EVENT_DEVICE, n1, A) <
                event_index(f, EXECUTOR_EVENT_JOB_DONE, u1, NULL));
        assert_true(
                event_index(f, EXECUTOR_EVENT_JOB_DONE, n1, NULL) <
                event_index(f, EXECUTOR_EVENT_JOB_DONE, n2, NULL));
        e = find_event(f, EXECUTOR_EVENT_JOB_DONE, n1, NULL);
        assert_int_equal(e->n_converged, 2);
        e = find_event(f, EXECUTOR_EVENT_JOB_DONE, u1, NULL);
        assert_int_equal(e->n_converged, 2);
        e = find_event(f, EXECUTOR_EVENT_JOB_DONE, u2, NULL);
        assert_int_equal(e->n_converged, 1);
        e = find_event(f, EXECUTOR_EVENT_JOB_DONE, n2, NULL);
        assert_int_equal(e->n_converged, 1);
        for (size_t i = 0; i < f->n_events; i++)
                assert_int_equal(f->events[i].n_failed + f->events[i].n_stuck, 0);
}

/* With nothing running, an urgent job goes before the normal jobs still queued. */
static void test_urgent_before_queued(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        uint64_t n1, n2, u;

        add_device(f, A, "e1000e", "e1000e");
        add_device(f, B, "e1000e", "e1000e");
        add_device(f, C, "e1000e", "e1000e");
        f->options.write_timeout_usec = 10 * 1000 * 1000;
        f->block_suffix = "/" A "/driver_override";
        f->block_value = "vfio-pci";
        start(f);

        /* One transaction: there is no "between" in n1; u still runs before n2. */
        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        n1 = submit(f, &b);
        wait_blocked(f);
        bind_actions(&b, 1, B, "e1000e", "vfio-pci");
        n2 = submit(f, &b);
        bind_actions(&b, 1, C, "e1000e", "vfio-pci");
        u = submit_first(f, &b);
        release_block(f);

        wait_event(f, EXECUTOR_EVENT_JOB_DONE, n2, NULL);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, u, NULL);
        assert_writes(f, 0, (const char *const[]){ BIND_WRITES(A), BIND_WRITES(C), BIND_WRITES(B), NULL });
        assert_true(
                event_index(f, EXECUTOR_EVENT_JOB_DONE, n1, NULL) <
                event_index(f, EXECUTOR_EVENT_JOB_DONE, u, NULL));
        assert_true(
                event_index(f, EXECUTOR_EVENT_JOB_DONE, u, NULL) <
                event_index(f, EXECUTOR_EVENT_JOB_DONE, n2, NULL));
}

/* ---- PLAN_VERIFY_DRIVER_SETTLE ------------------------------------------------------------------- */

/* planner_plan_new_function()'s transaction: SET_OVERRIDE, VERIFY driver-settle. */
static void new_function_actions(PlanBuilder *b, unsigned t, const char *address, const char *to) {
        act(b, t, PLAN_ACTION_SET_OVERRIDE, address, to, 0, 0);
        act(b, t, PLAN_ACTION_VERIFY, address, to, PLAN_VERIFY_DRIVER_SETTLE, 0);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* A new function (A, set up with f->options by the caller) whose kernel first probe binds the override's
 * driver 30 ms after it was written, reported by executor_notify_bind() when |notify|: converged, with
 * driver_override the only write (no drivers_probe). */
static void settle_late_bind(Fixture *f, bool notify) {
        PlanBuilder b = {};
        const Event *e;
        uint64_t job;

        fake_device(f, A)->probe_binds_nothing = true;
        fake_device(f, A)->bind_later_usec = 30 * 1000;
        fake_device(f, A)->bind_later_notify = notify;
        start(f);

        new_function_actions(&b, 1, A, "vfio-pci");
        job = submit(f, &b);
        e = wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(e->n_converged, 1);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_CONVERGED);
        assert_null(e->reason);
        assert_true(f->late.started);
        assert_writes(
                f, 0, (const char *const[]){ "bus/pci/devices/" A "/driver_override", "vfio-pci", NULL });
        assert_driver(f, A, "vfio-pci");
}

/* Found by polling (drivers_probe would come settle_probe_usec into the wait: 1 s here, so that a
 * loaded machine does not turn the late binder's 30 ms into more than that). */
static void test_settle_bound_later(void **state) {
        Fixture *f = *state;

        add_device(f, A, NULL, "e1000e");
        f->options.write_timeout_usec = 5 * 1000 * 1000;
        f->options.settle_usec = 2 * 1000 * 1000;
        f->options.settle_probe_usec = 1000 * 1000;
        settle_late_bind(f, false);

        /* The journal: nothing bound before, the override's driver as the target. */
        assert_int_equal(f->n_journal, 2);
        assert_null(f->journal_devices[0].driver);
        assert_true(f->journal_devices[0].has_target_override);
        assert_string_equal(f->journal_devices[0].target_override, "vfio-pci");
        assert_true(f->journal_devices[0].has_target_driver);
        assert_string_equal(f->journal_devices[0].target_driver, "vfio-pci");
        assert_false(f->journal_devices[0].release);
        assert_int_equal(f->journal[1].outcome, DEVICE_STATE_CONVERGED);
}

/* The "bind" report ends the wait: with the first poll and the drivers_probe 15 s away, only the
 * notify can make the job finish before wait_event()'s 10 s. */
static void test_settle_bind_notified(void **state) {
        Fixture *f = *state;

        add_device(f, A, NULL, "e1000e");
        f->options.write_timeout_usec = 60 * 1000 * 1000ULL;
        f->options.settle_usec = 16 * 1000 * 1000ULL;
        f->options.settle_probe_usec = 15 * 1000 * 1000ULL;
        f->options.settle_poll_usec = 15 * 1000 * 1000ULL;
        settle_late_bind(f, true);
}

/* Never bound within settle_usec (200 ms): drivers_probe 50 ms into the wait and once more at its end,
 * then failed and rolled back. */
static void test_settle_never_bound(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        const Event *e;
        uint64_t job, start_usec, took;

        add_device(f, A, NULL, "e1000e");
        fake_device(f, A)->probe_binds_nothing = true;
        f->options.write_timeout_usec = 5 * 1000 * 1000;
        f->options.settle_usec = 200 * 1000;
        start(f);

        new_function_actions(&b, 1, A, "vfio-pci");
        start_usec = now_usec();
        job = submit(f, &b);
        e = wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        took = now_usec() - start_usec;
        assert_int_equal(e->n_failed, 1);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -ENODEV);
        assert_contains(e->reason, "drivers_probe bound nothing");
        assert_contains(e->reason, "expected vfio-pci");
        assert_contains(e->reason, "rolled back");
        assert_writes(
                f, 0,
                (const char *const[]){ "bus/pci/devices/" A "/driver_override", "vfio-pci",
                                       "bus/pci/drivers_probe", A, "bus/pci/drivers_probe", A,
                                       "bus/pci/devices/" A "/driver_override", "\n", NULL });
        assert_override_clear(f, A);
        assert_driver(f, A, NULL);
        assert_int_equal(f->journal[f->n_journal - 1].outcome, DEVICE_STATE_FAILED);
        /* It waited settle_usec for the kernel's probe, not the 2 s default. */
        if (took < 200 * 1000 || took >= 1800 * 1000)
                fail_msg("the job took %" PRIu64 " ms, expected 200 ms and a little", took / 1000);
}

/* The kernel's first probe bound the host driver before driver_override landed: the verification
 * unbinds it and probes again within the transaction, converged, no rollback. */
static void test_settle_host_driver_first(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        const Event *e;
        uint64_t job;

        add_device(f, A, NULL, "e1000e");
        fake_device(f, A)->probe_before_override = true;
        f->options.write_timeout_usec = 5 * 1000 * 1000;
        f->options.settle_usec = 200 * 1000;
        start(f);

        new_function_actions(&b, 1, A, "vfio-pci");
        job = submit(f, &b);
        e = wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(e->n_converged, 1);
        e = device_event(f, job, A);
        assert_int_equal(e->state, DEVICE_STATE_CONVERGED);
        assert_null(e->reason);
        /* No "\n" to driver_override: nothing was rolled back. */
        assert_writes(
                f, 0,
                (const char *const[]){ "bus/pci/devices/" A "/driver_override", "vfio-pci",
                                       "bus/pci/drivers/e1000e/unbind", A, "bus/pci/drivers_probe", A,
                                       NULL });
        assert_driver(f, A, "vfio-pci");
        assert_int_equal(f->journal[1].outcome, DEVICE_STATE_CONVERGED);
        assert_null(f->journal_devices[0].driver); /* the originals: read before the race */

        /* A plain PLAN_VERIFY_DRIVER in the same situation does not take it from the host driver. */
        add_device(f, B, NULL, "e1000e");
        fake_device(f, B)->probe_before_override = true;
        act(&b, 1, PLAN_ACTION_SET_OVERRIDE, B, "vfio-pci", 0, 0);
        act(&b, 1, PLAN_ACTION_PROBE, B, NULL, 0, 0);
        act(&b, 1, PLAN_ACTION_VERIFY, B, "vfio-pci", PLAN_VERIFY_DRIVER, 0);
        job = submit(f, &b);
        wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        e = device_event(f, job, B);
        assert_int_equal(e->state, DEVICE_STATE_FAILED);
        assert_int_equal(e->error, -ESTALE);
}

/* ---- the journal's targets ---------------------------------------------------------------------- */

static void assert_targets(
        const ExecutorJournalDevice *d, const char *address, bool has_override, const char *override,
        bool has_driver, const char *driver, bool release) {
        assert_string_equal(d->address, address);
        assert_int_equal(d->has_target_override, has_override);
        if (override)
                assert_string_equal(d->target_override, override);
        else
                assert_null(d->target_override);
        assert_int_equal(d->has_target_driver, has_driver);
        if (driver)
                assert_string_equal(d->target_driver, driver);
        else
                assert_null(d->target_driver);
        assert_int_equal(d->release, release);
}

/* What each transaction sets, from its actions: a bind, a release to the host driver, SR-IOV only. */
static void test_journal_targets(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        const Event *e;
        uint64_t job;

        add_device(f, A, "e1000e", "e1000e");
        add_device(f, B, "vfio-pci", "e1000e");
        put(f, "bus/pci/devices/" B "/driver_override", "vfio-pci\n");
        add_pf(f, 2, true);
        start(f);

        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        act(&b, 2, PLAN_ACTION_CLEAR_OVERRIDE, B, NULL, 0, 0);
        act(&b, 2, PLAN_ACTION_UNBIND, B, "vfio-pci", 0, 0);
        act(&b, 2, PLAN_ACTION_PROBE, B, NULL, 0, 0);
        act(&b, 2, PLAN_ACTION_VERIFY, B, NULL, PLAN_VERIFY_HOST, 0);
        sriov_actions(&b);
        for (size_t i = b.plan.n_actions - 3; i < b.plan.n_actions; i++)
                b.actions[i].transaction = 3;
        b.plan.n_transactions = 3;
        job = submit(f, &b);
        e = wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(e->n_converged, 3);
        assert_driver(f, A, "vfio-pci");
        assert_driver(f, B, "e1000e");

        /* BEGIN and END of each transaction carry the same targets. */
        assert_int_equal(f->n_journal, 6);
        for (size_t i = 0; i < 6; i += 2) {
                assert_int_equal(f->journal[i].phase, EXECUTOR_JOURNAL_BEGIN);
                assert_int_equal(f->journal[i + 1].phase, EXECUTOR_JOURNAL_END);
                assert_int_equal(f->journal[i + 1].outcome, DEVICE_STATE_CONVERGED);
                assert_int_equal(f->journal[i].transaction, i / 2 + 1);
        }
        for (size_t i = 0; i < 2; i++) {
                assert_targets(&f->journal_devices[i], A, true, "vfio-pci", true, "vfio-pci", false);
                assert_targets(&f->journal_devices[2 + i], B, true, NULL, true, NULL, true);
                assert_string_equal(f->journal_devices[2 + i].driver_override, "vfio-pci"); /* original */
                assert_targets(&f->journal_devices[4 + i], PF, false, NULL, false, NULL, false);
                assert_true(f->journal_devices[4 + i].sriov);
        }
}

/* ---- lanes: transactions side by side ------------------------------------------------------------ */

/* Index of the first write to a path ending in |suffix| (SIZE_MAX: none). */
static size_t write_index(Fixture *f, const char *suffix) {
        size_t i, r = SIZE_MAX;

        pthread_mutex_lock(&f->lock);
        for (i = 0; i < f->n_writes; i++)
                if (ends_with(f->writes[i].path, suffix)) {
                        r = i;
                        break;
                }
        pthread_mutex_unlock(&f->lock);
        return r;
}

/* Index of the last write to a path ending in |suffix|. */
static size_t last_write_index(Fixture *f, const char *suffix) {
        size_t r = SIZE_MAX;

        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < f->n_writes; i++)
                if (ends_with(f->writes[i].path, suffix))
                        r = i;
        pthread_mutex_unlock(&f->lock);
        assert_true(r != SIZE_MAX);
        return r;
}

static void link_rel(Fixture *f, const char *rel, const char *target) {
        char p[512];

        path_printf(p, sizeof(p), "%s/%s", f->sys, rel);
        assert_int_equal(symlink(target, p), 0);
}

static void set_group(Fixture *f, const char *address, unsigned group) {
        char rel[256], target[64];

        path_printf(rel, sizeof(rel), "bus/pci/devices/%s/iommu_group", address);
        path_printf(target, sizeof(target), "../../../../kernel/iommu_groups/%u", group);
        link_rel(f, rel, target);
}

/*
 * Independent transactions overlap: while A's first write is held, the transaction of B (another
 * function, another group) runs to the end. The job is done only after both.
 */
static void test_parallel_independent(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        uint64_t job;
        const Event *e;

        add_device(f, A, "e1000e", "e1000e");
        add_device(f, B, "e1000e", "e1000e");
        set_group(f, A, 1);
        set_group(f, B, 2);
        f->options.max_parallel = 4;
        f->options.write_timeout_usec = 10 * 1000 * 1000;
        f->block_suffix = "/" A "/driver_override";
        f->block_value = "vfio-pci";
        start(f);

        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        bind_actions(&b, 2, B, "e1000e", "vfio-pci");
        job = submit(f, &b);
        wait_blocked(f);

        /* B converges while A is held. */
        assert_int_equal(wait_event(f, EXECUTOR_EVENT_DEVICE, job, B)->state, DEVICE_STATE_CONVERGED);
        assert_driver(f, B, "vfio-pci");
        assert_driver(f, A, "e1000e");
        assert_null(find_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL));
        assert_true(executor_is_busy(f->executor));

        release_block(f);
        e = wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL);
        assert_int_equal(e->n_converged, 2);
        assert_int_equal(e->n_failed + e->n_stuck, 0);
        assert_driver(f, A, "vfio-pci");
        assert_true(
                event_index(f, EXECUTOR_EVENT_DEVICE, job, A) <
                event_index(f, EXECUTOR_EVENT_JOB_DONE, job, NULL));
        /* Each transaction got its own journal records, BEGIN and END (the hook checks the slot). */
        assert_int_equal(f->n_journal, 4);
        assert_false(executor_is_busy(f->executor));
}

/*
 * Conflicting transactions keep the plan's order: B shares A's IOMMU group and waits for A while
 * the held write lasts; D, in a group of its own, goes on meanwhile.
 */
static void test_parallel_same_group_waits(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        uint64_t job;

        add_device(f, A, "e1000e", "e1000e");
        add_device(f, B, "e1000e", "e1000e");
        add_device(f, D, "e1000e", "e1000e");
        set_group(f, A, 5);
        set_group(f, B, 5);
        set_group(f, D, 6);
        f->options.max_parallel = 4;
        f->options.write_timeout_usec = 10 * 1000 * 1000;
        f->block_suffix = "/" A "/driver_override";
        f->block_value = "vfio-pci";
        start(f);

        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        bind_actions(&b, 2, B, "e1000e", "vfio-pci");
        bind_actions(&b, 3, D, "e1000e", "vfio-pci");
        job = submit(f, &b);
        wait_blocked(f);

        assert_int_equal(wait_event(f, EXECUTOR_EVENT_DEVICE, job, D)->state, DEVICE_STATE_CONVERGED);
        assert_true(write_index(f, "/" B "/driver_override") == SIZE_MAX);
        assert_driver(f, B, "e1000e");

        release_block(f);
        assert_int_equal(wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL)->n_converged, 3);
        assert_true(last_write_index(f, "/drivers_probe") > write_index(f, "/" B "/driver_override"));
        assert_true(write_index(f, "/" B "/driver_override") > write_index(f, "/" A "/driver_override"));
        assert_true(
                event_index(f, EXECUTOR_EVENT_DEVICE, job, A) <
                event_index(f, EXECUTOR_EVENT_DEVICE, job, B));
        assert_driver(f, A, "vfio-pci");
        assert_driver(f, B, "vfio-pci");
        assert_driver(f, D, "vfio-pci");
}

/*
 * A VF's transaction waits for its PF's (the physfn link): while the PF's sriov_numvfs write is held,
 * the VF is not touched, and D, unrelated, is.
 */
static void test_parallel_vf_waits_for_pf(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        uint64_t job;

        add_pf(f, 0, true);
        add_device(f, C, "e1000e", "e1000e");
        add_device(f, D, "e1000e", "e1000e");
        set_group(f, PF, 1);
        set_group(f, C, 2);
        set_group(f, D, 3);
        link_rel(f, "bus/pci/devices/" C "/physfn", "../" PF);
        f->options.max_parallel = 4;
        f->options.write_timeout_usec = 10 * 1000 * 1000;
        f->block_suffix = "/" PF "/sriov_numvfs";
        f->block_value = "4";
        start(f);

        act(&b, 1, PLAN_ACTION_SET_SRIOV_AUTOPROBE, PF, NULL, 0, 0);
        act(&b, 1, PLAN_ACTION_SET_NUMVFS, PF, NULL, 0, 4);
        bind_actions(&b, 2, C, "e1000e", "vfio-pci");
        bind_actions(&b, 3, D, "e1000e", "vfio-pci");
        job = submit(f, &b);
        wait_blocked(f);

        assert_int_equal(wait_event(f, EXECUTOR_EVENT_DEVICE, job, D)->state, DEVICE_STATE_CONVERGED);
        assert_true(write_index(f, "/" C "/driver_override") == SIZE_MAX);

        release_block(f);
        assert_int_equal(wait_event(f, EXECUTOR_EVENT_JOB_DONE, job, NULL)->n_converged, 3);
        assert_true(write_index(f, "/" C "/driver_override") > write_index(f, "/" PF "/sriov_numvfs"));
        assert_driver(f, C, "vfio-pci");
}

/* With lanes free, an urgent job runs beside a held transaction of a normal job. */
static void test_parallel_urgent_beside(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        uint64_t n, u;

        add_device(f, A, "e1000e", "e1000e");
        add_device(f, E, NULL, "e1000e");
        f->options.max_parallel = 2;
        f->options.write_timeout_usec = 10 * 1000 * 1000;
        f->block_suffix = "/" A "/driver_override";
        f->block_value = "vfio-pci";
        start(f);

        bind_actions(&b, 1, A, "e1000e", "vfio-pci");
        n = submit(f, &b);
        wait_blocked(f);
        new_function_actions(&b, 1, E, "vfio-pci");
        u = submit_first(f, &b);
        /* E's job comes through while A's write is held. */
        assert_int_equal(wait_event(f, EXECUTOR_EVENT_JOB_DONE, u, NULL)->n_converged, 1);
        assert_null(find_event(f, EXECUTOR_EVENT_JOB_DONE, n, NULL));
        release_block(f);
        assert_int_equal(wait_event(f, EXECUTOR_EVENT_JOB_DONE, n, NULL)->n_converged, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_write_helper, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_bind, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_verify_failure_rolls_back, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_stuck, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_write_error, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_close_error, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_sriov, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_sriov_ebusy_rolls_back, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_refusals, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_load_driver, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_load_driver_fails, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_load_driver_disabled, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_urgent_between_transactions, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_urgent_before_queued, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_settle_bound_later, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_settle_bind_notified, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_settle_never_bound, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_settle_host_driver_first, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_journal_targets, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_parallel_independent, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_parallel_same_group_waits, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_parallel_vf_waits_for_pf, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(
                        test_parallel_urgent_beside, fixture_setup, fixture_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
