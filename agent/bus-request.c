/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The mutating method calls of the Manager (bus-request.h): authorized with polkit, serialized per
 * function, run through the reconciler, answered about their own outcome.
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "bus-polkit.h"
#include "bus-request.h"
#include "escape.h"
#include "log.h"
#include "macro.h"
#include "module-index.h"
#include "module-policy.h"
#include "names.h"
#include "object-path.h"
#include "reconciler.h"
#include "strv.h"

static void request_begin(Request *q);

/* What a request is serialized by: its function's address, or its mdev's UUID; "" for none. */
static const char *request_key(const Request *q) {
        return q->address[0] ? q->address : q->uuid;
}

/* The request holds its function (or mdev): a later one for the same key waits. */
static bool request_holds_address(const Request *q) {
        return request_key(q)[0] &&
                (q->state == REQUEST_STATE_CHECKING || q->state == REQUEST_STATE_RUNNING);
}

Request *request_free(Request *q) {
        BusContext *d;
        bool next;

        if (!q)
                return NULL;
        d = q->ctx;
        next = request_holds_address(q);

        if (q->prev)
                q->prev->next = q->next;
        else
                d->requests = q->next;
        if (q->next)
                q->next->prev = q->prev;

        /* The oldest request waiting for this function goes next. Its reply comes after ours. */
        if (next)
                for (Request *i = d->requests; i; i = i->next)
                        if (i->state == REQUEST_STATE_QUEUED && streq(request_key(i), request_key(q))) {
                                request_begin(i);
                                break;
                        }

        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->message);
        free(q->driver);
        free(q->mdev_parent);
        free(q->mdev_type);
        free(q->load_module_denied);
        request_backup_free(q->backup);
        if (q->lease_ask) {
                lease_ask_done(q->lease_ask);
                free(q->lease_ask);
        }
        free(q->lease_path);
        free(q);
        return NULL;
}

static void request_reply_errno(Request *q, int error, const char *what) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (error == -EBADMSG && q->ctx->reconciler) {
                _cleanup_free_ char *joined = NULL;
                size_t len = 0;

                STRV_FOREACH (line, reconciler_config_errors(q->ctx->reconciler))
                        len += strlen(*line) + 1;
                joined = calloc(1, len + 1);
                if (joined)
                        STRV_FOREACH (line, reconciler_config_errors(q->ctx->reconciler)) {
                                if (*joined)
                                        strcat(joined, "\n");
                                strcat(joined, *line);
                        }
                (void)sd_bus_reply_method_errorf(
                        q->message, bus_error_name(BUS_ERROR_CONFIG_INVALID),
                        "%s: the desired-state files do not parse: %s", what,
                        joined && *joined ? joined : "see ConfigErrors");
                return;
        }
        if (error == -EUCLEAN && q->ctx->reconciler && reconciler_store_error(q->ctx->reconciler)) {
                (void)sd_bus_reply_method_errorf(
                        q->message, bus_error_name(BUS_ERROR_FAILED),
                        "%s: the ownership records cannot be read (%s); repair or remove the file", what,
                        reconciler_store_error(q->ctx->reconciler));
                return;
        }
        (void)bus_error_setf_errno(&e, error, "%s", what);
        (void)sd_bus_reply_method_error(q->message, &e);
}

#define REQUEST_MDEV_ROUNDS_MAX 4u

static void on_converged(Reconciler *rec, int error, void *userdata);

/* CreateMdev/RemoveMdev's job is done: reply from the model (is the instance there?) and the mdev's
 * planned state. One that did not get its way restores the request files as they were. */
static void on_mdev_converged(Reconciler *rec, Request *q) {
        _cleanup_free_ char *path = NULL, *msg = NULL;
        const Mdev *mdev = model_get_mdev(q->ctx->model, q->uuid);
        MdevStatusView v;
        bool done;
        int kind;

        reconciler_mdev_status(rec, q->uuid, &v);
        done = q->type == REQUEST_CREATE_MDEV ? mdev && v.state == DEVICE_STATE_CONVERGED : !mdev;
        if (done) {
                if (q->type == REQUEST_REMOVE_MDEV)
                        (void)sd_bus_reply_method_return(q->message, "");
                else if ((path = object_path_from_mdev_uuid(q->uuid)))
                        (void)sd_bus_reply_method_return(q->message, "o", path);
                else
                        (void)sd_bus_reply_method_errorf(
                                q->message, bus_error_name(BUS_ERROR_FAILED), "out of memory");
                request_free(q);
                return;
        }

        /* Done in sysfs, but the model may not have applied the instance's uevents yet (or, on 6.1, read
         * it before its mdev_type link): converge once more, which plans after every uevent received
         * so far. A few rounds at most: a create that got nowhere is pending for good. */
        if ((v.state == DEVICE_STATE_PENDING || v.state == DEVICE_STATE_CONVERGED) &&
            q->mdev_rounds < REQUEST_MDEV_ROUNDS_MAX) {
                q->mdev_rounds++;
                if (reconciler_converge(rec, on_converged, q) >= 0)
                        return;
        }

        /* pending (the parent has no instance left, a step waits) counts as failed here: the caller
         * asked for an instance now. */
        kind = bus_error_kind_from_device_state(v.state);
        if (kind < 0)
                kind = BUS_ERROR_FAILED;
        if (asprintf(
                    &msg, "mdev %s %s: %s", q->uuid,
                    q->type == REQUEST_CREATE_MDEV ? "not created" : "not removed",
                    *v.reason      ? v.reason
                            : mdev ? device_state_to_string(v.state)
                                   : "no parent has the type with an instance left") < 0)
                msg = NULL;
        if (q->backup)
                (void)reconciler_restore_requests(rec, q->backup);
        (void)sd_bus_reply_method_errorf(q->message, bus_error_name(kind), "%s", msg ?: "out of memory");
        request_free(q);
}

/* The job the request waited for is done: reply from the function's state. */
static void on_converged(Reconciler *rec, int error, void *userdata) {
        _cleanup_free_ char *msg = NULL;
        Request *q = userdata;
        DeviceStatusView v;
        int kind;

        if (error < 0) {
                if (q->backup)
                        (void)reconciler_restore_requests(rec, q->backup);
                request_reply_errno(q, error, "Cannot change devices");
                request_free(q);
                return;
        }

        if (q->type == REQUEST_APPLY) {
                (void)sd_bus_reply_method_return(q->message, "s", reconciler_manager_state(rec));
                request_free(q);
                return;
        }
        if (q->type == REQUEST_RESET_DRIVER) {
                (void)sd_bus_reply_method_return(q->message, "");
                request_free(q);
                return;
        }
        if (q->type == REQUEST_CREATE_MDEV || q->type == REQUEST_REMOVE_MDEV) {
                on_mdev_converged(rec, q);
                return;
        }

        reconciler_device_status(rec, q->address, &v);
        kind = bus_error_kind_from_device_state(v.state);
        if (kind < 0) {
                (void)sd_bus_reply_method_return(q->message, "");
                request_free(q);
                return;
        }

        /* A refused, blocked or failed request changes nothing: its declaration goes again, before the
         * caller hears of it (the restore's reload replaces the status read: the message first). */
        if (asprintf(
                    &msg, "%s %s: %s", q->address, device_state_to_string(v.state),
                    *v.reason               ? v.reason
                            : *v.last_error ? v.last_error
                                            : "no reason given") < 0)
                msg = NULL;
        if (q->backup)
                (void)reconciler_restore_requests(rec, q->backup);
        (void)sd_bus_reply_method_errorf(q->message, bus_error_name(kind), "%s", msg ?: "out of memory");
        request_free(q);
}

static void request_execute(Request *q) {
        Reconciler *rec = q->ctx->reconciler;
        _cleanup_free_ char *content = NULL;
        RequestKind kind = q->type == REQUEST_SET_NUMVFS ? REQUEST_SRIOV : REQUEST_DEVICE;
        int r;

        switch (q->type) {
        case REQUEST_CREATE_MDEV:
                /* One parent: the one named, or the one bus-manager.c picked for "". */
                r = request_format_mdev((char *[]){ q->mdev_parent, NULL }, q->mdev_type, q->uuid, &content);
                if (r >= 0)
                        r = reconciler_backup_requests(rec, REQUEST_MDEV, q->uuid, &q->backup);
                if (r < 0) {
                        request_reply_errno(q, r, "Cannot prepare the declaration");
                        request_free(q);
                        return;
                }
                r = reconciler_write_request(
                        rec, REQUEST_MDEV, q->uuid, content, q->flags & REQUEST_FLAG_PERSIST);
                if (r < 0) {
                        (void)reconciler_restore_requests(rec, q->backup);
                        request_reply_errno(q, r, "Cannot store the declaration");
                        request_free(q);
                        return;
                }
                r = reconciler_converge(rec, on_converged, q);
                if (r < 0) {
                        (void)reconciler_restore_requests(rec, q->backup);
                        request_reply_errno(q, r, "Cannot converge");
                        request_free(q);
                }
                return;

        case REQUEST_REMOVE_MDEV:
                r = reconciler_backup_requests(rec, REQUEST_MDEV, q->uuid, &q->backup);
                if (r >= 0)
                        r = reconciler_remove_requests(rec, REQUEST_MDEV, q->uuid);
                if (r == -ENOENT) {
                        (void)sd_bus_reply_method_errorf(
                                q->message, bus_error_name(BUS_ERROR_NOT_FOUND),
                                "No runtime declaration for mdev '%s' (CreateMdev makes one; an instance that a "
                                "desired-state file or someone else made is not RemoveMdev's)",
                                q->uuid);
                        request_free(q);
                        return;
                }
                if (r < 0) {
                        if (r == -EBADMSG)
                                (void)reconciler_restore_requests(rec, q->backup);
                        request_reply_errno(q, r, "Cannot remove the declaration");
                        request_free(q);
                        return;
                }
                r = reconciler_converge(rec, on_converged, q);
                if (r < 0) {
                        (void)reconciler_restore_requests(rec, q->backup);
                        request_reply_errno(q, r, "Cannot converge");
                        request_free(q);
                }
                return;

        case REQUEST_ACQUIRE:
        case REQUEST_RELEASE:
                q->execute(q);
                return;

        case REQUEST_RELOAD:
                r = reconciler_reload(rec);
                if (r < 0)
                        request_reply_errno(q, r, "Reload rejected");
                else
                        (void)sd_bus_reply_method_return(q->message, "");
                request_free(q);
                return;

        case REQUEST_APPLY:
        case REQUEST_RESET_DRIVER:
                if (q->type == REQUEST_RESET_DRIVER) {
                        r = reconciler_remove_requests(rec, REQUEST_DEVICE, q->address);
                        if (r == -ENOENT) {
                                (void)sd_bus_reply_method_errorf(
                                        q->message, bus_error_name(BUS_ERROR_NOT_FOUND),
                                        "No runtime declaration for '%s'", q->address);
                                request_free(q);
                                return;
                        }
                        if (r < 0 && r != -EBADMSG) {
                                request_reply_errno(q, r, "Cannot remove the declaration");
                                request_free(q);
                                return;
                        }
                }
                r = reconciler_converge(rec, on_converged, q);
                if (r < 0) {
                        request_reply_errno(q, r, "Cannot converge");
                        request_free(q);
                }
                return;

        case REQUEST_SET_DRIVER:
        case REQUEST_SET_NUMVFS:
                if (q->type == REQUEST_SET_DRIVER)
                        r = request_format_device(q->address, q->driver, q->flags, &content);
                else
                        r = request_format_sriov(q->address, q->num_vfs, q->driver, &content);
                if (r >= 0)
                        r = reconciler_backup_requests(rec, kind, q->address, &q->backup);
                if (r < 0) {
                        request_reply_errno(q, r, "Cannot prepare the declaration");
                        request_free(q);
                        return;
                }
                r = reconciler_write_request(
                        rec, kind, q->address, content, q->flags & REQUEST_FLAG_PERSIST);
                if (r < 0) {
                        (void)reconciler_restore_requests(rec, q->backup);
                        request_reply_errno(q, r, "Cannot store the declaration");
                        request_free(q);
                        return;
                }
                r = reconciler_converge(rec, on_converged, q);
                if (r < 0) {
                        (void)reconciler_restore_requests(rec, q->backup);
                        request_reply_errno(q, r, "Cannot converge");
                        request_free(q);
                }
                return;
        }
}

static int on_caller_checked(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Request *q = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        q->slot = sd_bus_slot_unref(q->slot);
        /* Gone: nobody can learn the outcome, and a later caller with the same intent asks again. */
        if (sd_bus_error_has_name(e, DBUS_ERROR_NAME_HAS_NO_OWNER)) {
                log_notice(
                        "%s%s%s: the caller %s disconnected before it could run, dropping the request",
                        sd_bus_message_get_member(q->message), request_key(q)[0] ? " of " : "",
                        request_key(q), strna(sd_bus_message_get_sender(q->message)));
                request_free(q);
                return 0;
        }
        if (e)
                log_debug(
                        "Cannot tell whether %s is connected (%s), running its request",
                        strna(sd_bus_message_get_sender(q->message)), strna(e->message));
        q->state = REQUEST_STATE_RUNNING;
        request_execute(q);
        return 0;
}

/* Authorized (and its turn): run it unless its caller is gone by now. The bus answers GetNameOwner in
 * order after the caller's disconnection, so a caller that left while polkit or the request before it
 * took their time is seen here. */
static void request_begin(Request *q) {
        const char *sender = sd_bus_message_get_sender(q->message);
        int r;

        q->state = REQUEST_STATE_CHECKING;
        /* A caller that asked for no reply does not wait for the outcome: leaving is fine then. Nor is
         * there anything to check for one authorized at once, in the dispatch of its own call (root: no
         * polkit query), that waits for no other request: it was heard from this very iteration. */
        if (sender && sd_bus_message_get_expect_reply(q->message) > 0 && q->ctx->authorizing != q) {
                r = sd_bus_call_method_async(
                        sd_bus_message_get_bus(q->message), &q->slot, DBUS_SERVICE_DBUS, DBUS_PATH_DBUS,
                        DBUS_INTERFACE_DBUS, "GetNameOwner", on_caller_checked, q, "s", sender);
                if (r >= 0)
                        return;
                log_debug_errno(r, "Cannot ask whether %s is connected: %m, running its request", sender);
        }
        q->state = REQUEST_STATE_RUNNING;
        request_execute(q);
}

/* Authorized: begin now, or after the request that holds the same function. */
static void request_admit(Request *q) {
        bool busy = false;
        unsigned n_queued = 0;

        if (request_key(q)[0])
                for (Request *i = q->ctx->requests; i; i = i->next) {
                        if (i == q || !streq(request_key(i), request_key(q)))
                                continue;
                        busy = busy || request_holds_address(i);
                        n_queued += i->state == REQUEST_STATE_QUEUED;
                }
        if (!busy) {
                request_begin(q);
                return;
        }
        if (n_queued >= REQUEST_QUEUED_PER_ADDRESS_MAX) {
                (void)sd_bus_reply_method_errorf(
                        q->message, bus_error_name(BUS_ERROR_FAILED),
                        "%s: too many requests waiting for it (%u)", request_key(q),
                        REQUEST_QUEUED_PER_ADDRESS_MAX);
                request_free(q);
                return;
        }
        q->state = REQUEST_STATE_QUEUED;
}

static void on_authorized(sd_bus_message *m, int r, const sd_bus_error *error, void *userdata);

static int request_authorize(Request *q, const char *action) {
        _cleanup_strv_free_ char **details = NULL;
        char numvfs[12];
        BusContext *ctx = q->ctx;
        Request *outer = ctx->authorizing;
        int r;

        if (q->address[0] &&
            (strv_extend(&details, POLKIT_DETAIL_PCI_ADDRESS) < 0 || strv_extend(&details, q->address) < 0))
                return -ENOMEM;
        if (q->driver && q->driver[0] &&
            (strv_extend(&details, POLKIT_DETAIL_DRIVER) < 0 || strv_extend(&details, q->driver) < 0))
                return -ENOMEM;
        if (q->type == REQUEST_CREATE_MDEV || q->type == REQUEST_REMOVE_MDEV) {
                if (strv_extend(&details, POLKIT_DETAIL_MDEV_UUID) < 0 ||
                    strv_extend(&details, q->uuid) < 0 ||
                    strv_extend(&details, POLKIT_DETAIL_MDEV_TYPE) < 0 ||
                    strv_extend(&details, strempty(q->mdev_type)) < 0 ||
                    strv_extend(&details, POLKIT_DETAIL_MDEV_PARENT) < 0 ||
                    strv_extend(&details, strempty(q->mdev_parent)) < 0)
                        return -ENOMEM;
        }
        if (q->type == REQUEST_ACQUIRE) {
                _cleanup_free_ char *joined = strv_join(q->lease_ask->addresses, " ");
                char pid[12];

                (void)snprintf(pid, sizeof(pid), "%d", (int)q->lease_ask->pid);
                if (!joined || strv_extend(&details, POLKIT_DETAIL_DEVICES) < 0 ||
                    strv_extend(&details, joined) < 0 || strv_extend(&details, POLKIT_DETAIL_PID) < 0 ||
                    strv_extend(&details, pid) < 0)
                        return -ENOMEM;
                if (q->lease_ask->mdev_types) {
                        /* The vGPU/mdev requests: types and parents ("" any) in order, ';'-separated
                         * (a type name has spaces; request_mdev_value_is_valid() refuses ';'). */
                        _cleanup_free_ char *types = strv_join(q->lease_ask->mdev_types, ";"),
                                            *parents = strv_join(q->lease_ask->mdev_parents, ";");

                        if (!types || !parents || strv_extend(&details, POLKIT_DETAIL_MDEV_TYPE) < 0 ||
                            strv_extend(&details, types) < 0 ||
                            strv_extend(&details, POLKIT_DETAIL_MDEV_PARENT) < 0 ||
                            strv_extend(&details, parents) < 0)
                                return -ENOMEM;
                }
        }
        if (q->type == REQUEST_SET_NUMVFS) {
                (void)snprintf(numvfs, sizeof(numvfs), "%" PRIu32, q->num_vfs);
                if (strv_extend(&details, POLKIT_DETAIL_SRIOV_NUMVFS) < 0 ||
                    strv_extend(&details, numvfs) < 0)
                        return -ENOMEM;
        }

        /* |q| may be freed by the time this returns (a denial answered at once): only ctx is used. */
        ctx->authorizing = q;
        r = bus_polkit_check_euid(
                ctx->polkit, q->message, q->sender_euid, action, details, on_authorized, q);
        ctx->authorizing = outer;
        if (r == -EBUSY)
                return sd_bus_reply_method_errorf(
                        q->message, bus_error_name(BUS_ERROR_FAILED),
                        "Too many pending authorization checks");
        if (r == -EDQUOT)
                return sd_bus_reply_method_errorf(
                        q->message, bus_error_name(BUS_ERROR_FAILED),
                        "Too many pending authorization checks of this user (%u)",
                        BUS_POLKIT_PENDING_PER_UID_MAX);
        return r;
}

static void on_authorized(sd_bus_message *m, int r, const sd_bus_error *error, void *userdata) {
        Request *q = userdata;

        if (r <= 0) {
                if (error && sd_bus_error_is_set(error))
                        (void)sd_bus_reply_method_error(q->message, error);
                else if (q->checking_load_module)
                        (void)sd_bus_reply_method_errorf(
                                q->message, bus_error_name(BUS_ERROR_ACCESS_DENIED), "%s",
                                q->load_module_denied);
                else
                        (void)sd_bus_reply_method_errorf(
                                q->message, bus_error_name(BUS_ERROR_ACCESS_DENIED), "Not authorized to %s",
                                q->type == REQUEST_RELOAD            ? "reload the desired state"
                                        : q->type == REQUEST_ACQUIRE ? "acquire devices"
                                        : q->type == REQUEST_RELEASE ? "release the lease"
                                        : q->type == REQUEST_CREATE_MDEV || q->type == REQUEST_REMOVE_MDEV
                                        ? "manage mdevs"
                                        : "change devices");
                request_free(q);
                return;
        }

        if (q->need_critical) {
                q->need_critical = false;
                r = request_authorize(q, HOSTDEVD_ACTION_OVERRIDE_CRITICAL);
                if (r < 0) {
                        request_reply_errno(q, r, "Authorization check failed");
                        request_free(q);
                } else if (r > 0) /* replied already (too many checks) */
                        request_free(q);
                return;
        }
        if (q->need_load_module) {
                q->need_load_module = false;
                q->checking_load_module = true;
                r = request_authorize(q, HOSTDEVD_ACTION_LOAD_MODULE);
                if (r < 0) {
                        request_reply_errno(q, r, "Authorization check failed");
                        request_free(q);
                } else if (r > 0)
                        request_free(q);
                return;
        }

        if (q->type == REQUEST_ACQUIRE)
                log_debug("Acquire step: authorized");
        request_admit(q);
}

/* Start a request: authorize |action|, then execute. Takes |q|. */
int request_start(Request *q, const char *action) {
        int r;

        r = request_authorize(q, action);
        if (r != 0) {
                /* < 0: failed before the check; > 0: replied already. Both end the request here. */
                request_free(q);
                return r < 0 ? r : 1;
        }
        return 1;
}

Request *request_new(BusContext *d, sd_bus_message *m, RequestType type) {
        Request *q = calloc(1, sizeof(Request));

        if (!q)
                return NULL;
        q->ctx = d;
        q->message = sd_bus_message_ref(m);
        q->type = type;
        q->state = REQUEST_STATE_AUTHORIZING;
        q->sender_euid = (uid_t)-1;
        /* Appended: the list is oldest first, so waiting requests begin in order. */
        if (!d->requests)
                d->requests = q;
        else {
                Request *last = d->requests;

                while (last->next)
                        last = last->next;
                last->next = q;
                q->prev = last;
        }
        return q;
}

int request_check_module(Request *q, const PciDevice *dev, const char *driver) {
        int v = dev ? module_index_check(dev, driver)
                    : (int)module_policy_decide(driver, NULL, NULL); /* VFs: vfio-pci or nothing */
        int k;

        if (v >= 0 && module_verdict_allowed(v))
                return 0;
        if (v < 0)
                k = asprintf(
                        &q->load_module_denied,
                        "Not authorized to name driver '%s' for %s: the module index cannot be read (%s), "
                        "so it needs %s",
                        driver, q->address, strerror(-v), HOSTDEVD_ACTION_LOAD_MODULE);
        else if (!dev)
                k = asprintf(
                        &q->load_module_denied,
                        "Not authorized to name VF driver '%s' for the VFs of %s: only vfio-pci is known "
                        "to be meant for VFs that do not exist yet, so it needs %s",
                        driver, q->address, HOSTDEVD_ACTION_LOAD_MODULE);
        else
                k = asprintf(
                        &q->load_module_denied,
                        "Not authorized to name driver '%s' for %s: %s, so loading it needs %s", driver,
                        q->address, module_verdict_to_string(v), HOSTDEVD_ACTION_LOAD_MODULE);
        if (k < 0) {
                q->load_module_denied = NULL;
                return -ENOMEM;
        }
        q->need_load_module = true;
        return 0;
}

void request_cancel_all(BusContext *d) {
        /* Waiting ones first, so that dropping a checking one starts none of them. */
        for (RequestState state = REQUEST_STATE_QUEUED; state <= REQUEST_STATE_CHECKING; state++)
                for (Request *q = d->requests, *next; q; q = next) {
                        next = q->next;
                        if (q->state != state)
                                continue;
                        (void)sd_bus_reply_method_errorf(
                                q->message, bus_error_name(BUS_ERROR_FAILED), "hostdevd is stopping");
                        request_free(q);
                }
}
