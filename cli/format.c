/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdio.h>

#include "bus-client.h"
#include "format.h"
#include "macro.h"

/* Properties whose integers read best in hex, with their width in digits (sysfs prints them so). */
static const struct {
        const char *name;
        int digits;
} hex_properties[] = {
        { "VendorId", 4 },          { "DeviceId", 4 }, { "SubsystemVendorId", 4 },
        { "SubsystemDeviceId", 4 }, { "Class", 6 },    { "Revision", 2 },
};

/* Index of the expansion ROM in Bars (the kernel's PCI_ROM_RESOURCE). */
#define BAR_INDEX_ROM 6

bool pci_class_is_bridge(uint32_t class) {
        uint32_t base_sub = class >> 8;

        return base_sub == 0x0604 || base_sub == 0x0609;
}

char *format_bytes(uint64_t size) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        size_t u = 0;
        char *s;

        while (size >= 1024 && size % 1024 == 0 && u + 1 < ELEMENTSOF(units)) {
                size /= 1024;
                u++;
        }
        if (asprintf(&s, "%" PRIu64 " %s", size, units[u]) < 0)
                return NULL;
        return s;
}

static int hex_digits(const char *name) {
        if (!name)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(hex_properties); i++)
                if (streq(hex_properties[i].name, name))
                        return hex_properties[i].digits;
        return 0;
}

/* Bars element: "0: memory, 16 MiB, 64-bit, prefetchable" / "ROM: memory, 128 KiB". */
static char *format_bar(json_object *bar) {
        _cleanup_free_ char *size = NULL, *index = NULL;
        int64_t i = json_get_int(bar, "Index", -1);
        json_object *v;
        char *s;

        if (json_object_object_get_ex(bar, "Size", &v))
                size = format_bytes(json_object_get_uint64(v));
        if (!size)
                return NULL;
        if (i == BAR_INDEX_ROM)
                index = strdup("ROM");
        else if (asprintf(&index, "%" PRIi64, i) < 0)
                index = NULL;
        if (!index)
                return NULL;

        if (asprintf(
                    &s, "%s: %s, %s%s%s", index, json_get_string(bar, "Type"), size,
                    json_get_bool(bar, "Is64Bit") ? ", 64-bit" : "",
                    json_get_bool(bar, "Prefetchable") ? ", prefetchable" : "") < 0)
                return NULL;
        return s;
}

/* MdevTypes element: "mtty-2: \"Dual port serial\", vfio-pci, 1 available, description: ...". */
static char *format_mdev_type(json_object *t) {
        const char *parent = json_get_string(t, "Parent"), *description = json_get_string(t, "Description");
        _cleanup_free_ char *d = strdup(description);
        char *s;

        if (!d)
                return NULL;
        /* Descriptions are free text from the driver; keep each type on one line. */
        for (char *p = d; *p; p++)
                if (*p == '\n' || *p == '\t')
                        *p = ' ';

        if (asprintf(
                    &s, "%s%s%s: \"%s\", %s, %" PRIi64 " available%s%s", parent, *parent ? " " : "",
                    json_get_string(t, "Type"), json_get_string(t, "Name"), json_get_string(t, "DeviceApi"),
                    json_get_int(t, "AvailableInstances", 0), *d ? ", description: " : "", d) < 0)
                return NULL;
        return s;
}

/* Holders element: "pid 4242 (qemu-system-x86) /dev/vfio/4". */
static char *format_holder(json_object *h) {
        char *s;

        const char *node = json_get_string(h, "Node");

        /* An mdev's holders carry no node: it is the mdev's VfioGroup or VfioDevice. */
        if (asprintf(
                    &s, "pid %" PRIi64 " (%s)%s%s", json_get_int(h, "Pid", 0), json_get_string(h, "Command"),
                    *node ? " " : "", node) < 0)
                return NULL;
        return s;
}

static char *format_scalar(const char *name, json_object *v, FormatFlags flags) {
        bool oneline = flags & FORMAT_ONELINE;
        int digits;
        char *s;

        switch (json_object_get_type(v)) {
        case json_type_null:
                return strdup(oneline ? "" : "-");
        case json_type_string: {
                const char *str = json_object_get_string(v);
                return strdup(!*str && !oneline ? "-" : str);
        }
        case json_type_boolean:
                return strdup(yes_no(json_object_get_boolean(v)));
        case json_type_int:
                digits = hex_digits(name);
                if (digits > 0 && json_object_get_int64(v) >= 0) {
                        if (asprintf(&s, "0x%0*" PRIx64, digits, (uint64_t)json_object_get_int64(v)) < 0)
                                return NULL;
                        return s;
                }
                /* Absent numbers are -1 where the type is signed (the contract's convention). */
                if (!oneline && json_object_get_int64(v) == -1)
                        return strdup("-");
                return strdup(json_object_get_string(v)); /* json-c prints uint64 values unsigned */
        case json_type_object:
                /* On one line a sentence per struct would blur into the next; JSON stays readable. */
                if (!oneline && name && streq(name, "Bars"))
                        return format_bar(v);
                if (!oneline && name && streq(name, "MdevTypes"))
                        return format_mdev_type(v);
                if (!oneline && name && streq(name, "Holders"))
                        return format_holder(v);
                break;
        default:
                break;
        }

        return strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

char *format_property_value(const char *name, json_object *v, FormatFlags flags) {
        bool oneline = flags & FORMAT_ONELINE;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        size_t n;

        if (!json_object_is_type(v, json_type_array))
                return format_scalar(name, v, flags);

        n = json_object_array_length(v);
        if (n == 0)
                return strdup(oneline ? "" : "-");

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *e = format_scalar(name, json_object_array_get_idx(v, i), flags);

                if (!e) {
                        fclose(f);
                        free(buf);
                        return NULL;
                }
                if (i > 0)
                        fputc(oneline ? ',' : '\n', f);
                fputs(e, f);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
