/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Asynchronous polkit checks for the mutating methods, bounded per caller (bus-polkit.h). */

#include <assert.h>
#include <stdlib.h>
#include <sys/types.h>

#include "bus-polkit.h"
#include "log.h"
#include "macro.h"
#include "names.h"

typedef struct PolkitQuery PolkitQuery;

struct PolkitQuery {
        BusPolkit *polkit;
        sd_bus_message *message;
        sd_bus_slot *slot;
        BusPolkitCallback callback;
        void *userdata;
        uid_t uid; /* the sender's effective uid; (uid_t) -1 when the bus daemon did not say */
        PolkitQuery *prev, *next;
};

struct BusPolkit {
        sd_bus *bus;
        PolkitQuery *queries;
        unsigned n_pending;
        bool closing; /* bus_polkit_free() runs: no new checks */
};

int bus_polkit_new(sd_bus *bus, BusPolkit **ret) {
        BusPolkit *p;

        assert(bus && ret);

        p = calloc(1, sizeof(BusPolkit));
        if (!p)
                return -ENOMEM;
        p->bus = sd_bus_ref(bus);
        *ret = p;
        return 0;
}

static void query_free(PolkitQuery *q) {
        BusPolkit *p = q->polkit;

        if (q->prev)
                q->prev->next = q->next;
        else
                p->queries = q->next;
        if (q->next)
                q->next->prev = q->prev;
        p->n_pending--;

        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->message);
        free(q);
}

BusPolkit *bus_polkit_free(BusPolkit *p) {
        if (!p)
                return NULL;

        /* Each callback owns its userdata (the caller's pending request): tell it the check is
         * cancelled, so that it answers its caller and frees what it holds. Freeing the queries alone
         * leaked every pending request, and with their messages the whole bus connection. */
        p->closing = true;
        while (p->queries) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                PolkitQuery *q = p->queries;
                BusPolkitCallback callback = q->callback;
                sd_bus_message *message = sd_bus_message_ref(q->message);
                void *data = q->userdata;

                query_free(q);
                (void)sd_bus_error_set(
                        &error, DBUS_ERROR_ACCESS_DENIED,
                        "Authorization check cancelled: hostdevd is stopping");
                callback(message, -ECANCELED, &error, data);
                sd_bus_message_unref(message);
        }
        sd_bus_unref(p->bus);
        free(p);
        return NULL;
}

unsigned bus_polkit_pending(const BusPolkit *p) {
        return p ? p->n_pending : 0;
}

static int on_check_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        BusPolkitCallback callback = q->callback;
        sd_bus_message *message = sd_bus_message_ref(q->message);
        void *data = q->userdata;
        int authorized = 0, challenge = 0, r;

        /* Drop the query first: the callback may start another check. */
        query_free(q);

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);

                log_warning(
                        "polkit check failed: %s: %s", strna(e ? e->name : NULL),
                        strna(e ? e->message : NULL));
                (void)sd_bus_error_setf(
                        &error, "org.freedesktop.DBus.Error.AccessDenied", "Authorization check failed: %s",
                        strna(e ? e->message : NULL));
                r = -EACCES;
        } else {
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r < 0) {
                        log_warning_errno(r, "Unexpected reply from polkit: %m");
                        (void)sd_bus_error_setf(
                                &error, "org.freedesktop.DBus.Error.AccessDenied",
                                "Unexpected reply from polkit");
                } else
                        r = authorized ? 1 : 0;
        }

        callback(message, r, &error, data);
        sd_bus_message_unref(message);
        return 1;
}

static int append_details(sd_bus_message *m, char *const *details) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{ss}");
        if (r < 0)
                return r;
        for (char *const *d = details; d && d[0] && d[1]; d += 2) {
                r = sd_bus_message_append(m, "{ss}", d[0], d[1]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

int bus_polkit_check(
        BusPolkit *p, sd_bus_message *message, const char *action, char *const *details,
        BusPolkitCallback callback, void *userdata) {
        return bus_polkit_check_euid(p, message, (uid_t)-1, action, details, callback, userdata);
}

int bus_polkit_check_euid(
        BusPolkit *p, sd_bus_message *message, uid_t euid, const char *action, char *const *details,
        BusPolkitCallback callback, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender;
        PolkitQuery *q;
        unsigned n_uid = 0;
        int r;

        assert(p && message && action && callback);

        if (p->closing)
                return -ECANCELED;

        /* root needs no prompt. The euid comes from the bus daemon (SO_PEERCRED), not from the caller. */
        if (euid == (uid_t)-1) {
                r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID, &creds);
                if (r < 0 || sd_bus_creds_get_euid(creds, &euid) < 0)
                        euid = (uid_t)-1;
        }
        if (euid == 0) {
                callback(message, 1, NULL, userdata);
                return 0;
        }

        if (p->n_pending >= BUS_POLKIT_PENDING_MAX)
                return -EBUSY;
        /* Unknown uids share one count. */
        for (PolkitQuery *i = p->queries; i; i = i->next)
                n_uid += i->uid == euid;
        if (n_uid >= BUS_POLKIT_PENDING_PER_UID_MAX)
                return -EDQUOT;

        sender = sd_bus_message_get_sender(message);
        if (!sender)
                return -EBADMSG;

        r = sd_bus_message_new_method_call(
                p->bus, &call, POLKIT_BUS_NAME, POLKIT_OBJECT_PATH, POLKIT_INTERFACE, "CheckAuthorization");
        if (r < 0)
                return r;
        r = sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender, action);
        if (r < 0)
                return r;
        r = append_details(call, details);
        if (r < 0)
                return r;
        r = sd_bus_message_append(
                call, "us",
                sd_bus_message_get_allow_interactive_authorization(message) > 0
                        ? POLKIT_CHECK_ALLOW_USER_INTERACTION
                        : 0u,
                "");
        if (r < 0)
                return r;

        q = calloc(1, sizeof(PolkitQuery));
        if (!q)
                return -ENOMEM;
        q->polkit = p;
        q->uid = euid;
        q->callback = callback;
        q->userdata = userdata;
        q->message = sd_bus_message_ref(message);

        /* An interactive check waits for a human: no reply timeout shorter than polkit's own. */
        r = sd_bus_call_async(p->bus, &q->slot, call, on_check_reply, q, UINT64_MAX);
        if (r < 0) {
                sd_bus_message_unref(q->message);
                free(q);
                return r;
        }

        q->next = p->queries;
        if (q->next)
                q->next->prev = q;
        p->queries = q;
        p->n_pending++;
        return 0;
}
