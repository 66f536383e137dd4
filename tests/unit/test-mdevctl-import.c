/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cli/mdevctl-import.c: mdevctl's definition files -> hostdevd.conf(5) [Mdev] rules.
 *
 * The inputs are as mdevctl 1.x writes them: MDev::write_config() stores
 * serde_json::to_string_pretty(MDev::to_json(false)) (two-space indent, keys
 * "mdev_type", "start", "attrs", attrs an array of one-key objects), in
 * /etc/mdevctl.d/PARENT/UUID (mdevctl's src/mdev.rs and src/environment.rs;
 * its testdata/list/device1.json is such a file, for a vfio_ap parent).
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "macro.h"
#include "mdevctl-import.h"

#define UUID1 "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"

/* As mdevctl's to_string_pretty() lays out a definition with attributes. */
static const char vfio_ap_json[] = "{\n"
                                   "  \"mdev_type\": \"vfio_ap-passthrough\",\n"
                                   "  \"start\": \"auto\",\n"
                                   "  \"attrs\": [\n"
                                   "    {\n"
                                   "      \"assign_adapter\": \"5\"\n"
                                   "    },\n"
                                   "    {\n"
                                   "      \"assign_adapter\": \"6\"\n"
                                   "    },\n"
                                   "    {\n"
                                   "      \"assign_domain\": \"0xab\"\n"
                                   "    },\n"
                                   "    {\n"
                                   "      \"assign_control_domain\": \"0xab\"\n"
                                   "    }\n"
                                   "  ]\n"
                                   "}";

static int parse(
        const char *parent, const char *uuid, const char *json, MdevctlDefinition *d, char **error) {
        *error = NULL;
        return mdevctl_definition_parse(parent, uuid, json, strlen(json), d, error);
}

static void test_vfio_ap_in_order(void **state) {
        _cleanup_(mdevctl_definition_done) MdevctlDefinition d = {};
        _cleanup_free_ char *error = NULL, *text = NULL, *name = NULL;

        assert_int_equal(parse("matrix", UUID1, vfio_ap_json, &d, &error), 0);
        assert_null(error);
        assert_string_equal(d.parent, "matrix");
        assert_string_equal(d.uuid, UUID1);
        assert_string_equal(d.type, "vfio_ap-passthrough");
        assert_true(d.autostart);
        /* Order kept, and a name given twice stays twice: mdevctl writes each in turn. */
        assert_int_equal(d.n_attrs, 4);
        assert_string_equal(d.attrs[0].name, "assign_adapter");
        assert_string_equal(d.attrs[0].value, "5");
        assert_string_equal(d.attrs[1].name, "assign_adapter");
        assert_string_equal(d.attrs[1].value, "6");
        assert_string_equal(d.attrs[2].name, "assign_domain");
        assert_string_equal(d.attrs[3].name, "assign_control_domain");
        assert_string_equal(d.attrs[3].value, "0xab");

        assert_int_equal(mdevctl_definition_to_conf(&d, "/etc/mdevctl.d/matrix/" UUID1, &text), 0);
        assert_string_equal(
                text,
                "# hostdevctl import mdevctl: /etc/mdevctl.d/matrix/" UUID1 "\n"
                "[Mdev]\n"
                "Parent=matrix\n"
                "Type=vfio_ap-passthrough\n"
                "UUID=" UUID1 "\n"
                "Attribute=assign_adapter=5\n"
                "Attribute=assign_adapter=6\n"
                "Attribute=assign_domain=0xab\n"
                "Attribute=assign_control_domain=0xab\n");
        name = mdevctl_definition_conf_name(&d);
        assert_string_equal(name, "50-mdevctl-" UUID1 ".conf");
}

static void test_pci_parent_no_attrs(void **state) {
        static const char *const inputs[] = {
                "{\"mdev_type\": \"nvidia-556\", \"start\": \"auto\"}",
                "{\"mdev_type\": \"nvidia-556\", \"start\": \"auto\", \"attrs\": []}",
                "{\"mdev_type\": \"nvidia-556\", \"start\": \"auto\", \"attrs\": null}\n\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                _cleanup_(mdevctl_definition_done) MdevctlDefinition d = {};
                _cleanup_free_ char *error = NULL, *text = NULL;

                /* mdevctl's own names are case-insensitive UUIDs; ours are lowercase. */
                assert_int_equal(
                        parse("0000:41:00.0", "83B8F4F2-509F-382F-3C1E-E6BFE0FA1001", inputs[i], &d, &error),
                        0);
                assert_string_equal(d.uuid, UUID1);
                assert_int_equal(d.n_attrs, 0);
                assert_int_equal(mdevctl_definition_to_conf(&d, "SRC", &text), 0);
                assert_string_equal(
                        text,
                        "# hostdevctl import mdevctl: SRC\n[Mdev]\nParent=0000:41:00.0\n"
                        "Type=nvidia-556\nUUID=" UUID1 "\n");
        }
}

static void test_manual_commented_out(void **state) {
        _cleanup_(mdevctl_definition_done) MdevctlDefinition d = {};
        _cleanup_free_ char *error = NULL, *text = NULL;
        const char *json = "{\"mdev_type\": \"mtty-2\", \"start\": \"manual\", \"attrs\": [{\"a\": \"1\"}]}";
        char *line, *save = NULL;

        assert_int_equal(parse("mtty", UUID1, json, &d, &error), 0);
        assert_false(d.autostart);
        assert_int_equal(mdevctl_definition_to_conf(&d, "SRC", &text), 0);
        /* Every line a comment (hostdevd reads the file as empty), the rule there to uncomment. */
        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                assert_true(line[0] == '#');
        mdevctl_definition_done(&d);
        free(text);
        text = NULL;
        assert_int_equal(parse("mtty", UUID1, json, &d, &error), 0);
        assert_int_equal(mdevctl_definition_to_conf(&d, "SRC", &text), 0);
        assert_non_null(
                strstr(text, "\n#[Mdev]\n#Parent=mtty\n#Type=mtty-2\n#UUID=" UUID1 "\n#Attribute=a=1\n"));
        assert_non_null(strstr(text, "hostdevctl mdev create mtty-2 --parent mtty --uuid " UUID1 "\n"));
}

/* Each malformed input is refused with a message naming what is wrong. */
static void test_errors(void **state) {
        static const struct {
                const char *uuid, *parent, *json, *message;
        } cases[] = {
                { "not-a-uuid", "mtty", "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\"}",
                  "'not-a-uuid' is not a UUID" },
                { UUID1 "0", "mtty", "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\"}", "is not a UUID" },
                { UUID1, "bad\nparent", "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\"}",
                  "invalid parent" },
                { UUID1, "mtty", "", "unexpected end of file" },
                { UUID1, "mtty", "{\"mdev_type\": \"mtty-1\", ", "unexpected end of file" },
                { UUID1, "mtty", "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\"} {}", "not valid JSON" },
                { UUID1, "mtty", "{'mdev_type': 'mtty-1'}", "not valid JSON" },
                { UUID1, "mtty", "[]", "not a JSON object but array" },
                { UUID1, "mtty", "{\"start\": \"auto\"}", "no \"mdev_type\"" },
                { UUID1, "mtty", "{\"mdev_type\": null, \"start\": \"auto\"}", "no \"mdev_type\"" },
                { UUID1, "mtty", "{\"mdev_type\": 5, \"start\": \"auto\"}",
                  "\"mdev_type\" is not a string but int" },
                { UUID1, "mtty", "{\"mdev_type\": \"../x\", \"start\": \"auto\"}",
                  "invalid mdev_type '../x'" },
                { UUID1, "mtty", "{\"mdev_type\": \"\", \"start\": \"auto\"}", "invalid mdev_type ''" },
                { UUID1, "mtty", "{\"mdev_type\": \"mtty-1\"}", "no \"start\"" },
                { UUID1, "mtty", "{\"mdev_type\": \"mtty-1\", \"start\": \"always\"}",
                  "invalid start '\"always\"'" },
                { UUID1, "mtty", "{\"mdev_type\": \"mtty-1\", \"start\": true}", "invalid start 'true'" },
                { UUID1, "mtty", "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"uuid\": \"x\"}",
                  "unknown key 'uuid'" },
                { UUID1, "mtty", "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": {}}",
                  "\"attrs\" is not an array but object" },
                { UUID1, "mtty", "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [\"a=1\"]}",
                  "attribute 1 is not an object" },
                { UUID1, "mtty",
                  "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"a\": \"1\", \"b\": \"2\"}]}",
                  "attribute 1 has 2 keys" },
                { UUID1, "mtty",
                  "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"a\": \"1\"}, {}]}",
                  "attribute 2 has 0 keys" },
                { UUID1, "mtty", "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"a\": 1}]}",
                  "attribute 'a' has a int value" },
                { UUID1, "mtty",
                  "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"../remove\": \"1\"}]}",
                  "invalid attribute name '../remove'" },
                { UUID1, "mtty",
                  "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"a=b\": \"1\"}]}",
                  "invalid attribute name 'a=b'" },
                { UUID1, "mtty",
                  "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"a\": \"1\\n2\"}]}",
                  "attribute 'a': value '1\n2'" },
                { UUID1, "mtty",
                  "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"a\": \" 1\"}]}",
                  "attribute 'a': value ' 1'" },
                { UUID1, "mtty",
                  "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"a\": \"1 ; x\"}]}",
                  "attribute 'a': value '1 ; x'" },
                { UUID1, "mtty",
                  "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\", \"attrs\": [{\"a\": \"1\\u00002\"}]}",
                  "NUL byte" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                MdevctlDefinition d = { .type = (char *)"untouched" };
                _cleanup_free_ char *error = NULL;

                assert_int_equal(parse(cases[i].parent, cases[i].uuid, cases[i].json, &d, &error), -EINVAL);
                assert_non_null(error);
                if (!strstr(error, cases[i].message))
                        fail_msg("case %zu: '%s' does not contain '%s'", i, error, cases[i].message);
                /* *ret written only on success. */
                assert_string_equal(d.type, "untouched");
        }
}

static void test_nul_byte_and_long_line(void **state) {
        _cleanup_(mdevctl_definition_done) MdevctlDefinition d = {};
        _cleanup_free_ char *error = NULL, *json = NULL;
        static const char with_nul[] = "{\"mdev_type\": \"mtty-1\", \"start\": \"auto\"}\0junk";
        char value[MDEVCTL_IMPORT_LINE_MAX + 1];

        assert_int_equal(
                mdevctl_definition_parse("mtty", UUID1, with_nul, sizeof(with_nul) - 1, &d, &error),
                -EINVAL);
        assert_non_null(strstr(error, "NUL byte"));
        free(error);
        error = NULL;

        /* The longest line that fits, then one character more. */
        memset(value, 'x', sizeof(value));
        value[MDEVCTL_IMPORT_LINE_MAX - strlen("Attribute=a=")] = '\0';
        assert_true(
                asprintf(
                        &json, "{\"mdev_type\": \"m\", \"start\": \"auto\", \"attrs\": [{\"a\": \"%s\"}]}",
                        value) > 0);
        assert_int_equal(parse("mtty", UUID1, json, &d, &error), 0);
        mdevctl_definition_done(&d);
        free(json);
        value[MDEVCTL_IMPORT_LINE_MAX - strlen("Attribute=a=")] = 'x';
        value[MDEVCTL_IMPORT_LINE_MAX - strlen("Attribute=a=") + 1] = '\0';
        assert_true(
                asprintf(
                        &json, "{\"mdev_type\": \"m\", \"start\": \"auto\", \"attrs\": [{\"a\": \"%s\"}]}",
                        value) > 0);
        assert_int_equal(parse("mtty", UUID1, json, &d, &error), -EINVAL);
        assert_non_null(strstr(error, "longer than 198"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_vfio_ap_in_order),       cmocka_unit_test(test_pci_parent_no_attrs),
                cmocka_unit_test(test_manual_commented_out),   cmocka_unit_test(test_errors),
                cmocka_unit_test(test_nul_byte_and_long_line),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
