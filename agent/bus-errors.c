/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The one table of org.hostdevd1.Error names and the errno behind each (bus-errors.h). */

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "names.h"

/* bus-errors.h's table: each kind's name and the errnos that map to it (0 ends a list). */
static const struct {
        const char *name;
        int errnos[4];
} bus_error_table[_BUS_ERROR_KIND_MAX] = {
        [BUS_ERROR_NOT_FOUND] = { HOSTDEVD_ERROR_NOT_FOUND, { ENOENT, ENODEV, ENXIO } },
        [BUS_ERROR_INVALID_ARGUMENT] = { HOSTDEVD_ERROR_INVALID_ARGUMENT, { EINVAL, ERANGE } },
        [BUS_ERROR_ACCESS_DENIED] = { DBUS_ERROR_ACCESS_DENIED, { EPERM, EACCES } },
        [BUS_ERROR_CONFIG_INVALID] = { HOSTDEVD_ERROR_CONFIG_INVALID, {} },
        [BUS_ERROR_REFUSED] = { HOSTDEVD_ERROR_REFUSED, {} },
        [BUS_ERROR_BLOCKED] = { HOSTDEVD_ERROR_BLOCKED, {} },
        [BUS_ERROR_FAILED] = { HOSTDEVD_ERROR_FAILED, {} }, /* every errno not listed above */
};

const char *bus_error_name(BusErrorKind kind) {
        return kind >= 0 && kind < _BUS_ERROR_KIND_MAX ? bus_error_table[kind].name : NULL;
}

BusErrorKind bus_error_kind_from_errno(int r) {
        r = abs(r);
        if (r == 0)
                return BUS_ERROR_FAILED;
        for (BusErrorKind k = 0; k < _BUS_ERROR_KIND_MAX; k++)
                for (size_t i = 0; i < ELEMENTSOF(bus_error_table[k].errnos) && bus_error_table[k].errnos[i];
                     i++)
                        if (bus_error_table[k].errnos[i] == r)
                                return k;
        return BUS_ERROR_FAILED;
}

const char *bus_error_name_from_errno(int r) {
        return bus_error_name(bus_error_kind_from_errno(r));
}

int bus_error_kind_from_device_state(DeviceState state) {
        switch (state) {
        case DEVICE_STATE_REFUSED:
                return BUS_ERROR_REFUSED;
        case DEVICE_STATE_BLOCKED:
                return BUS_ERROR_BLOCKED;
        case DEVICE_STATE_FAILED:
        case DEVICE_STATE_STUCK:
                return BUS_ERROR_FAILED;
        default:
                return -1;
        }
}

int bus_error_setf_errno(sd_bus_error *error, int r, const char *format, ...) {
        _cleanup_free_ char *message = NULL;
        const char *name;
        va_list ap;
        int k;

        r = r == 0 ? EIO : abs(r);
        name = bus_error_name_from_errno(r);

        va_start(ap, format);
        k = vasprintf(&message, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        /* Known errors speak for themselves; for the catch-all the errno text is the information. */
        if (streq(name, HOSTDEVD_ERROR_FAILED)) {
                char *full = NULL;

                if (asprintf(&full, "%s: %s", message, strerror(r)) < 0)
                        return -ENOMEM;
                free(message);
                message = full;
        }

        (void)sd_bus_error_set(error, name, message);
        return -r;
}

int bus_error_setf(sd_bus_error *error, BusErrorKind kind, const char *format, ...) {
        _cleanup_free_ char *message = NULL;
        const char *name = bus_error_name(kind);
        va_list ap;
        int k;

        assert(name);
        va_start(ap, format);
        k = vasprintf(&message, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        (void)sd_bus_error_set(error, name, message);
        return 0;
}
