/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <ini.h>
#include <uuid/uuid.h>

#include "desired-state.h"
#include "escape.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "strv.h"
#include "sysfs.h"

static const char *const driver_kind_table[_DRIVER_KIND_MAX] = {
        [DRIVER_KIND_UNSET] = "unset",
        [DRIVER_KIND_NAMED] = "named",
        [DRIVER_KIND_HOST] = "host",
        [DRIVER_KIND_NONE] = "none",
};

const char *driver_kind_to_string(DriverKind k) {
        if (k < 0 || k >= _DRIVER_KIND_MAX)
                return NULL;
        return driver_kind_table[k];
}

static const char *const group_policy_table[_GROUP_POLICY_MAX] = {
        [GROUP_POLICY_STRICT] = "strict",
        [GROUP_POLICY_WHOLE] = "whole",
};

const char *group_policy_to_string(GroupPolicy p) {
        if (p < 0 || p >= _GROUP_POLICY_MAX)
                return NULL;
        return group_policy_table[p];
}

GroupPolicy group_policy_from_string(const char *s) {
        for (size_t i = 0; s && i < _GROUP_POLICY_MAX; i++)
                if (streq(group_policy_table[i], s))
                        return (GroupPolicy)i;
        return _GROUP_POLICY_INVALID;
}

bool driver_name_is_vfio(const char *name) {
        /* Same test as pci_device_is_vfio_bound(): vfio-pci and variants such as mlx5_vfio_pci. */
        return name && (strstr(name, "vfio_pci") || strstr(name, "vfio-pci"));
}

int driver_spec_parse(const char *s, DriverSpec *ret) {
        size_t n;

        assert(ret);
        if (!s)
                return -EINVAL;
        if (streq(s, CONF_DRIVER_HOST)) {
                *ret = (DriverSpec){ .kind = DRIVER_KIND_HOST };
                return 0;
        }
        if (streq(s, CONF_DRIVER_NONE)) {
                *ret = (DriverSpec){ .kind = DRIVER_KIND_NONE };
                return 0;
        }
        /* Kernel driver names are C identifiers or KBUILD_MODNAME-like strings ("vfio-pci", "3c59x"); the
         * name is written to driver_override (Documentation/ABI/testing/sysfs-bus-pci), so nothing else
         * passes. A leading '-' names no driver (kbuild derives module names from object file names) and
         * would read as an option to modprobe and the like ("--help"). */
        n = strlen(s);
        if (n == 0 || n > DESIRED_DRIVER_NAME_MAX || s[0] == '-' ||
            strspn(s,
                   "abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789_-") != n)
                return -EINVAL;
        char *name = strdup(s);
        if (!name)
                return -ENOMEM;
        *ret = (DriverSpec){ .kind = DRIVER_KIND_NAMED, .name = name };
        return 0;
}

void driver_spec_done(DriverSpec *d) {
        d->name = mfree(d->name);
        d->kind = DRIVER_KIND_UNSET;
}

const char *driver_spec_to_string(const DriverSpec *d) {
        switch (d->kind) {
        case DRIVER_KIND_NAMED:
                return d->name;
        case DRIVER_KIND_HOST:
                return CONF_DRIVER_HOST;
        case DRIVER_KIND_NONE:
                return CONF_DRIVER_NONE;
        default:
                return NULL;
        }
}

bool driver_spec_equal(const DriverSpec *a, const DriverSpec *b) {
        if (a->kind != b->kind)
                return false;
        return a->kind != DRIVER_KIND_NAMED || streq(a->name, b->name);
}

static int driver_spec_copy(const DriverSpec *from, DriverSpec *to) {
        *to = (DriverSpec){ .kind = from->kind };
        if (from->name) {
                to->name = strdup(from->name);
                if (!to->name)
                        return -ENOMEM;
        }
        return 0;
}

bool device_match_is_empty(const DeviceMatch *m) {
        return !m->has_address && !m->has_vendor && !m->has_device && !m->has_subsystem_vendor &&
                !m->has_subsystem_device && !m->has_class && !m->has_pf && !m->has_vf_index && !m->slot &&
                !m->has_serial;
}

bool device_match_test(const DeviceMatch *m, const PciDevice *d) {
        if (device_match_is_empty(m))
                return false; /* never "everything" */

        if (m->has_address) {
                char buf[PCI_ADDRESS_STRING_MAX];
                if (!streq(pci_address_format(&m->address, buf), d->address))
                        return false;
        }
        if (m->has_vendor && d->vendor_id != m->vendor)
                return false;
        if (m->has_device && d->device_id != m->device)
                return false;
        if (m->has_subsystem_vendor && d->subsystem_vendor_id != m->subsystem_vendor)
                return false;
        if (m->has_subsystem_device && d->subsystem_device_id != m->subsystem_device)
                return false;
        if (m->has_class && (d->class_code & m->class_mask) != m->class_value)
                return false;
        if (m->has_pf) {
                char buf[PCI_ADDRESS_STRING_MAX];
                if (d->sriov_role != SRIOV_ROLE_VF || !d->physfn ||
                    !streq(pci_address_format(&m->pf, buf), d->physfn))
                        return false;
                if (m->has_vf_index &&
                    (d->vf_index < 0 || (uint32_t)d->vf_index < m->vf_index_first ||
                     (uint32_t)d->vf_index > m->vf_index_last))
                        return false;
        }
        if (m->slot && (!d->physical_slot || !streq(m->slot, d->physical_slot)))
                return false;
        if (m->has_serial && (!d->has_serial || d->serial != m->serial))
                return false;
        return true;
}

static void desired_rule_done(DesiredRule *r) {
        free(r->path);
        free(r->name);
        free(r->match.slot);
        driver_spec_done(&r->driver);
        driver_spec_done(&r->vf_driver);
        strv_free(r->mdev.parents);
        free(r->mdev.type);
        for (size_t i = 0; i < r->mdev.n_attrs; i++) {
                free(r->mdev.attrs[i].name);
                free(r->mdev.attrs[i].value);
        }
        free(r->mdev.attrs);
        free(r->vgpu.type);
}

DesiredState *desired_state_free(DesiredState *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_rules; i++)
                desired_rule_done(&s->rules[i]);
        free(s->rules);
        strv_free(s->masked);
        strv_free(s->errors);
        free(s);
        return NULL;
}

/* ---- value parsers --------------------------------------------------------------------------- */

/* 1..max_digits hex digits with an optional "0x"; nothing else. */
static int parse_hex(const char *s, unsigned max_digits, uint32_t *ret) {
        size_t n;

        if (strneq(s, "0x", 2) || strneq(s, "0X", 2))
                s += 2;
        n = strspn(s, "0123456789abcdefABCDEF");
        if (n == 0 || n > max_digits || s[n] != '\0')
                return -EINVAL;
        *ret = (uint32_t)strtoul(s, NULL, 16);
        return 0;
}

/* Decimal without sign or leading junk, at most |max|. */
static int parse_decimal(const char *s, uint32_t max, uint32_t *ret) {
        size_t n = strspn(s, "0123456789");
        unsigned long v;

        if (n == 0 || n > 10 || s[n] != '\0')
                return -EINVAL;
        v = strtoul(s, NULL, 10);
        if (v > max)
                return -ERANGE;
        *ret = (uint32_t)v;
        return 0;
}

static int parse_boolean(const char *s, bool *ret) {
        /* As systemd's parse_boolean(). */
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

/* ---- the INI handler ------------------------------------------------------------------------ */

typedef enum ConfKey {
        KEY_ADDRESS,
        KEY_VENDOR,
        KEY_DEVICE,
        KEY_SUBSYSTEM_VENDOR,
        KEY_SUBSYSTEM_DEVICE,
        KEY_CLASS,
        KEY_PF,
        KEY_VF_INDEX,
        KEY_SLOT,
        KEY_SERIAL,
        KEY_DRIVER,
        KEY_GROUP,
        KEY_ALLOW_CRITICAL,
        KEY_NAME,
        KEY_NUM_VFS,
        KEY_VF_DRIVER,
        KEY_MDEV_PARENT,
        KEY_MDEV_TYPE,
        KEY_MDEV_UUID,
        KEY_MDEV_COUNT,
        KEY_MDEV_PLACEMENT,
        KEY_MDEV_ATTRIBUTE,
        KEY_VGPU_TYPE,
        KEY_VGPU_COUNT,
        _KEY_MAX,
} ConfKey;

static const struct {
        const char *section;
        const char *name;
        bool repeatable; /* each assignment adds one (in order) */
} conf_keys[_KEY_MAX] = {
        [KEY_ADDRESS] = { CONF_SECTION_MATCH, "Address" },
        [KEY_VENDOR] = { CONF_SECTION_MATCH, "Vendor" },
        [KEY_DEVICE] = { CONF_SECTION_MATCH, "Device" },
        [KEY_SUBSYSTEM_VENDOR] = { CONF_SECTION_MATCH, "SubsystemVendor" },
        [KEY_SUBSYSTEM_DEVICE] = { CONF_SECTION_MATCH, "SubsystemDevice" },
        [KEY_CLASS] = { CONF_SECTION_MATCH, "Class" },
        [KEY_PF] = { CONF_SECTION_MATCH, "PF" },
        [KEY_VF_INDEX] = { CONF_SECTION_MATCH, "VFIndex" },
        [KEY_SLOT] = { CONF_SECTION_MATCH, "Slot" },
        [KEY_SERIAL] = { CONF_SECTION_MATCH, "Serial" },
        [KEY_DRIVER] = { CONF_SECTION_DEVICE, "Driver" },
        [KEY_GROUP] = { CONF_SECTION_DEVICE, "Group" },
        [KEY_ALLOW_CRITICAL] = { CONF_SECTION_DEVICE, "AllowCritical" },
        [KEY_NAME] = { CONF_SECTION_DEVICE, "Name" },
        [KEY_NUM_VFS] = { CONF_SECTION_SRIOV, "NumVFs" },
        [KEY_VF_DRIVER] = { CONF_SECTION_SRIOV, "VFDriver" },
        [KEY_MDEV_PARENT] = { CONF_SECTION_MDEV, "Parent", true },
        [KEY_MDEV_TYPE] = { CONF_SECTION_MDEV, "Type" },
        [KEY_MDEV_UUID] = { CONF_SECTION_MDEV, "UUID" },
        [KEY_MDEV_COUNT] = { CONF_SECTION_MDEV, "Count" },
        [KEY_MDEV_PLACEMENT] = { CONF_SECTION_MDEV, "Placement" },
        [KEY_MDEV_ATTRIBUTE] = { CONF_SECTION_MDEV, "Attribute", true },
        [KEY_VGPU_TYPE] = { CONF_SECTION_VGPU, "Type" },
        [KEY_VGPU_COUNT] = { CONF_SECTION_VGPU, "Count" },
};

/* Longest Type= (ids are short; names such as "GRID RTX6000-4Q" too) and Parent=/attribute name. */
#define DESIRED_MDEV_TYPE_MAX 128u
#define DESIRED_MDEV_NAME_MAX 64u

/* Printable, no '/', 1..max bytes: a type id or name, a parent or attribute name (escaped in
 * messages anyway). |one_component|: also not "." or "..", no white space. */
static bool mdev_word_is_valid(const char *s, size_t max, bool one_component) {
        size_t n = strlen(s);

        if (n == 0 || n > max || strchr(s, '/'))
                return false;
        if (one_component && (streq(s, ".") || streq(s, "..")))
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];
                if (one_component ? !isgraph(ch) : !(isprint(ch)))
                        return false;
        }
        return true;
}

typedef struct ParseContext {
        FILE *f;
        const char *path; /* escaped (escape.h): quoted in every message */
        char *buf;
        size_t buf_size;
        unsigned line; /* line libinih is working on (its handler gets no line number
                        * in Debian's build: INI_HANDLER_LINENO is 0), counted by our reader */
        unsigned first_section_line; /* first "[...]" line seen by the reader, 0: none */
        unsigned section_line[5]; /* first line of [Match], [Device], [SRIOV], [Mdev], [VGPU], 0: not seen */
        unsigned unknown_section_line; /* header line of the current section when unknown, 0: known */
        unsigned unknown_section_keys; /* assignments seen in it */
        char *unknown_section; /* its name, escaped */
        bool after_key; /* the last line that was not blank or a comment was no section header */
        unsigned n_assignments;
        unsigned key_line[_KEY_MAX]; /* where each key was set, 0: not set */
        DesiredRule rule;
        char **errors;
        int r; /* -ENOMEM when something could not be recorded */
} ParseContext;

_printf_(3, 4) static void context_error(ParseContext *c, unsigned line, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(&msg, format, ap);
        va_end(ap);
        if (k < 0) {
                c->r = -ENOMEM;
                return;
        }
        if (strv_extendf(&c->errors, "%s:%u: %s", c->path, line, msg) < 0)
                c->r = -ENOMEM;
}

static const char *const known_sections[] = {
        CONF_SECTION_MATCH, CONF_SECTION_DEVICE, CONF_SECTION_SRIOV, CONF_SECTION_MDEV, CONF_SECTION_VGPU,
};
enum { SECTION_MATCH, SECTION_DEVICE, SECTION_SRIOV, SECTION_MDEV, SECTION_VGPU };

/* The section before ends: an unknown one is an error even without keys (hostdevd.conf(5)); with keys,
 * each key is reported by the handler. */
static void context_section_end(ParseContext *c) {
        if (c->unknown_section_line != 0 && c->unknown_section_keys == 0)
                context_error(c, c->unknown_section_line, "[%s]: unknown section", c->unknown_section);
        c->unknown_section_line = 0;
        c->unknown_section = mfree(c->unknown_section);
}

/* A "[" line: |name| points after the bracket. libinih takes the name up to the first ']' (a line
 * without one is its syntax error); libinih passes no line numbers and does not tell the handler about
 * sections without keys, so the reader sees them. */
static void context_section_start(ParseContext *c, const char *name) {
        const char *end = strchr(name, ']');
        size_t n;

        context_section_end(c);
        if (!end)
                return;
        n = (size_t)(end - name);
        for (size_t i = 0; i < ELEMENTSOF(known_sections); i++) {
                if (strlen(known_sections[i]) != n || !strneq(known_sections[i], name, n))
                        continue;
                /* Sections are not merged: two [Match] sections read as "match either" but would AND. */
                if (c->section_line[i] != 0)
                        context_error(
                                c, c->line, "[%s]: section repeated (first at line %u), put its keys in one",
                                known_sections[i], c->section_line[i]);
                else
                        c->section_line[i] = c->line;
                return;
        }
        c->unknown_section_line = c->line;
        c->unknown_section_keys = 0;
        c->unknown_section = escape_bytes(name, n, ESCAPE_QUOTE_MAX);
        if (!c->unknown_section)
                c->r = -ENOMEM;
}

/* fgets()-style reader for ini_parse_stream(): counts lines, catches what libinih would silently split. */
static char *context_read_line(char *str, int num, void *userdata) {
        ParseContext *c = userdata;
        ssize_t n;
        size_t skip;

        n = getline(&c->buf, &c->buf_size, c->f);
        if (n < 0) {
                context_section_end(c);
                return NULL;
        }
        c->line++;

        if ((size_t)n != strlen(c->buf)) {
                context_error(c, c->line, "line contains a NUL byte");
                c->buf[0] = '\0';
                n = 0;
        } else if (n + 1 > num) {
                /* libinih would read the rest as the next line; reject instead (its INI_MAX_LINE). */
                context_error(c, c->line, "line longer than %d characters", num - 2);
                c->buf[0] = '\0';
                n = 0;
        }

        /* As libinih: a UTF-8 byte order mark on the first line, then white space. */
        skip = c->line == 1 && strneq(c->buf, "\xef\xbb\xbf", 3) ? 3 : 0;
        skip += strspn(c->buf + skip, " \t\n\v\f\r");
        if (c->buf[skip] == '[' && (skip == 0 || !c->after_key)) {
                /* An indented line after a key is libinih's continuation line, not a section. */
                if (c->first_section_line == 0)
                        c->first_section_line = c->line;
                context_section_start(c, c->buf + skip + 1);
                c->after_key = false;
        } else if (c->buf[skip] != '\0' && !strchr(";#", c->buf[skip]))
                c->after_key = true; /* comments and blank lines do not end a key's continuation */

        memcpy(str, c->buf, (size_t)n + 1);
        return str;
}

/* Values are quoted escaped and bounded (escape.h): a file may hold any bytes. */
#define KEY_ERROR(c, key, value, reason, ...) \
        context_error(c, c->line, "%s=%s: " reason, conf_keys[key].name, ESCAPE_QUOTE(value), ##__VA_ARGS__)

static int context_assign(ParseContext *c, ConfKey key, const char *value) {
        DeviceMatch *m = &c->rule.match;
        uint32_t v;
        int r;

        switch (key) {
        case KEY_ADDRESS:
        case KEY_PF: {
                PciAddress a;
                if (pci_address_from_string(value, &a) < 0) {
                        KEY_ERROR(c, key, value, "not a PCI address (DDDD:BB:SS.F)");
                        return 0;
                }
                if (key == KEY_ADDRESS) {
                        m->address = a;
                        m->has_address = true;
                } else {
                        m->pf = a;
                        m->has_pf = true;
                }
                return 0;
        }
        case KEY_VENDOR:
        case KEY_DEVICE:
        case KEY_SUBSYSTEM_VENDOR:
        case KEY_SUBSYSTEM_DEVICE:
                if (parse_hex(value, 4, &v) < 0) {
                        KEY_ERROR(c, key, value, "not a 16-bit hex ID (e.g. 8086 or 0x8086)");
                        return 0;
                }
                if (key == KEY_VENDOR) {
                        m->vendor = (uint16_t)v;
                        m->has_vendor = true;
                } else if (key == KEY_DEVICE) {
                        m->device = (uint16_t)v;
                        m->has_device = true;
                } else if (key == KEY_SUBSYSTEM_VENDOR) {
                        m->subsystem_vendor = (uint16_t)v;
                        m->has_subsystem_vendor = true;
                } else {
                        m->subsystem_device = (uint16_t)v;
                        m->has_subsystem_device = true;
                }
                return 0;
        case KEY_CLASS: {
                _cleanup_free_ char *head = NULL;
                const char *slash = strchr(value, '/');
                uint32_t mask = 0xffffff;

                head = strndup(value, slash ? (size_t)(slash - value) : strlen(value));
                if (!head)
                        return -ENOMEM;
                if (parse_hex(head, 6, &v) < 0 || (slash && parse_hex(slash + 1, 6, &mask) < 0)) {
                        KEY_ERROR(
                                c, key, value,
                                "not a 24-bit hex class with optional /mask (e.g. 0x020000/0xff0000)");
                        return 0;
                }
                if (mask == 0) {
                        KEY_ERROR(c, key, value, "mask 0 would match every function");
                        return 0;
                }
                if (v & ~mask) {
                        KEY_ERROR(c, key, value, "class has bits outside the mask");
                        return 0;
                }
                m->class_value = v;
                m->class_mask = mask;
                m->has_class = true;
                return 0;
        }
        case KEY_VF_INDEX: {
                /* "N" or "N-M": VF numbers as in the PF's virtfnN links; sriov_totalvfs is 16 bits. */
                _cleanup_free_ char *first = NULL;
                const char *dash = strchr(value, '-');
                uint32_t a, b;

                first = strndup(value, dash ? (size_t)(dash - value) : strlen(value));
                if (!first)
                        return -ENOMEM;
                if (parse_decimal(first, UINT16_MAX, &a) < 0 ||
                    parse_decimal(dash ? dash + 1 : first, UINT16_MAX, &b) < 0) {
                        KEY_ERROR(c, key, value, "not a VF index or range (e.g. 2 or 0-3)");
                        return 0;
                }
                if (a > b) {
                        KEY_ERROR(c, key, value, "range is empty (first > last)");
                        return 0;
                }
                m->vf_index_first = a;
                m->vf_index_last = b;
                m->has_vf_index = true;
                return 0;
        }
        case KEY_SLOT: {
                size_t n = strlen(value);
                bool ok = n > 0 && n <= 64 && !strchr(value, '/');
                for (size_t i = 0; ok && i < n; i++)
                        ok = isgraph((unsigned char)value[i]);
                if (!ok) {
                        KEY_ERROR(c, key, value, "not a slot name (as in /sys/bus/pci/slots/)");
                        return 0;
                }
                m->slot = strdup(value);
                if (!m->slot)
                        return -ENOMEM;
                return 0;
        }
        case KEY_SERIAL: {
                /* PCIe DSN as lspci prints it: 8 bytes, most significant first, "00-25-38-b3-81-b0-a1-c2".
                 */
                uint64_t serial = 0;
                bool ok = strlen(value) == 23;
                for (size_t i = 0; ok && i < 8; i++) {
                        char byte[3] = { value[3 * i], value[3 * i + 1], '\0' };
                        ok = isxdigit((unsigned char)byte[0]) && isxdigit((unsigned char)byte[1]) &&
                                (i == 7 || value[3 * i + 2] == '-');
                        serial = (serial << 8) | strtoul(byte, NULL, 16);
                }
                if (!ok) {
                        KEY_ERROR(c, key, value, "not a PCIe serial number (xx-xx-xx-xx-xx-xx-xx-xx)");
                        return 0;
                }
                m->serial = serial;
                m->has_serial = true;
                return 0;
        }
        case KEY_DRIVER:
        case KEY_VF_DRIVER: {
                DriverSpec *d = key == KEY_DRIVER ? &c->rule.driver : &c->rule.vf_driver;
                r = driver_spec_parse(value, d);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        KEY_ERROR(
                                c, key, value,
                                "not vfio-pci, host, none or a driver name ([A-Za-z0-9_-], not starting with '-', at most %u)",
                                DESIRED_DRIVER_NAME_MAX);
                else if (key == KEY_DRIVER)
                        c->rule.driver_line = c->line;
                else
                        c->rule.vf_driver_line = c->line;
                return 0;
        }
        case KEY_GROUP: {
                GroupPolicy p = group_policy_from_string(value);
                if (p < 0) {
                        KEY_ERROR(c, key, value, "not whole or strict");
                        return 0;
                }
                c->rule.group = p;
                return 0;
        }
        case KEY_NAME:
                if (!device_name_is_valid(value)) {
                        KEY_ERROR(
                                c, key, value,
                                "not a device name (a letter or digit, then letters, digits, '_', '.', '-'; 2 to "
                                "%u characters)",
                                DEVICE_NAME_MAX);
                        return 0;
                }
                c->rule.name = strdup(value);
                if (!c->rule.name)
                        return -ENOMEM;
                c->rule.name_line = c->line;
                return 0;
        case KEY_ALLOW_CRITICAL:
                if (parse_boolean(value, &c->rule.allow_critical) < 0)
                        KEY_ERROR(c, key, value, "not a boolean (yes/no)");
                return 0;
        case KEY_NUM_VFS:
                if (parse_decimal(value, UINT16_MAX, &c->rule.num_vfs) < 0) {
                        KEY_ERROR(c, key, value, "not a number of VFs (0..65535)");
                        return 0;
                }
                c->rule.has_num_vfs = true;
                c->rule.num_vfs_line = c->line;
                return 0;
        case KEY_MDEV_PARENT:
                if (!mdev_word_is_valid(value, DESIRED_MDEV_NAME_MAX, true)) {
                        KEY_ERROR(
                                c, key, value,
                                "not a parent name as in /sys/class/mdev_bus (at most %u, no '/')",
                                DESIRED_MDEV_NAME_MAX);
                        return 0;
                }
                if (strv_contains(c->rule.mdev.parents, value)) {
                        KEY_ERROR(c, key, value, "parent named twice");
                        return 0;
                }
                if (strv_extend(&c->rule.mdev.parents, value) < 0)
                        return -ENOMEM;
                if (c->rule.mdev.parents_line == 0)
                        c->rule.mdev.parents_line = c->line;
                return 0;
        case KEY_MDEV_TYPE:
        case KEY_VGPU_TYPE: {
                char **t = key == KEY_MDEV_TYPE ? &c->rule.mdev.type : &c->rule.vgpu.type;
                if (!mdev_word_is_valid(value, DESIRED_MDEV_TYPE_MAX, false)) {
                        KEY_ERROR(
                                c, key, value, "not a type id or name (printable, no '/', at most %u)",
                                DESIRED_MDEV_TYPE_MAX);
                        return 0;
                }
                *t = strdup(value);
                if (!*t)
                        return -ENOMEM;
                if (key == KEY_MDEV_TYPE)
                        c->rule.mdev.type_line = c->line;
                else
                        c->rule.vgpu.type_line = c->line;
                return 0;
        }
        case KEY_MDEV_UUID: {
                uuid_t u;
                /* Any case is accepted; the kernel names mdevs in lowercase ("%pUl"), so is the key. */
                if (strlen(value) != MDEV_UUID_STRING_MAX - 1 || uuid_parse(value, u) < 0) {
                        KEY_ERROR(c, key, value, "not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
                        return 0;
                }
                uuid_unparse_lower(u, c->rule.mdev.uuid);
                c->rule.mdev.has_uuid = true;
                c->rule.mdev.uuid_line = c->line;
                return 0;
        }
        case KEY_MDEV_COUNT:
        case KEY_VGPU_COUNT: {
                uint32_t max = key == KEY_MDEV_COUNT ? MDEV_UUIDS_PER_RULE_MAX : UINT16_MAX;
                if (parse_decimal(value, max, &v) < 0 || v == 0) {
                        KEY_ERROR(c, key, value, "not a number of instances (1..%" PRIu32 ")", max);
                        return 0;
                }
                if (key == KEY_MDEV_COUNT) {
                        c->rule.mdev.has_count = true;
                        c->rule.mdev.count = v;
                        c->rule.mdev.count_line = c->line;
                } else {
                        c->rule.vgpu.has_count = true;
                        c->rule.vgpu.count = v;
                        c->rule.vgpu.count_line = c->line;
                }
                return 0;
        }
        case KEY_MDEV_PLACEMENT: {
                MdevPlacement p = mdev_placement_from_string(value);
                if (p < 0) {
                        KEY_ERROR(c, key, value, "not spread or pack");
                        return 0;
                }
                c->rule.mdev.placement = p;
                return 0;
        }
        case KEY_MDEV_ATTRIBUTE: {
                /* NAME=VALUE, as mdevctl's "attrs": written to the mdev's own sysfs directory after create.
                 * The kernel's own files of every device there are refused: "remove" would destroy it. */
                static const char *const reserved[] = {
                        SYSFS_ATTR_MDEV_REMOVE,
                        SYSFS_ATTR_MDEV_TYPE,
                        SYSFS_ATTR_DRIVER,
                        SYSFS_ATTR_IOMMU_GROUP,
                        SYSFS_ATTR_SUBSYSTEM,
                        "uevent",
                        "power",
                        "driver_override",
                };
                const char *eq = strchr(value, '=');
                _cleanup_free_ char *name = NULL;
                MdevAttribute *a;

                if (!eq || eq == value || eq[1] == '\0') {
                        KEY_ERROR(c, key, value, "not NAME=VALUE");
                        return 0;
                }
                name = strndup(value, (size_t)(eq - value));
                if (!name)
                        return -ENOMEM;
                if (!mdev_word_is_valid(name, DESIRED_MDEV_NAME_MAX, true)) {
                        KEY_ERROR(
                                c, key, value, "attribute name is not one file name (at most %u)",
                                DESIRED_MDEV_NAME_MAX);
                        return 0;
                }
                for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                        if (streq(name, reserved[i])) {
                                KEY_ERROR(
                                        c, key, value, "'%s' is the kernel's, not an mdev attribute", name);
                                return 0;
                        }
                a = reallocarray(c->rule.mdev.attrs, c->rule.mdev.n_attrs + 1, sizeof(MdevAttribute));
                if (!a)
                        return -ENOMEM;
                c->rule.mdev.attrs = a;
                a = &a[c->rule.mdev.n_attrs];
                *a = (MdevAttribute){ .name = TAKE_PTR(name), .value = strdup(eq + 1), .line = c->line };
                c->rule.mdev.n_attrs++;
                if (!a->value)
                        return -ENOMEM;
                return 0;
        }
        default:
                assert(false);
                return -EINVAL;
        }
}

static int context_handler(void *userdata, const char *section, const char *name, const char *value) {
        ParseContext *c = userdata;
        int r;

        c->n_assignments++;
        if (!section || !*section) {
                context_error(
                        c, c->line, "%s=%s: assignment outside of a section", ESCAPE_QUOTE(name),
                        ESCAPE_QUOTE(value));
                return 1;
        }
        if (!streq(section, CONF_SECTION_MATCH) && !streq(section, CONF_SECTION_DEVICE) &&
            !streq(section, CONF_SECTION_SRIOV) && !streq(section, CONF_SECTION_MDEV) &&
            !streq(section, CONF_SECTION_VGPU)) {
                c->unknown_section_keys++;
                context_error(
                        c, c->line, "[%s] %s=%s: unknown section", ESCAPE_QUOTE(section), ESCAPE_QUOTE(name),
                        ESCAPE_QUOTE(value));
                return 1;
        }

        for (ConfKey k = 0; k < _KEY_MAX; k++) {
                if (!streq(conf_keys[k].section, section) || !streq(conf_keys[k].name, name))
                        continue;
                if (c->key_line[k] != 0 && !conf_keys[k].repeatable) {
                        /* Also what a continuation line (libinih's multi-line values) looks like. */
                        KEY_ERROR(c, k, value, "assigned twice (first at line %u)", c->key_line[k]);
                        return 1;
                }
                if (c->key_line[k] == 0)
                        c->key_line[k] = c->line;
                if (!value || !*value) {
                        KEY_ERROR(c, k, value, "empty value");
                        return 1;
                }
                r = context_assign(c, k, value);
                if (r < 0)
                        c->r = r;
                return 1;
        }

        context_error(
                c, c->line, "%s=%s: unknown key in [%s]", ESCAPE_QUOTE(name), ESCAPE_QUOTE(value), section);
        return 1;
}

/* Whole-file rules, after every key was seen. */
static void context_validate(ParseContext *c) {
        DesiredRule *rule = &c->rule;

        if (c->key_line[KEY_VF_INDEX] && !c->key_line[KEY_PF])
                context_error(c, c->key_line[KEY_VF_INDEX], "VFIndex= needs PF= in the same [Match]");

        bool any_match = false;
        for (ConfKey k = 0; k < _KEY_MAX; k++)
                if (c->key_line[k] && streq(conf_keys[k].section, CONF_SECTION_MATCH)) {
                        if (rule->match_line == 0 || c->key_line[k] < rule->match_line)
                                rule->match_line = c->key_line[k];
                        any_match = true;
                }
        rule->mdev.present = c->section_line[SECTION_MDEV] != 0;
        rule->mdev.line = c->section_line[SECTION_MDEV];
        rule->vgpu.present = c->section_line[SECTION_VGPU] != 0;
        rule->vgpu.line = c->section_line[SECTION_VGPU];

        if (!any_match && !c->key_line[KEY_MDEV_PARENT])
                context_error(
                        c, c->first_section_line ?: 1,
                        rule->mdev.present
                                ? "[Match] section missing or empty and no [Mdev] Parent=: an [Mdev] rule needs one of them"
                                : "[Match] section missing or empty: a rule needs at least one match key");

        if (!c->key_line[KEY_DRIVER] && !c->key_line[KEY_NAME] && !c->key_line[KEY_NUM_VFS] &&
            !c->key_line[KEY_VF_DRIVER] && !rule->mdev.present && !rule->vgpu.present)
                context_error(
                        c, c->first_section_line ?: 1,
                        "nothing to do: set [Device] Driver= or Name=, [SRIOV] NumVFs=/VFDriver=, [Mdev] or "
                        "[VGPU]");

        if (rule->mdev.present && rule->vgpu.present)
                context_error(
                        c, rule->vgpu.line,
                        "[VGPU]: a rule has [Mdev] (line %u) or [VGPU], not both: put them in two files",
                        rule->mdev.line);
        if (rule->mdev.present && !c->key_line[KEY_MDEV_TYPE])
                context_error(c, rule->mdev.line, "[Mdev]: Type= missing (a type id or name)");
        if (c->key_line[KEY_MDEV_UUID] && c->key_line[KEY_MDEV_COUNT])
                context_error(
                        c, c->key_line[KEY_MDEV_COUNT], "Count= and UUID= (line %u) exclude each other",
                        c->key_line[KEY_MDEV_UUID]);
        if (rule->vgpu.present && !c->key_line[KEY_VGPU_TYPE])
                context_error(c, rule->vgpu.line, "[VGPU]: Type= missing (a type id or name)");
        if (rule->vgpu.present && !any_match)
                context_error(c, rule->vgpu.line, "[VGPU] needs a [Match] selecting the VFs");
        if (!c->key_line[KEY_DRIVER] && c->key_line[KEY_GROUP])
                context_error(c, c->key_line[KEY_GROUP], "Group= needs Driver= in the same [Device]");
        if (!c->key_line[KEY_DRIVER] && c->key_line[KEY_ALLOW_CRITICAL])
                context_error(
                        c, c->key_line[KEY_ALLOW_CRITICAL],
                        "AllowCritical= needs Driver= in the same [Device]");
}

static const char *file_type_name(mode_t mode) {
        switch (mode & S_IFMT) {
        case S_IFDIR:
                return "a directory";
        case S_IFIFO:
                return "a FIFO";
        case S_IFSOCK:
                return "a socket";
        case S_IFCHR:
                return "a character device";
        case S_IFBLK:
                return "a block device";
        default:
                return "not a regular file";
        }
}

/* /dev/null (mem driver, minor 3: Documentation/admin-guide/devices.txt) masks, as in systemd. */
static bool stat_is_dev_null(const struct stat *st) {
        return S_ISCHR(st->st_mode) && st->st_rdev == makedev(1, 3);
}

static int reject_file(DesiredState *s, const char *shown, const char *reason) {
        log_debug("%s:0: %s, rejecting file", shown, reason);
        if (strv_extendf(&s->errors, "%s:0: %s", shown, reason) < 0)
                return -ENOMEM;
        s->n_rejected++;
        return 0;
}

int desired_state_add_file(DesiredState *s, const char *path) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_strv_free_ char **errors = NULL;
        _cleanup_free_ char *shown = NULL, *reason = NULL;
        ParseContext c = {};
        struct stat st, fst;
        int fd, k, r;

        assert(s);
        assert(path);

        /* The name comes from readdir(): any bytes but '/' and NUL. Messages and DesiredRule.path carry
         * it escaped (hostdevd.conf(5), FILE NAMES). */
        shown = escape_string(path, SIZE_MAX);
        if (!shown)
                return -ENOMEM;
        c.path = shown;

        /* Judge the type before opening: opening a FIFO for reading blocks until a writer comes (fifo(7)),
         * and opening a device node may do something. Only regular files and /dev/null are opened. */
        if (stat(path, &st) < 0) {
                r = -errno;
                if (r == -ENOENT && lstat(path, &st) < 0 && errno == ENOENT) {
                        /* Removed since readdir(), as an editor or package manager does: not an error. */
                        log_debug("%s vanished before it was read, ignoring", shown);
                        return 0;
                }
                if (asprintf(&reason, "cannot open: %s", strerror(-r)) < 0)
                        return -ENOMEM;
                return reject_file(s, shown, reason);
        }
        if (stat_is_dev_null(&st)) {
                /* A symlink to /dev/null masks its name, as systemd's null_or_empty(). */
                if (strv_extend(&s->masked, shown) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (!S_ISREG(st.st_mode)) {
                if (asprintf(&reason, "not a regular file (%s)", file_type_name(st.st_mode)) < 0)
                        return -ENOMEM;
                return reject_file(s, shown, reason);
        }

        /* O_NONBLOCK: should it have become a FIFO since stat(), open() returns at once (fifo(7)). */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT) {
                        log_debug("%s vanished before it was read, ignoring", shown);
                        return 0;
                }
                if (asprintf(&reason, "cannot open: %s", strerror(-r)) < 0)
                        return -ENOMEM;
                return reject_file(s, shown, reason);
        }
        f = fdopen(fd, "re");
        if (!f) {
                r = negative_errno();
                close(fd);
                return r;
        }
        if (fstat(fd, &fst) < 0)
                return negative_errno();
        if (!S_ISREG(fst.st_mode)) {
                if (asprintf(&reason, "not a regular file (%s)", file_type_name(fst.st_mode)) < 0)
                        return -ENOMEM;
                return reject_file(s, shown, reason);
        }
        if (fst.st_size == 0) {
                /* Empty: masks its name, as systemd's null_or_empty(). */
                if (strv_extend(&s->masked, shown) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (fst.st_size > (off_t)DESIRED_STATE_FILE_MAX)
                return reject_file(s, shown, "file larger than 64 KiB");
        /* A regular file never blocks; clear the flag all the same so reads behave as documented. */
        k = fcntl(fd, F_GETFL);
        if (k < 0 || fcntl(fd, F_SETFL, k & ~O_NONBLOCK) < 0)
                return negative_errno();

        c.f = f;
        k = ini_parse_stream(context_read_line, &c, context_handler, &c);
        free(c.buf);
        free(c.unknown_section);
        errors = TAKE_PTR(c.errors);
        if (c.r < 0) {
                desired_rule_done(&c.rule);
                return c.r;
        }
        if (k == -2) {
                desired_rule_done(&c.rule);
                return -ENOMEM;
        }
        if (k > 0) {
                /* Our handler never fails: this is a syntax error libinih found on its own (a line that is
                 * neither "[Section]" nor "Key=Value"); it reports the first one only. */
                if (strv_extendf(&errors, "%s:%d: syntax error: expected [Section] or Key=Value", shown, k) <
                    0) {
                        desired_rule_done(&c.rule);
                        return -ENOMEM;
                }
        }
        if (ferror(f)) {
                if (strv_extendf(&errors, "%s:%u: read error", shown, c.line) < 0) {
                        desired_rule_done(&c.rule);
                        return -ENOMEM;
                }
        }

        if (!errors && c.n_assignments == 0 && c.first_section_line == 0) {
                /* Only comments and blank lines: as empty. */
                desired_rule_done(&c.rule);
                return strv_extend(&s->masked, shown) < 0 ? -ENOMEM : 0;
        }

        if (!errors) {
                c.errors = NULL;
                context_validate(&c);
                /* Names are unique across files: the later file (lexically) is the one rejected. */
                for (size_t i = 0; c.rule.name && i < s->n_rules; i++)
                        if (s->rules[i].name && streq(s->rules[i].name, c.rule.name))
                                context_error(
                                        &c, c.rule.name_line, "Name=%s: already used by %s:%u", c.rule.name,
                                        s->rules[i].path, s->rules[i].name_line);
                errors = TAKE_PTR(c.errors);
                if (c.r < 0) {
                        desired_rule_done(&c.rule);
                        return c.r;
                }
        }

        /* Two files naming one mdev UUID: the later file is rejected (one instance, one rule). */
        for (size_t i = 0; !errors && c.rule.mdev.has_uuid && i < s->n_rules; i++) {
                const DesiredRule *o = &s->rules[i];
                if (!o->mdev.has_uuid || !streq(o->mdev.uuid, c.rule.mdev.uuid))
                        continue;
                if (strv_extendf(
                            &errors, "%s:%u: UUID=%s: already named by %s:%u", shown, c.rule.mdev.uuid_line,
                            c.rule.mdev.uuid, o->path, o->mdev.uuid_line) < 0) {
                        desired_rule_done(&c.rule);
                        return -ENOMEM;
                }
        }

        if (errors) {
                desired_rule_done(&c.rule);
                STRV_FOREACH (e, errors) {
                        log_debug("%s, rejecting file", *e);
                        if (strv_extend(&s->errors, *e) < 0)
                                return -ENOMEM;
                }
                s->n_rejected++;
                return 0;
        }

        c.rule.path = TAKE_PTR(shown);
        DesiredRule *n = reallocarray(s->rules, s->n_rules + 1, sizeof(DesiredRule));
        if (!n) {
                desired_rule_done(&c.rule);
                return -ENOMEM;
        }
        s->rules = n;
        s->rules[s->n_rules++] = c.rule;
        return 1;
}

/* ---- layering -------------------------------------------------------------------------------- */

typedef struct DropIn {
        char *name; /* basename */
        char *path;
} DropIn;

static int drop_in_compare(const void *a, const void *b) {
        return strcmp(((const DropIn *)a)->name, ((const DropIn *)b)->name);
}

static void drop_ins_free(DropIn *d, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(d[i].name);
                free(d[i].path);
        }
        free(d);
}

static bool is_conf_name(const char *name) {
        size_t n = strlen(name), k = strlen(HOSTDEVD_CONF_SUFFIX);

        /* Hidden files (editor swap files, ".#foo.conf") are skipped, as systemd does. */
        return name[0] != '.' && n > k && streq(name + n - k, HOSTDEVD_CONF_SUFFIX);
}

int desired_state_load(const char *const *dirs, DesiredState **ret) {
        static const char *const default_dirs[] = {
                HOSTDEVD_CONF_DIR_USR,
                HOSTDEVD_CONF_DIR_ETC,
                HOSTDEVD_CONF_DIR_RUN,
                NULL,
        };
        _cleanup_(desired_state_freep) DesiredState *s = NULL;
        DropIn *drop_ins = NULL;
        size_t n_drop_ins = 0;
        int r = 0;

        assert(ret);

        s = calloc(1, sizeof(DesiredState));
        if (!s)
                return -ENOMEM;

        for (const char *const *dir = dirs ?: default_dirs; *dir; dir++) {
                _cleanup_closedir_ DIR *d = opendir(*dir);
                struct dirent *de;

                if (!d) {
                        if (errno == ENOENT)
                                continue;
                        r = log_debug_errno(errno, "Failed to open '%s': %m", *dir);
                        goto finish;
                }
                errno = 0;
                while ((de = readdir(d))) {
                        size_t i;

                        if (!is_conf_name(de->d_name))
                                continue;
                        _cleanup_free_ char *path = NULL;
                        if (asprintf(&path, "%s/%s", *dir, de->d_name) < 0) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        /* Later directories replace same-named files of earlier ones. */
                        for (i = 0; i < n_drop_ins; i++)
                                if (streq(drop_ins[i].name, de->d_name))
                                        break;
                        if (i < n_drop_ins) {
                                free(drop_ins[i].path);
                                drop_ins[i].path = TAKE_PTR(path);
                                continue;
                        }
                        DropIn *n = reallocarray(drop_ins, n_drop_ins + 1, sizeof(DropIn));
                        if (!n) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        drop_ins = n;
                        drop_ins[n_drop_ins].name = strdup(de->d_name);
                        if (!drop_ins[n_drop_ins].name) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        drop_ins[n_drop_ins++].path = TAKE_PTR(path);
                        errno = 0;
                }
                if (errno != 0) {
                        r = log_debug_errno(errno, "Failed to read '%s': %m", *dir);
                        goto finish;
                }
        }

        if (n_drop_ins > 0)
                qsort(drop_ins, n_drop_ins, sizeof(DropIn), drop_in_compare);
        for (size_t i = 0; i < n_drop_ins; i++) {
                r = desired_state_add_file(s, drop_ins[i].path);
                if (r == -ENOMEM)
                        goto finish;
                /* Unreadable files are already in ->errors. */
                r = 0;
        }

        *ret = TAKE_PTR(s);
finish:
        drop_ins_free(drop_ins, n_drop_ins);
        return r;
}

/* ---- resolution ------------------------------------------------------------------------------ */

static int device_ptr_compare(const void *a, const void *b) {
        return strcmp((*(const PciDevice *const *)a)->address, (*(const PciDevice *const *)b)->address);
}

static const PciDevice *find_device(const PciDevice **sorted, size_t n, const char *address) {
        PciDevice key = {};
        const PciDevice *k = &key, **found;

        if (strlen(address) >= sizeof(key.address))
                return NULL;
        strcpy(key.address, address);
        found = bsearch(&k, sorted, n, sizeof(PciDevice *), device_ptr_compare);
        return found ? *found : NULL;
}

static char *rule_source(const DesiredRule *r, unsigned line) {
        char *s;
        return asprintf(&s, "%s:%u", r->path, line) < 0 ? NULL : s;
}

static bool rule_device_outcome_equal(const DesiredRule *a, const DesiredRule *b) {
        return driver_spec_equal(&a->driver, &b->driver) && a->group == b->group &&
                a->allow_critical == b->allow_critical;
}

static int format_device_outcome(const DesiredRule *r, char **ret) {
        return asprintf(
                       ret, "Driver=%s%s%s (%s:%u)", driver_spec_to_string(&r->driver),
                       r->group == GROUP_POLICY_WHOLE ? " Group=whole" : "",
                       r->allow_critical ? " AllowCritical=yes" : "", r->path, r->driver_line) < 0
                ? -ENOMEM
                : 0;
}

static int add_conflict(char ***conflicts, const char *address, const char *winner, const char *loser) {
        log_debug("%s: %s overrides %s", address, winner, loser);
        return strv_extendf(conflicts, "%s: %s overrides %s", address, winner, loser);
}

static void desired_device_done(DesiredDevice *d) {
        driver_spec_done(&d->driver);
        free(d->source);
}

static void desired_pf_done(DesiredPf *p) {
        free(p->num_vfs_source);
        driver_spec_done(&p->vf_driver);
        free(p->vf_driver_source);
}

DesiredResolution *desired_resolution_free(DesiredResolution *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_devices; i++)
                desired_device_done(&r->devices[i]);
        free(r->devices);
        for (size_t i = 0; i < r->n_pfs; i++)
                desired_pf_done(&r->pfs[i]);
        free(r->pfs);
        strv_free(r->conflicts);
        for (size_t i = 0; i < r->n_mdevs; i++) {
                free(r->mdevs[i].parent);
                free(r->mdevs[i].type_id);
                free(r->mdevs[i].source);
        }
        free(r->mdevs);
        for (size_t i = 0; i < r->n_vgpus; i++) {
                free(r->vgpus[i].type_name);
                free(r->vgpus[i].source);
        }
        free(r->vgpus);
        strv_free(r->errors);
        strv_free(r->held);
        strv_free(r->held_by);
        free(r);
        return NULL;
}

static int desired_device_compare(const void *a, const void *b) {
        return strcmp(((const DesiredDevice *)a)->address, ((const DesiredDevice *)b)->address);
}

static int desired_pf_compare(const void *a, const void *b) {
        return strcmp(((const DesiredPf *)a)->address, ((const DesiredPf *)b)->address);
}

const DesiredDevice *desired_resolution_get_device(const DesiredResolution *r, const char *address) {
        DesiredDevice key = {};

        if (!r || r->n_devices == 0 || strlen(address) >= sizeof(key.address))
                return NULL;
        strcpy(key.address, address);
        return bsearch(&key, r->devices, r->n_devices, sizeof(DesiredDevice), desired_device_compare);
}

const DesiredPf *desired_resolution_get_pf(const DesiredResolution *r, const char *address) {
        DesiredPf key = {};

        if (!r || r->n_pfs == 0 || strlen(address) >= sizeof(key.address))
                return NULL;
        strcpy(key.address, address);
        return bsearch(&key, r->pfs, r->n_pfs, sizeof(DesiredPf), desired_pf_compare);
}

/* Last rule (lexically latest file) with Driver= matching |d|, reporting earlier ones that differ. */
static int resolve_driver(
        const DesiredState *s, const PciDevice *d, char ***conflicts, const DesiredRule **ret) {
        const DesiredRule *winner = NULL;
        int r;

        for (size_t i = s->n_rules; i > 0; i--) {
                const DesiredRule *rule = &s->rules[i - 1];

                if (rule->driver.kind == DRIVER_KIND_UNSET || !device_match_test(&rule->match, d))
                        continue;
                if (!winner) {
                        winner = rule;
                        continue;
                }
                if (rule_device_outcome_equal(winner, rule))
                        continue;
                _cleanup_free_ char *w = NULL, *l = NULL;
                if (format_device_outcome(winner, &w) < 0 || format_device_outcome(rule, &l) < 0)
                        return -ENOMEM;
                r = add_conflict(conflicts, d->address, w, l);
                if (r < 0)
                        return r;
        }
        *ret = winner;
        return 0;
}

/* Last rule with VFDriver= matching |pf|, reporting earlier ones that differ. */
static int resolve_vf_driver(
        const DesiredState *s, const PciDevice *pf, char ***conflicts, const DesiredRule **ret) {
        const DesiredRule *winner = NULL;
        int r;

        for (size_t i = s->n_rules; i > 0; i--) {
                const DesiredRule *rule = &s->rules[i - 1];

                if (rule->vf_driver.kind == DRIVER_KIND_UNSET || !device_match_test(&rule->match, pf))
                        continue;
                if (!winner) {
                        winner = rule;
                        continue;
                }
                if (driver_spec_equal(&winner->vf_driver, &rule->vf_driver))
                        continue;
                r = strv_extendf(
                        conflicts, "%s: VFDriver=%s (%s:%u) overrides VFDriver=%s (%s:%u)", pf->address,
                        driver_spec_to_string(&winner->vf_driver), winner->path, winner->vf_driver_line,
                        driver_spec_to_string(&rule->vf_driver), rule->path, rule->vf_driver_line);
                if (r < 0)
                        return r;
        }
        *ret = winner;
        return 0;
}

static int resolve_num_vfs(
        const DesiredState *s, const PciDevice *pf, char ***conflicts, const DesiredRule **ret) {
        const DesiredRule *winner = NULL;
        int r;

        for (size_t i = s->n_rules; i > 0; i--) {
                const DesiredRule *rule = &s->rules[i - 1];

                if (!rule->has_num_vfs || !device_match_test(&rule->match, pf))
                        continue;
                if (!winner) {
                        winner = rule;
                        continue;
                }
                if (winner->num_vfs == rule->num_vfs)
                        continue;
                r = strv_extendf(
                        conflicts, "%s: NumVFs=%" PRIu32 " (%s:%u) overrides NumVFs=%" PRIu32 " (%s:%u)",
                        pf->address, winner->num_vfs, winner->path, winner->num_vfs_line, rule->num_vfs,
                        rule->path, rule->num_vfs_line);
                if (r < 0)
                        return r;
        }
        *ret = winner;
        return 0;
}

int desired_state_resolve_devices(
        const DesiredState *s, const PciDevice *const *devices, size_t n_devices, DesiredResolution **ret) {
        _cleanup_(desired_resolution_freep) DesiredResolution *res = NULL;
        _cleanup_free_ const PciDevice **sorted = NULL;
        int r;

        assert(s);
        assert(devices || n_devices == 0);
        assert(ret);

        res = calloc(1, sizeof(DesiredResolution));
        if (!res)
                return -ENOMEM;
        if (n_devices > 0) {
                sorted = reallocarray(NULL, n_devices, sizeof(PciDevice *));
                res->devices = reallocarray(NULL, n_devices, sizeof(DesiredDevice));
                res->pfs = reallocarray(NULL, n_devices, sizeof(DesiredPf));
                if (!sorted || !res->devices || !res->pfs)
                        return -ENOMEM;
                memcpy(sorted, devices, n_devices * sizeof(PciDevice *));
                qsort(sorted, n_devices, sizeof(PciDevice *), device_ptr_compare);
        }

        for (size_t i = 0; i < n_devices; i++) {
                const PciDevice *d = sorted[i];
                const DesiredRule *direct = NULL, *via_pf = NULL, *num_vfs = NULL, *vf_driver = NULL;

                r = resolve_driver(s, d, &res->conflicts, &direct);
                if (r < 0)
                        return r;
                if (d->sriov_role == SRIOV_ROLE_VF && d->physfn) {
                        const PciDevice *pf = find_device(sorted, n_devices, d->physfn);
                        /* The PF's VFDriver= conflicts are reported once, on the PF, below. */
                        _cleanup_strv_free_ char **ignored = NULL;
                        if (pf) {
                                r = resolve_vf_driver(s, pf, &ignored, &via_pf);
                                if (r < 0)
                                        return r;
                        }
                }
                if (direct && via_pf && !driver_spec_equal(&direct->driver, &via_pf->vf_driver)) {
                        r = strv_extendf(
                                &res->conflicts,
                                "%s: Driver=%s (%s:%u) overrides VFDriver=%s (%s:%u) of PF %s", d->address,
                                driver_spec_to_string(&direct->driver), direct->path, direct->driver_line,
                                driver_spec_to_string(&via_pf->vf_driver), via_pf->path,
                                via_pf->vf_driver_line, d->physfn);
                        if (r < 0)
                                return r;
                }
                if (direct || via_pf) {
                        DesiredDevice *dd = &res->devices[res->n_devices];
                        *dd = (DesiredDevice){};
                        strcpy(dd->address, d->address);
                        if (direct) {
                                r = driver_spec_copy(&direct->driver, &dd->driver);
                                dd->group = direct->group;
                                dd->allow_critical = direct->allow_critical;
                                dd->source = rule_source(direct, direct->driver_line);
                        } else {
                                r = driver_spec_copy(&via_pf->vf_driver, &dd->driver);
                                dd->group = GROUP_POLICY_STRICT;
                                dd->from_vf_driver = true;
                                dd->source = rule_source(via_pf, via_pf->vf_driver_line);
                        }
                        res->n_devices++;
                        if (r < 0 || !dd->source)
                                return -ENOMEM;
                }

                r = resolve_num_vfs(s, d, &res->conflicts, &num_vfs);
                if (r < 0)
                        return r;
                r = resolve_vf_driver(s, d, &res->conflicts, &vf_driver);
                if (r < 0)
                        return r;
                if (num_vfs || vf_driver) {
                        DesiredPf *p = &res->pfs[res->n_pfs++];
                        *p = (DesiredPf){};
                        strcpy(p->address, d->address);
                        if (num_vfs) {
                                p->has_num_vfs = true;
                                p->num_vfs = num_vfs->num_vfs;
                                p->num_vfs_source = rule_source(num_vfs, num_vfs->num_vfs_line);
                                if (!p->num_vfs_source)
                                        return -ENOMEM;
                        }
                        if (vf_driver) {
                                if (driver_spec_copy(&vf_driver->vf_driver, &p->vf_driver) < 0)
                                        return -ENOMEM;
                                p->vf_driver_source = rule_source(vf_driver, vf_driver->vf_driver_line);
                                if (!p->vf_driver_source)
                                        return -ENOMEM;
                        }
                }
        }

        /* Built in address order already. */
        *ret = TAKE_PTR(res);
        return 0;
}

int desired_state_resolve(const DesiredState *s, const Model *m, DesiredResolution **ret) {
        const PciDevice *const *devices;
        size_t n;

        assert(m);
        devices = model_get_devices(m, &n);
        return desired_state_resolve_devices(s, devices, n, ret);
}

/* ---- mdevs and vendor vGPUs (issue 14) ------------------------------------------------------ */

static bool streq_ptr(const char *a, const char *b) {
        return a && b ? streq(a, b) : a == b;
}

/* "a, b, c" (a new string; "" for none), NULL on OOM. */
static char *strv_join_comma(char *const *l) {
        _cleanup_free_ char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; l && l[i]; i++)
                fprintf(f, "%s%s", i > 0 ? ", " : "", l[i]);
        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(out);
}

static const PciDevice *input_find_device(const MdevResolveInput *in, const char *address) {
        for (size_t i = 0; address && i < in->n_devices; i++)
                if (streq(in->devices[i]->address, address))
                        return in->devices[i];
        return NULL;
}

static const Mdev *input_find_mdev(const MdevResolveInput *in, const char *uuid) {
        for (size_t i = 0; i < in->n_mdevs; i++)
                if (streq(in->mdevs[i]->uuid, uuid))
                        return in->mdevs[i];
        return NULL;
}

/* A type of |p| whose id is |type|, else whose name is; NULL when none. */
static const MdevType *parent_find_type(const MdevParent *p, const char *type) {
        for (size_t i = 0; i < p->n_types; i++)
                if (streq(p->types[i].id, type))
                        return &p->types[i];
        for (size_t i = 0; i < p->n_types; i++)
                if (p->types[i].name && streq(p->types[i].name, type))
                        return &p->types[i];
        return NULL;
}

static bool rule_selects_parent(const DesiredRule *rule, const MdevParent *p, const MdevResolveInput *in) {
        if (rule->mdev.parents && !strv_contains(rule->mdev.parents, p->name))
                return false;
        if (!device_match_is_empty(&rule->match)) {
                const PciDevice *d = p->is_pci ? input_find_device(in, p->name) : NULL;
                if (!d || !device_match_test(&rule->match, d))
                        return false;
        }
        return true;
}

/* What the rules resolved so far put on a parent: for available_instances and one type per GPU. */
typedef struct ParentUse {
        const MdevParent *parent;
        const PciDevice *device; /* NULL: not PCI */
        const char *type_id; /* type placed by an earlier rule (one type per GPU); borrowed */
        uint32_t placed; /* new instances earlier rules placed here */
} ParentUse;

/* The basename of a rule's path: the key of its stable UUIDs (mdev-uuids.h). */
static const char *rule_key(const DesiredRule *rule) {
        const char *slash = strrchr(rule->path, '/');
        return slash ? slash + 1 : rule->path;
}

/* "FILE:LINE: message" into res->errors, |line| that of the section's Type= that failed ([Mdev] or
 * [VGPU]: a rule may, in principle, carry both). */
_printf_(4, 5) static int add_rule_error(
        DesiredResolution *res, const DesiredRule *rule, unsigned line, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(&msg, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        log_debug("%s:%u: %s", rule->path, line, msg);
        return strv_extendf(&res->errors, "%s:%u: %s", rule->path, line, msg);
}

static DesiredMdev *add_desired_mdev(
        DesiredResolution *res, const DesiredRule *rule, const char *uuid, const char *parent,
        const char *type_id) {
        DesiredMdev *a = reallocarray(res->mdevs, res->n_mdevs + 1, sizeof(DesiredMdev));
        if (!a)
                return NULL;
        res->mdevs = a;
        a = &a[res->n_mdevs++];
        *a = (DesiredMdev){
                .attrs = rule->mdev.attrs,
                .n_attrs = rule->mdev.n_attrs,
                .named = rule->mdev.has_uuid,
        };
        strcpy(a->uuid, uuid);
        if (strdup_null(parent, &a->parent) < 0 || strdup_null(type_id, &a->type_id) < 0 ||
            !(a->source = rule_source(rule, rule->mdev.type_line)))
                return NULL;
        return a;
}

/* Whether a candidate parent carries an mdev hostdevd owns that no rule keeps (|kept|: every UUID the
 * rules name or use): the plan removes it, which may free what the placement lacks. */
static bool mdev_rule_can_reclaim(
        const MdevResolveInput *in, char *const *kept, const PlacementCandidate *cands, size_t n_cands) {
        for (size_t i = 0; i < in->n_mdevs; i++) {
                const Mdev *m = in->mdevs[i];

                if (!m->parent || !strv_contains(in->owned_mdevs, m->uuid) || strv_contains(kept, m->uuid))
                        continue;
                for (size_t c = 0; c < n_cands; c++)
                        if (streq(cands[c].name, m->parent))
                                return true;
        }
        return false;
}

static int resolve_mdev_rule(
        const DesiredState *s, const DesiredRule *rule, const MdevResolveInput *in, MdevUuids *uuids,
        char *const *kept, ParentUse *use, size_t n_use, DesiredResolution *res) {
        _cleanup_free_ PlacementCandidate *cands = NULL;
        _cleanup_free_ size_t *cand_use = NULL, *placement = NULL;
        _cleanup_free_ const char **cand_type = NULL;
        _cleanup_strv_free_ char **avoid = NULL, **fresh = NULL, **present = NULL;
        char *const *list = NULL;
        char one[1][MDEV_UUID_STRING_MAX];
        char *one_list[2] = { one[0], NULL };
        size_t n_cands = 0, n_selected = 0, n_fresh;
        uint32_t count;
        int r;

        /* The candidates: selected parents that have the type. */
        cands = calloc(n_use + 1, sizeof(PlacementCandidate));
        cand_use = calloc(n_use + 1, sizeof(size_t));
        cand_type = calloc(n_use + 1, sizeof(char *));
        if (!cands || !cand_use || !cand_type)
                return -ENOMEM;
        for (size_t i = 0; i < n_use; i++) {
                const MdevType *t;

                if (!rule_selects_parent(rule, use[i].parent, in))
                        continue;
                n_selected++;
                if (strv_extend(&present, use[i].parent->name) < 0)
                        return -ENOMEM;
                t = parent_find_type(use[i].parent, rule->mdev.type);
                if (!t)
                        continue;
                cand_use[n_cands] = i;
                cand_type[n_cands] = t->id;
                cands[n_cands] = (PlacementCandidate){
                        .name = use[i].parent->name,
                        .available = t->available_instances > use[i].placed
                                ? t->available_instances - use[i].placed
                                : 0,
                };
                if (mdev_parent_one_type_per_gpu(use[i].device)) {
                        /* Another type active there (and not ours to drop) or placed by an earlier rule. */
                        if (use[i].type_id && !streq(use[i].type_id, t->id))
                                cands[n_cands].blocked = true;
                        for (size_t k = 0; k < in->n_mdevs; k++) {
                                const Mdev *m = in->mdevs[k];
                                if (m->parent && streq(m->parent, use[i].parent->name) && m->type_id &&
                                    !streq(m->type_id, t->id))
                                        cands[n_cands].blocked = true;
                        }
                }
                n_cands++;
        }
        if (n_selected > 0 && n_cands == 0) {
                _cleanup_free_ char *names = strv_join_comma(present);
                return add_rule_error(
                        res, rule, rule->mdev.type_line, "Type=%s: no such type id or name on %s",
                        ESCAPE_QUOTE(rule->mdev.type), strna(names));
        }

        /* The instances. */
        if (rule->mdev.has_uuid) {
                strcpy(one[0], rule->mdev.uuid);
                list = one_list;
                count = 1;
        } else {
                count = rule->mdev.has_count ? rule->mdev.count : 1;
                for (size_t i = 0; i < in->n_mdevs; i++)
                        if (strv_extend(&avoid, in->mdevs[i]->uuid) < 0)
                                return -ENOMEM;
                for (size_t i = 0; i < s->n_rules; i++)
                        if (s->rules[i].mdev.has_uuid && strv_extend(&avoid, s->rules[i].mdev.uuid) < 0)
                                return -ENOMEM;
                r = mdev_uuids_get(uuids, rule_key(rule), count, avoid, &list);
                if (r < 0)
                        return r;
        }

        /* Adopt what exists with the type on a candidate; the rest is placed anew. */
        for (uint32_t k = 0; k < count; k++) {
                const Mdev *m = input_find_mdev(in, list[k]);
                const DesiredMdev *other = desired_resolution_get_mdev(res, list[k]);
                size_t c;

                if (other)
                        return add_rule_error(
                                res, rule, rule->mdev.type_line, "UUID %s: already wanted by %s", list[k],
                                other->source);
                if (m) {
                        for (c = 0; c < n_cands; c++)
                                if (m->parent && streq(m->parent, cands[c].name) && m->type_id &&
                                    streq(m->type_id, cand_type[c]))
                                        break;
                        if (c < n_cands) {
                                cands[c].existing++;
                                continue;
                        }
                        if (rule->mdev.has_uuid && !strv_contains(in->owned_mdevs, m->uuid))
                                return add_rule_error(
                                        res, rule, rule->mdev.type_line,
                                        "UUID=%s: collides with an mdev hostdevd did not create (parent %s, type %s), "
                                        "which it never touches",
                                        m->uuid, strna(m->parent), strna(m->type_id));
                }
                if (strv_extend(&fresh, list[k]) < 0)
                        return -ENOMEM;
        }
        n_fresh = strv_length(fresh);

        if (n_cands == 0) {
                /* No parent present yet: the instances wait for one (a late driver, a VF to come). */
                for (uint32_t k = 0; k < count; k++)
                        if (!add_desired_mdev(res, rule, list[k], NULL, rule->mdev.type))
                                return -ENOMEM;
                return 0;
        }

        placement = calloc(n_fresh + 1, sizeof(size_t));
        if (!placement)
                return -ENOMEM;
        r = mdev_place(rule->mdev.placement, cands, n_cands, (uint32_t)n_fresh, placement);
        if (r == -ENOSPC && mdev_rule_can_reclaim(in, kept, cands, n_cands)) {
                /* Instances hostdevd made that no rule so far keeps take the room (a Type= change on one
                 * GPU: NVIDIA offers no instance of the new type while the old one is active): they are
                 * removed in this plan, and the new ones wait for the next. */
                for (uint32_t k = 0; k < count; k++)
                        if (!add_desired_mdev(res, rule, list[k], NULL, rule->mdev.type))
                                return -ENOMEM;
                return 0;
        }
        if (r == -ENOSPC) {
                uint32_t cap = mdev_placement_capacity(cands, n_cands);
                if (rule->mdev.has_uuid)
                        return add_rule_error(
                                res, rule, rule->mdev.type_line,
                                "UUID=%s: the matching parents can take %" PRIu32 " more of type %s",
                                rule->mdev.uuid, cap, ESCAPE_QUOTE(rule->mdev.type));
                return add_rule_error(
                        res, rule, rule->mdev.type_line,
                        "Count=%" PRIu32 ": the matching parents can take %" PRIu32
                        " more of type %s, not %zu",
                        count, cap, ESCAPE_QUOTE(rule->mdev.type), n_fresh);
        }
        if (r < 0)
                return r;

        /* Commit: adopted ones where they are, new ones where placed. */
        for (uint32_t k = 0; k < count; k++) {
                const Mdev *m = input_find_mdev(in, list[k]);
                bool is_fresh = strv_contains(fresh, list[k]);

                if (!is_fresh) {
                        if (!add_desired_mdev(res, rule, list[k], m->parent, m->type_id))
                                return -ENOMEM;
                        for (size_t c = 0; c < n_cands; c++)
                                if (streq(cands[c].name, m->parent))
                                        use[cand_use[c]].type_id = cand_type[c];
                }
        }
        for (size_t k = 0; k < n_fresh; k++) {
                size_t c = placement[k];
                ParentUse *u = &use[cand_use[c]];

                if (!add_desired_mdev(res, rule, fresh[k], u->parent->name, cand_type[c]))
                        return -ENOMEM;
                u->placed++;
                u->type_id = cand_type[c];
        }
        return 0;
}

/* Whether an [Mdev] rule could select the parent |name|, present or not: Parent= (when given) names
 * it and [Match] (when given) selects the PCI function of that name. */
static bool mdev_rule_could_select(const DesiredRule *rule, const char *name, const MdevResolveInput *in) {
        if (rule->mdev.parents && !strv_contains(rule->mdev.parents, name))
                return false;
        if (!device_match_is_empty(&rule->match)) {
                const PciDevice *d = input_find_device(in, name);
                if (!d || !device_match_test(&rule->match, d))
                        return false;
        }
        return true;
}

static int hold(DesiredResolution *res, const char *name, const char *source) {
        if (!name || strv_contains(res->held, name))
                return 0;
        if (strv_extend(&res->held, name) < 0 || strv_extend(&res->held_by, source) < 0)
                return -ENOMEM;
        return 0;
}

/* |rule| could not be resolved: hold removals on every parent (or, [VGPU], VF) it could select. */
static int hold_rule(
        DesiredResolution *res, const DesiredRule *rule, bool vgpu, const MdevResolveInput *in) {
        _cleanup_free_ char *source = rule_source(rule, vgpu ? rule->vgpu.type_line : rule->mdev.type_line);
        int r = 0;

        if (!source)
                return -ENOMEM;
        if (vgpu) {
                for (size_t i = 0; r >= 0 && i < in->n_vgpu_vfs; i++) {
                        const PciDevice *d = input_find_device(in, in->vgpu_vfs[i]->address);
                        if (d && device_match_test(&rule->match, d))
                                r = hold(res, d->address, source);
                }
                return r;
        }
        STRV_FOREACH (p, rule->mdev.parents)
                if (r >= 0 && mdev_rule_could_select(rule, *p, in))
                        r = hold(res, *p, source);
        for (size_t i = 0; r >= 0 && i < in->n_parents; i++)
                if (mdev_rule_could_select(rule, in->parents[i]->name, in))
                        r = hold(res, in->parents[i]->name, source);
        for (size_t i = 0; r >= 0 && i < in->n_mdevs; i++)
                if (in->mdevs[i]->parent && mdev_rule_could_select(rule, in->mdevs[i]->parent, in))
                        r = hold(res, in->mdevs[i]->parent, source);
        return r;
}

const char *desired_resolution_held_by(const DesiredResolution *r, const char *name) {
        for (size_t i = 0; r && name && r->held && r->held[i]; i++)
                if (streq(r->held[i], name))
                        return r->held_by[i];
        return NULL;
}

static int desired_mdev_compare(const void *a, const void *b) {
        return strcmp(((const DesiredMdev *)a)->uuid, ((const DesiredMdev *)b)->uuid);
}

static int desired_vgpu_compare(const void *a, const void *b) {
        return strcmp(((const DesiredVgpu *)a)->address, ((const DesiredVgpu *)b)->address);
}

const DesiredMdev *desired_resolution_get_mdev(const DesiredResolution *r, const char *uuid) {
        /* Linear: also used while the array is being built (unsorted). */
        for (size_t i = 0; r && uuid && i < r->n_mdevs; i++)
                if (streq(r->mdevs[i].uuid, uuid))
                        return &r->mdevs[i];
        return NULL;
}

const DesiredVgpu *desired_resolution_get_vgpu(const DesiredResolution *r, const char *address) {
        for (size_t i = 0; r && address && i < r->n_vgpus; i++)
                if (streq(r->vgpus[i].address, address))
                        return &r->vgpus[i];
        return NULL;
}

static int vgpu_vf_ptr_compare(const void *a, const void *b) {
        return strcmp((*(const VgpuVf *const *)a)->address, (*(const VgpuVf *const *)b)->address);
}

static int resolve_vgpu_rule(const DesiredRule *rule, const MdevResolveInput *in, DesiredResolution *res) {
        _cleanup_free_ const VgpuVf **vfs = NULL;
        size_t n = 0;
        uint32_t id = 0;
        const char *name = NULL;
        int64_t v;

        vfs = calloc(in->n_vgpu_vfs + 1, sizeof(VgpuVf *));
        if (!vfs)
                return -ENOMEM;
        for (size_t i = 0; i < in->n_vgpu_vfs; i++) {
                const PciDevice *d = input_find_device(in, in->vgpu_vfs[i]->address);
                if (d && device_match_test(&rule->match, d))
                        vfs[n++] = in->vgpu_vfs[i];
        }
        if (n == 0)
                return 0; /* no VF yet: a NumVFs= rule or a late driver brings them */

        /* Type=: a numeric id, else a name one of the VFs lists. */
        if (sysfs_parse_int(rule->vgpu.type, 1, UINT32_MAX, &v) >= 0)
                id = (uint32_t)v;
        for (size_t i = 0; i < n && (id == 0 || !name); i++) {
                const VgpuType *t = vgpu_vf_find_type(vfs[i], id, id == 0 ? rule->vgpu.type : NULL);
                if (t) {
                        id = t->id;
                        name = t->name;
                }
        }
        /* No VF lists it now (they carry it, or the GPU has no room left): what they listed before. */
        for (size_t i = 0; i < n && (id == 0 || !name); i++)
                if (id == 0) {
                        id = vgpu_type_names_find(in->vgpu_type_names, vfs[i]->physfn, rule->vgpu.type);
                        if (id != 0)
                                name = rule->vgpu.type;
                } else
                        name = vgpu_type_names_get(in->vgpu_type_names, vfs[i]->physfn, id);
        if (id == 0)
                return add_rule_error(
                        res, rule, rule->vgpu.type_line,
                        "Type=%s: no matching VF lists this vGPU type in %s/%s (use its numeric id)",
                        ESCAPE_QUOTE(rule->vgpu.type), SYSFS_ATTR_NVIDIA_DIR,
                        SYSFS_ATTR_NVIDIA_CREATABLE_VGPU_TYPES);

        qsort(vfs, n, sizeof(VgpuVf *), vgpu_vf_ptr_compare);
        for (size_t i = 0; i < n; i++) {
                const VgpuVf *vf = vfs[i];
                const DesiredVgpu *later = desired_resolution_get_vgpu(res, vf->address);

                if (later) {
                        /* A later file already decided this VF. */
                        if (later->type_id != id &&
                            strv_extendf(
                                    &res->conflicts,
                                    "%s: [VGPU] Type=%" PRIu32 " (%s) overrides Type=%" PRIu32 " (%s:%u)",
                                    vf->address, later->type_id, later->source, id, rule->path,
                                    rule->vgpu.type_line) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (rule->vgpu.has_count) {
                        /* Per PF: VFs that carry the type already first, then address order. */
                        size_t rank = 0;
                        for (size_t k = 0; k < n; k++) {
                                const VgpuVf *o = vfs[k];
                                if (o == vf || !streq_ptr(o->physfn, vf->physfn))
                                        continue;
                                bool o_has = o->current_type == id, vf_has = vf->current_type == id;
                                if ((o_has && !vf_has) ||
                                    (o_has == vf_has && strcmp(o->address, vf->address) < 0))
                                        rank++;
                        }
                        if (rank >= rule->vgpu.count)
                                continue;
                }
                DesiredVgpu *a = reallocarray(res->vgpus, res->n_vgpus + 1, sizeof(DesiredVgpu));
                if (!a)
                        return -ENOMEM;
                res->vgpus = a;
                a = &a[res->n_vgpus++];
                *a = (DesiredVgpu){ .type_id = id };
                strcpy(a->address, vf->address);
                if (strdup_null(name, &a->type_name) < 0 ||
                    !(a->source = rule_source(rule, rule->vgpu.type_line)))
                        return -ENOMEM;
        }
        return 0;
}

int desired_state_resolve_mdevs(
        const DesiredState *s, const MdevResolveInput *in, MdevUuids *uuids, DesiredResolution *res) {
        _cleanup_free_ ParentUse *use = NULL;
        _cleanup_strv_free_ char **avoid = NULL, **kept = NULL;
        int r;

        assert(s);
        assert(in);
        assert(uuids);
        assert(res);
        assert(res->n_mdevs == 0 && res->n_vgpus == 0);

        use = calloc(in->n_parents + 1, sizeof(ParentUse));
        if (!use)
                return -ENOMEM;
        for (size_t i = 0; i < in->n_parents; i++)
                use[i] = (ParentUse){
                        .parent = in->parents[i],
                        .device =
                                in->parents[i]->is_pci ? input_find_device(in, in->parents[i]->name) : NULL,
                };

        /* Every UUID some rule keeps: UUID=, and the first Count= of each Count= rule's list (picked here
         * if new, with what resolve_mdev_rule() avoids too). */
        for (size_t i = 0; i < in->n_mdevs; i++)
                if (strv_extend(&avoid, in->mdevs[i]->uuid) < 0)
                        return -ENOMEM;
        for (size_t i = 0; i < s->n_rules; i++)
                if (s->rules[i].mdev.has_uuid &&
                    (strv_extend(&avoid, s->rules[i].mdev.uuid) < 0 ||
                     strv_extend(&kept, s->rules[i].mdev.uuid) < 0))
                        return -ENOMEM;
        for (size_t i = 0; i < s->n_rules; i++) {
                const DesiredRule *rule = &s->rules[i];
                char *const *list;
                uint32_t count = rule->mdev.has_count ? rule->mdev.count : 1;

                if (!rule->mdev.present || rule->mdev.has_uuid)
                        continue;
                r = mdev_uuids_get(uuids, rule_key(rule), count, avoid, &list);
                if (r < 0)
                        return r;
                for (uint32_t k = 0; k < count; k++)
                        if (strv_extend(&kept, list[k]) < 0)
                                return -ENOMEM;
        }

        for (size_t i = 0; i < s->n_rules; i++) {
                const DesiredRule *rule = &s->rules[i];
                size_t n_errors = strv_length(res->errors);

                if (!rule->mdev.present)
                        continue;
                r = resolve_mdev_rule(s, rule, in, uuids, kept, use, in->n_parents, res);
                if (r >= 0 && strv_length(res->errors) > n_errors)
                        r = hold_rule(res, rule, false, in);
                if (r < 0)
                        return r;
        }
        /* [VGPU]: the lexically later file decides a VF (as for Driver=). */
        for (size_t i = s->n_rules; i > 0; i--) {
                const DesiredRule *rule = &s->rules[i - 1];
                size_t n_errors = strv_length(res->errors);

                if (!rule->vgpu.present)
                        continue;
                r = resolve_vgpu_rule(rule, in, res);
                if (r >= 0 && strv_length(res->errors) > n_errors)
                        r = hold_rule(res, rule, true, in);
                if (r < 0)
                        return r;
        }

        if (res->n_mdevs > 1)
                qsort(res->mdevs, res->n_mdevs, sizeof(DesiredMdev), desired_mdev_compare);
        if (res->n_vgpus > 1)
                qsort(res->vgpus, res->n_vgpus, sizeof(DesiredVgpu), desired_vgpu_compare);
        return 0;
}

bool device_name_is_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n < 2 || n > DEVICE_NAME_MAX || !isalnum((unsigned char)s[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
                        return false;
        return true;
}

const char *desired_state_device_name(const DesiredState *s, const PciDevice *d) {
        /* Names are unique, but two named rules may match one function: the later file's wins, as for
         * every other setting. */
        for (size_t i = s ? s->n_rules : 0; i > 0; i--) {
                const DesiredRule *rule = &s->rules[i - 1];

                if (rule->name && device_match_test(&rule->match, d))
                        return rule->name;
        }
        return NULL;
}

int desired_state_find_name(
        const DesiredState *s, const PciDevice *const *devices, size_t n_devices, const char *name,
        const PciDevice **ret) {
        const PciDevice *found = NULL;
        const DesiredRule *rule = NULL;

        for (size_t i = 0; s && i < s->n_rules; i++)
                if (s->rules[i].name && streq(s->rules[i].name, name))
                        rule = &s->rules[i];
        if (!rule)
                return -ENOENT;
        for (size_t i = 0; i < n_devices; i++) {
                if (!device_match_test(&rule->match, devices[i]))
                        continue;
                /* The function must carry this name, not a later rule's. */
                const char *own = desired_state_device_name(s, devices[i]);

                if (!own || !streq(own, name))
                        continue;
                if (found)
                        return -ENOTUNIQ;
                found = devices[i];
        }
        if (!found)
                return -ENXIO;
        *ret = found;
        return 0;
}
