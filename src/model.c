/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "macro.h"
#include "model.h"
#include "names.h"
#include "pci-address.h"
#include "strv.h"

/*
 * Devices, mdevs and parents live in arrays of pointers sorted by key, so a lookup is a binary search
 * and an insertion or removal one memmove() of pointers: enumeration is O(n log n), one uevent
 * O(log n) plus the sysfs re-reads it needs. Only a change of IOMMU group membership (a device
 * appears, disappears or moves group; rare) scans all devices, to mark the group peers.
 */

typedef struct SortedArray {
        void **items;
        size_t n, allocated;
} SortedArray;

struct Model {
        struct pci_access *pacc;
        SortedArray devices; /* PciDevice*, by address (pci_key_compare) */
        SortedArray mdevs; /* Mdev*, by UUID */
        SortedArray parents; /* MdevParent*, by name */
        bool iommu_enabled;
        const char *iommu_reason;

        /*
         * Devices with an IOMMU group, sorted by (group, address): the peers of a device are one
         * binary search away, so publishing IommuGroupPeers for every device is O(n log n), not
         * O(n^2). A cache built on the first query after a change; every public mutator drops it.
         */
        const PciDevice **group_index;
        size_t n_group_index;
        bool group_index_valid;
};

#define IOMMU_REASON_NONE                                                              \
        "no IOMMU groups in " SYSFS_IOMMU_GROUPS " and no IOMMU in " SYSFS_CLASS_IOMMU \
        ": enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on or amd_iommu=on"

/* ---- keys ----------------------------------------------------------------------------------------- */

/*
 * Canonical addresses have fixed-width fields except the domain, which has no leading zeros beyond
 * four digits: a longer string is a larger domain, equal lengths compare as strings.
 */
static int pci_key_compare(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);

        if (la != lb)
                return la < lb ? -1 : 1;
        return strcmp(a, b);
}

static const char *device_key(const void *p) {
        return ((const PciDevice *)p)->address;
}
static const char *mdev_key(const void *p) {
        return ((const Mdev *)p)->uuid;
}
static const char *parent_key(const void *p) {
        return ((const MdevParent *)p)->name;
}

typedef struct ArrayKind {
        const char *(*key)(const void *item);
        int (*compare)(const char *a, const char *b);
        void (*free_item)(void *item);
        ModelObjectKind object;
} ArrayKind;

static void device_free_item(void *p) {
        pci_device_free(p);
}
static void mdev_free_item(void *p) {
        mdev_free(p);
}
static void parent_free_item(void *p) {
        mdev_parent_free(p);
}

static const ArrayKind device_kind = { device_key, pci_key_compare, device_free_item, MODEL_OBJECT_DEVICE };
static const ArrayKind mdev_kind = { mdev_key, strcmp, mdev_free_item, MODEL_OBJECT_MDEV };
static const ArrayKind parent_kind = { parent_key, strcmp, parent_free_item, MODEL_OBJECT_PARENT };

/* Index of |key|, or where it would be inserted; *found says which. */
static size_t array_search(const SortedArray *a, const ArrayKind *k, const char *key, bool *found) {
        size_t lo = 0, hi = a->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = k->compare(key, k->key(a->items[mid]));

                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        *found = false;
        return lo;
}

static void *array_get(const SortedArray *a, const ArrayKind *k, const char *key) {
        bool found;
        size_t i = array_search(a, k, key, &found);

        return found ? a->items[i] : NULL;
}

static int array_reserve(SortedArray *a, size_t n) {
        void **p;
        size_t m;

        if (n <= a->allocated)
                return 0;
        m = a->allocated ? a->allocated * 2 : 64;
        while (m < n)
                m *= 2;
        p = reallocarray(a->items, m, sizeof(void *));
        if (!p)
                return -ENOMEM;
        a->items = p;
        a->allocated = m;
        return 0;
}

static int array_insert_at(SortedArray *a, size_t i, void *item) {
        int r = array_reserve(a, a->n + 1);

        if (r < 0)
                return r;
        memmove(a->items + i + 1, a->items + i, (a->n - i) * sizeof(void *));
        a->items[i] = item;
        a->n++;
        return 0;
}

static void array_remove_at(SortedArray *a, size_t i) {
        memmove(a->items + i, a->items + i + 1, (a->n - i - 1) * sizeof(void *));
        a->n--;
        /* Give back what a storm of adds grew once its functions are gone (a quarter used: halve). */
        if (a->allocated > 64 && a->n < a->allocated / 4) {
                void **p = reallocarray(a->items, a->allocated / 2, sizeof(void *));

                if (p) {
                        a->items = p;
                        a->allocated /= 2;
                }
        }
}

static void array_done(SortedArray *a, const ArrayKind *k) {
        for (size_t i = 0; i < a->n; i++)
                k->free_item(a->items[i]);
        free(a->items);
        *a = (SortedArray){};
}

static const ArrayKind *sort_kind; /* qsort() has no context argument; the model is single-threaded */

static int sort_compare(const void *a, const void *b) {
        return sort_kind->compare(sort_kind->key(*(void *const *)a), sort_kind->key(*(void *const *)b));
}

static void array_sort(SortedArray *a, const ArrayKind *k) {
        if (a->n < 2)
                return;
        sort_kind = k;
        qsort(a->items, a->n, sizeof(void *), sort_compare);
        sort_kind = NULL;
}

/* ---- change lists ------------------------------------------------------------------------------- */

/* A list that grew past this (a rescan, a storm of uevents) gives its buffer back when cleared. */
#define CHANGE_LIST_KEEP 256u

void model_change_list_clear(ModelChangeList *l) {
        if (l->allocated > CHANGE_LIST_KEEP) {
                model_change_list_done(l);
                return;
        }
        l->n = 0;
}

void model_change_list_done(ModelChangeList *l) {
        free(l->changes);
        *l = (ModelChangeList){};
}

static int change_append(
        ModelChangeList *l, ModelChangeKind kind, ModelObjectKind object, const char *key, unsigned fields) {
        ModelChange *c;

        if (!l)
                return 0;
        if (l->n == l->allocated) {
                size_t m = l->allocated ? l->allocated * 2 : 16;

                c = reallocarray(l->changes, m, sizeof(ModelChange));
                if (!c)
                        return -ENOMEM;
                l->changes = c;
                l->allocated = m;
        }
        c = &l->changes[l->n++];
        *c = (ModelChange){ .kind = kind, .object = object, .fields = fields };
        (void)snprintf(c->key, sizeof(c->key), "%s", key);
        return 0;
}

/* The record for object/key appended since |start|, or NULL. Events append a handful, so linear is fine. */
static ModelChange *change_find(ModelChangeList *l, size_t start, ModelObjectKind object, const char *key) {
        if (!l)
                return NULL;
        for (size_t i = start; i < l->n; i++)
                if (l->changes[i].object == object &&
                    strneq(l->changes[i].key, key, sizeof(l->changes[i].key)))
                        return &l->changes[i];
        return NULL;
}

/* ---- model lifecycle ---------------------------------------------------------------------------- */

int model_new(struct pci_access *pacc, Model **ret) {
        Model *m;

        m = calloc(1, sizeof(Model));
        if (!m)
                return -ENOMEM;
        m->pacc = pacc;
        m->iommu_reason = IOMMU_REASON_NONE;
        *ret = m;
        return 0;
}

static void group_index_invalidate(Model *m) {
        m->group_index = mfree(m->group_index);
        m->n_group_index = 0;
        m->group_index_valid = false;
}

static void model_clear(Model *m) {
        group_index_invalidate(m);
        array_done(&m->devices, &device_kind);
        array_done(&m->mdevs, &mdev_kind);
        array_done(&m->parents, &parent_kind);
}

Model *model_free(Model *m) {
        if (!m)
                return NULL;
        model_clear(m);
        free(m);
        return NULL;
}

/* ---- IOMMU state -------------------------------------------------------------------------------- */

static bool dir_has_entries(const char *path) {
        _cleanup_closedir_ DIR *d = opendir(path);
        struct dirent *de;

        if (!d)
                return false;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        return true;
        return false;
}

/* kernel-iommu_groups ABI: groups exist only when an IOMMU driver translates for some device. */
static void read_iommu_state(Model *m) {
        m->iommu_enabled = dir_has_entries(SYSFS_IOMMU_GROUPS) || dir_has_entries(SYSFS_CLASS_IOMMU);
        m->iommu_reason = m->iommu_enabled ? "" : IOMMU_REASON_NONE;
}

bool model_iommu_enabled(const Model *m) {
        return m->iommu_enabled;
}

const char *model_iommu_reason(const Model *m) {
        return m->iommu_reason;
}

/* ---- enumeration -------------------------------------------------------------------------------- */

typedef int (*ReadFunc)(Model *m, const char *name, void **ret);

static int read_device_item(Model *m, const char *name, void **ret) {
        if (!pci_address_is_valid(name))
                return -ENOENT;
        return pci_device_read(name, m->pacc, (PciDevice **)ret);
}
static int read_mdev_item(Model *m, const char *name, void **ret) {
        if (!mdev_uuid_is_valid(name))
                return -ENOENT;
        return mdev_read(name, (Mdev **)ret);
}
static int read_parent_item(Model *m, const char *name, void **ret) {
        return mdev_parent_read(name, (MdevParent **)ret);
}

static int enumerate_dir(
        Model *m, const char *path, bool required, ReadFunc read_item, SortedArray *a, const ArrayKind *k) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        d = opendir(path);
        if (!d) {
                if (!required && errno == ENOENT)
                        return 0;
                return log_debug_errno(errno, "Failed to open %s: %m", path);
        }

        while ((errno = 0, de = readdir(d))) {
                void *item;

                if (de->d_name[0] == '.')
                        continue;
                r = read_item(m, de->d_name, &item);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        /* Gone while we looked, or a name that is not ours: the next event tells. */
                        log_debug_errno(r, "Skipping %s/%s: %m", path, de->d_name);
                        continue;
                }
                r = array_reserve(a, a->n + 1);
                if (r < 0) {
                        k->free_item(item);
                        return r;
                }
                a->items[a->n++] = item;
        }
        if (errno != 0)
                return -errno;

        array_sort(a, k);
        return 0;
}

typedef struct EventContext {
        Model *m;
        ModelChangeList *changes;
        size_t start; /* first record of this update in changes */
        int32_t *groups; /* IOMMU groups whose membership changed */
        size_t n_groups, allocated_groups;
        bool manager; /* counts or IOMMU state changed */
        bool changed;
} EventContext;

static int context_add_group(EventContext *c, int32_t group) {
        if (group < 0)
                return 0;
        for (size_t i = 0; i < c->n_groups; i++)
                if (c->groups[i] == group)
                        return 0;
        if (c->n_groups == c->allocated_groups) {
                size_t n = c->allocated_groups ? c->allocated_groups * 2 : 8;
                int32_t *g = reallocarray(c->groups, n, sizeof(int32_t));

                if (!g)
                        return -ENOMEM;
                c->groups = g;
                c->allocated_groups = n;
        }
        c->groups[c->n_groups++] = group;
        return 0;
}

static bool context_has_group(const EventContext *c, int32_t group) {
        for (size_t i = 0; i < c->n_groups; i++)
                if (c->groups[i] == group)
                        return true;
        return false;
}

/* Mark IOMMU_PEERS on every present member of an affected group that was not added by this update. */
static int context_mark_peers(EventContext *c) {
        if (c->n_groups == 0)
                return 0;

        for (size_t i = 0; i < c->m->devices.n; i++) {
                const PciDevice *d = c->m->devices.items[i];
                ModelChange *ch;
                int r;

                if (d->iommu_group < 0 || !context_has_group(c, d->iommu_group))
                        continue;
                c->changed = true;
                ch = change_find(c->changes, c->start, MODEL_OBJECT_DEVICE, d->address);
                if (ch) {
                        if (ch->kind == MODEL_CHANGE_CHANGED)
                                ch->fields |= PCI_DEVICE_FIELD_IOMMU_PEERS;
                        continue;
                }
                r = change_append(
                        c->changes, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, d->address,
                        PCI_DEVICE_FIELD_IOMMU_PEERS);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int context_finish(EventContext *c, bool old_iommu_enabled) {
        int r;

        r = context_mark_peers(c);
        if (r < 0)
                return r;
        if (c->m->iommu_enabled != old_iommu_enabled)
                c->manager = true;
        if (c->manager) {
                c->changed = true;
                r = change_append(c->changes, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MANAGER, "", 0);
                if (r < 0)
                        return r;
        }
        return c->changed ? 1 : 0;
}

static void context_done(EventContext *c) {
        free(c->groups);
}

static bool parent_equal(const MdevParent *a, const MdevParent *b) {
        return streq(a->name, b->name) && streq(a->syspath, b->syspath) && a->is_pci == b->is_pci &&
                mdev_types_equal(a->types, a->n_types, b->types, b->n_types) &&
                strv_equal(a->errors, b->errors);
}

/* Fields that differ between two items of one kind; parents have no field bits, only "differ" (1). */
static unsigned item_diff(const ArrayKind *k, const void *a, const void *b) {
        if (k == &device_kind)
                return pci_device_diff(a, b);
        if (k == &mdev_kind)
                return mdev_diff(a, b);
        return parent_equal(a, b) ? 0 : 1;
}

/* Append the difference between two sorted arrays to c; record group changes of devices. */
static int diff_arrays(EventContext *c, const ArrayKind *k, const SortedArray *old, const SortedArray *new) {
        size_t i = 0, j = 0;
        int r;

        while (i < old->n || j < new->n) {
                int cmp = i >= old->n ? 1
                        : j >= new->n ? -1
                                      : k->compare(k->key(old->items[i]), k->key(new->items[j]));

                if (cmp < 0) {
                        if (k == &device_kind)
                                (void)context_add_group(c, ((PciDevice *)old->items[i])->iommu_group);
                        if (k != &parent_kind)
                                c->manager = true;
                        r = change_append(
                                c->changes, MODEL_CHANGE_REMOVED, k->object, k->key(old->items[i]), 0);
                        i++;
                } else if (cmp > 0) {
                        if (k == &device_kind)
                                (void)context_add_group(c, ((PciDevice *)new->items[j])->iommu_group);
                        if (k != &parent_kind)
                                c->manager = true;
                        r = change_append(
                                c->changes, MODEL_CHANGE_ADDED, k->object, k->key(new->items[j]), 0);
                        j++;
                } else {
                        unsigned f = item_diff(k, old->items[i], new->items[j]);

                        r = 0;
                        if (f != 0) {
                                if (k == &device_kind && (f & PCI_DEVICE_FIELD_IOMMU_GROUP)) {
                                        r = context_add_group(c, ((PciDevice *)old->items[i])->iommu_group);
                                        if (r >= 0)
                                                r = context_add_group(
                                                        c, ((PciDevice *)new->items[j])->iommu_group);
                                }
                                if (r >= 0)
                                        r = change_append(
                                                c->changes, MODEL_CHANGE_CHANGED, k->object,
                                                k->key(new->items[j]), k == &parent_kind ? 0 : f);
                        }
                        i++;
                        j++;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

int model_enumerate(Model *m, ModelChangeList *changes) {
        Model fresh = { .pacc = m->pacc };
        EventContext c = { .m = m, .changes = changes, .start = changes ? changes->n : 0 };
        bool old_iommu = m->iommu_enabled;
        int r;

        group_index_invalidate(m);

        r = enumerate_dir(&fresh, SYSFS_PCI_DEVICES, true, read_device_item, &fresh.devices, &device_kind);
        if (r < 0)
                goto finish;
        r = enumerate_dir(
                &fresh, SYSFS_MDEV_BUS_CLASS, false, read_parent_item, &fresh.parents, &parent_kind);
        if (r < 0)
                goto finish;
        r = enumerate_dir(&fresh, SYSFS_MDEV_DEVICES, false, read_mdev_item, &fresh.mdevs, &mdev_kind);
        if (r < 0)
                goto finish;
        read_iommu_state(&fresh);

        if (changes) {
                r = diff_arrays(&c, &device_kind, &m->devices, &fresh.devices);
                if (r >= 0)
                        r = diff_arrays(&c, &mdev_kind, &m->mdevs, &fresh.mdevs);
                if (r >= 0)
                        r = diff_arrays(&c, &parent_kind, &m->parents, &fresh.parents);
                if (r < 0)
                        goto finish;
        }

        /* Swap in the new content; |fresh| now holds the old one and is freed below. */
        {
                Model tmp = *m;

                m->devices = fresh.devices;
                m->mdevs = fresh.mdevs;
                m->parents = fresh.parents;
                m->iommu_enabled = fresh.iommu_enabled;
                m->iommu_reason = fresh.iommu_reason;
                fresh.devices = tmp.devices;
                fresh.mdevs = tmp.mdevs;
                fresh.parents = tmp.parents;
        }

        if (changes) {
                r = context_finish(&c, old_iommu);
                if (r >= 0)
                        r = 0;
        } else
                r = 0;

        log_debug(
                "Enumerated %zu PCI devices, %zu mdev parents, %zu mdevs; IOMMU %s", m->devices.n,
                m->parents.n, m->mdevs.n, m->iommu_enabled ? "enabled" : "disabled");
finish:
        model_clear(&fresh);
        context_done(&c);
        return r;
}

/* ---- uevents ------------------------------------------------------------------------------------ */

/* Replace (or add, or drop when |new| is NULL) the device at |address|; takes |new|. */
static int update_device(EventContext *c, const char *address, PciDevice *new) {
        SortedArray *a = &c->m->devices;
        PciDevice *old;
        bool found;
        size_t i;
        unsigned f;
        int r;

        i = array_search(a, &device_kind, address, &found);
        old = found ? a->items[i] : NULL;

        if (!old && !new)
                return 0;

        if (!old) {
                r = array_insert_at(a, i, new);
                if (r < 0) {
                        pci_device_free(new);
                        return r;
                }
                c->manager = c->changed = true;
                r = context_add_group(c, new->iommu_group);
                if (r < 0)
                        return r;
                log_debug("PCI device %s added", address);
                return change_append(c->changes, MODEL_CHANGE_ADDED, MODEL_OBJECT_DEVICE, address, 0);
        }

        if (!new) {
                r = context_add_group(c, old->iommu_group);
                if (r < 0)
                        return r;
                array_remove_at(a, i);
                pci_device_free(old);
                c->manager = c->changed = true;
                log_debug("PCI device %s removed", address);
                return change_append(c->changes, MODEL_CHANGE_REMOVED, MODEL_OBJECT_DEVICE, address, 0);
        }

        f = pci_device_diff(old, new);
        if (f == 0) {
                pci_device_free(new);
                return 0;
        }
        if (f & PCI_DEVICE_FIELD_IOMMU_GROUP) {
                r = context_add_group(c, old->iommu_group);
                if (r >= 0)
                        r = context_add_group(c, new->iommu_group);
                if (r < 0) {
                        pci_device_free(new);
                        return r;
                }
        }
        a->items[i] = new;
        pci_device_free(old);
        c->changed = true;
        log_debug("PCI device %s changed (fields 0x%x)", address, f);

        /* One event may re-read a device twice (a VF and then its PF): merge into one record. */
        ModelChange *ch = change_find(c->changes, c->start, MODEL_OBJECT_DEVICE, address);
        if (ch) {
                if (ch->kind == MODEL_CHANGE_CHANGED)
                        ch->fields |= f;
                return 0;
        }
        return change_append(c->changes, MODEL_CHANGE_CHANGED, MODEL_OBJECT_DEVICE, address, f);
}

/* |whole|: read names and serial again too (an "add": maybe another function at the same address). */
static int reread_device_full(EventContext *c, const char *address, bool gone, bool whole) {
        PciDevice *d = NULL;
        int r;

        if (!gone) {
                const PciDevice *old = whole ? NULL : array_get(&c->m->devices, &device_kind, address);

                r = pci_device_reread(address, c->m->pacc, old, &d);
                if (r == -ENOENT || r == -EINVAL)
                        d = NULL;
                else if (r < 0)
                        return r;
        }
        return update_device(c, address, d);
}

static int reread_device(EventContext *c, const char *address, bool gone) {
        return reread_device_full(c, address, gone, false);
}

static int update_mdev(EventContext *c, const char *uuid, Mdev *new) {
        SortedArray *a = &c->m->mdevs;
        Mdev *old;
        bool found;
        size_t i;
        unsigned f;
        int r;

        i = array_search(a, &mdev_kind, uuid, &found);
        old = found ? a->items[i] : NULL;

        if (!old && !new)
                return 0;
        if (!old) {
                r = array_insert_at(a, i, new);
                if (r < 0) {
                        mdev_free(new);
                        return r;
                }
                c->manager = c->changed = true;
                return change_append(c->changes, MODEL_CHANGE_ADDED, MODEL_OBJECT_MDEV, uuid, 0);
        }
        if (!new) {
                array_remove_at(a, i);
                mdev_free(old);
                c->manager = c->changed = true;
                return change_append(c->changes, MODEL_CHANGE_REMOVED, MODEL_OBJECT_MDEV, uuid, 0);
        }
        f = mdev_diff(old, new);
        if (f == 0) {
                mdev_free(new);
                return 0;
        }
        a->items[i] = new;
        mdev_free(old);
        c->changed = true;
        return change_append(c->changes, MODEL_CHANGE_CHANGED, MODEL_OBJECT_MDEV, uuid, f);
}

/* Re-read /sys/class/mdev_bus/<name> (or drop it when |gone|); PARENT records carry no field bits. */
static int sync_parent(EventContext *c, const char *name, bool gone) {
        SortedArray *a = &c->m->parents;
        MdevParent *old, *new = NULL;
        bool found;
        size_t i;
        int r;

        if (!gone) {
                r = mdev_parent_read(name, &new);
                if (r == -ENOENT || r == -EINVAL)
                        new = NULL;
                else if (r < 0)
                        return r;
        }

        i = array_search(a, &parent_kind, name, &found);
        old = found ? a->items[i] : NULL;

        if (!old && !new)
                return 0;
        if (!old) {
                r = array_insert_at(a, i, new);
                if (r < 0) {
                        mdev_parent_free(new);
                        return r;
                }
                c->changed = true;
                return change_append(c->changes, MODEL_CHANGE_ADDED, MODEL_OBJECT_PARENT, name, 0);
        }
        if (!new) {
                array_remove_at(a, i);
                mdev_parent_free(old);
                c->changed = true;
                return change_append(c->changes, MODEL_CHANGE_REMOVED, MODEL_OBJECT_PARENT, name, 0);
        }
        if (parent_equal(old, new)) {
                mdev_parent_free(new);
                return 0;
        }
        a->items[i] = new;
        mdev_parent_free(old);
        c->changed = true;
        if (change_find(c->changes, c->start, MODEL_OBJECT_PARENT, name))
                return 0;
        return change_append(c->changes, MODEL_CHANGE_CHANGED, MODEL_OBJECT_PARENT, name, 0);
}

static bool path_exists(const char *dir, const char *name) {
        char path[PATH_MAX];
        struct stat st;

        (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
        return lstat(path, &st) >= 0;
}

/* A parent we know, or one the kernel lists: re-read it. */
static int maybe_sync_parent(EventContext *c, const char *name, bool gone) {
        if (!array_get(&c->m->parents, &parent_kind, name) && !path_exists(SYSFS_MDEV_BUS_CLASS, name))
                return 0;
        return sync_parent(c, name, gone);
}

/*
 * "move": the event carries the new path; the old name is in DEVPATH_OLD, which this interface does
 * not get. Drop every object whose bus link is gone (moves are rare: a renamed or reparented device).
 */
static int drop_vanished(EventContext *c, const ArrayKind *k, SortedArray *a, const char *bus_dir) {
        for (size_t i = 0; i < a->n;) {
                const char *key = k->key(a->items[i]);
                char
                        buf[MDEV_UUID_STRING_MAX > PCI_ADDRESS_STRING_MAX ? MDEV_UUID_STRING_MAX
                                                                          : PCI_ADDRESS_STRING_MAX];
                int r;

                if (path_exists(bus_dir, key)) {
                        i++;
                        continue;
                }
                (void)snprintf(buf, sizeof(buf), "%s", key);
                r = k == &device_kind ? reread_device(c, buf, true) : update_mdev(c, buf, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int handle_pci(EventContext *c, const char *action, const char *sysname) {
        char address[PCI_ADDRESS_STRING_MAX], old_pf[PCI_ADDRESS_STRING_MAX] = "",
                                              new_pf[PCI_ADDRESS_STRING_MAX] = "";
        bool gone = streq(action, "remove"), known;
        const PciDevice *d;
        PciAddress a;
        int r;

        if (pci_address_from_string(sysname, &a) < 0)
                return 0; /* not a function (e.g. a pci_bus or slot object): nothing we model */
        pci_address_format(&a, address);

        d = array_get(&c->m->devices, &device_kind, address);
        known = d;
        if (d && d->physfn)
                (void)snprintf(old_pf, sizeof(old_pf), "%s", d->physfn);

        if (streq(action, "move")) {
                r = drop_vanished(c, &device_kind, &c->m->devices, SYSFS_PCI_DEVICES);
                if (r < 0)
                        return r;
        }

        r = reread_device_full(c, address, gone, streq(action, "add") || streq(action, "move"));
        if (r < 0)
                return r;

        d = array_get(&c->m->devices, &device_kind, address);
        if (d && d->physfn)
                (void)snprintf(new_pf, sizeof(new_pf), "%s", d->physfn);

        /* A VF came or went: its PF's sriov_numvfs and virtfnN links changed with it. A bind or
         * unbind of a VF that stays changes nothing of its PF. */
        if (known && d && streq(old_pf, new_pf) && !streq(action, "add") && !streq(action, "move"))
                old_pf[0] = new_pf[0] = 0;
        if (old_pf[0] && (r = reread_device(c, old_pf, false)) < 0)
                return r;
        if (new_pf[0] && !streq(new_pf, old_pf) && (r = reread_device(c, new_pf, false)) < 0)
                return r;

        /* A PCI mdev parent registers/unregisters with MDEV_STATE on its own change event. */
        r = maybe_sync_parent(c, address, gone);
        if (r < 0)
                return r;

        if (streq(action, "add") || gone || streq(action, "move") || !known)
                read_iommu_state(c->m);
        return 0;
}

/* An mdev's parent: its types' available_instances changed; a PCI parent's PciDevice carries them too. */
static int sync_mdev_parent(EventContext *c, const char *parent) {
        int r;

        r = maybe_sync_parent(c, parent, false);
        if (r < 0)
                return r;
        if (array_get(&c->m->devices, &device_kind, parent))
                return reread_device(c, parent, false);
        return 0;
}

static int handle_mdev(EventContext *c, const char *action, const char *uuid) {
        _cleanup_free_ char *old_parent = NULL;
        const Mdev *old, *now;
        Mdev *new = NULL;
        int r;

        if (!mdev_uuid_is_valid(uuid))
                return 0;

        old = array_get(&c->m->mdevs, &mdev_kind, uuid);
        if (old && old->parent) {
                old_parent = strdup(old->parent);
                if (!old_parent)
                        return -ENOMEM;
        }

        if (streq(action, "move")) {
                r = drop_vanished(c, &mdev_kind, &c->m->mdevs, SYSFS_MDEV_DEVICES);
                if (r < 0)
                        return r;
        }

        if (!streq(action, "remove")) {
                r = mdev_read(uuid, &new);
                if (r == -ENOENT)
                        new = NULL;
                else if (r < 0)
                        return r;
        }
        r = update_mdev(c, uuid, new);
        if (r < 0)
                return r;

        now = array_get(&c->m->mdevs, &mdev_kind, uuid);
        if (old_parent && (r = sync_mdev_parent(c, old_parent)) < 0)
                return r;
        if (now && now->parent && !(old_parent && streq(now->parent, old_parent)) &&
            (r = sync_mdev_parent(c, now->parent)) < 0)
                return r;
        return 0;
}

/* Re-read mdev |uuid| (dropped when gone); adds its parent before and after to |parents| (no duplicates). */
static int refresh_one_mdev(EventContext *c, const char *uuid, char ***parents) {
        const Mdev *old, *now;
        Mdev *new = NULL;
        int r;

        old = array_get(&c->m->mdevs, &mdev_kind, uuid);
        if (old && old->parent && !strv_contains(*parents, old->parent) &&
            strv_extend(parents, old->parent) < 0)
                return -ENOMEM;
        r = mdev_read(uuid, &new);
        if (r < 0 && r != -ENOENT)
                return r;
        r = update_mdev(c, uuid, r < 0 ? NULL : new);
        if (r < 0)
                return r;
        now = array_get(&c->m->mdevs, &mdev_kind, uuid);
        if (now && now->parent && !strv_contains(*parents, now->parent) &&
            strv_extend(parents, now->parent) < 0)
                return -ENOMEM;
        return 0;
}

int model_refresh_mdevs(Model *m, char *const *uuids, ModelChangeList *changes) {
        EventContext c = { .m = m, .changes = changes, .start = changes ? changes->n : 0 };
        _cleanup_strv_free_ char **parents = NULL;
        bool old_iommu = m->iommu_enabled;
        int r = 0;

        group_index_invalidate(m);
        for (char *const *u = uuids; u && *u && r >= 0; u++)
                if (mdev_uuid_is_valid(*u))
                        r = refresh_one_mdev(&c, *u, &parents);
        /* Once per parent, however many of its mdevs came or went: its types' available_instances. */
        STRV_FOREACH (p, parents) {
                if (r < 0)
                        break;
                r = sync_mdev_parent(&c, *p);
        }
        if (r >= 0)
                r = context_finish(&c, old_iommu);
        context_done(&c);
        return r;
}

static bool action_is_valid(const char *action) {
        static const char *const actions[] = { "add", "remove", "change", "bind", "unbind", "move" };

        for (size_t i = 0; i < ELEMENTSOF(actions); i++)
                if (streq(action, actions[i]))
                        return true;
        return false;
}

int model_handle_uevent(
        Model *m, const char *action, const char *subsystem, const char *syspath, const char *sysname,
        const char *mdev_state, ModelChangeList *changes) {
        EventContext c = { .m = m, .changes = changes, .start = changes ? changes->n : 0 };
        bool old_iommu = m->iommu_enabled;
        const char *slash;
        int r;

        if (!action || !action_is_valid(action) || !subsystem)
                return -EINVAL;
        group_index_invalidate(m);
        if (!sysname || !*sysname) {
                slash = syspath ? strrchr(syspath, '/') : NULL;
                sysname = slash ? slash + 1 : NULL;
        }
        if (!sysname || !*sysname || strchr(sysname, '/') || streq(sysname, ".") || streq(sysname, ".."))
                return -EINVAL;

        log_debug(
                "uevent %s %s %s%s%s", action, subsystem, sysname, mdev_state ? " MDEV_STATE=" : "",
                strempty(mdev_state));

        if (streq(subsystem, UEVENT_SUBSYSTEM_PCI))
                r = handle_pci(&c, action, sysname);
        else if (streq(subsystem, UEVENT_SUBSYSTEM_MDEV))
                r = handle_mdev(&c, action, sysname);
        else if (
                mdev_state || array_get(&m->parents, &parent_kind, sysname) ||
                path_exists(SYSFS_MDEV_BUS_CLASS, sysname))
                /* A non-PCI mdev parent (mtty, a platform device): MDEV_STATE=registered/unregistered. */
                r = sync_parent(&c, sysname, streq(action, "remove"));
        else
                r = 0;

        if (r >= 0)
                r = context_finish(&c, old_iommu);
        context_done(&c);
        return r;
}

/* ---- queries ------------------------------------------------------------------------------------ */

const PciDevice *model_get_device(const Model *m, const char *address) {
        char buf[PCI_ADDRESS_STRING_MAX];
        PciAddress a;

        if (!address || pci_address_from_string(address, &a) < 0)
                return NULL;
        return array_get(&m->devices, &device_kind, pci_address_format(&a, buf));
}

const Mdev *model_get_mdev(const Model *m, const char *uuid) {
        if (!uuid)
                return NULL;
        return array_get(&m->mdevs, &mdev_kind, uuid);
}

const MdevParent *model_get_mdev_parent(const Model *m, const char *name) {
        if (!name)
                return NULL;
        return array_get(&m->parents, &parent_kind, name);
}

const PciDevice *const *model_get_devices(const Model *m, size_t *ret_n) {
        *ret_n = m->devices.n;
        return (const PciDevice *const *)m->devices.items;
}

const Mdev *const *model_get_mdevs(const Model *m, size_t *ret_n) {
        *ret_n = m->mdevs.n;
        return (const Mdev *const *)m->mdevs.items;
}

const MdevParent *const *model_get_mdev_parents(const Model *m, size_t *ret_n) {
        *ret_n = m->parents.n;
        return (const MdevParent *const *)m->parents.items;
}

static int group_index_compare(const void *a, const void *b) {
        const PciDevice *x = *(const PciDevice *const *)a, *y = *(const PciDevice *const *)b;

        if (x->iommu_group != y->iommu_group)
                return x->iommu_group < y->iommu_group ? -1 : 1;
        return pci_key_compare(x->address, y->address);
}

static int group_index_build(Model *m) {
        const PciDevice **l;
        size_t n = 0;

        if (m->group_index_valid)
                return 0;
        l = calloc(m->devices.n ?: 1, sizeof(PciDevice *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->devices.n; i++) {
                const PciDevice *d = m->devices.items[i];

                if (d->iommu_group >= 0)
                        l[n++] = d;
        }
        if (n > 0)
                qsort(l, n, sizeof(PciDevice *), group_index_compare);
        free(m->group_index);
        m->group_index = l;
        m->n_group_index = n;
        m->group_index_valid = true;
        return 0;
}

int model_get_iommu_group_members(
        const Model *cm, int32_t group, const PciDevice *const **ret, size_t *ret_n) {
        /* The index is a cache: building it does not change what the model says. */
        Model *m = (Model *)cm;
        size_t lo = 0, hi, end;
        int r;

        *ret = NULL;
        *ret_n = 0;
        if (group < 0)
                return 0;
        r = group_index_build(m);
        if (r < 0)
                return r;
        /* Lower bound of the group in the (group, address) order, then its end. */
        hi = m->n_group_index;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (m->group_index[mid]->iommu_group < group)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (end = lo; end < m->n_group_index && m->group_index[end]->iommu_group == group; end++)
                ;
        *ret = (const PciDevice *const *)m->group_index + lo;
        *ret_n = end - lo;
        return 0;
}

int model_get_iommu_group_peers(const Model *m, const char *address, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        const PciDevice *const *members;
        const PciDevice *d;
        size_t n;
        int r;

        d = model_get_device(m, address);
        if (!d)
                return -ENOENT;
        r = model_get_iommu_group_members(m, d->iommu_group, &members, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (members[i] == d)
                        continue;
                r = strv_extend(&l, members[i]->address);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

bool model_equal(const Model *a, const Model *b) {
        if (a->iommu_enabled != b->iommu_enabled || !streq(a->iommu_reason, b->iommu_reason))
                return false;
        if (a->devices.n != b->devices.n || a->mdevs.n != b->mdevs.n || a->parents.n != b->parents.n)
                return false;
        for (size_t i = 0; i < a->devices.n; i++)
                if (pci_device_diff(a->devices.items[i], b->devices.items[i]) != 0)
                        return false;
        for (size_t i = 0; i < a->mdevs.n; i++)
                if (!streq(((Mdev *)a->mdevs.items[i])->uuid, ((Mdev *)b->mdevs.items[i])->uuid) ||
                    mdev_diff(a->mdevs.items[i], b->mdevs.items[i]) != 0)
                        return false;
        for (size_t i = 0; i < a->parents.n; i++)
                if (!parent_equal(a->parents.items[i], b->parents.items[i]))
                        return false;
        return true;
}
