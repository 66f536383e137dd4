/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file-util.h"
#include "json-file.h"

int json_file_error(char **ret_error, int r, const char *format, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, format);
                if (vasprintf(ret_error, format, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

int json_file_load(
        const char *dir, const char *name, size_t max, int version, json_object **ret, char **ret_error) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        json_object *root, *v;
        size_t size;
        int r;

        assert(dir);
        assert(name);
        assert(ret);
        *ret = NULL;
        if (ret_error)
                *ret_error = NULL;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        r = file_read_bounded(path, max, FILE_READ_NOFOLLOW, &text, &size);
        if (r == -ENOENT)
                return 0;
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return json_file_error(ret_error, r, "%s: %s", path, strerror(-r));
        if (strlen(text) != size)
                return json_file_error(ret_error, -EUCLEAN, "%s: contains a NUL byte", path);

        root = json_tokener_parse(text);
        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return json_file_error(ret_error, -EUCLEAN, "%s: not a JSON object", path);
        }
        if (!json_object_object_get_ex(root, "version", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int(v) != version) {
                json_object_put(root);
                return json_file_error(ret_error, -EUCLEAN, "%s: \"version\" is not %d", path, version);
        }
        *ret = root;
        return 1;
}

int json_file_save(const char *dir, const char *name, json_object *root) {
        const char *text;

        assert(dir);
        assert(name);
        assert(root);
        text = json_object_to_json_string_ext(
                root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        return file_write_atomic(dir, name, text, strlen(text), 0644, 0755);
}
