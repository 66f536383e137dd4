/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "json-file.h"
#include "log.h"
#include "macro.h"
#include "mdev-uuids.h"
#include "mdev.h"
#include "names.h"
#include "strv.h"

#define MDEV_UUIDS_VERSION 1

typedef struct RuleUuids {
        char *key;
        char **uuids; /* strv, in the order picked */
} RuleUuids;

struct MdevUuids {
        char *dir; /* NULL: never saved */
        RuleUuids *rules;
        size_t n_rules;
        bool dirty;
};

MdevUuids *mdev_uuids_free(MdevUuids *u) {
        if (!u)
                return NULL;
        for (size_t i = 0; i < u->n_rules; i++) {
                free(u->rules[i].key);
                strv_free(u->rules[i].uuids);
        }
        free(u->rules);
        free(u->dir);
        free(u);
        return NULL;
}

int mdev_uuids_new(const char *dir, MdevUuids **ret) {
        MdevUuids *u;

        assert(ret);
        u = calloc(1, sizeof(MdevUuids));
        if (!u)
                return -ENOMEM;
        if (dir) {
                u->dir = strdup(dir);
                if (!u->dir) {
                        free(u);
                        return -ENOMEM;
                }
        }
        *ret = u;
        return 0;
}

static RuleUuids *find_rule(const MdevUuids *u, const char *key) {
        for (size_t i = 0; i < u->n_rules; i++)
                if (streq(u->rules[i].key, key))
                        return &u->rules[i];
        return NULL;
}

static RuleUuids *add_rule(MdevUuids *u, const char *key) {
        RuleUuids *a = reallocarray(u->rules, u->n_rules + 1, sizeof(RuleUuids));
        if (!a)
                return NULL;
        u->rules = a;
        a = &u->rules[u->n_rules];
        *a = (RuleUuids){ .key = strdup(key) };
        if (!a->key)
                return NULL;
        u->n_rules++;
        return a;
}

bool mdev_uuids_contains(const MdevUuids *u, const char *uuid, const char **ret_key) {
        for (size_t i = 0; u && i < u->n_rules; i++)
                if (strv_contains(u->rules[i].uuids, uuid)) {
                        if (ret_key)
                                *ret_key = u->rules[i].key;
                        return true;
                }
        return false;
}

int mdev_uuids_load(const char *dir, MdevUuids **ret, char **ret_error) {
        _cleanup_(mdev_uuids_freep) MdevUuids *u = NULL;
        json_object *root = NULL, *rules;
        int r;

        assert(dir);
        assert(ret);
        if (ret_error)
                *ret_error = NULL;
        r = mdev_uuids_new(dir, &u);
        if (r < 0)
                return r;
        r = json_file_load(
                dir, HOSTDEVD_MDEV_UUIDS_FILE, MDEV_UUIDS_FILE_MAX, MDEV_UUIDS_VERSION, &root, ret_error);
        if (r <= 0) {
                if (r == 0)
                        *ret = TAKE_PTR(u);
                return r;
        }
        if (!json_object_object_get_ex(root, "rules", &rules) ||
            !json_object_is_type(rules, json_type_object)) {
                json_object_put(root);
                return json_file_error(
                        ret_error, -EUCLEAN, "%s/%s: \"rules\" is not an object", dir,
                        HOSTDEVD_MDEV_UUIDS_FILE);
        }
        json_object_object_foreach(rules, key, list) {
                RuleUuids *rule;
                size_t n;

                if (!json_object_is_type(list, json_type_array) ||
                    (n = json_object_array_length(list)) > MDEV_UUIDS_PER_RULE_MAX) {
                        r = json_file_error(
                                ret_error, -EUCLEAN, "%s/%s: rule \"%s\": not an array of at most %u UUIDs",
                                dir, HOSTDEVD_MDEV_UUIDS_FILE, key, MDEV_UUIDS_PER_RULE_MAX);
                        json_object_put(root); /* after: |key| lives in |root| */
                        return r;
                }
                rule = add_rule(u, key);
                if (!rule) {
                        json_object_put(root);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(list, i);
                        const char *s =
                                json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
                        if (!s || !mdev_uuid_is_valid(s) || mdev_uuids_contains(u, s, NULL)) {
                                r = json_file_error(
                                        ret_error, -EUCLEAN,
                                        "%s/%s: rule \"%s\": entry %zu is not a lowercase UUID or is repeated",
                                        dir, HOSTDEVD_MDEV_UUIDS_FILE, key, i);
                                json_object_put(root); /* after: |key| lives in |root| */
                                return r;
                        }
                        if (strv_extend(&rule->uuids, s) < 0) {
                                json_object_put(root);
                                return -ENOMEM;
                        }
                }
        }
        json_object_put(root);
        log_debug("Loaded %zu mdev UUID lists from %s/%s", u->n_rules, dir, HOSTDEVD_MDEV_UUIDS_FILE);
        *ret = TAKE_PTR(u);
        return 0;
}

int mdev_uuids_get(MdevUuids *u, const char *key, uint32_t count, char **avoid, char *const **ret) {
        RuleUuids *rule;

        assert(u);
        assert(key);
        assert(ret);

        if (count > MDEV_UUIDS_PER_RULE_MAX)
                return -E2BIG;
        rule = find_rule(u, key);
        if (!rule) {
                rule = add_rule(u, key);
                if (!rule)
                        return -ENOMEM;
        }
        while (strv_length(rule->uuids) < count) {
                char s[MDEV_UUID_STRING_MAX];
                uuid_t id;

                uuid_generate_random(id);
                uuid_unparse_lower(id, s);
                if (strv_contains(avoid, s) || mdev_uuids_contains(u, s, NULL))
                        continue; /* 2^-122: never in practice; cheap to be sure */
                if (strv_extend(&rule->uuids, s) < 0)
                        return -ENOMEM;
                u->dirty = true;
                log_debug("Picked mdev UUID %s for %s", s, key);
        }
        *ret = rule->uuids;
        return 0;
}

bool mdev_uuids_is_dirty(const MdevUuids *u) {
        return u && u->dirty;
}

int mdev_uuids_save(MdevUuids *u) {
        json_object *root, *rules;
        int r;

        assert(u);
        if (!u->dirty || !u->dir)
                return 0;

        root = json_object_new_object();
        rules = json_object_new_object();
        if (!root || !rules ||
            json_object_object_add(root, "version", json_object_new_int(MDEV_UUIDS_VERSION)) < 0 ||
            json_object_object_add(root, "rules", rules) < 0) {
                json_object_put(root);
                return -ENOMEM;
        }
        for (size_t i = 0; i < u->n_rules; i++) {
                json_object *list = json_object_new_array();
                if (!list || json_object_object_add(rules, u->rules[i].key, list) < 0) {
                        json_object_put(list);
                        json_object_put(root);
                        return -ENOMEM;
                }
                STRV_FOREACH (s, u->rules[i].uuids)
                        if (json_object_array_add(list, json_object_new_string(*s)) < 0) {
                                json_object_put(root);
                                return -ENOMEM;
                        }
        }
        r = json_file_save(u->dir, HOSTDEVD_MDEV_UUIDS_FILE, root);
        json_object_put(root);
        if (r < 0)
                return log_debug_errno(r, "Failed to write %s/%s: %m", u->dir, HOSTDEVD_MDEV_UUIDS_FILE);
        u->dirty = false;
        return 1;
}
