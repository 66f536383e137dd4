/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <systemd/sd-journal.h>

#include "escape.h"
#include "log.h"
#include "names.h"

static int max_level = LOG_INFO;
static LogTarget target = LOG_TARGET_AUTO;
static const char *ident = "hostdevd";
static int journal_cached = -1; /* -1: not checked yet */

static const char *const log_target_table[_LOG_TARGET_MAX] = {
        [LOG_TARGET_AUTO] = "auto",
        [LOG_TARGET_CONSOLE] = "console",
        [LOG_TARGET_JOURNAL] = "journal",
};

/* syslog(3) priorities in LogControl1's spelling. */
static const char *const log_level_table[] = {
        [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

const char *log_target_to_string(LogTarget t) {
        if (t < 0 || t >= _LOG_TARGET_MAX)
                return NULL;
        return log_target_table[t];
}

LogTarget log_target_from_string(const char *s) {
        if (!s)
                return _LOG_TARGET_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(log_target_table); i++)
                if (streq(s, log_target_table[i]))
                        return (LogTarget)i;
        return _LOG_TARGET_INVALID;
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t)level >= ELEMENTSOF(log_level_table))
                return NULL;
        return log_level_table[level];
}

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(log_level_table); i++)
                if (streq(s, log_level_table[i]))
                        return (int)i;
        return -EINVAL;
}

void log_set_max_level(int level) {
        if (level >= LOG_EMERG && level <= LOG_DEBUG)
                max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_target(LogTarget t) {
        if (t >= 0 && t < _LOG_TARGET_MAX)
                target = t;
}

LogTarget log_get_target(void) {
        return target;
}

void log_set_ident(const char *s) {
        if (s)
                ident = s;
}

const char *log_get_ident(void) {
        return ident;
}

/* systemd sets $JOURNAL_STREAM to "DEV:INO" of the stream it connected to our stderr. */
static int stderr_is_journal(void) {
        const char *e;
        unsigned long long dev, ino;
        struct stat st;

        if (journal_cached >= 0)
                return journal_cached;

        journal_cached = 0;
        e = getenv(ENV_JOURNAL_STREAM);
        if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) >= 0 &&
            (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
                journal_cached = 1;
        return journal_cached;
}

int log_internal(
        int level, int error, const char *extra_field, const char *message_id, const char *format, ...) {
        char formatted[2048], escaped[2048];
        const char *buf;
        va_list ap;
        int saved_errno = errno;
        bool use_journal;

        if (error != 0)
                errno = abs(error); /* for %m */

        va_start(ap, format);
        (void)vsnprintf(formatted, sizeof(formatted), format, ap);
        va_end(ap);
        /* Journal fields and terminals want UTF-8: a message that quotes raw bytes, or that the bound above
         * cut inside a character, is escaped whole (escape.h); callers quote untrusted bytes escaped
         * anyway, this is the net under them. */
        buf = formatted;
        if (!utf8_is_valid(formatted))
                buf = escape_to_buffer(formatted, strlen(formatted), escaped, sizeof(escaped));

        use_journal = target == LOG_TARGET_JOURNAL || (target == LOG_TARGET_AUTO && stderr_is_journal());
        if (use_journal) {
                char prio[sizeof("PRIORITY=") + 12], ident_field[128], mid[sizeof("MESSAGE_ID=") + 33];
                char errno_field[sizeof("ERRNO=") + 12];
                _cleanup_free_ char *message = NULL;
                struct iovec iov[10];
                size_t n = 0;

                if (asprintf(&message, "MESSAGE=%s", buf) < 0)
                        message = NULL;
                (void)snprintf(prio, sizeof(prio), "PRIORITY=%i", level);
                (void)snprintf(ident_field, sizeof(ident_field), "SYSLOG_IDENTIFIER=%s", ident);
                iov[n++] = (struct iovec){ .iov_base = message ? message : (char *)buf,
                                           .iov_len = strlen(message ? message : buf) };
                iov[n++] = (struct iovec){ .iov_base = prio, .iov_len = strlen(prio) };
                iov[n++] = (struct iovec){ .iov_base = ident_field, .iov_len = strlen(ident_field) };
                /* Several fields are separated by newlines (a value never holds one). */
                for (const char *f = extra_field; f && *f && n < ELEMENTSOF(iov) - 2;) {
                        size_t len = strcspn(f, "\n");

                        iov[n++] = (struct iovec){ .iov_base = (char *)f, .iov_len = len };
                        f += len + (f[len] == '\n');
                }
                if (message_id) {
                        (void)snprintf(mid, sizeof(mid), "MESSAGE_ID=%s", message_id);
                        iov[n++] = (struct iovec){ .iov_base = mid, .iov_len = strlen(mid) };
                }
                if (error != 0) {
                        (void)snprintf(errno_field, sizeof(errno_field), "ERRNO=%i", abs(error));
                        iov[n++] = (struct iovec){ .iov_base = errno_field, .iov_len = strlen(errno_field) };
                }
                (void)sd_journal_sendv(iov, (int)n);
        } else {
                /* Read every time: log lines come from several threads, and getenv() is safe there. */
                const char *e = getenv(ENV_HOSTDEVD_LOG_TIME);

                if (e && streq(e, "1")) {
                        struct timespec ts;

                        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
                        (void)fprintf(
                                stderr, "[%5lld.%06ld] %s: %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000,
                                ident, buf);
                } else
                        (void)fprintf(stderr, "%s: %s\n", ident, buf);
        }

        errno = saved_errno;
        return -abs(error);
}
