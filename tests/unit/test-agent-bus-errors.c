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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_name_table),  cmocka_unit_test(test_name_table_exhaustive),
                cmocka_unit_test(test_setf_known),  cmocka_unit_test(test_setf_failed),
                cmocka_unit_test(test_setf_format),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
