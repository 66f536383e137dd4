/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The daemon: owns the rooms (monitor, intake, reconciler, bus objects) and wires them with hooks. */

#include <assert.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pci/pci.h>
#include <systemd/sd-daemon.h>

#include "bus-device.h"
#include "bus-emitter.h"
#include "bus-lease.h"
#include "bus-log-control.h"
#include "bus-manager.h"
#include "bus-mdev.h"
#include "bus-polkit.h"
#include "bus-request.h"
#include "bus-util.h"
#include "daemon.h"
#include "event-priorities.h"
#include "executor-early.h"
#include "intake.h"
#include "lease-manager.h"
#include "log.h"
#include "macro.h"
#include "monitor.h"
#include "names.h"
#include "reconciler.h"
#include "strv.h"

/* libpci reports through callbacks; route them into our log. */
static void pci_on_error(char *msg, ...) _printf_(1, 2) __attribute__((noreturn));
static void pci_on_error(char *msg, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, msg);
        (void)vsnprintf(buf, sizeof(buf), msg, ap);
        va_end(ap);
        /* libpci's contract: this must not return. It is only reached from pci_init(). */
        log_error("libpci: %s", buf);
        exit(EXIT_FAILURE);
}

static void pci_on_warning(char *msg, ...) _printf_(1, 2);
static void pci_on_warning(char *msg, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, msg);
        (void)vsnprintf(buf, sizeof(buf), msg, ap);
        va_end(ap);
        log_debug("libpci: %s", buf);
}

static int daemon_setup_pci(Daemon *d) {
        struct pci_access *pacc;

        pacc = pci_alloc();
        if (!pacc)
                return -ENOMEM;

        pacc->error = pci_on_error;
        pacc->warning = pci_on_warning;
        pacc->debug = pci_on_warning;
        /* The sysfs method reads /sys/bus/pci (umockdev redirects it); no /proc/bus/pci, no port I/O. */
        pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        /* Names from our pci.ids only, never udev's hwdb or DNS: the same answer on every host and in tests.
         */
        pacc->id_lookup_mode = PCI_LOOKUP_NO_HWDB;
        pci_set_name_list_path(pacc, d->pci_ids_path, 0);

        pci_init(pacc);
        d->pacc = pacc;

        log_debug("Using PCI names from %s", d->pci_ids_path);
        return 0;
}

int daemon_new(const DaemonOptions *options, Daemon **ret) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        const char *ids;
        int r;

        assert(ret);

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;

        if (options && options->bus_address) {
                d->bus_address = strdup(options->bus_address);
                if (!d->bus_address)
                        return -ENOMEM;
        }
        if (options && options->uevent_source) {
                d->uevent_source = strdup(options->uevent_source);
                if (!d->uevent_source)
                        return -ENOMEM;
        }

        if (options && options->state_dir && !(d->state_dir = strdup(options->state_dir)))
                return -ENOMEM;
        if (options && options->runtime_dir && !(d->runtime_dir = strdup(options->runtime_dir)))
                return -ENOMEM;
        STRV_FOREACH (dir, options ? options->config_dirs : NULL)
                if (strv_extend(&d->config_dirs, *dir) < 0)
                        return -ENOMEM;
        if (options && options->config_dirs && !d->config_dirs) {
                /* An empty list: no configuration directory at all (only the request directories). */
                d->config_dirs = calloc(1, sizeof(char *));
                if (!d->config_dirs)
                        return -ENOMEM;
        }

        d->load_modules = !(options && options->no_load_modules);
        if (d->load_modules && getenv(ENV_UMOCKDEV_DIR)) {
                log_notice(
                        "$%s is set (a umockdev testbed): kernel module loading disabled", ENV_UMOCKDEV_DIR);
                d->load_modules = false;
        }

        ids = options && options->pci_ids_path ? options->pci_ids_path : getenv(ENV_PCI_IDS_PATH);
        d->pci_ids_path = strdup(ids && *ids ? ids : PCI_IDS_PATH);
        if (!d->pci_ids_path)
                return -ENOMEM;

        r = sd_event_new(&d->ctx.event);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

Daemon *daemon_free(Daemon *d) {
        if (!d)
                return NULL;

        /* The bus first: its vtables point at us and at the model. */
        d->ctx.emitter = bus_emitter_free(d->ctx.emitter);
        d->ctx.polkit = bus_polkit_free(d->ctx.polkit);
        request_cancel_all(&d->ctx);
        /* Its records go to the reconciler: stop it first. */
        d->early_writer = early_writer_free(d->early_writer);
        /* Before the bus: pending method calls get their (failed) replies; waits for a running write. */
        d->ctx.reconciler = reconciler_free(d->ctx.reconciler);
        /* After the reconciler, whose cancelled waits answer the leases being prepared. The leases
         * themselves go on: their records stay for the next start. */
        d->ctx.leases = lease_manager_free(d->ctx.leases);
        d->ctx.bus = bus_close(d->ctx.bus);
        d->monitor = monitor_free(d->monitor);
        d->early_monitor = monitor_free(d->early_monitor);
        d->ctx.intake = intake_free(d->ctx.intake);
        d->ctx.model = model_free(d->ctx.model);
        if (d->pacc)
                pci_cleanup(d->pacc);
        d->ctx.event = sd_event_unref(d->ctx.event);

        free(d->bus_address);
        free(d->uevent_source);
        free(d->pci_ids_path);
        strv_free(d->config_dirs);
        free(d->state_dir);
        free(d->runtime_dir);
        free(d);
        return NULL;
}

/* ---- wiring: the rooms talk through these hooks, never through each other's fields ------------- */

/* IntakeHooks.on_changes: every model update goes to the bus and to the reconciler. */
static void on_model_changes(void *userdata, const ModelChange *changes, size_t n) {
        Daemon *d = userdata;
        int r;

        if (d->ctx.emitter) {
                r = bus_emitter_queue(d->ctx.emitter, changes, n);
                if (r < 0)
                        log_warning_errno(r, "Failed to queue bus signals: %m, ignoring");
        }
        /* Hotplug and drift: the reconciler decides whether they concern it. */
        reconciler_on_model_changes(d->ctx.reconciler, changes, n);
}

static void on_rescan(void *userdata) {
        Daemon *d = userdata;

        if (d->ctx.emitter)
                (void)bus_emitter_manager_changed(d->ctx.emitter);
}

static bool on_job_touches(void *userdata, const char *address) {
        Daemon *d = userdata;

        return reconciler_job_touches(d->ctx.reconciler, address);
}

/* ReconcilerHooks: what a plan needs from the intake. */
static void on_flush_uevents(void *userdata) {
        Daemon *d = userdata;

        intake_flush(d->ctx.intake);
}

static void on_hold_mdev_uevents(void *userdata, bool hold) {
        Daemon *d = userdata;

        intake_hold_mdevs(d->ctx.intake, hold);
}

static void on_refresh(void *userdata, const char *address) {
        Daemon *d = userdata;

        intake_queue_refresh(d->ctx.intake, address);
}

static void on_mdev_refresh(void *userdata, const char *uuid) {
        Daemon *d = userdata;

        intake_queue_mdev_refresh(d->ctx.intake, uuid);
}

static void on_status_changed(void *userdata, const char *address) {
        Daemon *d = userdata;

        if (d->ctx.emitter)
                (void)bus_emitter_queue_status(d->ctx.emitter, address);
}

/* An mdev's Owner/State/StateReason changed: a change record with the bus-only status bit, coalesced
 * with the model's changes of the same mdev in the emitter's flush. */
static void on_mdev_status_changed(void *userdata, const char *uuid) {
        Daemon *d = userdata;
        ModelChange c = {
                .kind = MODEL_CHANGE_CHANGED,
                .object = MODEL_OBJECT_MDEV,
                .fields = BUS_MDEV_FIELD_STATUS,
        };

        if (!d->ctx.emitter || strlen(uuid) >= sizeof(c.key))
                return;
        strcpy(c.key, uuid);
        (void)bus_emitter_queue(d->ctx.emitter, &c, 1);
}

static void on_manager_status_changed(void *userdata, char *const *names) {
        Daemon *d = userdata;

        if (d->ctx.emitter)
                (void)bus_emitter_queue_manager_status(d->ctx.emitter, names);
}

static void on_lease_holders(void *userdata, const Holder **ret, size_t *ret_n) {
        Daemon *d = userdata;

        *ret = NULL;
        *ret_n = 0;
        if (d->ctx.leases)
                lease_manager_holders(d->ctx.leases, ret, ret_n);
}

/* A holder of a VFIO node that owns a lease is no unleased holder (Manager.UnleasedHolders). */
static bool on_holder_is_leased(void *userdata, pid_t pid) {
        Daemon *d = userdata;

        return d->ctx.leases && lease_manager_find_by_pid(d->ctx.leases, pid);
}

/* LeaseManagerHooks: the Lease objects come and go through the one publisher. */
static void on_lease_added(void *userdata, const Lease *l) {
        Daemon *d = userdata;

        if (d->ctx.emitter)
                (void)bus_emitter_lease_added(d->ctx.emitter, l->path);
}

static void on_lease_changed(void *userdata, const Lease *l) {
        Daemon *d = userdata;

        if (d->ctx.emitter)
                (void)bus_emitter_lease_changed(d->ctx.emitter, l->path);
}

static void on_lease_removed(void *userdata, const Lease *l) {
        Daemon *d = userdata;

        if (d->ctx.emitter)
                (void)bus_emitter_lease_removed(d->ctx.emitter, l->path);
}

static int on_uevent(
        void *userdata, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state) {
        Daemon *d = userdata;

        return intake_receive(d->ctx.intake, action, subsystem, syspath, sysname, mdev_state);
}

static void on_pci_add(
        void *userdata, const char *syspath, const char *sysname, const char *pci_id,
        const char *pci_subsys_id, const char *pci_class) {
        Daemon *d = userdata;

        /* Gone and back before its "remove" was applied: the model must not know it still, or the
         * early driver_override skips it as "already known". */
        intake_before_pci_add(d->ctx.intake, sysname);
        /* The early-bind thread saw this "add" too, first; what it declines comes back by on_early_write().
         */
        if (d->early_writer)
                return;
        (void)reconciler_on_pci_add(d->ctx.reconciler, syspath, sysname, pci_id, pci_subsys_id, pci_class);
}

static const char *empty_to_null(const char *s) {
        return s && s[0] ? s : NULL;
}

/* EarlyWriteFunc: one PCI "add" the early-bind thread handled. */
static void on_early_write(const EarlyWrite *e, void *userdata) {
        Daemon *d = userdata;

        intake_before_pci_add(d->ctx.intake, e->sysname);
        if (!e->written) {
                log_debug("PCI function %s: the early-bind thread declined (%s)", e->sysname, strna(e->why));
                (void)reconciler_on_pci_add(
                        d->ctx.reconciler, empty_to_null(e->syspath), e->sysname, empty_to_null(e->pci_id),
                        empty_to_null(e->pci_subsys_id), empty_to_null(e->pci_class));
                return;
        }
        if (e->error < 0) {
                log_warning_errno(
                        e->error, "PCI function %s: %s; planned once read", e->sysname,
                        e->message[0] ? e->message : "failed to write driver_override");
                early_writer_resolved(d->early_writer);
                return;
        }
        log_debug(
                "PCI function %s: driver_override %s %" PRIu64 " us after its \"add\" was received",
                e->sysname, e->decision.driver, e->written_usec - e->received_usec);
        /* Not recorded: the intent stays in its file, and the next start adopts the function. */
        if (reconciler_on_early_write(
                    d->ctx.reconciler, e->sysname, e->decision.driver, e->decision.source) < 0)
                return;
        early_writer_resolved(d->early_writer);
}

static void on_early_rules_changed(void *userdata) {
        Daemon *d = userdata;
        EarlyBindSnapshot *s = NULL;
        int r;

        if (!d->early_writer)
                return;
        r = reconciler_early_bind_snapshot(d->ctx.reconciler, &s);
        if (r < 0) {
                log_warning_errno(
                        r, "Failed to build the early-bind thread's rules: %m, keeping the last ones");
                return;
        }
        early_writer_publish(d->early_writer, s);
}

static void on_early_intent(const char *address, const char *driver, void *userdata) {
        Daemon *d = userdata;

        (void)reconciler_adopt_early_intent(d->ctx.reconciler, address, driver);
}

/* The early-bind thread, when kernel uevents can be heard (not under umockdev, whose test bed sends
 * none in the kernel's format). The intents a crash left are adopted first: starting it empties them. */
static void daemon_start_early_writer(Daemon *d) {
        const char *mode = getenv(ENV_HOSTDEVD_EARLY_BIND_THREAD);
        EarlyWriterOptions options = {
                .runtime_dir = d->runtime_dir,
                .no_realtime = (mode && streq(mode, "sched-other")),
        };
        _cleanup_free_ char *path = NULL;
        int r;

        r = early_intents_read(d->runtime_dir, on_early_intent, d);
        if (r < 0)
                log_warning_errno(r, "Failed to read the early-bind intents: %m, ignoring");
        d->ctx.early_bind_thread = "off";
        /* Only where the loop listens to the kernel too (udevd's "add" comes after the probe): the
         * thread is then the first listener, and its declined "add"s go to the loop's decision. */
        if (getenv(ENV_UMOCKDEV_DIR) || (mode && streq(mode, "off")) ||
            (!d->early_monitor &&
             !(d->ctx.event_source && streq(d->ctx.event_source, UEVENT_SOURCE_KERNEL)))) {
                if (asprintf(&path, "%s/%s", d->runtime_dir ?: HOSTDEVD_RUNTIME_DIR, EARLY_WRITER_INTENTS) >=
                    0)
                        (void)unlink(path);
                return;
        }
        r = early_writer_new(
                d->ctx.event, EVENT_PRIORITY_EARLY_MONITOR, &options, on_early_write, d, &d->early_writer);
        if (r < 0) {
                log_warning_errno(
                        r,
                        "Failed to start the early-bind thread: %m; new PCI functions get driver_override from the loop");
                return;
        }
        d->ctx.early_bind_thread = early_writer_scheduling(d->early_writer);
}

static void on_pci_bind(void *userdata, const char *sysname) {
        Daemon *d = userdata;

        reconciler_on_pci_bind(d->ctx.reconciler, sysname);
}

static int on_overflow(void *userdata) {
        Daemon *d = userdata;

        return intake_rescan(d->ctx.intake);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;

        log_info("SIGHUP: re-reading the desired state");
        (void)reconciler_reload(d->ctx.reconciler);
        return 0;
}

static int daemon_export(Daemon *d) {
        int r;

        r = bus_open(d->ctx.event, d->bus_address, &d->ctx.bus);
        if (r < 0)
                return r;

        r = bus_polkit_new(d->ctx.bus, &d->ctx.polkit);
        if (r < 0)
                return log_error_errno(r, "Out of memory");

        r = bus_emitter_new(&d->ctx, &d->ctx.emitter);
        if (r < 0)
                return log_error_errno(r, "Failed to set up bus signals: %m");
        r = bus_emitter_snapshot(d->ctx.emitter);
        if (r < 0)
                return log_error_errno(r, "Out of memory");

        r = bus_manager_add(&d->ctx);
        if (r < 0)
                return r;
        r = bus_device_add(&d->ctx);
        if (r < 0)
                return r;
        r = bus_mdev_add(&d->ctx);
        if (r < 0)
                return r;
        r = bus_lease_add(&d->ctx);
        if (r < 0)
                return r;
        return bus_log_control_add(&d->ctx);
}

int daemon_start(Daemon *d) {
        static const MonitorCallbacks callbacks = {
                .on_uevent = on_uevent,
                .on_overflow = on_overflow,
                .on_pci_add = on_pci_add,
                .on_pci_bind = on_pci_bind,
        };
        static const IntakeHooks intake_hooks = {
                .on_changes = on_model_changes,
                .on_rescan = on_rescan,
                .job_touches = on_job_touches,
        };
        static const ReconcilerHooks reconciler_hooks = {
                .flush_uevents = on_flush_uevents,
                .hold_mdev_uevents = on_hold_mdev_uevents,
                .queue_refresh = on_refresh,
                .status_changed = on_status_changed,
                .manager_status_changed = on_manager_status_changed,
                .mdev_status_changed = on_mdev_status_changed,
                .queue_mdev_refresh = on_mdev_refresh,
                .lease_holders = on_lease_holders,
                .holder_is_leased = on_holder_is_leased,
                .early_rules_changed = on_early_rules_changed,
        };
        static const LeaseManagerHooks lease_hooks = {
                .lease_added = on_lease_added,
                .lease_changed = on_lease_changed,
                .lease_removed = on_lease_removed,
        };
        ReconcilerOptions reconciler_options;
        size_t n_devices = 0, n_mdevs = 0;
        const char *source;
        sigset_t mask;
        int r;

        assert(d);

        /* Handle SIGTERM/SIGINT in the loop (default handler: sd_event_exit()); block them first. */
        if (sigemptyset(&mask) < 0 || sigaddset(&mask, SIGTERM) < 0 || sigaddset(&mask, SIGINT) < 0 ||
            sigaddset(&mask, SIGHUP) < 0 || sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to block signals: %m");
        r = sd_event_add_signal(d->ctx.event, NULL, SIGTERM, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to handle SIGTERM: %m");
        r = sd_event_add_signal(d->ctx.event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to handle SIGINT: %m");
        r = sd_event_add_signal(d->ctx.event, NULL, SIGHUP, on_sighup, d);
        if (r < 0)
                return log_error_errno(r, "Failed to handle SIGHUP: %m");

        /* Arms a timer only when systemd set $WATCHDOG_USEC; otherwise nothing ticks. */
        r = sd_event_set_watchdog(d->ctx.event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog: %m, ignoring");

        r = daemon_setup_pci(d);
        if (r < 0)
                return log_error_errno(r, "Failed to set up libpci: %m");

        r = model_new(d->pacc, &d->ctx.model);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the model: %m");

        /* 1. Monitor first: from here on the socket queues every uevent, so none falls between. */
        r = monitor_pick_source(d->uevent_source, &source);
        if (r < 0)
                return log_error_errno(
                        r, "Invalid uevent source '%s' (expected \"udev\" or \"kernel\")",
                        strempty(d->uevent_source ?: getenv(ENV_HOSTDEVD_UEVENT_SOURCE)));
        /* The intake holds a new function's kernel "add" until the kernel's first probe; with udevd
         * the "add" comes after that probe anyway. */
        r = intake_new(
                d->ctx.event, d->ctx.model, streq(source, UEVENT_SOURCE_KERNEL), &intake_hooks, d,
                &d->ctx.intake);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the uevent intake: %m");
        r = monitor_new(d->ctx.event, source, &callbacks, d, &d->monitor);
        if (r >= 0)
                d->ctx.event_source = monitor_get_source(d->monitor);
        if (r < 0)
                return r;
        /* udevd passes on an "add" once its rules ran, long after the kernel's first probe: the
         * early driver_override (reconciler_on_pci_add()) listens to the kernel itself too, first. */
        if (streq(source, UEVENT_SOURCE_UDEV)) {
                static const MonitorCallbacks early_callbacks = {
                        .on_pci_add = on_pci_add,
                        .on_pci_bind = on_pci_bind,
                        /* A storm that overflowed this socket most likely hit udevd's too. */
                        .on_overflow = on_overflow,
                };

                r = monitor_new(d->ctx.event, UEVENT_SOURCE_KERNEL, &early_callbacks, d, &d->early_monitor);
                if (r >= 0)
                        r = monitor_set_priority(d->early_monitor, EVENT_PRIORITY_EARLY_MONITOR);
                if (r < 0) {
                        log_warning_errno(
                                r,
                                "Failed to watch the kernel's uevents: %m; new PCI functions get "
                                "driver_override after their first probe");
                        d->early_monitor = monitor_free(d->early_monitor);
                }
        }

        /* 2. Enumerate. Events queued meanwhile are applied once the loop runs; they are idempotent. */
        r = model_enumerate(d->ctx.model, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to enumerate PCI devices in %s: %m", SYSFS_PCI_DEVICES);

        /* The desired state and the ownership records, before the objects show them. */
        reconciler_options = (ReconcilerOptions){
                .config_dirs = d->config_dirs,
                .state_dir = d->state_dir,
                .runtime_dir = d->runtime_dir,
                .load_modules = d->load_modules,
        };
        r = reconciler_new(
                d->ctx.event, d->ctx.model, &reconciler_hooks, d, &reconciler_options, &d->ctx.reconciler);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the reconciler: %m");
        r = lease_manager_new(
                d->ctx.event, d->ctx.model, d->ctx.reconciler, d->runtime_dir, NULL, &lease_hooks, d,
                &d->ctx.leases);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the leases: %m");

        /* 3. Export the objects and plan (each function's DesiredDriver and State), 4. then take the
         * name, so the first caller sees a complete tree. */
        r = daemon_export(d);
        if (r < 0)
                return r;
        /* The leases of the last run, before the first plan: live owners keep their functions (no write),
         * dead ones' functions follow their release policies in that plan. */
        r = lease_manager_load(d->ctx.leases);
        if (r == -ENOMEM)
                return log_error_errno(r, "Out of memory");
        if (r > 0)
                log_info("Adopted %d leases", r);
        daemon_start_early_writer(d);
        reconciler_start(d->ctx.reconciler);
        r = bus_request_name(d->ctx.bus);
        if (r < 0)
                return r;

        /* 5. Ready. */
        (void)model_get_devices(d->ctx.model, &n_devices);
        (void)model_get_mdevs(d->ctx.model, &n_mdevs);
        log_field_full_errno(
                LOG_INFO, 0, NULL, MESSAGE_ID_STARTED,
                "hostdevd %s started: watching %zu PCI functions, %zu mdevs (IOMMU %s)", HOSTDEVD_VERSION,
                n_devices, n_mdevs, model_iommu_enabled(d->ctx.model) ? "enabled" : "disabled");
        if (!model_iommu_enabled(d->ctx.model))
                log_warning("%s", strempty(model_iommu_reason(d->ctx.model)));

        (void)sd_notifyf(false, "READY=1\nSTATUS=Watching %zu PCI functions, %zu mdevs", n_devices, n_mdevs);

        return 0;
}

int daemon_run(Daemon *d) {
        int r;

        assert(d);

        r = sd_event_loop(d->ctx.event);
        (void)sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        /* Leave every binding as it is (safety rule 6 in hostdevd(8)): nothing to undo on exit. */
        log_info("Exiting");
        return r;
}
