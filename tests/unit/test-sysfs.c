/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pci-device.h"
#include "sysfs.h"

static void test_parse_hex(void **state) {
        uint32_t v = 0xdead;

        assert_int_equal(sysfs_parse_hex("0x8086\n", 16, &v), 0);
        assert_int_equal(v, 0x8086);
        assert_int_equal(sysfs_parse_hex("0x8086", 16, &v), 0);
        assert_int_equal(v, 0x8086);
        assert_int_equal(sysfs_parse_hex("0X10DE\n", 16, &v), 0);
        assert_int_equal(v, 0x10de);
        assert_int_equal(sysfs_parse_hex("0x030000\n", 24, &v), 0);
        assert_int_equal(v, 0x030000);
        assert_int_equal(sysfs_parse_hex("0xffffffff", 32, &v), 0);
        assert_int_equal(v, 0xffffffffu);
        assert_int_equal(sysfs_parse_hex("0x0000000001", 8, &v), 0); /* leading zeros are fine */
        assert_int_equal(v, 1);

        v = 0xdead;
        assert_int_equal(sysfs_parse_hex("8086\n", 16, &v), -EINVAL); /* no 0x */
        assert_int_equal(sysfs_parse_hex("0x18086\n", 16, &v), -ERANGE);
        assert_int_equal(sysfs_parse_hex("0x100", 8, &v), -ERANGE);
        assert_int_equal(sysfs_parse_hex("0x100000000", 32, &v), -ERANGE);
        assert_int_equal(sysfs_parse_hex("0xzz12", 16, &v), -EINVAL);
        assert_int_equal(sysfs_parse_hex("0x80zz", 16, &v), -EINVAL);
        assert_int_equal(sysfs_parse_hex("zz", 16, &v), -EINVAL);
        assert_int_equal(sysfs_parse_hex("", 16, &v), -EINVAL);
        assert_int_equal(sysfs_parse_hex("0x", 16, &v), -EINVAL);
        assert_int_equal(sysfs_parse_hex("0x\n", 16, &v), -EINVAL);
        assert_int_equal(sysfs_parse_hex("0x8086\n\n", 16, &v), -EINVAL);
        assert_int_equal(sysfs_parse_hex("0x8086 ", 16, &v), -EINVAL);
        assert_int_equal(sysfs_parse_hex(" 0x8086", 16, &v), -EINVAL);
        assert_int_equal(sysfs_parse_hex(NULL, 16, &v), -EINVAL);
        assert_int_equal(v, 0xdead); /* untouched on failure */
}

static void test_parse_int(void **state) {
        int64_t v = 42;

        assert_int_equal(sysfs_parse_int("-1\n", -1, INT32_MAX, &v), 0);
        assert_int_equal(v, -1);
        assert_int_equal(sysfs_parse_int("4\n", 0, 65535, &v), 0);
        assert_int_equal(v, 4);
        assert_int_equal(sysfs_parse_int("0", 0, 0, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(sysfs_parse_int("+7", 0, 10, &v), 0);
        assert_int_equal(v, 7);

        v = 42;
        assert_int_equal(sysfs_parse_int("-2\n", -1, INT32_MAX, &v), -ERANGE);
        assert_int_equal(sysfs_parse_int("65536", 0, 65535, &v), -ERANGE);
        assert_int_equal(sysfs_parse_int("99999999999999999999", 0, INT64_MAX, &v), -ERANGE);
        assert_int_equal(sysfs_parse_int("", 0, 10, &v), -EINVAL);
        assert_int_equal(sysfs_parse_int("\n", 0, 10, &v), -EINVAL);
        assert_int_equal(sysfs_parse_int("4x", 0, 10, &v), -EINVAL);
        assert_int_equal(sysfs_parse_int("0x4", 0, 10, &v), -EINVAL);
        assert_int_equal(sysfs_parse_int(" 4", 0, 10, &v), -EINVAL);
        assert_int_equal(sysfs_parse_int("-", 0, 10, &v), -EINVAL);
        assert_int_equal(sysfs_parse_int("4\n\n", 0, 10, &v), -EINVAL);
        assert_int_equal(v, 42);
}

static void test_parse_bool(void **state) {
        bool b = false;

        assert_int_equal(sysfs_parse_bool("1\n", &b), 0);
        assert_true(b);
        assert_int_equal(sysfs_parse_bool("0", &b), 0);
        assert_false(b);

        b = true;
        assert_int_equal(sysfs_parse_bool("2\n", &b), -EINVAL);
        assert_int_equal(sysfs_parse_bool("yes", &b), -EINVAL);
        assert_int_equal(sysfs_parse_bool("", &b), -EINVAL);
        assert_int_equal(sysfs_parse_bool("10", &b), -EINVAL);
        assert_int_equal(sysfs_parse_bool(NULL, &b), -EINVAL);
        assert_true(b);
}

static void test_parse_resource(void **state) {
        PciResourceLine l = {};

        /* 64-bit prefetchable 256 MiB BAR: IORESOURCE_MEM | PREFETCH | MEM_64 | SIZEALIGN... */
        assert_int_equal(
                sysfs_parse_resource_line("0x0000006000000000 0x000000600fffffff 0x000000000014220c\n", &l),
                0);
        assert_true(l.start == UINT64_C(0x6000000000));
        assert_true(l.end == UINT64_C(0x600fffffff));
        assert_true(l.flags == UINT64_C(0x14220c));

        /* I/O BAR */
        assert_int_equal(
                sysfs_parse_resource_line("0x000000000000e000 0x000000000000e07f 0x0000000000040101", &l),
                0);
        assert_true(l.start == 0xe000 && l.end == 0xe07f && l.flags == 0x40101);

        /* unused */
        assert_int_equal(
                sysfs_parse_resource_line("0x0000000000000000 0x0000000000000000 0x0000000000000000\n", &l),
                0);
        assert_true(l.start == 0 && l.end == 0 && l.flags == 0);

        l.start = 77;
        assert_int_equal(sysfs_parse_resource_line("", &l), -EINVAL);
        assert_int_equal(sysfs_parse_resource_line("0x0000006000000000 0x000000600fffffff", &l), -EINVAL);
        assert_int_equal(sysfs_parse_resource_line("0x0000006000000000 0x000000600fffffff ", &l), -EINVAL);
        assert_int_equal(sysfs_parse_resource_line("0x0000006000000000 0x00000060", &l), -EINVAL);
        assert_int_equal(sysfs_parse_resource_line("0x00 0x01 0x02 0x03", &l), -EINVAL);
        assert_int_equal(sysfs_parse_resource_line("0x00  0x01 0x02", &l), -EINVAL);
        assert_int_equal(sysfs_parse_resource_line("00 01 02", &l), -EINVAL);
        assert_int_equal(sysfs_parse_resource_line("0xzz 0x01 0x02", &l), -EINVAL);
        assert_int_equal(sysfs_parse_resource_line("0x10000000000000000 0x01 0x02", &l), -ERANGE);
        assert_int_equal(l.start, 77);
}

static void test_tables(void **state) {
        assert_string_equal(sriov_role_to_string(SRIOV_ROLE_NONE), "none");
        assert_string_equal(sriov_role_to_string(SRIOV_ROLE_PF), "pf");
        assert_string_equal(sriov_role_to_string(SRIOV_ROLE_VF), "vf");
        assert_null(sriov_role_to_string(_SRIOV_ROLE_MAX));
        assert_null(sriov_role_to_string(_SRIOV_ROLE_INVALID));
        assert_int_equal(sriov_role_from_string("pf"), SRIOV_ROLE_PF);
        assert_int_equal(sriov_role_from_string("vf"), SRIOV_ROLE_VF);
        assert_int_equal(sriov_role_from_string("none"), SRIOV_ROLE_NONE);
        assert_int_equal(sriov_role_from_string("PF"), -EINVAL);
        assert_int_equal(sriov_role_from_string(NULL), -EINVAL);

        assert_string_equal(pci_bar_type_to_string(PCI_BAR_TYPE_MEMORY), "memory");
        assert_string_equal(pci_bar_type_to_string(PCI_BAR_TYPE_IO), "io");
        assert_null(pci_bar_type_to_string(_PCI_BAR_TYPE_MAX));
        assert_null(pci_bar_type_to_string(_PCI_BAR_TYPE_INVALID));
}

/* Readers against a plain temp directory: they take a directory, not a /sys path. */
static char tmpdir[] = "/tmp/hostdevd-test-sysfs-XXXXXX";

static void put(const char *name, const char *content, size_t n) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(content, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
}

static int setup_dir(void **state) {
        char path[512], *big;

        if (!mkdtemp(tmpdir))
                return -1;
        put("vendor", "0x8086\n", 7);
        put("bad_vendor", "zz12\n", 5);
        put("numa_node", "-1\n", 3);
        put("empty", "", 0);
        put("boot_vga", "1\n", 2);
        put("truncated", "0x80", 4);
        put("nul",
            "0x80\0"
            "86\n",
            8);
        big = malloc(SYSFS_ATTR_MAX + 1);
        memset(big, 'a', SYSFS_ATTR_MAX + 1);
        put("big", big, SYSFS_ATTR_MAX + 1);
        put("exact", big, SYSFS_ATTR_MAX);
        free(big);
        snprintf(path, sizeof(path), "%s/driver", tmpdir);
        if (symlink("../../../bus/pci/drivers/vfio-pci", path) < 0)
                return -1;
        snprintf(path, sizeof(path), "%s/dangling", tmpdir);
        if (symlink("/nonexistent/kernel/iommu_groups/12/", path) < 0)
                return -1;
        return 0;
}

static int teardown_dir(void **state) {
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void test_readers(void **state) {
        char *s = NULL;
        uint32_t v = 0;
        int64_t i = 0;
        bool b = false;

        assert_int_equal(sysfs_read_string(tmpdir, "vendor", &s), 0);
        assert_string_equal(s, "0x8086"); /* newline stripped */
        free(s);
        assert_int_equal(sysfs_read_string(tmpdir, "empty", &s), 0);
        assert_string_equal(s, "");
        free(s);
        assert_int_equal(sysfs_read_string(tmpdir, "exact", &s), 0);
        assert_int_equal(strlen(s), SYSFS_ATTR_MAX);
        free(s);
        s = NULL;
        assert_int_equal(sysfs_read_string(tmpdir, "big", &s), -EFBIG);
        assert_int_equal(sysfs_read_string(tmpdir, "nul", &s), -EINVAL);
        assert_int_equal(sysfs_read_string(tmpdir, "missing", &s), -ENOENT);
        assert_null(s);

        assert_int_equal(sysfs_read_hex(tmpdir, "vendor", 16, &v), 0);
        assert_int_equal(v, 0x8086);
        assert_int_equal(sysfs_read_hex(tmpdir, "bad_vendor", 16, &v), -EINVAL);
        assert_int_equal(sysfs_read_hex(tmpdir, "truncated", 16, &v), 0); /* "0x80" is a valid short value */
        assert_int_equal(v, 0x80);
        assert_int_equal(sysfs_read_hex(tmpdir, "empty", 16, &v), -EINVAL);
        assert_int_equal(sysfs_read_hex(tmpdir, "missing", 16, &v), -ENOENT);
        assert_int_equal(sysfs_read_int(tmpdir, "numa_node", -1, 1024, &i), 0);
        assert_int_equal(i, -1);
        assert_int_equal(sysfs_read_int(tmpdir, "vendor", -1, 1024, &i), -EINVAL);
        assert_int_equal(sysfs_read_bool(tmpdir, "boot_vga", &b), 0);
        assert_true(b);
        assert_int_equal(sysfs_read_bool(tmpdir, "numa_node", &b), -EINVAL);

        assert_int_equal(sysfs_read_link_basename(tmpdir, "driver", &s), 0);
        assert_string_equal(s, "vfio-pci");
        free(s);
        /* readlink works without the target: trailing slash stripped */
        assert_int_equal(sysfs_read_link_basename(tmpdir, "dangling", &s), 0);
        assert_string_equal(s, "12");
        free(s);
        assert_int_equal(sysfs_read_link_basename(tmpdir, "vendor", &s), -EINVAL); /* not a link */
        assert_int_equal(sysfs_read_link_basename(tmpdir, "iommu_group", &s), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_hex),  cmocka_unit_test(test_parse_int),
                cmocka_unit_test(test_parse_bool), cmocka_unit_test(test_parse_resource),
                cmocka_unit_test(test_tables),     cmocka_unit_test(test_readers),
        };
        return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
