/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file-util.h"
#include "macro.h"
#include "names.h"
#include "sysfs.h"

/* The kernel ends every attribute it prints with one "\n"; accept exactly that and nothing else. */
static bool is_end(const char *p) {
        return *p == '\0' || (p[0] == '\n' && p[1] == '\0');
}

int sysfs_parse_hex(const char *s, unsigned bits, uint32_t *ret) {
        uint64_t v = 0;
        const char *p;

        if (!s || bits == 0 || bits > 32)
                return -EINVAL;
        if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
                return -EINVAL;

        p = s + 2;
        if (!isxdigit((unsigned char)*p))
                return -EINVAL;
        for (; isxdigit((unsigned char)*p); p++) {
                unsigned d = isdigit((unsigned char)*p) ? (unsigned)(*p - '0')
                                                        : (unsigned)(tolower((unsigned char)*p) - 'a' + 10);
                v = (v << 4) | d;
                if (v > UINT32_MAX)
                        return -ERANGE;
        }
        if (!is_end(p))
                return -EINVAL;
        if (bits < 32 && v >= (UINT64_C(1) << bits))
                return -ERANGE;

        *ret = (uint32_t)v;
        return 0;
}

int sysfs_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret) {
        char *end = NULL;
        long long v;

        if (!s)
                return -EINVAL;
        /* strtoll() accepts leading whitespace; sysfs never prints any. */
        if (!(isdigit((unsigned char)s[0]) ||
              ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1]))))
                return -EINVAL;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0 || !end || !is_end(end))
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;

        *ret = v;
        return 0;
}

int sysfs_parse_bool(const char *s, bool *ret) {
        if (!s)
                return -EINVAL;
        if ((s[0] == '0' || s[0] == '1') && is_end(s + 1)) {
                *ret = s[0] == '1';
                return 0;
        }
        return -EINVAL;
}

/* One "0x%016llx" field of a resource line; *ret_end points past its digits. */
static int parse_hex64(const char *s, const char **ret_end, uint64_t *ret) {
        uint64_t v = 0;
        const char *p;
        unsigned n = 0;

        if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
                return -EINVAL;
        for (p = s + 2; isxdigit((unsigned char)*p); p++, n++) {
                unsigned d = isdigit((unsigned char)*p) ? (unsigned)(*p - '0')
                                                        : (unsigned)(tolower((unsigned char)*p) - 'a' + 10);
                if (v >> 60)
                        return -ERANGE;
                v = (v << 4) | d;
        }
        if (n == 0)
                return -EINVAL;
        *ret_end = p;
        *ret = v;
        return 0;
}

int sysfs_parse_resource_line(const char *line, PciResourceLine *ret) {
        uint64_t v[3];
        const char *p = line;
        int r;

        if (!line)
                return -EINVAL;

        for (size_t i = 0; i < 3; i++) {
                r = parse_hex64(p, &p, &v[i]);
                if (r < 0)
                        return r;
                if (i < 2) {
                        if (*p != ' ')
                                return -EINVAL;
                        p++;
                }
        }
        if (!is_end(p))
                return -EINVAL;

        *ret = (PciResourceLine){ .start = v[0], .end = v[1], .flags = v[2] };
        return 0;
}

static char *path_join(const char *dir, const char *attr) {
        char *p;

        if (!attr)
                return strdup(dir);
        if (asprintf(&p, "%s/%s", dir, attr) < 0)
                return NULL;
        return p;
}

int sysfs_read_string(const char *dir, const char *attr, char **ret) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        size_t n;
        int r;

        path = path_join(dir, attr);
        if (!path)
                return -ENOMEM;

        /* An oversized attribute is detected (-EFBIG) rather than cut. */
        r = file_read_bounded(path, SYSFS_ATTR_MAX, FILE_READ_ATTRIBUTE, &buf, &n);
        if (r < 0)
                return r;
        /* Attributes are text; an embedded NUL means a corrupt or binary file. */
        if (strlen(buf) != n)
                return -EINVAL;
        if (n > 0 && buf[n - 1] == '\n')
                buf[n - 1] = '\0';

        *ret = TAKE_PTR(buf);
        return 0;
}

int sysfs_read_hex(const char *dir, const char *attr, unsigned bits, uint32_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = sysfs_read_string(dir, attr, &s);
        if (r < 0)
                return r;
        return sysfs_parse_hex(s, bits, ret);
}

int sysfs_read_int(const char *dir, const char *attr, int64_t min, int64_t max, int64_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = sysfs_read_string(dir, attr, &s);
        if (r < 0)
                return r;
        return sysfs_parse_int(s, min, max, ret);
}

int sysfs_read_bool(const char *dir, const char *attr, bool *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = sysfs_read_string(dir, attr, &s);
        if (r < 0)
                return r;
        return sysfs_parse_bool(s, ret);
}

int sysfs_read_link_basename(const char *dir, const char *attr, char **ret) {
        _cleanup_free_ char *path = NULL;
        char target[PATH_MAX];
        ssize_t n;
        char *e, *b;

        path = path_join(dir, attr);
        if (!path)
                return -ENOMEM;

        n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
                return -errno; /* -ENOENT: no link; -EINVAL: not a link */
        target[n] = '\0';

        /* Strip trailing slashes, then take the last component. */
        while (n > 1 && target[n - 1] == '/')
                target[--n] = '\0';
        e = strrchr(target, '/');
        b = e ? e + 1 : target;
        if (*b == '\0' || streq(b, ".") || streq(b, ".."))
                return -EINVAL;

        b = strdup(b);
        if (!b)
                return -ENOMEM;
        *ret = b;
        return 0;
}

int sysfs_read_vfio_cdev(const char *syspath, char **ret) {
        _cleanup_free_ char *dir_path = NULL;
        _cleanup_closedir_ DIR *dir = NULL;
        struct dirent *de;

        assert(ret);
        *ret = NULL;
        dir_path = path_join(syspath, SYSFS_ATTR_VFIO_DEV);
        if (!dir_path)
                return -ENOMEM;
        dir = opendir(dir_path);
        if (!dir)
                return 0;
        /* One entry vfioN; only a class device with a "dev" attribute has a node. */
        while ((de = readdir(dir))) {
                _cleanup_free_ char *dev_attr = NULL;

                if (!strneq(de->d_name, "vfio", 4))
                        continue;
                if (asprintf(&dev_attr, "%s/%s/dev", dir_path, de->d_name) < 0)
                        return -ENOMEM;
                if (access(dev_attr, F_OK) < 0)
                        continue;
                if (asprintf(ret, "%s/%s", DEV_VFIO_DEVICES_DIR, de->d_name) < 0) {
                        *ret = NULL;
                        return -ENOMEM;
                }
                return 0;
        }
        return 0;
}
