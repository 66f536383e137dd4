/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Loading the module of a driver a transaction needs, with backoff for modules that keep failing. */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libkmod.h>

#include "log.h"
#include "macro.h"
#include "module-index.h"
#include "module-loader.h"

char *module_loader_module_name(const char *driver) {
        char *name;

        if (!driver)
                return NULL;
        name = strdup(driver);
        if (!name)
                return NULL;
        for (char *p = name; *p; p++)
                if (*p == '-')
                        *p = '_';
        return name;
}

int module_loader_load_driver(const char *driver, char **ret_module, void *userdata) {
        _cleanup_(kmod_ctx_unrefp) struct kmod_ctx *ctx = NULL;
        _cleanup_(kmod_list_unrefp) struct kmod_list *list = NULL;
        _cleanup_free_ char *name = NULL, *found = NULL;
        struct kmod_list *i;
        int r = -ENOENT;

        if (ret_module)
                *ret_module = NULL;
        if (!driver || !*driver)
                return -EINVAL;
        name = module_loader_module_name(driver);
        if (!name)
                return -ENOMEM;

        ctx = kmod_new(module_index_dir(), NULL); /* /lib/modules/$(uname -r), /etc/modprobe.d and friends */
        if (!ctx)
                return -ENOMEM;
        r = kmod_load_resources(ctx);
        if (r < 0) {
                /* Not fatal: kmod falls back to reading the text indexes. */
                log_debug_errno(r, "Failed to load the kmod indexes: %m, going on");
        }

        r = kmod_module_new_from_lookup(ctx, name, &list);
        if (r < 0)
                goto done;
        r = -ENOENT;
        kmod_list_foreach(i, list) {
                struct kmod_module *m = kmod_module_get_module(i);
                int k;

                if (!found) {
                        const char *n = kmod_module_get_name(m);
                        found = n ? strdup(n) : NULL;
                }
                k = kmod_module_probe_insert_module(m, KMOD_PROBE_APPLY_BLACKLIST, NULL, NULL, NULL, NULL);
                if (k == KMOD_PROBE_APPLY_BLACKLIST)
                        k = -EPERM; /* "blacklist <module>" in modprobe.d(5) */
                else if (k == -EEXIST)
                        k = 0;
                if (k < 0)
                        log_debug_errno(
                                k, "Failed to insert module %s for driver %s: %m",
                                strna(kmod_module_get_name(m)), driver);
                else
                        log_info("Loaded module %s for driver %s", strna(kmod_module_get_name(m)), driver);
                kmod_module_unref(m);
                if (k >= 0) {
                        r = 0;
                        break;
                }
                r = k;
        }

done:
        if (ret_module)
                *ret_module = found ? TAKE_PTR(found) : TAKE_PTR(name);
        return r;
}

/* ---- backoff --------------------------------------------------------------------------------------- */

typedef struct ModuleFailure {
        char *name; /* module_loader_module_name(driver): the key */
        char *module; /* the module the failed load named, for messages */
        int error; /* negative errno */
        unsigned failures; /* in a row, >= 1 */
        uint64_t failed_usec;
} ModuleFailure;

struct ModuleLoader {
        ModuleLoaderClockFunc now;
        void *now_userdata;
        ModuleLoaderLoadFunc load;
        void *load_userdata;

        pthread_mutex_t lock; /* protects failures: loads on the executor's lanes, reset on the loop */
        ModuleFailure *failures;
        size_t n_failures;
};

static uint64_t clock_monotonic_usec(void *userdata) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                abort(); /* cannot fail with a valid clock id */
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

int module_loader_new(const ModuleLoaderOptions *options, ModuleLoader **ret) {
        ModuleLoader *l;
        int r;

        assert(ret);

        l = calloc(1, sizeof(ModuleLoader));
        if (!l)
                return -ENOMEM;
        r = -pthread_mutex_init(&l->lock, NULL);
        if (r < 0) {
                free(l);
                return r;
        }
        l->now = options && options->now ? options->now : clock_monotonic_usec;
        l->now_userdata = options ? options->now_userdata : NULL;
        l->load = options && options->load ? options->load : module_loader_load_driver;
        l->load_userdata = options ? options->load_userdata : NULL;
        *ret = l;
        return 0;
}

static void module_failure_done(ModuleFailure *f) {
        free(f->name);
        free(f->module);
}

static void module_loader_clear_locked(ModuleLoader *l) {
        for (size_t i = 0; i < l->n_failures; i++)
                module_failure_done(&l->failures[i]);
        l->failures = mfree(l->failures);
        l->n_failures = 0;
}

ModuleLoader *module_loader_free(ModuleLoader *l) {
        if (!l)
                return NULL;
        module_loader_clear_locked(l);
        pthread_mutex_destroy(&l->lock);
        free(l);
        return NULL;
}

void module_loader_reset(ModuleLoader *l) {
        size_t n;

        if (!l)
                return;
        pthread_mutex_lock(&l->lock);
        n = l->n_failures;
        module_loader_clear_locked(l);
        pthread_mutex_unlock(&l->lock);
        if (n > 0)
                log_info("Forgot the failed loads of %zu module(s): the next load of each tries at once", n);
}

/* The wait after |failures| failures in a row: 1 s, 2 s, 4 s, ..., at most 5 min. */
static uint64_t backoff_usec(unsigned failures) {
        uint64_t usec = MODULE_LOADER_BACKOFF_INITIAL_USEC;

        for (unsigned i = 1; i < failures && usec < MODULE_LOADER_BACKOFF_MAX_USEC; i++)
                usec *= 2;
        return usec < MODULE_LOADER_BACKOFF_MAX_USEC ? usec : MODULE_LOADER_BACKOFF_MAX_USEC;
}

static ModuleFailure *find_locked(ModuleLoader *l, const char *name) {
        for (size_t i = 0; i < l->n_failures; i++)
                if (streq(l->failures[i].name, name))
                        return &l->failures[i];
        return NULL;
}

static void forget_locked(ModuleLoader *l, const char *name) {
        ModuleFailure *f = find_locked(l, name);

        if (!f)
                return;
        module_failure_done(f);
        *f = l->failures[--l->n_failures];
}

/* Whether |f| is within its backoff window at |now|; fills *ret (may be NULL) if so. */
static bool in_window(const ModuleFailure *f, uint64_t now, ModuleLoaderBackoff *ret) {
        uint64_t retry = f->failed_usec + backoff_usec(f->failures);

        if (now >= retry)
                return false;
        if (ret)
                *ret = (ModuleLoaderBackoff){
                        .error = f->error,
                        .failures = f->failures,
                        .failed_usec = f->failed_usec,
                        .retry_usec = retry,
                        .remaining_usec = retry - now,
                };
        return true;
}

/* Records a failure of |name|; returns the failures in a row, or 0 when it could not be recorded. */
static unsigned record_locked(
        ModuleLoader *l, const char *name, const char *module, int error, uint64_t now) {
        ModuleFailure *f = find_locked(l, name);
        char *m;

        m = strdup(module ?: name);
        if (!m)
                return 0;
        if (!f) {
                char *n = strdup(name);

                if (!n) {
                        free(m);
                        return 0;
                }
                if (l->n_failures >= MODULE_LOADER_MAX_ENTRIES) {
                        /* Bounded: driver names come from the desired state. Drop the oldest failure. */
                        f = &l->failures[0];
                        for (size_t i = 1; i < l->n_failures; i++)
                                if (l->failures[i].failed_usec < f->failed_usec)
                                        f = &l->failures[i];
                        module_failure_done(f);
                } else {
                        ModuleFailure *a =
                                reallocarray(l->failures, l->n_failures + 1, sizeof(ModuleFailure));

                        if (!a) {
                                free(n);
                                free(m);
                                return 0;
                        }
                        l->failures = a;
                        f = &l->failures[l->n_failures++];
                }
                *f = (ModuleFailure){ .name = n };
        }
        free(f->module);
        f->module = m;
        f->error = error;
        f->failures = f->failures < UINT_MAX ? f->failures + 1 : UINT_MAX;
        f->failed_usec = now;
        return f->failures;
}

int module_loader_load(const char *driver, char **ret_module, void *userdata) {
        ModuleLoader *l = userdata;
        _cleanup_free_ char *name = NULL, *module = NULL;
        ModuleFailure *f;
        unsigned failures;
        int r;

        assert(l);

        if (ret_module)
                *ret_module = NULL;
        if (!driver || !*driver)
                return -EINVAL;
        name = module_loader_module_name(driver);
        if (!name)
                return -ENOMEM;

        pthread_mutex_lock(&l->lock);
        f = find_locked(l, name);
        if (f) {
                ModuleLoaderBackoff b;

                if (in_window(f, l->now(l->now_userdata), &b)) {
                        module = strdup(f->module);
                        pthread_mutex_unlock(&l->lock);
                        if (!module)
                                return -ENOMEM;
                        log_debug_errno(
                                b.error,
                                "Not loading module %s for driver %s: it failed %u time(s) in a row, last: %m; "
                                "retrying in %" PRIu64 " ms",
                                module, driver, b.failures, b.remaining_usec / 1000);
                        if (ret_module)
                                *ret_module = TAKE_PTR(module);
                        return b.error;
                }
        }
        pthread_mutex_unlock(&l->lock);

        /* Unlocked: finit_module(2) runs the module's init, which may take long. */
        r = l->load(driver, &module, l->load_userdata);

        pthread_mutex_lock(&l->lock);
        if (r >= 0) {
                forget_locked(l, name);
                failures = 0;
        } else
                failures = record_locked(l, name, module, r, l->now(l->now_userdata));
        pthread_mutex_unlock(&l->lock);

        if (r >= 0)
                r = 0;
        else if (failures > 0)
                log_warning_errno(
                        r,
                        "Failed to load module %s for driver %s (%u time(s) in a row): %m; next try in %" PRIu64
                        " s or on reload",
                        module ?: name, driver, failures, (uint64_t)(backoff_usec(failures) / 1000000ULL));
        else
                log_warning_errno(r, "Failed to load module %s for driver %s: %m", module ?: name, driver);

        if (!module)
                module = TAKE_PTR(name);
        if (ret_module)
                *ret_module = TAKE_PTR(module);
        return r;
}

int module_loader_get_backoff(ModuleLoader *l, const char *driver, ModuleLoaderBackoff *ret) {
        _cleanup_free_ char *name = NULL;
        ModuleFailure *f;
        bool in;

        if (!driver || !*driver)
                return -EINVAL;
        if (!l)
                return 0;
        name = module_loader_module_name(driver);
        if (!name)
                return -ENOMEM;

        pthread_mutex_lock(&l->lock);
        f = find_locked(l, name);
        in = f && in_window(f, l->now(l->now_userdata), ret);
        pthread_mutex_unlock(&l->lock);
        return in;
}

int module_loader_backoff_reason(ModuleLoader *l, const char *driver, char **ret) {
        ModuleLoaderBackoff b;
        uint64_t seconds;
        int r;

        assert(ret);

        *ret = NULL;
        r = module_loader_get_backoff(l, driver, &b);
        if (r <= 0)
                return r;
        seconds = (b.remaining_usec + 999999ULL) / 1000000ULL;
        if (asprintf(
                    ret,
                    "not retrying until %" PRIu64
                    " s from now (%u failure%s in a row; Reload() retries at once)",
                    seconds, b.failures, b.failures == 1 ? "" : "s") < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 1;
}
