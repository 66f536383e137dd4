/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* file-util.h: the atomic replace and the bounded read, in a temporary directory. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "file-util.h"
#include "macro.h"

typedef struct Fixture {
        char dir[64];
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-file-util.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        *state = f;
        return 0;
}

static void remove_tree(const char *dir) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                assert_true(asprintf(&p, "%s/%s", dir, de->d_name) > 0);
                if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        remove_tree(p);
                else
                        (void)unlink(p);
        }
        (void)rmdir(dir);
}

static int teardown(void **state) {
        Fixture *f = *state;

        remove_tree(f->dir);
        free(f);
        return 0;
}

static char *path_in(const Fixture *f, const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", f->dir, name) > 0);
        return p;
}

/* Names in |dir| that start with '.' but are not "." or "..": leftover temporary files. */
static unsigned count_hidden(const char *dir) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] == '.' && !streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        return n;
}

static void test_round_trip(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *path = path_in(f, "a.conf"), *got = NULL, *again = NULL;
        const char text[] = "[Match]\nAddress=0000:01:00.0\n";
        const char binary[] = { 'x', '\0', 'y', '\n' };
        struct stat st;
        mode_t old_umask;
        size_t n;

        /* The mode asked for, whatever the umask. */
        old_umask = umask(077);
        assert_int_equal(file_write_atomic(f->dir, "a.conf", text, strlen(text), 0644, 0), 0);
        umask(old_umask);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(file_read_bounded(path, 4096, 0, &got, &n), 0);
        assert_int_equal(n, strlen(text));
        assert_string_equal(got, text);
        assert_int_equal(count_hidden(f->dir), 0);

        /* Replaced whole; NUL bytes are kept and counted. */
        assert_int_equal(file_write_atomic(f->dir, "a.conf", binary, sizeof(binary), 0600, 0), 0);
        assert_int_equal(file_read_bounded(path, 4096, 0, &again, &n), 0);
        assert_int_equal(n, sizeof(binary));
        assert_memory_equal(again, binary, sizeof(binary));
        assert_int_equal(again[n], '\0');
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* An empty file reads as "". */
        got = mfree(got);
        assert_int_equal(file_write_atomic(f->dir, "a.conf", "", 0, 0644, 0), 0);
        assert_int_equal(file_read_bounded(path, 4096, 0, &got, NULL), 0);
        assert_string_equal(got, "");
}

static void test_directory_created(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *sub = path_in(f, "sub"), *path = path_in(f, "sub/owned.json"), *got = NULL;
        struct stat st;

        /* dir_mode 0: the directory must exist. */
        assert_int_equal(file_write_atomic(sub, "owned.json", "{}", 2, 0600, 0), -ENOENT);
        assert_int_equal(stat(sub, &st), -1);

        assert_int_equal(file_write_atomic(sub, "owned.json", "{}", 2, 0600, 0700), 0);
        assert_int_equal(stat(sub, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(file_read_bounded(path, 16, 0, &got, NULL), 0);
        assert_string_equal(got, "{}");
        /* An existing directory is fine, and its mode left alone. */
        assert_int_equal(file_write_atomic(sub, "owned.json", "[]", 2, 0600, 0755), 0);
        assert_int_equal(stat(sub, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
}

static void test_bad_names(void **state) {
        Fixture *f = *state;

        assert_int_equal(file_write_atomic(f->dir, "", "x", 1, 0644, 0), -EINVAL);
        assert_int_equal(file_write_atomic(f->dir, ".hidden", "x", 1, 0644, 0), -EINVAL);
        assert_int_equal(file_write_atomic(f->dir, "a/b", "x", 1, 0644, 0), -EINVAL);
        assert_int_equal(file_write_atomic(f->dir, "..", "x", 1, 0644, 0), -EINVAL);
        assert_int_equal(count_hidden(f->dir), 0);
}

static void test_oversize(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *path = path_in(f, "big"), *got = NULL, *text = malloc(1001);

        assert_non_null(text);
        memset(text, 'z', 1000);
        text[1000] = '\0';
        assert_int_equal(file_write_atomic(f->dir, "big", text, 1000, 0644, 0), 0);
        /* Exactly the limit: read whole. One byte less: -EFBIG, and nothing returned. */
        assert_int_equal(file_read_bounded(path, 1000, 0, &got, NULL), 0);
        assert_int_equal(strlen(got), 1000);
        got = mfree(got);
        assert_int_equal(file_read_bounded(path, 999, 0, &got, NULL), -EFBIG);
        assert_null(got);
        assert_int_equal(file_read_bounded(path, 0, 0, &got, NULL), -EFBIG);
        assert_null(got);

        /* A sparse file far past the limit. */
        {
                _cleanup_free_ char *sparse = path_in(f, "sparse");
                int fd = open(sparse, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

                assert_true(fd >= 0);
                assert_int_equal(ftruncate(fd, 64 * 1024 * 1024), 0);
                assert_int_equal(close(fd), 0);
                assert_int_equal(file_read_bounded(sparse, 4096, 0, &got, NULL), -EFBIG);
                assert_null(got);
        }
}

static void test_not_regular(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *fifo = path_in(f, "fifo"), *target = path_in(f, "target"),
                            *link = path_in(f, "link"), *got = NULL;

        /* A FIFO with no writer: a plain open() would block forever. SIGALRM (default action: the
         * test dies) turns a hang into a failure. */
        assert_int_equal(mkfifo(fifo, 0600), 0);
        alarm(10);
        assert_int_equal(file_read_bounded(fifo, 4096, 0, &got, NULL), -EBADFD);
        alarm(0);
        assert_null(got);

        assert_int_equal(file_read_bounded(f->dir, 4096, 0, &got, NULL), -EISDIR);
        assert_null(got);
        assert_int_equal(file_read_bounded("/dev/null", 4096, 0, &got, NULL), -EBADFD);
        assert_null(got);

        _cleanup_free_ char *missing = path_in(f, "missing");
        assert_int_equal(file_read_bounded(missing, 4096, 0, &got, NULL), -ENOENT);

        /* A symbolic link: followed unless FILE_READ_NOFOLLOW. */
        assert_int_equal(file_write_atomic(f->dir, "target", "t\n", 2, 0644, 0), 0);
        assert_int_equal(symlink("target", link), 0);
        assert_int_equal(file_read_bounded(link, 4096, 0, &got, NULL), 0);
        assert_string_equal(got, "t\n");
        got = mfree(got);
        assert_int_equal(file_read_bounded(link, 4096, FILE_READ_NOFOLLOW, &got, NULL), -ELOOP);
        assert_null(got);
        assert_int_equal(file_read_bounded(target, 4096, FILE_READ_NOFOLLOW, &got, NULL), 0);
}

static void test_failed_write_keeps_old(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *path = path_in(f, "keep.conf"), *got = NULL, *big = malloc(8192);
        const char old[] = "the old content\n";
        struct rlimit saved, small;
        void (*prev)(int);

        assert_non_null(big);
        memset(big, 'n', 8192);
        assert_int_equal(file_write_atomic(f->dir, "keep.conf", old, strlen(old), 0644, 0), 0);

        /* RLIMIT_FSIZE fails the write past 100 bytes with EFBIG (SIGXFSZ ignored), also for root. */
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
        small = saved;
        small.rlim_cur = 100;
        prev = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        int r = file_write_atomic(f->dir, "keep.conf", big, 8192, 0644, 0);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
        signal(SIGXFSZ, prev);
        assert_int_equal(r, -EFBIG);

        assert_int_equal(file_read_bounded(path, 4096, 0, &got, NULL), 0);
        assert_string_equal(got, old);
        assert_int_equal(count_hidden(f->dir), 0); /* the temporary file is gone */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_directory_created, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_regular, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_write_keeps_old, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
