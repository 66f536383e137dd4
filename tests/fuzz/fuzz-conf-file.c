/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * One hostdevd.conf(5) file (src/desired-state.c, desired_state_add_file()):
 * the input is the file's content. The file gives one good rule or is
 * rejected with its problems listed; the result is then resolved against a
 * few fixed functions.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-conf.h"
#include "fuzz.h"
#include "macro.h"

static const char *dir;
static char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        dir = fuzz_tmpdir("fuzz-conf-file");
        if (asprintf(&path, "%s/50-fuzz.conf", dir) < 0)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(desired_state_freep) DesiredState *s = calloc(1, sizeof(DesiredState));
        int r;

        if (!s)
                abort();
        if (size > DESIRED_STATE_FILE_MAX + 1)
                return 0;
        fuzz_write_file(dir, "50-fuzz.conf", data, size);

        r = desired_state_add_file(s, path);
        fuzz_check(r == 0 || r == 1, "desired_state_add_file = %d", r);
        fuzz_check(s->n_rules == (size_t)r, "returned %d with %zu rules", r, s->n_rules);
        if (r == 1)
                fuzz_check(
                        strcmp(s->rules[0].path, path) == 0 && !s->errors && s->n_rejected == 0,
                        "a rule and errors");
        else
                fuzz_check(
                        (s->n_rejected == 1 && s->errors && !s->masked) ||
                                (s->n_rejected == 0 && !s->errors && s->masked),
                        "neither rejected nor masked");
        for (char **e = s->errors; e && *e; e++)
                fuzz_check(
                        strncmp(*e, path, strlen(path)) == 0 && (*e)[strlen(path)] == ':',
                        "error '%s' does not name the file", *e);
        if (size > DESIRED_STATE_FILE_MAX)
                fuzz_check(r == 0 && s->n_rejected == 1, "oversized file accepted");

        fuzz_conf_check_state(s);
        fuzz_conf_check_resolution(s);
        return 0;
}
