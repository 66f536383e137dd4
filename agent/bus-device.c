/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The org.hostdevd1.Device objects: one per PCI function, found through a fallback vtable. */

#include <stdbool.h>
#include <stdlib.h>

#include "bus-device.h"
#include "bus-util.h"
#include "bus-context.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "object-path.h"
#include "strv.h"
#include "pci-device.h"
#include "reconciler.h"

/*
 * Generic getters: sd-bus passes userdata + the vtable entry's offset, so
 * userdata points at the field itself. Absent strings are "" (the XML's convention).
 */
static int property_get_char_array(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        return bus_message_append_text(reply, (const char *)userdata);
}

static int property_get_string_ptr(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        return bus_message_append_text(reply, *(char **)userdata);
}

static int property_get_bool_field(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        int b = *(bool *)userdata;

        return sd_bus_message_append_basic(reply, 'b', &b);
}

static int property_get_strv_field(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        return bus_message_append_text_strv(reply, *(char ***)userdata);
}

static int property_get_serial(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const PciDevice *dev = userdata;
        char buf[sizeof("xx-xx-xx-xx-xx-xx-xx-xx")] = "";

        /* As lspci prints the DSN: most significant byte (upper dword's top byte) first. */
        if (dev->has_serial) {
                uint64_t s = dev->serial;

                (void)snprintf(
                        buf, sizeof(buf), "%02x-%02x-%02x-%02x-%02x-%02x-%02x-%02x",
                        (unsigned)(s >> 56) & 0xff, (unsigned)(s >> 48) & 0xff, (unsigned)(s >> 40) & 0xff,
                        (unsigned)(s >> 32) & 0xff, (unsigned)(s >> 24) & 0xff, (unsigned)(s >> 16) & 0xff,
                        (unsigned)(s >> 8) & 0xff, (unsigned)s & 0xff);
        }
        return bus_message_append_valid_string(reply, buf);
}

static int property_get_sriov_role(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const PciDevice *dev = userdata;

        return bus_message_append_valid_string(reply, strempty(sriov_role_to_string(dev->sriov_role)));
}

static int property_get_iommu_group_peers(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const PciDevice *dev = userdata;
        BusContext *d = bus_get_slot_userdata(bus);
        const PciDevice *const *members;
        size_t n;
        int r;

        if (!d)
                return -ESTALE;

        /* Every GetManagedObjects reads this for every function: no copy of the group. */
        r = model_get_iommu_group_members(d->model, dev->iommu_group, &members, &n);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (streq(members[i]->address, dev->address))
                        continue;
                r = bus_message_append_valid_string(reply, members[i]->address);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

/* DesiredDriver, DesiredSource, State, StateReason, LastError: the reconciler's view of the function. */
static int property_get_reconciler(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const PciDevice *dev = userdata;
        BusContext *d = bus_get_slot_userdata(bus);
        DeviceStatusView v;

        if (!d)
                return -ESTALE;
        reconciler_device_status(d->reconciler, dev->address, &v);
        if (streq(property, "DesiredDriver"))
                return bus_message_append_text(reply, v.desired_driver);
        if (streq(property, "DesiredSource"))
                return bus_message_append_text(reply, v.source);
        if (streq(property, "State"))
                return bus_message_append_valid_string(reply, device_state_to_string(v.state));
        if (streq(property, "StateReason"))
                return bus_message_append_text(reply, v.reason);
        return bus_message_append_text(reply, v.last_error);
}

/* Name: the [Device] Name= of the desired state in force ("" none); it changes only with a reload. */
static int property_get_name(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const PciDevice *dev = userdata;
        BusContext *d = bus_get_slot_userdata(bus);

        if (!d)
                return -ESTALE;
        return bus_message_append_text(
                reply, d->reconciler ? reconciler_device_name(d->reconciler, dev->address) : NULL);
}

/* a(uss): (pid, comm, node) of the processes holding this function's VFIO group or cdev. */
static int property_get_holders(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const PciDevice *dev = userdata;
        BusContext *d = bus_get_slot_userdata(bus);
        const Holder *holders = NULL;
        size_t n = 0;
        int r;

        if (!d)
                return -ESTALE;
        /* No VFIO node, no holder: skip the scan for functions not in an IOMMU group. */
        if (d->reconciler && (dev->iommu_group >= 0 || dev->vfio_device) &&
            reconciler_holders(d->reconciler, &holders, &n) < 0)
                n = 0;

        r = sd_bus_message_open_container(reply, 'a', "(uss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (holder_holds_device(&holders[i], dev)) {
                        /* comm is whatever the process set (prctl(PR_SET_NAME)): any bytes. */
                        r = sd_bus_message_open_container(reply, 'r', "uss");
                        if (r >= 0)
                                r = sd_bus_message_append(reply, "u", (uint32_t)holders[i].pid);
                        if (r >= 0)
                                r = bus_message_append_text(reply, holders[i].comm);
                        if (r >= 0)
                                r = bus_message_append_text(reply, holders[i].node);
                        if (r >= 0)
                                r = sd_bus_message_close_container(reply);
                        if (r < 0)
                                return r;
                }
        return sd_bus_message_close_container(reply);
}

/* a(ystbb): (index, "memory"|"io", size in bytes, 64-bit, prefetchable) */
static int property_get_bars(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const PciDevice *dev = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ystbb)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < dev->n_bars && i < PCI_BAR_MAX; i++) {
                const PciBar *b = &dev->bars[i];

                uint8_t index = b->index;
                uint64_t size = b->size;
                int is_64bit = b->is_64bit, prefetchable = b->prefetchable;

                /* One call per value: sd_bus_message_append()'s format parsing cost as much as the values.
                 */
                r = sd_bus_message_open_container(reply, 'r', "ystbb");
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 'y', &index);
                if (r >= 0)
                        r = bus_message_append_valid_string(
                                reply, strempty(pci_bar_type_to_string(b->type)));
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 't', &size);
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 'b', &is_64bit);
                if (r >= 0)
                        r = sd_bus_message_append_basic(reply, 'b', &prefetchable);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

/* a(ssssu): (type id, name, description, device_api, available_instances) */
static int property_get_mdev_types(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        const PciDevice *dev = userdata;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ssssu)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < dev->n_mdev_types; i++) {
                const MdevType *t = &dev->mdev_types[i];

                /* All four strings are read from sysfs, written by the parent's driver. */
                r = sd_bus_message_open_container(reply, 'r', "ssssu");
                if (r >= 0)
                        r = bus_message_append_text(reply, t->id);
                if (r >= 0)
                        r = bus_message_append_text(reply, t->name);
                if (r >= 0)
                        r = bus_message_append_text(reply, t->description);
                if (r >= 0)
                        r = bus_message_append_text(reply, t->device_api);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "u", t->available_instances);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

#define EMITS SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE

static const sd_bus_vtable device_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY(
                "Address", "s", property_get_char_array, offsetof(PciDevice, address),
                SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SysfsPath", "s", property_get_string_ptr, offsetof(PciDevice, syspath), EMITS),
        SD_BUS_PROPERTY("VendorId", "q", NULL, offsetof(PciDevice, vendor_id), EMITS),
        SD_BUS_PROPERTY("DeviceId", "q", NULL, offsetof(PciDevice, device_id), EMITS),
        SD_BUS_PROPERTY("SubsystemVendorId", "q", NULL, offsetof(PciDevice, subsystem_vendor_id), EMITS),
        SD_BUS_PROPERTY("SubsystemDeviceId", "q", NULL, offsetof(PciDevice, subsystem_device_id), EMITS),
        SD_BUS_PROPERTY("Class", "u", NULL, offsetof(PciDevice, class_code), EMITS),
        SD_BUS_PROPERTY("Revision", "y", NULL, offsetof(PciDevice, revision), EMITS),
        SD_BUS_PROPERTY("VendorName", "s", property_get_string_ptr, offsetof(PciDevice, vendor_name), EMITS),
        SD_BUS_PROPERTY("DeviceName", "s", property_get_string_ptr, offsetof(PciDevice, device_name), EMITS),
        SD_BUS_PROPERTY("ClassName", "s", property_get_string_ptr, offsetof(PciDevice, class_name), EMITS),
        SD_BUS_PROPERTY("IommuGroup", "i", NULL, offsetof(PciDevice, iommu_group), EMITS),
        SD_BUS_PROPERTY("IommuGroupPeers", "as", property_get_iommu_group_peers, 0, EMITS),
        SD_BUS_PROPERTY("Driver", "s", property_get_string_ptr, offsetof(PciDevice, driver), EMITS),
        SD_BUS_PROPERTY(
                "DriverOverride", "s", property_get_string_ptr, offsetof(PciDevice, driver_override), EMITS),
        SD_BUS_PROPERTY("NumaNode", "i", NULL, offsetof(PciDevice, numa_node), EMITS),
        SD_BUS_PROPERTY(
                "PhysicalSlot", "s", property_get_string_ptr, offsetof(PciDevice, physical_slot), EMITS),
        SD_BUS_PROPERTY("Serial", "s", property_get_serial, 0, EMITS),
        SD_BUS_PROPERTY("SriovRole", "s", property_get_sriov_role, 0, EMITS),
        SD_BUS_PROPERTY("SriovTotalVFs", "u", NULL, offsetof(PciDevice, sriov_total_vfs), EMITS),
        SD_BUS_PROPERTY("SriovNumVFs", "u", NULL, offsetof(PciDevice, sriov_num_vfs), EMITS),
        SD_BUS_PROPERTY(
                "SriovDriversAutoprobe", "b", property_get_bool_field,
                offsetof(PciDevice, sriov_drivers_autoprobe), EMITS),
        SD_BUS_PROPERTY("SriovVFOffset", "u", NULL, offsetof(PciDevice, sriov_vf_offset), EMITS),
        SD_BUS_PROPERTY("SriovVFStride", "u", NULL, offsetof(PciDevice, sriov_vf_stride), EMITS),
        SD_BUS_PROPERTY("PhysFn", "s", property_get_string_ptr, offsetof(PciDevice, physfn), EMITS),
        SD_BUS_PROPERTY("VFIndex", "i", NULL, offsetof(PciDevice, vf_index), EMITS),
        SD_BUS_PROPERTY("VirtFns", "as", property_get_strv_field, offsetof(PciDevice, virtfns), EMITS),
        SD_BUS_PROPERTY("Bars", "a(ystbb)", property_get_bars, 0, EMITS),
        SD_BUS_PROPERTY(
                "ResetMethods", "as", property_get_strv_field, offsetof(PciDevice, reset_methods), EMITS),
        SD_BUS_PROPERTY("BootVga", "b", property_get_bool_field, offsetof(PciDevice, boot_vga), EMITS),
        SD_BUS_PROPERTY("VfioGroup", "s", property_get_string_ptr, offsetof(PciDevice, vfio_group), EMITS),
        SD_BUS_PROPERTY("VfioDevice", "s", property_get_string_ptr, offsetof(PciDevice, vfio_device), EMITS),
        SD_BUS_PROPERTY("MdevTypes", "a(ssssu)", property_get_mdev_types, 0, EMITS),
        SD_BUS_PROPERTY("DesiredDriver", "s", property_get_reconciler, 0, EMITS),
        SD_BUS_PROPERTY("DesiredSource", "s", property_get_reconciler, 0, EMITS),
        SD_BUS_PROPERTY("State", "s", property_get_reconciler, 0, EMITS),
        SD_BUS_PROPERTY("StateReason", "s", property_get_reconciler, 0, EMITS),
        SD_BUS_PROPERTY("LastError", "s", property_get_reconciler, 0, EMITS),
        SD_BUS_PROPERTY("Holders", "a(uss)", property_get_holders, 0, 0),
        SD_BUS_PROPERTY("Name", "s", property_get_name, 0, 0),
        SD_BUS_PROPERTY("Errors", "as", property_get_strv_field, offsetof(PciDevice, errors), EMITS),
        SD_BUS_VTABLE_END,
};

/*
 * Which properties each PciDeviceField bit covers (pci-device.h). Where one
 * value is derived from another (VfioGroup from the group and the driver), it
 * is listed under both, so a client never misses a change.
 */
static const struct {
        unsigned field;
        const char *property;
} device_field_properties[] = {
        { PCI_DEVICE_FIELD_IDS, "VendorId" },
        { PCI_DEVICE_FIELD_IDS, "DeviceId" },
        { PCI_DEVICE_FIELD_IDS, "SubsystemVendorId" },
        { PCI_DEVICE_FIELD_IDS, "SubsystemDeviceId" },
        { PCI_DEVICE_FIELD_IDS, "Class" },
        { PCI_DEVICE_FIELD_IDS, "Revision" },
        { PCI_DEVICE_FIELD_IDS, "VendorName" },
        { PCI_DEVICE_FIELD_IDS, "DeviceName" },
        { PCI_DEVICE_FIELD_IDS, "ClassName" },
        { PCI_DEVICE_FIELD_IOMMU_GROUP | PCI_DEVICE_FIELD_IOMMU_PEERS, "IommuGroupPeers" },
        { PCI_DEVICE_FIELD_IOMMU_GROUP, "IommuGroup" },
        { PCI_DEVICE_FIELD_IOMMU_GROUP | PCI_DEVICE_FIELD_DRIVER, "VfioGroup" },
        { PCI_DEVICE_FIELD_DRIVER, "Driver" },
        { PCI_DEVICE_FIELD_DRIVER, "VfioDevice" },
        { PCI_DEVICE_FIELD_DRIVER_OVERRIDE, "DriverOverride" },
        { PCI_DEVICE_FIELD_NUMA_NODE, "NumaNode" },
        { PCI_DEVICE_FIELD_PHYSICAL_SLOT, "PhysicalSlot" },
        { PCI_DEVICE_FIELD_SERIAL, "Serial" },
        { PCI_DEVICE_FIELD_SRIOV, "SriovRole" },
        { PCI_DEVICE_FIELD_SRIOV, "SriovTotalVFs" },
        { PCI_DEVICE_FIELD_SRIOV, "SriovNumVFs" },
        { PCI_DEVICE_FIELD_SRIOV, "SriovDriversAutoprobe" },
        { PCI_DEVICE_FIELD_SRIOV, "SriovVFOffset" },
        { PCI_DEVICE_FIELD_SRIOV, "SriovVFStride" },
        { PCI_DEVICE_FIELD_SRIOV, "PhysFn" },
        { PCI_DEVICE_FIELD_SRIOV, "VFIndex" },
        { PCI_DEVICE_FIELD_SRIOV, "VirtFns" },
        { PCI_DEVICE_FIELD_BARS, "Bars" },
        { PCI_DEVICE_FIELD_RESET_METHODS, "ResetMethods" },
        { PCI_DEVICE_FIELD_BOOT_VGA, "BootVga" },
        { PCI_DEVICE_FIELD_MDEV_TYPES, "MdevTypes" },
        { PCI_DEVICE_FIELD_ERRORS, "Errors" },
        { PCI_DEVICE_FIELD_SYSPATH, "SysfsPath" },
};

size_t bus_device_property_names(unsigned fields, const char *names[static BUS_DEVICE_PROPERTIES_MAX]) {
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(device_field_properties) && n + 1 < BUS_DEVICE_PROPERTIES_MAX; i++)
                if (fields & device_field_properties[i].field)
                        names[n++] = device_field_properties[i].property;
        names[n] = NULL;
        return n;
}

/* Path -> device; 0 (no object) for paths that name no function of the model. */
static int device_find(
        sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
        sd_bus_error *error) {
        BusContext *d = userdata;
        _cleanup_free_ char *address = NULL;
        const PciDevice *dev;
        const char *e;

        e = bus_path_child_element(path, HOSTDEVD_DEVICES_PATH);
        if (!e || object_path_element_to_pci_address(e, &address) < 0)
                return 0;

        dev = model_get_device(d->model, address);
        if (!dev)
                return 0;

        *found = (void *)dev;
        return 1;
}

static int device_node_enumerator(
        sd_bus *bus, const char *prefix, void *userdata, char ***nodes, sd_bus_error *error) {
        const PciDevice *const *devices;
        BusContext *d = userdata;
        char **l;
        size_t n = 0;

        devices = model_get_devices(d->model, &n);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l[i] = object_path_from_pci_address(devices[i]->address);
                if (!l[i]) {
                        strv_free(l); /* NULL-terminated at i: frees what was filled */
                        return -ENOMEM;
                }
        }

        *nodes = l;
        return 0;
}

int bus_device_append_managed_objects(BusContext *d, sd_bus_message *reply, sd_bus_error *error) {
        const PciDevice *const *devices;
        size_t n = 0;
        int r;

        devices = model_get_devices(d->model, &n);
        for (size_t i = 0; i < n; i++) {
                char
                        path[sizeof(HOSTDEVD_DEVICES_PATH "/" HOSTDEVD_PCI_PATH_PREFIX) +
                             PCI_ADDRESS_STRING_MAX];

                /* The model's addresses are canonical: the path without a check or an allocation. */
                if (!object_path_format_pci_address(devices[i]->address, path, sizeof(path)))
                        return -EINVAL;
                r = bus_append_managed_object(
                        d->bus, reply, path, HOSTDEVD_DEVICE_INTERFACE, device_vtable, (void *)devices[i],
                        error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int bus_device_add(BusContext *d) {
        int r;

        r = sd_bus_add_fallback_vtable(
                d->bus, NULL, HOSTDEVD_DEVICES_PATH, HOSTDEVD_DEVICE_INTERFACE, device_vtable, device_find,
                d);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", HOSTDEVD_DEVICE_INTERFACE);

        r = sd_bus_add_node_enumerator(d->bus, NULL, HOSTDEVD_DEVICES_PATH, device_node_enumerator, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the device enumerator: %m");

        return 0;
}
