/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "bus-errors.h"
#include "bus-manager.h"
#include "bus-polkit.h"
#include "bus-context.h"
#include "intake.h"
#include "bus-util.h"
#include "escape.h"
#include "log.h"
#include "macro.h"
#include "module-index.h"
#include "module-policy.h"
#include "names.h"
#include "object-path.h"
#include "pci-address.h"
#include "reconciler.h"
#include "strv.h"

static int property_get_version(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", HOSTDEVD_VERSION);
}

static int property_get_device_count(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;
        size_t n = 0;

        (void)model_get_devices(d->model, &n);
        return sd_bus_message_append(reply, "u", (uint32_t)n);
}

static int property_get_mdev_count(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;
        size_t n = 0;

        (void)model_get_mdevs(d->model, &n);
        return sd_bus_message_append(reply, "u", (uint32_t)n);
}

static int property_get_rescans(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        return sd_bus_message_append(reply, "t", intake_rescans(d->intake));
}

static int property_get_iommu_enabled(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        return sd_bus_message_append(reply, "b", (int)model_iommu_enabled(d->model));
}

static int property_get_iommu_reason(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        return bus_message_append_text(reply, model_iommu_reason(d->model));
}

static int property_get_event_source(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        return sd_bus_message_append(reply, "s", strempty(d->event_source));
}

/* a(sssssu): (parent, type id, name, description, device_api, available_instances), parents sorted by name.
 */
static int property_get_mdev_types(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;
        const MdevParent *const *parents;
        size_t n = 0;
        int r;

        parents = model_get_mdev_parents(d->model, &n);

        r = sd_bus_message_open_container(reply, 'a', "(sssssu)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < parents[i]->n_types; j++) {
                        const MdevType *t = &parents[i]->types[j];

                        r = sd_bus_message_append(
                                reply, "(sssssu)", parents[i]->name, strempty(t->id), strempty(t->name),
                                strempty(t->description), strempty(t->device_api), t->available_instances);
                        if (r < 0)
                                return r;
                }
        return sd_bus_message_close_container(reply);
}

static int method_get_device_by_address(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;
        char canonical[PCI_ADDRESS_STRING_MAX];
        _cleanup_free_ char *path = NULL;
        const char *address;
        PciAddress a;
        int r;

        r = sd_bus_message_read(m, "s", &address);
        if (r < 0)
                return r;

        r = pci_address_from_string(address, &a);
        if (r < 0)
                return bus_error_setf_errno(error, r, "Not a PCI address: '%s'", ESCAPE_QUOTE(address));
        pci_address_format(&a, canonical);

        if (!model_get_device(d->model, canonical))
                return bus_error_setf_errno(error, -ENOENT, "No PCI function '%s'", canonical);

        path = object_path_from_pci_address(canonical);
        if (!path)
                return -ENOMEM;

        return sd_bus_reply_method_return(m, "o", path);
}

static int method_get_mdev_by_uuid(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;
        _cleanup_free_ char *path = NULL;
        char lower[MDEV_UUID_STRING_MAX];
        const char *uuid;
        size_t len;
        int r;

        r = sd_bus_message_read(m, "s", &uuid);
        if (r < 0)
                return r;

        /* "any hex case": the model keys mdevs by the kernel's lowercase form. */
        len = strlen(uuid);
        if (len + 1 != sizeof(lower))
                return bus_error_setf_errno(error, -EINVAL, "Not a UUID: '%s'", ESCAPE_QUOTE(uuid));
        for (size_t i = 0; i <= len; i++)
                lower[i] = (char)tolower((unsigned char)uuid[i]);
        if (!mdev_uuid_is_valid(lower))
                return bus_error_setf_errno(error, -EINVAL, "Not a UUID: '%s'", ESCAPE_QUOTE(uuid));

        if (!model_get_mdev(d->model, lower))
                return bus_error_setf_errno(error, -ENOENT, "No mdev '%s'", lower);

        path = object_path_from_mdev_uuid(lower);
        if (!path)
                return -ENOMEM;

        return sd_bus_reply_method_return(m, "o", path);
}

typedef struct GroupMember {
        int32_t group;
        size_t index; /* position in the model's address-sorted device array */
        const char *address;
} GroupMember;

static int group_member_compare(const void *a, const void *b) {
        const GroupMember *x = a, *y = b;

        if (x->group != y->group)
                return x->group < y->group ? -1 : 1;
        /* Within a group keep the model's address order (qsort is not stable). */
        return x->index < y->index ? -1 : x->index > y->index;
}

/* a(uas): every IOMMU group with its member functions, from the devices' iommu_group links. */
static int method_list_iommu_groups(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ GroupMember *members = NULL;
        const PciDevice *const *devices;
        BusContext *d = userdata;
        size_t n = 0, n_members = 0;
        int r;

        devices = model_get_devices(d->model, &n);
        if (n > 0) {
                members = calloc(n, sizeof(GroupMember));
                if (!members)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (devices[i]->iommu_group >= 0)
                        members[n_members++] = (GroupMember){
                                .group = devices[i]->iommu_group,
                                .index = i,
                                .address = devices[i]->address,
                        };
        if (n_members > 0)
                qsort(members, n_members, sizeof(GroupMember), group_member_compare);

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(uas)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_members;) {
                int32_t group = members[i].group;

                r = sd_bus_message_open_container(reply, 'r', "uas");
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "u", (uint32_t)group);
                if (r < 0)
                        return r;
                r = sd_bus_message_open_container(reply, 'a', "s");
                if (r < 0)
                        return r;
                for (; i < n_members && members[i].group == group; i++) {
                        r = sd_bus_message_append(reply, "s", members[i].address);
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;

        return sd_bus_send(NULL, reply, NULL);
}

static int property_get_state(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        return sd_bus_message_append(
                reply, "s", d->reconciler ? reconciler_manager_state(d->reconciler) : "converged");
}

static int property_get_generation(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        return sd_bus_message_append(reply, "t", d->reconciler ? reconciler_generation(d->reconciler) : 0);
}

static int property_get_config_errors(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        /* Escaped where they quote a file already; this covers any text that is not. */
        return bus_message_append_text_strv(
                reply, d->reconciler ? reconciler_config_errors(d->reconciler) : NULL);
}

/* Plan(): (t generation, a(ussss) actions, a(sss) devices, as conflicts). */
static int method_plan(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        BusContext *d = userdata;
        int r;

        r = reconciler_plan(d->reconciler, &plan);
        if (r < 0)
                return bus_error_setf_errno(error, r, "Failed to plan");

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "t", reconciler_generation(d->reconciler));
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ussss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < plan->n_actions; i++) {
                const PlanAction *a = &plan->actions[i];
                char value[12] = "";

                if (a->type == PLAN_ACTION_SET_NUMVFS || a->type == PLAN_ACTION_SET_SRIOV_AUTOPROBE)
                        (void)snprintf(value, sizeof(value), "%" PRIu32, a->value);
                /* Driver names and reasons quote sysfs values and file names: any bytes. */
                r = sd_bus_message_open_container(reply, 'r', "ussss");
                if (r >= 0)
                        r = sd_bus_message_append(
                                reply, "uss", a->transaction, plan_action_type_to_string(a->type),
                                a->address);
                if (r >= 0)
                        r = bus_message_append_text(reply, a->driver ?: value);
                if (r >= 0)
                        r = bus_message_append_text(reply, a->reason);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < plan->n_devices; i++) {
                r = sd_bus_message_open_container(reply, 'r', "sss");
                if (r >= 0)
                        r = sd_bus_message_append(
                                reply, "ss", plan->devices[i].address,
                                device_state_to_string(plan->devices[i].state));
                if (r >= 0)
                        r = bus_message_append_text(reply, plan->devices[i].reason);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        /* The rules the resolver overrode, as it words them (desired_state_resolve()). */
        r = bus_message_append_text_strv(reply, plan->conflicts);
        if (r < 0)
                return r;

        return sd_bus_send(NULL, reply, NULL);
}

/* ---- mutations: validate, authorize (polkit, asynchronous), act, reply when converged -------------- */

typedef enum RequestType {
        REQUEST_RELOAD,
        REQUEST_APPLY,
        REQUEST_SET_DRIVER,
        REQUEST_RESET_DRIVER,
        REQUEST_SET_NUMVFS,
} RequestType;

/*
 * A request's life: AUTHORIZING (polkit may be asked) -> QUEUED (only while another request for the
 * same function runs) -> CHECKING (is the caller still connected?) -> RUNNING (request_execute():
 * its outcome is awaited, then replied). Requests that name a function (SetDeviceDriver,
 * ResetDeviceDriver, SetNumVFs: the address) run one at a time per address, in the order they were
 * authorized: each is answered about its own request, and a failed one restores the files that the
 * request before it committed. Reload and Apply name none and never wait.
 */
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
        char address[PCI_ADDRESS_STRING_MAX]; /* "" for Reload and Apply */
        char *driver; /* SetDeviceDriver: driver; SetNumVFs: VF driver ("" none) */
        uint32_t num_vfs;
        unsigned flags;
        bool need_critical; /* allow-critical: org.hostdevd1.override-critical as well */
        /* The driver's module is not meant for the function: org.hostdevd1.load-module as well; the
         * message of its denial (module-policy.h). */
        bool need_load_module, checking_load_module;
        char *load_module_denied;
        RequestBackup *backup; /* request files before this call, to undo a refused one */
        sd_bus_slot *slot; /* CHECKING: the GetNameOwner call */
        Request *prev, *next; /* d->requests, oldest first */
};

static void request_begin(Request *q);

/* The request holds its function: a later one for the same address waits. */
static bool request_holds_address(const Request *q) {
        return q->address[0] && (q->state == REQUEST_STATE_CHECKING || q->state == REQUEST_STATE_RUNNING);
}

static Request *request_free(Request *q) {
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
                        if (i->state == REQUEST_STATE_QUEUED && streq(i->address, q->address)) {
                                request_begin(i);
                                break;
                        }

        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->message);
        free(q->driver);
        free(q->load_module_denied);
        request_backup_free(q->backup);
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
                        sd_bus_message_get_member(q->message), q->address[0] ? " of " : "", q->address,
                        strna(sd_bus_message_get_sender(q->message)));
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
        /* A caller that asked for no reply does not wait for the outcome: leaving is fine then. */
        if (sender && sd_bus_message_get_expect_reply(q->message) > 0) {
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

        if (q->address[0])
                for (Request *i = q->ctx->requests; i; i = i->next) {
                        if (i == q || !streq(i->address, q->address))
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
                        "%s: too many requests waiting for it (%u)", q->address,
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
        int r;

        if (q->address[0] &&
            (strv_extend(&details, POLKIT_DETAIL_PCI_ADDRESS) < 0 || strv_extend(&details, q->address) < 0))
                return -ENOMEM;
        if (q->driver && q->driver[0] &&
            (strv_extend(&details, POLKIT_DETAIL_DRIVER) < 0 || strv_extend(&details, q->driver) < 0))
                return -ENOMEM;
        if (q->type == REQUEST_SET_NUMVFS) {
                (void)snprintf(numvfs, sizeof(numvfs), "%" PRIu32, q->num_vfs);
                if (strv_extend(&details, POLKIT_DETAIL_SRIOV_NUMVFS) < 0 ||
                    strv_extend(&details, numvfs) < 0)
                        return -ENOMEM;
        }

        r = bus_polkit_check(q->ctx->polkit, q->message, action, details, on_authorized, q);
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
                                q->type == REQUEST_RELOAD ? "reload the desired state" : "change devices");
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

        request_admit(q);
}

/* Start a request: authorize |action|, then execute. Takes |q|. */
static int request_start(Request *q, const char *action) {
        int r;

        r = request_authorize(q, action);
        if (r != 0) {
                /* < 0: failed before the check; > 0: replied already. Both end the request here. */
                request_free(q);
                return r < 0 ? r : 1;
        }
        return 1;
}

static Request *request_new(BusContext *d, sd_bus_message *m, RequestType type) {
        Request *q = calloc(1, sizeof(Request));

        if (!q)
                return NULL;
        q->ctx = d;
        q->message = sd_bus_message_ref(m);
        q->type = type;
        q->state = REQUEST_STATE_AUTHORIZING;
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

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Request *q = request_new(userdata, m, REQUEST_RELOAD);

        if (!q)
                return -ENOMEM;
        return request_start(q, HOSTDEVD_ACTION_RELOAD);
}

static int method_apply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Request *q = request_new(userdata, m, REQUEST_APPLY);

        if (!q)
                return -ENOMEM;
        return request_start(q, HOSTDEVD_ACTION_MANAGE_DEVICES);
}

/* Canonical address of an existing function, or a bus error naming the value. */
static int parse_device_address(
        BusContext *d, const char *s, char ret[static PCI_ADDRESS_STRING_MAX], sd_bus_error *error) {
        PciAddress a;

        if (pci_address_from_string(s, &a) < 0)
                return bus_error_setf_errno(error, -EINVAL, "Not a PCI address: '%s'", ESCAPE_QUOTE(s));
        pci_address_format(&a, ret);
        if (!model_get_device(d->model, ret))
                return bus_error_setf_errno(error, -ENOENT, "No PCI function '%s'", ret);
        return 0;
}

/*
 * Whether naming |driver| may make hostdevd load a module that is not meant for function |dev| (|dev|
 * NULL: the VFs of a PF, which do not exist yet): then the request needs org.hostdevd1.load-module too
 * (root callers pass it without asking polkit). Checked before anything is written, so a request file
 * only names a module that passed (module-policy.h). Returns 0 or -ENOMEM.
 */
static int request_check_module(Request *q, const PciDevice *dev, const char *driver) {
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

static int method_set_device_driver(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_strv_free_ char **flags = NULL;
        BusContext *d = userdata;
        const char *address, *driver, *bad = NULL;
        DriverSpec spec = {};
        Request *q;
        unsigned bits;
        int r;

        r = sd_bus_message_read(m, "ss", &address, &driver);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &flags);
        if (r < 0)
                return r;

        q = request_new(d, m, REQUEST_SET_DRIVER);
        if (!q)
                return -ENOMEM;
        r = parse_device_address(d, address, q->address, error);
        if (r < 0) {
                request_free(q);
                return r;
        }
        if (driver_spec_parse(driver, &spec) < 0 || spec.kind == DRIVER_KIND_UNSET) {
                driver_spec_done(&spec);
                request_free(q);
                return bus_error_setf_errno(
                        error, -EINVAL, "Invalid driver '%s' (expected a driver name, \"host\" or \"none\")",
                        ESCAPE_QUOTE(driver));
        }
        if (spec.kind == DRIVER_KIND_NAMED) {
                r = request_check_module(q, model_get_device(d->model, q->address), driver);
                if (r < 0) {
                        driver_spec_done(&spec);
                        request_free(q);
                        return r;
                }
        }
        driver_spec_done(&spec);
        if (request_flags_parse(
                    flags, REQUEST_FLAG_PERSIST | REQUEST_FLAG_WHOLE_GROUP | REQUEST_FLAG_ALLOW_CRITICAL,
                    &bits, &bad) < 0) {
                request_free(q);
                return bus_error_setf_errno(
                        error, -EINVAL,
                        "Invalid flag '%s' (expected \"persist\", \"whole-group\", \"allow-critical\", each once)",
                        ESCAPE_QUOTE(strna(bad)));
        }
        q->flags = bits;
        q->need_critical = bits & REQUEST_FLAG_ALLOW_CRITICAL;
        q->driver = strdup(driver);
        if (!q->driver) {
                request_free(q);
                return -ENOMEM;
        }
        return request_start(q, HOSTDEVD_ACTION_MANAGE_DEVICES);
}

static int method_reset_device_driver(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;
        const char *address;
        PciAddress a;
        Request *q;
        int r;

        r = sd_bus_message_read(m, "s", &address);
        if (r < 0)
                return r;
        /* No model check: a declaration for a function that is gone can still be dropped. */
        if (pci_address_from_string(address, &a) < 0)
                return bus_error_setf_errno(
                        error, -EINVAL, "Not a PCI address: '%s'", ESCAPE_QUOTE(address));

        q = request_new(d, m, REQUEST_RESET_DRIVER);
        if (!q)
                return -ENOMEM;
        pci_address_format(&a, q->address);
        return request_start(q, HOSTDEVD_ACTION_MANAGE_DEVICES);
}

static int method_set_num_vfs(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_strv_free_ char **flags = NULL;
        BusContext *d = userdata;
        const char *pf, *vf_driver, *bad = NULL;
        const PciDevice *dev;
        DriverSpec spec = {};
        uint32_t num_vfs;
        Request *q;
        unsigned bits;
        int r;

        r = sd_bus_message_read(m, "sus", &pf, &num_vfs, &vf_driver);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &flags);
        if (r < 0)
                return r;

        q = request_new(d, m, REQUEST_SET_NUMVFS);
        if (!q)
                return -ENOMEM;
        r = parse_device_address(d, pf, q->address, error);
        if (r < 0) {
                request_free(q);
                return r;
        }
        if (*vf_driver && (driver_spec_parse(vf_driver, &spec) < 0 || spec.kind == DRIVER_KIND_UNSET)) {
                driver_spec_done(&spec);
                request_free(q);
                return bus_error_setf_errno(
                        error, -EINVAL,
                        "Invalid VF driver '%s' (expected a driver name, \"host\", \"none\" or \"\")",
                        ESCAPE_QUOTE(vf_driver));
        }
        if (*vf_driver && spec.kind == DRIVER_KIND_NAMED) {
                r = request_check_module(q, NULL, vf_driver);
                if (r < 0) {
                        driver_spec_done(&spec);
                        request_free(q);
                        return r;
                }
        }
        driver_spec_done(&spec);
        if (request_flags_parse(flags, REQUEST_FLAG_PERSIST, &bits, &bad) < 0) {
                request_free(q);
                return bus_error_setf_errno(
                        error, -EINVAL, "Invalid flag '%s' (expected \"persist\", once)",
                        ESCAPE_QUOTE(strna(bad)));
        }

        dev = model_get_device(d->model, q->address);
        if (dev->sriov_role != SRIOV_ROLE_PF) {
                (void)bus_error_setf(error, BUS_ERROR_REFUSED, "%s is not an SR-IOV PF", q->address);
                request_free(q);
                return -EPERM;
        }
        if (num_vfs > dev->sriov_total_vfs) {
                (void)bus_error_setf(
                        error, BUS_ERROR_REFUSED,
                        "%s: %" PRIu32 " VFs requested, sriov_totalvfs is %" PRIu32, q->address, num_vfs,
                        dev->sriov_total_vfs);
                request_free(q);
                return -ERANGE;
        }

        q->num_vfs = num_vfs;
        q->flags = bits;
        q->driver = strdup(vf_driver);
        if (!q->driver) {
                request_free(q);
                return -ENOMEM;
        }
        return request_start(q, HOSTDEVD_ACTION_MANAGE_SRIOV);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY(
                "DeviceCount", "u", property_get_device_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MdevCount", "u", property_get_mdev_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY(
                "IommuEnabled", "b", property_get_iommu_enabled, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY(
                "IommuReason", "s", property_get_iommu_reason, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("EventSource", "s", property_get_event_source, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY(
                "MdevTypes", "a(sssssu)", property_get_mdev_types, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Rescans", "t", property_get_rescans, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Generation", "t", property_get_generation, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY(
                "ConfigErrors", "as", property_get_config_errors, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS(
                "Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "Plan", SD_BUS_NO_ARGS,
                SD_BUS_RESULT("t", generation, "a(ussss)", actions, "a(sss)", devices, "as", conflicts),
                method_plan, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "Apply", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", state), method_apply,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "SetDeviceDriver", SD_BUS_ARGS("s", address, "s", driver, "as", flags), SD_BUS_NO_RESULT,
                method_set_device_driver, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "ResetDeviceDriver", SD_BUS_ARGS("s", address), SD_BUS_NO_RESULT, method_reset_device_driver,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "SetNumVFs", SD_BUS_ARGS("s", pf, "u", num_vfs, "s", vf_driver, "as", flags),
                SD_BUS_NO_RESULT, method_set_num_vfs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "GetDeviceByAddress", SD_BUS_ARGS("s", address), SD_BUS_RESULT("o", device),
                method_get_device_by_address, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "GetMdevByUuid", SD_BUS_ARGS("s", uuid), SD_BUS_RESULT("o", mdev), method_get_mdev_by_uuid,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "ListIommuGroups", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(uas)", groups), method_list_iommu_groups,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

void bus_manager_cancel_requests(BusContext *d) {
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

int bus_manager_add(BusContext *d) {
        int r;

        r = sd_bus_add_object_vtable(
                d->bus, NULL, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, manager_vtable, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", HOSTDEVD_MANAGER_INTERFACE);

        r = sd_bus_add_object_manager(d->bus, NULL, HOSTDEVD_ROOT_PATH);
        if (r < 0)
                return log_error_errno(
                        r, "Failed to register the object manager at %s: %m", HOSTDEVD_ROOT_PATH);

        return 0;
}
