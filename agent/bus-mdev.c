/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The org.hostdevd1.Mdev objects: one per mediated device. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "bus-mdev.h"
#include "bus-util.h"
#include "bus-context.h"
#include "holders.h"
#include "log.h"
#include "macro.h"
#include "mdev.h"
#include "names.h"
#include "object-path.h"
#include "reconciler.h"
#include "strv.h"

static int property_get_uuid(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const Mdev *mdev = userdata;

        return sd_bus_message_append(reply, "s", mdev->uuid);
}

static int property_get_string_ptr(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        return bus_message_append_text(reply, *(char **)userdata);
}

static int property_get_parent_device(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const Mdev *mdev = userdata;
        _cleanup_free_ char *p = NULL;

        /* "/" when the parent is no PCI function (the XML's convention for an absent object). */
        if (mdev->parent_is_pci && mdev->parent) {
                p = object_path_from_pci_address(mdev->parent);
                if (!p)
                        return -ENOMEM;
        }
        return sd_bus_message_append(reply, "o", p ?: "/");
}

/* TypeName: the type's name attribute on the parent ("GRID T4-1Q"), "" when unknown. */
static int property_get_type_name(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const Mdev *mdev = userdata;
        BusContext *d = bus_get_slot_userdata(bus);
        const MdevParent *p = d && mdev->parent ? model_get_mdev_parent(d->model, mdev->parent) : NULL;

        for (size_t i = 0; p && mdev->type_id && i < p->n_types; i++)
                if (p->types[i].id && streq(p->types[i].id, mdev->type_id))
                        return bus_message_append_text(reply, strempty(p->types[i].name));
        return sd_bus_message_append(reply, "s", "");
}

/* VfioGroup: the group node a VMM opens (Documentation/driver-api/vfio.rst), "" without a group. */
static int property_get_vfio_group(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const Mdev *mdev = userdata;
        char node[sizeof(DEV_VFIO_DIR) + 16] = "";

        if (mdev->iommu_group >= 0)
                (void)snprintf(node, sizeof(node), DEV_VFIO_DIR "/%" PRIi32, mdev->iommu_group);
        return sd_bus_message_append(reply, "s", node);
}

/* Owner, State, StateReason: the reconciler's view of the instance (reconciler_mdev_status()). */
static int property_get_status(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const Mdev *mdev = userdata;
        BusContext *d = bus_get_slot_userdata(bus);
        MdevStatusView v;

        if (!d)
                return -ESTALE;
        reconciler_mdev_status(d->reconciler, mdev->uuid, &v);
        if (streq(property, "Owner"))
                return sd_bus_message_append(reply, "s", mdev_owner_to_string(v.owner));
        if (streq(property, "State"))
                return sd_bus_message_append(reply, "s", device_state_to_string(v.state));
        return bus_message_append_text(reply, v.reason);
}

/* a(is): (pid, command) of the processes holding the mdev's /dev/vfio/<group> or its VFIO cdev
 * /dev/vfio/devices/vfioN (holders.h). */
static int property_get_holders(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const Mdev *mdev = userdata;
        BusContext *d = bus_get_slot_userdata(bus);
        const Holder *holders = NULL;
        size_t n = 0;
        int r;

        if (!d)
                return -ESTALE;
        if (d->reconciler && reconciler_holders(d->reconciler, &holders, &n) < 0)
                n = 0;

        r = sd_bus_message_open_container(reply, 'a', "(is)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (!holder_holds_node(&holders[i], mdev->iommu_group, mdev->vfio_device))
                        continue;
                /* comm is whatever the process set (prctl(PR_SET_NAME)): any bytes. */
                r = sd_bus_message_open_container(reply, 'r', "is");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "i", (int32_t)holders[i].pid);
                if (r >= 0)
                        r = bus_message_append_text(reply, holders[i].comm);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get_errors(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const Mdev *mdev = userdata;

        return bus_message_append_text_strv(reply, mdev->errors);
}

#define EMITS SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE

static const sd_bus_vtable mdev_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Uuid", "s", property_get_uuid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SysfsPath", "s", property_get_string_ptr, offsetof(Mdev, syspath), EMITS),
        SD_BUS_PROPERTY("Type", "s", property_get_string_ptr, offsetof(Mdev, type_id), EMITS),
        SD_BUS_PROPERTY("Parent", "s", property_get_string_ptr, offsetof(Mdev, parent), EMITS),
        SD_BUS_PROPERTY("ParentDevice", "o", property_get_parent_device, 0, EMITS),
        SD_BUS_PROPERTY("IommuGroup", "i", NULL, offsetof(Mdev, iommu_group), EMITS),
        SD_BUS_PROPERTY("Driver", "s", property_get_string_ptr, offsetof(Mdev, driver), EMITS),
        SD_BUS_PROPERTY("Errors", "as", property_get_errors, 0, EMITS),
        SD_BUS_PROPERTY("TypeName", "s", property_get_type_name, 0, EMITS),
        SD_BUS_PROPERTY("VfioGroup", "s", property_get_vfio_group, 0, EMITS),
        SD_BUS_PROPERTY("VfioDevice", "s", property_get_string_ptr, offsetof(Mdev, vfio_device), EMITS),
        SD_BUS_PROPERTY("Owner", "s", property_get_status, 0, EMITS),
        SD_BUS_PROPERTY("State", "s", property_get_status, 0, EMITS),
        SD_BUS_PROPERTY("StateReason", "s", property_get_status, 0, EMITS),
        SD_BUS_PROPERTY("Holders", "a(is)", property_get_holders, 0, 0),
        SD_BUS_VTABLE_END,
};

static const struct {
        unsigned field;
        const char *property;
} mdev_field_properties[] = {
        { MDEV_FIELD_TYPE, "Type" },
        { MDEV_FIELD_PARENT, "Parent" },
        { MDEV_FIELD_PARENT, "ParentDevice" },
        { MDEV_FIELD_IOMMU_GROUP, "IommuGroup" },
        { MDEV_FIELD_DRIVER, "Driver" },
        { MDEV_FIELD_ERRORS, "Errors" },
        { MDEV_FIELD_SYSPATH, "SysfsPath" },
        { MDEV_FIELD_TYPE, "TypeName" },
        { MDEV_FIELD_IOMMU_GROUP, "VfioGroup" },
        { MDEV_FIELD_VFIO_DEVICE, "VfioDevice" },
        { BUS_MDEV_FIELD_STATUS, "Owner" },
        { BUS_MDEV_FIELD_STATUS, "State" },
        { BUS_MDEV_FIELD_STATUS, "StateReason" },
};

size_t bus_mdev_property_names(unsigned fields, const char *names[static BUS_MDEV_PROPERTIES_MAX]) {
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(mdev_field_properties) && n + 1 < BUS_MDEV_PROPERTIES_MAX; i++)
                if (fields & mdev_field_properties[i].field)
                        names[n++] = mdev_field_properties[i].property;
        names[n] = NULL;
        return n;
}

static int mdev_find(
        sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
        sd_bus_error *error) {
        BusContext *d = userdata;
        _cleanup_free_ char *uuid = NULL;
        const Mdev *mdev;
        const char *e;

        e = bus_path_child_element(path, HOSTDEVD_MDEVS_PATH);
        if (!e || object_path_element_to_mdev_uuid(e, &uuid) < 0)
                return 0;

        mdev = model_get_mdev(d->model, uuid);
        if (!mdev)
                return 0;

        *found = (void *)mdev;
        return 1;
}

static int mdev_node_enumerator(
        sd_bus *bus, const char *prefix, void *userdata, char ***nodes, sd_bus_error *error) {
        const Mdev *const *mdevs;
        BusContext *d = userdata;
        char **l;
        size_t n = 0;

        mdevs = model_get_mdevs(d->model, &n);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l[i] = object_path_from_mdev_uuid(mdevs[i]->uuid);
                if (!l[i]) {
                        strv_free(l); /* NULL-terminated at i: frees what was filled */
                        return -ENOMEM;
                }
        }

        *nodes = l;
        return 0;
}

int bus_mdev_append_managed_objects(BusContext *d, sd_bus_message *reply, sd_bus_error *error) {
        const Mdev *const *mdevs;
        size_t n = 0;
        int r;

        mdevs = model_get_mdevs(d->model, &n);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = object_path_from_mdev_uuid(mdevs[i]->uuid);

                if (!path)
                        return -ENOMEM;
                r = bus_append_managed_object(
                        d->bus, reply, path, HOSTDEVD_MDEV_INTERFACE, mdev_vtable, (void *)mdevs[i], error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int bus_mdev_add(BusContext *d) {
        int r;

        r = sd_bus_add_fallback_vtable(
                d->bus, NULL, HOSTDEVD_MDEVS_PATH, HOSTDEVD_MDEV_INTERFACE, mdev_vtable, mdev_find, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", HOSTDEVD_MDEV_INTERFACE);

        r = sd_bus_add_node_enumerator(d->bus, NULL, HOSTDEVD_MDEVS_PATH, mdev_node_enumerator, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the mdev enumerator: %m");

        return 0;
}
