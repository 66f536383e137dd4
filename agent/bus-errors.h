/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The one table from errno to org.hostdevd1.Error.* (dbus/org.hostdevd1.xml):
 *   ENOENT, ENODEV, ENXIO -> org.hostdevd1.Error.NotFound
 *   EINVAL, ERANGE        -> org.hostdevd1.Error.InvalidArgument
 *   EPERM, EACCES         -> org.freedesktop.DBus.Error.AccessDenied
 *   anything else         -> org.hostdevd1.Error.Failed (message gets ": <strerror>")
 * Only bus-*.c set D-Bus errors, always through this, with a message that
 * quotes the offending value.
 */

#include <systemd/sd-bus.h>

#include "macro.h"

/* D-Bus error name for -errno |r| (r may be positive or negative). */
const char *bus_error_name_from_errno(int r);

/*
 * Set |error| to the name for |r| and a message from |format|. Returns a
 * negative errno (never 0), for "return bus_error_setf_errno(error, r, ...)".
 */
int bus_error_setf_errno(sd_bus_error *error, int r, const char *format, ...) _printf_(3, 4);
