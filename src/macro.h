/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Small helpers shared by every part of hostdevd: cleanup attributes,
 * ownership transfer, array sizes. Our own, kept deliberately tiny; types
 * of libsystemd use its public sd_*_unrefp helpers instead.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)

/* Return the pointer/fd and forget it, so the cleanup handler does nothing. */
#define TAKE_PTR(p)                       \
        ({                                \
                __typeof__(p) _tp_ = (p); \
                (p) = NULL;               \
                _tp_;                     \
        })
#define TAKE_FD(fd)              \
        ({                       \
                int _tf_ = (fd); \
                (fd) = -EBADF;   \
                _tf_;            \
        })

/* Define a cleanup function "funcp(type *p)" that calls "func(*p)" when *p is set. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p) {   \
                if (*p)                         \
                        func(*p);               \
        }                                       \
        struct __useless_struct_to_allow_trailing_semicolon__

static inline void freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void)close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void)fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d) {
        if (*d)
                (void)closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

/* NULL-terminated string vectors ("strv"), as used for lists of addresses. */
#define STRV_FOREACH(s, l) for (char **s = (l); s && *s; s++)

/* *ret = a copy of |s|, or NULL for NULL. Returns 0 or -ENOMEM (then *ret is NULL). */
static inline int strdup_null(const char *s, char **ret) {
        *ret = s ? strdup(s) : NULL;
        return s && !*ret ? -ENOMEM : 0;
}

/* Free a pointer and set it to NULL; evaluates to NULL. */
#define mfree(p)                     \
        ({                           \
                free(p);             \
                (__typeof__(p))NULL; \
        })

static inline const char *strempty(const char *s) {
        return s ? s : "";
}

static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}

static inline const char *yes_no(int b) {
        return b ? "yes" : "no";
}

static inline int negative_errno(void) {
        /* Use when a libc call failed; never returns 0 even if errno was not set. */
        return errno > 0 ? -errno : -EIO;
}
