/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * agent/bus-emitter.c and the field -> property tables of bus-device.c and
 * bus-mdev.c.
 *
 * The daemon half runs the real agent code (model on a umockdev testbed,
 * bus_manager/device/mdev vtables, the emitter) on one end of a socketpair
 * (sd_bus_set_server, peer to peer, no bus daemon); the test reads the
 * signals on the other end. Both ends share the daemon's sd-event loop.
 * To know that every signal of a flush has arrived, the daemon end sends a
 * marker signal afterwards: one stream, so it comes last.
 *
 * The expected property names are spelled out here and checked against
 * dbus/org.hostdevd1.xml, which the test parses (HOSTDEVD_DBUS_XML).
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-id128.h>

#include "bus-device.h"
#include "bus-emitter.h"
#include "bus-manager.h"
#include "bus-mdev.h"
#include "daemon.h"
#include "intake.h"
#include "mdev.h"
#include "model.h"
#include "pci-device.h"
#include "sysfs-tree.h"

#define GPU "0000:01:00.0"
#define NVME "0000:02:00.0"
#define IGD "0000:04:00.0"
#define NEW "0000:06:00.0"
#define IGD_PATH "/sys/devices/pci0000:04/0000:04:00.0"
#define MTTY_PATH "/sys/devices/virtual/mtty/mtty"
#define UUID1 "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"

#define ROOT "/org/hostdevd1"
#define GPU_OBJ "/org/hostdevd1/devices/pci_0000_01_00_0"
#define NVME_OBJ "/org/hostdevd1/devices/pci_0000_02_00_0"
#define NEW_OBJ "/org/hostdevd1/devices/pci_0000_06_00_0"
#define MDEV1_OBJ "/org/hostdevd1/mdevs/mdev_83b8f4f2_509f_382f_3c1e_e6bfe0fa1001"
#define MANAGER_IFACE "org.hostdevd1.Manager"
#define DEVICE_IFACE "org.hostdevd1.Device"
#define MDEV_IFACE "org.hostdevd1.Mdev"

/* The interfaces sd-bus lists for our objects, sorted (InterfacesAdded and our InterfacesRemoved). */
#define DEVICE_IFACES                                                                                    \
        "org.freedesktop.DBus.Introspectable,org.freedesktop.DBus.Peer,org.freedesktop.DBus.Properties," \
        "org.hostdevd1.Device"

/* ---- expected field -> property tables, from pci-device.h/mdev.h and the XML ---- */

static const struct {
        unsigned field;
        const char *names; /* sorted, comma-separated */
} device_fields[] = {
        { PCI_DEVICE_FIELD_IDS,
          "Class,ClassName,DeviceId,DeviceName,Revision,SubsystemDeviceId,SubsystemVendorId,VendorId,"
          "VendorName" },
        /* /dev/vfio/N names the group; the peers are the group's other members. */
        { PCI_DEVICE_FIELD_IOMMU_GROUP, "IommuGroup,IommuGroupPeers,VfioGroup" },
        /* VfioGroup/VfioDevice exist only while bound to a VFIO driver. */
        { PCI_DEVICE_FIELD_DRIVER, "Driver,VfioDevice,VfioGroup" },
        { PCI_DEVICE_FIELD_DRIVER_OVERRIDE, "DriverOverride" },
        { PCI_DEVICE_FIELD_NUMA_NODE, "NumaNode" },
        { PCI_DEVICE_FIELD_PHYSICAL_SLOT, "PhysicalSlot" },
        { PCI_DEVICE_FIELD_SERIAL, "Serial" },
        { PCI_DEVICE_FIELD_SRIOV,
          "PhysFn,SriovDriversAutoprobe,SriovNumVFs,SriovRole,SriovTotalVFs,SriovVFOffset,SriovVFStride,"
          "VFIndex,VirtFns" },
        { PCI_DEVICE_FIELD_BARS, "Bars" },
        { PCI_DEVICE_FIELD_RESET_METHODS, "ResetMethods" },
        { PCI_DEVICE_FIELD_BOOT_VGA, "BootVga" },
        { PCI_DEVICE_FIELD_MDEV_TYPES, "MdevTypes" },
        { PCI_DEVICE_FIELD_ERRORS, "Errors" },
        { PCI_DEVICE_FIELD_SYSPATH, "SysfsPath" },
        { PCI_DEVICE_FIELD_IOMMU_PEERS, "IommuGroupPeers" },
};

static const struct {
        unsigned field;
        const char *names;
} mdev_fields[] = {
        /* TypeName is the type's name: it moves with the type. */
        { MDEV_FIELD_TYPE, "Type,TypeName" },
        /* ParentDevice is the parent's object path: it moves with Parent. */
        { MDEV_FIELD_PARENT, "Parent,ParentDevice" },
        /* VfioGroup is the group's node. */
        { MDEV_FIELD_IOMMU_GROUP, "IommuGroup,VfioGroup" },
        { MDEV_FIELD_DRIVER, "Driver" },
        { MDEV_FIELD_ERRORS, "Errors" },
        { MDEV_FIELD_SYSPATH, "SysfsPath" },
        { MDEV_FIELD_VFIO_DEVICE, "VfioDevice" },
        /* Not the model's: the reconciler's view of the instance (bus-mdev.h). Last. */
        { BUS_MDEV_FIELD_STATUS, "Owner,State,StateReason" },
};

#define N_DEVICE_FIELDS (sizeof(device_fields) / sizeof(device_fields[0]))
#define N_MDEV_FIELDS (sizeof(mdev_fields) / sizeof(mdev_fields[0]))

/* ---- small string helpers ---- */

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool has_duplicates(const char **names, size_t n) {
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        if (strcmp(names[i], names[j]) == 0)
                                return true;
        return false;
}

/* Sort |names| (n entries), drop duplicates, join with ','. Returns a new string. */
static char *join_sorted(const char **names, size_t n) {
        size_t len = 1;
        char *s, *p;

        qsort(names, n, sizeof(char *), strcmp_ptr);
        for (size_t i = 0; i < n; i++)
                len += strlen(names[i]) + 1;
        s = p = calloc(1, len);
        assert_non_null(s);
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
                        continue;
                p += sprintf(p, "%s%s", p == s ? "" : ",", names[i]);
        }
        return s;
}

/* The union of two sorted comma-joined lists, sorted. */
static char *join_union(const char *a, const char *b) {
        const char *names[256];
        char *copy, *tok, *save = NULL, *r;
        size_t n = 0;

        assert_true(asprintf(&copy, "%s,%s", a, b) > 0);
        for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                assert_true(n < 256);
                names[n++] = tok;
        }
        r = join_sorted(names, n);
        free(copy);
        return r;
}

static char *device_names(unsigned fields) {
        const char *names[BUS_DEVICE_PROPERTIES_MAX];
        size_t n;

        memset(names, 0xaa, sizeof(names));
        n = bus_device_property_names(fields, names);
        assert_true(n < BUS_DEVICE_PROPERTIES_MAX);
        assert_null(names[n]); /* NULL-terminated, as sd_bus_emit_properties_changed_strv() wants */
        assert_false(has_duplicates(names, n)); /* each property named once per signal */
        return join_sorted(names, n);
}

static char *mdev_names(unsigned fields) {
        const char *names[BUS_MDEV_PROPERTIES_MAX];
        size_t n;

        memset(names, 0xaa, sizeof(names));
        n = bus_mdev_property_names(fields, names);
        assert_true(n < BUS_MDEV_PROPERTIES_MAX);
        assert_null(names[n]);
        assert_false(has_duplicates(names, n));
        return join_sorted(names, n);
}

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        char *s;
        long size;

        if (!f)
                fail_msg("cannot open %s: %s", path, strerror(errno));
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        size = ftell(f);
        assert_true(size > 0);
        rewind(f);
        s = calloc(1, (size_t)size + 1);
        assert_non_null(s);
        assert_int_equal(fread(s, 1, (size_t)size, f), (size_t)size);
        fclose(f);
        return s;
}

/*
 * The properties of |interface| in the XML that may change (without
 * EmitsChangedSignal=const), sorted and joined. |ret_const|: the const ones.
 */
static bool reconciler_property(const char *interface, const char *name) {
        static const char *const device[] = { "DesiredDriver", "DesiredSource", "State", "StateReason",
                                              "LastError" };
        static const char *const manager[] = { "State", "Generation", "ConfigErrors" };

        if (strcmp(interface, DEVICE_IFACE) == 0) {
                for (size_t i = 0; i < sizeof(device) / sizeof(device[0]); i++)
                        if (strcmp(name, device[i]) == 0)
                                return true;
        } else if (strcmp(interface, "org.hostdevd1.Manager") == 0)
                for (size_t i = 0; i < sizeof(manager) / sizeof(manager[0]); i++)
                        if (strcmp(name, manager[i]) == 0)
                                return true;
        return false;
}

static char *xml_changing_properties(const char *interface, char **ret_const) {
        const char *names[64], *consts[8];
        size_t n = 0, n_const = 0;
        char *xml, *start, *end, *p, open_tag[256];

        xml = read_file(HOSTDEVD_DBUS_XML);
        snprintf(open_tag, sizeof(open_tag), "<interface name=\"%s\">", interface);
        start = strstr(xml, open_tag);
        if (!start)
                fail_msg("no interface %s in %s", interface, HOSTDEVD_DBUS_XML);
        end = strstr(start, "</interface>");
        assert_non_null(end);
        *end = '\0';

        for (p = strstr(start, "<property name=\""); p; p = strstr(p, "<property name=\"")) {
                char *name = p + strlen("<property name=\""), *q, *elem_end;
                bool is_const;

                q = strchr(name, '"');
                assert_non_null(q);
                *q = '\0';
                /* The element ends at "/>" (no children) or at "</property>". */
                elem_end = strstr(q + 1, ">");
                assert_non_null(elem_end);
                if (elem_end[-1] != '/') {
                        elem_end = strstr(q + 1, "</property>");
                        assert_non_null(elem_end);
                }
                *elem_end = '\0';
                is_const = strstr(q + 1, "EmitsChangedSignal\" value=\"const\"") != NULL;
                /* Never announced (Holders), or announced by agent/reconciler.c, not from model field bits.
                 */
                if (strstr(q + 1, "EmitsChangedSignal\" value=\"false\"") ||
                    reconciler_property(interface, name))
                        ;
                else if (is_const) {
                        assert_true(n_const < 8);
                        consts[n_const++] = name;
                } else {
                        assert_true(n < 64);
                        names[n++] = name;
                }
                p = elem_end + 1;
        }
        assert_true(n > 0);

        {
                char *changing = join_sorted(names, n);

                *ret_const = join_sorted(consts, n_const);
                free(xml);
                return changing;
        }
}

/* How many distinct "PREFIX<NAME> =" enumerators the header declares. */
static size_t count_enumerators(const char *header, const char *prefix) {
        char *text = read_file(header);
        size_t n = 0;

        for (char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
                char *q = p + strlen(prefix);

                while ((*q >= 'A' && *q <= 'Z') || *q == '_' || (*q >= '0' && *q <= '9'))
                        q++;
                while (*q == ' ' || *q == '\t' || *q == '\n')
                        q++;
                if (*q == '=' && q[1] != '=')
                        n++;
        }
        free(text);
        return n;
}

/* ---- field -> property tables, no bus ---- */

static void test_device_field_names(void **state) {
        unsigned all = 0;
        char *s;

        /* The table above covers every PciDeviceField the header declares. */
        assert_int_equal(
                count_enumerators(HOSTDEVD_SRC_DIR "/pci-device.h", "PCI_DEVICE_FIELD_"), N_DEVICE_FIELDS);

        for (size_t i = 0; i < N_DEVICE_FIELDS; i++) {
                /* One bit each, all distinct. */
                assert_int_equal(__builtin_popcount(device_fields[i].field), 1);
                assert_int_equal(all & device_fields[i].field, 0);
                all |= device_fields[i].field;

                s = device_names(device_fields[i].field);
                if (strcmp(s, device_fields[i].names) != 0)
                        fail_msg(
                                "field 0x%x: got \"%s\", expected \"%s\"", device_fields[i].field, s,
                                device_fields[i].names);
                free(s);
        }

        /* Bits no field uses name nothing. */
        for (unsigned bit = 0; bit < 32; bit++)
                if (!(all & (1u << bit))) {
                        s = device_names(1u << bit);
                        assert_string_equal(s, "");
                        free(s);
                }
        s = device_names(0);
        assert_string_equal(s, "");
        free(s);

        /* Combined bits give the union, each name once (DRIVER and IOMMU_GROUP share VfioGroup). */
        s = device_names(
                PCI_DEVICE_FIELD_DRIVER | PCI_DEVICE_FIELD_IOMMU_GROUP | PCI_DEVICE_FIELD_IOMMU_PEERS);
        assert_string_equal(s, "Driver,IommuGroup,IommuGroupPeers,VfioDevice,VfioGroup");
        free(s);
        {
                const char *names[BUS_DEVICE_PROPERTIES_MAX];

                assert_int_equal(
                        bus_device_property_names(
                                PCI_DEVICE_FIELD_DRIVER | PCI_DEVICE_FIELD_IOMMU_GROUP, names),
                        5);
        }
}

static void test_device_fields_cover_xml(void **state) {
        char *consts = NULL, *xml, *all, *expected = strdup("");

        /* Every property that can change is reachable from some bit, and no bit names anything else. */
        xml = xml_changing_properties(DEVICE_IFACE, &consts);
        all = device_names(~0u);
        assert_string_equal(all, xml);
        /* The const one is never announced. */
        assert_string_equal(consts, "Address");

        /* The table above is the same union. */
        for (size_t i = 0; i < N_DEVICE_FIELDS; i++) {
                char *u = join_union(expected, device_fields[i].names);

                free(expected);
                expected = u;
        }
        assert_string_equal(expected, xml);

        free(expected);
        free(all);
        free(xml);
        free(consts);
}

static void test_mdev_field_names(void **state) {
        unsigned all = 0;
        char *s, *xml, *consts = NULL;

        assert_int_equal(count_enumerators(HOSTDEVD_SRC_DIR "/mdev.h", "MDEV_FIELD_"), N_MDEV_FIELDS - 1);

        for (size_t i = 0; i < N_MDEV_FIELDS; i++) {
                assert_int_equal(__builtin_popcount(mdev_fields[i].field), 1);
                assert_int_equal(all & mdev_fields[i].field, 0);
                all |= mdev_fields[i].field;

                s = mdev_names(mdev_fields[i].field);
                if (strcmp(s, mdev_fields[i].names) != 0)
                        fail_msg(
                                "field 0x%x: got \"%s\", expected \"%s\"", mdev_fields[i].field, s,
                                mdev_fields[i].names);
                free(s);
        }
        for (unsigned bit = 0; bit < 32; bit++)
                if (!(all & (1u << bit))) {
                        s = mdev_names(1u << bit);
                        assert_string_equal(s, "");
                        free(s);
                }

        xml = xml_changing_properties(MDEV_IFACE, &consts);
        s = mdev_names(~0u);
        assert_string_equal(s, xml);
        assert_string_equal(consts, "Uuid");
        free(s);
        free(xml);
        free(consts);
}

/* ---- the daemon on a private bus ---- */

typedef struct Fixture {
        SysfsTree *tree;
        Daemon *d;
        sd_bus *client;

        sd_bus_message *signals[64];
        size_t n_signals;
        bool marker;

        ModelChangeList changes;
} Fixture;

static int on_client_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Fixture *f = userdata;

        uint8_t type = 0;

        assert_int_equal(sd_bus_message_get_type(m, &type), 0);
        if (type != SD_BUS_MESSAGE_SIGNAL)
                return 0;
        if (sd_bus_message_is_signal(m, "org.hostdevd1.Test", "Marker")) {
                f->marker = true;
                return 0;
        }
        assert_true(f->n_signals < 64);
        f->signals[f->n_signals++] = sd_bus_message_ref(m);
        return 0;
}

static void clear_signals(Fixture *f) {
        for (size_t i = 0; i < f->n_signals; i++)
                sd_bus_message_unref(f->signals[i]);
        f->n_signals = 0;
}

static void build_topology(SysfsTree *t) {
        sysfs_tree_add_pci(t, GPU, 0x10de, 0x1eb8, 0x030000);
        sysfs_tree_set_group(t, GPU, 1);
        sysfs_tree_bind(t, GPU, "nouveau");

        sysfs_tree_add_pci(t, NVME, 0x144d, 0xa808, 0x010802);
        sysfs_tree_set_group(t, NVME, 2);
        sysfs_tree_bind(t, NVME, "nvme");

        sysfs_tree_add_pci(t, IGD, 0x8086, 0x3e92, 0x030000);
        sysfs_tree_set_group(t, IGD, 6);
        sysfs_tree_bind(t, IGD, "i915");
        sysfs_tree_add_mdev_type(t, IGD_PATH, "i915-GVTg_V5_4", "GVTg_V5_4", 1);
        sysfs_tree_register_parent(t, IGD_PATH);
        sysfs_tree_add_mdev(t, IGD_PATH, UUID1, "i915-GVTg_V5_4", 7);

        /* mtty's types exist, but the parent is not registered (module loading later). */
        sysfs_tree_mkdir(t, MTTY_PATH);
        sysfs_tree_add_mdev_type(t, MTTY_PATH, "mtty-1", "Single-port-serial", 24);
}

static void run_until(Fixture *f, bool *flag) {
        for (unsigned i = 0; i < 200 && !*flag; i++)
                assert_true(sd_event_run(f->d->ctx.event, 100 * 1000) >= 0);
        assert_true(*flag);
}

/* The daemon's wiring of the intake (daemon.c): model changes to the emitter, rescans too. */
static void on_intake_changes(void *userdata, const ModelChange *changes, size_t n) {
        Fixture *f = userdata;

        assert_int_equal(bus_emitter_queue(f->d->ctx.emitter, changes, n), 0);
}

static void on_intake_rescan(void *userdata) {
        Fixture *f = userdata;

        assert_int_equal(bus_emitter_manager_changed(f->d->ctx.emitter), 0);
}

static int setup(void **state) {
        static const IntakeHooks hooks = {
                .on_changes = on_intake_changes,
                .on_rescan = on_intake_rescan,
        };
        Fixture *f = calloc(1, sizeof(Fixture));
        sd_id128_t id;
        int fds[2];

        f->tree = sysfs_tree_new();
        build_topology(f->tree);

        assert_int_equal(daemon_new(NULL, &f->d), 0);
        assert_int_equal(model_new(NULL, &f->d->ctx.model), 0);
        assert_int_equal(model_enumerate(f->d->ctx.model, NULL), 0);
        assert_int_equal(
                intake_new(f->d->ctx.event, f->d->ctx.model, false, &hooks, f, &f->d->ctx.intake), 0);

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);

        /* The daemon's end: the server of a peer-to-peer connection. */
        assert_int_equal(sd_bus_new(&f->d->ctx.bus), 0);
        assert_int_equal(sd_bus_set_fd(f->d->ctx.bus, fds[0], fds[0]), 0);
        assert_int_equal(sd_id128_randomize(&id), 0);
        assert_int_equal(sd_bus_set_server(f->d->ctx.bus, true, id), 0);
        assert_int_equal(sd_bus_set_anonymous(f->d->ctx.bus, true), 0);
        assert_int_equal(sd_bus_attach_event(f->d->ctx.bus, f->d->ctx.event, SD_EVENT_PRIORITY_NORMAL), 0);
        assert_int_equal(sd_bus_start(f->d->ctx.bus), 0);

        /* The test's end. */
        assert_int_equal(sd_bus_new(&f->client), 0);
        assert_int_equal(sd_bus_set_fd(f->client, fds[1], fds[1]), 0);
        assert_int_equal(sd_bus_set_anonymous(f->client, true), 0);
        assert_int_equal(sd_bus_attach_event(f->client, f->d->ctx.event, SD_EVENT_PRIORITY_NORMAL), 0);
        assert_true(sd_bus_add_filter(f->client, NULL, on_client_message, f) >= 0);
        assert_int_equal(sd_bus_start(f->client), 0);

        /* As daemon_export() does. */
        assert_int_equal(bus_emitter_new(&f->d->ctx, &f->d->ctx.emitter), 0);
        assert_int_equal(bus_emitter_snapshot(f->d->ctx.emitter), 0);
        assert_int_equal(bus_manager_add(&f->d->ctx), 0);
        assert_int_equal(bus_device_add(&f->d->ctx), 0);
        assert_int_equal(bus_mdev_add(&f->d->ctx), 0);

        for (unsigned i = 0;
             i < 200 && !(sd_bus_is_ready(f->d->ctx.bus) > 0 && sd_bus_is_ready(f->client) > 0); i++)
                assert_true(sd_event_run(f->d->ctx.event, 100 * 1000) >= 0);
        assert_true(sd_bus_is_ready(f->d->ctx.bus) > 0);
        assert_true(sd_bus_is_ready(f->client) > 0);

        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        clear_signals(f);
        model_change_list_done(&f->changes);
        f->client = sd_bus_flush_close_unref(f->client);
        daemon_free(f->d);
        sysfs_tree_free(f->tree);
        free(f);
        return 0;
}

/* Everything the daemon sent so far has arrived: send a marker behind it and wait for it. */
static void collect(Fixture *f) {
        f->marker = false;
        assert_true(
                sd_bus_emit_signal(
                        f->d->ctx.bus, "/org/hostdevd1/test", "org.hostdevd1.Test", "Marker", NULL) >= 0);
        run_until(f, &f->marker);
}

/* Flush explicitly, check the count it reports, and collect what arrived. */
static void flush_and_collect(Fixture *f, int expected) {
        clear_signals(f);
        assert_int_equal(bus_emitter_flush(f->d->ctx.emitter), expected);
        collect(f);
        if (f->n_signals != (size_t)expected) {
                for (size_t i = 0; i < f->n_signals; i++)
                        print_message(
                                "signal %zu: %s %s\n", i, sd_bus_message_get_member(f->signals[i]),
                                sd_bus_message_get_path(f->signals[i]));
                fail_msg("%zu signals arrived, expected %d", f->n_signals, expected);
        }
}

static void queue(
        Fixture *f, ModelChangeKind kind, ModelObjectKind object, const char *key, unsigned fields) {
        ModelChange c = {
                .kind = kind,
                .object = object,
                .fields = fields,
        };

        assert_true(strlen(key) < sizeof(c.key));
        strcpy(c.key, key);
        assert_int_equal(bus_emitter_queue(f->d->ctx.emitter, &c, 1), 0);
}

/* One uevent through the model into the emitter, as intake_handle_uevent() does; returns the changes. */
static const ModelChangeList *feed(
        Fixture *f, const char *action, const char *subsystem, const char *syspath, const char *mdev_state) {
        const char *sysname = strrchr(syspath, '/') + 1;

        model_change_list_clear(&f->changes);
        assert_true(
                model_handle_uevent(
                        f->d->ctx.model, action, subsystem, syspath, sysname, mdev_state, &f->changes) >= 0);
        assert_int_equal(bus_emitter_queue(f->d->ctx.emitter, f->changes.changes, f->changes.n), 0);
        return &f->changes;
}

static bool has_change(
        const ModelChangeList *l, ModelChangeKind kind, ModelObjectKind object, const char *key) {
        for (size_t i = 0; i < l->n; i++)
                if (l->changes[i].kind == kind && l->changes[i].object == object &&
                    strcmp(l->changes[i].key, key) == 0)
                        return true;
        return false;
}

/* ---- reading the signals ---- */

static void assert_signal(Fixture *f, size_t i, const char *member, const char *path) {
        assert_true(i < f->n_signals);
        assert_string_equal(sd_bus_message_get_member(f->signals[i]), member);
        assert_string_equal(sd_bus_message_get_path(f->signals[i]), path);
}

/* PropertiesChanged: the interface, and the changed plus invalidated names, sorted and joined. */
static char *properties_changed_names(sd_bus_message *m, const char **ret_interface) {
        const char *names[64];
        size_t n = 0;
        const char *s;

        assert_string_equal(sd_bus_message_get_interface(m), "org.freedesktop.DBus.Properties");
        assert_string_equal(sd_bus_message_get_member(m), "PropertiesChanged");
        assert_true(sd_bus_message_rewind(m, true) >= 0);
        assert_true(sd_bus_message_read(m, "s", ret_interface) > 0);
        assert_true(sd_bus_message_enter_container(m, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                assert_true(sd_bus_message_read(m, "s", &s) > 0);
                assert_true(n < 64);
                names[n++] = s;
                assert_true(sd_bus_message_skip(m, "v") >= 0);
                assert_true(sd_bus_message_exit_container(m) >= 0);
        }
        assert_true(sd_bus_message_exit_container(m) >= 0);
        assert_true(sd_bus_message_enter_container(m, 'a', "s") > 0);
        while (sd_bus_message_read(m, "s", &s) > 0) {
                assert_true(n < 64);
                names[n++] = s;
        }
        assert_true(sd_bus_message_exit_container(m) >= 0);
        return join_sorted(names, n);
}

static void assert_properties_changed(
        Fixture *f, size_t i, const char *path, const char *interface, const char *names) {
        const char *iface = NULL;
        char *got;

        assert_signal(f, i, "PropertiesChanged", path);
        got = properties_changed_names(f->signals[i], &iface);
        assert_string_equal(iface, interface);
        if (strcmp(got, names) != 0)
                fail_msg("signal %zu on %s: changed \"%s\", expected \"%s\"", i, path, got, names);
        free(got);
}

/* Position the message on the value of |property| in the changed dict (PropertiesChanged). */
static void enter_changed_value(sd_bus_message *m, const char *property, const char *signature) {
        const char *iface, *s;

        assert_true(sd_bus_message_rewind(m, true) >= 0);
        assert_true(sd_bus_message_read(m, "s", &iface) > 0);
        assert_true(sd_bus_message_enter_container(m, 'a', "{sv}") > 0);
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                assert_true(sd_bus_message_read(m, "s", &s) > 0);
                if (strcmp(s, property) == 0) {
                        assert_true(sd_bus_message_enter_container(m, 'v', signature) > 0);
                        return;
                }
                assert_true(sd_bus_message_skip(m, "v") >= 0);
                assert_true(sd_bus_message_exit_container(m) >= 0);
        }
        fail_msg("no %s in PropertiesChanged", property);
}

/*
 * InterfacesAdded/InterfacesRemoved: the object path and its interfaces, sorted and joined.
 * For InterfacesAdded, optionally position on the value of |interface|.|property|.
 */
static char *interfaces_signal(
        sd_bus_message *m, const char **ret_object, const char *interface, const char *property,
        const char *signature) {
        const char *names[16];
        bool added = sd_bus_message_is_signal(m, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded");
        size_t n = 0;
        const char *s;

        assert_true(
                added ||
                sd_bus_message_is_signal(m, "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved"));
        assert_true(sd_bus_message_rewind(m, true) >= 0);
        assert_true(sd_bus_message_read(m, "o", ret_object) > 0);
        if (!added) {
                assert_true(sd_bus_message_enter_container(m, 'a', "s") > 0);
                while (sd_bus_message_read(m, "s", &s) > 0)
                        names[n++] = s;
                return join_sorted(names, n);
        }

        assert_true(sd_bus_message_enter_container(m, 'a', "{sa{sv}}") > 0);
        while (sd_bus_message_enter_container(m, 'e', "sa{sv}") > 0) {
                assert_true(sd_bus_message_read(m, "s", &s) > 0);
                assert_true(n < 16);
                names[n++] = s;
                assert_true(sd_bus_message_skip(m, "a{sv}") >= 0);
                assert_true(sd_bus_message_exit_container(m) >= 0);
        }

        if (interface) {
                /* Second pass to the requested value. */
                const char *o;

                assert_true(sd_bus_message_rewind(m, true) >= 0);
                assert_true(sd_bus_message_read(m, "o", &o) > 0);
                assert_true(sd_bus_message_enter_container(m, 'a', "{sa{sv}}") > 0);
                while (sd_bus_message_enter_container(m, 'e', "sa{sv}") > 0) {
                        assert_true(sd_bus_message_read(m, "s", &s) > 0);
                        if (strcmp(s, interface) != 0) {
                                assert_true(sd_bus_message_skip(m, "a{sv}") >= 0);
                                assert_true(sd_bus_message_exit_container(m) >= 0);
                                continue;
                        }
                        assert_true(sd_bus_message_enter_container(m, 'a', "{sv}") > 0);
                        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                                assert_true(sd_bus_message_read(m, "s", &s) > 0);
                                if (strcmp(s, property) == 0) {
                                        assert_true(sd_bus_message_enter_container(m, 'v', signature) > 0);
                                        return join_sorted(names, n);
                                }
                                assert_true(sd_bus_message_skip(m, "v") >= 0);
                                assert_true(sd_bus_message_exit_container(m) >= 0);
                        }
                        fail_msg("InterfacesAdded: no %s.%s", interface, property);
                }
                fail_msg("InterfacesAdded: no interface %s", interface);
        }
        return join_sorted(names, n);
}

static void assert_interfaces(Fixture *f, size_t i, const char *member, const char *object) {
        const char *o = NULL;
        char *ifaces;

        assert_signal(f, i, member, ROOT);
        ifaces = interfaces_signal(f->signals[i], &o, NULL, NULL, NULL);
        assert_string_equal(o, object);
        assert_string_equal(ifaces, DEVICE_IFACES);
        free(ifaces);
}

static const char *added_string(Fixture *f, size_t i, const char *property) {
        const char *o, *v = NULL;

        free(interfaces_signal(f->signals[i], &o, DEVICE_IFACE, property, "s"));
        assert_true(sd_bus_message_read(f->signals[i], "s", &v) > 0);
        return v;
}

/* ---- the hold of mdev uevents during our own mdev jobs (intake.h) ---- */

static size_t count_added(Fixture *f) {
        size_t n = 0;

        for (size_t i = 0; i < f->n_signals; i++)
                n += sd_bus_message_is_signal(
                             f->signals[i], "org.freedesktop.DBus.ObjectManager", "InterfacesAdded") > 0;
        return n;
}

static void assert_model_current(Fixture *f) {
        Model *fresh = NULL;

        assert_int_equal(model_new(NULL, &fresh), 0);
        assert_int_equal(model_enumerate(fresh, NULL), 0);
        assert_true(model_equal(fresh, f->d->ctx.model));
        model_free(fresh);
}

/* Held: nothing read or announced until the hold ends; then each mdev once, the model current. */
static void test_intake_hold_mdevs(void **state) {
        static const char *const uuids[] = {
                "6f1d2a3b-0000-4000-8000-00000000be00",
                "6f1d2a3b-0000-4000-8000-00000000be01",
        };
        Fixture *f = *state;
        Intake *in = f->d->ctx.intake;
        char path[256];

        intake_hold_mdevs(in, true);
        for (size_t i = 0; i < 2; i++) {
                sysfs_tree_add_mdev(f->tree, IGD_PATH, uuids[i], "i915-GVTg_V5_4", 8 + (int)i);
                (void)snprintf(path, sizeof(path), "%s/%s", IGD_PATH, uuids[i]);
                assert_int_equal(intake_receive(in, "add", "mdev", path, uuids[i], NULL), 0);
                assert_int_equal(intake_receive(in, "bind", "mdev", path, uuids[i], NULL), 0);
                intake_queue_mdev_refresh(in, uuids[i]);
        }
        sysfs_tree_set_available(f->tree, IGD_PATH, "i915-GVTg_V5_4", 0);
        assert_int_equal(intake_queued(in), 0);
        flush_and_collect(f, 0);
        assert_null(model_get_mdev(f->d->ctx.model, uuids[0]));
        assert_int_equal(model_get_mdev_parent(f->d->ctx.model, IGD)->types[0].available_instances, 1);

        /* the last job ends */
        intake_hold_mdevs(in, false);
        for (size_t i = 0; i < 2; i++)
                assert_string_equal(model_get_mdev(f->d->ctx.model, uuids[i])->type_id, "i915-GVTg_V5_4");
        assert_int_equal(model_get_mdev_parent(f->d->ctx.model, IGD)->types[0].available_instances, 0);
        assert_model_current(f);
        clear_signals(f);
        assert_true(bus_emitter_flush(f->d->ctx.emitter) >= 2);
        collect(f);
        assert_int_equal(count_added(f), 2);

        /* a plan while held (intake_flush()) reads them; the hold goes on */
        intake_hold_mdevs(in, true);
        sysfs_tree_remove_mdev(f->tree, IGD_PATH, uuids[1]);
        sysfs_tree_set_available(f->tree, IGD_PATH, "i915-GVTg_V5_4", 1);
        (void)snprintf(path, sizeof(path), "%s/%s", IGD_PATH, uuids[1]);
        assert_int_equal(intake_receive(in, "remove", "mdev", path, uuids[1], NULL), 0);
        assert_non_null(model_get_mdev(f->d->ctx.model, uuids[1]));
        intake_flush(in);
        assert_null(model_get_mdev(f->d->ctx.model, uuids[1]));
        assert_model_current(f);

        /* a rescan drops what is held: the enumeration read it */
        sysfs_tree_remove_mdev(f->tree, IGD_PATH, uuids[0]);
        sysfs_tree_set_available(f->tree, IGD_PATH, "i915-GVTg_V5_4", 2);
        (void)snprintf(path, sizeof(path), "%s/%s", IGD_PATH, uuids[0]);
        assert_int_equal(intake_receive(in, "remove", "mdev", path, uuids[0], NULL), 0);
        assert_int_equal(intake_rescan(in), 0);
        assert_null(model_get_mdev(f->d->ctx.model, uuids[0]));
        intake_hold_mdevs(in, false);
        assert_model_current(f);
}

/* ---- the coalescing rules of bus-emitter.h ---- */

/* changed + changed -> one PropertiesChanged with the union of the fields. */
static void test_changed_union(void **state) {
        Fixture *f = *state;
        const char *v = NULL;

        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_DRIVER);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_NUMA_NODE);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU,
              PCI_DEVICE_FIELD_SERIAL | PCI_DEVICE_FIELD_DRIVER);
        flush_and_collect(f, 1);
        assert_properties_changed(
                f, 0, GPU_OBJ, DEVICE_IFACE, "Driver,NumaNode,Serial,VfioDevice,VfioGroup");

        /* With the current values. */
        enter_changed_value(f->signals[0], "Driver", "s");
        assert_true(sd_bus_message_read(f->signals[0], "s", &v) > 0);
        assert_string_equal(v, "nouveau");

        /* Nothing left over for the next iteration. */
        flush_and_collect(f, 0);
}

/* Several objects: one signal each, in the order of their first change. */
static void test_changed_order(void **state) {
        Fixture *f = *state;

        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, NVME, PCI_DEVICE_FIELD_NUMA_NODE);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MDEV, UUID1, MDEV_FIELD_DRIVER);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_BOOT_VGA);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, NVME, PCI_DEVICE_FIELD_SERIAL);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MDEV, UUID1, MDEV_FIELD_PARENT);
        flush_and_collect(f, 3);
        assert_properties_changed(f, 0, NVME_OBJ, DEVICE_IFACE, "NumaNode,Serial");
        assert_properties_changed(f, 1, MDEV1_OBJ, MDEV_IFACE, "Driver,Parent,ParentDevice");
        assert_properties_changed(f, 2, GPU_OBJ, DEVICE_IFACE, "BootVga");
}

/* A change record without fields announces nothing. */
static void test_changed_no_fields(void **state) {
        Fixture *f = *state;

        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, 0);
        flush_and_collect(f, 0);
}

/* Every field bit at once: sd-bus accepts every name (each is in the vtable and emits changes). */
static void test_changed_all_fields(void **state) {
        Fixture *f = *state;
        char *consts = NULL, *device_xml, *mdev_xml;

        device_xml = xml_changing_properties(DEVICE_IFACE, &consts);
        free(consts);
        mdev_xml = xml_changing_properties(MDEV_IFACE, &consts);
        free(consts);

        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, ~0u);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MDEV, UUID1, ~0u);
        /* PCI_DEVICE_FIELD_MDEV_TYPES is among them: Manager.MdevTypes follows. */
        flush_and_collect(f, 3);
        assert_properties_changed(f, 0, GPU_OBJ, DEVICE_IFACE, device_xml);
        assert_properties_changed(f, 1, MDEV1_OBJ, MDEV_IFACE, mdev_xml);
        assert_properties_changed(f, 2, ROOT, MANAGER_IFACE, "MdevTypes");

        free(device_xml);
        free(mdev_xml);
}

/* added ... changed -> InterfacesAdded only, with the values after the change. */
static void test_added_then_changed(void **state) {
        Fixture *f = *state;
        const char *path;

        path = sysfs_tree_add_pci(f->tree, NEW, 0x8086, 0x1572, 0x020000);
        assert_true(
                has_change(feed(f, "add", "pci", path, NULL), MODEL_CHANGE_ADDED, MODEL_OBJECT_DEVICE, NEW));
        sysfs_tree_bind(f->tree, NEW, "vfio-pci");
        /* The model does report the bind as a change of its own. */
        assert_true(has_change(
                feed(f, "bind", "pci", sysfs_tree_pci_path(f->tree, NEW), NULL), MODEL_CHANGE_CHANGED,
                MODEL_OBJECT_DEVICE, NEW));

        flush_and_collect(f, 2);
        assert_interfaces(f, 0, "InterfacesAdded", NEW_OBJ);
        assert_string_equal(added_string(f, 0, "Driver"), "vfio-pci");
        assert_string_equal(added_string(f, 0, "Address"), NEW);
        assert_properties_changed(f, 1, ROOT, MANAGER_IFACE, "DeviceCount");
        {
                uint32_t count = 0;

                enter_changed_value(f->signals[1], "DeviceCount", "u");
                assert_true(sd_bus_message_read(f->signals[1], "u", &count) > 0);
                assert_int_equal(count, 4);
        }

        /* By hand, too: the kinds are what matter, not the fields. */
        queue(f, MODEL_CHANGE_ADDED, MODEL_OBJECT_DEVICE, GPU, 0);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_DRIVER);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_SRIOV);
        flush_and_collect(f, 1);
        assert_interfaces(f, 0, "InterfacesAdded", GPU_OBJ);
}

/* added ... removed -> nothing: nobody saw it. */
static void test_added_then_removed(void **state) {
        Fixture *f = *state;
        const char *path;

        path = sysfs_tree_add_pci(f->tree, NEW, 0x8086, 0x1572, 0x020000);
        assert_true(
                has_change(feed(f, "add", "pci", path, NULL), MODEL_CHANGE_ADDED, MODEL_OBJECT_DEVICE, NEW));
        sysfs_tree_bind(f->tree, NEW, "vfio-pci");
        feed(f, "bind", "pci", sysfs_tree_pci_path(f->tree, NEW), NULL);
        feed(f, "remove", "pci", sysfs_tree_pci_path(f->tree, NEW), NULL);
        sysfs_tree_remove_pci(f->tree, NEW);
        assert_true(has_change(&f->changes, MODEL_CHANGE_REMOVED, MODEL_OBJECT_DEVICE, NEW));
        flush_and_collect(f, 0);

        /* An mdev too (its parent's available_instances moves and moves back, which is a change). */
        queue(f, MODEL_CHANGE_ADDED, MODEL_OBJECT_MDEV, "0b3e5e3a-1c7a-4f7e-9d3b-2a1f0c9d8e7f", 0);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MDEV, "0b3e5e3a-1c7a-4f7e-9d3b-2a1f0c9d8e7f",
              MDEV_FIELD_DRIVER);
        queue(f, MODEL_CHANGE_REMOVED, MODEL_OBJECT_MDEV, "0b3e5e3a-1c7a-4f7e-9d3b-2a1f0c9d8e7f", 0);
        flush_and_collect(f, 0);
}

/* removed ... added -> InterfacesRemoved, then InterfacesAdded: it is a new object. */
static void test_removed_then_added(void **state) {
        Fixture *f = *state;
        const char *path;
        const char *o;
        uint16_t id = 0;

        feed(f, "remove", "pci", sysfs_tree_pci_path(f->tree, NVME), NULL);
        sysfs_tree_remove_pci(f->tree, NVME);
        assert_true(has_change(&f->changes, MODEL_CHANGE_REMOVED, MODEL_OBJECT_DEVICE, NVME));
        path = sysfs_tree_add_pci(f->tree, NVME, 0x144d, 0xa809, 0x010802);
        assert_true(has_change(
                feed(f, "add", "pci", path, NULL), MODEL_CHANGE_ADDED, MODEL_OBJECT_DEVICE, NVME));

        /* The count is where it was: no Manager signal. */
        flush_and_collect(f, 2);
        assert_interfaces(f, 0, "InterfacesRemoved", NVME_OBJ);
        assert_interfaces(f, 1, "InterfacesAdded", NVME_OBJ);
        free(interfaces_signal(f->signals[1], &o, DEVICE_IFACE, "DeviceId", "q"));
        assert_true(sd_bus_message_read(f->signals[1], "q", &id) > 0);
        assert_int_equal(id, 0xa809);
}

/* ... removed -> InterfacesRemoved, whatever came before. */
static void test_removed(void **state) {
        Fixture *f = *state;

        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_DRIVER);
        feed(f, "remove", "pci", sysfs_tree_pci_path(f->tree, GPU), NULL);
        sysfs_tree_remove_pci(f->tree, GPU);
        flush_and_collect(f, 2);
        assert_interfaces(f, 0, "InterfacesRemoved", GPU_OBJ);
        assert_properties_changed(f, 1, ROOT, MANAGER_IFACE, "DeviceCount");
}

/* An mdev parent that registers and unregisters within one iteration: nobody saw it either. */
static void test_parent_added_then_removed(void **state) {
        Fixture *f = *state;

        sysfs_tree_register_parent(f->tree, MTTY_PATH);
        assert_true(has_change(
                feed(f, "change", "mtty", MTTY_PATH, "registered"), MODEL_CHANGE_ADDED, MODEL_OBJECT_PARENT,
                "mtty"));
        sysfs_tree_unregister_parent(f->tree, MTTY_PATH);
        assert_true(has_change(
                feed(f, "change", "mtty", MTTY_PATH, "unregistered"), MODEL_CHANGE_REMOVED,
                MODEL_OBJECT_PARENT, "mtty"));
        flush_and_collect(f, 0);

        /* Registered for real: Manager.MdevTypes changes. */
        sysfs_tree_register_parent(f->tree, MTTY_PATH);
        feed(f, "change", "mtty", MTTY_PATH, "registered");
        flush_and_collect(f, 1);
        assert_properties_changed(f, 0, ROOT, MANAGER_IFACE, "MdevTypes");

        /* Gone and back in one iteration: its types may differ, so MdevTypes is announced. */
        sysfs_tree_unregister_parent(f->tree, MTTY_PATH);
        feed(f, "change", "mtty", MTTY_PATH, "unregistered");
        sysfs_tree_register_parent(f->tree, MTTY_PATH);
        feed(f, "change", "mtty", MTTY_PATH, "registered");
        flush_and_collect(f, 1);
        assert_properties_changed(f, 0, ROOT, MANAGER_IFACE, "MdevTypes");

        /* Unregistered: MdevTypes again. */
        sysfs_tree_unregister_parent(f->tree, MTTY_PATH);
        feed(f, "change", "mtty", MTTY_PATH, "unregistered");
        flush_and_collect(f, 1);
        assert_properties_changed(f, 0, ROOT, MANAGER_IFACE, "MdevTypes");
}

/* A device that came and went within one iteration does not move Manager.MdevTypes either. */
static void test_device_mdev_types_added_then_removed(void **state) {
        Fixture *f = *state;

        queue(f, MODEL_CHANGE_ADDED, MODEL_OBJECT_DEVICE, NEW, 0);
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, NEW, PCI_DEVICE_FIELD_MDEV_TYPES);
        queue(f, MODEL_CHANGE_REMOVED, MODEL_OBJECT_DEVICE, NEW, 0);
        flush_and_collect(f, 0);

        /* A device that stays does. */
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, IGD, PCI_DEVICE_FIELD_MDEV_TYPES);
        flush_and_collect(f, 2);
        assert_properties_changed(
                f, 0, "/org/hostdevd1/devices/pci_0000_04_00_0", DEVICE_IFACE, "MdevTypes");
        assert_properties_changed(f, 1, ROOT, MANAGER_IFACE, "MdevTypes");
}

/* Manager values are compared with what was announced: only real differences are named. */
static void test_manager(void **state) {
        Fixture *f = *state;

        /* Nothing moved. */
        assert_int_equal(bus_emitter_manager_changed(f->d->ctx.emitter), 0);
        flush_and_collect(f, 0);

        /* A rescan that finds nothing new changes only Rescans. */
        assert_int_equal(intake_rescan(f->d->ctx.intake), 0);
        flush_and_collect(f, 1);
        assert_properties_changed(f, 0, ROOT, MANAGER_IFACE, "Rescans");
        flush_and_collect(f, 0);

        /* An mdev goes: its object, then MdevCount. */
        sysfs_tree_remove_mdev(f->tree, IGD_PATH, UUID1);
        feed(f, "remove", "mdev", IGD_PATH "/" UUID1, NULL);
        assert_true(has_change(&f->changes, MODEL_CHANGE_REMOVED, MODEL_OBJECT_MDEV, UUID1));
        clear_signals(f);
        assert_true(bus_emitter_flush(f->d->ctx.emitter) >= 2);
        collect(f);
        assert_signal(f, 0, "InterfacesRemoved", ROOT);
        {
                const char *o;
                char *ifaces = interfaces_signal(f->signals[0], &o, NULL, NULL, NULL);

                assert_string_equal(o, MDEV1_OBJ);
                assert_string_equal(
                        ifaces,
                        "org.freedesktop.DBus.Introspectable,org.freedesktop.DBus.Peer,"
                        "org.freedesktop.DBus.Properties,org.hostdevd1.Mdev");
                free(ifaces);
        }
        /* Last: the Manager, naming MdevCount (and MdevTypes if the parent's instances moved). */
        {
                const char *iface;
                char *names;

                assert_signal(f, f->n_signals - 1, "PropertiesChanged", ROOT);
                names = properties_changed_names(f->signals[f->n_signals - 1], &iface);
                assert_string_equal(iface, MANAGER_IFACE);
                assert_true(strncmp(names, "MdevCount", strlen("MdevCount")) == 0);
                free(names);
        }
}

/* The reconciler's status goes out through the same flush: after the model's signals, one
 * PropertiesChanged per function however often it was queued, none for a function that is gone,
 * and the Manager's status names merged into the Manager's one signal. */
static void test_status(void **state) {
        Fixture *f = *state;
        char *const manager_names[] = { (char *)"State", (char *)"Generation", NULL };
        char *const again[] = { (char *)"State", NULL };
        const char *iface;
        char *names;

        assert_int_equal(bus_emitter_queue_status(f->d->ctx.emitter, GPU), 0);
        assert_int_equal(bus_emitter_queue_status(f->d->ctx.emitter, GPU), 0);
        assert_int_equal(
                bus_emitter_queue_status(f->d->ctx.emitter, "0000:7f:00.0"), 0); /* not in the model */
        assert_int_equal(bus_emitter_queue_manager_status(f->d->ctx.emitter, manager_names), 0);
        assert_int_equal(bus_emitter_queue_manager_status(f->d->ctx.emitter, again), 0);
        /* A model change of another function in the same iteration. */
        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, NVME, PCI_DEVICE_FIELD_DRIVER);
        flush_and_collect(f, 3);
        assert_properties_changed(f, 0, NVME_OBJ, DEVICE_IFACE, "Driver,VfioDevice,VfioGroup");
        names = properties_changed_names(f->signals[1], &iface);
        assert_string_equal(iface, MANAGER_IFACE);
        assert_string_equal(names, "Generation,State");
        free(names);
        assert_properties_changed(
                f, 2, GPU_OBJ, DEVICE_IFACE, "DesiredDriver,DesiredSource,LastError,State,StateReason");
        /* Nothing is left over. */
        flush_and_collect(f, 0);

        /* Queued, then the function goes before the flush: only its removal is announced. */
        assert_int_equal(bus_emitter_queue_status(f->d->ctx.emitter, GPU), 0);
        feed(f, "remove", "pci", sysfs_tree_pci_path(f->tree, GPU), NULL);
        sysfs_tree_remove_pci(f->tree, GPU);
        flush_and_collect(f, 2);
        assert_interfaces(f, 0, "InterfacesRemoved", GPU_OBJ);
        assert_properties_changed(f, 1, ROOT, MANAGER_IFACE, "DeviceCount");
}

/* Received uevents wait in the queue: applied one per loop iteration, in order, a refresh of a
 * function with a queued event adds nothing, a flush applies them all at once, and past the cap
 * the daemon rescans instead. */
static void test_uevent_queue(void **state) {
        Fixture *f = *state;
        const PciDevice *dev;
        size_t last;
        uint64_t rescans;

        sysfs_tree_bind(f->tree, GPU, NULL);
        assert_int_equal(
                intake_queue_uevent(
                        f->d->ctx.intake, "unbind", "pci", sysfs_tree_pci_path(f->tree, GPU), GPU, NULL),
                0);
        sysfs_tree_bind(f->tree, GPU, "vfio-pci");
        assert_int_equal(
                intake_queue_uevent(
                        f->d->ctx.intake, "bind", "pci", sysfs_tree_pci_path(f->tree, GPU), GPU, NULL),
                0);
        assert_int_equal(intake_queued(f->d->ctx.intake), 2);
        /* Not applied yet. */
        dev = model_get_device(f->d->ctx.model, GPU);
        assert_non_null(dev);
        assert_string_equal(dev->driver, "nouveau");

        intake_queue_refresh(f->d->ctx.intake, GPU); /* the queued "unbind" re-reads it */
        assert_int_equal(intake_queued(f->d->ctx.intake), 2);
        intake_queue_refresh(f->d->ctx.intake, NVME);
        assert_int_equal(intake_queued(f->d->ctx.intake), 3);

        /* One per iteration. */
        last = intake_queued(f->d->ctx.intake);
        for (unsigned i = 0; i < 200 && intake_queued(f->d->ctx.intake) > 0; i++) {
                assert_true(sd_event_run(f->d->ctx.event, 100 * 1000) >= 0);
                assert_true(last - intake_queued(f->d->ctx.intake) <= 1);
                last = intake_queued(f->d->ctx.intake);
        }
        assert_int_equal(intake_queued(f->d->ctx.intake), 0);
        dev = model_get_device(f->d->ctx.model, GPU);
        assert_string_equal(dev->driver, "vfio-pci");

        /* A flush applies what waits, now. */
        sysfs_tree_bind(f->tree, GPU, NULL);
        assert_int_equal(
                intake_queue_uevent(
                        f->d->ctx.intake, "unbind", "pci", sysfs_tree_pci_path(f->tree, GPU), GPU, NULL),
                0);
        assert_int_equal(intake_queued(f->d->ctx.intake), 1);
        intake_flush(f->d->ctx.intake);
        assert_int_equal(intake_queued(f->d->ctx.intake), 0);
        dev = model_get_device(f->d->ctx.model, GPU);
        assert_null(dev->driver);

        /* Past the cap: dropped for a rescan, which reads what they would have. */
        sysfs_tree_bind(f->tree, GPU, "vfio-pci");
        rescans = intake_rescans(f->d->ctx.intake);
        for (unsigned i = 0; i < INTAKE_MAX_QUEUED_UEVENTS; i++)
                assert_int_equal(
                        intake_queue_uevent(
                                f->d->ctx.intake, "change", "pci", sysfs_tree_pci_path(f->tree, NVME), NVME,
                                NULL),
                        0);
        assert_int_equal(intake_queued(f->d->ctx.intake), INTAKE_MAX_QUEUED_UEVENTS);
        assert_true(
                intake_queue_uevent(
                        f->d->ctx.intake, "change", "pci", sysfs_tree_pci_path(f->tree, NVME), NVME, NULL) >=
                0);
        assert_int_equal(intake_queued(f->d->ctx.intake), 0);
        assert_int_equal(intake_rescans(f->d->ctx.intake), rescans + 1);
        dev = model_get_device(f->d->ctx.model, GPU);
        assert_string_equal(dev->driver, "vfio-pci");
}

/* The flush runs by itself on the loop, once for everything queued before the iteration. */
static void test_flush_on_loop(void **state) {
        Fixture *f = *state;
        bool got = false;

        /* Two uevents before the loop runs, as one monitor wakeup delivers them. */
        sysfs_tree_bind(f->tree, GPU, NULL);
        assert_true(
                intake_handle_uevent(
                        f->d->ctx.intake, "unbind", "pci", sysfs_tree_pci_path(f->tree, GPU), GPU, NULL) >
                0);
        sysfs_tree_write(f->tree, sysfs_tree_pci_path(f->tree, GPU), "driver_override", "vfio-pci\n");
        sysfs_tree_bind(f->tree, GPU, "vfio-pci");
        assert_true(
                intake_handle_uevent(
                        f->d->ctx.intake, "bind", "pci", sysfs_tree_pci_path(f->tree, GPU), GPU, NULL) > 0);

        clear_signals(f);
        for (unsigned i = 0; i < 200 && !got; i++) {
                assert_true(sd_event_run(f->d->ctx.event, 100 * 1000) >= 0);
                got = f->n_signals > 0;
        }
        assert_true(got);
        /* Already flushed by the loop. */
        assert_int_equal(bus_emitter_flush(f->d->ctx.emitter), 0);
        collect(f);
        assert_int_equal(f->n_signals, 1);
        assert_properties_changed(f, 0, GPU_OBJ, DEVICE_IFACE, "Driver,DriverOverride,VfioDevice,VfioGroup");
        {
                const char *v = NULL;

                enter_changed_value(f->signals[0], "Driver", "s");
                assert_true(sd_bus_message_read(f->signals[0], "s", &v) > 0);
                assert_string_equal(v, "vfio-pci");
        }

        /* Idle: the flush source is off again, nothing else is pending, the loop has nothing to do. */
        assert_int_equal(sd_event_run(f->d->ctx.event, 0), 0);
}

/* Without a bus connection nothing is sent and nothing piles up. */
static void test_no_bus(void **state) {
        Fixture *f = *state;
        sd_bus *bus = f->d->ctx.bus;

        queue(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_DRIVER);
        f->d->ctx.bus = NULL;
        assert_int_equal(bus_emitter_flush(f->d->ctx.emitter), 0);
        f->d->ctx.bus = bus;
        flush_and_collect(f, 0);
}

/* ---- errors over the bus: the message names the value ---- */

typedef struct Reply {
        bool done;
        char *error_name, *error_message, *path;
} Reply;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Reply *r = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        r->done = true;
        if (e) {
                r->error_name = strdup(e->name);
                r->error_message = strdup(e->message);
        } else {
                const char *p;

                assert_true(sd_bus_message_read(m, "o", &p) > 0);
                r->path = strdup(p);
        }
        return 0;
}

static void call(Fixture *f, const char *method, const char *arg, Reply *r) {
        memset(r, 0, sizeof(*r));
        assert_true(
                sd_bus_call_method_async(
                        f->client, NULL, NULL, ROOT, MANAGER_IFACE, method, on_reply, r, "s", arg) >= 0);
        run_until(f, &r->done);
}

static void reply_done(Reply *r) {
        free(r->error_name);
        free(r->error_message);
        free(r->path);
}

static void test_method_errors(void **state) {
        Fixture *f = *state;
        Reply r;

        call(f, "GetDeviceByAddress", "01:00.0", &r);
        assert_null(r.error_name);
        assert_string_equal(r.path, GPU_OBJ);
        reply_done(&r);

        call(f, "GetDeviceByAddress", "bogus", &r);
        assert_string_equal(r.error_name, "org.hostdevd1.Error.InvalidArgument");
        assert_non_null(strstr(r.error_message, "'bogus'"));
        reply_done(&r);

        call(f, "GetDeviceByAddress", "0000:09:00.0", &r);
        assert_string_equal(r.error_name, "org.hostdevd1.Error.NotFound");
        assert_non_null(strstr(r.error_message, "'0000:09:00.0'"));
        reply_done(&r);

        call(f, "GetMdevByUuid", "83B8F4F2-509F-382F-3C1E-E6BFE0FA1001", &r);
        assert_null(r.error_name);
        assert_string_equal(r.path, MDEV1_OBJ);
        reply_done(&r);

        call(f, "GetMdevByUuid", "not-a-uuid", &r);
        assert_string_equal(r.error_name, "org.hostdevd1.Error.InvalidArgument");
        assert_non_null(strstr(r.error_message, "'not-a-uuid'"));
        reply_done(&r);

        call(f, "GetMdevByUuid", "0b3e5e3a-1c7a-4f7e-9d3b-2a1f0c9d8e7f", &r);
        assert_string_equal(r.error_name, "org.hostdevd1.Error.NotFound");
        assert_non_null(strstr(r.error_message, "'0b3e5e3a-1c7a-4f7e-9d3b-2a1f0c9d8e7f'"));
        reply_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_device_field_names),
                cmocka_unit_test(test_device_fields_cover_xml),
                cmocka_unit_test(test_mdev_field_names),
                cmocka_unit_test_setup_teardown(test_changed_union, setup, teardown),
                cmocka_unit_test_setup_teardown(test_changed_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_changed_no_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_changed_all_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_added_then_changed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_added_then_removed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_removed_then_added, setup, teardown),
                cmocka_unit_test_setup_teardown(test_removed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parent_added_then_removed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_device_mdev_types_added_then_removed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_manager, setup, teardown),
                cmocka_unit_test_setup_teardown(test_flush_on_loop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_uevent_queue, setup, teardown),
                cmocka_unit_test_setup_teardown(test_intake_hold_mdevs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_bus, setup, teardown),
                cmocka_unit_test_setup_teardown(test_method_errors, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
