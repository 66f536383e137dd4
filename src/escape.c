/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <stdlib.h>

#include "escape.h"

static bool is_continuation(uint8_t b) {
        return (b & 0xc0) == 0x80;
}

size_t utf8_sequence_length(const uint8_t *p, size_t n) {
        uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        size_t len;

        if (n == 0)
                return 0;
        /* RFC 3629, section 4 (the UTF8-octets grammar): the second byte's range excludes overlong forms
         * (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points above U+10FFFF (F4 90..BF). */
        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                len = 2;
        else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                len = 3;
                if (p[0] == 0xe0)
                        lo = 0xa0;
                else if (p[0] == 0xed)
                        hi = 0x9f;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                len = 4;
                if (p[0] == 0xf0)
                        lo = 0x90;
                else if (p[0] == 0xf4)
                        hi = 0x8f;
        } else
                return 0; /* a continuation byte, C0/C1 (always overlong), F5..FF */

        if (n < len || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (!is_continuation(p[i]))
                        return 0;
        return len;
}

bool utf8_is_valid(const char *s) {
        const uint8_t *p = (const uint8_t *)s;
        size_t n;

        if (!s)
                return true;
        /* Most of what passes here (sysfs values, names from pci.ids) is ASCII: skip it byte by byte
         * and measure what is left only at the first byte that is not. */
        while (*p > 0 && *p < 0x80)
                p++;
        n = strlen((const char *)p);
        while (n > 0) {
                size_t k = utf8_sequence_length(p, n);
                if (k == 0)
                        return false;
                p += k;
                n -= k;
        }
        return true;
}

/* The escaped form of the unit at |p| (|n| > 0 bytes left) into |out| (at least 5 bytes, not
 * NUL-terminated); its length is returned, the bytes it consumes in *consumed. */
static size_t escape_unit(const uint8_t *p, size_t n, char out[static 5], size_t *consumed) {
        static const char hex[] = "0123456789abcdef";
        size_t k = utf8_sequence_length(p, n);

        *consumed = 1;
        if (k == 1 && p[0] >= 0x20 && p[0] < 0x7f) {
                if (p[0] == '\\' || p[0] == '"' || p[0] == '\'') {
                        out[0] = '\\';
                        out[1] = (char)p[0];
                        return 2;
                }
                out[0] = (char)p[0];
                return 1;
        }
        /* U+0080..U+009F are C2 80..C2 9F. */
        if (k > 1 && !(p[0] == 0xc2 && p[1] < 0xa0)) {
                memcpy(out, p, k);
                *consumed = k;
                return k;
        }
        /* Anything else goes byte by byte: the next byte starts a unit of its own. */
        out[0] = '\\';
        out[1] = 'x';
        out[2] = hex[p[0] >> 4];
        out[3] = hex[p[0] & 0xf];
        return 4;
}

size_t escape_length(const void *p, size_t n) {
        const uint8_t *b = p;
        size_t total = 0;

        while (n > 0) {
                char unit[5];
                size_t consumed;

                total += escape_unit(b, n, unit, &consumed);
                b += consumed;
                n -= consumed;
        }
        return total;
}

char *escape_to_buffer(const void *p, size_t n, char *buf, size_t size) {
        const uint8_t *b = p;
        size_t limit, len = 0;
        bool cut;

        assert(buf);
        assert(size > 0);

        cut = escape_length(p, n) > size - 1;
        assert(!cut || size > strlen(ESCAPE_ELLIPSIS));
        limit = cut ? size - 1 - strlen(ESCAPE_ELLIPSIS) : size - 1;
        while (n > 0) {
                char unit[5];
                size_t consumed, k;

                k = escape_unit(b, n, unit, &consumed);
                if (len + k > limit)
                        break;
                memcpy(buf + len, unit, k);
                len += k;
                b += consumed;
                n -= consumed;
        }
        if (cut) {
                memcpy(buf + len, ESCAPE_ELLIPSIS, strlen(ESCAPE_ELLIPSIS));
                len += strlen(ESCAPE_ELLIPSIS);
        }
        buf[len] = '\0';
        return buf;
}

char *escape_bytes(const void *p, size_t n, size_t max) {
        size_t total = escape_length(p, n);
        char *buf;

        assert(max >= strlen(ESCAPE_ELLIPSIS));
        if (total > max)
                total = max;
        buf = malloc(total + 1);
        if (!buf)
                return NULL;
        return escape_to_buffer(p, n, buf, total + 1);
}

const char *utf8_or_escaped(const char *s, char **buf) {
        assert(buf);

        *buf = NULL;
        if (!s || utf8_is_valid(s))
                return s;
        *buf = escape_string(s, SIZE_MAX);
        return *buf;
}
