/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The executor's mdev and vendor vGPU transactions (issue 14) on a plain directory tree, with a fake
 * kernel in the write hook, as test-executor.c does for functions: a write of a UUID to a type's
 * "create" makes /sys/bus/mdev/devices/<uuid> with its mdev_type link (at once, or from a thread a
 * little later: the late link of 6.1), a "1" to an mdev's "remove" takes it away, and NVIDIA's
 * current_vgpu_type keeps what is written. And the ownership journal (agent/ownership.c) that records
 * a created instance before its create write.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-event.h>

#include "executor.h"
#include "macro.h"
#include "mdev-owned.h"
#include "names.h"
#include "ownership.h"
#include "strv.h"
#include "sysfs-write.h"
#include "sysfs.h"

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define VF "0000:41:00.4"

typedef struct Fixture {
        char root[64], sys[128], state[128];
        sd_event *event;
        Executor *executor;
        ExecutorOptions options;
        Ownership *ownership;

        pthread_mutex_t lock;
        char *writes[32]; /* "REL=VALUE" */
        size_t n_writes;
        const char *fail_suffix; /* a write to a path ending so fails with EIO (after it acted) */
        const char *fail_value; /* ...of this value only (NULL: any) */
        const char *wrong_type; /* the fake kernel creates this type instead */
        const char *enable_stores; /* a write to an mdev's "enable" stores this instead (NULL: the value) */
        const char *refuse_type; /* a create of this type fails with ENOSPC and creates nothing */
        uint64_t late_link_usec; /* the mdev_type link appears this long after the create */
        bool owned_at_create; /* the ownership record existed when the create was written */
        pthread_t late;
        bool late_started;
        char late_dir[512], late_target[512];

        struct {
                ExecutorEventType type;
                char *address, *uuid, *reason;
                DeviceState state;
        } events[16];
        size_t n_events;
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

static void mkdir_p(Fixture *f, const char *rel) {
        char cmd[600];
        path_printf(cmd, sizeof(cmd), "mkdir -p '%s/%s'", f->sys, rel);
        assert_int_equal(system(cmd), 0);
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
        char dir[512], *s = NULL, *slash;

        path_printf(dir, sizeof(dir), "%s/%s", f->sys, rel);
        slash = strrchr(dir, '/');
        *slash = '\0';
        return sysfs_read_string(dir, slash + 1, &s) < 0 ? NULL : s;
}

static bool exists(Fixture *f, const char *rel) {
        char p[512];
        struct stat st;

        path_printf(p, sizeof(p), "%s/%s", f->sys, rel);
        return lstat(p, &st) >= 0;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

static void *late_link_main(void *userdata) {
        Fixture *f = userdata;

        (void)usleep(f->late_link_usec);
        assert_int_equal(symlink(f->late_target, f->late_dir), 0);
        return NULL;
}

/* The mdev core's reaction: create_store() adds the device under its parent and the bus link. */
static void fake_kernel(Fixture *f, const char *path, const char *value) {
        if (ends_with(path, "/" SYSFS_ATTR_MDEV_CREATE)) {
                /* .../class/mdev_bus/<parent>/mdev_supported_types/<type>/create */
                char parent[64], type[64], rel[512], link[512], target[512];
                const char *p = strstr(path, "/class/mdev_bus/") + strlen("/class/mdev_bus/");
                assert_int_equal(sscanf(p, "%63[^/]/mdev_supported_types/%63[^/]/create", parent, type), 2);
                if (f->wrong_type)
                        snprintf(type, sizeof(type), "%s", f->wrong_type);
                path_printf(rel, sizeof(rel), "devices/%s/%s", parent, value);
                mkdir_p(f, rel);
                path_printf(rel, sizeof(rel), "devices/%s/%s/remove", parent, value);
                put(f, rel, "");
                /* a vendor attribute of the new device */
                path_printf(rel, sizeof(rel), "devices/%s/%s/enable", parent, value);
                put(f, rel, "0\n");
                path_printf(link, sizeof(link), "%s/bus/mdev/devices/%s", f->sys, value);
                path_printf(target, sizeof(target), "../../../devices/%s/%s", parent, value);
                assert_int_equal(symlink(target, link), 0);
                path_printf(link, sizeof(link), "%s/devices/%s/%s/mdev_type", f->sys, parent, value);
                path_printf(target, sizeof(target), "../mdev_supported_types/%s", type);
                if (f->late_link_usec > 0) {
                        snprintf(f->late_dir, sizeof(f->late_dir), "%s", link);
                        snprintf(f->late_target, sizeof(f->late_target), "%s", target);
                        assert_int_equal(pthread_create(&f->late, NULL, late_link_main, f), 0);
                        f->late_started = true;
                } else
                        assert_int_equal(symlink(target, link), 0);
        } else if (ends_with(path, "/enable") && f->enable_stores) {
                /* A driver that clamps or ignores a value; what it shows is what it took. */
                FILE *file = fopen(path, "we");
                assert_non_null(file);
                assert_true(fputs(f->enable_stores, file) >= 0);
                assert_int_equal(fclose(file), 0);
        } else if (ends_with(path, "/" SYSFS_ATTR_MDEV_REMOVE) && streq(value, "1")) {
                char dir[512], cmd[600], link[512];
                ssize_t n;

                /* path: .../bus/mdev/devices/<uuid>/remove */
                snprintf(dir, sizeof(dir), "%.*s", (int)(strlen(path) - strlen("/remove")), path);
                n = readlink(dir, link, sizeof(link) - 1);
                assert_true(n > 0);
                link[n] = '\0';
                path_printf(cmd, sizeof(cmd), "rm -rf '%s/bus/mdev/devices/%s'", f->sys, link);
                assert_int_equal(system(cmd), 0);
                assert_int_equal(unlink(dir), 0);
        }
}

static int fake_write(const char *path, const char *value, char **ret_message, void *userdata) {
        Fixture *f = userdata;
        const char *rel = path + strlen(f->sys) + 1;
        char *w;
        int r;

        if (ends_with(path, "/" SYSFS_ATTR_MDEV_CREATE) && f->ownership) {
                _cleanup_strv_free_ char **owned = NULL;
                assert_int_equal(ownership_list_owned_mdevs(f->ownership, false, &owned), 0);
                f->owned_at_create = strv_contains(owned, value);
        }
        if (f->refuse_type && ends_with(path, "/" SYSFS_ATTR_MDEV_CREATE) && strstr(path, f->refuse_type)) {
                /* available_instances 0: create_store() fails before it makes anything */
                r = -ENOSPC;
                assert_true(asprintf(ret_message, "injected ENOSPC on %s", path) > 0);
        } else
                r = sysfs_write(path, value, ret_message);
        if (r >= 0)
                fake_kernel(f, path, value);
        if (r >= 0 && f->fail_suffix && ends_with(path, f->fail_suffix) &&
            (!f->fail_value || streq(value, f->fail_value))) {
                r = -EIO;
                assert_true(asprintf(ret_message, "injected EIO on %s", path) > 0);
        }
        assert_true(asprintf(&w, "%s=%s", rel, value) > 0);
        pthread_mutex_lock(&f->lock);
        assert_true(f->n_writes < ELEMENTSOF(f->writes));
        f->writes[f->n_writes++] = w;
        pthread_mutex_unlock(&f->lock);
        return r;
}

static void on_event(Executor *e, const ExecutorEvent *ev, void *userdata) {
        Fixture *f = userdata;

        assert_true(f->n_events < ELEMENTSOF(f->events));
        f->events[f->n_events].type = ev->type;
        f->events[f->n_events].state = ev->state;
        f->events[f->n_events].address = ev->address ? strdup(ev->address) : NULL;
        f->events[f->n_events].uuid = ev->uuid ? strdup(ev->uuid) : NULL;
        f->events[f->n_events].reason = ev->reason ? strdup(ev->reason) : NULL;
        f->n_events++;
}

/* A parent "mtty" (not PCI) with type mtty-2, and a VF with NVIDIA's nvidia/ directory. */
static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        char link[512];

        assert_non_null(f);
        strcpy(f->root, "/tmp/test-executor-mdev-XXXXXX");
        assert_non_null(mkdtemp(f->root));
        path_printf(f->sys, sizeof(f->sys), "%s/sys", f->root);
        path_printf(f->state, sizeof(f->state), "%s/state", f->root);
        assert_int_equal(mkdir(f->state, 0755), 0);
        mkdir_p(f, "devices/mtty/mdev_supported_types/mtty-2");
        put(f, "devices/mtty/mdev_supported_types/mtty-2/create", "");
        mkdir_p(f, "class/mdev_bus");
        mkdir_p(f, "bus/mdev/devices");
        path_printf(link, sizeof(link), "%s/class/mdev_bus/mtty", f->sys);
        assert_int_equal(symlink("../../devices/mtty", link), 0);
        mkdir_p(f, "bus/pci/devices/" VF "/nvidia");
        put(f, "bus/pci/devices/" VF "/nvidia/current_vgpu_type", "0\n");
        (void)pthread_mutex_init(&f->lock, NULL);
        assert_int_equal(ownership_new(f->state, &f->ownership), 0);
        assert_true(ownership_mdevs_usable(f->ownership));

        assert_int_equal(sd_event_new(&f->event), 0);
        f->options = (ExecutorOptions){
                .sysfs_root = f->root,
                .write_timeout_usec = 2 * 1000 * 1000,
                .settle_usec = 1000 * 1000,
                .max_parallel = 1,
                .journal = ownership_journal,
                .journal_userdata = f->ownership,
                .write = fake_write,
                .write_userdata = f,
        };
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        executor_free(f->executor);
        sd_event_unref(f->event);
        if (f->late_started)
                assert_int_equal(pthread_join(f->late, NULL), 0);
        ownership_free(f->ownership);
        for (size_t i = 0; i < f->n_writes; i++)
                free(f->writes[i]);
        for (size_t i = 0; i < f->n_events; i++) {
                free(f->events[i].address);
                free(f->events[i].uuid);
                free(f->events[i].reason);
        }
        (void)pthread_mutex_destroy(&f->lock);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* ---- plans ---------------------------------------------------------------------------------- */

typedef struct PlanBuilder {
        Plan plan;
        PlanAction actions[8];
} PlanBuilder;

static PlanAction *act(PlanBuilder *b, unsigned t, PlanActionType type, const char *uuid) {
        PlanAction *a = &b->actions[b->plan.n_actions++];

        *a = (PlanAction){ .type = type, .transaction = t };
        snprintf(a->uuid, sizeof(a->uuid), "%s", strempty(uuid));
        b->plan.actions = b->actions;
        if (t > b->plan.n_transactions)
                b->plan.n_transactions = t;
        return a;
}

static void create(PlanBuilder *b, unsigned t, const char *uuid) {
        PlanAction *a = act(b, t, PLAN_ACTION_MDEV_CREATE, uuid);
        a->parent = strdup("mtty");
        a->mdev_type = strdup("mtty-2");
}

static void attr(PlanBuilder *b, unsigned t, const char *uuid, const char *name, const char *value) {
        PlanAction *a = act(b, t, PLAN_ACTION_MDEV_SET_ATTR, uuid);
        a->parent = strdup("mtty");
        a->attr_name = strdup(name);
        a->attr_value = strdup(value);
}

static void vgpu(PlanBuilder *b, unsigned t, uint32_t type) {
        PlanAction *a = act(b, t, PLAN_ACTION_SET_VGPU_TYPE, NULL);
        snprintf(a->address, sizeof(a->address), "%s", VF);
        a->value = type;
}

static void plan_builder_done(PlanBuilder *b) {
        for (size_t i = 0; i < b->plan.n_actions; i++) {
                free(b->actions[i].parent);
                free(b->actions[i].mdev_type);
                free(b->actions[i].attr_name);
                free(b->actions[i].attr_value);
        }
        b->plan.n_actions = 0;
}

static int on_hang(sd_event_source *s, uint64_t usec, void *userdata) {
        fail_msg("no executor event within 10 s");
        return 0;
}

/* Submit, run the loop until the job is done; the job's MDEV events are then in f->events. */
static void run(Fixture *f, PlanBuilder *b) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *hang = NULL;
        uint64_t job = 0;
        bool done = false;

        for (size_t i = 0; i < f->n_events; i++) {
                free(f->events[i].address);
                free(f->events[i].uuid);
                free(f->events[i].reason);
        }
        f->n_events = 0;
        if (!f->executor)
                assert_int_equal(executor_new(f->event, &f->options, on_event, f, &f->executor), 0);
        assert_int_equal(executor_submit(f->executor, &b->plan, &job), 0);
        plan_builder_done(b);
        assert_int_equal(
                sd_event_add_time_relative(
                        f->event, &hang, CLOCK_MONOTONIC, 10 * 1000 * 1000, 0, on_hang, NULL),
                0);
        while (!done) {
                assert_true(sd_event_run(f->event, UINT64_MAX) >= 0);
                for (size_t i = 0; i < f->n_events; i++)
                        done = done || f->events[i].type == EXECUTOR_EVENT_JOB_DONE;
        }
}

static void assert_writes(Fixture *f, const char *const *expected) {
        size_t n = 0;
        for (; expected[n]; n++) {
                if (n >= f->n_writes)
                        fail_msg("write %zu missing: %s", n, expected[n]);
                if (!streq(f->writes[n], expected[n]))
                        fail_msg("write %zu: got %s, expected %s", n, f->writes[n], expected[n]);
        }
        if (n != f->n_writes)
                fail_msg("%zu writes, expected %zu; extra: %s", f->n_writes, n, f->writes[n]);
}

static bool owned(Fixture *f, bool vgpu_key, const char *key) {
        _cleanup_strv_free_ char **l = NULL;
        assert_int_equal(ownership_list_owned_mdevs(f->ownership, vgpu_key, &l), 0);
        return strv_contains(l, key);
}

/* ---- tests ------------------------------------------------------------------------------------ */

/* Create with an attribute, verified by the mdev_type link; recorded as owned before the create. */
static void test_create(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};

        create(&b, 1, U1);
        attr(&b, 1, U1, "enable", "1");
        run(f, &b);
        assert_writes(
                f,
                (const char *const[]){ "class/mdev_bus/mtty/mdev_supported_types/mtty-2/create=" U1,
                                       "bus/mdev/devices/" U1 "/enable=1", NULL });
        assert_int_equal(f->events[0].type, EXECUTOR_EVENT_MDEV);
        assert_int_equal(f->events[0].state, DEVICE_STATE_CONVERGED);
        assert_string_equal(f->events[0].uuid, U1);
        assert_string_equal(f->events[0].address, "mtty");
        assert_true(f->owned_at_create);
        assert_true(owned(f, false, U1));
        _cleanup_free_ char *v = get(f, "bus/mdev/devices/" U1 "/enable");
        assert_string_equal(v, "1");

        /* Survives a restart of the records. */
        ownership_free(f->ownership);
        assert_int_equal(ownership_new(f->state, &f->ownership), 0);
        assert_true(owned(f, false, U1));
}

/* The mdev_type link appears after the create returned: the verification waits for it. */
static void test_create_late_link(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};

        f->late_link_usec = 50 * 1000;
        create(&b, 1, U1);
        run(f, &b);
        assert_int_equal(f->events[0].state, DEVICE_STATE_CONVERGED);
        assert_true(exists(f, "bus/mdev/devices/" U1 "/mdev_type"));
}

/* The kernel made another type: removed again, reported, nothing else touched. */
static void test_create_wrong_type_rolls_back(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};

        f->wrong_type = "mtty-1";
        create(&b, 1, U1);
        attr(&b, 1, U1, "enable", "1");
        run(f, &b);
        assert_writes(
                f,
                (const char *const[]){ "class/mdev_bus/mtty/mdev_supported_types/mtty-2/create=" U1,
                                       "bus/mdev/devices/" U1 "/remove=1", NULL });
        assert_int_equal(f->events[0].state, DEVICE_STATE_FAILED);
        assert_string_equal(
                f->events[0].reason,
                "mdev " U1 " was created with type mtty-1, expected mtty-2; rolled back");
        assert_false(exists(f, "bus/mdev/devices/" U1));
}

/* An attribute write fails: the mdev this transaction created is removed; one that existed is not. */
static void test_attr_failure_rolls_back(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};

        f->fail_suffix = "/enable";
        create(&b, 1, U1);
        attr(&b, 1, U1, "enable", "1");
        attr(&b, 1, U1, "never", "1");
        run(f, &b);
        assert_writes(
                f,
                (const char *const[]){ "class/mdev_bus/mtty/mdev_supported_types/mtty-2/create=" U1,
                                       "bus/mdev/devices/" U1 "/enable=1",
                                       "bus/mdev/devices/" U1 "/remove=1", NULL });
        assert_int_equal(f->events[0].state, DEVICE_STATE_FAILED);
        assert_false(exists(f, "bus/mdev/devices/" U1));

        /* Existing instance (U2, made directly): an attribute failure leaves it alone. */
        f->fail_suffix = NULL;
        create(&b, 1, U2);
        run(f, &b);
        f->fail_suffix = "/enable";
        attr(&b, 1, U2, "enable", "1");
        run(f, &b);
        assert_true(exists(f, "bus/mdev/devices/" U2));
        assert_int_equal(f->events[0].state, DEVICE_STATE_FAILED);
        assert_string_equal(f->writes[f->n_writes - 1], "bus/mdev/devices/" U2 "/enable=1");
}

/* An attribute is read back: a value the driver shows differently fails the step, naming the attribute,
 * the value written and the value read, and the instance just created is removed. A trailing newline
 * in what it shows is no difference. */
static void test_attr_read_back(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};

        f->enable_stores = "1\n";
        create(&b, 1, U1);
        attr(&b, 1, U1, "enable", "1");
        run(f, &b);
        assert_int_equal(f->events[0].state, DEVICE_STATE_CONVERGED);
        assert_true(exists(f, "bus/mdev/devices/" U1));

        f->enable_stores = "0\n";
        create(&b, 1, U2);
        attr(&b, 1, U2, "enable", "1");
        attr(&b, 1, U2, "never", "1");
        run(f, &b);
        assert_writes(
                f,
                (const char *const[]){ "class/mdev_bus/mtty/mdev_supported_types/mtty-2/create=" U1,
                                       "bus/mdev/devices/" U1 "/enable=1",
                                       "class/mdev_bus/mtty/mdev_supported_types/mtty-2/create=" U2,
                                       "bus/mdev/devices/" U2 "/enable=1",
                                       "bus/mdev/devices/" U2 "/remove=1", NULL });
        assert_int_equal(f->events[0].type, EXECUTOR_EVENT_MDEV);
        assert_int_equal(f->events[0].state, DEVICE_STATE_FAILED);
        assert_string_equal(
                f->events[0].reason,
                "Attribute enable of mdev " U2 ": wrote '1', but it reads back '0'; rolled back");
        assert_false(exists(f, "bus/mdev/devices/" U2));
        assert_true(exists(f, "bus/mdev/devices/" U1));
}

/* Remove: verified gone, and forgotten by the records; an existing UUID is never created twice. */
static void test_remove(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};

        create(&b, 1, U1);
        run(f, &b);
        assert_true(owned(f, false, U1));
        create(&b, 1, U1);
        run(f, &b);
        assert_int_equal(f->events[0].state, DEVICE_STATE_FAILED);
        assert_non_null(strstr(f->events[0].reason, "exists already"));
        assert_true(exists(f, "bus/mdev/devices/" U1)); /* not removed by that rollback */
        act(&b, 1, PLAN_ACTION_MDEV_REMOVE, U1)->parent = strdup("mtty");
        run(f, &b);
        assert_int_equal(f->events[0].state, DEVICE_STATE_CONVERGED);
        assert_false(exists(f, "bus/mdev/devices/" U1));
        assert_false(owned(f, false, U1));
}

/* A type change (remove, create again with the same UUID) whose create fails: the old instance is
 * created again with its old type and the attribute values it had, and the failure is reported. */
static void test_type_change_failure_restores_old(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        PlanAction *a;

        mkdir_p(f, "devices/mtty/mdev_supported_types/mtty-1");
        put(f, "devices/mtty/mdev_supported_types/mtty-1/create", "");
        a = act(&b, 1, PLAN_ACTION_MDEV_CREATE, U1);
        a->parent = strdup("mtty");
        a->mdev_type = strdup("mtty-1");
        attr(&b, 1, U1, "enable", "1");
        run(f, &b);
        assert_int_equal(f->events[0].state, DEVICE_STATE_CONVERGED);

        f->refuse_type = "/mtty-2/";
        a = act(&b, 1, PLAN_ACTION_MDEV_REMOVE, U1);
        a->parent = strdup("mtty");
        a->mdev_type = strdup("mtty-1");
        create(&b, 1, U1);
        attr(&b, 1, U1, "enable", "0");
        run(f, &b);
        assert_writes(
                f,
                (const char *const[]){ "class/mdev_bus/mtty/mdev_supported_types/mtty-1/create=" U1,
                                       "bus/mdev/devices/" U1 "/enable=1",
                                       "bus/mdev/devices/" U1 "/remove=1",
                                       "class/mdev_bus/mtty/mdev_supported_types/mtty-2/create=" U1,
                                       "class/mdev_bus/mtty/mdev_supported_types/mtty-1/create=" U1,
                                       "bus/mdev/devices/" U1 "/enable=1", NULL });
        assert_int_equal(f->events[0].state, DEVICE_STATE_FAILED);
        assert_non_null(strstr(f->events[0].reason, "injected ENOSPC"));
        assert_non_null(
                strstr(f->events[0].reason, "; rolled back: the old mdev mtty/mtty-1 created again"));
        char link[512], target[512];
        ssize_t n;
        path_printf(link, sizeof(link), "%s/bus/mdev/devices/" U1 "/mdev_type", f->sys);
        n = readlink(link, target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = '\0';
        assert_string_equal(target, "../mdev_supported_types/mtty-1");
        _cleanup_free_ char *v = get(f, "bus/mdev/devices/" U1 "/enable");
        assert_string_equal(v, "1");
        assert_true(owned(f, false, U1));

        /* The old one cannot come back either (its type refused now too): reported as incomplete. */
        f->refuse_type = "/mtty-";
        a = act(&b, 1, PLAN_ACTION_MDEV_REMOVE, U1);
        a->parent = strdup("mtty");
        a->mdev_type = strdup("mtty-1");
        create(&b, 1, U1);
        run(f, &b);
        assert_int_equal(f->events[0].state, DEVICE_STATE_FAILED);
        assert_non_null(
                strstr(f->events[0].reason,
                       "; rollback incomplete: the old mdev mtty/mtty-1 could not be created again"));
        assert_false(exists(f, "bus/mdev/devices/" U1));
}

/* vGPU: write the type id and read it back; on failure write 0 again. */
static void test_vgpu(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};

        vgpu(&b, 1, 557);
        run(f, &b);
        assert_writes(
                f, (const char *const[]){ "bus/pci/devices/" VF "/nvidia/current_vgpu_type=557", NULL });
        assert_int_equal(f->events[0].state, DEVICE_STATE_CONVERGED);
        assert_string_equal(f->events[0].uuid, "");
        assert_string_equal(f->events[0].address, VF);
        assert_true(owned(f, true, VF));

        /* clear */
        vgpu(&b, 1, 0);
        run(f, &b);
        assert_int_equal(f->events[0].state, DEVICE_STATE_CONVERGED);
        assert_false(owned(f, true, VF));

        /* the driver refuses: rolled back to 0 */
        f->fail_suffix = "/current_vgpu_type";
        f->fail_value = "558";
        vgpu(&b, 1, 558);
        run(f, &b);
        assert_int_equal(f->events[0].state, DEVICE_STATE_FAILED);
        assert_string_equal(f->writes[f->n_writes - 1], "bus/pci/devices/" VF "/nvidia/current_vgpu_type=0");
        _cleanup_free_ char *v = get(f, "bus/pci/devices/" VF "/nvidia/current_vgpu_type");
        assert_string_equal(v, "0");
}

/* Records that cannot be loaded: no mdev is created (the BEGIN refuses), nothing written. */
static void test_unusable_records(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        char path[256];
        FILE *file;

        ownership_free(f->ownership);
        path_printf(path, sizeof(path), "%s/%s", f->state, HOSTDEVD_MDEV_OWNED_FILE);
        file = fopen(path, "we");
        assert_non_null(file);
        fputs("{ broken", file);
        assert_int_equal(fclose(file), 0);
        assert_int_equal(ownership_new(f->state, &f->ownership), 0);
        assert_false(ownership_mdevs_usable(f->ownership));
        f->options.journal_userdata = f->ownership;
        create(&b, 1, U1);
        run(f, &b);
        assert_int_equal(f->n_writes, 0);
        assert_int_equal(f->events[0].state, DEVICE_STATE_FAILED);
        assert_non_null(strstr(f->events[0].reason, "Failed to record the ownership before writing"));
}

/* Malformed mdev actions are refused at submit: their strings become /sys paths. */
static void test_submit_validation(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};
        PlanAction *a;

        assert_int_equal(executor_new(f->event, &f->options, on_event, f, &f->executor), 0);
        a = act(&b, 1, PLAN_ACTION_MDEV_CREATE, U1);
        a->parent = strdup("../mtty");
        a->mdev_type = strdup("mtty-2");
        assert_int_equal(executor_submit(f->executor, &b.plan, NULL), -EINVAL);
        plan_builder_done(&b);
        create(&b, 1, "not-a-uuid");
        assert_int_equal(executor_submit(f->executor, &b.plan, NULL), -EINVAL);
        plan_builder_done(&b);
        attr(&b, 1, U1, "a/b", "1");
        assert_int_equal(executor_submit(f->executor, &b.plan, NULL), -EINVAL);
        plan_builder_done(&b);
        act(&b, 1, PLAN_ACTION_SET_VGPU_TYPE, NULL);
        assert_int_equal(executor_submit(f->executor, &b.plan, NULL), -EINVAL);
        plan_builder_done(&b);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

/*
 * Lanes only for transactions that can run side by side: creates of one parent share its key and
 * take one lane of the four allowed, whatever their number; a vGPU type on a VF (another key) in the
 * same job takes a second. All of them still run, each once, in the plan's order for the parent.
 */
static void test_lanes_by_conflict_key(void **state) {
        Fixture *f = *state;
        PlanBuilder b = {};

        f->options.max_parallel = 4;
        create(&b, 1, U1);
        create(&b, 2, U2);
        run(f, &b);
        assert_int_equal(executor_get_n_lanes(f->executor), 1);
        assert_writes(
                f,
                (const char *const[]){ "class/mdev_bus/mtty/mdev_supported_types/mtty-2/create=" U1,
                                       "class/mdev_bus/mtty/mdev_supported_types/mtty-2/create=" U2, NULL });
        assert_true(owned(f, false, U1));
        assert_true(owned(f, false, U2));

        act(&b, 1, PLAN_ACTION_MDEV_REMOVE, U1)->parent = strdup("mtty");
        vgpu(&b, 2, 17);
        act(&b, 3, PLAN_ACTION_MDEV_REMOVE, U2)->parent = strdup("mtty");
        run(f, &b);
        assert_int_equal(executor_get_n_lanes(f->executor), 2);
        assert_false(exists(f, "bus/mdev/devices/" U1));
        assert_false(exists(f, "bus/mdev/devices/" U2));
        _cleanup_free_ char *v = get(f, "bus/pci/devices/" VF "/nvidia/current_vgpu_type");
        assert_string_equal(v, "17");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_create),
                T(test_create_late_link),
                T(test_create_wrong_type_rolls_back),
                T(test_attr_failure_rolls_back),
                T(test_attr_read_back),
                T(test_remove),
                T(test_type_change_failure_restores_old),
                T(test_vgpu),
                T(test_unusable_records),
                T(test_submit_validation),
                T(test_lanes_by_conflict_key),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
