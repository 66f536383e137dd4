/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pci/pci.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "escape.h"
#include "log.h"
#include "macro.h"
#include "mdev.h"
#include "names.h"
#include "pci-device.h"
#include "strv.h"
#include "sysfs.h"

/* include/linux/ioport.h: the bits of the third column of "resource" that we report. */
#define IORESOURCE_IO 0x00000100ULL
#define IORESOURCE_MEM 0x00000200ULL
#define IORESOURCE_PREFETCH 0x00002000ULL
#define IORESOURCE_MEM_64 0x00100000ULL

/* Errors quote at most this much of a bad value, so a garbage attribute cannot flood the bus. */

static const char *const sriov_role_table[_SRIOV_ROLE_MAX] = {
        [SRIOV_ROLE_NONE] = "none",
        [SRIOV_ROLE_PF] = "pf",
        [SRIOV_ROLE_VF] = "vf",
};

const char *sriov_role_to_string(SriovRole r) {
        if (r < 0 || r >= _SRIOV_ROLE_MAX)
                return NULL;
        return sriov_role_table[r];
}

SriovRole sriov_role_from_string(const char *s) {
        if (!s)
                return _SRIOV_ROLE_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(sriov_role_table); i++)
                if (streq(s, sriov_role_table[i]))
                        return (SriovRole)i;
        return _SRIOV_ROLE_INVALID;
}

static const char *const pci_bar_type_table[_PCI_BAR_TYPE_MAX] = {
        [PCI_BAR_TYPE_MEMORY] = "memory",
        [PCI_BAR_TYPE_IO] = "io",
};

const char *pci_bar_type_to_string(PciBarType t) {
        if (t < 0 || t >= _PCI_BAR_TYPE_MAX)
                return NULL;
        return pci_bar_type_table[t];
}

PciDevice *pci_device_free(PciDevice *d) {
        if (!d)
                return NULL;
        free(d->syspath);
        free(d->vendor_name);
        free(d->device_name);
        free(d->class_name);
        free(d->driver);
        free(d->driver_override);
        free(d->physical_slot);
        free(d->physfn);
        strv_free(d->virtfns);
        strv_free(d->reset_methods);
        free(d->vfio_group);
        free(d->vfio_device);
        mdev_types_free(d->mdev_types, d->n_mdev_types);
        strv_free(d->errors);
        free(d);
        return NULL;
}

bool pci_device_is_vfio_bound(const PciDevice *d) {
        /* vfio-pci itself and variant drivers such as mlx5_vfio_pci, nvgrace_gpu_vfio_pci. */
        return d->driver && (strstr(d->driver, "vfio_pci") || strstr(d->driver, "vfio-pci"));
}

bool pci_device_is_bridge(const PciDevice *d) {
        /* PCI Code and ID Assignment spec: base class 0x06 = bridge; 0x0600..0x0607 host, ISA, EISA,
         * MicroChannel, PCI-to-PCI, PCMCIA, NuBus, CardBus. Others (0x0680 "other", RACEway...) are not. */
        uint32_t base_sub = d->class_code >> 8;

        return base_sub >= 0x0600 && base_sub <= 0x0607;
}

static int add_error(PciDevice *d, const char *attr, const char *message, const char *value) {
        if (value)
                /* sysfs text is any bytes (driver_override takes what root writes): escaped, bounded. */
                return strv_extendf(&d->errors, "%s: %s '%s'", attr, message, ESCAPE_QUOTE(value));
        return strv_extendf(&d->errors, "%s: %s", attr, message);
}

/*
 * Read an attribute's text. Returns 1 with *ret set, 0 if absent (recorded as an error if mandatory) or
 * unreadable (recorded), -ENOMEM.
 */
static int read_attr(PciDevice *d, const char *attr, bool mandatory, char **ret) {
        int r;

        r = sysfs_read_string(d->syspath, attr, ret);
        if (r >= 0)
                return 1;
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT && !mandatory)
                return 0;
        r = add_error(d, attr, r == -ENOENT ? "missing" : strerror(-r), NULL);
        return r < 0 ? r : 0;
}

static int read_hex_attr(PciDevice *d, const char *attr, unsigned bits, bool mandatory, uint32_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = read_attr(d, attr, mandatory, &s);
        if (r <= 0)
                return r;
        r = sysfs_parse_hex(s, bits, ret);
        if (r >= 0)
                return 1;
        r = add_error(d, attr, r == -ERANGE ? "hex value out of range" : "invalid hex value", s);
        return r < 0 ? r : 0;
}

static int read_int_attr(
        PciDevice *d, const char *attr, int64_t min, int64_t max, bool mandatory, int64_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = read_attr(d, attr, mandatory, &s);
        if (r <= 0)
                return r;
        r = sysfs_parse_int(s, min, max, ret);
        if (r >= 0)
                return 1;
        r = add_error(d, attr, r == -ERANGE ? "integer value out of range" : "invalid integer value", s);
        return r < 0 ? r : 0;
}

static int read_bool_attr(PciDevice *d, const char *attr, bool *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = read_attr(d, attr, false, &s);
        if (r <= 0)
                return r;
        r = sysfs_parse_bool(s, ret);
        if (r >= 0)
                return 1;
        r = add_error(d, attr, "invalid boolean value", s);
        return r < 0 ? r : 0;
}

/* Basename of a link; 1 with *ret, 0 if there is no link or it is not one (recorded), -ENOMEM. */
static int read_link_attr(PciDevice *d, const char *dir, const char *attr, char **ret) {
        int r;

        r = sysfs_read_link_basename(dir, attr, ret);
        if (r >= 0)
                return 1;
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT)
                return 0;
        r = add_error(d, attr, r == -EINVAL ? "not a symlink" : strerror(-r), NULL);
        return r < 0 ? r : 0;
}

static int read_ids(PciDevice *d) {
        uint32_t v;
        int r;

        if ((r = read_hex_attr(d, SYSFS_ATTR_VENDOR, 16, true, &v)) < 0)
                return r;
        if (r > 0)
                d->vendor_id = (uint16_t)v;
        if ((r = read_hex_attr(d, SYSFS_ATTR_DEVICE, 16, true, &v)) < 0)
                return r;
        if (r > 0)
                d->device_id = (uint16_t)v;
        if ((r = read_hex_attr(d, SYSFS_ATTR_SUBSYSTEM_VENDOR, 16, false, &v)) < 0)
                return r;
        if (r > 0)
                d->subsystem_vendor_id = (uint16_t)v;
        if ((r = read_hex_attr(d, SYSFS_ATTR_SUBSYSTEM_DEVICE, 16, false, &v)) < 0)
                return r;
        if (r > 0)
                d->subsystem_device_id = (uint16_t)v;
        if ((r = read_hex_attr(d, SYSFS_ATTR_CLASS, 24, true, &v)) < 0)
                return r;
        if (r > 0)
                d->class_code = v;
        if ((r = read_hex_attr(d, SYSFS_ATTR_REVISION, 8, false, &v)) < 0)
                return r;
        if (r > 0)
                d->revision = (uint8_t)v;
        return 0;
}

static int dup_name(const char *n, char **ret) {
        if (!n) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(n);
        return *ret ? 0 : -ENOMEM;
}

/* Names from pci.ids. pci_lookup_name() formats into |buf| and returns it, or NULL when unknown. */
static int lookup_names(PciDevice *d, struct pci_access *pacc) {
        char buf[256];
        int r;

        r = dup_name(
                pci_lookup_name(
                        pacc, buf, sizeof(buf), PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS, d->vendor_id),
                &d->vendor_name);
        if (r < 0)
                return r;
        r = dup_name(
                pci_lookup_name(
                        pacc, buf, sizeof(buf), PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS, d->vendor_id,
                        d->device_id),
                &d->device_name);
        if (r < 0)
                return r;
        return dup_name(
                pci_lookup_name(
                        pacc, buf, sizeof(buf), PCI_LOOKUP_CLASS | PCI_LOOKUP_NO_NUMBERS,
                        d->class_code >> 8),
                &d->class_name);
}

/*
 * PCIe Device Serial Number extended capability (PCIe r6.0 §7.9.3): the 64-bit serial follows the
 * capability header, low dword first. libpci reads "config" from sysfs; a short or unreadable config
 * (unprivileged reads get 64 bytes; umockdev testbeds may have none) simply has no DSN.
 */
static void read_serial(PciDevice *d, struct pci_access *pacc, const PciAddress *a) {
        struct pci_dev *dev;
        struct pci_cap *cap;

        dev = pci_get_dev(pacc, (int)a->domain, a->bus, a->slot, a->function);
        if (!dev)
                return;
        if (pci_fill_info(dev, PCI_FILL_EXT_CAPS) & PCI_FILL_EXT_CAPS) {
                cap = pci_find_cap(dev, PCI_EXT_CAP_ID_DSN, PCI_CAP_EXTENDED);
                if (cap) {
                        uint32_t lo = pci_read_long(dev, cap->addr + 4);
                        uint32_t hi = pci_read_long(dev, cap->addr + 8);

                        d->serial = ((uint64_t)hi << 32) | lo;
                        d->has_serial = true;
                }
        }
        pci_free_dev(dev);
}

/* sysfs-bus-pci "slots": /sys/bus/pci/slots/<name>/address is "DDDD:BB:SS", shared by all functions. */
static int read_physical_slot(PciDevice *d, const PciAddress *a) {
        _cleanup_closedir_ DIR *dir = NULL;
        char want[PCI_ADDRESS_STRING_MAX];
        struct dirent *de;
        int r;

        (void)snprintf(want, sizeof(want), "%04x:%02x:%02x", a->domain, a->bus, a->slot);

        dir = opendir(SYSFS_PCI_SLOTS);
        if (!dir)
                return 0; /* no slots registered */

        while ((de = readdir(dir))) {
                _cleanup_free_ char *slot_dir = NULL, *addr = NULL;

                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&slot_dir, "%s/%s", SYSFS_PCI_SLOTS, de->d_name) < 0)
                        return -ENOMEM;
                r = sysfs_read_string(slot_dir, SYSFS_ATTR_SLOT_ADDRESS, &addr);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || !streq(addr, want))
                        continue;
                d->physical_slot = strdup(de->d_name);
                return d->physical_slot ? 0 : -ENOMEM;
        }
        return 0;
}

/* "virtfnN" -> N, or -1. */
static int virtfn_index(const char *name) {
        size_t n = strlen(SYSFS_ATTR_VIRTFN_PREFIX);
        int64_t v;

        if (!strneq(name, SYSFS_ATTR_VIRTFN_PREFIX, n) || name[n] == '+' || name[n] == '-')
                return -1;
        if (sysfs_parse_int(name + n, 0, INT32_MAX, &v) < 0 || name[strlen(name) - 1] == '\n')
                return -1;
        return (int)v;
}

typedef struct VirtfnEntry {
        int index;
        char *address;
} VirtfnEntry;

static int virtfn_compare(const void *a, const void *b) {
        const VirtfnEntry *x = a, *y = b;

        return (x->index > y->index) - (x->index < y->index);
}

/* A PF's virtfnN links (sysfs-bus-pci), ordered by N. */
static int read_virtfns(PciDevice *d) {
        _cleanup_closedir_ DIR *dir = NULL;
        VirtfnEntry *e = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        int r = 0;

        dir = opendir(d->syspath);
        if (!dir)
                return 0;

        while ((de = readdir(dir))) {
                char *target = NULL;
                int idx = virtfn_index(de->d_name);

                if (idx < 0)
                        continue;
                r = read_link_attr(d, d->syspath, de->d_name, &target);
                if (r < 0)
                        goto finish;
                if (r == 0)
                        continue;
                if (!pci_address_is_valid(target)) {
                        r = add_error(d, de->d_name, "link to a non-PCI device", target);
                        free(target);
                        if (r < 0)
                                goto finish;
                        continue;
                }
                if (n == allocated) {
                        VirtfnEntry *t = reallocarray(e, allocated ? allocated * 2 : 8, sizeof(VirtfnEntry));
                        if (!t) {
                                free(target);
                                r = -ENOMEM;
                                goto finish;
                        }
                        e = t;
                        allocated = allocated ? allocated * 2 : 8;
                }
                e[n++] = (VirtfnEntry){ .index = idx, .address = target };
        }

        if (n > 1)
                qsort(e, n, sizeof(VirtfnEntry), virtfn_compare);
        r = 0;
        for (size_t i = 0; i < n; i++) {
                r = strv_push(&d->virtfns, TAKE_PTR(e[i].address));
                if (r < 0)
                        break;
        }

finish:
        for (size_t i = 0; i < n; i++)
                free(e[i].address);
        free(e);
        return r;
}

/* For a VF: which of the PF's virtfnN links points to us. */
static int read_vf_index(PciDevice *d) {
        _cleanup_free_ char *pf_dir = NULL;
        _cleanup_closedir_ DIR *dir = NULL;
        struct dirent *de;

        if (asprintf(&pf_dir, "%s/%s", SYSFS_PCI_DEVICES, d->physfn) < 0)
                return -ENOMEM;
        dir = opendir(pf_dir);
        if (!dir)
                return 0;

        while ((de = readdir(dir))) {
                _cleanup_free_ char *target = NULL;
                int idx = virtfn_index(de->d_name), r;

                if (idx < 0)
                        continue;
                r = sysfs_read_link_basename(pf_dir, de->d_name, &target);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && streq(target, d->address)) {
                        d->vf_index = idx;
                        return 0;
                }
        }
        return 0;
}

static int read_sriov(PciDevice *d) {
        int64_t v;
        int r;

        r = read_link_attr(d, d->syspath, SYSFS_ATTR_PHYSFN, &d->physfn);
        if (r < 0)
                return r;
        if (r > 0) {
                if (!pci_address_is_valid(d->physfn)) {
                        r = add_error(d, SYSFS_ATTR_PHYSFN, "link to a non-PCI device", d->physfn);
                        d->physfn = mfree(d->physfn);
                        return r < 0 ? r : 0;
                }
                d->sriov_role = SRIOV_ROLE_VF;
                return read_vf_index(d);
        }

        /* sriov_totalvfs exists exactly on functions with the SR-IOV capability. */
        r = read_int_attr(d, SYSFS_ATTR_SRIOV_TOTALVFS, 0, UINT16_MAX, false, &v);
        if (r < 0)
                return r;
        if (r == 0) {
                char *probe = NULL;

                /* Present but unparsable still makes it a PF. */
                if (sysfs_read_string(d->syspath, SYSFS_ATTR_SRIOV_TOTALVFS, &probe) == -ENOENT)
                        return 0;
                free(probe);
        } else
                d->sriov_total_vfs = (uint32_t)v;
        d->sriov_role = SRIOV_ROLE_PF;

        if ((r = read_int_attr(d, SYSFS_ATTR_SRIOV_NUMVFS, 0, UINT16_MAX, false, &v)) < 0)
                return r;
        if (r > 0)
                d->sriov_num_vfs = (uint32_t)v;
        if ((r = read_bool_attr(d, SYSFS_ATTR_SRIOV_DRIVERS_AUTOPROBE, &d->sriov_drivers_autoprobe)) < 0)
                return r;
        if ((r = read_int_attr(d, SYSFS_ATTR_SRIOV_OFFSET, 0, UINT16_MAX, false, &v)) < 0)
                return r;
        if (r > 0)
                d->sriov_vf_offset = (uint32_t)v;
        if ((r = read_int_attr(d, SYSFS_ATTR_SRIOV_STRIDE, 0, UINT16_MAX, false, &v)) < 0)
                return r;
        if (r > 0)
                d->sriov_vf_stride = (uint32_t)v;

        return read_virtfns(d);
}

/* First PCI_BAR_MAX lines of "resource" (resource_show() in drivers/pci/pci-sysfs.c). */
static int read_bars(PciDevice *d) {
        _cleanup_free_ char *s = NULL;
        char *line, *save = NULL;
        size_t i;
        int r;

        r = read_attr(d, SYSFS_ATTR_RESOURCE, false, &s);
        if (r <= 0)
                return r;

        for (i = 0, line = strtok_r(s, "\n", &save); line && i < PCI_BAR_MAX;
             i++, line = strtok_r(NULL, "\n", &save)) {
                PciResourceLine l;
                char attr[32];

                r = sysfs_parse_resource_line(line, &l);
                if (r < 0) {
                        (void)snprintf(attr, sizeof(attr), "%s line %zu", SYSFS_ATTR_RESOURCE, i + 1);
                        r = add_error(d, attr, "invalid resource line", line);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (l.start == 0 && l.end == 0)
                        continue; /* not implemented */
                if (!(l.flags & (IORESOURCE_IO | IORESOURCE_MEM)))
                        continue; /* neither I/O nor memory: unassigned or disabled */
                if (l.end < l.start) {
                        (void)snprintf(attr, sizeof(attr), "%s line %zu", SYSFS_ATTR_RESOURCE, i + 1);
                        r = add_error(d, attr, "end before start", line);
                        if (r < 0)
                                return r;
                        continue;
                }

                d->bars[d->n_bars++] = (PciBar){
                        .index = (uint8_t)i,
                        .type = (l.flags & IORESOURCE_IO) ? PCI_BAR_TYPE_IO : PCI_BAR_TYPE_MEMORY,
                        .size = l.end - l.start + 1,
                        .is_64bit = !!(l.flags & IORESOURCE_MEM_64),
                        .prefetchable = !!(l.flags & IORESOURCE_PREFETCH),
                };
        }
        if (i < PCI_BAR_MAX) {
                char n[16];

                (void)snprintf(n, sizeof(n), "%zu lines", i);
                r = add_error(d, SYSFS_ATTR_RESOURCE, "truncated", n);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int read_vfio_device(PciDevice *d) {
        return sysfs_read_vfio_cdev(d->syspath, &d->vfio_device);
}

/* The same function as |old|, as far as its config header tells: ids, class and revision. */
static bool same_ids(const PciDevice *d, const PciDevice *old) {
        return old && d->vendor_id == old->vendor_id && d->device_id == old->device_id &&
                d->subsystem_vendor_id == old->subsystem_vendor_id &&
                d->subsystem_device_id == old->subsystem_device_id && d->class_code == old->class_code &&
                d->revision == old->revision;
}

static int read_rest(PciDevice *d, struct pci_access *pacc, const PciAddress *a, const PciDevice *old) {
        _cleanup_free_ char *group = NULL, *s = NULL;
        int64_t v;
        int r;

        r = read_ids(d);
        if (r < 0)
                return r;
        if (same_ids(d, old)) {
                /* pci.ids does not change under us, nor does the DSN of the same function: no config
                 * space reads (each one a trapped access in a VM, slow under emulation). */
                if (dup_name(old->vendor_name, &d->vendor_name) < 0 ||
                    dup_name(old->device_name, &d->device_name) < 0 ||
                    dup_name(old->class_name, &d->class_name) < 0)
                        return -ENOMEM;
                d->has_serial = old->has_serial;
                d->serial = old->serial;
        } else if (pacc) {
                r = lookup_names(d, pacc);
                if (r < 0)
                        return r;
                read_serial(d, pacc, a);
        }

        /* kernel-iommu_groups ABI: iommu_group links to /sys/kernel/iommu_groups/<N>. */
        r = read_link_attr(d, d->syspath, SYSFS_ATTR_IOMMU_GROUP, &group);
        if (r < 0)
                return r;
        if (r > 0) {
                if (sysfs_parse_int(group, 0, INT32_MAX, &v) >= 0)
                        d->iommu_group = (int32_t)v;
                else if ((r = add_error(d, SYSFS_ATTR_IOMMU_GROUP, "invalid group", group)) < 0)
                        return r;
        }

        r = read_link_attr(d, d->syspath, SYSFS_ATTR_DRIVER, &d->driver);
        if (r < 0)
                return r;

        r = read_attr(d, SYSFS_ATTR_DRIVER_OVERRIDE, false, &s);
        if (r < 0)
                return r;
        /* driver_override_show() prints "%s\n" of a NULL pointer, i.e. "(null)", when unset. */
        if (r > 0 && !streq(s, "(null)") && !streq(s, ""))
                d->driver_override = TAKE_PTR(s);
        s = mfree(s);

        r = read_int_attr(d, SYSFS_ATTR_NUMA_NODE, -1, INT32_MAX, false, &v);
        if (r < 0)
                return r;
        if (r > 0)
                d->numa_node = (int32_t)v;

        r = read_physical_slot(d, a);
        if (r < 0)
                return r;
        r = read_sriov(d);
        if (r < 0)
                return r;
        r = read_bars(d);
        if (r < 0)
                return r;

        r = read_attr(d, SYSFS_ATTR_RESET_METHOD, false, &s);
        if (r < 0)
                return r;
        if (r > 0 && (r = strv_split(s, " ", &d->reset_methods)) < 0)
                return r;

        r = read_bool_attr(d, SYSFS_ATTR_BOOT_VGA, &d->boot_vga);
        if (r < 0)
                return r;

        if (pci_device_is_vfio_bound(d) && d->iommu_group >= 0 &&
            asprintf(&d->vfio_group, "%s/%" PRIi32, DEV_VFIO_DIR, d->iommu_group) < 0) {
                d->vfio_group = NULL;
                return -ENOMEM;
        }
        r = read_vfio_device(d);
        if (r < 0)
                return r;

        r = mdev_types_read(d->syspath, &d->mdev_types, &d->n_mdev_types, &d->errors);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                d->mdev_types = NULL;
                d->n_mdev_types = 0;
                if (r != -ENOENT &&
                    (r = add_error(d, SYSFS_ATTR_MDEV_SUPPORTED_TYPES, strerror(-r), NULL)) < 0)
                        return r;
        }
        return 0;
}

int pci_device_read(const char *address, struct pci_access *pacc, PciDevice **ret) {
        return pci_device_reread(address, pacc, NULL, ret);
}

int pci_device_reread(const char *address, struct pci_access *pacc, const PciDevice *old, PciDevice **ret) {
        _cleanup_(pci_device_freep) PciDevice *d = NULL;
        _cleanup_free_ char *bus_path = NULL;
        struct stat st;
        PciAddress a;
        int r;

        if (!address || pci_address_from_string(address, &a) < 0)
                return -EINVAL;

        d = calloc(1, sizeof(PciDevice));
        if (!d)
                return -ENOMEM;
        pci_address_format(&a, d->address);
        d->iommu_group = -1;
        d->numa_node = -1;
        d->vf_index = -1;

        if (asprintf(&bus_path, "%s/%s", SYSFS_PCI_DEVICES, d->address) < 0)
                return -ENOMEM;
        if (lstat(bus_path, &st) < 0)
                return -errno;

        d->syspath = realpath(bus_path, NULL);
        if (!d->syspath) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                d->syspath = TAKE_PTR(bus_path);
        }

        r = read_rest(d, pacc, &a, old && streq(old->address, d->address) ? old : NULL);
        if (r < 0)
                return r;

        /* Removed while we read it: every attribute vanished with the directory. */
        if (stat(d->syspath, &st) < 0 && errno == ENOENT)
                return -ENOENT;

        log_debug(
                "Read PCI device %s: %04x:%04x driver %s, %zu errors", d->address, d->vendor_id,
                d->device_id, strna(d->driver), strv_length(d->errors));
        *ret = TAKE_PTR(d);
        return 0;
}

static bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

unsigned pci_device_diff(const PciDevice *a, const PciDevice *b) {
        unsigned f = 0;

        if (a->vendor_id != b->vendor_id || a->device_id != b->device_id ||
            a->subsystem_vendor_id != b->subsystem_vendor_id ||
            a->subsystem_device_id != b->subsystem_device_id || a->class_code != b->class_code ||
            a->revision != b->revision || !streq_ptr(a->vendor_name, b->vendor_name) ||
            !streq_ptr(a->device_name, b->device_name) || !streq_ptr(a->class_name, b->class_name) ||
            !streq(a->address, b->address))
                f |= PCI_DEVICE_FIELD_IDS;
        if (a->iommu_group != b->iommu_group)
                f |= PCI_DEVICE_FIELD_IOMMU_GROUP;
        if (!streq_ptr(a->driver, b->driver) || !streq_ptr(a->vfio_group, b->vfio_group) ||
            !streq_ptr(a->vfio_device, b->vfio_device))
                f |= PCI_DEVICE_FIELD_DRIVER;
        if (!streq_ptr(a->driver_override, b->driver_override))
                f |= PCI_DEVICE_FIELD_DRIVER_OVERRIDE;
        if (a->numa_node != b->numa_node)
                f |= PCI_DEVICE_FIELD_NUMA_NODE;
        if (!streq_ptr(a->physical_slot, b->physical_slot))
                f |= PCI_DEVICE_FIELD_PHYSICAL_SLOT;
        if (a->has_serial != b->has_serial || (a->has_serial && a->serial != b->serial))
                f |= PCI_DEVICE_FIELD_SERIAL;
        if (a->sriov_role != b->sriov_role || a->sriov_total_vfs != b->sriov_total_vfs ||
            a->sriov_num_vfs != b->sriov_num_vfs ||
            a->sriov_drivers_autoprobe != b->sriov_drivers_autoprobe ||
            a->sriov_vf_offset != b->sriov_vf_offset || a->sriov_vf_stride != b->sriov_vf_stride ||
            !streq_ptr(a->physfn, b->physfn) || a->vf_index != b->vf_index ||
            !strv_equal(a->virtfns, b->virtfns))
                f |= PCI_DEVICE_FIELD_SRIOV;
        if (a->n_bars != b->n_bars)
                f |= PCI_DEVICE_FIELD_BARS;
        else
                for (size_t i = 0; i < a->n_bars; i++)
                        if (a->bars[i].index != b->bars[i].index || a->bars[i].type != b->bars[i].type ||
                            a->bars[i].size != b->bars[i].size ||
                            a->bars[i].is_64bit != b->bars[i].is_64bit ||
                            a->bars[i].prefetchable != b->bars[i].prefetchable) {
                                f |= PCI_DEVICE_FIELD_BARS;
                                break;
                        }
        if (!strv_equal(a->reset_methods, b->reset_methods) || !a->reset_methods != !b->reset_methods)
                f |= PCI_DEVICE_FIELD_RESET_METHODS;
        if (a->boot_vga != b->boot_vga)
                f |= PCI_DEVICE_FIELD_BOOT_VGA;
        if (!mdev_types_equal(a->mdev_types, a->n_mdev_types, b->mdev_types, b->n_mdev_types))
                f |= PCI_DEVICE_FIELD_MDEV_TYPES;
        if (!strv_equal(a->errors, b->errors))
                f |= PCI_DEVICE_FIELD_ERRORS;
        if (!streq_ptr(a->syspath, b->syspath))
                f |= PCI_DEVICE_FIELD_SYSPATH;
        return f;
}
