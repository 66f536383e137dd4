/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * agent/bus-errors.c: the one errno -> D-Bus error table (bus-errors.h,
 * dbus/org.hostdevd1.xml "Errors"), and the messages built with it.
 * The expected names are spelled out here, not taken from names.h, so a
 * typo there fails the test.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <systemd/sd-bus.h>

#include "bus-errors.h"

#define NOT_FOUND "org.hostdevd1.Error.NotFound"
#define INVALID_ARGUMENT "org.hostdevd1.Error.InvalidArgument"
#define FAILED "org.hostdevd1.Error.Failed"
#define ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"
#define CONFIG_INVALID "org.hostdevd1.Error.ConfigInvalid"
#define REFUSED "org.hostdevd1.Error.Refused"
#define BLOCKED "org.hostdevd1.Error.Blocked"

static const struct {
        int errnum;
        const char *name;
} table[] = {
        { ENOENT, NOT_FOUND },
        { ENODEV, NOT_FOUND },
        { ENXIO, NOT_FOUND },
        { EINVAL, INVALID_ARGUMENT },
        { ERANGE, INVALID_ARGUMENT },
        { EPERM, ACCESS_DENIED },
        { EACCES, ACCESS_DENIED },
        /* Everything else is Failed; a few that callers really return. */
        { EIO, FAILED },
        { EBUSY, FAILED },
        { EEXIST, FAILED },
        { ENOMEM, FAILED },
        { ENOTSUP, FAILED },
        { ETIMEDOUT, FAILED },
        { ESTALE, FAILED },
        { ENOTDIR, FAILED },
};

static void test_name_table(void **state) {
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                /* Both signs: callers pass -errno, some pass errno. */
                assert_string_equal(bus_error_name_from_errno(-table[i].errnum), table[i].name);
                assert_string_equal(bus_error_name_from_errno(table[i].errnum), table[i].name);
        }
        /* 0 is no error code at all: the catch-all. */
        assert_string_equal(bus_error_name_from_errno(0), FAILED);
}

/* Every errno the kernel knows maps to exactly one of the four names, and only the listed ones are special.
 */
static void test_name_table_exhaustive(void **state) {
        for (int e = 1; e < 4096; e++) {
                const char *name = bus_error_name_from_errno(-e);
                const char *expected = FAILED;

                if (e == ENOENT || e == ENODEV || e == ENXIO)
                        expected = NOT_FOUND;
                else if (e == EINVAL || e == ERANGE)
                        expected = INVALID_ARGUMENT;
                else if (e == EPERM || e == EACCES)
                        expected = ACCESS_DENIED;
                if (strcmp(name, expected) != 0)
                        fail_msg("errno %d (%s): got %s, expected %s", e, strerror(e), name, expected);
        }
}

static void check_setf(int r, const char *name, const char *message, int expected_return) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int k;

        k = bus_error_setf_errno(&error, r, "No PCI function '%s'", "0000:41:00.0");
        assert_int_equal(k, expected_return);
        assert_true(k < 0);
        assert_true(sd_bus_error_is_set(&error));
        assert_string_equal(error.name, name);
        assert_string_equal(error.message, message);
        sd_bus_error_free(&error);
}

static void test_setf_known(void **state) {
        /* Known errors: the message is the caller's, quoting the value, nothing appended. */
        check_setf(-ENOENT, NOT_FOUND, "No PCI function '0000:41:00.0'", -ENOENT);
        check_setf(ENOENT, NOT_FOUND, "No PCI function '0000:41:00.0'", -ENOENT);
        check_setf(-ENODEV, NOT_FOUND, "No PCI function '0000:41:00.0'", -ENODEV);
        check_setf(-ENXIO, NOT_FOUND, "No PCI function '0000:41:00.0'", -ENXIO);
        check_setf(-EINVAL, INVALID_ARGUMENT, "No PCI function '0000:41:00.0'", -EINVAL);
        check_setf(-ERANGE, INVALID_ARGUMENT, "No PCI function '0000:41:00.0'", -ERANGE);
        check_setf(-EPERM, ACCESS_DENIED, "No PCI function '0000:41:00.0'", -EPERM);
        check_setf(-EACCES, ACCESS_DENIED, "No PCI function '0000:41:00.0'", -EACCES);
}

static void test_setf_failed(void **state) {
        char expected[256];
        const int errnos[] = { EIO, EBUSY, EEXIST, ENOMEM, ETIMEDOUT };

        /* The catch-all gets ": <strerror>" so the errno is not lost. */
        for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
                snprintf(
                        expected, sizeof(expected), "No PCI function '0000:41:00.0': %s",
                        strerror(errnos[i]));
                check_setf(-errnos[i], FAILED, expected, -errnos[i]);
                check_setf(errnos[i], FAILED, expected, -errnos[i]);
        }
        assert_string_equal(strerror(EBUSY), "Device or resource busy");
        check_setf(-EBUSY, FAILED, "No PCI function '0000:41:00.0': Device or resource busy", -EBUSY);

        /* 0 is not an error: report it as EIO rather than returning "success" from a failure path. */
        check_setf(0, FAILED, "No PCI function '0000:41:00.0': Input/output error", -EIO);
}

static void test_setf_format(void **state) {
        sd_bus_error error = SD_BUS_ERROR_NULL;

        /* printf-style formatting of several values, with the value quoted verbatim (even odd bytes). */
        assert_int_equal(
                bus_error_setf_errno(&error, -EINVAL, "Not a UUID: '%s' (%d characters)", "xyz'\"", 5),
                -EINVAL);
        assert_string_equal(error.name, INVALID_ARGUMENT);
        assert_string_equal(error.message, "Not a UUID: 'xyz'\"' (5 characters)");
        sd_bus_error_free(&error);

        /* A long value is not truncated. */
        {
                char value[1024];

                memset(value, 'a', sizeof(value) - 1);
                value[sizeof(value) - 1] = '\0';
                assert_int_equal(bus_error_setf_errno(&error, -ENOENT, "'%s'", value), -ENOENT);
                assert_int_equal(strlen(error.message), sizeof(value) - 1 + 2);
                sd_bus_error_free(&error);
        }
}

/* Every name of dbus/org.hostdevd1.xml's "Errors" comes from the one table, each once. */
static void test_kinds(void **state) {
        static const char *const names[_BUS_ERROR_KIND_MAX] = {
                [BUS_ERROR_NOT_FOUND] = NOT_FOUND,
                [BUS_ERROR_INVALID_ARGUMENT] = INVALID_ARGUMENT,
                [BUS_ERROR_ACCESS_DENIED] = ACCESS_DENIED,
                [BUS_ERROR_CONFIG_INVALID] = CONFIG_INVALID,
                [BUS_ERROR_REFUSED] = REFUSED,
                [BUS_ERROR_BLOCKED] = BLOCKED,
                [BUS_ERROR_FAILED] = FAILED,
        };

        for (int k = 0; k < _BUS_ERROR_KIND_MAX; k++) {
                assert_non_null(names[k]);
                assert_string_equal(bus_error_name(k), names[k]);
                /* The errno column agrees with bus_error_name_from_errno(). */
                for (int e = 1; e < 4096; e++)
                        if (bus_error_kind_from_errno(-e) == (BusErrorKind)k)
                                assert_string_equal(bus_error_name_from_errno(e), names[k]);
        }
        assert_null(bus_error_name(_BUS_ERROR_KIND_MAX));
        assert_null(bus_error_name(-1));
        /* Conditions have no errno: no errno maps to them. */
        for (int e = 0; e < 4096; e++) {
                BusErrorKind k = bus_error_kind_from_errno(-e);
                assert_true(
                        k != BUS_ERROR_CONFIG_INVALID && k != BUS_ERROR_REFUSED && k != BUS_ERROR_BLOCKED);
        }
}

static void test_device_states(void **state) {
        assert_int_equal(bus_error_kind_from_device_state(DEVICE_STATE_REFUSED), BUS_ERROR_REFUSED);
        assert_int_equal(bus_error_kind_from_device_state(DEVICE_STATE_BLOCKED), BUS_ERROR_BLOCKED);
        assert_int_equal(bus_error_kind_from_device_state(DEVICE_STATE_FAILED), BUS_ERROR_FAILED);
        assert_int_equal(bus_error_kind_from_device_state(DEVICE_STATE_STUCK), BUS_ERROR_FAILED);
        assert_int_equal(bus_error_kind_from_device_state(DEVICE_STATE_CONVERGED), -1);
        assert_int_equal(bus_error_kind_from_device_state(DEVICE_STATE_PENDING), -1);
}

static void test_setf_condition(void **state) {
        sd_bus_error error = SD_BUS_ERROR_NULL;

        /* A condition's message is the caller's as is: no errno text appended, not even for Failed. */
        assert_int_equal(
                bus_error_setf(&error, BUS_ERROR_REFUSED, "%s is not an SR-IOV PF", "0000:41:00.0"), 0);
        assert_string_equal(error.name, REFUSED);
        assert_string_equal(error.message, "0000:41:00.0 is not an SR-IOV PF");
        sd_bus_error_free(&error);
        assert_int_equal(bus_error_setf(&error, BUS_ERROR_FAILED, "Too many pending checks"), 0);
        assert_string_equal(error.name, FAILED);
        assert_string_equal(error.message, "Too many pending checks");
        sd_bus_error_free(&error);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_name_table),    cmocka_unit_test(test_name_table_exhaustive),
                cmocka_unit_test(test_setf_known),    cmocka_unit_test(test_setf_failed),
                cmocka_unit_test(test_setf_format),   cmocka_unit_test(test_kinds),
                cmocka_unit_test(test_device_states), cmocka_unit_test(test_setf_condition),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
