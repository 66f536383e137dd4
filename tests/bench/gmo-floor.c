/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Benchmark floor for GetManagedObjects: what sd-bus alone costs to build and send a message of the
 * reply's exact shape and size, with nothing to look up, format or check.
 *
 *   gmo-floor ADDRESS [MESSAGES]
 *
 * Calls GetManagedObjects on org.hostdevd1 at the bus ADDRESS once and keeps the reply as a flat list
 * of operations (open a container with its signature, close it, append a value), every string with
 * its length. Then, MESSAGES times (default 10), replays the list into a new message and sends it
 * (a signal addressed to this process's own unique name, which the bus's default policy allows; it
 * is read back, untimed, so that no other client of the bus receives it) and flushes it:
 * one container open/close per container of the reply, one append per value, through the cheapest
 * public calls (sd_bus_message_append_string_space() for strings, so sd-bus checks no UTF-8 the
 * data is known to be). Before timing, one replayed message is sealed and its body compared with the
 * reply's (sd_bus_message_dump()), so the two are the same message body.
 *
 * Prints, one "key value" per line: objects, containers, values, string_bytes (the reply's
 * content), body_equal (yes/no), cpu_ms_mean and cpu_ms_min (this process's CPU time,
 * CLOCK_PROCESS_CPUTIME_ID, per message: build + send + flush).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-bus.h>

#include "macro.h"

typedef struct {
        char kind; /* 'o' open, 'c' close, 'v' value */
        char type;
        size_t len; /* strings: strlen(s) */
        char *s; /* open: the contents' signature; string-like values: the text */
        uint64_t bits; /* fixed-size values, in the type's own width */
} Op;

typedef struct {
        Op *ops;
        size_t n, allocated;
        size_t containers, values, string_bytes;
} OpList;

static bool string_like(char type) {
        return type == 's' || type == 'o' || type == 'g';
}

static Op *op_push(OpList *l) {
        if (l->n == l->allocated) {
                size_t a = l->allocated ? 2 * l->allocated : 4096;
                Op *n = realloc(l->ops, a * sizeof(Op));

                if (!n)
                        return NULL;
                l->ops = n;
                l->allocated = a;
        }
        l->ops[l->n] = (Op){};
        return &l->ops[l->n++];
}

static int record(sd_bus_message *m, OpList *l) {
        for (;;) {
                const char *contents = NULL;
                char type;
                Op *op;
                int r;

                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                op = op_push(l);
                if (!op)
                        return -ENOMEM;
                if (contents) {
                        op->kind = 'o';
                        op->type = type;
                        op->s = strdup(contents);
                        if (!op->s)
                                return -ENOMEM;
                        l->containers++;
                        r = sd_bus_message_enter_container(m, type, contents);
                        if (r < 0)
                                return r;
                        r = record(m, l);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                        op = op_push(l);
                        if (!op)
                                return -ENOMEM;
                        op->kind = 'c';
                        continue;
                }
                op->kind = 'v';
                op->type = type;
                l->values++;
                if (string_like(type)) {
                        const char *s;

                        r = sd_bus_message_read_basic(m, type, &s);
                        if (r < 0)
                                return r;
                        op->s = strdup(s);
                        if (!op->s)
                                return -ENOMEM;
                        op->len = strlen(s);
                        l->string_bytes += op->len;
                } else {
                        /* Every fixed-size type is at most 8 bytes; read_basic writes its own width. */
                        r = sd_bus_message_read_basic(m, type, &op->bits);
                        if (r < 0)
                                return r;
                }
        }
}

static int replay(sd_bus_message *m, const OpList *l) {
        for (size_t i = 0; i < l->n; i++) {
                const Op *op = &l->ops[i];
                char *p;
                int r;

                switch (op->kind) {
                case 'o':
                        r = sd_bus_message_open_container(m, op->type, op->s);
                        break;
                case 'c':
                        r = sd_bus_message_close_container(m);
                        break;
                default:
                        if (op->type == 's') {
                                r = sd_bus_message_append_string_space(m, op->len, &p);
                                if (r >= 0)
                                        memcpy(p, op->s, op->len);
                        } else if (string_like(op->type))
                                r = sd_bus_message_append_basic(m, op->type, op->s);
                        else
                                r = sd_bus_message_append_basic(m, op->type, &op->bits);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

#define FLOOR_PATH "/org/hostdevd1/bench"
#define FLOOR_INTERFACE "org.hostdevd1.Bench"
#define FLOOR_MEMBER "Floor"

static int on_floor(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        (*(unsigned *)userdata)++;
        return 1;
}

static int new_floor_message(sd_bus *bus, const OpList *l, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *self;
        int r;

        r = sd_bus_get_unique_name(bus, &self);
        if (r < 0)
                return r;
        r = sd_bus_message_new_signal(bus, &m, FLOOR_PATH, FLOOR_INTERFACE, FLOOR_MEMBER);
        if (r < 0)
                return r;
        r = sd_bus_message_set_destination(m, self);
        if (r < 0)
                return r;
        r = replay(m, l);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

static char *dump_body(sd_bus_message *m) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return NULL;
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        r = sd_bus_message_dump(m, f, 0);
        if (fclose(f) != 0 || r < 0)
                return NULL;
        return TAKE_PTR(buf);
}

static double cpu_now_ms(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *check = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *want = NULL, *got = NULL;
        unsigned messages = argc > 2 ? (unsigned)atoi(argv[2]) : 10;
        double total = 0, min = 0;
        unsigned received = 0;
        size_t objects = 0;
        OpList l = {};
        int r;

        if (argc < 2 || messages == 0) {
                fprintf(stderr, "Usage: %s ADDRESS [MESSAGES]\n", argv[0]);
                return 2;
        }
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, argv[1]);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                fprintf(stderr, "Failed to connect to '%s': %s\n", argv[1], strerror(-r));
                return 1;
        }
        r = sd_bus_call_method(
                bus, "org.hostdevd1", "/org/hostdevd1", "org.freedesktop.DBus.ObjectManager",
                "GetManagedObjects", &error, &reply, NULL);
        if (r < 0) {
                fprintf(stderr, "GetManagedObjects failed: %s\n", error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return 1;
        }
        r = record(reply, &l);
        if (r < 0) {
                fprintf(stderr, "Failed to read the reply: %s\n", strerror(-r));
                return 1;
        }
        /* The outer array's dict entries are the objects. */
        for (size_t i = 0, depth = 0; i < l.n; i++) {
                if (l.ops[i].kind == 'o' && depth++ == 1)
                        objects++;
                else if (l.ops[i].kind == 'c')
                        depth--;
        }

        r = sd_bus_match_signal(
                bus, NULL, NULL, FLOOR_PATH, FLOOR_INTERFACE, FLOOR_MEMBER, on_floor, &received);
        if (r < 0) {
                fprintf(stderr, "Failed to add the match: %s\n", strerror(-r));
                return 1;
        }
        r = new_floor_message(bus, &l, &check);
        if (r >= 0)
                r = sd_bus_message_seal(check, 1, 0);
        if (r < 0) {
                fprintf(stderr, "Failed to build the floor message: %s\n", strerror(-r));
                return 1;
        }
        want = dump_body(reply);
        got = dump_body(check);
        if (!want || !got) {
                fprintf(stderr, "Failed to dump the messages\n");
                return 1;
        }

        for (unsigned i = 0; i < messages; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                double t0 = cpu_now_ms(), t;

                r = new_floor_message(bus, &l, &m);
                if (r >= 0)
                        r = sd_bus_send(bus, m, NULL);
                if (r >= 0)
                        r = sd_bus_flush(bus);
                if (r < 0) {
                        fprintf(stderr, "Failed to send the floor message: %s\n", strerror(-r));
                        return 1;
                }
                t = cpu_now_ms() - t0;
                total += t;
                if (i == 0 || t < min)
                        min = t;
                /* Untimed: read our own message back before the next. */
                while (received <= i) {
                        r = sd_bus_process(bus, NULL);
                        if (r == 0)
                                r = sd_bus_wait(bus, UINT64_MAX);
                        if (r < 0) {
                                fprintf(stderr, "Failed to read the floor message back: %s\n", strerror(-r));
                                return 1;
                        }
                }
        }

        printf("objects %zu\ncontainers %zu\nvalues %zu\nstring_bytes %zu\nbody_equal %s\n", objects,
               l.containers, l.values, l.string_bytes, streq(want, got) ? "yes" : "no");
        printf("cpu_ms_mean %.3f\ncpu_ms_min %.3f\n", total / messages, min);

        for (size_t i = 0; i < l.n; i++)
                free(l.ops[i].s);
        free(l.ops);
        return streq(want, got) ? 0 : 1;
}
