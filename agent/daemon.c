/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <pci/pci.h>
#include <systemd/sd-daemon.h>

#include "bus-device.h"
#include "bus-emitter.h"
#include "bus-log-control.h"
#include "bus-manager.h"
#include "bus-mdev.h"
#include "bus-polkit.h"
#include "bus-util.h"
#include "daemon.h"
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
        d->queue_tail = &d->queue;

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

        r = sd_event_new(&d->event);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(d);
        return 0;
}

static void daemon_queue_clear(Daemon *d);

Daemon *daemon_free(Daemon *d) {
        if (!d)
                return NULL;

        /* The bus first: its vtables point at us and at the model. */
        d->emitter = bus_emitter_free(d->emitter);
        d->polkit = bus_polkit_free(d->polkit);
        bus_manager_cancel_requests(d);
        /* Before the bus: pending method calls get their (failed) replies; waits for a running write. */
        d->reconciler = reconciler_free(d->reconciler);
        d->bus = sd_bus_flush_close_unref(d->bus);
        d->monitor = monitor_free(d->monitor);
        d->early_monitor = monitor_free(d->early_monitor);
        d->mdev_settle = sd_event_source_disable_unref(d->mdev_settle);
        d->add_settle = sd_event_source_disable_unref(d->add_settle);
        d->pending_adds = strv_free(d->pending_adds);
        d->queue_source = sd_event_source_disable_unref(d->queue_source);
        daemon_queue_clear(d);
        d->model = model_free(d->model);
        if (d->pacc)
                pci_cleanup(d->pacc);
        d->event = sd_event_unref(d->event);

        model_change_list_done(&d->changes);
        free(d->bus_address);
        free(d->uevent_source);
        free(d->pci_ids_path);
        strv_free(d->config_dirs);
        free(d->state_dir);
        free(d->runtime_dir);
        free(d);
        return NULL;
}

static void log_change(Daemon *d, const ModelChange *c) {
        char field[sizeof(JOURNAL_FIELD_MDEV_UUID "=") + sizeof(c->key)];

        switch (c->object) {
        case MODEL_OBJECT_DEVICE: {
                const PciDevice *dev = model_get_device(d->model, c->key);

                (void)snprintf(field, sizeof(field), JOURNAL_FIELD_PCI_ADDR "=%s", c->key);
                if (c->kind == MODEL_CHANGE_ADDED && dev)
                        log_field_full_errno(
                                        LOG_INFO,
                                        0,
                                        field,
                                        MESSAGE_ID_DEVICE_ADDED,
                                        "PCI function %s appeared: [%04x:%04x] %s, driver %s",
                                        c->key,
                                        dev->vendor_id,
                                        dev->device_id,
                                        dev->device_name ?: dev->class_name ?: "unknown device",
                                        dev->driver ?: "none");
                else if (c->kind == MODEL_CHANGE_REMOVED)
                        log_field_full_errno(
                                LOG_INFO, 0, field, MESSAGE_ID_DEVICE_REMOVED, "PCI function %s disappeared",
                                c->key);
                else if (c->kind == MODEL_CHANGE_CHANGED && dev && (c->fields & PCI_DEVICE_FIELD_DRIVER))
                        log_field_full_errno(
                                LOG_INFO, 0, field, MESSAGE_ID_DRIVER_CHANGED,
                                "PCI function %s: driver is now %s", c->key, dev->driver ?: "none");
                else
                        log_field_full_errno(
                                LOG_DEBUG, 0, field, NULL, "PCI function %s changed (fields 0x%x)", c->key,
                                c->fields);
                break;
        }
        case MODEL_OBJECT_MDEV: {
                const Mdev *mdev = model_get_mdev(d->model, c->key);

                (void)snprintf(field, sizeof(field), JOURNAL_FIELD_MDEV_UUID "=%s", c->key);
                if (c->kind == MODEL_CHANGE_ADDED && mdev)
                        log_field_full_errno(
                                LOG_INFO, 0, field, NULL, "mdev %s appeared: type %s on %s", c->key,
                                strna(mdev->type_id), strna(mdev->parent));
                else if (c->kind == MODEL_CHANGE_REMOVED)
                        log_field_full_errno(LOG_INFO, 0, field, NULL, "mdev %s disappeared", c->key);
                else
                        log_field_full_errno(
                                LOG_DEBUG, 0, field, NULL, "mdev %s changed (fields 0x%x)", c->key,
                                c->fields);
                break;
        }
        case MODEL_OBJECT_PARENT:
                log_debug(
                        "mdev parent %s %s", c->key,
                        c->kind == MODEL_CHANGE_ADDED             ? "registered"
                                : c->kind == MODEL_CHANGE_REMOVED ? "unregistered"
                                                                  : "changed");
                break;
        case MODEL_OBJECT_MANAGER:
        default:
                break;
        }
}

/* Log what the last model update did and hand it to the bus. */
static void daemon_publish_changes(Daemon *d) {
        int r;

        for (size_t i = 0; i < d->changes.n; i++)
                log_change(d, &d->changes.changes[i]);

        if (d->emitter) {
                r = bus_emitter_queue(d->emitter, d->changes.changes, d->changes.n);
                if (r < 0)
                        log_warning_errno(r, "Failed to queue bus signals: %m, ignoring");
        }
        /* Hotplug and drift: the reconciler decides whether they concern it. */
        reconciler_on_model_changes(d->reconciler, d->changes.changes, d->changes.n);

        model_change_list_clear(&d->changes);
}

/*
 * Linux 6.1's mdev_device_create() (drivers/vfio/mdev/mdev_core.c) sends the mdev's "add" and "bind"
 * uevents from device_add() and device_driver_attach(), and only then creates the mdev_type link
 * (mdev_create_sysfs_files()); no uevent follows it, and 6.1's uevents carry no MDEV_TYPE. An mdev read
 * in that window has no type. Re-read such mdevs a few times with growing delays (20 ms .. ~2.5 s);
 * after that the missing link stays recorded in the mdev's Errors.
 */
#define MDEV_SETTLE_FIRST_USEC (20 * 1000ULL)
#define MDEV_SETTLE_MAX_TRIES 8

static bool daemon_has_untyped_mdevs(Daemon *d) {
        const Mdev *const *mdevs;
        size_t n;

        mdevs = model_get_mdevs(d->model, &n);
        for (size_t i = 0; i < n; i++)
                if (!mdevs[i]->type_id)
                        return true;
        return false;
}

static int on_mdev_settle(sd_event_source *s, uint64_t usec, void *userdata);

static void daemon_arm_mdev_settle(Daemon *d, bool restart) {
        uint64_t delay;
        int r;

        if (restart)
                d->mdev_settle_tries = 0;
        if (d->mdev_settle_tries >= MDEV_SETTLE_MAX_TRIES || !daemon_has_untyped_mdevs(d)) {
                if (d->mdev_settle)
                        (void)sd_event_source_set_enabled(d->mdev_settle, SD_EVENT_OFF);
                return;
        }

        delay = MDEV_SETTLE_FIRST_USEC << d->mdev_settle_tries;
        if (!d->mdev_settle)
                r = sd_event_add_time_relative(
                        d->event, &d->mdev_settle, CLOCK_MONOTONIC, delay, 0, on_mdev_settle, d);
        else {
                r = sd_event_source_set_time_relative(d->mdev_settle, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(d->mdev_settle, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to arm the mdev type re-read: %m, ignoring");
}

static int on_mdev_settle(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        const Mdev *const *mdevs;
        char **pending = NULL;
        size_t n;

        /* Collect first: each re-read may replace the model's arrays. */
        mdevs = model_get_mdevs(d->model, &n);
        for (size_t i = 0; i < n; i++)
                if (!mdevs[i]->type_id && strv_extend(&pending, mdevs[i]->uuid) < 0) {
                        strv_free(pending);
                        log_warning_errno(-ENOMEM, "Failed to re-read mdevs: %m, ignoring");
                        return 0;
                }

        STRV_FOREACH (uuid, pending) {
                const Mdev *m = model_get_mdev(d->model, *uuid);
                _cleanup_free_ char *syspath = NULL;

                if (!m || !m->syspath)
                        continue;
                syspath = strdup(m->syspath);
                if (!syspath)
                        break;
                log_debug("Re-reading mdev %s: its mdev_type link was missing", *uuid);
                model_change_list_clear(&d->changes);
                (void)model_handle_uevent(
                        d->model, "change", UEVENT_SUBSYSTEM_MDEV, syspath, *uuid, NULL, &d->changes);
                daemon_publish_changes(d);
        }
        strv_free(pending);

        d->mdev_settle_tries++;
        daemon_arm_mdev_settle(d, false);
        return 0;
}

/* ---- the uevent queue (daemon.h, Daemon.queue) ---------------------------------------------- */

/* Below the monitors and the bus (SD_EVENT_PRIORITY_NORMAL), above the reconciler's planning. */
#define DAEMON_QUEUE_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 3)

typedef struct QueuedUevent {
        char *action, *subsystem, *syspath, *sysname, *mdev_state;
        struct QueuedUevent *next;
} QueuedUevent;

static QueuedUevent *queued_uevent_free(QueuedUevent *q) {
        if (q) {
                free(q->action);
                free(q->subsystem);
                free(q->syspath);
                free(q->sysname);
                free(q->mdev_state);
                free(q);
        }
        return NULL;
}

static void daemon_queue_clear(Daemon *d) {
        while (d->queue) {
                QueuedUevent *q = d->queue;
                d->queue = q->next;
                queued_uevent_free(q);
        }
        d->queue_tail = &d->queue;
        d->n_queued = 0;
        if (d->queue_source)
                (void)sd_event_source_set_enabled(d->queue_source, SD_EVENT_OFF);
}

/* Take the oldest queued uevent off the queue; NULL when none. */
static QueuedUevent *daemon_queue_pop(Daemon *d) {
        QueuedUevent *q = d->queue;

        if (!q)
                return NULL;
        d->queue = q->next;
        if (!d->queue) {
                d->queue_tail = &d->queue;
                if (d->queue_source)
                        (void)sd_event_source_set_enabled(d->queue_source, SD_EVENT_OFF);
        }
        d->n_queued--;
        return q;
}

static int on_queue(sd_event_source *s, void *userdata) {
        Daemon *d = userdata;
        QueuedUevent *q;

        /* One per iteration: uevents that arrived meanwhile are received (and their early writes
         * made) before the next read. */
        q = daemon_queue_pop(d);
        if (!q)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        (void)daemon_handle_uevent(d, q->action, q->subsystem, q->syspath, q->sysname, q->mdev_state);
        queued_uevent_free(q);
        return 0;
}

void daemon_flush_uevents(Daemon *d) {
        QueuedUevent *q;

        if (!d || d->handling)
                return;
        while ((q = daemon_queue_pop(d))) {
                (void)daemon_handle_uevent(
                        d, q->action, q->subsystem, q->syspath, q->sysname, q->mdev_state);
                queued_uevent_free(q);
        }
}

int daemon_queue_uevent(
        Daemon *d, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state) {
        QueuedUevent *q;
        int r;

        assert(d);

        /* Not while applying one (a refresh the reconciler queues then): the rescan would reset the
         * changes being published. */
        if (d->n_queued >= DAEMON_MAX_QUEUED_UEVENTS && !d->handling) {
                log_warning(
                        "More than %u uevents wait to be applied; rescanning sysfs instead",
                        DAEMON_MAX_QUEUED_UEVENTS);
                return daemon_rescan(d);
        }
        if (!d->queue_source) {
                r = sd_event_add_defer(d->event, &d->queue_source, on_queue, d);
                if (r >= 0)
                        r = sd_event_source_set_priority(d->queue_source, DAEMON_QUEUE_PRIORITY);
                if (r >= 0)
                        (void)sd_event_source_set_description(d->queue_source, "uevent-queue");
                if (r < 0) {
                        d->queue_source = sd_event_source_disable_unref(d->queue_source);
                        log_debug_errno(r, "Failed to set up the uevent queue: %m; applying at once");
                        return daemon_handle_uevent(d, action, subsystem, syspath, sysname, mdev_state);
                }
        }
        q = calloc(1, sizeof(QueuedUevent));
        if (!q || strdup_null(action, &q->action) < 0 || strdup_null(subsystem, &q->subsystem) < 0 ||
            strdup_null(syspath, &q->syspath) < 0 || strdup_null(sysname, &q->sysname) < 0 ||
            strdup_null(mdev_state, &q->mdev_state) < 0) {
                queued_uevent_free(q);
                (void)daemon_handle_uevent(d, action, subsystem, syspath, sysname, mdev_state);
                return -ENOMEM;
        }
        *d->queue_tail = q;
        d->queue_tail = &q->next;
        d->n_queued++;
        return sd_event_source_set_enabled(d->queue_source, SD_EVENT_ON);
}

void daemon_queue_refresh(Daemon *d, const char *address) {
        const PciDevice *dev;
        _cleanup_free_ char *syspath = NULL;

        assert(d);

        for (QueuedUevent *q = d->queue; q; q = q->next)
                if (q->sysname && streq(q->sysname, address) && q->subsystem &&
                    streq(q->subsystem, UEVENT_SUBSYSTEM_PCI))
                        return; /* that one re-reads it */
        if (strv_contains(d->pending_adds, address))
                return; /* read after the kernel's first probe */
        dev = model_get_device(d->model, address);
        if (dev && dev->syspath)
                syspath = strdup(dev->syspath);
        else if (asprintf(&syspath, "%s/%s", SYSFS_PCI_DEVICES, address) < 0)
                syspath = NULL;
        if (!syspath)
                return;
        (void)daemon_queue_uevent(
                d, dev ? UEVENT_ACTION_CHANGE : UEVENT_ACTION_ADD, UEVENT_SUBSYSTEM_PCI, syspath, address,
                NULL);
}

int daemon_handle_uevent(
        Daemon *d, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state) {
        bool was_handling;
        int r;

        assert(d);

        was_handling = d->handling;
        d->handling = true;
        model_change_list_clear(&d->changes);
        r = model_handle_uevent(d->model, action, subsystem, syspath, sysname, mdev_state, &d->changes);
        /* Even on failure, publish what was applied before it. */
        daemon_publish_changes(d);
        d->handling = was_handling;

        if (subsystem && streq(subsystem, UEVENT_SUBSYSTEM_MDEV))
                daemon_arm_mdev_settle(d, true);
        return r;
}

int daemon_rescan(Daemon *d) {
        size_t n_devices = 0, n_mdevs = 0;
        int r;

        assert(d);

        /* The enumeration reads the functions whose "add" waits as well, and what the queued
         * uevents would have (applied after it, an old "remove" could drop a function that is back). */
        d->pending_adds = strv_free(d->pending_adds);
        daemon_queue_clear(d);
        model_change_list_clear(&d->changes);
        r = model_enumerate(d->model, &d->changes);
        d->rescans++;
        if (r < 0)
                log_error_errno(r, "Rescan of sysfs failed: %m");
        else {
                (void)model_get_devices(d->model, &n_devices);
                (void)model_get_mdevs(d->model, &n_mdevs);
                log_field_full_errno(
                        LOG_NOTICE, 0, NULL, MESSAGE_ID_RESCAN,
                        "Rescanned sysfs after lost uevents: %zu changes, %zu PCI functions, %zu mdevs",
                        d->changes.n, n_devices, n_mdevs);
        }

        daemon_publish_changes(d);
        if (d->emitter)
                (void)bus_emitter_manager_changed(d->emitter);
        return r;
}

/* Kernel source: how long a new PCI function's "add" waits for the kernel's first probe of it. */
#define DAEMON_ADD_SETTLE_USEC (50 * 1000ULL)

static int on_add_settle(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        _cleanup_strv_free_ char **pending = TAKE_PTR(d->pending_adds);

        STRV_FOREACH (a, pending) {
                _cleanup_free_ char *syspath = NULL;

                /* Read meanwhile, or read at the end of the reconciler's early job for it, which may
                 * still wait for the kernel's first probe (reading it now would publish it unbound). */
                if (model_get_device(d->model, *a) || reconciler_job_touches(d->reconciler, *a))
                        continue;
                if (asprintf(&syspath, "%s/%s", SYSFS_PCI_DEVICES, *a) < 0)
                        return log_error_errno(-ENOMEM, "Failed to read new PCI function %s: %m", *a);
                (void)daemon_queue_uevent(d, UEVENT_ACTION_ADD, UEVENT_SUBSYSTEM_PCI, syspath, *a, NULL);
        }
        return 0;
}

/* Kernel source: hold a PCI function's "add" back (daemon.h, pending_adds). True when held. */
static bool daemon_defer_add(Daemon *d, const char *action, const char *subsystem, const char *sysname) {
        int r;

        if (!streq(monitor_get_source(d->monitor), UEVENT_SOURCE_KERNEL) ||
            !streq(action, UEVENT_ACTION_ADD) || !streq(subsystem, UEVENT_SUBSYSTEM_PCI) ||
            !pci_address_is_valid(sysname) || model_get_device(d->model, sysname))
                return false;
        if (!strv_contains(d->pending_adds, sysname) && strv_extend(&d->pending_adds, sysname) < 0)
                return false;
        if (!d->add_settle)
                r = sd_event_add_time_relative(
                        d->event, &d->add_settle, CLOCK_MONOTONIC, DAEMON_ADD_SETTLE_USEC, 0, on_add_settle,
                        d);
        else {
                /* From the last "add" of a burst (a PF's VFs): each waits at least the settle time. */
                r = sd_event_source_set_time_relative(d->add_settle, DAEMON_ADD_SETTLE_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(d->add_settle, SD_EVENT_ONESHOT);
        }
        if (r < 0) {
                log_warning_errno(
                        r, "Failed to arm the read of new PCI functions: %m; reading %s now", sysname);
                (void)strv_remove(d->pending_adds, sysname);
                return false;
        }
        log_debug("PCI function %s: read after the kernel's first probe", sysname);
        return true;
}

static int on_uevent(
        void *userdata, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state) {
        Daemon *d = userdata;

        if (action && subsystem && sysname) {
                if (daemon_defer_add(d, action, subsystem, sysname))
                        return 0;
                if (streq(subsystem, UEVENT_SUBSYSTEM_PCI) && strv_contains(d->pending_adds, sysname)) {
                        /* A VF's "change" (its physfn link made, drivers/pci/iov.c) comes before the
                         * first probe: the read after that probe sees the link. */
                        if (streq(action, UEVENT_ACTION_CHANGE))
                                return 0;
                        /* Its next event reads it (a "bind" of a function the model lacks reads it
                         * whole). */
                        (void)strv_remove(d->pending_adds, sysname);
                        if (!d->pending_adds[0]) {
                                d->pending_adds = strv_free(d->pending_adds);
                                (void)sd_event_source_set_enabled(d->add_settle, SD_EVENT_OFF);
                        }
                }
        }
        return daemon_queue_uevent(d, action, subsystem, syspath, sysname, mdev_state);
}

static void on_pci_add(
        void *userdata, const char *syspath, const char *sysname, const char *pci_id,
        const char *pci_subsys_id, const char *pci_class) {
        Daemon *d = userdata;

        /* Gone and back before its "remove" was applied: the model must not know it still, or the
         * early driver_override skips it as "already known". */
        for (QueuedUevent *q = d->queue; q; q = q->next)
                if (q->sysname && streq(q->sysname, sysname) && q->action &&
                    streq(q->action, UEVENT_ACTION_REMOVE) && q->subsystem &&
                    streq(q->subsystem, UEVENT_SUBSYSTEM_PCI)) {
                        daemon_flush_uevents(d);
                        break;
                }
        (void)reconciler_on_pci_add(d->reconciler, syspath, sysname, pci_id, pci_subsys_id, pci_class);
}

static void on_pci_bind(void *userdata, const char *sysname) {
        Daemon *d = userdata;

        reconciler_on_pci_bind(d->reconciler, sysname);
}

static int on_overflow(void *userdata) {
        return daemon_rescan(userdata);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;

        log_info("SIGHUP: re-reading the desired state");
        (void)reconciler_reload(d->reconciler);
        return 0;
}

static int daemon_export(Daemon *d) {
        int r;

        r = bus_open(d->event, d->bus_address, &d->bus);
        if (r < 0)
                return r;

        r = bus_polkit_new(d->bus, &d->polkit);
        if (r < 0)
                return log_error_errno(r, "Out of memory");

        r = bus_emitter_new(d, &d->emitter);
        if (r < 0)
                return log_error_errno(r, "Failed to set up bus signals: %m");
        r = bus_emitter_snapshot(d->emitter);
        if (r < 0)
                return log_error_errno(r, "Out of memory");

        r = bus_manager_add(d);
        if (r < 0)
                return r;
        r = bus_device_add(d);
        if (r < 0)
                return r;
        r = bus_mdev_add(d);
        if (r < 0)
                return r;
        return bus_log_control_add(d);
}

int daemon_start(Daemon *d) {
        static const MonitorCallbacks callbacks = {
                .on_uevent = on_uevent,
                .on_overflow = on_overflow,
                .on_pci_add = on_pci_add,
                .on_pci_bind = on_pci_bind,
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
        r = sd_event_add_signal(d->event, NULL, SIGTERM, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to handle SIGTERM: %m");
        r = sd_event_add_signal(d->event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to handle SIGINT: %m");
        r = sd_event_add_signal(d->event, NULL, SIGHUP, on_sighup, d);
        if (r < 0)
                return log_error_errno(r, "Failed to handle SIGHUP: %m");

        /* Arms a timer only when systemd set $WATCHDOG_USEC; otherwise nothing ticks. */
        r = sd_event_set_watchdog(d->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog: %m, ignoring");

        r = daemon_setup_pci(d);
        if (r < 0)
                return log_error_errno(r, "Failed to set up libpci: %m");

        r = model_new(d->pacc, &d->model);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the model: %m");

        /* 1. Monitor first: from here on the socket queues every uevent, so none falls between. */
        r = monitor_pick_source(d->uevent_source, &source);
        if (r < 0)
                return log_error_errno(
                        r, "Invalid uevent source '%s' (expected \"udev\" or \"kernel\")",
                        strempty(d->uevent_source ?: getenv(ENV_HOSTDEVD_UEVENT_SOURCE)));
        r = monitor_new(d->event, source, &callbacks, d, &d->monitor);
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

                r = monitor_new(d->event, UEVENT_SOURCE_KERNEL, &early_callbacks, d, &d->early_monitor);
                if (r >= 0)
                        r = monitor_set_priority(d->early_monitor, SD_EVENT_PRIORITY_IMPORTANT);
                if (r < 0) {
                        log_warning_errno(
                                r,
                                "Failed to watch the kernel's uevents: %m; new PCI functions get "
                                "driver_override after their first probe");
                        d->early_monitor = monitor_free(d->early_monitor);
                }
        }

        /* 2. Enumerate. Events queued meanwhile are applied once the loop runs; they are idempotent. */
        r = model_enumerate(d->model, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to enumerate PCI devices in %s: %m", SYSFS_PCI_DEVICES);

        /* The desired state and the ownership records, before the objects show them. */
        reconciler_options = (ReconcilerOptions){
                .config_dirs = d->config_dirs,
                .state_dir = d->state_dir,
                .runtime_dir = d->runtime_dir,
                .load_modules = d->load_modules,
        };
        r = reconciler_new(d, &reconciler_options, &d->reconciler);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the reconciler: %m");

        /* 3. Export the objects and plan (each function's DesiredDriver and State), 4. then take the
         * name, so the first caller sees a complete tree. */
        r = daemon_export(d);
        if (r < 0)
                return r;
        reconciler_start(d->reconciler);
        r = bus_request_name(d->bus);
        if (r < 0)
                return r;

        /* 5. Ready. */
        (void)model_get_devices(d->model, &n_devices);
        (void)model_get_mdevs(d->model, &n_mdevs);
        log_field_full_errno(
                LOG_INFO, 0, NULL, MESSAGE_ID_STARTED,
                "hostdevd %s started: watching %zu PCI functions, %zu mdevs (IOMMU %s)", HOSTDEVD_VERSION,
                n_devices, n_mdevs, model_iommu_enabled(d->model) ? "enabled" : "disabled");
        if (!model_iommu_enabled(d->model))
                log_warning("%s", strempty(model_iommu_reason(d->model)));

        (void)sd_notifyf(false, "READY=1\nSTATUS=Watching %zu PCI functions, %zu mdevs", n_devices, n_mdevs);

        return 0;
}

int daemon_run(Daemon *d) {
        int r;

        assert(d);

        r = sd_event_loop(d->event);
        (void)sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        /* Leave every binding as it is (DESIGN.md rule 6): nothing to undo on exit. */
        log_info("Exiting");
        return r;
}
