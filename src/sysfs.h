/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Reading and parsing sysfs values. Pure parsers (sysfs_parse_*) take the
 * text of one attribute as the kernel prints it (trailing newline allowed)
 * and never touch the file system, so unit tests cover every odd input.
 * Readers use open/read (and opendir/readdir for directories), never
 * scandir/glob/nftw, which bypass umockdev's preload.
 *
 * All return 0 on success or negative errno: -EINVAL/-ERANGE for a value
 * that does not parse (the caller records it as a device error), -ENOENT
 * for a missing attribute, other -errno from the system.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Upper bound on an attribute we read whole; sysfs attributes are at most one page. */
#define SYSFS_ATTR_MAX 4096

/* "0x8086\n" -> 0x8086. Requires the 0x prefix and 1..digits hex digits fitting in bits. */
int sysfs_parse_hex(const char *s, unsigned bits, uint32_t *ret);
/* Decimal, optional sign, e.g. numa_node "-1\n" or sriov_numvfs "4\n". */
int sysfs_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret);
/* "0\n"/"1\n" -> bool */
int sysfs_parse_bool(const char *s, bool *ret);

/*
 * One line of a PCI device's "resource" attribute: "0x%016llx 0x%016llx 0x%016llx\n"
 * = start, end, flags (IORESOURCE_* from include/linux/ioport.h), printed by
 * resource_show() in drivers/pci/pci-sysfs.c. An unused BAR is all zeros.
 */
typedef struct PciResourceLine {
        uint64_t start;
        uint64_t end;
        uint64_t flags;
} PciResourceLine;
int sysfs_parse_resource_line(const char *line, PciResourceLine *ret);

/* Read a whole attribute (file_read_bounded(), at most SYSFS_ATTR_MAX bytes), without the trailing
 * newline. *ret newly allocated. -EFBIG when longer, -EINVAL with a NUL byte, -EISDIR/-EBADFD when not
 * a regular file, or the -errno of the open or read. */
int sysfs_read_string(const char *dir, const char *attr, char **ret);
/* Read + parse helpers built on the above. */
int sysfs_read_hex(const char *dir, const char *attr, unsigned bits, uint32_t *ret);
int sysfs_read_int(const char *dir, const char *attr, int64_t min, int64_t max, int64_t *ret);
int sysfs_read_bool(const char *dir, const char *attr, bool *ret);

/*
 * Basename of the target of symlink dir/attr (e.g. "driver" -> "vfio-pci",
 * "iommu_group" -> "12"), via readlink, so it works even when the target is
 * missing (umockdev). Returns -ENOENT if there is no link.
 */
int sysfs_read_link_basename(const char *dir, const char *attr, char **ret);

/*
 * The VFIO device cdev of the device at |syspath| (a PCI function or an mdev): "/dev/vfio/devices/vfioN"
 * when <syspath>/vfio-dev/vfioN has a "dev" attribute (vfio.rst "cdev"; Linux 6.1 registers
 * vfio-dev/vfioN without a device number, commit 3c28a76124b2; the cdev came in 6.6, commit
 * 8b6f173a4ce4). *ret: a new string, NULL when there is none. Returns 0 or -ENOMEM.
 */
int sysfs_read_vfio_cdev(const char *syspath, char **ret);
