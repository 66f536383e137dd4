/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * hostdevctl mdev: list, types [PARENT], create TYPE [--parent] [--uuid]
 * [--persist], remove UUID (issue 14). list and types read properties;
 * create and remove are Manager.CreateMdev and RemoveMdev
 * (dbus/org.hostdevd1.xml), runtime requests the daemon stores as [Mdev]
 * files and authorizes with org.hostdevd1.manage-mdevs. Like bind, create
 * then reads the instance's State back and exits with EXIT_NOT_CONVERGED
 * unless it is "converged".
 */

#include <inttypes.h>
#include <stdio.h>

#include "bus-client.h"
#include "hostdevctl.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "pci-address.h"
#include "polkit-agent.h"
#include "table.h"

/* CreateMdev's flags (dbus/org.hostdevd1.xml). */
#define MDEV_CREATE_FLAG_PERSIST UINT64_C(0x1)

static int oom(void) {
        log_oom();
        return EXIT_BUS;
}

/* A PCI parent in its canonical form ("41:00.0" -> "0000:41:00.0"); other parent names ("mtty") as given. */
static const char *canonical_parent(const char *s, char buf[static PCI_ADDRESS_STRING_MAX]) {
        PciAddress a;

        if (pci_address_from_string(s, &a) < 0)
                return s;
        return pci_address_format(&a, buf);
}

/* "pid 4242 (qemu-system-x86), ..." of an Mdev's Holders, NULL (a "-" cell) when none. */
static char *holders_cell(json_object *m) {
        json_object *holders;
        char *s = NULL;
        size_t size = 0;
        FILE *f;

        if (!json_object_object_get_ex(m, "Holders", &holders) ||
            !json_object_is_type(holders, json_type_array) || json_object_array_length(holders) == 0)
                return strdup("");
        f = open_memstream(&s, &size);
        if (!f)
                return NULL;
        for (size_t i = 0; i < json_object_array_length(holders); i++) {
                json_object *h = json_object_array_get_idx(holders, i);
                fprintf(f, "%s%" PRIi64 " (%s)", i > 0 ? ", " : "", json_get_int(h, "Pid", 0),
                        json_get_string(h, "Command"));
        }
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

/* ---- list ---------------------------------------------------------------- */

static int mdev_list(sd_bus *bus) {
        static const char *const headers[] = {
                "UUID", "TYPE", "PARENT", "GROUP", "OWNER", "STATE", "HOLDERS"
        };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *objects = NULL, *mdevs = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        r = bus_get_managed_objects(bus, &error, &objects);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to list mdevs");
        r = bus_objects_with_interface(objects, HOSTDEVD_MDEV_INTERFACE, "Uuid", &mdevs);
        if (r < 0) {
                log_error_errno(r, "Failed to parse the mdev list: %m");
                return EXIT_BUS;
        }

        if (arg_json) {
                print_json(mdevs);
                return 0;
        }

        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return oom();
        table_set_shrinkable(t, 6);
        for (size_t i = 0; i < json_object_array_length(mdevs); i++) {
                json_object *m = json_object_array_get_idx(mdevs, i);
                _cleanup_free_ char *holders = holders_cell(m);
                const char *type = json_get_string(m, "Type"), *name = json_get_string(m, "TypeName");

                if (!holders)
                        return oom();
                r = table_add_cell(t, empty_to_null(json_get_string(m, "Uuid")));
                /* The id, and the name people know the profile by when the driver gives one. */
                if (r >= 0)
                        r = *name ? table_add_cellf(t, "%s (%s)", type, name)
                                  : table_add_cell(t, empty_to_null(type));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(m, "Parent")));
                if (r >= 0)
                        r = table_add_optional_int(t, m, "IommuGroup");
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(m, "Owner")));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(m, "State")));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(holders));
                if (r < 0)
                        return oom();
        }

        return table_print_fit(t) < 0 ? EXIT_BUS : 0;
}

/* ---- types --------------------------------------------------------------- */

static int mdev_types(sd_bus *bus, const char *parent) {
        static const char *const headers[] = { "PARENT", "TYPE", "NAME", "AVAILABLE", "API", "DESCRIPTION" };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *all = NULL, *types = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        char buf[PCI_ADDRESS_STRING_MAX];
        int r;

        r = bus_get_property_json(
                bus, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, "MdevTypes", &error, &all);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to list mdev types");
        if (!json_object_is_type(all, json_type_array)) {
                log_error("Failed to parse the mdev types: not an array");
                return EXIT_BUS;
        }

        /* The Manager's list has every parent's types; one parent's are a filter of it. */
        if (parent)
                parent = canonical_parent(parent, buf);
        types = json_object_new_array();
        if (!types)
                return oom();
        for (size_t i = 0; i < json_object_array_length(all); i++) {
                json_object *m = json_object_array_get_idx(all, i);

                if ((!parent || streq(json_get_string(m, "Parent"), parent)) &&
                    json_object_array_add(types, json_object_get(m)) < 0)
                        return oom();
        }
        if (parent && json_object_array_length(types) == 0) {
                log_error(
                        "No mdev parent '%s' ('%s mdev types' lists them).", parent,
                        program_invocation_short_name);
                return EXIT_NOT_FOUND;
        }

        if (arg_json) {
                print_json(types);
                return 0;
        }

        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return oom();
        table_set_shrinkable(t, 5);
        for (size_t i = 0; i < json_object_array_length(types); i++) {
                json_object *m = json_object_array_get_idx(types, i);
                _cleanup_free_ char *description = strdup(json_get_string(m, "Description"));

                if (!description)
                        return oom();
                /* Drivers write multi-line descriptions; a table row is one line. */
                for (char *p = description; *p; p++)
                        if (*p == '\n' || *p == '\t')
                                *p = ' ';

                r = table_add_cell(t, empty_to_null(json_get_string(m, "Parent")));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(m, "Type")));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(m, "Name")));
                if (r >= 0)
                        r = table_add_cellf(t, "%" PRIi64, json_get_int(m, "AvailableInstances", 0));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(m, "DeviceApi")));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(description));
                if (r < 0)
                        return oom();
        }

        return table_print_fit(t) < 0 ? EXIT_BUS : 0;
}

/* ---- create, remove -------------------------------------------------------- */

static int check_uuid(const char *uuid) {
        if (string_is_uuid(uuid))
                return 0;
        log_error("Invalid UUID '%s' (expected 8-4-4-4-12 hexadecimal digits).", uuid);
        return EXIT_USAGE;
}

static int mdev_create(sd_bus *bus, const char *type) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *props = NULL;
        char buf[PCI_ADDRESS_STRING_MAX], what[512];
        const char *parent = NULL, *path, *state, *reason;
        int r;

        if (!*type) {
                log_error(
                        "Invalid mdev type '' (a type id such as 'mtty-2', or a name such as 'GRID T4-1Q').");
                return EXIT_USAGE;
        }
        if (arg_mdev_uuid && check_uuid(arg_mdev_uuid) != 0)
                return EXIT_USAGE;
        if (arg_mdev_parent) {
                if (!*arg_mdev_parent) {
                        log_error(
                                "Invalid --parent '' (a PCI address, or a name under /sys/class/mdev_bus).");
                        return EXIT_USAGE;
                }
                parent = canonical_parent(arg_mdev_parent, buf);
        }

        (void)snprintf(
                what, sizeof(what), "Failed to create an mdev of type '%s'%s%s", type, parent ? " on " : "",
                strempty(parent));
        if (ask_password())
                polkit_agent_open();
        r = bus_call_manager_method(
                bus, ask_password(), "CreateMdev", &error, &reply, "ssst", strempty(parent), type,
                strempty(arg_mdev_uuid), arg_persist ? MDEV_CREATE_FLAG_PERSIST : UINT64_C(0));
        if (r < 0)
                return bus_client_fail(&error, r, what);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0) {
                log_error_errno(r, "Failed to parse the reply: %m");
                return EXIT_BUS;
        }

        /* The daemon may answer before the instance converged: wait as bind does. */
        r = object_wait_settled(bus, path, HOSTDEVD_MDEV_INTERFACE, NULL, &props);
        if (r != 0)
                return r;
        state = json_get_string(props, "State");
        reason = json_get_string(props, "StateReason");
        if (arg_json)
                print_json(props);
        else
                printf("%s: %s, %s on %s%s%s\n", json_get_string(props, "Uuid"), state,
                       json_get_string(props, "Type"), json_get_string(props, "Parent"), *reason ? ": " : "",
                       reason);
        return streq(state, "converged") ? 0 : EXIT_NOT_CONVERGED;
}

static int mdev_remove(sd_bus *bus, const char *uuid) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char what[128];
        int r;

        if (check_uuid(uuid) != 0)
                return EXIT_USAGE;

        (void)snprintf(what, sizeof(what), "Failed to remove mdev %s", uuid);
        if (ask_password())
                polkit_agent_open();
        r = bus_call_manager_method(bus, ask_password(), "RemoveMdev", &error, NULL, "s", uuid);
        if (r < 0)
                return bus_client_fail(&error, r, what);

        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object();

                if (!o || json_object_object_add(o, "Uuid", json_object_new_string(uuid)) < 0 ||
                    json_object_object_add(o, "Removed", json_object_new_boolean(true)) < 0)
                        return oom();
                print_json(o);
        } else
                printf("%s: removed\n", uuid);
        return 0;
}

/* ---- dispatch ---------------------------------------------------------------- */

typedef struct MdevCommand {
        const char *name;
        int min_args, max_args; /* including "mdev" and the subcommand */
        unsigned options; /* VerbOptions it accepts */
} MdevCommand;

static const MdevCommand mdev_commands[] = {
        { "list", 2, 2, 0 },
        { "types", 2, 3, 0 },
        { "create", 3, 3, OPTION_PERSIST | OPTION_PARENT | OPTION_UUID | OPTION_TIMEOUT },
        { "remove", 3, 3, 0 },
};

int verb_mdev(sd_bus *bus, int argc, char **argv) {
        static const char *const option_names[] = {
                [0] = "--persist",
                [5] = "--timeout",
                [6] = "--parent",
                [7] = "--uuid",
        };
        const char *sub = argc > 1 ? argv[1] : "list";
        const MdevCommand *c = NULL;
        unsigned stray;

        for (size_t i = 0; i < ELEMENTSOF(mdev_commands); i++)
                if (streq(mdev_commands[i].name, sub))
                        c = &mdev_commands[i];
        if (!c) {
                log_error(
                        "Unknown mdev command '%s' (expected 'list', 'types', 'create' or 'remove').", sub);
                return EXIT_USAGE;
        }
        if (argc > 1 && argc < c->min_args) {
                log_error(
                        "Command 'mdev %s' needs an argument. See '%s --help'.", sub,
                        program_invocation_short_name);
                return EXIT_USAGE;
        }
        if (argc > c->max_args) {
                log_error(
                        "Too many arguments for 'mdev %s'. See '%s --help'.", sub,
                        program_invocation_short_name);
                return EXIT_USAGE;
        }
        stray = arg_verb_options & ~c->options;
        for (size_t i = 0; i < ELEMENTSOF(option_names); i++)
                if ((stray & (1u << i)) && option_names[i]) {
                        log_error("Option %s does not apply to 'mdev %s'.", option_names[i], sub);
                        return EXIT_USAGE;
                }

        if (streq(sub, "list"))
                return mdev_list(bus);
        if (streq(sub, "types"))
                return mdev_types(bus, argc > 2 ? argv[2] : NULL);
        if (streq(sub, "create"))
                return mdev_create(bus, argv[2]);
        return mdev_remove(bus, argv[2]);
}
