/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pci/pci.h>

#include "escape.h"
#include "pci-device.h"
#include "strv.h"
#include "sysfs-tree.h"

typedef struct Fixture {
        SysfsTree *tree;
        struct pci_access *pacc;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        f->tree = sysfs_tree_new();
        f->pacc = pci_alloc();
        f->pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        pci_init(f->pacc);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        pci_cleanup(f->pacc);
        sysfs_tree_free(f->tree);
        free(f);
        return 0;
}

static bool has_error(const PciDevice *d, const char *e) {
        STRV_FOREACH (s, d->errors)
                if (streq(*s, e))
                        return true;
        return false;
}

static void dump_errors(const PciDevice *d) {
        STRV_FOREACH (s, d->errors)
                print_message("error: %s\n", *s);
}

static void test_gpu(void **state) {
        Fixture *f = *state;
        PciDevice *d = NULL;
        char *dir;

        dir = strdup(sysfs_tree_add_pci(f->tree, "0000:41:00.0", 0x8086, 0x1572, 0x020000));
        sysfs_tree_set_group(f->tree, "0000:41:00.0", 12);
        sysfs_tree_bind(f->tree, "0000:41:00.0", "vfio-pci");
        sysfs_tree_write(f->tree, dir, "driver_override", "vfio-pci\n");
        sysfs_tree_write(f->tree, dir, "numa_node", "1\n");
        sysfs_tree_write(f->tree, dir, "reset_method", "flr bus\n");
        sysfs_tree_write(f->tree, dir, "boot_vga", "1\n");
        sysfs_tree_write(
                f->tree, dir, "resource",
                "0x0000006000000000 0x000000600fffffff 0x000000000014220c\n" /* 64-bit pref 256M */
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                "0x00000000fb000000 0x00000000fb00ffff 0x0000000000040200\n" /* 32-bit 64K */
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                "0x000000000000e000 0x000000000000e07f 0x0000000000040101\n" /* io 128 */
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                "0x00000000fb080000 0x00000000fb0fffff 0x0000000000046200\n" /* ROM 512K */
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n");
        sysfs_tree_add_slot(f->tree, "7", "0000:40:00");
        sysfs_tree_add_slot(f->tree, "5-1", "0000:41:00");
        sysfs_tree_set_serial(f->tree, "0000:41:00.0", UINT64_C(0x0123456789abcdef));
        sysfs_tree_write(f->tree, dir, "vfio-dev/vfio3/dev", "511:3\n");

        assert_int_equal(pci_device_read("0000:41:00.0", f->pacc, &d), 0);
        dump_errors(d);
        assert_null(d->errors);
        assert_string_equal(d->address, "0000:41:00.0");
        assert_string_equal(d->syspath, "/sys/devices/pci0000:41/0000:41:00.0");
        assert_int_equal(d->vendor_id, 0x8086);
        assert_int_equal(d->device_id, 0x1572);
        assert_int_equal(d->subsystem_vendor_id, 0x8086);
        assert_int_equal(d->subsystem_device_id, 0x1234);
        assert_int_equal(d->class_code, 0x020000);
        assert_int_equal(d->revision, 1);
        assert_string_equal(d->vendor_name, "Intel Corporation");
        assert_non_null(d->device_name);
        assert_non_null(strstr(d->device_name, "X710"));
        assert_string_equal(d->class_name, "Ethernet controller");
        assert_int_equal(d->iommu_group, 12);
        assert_string_equal(d->driver, "vfio-pci");
        assert_string_equal(d->driver_override, "vfio-pci");
        assert_int_equal(d->numa_node, 1);
        assert_string_equal(d->physical_slot, "5-1");
        assert_true(d->has_serial);
        assert_true(d->serial == UINT64_C(0x0123456789abcdef));
        assert_int_equal(d->sriov_role, SRIOV_ROLE_NONE);
        assert_int_equal(d->vf_index, -1);
        assert_null(d->virtfns);
        assert_int_equal(d->n_bars, 4);
        assert_int_equal(d->bars[0].index, 0);
        assert_int_equal(d->bars[0].type, PCI_BAR_TYPE_MEMORY);
        assert_true(d->bars[0].size == 256 * 1024 * 1024);
        assert_true(d->bars[0].is_64bit);
        assert_true(d->bars[0].prefetchable);
        assert_int_equal(d->bars[1].index, 2);
        assert_true(d->bars[1].size == 64 * 1024);
        assert_false(d->bars[1].is_64bit);
        assert_false(d->bars[1].prefetchable);
        assert_int_equal(d->bars[2].index, 4);
        assert_int_equal(d->bars[2].type, PCI_BAR_TYPE_IO);
        assert_true(d->bars[2].size == 128);
        assert_int_equal(d->bars[3].index, PCI_BAR_ROM_INDEX);
        assert_true(d->bars[3].size == 512 * 1024);
        assert_int_equal(strv_length(d->reset_methods), 2);
        assert_string_equal(d->reset_methods[0], "flr");
        assert_string_equal(d->reset_methods[1], "bus");
        assert_true(d->boot_vga);
        assert_string_equal(d->vfio_group, "/dev/vfio/12");
        assert_string_equal(d->vfio_device, "/dev/vfio/devices/vfio3");
        assert_null(d->mdev_types);
        assert_true(pci_device_is_vfio_bound(d));
        assert_false(pci_device_is_bridge(d));
        assert_int_equal(pci_device_diff(d, d), 0);
        pci_device_free(d);

        /* Short form is accepted and canonicalized. */
        assert_int_equal(pci_device_read("41:00.0", f->pacc, &d), 0);
        assert_string_equal(d->address, "0000:41:00.0");
        pci_device_free(d);
        free(dir);
}

static void test_minimal(void **state) {
        Fixture *f = *state;
        PciDevice *d = NULL;

        /* No optional attribute: no errors, unknown values. Without pacc: no names, no serial. */
        sysfs_tree_add_pci(f->tree, "0000:00:1f.0", 0x8086, 0x7a06, 0x060100);
        sysfs_tree_remove_file(f->tree, "/sys/devices/pci0000:00/0000:00:1f.0", "numa_node");
        sysfs_tree_remove_file(f->tree, "/sys/devices/pci0000:00/0000:00:1f.0", "driver_override");
        sysfs_tree_remove_file(f->tree, "/sys/devices/pci0000:00/0000:00:1f.0", "revision");
        sysfs_tree_remove_file(f->tree, "/sys/devices/pci0000:00/0000:00:1f.0", "resource");
        assert_int_equal(pci_device_read("0000:00:1f.0", NULL, &d), 0);
        assert_null(d->errors);
        assert_null(d->vendor_name);
        assert_null(d->class_name);
        assert_false(d->has_serial);
        assert_int_equal(d->iommu_group, -1);
        assert_null(d->driver);
        assert_null(d->driver_override);
        assert_int_equal(d->numa_node, -1);
        assert_null(d->physical_slot);
        assert_int_equal(d->sriov_role, SRIOV_ROLE_NONE);
        assert_int_equal(d->n_bars, 0);
        assert_null(d->reset_methods);
        assert_false(d->boot_vga);
        assert_null(d->vfio_group);
        assert_null(d->vfio_device);
        assert_true(pci_device_is_bridge(d)); /* ISA bridge 0x0601 */
        pci_device_free(d);

        /* Linux 6.1 registers vfio-dev/vfioN without a device number: no cdev node to report. */
        sysfs_tree_write(f->tree, "/sys/devices/pci0000:00/0000:00:1f.0", "vfio-dev/vfio0/uevent", "");
        assert_int_equal(pci_device_read("0000:00:1f.0", NULL, &d), 0);
        assert_null(d->vfio_device);
        pci_device_free(d);
        sysfs_tree_write(f->tree, "/sys/devices/pci0000:00/0000:00:1f.0", "vfio-dev/vfio0/dev", "511:0\n");
        assert_int_equal(pci_device_read("0000:00:1f.0", NULL, &d), 0);
        assert_string_equal(d->vfio_device, "/dev/vfio/devices/vfio0");
        pci_device_free(d);

        /* A short config (64 bytes, as unprivileged readers get) has no DSN and must not crash libpci. */
        assert_int_equal(pci_device_read("0000:00:1f.0", f->pacc, &d), 0);
        assert_false(d->has_serial);
        assert_string_equal(d->vendor_name, "Intel Corporation");
        pci_device_free(d);

        /* No config at all. */
        sysfs_tree_remove_file(f->tree, "/sys/devices/pci0000:00/0000:00:1f.0", "config");
        assert_int_equal(pci_device_read("0000:00:1f.0", f->pacc, &d), 0);
        assert_false(d->has_serial);
        pci_device_free(d);
}

static void test_not_found(void **state) {
        Fixture *f = *state;
        PciDevice *d = NULL;

        assert_int_equal(pci_device_read("0000:99:00.0", f->pacc, &d), -ENOENT);
        assert_int_equal(pci_device_read("0000:99:00.8", f->pacc, &d), -EINVAL);
        assert_int_equal(pci_device_read("garbage", f->pacc, &d), -EINVAL);
        assert_int_equal(pci_device_read(NULL, f->pacc, &d), -EINVAL);
        assert_null(d);
}

static void test_sriov(void **state) {
        Fixture *f = *state;
        PciDevice *pf = NULL, *vf = NULL;

        sysfs_tree_add_pci(f->tree, "0000:03:00.0", 0x8086, 0x1572, 0x020000);
        sysfs_tree_make_pf(f->tree, "0000:03:00.0", 8);
        /* Created out of order: virtfns must come out ordered by index, not by name or readdir. */
        sysfs_tree_add_vf(f->tree, "0000:03:00.0", 10, "0000:03:01.2", 0x154c);
        sysfs_tree_add_vf(f->tree, "0000:03:00.0", 0, "0000:03:02.0", 0x154c);
        sysfs_tree_add_vf(f->tree, "0000:03:00.0", 2, "0000:03:00.4", 0x154c);
        sysfs_tree_add_vf(f->tree, "0000:03:00.0", 1, "0000:03:02.1", 0x154c);

        assert_int_equal(pci_device_read("0000:03:00.0", f->pacc, &pf), 0);
        assert_null(pf->errors);
        assert_int_equal(pf->sriov_role, SRIOV_ROLE_PF);
        assert_int_equal(pf->sriov_total_vfs, 8);
        assert_int_equal(pf->sriov_num_vfs, 2); /* last write: index 1 -> 2 */
        assert_true(pf->sriov_drivers_autoprobe);
        assert_int_equal(pf->sriov_vf_offset, 16);
        assert_int_equal(pf->sriov_vf_stride, 1);
        assert_null(pf->physfn);
        assert_int_equal(strv_length(pf->virtfns), 4);
        assert_string_equal(pf->virtfns[0], "0000:03:02.0");
        assert_string_equal(pf->virtfns[1], "0000:03:02.1");
        assert_string_equal(pf->virtfns[2], "0000:03:00.4");
        assert_string_equal(pf->virtfns[3], "0000:03:01.2");

        assert_int_equal(pci_device_read("0000:03:02.1", f->pacc, &vf), 0);
        assert_null(vf->errors);
        assert_int_equal(vf->sriov_role, SRIOV_ROLE_VF);
        assert_string_equal(vf->physfn, "0000:03:00.0");
        assert_int_equal(vf->vf_index, 1);
        assert_null(vf->virtfns);
        pci_device_free(vf);
        assert_int_equal(pci_device_read("0000:03:01.2", f->pacc, &vf), 0);
        assert_int_equal(vf->vf_index, 10);
        assert_true(pci_device_diff(pf, vf) & PCI_DEVICE_FIELD_SRIOV);
        pci_device_free(vf);
        pci_device_free(pf);
}

static void test_mdev_types(void **state) {
        Fixture *f = *state;
        PciDevice *d = NULL;
        char *dir = strdup(sysfs_tree_add_pci(f->tree, "0000:00:02.0", 0x8086, 0x3e92, 0x030000));

        sysfs_tree_add_mdev_type(f->tree, dir, "i915-GVTg_V5_8", "GVTg_V5_8", 2);
        sysfs_tree_add_mdev_type(f->tree, dir, "i915-GVTg_V5_4", "GVTg_V5_4", 1);
        sysfs_tree_remove_file(f->tree, dir, "mdev_supported_types/i915-GVTg_V5_4/description");

        assert_int_equal(pci_device_read("0000:00:02.0", f->pacc, &d), 0);
        assert_null(d->errors);
        assert_non_null(d->mdev_types);
        assert_int_equal(d->n_mdev_types, 2);
        assert_string_equal(d->mdev_types[0].id, "i915-GVTg_V5_4"); /* sorted by id */
        assert_string_equal(d->mdev_types[0].name, "GVTg_V5_4");
        assert_null(d->mdev_types[0].description);
        assert_string_equal(d->mdev_types[0].device_api, "vfio-pci");
        assert_int_equal(d->mdev_types[0].available_instances, 1);
        assert_string_equal(d->mdev_types[1].id, "i915-GVTg_V5_8");
        assert_string_equal(d->mdev_types[1].description, "low_gm_size: 128MB\nhigh_gm_size: 512MB");
        assert_int_equal(d->mdev_types[1].available_instances, 2);
        pci_device_free(d);

        sysfs_tree_write(f->tree, dir, "mdev_supported_types/i915-GVTg_V5_8/available_instances", "many\n");
        assert_int_equal(pci_device_read("0000:00:02.0", f->pacc, &d), 0);
        assert_int_equal(d->n_mdev_types, 2);
        assert_int_equal(d->mdev_types[1].available_instances, 0);
        assert_true(has_error(
                d, "mdev_supported_types/i915-GVTg_V5_8/available_instances: invalid integer value 'many'"));
        pci_device_free(d);
        free(dir);
}

/* Every attribute kind: a bad value is recorded with attribute and value, the field stays unknown. */
static void test_errors(void **state) {
        Fixture *f = *state;
        PciDevice *d = NULL;
        char *dir = strdup(sysfs_tree_add_pci(f->tree, "0000:05:00.0", 0x8086, 0x1234, 0x020000));
        char *real_group;

        sysfs_tree_write(
                f->tree, dir, "vendor",
                "zz\xff"
                "12\n"); /* quoted escaped */
        sysfs_tree_write(f->tree, dir, "device", "0x12345\n");
        sysfs_tree_write(f->tree, dir, "class", "\n"); /* truncated */
        sysfs_tree_write(f->tree, dir, "subsystem_device", "0x12"); /* valid: short but hex */
        sysfs_tree_write(f->tree, dir, "numa_node", "one\n");
        sysfs_tree_write(f->tree, dir, "boot_vga", "2\x1b[0m\n");
        sysfs_tree_write(
                f->tree, dir, "resource",
                "0x0000006000000000 0x000000600fffffff 0x000000000014220c\n"
                "garbage\n"
                "0x00000000fb000000 0x00000000fa000000 0x0000000000040200\n");
        sysfs_tree_make_pf(f->tree, "0000:05:00.0", 4);
        sysfs_tree_write(f->tree, dir, "sriov_numvfs", "-3\n");
        sysfs_tree_write(f->tree, dir, "sriov_drivers_autoprobe", "yes\n");
        /* a dangling driver link still names the driver (readlink); a driver that is a file is an error */
        sysfs_tree_symlink(
                f->tree, "/sys/devices/pci0000:05/0000:05:00.0/iommu_group",
                "/sys/kernel/iommu_groups/notanumber");
        sysfs_tree_symlink(
                f->tree, "/sys/devices/pci0000:05/0000:05:00.0/driver", "/sys/bus/pci/drivers/gone");
        real_group = NULL;
        (void)real_group;

        assert_int_equal(pci_device_read("0000:05:00.0", f->pacc, &d), 0);
        dump_errors(d);
        assert_true(has_error(d, "vendor: invalid hex value 'zz\\xff12'"));
        assert_true(has_error(d, "device: hex value out of range '0x12345'"));
        assert_true(has_error(d, "class: invalid hex value ''"));
        assert_true(has_error(d, "numa_node: invalid integer value 'one'"));
        assert_true(has_error(d, "boot_vga: invalid boolean value '2\\x1b[0m'"));
        assert_true(has_error(d, "resource line 2: invalid resource line 'garbage'"));
        assert_true(has_error(
                d,
                "resource line 3: end before start '0x00000000fb000000 0x00000000fa000000 0x0000000000040200'"));
        assert_true(has_error(d, "resource: truncated '3 lines'"));
        assert_true(has_error(d, "sriov_numvfs: integer value out of range '-3'"));
        assert_true(has_error(d, "sriov_drivers_autoprobe: invalid boolean value 'yes'"));
        assert_true(has_error(d, "iommu_group: invalid group 'notanumber'"));
        assert_int_equal(strv_length(d->errors), 11);
        STRV_FOREACH (e, d->errors)
                assert_true(utf8_is_valid(*e));
        /* unknown values kept, reading went on */
        assert_int_equal(d->vendor_id, 0);
        assert_int_equal(d->device_id, 0);
        assert_int_equal(d->class_code, 0);
        assert_int_equal(d->subsystem_device_id, 0x12);
        assert_int_equal(d->numa_node, -1);
        assert_false(d->boot_vga);
        assert_int_equal(d->iommu_group, -1);
        assert_string_equal(d->driver, "gone");
        assert_int_equal(d->sriov_role, SRIOV_ROLE_PF);
        assert_int_equal(d->sriov_total_vfs, 4);
        assert_int_equal(d->n_bars, 1);
        assert_true(d->bars[0].size == 256 * 1024 * 1024);
        pci_device_free(d);

        /* driver as a plain file; missing mandatory vendor; unparsable totalvfs still makes a PF */
        sysfs_tree_remove_file(f->tree, dir, "driver");
        sysfs_tree_write(f->tree, dir, "driver", "i40e\n");
        sysfs_tree_remove_file(f->tree, dir, "vendor");
        sysfs_tree_write(f->tree, dir, "sriov_totalvfs", "0x4\n");
        assert_int_equal(pci_device_read("0000:05:00.0", f->pacc, &d), 0);
        dump_errors(d);
        assert_true(has_error(d, "driver: not a symlink"));
        assert_true(has_error(d, "vendor: missing"));
        assert_true(has_error(d, "sriov_totalvfs: invalid integer value '0x4'"));
        assert_null(d->driver);
        assert_int_equal(d->sriov_role, SRIOV_ROLE_PF);
        assert_int_equal(d->sriov_total_vfs, 0);
        pci_device_free(d);
        free(dir);
}

static void test_diff(void **state) {
        Fixture *f = *state;
        PciDevice *a = NULL, *b = NULL;
        const char *addr = "0000:07:00.0";
        char *dir = strdup(sysfs_tree_add_pci(f->tree, addr, 0x144d, 0xa808, 0x010802));

        sysfs_tree_set_group(f->tree, addr, 3);
        assert_int_equal(pci_device_read(addr, f->pacc, &a), 0);

#define CHECK_DIFF(mutation, bits)                                       \
        do {                                                             \
                mutation;                                                \
                assert_int_equal(pci_device_read(addr, f->pacc, &b), 0); \
                assert_int_equal(pci_device_diff(a, b), (bits));         \
                assert_int_equal(pci_device_diff(b, a), (bits));         \
                pci_device_free(a);                                      \
                a = b;                                                   \
                b = NULL;                                                \
        } while (0)

        CHECK_DIFF(sysfs_tree_bind(f->tree, addr, "nvme"), PCI_DEVICE_FIELD_DRIVER);
        CHECK_DIFF(sysfs_tree_bind(f->tree, addr, "vfio-pci"), PCI_DEVICE_FIELD_DRIVER); /* + vfio_group */
        assert_string_equal(a->vfio_group, "/dev/vfio/3");
        CHECK_DIFF(
                sysfs_tree_set_group(f->tree, addr, 4),
                PCI_DEVICE_FIELD_IOMMU_GROUP | PCI_DEVICE_FIELD_DRIVER);
        CHECK_DIFF(
                sysfs_tree_write(f->tree, dir, "driver_override", "vfio-pci\n"),
                PCI_DEVICE_FIELD_DRIVER_OVERRIDE);
        CHECK_DIFF(sysfs_tree_write(f->tree, dir, "numa_node", "0\n"), PCI_DEVICE_FIELD_NUMA_NODE);
        CHECK_DIFF(sysfs_tree_add_slot(f->tree, "3", "0000:07:00"), PCI_DEVICE_FIELD_PHYSICAL_SLOT);
        CHECK_DIFF(sysfs_tree_set_serial(f->tree, addr, 42), PCI_DEVICE_FIELD_SERIAL);
        CHECK_DIFF(sysfs_tree_make_pf(f->tree, addr, 4), PCI_DEVICE_FIELD_SRIOV);
        CHECK_DIFF(
                sysfs_tree_write(
                        f->tree, dir, "resource",
                        "0x00000000fb000000 0x00000000fb003fff 0x0000000000040200\n"
                        "0\n0\n0\n0\n0\n0\n"),
                PCI_DEVICE_FIELD_BARS | PCI_DEVICE_FIELD_ERRORS);
        CHECK_DIFF(sysfs_tree_write(f->tree, dir, "reset_method", "flr\n"), PCI_DEVICE_FIELD_RESET_METHODS);
        CHECK_DIFF(sysfs_tree_write(f->tree, dir, "boot_vga", "1\n"), PCI_DEVICE_FIELD_BOOT_VGA);
        CHECK_DIFF(sysfs_tree_add_mdev_type(f->tree, dir, "t-1", "T1", 1), PCI_DEVICE_FIELD_MDEV_TYPES);
        CHECK_DIFF(sysfs_tree_set_available(f->tree, dir, "t-1", 0), PCI_DEVICE_FIELD_MDEV_TYPES);
        CHECK_DIFF(sysfs_tree_write(f->tree, dir, "revision", "0x02\n"), PCI_DEVICE_FIELD_IDS);
        CHECK_DIFF(
                sysfs_tree_write(f->tree, dir, "numa_node", "x\n"),
                PCI_DEVICE_FIELD_NUMA_NODE | PCI_DEVICE_FIELD_ERRORS);
        CHECK_DIFF((void)0, 0);
#undef CHECK_DIFF
        pci_device_free(a);
        free(dir);
}

/* Names and serial of |old| replaced by values pci.ids and config space would never give. */
static void fake_names(PciDevice *old) {
        free(old->vendor_name);
        free(old->device_name);
        free(old->class_name);
        old->vendor_name = strdup("Old Vendor From The Model");
        old->device_name = strdup("Old Device From The Model");
        old->class_name = strdup("Old Class From The Model");
        assert_non_null(old->vendor_name);
        assert_non_null(old->device_name);
        assert_non_null(old->class_name);
}

static void assert_names_from_old(const PciDevice *d) {
        assert_string_equal(d->vendor_name, "Old Vendor From The Model");
        assert_string_equal(d->device_name, "Old Device From The Model");
        assert_string_equal(d->class_name, "Old Class From The Model");
}

/* pci_device_reread(): the same ids take names and serial from |old|; anything else is read again. */
static void test_reread(void **state) {
        Fixture *f = *state;
        const char *addr = "0000:41:00.0";
        PciDevice *old = NULL, *d = NULL, *fresh = NULL;
        char *dir;

        dir = strdup(sysfs_tree_add_pci(f->tree, addr, 0x8086, 0x1572, 0x020000));
        sysfs_tree_set_group(f->tree, addr, 12);
        sysfs_tree_bind(f->tree, addr, "i40e");
        sysfs_tree_set_serial(f->tree, addr, UINT64_C(0x1111));
        assert_int_equal(pci_device_read(addr, f->pacc, &old), 0);
        assert_string_equal(old->vendor_name, "Intel Corporation");
        assert_true(old->has_serial && old->serial == UINT64_C(0x1111));
        fake_names(old);

        /* A rebind, and the config space now holds another DSN (it cannot, for the same function: so
         * reading it again would show). */
        sysfs_tree_bind(f->tree, addr, "vfio-pci");
        sysfs_tree_write(f->tree, dir, "driver_override", "vfio-pci\n");
        sysfs_tree_set_serial(f->tree, addr, UINT64_C(0x3333));
        assert_int_equal(pci_device_reread(addr, f->pacc, old, &d), 0);
        pci_device_free(old); /* copies, not borrowed */
        old = NULL;
        assert_null(d->errors);
        assert_names_from_old(d);
        assert_true(d->has_serial);
        assert_true(d->serial == UINT64_C(0x1111));
        /* What a bind changes is read again. */
        assert_string_equal(d->driver, "vfio-pci");
        assert_string_equal(d->driver_override, "vfio-pci");
        assert_string_equal(d->vfio_group, "/dev/vfio/12");
        assert_int_equal(d->iommu_group, 12);
        assert_int_equal(d->vendor_id, 0x8086);
        assert_int_equal(d->device_id, 0x1572);

        /* Unbound, override cleared: read again too. */
        sysfs_tree_bind(f->tree, addr, NULL);
        sysfs_tree_write(f->tree, dir, "driver_override", "(null)\n");
        old = d;
        d = NULL;
        assert_int_equal(pci_device_reread(addr, f->pacc, old, &d), 0);
        assert_names_from_old(d);
        assert_null(d->driver);
        assert_null(d->driver_override);
        assert_null(d->vfio_group);
        pci_device_free(old);
        old = d;
        d = NULL;

        /* Another device id (another function at the address): names and serial looked up again. */
        sysfs_tree_write(f->tree, dir, "device", "0x1583\n");
        assert_int_equal(pci_device_reread(addr, f->pacc, old, &d), 0);
        assert_int_equal(d->device_id, 0x1583);
        assert_string_equal(d->vendor_name, "Intel Corporation");
        assert_non_null(d->device_name);
        assert_non_null(strstr(d->device_name, "XL710"));
        assert_string_equal(d->class_name, "Ethernet controller");
        assert_true(d->has_serial && d->serial == UINT64_C(0x3333));
        pci_device_free(d);
        d = NULL;

        /* Each of the other ids, the class and the revision counts too. */
        static const struct {
                const char *attr, *value, *restore;
        } ids[] = {
                { "vendor", "0x8087\n", "0x8086\n" },
                { "subsystem_vendor", "0x1028\n", "0x8086\n" },
                { "subsystem_device", "0x0001\n", "0x1234\n" },
                { "class", "0x020800\n", "0x020000\n" },
                { "revision", "0x02\n", "0x01\n" },
        };
        sysfs_tree_write(f->tree, dir, "device", "0x1572\n");
        pci_device_free(old);
        assert_int_equal(pci_device_read(addr, f->pacc, &old), 0);
        fake_names(old);
        for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
                sysfs_tree_write(f->tree, dir, ids[i].attr, ids[i].value);
                assert_int_equal(pci_device_reread(addr, f->pacc, old, &d), 0);
                if (d->vendor_name && streq(d->vendor_name, "Old Vendor From The Model"))
                        fail_msg("%s changed, but the names were taken from the old read", ids[i].attr);
                assert_true(d->has_serial && d->serial == UINT64_C(0x3333));
                pci_device_free(d);
                d = NULL;
                sysfs_tree_write(f->tree, dir, ids[i].attr, ids[i].restore);
                /* Restored: the same ids again. */
                assert_int_equal(pci_device_reread(addr, f->pacc, old, &d), 0);
                assert_names_from_old(d);
                pci_device_free(d);
                d = NULL;
        }

        /* |old| of another address (the same ids) is not used. */
        sysfs_tree_add_pci(f->tree, "0000:42:00.0", 0x8086, 0x1572, 0x020000);
        assert_int_equal(pci_device_reread("0000:42:00.0", f->pacc, old, &d), 0);
        assert_string_equal(d->vendor_name, "Intel Corporation");
        assert_string_equal(d->address, "0000:42:00.0");
        assert_false(d->has_serial);
        pci_device_free(d);
        d = NULL;

        /* No |old|: the same as pci_device_read(). */
        assert_int_equal(pci_device_reread(addr, f->pacc, NULL, &d), 0);
        assert_int_equal(pci_device_read(addr, f->pacc, &fresh), 0);
        assert_int_equal(pci_device_diff(d, fresh), 0);
        assert_string_equal(d->vendor_name, "Intel Corporation");
        assert_string_equal(d->device_name, fresh->device_name);
        assert_true(d->has_serial && d->serial == UINT64_C(0x3333));
        pci_device_free(d);
        pci_device_free(fresh);

        /* Gone: as pci_device_read(). */
        assert_int_equal(pci_device_reread("0000:43:00.0", f->pacc, old, &d), -ENOENT);
        pci_device_free(old);
        free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_gpu, setup, teardown),
                cmocka_unit_test_setup_teardown(test_minimal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sriov, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mdev_types, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_diff, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reread, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
