/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <umockdev.h>
#include <unistd.h>

#include "sysfs-tree.h"

struct SysfsTree {
        UMockdevTestbed *bed;
        char *root; /* real directory that stands in for "/" of /sys */
        char path[4096];
};

static char *real_path(SysfsTree *t, const char *path) {
        g_assert(g_str_has_prefix(path, "/sys/") || g_str_equal(path, "/sys"));
        return g_strconcat(t->root, path, NULL);
}

SysfsTree *sysfs_tree_new(void) {
        SysfsTree *t = g_new0(SysfsTree, 1);
        g_autofree char *sys = NULL;

        t->bed = umockdev_testbed_new();
        g_assert_nonnull(t->bed);
        sys = umockdev_testbed_get_sys_dir(t->bed);
        g_assert_true(g_str_has_suffix(sys, "/sys"));
        t->root = g_strndup(sys, strlen(sys) - strlen("/sys"));

        sysfs_tree_mkdir(t, "/sys/bus/pci/devices");
        sysfs_tree_mkdir(t, "/sys/bus/pci/drivers");
        sysfs_tree_mkdir(t, "/sys/bus/pci/slots");
        sysfs_tree_mkdir(t, "/sys/kernel/iommu_groups");
        sysfs_tree_mkdir(t, "/sys/class/mdev_bus");
        sysfs_tree_mkdir(t, "/sys/bus/mdev/devices");
        sysfs_tree_mkdir(t, "/sys/bus/mdev/drivers/vfio_mdev");
        return t;
}

void sysfs_tree_free(SysfsTree *t) {
        if (!t)
                return;
        g_object_unref(t->bed); /* removes the testbed directory */
        g_free(t->root);
        g_free(t);
}

void sysfs_tree_mkdir(SysfsTree *t, const char *path) {
        g_autofree char *p = real_path(t, path);

        g_assert_cmpint(g_mkdir_with_parents(p, 0755), ==, 0);
}

void sysfs_tree_write_binary(
        SysfsTree *t, const char *dir, const char *attr, const void *data, size_t size) {
        g_autofree char *d = real_path(t, dir);
        g_autofree char *p = g_build_filename(d, attr, NULL);
        g_autofree char *parent = g_path_get_dirname(p);
        GError *error = NULL;

        g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
        if (!g_file_set_contents(p, data, (gssize)size, &error))
                g_error("writing %s: %s", p, error->message);
}

void sysfs_tree_write(SysfsTree *t, const char *dir, const char *attr, const char *value) {
        sysfs_tree_write_binary(t, dir, attr, value, strlen(value));
}

void sysfs_tree_remove_file(SysfsTree *t, const char *dir, const char *attr) {
        g_autofree char *d = real_path(t, dir);
        g_autofree char *p = g_build_filename(d, attr, NULL);

        if (unlink(p) < 0)
                g_assert_cmpint(errno, ==, ENOENT);
}

bool sysfs_tree_exists(SysfsTree *t, const char *path) {
        g_autofree char *p = real_path(t, path);
        struct stat st;

        return lstat(p, &st) >= 0;
}

/* Relative link text from the directory of |path| to |target|, both absolute /sys paths. */
static char *relative_target(const char *path, const char *target) {
        g_auto(GStrv) from = g_strsplit(path, "/", -1), to = g_strsplit(target, "/", -1);
        GString *s = g_string_new(NULL);
        guint nf = g_strv_length(from) - 1, nt = g_strv_length(to), i = 0; /* nf: components of the dir */

        while (i < nf && i < nt && g_str_equal(from[i], to[i]))
                i++;
        for (guint k = i; k < nf; k++)
                g_string_append(s, "../");
        for (guint k = i; k < nt; k++) {
                g_string_append(s, to[k]);
                if (k + 1 < nt)
                        g_string_append_c(s, '/');
        }
        return g_string_free(s, FALSE);
}

void sysfs_tree_symlink(SysfsTree *t, const char *path, const char *target) {
        g_autofree char *p = real_path(t, path);
        g_autofree char *parent = g_path_get_dirname(p);
        g_autofree char *rel = relative_target(path, target);

        g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
        if (unlink(p) < 0)
                g_assert_cmpint(errno, ==, ENOENT);
        g_assert_cmpint(symlink(rel, p), ==, 0);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(p);
}

void sysfs_tree_rm_rf(SysfsTree *t, const char *path) {
        g_autofree char *p = real_path(t, path);
        struct stat st;

        if (lstat(p, &st) < 0)
                return;
        /* The real testbed directory, never /sys: nftw() is fine here. */
        g_assert_cmpint(nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
}

const char *sysfs_tree_pci_path(SysfsTree *t, const char *address) {
        /* Flat layout: every function directly below its host bridge, /sys/devices/pciDDDD:BB/<address>. */
        const char *dot = strrchr(address, ':');

        g_assert_nonnull(dot);
        g_snprintf(
                t->path, sizeof(t->path), "/sys/devices/pci%.*s/%s", (int)(dot - address), address, address);
        return t->path;
}

/* "0x%0*x\n" with |width| digits, as the kernel prints ids. */
static void write_hex(SysfsTree *t, const char *dir, const char *attr, int width, unsigned v) {
        char buf[32];

        g_snprintf(buf, sizeof(buf), "0x%0*x\n", width, v);
        sysfs_tree_write(t, dir, attr, buf);
}

const char *sysfs_tree_add_pci(
        SysfsTree *t, const char *address, uint16_t vendor, uint16_t device, uint32_t class_code) {
        g_autofree char *dir = g_strdup(sysfs_tree_pci_path(t, address));
        g_autofree char *bus_link = g_strdup_printf("/sys/bus/pci/devices/%s", address);
        g_autofree char *subsystem = g_strdup_printf("%s/subsystem", dir);
        g_autofree char *uevent = g_strdup_printf("PCI_SLOT_NAME=%s\n", address);
        uint8_t config[64] = {};

        sysfs_tree_mkdir(t, dir);
        write_hex(t, dir, "vendor", 4, vendor);
        write_hex(t, dir, "device", 4, device);
        write_hex(t, dir, "subsystem_vendor", 4, vendor);
        write_hex(t, dir, "subsystem_device", 4, 0x1234);
        write_hex(t, dir, "class", 6, class_code);
        sysfs_tree_write(t, dir, "revision", "0x01\n");
        sysfs_tree_write(t, dir, "numa_node", "-1\n");
        sysfs_tree_write(t, dir, "driver_override", "(null)\n");
        sysfs_tree_write(t, dir, "uevent", uevent);
        {
                GString *s = g_string_new(NULL);

                for (int i = 0; i < 13; i++)
                        g_string_append(s, "0x0000000000000000 0x0000000000000000 0x0000000000000000\n");
                sysfs_tree_write(t, dir, "resource", s->str);
                g_string_free(s, TRUE);
        }
        config[0] = vendor & 0xff;
        config[1] = vendor >> 8;
        config[2] = device & 0xff;
        config[3] = device >> 8;
        config[8] = 0x01;
        config[9] = class_code & 0xff;
        config[10] = (class_code >> 8) & 0xff;
        config[11] = (class_code >> 16) & 0xff;
        sysfs_tree_write_binary(t, dir, "config", config, sizeof(config));

        sysfs_tree_symlink(t, subsystem, "/sys/bus/pci");
        sysfs_tree_symlink(t, bus_link, dir);
        return sysfs_tree_pci_path(t, address);
}

void sysfs_tree_remove_pci(SysfsTree *t, const char *address) {
        g_autofree char *bus_link = g_strdup_printf("/sys/bus/pci/devices/%s", address);

        sysfs_tree_set_group(t, address, -1);
        sysfs_tree_bind(t, address, NULL);
        sysfs_tree_rm_rf(t, sysfs_tree_pci_path(t, address));
        sysfs_tree_rm_rf(t, bus_link);
}

void sysfs_tree_set_serial(SysfsTree *t, const char *address, uint64_t serial) {
        uint8_t config[4096] = {};
        g_autofree char *dir = g_strdup(sysfs_tree_pci_path(t, address));
        g_autofree char *old = NULL;
        g_autofree char *real = real_path(t, dir);
        g_autofree char *cfg = g_build_filename(real, "config", NULL);
        gsize n = 0;
        uint32_t hdr;

        g_assert_true(g_file_get_contents(cfg, &old, &n, NULL));
        memcpy(config, old, MIN(n, (gsize)64));
        config[0x06] |= 0x10; /* PCI_STATUS_CAP_LIST */
        config[0x34] = 0x40; /* capability pointer */
        config[0x40] = 0x10; /* PCI_CAP_ID_EXP */
        config[0x41] = 0x00; /* last capability */
        config[0x42] = 0x02; /* PCIe capability version 2, endpoint */
        /* Extended capability header: ID 0x0003 (DSN), version 1, next 0 (PCIe r6.0 §7.9.3). */
        hdr = 0x0003u | (1u << 16) | (0u << 20);
        memcpy(config + 0x100, &hdr, 4);
        for (int i = 0; i < 8; i++)
                config[0x104 + i] = (uint8_t)(serial >> (8 * i));
        sysfs_tree_write_binary(t, dir, "config", config, sizeof(config));
}

void sysfs_tree_set_group(SysfsTree *t, const char *address, int group) {
        g_autofree char *dir = g_strdup(sysfs_tree_pci_path(t, address));
        g_autofree char *link = g_strdup_printf("%s/iommu_group", dir);
        g_autofree char *group_dir = NULL, *member = NULL, *old = NULL;
        g_autofree char *real = real_path(t, link);

        /* Leave the old group first. */
        old = g_file_read_link(real, NULL);
        if (old) {
                g_autofree char *old_group = g_path_get_basename(old);
                g_autofree char *old_member =
                        g_strdup_printf("/sys/kernel/iommu_groups/%s/devices/%s", old_group, address);

                sysfs_tree_rm_rf(t, old_member);
                g_assert_cmpint(unlink(real), ==, 0);
        }
        if (group < 0)
                return;

        group_dir = g_strdup_printf("/sys/kernel/iommu_groups/%d", group);
        member = g_strdup_printf("%s/devices/%s", group_dir, address);
        sysfs_tree_mkdir(t, group_dir);
        sysfs_tree_symlink(t, member, dir);
        sysfs_tree_symlink(t, link, group_dir);
}

void sysfs_tree_bind(SysfsTree *t, const char *address, const char *driver) {
        g_autofree char *dir = g_strdup(sysfs_tree_pci_path(t, address));
        g_autofree char *link = g_strdup_printf("%s/driver", dir);
        g_autofree char *real = real_path(t, link);
        g_autofree char *old = g_file_read_link(real, NULL);

        if (old) {
                g_autofree char *old_driver = g_path_get_basename(old);
                g_autofree char *back = g_strdup_printf("/sys/bus/pci/drivers/%s/%s", old_driver, address);

                sysfs_tree_rm_rf(t, back);
                g_assert_cmpint(unlink(real), ==, 0);
        }
        if (!driver)
                return;

        g_autofree char *driver_dir = g_strdup_printf("/sys/bus/pci/drivers/%s", driver);
        g_autofree char *back = g_strdup_printf("%s/%s", driver_dir, address);
        sysfs_tree_mkdir(t, driver_dir);
        sysfs_tree_symlink(t, back, dir);
        sysfs_tree_symlink(t, link, driver_dir);
}

void sysfs_tree_add_slot(SysfsTree *t, const char *name, const char *slot_address) {
        g_autofree char *dir = g_strdup_printf("/sys/bus/pci/slots/%s", name);
        g_autofree char *value = g_strdup_printf("%s\n", slot_address);

        sysfs_tree_write(t, dir, "address", value);
}

void sysfs_tree_make_pf(SysfsTree *t, const char *pf, unsigned total_vfs) {
        g_autofree char *dir = g_strdup(sysfs_tree_pci_path(t, pf));
        char buf[16];

        g_snprintf(buf, sizeof(buf), "%u\n", total_vfs);
        sysfs_tree_write(t, dir, "sriov_totalvfs", buf);
        sysfs_tree_write(t, dir, "sriov_numvfs", "0\n");
        sysfs_tree_write(t, dir, "sriov_drivers_autoprobe", "1\n");
        sysfs_tree_write(t, dir, "sriov_offset", "16\n");
        sysfs_tree_write(t, dir, "sriov_stride", "1\n");
}

const char *sysfs_tree_add_vf(SysfsTree *t, const char *pf, unsigned n, const char *vf, uint16_t device) {
        g_autofree char *pf_dir = g_strdup(sysfs_tree_pci_path(t, pf));
        g_autofree char *vf_dir = NULL, *virtfn = g_strdup_printf("%s/virtfn%u", pf_dir, n), *physfn = NULL;
        char buf[16];

        vf_dir = g_strdup(sysfs_tree_add_pci(t, vf, 0x8086, device, 0x020000));
        physfn = g_strdup_printf("%s/physfn", vf_dir);
        sysfs_tree_symlink(t, physfn, pf_dir);
        sysfs_tree_symlink(t, virtfn, vf_dir);
        g_snprintf(buf, sizeof(buf), "%u\n", n + 1);
        sysfs_tree_write(t, pf_dir, "sriov_numvfs", buf);
        return sysfs_tree_pci_path(t, vf);
}

void sysfs_tree_remove_vf(SysfsTree *t, const char *pf, unsigned n, const char *vf) {
        g_autofree char *pf_dir = g_strdup(sysfs_tree_pci_path(t, pf));
        g_autofree char *virtfn = g_strdup_printf("%s/virtfn%u", pf_dir, n);
        char buf[16];

        sysfs_tree_rm_rf(t, virtfn);
        sysfs_tree_remove_pci(t, vf);
        g_snprintf(buf, sizeof(buf), "%u\n", n);
        sysfs_tree_write(t, pf_dir, "sriov_numvfs", buf);
}

void sysfs_tree_add_mdev_type(
        SysfsTree *t, const char *parent_syspath, const char *type, const char *name, unsigned available) {
        g_autofree char *dir = g_strdup_printf("%s/mdev_supported_types/%s", parent_syspath, type);
        g_autofree char *devices = g_strdup_printf("%s/devices", dir);
        g_autofree char *n = g_strdup_printf("%s\n", name);

        sysfs_tree_mkdir(t, devices);
        sysfs_tree_write(t, dir, "name", n);
        sysfs_tree_write(t, dir, "device_api", "vfio-pci\n");
        sysfs_tree_write(t, dir, "description", "low_gm_size: 128MB\nhigh_gm_size: 512MB\n");
        sysfs_tree_write(t, dir, "create", "");
        sysfs_tree_set_available(t, parent_syspath, type, available);
}

void sysfs_tree_set_available(
        SysfsTree *t, const char *parent_syspath, const char *type, unsigned available) {
        g_autofree char *dir = g_strdup_printf("%s/mdev_supported_types/%s", parent_syspath, type);
        char buf[16];

        g_snprintf(buf, sizeof(buf), "%u\n", available);
        sysfs_tree_write(t, dir, "available_instances", buf);
}

void sysfs_tree_register_parent(SysfsTree *t, const char *parent_syspath) {
        g_autofree char *name = g_path_get_basename(parent_syspath);
        g_autofree char *link = g_strdup_printf("/sys/class/mdev_bus/%s", name);

        sysfs_tree_symlink(t, link, parent_syspath);
}

void sysfs_tree_unregister_parent(SysfsTree *t, const char *parent_syspath) {
        g_autofree char *name = g_path_get_basename(parent_syspath);
        g_autofree char *link = g_strdup_printf("/sys/class/mdev_bus/%s", name);

        sysfs_tree_rm_rf(t, link);
}

const char *sysfs_tree_add_mdev(
        SysfsTree *t, const char *parent_syspath, const char *uuid, const char *type, int group) {
        g_autofree char *dir = g_strdup_printf("%s/%s", parent_syspath, uuid);
        g_autofree char *type_dir = g_strdup_printf("%s/mdev_supported_types/%s", parent_syspath, type);
        g_autofree char *type_link = g_strdup_printf("%s/mdev_type", dir);
        g_autofree char *type_member = g_strdup_printf("%s/devices/%s", type_dir, uuid);
        g_autofree char *bus_link = g_strdup_printf("/sys/bus/mdev/devices/%s", uuid);
        g_autofree char *subsystem = g_strdup_printf("%s/subsystem", dir);
        g_autofree char *uevent = g_strdup_printf("MDEV_TYPE=%s\n", type);

        sysfs_tree_mkdir(t, dir);
        sysfs_tree_write(t, dir, "uevent", uevent);
        sysfs_tree_symlink(t, subsystem, "/sys/bus/mdev");
        sysfs_tree_symlink(t, type_link, type_dir);
        sysfs_tree_symlink(t, type_member, dir);
        sysfs_tree_symlink(t, bus_link, dir);
        if (group >= 0) {
                g_autofree char *group_dir = g_strdup_printf("/sys/kernel/iommu_groups/%d", group);
                g_autofree char *member = g_strdup_printf("%s/devices/%s", group_dir, uuid);
                g_autofree char *link = g_strdup_printf("%s/iommu_group", dir);
                g_autofree char *drv = g_strdup_printf("%s/driver", dir);

                sysfs_tree_mkdir(t, group_dir);
                sysfs_tree_symlink(t, member, dir);
                sysfs_tree_symlink(t, link, group_dir);
                sysfs_tree_symlink(t, drv, "/sys/bus/mdev/drivers/vfio_mdev");
        }
        g_snprintf(t->path, sizeof(t->path), "%s", dir);
        return t->path;
}

void sysfs_tree_remove_mdev(SysfsTree *t, const char *parent_syspath, const char *uuid) {
        g_autofree char *dir = g_strdup_printf("%s/%s", parent_syspath, uuid);
        g_autofree char *link = g_strdup_printf("%s/iommu_group", dir);
        g_autofree char *real = real_path(t, link);
        g_autofree char *group = g_file_read_link(real, NULL);
        g_autofree char *type_link = g_strdup_printf("%s/mdev_type", dir);
        g_autofree char *type_real = real_path(t, type_link);
        g_autofree char *type_dir = g_file_read_link(type_real, NULL);
        g_autofree char *bus_link = g_strdup_printf("/sys/bus/mdev/devices/%s", uuid);

        if (group) {
                g_autofree char *g = g_path_get_basename(group);
                g_autofree char *member = g_strdup_printf("/sys/kernel/iommu_groups/%s/devices/%s", g, uuid);
                sysfs_tree_rm_rf(t, member);
        }
        if (type_dir) {
                g_autofree char *type = g_path_get_basename(type_dir);
                g_autofree char *member =
                        g_strdup_printf("%s/mdev_supported_types/%s/devices/%s", parent_syspath, type, uuid);
                sysfs_tree_rm_rf(t, member);
        }
        sysfs_tree_rm_rf(t, dir);
        sysfs_tree_rm_rf(t, bus_link);
}
