/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Small versioned JSON state files (mdev-owned.h, mdev-uuids.h): a JSON object with an integer
 * "version", read whole with file_read_bounded() (no symbolic link as the last component), parsed
 * with json-c, and written whole with file_write_atomic() (file-util.h: temporary file, fsync,
 * rename, fsync of the directory; mode 0644, the directory made 0755), pretty-printed.
 */

#include <stddef.h>

#include <json-c/json.h>

#include "macro.h"

/*
 * Read |dir|/|name| (at most |max| bytes). Returns 1 and *ret, the root object (the caller
 * json_object_put()s it), whose "version" is the integer |version|; 0 and *ret NULL when the file does
 * not exist; -EUCLEAN for a file that is not such an object (a NUL byte, not JSON, not an object,
 * another version) and -errno of reading (-EFBIG, -ELOOP, ...), both with *ret_error "PATH: reason"
 * (|ret_error| may be NULL); -ENOMEM.
 */
int json_file_load(
        const char *dir, const char *name, size_t max, int version, json_object **ret, char **ret_error);

/* Write |root| to |dir|/|name| (the caller keeps |root|). Returns 0, -ENOMEM, -errno of writing. */
int json_file_save(const char *dir, const char *name, json_object *root);

/* *ret_error = the formatted message (NULL when out of memory; |ret_error| may be NULL); returns |r|. */
_printf_(3, 4) int json_file_error(char **ret_error, int r, const char *format, ...);
