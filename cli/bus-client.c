/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>

#include "bus-client.h"
#include "log.h"
#include "names.h"

/*
 * Structs whose fields get names in JSON, keyed by the value's context (a
 * property or method name) and the struct's signature, in the order the
 * contract (dbus/org.hostdevd1.xml) documents them.
 */
static const struct {
        const char *name;
        const char *signature;
        const char *const keys[8];
} known_structs[] = {
        /* Device.Bars: (index, "memory"|"io", size in bytes, 64-bit, prefetchable) */
        { "Bars", "ystbb", { "Index", "Type", "Size", "Is64Bit", "Prefetchable" } },
        /* Device.MdevTypes: (type id, name, description, device_api, available_instances) */
        { "MdevTypes", "ssssu", { "Type", "Name", "Description", "DeviceApi", "AvailableInstances" } },
        /* Manager.MdevTypes: the same with the parent first */
        { "MdevTypes",
          "sssssu",
          { "Parent", "Type", "Name", "Description", "DeviceApi", "AvailableInstances" } },
        /* Manager.ListIommuGroups: (group number, member addresses) */
        { "ListIommuGroups", "uas", { "IommuGroup", "Devices" } },
        /* Manager.Plan: actions (transaction, action, address, argument, reason) */
        { "Plan", "ussss", { "Transaction", "Action", "Address", "Argument", "Reason" } },
        /* Manager.Plan: devices (address, state, reason) */
        { "Plan", "sss", { "Address", "State", "Reason" } },
        /* Device.Holders: (pid, command name, node) */
        { "Holders", "uss", { "Pid", "Command", "Node" } },
        /* Mdev.Holders: (pid, command name); the node is the mdev's VfioGroup or VfioDevice */
        { "Holders", "is", { "Pid", "Command" } },
};

static const char *const *struct_keys(const char *name, const char *signature) {
        if (!name || !signature)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(known_structs); i++)
                if (streq(known_structs[i].name, name) && streq(known_structs[i].signature, signature))
                        return known_structs[i].keys;
        return NULL;
}

int bus_client_open(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!address) {
                /* Honours $DBUS_SYSTEM_BUS_ADDRESS. */
                r = sd_bus_open_system(&bus);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(bus);
                return 0;
        }

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(bus);
        return 0;
}

int bus_client_fail(const sd_bus_error *error, int r, const char *what) {
        if (sd_bus_error_has_name(error, HOSTDEVD_ERROR_NOT_FOUND)) {
                log_error("%s: %s", what, error->message);
                return EXIT_NOT_FOUND;
        }
        if (sd_bus_error_has_name(error, HOSTDEVD_ERROR_INVALID_ARGUMENT)) {
                log_error("%s: %s", what, error->message);
                return EXIT_USAGE;
        }
        if (sd_bus_error_has_names(error, HOSTDEVD_ERROR_REFUSED, HOSTDEVD_ERROR_BLOCKED)) {
                log_error("%s: %s", what, error->message);
                return EXIT_NOT_CONVERGED;
        }
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED))
                /* polkit said no (or no agent could ask): the daemon changed nothing. */
                log_error(
                        "%s: not authorized%s%s", what, error->message ? ": " : "",
                        strempty(error->message));
        else if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                log_error("%s: hostdevd is not running (%s is not on the bus)", what, HOSTDEVD_BUS_NAME);
        else if (sd_bus_error_is_set(error))
                log_error("%s: %s", what, error->message ? error->message : error->name);
        else
                (void)log_error_errno(r, "%s: %m", what);
        return EXIT_BUS;
}

#define MANAGE_CALL_TIMEOUT_USEC (300ULL * 1000000ULL)

int bus_call_manager_method(
        sd_bus *bus, bool interactive, const char *member, sd_bus_error *error, sd_bus_message **ret_reply,
        const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(
                bus, &m, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, member);
        if (r < 0)
                return r;
        if (types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }

        return bus_call_message(bus, m, interactive, error, ret_reply);
}

int bus_call_message(
        sd_bus *bus, sd_bus_message *m, bool interactive, sd_bus_error *error, sd_bus_message **ret_reply) {
        int r;

        r = sd_bus_message_set_allow_interactive_authorization(m, interactive);
        if (r < 0)
                return r;

        /* Apply and the Set* calls return after the executor finished (each sysfs write has its own
         * deadline in the daemon), which can take longer than sd-bus' default 25 s on a large host; and
         * polkit may wait for a person to type a password: no timeout then. */
        return sd_bus_call(bus, m, interactive ? UINT64_MAX : MANAGE_CALL_TIMEOUT_USEC, error, ret_reply);
}

static int json_add(json_object *container, const char *key, json_object *v) {
        /* Takes ownership of v in every case. */
        if (!v)
                return -ENOMEM;
        if (key) {
                if (json_object_object_add(container, key, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        } else if (json_object_array_add(container, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int read_basic(sd_bus_message *m, char type, json_object **ret) {
        union {
                uint8_t u8;
                int16_t s16;
                uint16_t u16;
                int32_t s32;
                uint32_t u32;
                int64_t s64;
                uint64_t u64;
                int b;
                double d;
                const char *s;
        } v;
        json_object *o;
        int r;

        r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;

        switch (type) {
        case SD_BUS_TYPE_STRING:
        case SD_BUS_TYPE_OBJECT_PATH:
        case SD_BUS_TYPE_SIGNATURE:
                o = json_object_new_string(v.s);
                break;
        case SD_BUS_TYPE_BOOLEAN:
                o = json_object_new_boolean(v.b);
                break;
        case SD_BUS_TYPE_BYTE:
                o = json_object_new_int64(v.u8);
                break;
        case SD_BUS_TYPE_INT16:
                o = json_object_new_int64(v.s16);
                break;
        case SD_BUS_TYPE_UINT16:
                o = json_object_new_int64(v.u16);
                break;
        case SD_BUS_TYPE_INT32:
        case SD_BUS_TYPE_UNIX_FD:
                o = json_object_new_int64(v.s32);
                break;
        case SD_BUS_TYPE_UINT32:
                o = json_object_new_int64(v.u32);
                break;
        case SD_BUS_TYPE_INT64:
                o = json_object_new_int64(v.s64);
                break;
        case SD_BUS_TYPE_UINT64:
                o = json_object_new_uint64(v.u64);
                break;
        case SD_BUS_TYPE_DOUBLE:
                o = json_object_new_double(v.d);
                break;
        default:
                return -EBADMSG;
        }
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

static int read_dict(sd_bus_message *m, const char *contents, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        int r;

        /* contents is "{kv}"; the entries' contents are "kv". */
        _cleanup_free_ char *entry = strndup(contents + 1, strlen(contents) - 2);
        if (!entry)
                return -ENOMEM;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, contents);
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_json_ json_object *key = NULL, *value = NULL;
                const char *k;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, entry);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                r = read_basic(m, entry[0], &key);
                if (r < 0)
                        return r;
                /* JSON keys are strings: numbers and booleans in their JSON spelling. */
                k = json_object_get_type(key) == json_type_string ? json_object_get_string(key)
                                                                  : json_object_to_json_string(key);

                /* The key names the value (a{sv}: property name -> value). */
                r = bus_message_read_json(m, k, &value);
                if (r < 0)
                        return r;
                r = json_add(o, k, TAKE_PTR(value));
                if (r < 0)
                        return r;

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

int bus_message_read_json(sd_bus_message *m, const char *name, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG; /* nothing left to read */

        switch (type) {
        case SD_BUS_TYPE_VARIANT:
                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, contents);
                if (r < 0)
                        return r;
                r = bus_message_read_json(m, name, &o);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                break;

        case SD_BUS_TYPE_ARRAY:
                if (contents[0] == SD_BUS_TYPE_DICT_ENTRY_BEGIN) {
                        r = read_dict(m, contents, &o);
                        if (r < 0)
                                return r;
                        break;
                }
                o = json_object_new_array();
                if (!o)
                        return -ENOMEM;
                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, contents);
                if (r < 0)
                        return r;
                for (;;) {
                        json_object *element = NULL;

                        r = sd_bus_message_at_end(m, false);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                break;
                        /* Elements share the array's context: "Bars" names each (ystbb). */
                        r = bus_message_read_json(m, name, &element);
                        if (r < 0)
                                return r;
                        r = json_add(o, NULL, element);
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                break;

        case SD_BUS_TYPE_STRUCT: {
                const char *const *keys = struct_keys(name, contents);

                o = keys ? json_object_new_object() : json_object_new_array();
                if (!o)
                        return -ENOMEM;
                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_STRUCT, contents);
                if (r < 0)
                        return r;
                for (size_t i = 0;; i++) {
                        json_object *field = NULL;

                        r = sd_bus_message_at_end(m, false);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                break;
                        r = bus_message_read_json(m, NULL, &field);
                        if (r < 0)
                                return r;
                        /* keys matched the full signature, so there is one per field. */
                        r = json_add(o, keys ? keys[i] : NULL, field);
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                break;
        }

        default:
                r = read_basic(m, type, &o);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(o);
        return 0;
}

int bus_get_managed_objects(sd_bus *bus, sd_bus_error *error, json_object **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(
                bus, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, DBUS_INTERFACE_OBJECT_MANAGER,
                "GetManagedObjects", error, &reply, NULL);
        if (r < 0)
                return r;

        return bus_message_read_json(reply, "GetManagedObjects", ret);
}

int bus_get_all_properties(
        sd_bus *bus, const char *path, const char *interface, sd_bus_error *error, json_object **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(
                bus, HOSTDEVD_BUS_NAME, path, DBUS_INTERFACE_PROPERTIES, "GetAll", error, &reply, "s",
                interface);
        if (r < 0)
                return r;

        return bus_message_read_json(reply, NULL, ret);
}

int bus_get_property_json(
        sd_bus *bus, const char *path, const char *interface, const char *name, sd_bus_error *error,
        json_object **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(
                bus, HOSTDEVD_BUS_NAME, path, DBUS_INTERFACE_PROPERTIES, "Get", error, &reply, "ss",
                interface, name);
        if (r < 0)
                return r;

        return bus_message_read_json(reply, name, ret);
}

int pci_address_string_compare(const char *a, const char *b) {
        unsigned long long da, db;
        char *ea, *eb;

        /* "DDDD:BB:SS.F": compare the domain as a number (the kernel prints VMD domains with 5+
         * digits), then the fixed-width rest as text. Anything else compares as text. */
        errno = 0;
        da = strtoull(a, &ea, 16);
        db = strtoull(b, &eb, 16);
        if (errno != 0 || ea == a || eb == b || *ea != ':' || *eb != ':' || !strchr(ea + 1, ':') ||
            !strchr(eb + 1, ':'))
                return strcmp(a, b);
        if (da != db)
                return da < db ? -1 : 1;
        return strcmp(ea, eb);
}

bool string_is_uuid(const char *s) {
        if (strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!isxdigit((unsigned char)s[i]))
                        return false;
        }
        return true;
}

const char *json_get_string(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return "";
        return json_object_get_string(v);
}

int64_t json_get_int(json_object *o, const char *key, int64_t fallback) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return fallback;
        return json_object_get_int64(v);
}

bool json_get_bool(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
                return false;
        return json_object_get_boolean(v);
}

static int compare_by_key(const void *a, const void *b, void *userdata) {
        json_object *const *x = a, *const *y = b;
        const char *key = userdata;

        return pci_address_string_compare(json_get_string(*x, key), json_get_string(*y, key));
}

int bus_objects_with_interface(
        json_object *objects, const char *interface, const char *sort_key, json_object **ret) {
        _cleanup_json_ json_object *array = NULL;
        _cleanup_free_ json_object **items = NULL;
        size_t n = 0;

        if (!json_object_is_type(objects, json_type_object))
                return -EBADMSG;

        items = calloc(json_object_object_length(objects) + 1, sizeof(json_object *));
        if (!items)
                return -ENOMEM;

        json_object_object_foreach(objects, path, interfaces) {
                json_object *props;

                (void)path;
                if (json_object_is_type(interfaces, json_type_object) &&
                    json_object_object_get_ex(interfaces, interface, &props) &&
                    json_object_is_type(props, json_type_object))
                        items[n++] = props;
        }

        if (sort_key)
                qsort_r(items, n, sizeof(json_object *), compare_by_key, (void *)sort_key);

        array = json_object_new_array_ext((int)n);
        if (!array)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (json_add(array, NULL, json_object_get(items[i])) < 0)
                        return -ENOMEM;

        *ret = TAKE_PTR(array);
        return 0;
}
