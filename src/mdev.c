/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <uuid/uuid.h>

#include "escape.h"
#include "json-file.h"
#include "log.h"
#include "macro.h"
#include "mdev.h"
#include "names.h"
#include "pci-address.h"
#include "strv.h"
#include "sysfs.h"

bool mdev_uuid_is_valid(const char *s) {
        char canonical[MDEV_UUID_STRING_MAX];
        uuid_t u;

        if (!s || strlen(s) != MDEV_UUID_STRING_MAX - 1)
                return false;
        if (uuid_parse(s, u) < 0)
                return false;
        /* The kernel names mdevs with "%pUl" (lowercase); accept only that spelling. */
        uuid_unparse_lower(u, canonical);
        return streq(canonical, s);
}

void mdev_type_done(MdevType *t) {
        if (!t)
                return;
        t->id = mfree(t->id);
        t->name = mfree(t->name);
        t->description = mfree(t->description);
        t->device_api = mfree(t->device_api);
}

void mdev_types_free(MdevType *types, size_t n) {
        for (size_t i = 0; i < n; i++)
                mdev_type_done(&types[i]);
        free(types);
}

static bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

bool mdev_types_equal(const MdevType *a, size_t n_a, const MdevType *b, size_t n_b) {
        if (n_a != n_b)
                return false;
        /* An mdev parent with no types and a non-parent differ: "non-NULL iff parent". */
        if (!a != !b)
                return false;
        for (size_t i = 0; i < n_a; i++)
                if (!streq_ptr(a[i].id, b[i].id) || !streq_ptr(a[i].name, b[i].name) ||
                    !streq_ptr(a[i].description, b[i].description) ||
                    !streq_ptr(a[i].device_api, b[i].device_api) ||
                    a[i].available_instances != b[i].available_instances)
                        return false;
        return true;
}

static int type_compare(const void *a, const void *b) {
        return strcmp(((const MdevType *)a)->id, ((const MdevType *)b)->id);
}

/* Optional text attribute: NULL when absent; other read problems are recorded. */
static int read_type_string(
        const char *dir, const char *id, const char *attr, bool mandatory, char **ret, char ***errors) {
        int r;

        r = sysfs_read_string(dir, attr, ret);
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT && !mandatory)
                return 0;
        if (r < 0 && errors) {
                *ret = NULL;
                return strv_extendf(
                        errors, "%s/%s/%s: %s", SYSFS_ATTR_MDEV_SUPPORTED_TYPES, ESCAPE_QUOTE(id), attr,
                        r == -ENOENT ? "missing" : strerror(-r));
        }
        return 0;
}

static int type_read(const char *types_dir, const char *id, MdevType *t, char ***errors) {
        _cleanup_free_ char *dir = NULL, *avail = NULL;
        int64_t v;
        int r;

        if (asprintf(&dir, "%s/%s", types_dir, id) < 0)
                return -ENOMEM;

        t->id = strdup(id);
        if (!t->id)
                return -ENOMEM;

        r = read_type_string(dir, id, SYSFS_ATTR_MDEV_TYPE_NAME, false, &t->name, errors);
        if (r < 0)
                return r;
        r = read_type_string(dir, id, SYSFS_ATTR_MDEV_TYPE_DESCRIPTION, false, &t->description, errors);
        if (r < 0)
                return r;
        r = read_type_string(dir, id, SYSFS_ATTR_MDEV_TYPE_DEVICE_API, true, &t->device_api, errors);
        if (r < 0)
                return r;
        r = read_type_string(dir, id, SYSFS_ATTR_MDEV_TYPE_AVAILABLE_INSTANCES, true, &avail, errors);
        if (r < 0)
                return r;
        if (avail) {
                r = sysfs_parse_int(avail, 0, UINT32_MAX, &v);
                if (r >= 0)
                        t->available_instances = (uint32_t)v;
                else if (errors) {
                        r = strv_extendf(
                                errors, "%s/%s/%s: %s '%s'", SYSFS_ATTR_MDEV_SUPPORTED_TYPES,
                                ESCAPE_QUOTE(id), SYSFS_ATTR_MDEV_TYPE_AVAILABLE_INSTANCES,
                                r == -ERANGE ? "integer value out of range" : "invalid integer value",
                                ESCAPE_QUOTE(avail));
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int mdev_types_read(const char *dir, MdevType **ret, size_t *ret_n, char ***errors) {
        _cleanup_free_ char *types_dir = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        MdevType *types = NULL;
        size_t n = 0, allocated = 1;
        struct dirent *de;
        int r;

        if (asprintf(&types_dir, "%s/%s", dir, SYSFS_ATTR_MDEV_SUPPORTED_TYPES) < 0)
                return -ENOMEM;

        d = opendir(types_dir);
        if (!d)
                return -errno;

        /* Always allocated, even with no types: a non-NULL array marks an mdev parent. */
        types = calloc(allocated, sizeof(MdevType));
        if (!types)
                return -ENOMEM;

        while ((errno = 0, de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (n == allocated) {
                        MdevType *t = reallocarray(types, allocated * 2, sizeof(MdevType));
                        if (!t) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        types = t;
                        memset(types + allocated, 0, allocated * sizeof(MdevType));
                        allocated *= 2;
                }
                r = type_read(types_dir, de->d_name, &types[n], errors);
                n++;
                if (r < 0)
                        goto fail;
        }
        if (errno != 0) {
                r = -errno;
                goto fail;
        }

        if (n > 1)
                qsort(types, n, sizeof(MdevType), type_compare);
        *ret = types;
        *ret_n = n;
        return 0;

fail:
        mdev_types_free(types, n);
        return r;
}

Mdev *mdev_free(Mdev *m) {
        if (!m)
                return NULL;
        free(m->syspath);
        free(m->type_id);
        free(m->parent);
        free(m->driver);
        free(m->vfio_device);
        strv_free(m->errors);
        free(m);
        return NULL;
}

/* A PCI function that exists on the bus: the mdev's or parent's name is its canonical address. */
static bool name_is_pci_device(const char *name) {
        char buf[PCI_ADDRESS_STRING_MAX], path[PATH_MAX];
        PciAddress a;
        struct stat st;

        if (pci_address_from_string(name, &a) < 0 || !streq(pci_address_format(&a, buf), name))
                return false;
        (void)snprintf(path, sizeof(path), "%s/%s", SYSFS_PCI_DEVICES, name);
        return lstat(path, &st) >= 0;
}

/* Resolved path of a /sys/bus/.../<name> link; the link's own path if it does not resolve. */
static int resolve_syspath(const char *path, char **ret) {
        char *p;

        p = realpath(path, NULL);
        if (!p) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                p = strdup(path);
                if (!p)
                        return -ENOMEM;
        }
        *ret = p;
        return 0;
}

static int record_read_error(char ***errors, const char *attr, int r) {
        return strv_extendf(errors, "%s: %s", attr, r == -EINVAL ? "not a symlink" : strerror(-r));
}

int mdev_read(const char *uuid, Mdev **ret) {
        _cleanup_(mdev_freep) Mdev *m = NULL;
        _cleanup_free_ char *path = NULL, *group = NULL, *parent_dir = NULL;
        char target[PATH_MAX];
        struct stat st;
        ssize_t n;
        char *slash;
        int64_t v;
        int r;

        if (!mdev_uuid_is_valid(uuid))
                return -EINVAL;

        if (asprintf(&path, "%s/%s", SYSFS_MDEV_DEVICES, uuid) < 0)
                return -ENOMEM;
        if (lstat(path, &st) < 0)
                return -errno;

        m = calloc(1, sizeof(Mdev));
        if (!m)
                return -ENOMEM;
        memcpy(m->uuid, uuid, MDEV_UUID_STRING_MAX);
        m->iommu_group = -1;

        r = resolve_syspath(path, &m->syspath);
        if (r < 0)
                return r;

        /*
         * mdevs are children of their parent device (vfio-mediated-device.rst), so the parent is the
         * directory above the mdev. Use the link text, which is there even when its target is not.
         */
        n = readlink(path, target, sizeof(target) - 1);
        if (n >= 0)
                target[n] = '\0';
        else /* gone between lstat() and readlink(), or not a link: the resolved path is all we have */
                (void)snprintf(target, sizeof(target), "%s", m->syspath);
        parent_dir = strdup(target);
        if (!parent_dir)
                return -ENOMEM;
        slash = strrchr(parent_dir, '/');
        if (slash && slash != parent_dir) {
                *slash = '\0';
                slash = strrchr(parent_dir, '/');
                m->parent = strdup(slash ? slash + 1 : parent_dir);
                if (!m->parent)
                        return -ENOMEM;
                if (streq(m->parent, "..") || streq(m->parent, ".") || streq(m->parent, "devices"))
                        m->parent = mfree(m->parent);
        }
        if (!m->parent) {
                r = strv_extendf(&m->errors, "parent: cannot determine from '%s'", ESCAPE_QUOTE(target));
                if (r < 0)
                        return r;
        } else
                m->parent_is_pci = name_is_pci_device(m->parent);

        r = sysfs_read_link_basename(path, SYSFS_ATTR_MDEV_TYPE, &m->type_id);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                m->type_id = NULL;
                r = record_read_error(&m->errors, SYSFS_ATTR_MDEV_TYPE, r);
                if (r < 0)
                        return r;
        }

        r = sysfs_read_link_basename(path, SYSFS_ATTR_DRIVER, &m->driver);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                m->driver = NULL;
                if (r != -ENOENT && (r = record_read_error(&m->errors, SYSFS_ATTR_DRIVER, r)) < 0)
                        return r;
        }

        r = sysfs_read_link_basename(path, SYSFS_ATTR_IOMMU_GROUP, &group);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                if (sysfs_parse_int(group, 0, INT32_MAX, &v) >= 0)
                        m->iommu_group = (int32_t)v;
                else if (
                        (r = strv_extendf(
                                 &m->errors, "%s: invalid group '%s'", SYSFS_ATTR_IOMMU_GROUP,
                                 ESCAPE_QUOTE(group))) < 0)
                        return r;
        } else if (r != -ENOENT && (r = record_read_error(&m->errors, SYSFS_ATTR_IOMMU_GROUP, r)) < 0)
                return r;

        r = sysfs_read_vfio_cdev(path, &m->vfio_device);
        if (r < 0)
                return r;

        log_debug("Read mdev %s: type %s, parent %s", m->uuid, strna(m->type_id), strna(m->parent));
        *ret = TAKE_PTR(m);
        return 0;
}

unsigned mdev_diff(const Mdev *a, const Mdev *b) {
        unsigned f = 0;

        if (!streq_ptr(a->type_id, b->type_id))
                f |= MDEV_FIELD_TYPE;
        if (!streq_ptr(a->parent, b->parent) || a->parent_is_pci != b->parent_is_pci)
                f |= MDEV_FIELD_PARENT;
        if (a->iommu_group != b->iommu_group)
                f |= MDEV_FIELD_IOMMU_GROUP;
        if (!streq_ptr(a->driver, b->driver))
                f |= MDEV_FIELD_DRIVER;
        if (!strv_equal(a->errors, b->errors))
                f |= MDEV_FIELD_ERRORS;
        if (!streq_ptr(a->syspath, b->syspath))
                f |= MDEV_FIELD_SYSPATH;
        if (!streq_ptr(a->vfio_device, b->vfio_device))
                f |= MDEV_FIELD_VFIO_DEVICE;
        return f;
}

MdevParent *mdev_parent_free(MdevParent *p) {
        if (!p)
                return NULL;
        free(p->name);
        free(p->syspath);
        mdev_types_free(p->types, p->n_types);
        strv_free(p->errors);
        free(p);
        return NULL;
}

int mdev_parent_read(const char *name, MdevParent **ret) {
        _cleanup_(mdev_parent_freep) MdevParent *p = NULL;
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r;

        if (!name || !*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        if (asprintf(&path, "%s/%s", SYSFS_MDEV_BUS_CLASS, name) < 0)
                return -ENOMEM;
        if (lstat(path, &st) < 0)
                return -errno;

        p = calloc(1, sizeof(MdevParent));
        if (!p)
                return -ENOMEM;
        p->name = strdup(name);
        if (!p->name)
                return -ENOMEM;
        r = resolve_syspath(path, &p->syspath);
        if (r < 0)
                return r;
        p->is_pci = name_is_pci_device(name);

        r = mdev_types_read(path, &p->types, &p->n_types, &p->errors);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                p->types = NULL;
                p->n_types = 0;
                r = strv_extendf(&p->errors, "%s: %s", SYSFS_ATTR_MDEV_SUPPORTED_TYPES, strerror(-r));
                if (r < 0)
                        return r;
        }

        log_debug("Read mdev parent %s: %zu types", p->name, p->n_types);
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- the parent and type model (issue 14) ---------------------------------------------------- */

static const char *const mdev_parent_kind_table[_MDEV_PARENT_KIND_MAX] = {
        [MDEV_PARENT_KIND_NONE] = "none",
        [MDEV_PARENT_KIND_MDEV] = "mdev",
        [MDEV_PARENT_KIND_VGPU_VF] = "vgpu-vf",
};

const char *mdev_parent_kind_to_string(MdevParentKind k) {
        return k >= 0 && k < _MDEV_PARENT_KIND_MAX ? mdev_parent_kind_table[k] : NULL;
}

MdevParentKind mdev_parent_kind_from_string(const char *s) {
        for (size_t i = 0; s && i < _MDEV_PARENT_KIND_MAX; i++)
                if (streq(mdev_parent_kind_table[i], s))
                        return (MdevParentKind)i;
        return _MDEV_PARENT_KIND_INVALID;
}

MdevParentKind mdev_parent_kind_of(bool in_mdev_bus, bool is_vgpu_vf) {
        return in_mdev_bus   ? MDEV_PARENT_KIND_MDEV
                : is_vgpu_vf ? MDEV_PARENT_KIND_VGPU_VF
                             : MDEV_PARENT_KIND_NONE;
}

static const char *const gpu_mode_table[_GPU_MODE_MAX] = {
        [GPU_MODE_NONE] = "none",
        [GPU_MODE_VGPU] = "vgpu",
        [GPU_MODE_PASSTHROUGH] = "passthrough",
};

const char *gpu_mode_to_string(GpuMode m) {
        return m >= 0 && m < _GPU_MODE_MAX ? gpu_mode_table[m] : NULL;
}

GpuMode gpu_mode_from_string(const char *s) {
        for (size_t i = 0; s && i < _GPU_MODE_MAX; i++)
                if (streq(gpu_mode_table[i], s))
                        return (GpuMode)i;
        return _GPU_MODE_INVALID;
}

GpuMode gpu_mode_of(const PciDevice *d, bool is_vgpu_vf, bool has_vgpu_vfs) {
        /* PCI base class 0x03: display controller (PCI Code and ID Assignment Specification). */
        bool display = (d->class_code >> 16) == 0x03;

        if (d->mdev_types)
                return GPU_MODE_VGPU;
        if (!display)
                return GPU_MODE_NONE;
        if (is_vgpu_vf || has_vgpu_vfs)
                return GPU_MODE_VGPU;
        if (pci_device_is_vfio_bound(d))
                return GPU_MODE_PASSTHROUGH;
        return GPU_MODE_NONE;
}

static const char *const mdev_unavailable_table[_MDEV_UNAVAILABLE_MAX] = {
        [MDEV_UNAVAILABLE_NONE] = "",
        [MDEV_UNAVAILABLE_EXHAUSTED] = "parent exhausted",
        [MDEV_UNAVAILABLE_OTHER_TYPE] = "one type per physical GPU and another is active",
        [MDEV_UNAVAILABLE_VF_BUSY] = "VF already carries a vGPU",
        [MDEV_UNAVAILABLE_UNKNOWN] = "unknown",
};

const char *mdev_unavailable_to_string(MdevUnavailable u) {
        return u >= 0 && u < _MDEV_UNAVAILABLE_MAX ? mdev_unavailable_table[u] : NULL;
}

MdevUnavailable mdev_type_unavailable(
        const MdevParent *parent, const char *type_id, const Mdev *const *mdevs, size_t n_mdevs,
        const char **ret_active_type) {
        const MdevType *t = NULL;
        const char *other = NULL;
        bool same = false;

        assert(parent);
        assert(type_id);

        if (ret_active_type)
                *ret_active_type = NULL;
        for (size_t i = 0; i < parent->n_types; i++)
                if (streq(parent->types[i].id, type_id))
                        t = &parent->types[i];
        if (!t || t->available_instances > 0)
                return MDEV_UNAVAILABLE_NONE;

        for (size_t i = 0; i < n_mdevs; i++) {
                const Mdev *m = mdevs[i];
                if (!m->parent || !streq(m->parent, parent->name) || !m->type_id)
                        continue;
                if (streq(m->type_id, type_id))
                        same = true;
                else if (!other)
                        other = m->type_id;
        }
        if (other) {
                if (ret_active_type)
                        *ret_active_type = other;
                return MDEV_UNAVAILABLE_OTHER_TYPE;
        }
        return same ? MDEV_UNAVAILABLE_EXHAUSTED : MDEV_UNAVAILABLE_UNKNOWN;
}

/* "framebuffer=1024M" (or "...=2G") in a description; 0 when absent. */
static uint64_t framebuffer_from_description(const char *description) {
        const char *p = description;

        while (p && (p = strstr(p, "framebuffer="))) {
                char *end;
                unsigned long long v;

                p += strlen("framebuffer=");
                errno = 0;
                v = strtoull(p, &end, 10);
                if (errno != 0 || end == p)
                        continue;
                if (*end == 'M')
                        return v;
                if (*end == 'G')
                        return v * 1024;
        }
        return 0;
}

/* "...-<digits><letter>" at the end of a profile name: GiB ("0" profiles: 512 MiB). */
static uint64_t framebuffer_from_name(const char *name) {
        const char *dash = name ? strrchr(name, '-') : NULL;
        size_t n;

        if (!dash)
                return 0;
        dash++;
        n = strspn(dash, "0123456789");
        if (n == 0 || n > 4 || !isalpha((unsigned char)dash[n]) || dash[n + 1] != '\0')
                return 0;
        uint64_t gib = strtoull(dash, NULL, 10);
        return gib == 0 ? 512 : gib * 1024;
}

uint64_t mdev_type_framebuffer_mib(const char *name, const char *description) {
        uint64_t v = framebuffer_from_description(description);
        return v > 0 ? v : framebuffer_from_name(name);
}

bool mdev_parent_one_type_per_gpu(const PciDevice *d) {
        /* NVIDIA's time-sliced vGPUs on one physical GPU share one type (its vGPU documentation,
         * "Homogeneous vGPUs"); the kernel shows it as available_instances 0 for every other type. */
        return d && d->vendor_id == 0x10de;
}

/* ---- vendor vGPU on SR-IOV VFs --------------------------------------------------------------- */

void vgpu_types_free(VgpuType *t, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(t[i].name);
        free(t);
}

static int vgpu_type_compare(const void *a, const void *b) {
        uint32_t x = ((const VgpuType *)a)->id, y = ((const VgpuType *)b)->id;
        return x < y ? -1 : x > y;
}

static char *strip(char *s) {
        size_t n;

        s += strspn(s, " \t");
        n = strlen(s);
        while (n > 0 && strchr(" \t\r", s[n - 1]))
                s[--n] = '\0';
        return s;
}

int vgpu_types_parse(const char *text, VgpuType **ret, size_t *ret_n, unsigned *ret_bad_line) {
        _cleanup_strv_free_ char **lines = NULL;
        VgpuType *types = NULL;
        size_t n = 0;
        unsigned line = 0;
        int r;

        assert(ret);
        assert(ret_n);

        r = strv_split(text ?: "", "\n", &lines);
        if (r < 0)
                return r;
        STRV_FOREACH (l, lines) {
                char *colon, *id, *name;
                int64_t v;

                line++;
                colon = strchr(*l, ':');
                id = strip(*l);
                if (*id == '\0')
                        continue;
                if (!colon)
                        goto bad;
                *colon = '\0';
                id = strip(*l);
                name = strip(colon + 1);
                /* The header NVIDIA's driver prints first ("ID    : vGPU Name"). */
                if (line == 1 && streq(id, "ID"))
                        continue;
                if (sysfs_parse_int(id, 1, UINT32_MAX, &v) < 0 || *name == '\0')
                        goto bad;
                VgpuType *a = reallocarray(types, n + 1, sizeof(VgpuType));
                if (!a) {
                        vgpu_types_free(types, n);
                        return -ENOMEM;
                }
                types = a;
                types[n].id = (uint32_t)v;
                types[n].name = strdup(name);
                if (!types[n++].name) {
                        vgpu_types_free(types, n);
                        return -ENOMEM;
                }
        }
        if (n > 1)
                qsort(types, n, sizeof(VgpuType), vgpu_type_compare);
        *ret = types;
        *ret_n = n;
        return 0;
bad:
        vgpu_types_free(types, n);
        if (ret_bad_line)
                *ret_bad_line = line;
        return -EINVAL;
}

const VgpuType *vgpu_vf_find_type(const VgpuVf *vf, uint32_t id, const char *name) {
        for (size_t i = 0; i < vf->n_creatable; i++)
                if (id != 0 ? vf->creatable[i].id == id : name && streq(vf->creatable[i].name, name))
                        return &vf->creatable[i];
        return NULL;
}

typedef struct VgpuTypeName {
        char *physfn; /* "" when the VF has no PF link */
        uint32_t id;
        char *name;
} VgpuTypeName;

struct VgpuTypeNames {
        VgpuTypeName *entries;
        size_t n;
};

static VgpuTypeName *vgpu_type_names_lookup(const VgpuTypeNames *names, const char *physfn, uint32_t id) {
        for (size_t i = 0; names && i < names->n; i++)
                if (names->entries[i].id == id && streq(names->entries[i].physfn, strempty(physfn)))
                        return &names->entries[i];
        return NULL;
}

int vgpu_type_names_learn(VgpuTypeNames **names, const VgpuVf *const *vfs, size_t n) {
        int learnt = 0;

        assert(names);
        if (!*names) {
                *names = calloc(1, sizeof(VgpuTypeNames));
                if (!*names)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < vfs[i]->n_creatable; k++) {
                        const VgpuType *t = &vfs[i]->creatable[k];
                        VgpuTypeName *e = vgpu_type_names_lookup(*names, vfs[i]->physfn, t->id);
                        char *copy;

                        if (e && streq(e->name, t->name))
                                continue;
                        copy = strdup(t->name);
                        if (!copy)
                                return -ENOMEM;
                        if (e) {
                                free(e->name);
                                e->name = copy;
                        } else {
                                VgpuTypeName *a = reallocarray(
                                        (*names)->entries, (*names)->n + 1, sizeof(VgpuTypeName));
                                char *physfn = strdup(strempty(vfs[i]->physfn));

                                if (a)
                                        (*names)->entries = a;
                                if (!a || !physfn) {
                                        free(copy);
                                        free(physfn);
                                        return -ENOMEM;
                                }
                                a[(*names)->n++] =
                                        (VgpuTypeName){ .physfn = physfn, .id = t->id, .name = copy };
                        }
                        learnt++;
                }
        return learnt;
}

const char *vgpu_type_names_get(const VgpuTypeNames *names, const char *physfn, uint32_t id) {
        const VgpuTypeName *e = vgpu_type_names_lookup(names, physfn, id);
        return e ? e->name : NULL;
}

uint32_t vgpu_type_names_find(const VgpuTypeNames *names, const char *physfn, const char *name) {
        for (size_t i = 0; names && name && i < names->n; i++)
                if (streq(names->entries[i].physfn, strempty(physfn)) && streq(names->entries[i].name, name))
                        return names->entries[i].id;
        return 0;
}

#define VGPU_TYPE_NAMES_VERSION 1
#define VGPU_TYPE_NAMES_FILE_MAX (1024u * 1024u)
#define VGPU_TYPE_NAME_MAX 256u

static int vgpu_type_names_add(VgpuTypeNames *names, const char *physfn, uint32_t id, const char *name) {
        VgpuTypeName *a = reallocarray(names->entries, names->n + 1, sizeof(VgpuTypeName));
        char *p, *n;

        if (!a)
                return -ENOMEM;
        names->entries = a;
        p = strdup(physfn);
        n = strdup(name);
        if (!p || !n) {
                free(p);
                free(n);
                return -ENOMEM;
        }
        a[names->n++] = (VgpuTypeName){ .physfn = p, .id = id, .name = n };
        return 0;
}

int vgpu_type_names_load(const char *dir, VgpuTypeNames **ret, char **ret_error) {
        _cleanup_(vgpu_type_names_freep) VgpuTypeNames *names = NULL;
        json_object *root = NULL, *gpus;
        int r;

        assert(dir);
        assert(ret);
        if (ret_error)
                *ret_error = NULL;
        names = calloc(1, sizeof(VgpuTypeNames));
        if (!names)
                return -ENOMEM;
        r = json_file_load(
                dir, HOSTDEVD_VGPU_TYPE_NAMES_FILE, VGPU_TYPE_NAMES_FILE_MAX, VGPU_TYPE_NAMES_VERSION, &root,
                ret_error);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = TAKE_PTR(names);
                return 0;
        }
        if (!json_object_object_get_ex(root, "gpus", &gpus) ||
            !json_object_is_type(gpus, json_type_object)) {
                json_object_put(root);
                return json_file_error(
                        ret_error, -EUCLEAN, "%s/%s: \"gpus\" is not an object", dir,
                        HOSTDEVD_VGPU_TYPE_NAMES_FILE);
        }
        json_object_object_foreach(gpus, gpu, types) {
                if (*gpu && !pci_address_is_valid(gpu)) {
                        r = json_file_error(
                                ret_error, -EUCLEAN, "%s/%s: \"%s\" is not a PCI address", dir,
                                HOSTDEVD_VGPU_TYPE_NAMES_FILE, gpu);
                        json_object_put(root); /* after: |gpu| lives in |root| */
                        return r;
                }
                if (!json_object_is_type(types, json_type_object)) {
                        r = json_file_error(
                                ret_error, -EUCLEAN, "%s/%s: GPU %s: not an object of type names", dir,
                                HOSTDEVD_VGPU_TYPE_NAMES_FILE, gpu);
                        json_object_put(root);
                        return r;
                }
                json_object_object_foreach(types, key, value) {
                        const char *name = json_object_is_type(value, json_type_string)
                                ? json_object_get_string(value)
                                : NULL;
                        unsigned long id;
                        char *end;

                        errno = 0;
                        id = strtoul(key, &end, 10);
                        if (!isdigit((unsigned char)key[0]) || *end || errno || id == 0 || id > UINT32_MAX ||
                            !name || !*name || strlen(name) > VGPU_TYPE_NAME_MAX ||
                            vgpu_type_names_lookup(names, gpu, (uint32_t)id)) {
                                r = json_file_error(
                                        ret_error, -EUCLEAN,
                                        "%s/%s: GPU %s: type \"%s\": not a type id (1..%" PRIu32
                                        ") with a name of 1..%u bytes, or repeated",
                                        dir, HOSTDEVD_VGPU_TYPE_NAMES_FILE, gpu, key, UINT32_MAX,
                                        VGPU_TYPE_NAME_MAX);
                                json_object_put(root);
                                return r;
                        }
                        r = vgpu_type_names_add(names, gpu, (uint32_t)id, name);
                        if (r < 0) {
                                json_object_put(root);
                                return r;
                        }
                }
        }
        json_object_put(root);
        log_debug("Loaded %zu vGPU type names from %s/%s", names->n, dir, HOSTDEVD_VGPU_TYPE_NAMES_FILE);
        *ret = TAKE_PTR(names);
        return 0;
}

int vgpu_type_names_save(const VgpuTypeNames *names, const char *dir) {
        json_object *root, *gpus;
        int r;

        assert(dir);
        root = json_object_new_object();
        gpus = json_object_new_object();
        if (!root || !gpus ||
            json_object_object_add(root, "version", json_object_new_int(VGPU_TYPE_NAMES_VERSION)) < 0 ||
            json_object_object_add(root, "gpus", gpus) < 0) {
                json_object_put(root);
                json_object_put(gpus);
                return -ENOMEM;
        }
        for (size_t i = 0; names && i < names->n; i++) {
                const VgpuTypeName *e = &names->entries[i];
                json_object *types;
                char id[16];

                if (!json_object_object_get_ex(gpus, e->physfn, &types)) {
                        types = json_object_new_object();
                        if (!types || json_object_object_add(gpus, e->physfn, types) < 0) {
                                json_object_put(types);
                                json_object_put(root);
                                return -ENOMEM;
                        }
                }
                (void)snprintf(id, sizeof(id), "%" PRIu32, e->id);
                if (json_object_object_add(types, id, json_object_new_string(e->name)) < 0) {
                        json_object_put(root);
                        return -ENOMEM;
                }
        }
        r = json_file_save(dir, HOSTDEVD_VGPU_TYPE_NAMES_FILE, root);
        json_object_put(root);
        return r;
}

VgpuTypeNames *vgpu_type_names_free(VgpuTypeNames *names) {
        if (!names)
                return NULL;
        for (size_t i = 0; i < names->n; i++) {
                free(names->entries[i].physfn);
                free(names->entries[i].name);
        }
        free(names->entries);
        free(names);
        return NULL;
}

VgpuVf *vgpu_vf_free(VgpuVf *v) {
        if (!v)
                return NULL;
        free(v->physfn);
        vgpu_types_free(v->creatable, v->n_creatable);
        strv_free(v->errors);
        free(v);
        return NULL;
}

int vgpu_vf_read(const char *address, VgpuVf **ret) {
        _cleanup_(vgpu_vf_freep) VgpuVf *v = NULL;
        _cleanup_free_ char *dev = NULL, *dir = NULL, *text = NULL, *group = NULL;
        struct stat st;
        int64_t cur;
        unsigned bad = 0;
        int r;

        assert(ret);
        if (!address || !pci_address_is_valid(address))
                return -EINVAL;
        if (asprintf(&dev, "%s/%s", SYSFS_PCI_DEVICES, address) < 0 ||
            asprintf(&dir, "%s/%s", dev, SYSFS_ATTR_NVIDIA_DIR) < 0)
                return -ENOMEM;
        if (stat(dir, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOENT;

        v = calloc(1, sizeof(VgpuVf));
        if (!v)
                return -ENOMEM;
        snprintf(v->address, sizeof(v->address), "%s", address);
        v->iommu_group = -1;

        r = sysfs_read_link_basename(dev, SYSFS_ATTR_PHYSFN, &v->physfn);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                v->physfn = NULL;
        r = sysfs_read_link_basename(dev, SYSFS_ATTR_IOMMU_GROUP, &group);
        if (r == -ENOMEM)
                return r;
        if (r >= 0 && sysfs_parse_int(group, 0, INT32_MAX, &cur) >= 0)
                v->iommu_group = (int32_t)cur;

        r = sysfs_read_string(dir, SYSFS_ATTR_NVIDIA_CREATABLE_VGPU_TYPES, &text);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (strv_extendf(
                            &v->errors, "%s/%s: %s", SYSFS_ATTR_NVIDIA_DIR,
                            SYSFS_ATTR_NVIDIA_CREATABLE_VGPU_TYPES, strerror(-r)) < 0)
                        return -ENOMEM;
        } else {
                r = vgpu_types_parse(text, &v->creatable, &v->n_creatable, &bad);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 &&
                    strv_extendf(
                            &v->errors, "%s/%s: line %u: not \"ID : NAME\"", SYSFS_ATTR_NVIDIA_DIR,
                            SYSFS_ATTR_NVIDIA_CREATABLE_VGPU_TYPES, bad) < 0)
                        return -ENOMEM;
        }

        r = sysfs_read_int(dir, SYSFS_ATTR_NVIDIA_CURRENT_VGPU_TYPE, 0, UINT32_MAX, &cur);
        if (r == -ENOMEM)
                return r;
        if (r >= 0)
                v->current_type = (uint32_t)cur;
        else if (
                strv_extendf(
                        &v->errors, "%s/%s: %s", SYSFS_ATTR_NVIDIA_DIR, SYSFS_ATTR_NVIDIA_CURRENT_VGPU_TYPE,
                        strerror(-r)) < 0)
                return -ENOMEM;

        log_debug(
                "Read vGPU VF %s: %zu creatable types, current %" PRIu32, v->address, v->n_creatable,
                v->current_type);
        *ret = TAKE_PTR(v);
        return 0;
}

MdevUnavailable vgpu_vf_unavailable(
        const VgpuVf *vf, uint32_t type_id, const VgpuVf *const *peers, size_t n_peers,
        bool one_type_per_gpu) {
        assert(vf);

        if (vf->current_type != 0)
                return vf->current_type == type_id ? MDEV_UNAVAILABLE_NONE : MDEV_UNAVAILABLE_VF_BUSY;
        if (vgpu_vf_find_type(vf, type_id, NULL))
                return MDEV_UNAVAILABLE_NONE;
        for (size_t i = 0; one_type_per_gpu && i < n_peers; i++) {
                const VgpuVf *p = peers[i];
                if (p == vf || !p->physfn || !vf->physfn || !streq(p->physfn, vf->physfn))
                        continue;
                if (p->current_type != 0 && p->current_type != type_id)
                        return MDEV_UNAVAILABLE_OTHER_TYPE;
        }
        return MDEV_UNAVAILABLE_EXHAUSTED;
}
