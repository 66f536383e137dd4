/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "escape.h"
#include "macro.h"

/* One input (|n| bytes, may hold NULs) and its escaped form. */
typedef struct Case {
        const char *in;
        size_t n;
        const char *out;
} Case;

#define CASE(in, out) \
        { in, sizeof(in) - 1, out }

static const Case cases[] = {
        CASE("", ""),
        CASE("vfio-pci", "vfio-pci"),
        CASE("a b~", "a b~"),
        /* quotes and backslash */
        CASE("\\", "\\\\"),
        CASE("\"'", "\\\"\\'"),
        CASE("\\xff", "\\\\xff"), /* the literal text stays distinguishable from the byte */
        /* controls, DEL, NUL */
        CASE("a\nb\tc\r", "a\\x0ab\\x09c\\x0d"),
        CASE("\x1b[31m", "\\x1b[31m"),
        CASE("\x7f", "\\x7f"),
        CASE("a\0b", "a\\x00b"),
        /* valid multi-byte sequences are kept: 2, 3 and 4 bytes, the extremes of each */
        CASE("\xc3\xa9", "\xc3\xa9"),
        CASE("\xc2\xa0", "\xc2\xa0"),
        CASE("\xdf\xbf", "\xdf\xbf"),
        CASE("\xe0\xa0\x80", "\xe0\xa0\x80"),
        CASE("\xe2\x80\xa6", "\xe2\x80\xa6"),
        CASE("\xed\x9f\xbf", "\xed\x9f\xbf"), /* U+D7FF, just below the surrogates */
        CASE("\xee\x80\x80", "\xee\x80\x80"), /* U+E000, just above */
        CASE("\xef\xbf\xbf", "\xef\xbf\xbf"),
        CASE("\xf0\x90\x80\x80", "\xf0\x90\x80\x80"),
        CASE("\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"),
        CASE("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"), /* U+10FFFF */
        /* C1 controls are valid UTF-8 but escaped */
        CASE("\xc2\x80", "\\xc2\\x80"),
        CASE("\xc2\x9b", "\\xc2\\x9b"),
        /* invalid bytes */
        CASE("vfio\xff", "vfio\\xff"),
        CASE("\xfe\xff", "\\xfe\\xff"),
        CASE("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80"),
        CASE("\x80", "\\x80"),
        CASE("\xbf\xbf", "\\xbf\\xbf"),
        /* truncated sequences: the lead byte is escaped, what follows is judged on its own */
        CASE("\xc3", "\\xc3"),
        CASE("\xc3"
             "a",
             "\\xc3a"),
        CASE("\xe2\x80", "\\xe2\\x80"),
        CASE("\xe2\x80z", "\\xe2\\x80z"),
        CASE("\xf0\x9f\x98", "\\xf0\\x9f\\x98"),
        CASE("\xf0\x9f\x98\xc3\xa9", "\\xf0\\x9f\\x98\xc3\xa9"),
        /* overlong encodings */
        CASE("\xc0\xaf", "\\xc0\\xaf"),
        CASE("\xc1\xbf", "\\xc1\\xbf"),
        CASE("\xc0\x80", "\\xc0\\x80"),
        CASE("\xe0\x80\xaf", "\\xe0\\x80\\xaf"),
        CASE("\xe0\x9f\xbf", "\\xe0\\x9f\\xbf"),
        CASE("\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf"),
        CASE("\xf0\x8f\xbf\xbf", "\\xf0\\x8f\\xbf\\xbf"),
        /* surrogates U+D800, U+DBFF, U+DC00, U+DFFF (CESU-8 style) */
        CASE("\xed\xa0\x80", "\\xed\\xa0\\x80"),
        CASE("\xed\xaf\xbf", "\\xed\\xaf\\xbf"),
        CASE("\xed\xb0\x80", "\\xed\\xb0\\x80"),
        CASE("\xed\xbf\xbf", "\\xed\\xbf\\xbf"),
        /* above U+10FFFF */
        CASE("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"),
};

static void test_escape_table(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const Case *c = &cases[i];
                _cleanup_free_ char *s = escape_bytes(c->in, c->n, SIZE_MAX);

                assert_non_null(s);
                print_message("case %zu: %s\n", i, s);
                assert_string_equal(s, c->out);
                assert_int_equal(escape_length(c->in, c->n), strlen(c->out));
                assert_true(utf8_is_valid(s));
                /* Valid UTF-8 in, without characters that get escaped: unchanged. */
                if (c->n == strlen(c->in) && utf8_is_valid(c->in) && streq(c->in, c->out)) {
                        char *buf = NULL;
                        assert_ptr_equal(utf8_or_escaped(c->in, &buf), c->in);
                        assert_null(buf);
                }
        }
}

static void test_utf8_is_valid(void **state) {
        assert_true(utf8_is_valid(NULL));
        assert_true(utf8_is_valid(""));
        assert_true(utf8_is_valid("Driver=vfio-pci \xc3\xa9\xe2\x80\xa6\xf0\x9f\x98\x80"));
        assert_false(utf8_is_valid("vfio\xff"));
        assert_false(utf8_is_valid("\xc3"));
        assert_false(utf8_is_valid("\xe2\x80"));
        assert_false(utf8_is_valid("\xc0\xaf"));
        assert_false(utf8_is_valid("\xed\xa0\x80"));
        assert_false(utf8_is_valid("\xf4\x90\x80\x80"));
        /* C1 controls are valid UTF-8 (only the escaped form avoids them) */
        assert_true(utf8_is_valid("\xc2\x9b"));

        assert_int_equal(utf8_sequence_length((const uint8_t *)"\xc3\xa9", 1), 0);
        assert_int_equal(utf8_sequence_length((const uint8_t *)"\xc3\xa9", 2), 2);
        assert_int_equal(utf8_sequence_length((const uint8_t *)"", 0), 0);
}

static void test_utf8_or_escaped(void **state) {
        _cleanup_free_ char *buf = NULL;
        const char *s = "slot \xff";

        const char *e = utf8_or_escaped(s, &buf);

        assert_string_equal(e, "slot \\xff");
        assert_ptr_equal(e, buf);
        buf = mfree(buf);
        /* valid text is published as it is, quotes and all */
        assert_ptr_equal(utf8_or_escaped("GRID \"A\"", &buf), "GRID \"A\"");
        assert_null(buf);
        assert_null(utf8_or_escaped(NULL, &buf));
        assert_null(buf);
}

/* Cut only between units; the result, marker included, fits the bound exactly or is shorter. */
static void test_escape_truncation(void **state) {
        char big[65 + 2 + 1];
        _cleanup_free_ char *s = NULL;

        /* Fits exactly: no marker. */
        s = escape_bytes("abcdef", 6, 6);
        assert_string_equal(s, "abcdef");
        s = mfree(s);

        /* "aaaaa" in 4 bytes: 1 byte and the 3-byte marker. */
        s = escape_bytes("aaaaa", 5, 4);
        assert_string_equal(s, "a" ESCAPE_ELLIPSIS);
        s = mfree(s);

        /* The case: 63 x 'a' then U+00E9, bounded to 64 bytes: the 2-byte character would
         * straddle the bound, so it is dropped whole, never split. */
        memset(big, 'a', 63);
        memcpy(big + 63, "\xc3\xa9", 3);
        s = escape_bytes(big, 65, 64);
        assert_true(utf8_is_valid(s));
        assert_int_equal(strlen(s), 61 + 3);
        assert_true(strneq(s, big, 61));
        assert_string_equal(s + 61, ESCAPE_ELLIPSIS);
        s = mfree(s);
        /* with room for it, kept */
        s = escape_bytes(big, 65, 65);
        assert_string_equal(s, big);
        s = mfree(s);

        /* An escape is never split: "ab\xff" bounded to 7: "ab" (2) + "\xff" (4) would need 6 of
         * the 4 left before the marker. */
        s = escape_bytes(
                "ab\xff"
                "cd",
                5, 7);
        assert_string_equal(s, "ab" ESCAPE_ELLIPSIS);
        s = mfree(s);
        s = escape_bytes(
                "ab\xff"
                "cdef",
                7, 9);
        assert_string_equal(s, "ab\\xff" ESCAPE_ELLIPSIS);
        s = mfree(s);

        /* A 4-byte character at the cut. */
        s = escape_bytes("ab\xf0\x9f\x98\x80z", 7, 6);
        assert_string_equal(s, "ab" ESCAPE_ELLIPSIS);
        s = mfree(s);
}

static void test_escape_quote(void **state) {
        _cleanup_free_ char *huge = malloc(8u << 20);
        const char *q;

        /* An 8 MiB argument is quoted in ESCAPE_QUOTE_MAX bytes. */
        assert_non_null(huge);
        memset(huge, '\xff', (8u << 20) - 1);
        huge[(8u << 20) - 1] = '\0';
        q = ESCAPE_QUOTE(huge);
        /* whole 4-byte escapes only: within one escape of the bound */
        assert_true(strlen(q) <= ESCAPE_QUOTE_MAX);
        assert_true(strlen(q) > ESCAPE_QUOTE_MAX - 4);
        assert_true(utf8_is_valid(q));
        assert_true(strneq(q, "\\xff\\xff", 8));
        assert_string_equal(q + strlen(q) - strlen(ESCAPE_ELLIPSIS), ESCAPE_ELLIPSIS);

        q = ESCAPE_QUOTE("vfio-pci");
        assert_string_equal(q, "vfio-pci");
}

/* Every byte string of length <= 3 escapes to valid UTF-8 of the announced length, and escaping is
 * injective on them (distinct inputs, distinct outputs). */
static void test_escape_exhaustive(void **state) {
        static char seen[256 * 256 + 1][16];
        size_t n_seen = 0;

        for (unsigned a = 0; a < 256; a++) {
                uint8_t in1[1] = { (uint8_t)a };
                _cleanup_free_ char *s1 = escape_bytes(in1, 1, SIZE_MAX);
                assert_true(utf8_is_valid(s1));
                for (unsigned b = 0; b < 256; b++) {
                        uint8_t in[3] = { (uint8_t)a, (uint8_t)b, 0x80 };
                        for (size_t n = 2; n <= 3; n++) {
                                _cleanup_free_ char *s = escape_bytes(in, n, SIZE_MAX);
                                assert_non_null(s);
                                assert_true(utf8_is_valid(s));
                                assert_int_equal(strlen(s), escape_length(in, n));
                                for (size_t cut = 3; cut < strlen(s); cut++) {
                                        _cleanup_free_ char *t = escape_bytes(in, n, cut);
                                        assert_true(utf8_is_valid(t));
                                        assert_true(strlen(t) <= cut);
                                }
                                if (n == 2) {
                                        assert_true(strlen(s) < sizeof(seen[0]));
                                        strcpy(seen[n_seen++], s);
                                }
                        }
                }
        }
        qsort(seen, n_seen, sizeof(seen[0]), (int (*)(const void *, const void *))strcmp);
        for (size_t i = 1; i < n_seen; i++)
                assert_string_not_equal(seen[i - 1], seen[i]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escape_table),    cmocka_unit_test(test_utf8_is_valid),
                cmocka_unit_test(test_utf8_or_escaped), cmocka_unit_test(test_escape_truncation),
                cmocka_unit_test(test_escape_quote),    cmocka_unit_test(test_escape_exhaustive),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
