/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * hostdevctl handoff LEASE --format=qemu|cloud-hypervisor|libvirt|json: a lease's handoff properties
 * (dbus/org.hostdevd1.xml, org.hostdevd1.Lease) printed for a VMM's command line or configuration.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bus-client.h"
#include "hostdevctl.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "strv.h"

/* LEASE: an object path, "lease_N" or N. */
static int lease_path(const char *s, char **ret) {
        const char *id = s;

        if (s[0] == '/')
                return (*ret = strdup(s)) ? 0 : -ENOMEM;
        if (strneq(s, HOSTDEVD_LEASE_PATH_PREFIX, strlen(HOSTDEVD_LEASE_PATH_PREFIX)))
                id += strlen(HOSTDEVD_LEASE_PATH_PREFIX);
        if (!*id || strspn(id, "0123456789") != strlen(id))
                return -EINVAL;
        return asprintf(ret, HOSTDEVD_LEASES_PATH "/" HOSTDEVD_LEASE_PATH_PREFIX "%s", id) < 0 ? -ENOMEM : 0;
}

static int get_strv(sd_bus *bus, const char *path, const char *name, sd_bus_error *error, char ***ret) {
        return sd_bus_get_property_strv(
                bus, HOSTDEVD_BUS_NAME, path, HOSTDEVD_LEASE_INTERFACE, name, error, ret);
}

/* Argument pairs ("-device", "x") one pair to a line, continued with a backslash for a shell. */
static void print_args(char **args) {
        size_t n = strv_length(args);

        for (size_t i = 0; i < n; i++) {
                bool pair = i + 1 < n && args[i][0] == '-' && args[i + 1][0] != '-';
                if (pair) {
                        printf("%s %s", args[i], args[i + 1]);
                        i++;
                } else
                        printf("%s", args[i]);
                printf("%s\n", i + 1 < n ? " \\" : "");
        }
}

static json_object *json_strv(char **l) {
        json_object *a = json_object_new_array();
        if (!a)
                return NULL;
        STRV_FOREACH (s, l)
                if (json_object_array_add(a, json_object_new_string(*s)) < 0) {
                        json_object_put(a);
                        return NULL;
                }
        return a;
}

/* MmioWindow (ttta(syttbbb)) as {"below-4g": ..., "above-4g": ..., "pci-hole64-size": ..., "bars": [...]}.
 */
static int read_mmio_window(sd_bus *bus, const char *path, sd_bus_error *error, json_object **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *o = NULL, *bars = NULL;
        uint64_t below, above, hole;
        int r;

        r = sd_bus_get_property(
                bus, HOSTDEVD_BUS_NAME, path, HOSTDEVD_LEASE_INTERFACE, "MmioWindow", error, &reply,
                "(ttta(syttbbb))");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'r', "ttta(syttbbb)");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "ttt", &below, &above, &hole);
        if (r < 0)
                return r;
        bars = json_object_new_array();
        if (!bars)
                return -ENOMEM;
        r = sd_bus_message_enter_container(reply, 'a', "(syttbbb)");
        if (r < 0)
                return r;
        for (;;) {
                const char *address;
                uint8_t index;
                uint64_t size, alignment;
                int is64, pref, above4g;

                r = sd_bus_message_read(
                        reply, "(syttbbb)", &address, &index, &size, &alignment, &is64, &pref, &above4g);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                json_object *b = json_object_new_object();
                if (!b || json_object_array_add(bars, b) < 0) {
                        json_object_put(b);
                        return -ENOMEM;
                }
                json_object_object_add(b, "address", json_object_new_string(address));
                json_object_object_add(b, "index", json_object_new_int(index));
                json_object_object_add(b, "size", json_object_new_uint64(size));
                json_object_object_add(b, "alignment", json_object_new_uint64(alignment));
                json_object_object_add(b, "64bit", json_object_new_boolean(is64));
                json_object_object_add(b, "prefetchable", json_object_new_boolean(pref));
                json_object_object_add(b, "above-4g", json_object_new_boolean(above4g));
        }
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "below-4g", json_object_new_uint64(below));
        json_object_object_add(o, "above-4g", json_object_new_uint64(above));
        json_object_object_add(o, "pci-hole64-size", json_object_new_uint64(hole));
        json_object_object_add(o, "bars", TAKE_PTR(bars));
        *ret = TAKE_PTR(o);
        return 0;
}

static int print_handoff_json(sd_bus *bus, const char *path, sd_bus_error *error) {
        _cleanup_strv_free_ char **devices = NULL, **qemu = NULL, **ch = NULL, **paths = NULL;
        _cleanup_free_ char *xml = NULL, *fingerprint = NULL;
        _cleanup_json_ json_object *o = NULL, *mmio = NULL;
        int r;

        if ((r = get_strv(bus, path, "Devices", error, &devices)) < 0 ||
            (r = get_strv(bus, path, "QemuArgs", error, &qemu)) < 0 ||
            (r = get_strv(bus, path, "CloudHypervisorArgs", error, &ch)) < 0 ||
            (r = get_strv(bus, path, "VfioPaths", error, &paths)) < 0)
                return r;
        r = sd_bus_get_property_string(
                bus, HOSTDEVD_BUS_NAME, path, HOSTDEVD_LEASE_INTERFACE, "LibvirtHostdevXml", error, &xml);
        if (r < 0)
                return r;
        r = sd_bus_get_property_string(
                bus, HOSTDEVD_BUS_NAME, path, HOSTDEVD_LEASE_INTERFACE, "Fingerprint", error, &fingerprint);
        if (r < 0)
                return r;
        r = read_mmio_window(bus, path, error, &mmio);
        if (r < 0)
                return r;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "lease", json_object_new_string(path));
        json_object_object_add(o, "devices", json_strv(devices));
        json_object_object_add(o, "qemu", json_strv(qemu));
        json_object_object_add(o, "cloud-hypervisor", json_strv(ch));
        json_object_object_add(o, "libvirt", json_object_new_string(xml));
        json_object_object_add(o, "vfio-paths", json_strv(paths));
        json_object_object_add(o, "mmio-window", TAKE_PTR(mmio));
        json_object_object_add(o, "fingerprint", json_object_new_string(fingerprint));
        print_json(o);
        return 0;
}

int verb_handoff(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_strv_free_ char **args = NULL;
        _cleanup_free_ char *path = NULL, *xml = NULL;
        const char *format = arg_format ?: (arg_json ? "json" : "qemu");
        int r;

        if (!streq(format, "qemu") && !streq(format, "cloud-hypervisor") && !streq(format, "libvirt") &&
            !streq(format, "json")) {
                log_error(
                        "Invalid --format '%s' (expected qemu, cloud-hypervisor, libvirt or json).", format);
                return EXIT_USAGE;
        }
        r = lease_path(argv[1], &path);
        if (r == -EINVAL) {
                log_error("Not a lease: '%s' (expected a lease object path, lease_N or N).", argv[1]);
                return EXIT_USAGE;
        }
        if (r < 0)
                return log_oom(), EXIT_BUS;

        if (streq(format, "json"))
                r = print_handoff_json(bus, path, &error);
        else if (streq(format, "libvirt")) {
                r = sd_bus_get_property_string(
                        bus, HOSTDEVD_BUS_NAME, path, HOSTDEVD_LEASE_INTERFACE, "LibvirtHostdevXml", &error,
                        &xml);
                if (r >= 0)
                        fputs(xml, stdout);
        } else {
                r = get_strv(
                        bus, path, streq(format, "qemu") ? "QemuArgs" : "CloudHypervisorArgs", &error,
                        &args);
                if (r >= 0)
                        print_args(args);
        }
        if (r < 0) {
                /* An object that is not there answers UnknownObject/UnknownInterface: no such lease. */
                if (sd_bus_error_has_names(
                            &error, SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_UNKNOWN_INTERFACE,
                            SD_BUS_ERROR_UNKNOWN_PROPERTY)) {
                        log_error("No lease %s.", path);
                        return EXIT_NOT_FOUND;
                }
                return bus_client_fail(&error, r, "Failed to read the lease's handoff");
        }
        return 0;
}
