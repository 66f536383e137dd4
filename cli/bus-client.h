/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * hostdevctl's side of the bus: connecting, calling hostdevd, turning
 * replies into json-c values and failed calls into exit statuses.
 *
 * Replies are converted generically from their D-Bus signature, so a
 * property the daemon adds later shows up in --json without changes here:
 *     s, o, g              -> string
 *     b                    -> boolean
 *     y, n, q, i, u, x, t  -> integer (t as an unsigned 64-bit integer)
 *     d                    -> double
 *     a{..}                -> object (keys as strings)
 *     a..                  -> array
 *     (..)                 -> array of the fields, or an object with named
 *                             keys where the struct is known (Bars, MdevTypes,
 *                             ListIommuGroups; see bus-client.c)
 *     v                    -> the contained value
 */

#include <stdbool.h>
#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "log.h"
#include "macro.h"
#include "names.h"

/* The freedesktop interfaces hostdevd implements (not ours, so not in names.h yet). */
#ifndef DBUS_INTERFACE_PROPERTIES
#        define DBUS_INTERFACE_PROPERTIES "org.freedesktop.DBus.Properties"
#endif
#ifndef DBUS_INTERFACE_OBJECT_MANAGER
#        define DBUS_INTERFACE_OBJECT_MANAGER "org.freedesktop.DBus.ObjectManager"
#endif

/* Errors of the issue 3 methods (dbus/org.hostdevd1.xml); to move into names.h with the daemon's side. */
#ifndef HOSTDEVD_ERROR_CONFIG_INVALID
#        define HOSTDEVD_ERROR_CONFIG_INVALID "org.hostdevd1.Error.ConfigInvalid"
#endif
#ifndef HOSTDEVD_ERROR_REFUSED
#        define HOSTDEVD_ERROR_REFUSED "org.hostdevd1.Error.Refused"
#endif
#ifndef HOSTDEVD_ERROR_BLOCKED
#        define HOSTDEVD_ERROR_BLOCKED "org.hostdevd1.Error.Blocked"
#endif

/* Exit statuses of hostdevctl, documented in hostdevctl(1). */
enum {
        EXIT_BUS = 1, /* cannot reach the daemon, a D-Bus error, or not authorized */
        EXIT_USAGE = 2, /* unknown verb or option, missing or malformed argument */
        EXIT_NOT_CONVERGED = 3, /* refused, blocked, or the host is not converged afterwards */
        EXIT_NOT_FOUND = 4, /* no such device or mdev */
};

/* Log "Out of memory." and return -ENOMEM. */
#define log_oom() log_error_errno(ENOMEM, "Out of memory.")

static inline void json_object_putp(json_object **p) {
        if (*p)
                (void)json_object_put(*p);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/* Connect to the bus at address (a D-Bus address string), or to the system bus when address is NULL. */
int bus_client_open(const char *address, sd_bus **ret);

/*
 * Report a failed call (r < 0, error possibly set) on stderr, prefixed with
 * what ("Failed to list devices"), and return the exit status for it:
 * EXIT_NOT_FOUND for org.hostdevd1.Error.NotFound, EXIT_USAGE for
 * org.hostdevd1.Error.InvalidArgument, EXIT_NOT_CONVERGED for
 * org.hostdevd1.Error.Refused and .Blocked (the daemon's message says why),
 * EXIT_BUS otherwise (including "the daemon is not running" and polkit's
 * AccessDenied, reported as "not authorized").
 */
int bus_client_fail(const sd_bus_error *error, int r, const char *what);

/*
 * Call a Manager method that changes something. With interactive, the call
 * carries ALLOW_INTERACTIVE_AUTHORIZATION, so polkit may ask the user for a
 * password (through the session's agent) instead of denying at once. types
 * and the arguments as sd_bus_message_append(); types may be NULL.
 */
int bus_call_manager_method(
        sd_bus *bus, bool interactive, const char *member, sd_bus_error *error, sd_bus_message **ret_reply,
        const char *types, ...);
/* The same for a method call message built by the caller. */
int bus_call_message(
        sd_bus *bus, sd_bus_message *m, bool interactive, sd_bus_error *error, sd_bus_message **ret_reply);

/*
 * Read the next complete value of m into a new json object. name is the
 * value's context (a property or method name) and selects the key names of
 * known structs; may be NULL. Returns 0, or negative errno on a malformed
 * message.
 */
int bus_message_read_json(sd_bus_message *m, const char *name, json_object **ret);

/*
 * ObjectManager.GetManagedObjects on the root object, as
 * {"/org/hostdevd1/devices/pci_...": {"org.hostdevd1.Device": {"Address": ...}}, ...}.
 */
int bus_get_managed_objects(sd_bus *bus, sd_bus_error *error, json_object **ret);

/* Properties.GetAll(interface) on path, as {"Name": value, ...}. */
int bus_get_all_properties(
        sd_bus *bus, const char *path, const char *interface, sd_bus_error *error, json_object **ret);

/* Properties.Get(interface, name) on path. */
int bus_get_property_json(
        sd_bus *bus, const char *path, const char *interface, const char *name, sd_bus_error *error,
        json_object **ret);

/*
 * From a GetManagedObjects result, the property objects of every object
 * implementing interface, sorted by the string property sort_key (PCI
 * addresses are compared numerically by domain first). Returns a new array
 * holding references to the property objects.
 */
int bus_objects_with_interface(
        json_object *objects, const char *interface, const char *sort_key, json_object **ret);

/* qsort-style comparison of canonical PCI addresses (wide domains sort after 0000). */
int pci_address_string_compare(const char *a, const char *b);

/* True if s has the shape of a UUID (8-4-4-4-12 hex digits). */
bool string_is_uuid(const char *s);

/* Typed getters on a property object; missing or mistyped keys give the fallback. */
const char *json_get_string(json_object *o, const char *key); /* "" when missing */
int64_t json_get_int(json_object *o, const char *key, int64_t fallback);
bool json_get_bool(json_object *o, const char *key);
