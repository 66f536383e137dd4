/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uuid/uuid.h>

#include "escape.h"
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
