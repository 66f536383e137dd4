/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pci/pci.h>

#include "model.h"
#include "strv.h"
#include "sysfs-tree.h"

/*
 * Topology:
 *   0000:00:00.0 host bridge            group 0
 *   0000:01:00.0 GPU (nouveau)          group 1, boot_vga
 *   0000:01:00.1 GPU audio              group 1
 *   0000:02:00.0 NVMe (nvme)            group 2, slot "5", DSN
 *   0000:03:00.0 X710 PF (i40e)         group 3, VFs 0000:03:02.0 (group 4), 0000:03:02.1 (group 5)
 *   0000:04:00.0 GVT-g GPU (i915)       group 6, mdev parent with 2 types, one mdev (group 7)
 *   0000:05:00.0 vendor "zz"            no group
 *   mtty                                 non-PCI mdev parent, 2 types
 */
#define HOST "0000:00:00.0"
#define GPU "0000:01:00.0"
#define AUDIO "0000:01:00.1"
#define NVME "0000:02:00.0"
#define PF "0000:03:00.0"
#define VF0 "0000:03:02.0"
#define VF1 "0000:03:02.1"
#define VF2 "0000:03:02.2"
#define IGD "0000:04:00.0"
#define BAD "0000:05:00.0"
#define IGD_PATH "/sys/devices/pci0000:04/0000:04:00.0"
#define MTTY_PATH "/sys/devices/virtual/mtty/mtty"
#define UUID1 "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"
#define UUID2 "0b3e5e3a-1c7a-4f7e-9d3b-2a1f0c9d8e7f"

typedef struct Fixture {
        SysfsTree *tree;
        struct pci_access *pacc;
        Model *model;
        ModelChangeList changes;
} Fixture;

static void quiet(char *msg, ...) {
}

static void build_topology(SysfsTree *t) {
        const char *p;

        sysfs_tree_add_pci(t, HOST, 0x8086, 0x1237, 0x060000);
        sysfs_tree_set_group(t, HOST, 0);

        p = sysfs_tree_add_pci(t, GPU, 0x10de, 0x1eb8, 0x030000);
        sysfs_tree_write(t, p, "boot_vga", "1\n");
        sysfs_tree_write(t, p, "reset_method", "flr bus\n");
        sysfs_tree_set_group(t, GPU, 1);
        sysfs_tree_bind(t, GPU, "nouveau");
        sysfs_tree_add_pci(t, AUDIO, 0x10de, 0x10f8, 0x040300);
        sysfs_tree_set_group(t, AUDIO, 1);
        sysfs_tree_bind(t, AUDIO, "snd_hda_intel");

        sysfs_tree_add_pci(t, NVME, 0x144d, 0xa808, 0x010802);
        sysfs_tree_set_group(t, NVME, 2);
        sysfs_tree_bind(t, NVME, "nvme");
        sysfs_tree_add_slot(t, "5", "0000:02:00");
        sysfs_tree_set_serial(t, NVME, UINT64_C(0x002538b381b0a1c2));

        sysfs_tree_add_pci(t, PF, 0x8086, 0x1572, 0x020000);
        sysfs_tree_set_group(t, PF, 3);
        sysfs_tree_bind(t, PF, "i40e");
        sysfs_tree_make_pf(t, PF, 4);
        sysfs_tree_add_vf(t, PF, 0, VF0, 0x154c);
        sysfs_tree_set_group(t, VF0, 4);
        sysfs_tree_add_vf(t, PF, 1, VF1, 0x154c);
        sysfs_tree_set_group(t, VF1, 5);

        sysfs_tree_add_pci(t, IGD, 0x8086, 0x3e92, 0x030000);
        sysfs_tree_set_group(t, IGD, 6);
        sysfs_tree_bind(t, IGD, "i915");
        sysfs_tree_add_mdev_type(t, IGD_PATH, "i915-GVTg_V5_4", "GVTg_V5_4", 0);
        sysfs_tree_add_mdev_type(t, IGD_PATH, "i915-GVTg_V5_8", "GVTg_V5_8", 1);
        sysfs_tree_register_parent(t, IGD_PATH);
        sysfs_tree_add_mdev(t, IGD_PATH, UUID1, "i915-GVTg_V5_4", 7);

        p = sysfs_tree_add_pci(t, BAD, 0x1234, 0x5678, 0x020000);
        sysfs_tree_write(t, p, "vendor", "zz\n");

        sysfs_tree_mkdir(t, MTTY_PATH);
        sysfs_tree_add_mdev_type(t, MTTY_PATH, "mtty-1", "Single-port-serial", 24);
        sysfs_tree_add_mdev_type(t, MTTY_PATH, "mtty-2", "Dual-port-serial", 12);
        sysfs_tree_register_parent(t, MTTY_PATH);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        f->tree = sysfs_tree_new();
        build_topology(f->tree);
        f->pacc = pci_alloc();
        f->pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        f->pacc->warning = quiet; /* "Cannot open config" noise from functions without one */
        pci_init(f->pacc);
        assert_int_equal(model_new(f->pacc, &f->model), 0);
        assert_int_equal(model_enumerate(f->model, NULL), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        model_change_list_done(&f->changes);
        model_free(f->model);
        pci_cleanup(f->pacc);
        sysfs_tree_free(f->tree);
        free(f);
        return 0;
}

/* The invariant of model.h: the event-maintained model equals a fresh enumeration. */
static void assert_model_fresh(Fixture *f) {
        Model *fresh = NULL;

        assert_int_equal(model_new(f->pacc, &fresh), 0);
        assert_int_equal(model_enumerate(fresh, NULL), 0);
        if (!model_equal(f->model, fresh)) {
                size_t na, nb;
                const PciDevice *const *a = model_get_devices(f->model, &na);
                const PciDevice *const *b = model_get_devices(fresh, &nb);

                print_message("devices %zu vs fresh %zu\n", na, nb);
                for (size_t i = 0; i < na && i < nb; i++)
                        if (pci_device_diff(a[i], b[i]))
                                print_message(
                                        "%s vs %s differ: 0x%x\n", a[i]->address, b[i]->address,
                                        pci_device_diff(a[i], b[i]));
                fail_msg("model differs from a fresh enumeration");
        }
        model_free(fresh);
}

static int event(
        Fixture *f, const char *action, const char *subsystem, const char *syspath, const char *mdev_state) {
        const char *sysname = strrchr(syspath, '/') + 1;

        model_change_list_clear(&f->changes);
        return model_handle_uevent(f->model, action, subsystem, syspath, sysname, mdev_state, &f->changes);
}

static int pci_event(Fixture *f, const char *action, const char *address) {
        char path[256];

        snprintf(path, sizeof(path), "%s", sysfs_tree_pci_path(f->tree, address));
        return event(f, action, "pci", path, NULL);
}

static const ModelChange *find_change(Fixture *f, ModelObjectKind object, const char *key) {
        for (size_t i = 0; i < f->changes.n; i++)
                if (f->changes.changes[i].object == object && streq(f->changes.changes[i].key, key))
                        return &f->changes.changes[i];
        return NULL;
}

static void assert_change(
        Fixture *f, ModelChangeKind kind, ModelObjectKind object, const char *key, unsigned fields) {
        const ModelChange *c = find_change(f, object, key);

        if (!c)
                fail_msg("no change record for %d '%s'", object, key);
        assert_int_equal(c->kind, kind);
        assert_int_equal(c->fields, fields);
}

static void test_enumerate(void **state) {
        Fixture *f = *state;
        const PciDevice *d;
        const Mdev *m;
        const MdevParent *p;
        char **peers = NULL;
        size_t n;

        model_get_devices(f->model, &n);
        assert_int_equal(n, 9);
        model_get_mdevs(f->model, &n);
        assert_int_equal(n, 1);
        model_get_mdev_parents(f->model, &n);
        assert_int_equal(n, 2);
        assert_true(model_iommu_enabled(f->model));
        assert_string_equal(model_iommu_reason(f->model), "");

        d = model_get_device(f->model, GPU);
        assert_non_null(d);
        assert_string_equal(d->driver, "nouveau");
        assert_true(d->boot_vga);
        assert_int_equal(model_get_iommu_group_peers(f->model, GPU, &peers), 0);
        assert_int_equal(strv_length(peers), 1);
        assert_string_equal(peers[0], AUDIO);
        strv_free(peers);
        assert_int_equal(model_get_iommu_group_peers(f->model, NVME, &peers), 0);
        assert_null(peers);
        assert_int_equal(model_get_iommu_group_peers(f->model, "0000:99:00.0", &peers), -ENOENT);

        d = model_get_device(f->model, "02:00.0"); /* short form looks up too */
        assert_non_null(d);
        assert_string_equal(d->physical_slot, "5");
        assert_true(d->has_serial);
        assert_true(d->serial == UINT64_C(0x002538b381b0a1c2));

        d = model_get_device(f->model, PF);
        assert_int_equal(d->sriov_role, SRIOV_ROLE_PF);
        assert_int_equal(d->sriov_num_vfs, 2);
        assert_int_equal(strv_length(d->virtfns), 2);
        d = model_get_device(f->model, VF1);
        assert_int_equal(d->vf_index, 1);
        assert_string_equal(d->physfn, PF);

        d = model_get_device(f->model, IGD);
        assert_int_equal(d->n_mdev_types, 2);
        m = model_get_mdev(f->model, UUID1);
        assert_non_null(m);
        assert_string_equal(m->parent, IGD);
        assert_true(m->parent_is_pci);
        p = model_get_mdev_parent(f->model, "mtty");
        assert_non_null(p);
        assert_false(p->is_pci);
        assert_int_equal(p->n_types, 2);
        assert_non_null(model_get_mdev_parent(f->model, IGD));

        /* the garbage vendor is recorded on the device; everything else was read */
        d = model_get_device(f->model, BAD);
        assert_non_null(d);
        assert_int_equal(strv_length(d->errors), 1);
        assert_string_equal(d->errors[0], "vendor: invalid hex value 'zz'");
        assert_int_equal(d->device_id, 0x5678);

        /* sorted by address */
        const PciDevice *const *all = model_get_devices(f->model, &n);
        assert_string_equal(all[0]->address, HOST);
        assert_string_equal(all[8]->address, BAD);
        assert_model_fresh(f);
}

static void test_iommu_disabled(void **state) {
        SysfsTree *t = sysfs_tree_new();
        Model *m = NULL;

        sysfs_tree_add_pci(t, NVME, 0x144d, 0xa808, 0x010802);
        assert_int_equal(model_new(NULL, &m), 0);
        assert_int_equal(model_enumerate(m, NULL), 0);
        assert_false(model_iommu_enabled(m));
        assert_non_null(strstr(model_iommu_reason(m), "intel_iommu=on"));
        model_free(m);
        sysfs_tree_free(t);
}

static void test_add_remove(void **state) {
        Fixture *f = *state;
        const char *p;

        /* a new function in the GPU's group: peers learn about it */
        p = sysfs_tree_add_pci(f->tree, "0000:01:00.2", 0x10de, 0x1ad8, 0x0c0330);
        (void)p;
        sysfs_tree_set_group(f->tree, "0000:01:00.2", 1);
        assert_int_equal(pci_event(f, "add", "0000:01:00.2"), 1);
        assert_change(f, MODEL_CHANGE_ADDED, MODEL_OBJECT_DEVICE, "0000:01:00.2", 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_IOMMU_PEERS);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, AUDIO, PCI_DEVICE_FIELD_IOMMU_PEERS);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MANAGER, "", 0);
        assert_int_equal(f->changes.n, 4);
        assert_model_fresh(f);

        /* a repeated add changes nothing */
        assert_int_equal(pci_event(f, "add", "0000:01:00.2"), 0);
        assert_int_equal(f->changes.n, 0);

        /* remove: the uevent comes while the directory may still exist; drop it anyway */
        assert_int_equal(pci_event(f, "remove", "0000:01:00.2"), 1);
        assert_change(f, MODEL_CHANGE_REMOVED, MODEL_OBJECT_DEVICE, "0000:01:00.2", 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_IOMMU_PEERS);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MANAGER, "", 0);
        assert_null(model_get_device(f->model, "0000:01:00.2"));
        sysfs_tree_remove_pci(f->tree, "0000:01:00.2");
        assert_model_fresh(f);

        /* removing the last group member leaves no group: IOMMU state refreshed */
        sysfs_tree_remove_pci(f->tree, NVME);
        assert_int_equal(pci_event(f, "remove", NVME), 1);
        assert_change(f, MODEL_CHANGE_REMOVED, MODEL_OBJECT_DEVICE, NVME, 0);
        assert_model_fresh(f);
}

static void test_bind_unbind_change(void **state) {
        Fixture *f = *state;
        const char *path;

        /* unbind nouveau, set driver_override, bind vfio-pci */
        sysfs_tree_bind(f->tree, GPU, NULL);
        assert_int_equal(pci_event(f, "unbind", GPU), 1);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_DRIVER);
        assert_int_equal(f->changes.n, 1);
        assert_null(model_get_device(f->model, GPU)->driver);
        assert_model_fresh(f);

        path = sysfs_tree_pci_path(f->tree, GPU);
        sysfs_tree_write(f->tree, path, "driver_override", "vfio-pci\n");
        assert_int_equal(pci_event(f, "change", GPU), 1);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_DRIVER_OVERRIDE);
        assert_model_fresh(f);

        sysfs_tree_bind(f->tree, GPU, "vfio-pci");
        assert_int_equal(pci_event(f, "bind", GPU), 1);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_DRIVER);
        assert_string_equal(model_get_device(f->model, GPU)->vfio_group, "/dev/vfio/1");
        assert_model_fresh(f);

        /* an event that changed nothing */
        assert_int_equal(pci_event(f, "change", GPU), 0);
        assert_int_equal(f->changes.n, 0);

        /* a group change marks old and new group members */
        sysfs_tree_set_group(f->tree, AUDIO, 2);
        assert_int_equal(pci_event(f, "change", AUDIO), 1);
        assert_change(
                f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, AUDIO,
                PCI_DEVICE_FIELD_IOMMU_GROUP | PCI_DEVICE_FIELD_IOMMU_PEERS);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_IOMMU_PEERS);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, NVME, PCI_DEVICE_FIELD_IOMMU_PEERS);
        assert_null(find_change(f, MODEL_OBJECT_DEVICE, PF));
        assert_model_fresh(f);
}

static void test_invalid(void **state) {
        Fixture *f = *state;

        sysfs_tree_bind(f->tree, GPU, NULL); /* the model must not notice */
        assert_int_equal(event(f, "frobnicate", "pci", sysfs_tree_pci_path(f->tree, GPU), NULL), -EINVAL);
        assert_int_equal(event(f, "", "pci", sysfs_tree_pci_path(f->tree, GPU), NULL), -EINVAL);
        assert_int_equal(
                model_handle_uevent(f->model, NULL, "pci", "/sys/devices/x", "x", NULL, &f->changes),
                -EINVAL);
        assert_int_equal(
                model_handle_uevent(f->model, "add", "pci", NULL, NULL, NULL, &f->changes), -EINVAL);
        assert_int_equal(f->changes.n, 0);
        assert_string_equal(model_get_device(f->model, GPU)->driver, "nouveau");

        /* uninteresting: a pci_bus object, an unknown subsystem device, an unknown mdev */
        assert_int_equal(event(f, "add", "pci", "/sys/devices/pci0000:01/pci_bus/0000:01", NULL), 0);
        assert_int_equal(event(f, "add", "block", "/sys/devices/virtual/block/loop0", NULL), 0);
        assert_int_equal(event(f, "remove", "mdev", "/sys/devices/virtual/x/" UUID2, NULL), 0);
        assert_int_equal(f->changes.n, 0);
}

static void test_move(void **state) {
        Fixture *f = *state;

        /* the kernel reparents the NVMe function (device_move): new syspath, same name */
        sysfs_tree_rm_rf(f->tree, "/sys/devices/pci0000:02/0000:02:00.0");
        sysfs_tree_add_pci(f->tree, "0000:02:00.0", 0x144d, 0xa808, 0x010802);
        /* build it under the new parent by hand: move the dir and relink the bus */
        sysfs_tree_rm_rf(f->tree, "/sys/devices/pci0000:02/0000:02:00.0");
        sysfs_tree_mkdir(f->tree, "/sys/devices/pci0000:02/0000:02:01.0");
        {
                const char *np = "/sys/devices/pci0000:02/0000:02:01.0/0000:02:00.0";
                sysfs_tree_write(f->tree, np, "vendor", "0x144d\n");
                sysfs_tree_write(f->tree, np, "device", "0xa808\n");
                sysfs_tree_write(f->tree, np, "subsystem_vendor", "0x144d\n");
                sysfs_tree_write(f->tree, np, "subsystem_device", "0x1234\n");
                sysfs_tree_write(f->tree, np, "class", "0x010802\n");
                sysfs_tree_symlink(f->tree, "/sys/bus/pci/devices/0000:02:00.0", np);
                sysfs_tree_rm_rf(f->tree, "/sys/kernel/iommu_groups/2/devices/0000:02:00.0");
                assert_int_equal(event(f, "move", "pci", np, NULL), 1);
        }
        const ModelChange *c = find_change(f, MODEL_OBJECT_DEVICE, NVME);
        assert_non_null(c);
        assert_int_equal(c->kind, MODEL_CHANGE_CHANGED);
        assert_true(c->fields & PCI_DEVICE_FIELD_SYSPATH);
        assert_string_equal(
                model_get_device(f->model, NVME)->syspath,
                "/sys/devices/pci0000:02/0000:02:01.0/0000:02:00.0");
        assert_model_fresh(f);
}

static void test_vfs(void **state) {
        Fixture *f = *state;

        /* sriov_numvfs 2 -> 3: the VF appears, the PF's numvfs/virtfns change with it */
        sysfs_tree_add_vf(f->tree, PF, 2, VF2, 0x154c);
        sysfs_tree_set_group(f->tree, VF2, 8);
        assert_int_equal(pci_event(f, "add", VF2), 1);
        assert_change(f, MODEL_CHANGE_ADDED, MODEL_OBJECT_DEVICE, VF2, 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, PF, PCI_DEVICE_FIELD_SRIOV);
        assert_int_equal(model_get_device(f->model, PF)->sriov_num_vfs, 3);
        assert_int_equal(model_get_device(f->model, VF2)->vf_index, 2);
        assert_model_fresh(f);

        sysfs_tree_remove_vf(f->tree, PF, 2, VF2);
        assert_int_equal(pci_event(f, "remove", VF2), 1);
        assert_change(f, MODEL_CHANGE_REMOVED, MODEL_OBJECT_DEVICE, VF2, 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, PF, PCI_DEVICE_FIELD_SRIOV);
        assert_int_equal(strv_length(model_get_device(f->model, PF)->virtfns), 2);
        assert_model_fresh(f);
}

static void test_mdevs(void **state) {
        Fixture *f = *state;
        char path[256];

        /* create an mdev on the PCI parent: one instance of the type is used up */
        sysfs_tree_add_mdev(f->tree, IGD_PATH, UUID2, "i915-GVTg_V5_8", 9);
        sysfs_tree_set_available(f->tree, IGD_PATH, "i915-GVTg_V5_8", 0);
        snprintf(path, sizeof(path), "%s/%s", IGD_PATH, UUID2);
        assert_int_equal(event(f, "add", "mdev", path, NULL), 1);
        assert_change(f, MODEL_CHANGE_ADDED, MODEL_OBJECT_MDEV, UUID2, 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_PARENT, IGD, 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, IGD, PCI_DEVICE_FIELD_MDEV_TYPES);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MANAGER, "", 0);
        assert_int_equal(model_get_mdev_parent(f->model, IGD)->types[1].available_instances, 0);
        assert_model_fresh(f);

        /* unbind the mdev's driver */
        sysfs_tree_rm_rf(f->tree, IGD_PATH "/" UUID2 "/driver");
        assert_int_equal(event(f, "unbind", "mdev", path, NULL), 1);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MDEV, UUID2, MDEV_FIELD_DRIVER);
        assert_model_fresh(f);

        /* remove it again */
        sysfs_tree_remove_mdev(f->tree, IGD_PATH, UUID2);
        sysfs_tree_set_available(f->tree, IGD_PATH, "i915-GVTg_V5_8", 1);
        assert_int_equal(event(f, "remove", "mdev", path, NULL), 1);
        assert_change(f, MODEL_CHANGE_REMOVED, MODEL_OBJECT_MDEV, UUID2, 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_PARENT, IGD, 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, IGD, PCI_DEVICE_FIELD_MDEV_TYPES);
        assert_null(model_get_mdev(f->model, UUID2));
        assert_model_fresh(f);

        /* an mdev on the non-PCI parent */
        sysfs_tree_add_mdev(f->tree, MTTY_PATH, UUID2, "mtty-2", -1);
        sysfs_tree_set_available(f->tree, MTTY_PATH, "mtty-2", 11);
        snprintf(path, sizeof(path), "%s/%s", MTTY_PATH, UUID2);
        assert_int_equal(event(f, "add", "mdev", path, NULL), 1);
        assert_change(f, MODEL_CHANGE_ADDED, MODEL_OBJECT_MDEV, UUID2, 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_PARENT, "mtty", 0);
        assert_string_equal(model_get_mdev(f->model, UUID2)->parent, "mtty");
        assert_model_fresh(f);
}

/* The batch read of mdevs whose uevents were held (model_refresh_mdevs()): each parent once. */
static void test_refresh_mdevs(void **state) {
        Fixture *f = *state;
        static const char *const created[] = {
                "6f1d2a3b-0000-4000-8000-00000000be00",
                "6f1d2a3b-0000-4000-8000-00000000be01",
                "6f1d2a3b-0000-4000-8000-00000000be02",
        };
        char *uuids[] = { (char *)created[0],
                          (char *)created[1],
                          (char *)created[2],
                          (char *)UUID1,
                          (char *)"not-a-uuid",
                          (char *)UUID2,
                          NULL };
        size_t n_parent = 0, n_mdev = 0;

        /* three new mdevs on mtty, the IGD's one gone; UUID2 never existed */
        for (size_t i = 0; i < ELEMENTSOF(created); i++)
                sysfs_tree_add_mdev(f->tree, MTTY_PATH, created[i], "mtty-1", -1);
        sysfs_tree_set_available(f->tree, MTTY_PATH, "mtty-1", 21);
        sysfs_tree_remove_mdev(f->tree, IGD_PATH, UUID1);
        sysfs_tree_set_available(f->tree, IGD_PATH, "i915-GVTg_V5_4", 1);

        model_change_list_clear(&f->changes);
        assert_int_equal(model_refresh_mdevs(f->model, uuids, &f->changes), 1);
        for (size_t i = 0; i < ELEMENTSOF(created); i++) {
                assert_change(f, MODEL_CHANGE_ADDED, MODEL_OBJECT_MDEV, created[i], 0);
                assert_string_equal(model_get_mdev(f->model, created[i])->type_id, "mtty-1");
        }
        assert_change(f, MODEL_CHANGE_REMOVED, MODEL_OBJECT_MDEV, UUID1, 0);
        assert_null(find_change(f, MODEL_OBJECT_MDEV, UUID2));
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_PARENT, "mtty", 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_PARENT, IGD, 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, IGD, PCI_DEVICE_FIELD_MDEV_TYPES);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MANAGER, "", 0);
        /* one record per parent, however many of its mdevs came or went */
        for (size_t i = 0; i < f->changes.n; i++) {
                n_parent += f->changes.changes[i].object == MODEL_OBJECT_PARENT;
                n_mdev += f->changes.changes[i].object == MODEL_OBJECT_MDEV;
        }
        assert_int_equal(n_parent, 2);
        assert_int_equal(n_mdev, 4);
        assert_int_equal(model_get_mdev_parent(f->model, "mtty")->types[0].available_instances, 21);
        assert_model_fresh(f);

        /* nothing changed since: a second read changes nothing */
        model_change_list_clear(&f->changes);
        assert_int_equal(model_refresh_mdevs(f->model, uuids, &f->changes), 0);
        assert_int_equal(f->changes.n, 0);
        assert_int_equal(model_refresh_mdevs(f->model, NULL, &f->changes), 0);
}

static void test_parent_state(void **state) {
        Fixture *f = *state;

        /* mtty unloads: MDEV_STATE=unregistered on the parent's change event */
        sysfs_tree_unregister_parent(f->tree, MTTY_PATH);
        assert_int_equal(event(f, "change", "mtty", MTTY_PATH, "unregistered"), 1);
        assert_change(f, MODEL_CHANGE_REMOVED, MODEL_OBJECT_PARENT, "mtty", 0);
        assert_null(model_get_mdev_parent(f->model, "mtty"));
        assert_model_fresh(f);

        sysfs_tree_register_parent(f->tree, MTTY_PATH);
        assert_int_equal(event(f, "change", "mtty", MTTY_PATH, "registered"), 1);
        assert_change(f, MODEL_CHANGE_ADDED, MODEL_OBJECT_PARENT, "mtty", 0);
        assert_model_fresh(f);

        /* a PCI parent unregisters (its driver unbinds the mdev parent) */
        sysfs_tree_unregister_parent(f->tree, IGD_PATH);
        sysfs_tree_remove_mdev(f->tree, IGD_PATH, UUID1);
        assert_int_equal(event(f, "remove", "mdev", IGD_PATH "/" UUID1, NULL), 1);
        sysfs_tree_rm_rf(f->tree, IGD_PATH "/mdev_supported_types");
        assert_int_equal(event(f, "change", "pci", IGD_PATH, "unregistered"), 1);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, IGD, PCI_DEVICE_FIELD_MDEV_TYPES);
        assert_null(model_get_device(f->model, IGD)->mdev_types);
        assert_null(model_get_mdev_parent(f->model, IGD));
        assert_model_fresh(f);
}

static void test_rescan(void **state) {
        Fixture *f = *state;

        /* events lost (ENOBUFS): several changes at once, one rescan reports them */
        sysfs_tree_bind(f->tree, NVME, NULL);
        sysfs_tree_remove_pci(f->tree, AUDIO);
        sysfs_tree_add_pci(f->tree, "0000:06:00.0", 0x8086, 0x10d3, 0x020000);
        model_change_list_clear(&f->changes);
        assert_int_equal(model_enumerate(f->model, &f->changes), 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, NVME, PCI_DEVICE_FIELD_DRIVER);
        assert_change(f, MODEL_CHANGE_REMOVED, MODEL_OBJECT_DEVICE, AUDIO, 0);
        assert_change(f, MODEL_CHANGE_ADDED, MODEL_OBJECT_DEVICE, "0000:06:00.0", 0);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, GPU, PCI_DEVICE_FIELD_IOMMU_PEERS);
        assert_change(f, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MANAGER, "", 0);
        assert_int_equal(f->changes.n, 5);

        model_change_list_clear(&f->changes);
        assert_int_equal(model_enumerate(f->model, &f->changes), 0);
        assert_int_equal(f->changes.n, 0);
        assert_model_fresh(f);
}

/* Random mutations, each followed by the uevents the kernel would send; the invariant holds throughout. */
static void test_random(void **state) {
        Fixture *f = *state;
        static const char *const pool[] = { GPU, AUDIO, NVME, PF, IGD, HOST };
        static const char *const drivers[] = { NULL, "vfio-pci", "nouveau", "pci-stub" };
        char added[16][PCI_ADDRESS_STRING_MAX];
        bool present[16] = {};
        unsigned numvfs = 2, mdevs = 0, seed = 0x5eed;
        char uuids[8][MDEV_UUID_STRING_MAX];
        bool mdev_present[8] = {};

        for (int i = 0; i < 16; i++)
                snprintf(added[i], sizeof(added[i]), "0000:%02x:00.0", 0x20 + i);
        for (int i = 0; i < 8; i++)
                snprintf(uuids[i], sizeof(uuids[i]), "00000000-0000-4000-8000-%012x", i + 1);

        srand(seed);
        for (int step = 0; step < 300; step++) {
                int op = rand() % 8, k;
                const char *a = pool[rand() % 6];
                char path[256];

                switch (op) {
                case 0: /* bind/unbind */
                        sysfs_tree_bind(f->tree, a, drivers[rand() % 4]);
                        assert_true(pci_event(f, rand() % 2 ? "bind" : "unbind", a) >= 0);
                        break;
                case 1: /* driver_override */
                        sysfs_tree_write(
                                f->tree, sysfs_tree_pci_path(f->tree, a), "driver_override",
                                rand() % 2 ? "(null)\n" : "vfio-pci\n");
                        assert_true(pci_event(f, "change", a) >= 0);
                        break;
                case 2: /* hotplug add/remove */
                        k = rand() % 16;
                        if (present[k]) {
                                sysfs_tree_remove_pci(f->tree, added[k]);
                                assert_int_equal(pci_event(f, "remove", added[k]), 1);
                        } else {
                                sysfs_tree_add_pci(f->tree, added[k], 0x8086, 0x10d3, 0x020000);
                                sysfs_tree_set_group(f->tree, added[k], rand() % 12);
                                assert_int_equal(pci_event(f, "add", added[k]), 1);
                        }
                        present[k] = !present[k];
                        break;
                case 3: /* SR-IOV: grow or shrink by one VF */
                        if (numvfs < 4 && rand() % 2) {
                                char vf[PCI_ADDRESS_STRING_MAX];
                                snprintf(vf, sizeof(vf), "0000:03:02.%u", numvfs);
                                sysfs_tree_add_vf(f->tree, PF, numvfs, vf, 0x154c);
                                numvfs++;
                                assert_int_equal(pci_event(f, "add", vf), 1);
                        } else if (numvfs > 0) {
                                char vf[PCI_ADDRESS_STRING_MAX];
                                numvfs--;
                                snprintf(vf, sizeof(vf), "0000:03:02.%u", numvfs);
                                sysfs_tree_remove_vf(f->tree, PF, numvfs, vf);
                                assert_int_equal(pci_event(f, "remove", vf), 1);
                        }
                        break;
                case 4: /* mdev create/remove on either parent */
                        k = rand() % 8;
                        {
                                const char *parent = k % 2 ? IGD_PATH : MTTY_PATH;
                                const char *type = k % 2 ? "i915-GVTg_V5_4" : "mtty-1";

                                snprintf(path, sizeof(path), "%s/%s", parent, uuids[k]);
                                if (!sysfs_tree_exists(f->tree, parent) ||
                                    !sysfs_tree_exists(f->tree, "/sys/bus/pci/devices/" IGD))
                                        break;
                                if (mdev_present[k]) {
                                        sysfs_tree_remove_mdev(f->tree, parent, uuids[k]);
                                        mdevs--;
                                        sysfs_tree_set_available(f->tree, parent, type, 8 - mdevs);
                                        assert_int_equal(event(f, "remove", "mdev", path, NULL), 1);
                                } else {
                                        sysfs_tree_add_mdev(
                                                f->tree, parent, uuids[k], type, rand() % 2 ? 40 + k : -1);
                                        mdevs++;
                                        sysfs_tree_set_available(f->tree, parent, type, 8 - mdevs);
                                        assert_int_equal(event(f, "add", "mdev", path, NULL), 1);
                                }
                                mdev_present[k] = !mdev_present[k];
                        }
                        break;
                case 5: /* group change */
                        sysfs_tree_set_group(f->tree, a, rand() % 12);
                        assert_true(pci_event(f, "change", a) >= 0);
                        break;
                case 6: /* mtty parent registers/unregisters */
                        if (sysfs_tree_exists(f->tree, "/sys/class/mdev_bus/mtty")) {
                                bool busy = false;
                                for (int i = 0; i < 8; i += 2)
                                        busy = busy || mdev_present[i];
                                if (busy)
                                        break;
                                sysfs_tree_unregister_parent(f->tree, MTTY_PATH);
                                assert_int_equal(event(f, "change", "mtty", MTTY_PATH, "unregistered"), 1);
                        } else {
                                sysfs_tree_register_parent(f->tree, MTTY_PATH);
                                assert_int_equal(event(f, "change", "mtty", MTTY_PATH, "registered"), 1);
                        }
                        break;
                case 7: /* garbage in an attribute, then repaired */
                        sysfs_tree_write(
                                f->tree, sysfs_tree_pci_path(f->tree, a), "numa_node",
                                rand() % 2 ? "-1\n" : "garbage\n");
                        assert_true(pci_event(f, "change", a) >= 0);
                        break;
                }
                assert_model_fresh(f);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_enumerate, setup, teardown),
                cmocka_unit_test(test_iommu_disabled),
                cmocka_unit_test_setup_teardown(test_add_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bind_unbind_change, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_move, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vfs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mdevs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refresh_mdevs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parent_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rescan, setup, teardown),
                cmocka_unit_test_setup_teardown(test_random, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
