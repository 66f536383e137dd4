/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* org.freedesktop.LogControl1: the log level and target at run time. */

#include "bus-errors.h"
#include "escape.h"
#include "bus-log-control.h"
#include "bus-context.h"
#include "log.h"
#include "macro.h"
#include "names.h"

static int property_get_log_level(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", strempty(log_level_to_string(log_get_max_level())));
}

static int property_get_log_target(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", strempty(log_target_to_string(log_get_target())));
}

static int property_get_syslog_identifier(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", log_get_ident());
}

/* Only root changes how we log: the bus policy says so too, this holds even on a lax bus. */
static int check_sender_is_root(sd_bus_message *m, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t euid;
        int r;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &euid);
        if (r < 0)
                return r;
        if (euid != 0)
                return bus_error_setf_errno(
                        error, -EPERM, "Only root may change logging (caller euid %u)", (unsigned)euid);
        return 0;
}

static int property_set_log_level(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *value,
        void *userdata, sd_bus_error *error) {
        const char *s;
        int r, level;

        r = check_sender_is_root(value, error);
        if (r < 0)
                return r;

        r = sd_bus_message_read(value, "s", &s);
        if (r < 0)
                return r;

        level = log_level_from_string(s);
        if (level < 0)
                return bus_error_setf_errno(error, -EINVAL, "Invalid log level '%s'", ESCAPE_QUOTE(s));

        log_info("Setting log level to %s", s);
        log_set_max_level(level);
        return 0;
}

static int property_set_log_target(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *value,
        void *userdata, sd_bus_error *error) {
        LogTarget t;
        const char *s;
        int r;

        r = check_sender_is_root(value, error);
        if (r < 0)
                return r;

        r = sd_bus_message_read(value, "s", &s);
        if (r < 0)
                return r;

        t = log_target_from_string(s);
        if (t < 0)
                return bus_error_setf_errno(error, -EINVAL, "Invalid log target '%s'", ESCAPE_QUOTE(s));

        log_info("Setting log target to %s", s);
        log_set_target(t);
        return 0;
}

static const sd_bus_vtable log_control_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_WRITABLE_PROPERTY(
                "LogLevel", "s", property_get_log_level, property_set_log_level, 0,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_WRITABLE_PROPERTY(
                "LogTarget", "s", property_get_log_target, property_set_log_target, 0,
                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("SyslogIdentifier", "s", property_get_syslog_identifier, 0, 0),
        SD_BUS_VTABLE_END,
};

int bus_log_control_add(BusContext *d) {
        int r;

        r = sd_bus_add_object_vtable(
                d->bus, NULL, LOG_CONTROL_PATH, LOG_CONTROL_INTERFACE, log_control_vtable, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register %s: %m", LOG_CONTROL_INTERFACE);
        return 0;
}
