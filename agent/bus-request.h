/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The Manager's mutating method calls (Reload, Apply, SetDeviceDriver, ResetDeviceDriver, SetNumVFs,
 * CreateMdev, RemoveMdev; dbus/org.hostdevd1.xml), from arrival to reply. bus-manager.c validates the
 * arguments and fills a Request; this module does the rest, as hostnamed's handlers read: authorize, act,
 * reply.
 *
 * A request's life: AUTHORIZING (polkit asked asynchronously, never for uid 0; an allow-critical
 * request also needs org.hostdevd1.override-critical, a driver whose module is not meant for the
 * function org.hostdevd1.load-module) -> QUEUED (only while another request for the same function
 * runs) -> CHECKING (is the caller still connected? a request whose caller left is dropped, since
 * nobody could learn its outcome) -> RUNNING (the request file is written or removed and the
 * reconciler converges; the reply is built from the function's state then). Requests naming a
 * function run one at a time per address, in the order they were authorized: each caller is
 * answered about its own request, and a failed one restores the files the request before it
 * committed. At most REQUEST_QUEUED_PER_ADDRESS_MAX wait for one function. Reload and Apply name
 * none and never wait. CreateMdev and RemoveMdev are serialized the same way per mdev UUID.
 *
 * The requests in flight are listed in BusContext.requests, oldest first. Loop thread only.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "bus-context.h"
#include "mdev.h"
#include "pci-address.h"
#include "pci-device.h"
#include "lease-manager.h"
#include "request.h"

typedef enum RequestType {
        REQUEST_RELOAD,
        REQUEST_APPLY,
        REQUEST_SET_DRIVER,
        REQUEST_RESET_DRIVER,
        REQUEST_SET_NUMVFS,
        REQUEST_CREATE_MDEV,
        REQUEST_REMOVE_MDEV,
        REQUEST_ACQUIRE, /* bus-lease.c: Manager.Acquire */
        REQUEST_RELEASE, /* bus-lease.c: Lease.Release */
} RequestType;

typedef enum RequestState {
        REQUEST_STATE_AUTHORIZING,
        REQUEST_STATE_QUEUED,
        REQUEST_STATE_CHECKING,
        REQUEST_STATE_RUNNING,
} RequestState;

/* Authorized requests waiting for one function at a time: more get Error.Failed at once. */
#define REQUEST_QUEUED_PER_ADDRESS_MAX 16u

typedef struct Request Request;

struct Request {
        BusContext *ctx;
        sd_bus_message *message;
        RequestType type;
        RequestState state;
        char address[PCI_ADDRESS_STRING_MAX]; /* "" for Reload, Apply and the mdev requests */
        /* CreateMdev/RemoveMdev: the instance's UUID (lowercase; the key they are serialized by, as
         * address is for the others), the parent ("" any) and the type as the caller named them. */
        char uuid[MDEV_UUID_STRING_MAX];
        char *mdev_parent, *mdev_type;
        unsigned mdev_rounds; /* converges run for it beyond the first (REQUEST_MDEV_ROUNDS_MAX) */
        char *driver; /* SetDeviceDriver: driver; SetNumVFs: VF driver ("" none) */
        uint32_t num_vfs;
        unsigned flags; /* REQUEST_FLAG_* (request.h) */
        bool need_critical; /* allow-critical: org.hostdevd1.override-critical as well */
        /* The driver's module is not meant for the function: org.hostdevd1.load-module as well; the
         * message of its denial (module-policy.h). */
        bool need_load_module, checking_load_module;
        char *load_module_denied;
        RequestBackup *backup; /* request files before this call, to undo a refused one */
        sd_bus_slot *slot; /* CHECKING: the GetNameOwner call */
        /* The caller's euid when the method read it already (Acquire: read_owner()), for polkit's root
         * shortcut without asking the bus daemon again; (uid_t)-1 unknown (request_new()). */
        uid_t sender_euid;
        struct LeaseAsk *lease_ask; /* ACQUIRE: what is asked (lease-manager.h) */
        /* ACQUIRE, RELEASE: runs the authorized request and replies (bus-lease.c, which sets it: a
         * callback up, so this room does not include its user). */
        void (*execute)(Request *q);
        char *lease_path; /* RELEASE: the lease's object path */
        Request *prev, *next; /* ctx->requests, oldest first */
};

/* A new request for method call |m|, appended to ctx->requests. NULL on OOM. */
Request *request_new(BusContext *ctx, sd_bus_message *m, RequestType type);
/* Unlink and free |q|; the oldest request waiting for its function begins. Returns NULL. */
Request *request_free(Request *q);

/*
 * Whether naming |driver| may make hostdevd load a module that is not meant for function |dev|
 * (NULL: the VFs of a PF, which do not exist yet); if so the request needs
 * org.hostdevd1.load-module too. Checked before anything is written, so a request file only names a
 * module that passed (module-policy.h). Returns 0 or -ENOMEM.
 */
int request_check_module(Request *q, const PciDevice *dev, const char *driver);

/* Authorize |action| for |q|, then run it and reply. Takes |q|. Returns 1 (the method handler's
 * "handled": the reply comes later or came already), or -errno when nothing could start. */
int request_start(Request *q, const char *action);

/* At stop, before the reconciler goes: answer (org.hostdevd1.Error.Failed) and free the requests that
 * wait for their function or for the bus to confirm their caller; running ones are answered when the
 * reconciler cancels what they wait for. */
void request_cancel_all(BusContext *ctx);
