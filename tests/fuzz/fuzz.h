/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Shared by the fuzz targets (tests/fuzz/fuzz-*.c, libFuzzer): the entry
 * points libFuzzer calls, a private temporary directory per process, file
 * helpers, and a check that aborts with a message (libFuzzer then saves the
 * input as a crash). Nothing here parses what the code under test parses:
 * the targets hand the input to the real parsers and check what comes back.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort (a crash for libFuzzer) with |message| when |condition| is false. */
#define fuzz_check(condition, ...)                                              \
        do {                                                                    \
                if (!(condition))                                               \
                        fuzz_fail(__FILE__, __LINE__, #condition, __VA_ARGS__); \
        } while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *condition, const char *format, ...)
        __attribute__((format(printf, 4, 5)));

/* A new directory under $TMPDIR (default /tmp) named for |tag|, removed at exit. Aborts on failure. */
const char *fuzz_tmpdir(const char *tag);
/* mkdir |dir|/|name| (0755, existing is fine); returns the new path (malloc). Aborts on failure. */
char *fuzz_subdir(const char *dir, const char *name);
/* Write |size| bytes to |dir|/|name| (created or truncated). Aborts on failure. */
void fuzz_write_file(const char *dir, const char *name, const void *data, size_t size);
/* Remove every entry of |dir| (files and symlinks; not recursive). Aborts on failure. */
void fuzz_empty_dir(const char *dir);

/* A NUL-terminated copy of |data| (malloc); aborts on OOM. */
char *fuzz_strndup(const uint8_t *data, size_t size);
/*
 * Split |data| at each occurrence of the |sep_len| bytes of |sep| (NULs
 * allowed; FUZZ_SEP("...") gives both) into at most |max| pieces (the last
 * keeps the rest). Returns the count; pieces point into |data|.
 */
size_t fuzz_split(
        const uint8_t *data, size_t size, const char *sep, size_t sep_len, const uint8_t **pieces,
        size_t *sizes, size_t max);
#define FUZZ_SEP(literal) (literal), (sizeof(literal) - 1)
