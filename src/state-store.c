/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "file-util.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "state-store.h"
#include "strv.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

struct StateStore {
        char *dir;
        char *path; /* DIR/owned.json */
        char *log_path; /* DIR/owned.log */
        uint64_t last_transaction;
        uint64_t last_record; /* the latest change's number (owned.json's "last-record" or a log record's) */
        OwnedDevice *devices; /* sorted by address */
        size_t n_devices;
        /* The log, open for appending once owned.json was written by this store (and the log emptied);
         * -EBADF until then: the next change writes owned.json. */
        int log_fd;
        size_t log_size, log_records; /* what the log holds now */
        char **warnings; /* for state_store_take_warnings() */
};

static const char *const owned_phase_table[_OWNED_PHASE_MAX] = {
        [OWNED_PHASE_BEGUN] = "begun",
        [OWNED_PHASE_COMMITTED] = "committed",
};

const char *owned_phase_to_string(OwnedPhase p) {
        return p >= 0 && p < _OWNED_PHASE_MAX ? owned_phase_table[p] : NULL;
}

OwnedPhase owned_phase_from_string(const char *s) {
        for (OwnedPhase p = 0; s && p < _OWNED_PHASE_MAX; p++)
                if (streq(owned_phase_table[p], s))
                        return p;
        return _OWNED_PHASE_INVALID;
}

static void owned_device_done(OwnedDevice *d) {
        free(d->original_driver);
        free(d->original_driver_override);
        free(d->previous_driver);
        free(d->previous_driver_override);
        free(d->driver_override);
        free(d->driver);
        *d = (OwnedDevice){};
}

static void owned_devices_free(OwnedDevice *d, size_t n) {
        for (size_t i = 0; i < n; i++)
                owned_device_done(&d[i]);
        free(d);
}

/* A driver name or driver_override value: 1..STATE_STORE_VALUE_MAX printable characters, no space or '/'. */
static bool value_is_valid(const char *s) {
        size_t n;

        if (!s)
                return true;
        n = strlen(s);
        if (n == 0 || n > STATE_STORE_VALUE_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if (!isgraph((unsigned char)*p) || *p == '/')
                        return false;
        return true;
}

/* Canonical addresses ("%04x:%02x:%02x.%u", validated on every way in) sort as their numbers: only the
 * domain's width varies (VMD domains have 5 digits), so a longer one is larger and equal lengths compare
 * as strings. */
static int address_compare(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);

        if (la != lb)
                return la < lb ? -1 : 1;
        return strcmp(a, b);
}

static int owned_device_compare(const void *x, const void *y) {
        const OwnedDevice *a = x, *b = y;

        return address_compare(a->address, b->address);
}

StateStore *state_store_free(StateStore *s) {
        if (!s)
                return NULL;
        owned_devices_free(s->devices, s->n_devices);
        if (s->log_fd >= 0)
                (void)close(s->log_fd);
        free(s->dir);
        free(s->path);
        free(s->log_path);
        strv_free(s->warnings);
        free(s);
        return NULL;
}

char **state_store_take_warnings(StateStore *s) {
        return s ? TAKE_PTR(s->warnings) : NULL;
}

int state_store_new(const char *dir, StateStore **ret) {
        _cleanup_(state_store_freep) StateStore *s = calloc(1, sizeof(StateStore));

        if (!s)
                return -ENOMEM;
        s->log_fd = -EBADF;
        s->dir = strdup(dir ?: HOSTDEVD_STATE_DIR);
        if (!s->dir || asprintf(&s->path, "%s/%s", s->dir, HOSTDEVD_STATE_FILE) < 0) {
                s->path = NULL;
                return -ENOMEM;
        }
        if (asprintf(&s->log_path, "%s/%s", s->dir, HOSTDEVD_STATE_LOG) < 0) {
                s->log_path = NULL;
                return -ENOMEM;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

const char *state_store_path(const StateStore *s) {
        return s->path;
}

/* ---- load ---------------------------------------------------------------- */

typedef struct LoadError {
        char *message;
} LoadError;

/* |s| with control characters written as \n, \t, \xNN: a value quoted from a corrupt file (a key with a
 * newline in it) keeps the message on one line. NULL on OOM. */
static char *escape_control(const char *s) {
        char *buf = malloc(strlen(s) * 4 + 1), *p = buf;

        if (!buf)
                return NULL;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '\n')
                        p = stpcpy(p, "\\n");
                else if (c == '\t')
                        p = stpcpy(p, "\\t");
                else if (c < 0x20 || c == 0x7f)
                        p += sprintf(p, "\\x%02x", c);
                else
                        *p++ = (char)c;
        }
        *p = '\0';
        return buf;
}

_printf_(4, 5) static int load_fail(LoadError *e, int r, const char *path, const char *format, ...) {
        _cleanup_free_ char *m = NULL, *escaped = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&m, format, ap) < 0)
                m = NULL;
        va_end(ap);
        free(e->message);
        e->message = NULL;
        if (m)
                escaped = escape_control(m);
        if (!escaped || asprintf(&e->message, "%s: %s", path, escaped) < 0) {
                e->message = NULL;
                return -ENOMEM;
        }
        return r;
}

/* Temporary files of an interrupted save: ".owned.json.XXXXXX". */
static bool is_temp_name(const char *name) {
        const char *prefix = "." HOSTDEVD_STATE_FILE ".";
        return strneq(name, prefix, strlen(prefix)) && strlen(name) > strlen(prefix);
}

static void remove_temp_files(const char *dir) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                if (is_temp_name(de->d_name)) {
                        if (unlinkat(dirfd(d), de->d_name, 0) < 0)
                                log_debug_errno(
                                        errno, "Failed to remove %s/%s, ignoring: %m", dir, de->d_name);
                        else
                                log_debug("Removed leftover %s/%s", dir, de->d_name);
                }
}

static int read_file(const char *path, char **ret, size_t *ret_size, LoadError *e) {
        struct stat st;
        int r;

        /* Refused unread when it says it is too big (a regular file's st_size is true, unlike sysfs's);
         * file_read_bounded() also stops one byte past the limit when it grew since. */
        if (lstat(path, &st) >= 0 && S_ISREG(st.st_mode) && st.st_size > (off_t)STATE_STORE_FILE_MAX)
                return load_fail(
                        e, -EFBIG, path, "%jd bytes, more than the limit of %u", (intmax_t)st.st_size,
                        STATE_STORE_FILE_MAX);
        r = file_read_bounded(path, STATE_STORE_FILE_MAX, FILE_READ_NOFOLLOW, ret, ret_size);
        switch (r) {
        case 0:
        case -ENOENT:
        case -ENOMEM:
                return r;
        case -EISDIR:
        case -EBADFD:
                return load_fail(e, -EBADMSG, path, "not a regular file");
        case -EFBIG:
                return load_fail(e, -EFBIG, path, "more than the limit of %u bytes", STATE_STORE_FILE_MAX);
        default:
                return load_fail(e, r, path, "cannot read: %s", strerror(-r));
        }
}

/* A string-or-null member |key| of device |i|; absence is an error (every field is written). */
static int get_string_or_null(
        json_object *o, const char *key, size_t i, char **ret, const char *path, LoadError *e) {
        json_object *v;
        const char *s;

        if (!json_object_object_get_ex(o, key, &v))
                return load_fail(e, -EBADMSG, path, "devices[%zu]: missing \"%s\"", i, key);
        if (!v) {
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return load_fail(
                        e, -EBADMSG, path, "devices[%zu].%s: expected a string or null, got %s", i, key,
                        json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        s = json_object_get_string(v);
        if ((size_t)json_object_get_string_len(v) != strlen(s) || !value_is_valid(s))
                return load_fail(e, -EBADMSG, path, "devices[%zu].%s: invalid value '%s'", i, key, s);
        return strdup_null(s, ret);
}

static int get_positive_int(
        json_object *v, const char *what, uint64_t *ret, const char *path, LoadError *e) {
        int64_t x;

        if (!v || !json_object_is_type(v, json_type_int))
                return load_fail(
                        e, -EBADMSG, path, "%s: expected a positive integer, got %s", what,
                        v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "null");
        errno = 0;
        x = json_object_get_int64(v);
        /* json-c clamps out-of-range numbers to INT64_MAX/MIN and sets errno. */
        if (x <= 0 || errno != 0 || x == INT64_MAX)
                return load_fail(
                        e, -EBADMSG, path, "%s: out of range: %s", what,
                        json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        *ret = (uint64_t)x;
        return 0;
}

static const char *const device_keys[] = {
        "address",
        "transaction",
        "phase",
        "original-driver",
        "original-driver-override",
        "previous-driver",
        "previous-driver-override",
        "driver-override",
        "driver",
        "original-sriov-numvfs",
        "original-sriov-drivers-autoprobe",
        "sriov-numvfs",
        "sriov-drivers-autoprobe",
};

/* The SR-IOV part of a device record: all four keys or none. */
static int parse_device_sriov(json_object *o, size_t i, OwnedDevice *d, const char *path, LoadError *e) {
        static const char *const counts[] = { "original-sriov-numvfs", "sriov-numvfs" };
        static const char *const flags[] = { "original-sriov-drivers-autoprobe", "sriov-drivers-autoprobe" };
        uint32_t *count_fields[] = { &d->original_sriov_numvfs, &d->sriov_numvfs };
        bool *flag_fields[] = { &d->original_sriov_drivers_autoprobe, &d->sriov_drivers_autoprobe };
        unsigned present = 0;

        for (size_t k = 0; k < ELEMENTSOF(counts); k++)
                present += json_object_object_get_ex(o, counts[k], NULL) +
                        json_object_object_get_ex(o, flags[k], NULL);
        if (present == 0)
                return 0;
        if (present != 4)
                return load_fail(
                        e, -EBADMSG, path,
                        "devices[%zu]: the SR-IOV keys come together (%s, %s, %s, %s), found %u of them", i,
                        counts[0], flags[0], counts[1], flags[1], present);
        for (size_t k = 0; k < ELEMENTSOF(counts); k++) {
                json_object *v = json_object_object_get(o, counts[k]);
                int64_t x;

                errno = 0;
                x = v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
                if (x < 0 || x > UINT16_MAX || errno != 0) /* sriov_totalvfs is a 16-bit field (PCIe) */
                        return load_fail(
                                e, -EBADMSG, path, "devices[%zu].%s: expected a VF count, got %s", i,
                                counts[k],
                                v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "null");
                *count_fields[k] = (uint32_t)x;

                v = json_object_object_get(o, flags[k]);
                if (!v || !json_object_is_type(v, json_type_boolean))
                        return load_fail(
                                e, -EBADMSG, path, "devices[%zu].%s: expected true or false, got %s", i,
                                flags[k],
                                v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN) : "null");
                *flag_fields[k] = json_object_get_boolean(v);
        }
        d->has_sriov = true;
        return 0;
}

static int parse_device(json_object *o, size_t i, OwnedDevice *ret, const char *path, LoadError *e) {
        _cleanup_(owned_device_done) OwnedDevice d = {};
        json_object *v;
        char what[64];
        PciAddress a;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return load_fail(
                        e, -EBADMSG, path, "devices[%zu]: expected an object, got %s", i,
                        o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "null");
        json_object_object_foreach(o, key, val) {
                bool known = false;
                (void)val;
                for (size_t k = 0; k < ELEMENTSOF(device_keys); k++)
                        known = known || streq(key, device_keys[k]);
                if (!known)
                        return load_fail(e, -EBADMSG, path, "devices[%zu]: unknown key \"%s\"", i, key);
        }

        if (!json_object_object_get_ex(o, "address", &v) || !json_object_is_type(v, json_type_string))
                return load_fail(e, -EBADMSG, path, "devices[%zu].address: missing or not a string", i);
        const char *s = json_object_get_string(v);
        if (pci_address_from_string(s, &a) < 0 || !streq(pci_address_format(&a, d.address), s))
                return load_fail(
                        e, -EBADMSG, path, "devices[%zu].address: not a canonical PCI address: '%s'", i, s);

        (void)snprintf(what, sizeof(what), "devices[%zu].transaction", i);
        r = get_positive_int(json_object_object_get(o, "transaction"), what, &d.transaction, path, e);
        if (r < 0)
                return r;

        if (!json_object_object_get_ex(o, "phase", &v) || !json_object_is_type(v, json_type_string))
                return load_fail(e, -EBADMSG, path, "devices[%zu].phase: missing or not a string", i);
        d.phase = owned_phase_from_string(json_object_get_string(v));
        if (d.phase < 0)
                return load_fail(
                        e, -EBADMSG, path, "devices[%zu].phase: unknown value '%s'", i,
                        json_object_get_string(v));

        r = get_string_or_null(o, "original-driver", i, &d.original_driver, path, e);
        if (r >= 0)
                r = get_string_or_null(
                        o, "original-driver-override", i, &d.original_driver_override, path, e);
        if (r >= 0)
                r = get_string_or_null(o, "previous-driver", i, &d.previous_driver, path, e);
        if (r >= 0)
                r = get_string_or_null(
                        o, "previous-driver-override", i, &d.previous_driver_override, path, e);
        if (r >= 0)
                r = get_string_or_null(o, "driver-override", i, &d.driver_override, path, e);
        if (r >= 0)
                r = get_string_or_null(o, "driver", i, &d.driver, path, e);
        if (r >= 0)
                r = parse_device_sriov(o, i, &d, path, e);
        if (r < 0)
                return r;
        *ret = d;
        d = (OwnedDevice){};
        return 0;
}

static int parse_store(StateStore *s, const char *text, size_t size, LoadError *e) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        json_object *root = NULL, *v, *devices;
        OwnedDevice *list = NULL;
        size_t n = 0, end;
        int r;

        if (strlen(text) != size)
                return load_fail(e, -EBADMSG, s->path, "NUL byte at offset %zu", strlen(text));
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, text, (int)size);
        if (!root) {
                enum json_tokener_error je = json_tokener_get_error(tok);
                if (je == json_tokener_continue)
                        return load_fail(e, -EBADMSG, s->path, "not JSON: unexpected end of file");
                return load_fail(
                        e, -EBADMSG, s->path, "not JSON at offset %zu: %s", json_tokener_get_parse_end(tok),
                        json_tokener_error_desc(je));
        }
        end = json_tokener_get_parse_end(tok);
        while (end < size && isspace((unsigned char)text[end]))
                end++;
        if (end != size) {
                r = load_fail(e, -EBADMSG, s->path, "trailing data at offset %zu", end);
                goto finish;
        }
        if (!json_object_is_type(root, json_type_object)) {
                r = load_fail(e, -EBADMSG, s->path, "expected a JSON object at the top");
                goto finish;
        }
        json_object_object_foreach(root, key, val) {
                (void)val;
                if (!streq(key, "version") && !streq(key, "last-transaction") && !streq(key, "devices") &&
                    !streq(key, "last-record")) {
                        r = load_fail(e, -EBADMSG, s->path, "unknown key \"%s\"", key);
                        goto finish;
                }
        }
        if (!json_object_object_get_ex(root, "version", &v) || !json_object_is_type(v, json_type_int)) {
                r = load_fail(e, -EBADMSG, s->path, "version: missing or not an integer");
                goto finish;
        }
        if (json_object_get_int64(v) != STATE_STORE_VERSION) {
                r = load_fail(
                        e, -EPROTONOSUPPORT, s->path,
                        "version: unsupported value %s (this hostdevd reads %d)",
                        json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), STATE_STORE_VERSION);
                goto finish;
        }
        r = get_positive_int(
                json_object_object_get(root, "last-transaction"), "last-transaction", &s->last_transaction,
                s->path, e);
        if (r < 0) {
                /* An empty store that never began a transaction writes 0. */
                json_object *lt = json_object_object_get(root, "last-transaction");
                if (!(lt && json_object_is_type(lt, json_type_int) && json_object_get_int64(lt) == 0))
                        goto finish;
                free(e->message);
                e->message = NULL;
                s->last_transaction = 0;
        }
        /* Absent in files written before the log existed: no record of the log is in this file. */
        if (json_object_object_get_ex(root, "last-record", &v)) {
                r = get_positive_int(v, "last-record", &s->last_record, s->path, e);
                if (r < 0)
                        goto finish;
        }
        if (!json_object_object_get_ex(root, "devices", &devices) ||
            !json_object_is_type(devices, json_type_array)) {
                r = load_fail(e, -EBADMSG, s->path, "devices: missing or not an array");
                goto finish;
        }
        n = json_object_array_length(devices);
        if (n > 0) {
                list = calloc(n, sizeof(OwnedDevice));
                if (!list) {
                        r = -ENOMEM;
                        goto finish;
                }
        }
        for (size_t i = 0; i < n; i++) {
                r = parse_device(json_object_array_get_idx(devices, i), i, &list[i], s->path, e);
                if (r < 0)
                        goto finish;
                if (list[i].transaction > s->last_transaction) {
                        r = load_fail(
                                e, -EBADMSG, s->path,
                                "devices[%zu].transaction: %" PRIu64
                                " is greater than last-transaction %" PRIu64,
                                i, list[i].transaction, s->last_transaction);
                        goto finish;
                }
        }
        if (n > 1)
                qsort(list, n, sizeof(OwnedDevice), owned_device_compare);
        for (size_t i = 1; i < n; i++)
                if (streq(list[i - 1].address, list[i].address)) {
                        r = load_fail(
                                e, -EBADMSG, s->path, "devices: address '%s' listed twice", list[i].address);
                        goto finish;
                }
        s->devices = TAKE_PTR(list);
        s->n_devices = n;
        r = 0;
finish:
        owned_devices_free(list, list ? n : 0);
        json_object_put(root);
        return r;
}

/* ---- the log --------------------------------------------------------------- */

/* The index of |address| in |list| (n entries, sorted by address), or -1; *ret_at (optional): where it
 * is, or where it would go. */
static ssize_t find_at(const OwnedDevice *list, size_t n, const char *address, size_t *ret_at) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = address_compare(list[mid].address, address);

                if (c == 0) {
                        lo = mid;
                        break;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (ret_at)
                *ret_at = lo;
        return lo < n && streq(list[lo].address, address) ? (ssize_t)lo : -1;
}

static ssize_t find(const OwnedDevice *list, size_t n, const char *address) {
        return find_at(list, n, address, NULL);
}

/* Put |d| at |at| of |list| (n entries, room for one more), keeping the order. */
static void list_insert(OwnedDevice *list, size_t n, size_t at, const OwnedDevice *d) {
        memmove(&list[at + 1], &list[at], (n - at) * sizeof(OwnedDevice));
        list[at] = *d;
}

/* Drop entry |k| of |list| (n entries), keeping the order. */
static void list_remove(OwnedDevice *list, size_t n, size_t k) {
        owned_device_done(&list[k]);
        memmove(&list[k], &list[k + 1], (n - k - 1) * sizeof(OwnedDevice));
}

/* A member |key| of record |o| that must be a positive integer. */
static int record_int(json_object *o, const char *key, uint64_t *ret, const char *where, LoadError *e) {
        return get_positive_int(json_object_object_get(o, key), key, ret, where, e);
}

static int apply_begin(StateStore *s, json_object *o, const char *where, LoadError *e) {
        json_object *devices;
        uint64_t t;
        size_t n;
        int r;

        r = record_int(o, "begin", &t, where, e);
        if (r < 0)
                return r;
        if (t <= s->last_transaction)
                return load_fail(
                        e, -EBADMSG, where, "begin: transaction %" PRIu64 " is not after %" PRIu64, t,
                        s->last_transaction);
        if (!json_object_object_get_ex(o, "devices", &devices) ||
            !json_object_is_type(devices, json_type_array) || json_object_array_length(devices) == 0)
                return load_fail(e, -EBADMSG, where, "devices: missing, empty or not an array");
        n = json_object_array_length(devices);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(owned_device_done) OwnedDevice d = {};
                OwnedDevice *l;
                size_t at;
                ssize_t k;

                r = parse_device(json_object_array_get_idx(devices, i), i, &d, where, e);
                if (r < 0)
                        return r;
                if (d.transaction != t)
                        return load_fail(
                                e, -EBADMSG, where,
                                "devices[%zu].transaction: %" PRIu64 ", expected %" PRIu64, i, d.transaction,
                                t);
                if (d.phase != OWNED_PHASE_BEGUN)
                        return load_fail(
                                e, -EBADMSG, where, "devices[%zu].phase: '%s' in a begin record", i,
                                owned_phase_to_string(d.phase));
                for (size_t j = 0; j < i; j++) {
                        json_object *a =
                                json_object_object_get(json_object_array_get_idx(devices, j), "address");
                        if (streq(json_object_get_string(a), d.address))
                                return load_fail(
                                        e, -EBADMSG, where, "devices: address '%s' listed twice", d.address);
                }
                k = find_at(s->devices, s->n_devices, d.address, &at);
                if (k >= 0) {
                        owned_device_done(&s->devices[k]);
                        s->devices[k] = d;
                } else {
                        l = reallocarray(s->devices, s->n_devices + 1, sizeof(OwnedDevice));
                        if (!l)
                                return -ENOMEM;
                        s->devices = l;
                        list_insert(s->devices, s->n_devices++, at, &d);
                }
                d = (OwnedDevice){};
        }
        s->last_transaction = t;
        return 0;
}

static int apply_commit(StateStore *s, json_object *o, const char *where, LoadError *e) {
        bool found = false;
        uint64_t t;
        int r;

        r = record_int(o, "commit", &t, where, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_devices; i++)
                if (s->devices[i].transaction == t && s->devices[i].phase == OWNED_PHASE_BEGUN) {
                        s->devices[i].phase = OWNED_PHASE_COMMITTED;
                        found = true;
                }
        if (!found)
                return load_fail(e, -EBADMSG, where, "commit: no begun transaction %" PRIu64, t);
        return 0;
}

static int apply_forget(StateStore *s, json_object *o, const char *where, LoadError *e) {
        json_object *v = json_object_object_get(o, "forget");
        const char *address;
        ssize_t k;

        if (!v || !json_object_is_type(v, json_type_string))
                return load_fail(e, -EBADMSG, where, "forget: not a string");
        address = json_object_get_string(v);
        k = find(s->devices, s->n_devices, address);
        if (k < 0)
                return load_fail(e, -EBADMSG, where, "forget: '%s' is not recorded", address);
        list_remove(s->devices, s->n_devices--, (size_t)k);
        return 0;
}

static int apply_forget_sriov(StateStore *s, json_object *o, const char *where, LoadError *e) {
        json_object *v = json_object_object_get(o, "forget-sriov");
        const char *address;
        ssize_t k;

        if (!v || !json_object_is_type(v, json_type_string))
                return load_fail(e, -EBADMSG, where, "forget-sriov: not a string");
        address = json_object_get_string(v);
        k = find(s->devices, s->n_devices, address);
        if (k < 0 || !s->devices[k].has_sriov)
                return load_fail(e, -EBADMSG, where, "forget-sriov: '%s' has no SR-IOV record", address);
        s->devices[k].has_sriov = false;
        return 0;
}

/* One line of the log (without its newline): a JSON object with "record" and one of "begin" (with
 * "devices"), "commit", "forget" or "forget-sriov". Records that owned.json already holds are skipped. */
static int apply_record(
        StateStore *s, const char *line, size_t len, bool *applied, const char *where, LoadError *e) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        json_object *o;
        uint64_t record;
        int ops = 0, r;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, line, (int)len);
        if (!o || json_tokener_get_parse_end(tok) != len) {
                json_object_put(o);
                return load_fail(
                        e, -EBADMSG, where, "not one JSON value: %s",
                        json_tokener_error_desc(json_tokener_get_error(tok)));
        }
        if (!json_object_is_type(o, json_type_object)) {
                r = load_fail(e, -EBADMSG, where, "expected a JSON object");
                goto finish;
        }
        json_object_object_foreach(o, key, val) {
                (void)val;
                if (streq(key, "begin") || streq(key, "commit") || streq(key, "forget") ||
                    streq(key, "forget-sriov"))
                        ops++;
                else if (!streq(key, "record") && !streq(key, "devices")) {
                        r = load_fail(e, -EBADMSG, where, "unknown key \"%s\"", key);
                        goto finish;
                }
        }
        if (ops != 1) {
                r = load_fail(
                        e, -EBADMSG, where,
                        "expected exactly one of \"begin\", \"commit\", \"forget\", \"forget-sriov\"");
                goto finish;
        }
        if (json_object_object_get_ex(o, "devices", NULL) && !json_object_object_get_ex(o, "begin", NULL)) {
                r = load_fail(e, -EBADMSG, where, "\"devices\" without \"begin\"");
                goto finish;
        }
        r = record_int(o, "record", &record, where, e);
        if (r < 0)
                goto finish;
        if (record <= s->last_record) {
                if (*applied) {
                        r = load_fail(
                                e, -EBADMSG, where, "record: %" PRIu64 " is not after %" PRIu64, record,
                                s->last_record);
                        goto finish;
                }
                /* Written before owned.json was, and folded into it (a crash came before the log was
                 * emptied). */
                r = 0;
                goto finish;
        }
        if (json_object_object_get_ex(o, "begin", NULL))
                r = apply_begin(s, o, where, e);
        else if (json_object_object_get_ex(o, "commit", NULL))
                r = apply_commit(s, o, where, e);
        else if (json_object_object_get_ex(o, "forget", NULL))
                r = apply_forget(s, o, where, e);
        else
                r = apply_forget_sriov(s, o, where, e);
        if (r >= 0) {
                s->last_record = record;
                *applied = true;
        }
finish:
        json_object_put(o);
        return r;
}

static int parse_log(StateStore *s, const char *text, size_t size, LoadError *e) {
        size_t off = 0, line = 0;
        bool applied = false;

        if (strlen(text) != size)
                return load_fail(e, -EBADMSG, s->log_path, "NUL byte at offset %zu", strlen(text));
        while (off < size) {
                const char *start = text + off, *nl = memchr(start, '\n', size - off);
                _cleanup_free_ char *where = NULL;
                int r;

                line++;
                if (!nl) {
                        /* A record whose write a crash cut short never counted: the change it described
                         * was not made. The next change writes owned.json and empties the log. */
                        log_debug("%s: line %zu: incomplete record, ignored", s->log_path, line);
                        (void)strv_extendf(
                                &s->warnings, "%s: line %zu: incomplete record, ignored", s->log_path, line);
                        break;
                }
                if (asprintf(&where, "%s: line %zu", s->log_path, line) < 0)
                        return -ENOMEM;
                r = apply_record(s, start, (size_t)(nl - start), &applied, where, e);
                if (r < 0)
                        return r;
                off = (size_t)(nl - text) + 1;
        }
        return 0;
}

int state_store_load(const char *dir, StateStore **ret, char **ret_error) {
        _cleanup_(state_store_freep) StateStore *s = NULL;
        _cleanup_free_ char *text = NULL;
        LoadError e = {};
        size_t size = 0;
        int r;

        r = state_store_new(dir, &s);
        if (r < 0)
                return r;
        remove_temp_files(s->dir);
        /* Neither file: first start (or the directory does not exist yet), nothing is owned. */
        r = read_file(s->path, &text, &size, &e);
        if (r >= 0)
                r = parse_store(s, text, size, &e);
        if (r >= 0 || r == -ENOENT) {
                text = mfree(text);
                r = read_file(s->log_path, &text, &size, &e);
                if (r >= 0)
                        r = parse_log(s, text, size, &e);
                else if (r == -ENOENT)
                        r = 0;
        }
        if (r < 0) {
                log_debug_errno(r, "Failed to load %s: %s", s->path, strna(e.message));
                if (ret_error)
                        *ret_error = TAKE_PTR(e.message);
                free(e.message);
                return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- save ---------------------------------------------------------------- */

static json_object *string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

/* Add |v| (a new reference, NULL only for JSON null) to |o| as |key|; takes |v| either way. */
static int add(json_object *o, const char *key, json_object *v, bool null_ok) {
        if (!v && !null_ok)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static json_object *device_to_json(const OwnedDevice *d) {
        json_object *o = json_object_new_object();
        const struct {
                const char *key, *value;
        } fields[] = {
                { "original-driver", d->original_driver },
                { "original-driver-override", d->original_driver_override },
                { "previous-driver", d->previous_driver },
                { "previous-driver-override", d->previous_driver_override },
                { "driver-override", d->driver_override },
                { "driver", d->driver },
        };

        if (!o)
                return NULL;
        /* A NULL value from json_object_new_*() on OOM would read as null: check each. */
        if (add(o, "address", json_object_new_string(d->address), false) < 0 ||
            add(o, "transaction", json_object_new_int64((int64_t)d->transaction), false) < 0 ||
            add(o, "phase", json_object_new_string(owned_phase_to_string(d->phase)), false) < 0)
                goto fail;
        for (size_t k = 0; k < ELEMENTSOF(fields); k++) {
                json_object *v = string_or_null(fields[k].value);
                if ((fields[k].value && !v) || add(o, fields[k].key, v, true) < 0)
                        goto fail;
        }
        if (d->has_sriov &&
            (add(o, "original-sriov-numvfs", json_object_new_int64(d->original_sriov_numvfs), false) < 0 ||
             add(o, "original-sriov-drivers-autoprobe",
                 json_object_new_boolean(d->original_sriov_drivers_autoprobe), false) < 0 ||
             add(o, "sriov-numvfs", json_object_new_int64(d->sriov_numvfs), false) < 0 ||
             add(o, "sriov-drivers-autoprobe", json_object_new_boolean(d->sriov_drivers_autoprobe), false) <
                     0))
                goto fail;
        return o;
fail:
        json_object_put(o);
        return NULL;
}

/* |o| as text with a newline; |flags| for json_object_to_json_string_ext(). Takes |o|. */
static int json_to_line(json_object *o, int flags, char **ret) {
        const char *text = o ? json_object_to_json_string_ext(o, flags) : NULL;
        int r = -ENOMEM;

        if (text && asprintf(ret, "%s\n", text) >= 0)
                r = 0;
        json_object_put(o);
        return r;
}

static int to_json(uint64_t last, uint64_t record, const OwnedDevice *list, size_t n, char **ret) {
        json_object *root = json_object_new_object(), *devices = json_object_new_array();

        if (!root || !devices) {
                json_object_put(devices);
                goto fail;
        }
        if (add(root, "version", json_object_new_int(STATE_STORE_VERSION), false) < 0 ||
            add(root, "last-transaction", json_object_new_int64((int64_t)last), false) < 0 ||
            add(root, "last-record", json_object_new_int64((int64_t)record), false) < 0 ||
            add(root, "devices", devices, false) < 0)
                goto fail;
        for (size_t i = 0; i < n; i++) {
                json_object *o = device_to_json(&list[i]);
                if (!o || json_object_array_add(devices, o) < 0) {
                        json_object_put(o);
                        goto fail;
                }
        }
        return json_to_line(
                root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
                ret);
fail:
        json_object_put(root);
        return -ENOMEM;
}

/* Write |list| as owned.json, covering the log up to |record|: temporary file in the same directory,
 * fsync, rename, fsync the directory. */
static int store_write(StateStore *s, uint64_t last, uint64_t record, const OwnedDevice *list, size_t n) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = to_json(last, record, list, n, &text);
        if (r < 0)
                return r;
        if (strlen(text) > STATE_STORE_FILE_MAX)
                return log_debug_errno(
                        EFBIG, "Refusing to write %s: %zu bytes, more than %u", s->path, strlen(text),
                        STATE_STORE_FILE_MAX);

        r = file_write_atomic(s->dir, HOSTDEVD_STATE_FILE, text, strlen(text), 0600, 0700);
        if (r < 0)
                return log_debug_errno(r, "Failed to write %s: %m", s->path);
        return 0;
}

/* After owned.json was written: empty the log (its records are in the file now) and keep it open for the
 * next changes. On failure the log stays closed (the next change writes owned.json again) and is removed
 * if it can be: a loaded store's log only holds records at or below the file's "last-record", skipped by
 * a load, but a state_store_new() store's file may count below a broken store's log. */
static void log_reset(StateStore *s) {
        if (s->log_fd < 0) {
                _cleanup_close_ int dfd = -EBADF;

                s->log_fd = open(s->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (s->log_fd < 0)
                        goto fail;
                /* The log's name must last as its records do. */
                dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0 || fsync(dfd) < 0)
                        goto fail;
        }
        if (ftruncate(s->log_fd, 0) < 0 || fsync(s->log_fd) < 0)
                goto fail;
        s->log_size = 0;
        s->log_records = 0;
        return;
fail:
        log_debug_errno(errno, "Failed to empty %s: %m; writing %s at every change", s->log_path, s->path);
        if (s->log_fd >= 0)
                (void)close(s->log_fd);
        s->log_fd = -EBADF;
        if (unlink(s->log_path) < 0 && errno != ENOENT) {
                int r = -errno;

                log_debug_errno(r, "Failed to empty or remove %s: %m", s->log_path);
                (void)strv_extendf(
                        &s->warnings, "Failed to empty or remove %s: %s", s->log_path, strerror(-r));
        }
}

/* Append |line| to the log and sync it. On failure the log is cut back to what it held: nothing
 * changed. */
static int log_append(StateStore *s, const char *line) {
        size_t n = strlen(line);
        ssize_t k;
        int r;

        k = write(s->log_fd, line, n);
        if (k == (ssize_t)n && fdatasync(s->log_fd) >= 0) {
                s->log_size += n;
                s->log_records++;
                return 0;
        }
        r = k >= 0 && k < (ssize_t)n ? -ENOSPC : -errno;
        if (ftruncate(s->log_fd, (off_t)s->log_size) < 0) {
                /* A partial record would stay: no more appends, the next change writes owned.json. */
                (void)close(s->log_fd);
                s->log_fd = -EBADF;
        }
        return log_debug_errno(r, "Failed to append to %s: %m", s->log_path);
}

/*
 * How a change is recorded: as a line of the log (its JSON object |record|, numbered
 * s->last_record + 1, taken; NULL after OOM) when the log is open and has room, else as a new
 * owned.json of the whole state after it. store_log_line() decides: *ret_line is the line to append,
 * or NULL when owned.json must be written (store_snapshot()). Either way the caller changes s->devices
 * only once the record is on disk, so a failure changes nothing, in memory or on disk; and only the
 * snapshot needs the whole new state at once (once per as many changes as it holds functions), so a change
 * of one function costs no copy of the others: a host with a thousand recorded VFs records each
 * transaction in about the time a small one does (tests/bench/state-store-bench.c).
 */
static int store_log_line(StateStore *s, json_object *record, char **ret_line) {
        _cleanup_free_ char *line = NULL;
        int r;

        *ret_line = NULL;
        /* As many records as the file holds functions (at least STATE_STORE_LOG_MAX_RECORDS): the file's
         * rewrite, O(functions), then comes once per as many changes. */
        if (s->log_fd >= 0 && record &&
            s->log_records < (s->n_devices > STATE_STORE_LOG_MAX_RECORDS ? s->n_devices
                                                                         : STATE_STORE_LOG_MAX_RECORDS)) {
                r = json_to_line(
                        TAKE_PTR(record), JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &line);
                if (r < 0)
                        return r;
        }
        json_object_put(record);
        if (line && s->log_size + strlen(line) <= STATE_STORE_LOG_MAX)
                *ret_line = TAKE_PTR(line);
        return 0;
}

/* Append |line| (store_log_line()); on success the change with transaction counter |last| is recorded. */
static int store_append(StateStore *s, uint64_t last, const char *line) {
        int r = log_append(s, line);

        if (r < 0)
                return r;
        s->last_transaction = last;
        s->last_record++;
        return 0;
}

/* Write |list| (n functions, sorted: the state after the change) as owned.json and empty the log; on
 * success the change with transaction counter |last| is recorded. */
static int store_snapshot(StateStore *s, uint64_t last, const OwnedDevice *list, size_t n) {
        int r = store_write(s, last, s->last_record + 1, list, n);

        if (r < 0)
                return r;
        log_reset(s);
        s->last_transaction = last;
        s->last_record++;
        return 0;
}

/* A new array with room for |extra| more: the entries of s->devices, their strings shared (for
 * store_snapshot(): never freed with them). */
static OwnedDevice *store_view(const StateStore *s, size_t extra) {
        OwnedDevice *view = reallocarray(NULL, s->n_devices + extra + 1, sizeof(OwnedDevice));

        if (!view)
                return NULL;
        if (s->n_devices > 0)
                memcpy(view, s->devices, s->n_devices * sizeof(OwnedDevice));
        memset(&view[s->n_devices], 0, (extra + 1) * sizeof(OwnedDevice));
        return view;
}

/* The log record of |s|'s next change: { "record": N, |key|: |v| } (|v| taken). NULL on OOM: the change
 * then writes owned.json, or fails there. */
static json_object *one_key_record(const StateStore *s, const char *key, json_object *v) {
        json_object *o = json_object_new_object();

        if (!o || add(o, "record", json_object_new_int64((int64_t)(s->last_record + 1)), false) < 0) {
                json_object_put(o);
                json_object_put(v);
                return NULL;
        }
        if (add(o, key, v, false) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* "begin": the transaction, "devices": every function it records (all of them carry its number). */
static json_object *begin_record(const StateStore *s, uint64_t t, const OwnedDevice *list, size_t n) {
        json_object *o = one_key_record(s, "begin", json_object_new_int64((int64_t)t)), *devices;

        devices = json_object_new_array();
        if (!o) {
                json_object_put(devices);
                return NULL;
        }
        if (add(o, "devices", devices, false) < 0) {
                json_object_put(o);
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *d;

                if (list[i].transaction != t)
                        continue;
                d = device_to_json(&list[i]);
                if (!d || json_object_array_add(devices, d) < 0) {
                        json_object_put(d);
                        json_object_put(o);
                        return NULL;
                }
        }
        return o;
}

int state_store_begin(StateStore *s, const OwnedChange *changes, size_t n, uint64_t *ret_transaction) {
        _cleanup_free_ char *line = NULL;
        OwnedDevice *fresh;
        uint64_t t;
        int r = 0;

        assert(s);
        if (n == 0 || !changes)
                return -EINVAL;
        if (s->last_transaction >= INT64_MAX - 1)
                return -EOVERFLOW;
        for (size_t i = 0; i < n; i++) {
                char buf[PCI_ADDRESS_STRING_MAX];
                PciAddress a;
                if (!changes[i].address || pci_address_from_string(changes[i].address, &a) < 0 ||
                    !streq(pci_address_format(&a, buf), changes[i].address))
                        return -EINVAL;
                if (!value_is_valid(changes[i].driver_now) ||
                    !value_is_valid(changes[i].driver_override_now) ||
                    !value_is_valid(changes[i].driver_override) || !value_is_valid(changes[i].driver))
                        return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (streq(changes[j].address, changes[i].address))
                                return -EINVAL;
        }

        /* The changed entries, each owning all its strings. */
        t = s->last_transaction + 1;
        fresh = calloc(n, sizeof(OwnedDevice));
        if (!fresh)
                return -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i++) {
                const OwnedChange *c = &changes[i];
                ssize_t k = find(s->devices, s->n_devices, c->address);
                OwnedDevice *d = &fresh[i];

                strcpy(d->address, c->address);
                d->transaction = t;
                d->phase = OWNED_PHASE_BEGUN;
                /* Already ours: its original stays what it was before hostdevd came. */
                r = strdup_null(k >= 0 ? s->devices[k].original_driver : c->driver_now, &d->original_driver);
                if (r >= 0)
                        r = strdup_null(
                                k >= 0 ? s->devices[k].original_driver_override : c->driver_override_now,
                                &d->original_driver_override);
                if (r >= 0)
                        r = strdup_null(c->driver_now, &d->previous_driver);
                if (r >= 0)
                        r = strdup_null(c->driver_override_now, &d->previous_driver_override);
                if (r >= 0)
                        r = strdup_null(c->driver_override, &d->driver_override);
                if (r >= 0)
                        r = strdup_null(c->driver, &d->driver);
                if (c->sriov) {
                        bool had = k >= 0 && s->devices[k].has_sriov;

                        d->has_sriov = true;
                        d->original_sriov_numvfs =
                                had ? s->devices[k].original_sriov_numvfs : c->sriov_numvfs_now;
                        d->original_sriov_drivers_autoprobe = had
                                ? s->devices[k].original_sriov_drivers_autoprobe
                                : c->sriov_drivers_autoprobe_now;
                        d->sriov_numvfs = c->writes_sriov_numvfs ? c->sriov_numvfs
                                : had                            ? s->devices[k].sriov_numvfs
                                                                 : c->sriov_numvfs_now;
                        d->sriov_drivers_autoprobe = c->writes_sriov_drivers_autoprobe
                                ? c->sriov_drivers_autoprobe
                                : had ? s->devices[k].sriov_drivers_autoprobe
                                      : c->sriov_drivers_autoprobe_now;
                } else if (k >= 0 && s->devices[k].has_sriov) {
                        /* A driver transaction of a PF: its SR-IOV record stays as it was. */
                        d->has_sriov = true;
                        d->original_sriov_numvfs = s->devices[k].original_sriov_numvfs;
                        d->original_sriov_drivers_autoprobe = s->devices[k].original_sriov_drivers_autoprobe;
                        d->sriov_numvfs = s->devices[k].sriov_numvfs;
                        d->sriov_drivers_autoprobe = s->devices[k].sriov_drivers_autoprobe;
                }
        }
        /* Room for the new ones first: once the record is written, nothing may fail. */
        if (r >= 0) {
                OwnedDevice *l = reallocarray(s->devices, s->n_devices + n + 1, sizeof(OwnedDevice));

                if (l)
                        s->devices = l;
                else
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = store_log_line(s, begin_record(s, t, fresh, n), &line);
        if (r < 0) {
                owned_devices_free(fresh, n);
                return r;
        }

        if (line) {
                r = store_append(s, t, line);
                if (r < 0) {
                        owned_devices_free(fresh, n);
                        return r;
                }
                for (size_t i = 0; i < n; i++) {
                        size_t at;

                        if (find_at(s->devices, s->n_devices, fresh[i].address, &at) >= 0) {
                                owned_device_done(&s->devices[at]);
                                s->devices[at] = fresh[i];
                        } else
                                list_insert(s->devices, s->n_devices++, at, &fresh[i]);
                }
        } else {
                /* owned.json: the state after the change as a view sharing the others' strings. */
                OwnedDevice *view = store_view(s, n);
                size_t count = s->n_devices;

                if (!view) {
                        owned_devices_free(fresh, n);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < n; i++) {
                        size_t at;

                        if (find_at(view, count, fresh[i].address, &at) >= 0)
                                view[at] = fresh[i];
                        else
                                list_insert(view, count++, at, &fresh[i]);
                }
                r = store_snapshot(s, t, view, count);
                if (r < 0) {
                        owned_devices_free(fresh, n);
                        free(view);
                        return r;
                }
                /* The entries replaced: their strings were the old array's alone. */
                for (size_t i = 0; i < n; i++) {
                        ssize_t k = find(s->devices, s->n_devices, fresh[i].address);

                        if (k >= 0)
                                owned_device_done(&s->devices[k]);
                }
                free(s->devices);
                s->devices = view;
                s->n_devices = count;
        }
        free(fresh);
        if (ret_transaction)
                *ret_transaction = t;
        return 0;
}

int state_store_commit(StateStore *s, uint64_t transaction) {
        _cleanup_free_ char *line = NULL;
        bool found = false;
        int r;

        assert(s);
        for (size_t i = 0; i < s->n_devices; i++)
                found = found ||
                        (s->devices[i].transaction == transaction &&
                         s->devices[i].phase == OWNED_PHASE_BEGUN);
        if (!found)
                return -ENOENT;
        r = store_log_line(
                s, one_key_record(s, "commit", json_object_new_int64((int64_t)transaction)), &line);
        if (r < 0)
                return r;
        if (line) {
                r = store_append(s, s->last_transaction, line);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < s->n_devices; i++)
                if (s->devices[i].transaction == transaction)
                        s->devices[i].phase = OWNED_PHASE_COMMITTED;
        if (!line) {
                /* owned.json of the state after it; put back on failure. */
                r = store_snapshot(s, s->last_transaction, s->devices, s->n_devices);
                if (r < 0) {
                        for (size_t i = 0; i < s->n_devices; i++)
                                if (s->devices[i].transaction == transaction)
                                        s->devices[i].phase = OWNED_PHASE_BEGUN;
                        return r;
                }
        }
        return 0;
}

int state_store_forget(StateStore *s, const char *address) {
        _cleanup_free_ char *line = NULL;
        OwnedDevice *view;
        ssize_t k;
        int r;

        assert(s);
        if (!address)
                return -EINVAL;
        k = find(s->devices, s->n_devices, address);
        if (k < 0)
                return -ENOENT;
        r = store_log_line(s, one_key_record(s, "forget", json_object_new_string(address)), &line);
        if (r < 0)
                return r;
        if (line) {
                r = store_append(s, s->last_transaction, line);
                if (r < 0)
                        return r;
                list_remove(s->devices, s->n_devices--, (size_t)k);
                return 0;
        }

        /* owned.json without it: a view sharing the others' strings. */
        view = store_view(s, 0);
        if (!view)
                return -ENOMEM;
        memmove(&view[k], &view[k + 1], (s->n_devices - (size_t)k - 1) * sizeof(OwnedDevice));
        r = store_snapshot(s, s->last_transaction, view, s->n_devices - 1);
        if (r < 0) {
                free(view);
                return r;
        }
        owned_device_done(&s->devices[k]); /* its strings were the old array's alone */
        free(s->devices);
        s->devices = view;
        s->n_devices--;
        return 0;
}

int state_store_forget_sriov(StateStore *s, const char *address) {
        _cleanup_free_ char *line = NULL;
        OwnedDevice *view;
        ssize_t k;
        int r;

        assert(s);
        if (!address)
                return -EINVAL;
        k = find(s->devices, s->n_devices, address);
        if (k < 0 || !s->devices[k].has_sriov)
                return -ENOENT;
        r = store_log_line(s, one_key_record(s, "forget-sriov", json_object_new_string(address)), &line);
        if (r < 0)
                return r;
        if (line) {
                r = store_append(s, s->last_transaction, line);
                if (r < 0)
                        return r;
                s->devices[k].has_sriov = false;
                return 0;
        }

        /* owned.json with it changed: a view sharing every string. */
        view = store_view(s, 0);
        if (!view)
                return -ENOMEM;
        view[k].has_sriov = false;
        r = store_snapshot(s, s->last_transaction, view, s->n_devices);
        free(view);
        if (r < 0)
                return r;
        s->devices[k].has_sriov = false;
        return 0;
}

/* ---- queries -------------------------------------------------------------- */

const OwnedDevice *state_store_get_devices(const StateStore *s, size_t *ret_n) {
        *ret_n = s->n_devices;
        return s->devices;
}

const OwnedDevice *state_store_get(const StateStore *s, const char *address) {
        ssize_t k = address ? find(s->devices, s->n_devices, address) : -1;
        return k < 0 ? NULL : &s->devices[k];
}

int state_store_list_owned(const StateStore *s, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;

        for (size_t i = 0; i < s->n_devices; i++) {
                int r = strv_extend(&l, s->devices[i].address);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int interrupted_compare(const void *x, const void *y) {
        const OwnedDevice *a = *(const OwnedDevice *const *)x, *b = *(const OwnedDevice *const *)y;

        if (a->transaction != b->transaction)
                return a->transaction < b->transaction ? -1 : 1;
        return owned_device_compare(a, b);
}

int state_store_list_interrupted(const StateStore *s, const OwnedDevice ***ret, size_t *ret_n) {
        const OwnedDevice **l = NULL;
        size_t n = 0;

        for (size_t i = 0; i < s->n_devices; i++) {
                if (s->devices[i].phase != OWNED_PHASE_BEGUN)
                        continue;
                const OwnedDevice **a = reallocarray(l, n + 1, sizeof(OwnedDevice *));
                if (!a) {
                        free(l);
                        return -ENOMEM;
                }
                l = a;
                l[n++] = &s->devices[i];
        }
        if (n > 1)
                qsort(l, n, sizeof(OwnedDevice *), interrupted_compare);
        *ret = l;
        *ret_n = n;
        return 0;
}
