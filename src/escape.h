/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Quoting untrusted bytes (file contents, file names, sysfs values, D-Bus
 * arguments, process names) in text hostdevd sends on D-Bus or logs. sd-bus
 * refuses to send a string that is not valid UTF-8 (the D-Bus specification,
 * "Basic types": STRING must be valid UTF-8), so every such string goes
 * through here.
 *
 * The escaped form of a byte string, unit by unit:
 *   - printable ASCII (0x20..0x7e) is kept, except '\\', '"' and '\'', which
 *     become "\\\\", "\\\"" and "\\'";
 *   - a valid UTF-8 sequence of 2..4 bytes (RFC 3629: shortest form, no
 *     surrogates U+D800..U+DFFF, at most U+10FFFF) is kept, except the C1
 *     controls U+0080..U+009F (terminals act on them);
 *   - every other byte (controls, DEL, NUL, stray continuation bytes, the
 *     start of a truncated, overlong or out-of-range sequence) becomes
 *     "\\xNN", lowercase hex.
 * The result is valid UTF-8 without control characters, and the mapping is
 * injective (without truncation): distinct inputs give distinct outputs.
 *
 * Truncation: with a bound, a result that would be longer is cut after the
 * last whole unit that fits (never inside a character or an escape) and
 * ESCAPE_ELLIPSIS is appended; the bound counts the marker.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Marks a cut: U+2026 HORIZONTAL ELLIPSIS, 3 bytes. */
#define ESCAPE_ELLIPSIS "\xe2\x80\xa6"

/* Bound in bytes (marker included, NUL excluded) of a value quoted in an error message: longer than
 * any valid value (driver names are at most 64 bytes), short for garbage such as an 8 MiB argument. */
#define ESCAPE_QUOTE_MAX 80u

/* Length (1..4) of the valid UTF-8 sequence that starts at |p|, looking at no more than |n| bytes; 0 if
 * the bytes there are not one (also for n == 0). A NUL byte is a valid 1-byte sequence. */
size_t utf8_sequence_length(const uint8_t *p, size_t n);

/* True if |s| (NUL-terminated) is valid UTF-8 as above. NULL is valid (nothing to send). */
bool utf8_is_valid(const char *s);

/* Bytes needed for the escaped form of |p|..|p|+|n| without bound, NUL excluded. */
size_t escape_length(const void *p, size_t n);

/*
 * Write the escaped form of the |n| bytes at |p| into |buf| of |size| bytes:
 * whole when it fits in size - 1 bytes, else cut as described above (then
 * size must exceed strlen(ESCAPE_ELLIPSIS)). Always NUL-terminates. Returns
 * |buf|.
 */
char *escape_to_buffer(const void *p, size_t n, char *buf, size_t size);

/*
 * The escaped form of the |n| bytes at |p|, newly allocated, at most |max|
 * bytes long (SIZE_MAX: no bound; else max >= strlen(ESCAPE_ELLIPSIS)).
 * NULL only on allocation failure.
 */
char *escape_bytes(const void *p, size_t n, size_t max);

/* escape_bytes() of a NUL-terminated string. */
static inline char *escape_string(const char *s, size_t max) {
        return escape_bytes(s, strlen(s), max);
}

/*
 * For a value quoted in a message: the escaped form of |s| bounded by
 * ESCAPE_QUOTE_MAX, in a buffer that lives until the end of the enclosing
 * block (a compound literal), so it can be a printf() argument:
 *   log_debug("Bad value '%s'", ESCAPE_QUOTE(value));
 */
#define ESCAPE_QUOTE(s) escape_quote_into((s), (char[ESCAPE_QUOTE_MAX + 1]){})
static inline const char *escape_quote_into(const char *s, char buf[static ESCAPE_QUOTE_MAX + 1]) {
        /* NULL quotes as "" */
        return escape_to_buffer(s ? s : "", s ? strlen(s) : 0, buf, ESCAPE_QUOTE_MAX + 1);
}

/*
 * For a value published as it is when it can be (a sysfs attribute, a
 * process name): |s| itself when it is valid UTF-8, else its escaped form
 * stored in *|buf| (to be freed by the caller; NULL when |s| is returned).
 * NULL when |s| is NULL, or on allocation failure (then *|buf| is NULL too).
 * Not injective: valid text that reads like an escape ("\\xff" typed out)
 * looks the same as the escaped byte; where the difference matters (file
 * names in DesiredSource and ConfigErrors) use escape_string() instead.
 */
const char *utf8_or_escaped(const char *s, char **buf);
