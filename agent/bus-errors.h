/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The one table of the daemon's D-Bus error names (dbus/org.hostdevd1.xml, "Errors"), with the
 * errno or the condition that maps to each (bus-errors.c holds it):
 *
 *   BUS_ERROR_NOT_FOUND         org.hostdevd1.Error.NotFound
 *       ENOENT, ENODEV, ENXIO: no such device, mdev or declaration
 *   BUS_ERROR_INVALID_ARGUMENT  org.hostdevd1.Error.InvalidArgument
 *       EINVAL, ERANGE: a malformed argument
 *   BUS_ERROR_ACCESS_DENIED     org.freedesktop.DBus.Error.AccessDenied
 *       EPERM, EACCES: polkit denied the caller
 *   BUS_ERROR_CONFIG_INVALID    org.hostdevd1.Error.ConfigInvalid
 *       condition: a desired-state file does not parse (nothing changed)
 *   BUS_ERROR_REFUSED           org.hostdevd1.Error.Refused
 *       condition: a safety rule refuses the request (device state "refused"; not a PF; more VFs
 *       than sriov_totalvfs)
 *   BUS_ERROR_BLOCKED           org.hostdevd1.Error.Blocked
 *       condition: a holder prevents it (device state "blocked")
 *   BUS_ERROR_FAILED            org.hostdevd1.Error.Failed
 *       every other errno (the message gets ": <strerror>"), device states "failed" and "stuck"
 *
 * A condition has no errno of its own (a refusal is not EPERM: that is polkit's AccessDenied), so
 * its caller names the kind. Only bus-*.c set D-Bus errors, always through this, with a message
 * that quotes the offending value; no other file spells an org.hostdevd1.Error.* name.
 */

#include <systemd/sd-bus.h>

#include "macro.h"
#include "planner.h"

typedef enum BusErrorKind {
        BUS_ERROR_NOT_FOUND,
        BUS_ERROR_INVALID_ARGUMENT,
        BUS_ERROR_ACCESS_DENIED,
        BUS_ERROR_CONFIG_INVALID,
        BUS_ERROR_REFUSED,
        BUS_ERROR_BLOCKED,
        BUS_ERROR_FAILED,
        _BUS_ERROR_KIND_MAX,
} BusErrorKind;

/* The D-Bus error name of |kind|; NULL for a value out of range. */
const char *bus_error_name(BusErrorKind kind);

/* The kind for -errno |r| (r may be positive or negative): the table's errno column, else FAILED. */
BusErrorKind bus_error_kind_from_errno(int r);

/* D-Bus error name for -errno |r| (r may be positive or negative). */
const char *bus_error_name_from_errno(int r);

/* The kind a request gets when its function ends in |state|: REFUSED, BLOCKED, FAILED (failed and
 * stuck), or -1 for a state that is no error (converged, pending). */
int bus_error_kind_from_device_state(DeviceState state);

/*
 * Set |error| to the name for |r| and a message from |format|. Returns a
 * negative errno (never 0), for "return bus_error_setf_errno(error, r, ...)".
 */
int bus_error_setf_errno(sd_bus_error *error, int r, const char *format, ...) _printf_(3, 4);

/*
 * Set |error| to the name of |kind| (a condition: CONFIG_INVALID, REFUSED, BLOCKED, or any other
 * kind) with the message from |format| as is. Returns -ENOMEM when the message cannot be built, else
 * 0; |error| is then set.
 */
int bus_error_setf(sd_bus_error *error, BusErrorKind kind, const char *format, ...) _printf_(3, 4);
