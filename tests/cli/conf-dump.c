/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * conf-dump DIR...: load DIRs (lowest priority first) with the daemon's own
 * parser, desired_state_load() (src/desired-state.h), and print what it
 * understood as JSON, so tests/cli can check that the files `hostdevctl
 * export` and `import` write mean what they should:
 *   {"rules": [{"file", "Address", "PF", "VFIndex": [first, last], "Driver",
 *               "Group", "AllowCritical", "NumVFs", "VFDriver",
 *               "Mdev": {"Parent": [...], "Type", "UUID", "Attributes": [[NAME, VALUE], ...]}}, ...],
 *    "errors": [...], "rejected": N}
 * Keys of [Match] not used by those commands are not printed. Exit 0 when
 * loaded (errors or not), 1 on a failure to load.
 */

#include <stdio.h>
#include <string.h>
#include <json-c/json.h>

#include "desired-state.h"
#include "pci-address.h"

static json_object *address_json(const PciAddress *a) {
        char buf[PCI_ADDRESS_STRING_MAX];

        return json_object_new_string(pci_address_format(a, buf));
}

static void add_string(json_object *o, const char *key, const char *value) {
        if (value)
                json_object_object_add(o, key, json_object_new_string(value));
}

int main(int argc, char *argv[]) {
        DesiredState *s = NULL;
        json_object *out, *rules, *errors;
        int r;

        if (argc < 2) {
                fprintf(stderr, "usage: %s DIR...\n", argv[0]);
                return 2;
        }

        r = desired_state_load((const char *const *)argv + 1, &s);
        if (r < 0) {
                fprintf(stderr, "desired_state_load: %s\n", strerror(-r));
                return 1;
        }

        out = json_object_new_object();
        rules = json_object_new_array();
        errors = json_object_new_array();
        for (size_t i = 0; i < s->n_rules; i++) {
                const DesiredRule *rule = &s->rules[i];
                json_object *o = json_object_new_object();
                const char *base = strrchr(rule->path, '/');

                add_string(o, "file", base ? base + 1 : rule->path);
                if (rule->match.has_address)
                        json_object_object_add(o, "Address", address_json(&rule->match.address));
                if (rule->match.has_pf)
                        json_object_object_add(o, "PF", address_json(&rule->match.pf));
                if (rule->match.has_vf_index) {
                        json_object *range = json_object_new_array();
                        json_object_array_add(range, json_object_new_int64(rule->match.vf_index_first));
                        json_object_array_add(range, json_object_new_int64(rule->match.vf_index_last));
                        json_object_object_add(o, "VFIndex", range);
                }
                add_string(o, "Driver", driver_spec_to_string(&rule->driver));
                if (rule->driver.kind != DRIVER_KIND_UNSET) {
                        add_string(o, "Group", group_policy_to_string(rule->group));
                        json_object_object_add(
                                o, "AllowCritical", json_object_new_boolean(rule->allow_critical));
                }
                if (rule->has_num_vfs)
                        json_object_object_add(o, "NumVFs", json_object_new_int64(rule->num_vfs));
                add_string(o, "VFDriver", driver_spec_to_string(&rule->vf_driver));
                if (rule->mdev.present) {
                        /* [Mdev] (import mdevctl): {"Parent": [...], "Type", "UUID", "Attributes": [[n, v]]}
                         */
                        json_object *m = json_object_new_object(), *parents = json_object_new_array(),
                                    *attrs = json_object_new_array();

                        for (char **p = rule->mdev.parents; p && *p; p++)
                                json_object_array_add(parents, json_object_new_string(*p));
                        json_object_object_add(m, "Parent", parents);
                        add_string(m, "Type", rule->mdev.type);
                        if (rule->mdev.has_uuid)
                                add_string(m, "UUID", rule->mdev.uuid);
                        for (size_t k = 0; k < rule->mdev.n_attrs; k++) {
                                json_object *a = json_object_new_array();
                                json_object_array_add(a, json_object_new_string(rule->mdev.attrs[k].name));
                                json_object_array_add(a, json_object_new_string(rule->mdev.attrs[k].value));
                                json_object_array_add(attrs, a);
                        }
                        json_object_object_add(m, "Attributes", attrs);
                        json_object_object_add(o, "Mdev", m);
                }
                json_object_array_add(rules, o);
        }
        for (char **e = s->errors; e && *e; e++)
                json_object_array_add(errors, json_object_new_string(*e));
        json_object_object_add(out, "rules", rules);
        json_object_object_add(out, "errors", errors);
        json_object_object_add(out, "rejected", json_object_new_int64((int64_t)s->n_rejected));

        puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(out);
        desired_state_free(s);
        return 0;
}
