/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Uevent intake: the room between the uevent monitors (monitor.h) and the observed model
 * (model.h). It owns
 *   - the queue of received uevents, applied one per loop iteration below the monitors'
 *     priority (event-priorities.h), so a burst of "add"s (a PF's VFs) gets every early write out
 *     before the model reads any of them, and the reads do not take the CPU from the kernel's
 *     probes meanwhile;
 *   - the hold on a new PCI function's kernel "add" until the kernel's first probe of it (its
 *     "bind", or INTAKE_ADD_SETTLE_USEC), so the function is read once, with the driver that probe
 *     bound (kernel source only: udevd passes an "add" on after the first probe anyway);
 *   - the re-reads of mdevs that appeared before their mdev_type link;
 *   - the hold of mdev uevents while a job of ours creates or removes mdevs: each such mdev is read
 *     once when the job ends (model_refresh_mdevs(): each parent's types once), not once per uevent
 *     (an "add", a "bind", the executor's refresh, each with its parent's type list) on the CPU the
 *     kernel's creates run on;
 *   - full rescans after lost uevents (ENOBUFS, a queue over INTAKE_MAX_QUEUED_UEVENTS);
 *   - the fan-out of each model update: logged here (journal fields PCI_ADDR=, MDEV_UUID=), then
 *     handed to IntakeHooks.on_changes (the bus emitter and the reconciler, wired by daemon.c).
 *
 * Threading: the loop thread only. Timers are armed only while something waits: an idle daemon has
 * no wakeups.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "model.h"

typedef struct Intake Intake;

typedef struct IntakeHooks {
        /* The changes of one model update (from one uevent, a re-read or a rescan), already logged.
         * Borrowed for the call. */
        void (*on_changes)(void *userdata, const ModelChange *changes, size_t n);
        /* A rescan finished (Manager.Rescans changed). May be NULL. */
        void (*on_rescan)(void *userdata);
        /* Whether a job in the executor will re-read |address| when it ends (the early
         * driver_override job of a new function that waits for the kernel's first probe). May be
         * NULL. */
        bool (*job_touches)(void *userdata, const char *address);
} IntakeHooks;

/* How many uevents may wait; one more drops them all and rescans, as a lost uevent does. */
#define INTAKE_MAX_QUEUED_UEVENTS 4096u
/* Kernel source: how long a new PCI function's "add" waits for the kernel's first probe of it. */
#define INTAKE_ADD_SETTLE_USEC (50 * 1000ULL)

/*
 * |event| and |model| are borrowed and must outlive the intake. |hold_adds|: the monitor listens to
 * the kernel source, so a new function's "add" is held for its first probe (see above). Returns 0 or
 * -ENOMEM.
 */
int intake_new(
        sd_event *event, Model *model, bool hold_adds, const IntakeHooks *hooks, void *userdata,
        Intake **ret);
Intake *intake_free(Intake *i);
static inline void intake_freep(Intake **i) {
        if (*i)
                intake_free(*i);
}

/* A uevent as the monitor delivers it (MonitorCallbacks.on_uevent): held, queued, or (out of memory)
 * applied at once. Returns 0, or the result of a rescan or of the application. */
int intake_receive(
        Intake *i, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state);

/* A PCI function's kernel "add", before the early job runs for it (MonitorCallbacks.on_pci_add): if
 * its "remove" still waits in the queue (gone and back), apply the queue now, so the model does not
 * still know the function and the early job does not skip it as "already known". */
void intake_before_pci_add(Intake *i, const char *sysname);

/*
 * Queue one uevent for intake_handle_uevent() on a later loop iteration. Past
 * INTAKE_MAX_QUEUED_UEVENTS, drops the queue and rescans instead. Returns 0, or -ENOMEM (the event is
 * then applied at once), or the rescan's result.
 */
int intake_queue_uevent(
        Intake *i, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state);

/* Re-read PCI function |address| (a "change"; an "add" when the model lacks it) on a later loop
 * iteration, unless an event of it waits already (that one re-reads it) or its "add" is held. */
void intake_queue_refresh(Intake *i, const char *address);

/* Re-read mdev |uuid| (a "change") on a later loop iteration, unless an event of it waits already:
 * after hostdevd's own create, whose uevents can precede the mdev_type link (Linux 6.1's
 * mdev_device_create() makes the link last, with no uevent), so that the next plan sees its type. */
void intake_queue_mdev_refresh(Intake *i, const char *uuid);

/* Apply every queued uevent now, in order (before a plan, which must see them all). A no-op when
 * called from inside intake_handle_uevent() (a plan made while applying one event): the rest follow. */
void intake_flush(Intake *i);

/* Apply one uevent to the model now; changes are logged and handed to the hooks. Returns
 * model_handle_uevent()'s result. */
int intake_handle_uevent(
        Intake *i, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state);

/*
 * While |hold|, the mdev uevents received ("add", "bind", "unbind", "change", "remove"; not "move")
 * and intake_queue_mdev_refresh() only note the UUID; when the hold ends (and at intake_flush(), for
 * a plan), the noted mdevs are read in one batch (model_refresh_mdevs()) and the changes published.
 * The reconciler holds while a job of ours with mdev actions runs (ReconcilerHooks.hold_mdev_uevents).
 */
void intake_hold_mdevs(Intake *i, bool hold);
/* Read the held mdevs now (the hold goes on). Inside an application: nothing while the hold goes on;
 * after it ended, each is queued as a "change" (intake_queue_uevent()). */
void intake_apply_held_mdevs(Intake *i);

/* Full re-enumeration after lost uevents: the difference becomes changes, Rescans is incremented.
 * Drops the queued and held uevents (the enumeration reads what they would have). Returns 0 or the
 * enumeration's -errno (logged). */
int intake_rescan(Intake *i);

uint64_t intake_rescans(const Intake *i); /* Manager.Rescans */
size_t intake_queued(const Intake *i); /* uevents waiting in the queue */
