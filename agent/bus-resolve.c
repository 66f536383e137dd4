/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Devices by address, name or object path (bus-resolve.h). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "bus-resolve.h"
#include "bus-util.h"
#include "desired-state.h"
#include "escape.h"
#include "macro.h"
#include "names.h"
#include "object-path.h"
#include "reconciler.h"

int bus_resolve_device(
        BusContext *d, const char *s, char ret[static PCI_ADDRESS_STRING_MAX], sd_bus_error *error) {
        _cleanup_free_ char *address = NULL;
        const char *e, *named;
        PciAddress a;
        int r;

        e = bus_path_child_element(s, HOSTDEVD_DEVICES_PATH);
        if (e) {
                if (object_path_element_to_pci_address(e, &address) < 0 ||
                    !model_get_device(d->model, address))
                        return bus_error_setf_errno(
                                error, -ENOENT, "No PCI function at '%s'", ESCAPE_QUOTE(s));
                memcpy(ret, address, strlen(address) + 1);
                return 0;
        }
        if (pci_address_from_string(s, &a) >= 0) {
                pci_address_format(&a, ret);
                if (!model_get_device(d->model, ret))
                        return bus_error_setf_errno(error, -ENOENT, "No PCI function '%s'", ret);
                return 0;
        }
        if (!device_name_is_valid(s))
                return bus_error_setf_errno(
                        error, -EINVAL, "Not a PCI address, device name or Device object path: '%s'",
                        ESCAPE_QUOTE(s));
        r = d->reconciler ? reconciler_find_name(d->reconciler, s, &named) : -ENOENT;
        if (r == -ENOTUNIQ)
                return bus_error_setf_errno(
                        error, -EINVAL,
                        "Device name '%s' matches several PCI functions (narrow its [Match])", s);
        if (r == -ENXIO)
                return bus_error_setf_errno(
                        error, -ENOENT, "Device name '%s' matches no PCI function now", s);
        if (r < 0)
                return bus_error_setf_errno(error, -ENOENT, "No device named '%s'", s);
        memcpy(ret, named, strlen(named) + 1);
        return 0;
}
