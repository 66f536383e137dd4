/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * NULL-terminated string vectors ("strv"), as PciDevice.virtfns,
 * .reset_methods and .errors are. Internal to the core; a NULL strv is a
 * valid empty one everywhere.
 */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

char **strv_free(char **l); /* frees the strings and the vector; returns NULL */
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

size_t strv_length(char *const *l);
bool strv_equal(char *const *a, char *const *b); /* NULL equals an empty vector */
bool strv_contains(char *const *l, const char *s);
/* Remove the first |s| from |l| (freeing it); true if it was there. An emptied vector stays allocated. */
bool strv_remove(char **l, const char *s);

/* Append; strv_push() takes ownership of |value| (freed on failure too). Return 0 or -ENOMEM. */
int strv_push(char ***l, char *value);
int strv_extend(char ***l, const char *value);
int strv_extendf(char ***l, const char *format, ...) _printf_(2, 3);

/* Split at runs of any character in |separators|; empty input gives NULL. Returns 0 or -ENOMEM. */
/* The strings of |l| joined by |separator|: new string ("" for NULL or empty), NULL on OOM. */
char *strv_join(char *const *l, const char *separator);
int strv_split(const char *s, const char *separators, char ***ret);
