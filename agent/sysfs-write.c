/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The one sysfs write helper (sysfs-write.h); only the executor calls it. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "sysfs-write.h"

char *sysfs_write_quote_value(const char *value) {
        size_t n = strlen(value);
        char *q, *p;

        /* Worst case every character becomes two, plus the quotes. */
        q = malloc(2 * n + 3);
        if (!q)
                return NULL;
        p = q;
        *p++ = '\'';
        for (const char *s = value; *s; s++) {
                if (*s == '\n') {
                        *p++ = '\\';
                        *p++ = 'n';
                } else
                        *p++ = *s;
        }
        *p++ = '\'';
        *p = '\0';
        return q;
}

static int fail(int r, const char *path, const char *value, const char *step, char **ret_message) {
        _cleanup_free_ char *q = NULL;

        if (!ret_message)
                return r;
        q = sysfs_write_quote_value(value);
        /* strerrordesc_np()/strerrorname_np() are thread-safe, unlike strerror(). */
        if (asprintf(
                    ret_message, "Failed to write %s to %s (%s): %s (%s)", q ?: "?", path, step,
                    strerrordesc_np(-r) ?: "unknown error", strerrorname_np(-r) ?: "?") < 0)
                *ret_message = NULL;
        return r;
}

int sysfs_write(const char *path, const char *value, char **ret_message) {
        size_t n;
        ssize_t k;
        int fd, r;

        if (!path || !value)
                return -EINVAL;

        n = strlen(value);
        fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC | O_NOCTTY);
        if (fd < 0)
                return fail(negative_errno(), path, value, "open", ret_message);

        k = write(fd, value, n);
        if (k < 0) {
                r = negative_errno();
                (void)close(fd);
                return fail(r, path, value, "write", ret_message);
        }
        if ((size_t)k != n) {
                _cleanup_free_ char *step = NULL;
                (void)close(fd);
                if (asprintf(&step, "short write, %zd of %zu bytes", k, n) < 0)
                        step = NULL;
                return fail(-EIO, path, value, step ?: "short write", ret_message);
        }
        if (close(fd) < 0)
                return fail(negative_errno(), path, value, "close", ret_message);
        return 0;
}

int sysfs_write_attribute(const char *dir, const char *attr, const char *value, char **ret_message) {
        _cleanup_free_ char *path = NULL;

        if (!dir || !attr)
                return -EINVAL;
        if (asprintf(&path, "%s/%s", dir, attr) < 0)
                return -ENOMEM;
        return sysfs_write(path, value, ret_message);
}
