/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file-util.h"
#include "macro.h"

int file_write_all(int fd, const char *buf, size_t size) {
        while (size > 0) {
                ssize_t k = write(fd, buf, size);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += k;
                size -= (size_t)k;
        }
        return 0;
}

int file_write_atomic(
        const char *dir, const char *name, const char *content, size_t size, mode_t mode, mode_t dir_mode) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        const char *tmp_name;
        int r;

        if (!dir || !name || !content || name[0] == '\0' || name[0] == '.' || strchr(name, '/'))
                return -EINVAL;

        if (dir_mode != 0 && mkdir(dir, dir_mode) < 0 && errno != EEXIST)
                return -errno;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, name) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        tmp_name = strrchr(tmp, '/') + 1;

        r = file_write_all(fd, content, size);
        if (r >= 0 && (fchmod(fd, mode) < 0 || fsync(fd) < 0))
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && renameat(dfd, tmp_name, dfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(dfd, tmp_name, 0);
                return r;
        }
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}

int file_read_bounded(const char *path, size_t max, FileReadFlags flags, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0, size;

        if (!path || !ret || max >= SIZE_MAX - 1)
                return -EINVAL;

        fd =
                open(path,
                     O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                             (flags & FILE_READ_NOFOLLOW ? O_NOFOLLOW : 0));
        if (fd < 0)
                return -errno;
        if (flags & FILE_READ_ATTRIBUTE)
                st.st_size = 0;
        else {
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (S_ISDIR(st.st_mode))
                        return -EISDIR;
                if (!S_ISREG(st.st_mode))
                        return -EBADFD;
        }

        /* st_size is a hint only: sysfs attributes claim 4096 whatever they hold, /proc files 0. So the
         * limit is judged by what read() returns: one byte past it is -EFBIG. The first buffer is the
         * size now with room to see that the file grew since fstat(), more as it does. */
        size = (size_t)st.st_size + 4096 < max + 1 ? (size_t)st.st_size + 4096 : max + 1;
        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;

                if (n == size) {
                        size_t more = size * 2 < max + 1 ? size * 2 : max + 1;
                        char *b;

                        if (more == size) /* cannot happen: n > max returned below */
                                return -EFBIG;
                        b = realloc(buf, more + 1);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        size = more;
                }
                k = read(fd, buf + n, size - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
                if (n > max)
                        return -EFBIG;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = n;
        return 0;
}
