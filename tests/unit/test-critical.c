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

#include "critical.h"
#include "macro.h"
#include "strv.h"
#include "sysfs-tree.h"

/*
 * A fake root: /proc/self/mountinfo, /proc/swaps, /proc/net/{route,ipv6_route}, and a /sys shaped like the
 * kernel's: devices under /sys/devices, relative links from /sys/dev/block, /sys/class/{block,net} and
 * /sys/bus/pci/devices, "subsystem" links on PCI functions.
 */
typedef struct Fixture {
        char root[64];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        strcpy(f->root, "/tmp/test-critical-XXXXXX");
        assert_non_null(mkdtemp(f->root));
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void mkdirs(Fixture *f, const char *path) {
        char buf[1024];

        snprintf(buf, sizeof(buf), "%s%s", f->root, path);
        for (char *p = buf + strlen(f->root) + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        assert_true(mkdir(buf, 0755) >= 0 || errno == EEXIST);
                        *p = '/';
                }
        assert_true(mkdir(buf, 0755) >= 0 || errno == EEXIST);
}

static void write_file(Fixture *f, const char *path, const char *content) {
        char buf[1024], dir[1024];
        FILE *file;

        snprintf(dir, sizeof(dir), "%s", path);
        *strrchr(dir, '/') = '\0';
        if (*dir)
                mkdirs(f, dir);
        snprintf(buf, sizeof(buf), "%s%s", f->root, path);
        file = fopen(buf, "we");
        assert_non_null(file);
        fputs(content, file);
        assert_int_equal(fclose(file), 0);
}

/* A relative link at |link| to |target| (both absolute inside the root), as sysfs makes them. */
static void link_to(Fixture *f, const char *link, const char *target) {
        char buf[1024], rel[1024] = "", dir[1024];

        snprintf(dir, sizeof(dir), "%s", link);
        *strrchr(dir, '/') = '\0';
        mkdirs(f, dir);
        for (const char *p = link + 1; (p = strchr(p, '/')); p++)
                strcat(rel, "../");
        strcat(rel, target + 1);
        snprintf(buf, sizeof(buf), "%s%s", f->root, link);
        assert_int_equal(symlink(rel, buf), 0);
}

/* PCI functions along |path| ("/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0"): dirs + subsystem links.
 */
static void add_pci(Fixture *f, const char *path) {
        char buf[1024], sub[1100];

        snprintf(buf, sizeof(buf), "%s", path);
        mkdirs(f, buf);
        for (char *p = buf + strlen("/sys/devices/pci0000:00/"); p;) {
                char *slash = strchr(p, '/');
                if (slash)
                        *slash = '\0';
                snprintf(sub, sizeof(sub), "%s/subsystem", buf);
                char full[1200];
                snprintf(full, sizeof(full), "%s%s", f->root, sub);
                if (access(full, F_OK) < 0 && errno == ENOENT) {
                        struct stat st;
                        if (lstat(full, &st) < 0)
                                link_to(f, sub, "/sys/bus/pci");
                }
                if (!slash)
                        break;
                *slash = '/';
                p = slash + 1;
        }
        mkdirs(f, "/sys/bus/pci");
}

/* A block device at |devpath| with MAJ:MIN |devnum|, in /sys/dev/block and /sys/class/block. */
static void add_block(Fixture *f, const char *devpath, const char *devnum, bool partition) {
        char buf[256];
        const char *name = strrchr(devpath, '/') + 1;

        mkdirs(f, devpath);
        snprintf(buf, sizeof(buf), "/sys/dev/block/%s", devnum);
        link_to(f, buf, devpath);
        snprintf(buf, sizeof(buf), "/sys/class/block/%s", name);
        link_to(f, buf, devpath);
        snprintf(buf, sizeof(buf), "%s/dev", devpath);
        write_file(f, buf, devnum);
        if (partition) {
                snprintf(buf, sizeof(buf), "%s/partition", devpath);
                write_file(f, buf, "1\n");
        }
        snprintf(buf, sizeof(buf), "/dev/%s", name);
        write_file(f, buf, "");
}

static void add_slave(Fixture *f, const char *upper, const char *lower) {
        char buf[256];

        snprintf(buf, sizeof(buf), "%s/slaves/%s", upper, strrchr(lower, '/') + 1);
        link_to(f, buf, lower);
}

static void add_netdev(Fixture *f, const char *devpath) {
        char buf[256];

        mkdirs(f, devpath);
        snprintf(buf, sizeof(buf), "/sys/class/net/%s", strrchr(devpath, '/') + 1);
        link_to(f, buf, devpath);
}

#define MOUNTINFO_BASE                                                  \
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n"               \
        "23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n"              \
        "25 24 0:23 / /dev/shm rw,relatime shared:3 - tmpfs tmpfs rw\n" \
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n"
#define ROUTE_HEADER \
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT   \n"

static CriticalSet *compute_ok(Fixture *f, const PciDevice *const *devices, size_t n) {
        CriticalSet *s = NULL;
        char *error = NULL;
        int r;

        r = critical_compute(f->root, devices, n, &s, &error);
        if (r < 0)
                fail_msg("critical_compute: %s: %s", strerror(-r), strna(error));
        assert_null(error);
        return s;
}

static void assert_reason(const CriticalSet *s, const char *address, const char *reason) {
        const CriticalDevice *d = critical_set_get(s, address);

        if (!d)
                fail_msg("%s not critical", address);
        assert_string_equal(d->reason, reason);
}

static bool notes_contain(const CriticalSet *s, const char *needle) {
        STRV_FOREACH (n, s->notes)
                if (strstr(*n, needle))
                        return true;
        return false;
}

static void test_root_on_nvme(void **state) {
        _cleanup_(critical_set_freep) CriticalSet *s = NULL;
        Fixture *f = *state;

        add_pci(f, "/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0");
        add_block(f, "/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1", "259:0", false);
        add_block(
                f, "/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1/nvme0n1p2", "259:2",
                true);
        add_block(
                f, "/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1/nvme0n1p1", "259:1",
                true);
        /* A function that is not on any path stays out. */
        add_pci(f, "/sys/devices/pci0000:00/0000:00:1f.0");
        write_file(
                f, "/proc/self/mountinfo",
                MOUNTINFO_BASE "27 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
                               "40 27 259:1 / /boot/efi rw,relatime shared:2 - vfat /dev/nvme0n1p1 rw\n"
                               /* a bind mount of the same device: named once, by its first mount */
                               "41 27 259:2 /srv /var/lib/foo rw - ext4 /dev/nvme0n1p2 rw\n");
        s = compute_ok(f, NULL, 0);
        assert_int_equal(s->n_devices, 2);
        assert_string_equal(s->devices[0].address, "0000:00:1d.0");
        assert_string_equal(s->devices[1].address, "0000:3d:00.0");
        assert_reason(
                s, "0000:3d:00.0",
                "controller of / (/dev/nvme0n1p2, ext4); controller of /boot/efi (/dev/nvme0n1p1, vfat)");
        assert_reason(
                s, "0000:00:1d.0",
                "upstream bridge of 0000:3d:00.0: controller of / (/dev/nvme0n1p2, ext4); upstream bridge of "
                "0000:3d:00.0: controller of /boot/efi (/dev/nvme0n1p1, vfat)");
        assert_null(critical_set_get(s, "0000:00:1f.0"));
}

static void test_lvm_on_md_raid1(void **state) {
        _cleanup_(critical_set_freep) CriticalSet *s = NULL;
        Fixture *f = *state;
        const char *
                sda1 = "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1",
               *sdb1 = "/sys/devices/pci0000:00/0000:00:1c.0/0000:02:00.0/ata3/host2/target2:0:0/2:0:0:0/block/"
                       "sdb/sdb1";

        add_pci(f, "/sys/devices/pci0000:00/0000:00:17.0");
        add_pci(f, "/sys/devices/pci0000:00/0000:00:1c.0/0000:02:00.0");
        add_block(
                f, "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda", "8:0",
                false);
        add_block(f, sda1, "8:1", true);
        add_block(
                f,
                "/sys/devices/pci0000:00/0000:00:1c.0/0000:02:00.0/ata3/host2/target2:0:0/2:0:0:0/block/sdb",
                "8:16", false);
        add_block(f, sdb1, "8:17", true);
        add_block(f, "/sys/devices/virtual/block/md0", "9:0", false);
        add_slave(f, "/sys/devices/virtual/block/md0", sda1);
        add_slave(f, "/sys/devices/virtual/block/md0", sdb1);
        add_block(f, "/sys/devices/virtual/block/dm-0", "253:0", false);
        add_slave(f, "/sys/devices/virtual/block/dm-0", "/sys/devices/virtual/block/md0");
        /* A loop back to the top must not recurse forever. */
        add_slave(f, "/sys/devices/virtual/block/md0", "/sys/devices/virtual/block/dm-0");
        write_file(
                f, "/proc/self/mountinfo",
                MOUNTINFO_BASE "27 1 253:0 / / rw - ext4 /dev/mapper/vg-root rw\n");

        s = compute_ok(f, NULL, 0);
        assert_int_equal(s->n_devices, 3);
        assert_reason(s, "0000:00:17.0", "controller of / (/dev/mapper/vg-root, ext4) through sda1");
        assert_reason(s, "0000:02:00.0", "controller of / (/dev/mapper/vg-root, ext4) through sdb1");
        assert_reason(
                s, "0000:00:1c.0",
                "upstream bridge of 0000:02:00.0: controller of / (/dev/mapper/vg-root, ext4) through sdb1");
}

static void test_md_partition_and_swap(void **state) {
        _cleanup_(critical_set_freep) CriticalSet *s = NULL;
        Fixture *f = *state;
        const char *
                sdc = "/sys/devices/pci0000:00/0000:00:1c.4/0000:05:00.0/ata5/host4/target4:0:0/4:0:0:0/block/sdc",
               *nvme = "/sys/devices/pci0000:00/0000:00:1b.0/0000:06:00.0/nvme/nvme1/nvme1n1";

        add_pci(f, "/sys/devices/pci0000:00/0000:00:1c.4/0000:05:00.0");
        add_pci(f, "/sys/devices/pci0000:00/0000:00:1b.0/0000:06:00.0");
        add_block(f, sdc, "8:32", false);
        add_block(
                f,
                "/sys/devices/pci0000:00/0000:00:1c.4/0000:05:00.0/ata5/host4/target4:0:0/4:0:0:0/block/sdc/sdc2",
                "8:34", true);
        /* /home on md1p1, a partition of an md array over an nvme disk: found through the parent's slaves.
         */
        add_block(f, nvme, "259:4", false);
        add_block(f, "/sys/devices/virtual/block/md1", "9:1", false);
        add_block(f, "/sys/devices/virtual/block/md1/md1p1", "259:5", true);
        add_slave(f, "/sys/devices/virtual/block/md1", nvme);
        /* zram swap: virtual, no PCI function, no error */
        add_block(f, "/sys/devices/virtual/block/zram0", "252:0", false);
        write_file(
                f, "/proc/self/mountinfo",
                MOUNTINFO_BASE "27 1 259:5 / /home rw - xfs /dev/md1p1 rw\n"
                               "28 1 0:30 / / rw - tmpfs tmpfs rw\n");
        write_file(
                f, "/proc/swaps",
                "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                "/dev/sdc2                               partition\t8388604\t\t0\t\t-2\n"
                "/dev/zram0                              partition\t4194300\t\t0\t\t100\n"
                "/home/swap\\040file                      file\t\t1048572\t\t0\t\t-3\n");
        s = compute_ok(f, NULL, 0);
        assert_reason(s, "0000:05:00.0", "controller of swap /dev/sdc2");
        assert_reason(s, "0000:00:1c.4", "upstream bridge of 0000:05:00.0: controller of swap /dev/sdc2");
        assert_reason(
                s, "0000:06:00.0",
                "controller of /home (/dev/md1p1, xfs) through nvme1n1; controller of swap file /home/swap file (on "
                "/home, /dev/md1p1) through nvme1n1");
        assert_int_equal(s->n_devices, 4);
        assert_true(notes_contain(s, "controller of swap /dev/zram0: no PCI function"));
}

static void test_default_route_bond(void **state) {
        _cleanup_(critical_set_freep) CriticalSet *s = NULL;
        Fixture *f = *state;

        add_pci(f, "/sys/devices/pci0000:00/0000:00:03.0");
        add_pci(f, "/sys/devices/pci0000:00/0000:00:04.0");
        add_netdev(f, "/sys/devices/pci0000:00/0000:00:03.0/net/eth0");
        add_netdev(f, "/sys/devices/pci0000:00/0000:00:04.0/net/eth1");
        add_netdev(
                f, "/sys/devices/pci0000:00/0000:00:05.0/net/eth9"); /* not a PCI function: no subsystem */
        add_netdev(f, "/sys/devices/virtual/net/bond0");
        link_to(f, "/sys/devices/virtual/net/bond0/lower_eth0",
                "/sys/devices/pci0000:00/0000:00:03.0/net/eth0");
        write_file(f, "/sys/devices/virtual/net/bond0/bonding/slaves", "eth0 eth1\n");
        write_file(f, "/proc/self/mountinfo", MOUNTINFO_BASE);
        write_file(
                f, "/proc/net/route",
                ROUTE_HEADER "bond0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0       \n"
                             "bond0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0       \n"
                             /* not a default route: a /24 via eth9 */
                             "eth9\t000300C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
                             /* an unreachable default route carries nothing */
                             "eth9\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0\n");
        s = compute_ok(f, NULL, 0);
        assert_int_equal(s->n_devices, 2);
        assert_reason(s, "0000:00:03.0", "carries the default route via bond0 (through eth0)");
        assert_reason(s, "0000:00:04.0", "carries the default route via bond0 (through eth1)");
}

static void test_default_route_bridge_and_vlan(void **state) {
        _cleanup_(critical_set_freep) CriticalSet *s = NULL;
        Fixture *f = *state;

        add_pci(f, "/sys/devices/pci0000:00/0000:00:1c.2/0000:03:00.0");
        add_netdev(f, "/sys/devices/pci0000:00/0000:00:1c.2/0000:03:00.0/net/enp3s0");
        add_netdev(f, "/sys/devices/virtual/net/br0");
        add_netdev(f, "/sys/devices/virtual/net/enp3s0.10");
        link_to(f, "/sys/devices/virtual/net/br0/brif/enp3s0.10",
                "/sys/devices/virtual/net/enp3s0.10/brport");
        mkdirs(f, "/sys/devices/virtual/net/enp3s0.10/brport");
        link_to(f, "/sys/devices/virtual/net/enp3s0.10/lower_enp3s0",
                "/sys/devices/pci0000:00/0000:00:1c.2/0000:03:00.0/net/enp3s0");
        write_file(f, "/proc/self/mountinfo", MOUNTINFO_BASE);
        write_file(
                f, "/proc/net/route",
                ROUTE_HEADER "br0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n");
        s = compute_ok(f, NULL, 0);
        assert_int_equal(s->n_devices, 2);
        assert_reason(s, "0000:03:00.0", "carries the default route via br0 (through enp3s0)");
        assert_reason(
                s, "0000:00:1c.2",
                "upstream bridge of 0000:03:00.0: carries the default route via br0 (through enp3s0)");
}

static void test_ipv6_only(void **state) {
        _cleanup_(critical_set_freep) CriticalSet *s = NULL;
        Fixture *f = *state;

        add_pci(f, "/sys/devices/pci0000:00/0000:00:02.0");
        add_netdev(f, "/sys/devices/pci0000:00/0000:00:02.0/virtio0/net/eth2");
        add_netdev(f, "/sys/devices/virtual/net/lo");
        write_file(f, "/proc/self/mountinfo", MOUNTINFO_BASE);
        write_file(f, "/proc/net/route", ROUTE_HEADER);
        write_file(
                f, "/proc/net/ipv6_route",
                "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
                "00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth2\n"
                "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                "fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth2\n"
                "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
                "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n");
        s = compute_ok(f, NULL, 0);
        assert_int_equal(s->n_devices, 1);
        assert_reason(s, "0000:00:02.0", "carries the IPv6 default route via eth2");
}

static void test_boot_vga(void **state) {
        _cleanup_(critical_set_freep) CriticalSet *s = NULL, *s2 = NULL;
        Fixture *f = *state;
        PciDevice vga = { .address = "0000:01:00.0", .boot_vga = true },
                  other = { .address = "0000:02:00.0" };
        const PciDevice *devices[] = { &other, &vga };

        add_pci(f, "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0");
        add_pci(f, "/sys/devices/pci0000:00/0000:00:01.1/0000:02:00.0");
        link_to(f, "/sys/bus/pci/devices/0000:01:00.0", "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0");
        link_to(f, "/sys/bus/pci/devices/0000:02:00.0", "/sys/devices/pci0000:00/0000:00:01.1/0000:02:00.0");
        write_file(f, "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/boot_vga", "1\n");
        write_file(f, "/sys/devices/pci0000:00/0000:00:01.1/0000:02:00.0/boot_vga", "0\n");
        write_file(f, "/proc/self/mountinfo", MOUNTINFO_BASE);

        /* From the observed devices */
        s = compute_ok(f, devices, ELEMENTSOF(devices));
        assert_int_equal(s->n_devices, 2);
        assert_reason(s, "0000:01:00.0", "boot VGA");
        assert_reason(s, "0000:00:01.0", "upstream bridge of 0000:01:00.0: boot VGA");
        /* From sysfs */
        s2 = compute_ok(f, NULL, 0);
        assert_int_equal(s2->n_devices, 2);
        assert_reason(s2, "0000:01:00.0", "boot VGA");
        assert_reason(s2, "0000:00:01.0", "upstream bridge of 0000:01:00.0: boot VGA");
}

static void test_virtual_block_devices(void **state) {
        _cleanup_(critical_set_freep) CriticalSet *s = NULL;
        _cleanup_free_ char *text = NULL;
        Fixture *f = *state;

        add_pci(f, "/sys/devices/pci0000:00/0000:00:04.0");
        add_block(f, "/sys/devices/virtual/block/loop0", "7:0", false);
        add_block(f, "/sys/devices/virtual/block/nbd0", "43:0", false);
        add_block(f, "/sys/devices/platform/a000000.virtio_mmio/virtio0/block/vda", "254:0", false);
        add_block(f, "/sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vdb", "254:16", false);
        write_file(
                f, "/proc/self/mountinfo",
                MOUNTINFO_BASE "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
                               "50 27 7:0 / /mnt/img rw - ext4 /dev/loop0 rw\n"
                               "51 27 43:0 / /mnt/nbd rw - xfs /dev/nbd0 rw\n"
                               "52 27 254:16 / /data rw - ext4 /dev/vdb rw\n"
                               /* no /sys/dev/block entry: noted, not an error */
                               "53 27 8:99 / /mnt/gone rw - ext4 /dev/sdz rw\n"
                               /* btrfs: anonymous MAJ:MIN, followed by its /dev source */
                               "54 27 0:45 /@home /home rw - btrfs /dev/vdb rw\n"
                               /* spaces in a mount point are escaped */
                               "55 27 0:46 / /mnt/my\\040disk rw - fuse.sshfs me@host: rw\n");
        s = compute_ok(f, NULL, 0);
        assert_int_equal(s->n_devices, 1);
        assert_reason(
                s, "0000:00:04.0",
                "controller of /data (/dev/vdb, ext4); controller of /home (/dev/vdb, btrfs)");
        assert_true(notes_contain(s, "controller of / (/dev/vda, ext4): no PCI function"));
        assert_true(notes_contain(s, "controller of /mnt/img (/dev/loop0, ext4): no PCI function"));
        assert_true(notes_contain(s, "controller of /mnt/nbd (/dev/nbd0, xfs): no PCI function"));
        assert_true(notes_contain(s, "no /sys/dev/block/8:99"));
        text = critical_set_to_string(s);
        assert_string_equal(
                text,
                "0000:00:04.0 controller of /data (/dev/vdb, ext4); controller of /home (/dev/vdb, btrfs)\n");
}

static void expect_error(Fixture *f, const char *file, const char *content, const char *message) {
        CriticalSet *s = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        write_file(f, file, content);
        r = critical_compute(f->root, NULL, 0, &s, &error);
        assert_int_equal(r, -EBADMSG);
        assert_null(s);
        assert_non_null(error);
        if (!strstr(error, message))
                fail_msg("error '%s' lacks '%s'", error, message);
}

static void test_malformed(void **state) {
        Fixture *f = *state;

        write_file(f, "/proc/self/mountinfo", MOUNTINFO_BASE);
        expect_error(
                f, "/proc/net/route",
                ROUTE_HEADER "eth0\tzz000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
                "/proc/net/route:2: bad Destination 'zz000000': eth0\tzz000000");
        expect_error(
                f, "/proc/net/route", ROUTE_HEADER "eth0\t00000000\n",
                "/proc/net/route:2: expected 11 fields, got 2");
        expect_error(
                f, "/proc/net/route",
                ROUTE_HEADER "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\textra\tfields\n",
                "/proc/net/route:2: expected 11 fields, got 12");
        expect_error(
                f, "/proc/net/route",
                ROUTE_HEADER "eth0\t00000000\t010200C0\tQQ\t0\t0\t0\t00000000\t0\t0\t0\n", "bad Flags 'QQ'");
        expect_error(
                f, "/proc/net/route",
                ROUTE_HEADER "../x\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
                "bad Iface '../x'");
        expect_error(
                f, "/proc/net/route", "\x01\x02garbage\n", "/proc/net/route:1: expected 11 fields, got 1");
        write_file(f, "/proc/net/route", ROUTE_HEADER);
        expect_error(
                f, "/proc/net/ipv6_route", "00 00 eth0\n",
                "/proc/net/ipv6_route:1: expected 10 fields, got 3");
        expect_error(
                f, "/proc/net/ipv6_route",
                "0000000000000000000000000000000g 00 00000000000000000000000000000000 00 "
                "00000000000000000000000000000000 00000400 00000002 00000000 00000003 eth0\n",
                "bad destination '0000000000000000000000000000000g'");
        write_file(f, "/proc/net/ipv6_route", "");
        expect_error(
                f, "/proc/self/mountinfo", "27 1 8:1 / /\n", "/proc/self/mountinfo:1: expected 'ID PARENT");
        expect_error(
                f, "/proc/self/mountinfo", MOUNTINFO_BASE "27 1 x:1 / / rw - ext4 /dev/sda1 rw\n",
                "/proc/self/mountinfo:5: bad MAJ:MIN 'x:1'");
        write_file(f, "/proc/self/mountinfo", MOUNTINFO_BASE);
        expect_error(
                f, "/proc/swaps", "Filename Type Size Used Priority\n/dev/sda2 partition 1\n",
                "/proc/swaps:2: expected 'Filename Type Size Used Priority'");
        expect_error(
                f, "/proc/swaps", "Filename Type Size Used Priority\n/dev/sda2 tape 1 0 -2\n",
                "unknown swap type 'tape'");
}

static void test_missing_mountinfo(void **state) {
        Fixture *f = *state;
        CriticalSet *s = NULL;
        _cleanup_free_ char *error = NULL;

        assert_int_equal(critical_compute(f->root, NULL, 0, &s, &error), -ENOENT);
        assert_null(s);
        assert_non_null(strstr(error, "/proc/self/mountinfo"));
}

static bool under_umockdev(void) {
        const char *p = getenv("LD_PRELOAD");
        return p && strstr(p, "umockdev");
}

/*
 * Under umockdev's preload (the meson test "test-critical"): /sys is a testbed, /proc is this machine's. The
 * sysfs walk must see the testbed through opendir/readlink alone. The block device of a real mount (from
 * the real mountinfo) is placed under a testbed PCI function; a testbed GPU is the boot VGA.
 */
static void test_umockdev(void **state) {
        _cleanup_(critical_set_freep) CriticalSet *s = NULL;
        _cleanup_free_ char *error = NULL, *line = NULL, *expect = NULL;
        SysfsTree *t = *state;
        unsigned major = 0, minor = 0;
        char mount_point[512] = "", fstype[64] = "", source[512] = "", path[256], link[64];
        size_t size = 0;
        FILE *f;
        int r;

        if (!t)
                skip();
        /* The first mount with a real block device (MAJ != 0) in this process's own view. */
        f = fopen("/proc/self/mountinfo", "re");
        assert_non_null(f);
        while (getline(&line, &size, f) > 0) {
                char *dash = strstr(line, " - ");
                if (!dash || sscanf(line, "%*u %*u %u:%u %*s %511s", &major, &minor, mount_point) != 3 ||
                    sscanf(dash, " - %63s %511s", fstype, source) != 2)
                        continue;
                if (major != 0 && !strchr(mount_point, '\\') && !strchr(source, '\\'))
                        break;
                major = 0;
        }
        fclose(f);

        sysfs_tree_add_pci(t, "0000:00:09.0", 0x1af4, 0x1042, 0x010000);
        snprintf(path, sizeof(path), "%s/virtio5/block/vdz", sysfs_tree_pci_path(t, "0000:00:09.0"));
        sysfs_tree_mkdir(t, path);
        if (major != 0) {
                snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major, minor);
                sysfs_tree_symlink(t, link, path);
        }
        sysfs_tree_add_pci(t, "0000:00:0a.0", 0x1234, 0x1111, 0x030000);
        sysfs_tree_write(t, sysfs_tree_pci_path(t, "0000:00:0a.0"), "boot_vga", "1");
        sysfs_tree_add_pci(t, "0000:00:0b.0", 0x1234, 0x1111, 0x030000);
        sysfs_tree_write(t, sysfs_tree_pci_path(t, "0000:00:0b.0"), "boot_vga", "0");

        r = critical_compute(NULL, NULL, 0, &s, &error);
        if (r < 0)
                fail_msg("critical_compute under umockdev: %s: %s", strerror(-r), strna(error));
        assert_reason(s, "0000:00:0a.0", "boot VGA");
        assert_null(critical_set_get(s, "0000:00:0b.0"));
        if (major == 0) {
                print_message("no mount with a block device here: only the boot VGA is checked\n");
                return;
        }
        assert_non_null(critical_set_get(s, "0000:00:09.0"));
        assert_int_equal(asprintf(&expect, "controller of %s (%s, %s)", mount_point, source, fstype) > 0, 1);
        if (!strstr(critical_set_get(s, "0000:00:09.0")->reason, expect))
                fail_msg("'%s' lacks '%s'", critical_set_get(s, "0000:00:09.0")->reason, expect);
}

/* Read-only, on this machine's own /proc and /sys (the meson test "test-critical-host", no preload): must
 * succeed, whatever it finds. */
static void test_this_host(void **state) {
        _cleanup_(critical_set_freep) CriticalSet *s = NULL;
        _cleanup_free_ char *error = NULL, *text = NULL;
        int r;

        if (under_umockdev())
                skip();

        r = critical_compute(NULL, NULL, 0, &s, &error);
        if (r < 0)
                fail_msg("critical_compute on this host: %s: %s", strerror(-r), strna(error));
        text = critical_set_to_string(s);
        assert_non_null(text);
        print_message("host-critical functions of this host:\n%s", text);
        STRV_FOREACH (n, s->notes)
                print_message("note: %s\n", *n);
}

int main(void) {
        /* The testbed first: nothing may ask umockdev_in_mock_environment() before it exists. */
        SysfsTree *t = under_umockdev() ? sysfs_tree_new() : NULL;
        int r;

        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_root_on_nvme, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lvm_on_md_raid1, setup, teardown),
                cmocka_unit_test_setup_teardown(test_md_partition_and_swap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_default_route_bond, setup, teardown),
                cmocka_unit_test_setup_teardown(test_default_route_bridge_and_vlan, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ipv6_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_boot_vga, setup, teardown),
                cmocka_unit_test_setup_teardown(test_virtual_block_devices, setup, teardown),
                cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_mountinfo, setup, teardown),
                cmocka_unit_test_prestate(test_umockdev, t),
                cmocka_unit_test(test_this_host),
        };

        r = cmocka_run_group_tests(tests, NULL, NULL);
        if (t)
                sysfs_tree_free(t);
        return r;
}
