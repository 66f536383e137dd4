/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Column-aligned tables for people: a header line, then one line per row,
 * columns padded to their widest cell and separated by two spaces. One
 * column may be marked to shrink (its cells truncated with "...") so a
 * line fits the terminal; the last column is never padded.
 */

#include <stdio.h>

#include "macro.h"

typedef struct Table Table;

/* headers: n_columns column titles, copied. Returns NULL on OOM. */
Table *table_new(size_t n_columns, const char *const *headers);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

/*
 * Append the next cell, filling rows left to right. NULL prints as "-" (absent), "" as a blank cell;
 * table_add_cellf() treats an empty result as NULL. Returns 0 or -ENOMEM.
 */
int table_add_cell(Table *t, const char *s);
int table_add_cellf(Table *t, const char *format, ...) _printf_(2, 3);

/* The column truncated when a line would exceed the width; never below its header's width or 8. */
void table_set_shrinkable(Table *t, size_t column);
/* Maximum line width in characters; 0 (default) means unlimited. */
void table_set_width(Table *t, size_t width);

/* Write the table; returns 0, or -EINVAL if the last row is incomplete. */
int table_print(Table *t, FILE *f);

/* Width to fit output into: $COLUMNS if set, the terminal's when stdout is one, else 0 (unlimited). */
size_t output_columns(void);

/* Number of characters (UTF-8 code points) in s. */
size_t utf8_width(const char *s);
