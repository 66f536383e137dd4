/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdio.h>

#include "bus-client.h"
#include "format.h"
#include "log.h"
#include "monitor.h"
#include "names.h"
#include "object-path.h"

#define MANAGER_IDENTITY "manager"

typedef struct Monitor {
        bool json;
        /* Object path -> identity (address or UUID), so "removed" can name what went away. */
        json_object *identities;
} Monitor;

static const char *path_under(const char *path, const char *prefix) {
        size_t n = strlen(prefix);

        if (!strneq(path, prefix, n) || path[n] != '/' || path[n + 1] == '\0' || strchr(path + n + 1, '/'))
                return NULL;
        return path + n + 1;
}

/* The identity's JSON key for objects at path: "Address" for devices, "Uuid" for mdevs, NULL otherwise. */
static const char *identity_key(const char *path) {
        if (path_under(path, HOSTDEVD_DEVICES_PATH))
                return "Address";
        if (path_under(path, HOSTDEVD_MDEVS_PATH))
                return "Uuid";
        return NULL;
}

static void monitor_remember(Monitor *m, const char *path, json_object *interfaces) {
        json_object *props;
        const char *id = NULL;

        if (json_object_object_get_ex(interfaces, HOSTDEVD_DEVICE_INTERFACE, &props))
                id = json_get_string(props, "Address");
        else if (json_object_object_get_ex(interfaces, HOSTDEVD_MDEV_INTERFACE, &props))
                id = json_get_string(props, "Uuid");
        if (id && *id)
                (void)json_object_object_add(m->identities, path, json_object_new_string(id));
}

/* What to call the object at path in output: its address or UUID, "manager", or the path itself. */
static char *monitor_identity(Monitor *m, const char *path) {
        const char *element;
        json_object *v;
        char *s = NULL;

        if (streq(path, HOSTDEVD_ROOT_PATH))
                return strdup(MANAGER_IDENTITY);
        if (json_object_object_get_ex(m->identities, path, &v))
                return strdup(json_object_get_string(v));

        /* Objects from before a daemon restart were never announced to us: decode the path. */
        element = path_under(path, HOSTDEVD_DEVICES_PATH);
        if (element && object_path_element_to_pci_address(element, &s) >= 0)
                return s;
        element = path_under(path, HOSTDEVD_MDEVS_PATH);
        if (element && object_path_element_to_mdev_uuid(element, &s) >= 0)
                return s;
        return strdup(path);
}

static void print_json_line(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
}

/* A new event object with "event", "path" and, for devices and mdevs, "Address"/"Uuid". */
static json_object *event_new(const char *event, const char *path, const char *identity) {
        json_object *o = json_object_new_object();
        const char *key = identity_key(path);

        if (!o)
                return NULL;
        (void)json_object_object_add(o, "event", json_object_new_string(event));
        (void)json_object_object_add(o, "path", json_object_new_string(path));
        if (key)
                (void)json_object_object_add(o, key, json_object_new_string(identity));
        return o;
}

static int on_interfaces_added(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        _cleanup_json_ json_object *interfaces = NULL;
        _cleanup_free_ char *identity = NULL;
        const char *path;
        json_object *props;
        int r;

        r = sd_bus_message_read(message, "o", &path);
        if (r >= 0)
                r = bus_message_read_json(message, NULL, &interfaces);
        if (r < 0) {
                log_warning_errno(r, "Failed to parse InterfacesAdded, ignoring: %m");
                return 0;
        }

        monitor_remember(m, path, interfaces);
        identity = monitor_identity(m, path);
        if (!identity)
                return log_oom();

        if (m->json) {
                _cleanup_json_ json_object *o = event_new("added", path, identity), *names = NULL,
                                           *all = NULL;

                names = json_object_new_array();
                all = json_object_new_object();
                if (!o || !names || !all)
                        return log_oom();
                json_object_object_foreach(interfaces, interface, p) {
                        (void)json_object_array_add(names, json_object_new_string(interface));
                        if (json_object_is_type(p, json_type_object)) {
                                json_object_object_foreach(p, name, value)(void)
                                        json_object_object_add(all, name, json_object_get(value));
                        }
                }
                (void)json_object_object_add(o, "interfaces", TAKE_PTR(names));
                (void)json_object_object_add(o, "properties", TAKE_PTR(all));
                print_json_line(o);
                return 0;
        }

        if (json_object_object_get_ex(interfaces, HOSTDEVD_DEVICE_INTERFACE, &props)) {
                const char *driver = json_get_string(props, "Driver");
                printf("added %s %04" PRIx64 ":%04" PRIx64 " %s\n", identity,
                       json_get_int(props, "VendorId", 0), json_get_int(props, "DeviceId", 0),
                       *driver ? driver : "-");
        } else if (json_object_object_get_ex(interfaces, HOSTDEVD_MDEV_INTERFACE, &props)) {
                const char *type = json_get_string(props, "Type"),
                           *parent = json_get_string(props, "Parent");
                printf("added %s %s %s\n", identity, *type ? type : "-", *parent ? parent : "-");
        } else
                printf("added %s\n", identity);
        fflush(stdout);
        return 0;
}

static int on_interfaces_removed(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        _cleanup_json_ json_object *interfaces = NULL;
        _cleanup_free_ char *identity = NULL;
        const char *path;
        int r;

        r = sd_bus_message_read(message, "o", &path);
        if (r >= 0)
                r = bus_message_read_json(message, NULL, &interfaces);
        if (r < 0) {
                log_warning_errno(r, "Failed to parse InterfacesRemoved, ignoring: %m");
                return 0;
        }

        identity = monitor_identity(m, path);
        if (!identity)
                return log_oom();
        json_object_object_del(m->identities, path);

        if (m->json) {
                _cleanup_json_ json_object *o = event_new("removed", path, identity);

                if (!o)
                        return log_oom();
                (void)json_object_object_add(o, "interfaces", TAKE_PTR(interfaces));
                print_json_line(o);
                return 0;
        }

        printf("removed %s\n", identity);
        fflush(stdout);
        return 0;
}

static int on_properties_changed(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        Monitor *m = userdata;
        _cleanup_json_ json_object *changed = NULL, *invalidated = NULL;
        _cleanup_free_ char *identity = NULL;
        const char *path = sd_bus_message_get_path(message), *interface;
        int r;

        r = sd_bus_message_read(message, "s", &interface);
        if (r >= 0)
                r = bus_message_read_json(message, NULL, &changed);
        if (r >= 0)
                r = bus_message_read_json(message, NULL, &invalidated);
        if (r < 0) {
                log_warning_errno(r, "Failed to parse PropertiesChanged, ignoring: %m");
                return 0;
        }
        /* LogControl1 and anything else that is not ours. */
        if (!path || (!streq(path, HOSTDEVD_ROOT_PATH) && !identity_key(path)))
                return 0;

        identity = monitor_identity(m, path);
        if (!identity)
                return log_oom();

        if (m->json) {
                _cleanup_json_ json_object *o = event_new("changed", path, identity);

                if (!o)
                        return log_oom();
                (void)json_object_object_add(o, "interface", json_object_new_string(interface));
                (void)json_object_object_add(o, "properties", TAKE_PTR(changed));
                (void)json_object_object_add(o, "invalidated", TAKE_PTR(invalidated));
                print_json_line(o);
                return 0;
        }

        printf("changed %s", identity);
        json_object_object_foreach(changed, name, value) {
                _cleanup_free_ char *s = format_property_value(name, value, FORMAT_ONELINE);
                if (!s)
                        return log_oom();
                printf(" %s=%s", name, s);
        }
        /* Invalidated: the value changed but was not sent. */
        for (size_t i = 0; i < json_object_array_length(invalidated); i++)
                printf(" %s", json_object_get_string(json_object_array_get_idx(invalidated, i)));
        putchar('\n');
        fflush(stdout);
        return 0;
}

int monitor_run(sd_bus *bus, bool json) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *objects = NULL;
        Monitor m = { .json = json };
        int r, ret;

        /* Subscribe first, then read the current objects: nothing falls in between. */
        r = sd_bus_match_signal(
                bus, NULL, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, DBUS_INTERFACE_OBJECT_MANAGER,
                "InterfacesAdded", on_interfaces_added, &m);
        if (r >= 0)
                r = sd_bus_match_signal(
                        bus, NULL, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, DBUS_INTERFACE_OBJECT_MANAGER,
                        "InterfacesRemoved", on_interfaces_removed, &m);
        if (r >= 0)
                r = sd_bus_add_match(
                        bus, NULL,
                        "type='signal',sender='" HOSTDEVD_BUS_NAME "',interface='" DBUS_INTERFACE_PROPERTIES
                        "',member='PropertiesChanged',path_namespace='" HOSTDEVD_ROOT_PATH "'",
                        on_properties_changed, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to subscribe to hostdevd's signals: %m");
                return EXIT_BUS;
        }

        r = bus_get_managed_objects(bus, &error, &objects);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to list objects");

        m.identities = json_object_new_object();
        if (!m.identities) {
                log_oom();
                return EXIT_BUS;
        }
        json_object_object_foreach(objects, path, interfaces) monitor_remember(&m, path, interfaces);

        for (;;) {
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        /* The bus went away (dbus-daemon stopped): nothing more will come. */
                        log_error_errno(r, "Failed to process bus: %m");
                        ret = EXIT_BUS;
                        break;
                }
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR) {
                        log_error_errno(r, "Failed to wait for bus: %m");
                        ret = EXIT_BUS;
                        break;
                }
        }

        json_object_put(m.identities);
        return ret;
}
