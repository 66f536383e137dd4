/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The argument checks of every D-Bus method and writable property that
 * takes arguments (dbus/org.hostdevd1.xml), through the same functions the
 * handlers in agent/bus-*.c call. The first input byte picks the method;
 * SetNumVFs takes its num_vfs from the next four bytes; the rest are the
 * string arguments, separated by NUL (flags last, one per string).
 *
 *   SetDeviceDriver(s address, s driver, as flags)
 *   ResetDeviceDriver(s address), GetDeviceByAddress(s address)
 *   SetNumVFs(s pf, u num_vfs, s vf_driver, as flags)
 *   GetMdevByUuid(s uuid)
 *   LogControl1.LogLevel, LogControl1.LogTarget (Set)
 *
 * What a check accepts must be safe to use: a request that passes is
 * written as the daemon writes it (the hostdevd.conf(5) text of
 * src/request.c) and read back by the desired-state parser, and must
 * come back as exactly the rule that was asked for.
 *
 * GetMdevByUuid's lowering of the UUID is inline in its handler
 * (agent/bus-manager.c); it is repeated here, next to the mdev_uuid_is_valid()
 * it leads to, until the request checks move to src/.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desired-state.h"
#include "fuzz.h"
#include "log.h"
#include "macro.h"
#include "mdev.h"
#include "object-path.h"
#include "pci-address.h"
#include "request.h"

#define MAX_ARGS 8

static const char *dir;
static char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        dir = fuzz_tmpdir("fuzz-dbus-args");
        if (asprintf(&path, "%s/request.conf", dir) < 0)
                abort();
        return 0;
}

/* The request file's text parsed back: the one rule it holds. */
static DesiredState *parse_back(const char *text) {
        DesiredState *s = calloc(1, sizeof(DesiredState));

        if (!s)
                abort();
        fuzz_write_file(dir, "request.conf", text, strlen(text));
        fuzz_check(
                desired_state_add_file(s, path) == 1, "request does not parse back: %s%s", text,
                s->errors ? s->errors[0] : "");
        return s;
}

static bool address_arg(const char *s, char canonical[static PCI_ADDRESS_STRING_MAX]) {
        PciAddress a;

        if (pci_address_from_string(s, &a) < 0)
                return false;
        pci_address_format(&a, canonical);
        return true;
}

static void check_file_name(RequestKind kind, const char *canonical) {
        _cleanup_free_ char *name = NULL;

        fuzz_check(request_file_name(kind, canonical, &name) == 0, "no file name for %s", canonical);
        fuzz_check(
                !strchr(name, '/') && strlen(name) > 5 && strcmp(name + strlen(name) - 5, ".conf") == 0,
                "request file name '%s'", name);
}

static void set_device_driver(char **args, size_t n) {
        _cleanup_(desired_state_freep) DesiredState *s = NULL;
        _cleanup_free_ char *text = NULL;
        char canonical[PCI_ADDRESS_STRING_MAX];
        const char *bad = NULL;
        DriverSpec spec = {};
        unsigned bits;

        if (n < 2 || !address_arg(args[0], canonical))
                return;
        if (driver_spec_parse(args[1], &spec) < 0 || spec.kind == DRIVER_KIND_UNSET) {
                driver_spec_done(&spec);
                return;
        }
        if (request_flags_parse(
                    args + 2, REQUEST_FLAG_PERSIST | REQUEST_FLAG_WHOLE_GROUP | REQUEST_FLAG_ALLOW_CRITICAL,
                    &bits, &bad) < 0) {
                bool in_args = false;

                for (size_t i = 2; i < n; i++)
                        in_args = in_args || bad == args[i];
                fuzz_check(in_args, "request_flags_parse names no argument as bad");
                driver_spec_done(&spec);
                return;
        }

        check_file_name(REQUEST_DEVICE, canonical);
        fuzz_check(
                request_format_device(canonical, args[1], bits, &text) == 0,
                "SetDeviceDriver('%s', '%s') passed its checks but cannot be written", canonical, args[1]);
        s = parse_back(text);
        fuzz_check(s->rules[0].match.has_address, "request without Address=");
        char again[PCI_ADDRESS_STRING_MAX];
        pci_address_format(&s->rules[0].match.address, again);
        fuzz_check(strcmp(again, canonical) == 0, "request for %s reads back as %s", canonical, again);
        fuzz_check(
                driver_spec_equal(&s->rules[0].driver, &spec), "driver '%s' reads back as '%s'", args[1],
                strna(driver_spec_to_string(&s->rules[0].driver)));
        fuzz_check(
                (s->rules[0].group == GROUP_POLICY_WHOLE) == !!(bits & REQUEST_FLAG_WHOLE_GROUP), "Group=");
        fuzz_check(s->rules[0].allow_critical == !!(bits & REQUEST_FLAG_ALLOW_CRITICAL), "AllowCritical=");
        driver_spec_done(&spec);
}

static void set_num_vfs(char **args, size_t n, uint32_t num_vfs) {
        _cleanup_(desired_state_freep) DesiredState *s = NULL;
        _cleanup_free_ char *text = NULL;
        char canonical[PCI_ADDRESS_STRING_MAX];
        DriverSpec spec = {};
        unsigned bits;

        if (n < 2 || !address_arg(args[0], canonical))
                return;
        if (*args[1] && (driver_spec_parse(args[1], &spec) < 0 || spec.kind == DRIVER_KIND_UNSET)) {
                driver_spec_done(&spec);
                return;
        }
        if (request_flags_parse(args + 2, REQUEST_FLAG_PERSIST, &bits, NULL) < 0) {
                driver_spec_done(&spec);
                return;
        }
        /* The handler then refuses more than the PF's sriov_totalvfs, a u16 in the kernel (struct pci_sriov,
         * drivers/pci/pci.h). */
        if (num_vfs > UINT16_MAX) {
                driver_spec_done(&spec);
                return;
        }

        check_file_name(REQUEST_SRIOV, canonical);
        fuzz_check(
                request_format_sriov(canonical, num_vfs, args[1], &text) == 0,
                "SetNumVFs('%s', %u, '%s') passed its checks but cannot be written", canonical, num_vfs,
                args[1]);
        s = parse_back(text);
        fuzz_check(
                s->rules[0].has_num_vfs && s->rules[0].num_vfs == num_vfs, "NumVFs=%u reads back as %u",
                num_vfs, s->rules[0].num_vfs);
        fuzz_check(
                driver_spec_equal(&s->rules[0].vf_driver, &spec), "VF driver '%s' reads back as '%s'",
                args[1], strna(driver_spec_to_string(&s->rules[0].vf_driver)));
        driver_spec_done(&spec);
}

static void address_only(const char *arg) {
        _cleanup_free_ char *object = NULL;
        char canonical[PCI_ADDRESS_STRING_MAX];

        if (!address_arg(arg, canonical))
                return;
        object = object_path_from_pci_address(canonical);
        fuzz_check(object, "no object path for '%s' (from '%s')", canonical, arg);
        check_file_name(REQUEST_DEVICE, canonical);
        check_file_name(REQUEST_SRIOV, canonical);
}

/* As method_get_mdev_by_uuid(): any hex case, lowered, then mdev_uuid_is_valid(). */
static void get_mdev_by_uuid(const char *uuid) {
        _cleanup_free_ char *object = NULL;
        char lower[MDEV_UUID_STRING_MAX];
        size_t len = strlen(uuid);

        if (len + 1 != sizeof(lower))
                return;
        for (size_t i = 0; i <= len; i++)
                lower[i] = (char)tolower((unsigned char)uuid[i]);
        if (!mdev_uuid_is_valid(lower))
                return;
        object = object_path_from_mdev_uuid(lower);
        fuzz_check(object, "no object path for UUID '%s'", lower);
}

static void log_settings(const char *s) {
        int level = log_level_from_string(s);
        LogTarget target = log_target_from_string(s);

        if (level >= 0)
                fuzz_check(strcmp(log_level_to_string(level), s) == 0, "log level '%s' -> %d", s, level);
        if (target >= 0)
                fuzz_check(strcmp(log_target_to_string(target), s) == 0, "log target '%s' -> %d", s, target);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *parts[MAX_ARGS];
        size_t sizes[MAX_ARGS], n;
        char *args[MAX_ARGS + 1] = {};
        uint32_t num_vfs;
        uint8_t method;

        if (size < 5 || size > 4096)
                return 0;
        method = data[0];
        memcpy(&num_vfs, data + 1, sizeof(num_vfs));
        n = fuzz_split(data + 5, size - 5, FUZZ_SEP("\0"), parts, sizes, MAX_ARGS);
        for (size_t i = 0; i < n; i++)
                args[i] = fuzz_strndup(parts[i], sizes[i]);

        switch (method % 6) {
        case 0:
                set_device_driver(args, n);
                break;
        case 1:
                set_num_vfs(args, n, num_vfs);
                break;
        case 2:
                address_only(args[0]); /* ResetDeviceDriver, GetDeviceByAddress */
                break;
        case 3:
                get_mdev_by_uuid(args[0]);
                break;
        case 4:
                log_settings(args[0]);
                break;
        default:
                /* Every check on every argument, whatever the method. */
                for (size_t i = 0; i < n; i++) {
                        address_only(args[i]);
                        get_mdev_by_uuid(args[i]);
                        log_settings(args[i]);
                }
                set_device_driver(args, n);
                set_num_vfs(args, n, num_vfs);
                break;
        }

        for (size_t i = 0; i < n; i++)
                free(args[i]);
        return 0;
}
