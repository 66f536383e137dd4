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

#include "mdev.h"
#include "strv.h"
#include "sysfs-tree.h"

#define UUID1 "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"
#define UUID2 "0b3e5e3a-1c7a-4f7e-9d3b-2a1f0c9d8e7f"
#define GPU "/sys/devices/pci0000:00/0000:00:02.0"
#define MTTY "/sys/devices/virtual/mtty/mtty"

static int setup(void **state) {
        SysfsTree *t = sysfs_tree_new();

        sysfs_tree_add_pci(t, "0000:00:02.0", 0x8086, 0x3e92, 0x030000);
        sysfs_tree_add_mdev_type(t, GPU, "i915-GVTg_V5_4", "GVTg_V5_4", 1);
        sysfs_tree_add_mdev_type(t, GPU, "i915-GVTg_V5_8", "GVTg_V5_8", 2);
        sysfs_tree_register_parent(t, GPU);
        sysfs_tree_add_mdev(t, GPU, UUID1, "i915-GVTg_V5_4", 7);

        sysfs_tree_mkdir(t, MTTY);
        sysfs_tree_add_mdev_type(t, MTTY, "mtty-2", "Dual-port-serial", 12);
        sysfs_tree_add_mdev_type(t, MTTY, "mtty-1", "Single-port-serial", 24);
        sysfs_tree_register_parent(t, MTTY);
        sysfs_tree_add_mdev(t, MTTY, UUID2, "mtty-1", -1);
        *state = t;
        return 0;
}

static int teardown(void **state) {
        sysfs_tree_free(*state);
        return 0;
}

static void test_mdev_read(void **state) {
        Mdev *m = NULL, *n = NULL;

        assert_int_equal(mdev_read(UUID1, &m), 0);
        assert_string_equal(m->uuid, UUID1);
        assert_string_equal(m->syspath, GPU "/" UUID1);
        assert_string_equal(m->type_id, "i915-GVTg_V5_4");
        assert_string_equal(m->parent, "0000:00:02.0");
        assert_true(m->parent_is_pci);
        assert_int_equal(m->iommu_group, 7);
        assert_string_equal(m->driver, "vfio_mdev");
        assert_null(m->errors);
        assert_int_equal(mdev_diff(m, m), 0);

        assert_int_equal(mdev_read(UUID2, &n), 0);
        assert_string_equal(n->type_id, "mtty-1");
        assert_string_equal(n->parent, "mtty");
        assert_false(n->parent_is_pci);
        assert_int_equal(n->iommu_group, -1);
        assert_null(n->driver);
        assert_null(n->errors);
        assert_int_equal(
                mdev_diff(m, n),
                MDEV_FIELD_TYPE | MDEV_FIELD_PARENT | MDEV_FIELD_IOMMU_GROUP | MDEV_FIELD_DRIVER |
                        MDEV_FIELD_SYSPATH);
        mdev_free(m);
        mdev_free(n);

        assert_int_equal(mdev_read("00000000-0000-0000-0000-000000000000", &m), -ENOENT);
        assert_int_equal(mdev_read("83B8F4F2-509F-382F-3C1E-E6BFE0FA1001", &m), -EINVAL);
        assert_int_equal(mdev_read("../../devices", &m), -EINVAL);
}

static void test_mdev_errors(void **state) {
        SysfsTree *t = *state;
        Mdev *m = NULL;

        /* mdev_type as a file, iommu_group dangling to a non-number */
        sysfs_tree_remove_file(t, GPU "/" UUID1, "mdev_type");
        sysfs_tree_write(t, GPU "/" UUID1, "mdev_type", "x\n");
        sysfs_tree_symlink(t, GPU "/" UUID1 "/iommu_group", "/sys/kernel/iommu_groups/x7");
        assert_int_equal(mdev_read(UUID1, &m), 0);
        assert_null(m->type_id);
        assert_int_equal(m->iommu_group, -1);
        assert_int_equal(strv_length(m->errors), 2);
        assert_string_equal(m->errors[0], "mdev_type: not a symlink");
        assert_string_equal(m->errors[1], "iommu_group: invalid group 'x7'");
        mdev_free(m);
}

static void test_parent_read(void **state) {
        SysfsTree *t = *state;
        MdevParent *p = NULL, *q = NULL;

        assert_int_equal(mdev_parent_read("0000:00:02.0", &p), 0);
        assert_string_equal(p->name, "0000:00:02.0");
        assert_string_equal(p->syspath, GPU);
        assert_true(p->is_pci);
        assert_int_equal(p->n_types, 2);
        assert_string_equal(p->types[0].id, "i915-GVTg_V5_4");
        assert_int_equal(p->types[0].available_instances, 1);
        assert_string_equal(p->types[1].id, "i915-GVTg_V5_8");
        assert_null(p->errors);

        assert_int_equal(mdev_parent_read("mtty", &q), 0);
        assert_false(q->is_pci);
        assert_string_equal(q->syspath, MTTY);
        assert_int_equal(q->n_types, 2);
        assert_string_equal(q->types[0].id, "mtty-1");
        assert_string_equal(q->types[0].name, "Single-port-serial");
        assert_int_equal(q->types[0].available_instances, 24);
        assert_string_equal(q->types[1].id, "mtty-2");
        assert_false(mdev_types_equal(p->types, p->n_types, q->types, q->n_types));
        assert_true(mdev_types_equal(q->types, q->n_types, q->types, q->n_types));
        mdev_parent_free(q);

        sysfs_tree_set_available(t, MTTY, "mtty-1", 23);
        assert_int_equal(mdev_parent_read("mtty", &q), 0);
        assert_int_equal(q->types[0].available_instances, 23);
        mdev_parent_free(q);

        /* errors: missing device_api, garbage available_instances */
        sysfs_tree_remove_file(t, MTTY, "mdev_supported_types/mtty-2/device_api");
        sysfs_tree_write(t, MTTY, "mdev_supported_types/mtty-2/available_instances", "-1\n");
        assert_int_equal(mdev_parent_read("mtty", &q), 0);
        assert_int_equal(strv_length(q->errors), 2);
        assert_string_equal(q->errors[0], "mdev_supported_types/mtty-2/device_api: missing");
        assert_string_equal(
                q->errors[1],
                "mdev_supported_types/mtty-2/available_instances: integer value out of range '-1'");
        assert_null(q->types[1].device_api);
        assert_int_equal(q->types[1].available_instances, 0);
        mdev_parent_free(q);

        assert_int_equal(mdev_parent_read("nope", &q), -ENOENT);
        assert_int_equal(mdev_parent_read("../x", &q), -EINVAL);
        mdev_parent_free(p);
}

/* NVIDIA's vGPU VF layout (its vGPU user guide): nvidia/creatable_vgpu_types, nvidia/current_vgpu_type. */
static void test_vgpu_vf_read(void **state) {
        SysfsTree *t = *state;
        VgpuVf *v = NULL;
        char dir[256];

        sysfs_tree_add_pci(t, "0000:41:00.0", 0x10de, 0x2235, 0x030200);
        sysfs_tree_make_pf(t, "0000:41:00.0", 4);
        snprintf(
                dir, sizeof(dir), "%s/nvidia",
                sysfs_tree_add_vf(t, "0000:41:00.0", 0, "0000:41:00.4", 0x2235));
        sysfs_tree_mkdir(t, dir);
        sysfs_tree_write(
                t, dir, "creatable_vgpu_types",
                "ID    : vGPU Name\n558   : NVIDIA A40-2Q\n557   : NVIDIA A40-1Q\n");
        sysfs_tree_write(t, dir, "current_vgpu_type", "0\n");
        sysfs_tree_set_group(t, "0000:41:00.4", 44);

        assert_int_equal(vgpu_vf_read("0000:41:00.4", &v), 0);
        assert_string_equal(v->address, "0000:41:00.4");
        assert_string_equal(v->physfn, "0000:41:00.0");
        assert_int_equal(v->iommu_group, 44);
        assert_int_equal(v->n_creatable, 2);
        assert_int_equal(v->creatable[0].id, 557);
        assert_string_equal(v->creatable[1].name, "NVIDIA A40-2Q");
        assert_int_equal(v->current_type, 0);
        assert_null(v->errors);
        v = vgpu_vf_free(v);

        /* The VF carries a vGPU now: nothing creatable; a malformed list is an error, not a crash. */
        sysfs_tree_write(t, dir, "current_vgpu_type", "557\n");
        sysfs_tree_write(t, dir, "creatable_vgpu_types", "garbage\n");
        assert_int_equal(vgpu_vf_read("0000:41:00.4", &v), 0);
        assert_int_equal(v->current_type, 557);
        assert_int_equal(v->n_creatable, 0);
        assert_non_null(v->errors);
        assert_string_equal(v->errors[0], "nvidia/creatable_vgpu_types: line 1: not \"ID : NAME\"");
        v = vgpu_vf_free(v);

        /* A function without nvidia/ is no vGPU VF. */
        assert_int_equal(vgpu_vf_read("0000:41:00.0", &v), -ENOENT);
        assert_int_equal(vgpu_vf_read("bogus", &v), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_mdev_read, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mdev_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parent_read, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vgpu_vf_read, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
