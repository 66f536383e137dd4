/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the D-Bus objects (bus-manager.c, bus-device.c, bus-mdev.c, bus-log-control.c) and the
 * publisher (bus-emitter.c) serve from: the daemon's services, borrowed. The daemon (daemon.h) owns
 * every one of them and fills this in as it creates them; the bus files read it and never see the
 * daemon itself, so no bus file includes daemon.h (tests/check-layers.py).
 */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "model.h"

typedef struct BusEmitter BusEmitter;
typedef struct BusPolkit BusPolkit;
typedef struct Intake Intake;
typedef struct LeaseManager LeaseManager;
typedef struct Reconciler Reconciler;

typedef struct BusContext {
        sd_event *event;
        sd_bus *bus; /* NULL until exported */
        Model *model;
        Intake *intake; /* Manager.Rescans */
        Reconciler *reconciler; /* desired state, plans, status, requests */
        BusPolkit *polkit; /* authorization of mutations */
        BusEmitter *emitter; /* the one publisher of signals */
        LeaseManager *leases; /* the leases in force (lease-manager.h) */
        const char *event_source; /* Manager.EventSource: "udev", "kernel" */
        /* Manager.EarlyBindThread: "sched-fifo", "sched-other", "off" (executor-early.h) */
        const char *early_bind_thread;
        /* bus-manager.c: method calls that change something, from arrival to reply, oldest first. */
        struct Request *requests;
        /* bus-request.c: the request whose polkit check runs now, inside the method call's dispatch
         * (NULL otherwise): authorized at once, its caller was just heard from. */
        struct Request *authorizing;
} BusContext;
