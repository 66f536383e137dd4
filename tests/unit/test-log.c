/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "escape.h"
#include "log.h"
#include "macro.h"

/* What log_info("value '%s'", arg) (quoted) or log_info("%s", arg) writes to stderr (console target),
 * without the "ident: " prefix and the newline. */
static char *capture(bool quoted, const char *arg) {
        static char out[8192];
        FILE *tmp = tmpfile();
        int saved = dup(STDERR_FILENO);
        size_t n;

        assert_non_null(tmp);
        assert_true(saved >= 0);
        fflush(stderr);
        assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
        log_set_target(LOG_TARGET_CONSOLE);
        log_set_ident("t");
        if (quoted)
                log_info("value '%s'", arg);
        else
                log_info("%s", arg);
        fflush(stderr);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        rewind(tmp);
        n = fread(out, 1, sizeof(out) - 1, tmp);
        fclose(tmp);
        out[n] = '\0';
        assert_true(n >= 3 && strneq(out, "t: ", 3) && out[n - 1] == '\n');
        out[n - 1] = '\0';
        return out + 3;
}

static void test_log_valid_unchanged(void **state) {
        assert_string_equal(capture(true, "vfio-pci \\ \xc3\xa9"), "value 'vfio-pci \\ \xc3\xa9'");
}

/* A message that carries raw bytes is escaped whole (a net under callers that forgot ESCAPE_QUOTE). */
static void test_log_invalid_escaped(void **state) {
        assert_string_equal(capture(true, "vfio\xff"), "value \\'vfio\\xff\\'");
}

/* The 2 KiB line bound used to cut a character in half; the result must stay UTF-8. */
static void test_log_cut_at_character(void **state) {
        char arg[4096];
        const char *s;

        memset(arg, 'a', 2046);
        strcpy(arg + 2046, "\xc3\xa9 tail");
        s = capture(false, arg);
        assert_true(utf8_is_valid(s));
        assert_true(strlen(s) <= 2047);
        assert_string_equal(s + strlen(s) - strlen(ESCAPE_ELLIPSIS), ESCAPE_ELLIPSIS);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_log_valid_unchanged),
                cmocka_unit_test(test_log_invalid_escaped),
                cmocka_unit_test(test_log_cut_at_character),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
