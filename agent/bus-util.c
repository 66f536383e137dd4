/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Opening the bus and taking the name: what every bus file shares. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bus-util.h"
#include "event-priorities.h"
#include "escape.h"
#include "log.h"
#include "macro.h"
#include "names.h"

int bus_open(sd_event *event, const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (address) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return log_error_errno(r, "Failed to allocate a bus connection: %m");
                r = sd_bus_set_address(bus, address);
                if (r < 0)
                        return log_error_errno(r, "Failed to set bus address '%s': %m", address);
                r = sd_bus_set_bus_client(bus, true);
                if (r < 0)
                        return log_error_errno(r, "Failed to make the bus connection a client: %m");
                r = sd_bus_start(bus);
                if (r < 0)
                        return log_error_errno(r, "Failed to connect to the bus at '%s': %m", address);
        } else {
                r = sd_bus_open_system(&bus);
                if (r < 0)
                        return log_error_errno(r, "Failed to connect to the system bus: %m");
        }

        (void)sd_bus_set_description(bus, "hostdevd");

        r = sd_bus_attach_event(bus, event, EVENT_PRIORITY_BUS);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");

        /* Without the bus nobody can reach us: end the loop, systemd restarts us (Restart=on-failure). */
        r = sd_bus_set_exit_on_disconnect(bus, true);
        if (r < 0)
                return log_error_errno(r, "Failed to set exit-on-disconnect: %m");

        *ret = TAKE_PTR(bus);
        return 0;
}

int bus_request_name(sd_bus *bus) {
        int r;

        r = sd_bus_request_name(bus, HOSTDEVD_BUS_NAME, 0);
        if (r == -EEXIST)
                return log_error_errno(r, "The bus name %s is owned by another process", HOSTDEVD_BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Failed to request bus name %s: %m", HOSTDEVD_BUS_NAME);
        return 0;
}

void *bus_get_slot_userdata(sd_bus *bus) {
        sd_bus_slot *slot;

        slot = sd_bus_get_current_slot(bus);
        if (!slot)
                return NULL;
        return sd_bus_slot_get_userdata(slot);
}

const char *bus_path_child_element(const char *path, const char *prefix) {
        size_t n = strlen(prefix);

        if (!strneq(path, prefix, n) || path[n] != '/' || path[n + 1] == '\0' || strchr(path + n + 1, '/'))
                return NULL;
        return path + n + 1;
}

int bus_message_append_valid_string(sd_bus_message *m, const char *s) {
        size_t n = strlen(s);
        char *p;
        int r;

        /* sd_bus_message_append_basic() would check the UTF-8 of every string: at 4096 functions that
         * was about a tenth of GetManagedObjects. The space call writes the length and the NUL. */
        r = sd_bus_message_append_string_space(m, n, &p);
        if (r < 0)
                return r;
        memcpy(p, s, n);
        return 0;
}

static bool is_ascii(const char *s) {
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p >= 0x80)
                        return false;
        return true;
}

int bus_message_append_text(sd_bus_message *m, const char *s) {
        _cleanup_free_ char *buf = NULL;
        const char *t = utf8_or_escaped(strempty(s), &buf);

        if (!t)
                return -ENOMEM;
        /* ASCII without sd-bus's second look; anything else as before, through sd-bus's own check, which
         * also refuses the noncharacters (U+FDD0..U+FDEF, U+xFFFE/F) that RFC 3629 and utf8_is_valid()
         * allow, so what goes on the bus stays what sd-bus accepts. */
        if (is_ascii(t))
                return bus_message_append_valid_string(m, t);
        return sd_bus_message_append_basic(m, 's', t);
}

int bus_message_append_text_strv(sd_bus_message *m, char **l) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "s");
        if (r < 0)
                return r;
        STRV_FOREACH (s, l) {
                r = bus_message_append_text(m, *s);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

sd_bus *bus_close(sd_bus *bus) {
        return sd_bus_flush_close_unref(bus);
}

/* A property's value as sd-bus reads it for a vtable entry: the getter, or the value at the offset. */
static int append_property_value(
        sd_bus *bus, sd_bus_message *reply, const char *path, const char *interface, const sd_bus_vtable *v,
        void *userdata, sd_bus_error *error) {
        void *p = (uint8_t *)userdata + v->x.property.offset;
        const char *sig = v->x.property.signature;
        int r;

        if (v->x.property.get) {
                r = v->x.property.get(bus, path, interface, v->x.property.member, reply, p, error);
                if (r < 0)
                        return r;
                if (sd_bus_error_is_set(error))
                        return -sd_bus_error_get_errno(error);
                return r;
        }
        if (streq(sig, "as"))
                return sd_bus_message_append_strv(reply, *(char ***)p);
        if (sig[0] == SD_BUS_TYPE_STRING || sig[0] == SD_BUS_TYPE_SIGNATURE)
                return sd_bus_message_append_basic(reply, sig[0], strempty(*(char **)p));
        if (sig[0] == SD_BUS_TYPE_OBJECT_PATH)
                return sd_bus_message_append_basic(reply, sig[0], *(char **)p);
        return sd_bus_message_append_basic(reply, sig[0], p);
}

int bus_append_managed_object(
        sd_bus *bus, sd_bus_message *reply, const char *path, const char *interface,
        const sd_bus_vtable *vtable, void *userdata, sd_bus_error *error) {
        static const char *const standard[] = {
                "org.freedesktop.DBus.Peer",
                "org.freedesktop.DBus.Introspectable",
                "org.freedesktop.DBus.Properties",
        };
        int r;

        r = sd_bus_message_open_container(reply, 'e', "oa{sa{sv}}");
        if (r < 0)
                return r;
        r = sd_bus_message_append_basic(reply, 'o', path);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(standard); i++) {
                r = sd_bus_message_open_container(reply, 'e', "sa{sv}");
                if (r >= 0)
                        r = bus_message_append_valid_string(reply, standard[i]);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'a', "{sv}");
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }

        r = sd_bus_message_open_container(reply, 'e', "sa{sv}");
        if (r < 0)
                return r;
        r = bus_message_append_valid_string(reply, interface);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        for (const sd_bus_vtable *v = vtable + 1; v->type != _SD_BUS_VTABLE_END; v++) {
                if ((v->type != _SD_BUS_VTABLE_PROPERTY && v->type != _SD_BUS_VTABLE_WRITABLE_PROPERTY) ||
                    (v->flags & (SD_BUS_VTABLE_HIDDEN | SD_BUS_VTABLE_PROPERTY_EXPLICIT)))
                        continue;
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r < 0)
                        return r;
                r = bus_message_append_valid_string(reply, v->x.property.member);
                if (r < 0)
                        return r;
                r = sd_bus_message_open_container(reply, 'v', v->x.property.signature);
                if (r < 0)
                        return r;
                r = append_property_value(bus, reply, path, interface, v, userdata, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply); /* a{sv} */
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(reply); /* {sa{sv}} */
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(reply); /* a{sa{sv}} */
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply); /* {oa{sa{sv}}} */
}
