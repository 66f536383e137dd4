/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The ownership record of mdevs and vendor vGPUs (mdev-ownership.h). */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "file-util.h"
#include "log.h"
#include "macro.h"
#include "mdev-ownership.h"
#include "mdev.h"
#include "names.h"
#include "pci-address.h"
#include "strv.h"

#define MDEV_OWNERSHIP_VERSION 1

struct MdevOwnership {
        char *dir;
        char **mdevs; /* sorted */
        char **vgpus; /* sorted */
        bool dirty;
};

static bool key_is_valid(bool vgpu, const char *key) {
        char buf[PCI_ADDRESS_STRING_MAX];
        PciAddress a;

        if (!key)
                return false;
        if (!vgpu)
                return mdev_uuid_is_valid(key);
        if (pci_address_from_string(key, &a) < 0)
                return false;
        pci_address_format(&a, buf);
        return streq(buf, key);
}

static int set_error(char **ret_error, int r, const char *format, ...) _printf_(3, 4);
static int set_error(char **ret_error, int r, const char *format, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, format);
                if (vasprintf(ret_error, format, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

MdevOwnership *mdev_ownership_free(MdevOwnership *o) {
        if (!o)
                return NULL;
        free(o->dir);
        strv_free(o->mdevs);
        strv_free(o->vgpus);
        free(o);
        return NULL;
}

static int strv_compare(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int read_list(
        json_object *root, const char *name, bool vgpu, char ***list, const char *path, char **ret_error) {
        json_object *a;
        size_t n;

        if (!json_object_object_get_ex(root, name, &a))
                return 0;
        if (!json_object_is_type(a, json_type_array))
                return set_error(ret_error, -EUCLEAN, "%s: \"%s\" is not an array", path, name);
        n = json_object_array_length(a);
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(a, i);
                const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;

                if (!key_is_valid(vgpu, s) || strv_contains(*list, s))
                        return set_error(
                                ret_error, -EUCLEAN, "%s: \"%s\" entry %zu is not a %s or is repeated", path,
                                name, i, vgpu ? "canonical PCI address" : "lowercase UUID");
                if (strv_extend(list, s) < 0)
                        return -ENOMEM;
        }
        if (n > 1)
                qsort(*list, n, sizeof(char *), strv_compare);
        return 0;
}

int mdev_ownership_load(const char *state_dir, MdevOwnership **ret, char **ret_error) {
        _cleanup_(mdev_ownership_freep) MdevOwnership *o = NULL;
        _cleanup_free_ char *path = NULL, *text = NULL;
        json_object *root, *version;
        size_t size;
        int r;

        if (ret_error)
                *ret_error = NULL;
        o = calloc(1, sizeof(MdevOwnership));
        if (!o || !(o->dir = strdup(state_dir)))
                return -ENOMEM;
        if (asprintf(&path, "%s/%s", state_dir, HOSTDEVD_MDEV_OWNED_FILE) < 0)
                return -ENOMEM;
        r = file_read_bounded(path, MDEV_OWNERSHIP_FILE_MAX, FILE_READ_NOFOLLOW, &text, &size);
        if (r == -ENOENT) {
                *ret = TAKE_PTR(o);
                return 0;
        }
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return set_error(ret_error, r, "%s: %s", path, strerror(-r));
        if (strlen(text) != size)
                return set_error(ret_error, -EUCLEAN, "%s: contains a NUL byte", path);

        root = json_tokener_parse(text);
        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return set_error(ret_error, -EUCLEAN, "%s: not a JSON object", path);
        }
        if (!json_object_object_get_ex(root, "version", &version) ||
            !json_object_is_type(version, json_type_int) ||
            json_object_get_int(version) != MDEV_OWNERSHIP_VERSION)
                r = set_error(
                        ret_error, -EUCLEAN, "%s: \"version\" is not %d", path, MDEV_OWNERSHIP_VERSION);
        else {
                r = read_list(root, "mdevs", false, &o->mdevs, path, ret_error);
                if (r >= 0)
                        r = read_list(root, "vgpus", true, &o->vgpus, path, ret_error);
        }
        json_object_put(root);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

char **mdev_ownership_mdevs(const MdevOwnership *o) {
        return o ? o->mdevs : NULL;
}

char **mdev_ownership_vgpus(const MdevOwnership *o) {
        return o ? o->vgpus : NULL;
}

int mdev_ownership_add(MdevOwnership *o, bool vgpu, const char *key) {
        char ***list = vgpu ? &o->vgpus : &o->mdevs;

        if (!key_is_valid(vgpu, key))
                return -EINVAL;
        if (strv_contains(*list, key))
                return 0;
        if (strv_extend(list, key) < 0)
                return -ENOMEM;
        qsort(*list, strv_length(*list), sizeof(char *), strv_compare);
        o->dirty = true;
        return 1;
}

int mdev_ownership_forget(MdevOwnership *o, bool vgpu, const char *key) {
        char **list = vgpu ? o->vgpus : o->mdevs;
        size_t n = strv_length(list);

        if (!key_is_valid(vgpu, key))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (streq(list[i], key)) {
                        free(list[i]);
                        memmove(list + i, list + i + 1, (n - i) * sizeof(char *)); /* with the NULL */
                        o->dirty = true;
                        return 1;
                }
        return 0;
}

static json_object *list_to_json(char **list) {
        json_object *a = json_object_new_array();

        if (!a)
                return NULL;
        STRV_FOREACH (s, list) {
                json_object *e = json_object_new_string(*s);

                if (!e || json_object_array_add(a, e) < 0) {
                        json_object_put(e);
                        json_object_put(a);
                        return NULL;
                }
        }
        return a;
}

int mdev_ownership_save(MdevOwnership *o) {
        json_object *root, *mdevs, *vgpus;
        const char *text;
        int r;

        if (!o->dirty)
                return 0;
        root = json_object_new_object();
        mdevs = list_to_json(o->mdevs);
        vgpus = list_to_json(o->vgpus);
        if (!root || !mdevs || !vgpus ||
            json_object_object_add(root, "version", json_object_new_int(MDEV_OWNERSHIP_VERSION)) < 0) {
                json_object_put(root);
                json_object_put(mdevs);
                json_object_put(vgpus);
                return -ENOMEM;
        }
        (void)json_object_object_add(root, "mdevs", mdevs);
        (void)json_object_object_add(root, "vgpus", vgpus);
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
        r = text ? file_write_atomic(o->dir, HOSTDEVD_MDEV_OWNED_FILE, text, strlen(text), 0644, 0755)
                 : -ENOMEM;
        json_object_put(root);
        if (r < 0)
                return r;
        o->dirty = false;
        return 1;
}
