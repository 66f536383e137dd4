/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Asynchronous polkit checks on the event loop (the polkit actions of hostdevd(8)):
 * org.freedesktop.PolicyKit1.Authority.CheckAuthorization with the subject
 * ("system-bus-name", {"name": sender}), the action, details (a{ss}), and
 * AllowUserInteraction (flag 1) when the caller's message allows
 * interactive authorization. Callers whose effective uid is 0
 * (sd_bus_query_sender_creds) skip polkit. At most
 * BUS_POLKIT_PENDING_MAX checks wait at a time, and at most
 * BUS_POLKIT_PENDING_PER_UID_MAX of them for one effective uid (as the bus
 * daemon reports it), so that one local user cannot take every slot from
 * the operators' own calls.
 *
 * polkit's interface: polkit(8), org.freedesktop.PolicyKit1.Authority.xml:
 *   CheckAuthorization(IN (sa{sv}) subject, IN s action_id, IN a{ss} details, IN u flags,
 *                      IN s cancellation_id, OUT (bba{ss}) result)
 */

#include <stdbool.h>

#include <systemd/sd-bus.h>

#define BUS_POLKIT_PENDING_MAX 64u
#define BUS_POLKIT_PENDING_PER_UID_MAX 16u

#define POLKIT_BUS_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_OBJECT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
#define POLKIT_CHECK_ALLOW_USER_INTERACTION 1u

typedef struct BusPolkit BusPolkit;

/*
 * The outcome of one check for |message|: r > 0 allowed, r == 0 denied (the
 * callback should reply org.freedesktop.DBus.Error.AccessDenied), r < 0 the
 * check itself failed (polkit unreachable: deny too, with the reason in
 * |error|). Runs on the loop, possibly before bus_polkit_check() returns
 * (uid 0).
 */
typedef void (*BusPolkitCallback)(sd_bus_message *message, int r, const sd_bus_error *error, void *userdata);

int bus_polkit_new(sd_bus *bus, BusPolkit **ret);
/*
 * Cancels the pending checks: each callback runs (once) with r == -ECANCELED and
 * org.freedesktop.DBus.Error.AccessDenied in |error| (deny, and free the userdata). NULL-safe.
 */
BusPolkit *bus_polkit_free(BusPolkit *p);

/*
 * Check |action| for the sender of |message| with |details| (strv of key,
 * value pairs; may be NULL). The callback runs exactly once unless this
 * returns < 0: -EBUSY when BUS_POLKIT_PENDING_MAX checks wait already,
 * -EDQUOT when BUS_POLKIT_PENDING_PER_UID_MAX of the sender's uid do,
 * -ECANCELED from a callback run by bus_polkit_free(), -ENOMEM, -errno from sd-bus.
 */
int bus_polkit_check(
        BusPolkit *p, sd_bus_message *message, const char *action, char *const *details,
        BusPolkitCallback callback, void *userdata);
/*
 * As bus_polkit_check(), with the sender's euid known already: |euid| as the bus daemon gave it for the
 * connection that sent |message| (sd_bus_query_sender_creds(), SD_BUS_CREDS_EUID: the peer's
 * credentials when it connected, which a unique name keeps for its lifetime), so the check asks the bus
 * daemon no second time. (uid_t)-1: unknown, asked as bus_polkit_check() does.
 */
int bus_polkit_check_euid(
        BusPolkit *p, sd_bus_message *message, uid_t euid, const char *action, char *const *details,
        BusPolkitCallback callback, void *userdata);

unsigned bus_polkit_pending(const BusPolkit *p);
