/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Benchmark baseline: the least any daemon must do to know the PCI tree.
 * Enumerate subsystem "pci" with libudev and read the attributes hostdevd
 * reads for each function (src/names.h), plus the first 256 bytes of
 * config space (libpci reads the header and capabilities). Prints the
 * device count; tests/bench/bench.py times the whole process.
 */
#include <fcntl.h>
#include <libudev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const attrs[] = {
        "vendor",       "device",       "subsystem_vendor", "subsystem_device",
        "class",        "revision",     "driver_override",  "numa_node",
        "resource",     "reset_method", "boot_vga",         "sriov_totalvfs",
        "sriov_numvfs", "iommu_group",  "driver",           "physfn",
};

int main(void) {
        struct udev *udev = udev_new();
        struct udev_enumerate *e;
        struct udev_list_entry *entry;
        unsigned n = 0;
        size_t bytes = 0;

        if (!udev)
                return 1;
        e = udev_enumerate_new(udev);
        if (!e || udev_enumerate_add_match_subsystem(e, "pci") < 0 || udev_enumerate_scan_devices(e) < 0)
                return 1;
        udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e)) {
                struct udev_device *d = udev_device_new_from_syspath(udev, udev_list_entry_get_name(entry));
                char path[4096], buf[256];
                int fd;

                if (!d)
                        continue;
                for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
                        const char *v = udev_device_get_sysattr_value(d, attrs[i]);
                        bytes += v ? strlen(v) : 0;
                }
                snprintf(path, sizeof(path), "%s/config", udev_device_get_syspath(d));
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                        ssize_t l = read(fd, buf, sizeof(buf));
                        bytes += l > 0 ? (size_t)l : 0;
                        close(fd);
                }
                udev_device_unref(d);
                n++;
        }
        udev_enumerate_unref(e);
        udev_unref(udev);
        printf("%u %zu\n", n, bytes);
        return 0;
}
