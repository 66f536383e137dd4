/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * mdevctl definitions -> hostdevd.conf(5) [Mdev] rules; the format and the
 * rules are in mdevctl-import.h.
 */

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <uuid/uuid.h>

#include "mdevctl-import.h"
#include "names.h"

void mdevctl_definition_done(MdevctlDefinition *d) {
        if (!d)
                return;
        free(d->parent);
        free(d->uuid);
        free(d->type);
        for (size_t i = 0; i < d->n_attrs; i++) {
                free(d->attrs[i].name);
                free(d->attrs[i].value);
        }
        free(d->attrs);
        *d = (MdevctlDefinition){};
}

_printf_(2, 3) static int fail(char **ret_error, const char *format, ...) {
        va_list ap;
        char *s;
        int k;

        va_start(ap, format);
        k = vasprintf(&s, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        *ret_error = s;
        return -EINVAL;
}

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* A name used as one path component in sysfs (a type's directory, a parent, an attribute file). */
static bool name_is_valid(const char *s, bool allow_equals) {
        return *s && !streq(s, ".") && !streq(s, "..") && !strchr(s, '/') && !has_control(s) &&
                !isspace((unsigned char)s[0]) && !isspace((unsigned char)s[strlen(s) - 1]) &&
                (allow_equals || !strchr(s, '='));
}

/* A value libinih hands back unchanged: no white space at either end, no inline comment, no control. */
static bool value_is_ini_safe(const char *s) {
        size_t n = strlen(s);

        return !has_control(s) &&
                (n == 0 || (!isspace((unsigned char)s[0]) && !isspace((unsigned char)s[n - 1]))) &&
                !strstr(s, " ;") && !strstr(s, "\t;");
}

static int parse_attrs(json_object *attrs, MdevctlDefinition *d, char **ret_error) {
        size_t n;

        if (!attrs || json_object_is_type(attrs, json_type_null))
                return 0;
        if (!json_object_is_type(attrs, json_type_array))
                return fail(
                        ret_error, "\"attrs\" is not an array but %s",
                        json_type_to_name(json_object_get_type(attrs)));

        n = json_object_array_length(attrs);
        if (n == 0)
                return 0;
        d->attrs = calloc(n, sizeof(MdevctlAttribute));
        if (!d->attrs)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                json_object *a = json_object_array_get_idx(attrs, i);
                const char *name = NULL, *value;
                json_object *v = NULL;

                if (!json_object_is_type(a, json_type_object))
                        return fail(
                                ret_error, "attribute %zu is not an object with one key but %s", i + 1,
                                json_type_to_name(json_object_get_type(a)));
                if (json_object_object_length(a) != 1)
                        return fail(
                                ret_error, "attribute %zu has %d keys, mdevctl writes exactly one", i + 1,
                                json_object_object_length(a));
                json_object_object_foreach(a, key, val) {
                        name = key;
                        v = val;
                }
                if (!json_object_is_type(v, json_type_string))
                        return fail(
                                ret_error, "attribute '%s' has a %s value, not a string", name,
                                json_type_to_name(json_object_get_type(v)));
                value = json_object_get_string(v);
                if ((size_t)json_object_get_string_len(v) != strlen(value))
                        return fail(ret_error, "attribute '%s' has a NUL byte in its value", name);
                if (!name_is_valid(name, false))
                        return fail(
                                ret_error,
                                "invalid attribute name '%s' (a file name in the mdev's sysfs "
                                "directory: no '/', '=', control characters or white space "
                                "at either end)",
                                name);
                if (!value_is_ini_safe(value))
                        return fail(
                                ret_error,
                                "attribute '%s': value '%s' cannot be written to hostdevd.conf "
                                "unchanged (control characters, white space at either end, "
                                "or ' ;')",
                                name, value);
                if (strlen("Attribute==") + strlen(name) + strlen(value) > MDEVCTL_IMPORT_LINE_MAX)
                        return fail(
                                ret_error, "attribute '%s': the line would be longer than %u characters",
                                name, MDEVCTL_IMPORT_LINE_MAX);

                d->attrs[i].name = strdup(name);
                d->attrs[i].value = strdup(value);
                d->n_attrs = i + 1;
                if (!d->attrs[i].name || !d->attrs[i].value)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_object(json_object *o, MdevctlDefinition *d, char **ret_error) {
        json_object *type = NULL, *start = NULL, *attrs = NULL;
        const char *s;

        if (!json_object_is_type(o, json_type_object))
                return fail(
                        ret_error, "not a JSON object but %s", json_type_to_name(json_object_get_type(o)));

        json_object_object_foreach(o, key, val) {
                if (streq(key, "mdev_type"))
                        type = val;
                else if (streq(key, "start"))
                        start = val;
                else if (streq(key, "attrs"))
                        attrs = val;
                else
                        /* mdevctl 1.x writes no other key: one we do not know could change the meaning. */
                        return fail(ret_error, "unknown key '%s' (expected mdev_type, start, attrs)", key);
        }

        if (!type || json_object_is_type(type, json_type_null))
                return fail(ret_error, "no \"mdev_type\"");
        if (!json_object_is_type(type, json_type_string))
                return fail(
                        ret_error, "\"mdev_type\" is not a string but %s",
                        json_type_to_name(json_object_get_type(type)));
        s = json_object_get_string(type);
        if (!name_is_valid(s, true) || (size_t)json_object_get_string_len(type) != strlen(s) ||
            strlen("Type=") + strlen(s) > MDEVCTL_IMPORT_LINE_MAX)
                return fail(ret_error, "invalid mdev_type '%s'", s);
        d->type = strdup(s);
        if (!d->type)
                return -ENOMEM;

        if (!start || json_object_is_type(start, json_type_null))
                return fail(ret_error, "no \"start\"");
        s = json_object_is_type(start, json_type_string) ? json_object_get_string(start) : NULL;
        if (s && streq(s, "auto"))
                d->autostart = true;
        else if (s && streq(s, "manual"))
                d->autostart = false;
        else
                return fail(
                        ret_error, "invalid start '%s' (expected \"auto\" or \"manual\")",
                        json_object_to_json_string_ext(start, JSON_C_TO_STRING_PLAIN));

        return parse_attrs(attrs, d, ret_error);
}

int mdevctl_definition_parse(
        const char *parent, const char *uuid, const char *json, size_t size, MdevctlDefinition *ret,
        char **ret_error) {
        _cleanup_(mdevctl_definition_done) MdevctlDefinition d = {};
        struct json_tokener *tok = NULL;
        json_object *o = NULL;
        char canonical[UUID_STR_LEN];
        enum json_tokener_error e;
        uuid_t u;
        int r;

        /* mdevctl skips a file whose name is no UUID ("Can't determine uuid"); we refuse to guess. */
        if (strlen(uuid) != UUID_STR_LEN - 1 || uuid_parse(uuid, u) < 0)
                return fail(ret_error, "file name '%s' is not a UUID", uuid);
        uuid_unparse_lower(u, canonical);
        if (!name_is_valid(parent, true) || strlen("Parent=") + strlen(parent) > MDEVCTL_IMPORT_LINE_MAX)
                return fail(ret_error, "invalid parent directory name '%s'", parent);
        if (memchr(json, '\0', size))
                return fail(ret_error, "contains a NUL byte");

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, json, (int)size);
        e = json_tokener_get_error(tok);
        json_tokener_free(tok);
        /* JSON_TOKENER_STRICT also refuses text after the object. */
        if (!o) {
                /* An incomplete document (empty file, cut short) ends without an error of its own. */
                return fail(
                        ret_error, "not valid JSON: %s",
                        e == json_tokener_continue ? "unexpected end of file" : json_tokener_error_desc(e));
        }
        d.parent = strdup(parent);
        d.uuid = strdup(canonical);
        if (!d.parent || !d.uuid) {
                json_object_put(o);
                return -ENOMEM;
        }
        r = parse_object(o, &d, ret_error);
        json_object_put(o);
        if (r < 0)
                return r;

        *ret = d;
        d = (MdevctlDefinition){};
        return 0;
}

char *mdevctl_definition_conf_name(const MdevctlDefinition *d) {
        char *s;

        return asprintf(&s, "50-mdevctl-%s.conf", d->uuid) < 0 ? NULL : s;
}

int mdevctl_definition_to_conf(const MdevctlDefinition *d, const char *source, char **ret) {
        /* The rule's lines; a "manual" definition gets them commented out. */
        const char *p = d->autostart ? "" : "#";
        char *text = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;

        fprintf(f, "# hostdevctl import mdevctl: %s\n", source);
        if (!d->autostart)
                fprintf(f,
                        "# mdevctl creates this mdev on request only (\"start\": \"manual\"), but hostdevd\n"
                        "# creates every [Mdev] it reads, so the rule below is commented out.\n"
                        "# To create the mdev until the next reboot:\n"
                        "#   hostdevctl mdev create %s --parent %s --uuid %s\n"
                        "# To have hostdevd create it always, remove the '#' before the lines below.\n",
                        d->type, d->parent, d->uuid);
        fprintf(f, "%s[%s]\n%sParent=%s\n%sType=%s\n%sUUID=%s\n", p, CONF_SECTION_MDEV, p, d->parent, p,
                d->type, p, d->uuid);
        /* In mdevctl's order: hostdevd writes them in the order of the file, as mdevctl's start does. */
        for (size_t i = 0; i < d->n_attrs; i++)
                fprintf(f, "%sAttribute=%s=%s\n", p, d->attrs[i].name, d->attrs[i].value);

        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}
