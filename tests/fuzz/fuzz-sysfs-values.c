/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The sysfs value parsers (src/sysfs.c): hex ids, decimal integers,
 * booleans, the lines of a PCI function's "resource" attribute, and the
 * bounded reader. The first input byte picks the bounds (hex width, integer
 * range); the rest is the attribute's text. A value that parses must lie in
 * its bounds and print back (as the kernel prints it) to the same value.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "sysfs.h"

static const char *dir;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        dir = fuzz_tmpdir("fuzz-sysfs-values");
        return 0;
}

static const unsigned hex_bits[] = { 8, 16, 24, 32 };
static const int64_t int_ranges[][2] = {
        { -1, INT32_MAX }, /* numa_node */
        { 0, UINT16_MAX }, /* sriov_numvfs, sriov_totalvfs */
        { 0, 1 },
        { INT64_MIN, INT64_MAX },
};

static void check_hex(const char *s, unsigned bits) {
        char again[32];
        uint32_t v, w;
        int r;

        r = sysfs_parse_hex(s, bits, &v);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE, "sysfs_parse_hex('%s', %u) = %d", s, bits, r);
        if (r < 0)
                return;
        fuzz_check(bits >= 32 || v < (UINT32_C(1) << bits), "'%s': 0x%x does not fit %u bits", s, v, bits);
        snprintf(again, sizeof(again), "0x%04x\n", v);
        fuzz_check(
                sysfs_parse_hex(again, bits, &w) == 0 && w == v, "'%s' -> 0x%x does not parse back", s, v);
}

static void check_int(const char *s, int64_t min, int64_t max) {
        char again[32];
        int64_t v, w;
        int r;

        r = sysfs_parse_int(s, min, max, &v);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE, "sysfs_parse_int('%s') = %d", s, r);
        if (r < 0)
                return;
        fuzz_check(
                v >= min && v <= max, "'%s': %" PRId64 " out of [%" PRId64 ", %" PRId64 "]", s, v, min, max);
        snprintf(again, sizeof(again), "%" PRId64 "\n", v);
        fuzz_check(sysfs_parse_int(again, min, max, &w) == 0 && w == v, "'%s' does not parse back", s);
}

static void check_bool(const char *s) {
        bool b, c;
        int r;

        r = sysfs_parse_bool(s, &b);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE, "sysfs_parse_bool('%s') = %d", s, r);
        if (r < 0)
                return;
        fuzz_check(sysfs_parse_bool(b ? "1\n" : "0\n", &c) == 0 && c == b, "'%s' does not parse back", s);
}

static void check_resource(const char *s) {
        PciResourceLine l, m;
        char again[80];
        int r;

        r = sysfs_parse_resource_line(s, &l);
        fuzz_check(r == 0 || r == -EINVAL || r == -ERANGE, "sysfs_parse_resource_line('%s') = %d", s, r);
        if (r < 0)
                return;
        /* resource_show(), drivers/pci/pci-sysfs.c */
        snprintf(
                again, sizeof(again), "0x%016" PRIx64 " 0x%016" PRIx64 " 0x%016" PRIx64 "\n", l.start, l.end,
                l.flags);
        fuzz_check(sysfs_parse_resource_line(again, &m) == 0, "'%s' -> '%s' does not parse back", s, again);
        fuzz_check(
                m.start == l.start && m.end == l.end && m.flags == l.flags, "'%s' parses back differently",
                s);
}

/* The reader: the whole attribute (at most SYSFS_ATTR_MAX) without one trailing newline. */
static void check_read(const uint8_t *data, size_t size) {
        _cleanup_free_ char *got = NULL;
        size_t want;
        int r;

        fuzz_write_file(dir, "attr", data, size);
        r = sysfs_read_string(dir, "attr", &got);
        fuzz_check(r == 0 || r < 0, "sysfs_read_string = %d", r);
        if (r < 0)
                return;
        want = strnlen((const char *)data, size);
        fuzz_check(strlen(got) <= want, "read '%s' longer than the attribute", got);
        fuzz_check(memcmp(got, data, strlen(got)) == 0, "read '%s', not the attribute's text", got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = NULL;
        uint8_t pick;

        if (size < 1 || size > SYSFS_ATTR_MAX + 2)
                return 0;
        pick = data[0];
        s = fuzz_strndup(data + 1, size - 1);

        check_hex(s, hex_bits[pick % ELEMENTSOF(hex_bits)]);
        check_int(
                s, int_ranges[(pick >> 2) % ELEMENTSOF(int_ranges)][0],
                int_ranges[(pick >> 2) % ELEMENTSOF(int_ranges)][1]);
        check_bool(s);
        check_resource(s);
        check_read(data + 1, size - 1);
        return 0;
}
