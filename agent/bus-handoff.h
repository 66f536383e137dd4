/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The handoff on the bus: Manager.CheckFingerprint and Manager.GetDevicesByVfioNode (handlers
 * listed in bus-manager.c's vtable), and the appenders the Lease object's handoff properties use.
 * The texts themselves come from src/handoff.h; device numbers from src/vfio-node.h.
 */

#include <systemd/sd-bus.h>

#include "bus-context.h"
#include "handoff.h"

/* A set of model objects, borrowed from the model for the length of one call. */
typedef struct BusHandoffSet {
        const PciDevice **functions;
        size_t n_functions;
        const Mdev **mdevs;
        size_t n_mdevs;
} BusHandoffSet;

/*
 * Resolve references: what bus_resolve_device() takes (a PCI address, a Device object path, a device
 * name), an mdev UUID, or an Mdev object path. Sets |error| naming the value and returns negative
 * errno for a malformed one (-EINVAL), one listed twice (-EINVAL), one the model does not have
 * (-ENOENT), a name matching several functions (-ENOTUNIQ).
 */
int bus_handoff_set_resolve(BusContext *d, char **refs, BusHandoffSet *ret, sd_bus_error *error);
/* Add one function / mdev (no checks: for callers holding model objects already). -ENOMEM. */
int bus_handoff_set_add_device(BusHandoffSet *s, const PciDevice *f);
int bus_handoff_set_add_mdev(BusHandoffSet *s, const Mdev *m);
void bus_handoff_set_done(BusHandoffSet *s);
HandoffInput bus_handoff_set_input(const BusHandoffSet *s);

/* Property values for a device set ("as", "as", "s", "as", "(ttta(syttbbb))", "s"); a set the
 * handoff cannot describe (more than HANDOFF_UNITS_MAX units) sets |error|. */
int bus_handoff_append_qemu_args(sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error);
int bus_handoff_append_cloud_hypervisor_args(
        sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error);
int bus_handoff_append_libvirt_hostdev_xml(
        sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error);
int bus_handoff_append_vfio_paths(sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error);
int bus_handoff_append_mmio_window(sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error);
int bus_handoff_append_fingerprint(sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error);

/*
 * The Lease object's QemuArgs, CloudHypervisorArgs, LibvirtHostdevXml, VfioPaths, MmioWindow and
 * Fingerprint (one getter, by property name), computed from the lease's functions as the model has
 * them at the time of the call.
 */
int bus_handoff_property_get_lease(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error);
/*
 * Lease.OpenVfioGroup(s node) -> (h fd): the node ("" = the lease's only group node) opened O_RDWR for
 * the lease's owner uid or root, after polkit org.hostdevd1.acquire (details "devices", "vmm.pid").
 */
int method_open_vfio_group(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Manager methods. */
int method_check_fingerprint(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_get_devices_by_vfio_node(sd_bus_message *m, void *userdata, sd_bus_error *error);
