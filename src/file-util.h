/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Small files: one atomic replace and one bounded read, shared by the state store
 * (state-store.c), the reconciler's request files (agent/reconciler.c) and hostdevctl's exported
 * files (cli/conf-files.c), so that all of them keep the same durability contract and the same
 * limits. Nothing here logs; every function returns a negative errno on failure.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Write all |size| bytes of |buf| to |fd|, retrying on EINTR and after short writes.
 * Returns 0 or -errno of the failing write().
 */
int file_write_all(int fd, const char *buf, size_t size);

/*
 * Replace |dir|/|name| with |content| (|size| bytes) atomically: a reader sees the old file whole or
 * the new one whole, and after a crash one of them is there.
 *
 *   - |name| is one plain file name: not empty, no '/', not starting with '.' (the temporary
 *     files are ".NAME.XXXXXX" in |dir|): -EINVAL otherwise;
 *   - |dir_mode| non-zero: |dir| is created with that mode when missing (one level, as mkdir(2));
 *     zero: it must exist (-ENOENT);
 *   - the temporary file gets |mode| (fchmod(2), so the umask does not narrow it), all of |content|
 *     (EINTR retried), fsync(2); its close(2) is checked (deferred write errors show there);
 *   - renameat(2) over |name|, then fsync(2) of |dir|: the rename is durable only once the
 *     directory is (rename(2), fsync(2); a crash between them may leave the old file).
 * On any failure before the rename the temporary file is removed and |name| is untouched. A failure
 * of the directory's fsync after the rename returns its -errno with the new file in place.
 */
int file_write_atomic(
        const char *dir, const char *name, const char *content, size_t size, mode_t mode, mode_t dir_mode);

typedef enum FileReadFlags {
        FILE_READ_NOFOLLOW = 1 << 0, /* refuse a symbolic link as the last component (-ELOOP) */
        /* The caller knows |path| is a kernel attribute file (sysfs): no fstat(2), one syscall less
         * on the model's read path, which reads dozens of attributes per function. */
        FILE_READ_ATTRIBUTE = 1 << 1,
} FileReadFlags;

/*
 * Read the whole of |path|, at most |max| bytes. The file is opened with O_NONBLOCK and checked with
 * fstat(2) before any read, so a FIFO or a device node is refused at once and never blocks
 * (FILE_READ_ATTRIBUTE skips the check; the type errors below then do not occur).
 *
 * Returns 0 with *ret (NUL-terminated; it may hold NUL bytes of its own: *ret_size counts them)
 * and *ret_size (may be NULL), both written only on success; or
 *   -EFBIG   read(2) returned more than |max| bytes (st_size is not trusted: a sysfs attribute
 *            claims 4096 bytes, a /proc file 0); at most |max| + 1 bytes are read;
 *   -EISDIR  |path| is a directory;
 *   -EBADFD  |path| is neither a regular file nor a directory (FIFO, socket, device node);
 *   -ENOMEM, or the -errno of open(2) (-ENOENT, -EACCES, -ELOOP with FILE_READ_NOFOLLOW, ...),
 *   fstat(2) or read(2) (EINTR is retried).
 */
int file_read_bounded(const char *path, size_t max, FileReadFlags flags, char **ret, size_t *ret_size);
