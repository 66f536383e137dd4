/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/*
 * Loading the kernel module of a PCI driver that is not registered yet (issue 3: "loading a missing
 * driver module (vfio-pci) is part of the step"), with libkmod as modprobe(8) does.
 *
 * Blocking (it reads modules.dep and calls finit_module(2), which runs the module's init): call it
 * off the event loop, on one of the executor's lane threads (ExecutorOptions.load_driver).
 *
 * Never called in tests: the daemon disables module loading when $UMOCKDEV_DIR is set (every unit
 * and integration test runs under umockdev) or with --no-load-modules; the executor's unit tests
 * inject their own loader, and test-module-loader its own, or a kmod_new() of its own that fails, so
 * the default path stops before any lookup.
 */

/*
 * The module name for PCI driver |driver|: the driver name with '-' as '_' ("vfio-pci" ->
 * "vfio_pci"), as kmod and the kernel's module loader treat them as the same character
 * (kmod's alias_normalize(), the kernel's strreplace(name, '-', '_') in load_module()).
 * Returns a new string, or NULL on allocation failure.
 */
char *module_loader_module_name(const char *driver);

/*
 * Load the module providing PCI driver |driver| with its dependencies and soft dependencies
 * (vfio_pci pulls vfio, vfio_pci_core, and its softdep vfio_iommu_type1), honouring the
 * modprobe.d(5) blacklist (KMOD_PROBE_APPLY_BLACKLIST). The module is looked up by name (or
 * alias) in /lib/modules/$(uname -r)/modules.dep.bin and friends (kmod_new() defaults), or in
 * $HOSTDEVD_MODULES_DIR (module_index_dir()). Which names a request may bring here is decided before
 * (src/module-policy.h): this loads what it is given.
 *
 * Returns 0 when the module is now loaded (or built in, or already loaded: the driver may still
 * take a moment to appear in /sys/bus/pci/drivers; the caller waits for it); -ENOENT when no such
 * module exists; -EPERM when the blacklist forbids it; or the error of kmod_new() or
 * init_module(2)/finit_module(2) (-EEXIST is success). *ret_module (may be NULL) is set to the
 * module's name even on failure (module_loader_module_name() when no module was found), or NULL
 * on allocation failure. |userdata| is unused (the signature of ExecutorLoadDriverFunc). No backoff:
 * every call goes to libkmod; module_loader_load() below adds it.
 */
int module_loader_load_driver(const char *driver, char **ret_module, void *userdata);

/* ---- backoff for modules that keep failing to load ----------------------------------------------- */

/*
 * A driver whose module cannot be loaded (Driver=foo where no module foo exists, a module that the
 * modprobe.d(5) blacklist forbids, an init that fails) would otherwise be retried through libkmod on
 * every re-plan. A ModuleLoader remembers per module the last failure and skips libkmod, returning
 * the remembered error at once, until the backoff after the failure has passed: 1 s after the first
 * failure in a row, then 2 s, 4 s, ... doubling up to 5 min. A load that succeeds forgets the
 * module's failures; module_loader_reset() forgets every failure (Reload() and SIGHUP: the operator
 * who just installed or un-blacklisted a module gets an immediate retry).
 *
 * The key is the module name asked for, module_loader_module_name(driver), so "vfio-pci" and
 * "vfio_pci" share one entry. Times are microseconds on CLOCK_MONOTONIC (the clock of sd-event's
 * timers, so a caller can arm a timer for ModuleLoaderBackoff.retry_usec).
 *
 * Thread-safe: loads run on the executor's lane threads (two at once when two transactions
 * load a module), module_loader_reset() and the queries on the
 * event loop. The lock is not held while the module loads (an init can take seconds).
 */
#define MODULE_LOADER_BACKOFF_INITIAL_USEC (1ULL * 1000000ULL) /* after the first failure in a row */
#define MODULE_LOADER_BACKOFF_MAX_USEC (300ULL * 1000000ULL) /* cap of the doubling: 5 min */
#define MODULE_LOADER_MAX_ENTRIES 256U /* modules remembered; past it the oldest failure goes */

typedef struct ModuleLoader ModuleLoader;

/* The clock: microseconds on CLOCK_MONOTONIC. */
typedef uint64_t (*ModuleLoaderClockFunc)(void *userdata);

/* The loading itself; the shape and contract of module_loader_load_driver() (and of the executor's
 * ExecutorLoadDriverFunc). Called without the ModuleLoader's lock held. */
typedef int (*ModuleLoaderLoadFunc)(const char *driver, char **ret_module, void *userdata);

typedef struct ModuleLoaderOptions {
        ModuleLoaderClockFunc now; /* NULL: clock_gettime(CLOCK_MONOTONIC) */
        void *now_userdata;
        ModuleLoaderLoadFunc load; /* NULL: module_loader_load_driver() (libkmod) */
        void *load_userdata;
} ModuleLoaderOptions;

/* |options| may be NULL (the real clock and libkmod); it is copied. Returns 0 or -ENOMEM. */
int module_loader_new(const ModuleLoaderOptions *options, ModuleLoader **ret);
/* NULL-tolerant; returns NULL. Call it once no load can run any more (after executor_free()). */
ModuleLoader *module_loader_free(ModuleLoader *l);
static inline void module_loader_freep(ModuleLoader **l) {
        if (*l)
                module_loader_free(*l);
}

/*
 * Load the module of PCI driver |driver| with backoff: ExecutorLoadDriverFunc, with |userdata| the
 * ModuleLoader (ExecutorOptions.load_driver = module_loader_load, .load_driver_userdata = the
 * loader). Within the backoff window of the module's last failure it returns that failure's negative
 * errno (-ENOENT, -EPERM, ...) at once without loading anything, and *ret_module the module name the
 * failure reported; module_loader_backoff_reason() then says until when. Otherwise it calls the
 * loader of ModuleLoaderOptions.load and returns as it does (0 or a negative errno; *ret_module set
 * as it sets it, else to module_loader_module_name(driver)), remembering a failure and forgetting
 * the module's failures on success. -EINVAL for a NULL or empty |driver| (nothing remembered);
 * -ENOMEM. *ret_module (may be NULL) is NULL on -EINVAL and -ENOMEM.
 */
int module_loader_load(const char *driver, char **ret_module, void *userdata);

typedef struct ModuleLoaderBackoff {
        int error; /* negative errno of the last failure, the one module_loader_load() returns */
        unsigned failures; /* consecutive failures, >= 1 */
        uint64_t failed_usec; /* CLOCK_MONOTONIC time of the last failure */
        uint64_t retry_usec; /* CLOCK_MONOTONIC time from which the next load calls the loader again */
        uint64_t remaining_usec; /* retry_usec - now, > 0 */
} ModuleLoaderBackoff;

/*
 * Whether a load of |driver|'s module would be skipped now. Returns 1 and fills *ret (may be NULL)
 * when it is within its backoff window; 0 when a load would call the loader (no failure remembered,
 * or the window has passed; *ret untouched); -EINVAL for a NULL or empty |driver|; -ENOMEM. |l| may
 * be NULL (module loading disabled: 0).
 */
int module_loader_get_backoff(ModuleLoader *l, const char *driver, ModuleLoaderBackoff *ret);

/*
 * For the message of a failed transaction: when |driver|'s module is within its backoff window,
 * *ret is a new string such as "not retrying until 4 s from now (3 failures in a row; Reload()
 * retries at once)", seconds rounded up, and 1 is returned; else 0 with *ret NULL. -EINVAL, -ENOMEM
 * as module_loader_get_backoff(). |l| may be NULL (0).
 */
int module_loader_backoff_reason(ModuleLoader *l, const char *driver, char **ret);

/* Forget every remembered failure: the next load of any module calls the loader. |l| may be NULL. */
void module_loader_reset(ModuleLoader *l);
