/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Uevent intake (intake.h): the queue of received uevents, the hold on new functions until the
 * kernel's first probe, mdev re-reads, rescans, and the fan-out of model changes.
 *
 * Map:
 *   the fan-out          log_change(), intake_publish_changes()
 *   mdev re-reads        intake_arm_mdev_settle(), on_mdev_settle()
 *   the hold of mdevs    intake_hold_mdevs(), intake_apply_held_mdevs()
 *   the uevent queue     intake_queue_uevent(), on_queue(), intake_flush(), intake_queue_refresh()
 *   applying, rescans    intake_handle_uevent(), intake_rescan()
 *   new functions        intake_hold_add(), on_add_settle(), intake_receive(), intake_before_pci_add()
 */

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "event-priorities.h"
#include "intake.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "pci-address.h"
#include "strv.h"

typedef struct QueuedUevent {
        char *action, *subsystem, *syspath, *sysname, *mdev_state;
        struct QueuedUevent *next;
} QueuedUevent;

struct Intake {
        sd_event *event;
        Model *model;
        bool hold_adds;
        IntakeHooks hooks;
        void *userdata;

        /* Scratch list for the changes of one model update; reused, never shrunk. */
        ModelChangeList changes;

        /* Uevents received and not yet applied to the model, oldest first (intake.h). */
        QueuedUevent *queue, **queue_tail;
        size_t n_queued;
        sd_event_source *queue_source;
        bool handling; /* inside intake_handle_uevent() */

        /* PCI functions whose kernel "add" is held until the kernel's first probe (intake.h): read on
         * their next uevent (the probe's "bind"), or when add_settle fires, INTAKE_ADD_SETTLE_USEC after
         * the last held "add". Armed only while one waits. */
        char **pending_adds;
        sd_event_source *add_settle;

        /* Re-read mdevs that appeared before their mdev_type link: armed only while such an mdev
         * exists (see intake_handle_uevent()). */
        sd_event_source *mdev_settle;
        unsigned mdev_settle_tries;

        /* While a job of ours creates or removes mdevs (intake_hold_mdevs()): the UUIDs whose uevents
         * came meanwhile, each once, read in one batch when the hold ends. */
        bool hold_mdevs;
        char **held_mdevs;

        uint64_t rescans; /* Manager.Rescans: full rescans after lost uevents */
};

static void intake_queue_clear(Intake *in);

int intake_new(
        sd_event *event, Model *model, bool hold_adds, const IntakeHooks *hooks, void *userdata,
        Intake **ret) {
        Intake *in;

        assert(event);
        assert(model);
        assert(ret);

        in = calloc(1, sizeof(Intake));
        if (!in)
                return -ENOMEM;
        in->event = sd_event_ref(event);
        in->model = model;
        in->hold_adds = hold_adds;
        if (hooks)
                in->hooks = *hooks;
        in->userdata = userdata;
        in->queue_tail = &in->queue;
        *ret = in;
        return 0;
}

Intake *intake_free(Intake *in) {
        if (!in)
                return NULL;
        in->mdev_settle = sd_event_source_disable_unref(in->mdev_settle);
        in->add_settle = sd_event_source_disable_unref(in->add_settle);
        in->pending_adds = strv_free(in->pending_adds);
        in->held_mdevs = strv_free(in->held_mdevs);
        in->queue_source = sd_event_source_disable_unref(in->queue_source);
        intake_queue_clear(in);
        model_change_list_done(&in->changes);
        sd_event_unref(in->event);
        free(in);
        return NULL;
}

uint64_t intake_rescans(const Intake *in) {
        return in ? in->rescans : 0;
}

size_t intake_queued(const Intake *in) {
        return in ? in->n_queued : 0;
}

/* ---- the fan-out of model changes ------------------------------------------------------------- */

static void log_change(Intake *in, const ModelChange *c) {
        char field[sizeof(JOURNAL_FIELD_MDEV_UUID "=") + sizeof(c->key)];

        switch (c->object) {
        case MODEL_OBJECT_DEVICE: {
                const PciDevice *dev = model_get_device(in->model, c->key);

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
                const Mdev *mdev = model_get_mdev(in->model, c->key);

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

/* Log what the last model update did and hand it on. */
static void intake_publish_changes(Intake *in) {
        for (size_t i = 0; i < in->changes.n; i++)
                log_change(in, &in->changes.changes[i]);

        /* The bus emitter and the reconciler (daemon.c wires them). */
        if (in->hooks.on_changes)
                in->hooks.on_changes(in->userdata, in->changes.changes, in->changes.n);

        model_change_list_clear(&in->changes);
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

static bool intake_has_untyped_mdevs(Intake *in) {
        const Mdev *const *mdevs;
        size_t n;

        mdevs = model_get_mdevs(in->model, &n);
        for (size_t i = 0; i < n; i++)
                if (!mdevs[i]->type_id)
                        return true;
        return false;
}

static int on_mdev_settle(sd_event_source *s, uint64_t usec, void *userdata);

static void intake_arm_mdev_settle(Intake *in, bool restart) {
        uint64_t delay;
        int r;

        if (restart)
                in->mdev_settle_tries = 0;
        if (in->mdev_settle_tries >= MDEV_SETTLE_MAX_TRIES || !intake_has_untyped_mdevs(in)) {
                if (in->mdev_settle)
                        (void)sd_event_source_set_enabled(in->mdev_settle, SD_EVENT_OFF);
                return;
        }

        delay = MDEV_SETTLE_FIRST_USEC << in->mdev_settle_tries;
        if (!in->mdev_settle)
                r = sd_event_add_time_relative(
                        in->event, &in->mdev_settle, CLOCK_MONOTONIC, delay, 0, on_mdev_settle, in);
        else {
                r = sd_event_source_set_time_relative(in->mdev_settle, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(in->mdev_settle, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to arm the mdev type re-read: %m, ignoring");
}

static int on_mdev_settle(sd_event_source *s, uint64_t usec, void *userdata) {
        Intake *in = userdata;
        const Mdev *const *mdevs;
        char **pending = NULL;
        size_t n;

        /* Collect first: each re-read may replace the model's arrays. */
        mdevs = model_get_mdevs(in->model, &n);
        for (size_t i = 0; i < n; i++)
                if (!mdevs[i]->type_id && strv_extend(&pending, mdevs[i]->uuid) < 0) {
                        strv_free(pending);
                        log_warning_errno(-ENOMEM, "Failed to re-read mdevs: %m, ignoring");
                        return 0;
                }

        STRV_FOREACH (uuid, pending) {
                const Mdev *m = model_get_mdev(in->model, *uuid);
                _cleanup_free_ char *syspath = NULL;

                if (!m || !m->syspath)
                        continue;
                syspath = strdup(m->syspath);
                if (!syspath)
                        break;
                log_debug("Re-reading mdev %s: its mdev_type link was missing", *uuid);
                model_change_list_clear(&in->changes);
                (void)model_handle_uevent(
                        in->model, "change", UEVENT_SUBSYSTEM_MDEV, syspath, *uuid, NULL, &in->changes);
                intake_publish_changes(in);
        }
        strv_free(pending);

        in->mdev_settle_tries++;
        intake_arm_mdev_settle(in, false);
        return 0;
}

/* ---- the uevent queue ------------------------------------------------------------------------- */

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

static void intake_queue_clear(Intake *in) {
        while (in->queue) {
                QueuedUevent *q = in->queue;
                in->queue = q->next;
                queued_uevent_free(q);
        }
        in->queue_tail = &in->queue;
        in->n_queued = 0;
        if (in->queue_source)
                (void)sd_event_source_set_enabled(in->queue_source, SD_EVENT_OFF);
}

/* Take the oldest queued uevent off the queue; NULL when none. */
static QueuedUevent *intake_queue_pop(Intake *in) {
        QueuedUevent *q = in->queue;

        if (!q)
                return NULL;
        in->queue = q->next;
        if (!in->queue) {
                in->queue_tail = &in->queue;
                if (in->queue_source)
                        (void)sd_event_source_set_enabled(in->queue_source, SD_EVENT_OFF);
        }
        in->n_queued--;
        return q;
}

static int on_queue(sd_event_source *s, void *userdata) {
        Intake *in = userdata;
        QueuedUevent *q;

        /* One per iteration: uevents that arrived meanwhile are received (and their early writes
         * made) before the next read. */
        q = intake_queue_pop(in);
        if (!q)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        (void)intake_handle_uevent(in, q->action, q->subsystem, q->syspath, q->sysname, q->mdev_state);
        queued_uevent_free(q);
        return 0;
}

void intake_flush(Intake *in) {
        QueuedUevent *q;

        if (!in || in->handling)
                return;
        while ((q = intake_queue_pop(in))) {
                (void)intake_handle_uevent(
                        in, q->action, q->subsystem, q->syspath, q->sysname, q->mdev_state);
                queued_uevent_free(q);
        }
        /* A plan must see the held mdevs too (the hold goes on). */
        intake_apply_held_mdevs(in);
}

/* ---- the hold of mdev uevents during our own mdev jobs -------------------------------------------- */

/* Whether |uuid|'s uevent of |action| waits for the batch read: only while held, and not a "move"
 * (it can drop other mdevs: applied in order, as always). */
static bool intake_hold_mdev(Intake *in, const char *action, const char *subsystem, const char *uuid) {
        if (!in->hold_mdevs || !action || !subsystem || !uuid || !streq(subsystem, UEVENT_SUBSYSTEM_MDEV) ||
            streq(action, UEVENT_ACTION_MOVE) || !mdev_uuid_is_valid(uuid))
                return false;
        if (strv_contains(in->held_mdevs, uuid))
                return true;
        return strv_extend(&in->held_mdevs, uuid) >= 0;
}

void intake_apply_held_mdevs(Intake *in) {
        _cleanup_strv_free_ char **uuids = NULL;
        bool was_handling;
        int r;

        if (!in || !in->held_mdevs)
                return;
        if (in->handling) {
                if (in->hold_mdevs)
                        return; /* read when the hold ends */
                /* The hold ended inside an application: each as a queued "change", read in order. */
                uuids = TAKE_PTR(in->held_mdevs);
                STRV_FOREACH (u, uuids) {
                        _cleanup_free_ char *syspath = NULL;

                        if (asprintf(&syspath, "%s/%s", SYSFS_MDEV_DEVICES, *u) < 0)
                                break;
                        (void)intake_queue_uevent(
                                in, UEVENT_ACTION_CHANGE, UEVENT_SUBSYSTEM_MDEV, syspath, *u, NULL);
                }
                return;
        }
        uuids = TAKE_PTR(in->held_mdevs);
        log_debug("Reading %zu mdevs whose uevents came during our job", strv_length(uuids));
        was_handling = in->handling;
        in->handling = true;
        model_change_list_clear(&in->changes);
        r = model_refresh_mdevs(in->model, uuids, &in->changes);
        if (r < 0)
                log_warning_errno(r, "Failed to read mdevs after our job: %m, ignoring");
        intake_publish_changes(in);
        in->handling = was_handling;
        intake_arm_mdev_settle(in, true);
}

void intake_hold_mdevs(Intake *in, bool hold) {
        if (!in || in->hold_mdevs == hold)
                return;
        in->hold_mdevs = hold;
        if (!hold)
                intake_apply_held_mdevs(in);
}

int intake_queue_uevent(
        Intake *in, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state) {
        QueuedUevent *q;
        int r;

        assert(in);

        /* Not while applying one (a refresh the reconciler queues then): the rescan would reset the
         * changes being published. */
        if (in->n_queued >= INTAKE_MAX_QUEUED_UEVENTS && !in->handling) {
                log_warning(
                        "More than %u uevents wait to be applied; rescanning sysfs instead",
                        INTAKE_MAX_QUEUED_UEVENTS);
                return intake_rescan(in);
        }
        if (!in->queue_source) {
                r = sd_event_add_defer(in->event, &in->queue_source, on_queue, in);
                if (r >= 0)
                        r = sd_event_source_set_priority(in->queue_source, EVENT_PRIORITY_UEVENT_QUEUE);
                if (r >= 0)
                        (void)sd_event_source_set_description(in->queue_source, "uevent-queue");
                if (r < 0) {
                        in->queue_source = sd_event_source_disable_unref(in->queue_source);
                        log_debug_errno(r, "Failed to set up the uevent queue: %m; applying at once");
                        return intake_handle_uevent(in, action, subsystem, syspath, sysname, mdev_state);
                }
        }
        q = calloc(1, sizeof(QueuedUevent));
        if (!q || strdup_null(action, &q->action) < 0 || strdup_null(subsystem, &q->subsystem) < 0 ||
            strdup_null(syspath, &q->syspath) < 0 || strdup_null(sysname, &q->sysname) < 0 ||
            strdup_null(mdev_state, &q->mdev_state) < 0) {
                queued_uevent_free(q);
                (void)intake_handle_uevent(in, action, subsystem, syspath, sysname, mdev_state);
                return -ENOMEM;
        }
        *in->queue_tail = q;
        in->queue_tail = &q->next;
        in->n_queued++;
        return sd_event_source_set_enabled(in->queue_source, SD_EVENT_ON);
}

void intake_queue_refresh(Intake *in, const char *address) {
        const PciDevice *dev;
        _cleanup_free_ char *syspath = NULL;

        assert(in);

        for (QueuedUevent *q = in->queue; q; q = q->next)
                if (q->sysname && streq(q->sysname, address) && q->subsystem &&
                    streq(q->subsystem, UEVENT_SUBSYSTEM_PCI))
                        return; /* that one re-reads it */
        if (strv_contains(in->pending_adds, address))
                return; /* read after the kernel's first probe */
        dev = model_get_device(in->model, address);
        if (dev && dev->syspath)
                syspath = strdup(dev->syspath);
        else if (asprintf(&syspath, "%s/%s", SYSFS_PCI_DEVICES, address) < 0)
                syspath = NULL;
        if (!syspath)
                return;
        (void)intake_queue_uevent(
                in, dev ? UEVENT_ACTION_CHANGE : UEVENT_ACTION_ADD, UEVENT_SUBSYSTEM_PCI, syspath, address,
                NULL);
}

void intake_queue_mdev_refresh(Intake *in, const char *uuid) {
        const Mdev *m;
        _cleanup_free_ char *syspath = NULL;

        assert(in);

        for (QueuedUevent *q = in->queue; q; q = q->next)
                if (q->sysname && streq(q->sysname, uuid) && q->subsystem &&
                    streq(q->subsystem, UEVENT_SUBSYSTEM_MDEV))
                        return; /* that one re-reads it */
        if (intake_hold_mdev(in, UEVENT_ACTION_CHANGE, UEVENT_SUBSYSTEM_MDEV, uuid))
                return; /* read with the batch */
        m = model_get_mdev(in->model, uuid);
        if (m && m->syspath)
                syspath = strdup(m->syspath);
        if (!syspath)
                return; /* its "add" is still to come, and reads it whole */
        (void)intake_queue_uevent(in, UEVENT_ACTION_CHANGE, UEVENT_SUBSYSTEM_MDEV, syspath, uuid, NULL);
}

int intake_handle_uevent(
        Intake *in, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state) {
        bool was_handling;
        int r;

        assert(in);

        was_handling = in->handling;
        in->handling = true;
        model_change_list_clear(&in->changes);
        r = model_handle_uevent(in->model, action, subsystem, syspath, sysname, mdev_state, &in->changes);
        /* Even on failure, publish what was applied before it. */
        intake_publish_changes(in);
        in->handling = was_handling;

        if (subsystem && streq(subsystem, UEVENT_SUBSYSTEM_MDEV))
                intake_arm_mdev_settle(in, true);
        return r;
}

int intake_rescan(Intake *in) {
        size_t n_devices = 0, n_mdevs = 0;
        int r;

        assert(in);

        /* The enumeration reads the functions whose "add" waits as well, and what the queued
         * uevents would have (applied after it, an old "remove" could drop a function that is back). */
        in->pending_adds = strv_free(in->pending_adds);
        in->held_mdevs = strv_free(in->held_mdevs);
        intake_queue_clear(in);
        model_change_list_clear(&in->changes);
        r = model_enumerate(in->model, &in->changes);
        in->rescans++;
        if (r < 0)
                log_error_errno(r, "Rescan of sysfs failed: %m");
        else {
                (void)model_get_devices(in->model, &n_devices);
                (void)model_get_mdevs(in->model, &n_mdevs);
                log_field_full_errno(
                        LOG_NOTICE, 0, NULL, MESSAGE_ID_RESCAN,
                        "Rescanned sysfs after lost uevents: %zu changes, %zu PCI functions, %zu mdevs",
                        in->changes.n, n_devices, n_mdevs);
        }

        intake_publish_changes(in);
        if (in->hooks.on_rescan)
                in->hooks.on_rescan(in->userdata);
        return r;
}

/* ---- new functions: the hold until the kernel's first probe ------------------------------------ */

static int on_add_settle(sd_event_source *s, uint64_t usec, void *userdata) {
        Intake *in = userdata;
        _cleanup_strv_free_ char **pending = TAKE_PTR(in->pending_adds);

        STRV_FOREACH (a, pending) {
                _cleanup_free_ char *syspath = NULL;

                /* Read meanwhile, or read at the end of the reconciler's early job for it, which may
                 * still wait for the kernel's first probe (reading it now would publish it unbound). */
                if (model_get_device(in->model, *a) ||
                    (in->hooks.job_touches && in->hooks.job_touches(in->userdata, *a)))
                        continue;
                if (asprintf(&syspath, "%s/%s", SYSFS_PCI_DEVICES, *a) < 0)
                        return log_error_errno(-ENOMEM, "Failed to read new PCI function %s: %m", *a);
                (void)intake_queue_uevent(in, UEVENT_ACTION_ADD, UEVENT_SUBSYSTEM_PCI, syspath, *a, NULL);
        }
        return 0;
}

/* Kernel source: hold a PCI function's "add" back (Intake.pending_adds). True when held. */
static bool intake_hold_add(Intake *in, const char *action, const char *subsystem, const char *sysname) {
        int r;

        if (!in->hold_adds || !streq(action, UEVENT_ACTION_ADD) || !streq(subsystem, UEVENT_SUBSYSTEM_PCI) ||
            !pci_address_is_valid(sysname) || model_get_device(in->model, sysname))
                return false;
        if (!strv_contains(in->pending_adds, sysname) && strv_extend(&in->pending_adds, sysname) < 0)
                return false;
        if (!in->add_settle)
                r = sd_event_add_time_relative(
                        in->event, &in->add_settle, CLOCK_MONOTONIC, INTAKE_ADD_SETTLE_USEC, 0,
                        on_add_settle, in);
        else {
                /* From the last "add" of a burst (a PF's VFs): each waits at least the settle time. */
                r = sd_event_source_set_time_relative(in->add_settle, INTAKE_ADD_SETTLE_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(in->add_settle, SD_EVENT_ONESHOT);
        }
        if (r < 0) {
                log_warning_errno(
                        r, "Failed to arm the read of new PCI functions: %m; reading %s now", sysname);
                (void)strv_remove(in->pending_adds, sysname);
                return false;
        }
        log_debug("PCI function %s: read after the kernel's first probe", sysname);
        return true;
}

int intake_receive(
        Intake *in, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state) {
        assert(in);

        if (action && subsystem && sysname) {
                if (intake_hold_add(in, action, subsystem, sysname))
                        return 0;
                if (intake_hold_mdev(in, action, subsystem, sysname))
                        return 0;
                if (streq(subsystem, UEVENT_SUBSYSTEM_PCI) && strv_contains(in->pending_adds, sysname)) {
                        /* A VF's "change" (its physfn link made, drivers/pci/iov.c) comes before the
                         * first probe: the read after that probe sees the link. */
                        if (streq(action, UEVENT_ACTION_CHANGE))
                                return 0;
                        /* Its next event reads it (a "bind" of a function the model lacks reads it
                         * whole). */
                        (void)strv_remove(in->pending_adds, sysname);
                        if (!in->pending_adds[0]) {
                                in->pending_adds = strv_free(in->pending_adds);
                                (void)sd_event_source_set_enabled(in->add_settle, SD_EVENT_OFF);
                        }
                }
        }
        return intake_queue_uevent(in, action, subsystem, syspath, sysname, mdev_state);
}

void intake_before_pci_add(Intake *in, const char *sysname) {
        if (!in || !sysname)
                return;
        for (QueuedUevent *q = in->queue; q; q = q->next)
                if (q->sysname && streq(q->sysname, sysname) && q->action &&
                    streq(q->action, UEVENT_ACTION_REMOVE) && q->subsystem &&
                    streq(q->subsystem, UEVENT_SUBSYSTEM_PCI)) {
                        intake_flush(in);
                        return;
                }
}
