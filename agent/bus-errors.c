/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The one table of org.hostdevd1.Error names and the errno behind each (bus-errors.h). */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "names.h"

static const struct {
        int errnum;
        const char *name;
} bus_error_table[] = {
        { ENOENT, HOSTDEVD_ERROR_NOT_FOUND },        { ENODEV, HOSTDEVD_ERROR_NOT_FOUND },
        { ENXIO, HOSTDEVD_ERROR_NOT_FOUND },         { EINVAL, HOSTDEVD_ERROR_INVALID_ARGUMENT },
        { ERANGE, HOSTDEVD_ERROR_INVALID_ARGUMENT }, { EPERM, DBUS_ERROR_ACCESS_DENIED },
        { EACCES, DBUS_ERROR_ACCESS_DENIED },
};

const char *bus_error_name_from_errno(int r) {
        r = abs(r);
        for (size_t i = 0; i < ELEMENTSOF(bus_error_table); i++)
                if (bus_error_table[i].errnum == r)
                        return bus_error_table[i].name;
        return HOSTDEVD_ERROR_FAILED;
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
