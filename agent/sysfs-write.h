/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The one helper through which hostdevd writes sysfs. Only the executor
 * (executor-lanes.c) calls it, and never on the event loop: a write to a driver's
 * attribute can block for seconds or forever in the kernel.
 *
 * Each call is one open(O_WRONLY|O_CLOEXEC|O_TRUNC), one write() of the
 * whole value, and close(), all checked:
 *   - no O_CREAT: sysfs attributes are never created by a write, so a
 *     missing one fails with -ENOENT instead of leaving a stray file;
 *   - O_TRUNC: real sysfs ignores it, but umockdev testbeds are plain files
 *     where writing "igb" over "(null)" would otherwise leave "igbll)";
 *   - a short write is -EIO: sysfs store functions see one buffer per write
 *     (Documentation/filesystems/sysfs.rst), a second write would be a
 *     second, different store;
 *   - close() is checked too (file systems may report deferred errors
 *     there); EINTR is not retried anywhere: a repeated store is not the
 *     same as one.
 * The value is written as given, without adding a newline; "\n"
 * (SYSFS_DRIVER_OVERRIDE_CLEAR) clears driver_override
 * (Documentation/ABI/testing/sysfs-bus-pci).
 *
 * It does not log (it runs on worker threads); it returns the message.
 */

/*
 * Write |value| to the existing attribute at |path|.
 * Returns 0, or a negative errno (-ENOENT: the attribute does not exist,
 * -EIO: short write, else what open/write/close reported). On failure, if
 * |ret_message| is not NULL, *ret_message is set to a new string naming the
 * value, the path, the failing step and the errno, e.g.
 * "Failed to write 'vfio-pci' to /sys/bus/pci/devices/0000:41:00.0/driver_override (open):
 * No such file or directory (ENOENT)"; it may be left NULL when out of memory.
 * *ret_message is not touched on success.
 */
int sysfs_write(const char *path, const char *value, char **ret_message);

/* Same, for attribute |attr| of directory |dir|. */
int sysfs_write_attribute(const char *dir, const char *attr, const char *value, char **ret_message);

/* The value quoted for messages: "\n" is shown as '\n'. Returns a new string, or NULL on OOM. */
char *sysfs_write_quote_value(const char *value);
