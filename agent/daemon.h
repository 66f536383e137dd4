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
 *
 * The daemon owns the rooms and wires them with hooks (daemon.c, "wiring"):
 * monitor -> intake (intake.h) -> model changes -> bus emitter + reconciler;
 * reconciler -> intake (flush, refresh) and -> bus emitter (status). No room
 * includes another's owner; the loop's schedule is event-priorities.h.
 * An idle daemon has no timers: it wakes only for uevents, bus messages,
 * signals, and the watchdog when systemd set $WATCHDOG_USEC.
 * Exiting never writes sysfs (safety rule 6 in hostdevd(8)).
 */

#include <stdint.h>

#include <systemd/sd-event.h>

#include "bus-context.h"
#include "model.h"

struct pci_access;
typedef struct Monitor Monitor;
typedef struct EarlyWriter EarlyWriter;

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
        /* The services the bus objects read (bus-context.h): event loop, bus, model, intake (uevents
         * to the model, the fan-out of model changes), reconciler (created after the first
         * enumeration), polkit, emitter. The daemon owns them all. */
        BusContext ctx;
        struct pci_access *pacc;
        Monitor *monitor;
        Monitor *early_monitor; /* with a udev monitor: the kernel's own "add"s, for on_pci_add only */
        /* The early-bind thread (executor-early.h): a new function's driver_override on its kernel "add",
         * off the loop; NULL under umockdev, with $HOSTDEVD_EARLY_BIND_THREAD=off, or when it could not
         * start (then on_pci_add decides on the loop). */
        EarlyWriter *early_writer;

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
