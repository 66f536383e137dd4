/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include <uuid/uuid.h>

#include "bus-context.h"
#include "bus-device.h"
#include "bus-errors.h"
#include "bus-handoff.h"
#include "bus-lease.h"
#include "bus-manager.h"
#include "bus-resolve.h"
#include "bus-mdev.h"
#include "bus-request.h"
#include "bus-util.h"
#include "escape.h"
#include "intake.h"
#include "holders.h"
#include "log.h"
#include "macro.h"
#include "model.h"
#include "names.h"
#include "object-path.h"
#include "pci-address.h"
#include "reconciler.h"
#include "request.h"
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

static int property_get_hotplug_guard(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        return sd_bus_message_append(reply, "s", reconciler_hotplug_guard(d->reconciler));
}

static int property_get_early_bind_thread(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        return sd_bus_message_append(reply, "s", d->early_bind_thread ?: "off");
}

static int property_get_config_errors(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        /* Escaped where they quote a file already; this covers any text that is not. */
        return bus_message_append_text_strv(
                reply, d->reconciler ? reconciler_config_errors(d->reconciler) : NULL);
}

static int property_get_holder_tracking(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        return sd_bus_message_append(
                reply, "s", d->reconciler ? reconciler_holder_tracking(d->reconciler) : "scan");
}

static int property_get_critical_tracking(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;

        return sd_bus_message_append(
                reply, "s", d->reconciler ? reconciler_critical_tracking(d->reconciler) : "scan");
}

/* UnleasedHolders: a(usas), one entry per process (pid, comm, the PCI functions its nodes hold). */
static int property_get_unleased_holders(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;
        const PciDevice *const *devices = NULL;
        const Holder *holders = NULL;
        size_t n = 0, n_devices = 0;
        int r;

        if (d->reconciler)
                (void)reconciler_holders(d->reconciler, &holders, &n);
        if (d->model)
                devices = model_get_devices(d->model, &n_devices);

        r = sd_bus_message_open_container(reply, 'a', "(usas)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n;) {
                size_t end = i;

                while (end < n && holders[end].pid == holders[i].pid)
                        end++;
                if (reconciler_holder_is_leased(d->reconciler, holders[i].pid)) {
                        i = end;
                        continue;
                }
                r = sd_bus_message_open_container(reply, 'r', "usas");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "u", (uint32_t)holders[i].pid);
                if (r >= 0)
                        r = bus_message_append_text(reply, holders[i].comm);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'a', "s");
                for (size_t k = 0; r >= 0 && k < n_devices; k++) {
                        bool held = false;

                        for (size_t j = i; j < end; j++)
                                held = held || holder_holds_device(&holders[j], devices[k]);
                        if (held)
                                r = sd_bus_message_append(reply, "s", devices[k]->address);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
                i = end;
        }
        return sd_bus_message_close_container(reply);
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
                _cleanup_free_ char *mdev_arg = NULL;
                char value[12] = "";
                const char *address = a->address;

                if (a->type == PLAN_ACTION_SET_NUMVFS || a->type == PLAN_ACTION_SET_SRIOV_AUTOPROBE ||
                    a->type == PLAN_ACTION_SET_VGPU_TYPE)
                        (void)snprintf(value, sizeof(value), "%" PRIu32, a->value);
                /* mdev steps: the parent (its /sys/class/mdev_bus name when it is no PCI function) and
                 * "UUID", "UUID TYPE" (create) or "UUID NAME=VALUE" (an attribute). */
                if (a->type == PLAN_ACTION_MDEV_CREATE || a->type == PLAN_ACTION_MDEV_REMOVE ||
                    a->type == PLAN_ACTION_MDEV_SET_ATTR) {
                        if (!*address)
                                address = strempty(a->parent);
                        if (asprintf(
                                    &mdev_arg, "%s%s%s%s%s", a->uuid,
                                    a->type == PLAN_ACTION_MDEV_REMOVE ? "" : " ",
                                    a->type == PLAN_ACTION_MDEV_CREATE             ? strempty(a->mdev_type)
                                            : a->type == PLAN_ACTION_MDEV_SET_ATTR ? strempty(a->attr_name)
                                                                                   : "",
                                    a->type == PLAN_ACTION_MDEV_SET_ATTR ? "=" : "",
                                    a->type == PLAN_ACTION_MDEV_SET_ATTR ? strempty(a->attr_value) : "") < 0)
                                return -ENOMEM;
                }
                /* Driver names and reasons quote sysfs values and file names: any bytes. */
                r = sd_bus_message_open_container(reply, 'r', "ussss");
                if (r >= 0)
                        r = sd_bus_message_append(
                                reply, "uss", a->transaction, plan_action_type_to_string(a->type), address);
                if (r >= 0)
                        r = bus_message_append_text(reply, mdev_arg ?: a->driver ?: value);
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
        /* Then the mdev and vendor vGPU instances: "mdev:UUID" and "vgpu:VF". */
        for (size_t i = 0; i < plan->n_mdevs; i++) {
                const PlanMdev *pm = &plan->mdevs[i];
                _cleanup_free_ char *key = NULL;

                if (asprintf(
                            &key, "%s:%s", pm->uuid[0] ? "mdev" : "vgpu",
                            pm->uuid[0] ? pm->uuid : strempty(pm->parent)) < 0)
                        return -ENOMEM;
                r = sd_bus_message_open_container(reply, 'r', "sss");
                if (r >= 0)
                        r = bus_message_append_text(reply, key);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", device_state_to_string(pm->state));
                if (r >= 0)
                        r = bus_message_append_text(reply, pm->reason);
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

/* ---- mutations: validate, then bus-request.c authorizes, serializes, acts and replies ---------- */

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

static int method_get_device_by_name(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;
        char address[PCI_ADDRESS_STRING_MAX];
        _cleanup_free_ char *path = NULL;
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        if (!device_name_is_valid(name))
                return bus_error_setf_errno(error, -EINVAL, "Not a device name: '%s'", ESCAPE_QUOTE(name));
        r = bus_resolve_device(d, name, address, error);
        if (r < 0)
                return r;
        path = object_path_from_pci_address(address);
        if (!path)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "o", path);
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
        r = bus_resolve_device(d, address, q->address, error);
        if (r >= 0)
                r = bus_lease_check_not_leased(d, q->address, error);
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
        q = request_new(d, m, REQUEST_RESET_DRIVER);
        if (!q)
                return -ENOMEM;
        /* An address needs no model check: a declaration for a function that is gone can still be
         * dropped. A name or path must name a function now. */
        if (pci_address_from_string(address, &a) >= 0)
                pci_address_format(&a, q->address);
        else {
                r = bus_resolve_device(d, address, q->address, error);
                if (r < 0) {
                        request_free(q);
                        return r;
                }
        }
        r = bus_lease_check_not_leased(d, q->address, error);
        if (r < 0) {
                request_free(q);
                return r;
        }
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
        r = bus_resolve_device(d, pf, q->address, error);
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

/* ---- mdevs (issue 14) ------------------------------------------------------------------------ */

/* CreateMdev's flags (dbus/org.hostdevd1.xml). */
#define CREATE_MDEV_FLAG_PERSIST UINT64_C(0x1)

/* The UUID argument of CreateMdev/RemoveMdev in the kernel's lowercase form, or a bus error. */
static int parse_mdev_uuid(const char *s, char ret[static MDEV_UUID_STRING_MAX], sd_bus_error *error) {
        size_t len = strlen(s);

        if (len + 1 != MDEV_UUID_STRING_MAX)
                return bus_error_setf_errno(error, -EINVAL, "Not a UUID: '%s'", ESCAPE_QUOTE(s));
        for (size_t i = 0; i <= len; i++)
                ret[i] = (char)tolower((unsigned char)s[i]);
        if (!mdev_uuid_is_valid(ret))
                return bus_error_setf_errno(error, -EINVAL, "Not a UUID: '%s'", ESCAPE_QUOTE(s));
        return 0;
}

/* The type of |p| whose id or name is |type|, NULL if none. */
static const MdevType *parent_find_type(const MdevParent *p, const char *type) {
        for (size_t i = 0; i < p->n_types; i++)
                if ((p->types[i].id && streq(p->types[i].id, type)) ||
                    (p->types[i].name && streq(p->types[i].name, type)))
                        return &p->types[i];
        return NULL;
}

static int method_create_mdev(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;
        const char *parent, *type, *uuid, *chosen = NULL;
        const MdevParent *const *parents;
        uint32_t best = 0;
        uint64_t flags;
        MdevStatusView v;
        size_t n = 0;
        Request *q;
        int r;

        r = sd_bus_message_read(m, "ssst", &parent, &type, &uuid, &flags);
        if (r < 0)
                return r;

        if (flags & ~CREATE_MDEV_FLAG_PERSIST)
                return bus_error_setf_errno(
                        error, -EINVAL, "Invalid flags 0x%" PRIx64 " (expected 0x1 \"persist\" or 0)",
                        flags);
        if (*parent && !request_mdev_value_is_valid(parent))
                return bus_error_setf_errno(
                        error, -EINVAL, "Invalid mdev parent '%s'", ESCAPE_QUOTE(parent));
        if (!request_mdev_value_is_valid(type))
                return bus_error_setf_errno(
                        error, -EINVAL, "Invalid mdev type '%s' (expected a type id or name)",
                        ESCAPE_QUOTE(type));
        if (*parent && !model_get_mdev_parent(d->model, parent))
                return bus_error_setf_errno(error, -ENOENT, "No mdev parent '%s'", parent);
        /* "": the parent with the type that has the most instances left (the first by name on a tie,
         * or when none has any: the create then fails and says so); stored as Parent=, so the request
         * names one parent as a desired-state file does. */
        parents = model_get_mdev_parents(d->model, &n);
        for (size_t i = 0; i < n; i++) {
                const MdevType *t;

                if ((*parent && !streq(parents[i]->name, parent)) ||
                    !(t = parent_find_type(parents[i], type)))
                        continue;
                if (!chosen || t->available_instances > best) {
                        chosen = parents[i]->name;
                        best = t->available_instances;
                }
        }
        if (!chosen)
                return bus_error_setf_errno(
                        error, -ENOENT, "No mdev type '%s' on %s%s", type,
                        *parent ? "parent " : "any parent", parent);

        q = request_new(d, m, REQUEST_CREATE_MDEV);
        if (!q)
                return -ENOMEM;
        if (*uuid) {
                r = parse_mdev_uuid(uuid, q->uuid, error);
                /* A lease's instance: its declaration is the lease's until the lease ends. */
                if (r >= 0)
                        r = bus_lease_check_mdev_not_leased(d, q->uuid, error);
                if (r < 0) {
                        request_free(q);
                        return r;
                }
        } else {
                uuid_t u;

                uuid_generate_random(u);
                uuid_unparse_lower(u, q->uuid);
        }
        /* An instance that exists and that hostdevd does not manage is foreign: never taken over. */
        reconciler_mdev_status(d->reconciler, q->uuid, &v);
        if (model_get_mdev(d->model, q->uuid) && v.owner != MDEV_OWNER_HOSTDEVD) {
                (void)bus_error_setf(
                        error, BUS_ERROR_REFUSED,
                        "mdev %s exists and is not hostdevd's (foreign): not taken over", q->uuid);
                request_free(q);
                return -EEXIST;
        }
        q->mdev_parent = strdup(chosen);
        q->mdev_type = strdup(type);
        if (!q->mdev_parent || !q->mdev_type) {
                request_free(q);
                return -ENOMEM;
        }
        q->flags = flags & CREATE_MDEV_FLAG_PERSIST ? REQUEST_FLAG_PERSIST : 0;
        return request_start(q, HOSTDEVD_ACTION_MANAGE_MDEVS);
}

static int method_remove_mdev(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusContext *d = userdata;
        const char *uuid;
        const Mdev *mdev;
        Request *q;
        int r;

        r = sd_bus_message_read(m, "s", &uuid);
        if (r < 0)
                return r;

        q = request_new(d, m, REQUEST_REMOVE_MDEV);
        if (!q)
                return -ENOMEM;
        r = parse_mdev_uuid(uuid, q->uuid, error);
        if (r >= 0)
                r = bus_lease_check_mdev_not_leased(d, q->uuid, error);
        if (r < 0) {
                request_free(q);
                return r;
        }
        /* The details polkit rules see: what the instance is now, when it exists. */
        mdev = model_get_mdev(d->model, q->uuid);
        q->mdev_parent = strdup(mdev ? strempty(mdev->parent) : "");
        q->mdev_type = strdup(mdev ? strempty(mdev->type_id) : "");
        if (!q->mdev_parent || !q->mdev_type) {
                request_free(q);
                return -ENOMEM;
        }
        return request_start(q, HOSTDEVD_ACTION_MANAGE_MDEVS);
}

/*
 * ListDevices: the columns of `hostdevctl list` for every function, one struct each, in address order:
 * (address, class, class name, vendor id, device id, vendor name, device name, driver, desired driver,
 * state, IOMMU group, NUMA node, SR-IOV role, num VFs, total VFs, VF index, PF address). About 18
 * marshalling calls per function where GetManagedObjects needs ~200 (dbus/org.hostdevd1.xml).
 */
static int method_list_devices(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const PciDevice *const *devices;
        BusContext *d = userdata;
        size_t n = 0;
        int r;

        devices = model_get_devices(d->model, &n);
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(susqqsssssiisuuis)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const PciDevice *dev = devices[i];
                DeviceStatusView v;

                reconciler_device_status(d->reconciler, dev->address, &v);
                r = sd_bus_message_open_container(reply, 'r', "susqqsssssiisuuis");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "su", dev->address, dev->class_code);
                if (r >= 0)
                        r = bus_message_append_text(reply, dev->class_name);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "qq", dev->vendor_id, dev->device_id);
                if (r >= 0)
                        r = bus_message_append_text(reply, dev->vendor_name);
                if (r >= 0)
                        r = bus_message_append_text(reply, dev->device_name);
                if (r >= 0)
                        r = bus_message_append_text(reply, dev->driver);
                if (r >= 0)
                        r = bus_message_append_text(reply, v.desired_driver);
                if (r >= 0)
                        r = sd_bus_message_append(
                                reply, "siis", device_state_to_string(v.state), dev->iommu_group,
                                dev->numa_node, strempty(sriov_role_to_string(dev->sriov_role)));
                if (r >= 0)
                        r = sd_bus_message_append(
                                reply, "uui", dev->sriov_num_vfs, dev->sriov_total_vfs, dev->vf_index);
                if (r >= 0)
                        r = bus_message_append_text(reply, dev->physfn);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
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
                "HotplugGuard", "s", property_get_hotplug_guard, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY(
                "EarlyBindThread", "s", property_get_early_bind_thread, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY(
                "ConfigErrors", "as", property_get_config_errors, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY(
                "HolderTracking", "s", property_get_holder_tracking, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY(
                "CriticalTracking", "s", property_get_critical_tracking, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY(
                "UnleasedHolders", "a(usas)", property_get_unleased_holders, 0,
                SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
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
                "CreateMdev", SD_BUS_ARGS("s", parent, "s", type, "s", uuid, "t", flags),
                SD_BUS_RESULT("o", mdev), method_create_mdev, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "RemoveMdev", SD_BUS_ARGS("s", uuid), SD_BUS_NO_RESULT, method_remove_mdev,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "GetDeviceByAddress", SD_BUS_ARGS("s", address), SD_BUS_RESULT("o", device),
                method_get_device_by_address, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "GetDeviceByName", SD_BUS_ARGS("s", name), SD_BUS_RESULT("o", device),
                method_get_device_by_name, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "GetMdevByUuid", SD_BUS_ARGS("s", uuid), SD_BUS_RESULT("o", mdev), method_get_mdev_by_uuid,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "Acquire", SD_BUS_ARGS("as", devices, "a{sv}", options),
                SD_BUS_RESULT("o", lease, "as", devices), bus_lease_method_acquire,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "ListDevices", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(susqqsssssiisuuis)", devices),
                method_list_devices, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "ListIommuGroups", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(uas)", groups), method_list_iommu_groups,
                SD_BUS_VTABLE_UNPRIVILEGED),
        /* Handoff to the VMM (bus-handoff.c). */
        SD_BUS_METHOD_WITH_ARGS(
                "CheckFingerprint", SD_BUS_ARGS("as", devices, "s", fingerprint),
                SD_BUS_RESULT("b", match, "as", differences), method_check_fingerprint,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS(
                "GetDevicesByVfioNode", SD_BUS_ARGS("s", node), SD_BUS_RESULT("ao", devices),
                method_get_devices_by_vfio_node, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/*
 * GetManagedObjects at the root, answered here before sd-bus's own object manager sees it (a node
 * callback runs before the standard interfaces): the same objects, interfaces and properties
 * (bus_append_managed_object()), built by walking the model once instead of sd-bus's find callback
 * and property lookup per object and per property, which cost about 4x the reply itself at 4096
 * functions. A new interface on the device, mdev or lease paths must be added here too. Anything else
 * (another method, arguments where none are expected) goes on to sd-bus.
 */
static int on_root_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusContext *d = userdata;
        const char *signature;
        int r;

        if (!sd_bus_message_is_method_call(m, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"))
                return 0;
        signature = sd_bus_message_get_signature(m, true);
        if (!signature || *signature)
                return 0;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{oa{sa{sv}}}");
        if (r < 0)
                return r;
        r = bus_device_append_managed_objects(d, reply, error);
        if (r < 0)
                return r;
        r = bus_mdev_append_managed_objects(d, reply, error);
        if (r < 0)
                return r;
        r = bus_lease_append_managed_objects(d, reply, error);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                return r;
        return 1;
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

        r = sd_bus_add_object(d->bus, NULL, HOSTDEVD_ROOT_PATH, on_root_message, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the GetManagedObjects handler: %m");

        return 0;
}
