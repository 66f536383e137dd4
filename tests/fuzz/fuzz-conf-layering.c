/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Drop-in layering (src/desired-state.c, desired_state_load()): the input
 * is several files, each introduced by a header line
 *
 *   DIR NAME            (DIR: usr, etc or run; NAME: [A-Za-z0-9._-]{1,32})
 *
 * and separated by "\n@@ ". The content "-> /dev/null" makes the file a
 * symlink to /dev/null (a mask). A piece with a bad header is skipped. The
 * three directories are loaded lowest first, as the daemon does, and the
 * result checked: each name decided by its file in the highest directory
 * that has it, rules in lexical order of basename, one rule at most per
 * name, and each rule equal to what that file gives alone.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz-conf.h"
#include "fuzz.h"
#include "macro.h"

#define MAX_FILES 12
#define N_DIRS 3

static const char *const dir_names[N_DIRS] = { "usr", "etc", "run" };
static char *dirs[N_DIRS + 1];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *tmp = fuzz_tmpdir("fuzz-conf-layering");

        for (size_t i = 0; i < N_DIRS; i++)
                dirs[i] = fuzz_subdir(tmp, dir_names[i]);
        return 0;
}

static bool name_ok(const char *name, size_t n) {
        if (n == 0 || n > 32 || (n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (name[i] == 0 ||
                    !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", name[i]))
                        return false;
        return true;
}

typedef struct Piece {
        int dir;
        char name[33];
} Piece;

/* The directory a name is decided by: the highest that has it (-1: none). */
static int deciding_dir(const Piece *pieces, size_t n, const char *name) {
        int best = -1;

        for (size_t i = 0; i < n; i++)
                if (strcmp(pieces[i].name, name) == 0 && pieces[i].dir > best)
                        best = pieces[i].dir;
        return best;
}

static bool rules_equal(const DesiredRule *a, const DesiredRule *b) {
        return a->match_line == b->match_line && a->driver_line == b->driver_line &&
                driver_spec_equal(&a->driver, &b->driver) &&
                driver_spec_equal(&a->vf_driver, &b->vf_driver) && a->group == b->group &&
                a->allow_critical == b->allow_critical && a->has_num_vfs == b->has_num_vfs &&
                a->num_vfs == b->num_vfs && a->match.has_address == b->match.has_address &&
                pci_address_compare(&a->match.address, &b->match.address) == 0 &&
                a->match.has_vendor == b->match.has_vendor && a->match.vendor == b->match.vendor &&
                a->match.has_class == b->match.has_class && a->match.class_value == b->match.class_value &&
                a->match.class_mask == b->match.class_mask && a->match.has_serial == b->match.has_serial &&
                a->match.serial == b->match.serial;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(desired_state_freep) DesiredState *s = NULL;
        const uint8_t *parts[MAX_FILES];
        size_t sizes[MAX_FILES], n, n_pieces = 0;
        Piece pieces[MAX_FILES];
        int r;

        if (size > 16 * 1024)
                return 0;
        for (size_t i = 0; i < N_DIRS; i++)
                fuzz_empty_dir(dirs[i]);

        n = fuzz_split(data, size, FUZZ_SEP("\n@@ "), parts, sizes, MAX_FILES);
        for (size_t i = 0; i < n; i++) {
                const char *p = (const char *)parts[i], *end = p + sizes[i], *space, *nl;
                int d = -1;

                nl = memchr(p, '\n', sizes[i]);
                if (!nl)
                        nl = end;
                space = memchr(p, ' ', (size_t)(nl - p));
                if (!space)
                        continue;
                for (int k = 0; k < N_DIRS; k++)
                        if ((size_t)(space - p) == strlen(dir_names[k]) &&
                            memcmp(p, dir_names[k], space - p) == 0)
                                d = k;
                if (d < 0 || !name_ok(space + 1, (size_t)(nl - space - 1)))
                        continue;

                Piece *q = &pieces[n_pieces];
                q->dir = d;
                memcpy(q->name, space + 1, (size_t)(nl - space - 1));
                q->name[nl - space - 1] = 0;
                /* The same name twice in one directory: the later piece replaces the file. */
                for (size_t j = 0; j < n_pieces; j++)
                        if (pieces[j].dir == d && strcmp(pieces[j].name, q->name) == 0)
                                pieces[j].dir = -1;
                n_pieces++;

                const char *content = nl < end ? nl + 1 : end;
                size_t len = (size_t)(end - content);
                _cleanup_free_ char *target = NULL;

                if (asprintf(&target, "%s/%s", dirs[d], q->name) < 0)
                        abort();
                (void)unlink(target);
                if (len == strlen("-> /dev/null") && memcmp(content, "-> /dev/null", len) == 0) {
                        fuzz_check(symlink("/dev/null", target) == 0, "symlink %s", target);
                } else
                        fuzz_write_file(dirs[d], q->name, content, len);
        }

        r = desired_state_load((const char *const *)dirs, &s);
        fuzz_check(r == 0, "desired_state_load = %d", r);
        fuzz_conf_check_state(s);

        for (size_t i = 0; i < s->n_rules; i++) {
                _cleanup_(desired_state_freep) DesiredState *alone = calloc(1, sizeof(DesiredState));
                const DesiredRule *rule = &s->rules[i];
                const char *base = strrchr(rule->path, '/') + 1;
                int d = deciding_dir(pieces, n_pieces, base);

                fuzz_check(d >= 0, "rule from '%s', a file never written", rule->path);
                fuzz_check(
                        strncmp(rule->path, dirs[d], strlen(dirs[d])) == 0, "%s: not the %s drop-in decides",
                        rule->path, dir_names[d]);
                if (!alone)
                        abort();
                fuzz_check(desired_state_add_file(alone, rule->path) == 1, "%s: no rule alone", rule->path);
                fuzz_check(rules_equal(rule, &alone->rules[0]), "%s: another rule alone", rule->path);
        }
        for (char **m = s->masked; m && *m; m++) {
                const char *base = strrchr(*m, '/') + 1;
                int d = deciding_dir(pieces, n_pieces, base);

                fuzz_check(
                        d >= 0 && strncmp(*m, dirs[d], strlen(dirs[d])) == 0,
                        "%s masks, not the deciding file", *m);
        }
        fuzz_conf_check_resolution(s);
        return 0;
}
