/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Connecting hostdevd to its bus; strings from outside onto it. */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

/*
 * Open a bus connection: |address| if set (a private bus), else the system
 * bus (sd_bus_open_system() honours $DBUS_SYSTEM_BUS_ADDRESS). The connection
 * is attached to |event| and ends the loop when the bus goes away.
 * Returns 0 or -errno (logged).
 */
int bus_open(sd_event *event, const char *address, sd_bus **ret);

/* Request org.hostdevd1 without queueing. Returns 0, -EEXIST if another process owns it, -errno (logged). */
int bus_request_name(sd_bus *bus);

/*
 * The userdata a vtable was registered with. In a getter of a fallback vtable
 * the userdata argument is the object the find callback returned; this is the
 * daemon given to sd_bus_add_fallback_vtable(). NULL outside a callback.
 */
void *bus_get_slot_userdata(sd_bus *bus);

/*
 * The one path element directly below |prefix| ("PREFIX/ELEMENT" -> "ELEMENT"), pointing into
 * |path|; NULL when path is not a direct child of prefix. For the find callbacks of fallback vtables.
 */
const char *bus_path_child_element(const char *path, const char *prefix);

/* Flush what is queued, close and unref |bus| (NULL-safe). Returns NULL. */
sd_bus *bus_close(sd_bus *bus);
/*
 * Append |s| (NULL: "") as a D-Bus string: as it is when it is valid UTF-8,
 * else escaped (escape.h). sd-bus refuses a string that is not UTF-8 (the
 * D-Bus specification, "Basic types"), and sysfs values, process names,
 * file names and file contents can be any bytes: every string that comes
 * from outside the daemon goes through here. Returns 0 or -errno.
 */
int bus_message_append_text(sd_bus_message *m, const char *s);
/*
 * Append |s|, known to be ASCII (a name of our own, an interface or property name, a PCI address, an
 * enum's string, or text bus_message_append_text() has checked), as a D-Bus string without sd-bus
 * checking its UTF-8. Never for a string from outside the daemon. Returns 0 or -errno.
 */
int bus_message_append_valid_string(sd_bus_message *m, const char *s);
/* The same for an array of strings ("as"; NULL: empty). */
int bus_message_append_text_strv(sd_bus_message *m, char **l);

/*
 * Append one object of a GetManagedObjects reply ("{oa{sa{sv}}}") to |reply|, inside its open
 * "a{oa{sa{sv}}}": |path| with the standard interfaces (Peer, Introspectable, Properties: no
 * properties) and |interface| with every property of |vtable| that sd-bus itself would list (not
 * hidden, not "explicit"), read as sd-bus reads them: the entry's getter with |userdata| plus the
 * entry's offset, or for entries without a getter the value at that offset. The same content as
 * sd-bus's own GetManagedObjects, without its per-object and per-property lookups (bus-manager.c).
 * The getters run with the caller's current slot. Returns 0 or -errno (|error| may be set).
 */
int bus_append_managed_object(
        sd_bus *bus, sd_bus_message *reply, const char *path, const char *interface,
        const sd_bus_vtable *vtable, void *userdata, sd_bus_error *error);
