/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * hostdevctl acquire, release, leases, run: Manager.Acquire and the Lease objects
 * (dbus/org.hostdevd1.xml).
 *
 * run: hostdevctl acquires the devices for itself (no pidfd: the caller is the owner) and then
 * execve()s COMMAND, which keeps hostdevctl's pid and start time. The lease therefore lives exactly as
 * long as COMMAND: hostdevd sees the same process exit. COMMAND finds the lease in its environment:
 * HOSTDEVD_LEASE (the object path) and HOSTDEVD_LEASE_DEVICES (the addresses, space-separated).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "bus-client.h"
#include "hostdevctl.h"
#include "polkit-agent.h"
#include "strv.h"

/* The Acquire call: devices (argv-style, NULL-terminated), pidfd (-1: the caller). Returns 0 or an exit
 * status; *ret_path and *ret_devices on success. */
static int call_acquire(sd_bus *bus, char **devices, int pidfd, char **ret_path, char ***ret_devices) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_strv_free_ char **members = NULL;
        const char *path;
        int r;

        r = sd_bus_message_new_method_call(
                bus, &m, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, "Acquire");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, devices);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && pidfd >= 0)
                r = sd_bus_message_append(m, "{sv}", LEASE_OPTION_PIDFD, "h", pidfd);
        if (r >= 0 && arg_release)
                r = sd_bus_message_append(m, "{sv}", LEASE_OPTION_RELEASE, "s", arg_release);
        if (r >= 0 && arg_whole_group)
                r = sd_bus_message_append(m, "{sv}", LEASE_OPTION_WHOLE_GROUP, "b", 1);
        if (r >= 0 && arg_dry_run)
                r = sd_bus_message_append(m, "{sv}", LEASE_OPTION_DRY_RUN, "b", 1);
        if (r >= 0 && arg_mdev_release)
                r = sd_bus_message_append(m, "{sv}", LEASE_OPTION_MDEV_RELEASE, "s", arg_mdev_release);
        if (r >= 0 && arg_mdev_types) {
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", LEASE_OPTION_MDEVS);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "a(ss)");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "(ss)");
                for (size_t i = 0; r >= 0 && arg_mdev_types[i]; i++)
                        r = sd_bus_message_append(m, "(ss)", arg_mdev_types[i], arg_mdev_parents[i]);
                for (int k = 0; r >= 0 && k < 3; k++)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return log_oom(), EXIT_BUS;

        r = bus_call_message(bus, m, ask_password(), &error, &reply);
        if (r < 0)
                return bus_client_fail(
                        &error, r, arg_dry_run ? "The devices cannot be leased" : "Failed to acquire");
        r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0)
                r = sd_bus_message_read_strv(reply, &members);
        if (r < 0) {
                log_error_errno(r, "Failed to parse the reply: %m");
                return EXIT_BUS;
        }
        *ret_path = strdup(path);
        if (!*ret_path)
                return log_oom(), EXIT_BUS;
        *ret_devices = TAKE_PTR(members);
        return 0;
}

static int print_acquired(const char *path, char **devices) {
        _cleanup_free_ char *joined = strv_join(devices, " ");

        if (!joined)
                return log_oom(), EXIT_BUS;
        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object(), *a = json_object_new_array();

                if (!o || !a)
                        return log_oom(), EXIT_BUS;
                STRV_FOREACH (d, devices)
                        (void)json_object_array_add(a, json_object_new_string(*d));
                (void)json_object_object_add(
                        o, "lease", arg_dry_run ? json_object_new_null() : json_object_new_string(path));
                (void)json_object_object_add(o, "devices", json_object_get(a));
                (void)json_object_object_add(o, "dry-run", json_object_new_boolean(arg_dry_run));
                print_json(o);
                return 0;
        }
        if (arg_dry_run)
                printf("Could lease: %s\n", joined);
        else
                printf("%s\t%s\n", path, joined);
        return 0;
}

int verb_acquire(sd_bus *bus, int argc, char **argv) {
        _cleanup_strv_free_ char **members = NULL;
        _cleanup_free_ char *path = NULL;
        int pidfd = -1, r;
        char *end;
        long pid;

        if (argc < 2 && !arg_mdev_types) {
                log_error("acquire needs a device or --mdev=TYPE[@PARENT].");
                return EXIT_USAGE;
        }
        if (!arg_pid && !arg_dry_run) {
                log_error("acquire needs --pid=PID: a lease of hostdevctl itself would end as it exits "
                          "(see 'run' to lease devices to a command).");
                return EXIT_USAGE;
        }
        if (arg_pid) {
                errno = 0;
                pid = strtol(arg_pid, &end, 10);
                if (errno != 0 || end == arg_pid || *end || pid <= 0 || pid > INT32_MAX) {
                        log_error("Invalid --pid '%s'.", arg_pid);
                        return EXIT_USAGE;
                }
                pidfd = pidfd_open((pid_t)pid, 0);
                if (pidfd < 0) {
                        log_error_errno(-errno, "No process %ld: %m", pid);
                        return EXIT_NOT_FOUND;
                }
        }
        r = call_acquire(bus, argv + 1, pidfd, &path, &members);
        if (pidfd >= 0)
                (void)close(pidfd);
        if (r != 0)
                return r;
        return print_acquired(path, members);
}

/* "7", "lease_7" or a path: the Lease object path. */
static char *lease_path_of(const char *s) {
        char *p;
        const char *digits = s;

        if (s[0] == '/')
                return strdup(s);
        if (strncmp(s, HOSTDEVD_LEASE_PATH_PREFIX, strlen(HOSTDEVD_LEASE_PATH_PREFIX)) == 0)
                digits = s + strlen(HOSTDEVD_LEASE_PATH_PREFIX);
        if (!*digits || strspn(digits, "0123456789") != strlen(digits))
                return NULL;
        if (asprintf(&p, "%s/%s%s", HOSTDEVD_LEASES_PATH, HOSTDEVD_LEASE_PATH_PREFIX, digits) < 0)
                return NULL;
        return p;
}

int verb_release(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *path = lease_path_of(argv[1]);
        char what[256];
        int r;

        if (!path) {
                log_error("Invalid lease '%s' (its number, lease_N, or its object path).", argv[1]);
                return EXIT_USAGE;
        }
        r = sd_bus_message_new_method_call(
                bus, &m, HOSTDEVD_BUS_NAME, path, HOSTDEVD_LEASE_INTERFACE, "Release");
        if (r < 0)
                return log_oom(), EXIT_BUS;
        (void)snprintf(what, sizeof(what), "Failed to release %s", path);
        r = bus_call_message(bus, m, ask_password(), &error, NULL);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, "org.freedesktop.DBus.Error.UnknownObject") ||
                    sd_bus_error_has_name(&error, "org.freedesktop.DBus.Error.UnknownMethod")) {
                        log_error("No lease %s.", path);
                        return EXIT_NOT_FOUND;
                }
                return bus_client_fail(&error, r, what);
        }
        return 0;
}

int verb_leases(sd_bus *bus, int argc, char **argv) {
        static const char *const headers[] = { "LEASE", "PID", "COMMAND", "STATE", "POLICY", "DEVICES" };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *objects = NULL, *leases = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        r = bus_get_managed_objects(bus, &error, &objects);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to list leases");
        r = bus_objects_with_interface(objects, HOSTDEVD_LEASE_INTERFACE, "State", &leases);
        if (r < 0) {
                log_error_errno(r, "Failed to parse the lease list: %m");
                return EXIT_BUS;
        }
        if (arg_json) {
                print_json(leases);
                return 0;
        }
        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return log_oom(), EXIT_BUS;
        table_set_shrinkable(t, 5);
        for (size_t i = 0; i < json_object_array_length(leases); i++) {
                json_object *l = json_object_array_get_idx(leases, i), *devices = NULL, *policies = NULL;
                _cleanup_free_ char *devs = NULL, *pols = NULL;
                size_t len = 0;

                (void)json_object_object_get_ex(l, "Devices", &devices);
                (void)json_object_object_get_ex(l, "Policies", &policies);
                for (size_t j = 0;
                     json_object_is_type(devices, json_type_array) && j < json_object_array_length(devices);
                     j++) {
                        const char *a = json_object_get_string(json_object_array_get_idx(devices, j));
                        json_object *p = NULL;
                        char *n;

                        n = realloc(devs, len + strlen(a) + 2);
                        if (!n)
                                return log_oom(), EXIT_BUS;
                        devs = n;
                        len += (size_t)sprintf(devs + len, "%s%s", len ? " " : "", a);
                        if (!pols && json_object_object_get_ex(policies, a, &p))
                                pols = strdup(json_object_get_string(p));
                        else if (
                                pols && json_object_object_get_ex(policies, a, &p) &&
                                !streq(pols, json_object_get_string(p))) {
                                free(pols);
                                pols = strdup("mixed");
                        }
                }
                r = table_add_cellf(t, "%" PRId64, json_get_int(l, "Id", 0));
                if (r >= 0)
                        r = table_add_cellf(t, "%" PRId64, json_get_int(l, "Pid", 0));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(l, "Command")));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(l, "State")));
                if (r >= 0)
                        r = table_add_cell(t, pols);
                if (r >= 0)
                        r = table_add_cell(t, devs);
                if (r < 0)
                        return log_oom(), EXIT_BUS;
        }
        return table_print_fit(t) < 0 ? EXIT_BUS : 0;
}

int verb_run(sd_bus *bus, int argc, char **argv) {
        _cleanup_strv_free_ char **members = NULL;
        _cleanup_free_ char *path = NULL, *joined = NULL;
        int r;

        if (strv_length(arg_devices) == 0 && !arg_mdev_types) {
                log_error("run needs at least one --device=DEV or --mdev=TYPE[@PARENT].");
                return EXIT_USAGE;
        }
        /* argv[1] may be the "--" getopt left when it was not the first argument after the verb. */
        argv++;
        argc--;
        if (argc > 0 && streq(argv[0], "--")) {
                argv++;
                argc--;
        }
        if (argc == 0) {
                log_error("run needs a COMMAND after the devices.");
                return EXIT_USAGE;
        }

        /* No pidfd: this process is the owner, and stays it across the execve() below. */
        r = call_acquire(bus, arg_devices ?: (char *[]){ NULL }, -1, &path, &members);
        if (r != 0)
                return r;
        joined = strv_join(members, " ");
        if (!joined || setenv(ENV_HOSTDEVD_LEASE, path, 1) < 0 ||
            setenv(ENV_HOSTDEVD_LEASE_DEVICES, joined, 1) < 0)
                return log_oom(), EXIT_BUS;

        /* The bus connection is close-on-exec; flush what is queued and let COMMAND take over. */
        polkit_agent_close();
        (void)sd_bus_flush(bus);
        (void)fflush(stdout);
        execvp(argv[0], argv);
        log_error_errno(-errno, "Failed to execute '%s': %m (the lease ends with this process)", argv[0]);
        return 127;
}
