/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>
#include <stdbool.h>
#include <sys/ioctl.h>

#include "table.h"

#define TABLE_SEPARATOR "  "
#define TABLE_ELLIPSIS "..."
#define TABLE_SHRINK_MIN 8 /* > strlen(TABLE_ELLIPSIS) */
#define ENV_COLUMNS "COLUMNS"

struct Table {
        size_t n_columns;
        char **cells; /* headers first, then rows, row-major */
        size_t n_cells;
        size_t n_allocated;
        size_t shrinkable; /* column index, or n_columns for none */
        size_t width;
};

size_t utf8_width(const char *s) {
        size_t n = 0;

        /* Count every byte that does not continue a multi-byte sequence (10xxxxxx). */
        for (; *s; s++)
                if (((unsigned char)*s & 0xc0) != 0x80)
                        n++;
        return n;
}

/* Byte length of the first max code points of s. */
static size_t utf8_prefix_bytes(const char *s, size_t max) {
        size_t n = 0, i;

        for (i = 0; s[i]; i++) {
                if (((unsigned char)s[i] & 0xc0) != 0x80) {
                        if (n == max)
                                break;
                        n++;
                }
        }
        return i;
}

static int table_push(Table *t, char *s) {
        if (!s)
                return -ENOMEM;
        if (t->n_cells >= t->n_allocated) {
                size_t n = t->n_allocated ? t->n_allocated * 2 : 64;
                char **c = reallocarray(t->cells, n, sizeof(char *));
                if (!c) {
                        free(s);
                        return -ENOMEM;
                }
                t->cells = c;
                t->n_allocated = n;
        }
        t->cells[t->n_cells++] = s;
        return 0;
}

Table *table_new(size_t n_columns, const char *const *headers) {
        Table *t;

        t = calloc(1, sizeof(Table));
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->shrinkable = n_columns;
        for (size_t i = 0; i < n_columns; i++)
                if (table_push(t, strdup(headers[i])) < 0)
                        return table_free(t);
        return t;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

int table_add_cell(Table *t, const char *s) {
        return table_push(t, strdup(s ?: "-"));
}

int table_add_cellf(Table *t, const char *format, ...) {
        char *s;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        if (!*s) {
                free(s);
                return table_add_cell(t, NULL);
        }
        return table_push(t, s);
}

void table_set_shrinkable(Table *t, size_t column) {
        t->shrinkable = column < t->n_columns ? column : t->n_columns;
}

void table_set_width(Table *t, size_t width) {
        t->width = width;
}

int table_print(Table *t, FILE *f) {
        _cleanup_free_ size_t *widths = NULL;
        size_t total = 0;

        if (t->n_cells % t->n_columns != 0)
                return -EINVAL;

        widths = calloc(t->n_columns, sizeof(size_t));
        if (!widths)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t w = utf8_width(t->cells[i]);
                if (w > widths[i % t->n_columns])
                        widths[i % t->n_columns] = w;
        }

        for (size_t c = 0; c < t->n_columns; c++)
                total += widths[c] + (c > 0 ? strlen(TABLE_SEPARATOR) : 0);

        if (t->width > 0 && total > t->width && t->shrinkable < t->n_columns) {
                size_t s = t->shrinkable, min = utf8_width(t->cells[s]), excess = total - t->width;

                if (min < TABLE_SHRINK_MIN)
                        min = TABLE_SHRINK_MIN;
                if (widths[s] > min) {
                        size_t spare = widths[s] - min;
                        widths[s] -= excess < spare ? excess : spare;
                }
        }

        for (size_t i = 0; i < t->n_cells; i++) {
                size_t c = i % t->n_columns, w = utf8_width(t->cells[i]);
                const char *cell = t->cells[i];
                bool last = c == t->n_columns - 1;

                if (c > 0)
                        fputs(TABLE_SEPARATOR, f);

                if (w > widths[c]) {
                        /* Only the shrinkable column can be narrower than its cells. */
                        size_t keep = widths[c] - strlen(TABLE_ELLIPSIS);
                        fprintf(f, "%.*s%s", (int)utf8_prefix_bytes(cell, keep), cell, TABLE_ELLIPSIS);
                        w = widths[c];
                } else
                        fputs(cell, f);

                if (last)
                        fputc('\n', f);
                else
                        fprintf(f, "%*s", (int)(widths[c] - w), "");
        }

        return 0;
}

size_t output_columns(void) {
        const char *e = getenv(ENV_COLUMNS);
        struct winsize ws = {};

        if (e) {
                char *end;
                unsigned long n;

                errno = 0;
                n = strtoul(e, &end, 10);
                if (errno == 0 && end != e && *end == '\0' && n > 0 && n < 100000)
                        return n;
        }

        if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) >= 0 && ws.ws_col > 0)
                return ws.ws_col;

        /* Pipes and files get whole lines, for grep and friends. */
        return 0;
}
