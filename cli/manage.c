/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The desired-state verbs of hostdevctl (issue 3): status, plan, apply,
 * reload, bind, unbind, reset, vfs. Each is one Manager call
 * (dbus/org.hostdevd1.xml); the verbs that change something then read the
 * device's State back and exit with EXIT_NOT_CONVERGED unless it is
 * "converged", so a script can tell "asked" from "done".
 */

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "bus-client.h"
#include "hostdevctl.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "pci-address.h"
#include "strv.h"
#include "table.h"

#define STATE_CONVERGED "converged"
#define STATE_PENDING "pending"

/* The Manager properties `status` prints, in this order (all of them with --json). */
static const char *const status_properties[] = {
        "Version",      "State",        "Generation",     "DeviceCount",      "MdevCount",
        "IommuEnabled", "IommuReason",  "EventSource",    "HotplugGuard",     "EarlyBindThread",
        "Rescans",      "ConfigErrors", "HolderTracking", "CriticalTracking",
};

static uint64_t now_usec(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static int oom(void) {
        log_oom();
        return EXIT_BUS;
}

/* Devices whose State is not "converged", from a GetManagedObjects result, as a new array. */
static int devices_not_converged(sd_bus *bus, json_object **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *objects = NULL, *devices = NULL, *out = NULL;
        int r;

        r = bus_get_managed_objects(bus, &error, &objects);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to list devices");
        r = bus_objects_with_interface(objects, HOSTDEVD_DEVICE_INTERFACE, "Address", &devices);
        if (r < 0) {
                log_error_errno(r, "Failed to parse the device list: %m");
                return EXIT_BUS;
        }

        out = json_object_new_array();
        if (!out)
                return oom();
        for (size_t i = 0; i < json_object_array_length(devices); i++) {
                json_object *d = json_object_array_get_idx(devices, i);
                const char *state = json_get_string(d, "State");

                if (*state && !streq(state, STATE_CONVERGED) &&
                    json_object_array_add(out, json_object_get(d)) < 0)
                        return oom();
        }

        *ret = TAKE_PTR(out);
        return 0;
}

/* ADDRESS STATE REASON per device; reason falls back to LastError. */
static int print_device_states(json_object *devices, const char *address_key, const char *reason_key) {
        static const char *const headers[] = { "ADDRESS", "STATE", "REASON" };
        _cleanup_(table_freep) Table *t = NULL;
        int r = 0;

        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return oom();
        table_set_shrinkable(t, 2);
        for (size_t i = 0; i < json_object_array_length(devices); i++) {
                json_object *d = json_object_array_get_idx(devices, i);
                const char *reason = json_get_string(d, reason_key);

                if (!*reason)
                        reason = json_get_string(d, "LastError");
                r = table_add_cell(t, empty_to_null(json_get_string(d, address_key)));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(d, "State")));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(reason));
                if (r < 0)
                        return oom();
        }
        return table_print_fit(t) < 0 ? EXIT_BUS : 0;
}

/* ---- status -------------------------------------------------------------- */

/* PID COMMAND DEVICES for Manager.UnleasedHolders (a(usas), as JSON [[pid, comm, [addr...]]...]). */
static int print_unleased_holders(json_object *props) {
        static const char *const headers[] = { "UNLEASED HOLDER", "COMMAND", "DEVICES" };
        _cleanup_(table_freep) Table *t = NULL;
        json_object *holders;
        int r = 0;

        if (!json_object_object_get_ex(props, "UnleasedHolders", &holders) ||
            !json_object_is_type(holders, json_type_array) || json_object_array_length(holders) == 0)
                return 0;
        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return oom();
        table_set_shrinkable(t, 2);
        for (size_t i = 0; i < json_object_array_length(holders); i++) {
                json_object *h = json_object_array_get_idx(holders, i);
                json_object *devs = json_object_array_get_idx(h, 2);
                _cleanup_free_ char *list = strdup("");

                for (size_t j = 0; list && j < json_object_array_length(devs); j++) {
                        char *l;

                        if (asprintf(
                                    &l, "%s%s%s", list, j > 0 ? " " : "",
                                    json_object_get_string(json_object_array_get_idx(devs, j))) < 0)
                                l = NULL;
                        free(list);
                        list = l;
                }
                if (!list)
                        return oom();
                r = table_add_cell(t, json_object_get_string(json_object_array_get_idx(h, 0)));
                if (r >= 0)
                        r = table_add_cell(t, json_object_get_string(json_object_array_get_idx(h, 1)));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(list));
                if (r < 0)
                        return oom();
        }
        putchar('\n');
        return table_print_fit(t) < 0 ? EXIT_BUS : 0;
}

int verb_status(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *props = NULL, *shown = NULL, *devices = NULL;
        int r;

        r = bus_get_all_properties(bus, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, &error, &props);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to read hostdevd's state");
        if (arg_json) {
                print_json(props);
                return 0;
        }

        shown = json_object_new_object();
        if (!shown)
                return oom();
        for (size_t i = 0; i < ELEMENTSOF(status_properties); i++) {
                json_object *v;

                /* An older daemon lacks the newer properties: show what it has. */
                if (json_object_object_get_ex(props, status_properties[i], &v) &&
                    json_object_object_add(shown, status_properties[i], json_object_get(v)) < 0)
                        return oom();
        }
        if (print_properties(shown) < 0)
                return EXIT_BUS;

        /* Processes holding VFIO nodes that no lease gave them: they block changes to those functions. */
        r = print_unleased_holders(props);
        if (r != 0)
                return r;

        /* Which functions keep the host from "converged", and why. */
        r = devices_not_converged(bus, &devices);
        if (r != 0)
                return r;
        if (json_object_array_length(devices) == 0)
                return 0;
        putchar('\n');
        return print_device_states(devices, "Address", "StateReason");
}

/* ---- plan ---------------------------------------------------------------- */

int verb_plan(sd_bus *bus, int argc, char **argv) {
        static const char *const headers[] = { "TX", "ACTION", "ADDRESS", "ARGUMENT", "REASON" };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *actions = NULL, *devices = NULL, *o = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_strv_free_ char **conflicts = NULL;
        uint64_t generation, last_tx = 0;
        size_t n_tx = 0;
        int r;

        /* A read: no authorization, nothing changes. */
        r = sd_bus_call_method(
                bus, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, "Plan", &error,
                &reply, NULL);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to plan");
        r = sd_bus_message_read(reply, "t", &generation);
        if (r >= 0)
                r = bus_message_read_json(reply, "Plan", &actions);
        if (r >= 0)
                r = bus_message_read_json(reply, "Plan", &devices);
        if (r >= 0)
                r = sd_bus_message_read_strv(reply, &conflicts);
        if (r >= 0 &&
            (!json_object_is_type(actions, json_type_array) ||
             !json_object_is_type(devices, json_type_array)))
                r = -EBADMSG;
        if (r < 0) {
                log_error_errno(r, "Failed to parse the plan: %m");
                return EXIT_BUS;
        }

        if (arg_json) {
                _cleanup_json_ json_object *c = json_object_new_array();

                o = json_object_new_object();
                if (!o || !c)
                        return oom();
                STRV_FOREACH (line, conflicts)
                        if (json_object_array_add(c, json_object_new_string(*line)) < 0)
                                return oom();
                if (json_object_object_add(o, "Generation", json_object_new_uint64(generation)) < 0 ||
                    json_object_object_add(o, "Actions", json_object_get(actions)) < 0 ||
                    json_object_object_add(o, "Devices", json_object_get(devices)) < 0 ||
                    json_object_object_add(o, "Conflicts", json_object_get(c)) < 0)
                        return oom();
                print_json(o);
                return 0;
        }

        /* Before the actions: a rule that lost explains an action (or its absence) below. */
        if (conflicts) {
                printf("Conflicting rules (the first named wins):\n");
                STRV_FOREACH (line, conflicts)
                        printf("  %s\n", *line);
                putchar('\n');
        }

        for (size_t i = 0; i < json_object_array_length(actions); i++) {
                uint64_t tx =
                        (uint64_t)json_get_int(json_object_array_get_idx(actions, i), "Transaction", 0);
                if (i == 0 || tx != last_tx)
                        n_tx++;
                last_tx = tx;
        }

        if (json_object_array_length(actions) == 0)
                printf("Nothing to do (generation %" PRIu64 ").\n", generation);
        else {
                printf("Generation %" PRIu64 ": %zu action%s in %zu transaction%s.\n\n", generation,
                       json_object_array_length(actions), json_object_array_length(actions) == 1 ? "" : "s",
                       n_tx, n_tx == 1 ? "" : "s");

                t = table_new(ELEMENTSOF(headers), headers);
                if (!t)
                        return oom();
                table_set_shrinkable(t, 4);
                for (size_t i = 0; i < json_object_array_length(actions); i++) {
                        json_object *a = json_object_array_get_idx(actions, i);

                        r = table_add_cellf(t, "%" PRIi64, json_get_int(a, "Transaction", 0));
                        if (r >= 0)
                                r = table_add_cell(t, empty_to_null(json_get_string(a, "Action")));
                        if (r >= 0)
                                r = table_add_cell(t, empty_to_null(json_get_string(a, "Address")));
                        if (r >= 0)
                                r = table_add_cell(t, empty_to_null(json_get_string(a, "Argument")));
                        if (r >= 0)
                                r = table_add_cell(t, empty_to_null(json_get_string(a, "Reason")));
                        if (r < 0)
                                return oom();
                }
                if (table_print_fit(t) < 0)
                        return EXIT_BUS;
        }

        if (json_object_array_length(devices) == 0)
                return 0;
        putchar('\n');
        return print_device_states(devices, "Address", "Reason");
}

/* ---- apply, reload ----------------------------------------------------------- */

int verb_apply(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *devices = NULL, *o = NULL;
        const char *state;
        int r;

        r = bus_call_manager_method(bus, ask_password(), "Apply", &error, &reply, NULL);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to apply");
        r = sd_bus_message_read(reply, "s", &state);
        if (r < 0) {
                log_error_errno(r, "Failed to parse the reply: %m");
                return EXIT_BUS;
        }

        r = devices_not_converged(bus, &devices);
        if (r != 0)
                return r;

        if (arg_json) {
                o = json_object_new_object();
                if (!o || json_object_object_add(o, "State", json_object_new_string(state)) < 0 ||
                    json_object_object_add(o, "Devices", json_object_get(devices)) < 0)
                        return oom();
                print_json(o);
        } else {
                printf("State: %s\n", state);
                if (json_object_array_length(devices) > 0) {
                        putchar('\n');
                        r = print_device_states(devices, "Address", "StateReason");
                        if (r != 0)
                                return r;
                }
        }

        return streq(state, STATE_CONVERGED) ? 0 : EXIT_NOT_CONVERGED;
}

int verb_reload(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL, error2 = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *errors = NULL;
        int r;

        r = bus_call_manager_method(bus, ask_password(), "Reload", &error, NULL, NULL);
        if (r >= 0)
                return 0;
        if (!sd_bus_error_has_name(&error, HOSTDEVD_ERROR_CONFIG_INVALID))
                return bus_client_fail(&error, r, "Failed to reload");

        /* The files did not parse; the last good state stays. Say which lines are wrong: one per line from
         * ConfigErrors (the error's message may run them together), else the message. */
        r = bus_get_property_json(
                bus, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, "ConfigErrors", &error2, &errors);
        if (r < 0 || !json_object_is_type(errors, json_type_array) ||
            json_object_array_length(errors) == 0) {
                log_error("Failed to reload: %s", error.message ? error.message : error.name);
                return EXIT_BUS;
        }
        log_error("Failed to reload: the desired-state files do not parse; the last good state stays:");
        for (size_t i = 0; i < json_object_array_length(errors); i++)
                fprintf(stderr, "%s\n", json_object_get_string(json_object_array_get_idx(errors, i)));
        return EXIT_BUS;
}

/* ---- bind, unbind, reset, vfs ------------------------------------------------ */

/* The canonical form of a PCI address as typed ("41:00.0" -> "0000:41:00.0"), so the daemon's records and
 * messages name it one way; anything else as is (the daemon rejects it, naming the value). */
static const char *canonical_address(const char *s, char buf[static PCI_ADDRESS_STRING_MAX]) {
        PciAddress a;

        if (pci_address_from_string(s, &a) < 0)
                return s;
        return pci_address_format(&a, buf);
}

/* The Device object of address, looked up before changing anything: NotFound and InvalidArgument come
 * early, without asking for a password. Returns 0 or an exit status. */
static int lookup_device(sd_bus *bus, const char *address, char **ret_path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        char what[256];
        int r;

        (void)snprintf(what, sizeof(what), "Failed to look up '%s'", address);
        r = sd_bus_call_method(
                bus, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE,
                device_lookup_method(address), &error, &reply, "s", address);
        if (r < 0)
                return bus_client_fail(&error, r, what);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0) {
                log_error_errno(r, "Failed to parse the reply: %m");
                return EXIT_BUS;
        }
        *ret_path = strdup(path);
        return *ret_path ? 0 : oom();
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        *(bool *)userdata = true;
        return 0;
}

/* Whether the daemon has taken the declaration (DesiredDriver is what was asked, when known) and is done. */
static bool object_settled(json_object *props, const char *expect_desired) {
        if (streq(json_get_string(props, "State"), STATE_PENDING))
                return false;
        return !expect_desired || streq(json_get_string(props, "DesiredDriver"), expect_desired);
}

int object_wait_settled(
        sd_bus *bus, const char *path, const char *interface, const char *expect_desired,
        json_object **ret) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        uint64_t deadline = now_usec() + (uint64_t)arg_timeout_sec * 1000000ULL;
        bool changed = false;
        int r;

        /* Subscribe first, then read: a change in between still wakes us. */
        r = sd_bus_match_signal(
                bus, &slot, HOSTDEVD_BUS_NAME, path, DBUS_INTERFACE_PROPERTIES, "PropertiesChanged",
                on_properties_changed, &changed);
        if (r < 0) {
                log_error_errno(r, "Failed to subscribe to %s's changes: %m", path);
                return EXIT_BUS;
        }

        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_json_ json_object *props = NULL;
                uint64_t now;

                changed = false;
                r = bus_get_all_properties(bus, path, interface, &error, &props);
                if (r < 0)
                        return bus_client_fail(&error, r, "Failed to read the state");
                if (object_settled(props, expect_desired) || now_usec() >= deadline) {
                        *ret = TAKE_PTR(props);
                        return 0;
                }

                while (!changed) {
                        r = sd_bus_process(bus, NULL);
                        if (r < 0) {
                                log_error_errno(r, "Failed to process bus: %m");
                                return EXIT_BUS;
                        }
                        if (r > 0)
                                continue;
                        now = now_usec();
                        if (now >= deadline)
                                break;
                        r = sd_bus_wait(bus, deadline - now);
                        if (r < 0 && r != -EINTR) {
                                log_error_errno(r, "Failed to wait for bus: %m");
                                return EXIT_BUS;
                        }
                }
        }
}

/* Print where the device ended up; EXIT_NOT_CONVERGED unless "converged" (with the declaration taken). */
static int report_device(json_object *props, bool sriov, const char *expect_desired) {
        const char *address = json_get_string(props, "Address"), *state = json_get_string(props, "State");
        const char *reason = json_get_string(props, "StateReason"),
                   *last_error = json_get_string(props, "LastError");
        bool taken = !expect_desired || streq(json_get_string(props, "DesiredDriver"), expect_desired);
        bool converged = taken && streq(state, STATE_CONVERGED);

        if (!taken)
                log_error(
                        "%s: the daemon still wants '%s', not '%s', after %u s.", address,
                        json_get_string(props, "DesiredDriver"), expect_desired, arg_timeout_sec);

        if (arg_json)
                print_json(props);
        else {
                printf("%s: %s", address, state);
                if (sriov)
                        printf(", %" PRIi64 " VFs", json_get_int(props, "SriovNumVFs", 0));
                else {
                        const char *driver = json_get_string(props, "Driver");
                        printf(", %s%s", *driver ? "driver " : "no driver", driver);
                }
                if (*reason)
                        printf(": %s", reason);
                putchar('\n');
                if (!converged && *last_error)
                        printf("%s: last error: %s\n", address, last_error);
        }
        return converged ? 0 : EXIT_NOT_CONVERGED;
}

/*
 * Wait for the functions the change also concerns (VFs of a PF, IOMMU group peers taken along), each as a
 * bind does; each that is not converged gets its line (not with --json). Returns 0, EXIT_NOT_CONVERGED or
 * another exit status.
 */
static int wait_functions(sd_bus *bus, json_object *addresses) {
        int r, ret = 0;

        for (size_t i = 0;
             json_object_is_type(addresses, json_type_array) && i < json_object_array_length(addresses);
             i++) {
                const char *address = json_object_get_string(json_object_array_get_idx(addresses, i));
                _cleanup_json_ json_object *props = NULL;
                _cleanup_free_ char *path = NULL;

                r = lookup_device(bus, address, &path);
                if (r != 0)
                        return r;
                r = object_wait_settled(bus, path, HOSTDEVD_DEVICE_INTERFACE, NULL, &props);
                if (r != 0)
                        return r;
                if (streq(json_get_string(props, "State"), STATE_CONVERGED))
                        continue;
                if (!arg_json)
                        (void)report_device(props, false, NULL);
                ret = EXIT_NOT_CONVERGED;
        }
        return ret;
}

/*
 * expect_desired: the DesiredDriver the change declares, NULL when not known beforehand (reset, vfs).
 * ret_props: the function's properties afterwards, may be NULL.
 */
static int finish_change(
        sd_bus *bus, const char *path, bool sriov, const char *expect_desired, json_object **ret_props) {
        _cleanup_json_ json_object *props = NULL;
        int r;

        r = object_wait_settled(bus, path, HOSTDEVD_DEVICE_INTERFACE, expect_desired, &props);
        if (r != 0)
                return r;
        r = report_device(props, sriov, expect_desired);
        if (ret_props)
                *ret_props = TAKE_PTR(props);
        return r;
}

static int set_device_driver(sd_bus *bus, const char *arg, const char *driver) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_json_ json_object *props = NULL;
        json_object *peers = NULL;
        _cleanup_free_ char *path = NULL;
        char what[256], buf[PCI_ADDRESS_STRING_MAX];
        const char *address = canonical_address(arg, buf);
        int r;

        r = lookup_device(bus, arg, &path);
        if (r != 0)
                return r;

        r = sd_bus_message_new_method_call(
                bus, &m, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE,
                "SetDeviceDriver");
        if (r < 0)
                return oom();
        r = sd_bus_message_append(m, "ss", address, driver);
        if (r >= 0)
                r = sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, "s");
        if (r >= 0 && arg_persist)
                r = sd_bus_message_append(m, "s", "persist");
        if (r >= 0 && arg_whole_group)
                r = sd_bus_message_append(m, "s", "whole-group");
        if (r >= 0 && arg_allow_critical)
                r = sd_bus_message_append(m, "s", "allow-critical");
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return oom();

        (void)snprintf(what, sizeof(what), "Failed to set the driver of %s to %s", address, driver);
        r = bus_call_message(bus, m, ask_password(), &error, NULL);
        if (r < 0)
                return bus_client_fail(&error, r, what);
        r = finish_change(bus, path, false, driver, &props);
        if (r != 0 || !arg_whole_group)
                return r;

        /* The peers taken along are part of the request. */
        (void)json_object_object_get_ex(props, "IommuGroupPeers", &peers);
        return wait_functions(bus, peers);
}

int verb_bind(sd_bus *bus, int argc, char **argv) {
        return set_device_driver(bus, argv[1], argv[2]);
}

int verb_unbind(sd_bus *bus, int argc, char **argv) {
        /* "none" as a declaration, not a one-off unbind: hostdevd keeps it unbound. */
        return set_device_driver(bus, argv[1], CONF_DRIVER_NONE);
}

int verb_reset(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        char what[256], buf[PCI_ADDRESS_STRING_MAX];
        const char *address = canonical_address(argv[1], buf);
        int r;

        r = lookup_device(bus, argv[1], &path);
        if (r != 0)
                return r;

        (void)snprintf(what, sizeof(what), "Failed to reset the driver of %s", address);
        r = bus_call_manager_method(bus, ask_password(), "ResetDeviceDriver", &error, NULL, "s", address);
        if (r < 0)
                return bus_client_fail(&error, r, what);
        return finish_change(bus, path, false, NULL, NULL);
}

int verb_vfs(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_object *pf = NULL;
        char what[256], buf[PCI_ADDRESS_STRING_MAX], *end;
        const char *address = canonical_address(argv[1], buf);
        json_object *virtfns = NULL;
        unsigned long n;
        int r;

        errno = 0;
        n = strtoul(argv[2], &end, 10);
        if (errno != 0 || end == argv[2] || *end || !isdigit((unsigned char)argv[2][0]) || n > UINT32_MAX) {
                log_error("Invalid number of VFs '%s'.", argv[2]);
                return EXIT_USAGE;
        }

        r = lookup_device(bus, argv[1], &path);
        if (r != 0)
                return r;

        r = sd_bus_message_new_method_call(
                bus, &m, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, "SetNumVFs");
        if (r >= 0)
                r = sd_bus_message_append(m, "sus", address, (uint32_t)n, strempty(arg_vf_driver));
        if (r >= 0)
                r = arg_persist ? sd_bus_message_append(m, "as", 1, "persist")
                                : sd_bus_message_append(m, "as", 0);
        if (r < 0)
                return oom();

        (void)snprintf(what, sizeof(what), "Failed to set the number of VFs of %s to %lu", address, n);
        r = bus_call_message(bus, m, ask_password(), &error, NULL);
        if (r < 0)
                return bus_client_fail(&error, r, what);

        r = finish_change(bus, path, true, NULL, &pf);
        if (r != 0)
                return r;

        /* The VFs come after the PF (created, then bound one by one): done when each of them is. */
        (void)json_object_object_get_ex(pf, "VirtFns", &virtfns);
        return wait_functions(bus, virtfns);
}
