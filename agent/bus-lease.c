/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Leases on the bus (bus-lease.h). Map:
 *   Manager.Acquire      bus_lease_method_acquire() -> request -> bus_lease_execute() -> on_lease_ready()
 *   Lease objects        property_get_*, method_release(), lease_find(), lease_node_enumerator()
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "bus-errors.h"
#include "bus-handoff.h"
#include "bus-lease.h"
#include "bus-resolve.h"
#include "bus-request.h"
#include "bus-util.h"
#include "escape.h"
#include "lease-manager.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "object-path.h"
#include "pci-address.h"
#include "strv.h"

int bus_lease_check_not_leased(BusContext *d, const char *address, sd_bus_error *error) {
        Lease *l = d->leases ? lease_manager_find_by_address(d->leases, address) : NULL;

        if (!l)
                return 0;
        (void)bus_error_setf(
                error, BUS_ERROR_BLOCKED, "%s is leased to pid %d (%s, %s): release the lease first",
                address, (int)l->record->pid, strna(l->comm), l->path);
        return -EBUSY;
}

int bus_lease_check_mdev_not_leased(BusContext *d, const char *uuid, sd_bus_error *error) {
        Lease *l = d->leases ? lease_manager_find_by_mdev(d->leases, uuid) : NULL;

        if (!l)
                return 0;
        (void)bus_error_setf(
                error, BUS_ERROR_BLOCKED, "mdev %s is leased to pid %d (%s, %s): release the lease first",
                uuid, (int)l->record->pid, strna(l->comm), l->path);
        return -EBUSY;
}

/* ---- Manager.Acquire ------------------------------------------------------------------------------- */

static int parse_policy(const char *s, LeasePolicy *ret, sd_bus_error *error) {
        LeasePolicy p = lease_policy_from_string(s);

        if (p < 0)
                return bus_error_setf_errno(
                        error, -EINVAL, "Invalid release policy '%s' (expected \"host\" or \"keep\")",
                        ESCAPE_QUOTE(s));
        if (!lease_policy_applies_to_function(p))
                return bus_error_setf_errno(
                        error, -EINVAL,
                        "Release policy '%s' applies to vGPU/mdev instances only, not to PCI functions",
                        ESCAPE_QUOTE(s));
        *ret = p;
        return 0;
}

/* a{sv} options into |ask|. */
static int read_options(BusContext *d, sd_bus_message *m, LeaseAsk *ask, sd_bus_error *error) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, LEASE_OPTION_PIDFD)) {
                        int fd;

                        r = sd_bus_message_read(m, "v", "h", &fd);
                        if (r < 0)
                                return bus_error_setf_errno(
                                        error, -EINVAL, "Option \"%s\" must be a file descriptor (h)", key);
                        if (ask->pidfd >= 0)
                                return bus_error_setf_errno(
                                        error, -EINVAL, "Option \"%s\" given twice", key);
                        ask->pidfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                        if (ask->pidfd < 0)
                                return -errno;
                } else if (streq(key, LEASE_OPTION_RELEASE)) {
                        const char *v;

                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r < 0)
                                return bus_error_setf_errno(
                                        error, -EINVAL, "Option \"%s\" must be a string", key);
                        r = parse_policy(v, &ask->default_policy, error);
                        if (r < 0)
                                return r;
                } else if (streq(key, LEASE_OPTION_RELEASE_POLICIES)) {
                        const char *dev, *v;

                        r = sd_bus_message_enter_container(m, 'v', "a{ss}");
                        if (r < 0)
                                return bus_error_setf_errno(
                                        error, -EINVAL, "Option \"%s\" must be a{ss}", key);
                        r = sd_bus_message_enter_container(m, 'a', "{ss}");
                        if (r < 0)
                                return r;
                        while ((r = sd_bus_message_read(m, "{ss}", &dev, &v)) > 0) {
                                char address[PCI_ADDRESS_STRING_MAX];
                                LeasePolicy p;
                                size_t n = strv_length(ask->policy_addresses);
                                LeasePolicy *np;

                                r = bus_resolve_device(d, dev, address, error);
                                if (r < 0)
                                        return r;
                                r = parse_policy(v, &p, error);
                                if (r < 0)
                                        return r;
                                if (strv_contains(ask->policy_addresses, address))
                                        return bus_error_setf_errno(
                                                error, -EINVAL, "Release policy for %s given twice",
                                                address);
                                if (n >= LEASE_DEVICES_MAX)
                                        return bus_error_setf_errno(
                                                error, -E2BIG, "Too many release policies");
                                np = reallocarray(ask->policies, n + 1, sizeof(LeasePolicy));
                                if (!np)
                                        return -ENOMEM;
                                ask->policies = np;
                                ask->policies[n] = p;
                                if (strv_extend(&ask->policy_addresses, address) < 0)
                                        return -ENOMEM;
                        }
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(m);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                } else if (streq(key, LEASE_OPTION_MDEV_RELEASE)) {
                        const char *v;
                        LeasePolicy p;

                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r < 0)
                                return bus_error_setf_errno(
                                        error, -EINVAL, "Option \"%s\" must be a string", key);
                        p = lease_policy_from_string(v);
                        if (!lease_policy_applies_to_mdev(p))
                                return bus_error_setf_errno(
                                        error, -EINVAL,
                                        "Invalid mdev release policy '%s' (expected \"remove\" or \"keep\")",
                                        ESCAPE_QUOTE(v));
                        ask->mdev_policy = p;
                } else if (streq(key, LEASE_OPTION_MDEVS)) {
                        const char *type, *parent;

                        r = sd_bus_message_enter_container(m, 'v', "a(ss)");
                        if (r < 0)
                                return bus_error_setf_errno(
                                        error, -EINVAL, "Option \"%s\" must be a(ss)", key);
                        if (ask->mdev_types)
                                return bus_error_setf_errno(
                                        error, -EINVAL, "Option \"%s\" given twice", key);
                        r = sd_bus_message_enter_container(m, 'a', "(ss)");
                        if (r < 0)
                                return r;
                        while ((r = sd_bus_message_read(m, "(ss)", &type, &parent)) > 0) {
                                /* As CreateMdev: nothing stored may read differently through the parser. */
                                if (!request_mdev_value_is_valid(type))
                                        return bus_error_setf_errno(
                                                error, -EINVAL,
                                                "Invalid mdev type '%s' (expected a type id or name)",
                                                ESCAPE_QUOTE(type));
                                if (*parent && !request_mdev_value_is_valid(parent))
                                        return bus_error_setf_errno(
                                                error, -EINVAL, "Invalid mdev parent '%s'",
                                                ESCAPE_QUOTE(parent));
                                if (strv_length(ask->mdev_types) >= LEASE_DEVICES_MAX)
                                        return bus_error_setf_errno(
                                                error, -E2BIG, "A lease holds at most %u mdevs",
                                                LEASE_DEVICES_MAX);
                                if (strv_extend(&ask->mdev_types, type) < 0 ||
                                    strv_extend(&ask->mdev_parents, parent) < 0)
                                        return -ENOMEM;
                        }
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(m);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                } else if (
                        streq(key, LEASE_OPTION_WHOLE_GROUP) || streq(key, LEASE_OPTION_DRY_RUN) ||
                        streq(key, LEASE_OPTION_VFIO_OWNER)) {
                        int b;

                        r = sd_bus_message_read(m, "v", "b", &b);
                        if (r < 0)
                                return bus_error_setf_errno(
                                        error, -EINVAL, "Option \"%s\" must be a boolean", key);
                        if (streq(key, LEASE_OPTION_DRY_RUN))
                                ask->dry_run = b;
                        else if (streq(key, LEASE_OPTION_VFIO_OWNER))
                                ask->vfio_owner = b;
                        else
                                ask->whole_group = b;
                } else
                        return bus_error_setf_errno(
                                error, -EINVAL,
                                "Unknown option '%s' (expected \"pidfd\", \"release\", \"release-policies\", "
                                "\"whole-group\", \"dry-run\", \"vfio-owner\", \"mdevs\", \"mdev-release\")",
                                ESCAPE_QUOTE(key));
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* The owner: the pidfd passed, or the caller. Its start time is read while the pidfd pins its pid, and
 * the process must still run after that read, so the pair names this very process. *ret_bus_euid: the
 * caller's euid when the bus daemon gave it (not read from /proc), for polkit; else (uid_t)-1. */
static int read_owner(sd_bus_message *m, LeaseAsk *ask, uid_t *ret_bus_euid, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        pid_t pid;
        int r;

        r = sd_bus_query_sender_creds(
                m, SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return bus_error_setf_errno(error, r, "Cannot tell the caller's user");
        ask->uid = uid;
        *ret_bus_euid = sd_bus_creds_get_augmented_mask(creds) & SD_BUS_CREDS_EUID ? (uid_t)-1 : uid;

        if (ask->pidfd >= 0) {
                r = pidfd_get_pid(ask->pidfd, &pid);
                if (r == -EBADF)
                        return bus_error_setf_errno(error, -EINVAL, "Option \"pidfd\" is not a pidfd");
                if (r < 0)
                        return bus_error_setf_errno(
                                error, -ESRCH,
                                "The process of the pidfd is gone or not visible to hostdevd");
        } else {
                r = sd_bus_creds_get_pid(creds, &pid);
                if (r < 0)
                        return bus_error_setf_errno(error, r, "Cannot tell the caller's pid");
                ask->pidfd = pidfd_open(pid, 0);
                if (ask->pidfd < 0)
                        return bus_error_setf_errno(
                                error, -errno, "Cannot open a pidfd of the caller (pid %d)", (int)pid);
        }
        ask->pid = pid;
        r = lease_read_start_time(NULL, pid, &ask->start_time);
        if (r < 0 || pidfd_exited(ask->pidfd))
                return bus_error_setf_errno(error, -ESRCH, "The lease owner (pid %d) is gone", (int)pid);
        return 0;
}

int bus_lease_method_acquire(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_strv_free_ char **devices = NULL;
        BusContext *d = userdata;
        LeaseAsk *ask;
        Request *q;
        int r;

        if (!d->leases)
                return bus_error_setf_errno(error, -EOPNOTSUPP, "Leases are not available");

        /* The "Acquire step:" lines time each step (tests/bench/lease.sh, with HOSTDEVD_LOG_TIME=1). */
        log_debug("Acquire step: bus call received");
        r = sd_bus_message_read_strv(m, &devices);
        if (r < 0)
                return r;

        q = request_new(d, m, REQUEST_ACQUIRE);
        if (!q)
                return -ENOMEM;
        q->execute = bus_lease_execute;
        ask = q->lease_ask = calloc(1, sizeof(LeaseAsk));
        if (!ask) {
                request_free(q);
                return -ENOMEM;
        }
        ask->pidfd = -EBADF;
        ask->default_policy = LEASE_POLICY_HOST;
        ask->mdev_policy = LEASE_POLICY_REMOVE;

        /* None is fine when the "mdevs" option asks for some (checked below). */
        if (strv_length(devices) > LEASE_DEVICES_MAX) {
                request_free(q);
                return bus_error_setf_errno(
                        error, -EINVAL, "A lease holds 1 to %u functions, %zu given", LEASE_DEVICES_MAX,
                        strv_length(devices));
        }
        STRV_FOREACH (dev, devices) {
                char address[PCI_ADDRESS_STRING_MAX];

                r = bus_resolve_device(d, *dev, address, error);
                if (r < 0) {
                        request_free(q);
                        return r;
                }
                if (strv_contains(ask->addresses, address)) {
                        request_free(q);
                        return bus_error_setf_errno(error, -EINVAL, "%s is named twice", address);
                }
                if (strv_extend(&ask->addresses, address) < 0) {
                        request_free(q);
                        return -ENOMEM;
                }
        }
        r = read_options(d, m, ask, error);
        if (r >= 0 && strv_length(devices) == 0 && strv_length(ask->mdev_types) == 0)
                r = bus_error_setf_errno(
                        error, -EINVAL, "A lease holds 1 to %u functions or mdevs, none given",
                        LEASE_DEVICES_MAX);
        if (r >= 0)
                r = read_owner(m, ask, &q->sender_euid, error);
        if (r < 0) {
                request_free(q);
                return r;
        }
        log_debug("Acquire step: owner read (pid %d)", (int)ask->pid);
        return request_start(q, HOSTDEVD_ACTION_ACQUIRE);
}

static int reply_lease(sd_bus_message *m, const char *path, char *const *members) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "o", path);
        if (r >= 0)
                r = sd_bus_message_append_strv(reply, (char **)members);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static void reply_lease_error(sd_bus_message *m, int error, const char *reason) {
        BusErrorKind kind;

        switch (error) {
        case -EBUSY:
                kind = BUS_ERROR_BLOCKED;
                break;
        case -EPERM:
                kind = BUS_ERROR_REFUSED;
                break;
        case -ENOENT:
                kind = BUS_ERROR_NOT_FOUND;
                break;
        case -EINVAL:
                kind = BUS_ERROR_INVALID_ARGUMENT;
                break;
        case -EBADMSG:
                kind = BUS_ERROR_CONFIG_INVALID;
                break;
        default:
                kind = BUS_ERROR_FAILED;
        }
        if (reason)
                (void)sd_bus_reply_method_errorf(m, bus_error_name(kind), "%s", reason);
        else
                (void)sd_bus_reply_method_errorf(
                        m, bus_error_name(kind), "Cannot acquire the devices: %s", strerror(-error));
}

static void on_lease_ready(int error, Lease *l, const char *reason, void *userdata) {
        _cleanup_strv_free_ char **members = NULL;
        Request *q = userdata;

        if (error < 0) {
                reply_lease_error(q->message, error, reason);
                request_free(q);
                return;
        }
        for (size_t i = 0; i < l->record->n_devices; i++)
                if (strv_extend(&members, l->record->devices[i].address) < 0)
                        break;
        for (size_t i = 0; i < l->record->n_mdevs; i++)
                if (strv_extend(&members, l->record->mdevs[i].uuid) < 0)
                        break;
        (void)reply_lease(q->message, l->path, members);
        log_debug("Acquire step: reply sent (%s)", l->path);
        request_free(q);
}

void bus_lease_execute(Request *q) {
        _cleanup_strv_free_ char **members = NULL;
        _cleanup_free_ char *reason = NULL;
        LeaseManager *m = q->ctx->leases;
        Lease *l;
        int r;

        if (q->type == REQUEST_RELEASE) {
                l = lease_manager_find_by_path(m, q->lease_path);
                if (!l)
                        (void)sd_bus_reply_method_errorf(
                                q->message, bus_error_name(BUS_ERROR_NOT_FOUND),
                                "No lease '%s' (ended already)", q->lease_path);
                else if (l->record->state != LEASE_STATE_ACTIVE)
                        (void)sd_bus_reply_method_errorf(
                                q->message, bus_error_name(BUS_ERROR_BLOCKED), "Lease '%s' is %s",
                                q->lease_path, lease_state_to_string(l->record->state));
                else {
                        r = lease_manager_release(m, l, "released by a caller");
                        if (r < 0)
                                reply_lease_error(q->message, r, NULL);
                        else
                                (void)sd_bus_reply_method_return(q->message, "");
                }
                request_free(q);
                return;
        }

        log_debug("Acquire step: caller checked, running");
        r = lease_manager_acquire(m, q->lease_ask, on_lease_ready, q, &members, &reason);
        if (r < 0) {
                reply_lease_error(q->message, r, reason);
                request_free(q);
                return;
        }
        if (r == 0) {
                /* dry-run: valid; "/" and the functions it would hold */
                (void)reply_lease(q->message, "/", members);
                request_free(q);
        }
        /* else on_lease_ready() replies */
}

/* ---- Lease objects --------------------------------------------------------------------------------- */

/* The vtable's userdata is the BusContext (lease_find()); the lease is looked up by path, so a call that
 * races the lease's end finds nothing rather than freed memory. */
static Lease *lease_of(void *userdata, const char *path) {
        BusContext *d = userdata;

        return d->leases && path ? lease_manager_find_by_path(d->leases, path) : NULL;
}

static int property_get_id(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Lease *l = lease_of(userdata, path);

        if (!l)
                return -ENOENT;

        return sd_bus_message_append(reply, "t", l->record->id);
}

static int property_get_devices(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Lease *l = lease_of(userdata, path);

        if (!l)
                return -ENOENT;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "s");
        for (size_t i = 0; r >= 0 && i < l->record->n_devices; i++)
                r = sd_bus_message_append(reply, "s", l->record->devices[i].address);
        for (size_t i = 0; r >= 0 && i < l->record->n_mdevs; i++)
                r = sd_bus_message_append(reply, "s", l->record->mdevs[i].uuid);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int property_get_policies(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Lease *l = lease_of(userdata, path);

        if (!l)
                return -ENOENT;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{ss}");
        for (size_t i = 0; r >= 0 && i < l->record->n_devices; i++)
                r = sd_bus_message_append(
                        reply, "{ss}", l->record->devices[i].address,
                        lease_policy_to_string(l->record->devices[i].policy));
        for (size_t i = 0; r >= 0 && i < l->record->n_mdevs; i++)
                r = sd_bus_message_append(
                        reply, "{ss}", l->record->mdevs[i].uuid,
                        lease_policy_to_string(l->record->mdevs[i].policy));
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int property_get_pid(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Lease *l = lease_of(userdata, path);

        if (!l)
                return -ENOENT;

        return sd_bus_message_append(reply, "u", (uint32_t)l->record->pid);
}

static int property_get_uid(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Lease *l = lease_of(userdata, path);

        if (!l)
                return -ENOENT;

        return sd_bus_message_append(reply, "u", (uint32_t)l->record->uid);
}

static int property_get_command(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Lease *l = lease_of(userdata, path);

        if (!l)
                return -ENOENT;

        return bus_message_append_text(reply, lease_manager_command(l->manager, l));
}

static int property_get_since(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Lease *l = lease_of(userdata, path);

        if (!l)
                return -ENOENT;

        return sd_bus_message_append(reply, "t", l->record->since_usec);
}

static int property_get_state(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Lease *l = lease_of(userdata, path);

        if (!l)
                return -ENOENT;

        return sd_bus_message_append(reply, "s", lease_state_to_string(l->record->state));
}

static int property_get_whole_group(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Lease *l = lease_of(userdata, path);

        if (!l)
                return -ENOENT;

        return sd_bus_message_append(reply, "b", (int)l->record->whole_group);
}

static int method_release(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Lease *l = lease_of(userdata, sd_bus_message_get_path(m));
        Request *q;

        if (!l)
                return bus_error_setf_errno(
                        error, -ENOENT, "No lease '%s'", strna(sd_bus_message_get_path(m)));
        q = request_new(userdata, m, REQUEST_RELEASE);
        if (!q)
                return -ENOMEM;
        q->execute = bus_lease_execute;
        q->lease_path = strdup(l->path);
        if (!q->lease_path) {
                request_free(q);
                return -ENOMEM;
        }
        return request_start(q, HOSTDEVD_ACTION_ACQUIRE);
}

static const sd_bus_vtable lease_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "t", property_get_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Devices", "as", property_get_devices, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Policies", "a{ss}", property_get_policies, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Pid", "u", property_get_pid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Uid", "u", property_get_uid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Command", "s", property_get_command, 0, 0),
        SD_BUS_PROPERTY("Since", "t", property_get_since, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("WholeGroup", "b", property_get_whole_group, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS(
                "Release", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_release, SD_BUS_VTABLE_UNPRIVILEGED),
        /* Handoff to the VMM (bus-handoff.c): computed at each read (Get, GetAll), never in a signal: not
         * in InterfacesAdded (sd-bus leaves EMITS_INVALIDATION properties out of signals), which Acquire
         * sends while the lease is prepared, when they say nothing yet and would cost a read of every
         * function's BARs; invalidated with each State change (bus_emitter_lease_changed()). */
        SD_BUS_PROPERTY(
                "QemuArgs", "as", bus_handoff_property_get_lease, 0,
                SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY(
                "CloudHypervisorArgs", "as", bus_handoff_property_get_lease, 0,
                SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY(
                "LibvirtHostdevXml", "s", bus_handoff_property_get_lease, 0,
                SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY(
                "VfioPaths", "as", bus_handoff_property_get_lease, 0,
                SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY(
                "MmioWindow", "(ttta(syttbbb))", bus_handoff_property_get_lease, 0,
                SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY(
                "Fingerprint", "s", bus_handoff_property_get_lease, 0,
                SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_METHOD_WITH_ARGS(
                "OpenVfioGroup", SD_BUS_ARGS("s", node), SD_BUS_RESULT("h", fd), method_open_vfio_group,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int lease_find(
        sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
        sd_bus_error *error) {
        BusContext *d = userdata;
        Lease *l;

        if (!d->leases)
                return 0;
        l = lease_manager_find_by_path(d->leases, path);
        if (!l)
                return 0;
        *found = d;
        return 1;
}

static int lease_node_enumerator(
        sd_bus *bus, const char *prefix, void *userdata, char ***nodes, sd_bus_error *error) {
        _cleanup_strv_free_ char **l = NULL;
        BusContext *d = userdata;

        for (Lease *i = d->leases ? lease_manager_first(d->leases) : NULL; i; i = i->next)
                if (strv_extend(&l, i->path) < 0)
                        return -ENOMEM;
        *nodes = TAKE_PTR(l);
        return 0;
}

int bus_lease_append_managed_objects(BusContext *d, sd_bus_message *reply, sd_bus_error *error) {
        for (Lease *i = d->leases ? lease_manager_first(d->leases) : NULL; i; i = i->next) {
                int r = bus_append_managed_object(
                        d->bus, reply, i->path, HOSTDEVD_LEASE_INTERFACE, lease_vtable, d, error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int bus_lease_add(BusContext *d) {
        int r;

        r = sd_bus_add_fallback_vtable(
                d->bus, NULL, HOSTDEVD_LEASES_PATH, HOSTDEVD_LEASE_INTERFACE, lease_vtable, lease_find, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", HOSTDEVD_LEASE_INTERFACE);
        r = sd_bus_add_node_enumerator(d->bus, NULL, HOSTDEVD_LEASES_PATH, lease_node_enumerator, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the lease enumerator: %m");
        return 0;
}
