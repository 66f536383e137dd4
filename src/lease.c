/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Leases, the pure part (lease.h): records, their JSON, policies, validation, start times. */

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "escape.h"
#include "file-util.h"
#include "lease.h"
#include "macro.h"
#include "mdev-placement.h"
#include "names.h"
#include "strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

#define LEASE_RECORD_VERSION 1

static const char *const lease_policy_table[_LEASE_POLICY_MAX] = {
        [LEASE_POLICY_HOST] = "host",
        [LEASE_POLICY_KEEP] = "keep",
        [LEASE_POLICY_REMOVE] = "remove",
};

static const char *const lease_state_table[_LEASE_STATE_MAX] = {
        [LEASE_STATE_PREPARING] = "preparing",
        [LEASE_STATE_ACTIVE] = "active",
        [LEASE_STATE_RELEASING] = "releasing",
};

const char *lease_policy_to_string(LeasePolicy p) {
        return p >= 0 && p < _LEASE_POLICY_MAX ? lease_policy_table[p] : NULL;
}

LeasePolicy lease_policy_from_string(const char *s) {
        for (int i = 0; s && i < _LEASE_POLICY_MAX; i++)
                if (streq(s, lease_policy_table[i]))
                        return i;
        return _LEASE_POLICY_INVALID;
}

bool lease_policy_applies_to_function(LeasePolicy p) {
        return p == LEASE_POLICY_HOST || p == LEASE_POLICY_KEEP;
}

bool lease_policy_applies_to_mdev(LeasePolicy p) {
        return p == LEASE_POLICY_REMOVE || p == LEASE_POLICY_KEEP;
}

const char *lease_state_to_string(LeaseState s) {
        return s >= 0 && s < _LEASE_STATE_MAX ? lease_state_table[s] : NULL;
}

LeaseState lease_state_from_string(const char *s) {
        for (int i = 0; s && i < _LEASE_STATE_MAX; i++)
                if (streq(s, lease_state_table[i]))
                        return i;
        return _LEASE_STATE_INVALID;
}

LeaseRecord *lease_record_free(LeaseRecord *l) {
        if (!l)
                return NULL;
        free(l->devices);
        for (size_t i = 0; l->mdevs && i < l->n_mdevs; i++) {
                free(l->mdevs[i].parent);
                free(l->mdevs[i].type);
        }
        free(l->mdevs);
        free(l->node_owners);
        free(l);
        return NULL;
}

const LeaseDevice *lease_record_get_device(const LeaseRecord *l, const char *address) {
        for (size_t i = 0; l && i < l->n_devices; i++)
                if (streq(l->devices[i].address, address))
                        return &l->devices[i];
        return NULL;
}

const LeaseMdev *lease_record_get_mdev(const LeaseRecord *l, const char *uuid) {
        for (size_t i = 0; l && i < l->n_mdevs; i++)
                if (streq(l->mdevs[i].uuid, uuid))
                        return &l->mdevs[i];
        return NULL;
}

int lease_record_file_name(uint64_t id, char **ret) {
        assert(ret);
        return asprintf(ret, "%" PRIu64 ".json", id) < 0 ? -ENOMEM : 0;
}

static bool address_is_canonical(const char *s) {
        char buf[PCI_ADDRESS_STRING_MAX];
        PciAddress a;

        if (!s || pci_address_from_string(s, &a) < 0)
                return false;
        pci_address_format(&a, buf);
        return streq(buf, s);
}

static int lease_mdev_compare(const void *a, const void *b) {
        return strcmp(((const LeaseMdev *)a)->uuid, ((const LeaseMdev *)b)->uuid);
}

/* A parent or type name as a record keeps it: 1-255 bytes, printable, no '/' (a sysfs name). */
static bool mdev_name_is_valid(const char *s) {
        size_t n = s ? strnlen(s, 256) : 0;

        if (n == 0 || n > 255 || strchr(s, '/'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isprint((unsigned char)s[i]))
                        return false;
        return true;
}

static int lease_device_compare(const void *a, const void *b) {
        return strcmp(((const LeaseDevice *)a)->address, ((const LeaseDevice *)b)->address);
}

/* Sorted, unique, canonical, known policies, 1..MAX: the shape every record has. */
/* A VFIO group node path ("/dev/vfio/" and a name, nothing else), bounded. */
static bool node_is_vfio(const char *s) {
        size_t n = strnlen(s, LEASE_NODE_PATH_MAX);
        return n < LEASE_NODE_PATH_MAX && strneq(s, "/dev/vfio/", strlen("/dev/vfio/")) &&
                n > strlen("/dev/vfio/") && !strchr(s + strlen("/dev/vfio/"), '/');
}

static bool lease_record_is_valid(const LeaseRecord *l) {
        if (!l || l->id == 0 || l->pid <= 0 || l->n_devices + l->n_mdevs == 0 ||
            l->n_devices + l->n_mdevs > LEASE_DEVICES_MAX || !lease_state_to_string(l->state))
                return false;
        for (size_t i = 0; i < l->n_mdevs; i++) {
                if (!mdev_uuid_is_valid(l->mdevs[i].uuid) || !mdev_name_is_valid(l->mdevs[i].parent) ||
                    !mdev_name_is_valid(l->mdevs[i].type) ||
                    !lease_policy_applies_to_mdev(l->mdevs[i].policy))
                        return false;
                if (i > 0 && strcmp(l->mdevs[i - 1].uuid, l->mdevs[i].uuid) >= 0)
                        return false;
        }
        for (size_t i = 0; i < l->n_devices; i++) {
                if (!address_is_canonical(l->devices[i].address) ||
                    !lease_policy_to_string(l->devices[i].policy))
                        return false;
                if (i > 0 && strcmp(l->devices[i - 1].address, l->devices[i].address) >= 0)
                        return false;
        }
        if (l->n_node_owners > LEASE_DEVICES_MAX || (l->n_node_owners > 0 && !l->vfio_owner))
                return false;
        for (size_t i = 0; i < l->n_node_owners; i++)
                if (!node_is_vfio(l->node_owners[i].node))
                        return false;
        return true;
}

int lease_record_to_json(const LeaseRecord *l, char **ret) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        json_object *devices;
        const char *text;
        char *s;

        assert(ret);
        if (!lease_record_is_valid(l))
                return -EINVAL;

        root = json_object_new_object();
        devices = json_object_new_array();
        if (!root || !devices) {
                json_object_put(devices);
                return -ENOMEM;
        }
        if (json_object_object_add(root, "version", json_object_new_int(LEASE_RECORD_VERSION)) < 0 ||
            json_object_object_add(root, "id", json_object_new_uint64(l->id)) < 0 ||
            json_object_object_add(root, "pid", json_object_new_int64(l->pid)) < 0 ||
            json_object_object_add(root, "start-time", json_object_new_uint64(l->start_time)) < 0 ||
            json_object_object_add(root, "uid", json_object_new_int64(l->uid)) < 0 ||
            json_object_object_add(root, "since-usec", json_object_new_uint64(l->since_usec)) < 0 ||
            json_object_object_add(root, "whole-group", json_object_new_boolean(l->whole_group)) < 0 ||
            json_object_object_add(root, "state", json_object_new_string(lease_state_to_string(l->state))) <
                    0) {
                json_object_put(devices);
                return -ENOMEM;
        }
        if (json_object_object_add(root, "devices", devices) < 0) {
                json_object_put(devices);
                return -ENOMEM;
        }
        for (size_t i = 0; i < l->n_devices; i++) {
                json_object *d = json_object_new_object();

                if (!d)
                        return -ENOMEM;
                if (json_object_array_add(devices, d) < 0) {
                        json_object_put(d);
                        return -ENOMEM;
                }
                if (json_object_object_add(d, "address", json_object_new_string(l->devices[i].address)) <
                            0 ||
                    json_object_object_add(
                            d, "policy",
                            json_object_new_string(lease_policy_to_string(l->devices[i].policy))) < 0)
                        return -ENOMEM;
        }

        if (l->n_mdevs > 0) {
                json_object *mdevs = json_object_new_array();

                if (!mdevs || json_object_object_add(root, "mdevs", mdevs) < 0) {
                        json_object_put(mdevs);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < l->n_mdevs; i++) {
                        json_object *o = json_object_new_object();

                        if (!o)
                                return -ENOMEM;
                        if (json_object_array_add(mdevs, o) < 0) {
                                json_object_put(o);
                                return -ENOMEM;
                        }
                        if (json_object_object_add(o, "uuid", json_object_new_string(l->mdevs[i].uuid)) <
                                    0 ||
                            json_object_object_add(o, "parent", json_object_new_string(l->mdevs[i].parent)) <
                                    0 ||
                            json_object_object_add(o, "type", json_object_new_string(l->mdevs[i].type)) <
                                    0 ||
                            json_object_object_add(
                                    o, "policy",
                                    json_object_new_string(lease_policy_to_string(l->mdevs[i].policy))) < 0)
                                return -ENOMEM;
                }
        }

        if (l->vfio_owner) {
                json_object *restore = json_object_new_array();

                if (!restore || json_object_object_add(root, "vfio-restore", restore) < 0) {
                        json_object_put(restore);
                        return -ENOMEM;
                }
                if (json_object_object_add(root, "vfio-owner", json_object_new_boolean(true)) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < l->n_node_owners; i++) {
                        json_object *o = json_object_new_object();

                        if (!o)
                                return -ENOMEM;
                        if (json_object_array_add(restore, o) < 0) {
                                json_object_put(o);
                                return -ENOMEM;
                        }
                        if (json_object_object_add(
                                    o, "node", json_object_new_string(l->node_owners[i].node)) < 0 ||
                            json_object_object_add(o, "uid", json_object_new_int64(l->node_owners[i].uid)) <
                                    0 ||
                            json_object_object_add(o, "gid", json_object_new_int64(l->node_owners[i].gid)) <
                                    0)
                                return -ENOMEM;
                }
        }
        text = json_object_to_json_string_ext(
                root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text || asprintf(&s, "%s\n", text) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

_printf_(2, 3) static int parse_fail(char **ret_error, const char *format, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, format);
                if (vasprintf(ret_error, format, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EBADMSG;
}

/* An unsigned integer field: JSON int, 0..max. */
static int get_uint(json_object *root, const char *key, uint64_t max, uint64_t *ret, char **ret_error) {
        json_object *v;
        int64_t i;

        if (!json_object_object_get_ex(root, key, &v))
                return parse_fail(ret_error, "\"%s\" is missing", key);
        if (!json_object_is_type(v, json_type_int))
                return parse_fail(ret_error, "\"%s\" is not an integer", key);
        /* json-c keeps values above INT64_MAX as uint64; both getters are exact within their range. */
        if (json_object_get_uint64(v) > INT64_MAX) {
                if (json_object_get_uint64(v) > max)
                        return parse_fail(ret_error, "\"%s\" is out of range", key);
                *ret = json_object_get_uint64(v);
                return 0;
        }
        i = json_object_get_int64(v);
        if (i < 0 || (uint64_t)i > max)
                return parse_fail(ret_error, "\"%s\" is out of range: %" PRId64, key, i);
        *ret = (uint64_t)i;
        return 0;
}

static int get_string(json_object *o, const char *key, const char **ret, char **ret_error) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return parse_fail(ret_error, "\"%s\" is missing", key);
        if (!json_object_is_type(v, json_type_string))
                return parse_fail(ret_error, "\"%s\" is not a string", key);
        *ret = json_object_get_string(v);
        return 0;
}

int lease_record_from_json(const char *text, LeaseRecord **ret, char **ret_error) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_(lease_record_freep) LeaseRecord *l = NULL;
        json_object *v, *devices;
        const char *s;
        size_t size, end, n;
        uint64_t u;
        int r;

        assert(text && ret);
        if (ret_error)
                *ret_error = NULL;

        size = strlen(text);
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, text, (int)size);
        if (!root)
                return parse_fail(
                        ret_error, "not JSON: %s", json_tokener_error_desc(json_tokener_get_error(tok)));
        end = json_tokener_get_parse_end(tok);
        while (end < size && isspace((unsigned char)text[end]))
                end++;
        if (end != size)
                return parse_fail(ret_error, "trailing data at offset %zu", end);
        if (!json_object_is_type(root, json_type_object))
                return parse_fail(ret_error, "expected a JSON object");

        l = calloc(1, sizeof(LeaseRecord));
        if (!l)
                return -ENOMEM;

        r = get_uint(root, "version", UINT32_MAX, &u, ret_error);
        if (r < 0)
                return r;
        if (u != LEASE_RECORD_VERSION)
                return parse_fail(ret_error, "\"version\" %" PRIu64 " is not supported", u);
        r = get_uint(root, "id", UINT64_MAX, &l->id, ret_error);
        if (r < 0)
                return r;
        if (l->id == 0)
                return parse_fail(ret_error, "\"id\" is 0");
        r = get_uint(root, "pid", INT32_MAX, &u, ret_error);
        if (r < 0)
                return r;
        if (u == 0)
                return parse_fail(ret_error, "\"pid\" is 0");
        l->pid = (pid_t)u;
        r = get_uint(root, "start-time", UINT64_MAX, &l->start_time, ret_error);
        if (r < 0)
                return r;
        r = get_uint(root, "uid", UINT32_MAX, &u, ret_error);
        if (r < 0)
                return r;
        l->uid = (uid_t)u;
        r = get_uint(root, "since-usec", UINT64_MAX, &l->since_usec, ret_error);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(root, "whole-group", &v) ||
            !json_object_is_type(v, json_type_boolean))
                return parse_fail(ret_error, "\"whole-group\" is missing or not a boolean");
        l->whole_group = json_object_get_boolean(v);
        r = get_string(root, "state", &s, ret_error);
        if (r < 0)
                return r;
        l->state = lease_state_from_string(s);
        if (l->state < 0)
                return parse_fail(ret_error, "\"state\" '%s' is unknown", ESCAPE_QUOTE(s));

        if (!json_object_object_get_ex(root, "devices", &devices) ||
            !json_object_is_type(devices, json_type_array))
                return parse_fail(ret_error, "\"devices\" is missing or not an array");
        n = json_object_array_length(devices);
        if (n > LEASE_DEVICES_MAX)
                return parse_fail(ret_error, "\"devices\" has %zu entries (0..%u)", n, LEASE_DEVICES_MAX);
        l->devices = calloc(n ?: 1, sizeof(LeaseDevice));
        if (!l->devices)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *d = json_object_array_get_idx(devices, i);
                const char *address, *policy;

                if (!json_object_is_type(d, json_type_object))
                        return parse_fail(ret_error, "\"devices\"[%zu] is not an object", i);
                r = get_string(d, "address", &address, ret_error);
                if (r >= 0)
                        r = get_string(d, "policy", &policy, ret_error);
                if (r < 0)
                        return r;
                if (!address_is_canonical(address))
                        return parse_fail(
                                ret_error, "\"devices\"[%zu]: '%s' is not a canonical PCI address", i,
                                ESCAPE_QUOTE(address));
                memcpy(l->devices[i].address, address, strlen(address) + 1);
                l->devices[i].policy = lease_policy_from_string(policy);
                if (l->devices[i].policy < 0)
                        return parse_fail(
                                ret_error, "\"devices\"[%zu]: policy '%s' is unknown", i,
                                ESCAPE_QUOTE(policy));
        }
        l->n_devices = n;
        qsort(l->devices, n, sizeof(LeaseDevice), lease_device_compare);
        for (size_t i = 1; i < n; i++)
                if (streq(l->devices[i - 1].address, l->devices[i].address))
                        return parse_fail(
                                ret_error, "\"devices\": %s is listed twice", l->devices[i].address);

        /* Optional: records of leases without mdevs have no "mdevs". */
        if (json_object_object_get_ex(root, "mdevs", &v)) {
                if (!json_object_is_type(v, json_type_array))
                        return parse_fail(ret_error, "\"mdevs\" is not an array");
                n = json_object_array_length(v);
                if (n == 0 || n + l->n_devices > LEASE_DEVICES_MAX)
                        return parse_fail(
                                ret_error, "\"mdevs\" has %zu entries (1..%zu)", n,
                                LEASE_DEVICES_MAX - l->n_devices);
                l->mdevs = calloc(n, sizeof(LeaseMdev));
                if (!l->mdevs)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        json_object *o = json_object_array_get_idx(v, i);
                        const char *uuid, *parent, *type, *policy;
                        LeaseMdev *lm = &l->mdevs[i];

                        if (!json_object_is_type(o, json_type_object))
                                return parse_fail(ret_error, "\"mdevs\"[%zu] is not an object", i);
                        r = get_string(o, "uuid", &uuid, ret_error);
                        if (r >= 0)
                                r = get_string(o, "parent", &parent, ret_error);
                        if (r >= 0)
                                r = get_string(o, "type", &type, ret_error);
                        if (r >= 0)
                                r = get_string(o, "policy", &policy, ret_error);
                        if (r < 0)
                                return r;
                        if (!mdev_uuid_is_valid(uuid))
                                return parse_fail(
                                        ret_error, "\"mdevs\"[%zu]: '%s' is not a lowercase UUID", i,
                                        ESCAPE_QUOTE(uuid));
                        if (!mdev_name_is_valid(parent) || !mdev_name_is_valid(type))
                                return parse_fail(
                                        ret_error,
                                        "\"mdevs\"[%zu]: parent '%s' or type '%s' is not a sysfs name", i,
                                        ESCAPE_QUOTE(parent), ESCAPE_QUOTE(type));
                        lm->policy = lease_policy_from_string(policy);
                        if (!lease_policy_applies_to_mdev(lm->policy))
                                return parse_fail(
                                        ret_error,
                                        "\"mdevs\"[%zu]: policy '%s' is not \"remove\" or \"keep\"", i,
                                        ESCAPE_QUOTE(policy));
                        memcpy(lm->uuid, uuid, strlen(uuid) + 1);
                        lm->parent = strdup(parent);
                        lm->type = strdup(type);
                        l->n_mdevs = i + 1;
                        if (!lm->parent || !lm->type)
                                return -ENOMEM;
                }
                qsort(l->mdevs, n, sizeof(LeaseMdev), lease_mdev_compare);
                for (size_t i = 1; i < n; i++)
                        if (streq(l->mdevs[i - 1].uuid, l->mdevs[i].uuid))
                                return parse_fail(
                                        ret_error, "\"mdevs\": %s is listed twice", l->mdevs[i].uuid);
        }
        if (l->n_devices + l->n_mdevs == 0)
                return parse_fail(ret_error, "neither \"devices\" nor \"mdevs\" lists anything");

        /* Optional: records of leases without "vfio-owner" have neither key. */
        if (json_object_object_get_ex(root, "vfio-owner", &v)) {
                json_object *restore;

                if (!json_object_is_type(v, json_type_boolean))
                        return parse_fail(ret_error, "\"vfio-owner\" is not a boolean");
                l->vfio_owner = json_object_get_boolean(v);
                if (!json_object_object_get_ex(root, "vfio-restore", &restore) ||
                    !json_object_is_type(restore, json_type_array))
                        return parse_fail(ret_error, "\"vfio-restore\" is missing or not an array");
                n = json_object_array_length(restore);
                if (n > LEASE_DEVICES_MAX || (n > 0 && !l->vfio_owner))
                        return parse_fail(ret_error, "\"vfio-restore\" has %zu entries", n);
                l->node_owners = calloc(n ?: 1, sizeof(LeaseNodeOwner));
                if (!l->node_owners)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        json_object *o = json_object_array_get_idx(restore, i);
                        const char *node;
                        uint64_t uid, gid;

                        if (!json_object_is_type(o, json_type_object))
                                return parse_fail(ret_error, "\"vfio-restore\"[%zu] is not an object", i);
                        r = get_string(o, "node", &node, ret_error);
                        if (r >= 0)
                                r = get_uint(o, "uid", UINT32_MAX - 1, &uid, ret_error);
                        if (r >= 0)
                                r = get_uint(o, "gid", UINT32_MAX - 1, &gid, ret_error);
                        if (r < 0)
                                return r;
                        if (!node_is_vfio(node))
                                return parse_fail(
                                        ret_error, "\"vfio-restore\"[%zu]: '%s' is not a VFIO node", i,
                                        ESCAPE_QUOTE(node));
                        memcpy(l->node_owners[i].node, node, strlen(node) + 1);
                        l->node_owners[i].uid = (uid_t)uid;
                        l->node_owners[i].gid = (gid_t)gid;
                }
                l->n_node_owners = n;
        } else if (json_object_object_get_ex(root, "vfio-restore", &v))
                return parse_fail(ret_error, "\"vfio-restore\" without \"vfio-owner\"");

        *ret = TAKE_PTR(l);
        return 0;
}

int lease_parse_stat_start_time(const char *stat, uint64_t *ret) {
        const char *p;
        unsigned long long v;
        char *end;

        assert(ret);
        if (!stat)
                return -EBADMSG;
        p = strrchr(stat, ')');
        if (!p)
                return -EBADMSG;
        p++;
        /* After comm come field 3 (state) .. field 22 (starttime): skip 19 fields. */
        for (unsigned field = 3; field < 22; field++) {
                while (*p == ' ')
                        p++;
                if (!*p)
                        return -EBADMSG;
                while (*p && *p != ' ')
                        p++;
        }
        while (*p == ' ')
                p++;
        if (!isdigit((unsigned char)*p))
                return -EBADMSG;
        errno = 0;
        v = strtoull(p, &end, 10);
        if (errno != 0 || (*end != ' ' && *end != '\n' && *end != '\0'))
                return -EBADMSG;
        *ret = v;
        return 0;
}

int lease_read_start_time(const char *proc_root, pid_t pid, uint64_t *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (pid <= 0)
                return -EINVAL;
        if (asprintf(&path, "%s/%d/stat", proc_root ?: PROC_ROOT, (int)pid) < 0)
                return -ENOMEM;
        r = file_read_bounded(path, 4096, 0, &text, NULL);
        if (r == -ENOENT)
                return -ESRCH;
        if (r < 0)
                return r;
        return lease_parse_stat_start_time(text, ret);
}

/* ---- validation --------------------------------------------------------------------------------- */

static const PciDevice *find_device(const LeaseCheckInput *in, const char *address) {
        for (size_t i = 0; i < in->n_devices; i++)
                if (streq(in->devices[i]->address, address))
                        return in->devices[i];
        return NULL;
}

static const LeasedFunction *find_leased(const LeaseCheckInput *in, const char *address) {
        for (size_t i = 0; i < in->n_leased; i++)
                if (streq(in->leased[i].address, address))
                        return &in->leased[i];
        return NULL;
}

static const CriticalDevice *find_critical(const LeaseCheckInput *in, const char *address) {
        for (size_t i = 0; i < in->n_critical; i++)
                if (streq(in->critical[i].address, address))
                        return &in->critical[i];
        return NULL;
}

static int str_compare(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks of one member (asked for or added). Returns 0 and *verdict set, or -ENOMEM. */
static int check_member(
        const LeaseCheckInput *in, const PciDevice *d, const char *added_for, LeaseCheckVerdict *verdict,
        char **reason) {
        const LeasedFunction *lf = find_leased(in, d->address);
        const CriticalDevice *c = find_critical(in, d->address);
        _cleanup_free_ char *why = NULL;

        if (added_for && asprintf(&why, " (IOMMU group peer of %s)", added_for) < 0)
                return -ENOMEM;
        if (lf) {
                *verdict = LEASE_CHECK_LEASED;
                return asprintf(
                               reason, "%s%s is leased to pid %d (lease %" PRIu64 ")", d->address,
                               strempty(why), (int)lf->pid, lf->lease_id) < 0
                        ? -ENOMEM
                        : 0;
        }
        if (c) {
                *verdict = LEASE_CHECK_REFUSED;
                return asprintf(reason, "%s%s is host-critical: %s", d->address, strempty(why), c->reason) <
                                0
                        ? -ENOMEM
                        : 0;
        }
        if (pci_device_is_bridge(d)) {
                *verdict = LEASE_CHECK_REFUSED;
                return asprintf(reason, "%s is a PCI bridge, which VFIO does not assign", d->address) < 0
                        ? -ENOMEM
                        : 0;
        }
        if (d->iommu_group < 0) {
                *verdict = LEASE_CHECK_REFUSED;
                return asprintf(
                               reason,
                               "%s is in no IOMMU group: VFIO needs the IOMMU (boot with intel_iommu=on or "
                               "amd_iommu=on)",
                               d->address) < 0
                        ? -ENOMEM
                        : 0;
        }
        *verdict = LEASE_CHECK_OK;
        return 0;
}

int lease_check(
        const LeaseCheckInput *in, LeaseCheckVerdict *ret_verdict, char ***ret_members, char **ret_reason) {
        _cleanup_strv_free_ char **members = NULL;
        LeaseCheckVerdict verdict = LEASE_CHECK_OK;
        char *reason = NULL;
        size_t n_asked;
        int r;

        assert(in && ret_verdict && ret_members && ret_reason);

        n_asked = strv_length(in->addresses);
        if (n_asked == 0 || n_asked > LEASE_DEVICES_MAX) {
                *ret_verdict = LEASE_CHECK_REFUSED;
                *ret_reason = NULL;
                if (asprintf(
                            ret_reason, "a lease holds 1 to %u functions, %zu asked for", LEASE_DEVICES_MAX,
                            n_asked) < 0)
                        return -ENOMEM;
                return 0;
        }

        STRV_FOREACH (a, (char **)in->addresses) {
                const PciDevice *d = find_device(in, *a);

                if (!d) {
                        *ret_verdict = LEASE_CHECK_NOT_FOUND;
                        return asprintf(ret_reason, "No PCI function '%s'", *a) < 0 ? -ENOMEM : 0;
                }
                r = check_member(in, d, NULL, &verdict, &reason);
                if (r < 0)
                        return r;
                if (verdict != LEASE_CHECK_OK) {
                        *ret_verdict = verdict;
                        *ret_reason = reason;
                        return 0;
                }
                if (strv_extend(&members, *a) < 0)
                        return -ENOMEM;
        }

        /* The IOMMU group rule, over every function asked for (whole-group peers join the lease). */
        STRV_FOREACH (a, (char **)in->addresses) {
                const PciDevice *d = find_device(in, *a);

                for (size_t i = 0; i < in->n_devices; i++) {
                        const PciDevice *p = in->devices[i];

                        if (p == d || p->iommu_group != d->iommu_group || strv_contains(members, p->address))
                                continue;
                        if (pci_device_is_bridge(p))
                                continue;
                        if (in->whole_group) {
                                r = check_member(in, p, d->address, &verdict, &reason);
                                if (r < 0)
                                        return r;
                                if (verdict != LEASE_CHECK_OK) {
                                        *ret_verdict = verdict;
                                        *ret_reason = reason;
                                        return 0;
                                }
                                if (members && strv_length(members) >= LEASE_DEVICES_MAX) {
                                        *ret_verdict = LEASE_CHECK_REFUSED;
                                        return asprintf(
                                                       ret_reason,
                                                       "the lease would hold more than %u functions",
                                                       LEASE_DEVICES_MAX) < 0
                                                ? -ENOMEM
                                                : 0;
                                }
                                if (strv_extend(&members, p->address) < 0)
                                        return -ENOMEM;
                                continue;
                        }
                        if (!p->driver) {
                                /* Driverless, but a lease of another process must not share the group. */
                                const LeasedFunction *lf = find_leased(in, p->address);

                                if (!lf)
                                        continue;
                                *ret_verdict = LEASE_CHECK_LEASED;
                                return asprintf(
                                               ret_reason,
                                               "%s shares IOMMU group %" PRId32
                                               " with %s, leased to pid %d (lease %" PRIu64 ")",
                                               d->address, d->iommu_group, p->address, (int)lf->pid,
                                               lf->lease_id) < 0
                                        ? -ENOMEM
                                        : 0;
                        }
                        *ret_verdict =
                                find_leased(in, p->address) ? LEASE_CHECK_LEASED : LEASE_CHECK_REFUSED;
                        return asprintf(
                                       ret_reason,
                                       "IOMMU group %" PRId32
                                       " of %s is incomplete: %s is on %s and not in the "
                                       "lease (name it too, or use whole-group)",
                                       d->iommu_group, d->address, p->address, p->driver) < 0
                                ? -ENOMEM
                                : 0;
                }
        }

        qsort(members, strv_length(members), sizeof(char *), str_compare);
        *ret_verdict = LEASE_CHECK_OK;
        *ret_members = TAKE_PTR(members);
        *ret_reason = NULL;
        return 0;
}

/* ---- vGPU/mdev requests ------------------------------------------------------------------------------ */

static const MdevType *parent_type(const MdevParent *p, const char *type) {
        for (size_t i = 0; i < p->n_types; i++)
                if ((p->types[i].id && streq(p->types[i].id, type)) ||
                    (p->types[i].name && streq(p->types[i].name, type)))
                        return &p->types[i];
        return NULL;
}

static const PciDevice *mdev_find_device(const LeaseMdevCheckInput *in, const char *address) {
        for (size_t i = 0; i < in->n_devices; i++)
                if (streq(in->devices[i]->address, address))
                        return in->devices[i];
        return NULL;
}

/* What |p| carries or is about to carry: instances of |type_id| placed or pending there (the room they
 * take from available_instances), and whether another type is there (one type per GPU). */
static void parent_use(
        const LeaseMdevCheckInput *in, const LeaseMdevPlace *placed, size_t n_placed, const char *parent,
        const char *type_id, uint32_t *ret_same, bool *ret_other) {
        uint32_t same = 0;
        bool other = false;

        for (size_t i = 0; i < n_placed; i++)
                if (streq(placed[i].parent, parent)) {
                        same += streq(placed[i].type_id, type_id);
                        other = other || !streq(placed[i].type_id, type_id);
                }
        for (size_t i = 0; i < in->n_pending; i++)
                if (in->pending[i].parent && streq(in->pending[i].parent, parent) &&
                    in->pending[i].type_id) {
                        same += streq(in->pending[i].type_id, type_id);
                        other = other || !streq(in->pending[i].type_id, type_id);
                }
        for (size_t i = 0; i < in->n_mdevs; i++)
                if (in->mdevs[i]->parent && streq(in->mdevs[i]->parent, parent) && in->mdevs[i]->type_id &&
                    !streq(in->mdevs[i]->type_id, type_id))
                        other = true;
        *ret_same = same;
        *ret_other = other;
}

int lease_mdev_check(
        const LeaseMdevCheckInput *in, LeaseCheckVerdict *ret_verdict, LeaseMdevPlace *ret,
        char **ret_reason) {
        assert(in && ret_verdict && ret_reason);
        *ret_reason = NULL;

        for (size_t a = 0; a < in->n_asks; a++) {
                const LeaseMdevAsk *ask = &in->asks[a];
                const char *parent = ask->parent && *ask->parent ? ask->parent : NULL;
                _cleanup_free_ PlacementCandidate *cands = NULL;
                _cleanup_free_ const char **ids = NULL;
                size_t n = 0, k = 0;
                bool parent_seen = false;
                int r;

                cands = calloc(in->n_parents + 1, sizeof(PlacementCandidate));
                ids = calloc(in->n_parents + 1, sizeof(char *));
                if (!cands || !ids)
                        return -ENOMEM;
                for (size_t i = 0; i < in->n_parents; i++) {
                        const MdevParent *p = in->parents[i];
                        const MdevType *t;
                        uint32_t same;
                        bool other;

                        if (parent && !streq(p->name, parent))
                                continue;
                        parent_seen = true;
                        t = parent_type(p, ask->type);
                        if (!t || !t->id)
                                continue;
                        parent_use(in, ret, a, p->name, t->id, &same, &other);
                        ids[n] = t->id;
                        cands[n++] = (PlacementCandidate){
                                .name = p->name,
                                .available =
                                        t->available_instances > same ? t->available_instances - same : 0,
                                .blocked = other &&
                                        mdev_parent_one_type_per_gpu(
                                                   p->is_pci ? mdev_find_device(in, p->name) : NULL),
                        };
                }
                if (parent && !parent_seen) {
                        *ret_verdict = LEASE_CHECK_NOT_FOUND;
                        return asprintf(ret_reason, "No mdev parent '%s'", ESCAPE_QUOTE(parent)) < 0
                                ? -ENOMEM
                                : 0;
                }
                if (n == 0) {
                        *ret_verdict = LEASE_CHECK_NOT_FOUND;
                        return asprintf(
                                       ret_reason, "No mdev type '%s' on %s%s", ESCAPE_QUOTE(ask->type),
                                       parent ? "parent " : "any parent", strempty(parent)) < 0
                                ? -ENOMEM
                                : 0;
                }
                r = mdev_place(MDEV_PLACEMENT_SPREAD, cands, n, 1, &k);
                if (r == -ENOSPC) {
                        bool blocked = false;

                        for (size_t i = 0; i < n; i++)
                                blocked = blocked || cands[i].blocked;
                        *ret_verdict = LEASE_CHECK_REFUSED;
                        return asprintf(
                                       ret_reason,
                                       "No room for another mdev of type '%s' on %s%s (available_instances "
                                       "used up%s)",
                                       ESCAPE_QUOTE(ask->type), parent ? "parent " : "any parent",
                                       strempty(parent),
                                       blocked ? ", or one type per physical GPU and another type is there"
                                               : "") < 0
                                ? -ENOMEM
                                : 0;
                }
                if (r < 0)
                        return r;
                ret[a] = (LeaseMdevPlace){ .parent = cands[k].name, .type_id = ids[k] };
        }
        *ret_verdict = LEASE_CHECK_OK;
        return 0;
}
