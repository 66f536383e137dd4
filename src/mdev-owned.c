/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-file.h"
#include "log.h"
#include "macro.h"
#include "mdev-owned.h"
#include "mdev.h"
#include "names.h"
#include "pci-address.h"
#include "strv.h"

#define MDEV_OWNED_VERSION 1

typedef struct Entry {
        char *key, *parent, *type;
} Entry;

struct MdevOwned {
        char *dir;
        Entry *e[2]; /* [0] mdevs, [1] vgpus */
        size_t n[2];
};

static bool streq_ptr_owned(const char *a, const char *b) {
        return a && b ? streq(a, b) : a == b;
}

static void entry_done(Entry *e) {
        free(e->key);
        free(e->parent);
        free(e->type);
}

MdevOwned *mdev_owned_free(MdevOwned *o) {
        if (!o)
                return NULL;
        for (int v = 0; v < 2; v++) {
                for (size_t i = 0; i < o->n[v]; i++)
                        entry_done(&o->e[v][i]);
                free(o->e[v]);
        }
        free(o->dir);
        free(o);
        return NULL;
}

int mdev_owned_new(const char *dir, MdevOwned **ret) {
        MdevOwned *o = calloc(1, sizeof(MdevOwned));

        assert(ret);
        if (!o || strdup_null(dir, &o->dir) < 0) {
                free(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

static bool key_is_valid(bool vgpu, const char *key) {
        return key && (vgpu ? pci_address_is_valid(key) : mdev_uuid_is_valid(key));
}

static Entry *find(const MdevOwned *o, bool vgpu, const char *key) {
        for (size_t i = 0; o && key && i < o->n[vgpu]; i++)
                if (streq(o->e[vgpu][i].key, key))
                        return &o->e[vgpu][i];
        return NULL;
}

bool mdev_owned_contains(const MdevOwned *o, bool vgpu, const char *key) {
        return find(o, vgpu, key) != NULL;
}

static int append(MdevOwned *o, bool vgpu, const char *key, const char *parent, const char *type) {
        Entry *a = reallocarray(o->e[vgpu], o->n[vgpu] + 1, sizeof(Entry));
        if (!a)
                return -ENOMEM;
        o->e[vgpu] = a;
        a = &a[o->n[vgpu]];
        *a = (Entry){};
        if (strdup_null(key, &a->key) < 0 || strdup_null(parent, &a->parent) < 0 ||
            strdup_null(type, &a->type) < 0) {
                entry_done(a);
                return -ENOMEM;
        }
        o->n[vgpu]++;
        return 0;
}

static const char *get_string(json_object *o, const char *name) {
        json_object *v;
        return json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string)
                ? json_object_get_string(v)
                : NULL;
}

int mdev_owned_load(const char *dir, MdevOwned **ret, char **ret_error) {
        _cleanup_(mdev_owned_freep) MdevOwned *o = NULL;
        json_object *root = NULL;
        int r;

        assert(dir);
        assert(ret);
        if (ret_error)
                *ret_error = NULL;
        r = mdev_owned_new(dir, &o);
        if (r < 0)
                return r;
        r = json_file_load(
                dir, HOSTDEVD_MDEV_OWNED_FILE, MDEV_OWNED_FILE_MAX, MDEV_OWNED_VERSION, &root, ret_error);
        if (r <= 0) {
                if (r == 0)
                        *ret = TAKE_PTR(o);
                return r;
        }
        for (int v = 0; v < 2; v++) {
                json_object *map;

                if (!json_object_object_get_ex(root, v ? "vgpus" : "mdevs", &map))
                        continue;
                if (!json_object_is_type(map, json_type_object)) {
                        json_object_put(root);
                        return json_file_error(
                                ret_error, -EUCLEAN, "%s/%s: \"%s\" is not an object", dir,
                                HOSTDEVD_MDEV_OWNED_FILE, v ? "vgpus" : "mdevs");
                }
                json_object_object_foreach(map, key, val) {
                        const char *parent = json_object_is_type(val, json_type_object)
                                ? get_string(val, "parent")
                                : NULL;
                        const char *type =
                                json_object_is_type(val, json_type_object) ? get_string(val, "type") : NULL;

                        if (!key_is_valid(v, key) || !json_object_is_type(val, json_type_object) ||
                            find(o, v, key)) {
                                r = json_file_error(
                                        ret_error, -EUCLEAN, "%s/%s: bad entry \"%s\"", dir,
                                        HOSTDEVD_MDEV_OWNED_FILE, key);
                                json_object_put(root); /* after: |key| lives in |root| */
                                return r;
                        }
                        if (append(o, v, key, parent, type) < 0) {
                                json_object_put(root);
                                return -ENOMEM;
                        }
                }
        }
        json_object_put(root);
        *ret = TAKE_PTR(o);
        return 0;
}

static int save(MdevOwned *o) {
        json_object *root = json_object_new_object();
        int r;

        if (!o->dir) {
                json_object_put(root);
                return 0;
        }
        if (!root || json_object_object_add(root, "version", json_object_new_int(MDEV_OWNED_VERSION)) < 0)
                goto oom;
        for (int v = 0; v < 2; v++) {
                json_object *map = json_object_new_object();
                if (!map || json_object_object_add(root, v ? "vgpus" : "mdevs", map) < 0) {
                        json_object_put(map);
                        goto oom;
                }
                for (size_t i = 0; i < o->n[v]; i++) {
                        json_object *e = json_object_new_object();
                        if (!e || json_object_object_add(map, o->e[v][i].key, e) < 0) {
                                json_object_put(e);
                                goto oom;
                        }
                        if ((o->e[v][i].parent &&
                             json_object_object_add(e, "parent", json_object_new_string(o->e[v][i].parent)) <
                                     0) ||
                            (o->e[v][i].type &&
                             json_object_object_add(e, "type", json_object_new_string(o->e[v][i].type)) < 0))
                                goto oom;
                }
        }
        r = json_file_save(o->dir, HOSTDEVD_MDEV_OWNED_FILE, root);
        json_object_put(root);
        return r < 0 ? r : 1;
oom:
        json_object_put(root);
        return -ENOMEM;
}

int mdev_owned_add(MdevOwned *o, bool vgpu, const char *key, const char *parent, const char *type) {
        Entry *e, old;
        int r;

        assert(o);
        if (!key_is_valid(vgpu, key))
                return -EINVAL;
        e = find(o, vgpu, key);
        if (e) {
                if (streq_ptr_owned(e->parent, parent) && streq_ptr_owned(e->type, type))
                        return 0;
                /* Same key, new type (removed and created again): replace, keep the old on failure. */
                old = *e;
                *e = (Entry){};
                if (strdup_null(key, &e->key) < 0 || strdup_null(parent, &e->parent) < 0 ||
                    strdup_null(type, &e->type) < 0) {
                        entry_done(e);
                        *e = old;
                        return -ENOMEM;
                }
                r = save(o);
                if (r < 0) {
                        entry_done(e);
                        *e = old;
                        return r;
                }
                entry_done(&old);
                return 1;
        }
        r = append(o, vgpu, key, parent, type);
        if (r < 0)
                return r;
        r = save(o);
        if (r < 0) {
                entry_done(&o->e[vgpu][--o->n[vgpu]]);
                return r;
        }
        return 1;
}

int mdev_owned_forget(MdevOwned *o, bool vgpu, const char *key) {
        Entry *e, old;
        size_t i;
        int r;

        assert(o);
        e = find(o, vgpu, key);
        if (!e)
                return 0;
        i = (size_t)(e - o->e[vgpu]);
        old = *e;
        memmove(e, e + 1, (o->n[vgpu] - i - 1) * sizeof(Entry));
        o->n[vgpu]--;
        r = save(o);
        if (r < 0) {
                /* Put it back where it was. */
                memmove(&o->e[vgpu][i + 1], &o->e[vgpu][i], (o->n[vgpu] - i) * sizeof(Entry));
                o->e[vgpu][i] = old;
                o->n[vgpu]++;
                return r;
        }
        entry_done(&old);
        return 1;
}

static int str_compare(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int mdev_owned_list(const MdevOwned *o, bool vgpu, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;

        assert(ret);
        for (size_t i = 0; o && i < o->n[vgpu]; i++)
                if (strv_extend(&l, o->e[vgpu][i].key) < 0)
                        return -ENOMEM;
        if (l)
                qsort(l, strv_length(l), sizeof(char *), str_compare);
        *ret = TAKE_PTR(l);
        return 0;
}
