/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The hostdevd daemon: one sd-event loop, one bus connection, the observed
 * model, a libpci handle, the uevent monitor and the bus signal queue.
 *
 * Startup order (daemon_start()), chosen so that no uevent falls between
 * enumeration and watching, and no client sees a half-built object tree:
 *   1. attach the uevent monitor (its socket queues events from now on),
 *   2. model_enumerate(),
 *   3. export the D-Bus objects,
 *   4. request the name org.hostdevd1,
 *   5. sd_notify READY=1 and STATUS=,
 *   6. schedule the first plan (reconciler.h): the host converges to the
 *      desired state once the loop runs; SIGHUP re-reads the files.
 * An idle daemon has no timers: it wakes only for uevents, bus messages,
 * signals, and the watchdog when systemd set $WATCHDOG_USEC.
 * Exiting never writes sysfs (DESIGN.md rule 6).
 */

#include <stdint.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "model.h"

struct pci_access;
typedef struct Monitor Monitor;
typedef struct BusEmitter BusEmitter;
typedef struct BusPolkit BusPolkit;
typedef struct Reconciler Reconciler;

typedef struct DaemonOptions {
        const char *bus_address; /* NULL: the system bus ($DBUS_SYSTEM_BUS_ADDRESS honoured) */
        const char *uevent_source; /* NULL: auto ("udev" when udevd runs, else "kernel") */
        const char *pci_ids_path; /* NULL: $HOSTDEVD_PCI_IDS, else PCI_IDS_PATH */
        char **config_dirs; /* desired-state directories, lowest priority first; NULL: names.h's three */
        const char *state_dir; /* NULL: HOSTDEVD_STATE_DIR */
        const char *runtime_dir; /* NULL: HOSTDEVD_RUNTIME_DIR */
        bool no_load_modules; /* never load a driver's module (--no-load-modules) */
} DaemonOptions;

typedef struct Daemon {
        sd_event *event;
        sd_bus *bus;
        struct pci_access *pacc;
        Model *model;
        Monitor *monitor;
        Monitor *early_monitor; /* with a udev monitor: the kernel's own "add"s, for on_pci_add only */
        BusEmitter *emitter;
        BusPolkit *polkit;
        /* Desired state, planning and the executor (reconciler.h); created after the first enumeration. */
        Reconciler *reconciler;
        /* Method calls that change something, from arrival to reply, oldest first (bus-manager.c). */
        struct Request *requests;

        /* Scratch list for the changes of one model update; reused, never shrunk. */
        ModelChangeList changes;
        /*
         * PCI functions whose kernel "add" is not read yet (kernel source only; udevd passes an
         * "add" on after the kernel's first probe anyway): read on their next uevent (the probe's
         * "bind"), or when add_settle fires (DAEMON_ADD_SETTLE_USEC after the last held "add"), so that
         * reading a new function does not take the CPU from the kernel's first probe of it, and the function
         * is published with the driver that probe bound. Armed only while one waits.
         */
        char **pending_adds;
        sd_event_source *add_settle;

        /*
         * Uevents received and not yet applied to the model, oldest first. Receiving only queues
         * (and runs the early driver_override of a new function, reconciler_on_pci_add()); reading
         * sysfs for them happens one event per loop iteration in queue_source, below the monitors'
         * priority, so a burst of "add"s (a PF's VFs) gets every early write out before the model
         * reads any of them, and the reads do not take the CPU from the kernel's probes meanwhile.
         */
        struct QueuedUevent *queue, **queue_tail;
        size_t n_queued;
        sd_event_source *queue_source;
        bool handling; /* inside daemon_handle_uevent() */

        uint64_t rescans; /* Manager.Rescans: full rescans after lost uevents */

        /*
         * Re-read mdevs that appeared before their mdev_type link: armed only while such an mdev
         * exists (see daemon_handle_uevent()), so an idle daemon still has no timers.
         */
        sd_event_source *mdev_settle;
        unsigned mdev_settle_tries;
        char *bus_address;
        char *uevent_source;
        char *pci_ids_path;
        char **config_dirs;
        char *state_dir;
        char *runtime_dir;
        /* Load the module of a driver a transaction needs (module-loader.h). Off with --no-load-modules,
         * and whenever $UMOCKDEV_DIR is set: a umockdev testbed's /sys is fake, its kernel is not. */
        bool load_modules;
} Daemon;

/* Allocate the daemon and its event loop; nothing is attached yet. Returns 0 or -ENOMEM. */
int daemon_new(const DaemonOptions *options, Daemon **ret);
Daemon *daemon_free(Daemon *d);
static inline void daemon_freep(Daemon **d) {
        if (*d)
                daemon_free(*d);
}

/*
 * Steps 1-5 above, plus SIGTERM/SIGINT handling and the watchdog.
 * Returns 0, or -errno with the failure logged (no bus, name already owned,
 * /sys/bus/pci unreadable).
 */
int daemon_start(Daemon *d);

/* Run the event loop until SIGTERM/SIGINT or bus disconnect; returns the loop's exit code (0) or -errno. */
int daemon_run(Daemon *d);

/*
 * Feed one uevent to the model (as monitor.c delivers them); changes are logged
 * and queued for the bus. Returns model_handle_uevent()'s result.
 */
int daemon_handle_uevent(
        Daemon *d, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state);

/*
 * Queue one uevent for daemon_handle_uevent() on a later loop iteration (see Daemon.queue).
 * DAEMON_MAX_QUEUED_UEVENTS may wait; one more drops them and rescans (as a lost uevent does).
 * Returns 0, or -ENOMEM (the event is then applied at once).
 */
#define DAEMON_MAX_QUEUED_UEVENTS 4096u
int daemon_queue_uevent(
        Daemon *d, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state);
/*
 * Re-read PCI function |address| (a "change"; an "add" when the model lacks it) on a later loop
 * iteration, unless an event of it waits in the queue already (that one re-reads it). For the
 * reconciler, after the executor touched the function.
 */
void daemon_queue_refresh(Daemon *d, const char *address);
/* Apply every queued uevent now, in order (before a plan, which must see them all). A no-op when
 * called from inside daemon_handle_uevent() (a plan made while applying one event): the rest follow. */
void daemon_flush_uevents(Daemon *d);

/* Full re-enumeration after lost uevents: the difference becomes signals, Rescans is incremented.
 * Drops the queued uevents (the enumeration reads what they would have). */
int daemon_rescan(Daemon *d);
