/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <stdlib.h>

#include "bus-errors.h"
#include "bus-manager.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"
#include "monitor.h"
#include "names.h"
#include "object-path.h"
#include "pci-address.h"

static int property_get_version(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", HOSTDEVD_VERSION);
}

static int property_get_device_count(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        size_t n = 0;

        (void)model_get_devices(d->model, &n);
        return sd_bus_message_append(reply, "u", (uint32_t)n);
}

static int property_get_mdev_count(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        size_t n = 0;

        (void)model_get_mdevs(d->model, &n);
        return sd_bus_message_append(reply, "u", (uint32_t)n);
}

static int property_get_iommu_enabled(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;

        return sd_bus_message_append(reply, "b", (int)model_iommu_enabled(d->model));
}

static int property_get_iommu_reason(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;

        return sd_bus_message_append(reply, "s", strempty(model_iommu_reason(d->model)));
}

static int property_get_event_source(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;

        return sd_bus_message_append(reply, "s", d->monitor ? monitor_get_source(d->monitor) : "");
}

/* a(sssssu): (parent, type id, name, description, device_api, available_instances), parents sorted by name.
 */
static int property_get_mdev_types(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
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
        Daemon *d = userdata;
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
                return bus_error_setf_errno(error, r, "Not a PCI address: '%s'", address);
        pci_address_format(&a, canonical);

        if (!model_get_device(d->model, canonical))
                return bus_error_setf_errno(error, -ENOENT, "No PCI function '%s'", canonical);

        path = object_path_from_pci_address(canonical);
        if (!path)
                return -ENOMEM;

        return sd_bus_reply_method_return(m, "o", path);
}

static int method_get_mdev_by_uuid(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
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
                return bus_error_setf_errno(error, -EINVAL, "Not a UUID: '%s'", uuid);
        for (size_t i = 0; i <= len; i++)
                lower[i] = (char)tolower((unsigned char)uuid[i]);
        if (!mdev_uuid_is_valid(lower))
                return bus_error_setf_errno(error, -EINVAL, "Not a UUID: '%s'", uuid);

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
        Daemon *d = userdata;
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
        SD_BUS_PROPERTY(
                "Rescans", "t", NULL, offsetof(Daemon, rescans), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
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

int bus_manager_add(Daemon *d) {
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
