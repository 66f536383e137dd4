/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Logging for hostdevd and hostdevctl.
 *
 * log_*_errno(r, ...) log with errno set to |r| (so "%m" prints it) and
 * return -|r|, so a failure path reads as one line:
 *     return log_error_errno(r, "Failed to read '%s': %m", path);
 *
 * Targets: "console" writes plain text to stderr; "journal" sends native
 * journal fields (PCI_ADDR=, MDEV_UUID=, MESSAGE_ID=) through sd-journal;
 * "auto" (default) picks journal when stderr is connected to the journal
 * ($JOURNAL_STREAM matches stderr's device:inode), console otherwise.
 *
 * Per STYLE.md, code under src/ logs at debug level only.
 */

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_CONSOLE,
        LOG_TARGET_JOURNAL,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

const char *log_target_to_string(LogTarget t);
LogTarget log_target_from_string(const char *s);

/* Levels are syslog's (LOG_ERR .. LOG_DEBUG); names as in LogControl1: "err", "info", "debug", ... */
const char *log_level_to_string(int level);
int log_level_from_string(const char *s);

void log_set_max_level(int level);
int log_get_max_level(void);
void log_set_target(LogTarget t);
LogTarget log_get_target(void);
void log_set_ident(const char *ident); /* SYSLOG_IDENTIFIER and console prefix; not copied */
const char *log_get_ident(void);

/*
 * extra_field: NULL or "KEY=value" journal fields separated by newlines (e.g. "PCI_ADDR=0000:41:00.0",
 * "VMM_PID=4242\nPCI_ADDR=0000:41:00.0"); the console target prints none of them;
 * message_id: NULL or a 32-hex MESSAGE_ID.
 * Returns -abs(error) if error != 0, else 0.
 */
int log_internal(
        int level, int error, const char *extra_field, const char *message_id, const char *format, ...)
        _printf_(5, 6);

#define log_full_errno(level, error, ...)                                                                   \
        ({                                                                                                  \
                int _l_ = (level), _e_ = (error);                                                           \
                (log_get_max_level() >= _l_) ? log_internal(_l_, _e_, NULL, NULL, __VA_ARGS__) : -abs(_e_); \
        })
#define log_full(level, ...) (void)log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

/* Per-device logging: adds the PCI_ADDR= journal field. |field| is e.g. "PCI_ADDR=0000:41:00.0". */
#define log_field_full_errno(level, error, field, message_id, ...)                                    \
        ({                                                                                            \
                int _l_ = (level), _e_ = (error);                                                     \
                (log_get_max_level() >= _l_) ? log_internal(_l_, _e_, field, message_id, __VA_ARGS__) \
                                             : -abs(_e_);                                             \
        })
