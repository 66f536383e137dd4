/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * hostdevctl: hostdevd's command-line client. A D-Bus client only: every
 * value it prints comes from org.hostdevd1 (dbus/org.hostdevd1.xml), never
 * from sysfs. Table output for people, --json for programs (keys are the
 * D-Bus property names), exit statuses for scripts (bus-client.h).
 */

#include <assert.h>
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

#include "bus-client.h"
#include "desired-state.h"
#include "format.h"
#include "hostdevctl.h"
#include "log.h"
#include "macro.h"
#include "monitor.h"
#include "names.h"
#include "pci-address.h"
#include "polkit-agent.h"
#include "strv.h"
#include "table.h"

bool arg_json = false;
bool arg_ask_password = true;
bool arg_persist = false, arg_whole_group = false, arg_allow_critical = false;
const char *arg_vf_driver = NULL;
const char *arg_output = NULL;
const char *arg_format = NULL;
unsigned arg_timeout_sec = 60;
const char *arg_mdev_parent = NULL, *arg_mdev_uuid = NULL;
static const char *arg_address = NULL;

void print_json(json_object *o) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE;

        /* Indented for people on a terminal; one line for pipes. */
        flags |= isatty(STDOUT_FILENO) ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN;
        puts(json_object_to_json_string_ext(o, flags));
}

int table_add_optional_int(Table *t, json_object *o, const char *key) {
        int64_t v = json_get_int(o, key, -1);

        return v < 0 ? table_add_cell(t, NULL) : table_add_cellf(t, "%" PRIi64, v);
}

bool ask_password(void) {
        return arg_ask_password && isatty(STDIN_FILENO);
}

int table_print_fit(Table *t) {
        int r;

        table_set_width(t, output_columns());
        r = table_print(t, stdout);
        if (r < 0)
                return log_error_errno(r, "Failed to print table: %m");
        return 0;
}

/* ---- list --------------------------------------------------------------- */

static int add_sriov_cell(Table *t, json_object *d) {
        const char *role = json_get_string(d, "SriovRole");

        if (streq(role, "pf"))
                return table_add_cellf(
                        t, "pf %" PRIi64 "/%" PRIi64, json_get_int(d, "SriovNumVFs", 0),
                        json_get_int(d, "SriovTotalVFs", 0));
        if (streq(role, "vf")) {
                int64_t index = json_get_int(d, "VFIndex", -1);

                if (index < 0)
                        return table_add_cellf(t, "vf of %s", json_get_string(d, "PhysFn"));
                return table_add_cellf(t, "vf %" PRIi64 " of %s", index, json_get_string(d, "PhysFn"));
        }
        return table_add_cell(t, NULL);
}

static int add_class_cell(Table *t, json_object *d) {
        const char *name = json_get_string(d, "ClassName");

        if (*name)
                return table_add_cell(t, name);
        return table_add_cellf(t, "0x%06" PRIx64, json_get_int(d, "Class", 0));
}

static int add_names_cell(Table *t, json_object *d) {
        const char *vendor = json_get_string(d, "VendorName"), *device = json_get_string(d, "DeviceName");

        return table_add_cellf(t, "%s%s%s", vendor, *vendor && *device ? " " : "", device);
}

/*
 * The table's columns of every function from Manager.ListDevices, as an array of objects keyed by the
 * Device property names (what the table reads from GetManagedObjects otherwise). Returns 0, -ENOMEDIUM
 * when the daemon has no such method (an older one), or -errno (|error| set for a D-Bus error).
 */
static int list_devices_compact(sd_bus *bus, sd_bus_error *error, json_object **ret) {
        static const char *const keys[] = {
                "Address",    "Class",       "ClassName",     "VendorId", "DeviceId",   "VendorName",
                "DeviceName", "Driver",      "DesiredDriver", "State",    "IommuGroup", "NumaNode",
                "SriovRole",  "SriovNumVFs", "SriovTotalVFs", "VFIndex",  "PhysFn",
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *array = NULL;
        int r;

        r = sd_bus_call_method(
                bus, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, "ListDevices", error,
                &reply, NULL);
        if (r < 0 && sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_METHOD))
                return -ENOMEDIUM;
        if (r < 0)
                return r;
        r = bus_message_read_json(reply, "ListDevices", &array);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(array); i++) {
                json_object *row = json_object_array_get_idx(array, i), *o;

                if (!json_object_is_type(row, json_type_array) ||
                    json_object_array_length(row) != ELEMENTSOF(keys))
                        return -EBADMSG;
                o = json_object_new_object();
                if (!o)
                        return -ENOMEM;
                for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                        if (json_object_object_add(
                                    o, keys[k], json_object_get(json_object_array_get_idx(row, k))) < 0) {
                                json_object_put(o);
                                return -ENOMEM;
                        }
                if (json_object_array_put_idx(array, i, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(array);
        return 0;
}

static int verb_list(sd_bus *bus, int argc, char **argv) {
        static const char *const headers[] = { "BDF",     "CLASS", "IDS",   "NAME", "DRIVER",
                                               "DESIRED", "STATE", "GROUP", "NUMA", "SR-IOV" };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *objects = NULL, *devices = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        /* One call for everything, so a host with thousands of functions lists in one round trip: the
         * table's columns alone (ListDevices), every property for --json (GetManagedObjects). */
        r = arg_json ? -ENOMEDIUM : list_devices_compact(bus, &error, &devices);
        if (r == -ENOMEDIUM) {
                sd_bus_error_free(&error);
                r = bus_get_managed_objects(bus, &error, &objects);
                if (r < 0)
                        return bus_client_fail(&error, r, "Failed to list devices");
                r = bus_objects_with_interface(objects, HOSTDEVD_DEVICE_INTERFACE, "Address", &devices);
        } else if (r < 0 && sd_bus_error_is_set(&error))
                return bus_client_fail(&error, r, "Failed to list devices");
        if (r < 0) {
                log_error_errno(r, "Failed to parse the device list: %m");
                return EXIT_BUS;
        }

        if (arg_json) {
                print_json(devices);
                return 0;
        }

        t = table_new(ELEMENTSOF(headers), headers);
        if (!t) {
                log_oom();
                return EXIT_BUS;
        }
        table_set_shrinkable(t, 3);

        for (size_t i = 0; i < json_object_array_length(devices); i++) {
                json_object *d = json_object_array_get_idx(devices, i);

                r = table_add_cell(t, empty_to_null(json_get_string(d, "Address")));
                if (r >= 0)
                        r = add_class_cell(t, d);
                if (r >= 0)
                        r = table_add_cellf(
                                t, "%04" PRIx64 ":%04" PRIx64, json_get_int(d, "VendorId", 0),
                                json_get_int(d, "DeviceId", 0));
                if (r >= 0)
                        r = add_names_cell(t, d);
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(d, "Driver")));
                /* The desired state (issue 3): what a rule asks for, and how far the host is. */
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(d, "DesiredDriver")));
                if (r >= 0)
                        r = table_add_cell(t, empty_to_null(json_get_string(d, "State")));
                if (r >= 0)
                        r = table_add_optional_int(t, d, "IommuGroup");
                if (r >= 0)
                        r = table_add_optional_int(t, d, "NumaNode");
                if (r >= 0)
                        r = add_sriov_cell(t, d);
                if (r < 0) {
                        log_oom();
                        return EXIT_BUS;
                }
        }

        return table_print_fit(t) < 0 ? EXIT_BUS : 0;
}

/* ---- show --------------------------------------------------------------- */

int print_properties(json_object *props) {
        size_t width = 0;

        json_object_object_foreach(props, key, value) {
                (void)value;
                if (strlen(key) > width)
                        width = strlen(key);
        }

        json_object_object_foreach(props, name, v) {
                _cleanup_free_ char *s = format_property_value(name, v, 0);
                const char *line;

                if (!s)
                        return log_oom();

                /* Right-aligned names as hostnamectl prints them; further lines under the value. */
                line = strtok(s, "\n");
                printf("%*s: %s\n", (int)width, name, line ? line : "");
                while ((line = strtok(NULL, "\n")))
                        printf("%*s  %s\n", (int)width, "", line);
        }
        return 0;
}

static int verb_show(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *props = NULL;
        const char *dev = argv[1], *path;
        bool mdev = string_is_uuid(dev);
        char what[256];
        int r;

        (void)snprintf(what, sizeof(what), "Failed to look up '%s'", dev);
        r = sd_bus_call_method(
                bus, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE,
                mdev ? "GetMdevByUuid" : device_lookup_method(dev), &error, &reply, "s", dev);
        if (r < 0)
                return bus_client_fail(&error, r, what);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0) {
                log_error_errno(r, "Failed to parse the reply: %m");
                return EXIT_BUS;
        }

        r = bus_get_all_properties(
                bus, path, mdev ? HOSTDEVD_MDEV_INTERFACE : HOSTDEVD_DEVICE_INTERFACE, &error, &props);
        if (r < 0)
                return bus_client_fail(&error, r, what);

        if (arg_json) {
                print_json(props);
                return 0;
        }
        return print_properties(props) < 0 ? EXIT_BUS : 0;
}

/* ---- groups ------------------------------------------------------------- */

/*
 * Safety rule 2 of hostdevd(8), as information: a group can go to VFIO when every member
 * is on a VFIO driver (vfio-pci or a variant such as mlx5_vfio_pci), has no
 * driver, or is a PCI bridge. The daemon's planner makes the real decision.
 */
static bool device_is_vfio_ready(json_object *d) {
        const char *driver = json_get_string(d, "Driver");

        if (!json_object_object_get_ex(d, "Driver", NULL))
                return false; /* unknown member */
        return !*driver || *json_get_string(d, "VfioGroup") || strstr(driver, "vfio") ||
                pci_class_is_bridge((uint32_t)json_get_int(d, "Class", 0));
}

static int compare_groups(const void *a, const void *b) {
        int64_t x = json_get_int(*(json_object *const *)a, "IommuGroup", -1),
                y = json_get_int(*(json_object *const *)b, "IommuGroup", -1);

        return x < y ? -1 : x > y;
}

/* Replace each group's member addresses by the members' properties and add "Viable". */
static int groups_resolve(json_object *groups, json_object *devices) {
        _cleanup_json_ json_object *by_address = json_object_new_object();

        if (!by_address)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(devices); i++) {
                json_object *d = json_object_array_get_idx(devices, i);
                if (json_object_object_add(by_address, json_get_string(d, "Address"), json_object_get(d)) <
                    0)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < json_object_array_length(groups); i++) {
                json_object *g = json_object_array_get_idx(groups, i), *addresses;
                _cleanup_json_ json_object *members = json_object_new_array();
                bool viable = true;

                if (!members)
                        return -ENOMEM;
                if (!json_object_object_get_ex(g, "Devices", &addresses) ||
                    !json_object_is_type(addresses, json_type_array))
                        return -EBADMSG;

                for (size_t j = 0; j < json_object_array_length(addresses); j++) {
                        const char *a = json_object_get_string(json_object_array_get_idx(addresses, j));
                        json_object *d;

                        if (json_object_object_get_ex(by_address, a, &d))
                                d = json_object_get(d);
                        else {
                                /* Gone between the two calls: keep the address. */
                                d = json_object_new_object();
                                if (!d ||
                                    json_object_object_add(d, "Address", json_object_new_string(a)) < 0) {
                                        json_object_put(d);
                                        return -ENOMEM;
                                }
                        }
                        viable = viable && device_is_vfio_ready(d);
                        if (json_object_array_add(members, d) < 0) {
                                json_object_put(d);
                                return -ENOMEM;
                        }
                }

                if (json_object_object_add(g, "Devices", TAKE_PTR(members)) < 0 ||
                    json_object_object_add(g, "Viable", json_object_new_boolean(viable)) < 0)
                        return -ENOMEM;
        }

        json_object_array_sort(groups, compare_groups);
        return 0;
}

static int verb_groups(sd_bus *bus, int argc, char **argv) {
        static const char *const headers[] = { "GROUP", "VIABLE", "BDF", "IDS", "DRIVER", "NAME" };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_json_ json_object *groups = NULL, *objects = NULL, *devices = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        r = sd_bus_call_method(
                bus, HOSTDEVD_BUS_NAME, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, "ListIommuGroups",
                &error, &reply, NULL);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to list IOMMU groups");
        r = bus_message_read_json(reply, "ListIommuGroups", &groups);
        if (r >= 0 && !json_object_is_type(groups, json_type_array))
                r = -EBADMSG;
        if (r < 0) {
                log_error_errno(r, "Failed to parse the IOMMU groups: %m");
                return EXIT_BUS;
        }

        r = bus_get_managed_objects(bus, &error, &objects);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to list devices");
        r = bus_objects_with_interface(objects, HOSTDEVD_DEVICE_INTERFACE, "Address", &devices);
        if (r >= 0)
                r = groups_resolve(groups, devices);
        if (r < 0) {
                log_error_errno(r, "Failed to resolve the IOMMU groups: %m");
                return EXIT_BUS;
        }

        if (arg_json) {
                print_json(groups);
                return 0;
        }

        t = table_new(ELEMENTSOF(headers), headers);
        if (!t) {
                log_oom();
                return EXIT_BUS;
        }
        table_set_shrinkable(t, 5);

        for (size_t i = 0; i < json_object_array_length(groups); i++) {
                json_object *g = json_object_array_get_idx(groups, i), *members;

                (void)json_object_object_get_ex(g, "Devices", &members);
                for (size_t j = 0; j < json_object_array_length(members); j++) {
                        json_object *d = json_object_array_get_idx(members, j);

                        /* The group's number and verdict on its first line only. */
                        if (j == 0) {
                                r = table_add_cellf(t, "%" PRIi64, json_get_int(g, "IommuGroup", -1));
                                if (r >= 0)
                                        r = table_add_cell(t, yes_no(json_get_bool(g, "Viable")));
                        } else {
                                r = table_add_cell(t, "");
                                if (r >= 0)
                                        r = table_add_cell(t, "");
                        }
                        if (r >= 0)
                                r = table_add_cell(t, empty_to_null(json_get_string(d, "Address")));
                        if (r >= 0)
                                r = table_add_cellf(
                                        t, "%04" PRIx64 ":%04" PRIx64, json_get_int(d, "VendorId", 0),
                                        json_get_int(d, "DeviceId", 0));
                        if (r >= 0)
                                r = table_add_cell(t, empty_to_null(json_get_string(d, "Driver")));
                        if (r >= 0)
                                r = add_names_cell(t, d);
                        if (r < 0) {
                                log_oom();
                                return EXIT_BUS;
                        }
                }
        }

        return table_print_fit(t) < 0 ? EXIT_BUS : 0;
}

/* ---- monitor ------------------------------------------------------------ */

static int verb_monitor(sd_bus *bus, int argc, char **argv) {
        return monitor_run(bus, arg_json);
}

/* ---- main --------------------------------------------------------------- */

static void help(void) {
        printf("%s [OPTIONS...] COMMAND ...\n\n"
               "Query and control hostdevd, the PCI passthrough device manager.\n\n"
               "Commands:\n"
               "  list                  List PCI functions (the default)\n"
               "  show DEV              Show every property of a PCI function (address, full\n"
               "                        or short as 41:00.0, or its name) or of an mdev (UUID)\n"
               "  groups                List IOMMU groups, their members and drivers\n"
               "  mdev list             List mediated devices\n"
               "  mdev types [PARENT]   List mdev types of every mdev parent, or of one\n"
               "  monitor               Print changes as they happen\n"
               "  status                Show the daemon's state\n\n"
               "Desired state:\n"
               "  plan                  Show what apply would do, changing nothing\n"
               "  apply                 Converge now and show the resulting state\n"
               "  reload                Re-read the desired-state files\n"
               "  bind DEV DRIVER       Declare DEV's driver (vfio-pci, a driver, host, none)\n"
               "  unbind DEV            Declare that DEV has no driver (as bind DEV none)\n"
               "  reset DEV             Drop what bind/unbind declared for DEV\n"
               "  vfs PF N              Declare the number of VFs of a PF\n"
               "  mdev create TYPE      Ask for an mdev of TYPE (id or name) [--parent --uuid]\n"
               "  mdev remove UUID      Remove an mdev that mdev create asked for\n"
               "  export [DIR]          Write the current bindings as hostdevd.conf files\n"
               "  import driverctl [DIR]\n"
               "                        Convert driverctl's overrides (/etc/driverctl.d)\n"
               "  import mdevctl [DIR]  Convert mdevctl's definitions (/etc/mdevctl.d)\n\n"
               "Leases (devices for a VM process, given back when it exits):\n"
               "  acquire DEV... --pid=PID\n"
               "                        Lease DEVs (and --mdev instances) to process PID\n"
               "                        (vfio-pci while it lives)\n"
               "  release LEASE         End a lease (its id or object path)\n"
               "  leases                List the leases\n"
               "  run --device=DEV... -- COMMAND...\n"
               "                        Lease DEVs to COMMAND, which hostdevctl becomes\n"
               "  handoff LEASE         Print what a VMM needs to use a lease (id or path)\n\n"
               "Options:\n"
               "  -h --help             Show this help\n"
               "     --version          Show the version\n"
               "     --json             Print JSON (keys are the D-Bus property names)\n"
               "     --address=ADDRESS  Connect to this D-Bus address instead of the system bus\n"
               "     --no-ask-password  Do not ask for a password when authorization needs one\n"
               "     --persist          bind, unbind, vfs, mdev create: keep the declaration\n"
               "                        across reboots\n"
               "     --whole-group      bind, unbind, acquire, run: take the whole IOMMU group along\n"
               "     --allow-critical   bind, unbind: allow a host-critical device\n"
               "     --driver=DRIVER    vfs: the driver of the VFs\n"
               "     --output=DIR       import: write the files into DIR\n"
               "     --parent=PARENT    mdev create: the parent (PCI address, or its name under\n"
               "                        /sys/class/mdev_bus); default: hostdevd places it\n"
               "     --uuid=UUID        mdev create: the mdev's UUID; default: hostdevd picks one\n"
               "     --pid=PID          acquire: the lease owner (a VMM's pid)\n"
               "     --dry-run          acquire: validate only, change nothing\n"
               "     --release=POLICY   acquire, run: host (default) or keep (stay on vfio-pci)\n"
               "     --device=DEV       run: a device to lease (repeat for more)\n"
               "     --mdev=TYPE[@PARENT]\n"
               "                        acquire, run: a new mdev of TYPE (id or name) in the\n"
               "                        lease, on PARENT or where hostdevd places it (repeat)\n"
               "     --mdev-release=POLICY\n"
               "                        acquire, run: remove (default) or keep the lease's mdevs\n"
               "     --format=FORMAT    handoff: qemu (default), cloud-hypervisor, libvirt, json\n"
               "     --timeout=SEC      bind, unbind, reset, vfs, mdev create: wait this long for\n"
               "                        the result\n"
               "                        (default 60, 0 = do not wait)\n\n"
               "Exit status: 0 success, 1 daemon or D-Bus error or not authorized, 2 usage\n"
               "error, 3 not converged (refused, blocked, pending, failed), 4 not found.\n"
               "See hostdevctl(1) for details.\n",
               program_invocation_short_name);
}

static const char *const verb_option_names[] = {
        "--persist", "--whole-group", "--allow-critical", "--driver", "--output",
        "--timeout", "--parent",      "--uuid",           "--pid",    "--dry-run",
        "--release", "--device",      "--format",         "--mdev",   "--mdev-release",
};

const char *arg_pid = NULL;
bool arg_dry_run = false;
const char *arg_release = NULL;
char **arg_devices = NULL;
char **arg_mdev_types = NULL, **arg_mdev_parents = NULL;
const char *arg_mdev_release = NULL;

const char *device_lookup_method(const char *s) {
        PciAddress a;

        return pci_address_from_string(s, &a) >= 0 || !device_name_is_valid(s) ? "GetDeviceByAddress"
                                                                               : "GetDeviceByName";
}

unsigned arg_verb_options = 0;

/* Returns 1 to run a command, 0 to exit successfully (--help, --version), -EINVAL on a usage error. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_ADDRESS,
                ARG_NO_ASK_PASSWORD,
                ARG_PERSIST,
                ARG_WHOLE_GROUP,
                ARG_ALLOW_CRITICAL,
                ARG_DRIVER,
                ARG_OUTPUT,
                ARG_TIMEOUT,
                ARG_PARENT,
                ARG_UUID,
                ARG_PID,
                ARG_DRY_RUN,
                ARG_RELEASE,
                ARG_DEVICE,
                ARG_FORMAT,
                ARG_MDEV,
                ARG_MDEV_RELEASE,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", no_argument, NULL, ARG_JSON },
                { "address", required_argument, NULL, ARG_ADDRESS },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                { "persist", no_argument, NULL, ARG_PERSIST },
                { "whole-group", no_argument, NULL, ARG_WHOLE_GROUP },
                { "allow-critical", no_argument, NULL, ARG_ALLOW_CRITICAL },
                { "driver", required_argument, NULL, ARG_DRIVER },
                { "output", required_argument, NULL, ARG_OUTPUT },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "parent", required_argument, NULL, ARG_PARENT },
                { "uuid", required_argument, NULL, ARG_UUID },
                { "pid", required_argument, NULL, ARG_PID },
                { "dry-run", no_argument, NULL, ARG_DRY_RUN },
                { "release", required_argument, NULL, ARG_RELEASE },
                { "device", required_argument, NULL, ARG_DEVICE },
                { "format", required_argument, NULL, ARG_FORMAT },
                { "mdev", required_argument, NULL, ARG_MDEV },
                { "mdev-release", required_argument, NULL, ARG_MDEV_RELEASE },
                {},
        };
        int c;

        /* Options may follow the verb; "--" ends them, so `run --device=DEV -- COMMAND -x` keeps
         * COMMAND's own (getopt moves the verb and COMMAND behind it, in order). */
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("hostdevctl %s\n", HOSTDEVD_VERSION);
                        return 0;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_ADDRESS:
                        arg_address = optarg;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        break;
                case ARG_PERSIST:
                        arg_persist = true;
                        arg_verb_options |= OPTION_PERSIST;
                        break;
                case ARG_WHOLE_GROUP:
                        arg_whole_group = true;
                        arg_verb_options |= OPTION_WHOLE_GROUP;
                        break;
                case ARG_ALLOW_CRITICAL:
                        arg_allow_critical = true;
                        arg_verb_options |= OPTION_ALLOW_CRITICAL;
                        break;
                case ARG_DRIVER:
                        arg_vf_driver = optarg;
                        arg_verb_options |= OPTION_DRIVER;
                        break;
                case ARG_OUTPUT:
                        arg_output = optarg;
                        arg_verb_options |= OPTION_OUTPUT;
                        break;
                case ARG_TIMEOUT: {
                        unsigned long v;
                        char *end;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno != 0 || !isdigit((unsigned char)optarg[0]) || *end || v > 86400) {
                                log_error("Invalid --timeout '%s' (seconds, 0 to 86400).", optarg);
                                return -EINVAL;
                        }
                        arg_timeout_sec = (unsigned)v;
                        arg_verb_options |= OPTION_TIMEOUT;
                        break;
                }
                case ARG_PARENT:
                        arg_mdev_parent = optarg;
                        arg_verb_options |= OPTION_PARENT;
                        break;
                case ARG_UUID:
                        arg_mdev_uuid = optarg;
                        arg_verb_options |= OPTION_UUID;
                        break;
                case ARG_PID:
                        arg_pid = optarg;
                        arg_verb_options |= OPTION_PID;
                        break;
                case ARG_DRY_RUN:
                        arg_dry_run = true;
                        arg_verb_options |= OPTION_DRY_RUN;
                        break;
                case ARG_RELEASE:
                        if (!streq(optarg, "host") && !streq(optarg, "keep")) {
                                log_error("Invalid --release '%s' (host or keep).", optarg);
                                return -EINVAL;
                        }
                        arg_release = optarg;
                        arg_verb_options |= OPTION_RELEASE;
                        break;
                case ARG_DEVICE:
                        if (strv_extend(&arg_devices, optarg) < 0) {
                                log_oom();
                                return -ENOMEM;
                        }
                        arg_verb_options |= OPTION_DEVICE;
                        break;
                case ARG_FORMAT:
                        arg_format = optarg;
                        arg_verb_options |= OPTION_FORMAT;
                        break;
                case ARG_MDEV: {
                        /* TYPE[@PARENT]: the last '@' (a type name may have one, a parent has none). */
                        _cleanup_free_ char *type = strdup(optarg);
                        char *at = type ? strrchr(type, '@') : NULL;

                        if (!type) {
                                log_oom();
                                return -ENOMEM;
                        }
                        if (at)
                                *at = '\0';
                        if (!*type || (at && !at[1])) {
                                log_error("Invalid --mdev '%s' (TYPE or TYPE@PARENT).", optarg);
                                return -EINVAL;
                        }
                        if (strv_extend(&arg_mdev_types, type) < 0 ||
                            strv_extend(&arg_mdev_parents, at ? at + 1 : "") < 0) {
                                log_oom();
                                return -ENOMEM;
                        }
                        arg_verb_options |= OPTION_MDEV;
                        break;
                }
                case ARG_MDEV_RELEASE:
                        if (!streq(optarg, "remove") && !streq(optarg, "keep")) {
                                log_error("Invalid --mdev-release '%s' (remove or keep).", optarg);
                                return -EINVAL;
                        }
                        arg_mdev_release = optarg;
                        arg_verb_options |= OPTION_MDEV_RELEASE;
                        break;
                case '?':
                        return -EINVAL; /* getopt printed the problem */
                default:
                        assert(!"unhandled option");
                }

        return 1;
}

typedef struct Verb {
        const char *name;
        int min_args, max_args; /* including the verb itself */
        unsigned options; /* VerbOptions it accepts */
        bool no_bus; /* runs without connecting (file conversions) */
        bool mutates; /* a change the daemon authorizes with polkit */
        int (*run)(sd_bus *bus, int argc, char **argv);
} Verb;

static const Verb verbs[] = {
        { "list", 1, 1, 0, false, false, verb_list },
        { "show", 2, 2, 0, false, false, verb_show },
        { "groups", 1, 1, 0, false, false, verb_groups },
        /* mdev.c checks each subcommand's arguments and options, and opens the polkit agent for
           create/remove. */
        { "mdev", 1, 3, OPTION_PERSIST | OPTION_PARENT | OPTION_UUID | OPTION_TIMEOUT, false, false,
          verb_mdev },
        { "monitor", 1, 1, 0, false, false, verb_monitor },
        { "status", 1, 1, 0, false, false, verb_status },
        { "plan", 1, 1, 0, false, false, verb_plan },
        { "apply", 1, 1, 0, false, true, verb_apply },
        { "reload", 1, 1, 0, false, true, verb_reload },
        { "bind", 3, 3, OPTION_PERSIST | OPTION_WHOLE_GROUP | OPTION_ALLOW_CRITICAL | OPTION_TIMEOUT, false,
          true, verb_bind },
        { "unbind", 2, 2, OPTION_PERSIST | OPTION_WHOLE_GROUP | OPTION_ALLOW_CRITICAL | OPTION_TIMEOUT,
          false, true, verb_unbind },
        { "reset", 2, 2, OPTION_TIMEOUT, false, true, verb_reset },
        { "vfs", 3, 3, OPTION_PERSIST | OPTION_DRIVER | OPTION_TIMEOUT, false, true, verb_vfs },
        /* DEV... may be empty when --mdev is given (verb_acquire() checks). */
        { "acquire", 1, 65,
          OPTION_PID | OPTION_DRY_RUN | OPTION_RELEASE | OPTION_WHOLE_GROUP | OPTION_MDEV |
                  OPTION_MDEV_RELEASE,
          false, true, verb_acquire },
        { "release", 2, 2, 0, false, true, verb_release },
        { "leases", 1, 1, 0, false, false, verb_leases },
        { "run", 2, INT_MAX,
          OPTION_DEVICE | OPTION_RELEASE | OPTION_WHOLE_GROUP | OPTION_MDEV | OPTION_MDEV_RELEASE, false,
          true, verb_run },
        { "handoff", 2, 2, OPTION_FORMAT, false, false, verb_handoff },
        { "export", 1, 2, 0, false, false, verb_export },
        { "import", 2, 3, OPTION_OUTPUT, true, false, verb_import },
};

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const Verb *verb = NULL;
        unsigned stray;
        char **args;
        int r, n;

        log_set_ident(program_invocation_short_name);
        log_set_target(LOG_TARGET_CONSOLE);

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : 0;

        args = argv + optind;
        n = argc - optind;
        if (n == 0) {
                static char *default_args[] = { (char *)"list", NULL };
                args = default_args;
                n = 1;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, args[0]))
                        verb = &verbs[i];
        if (!verb) {
                log_error("Unknown command '%s'. See '%s --help'.", args[0], program_invocation_short_name);
                return EXIT_USAGE;
        }
        if (n < verb->min_args) {
                log_error(
                        "Command '%s' needs an argument. See '%s --help'.", verb->name,
                        program_invocation_short_name);
                return EXIT_USAGE;
        }
        if (n > verb->max_args) {
                log_error(
                        "Too many arguments for '%s'. See '%s --help'.", verb->name,
                        program_invocation_short_name);
                return EXIT_USAGE;
        }
        /* An option the command ignores is most likely a mistake ("list --persist"): say so. */
        stray = arg_verb_options & ~verb->options;
        for (size_t i = 0; i < ELEMENTSOF(verb_option_names); i++)
                if (stray & (1u << i)) {
                        log_error("Option %s does not apply to '%s'.", verb_option_names[i], verb->name);
                        return EXIT_USAGE;
                }

        if (!verb->no_bus) {
                r = bus_client_open(arg_address, &bus);
                if (r < 0) {
                        log_error_errno(r, "Failed to connect to %s: %m", arg_address ?: "the system bus");
                        return EXIT_BUS;
                }
        }

        /* A terminal but no graphical session (SSH, console): a text agent lets polkit ask here. */
        if (verb->mutates && ask_password())
                polkit_agent_open();
        r = verb->run(bus, n, args);
        polkit_agent_close();

        if (fflush(stdout) != 0 || ferror(stdout)) {
                log_error("Failed to write to standard output.");
                return EXIT_BUS;
        }
        return r;
}
