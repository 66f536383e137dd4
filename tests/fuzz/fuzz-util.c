/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

void fuzz_fail(const char *file, int line, const char *condition, const char *format, ...) {
        va_list ap;

        fprintf(stderr, "%s:%d: check failed: %s: ", file, line, condition);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        abort();
}

static char *tmp_root;

static void remove_tree(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;

        if (d) {
                while ((de = readdir(d))) {
                        char *child;

                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        if (asprintf(&child, "%s/%s", path, de->d_name) < 0)
                                continue;
                        if (de->d_type == DT_DIR)
                                remove_tree(child);
                        else
                                (void)unlink(child);
                        free(child);
                }
                closedir(d);
        }
        (void)rmdir(path);
}

static void remove_tmp_root(void) {
        if (tmp_root)
                remove_tree(tmp_root);
}

const char *fuzz_tmpdir(const char *tag) {
        const char *base = getenv("TMPDIR");

        if (tmp_root)
                return tmp_root;
        if (asprintf(&tmp_root, "%s/hostdevd-%s-XXXXXX", base && *base ? base : "/tmp", tag) < 0)
                fuzz_fail(__FILE__, __LINE__, "asprintf", "out of memory");
        if (!mkdtemp(tmp_root))
                fuzz_fail(__FILE__, __LINE__, "mkdtemp", "%s: %s", tmp_root, strerror(errno));
        atexit(remove_tmp_root);
        return tmp_root;
}

char *fuzz_subdir(const char *dir, const char *name) {
        char *path;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                fuzz_fail(__FILE__, __LINE__, "asprintf", "out of memory");
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                fuzz_fail(__FILE__, __LINE__, "mkdir", "%s: %s", path, strerror(errno));
        return path;
}

void fuzz_write_file(const char *dir, const char *name, const void *data, size_t size) {
        const char *p = data;
        int fd;

        fd = openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                fuzz_fail(__FILE__, __LINE__, "open", "%s: %s", dir, strerror(errno));
        int file = openat(fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (file < 0)
                fuzz_fail(__FILE__, __LINE__, "open", "%s/%s: %s", dir, name, strerror(errno));
        while (size > 0) {
                ssize_t n = write(file, p, size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        fuzz_fail(__FILE__, __LINE__, "write", "%s/%s: %s", dir, name, strerror(errno));
                p += n;
                size -= (size_t)n;
        }
        if (close(file) < 0)
                fuzz_fail(__FILE__, __LINE__, "close", "%s/%s: %s", dir, name, strerror(errno));
        close(fd);
}

void fuzz_empty_dir(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                fuzz_fail(__FILE__, __LINE__, "opendir", "%s: %s", dir, strerror(errno));
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
                    unlinkat(dirfd(d), de->d_name, 0) < 0)
                        fuzz_fail(
                                __FILE__, __LINE__, "unlink", "%s/%s: %s", dir, de->d_name, strerror(errno));
        closedir(d);
}

char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        if (!s)
                fuzz_fail(__FILE__, __LINE__, "malloc", "out of memory");
        if (size > 0)
                memcpy(s, data, size);
        s[size] = 0;
        return s;
}

size_t fuzz_split(
        const uint8_t *data, size_t size, const char *sep, size_t len, const uint8_t **pieces, size_t *sizes,
        size_t max) {
        size_t n = 0;

        while (n + 1 < max) {
                const uint8_t *at = memmem(data, size, sep, len);

                if (!at)
                        break;
                pieces[n] = data;
                sizes[n++] = (size_t)(at - data);
                size -= (size_t)(at - data) + len;
                data = at + len;
        }
        pieces[n] = data;
        sizes[n++] = size;
        return n;
}
