/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What hostdevctl's verbs share: the parsed options, output helpers, and
 * the verbs of the other files (hostdevctl.c dispatches).
 */

#include <stdbool.h>
#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "table.h"

/* Options (hostdevctl(1)). */
extern bool arg_json;
extern bool arg_ask_password; /* false with --no-ask-password */
extern bool arg_persist, arg_whole_group, arg_allow_critical;
extern const char *arg_vf_driver; /* vfs --driver=DRIVER; NULL when not given */
extern const char *arg_output; /* import --output=DIR; NULL: standard output */
/* bind/unbind/reset/vfs: how long to wait for the daemon to finish (--timeout=SEC), 0: not at all. */
extern unsigned arg_timeout_sec;

/* Print o as JSON: indented on a terminal, one line otherwise. */
void print_json(json_object *o);
static inline const char *empty_to_null(const char *s) {
        return s && *s ? s : NULL;
}
/* Print t cut to the output's width; returns 0 or a negative errno (logged). */
int table_print_fit(Table *t);
/* "Name: value" lines, names right-aligned, as `show` prints them. Returns 0 or -ENOMEM (logged). */
int print_properties(json_object *props);

/* Whether a method call may ask for a password: --no-ask-password not given and stdin is a terminal. */
bool ask_password(void);

/* Lease options (hostdevctl(1)): acquire --pid=PID, --dry-run, --release=host|keep; run --device=DEV. */
extern const char *arg_pid; /* NULL: not given */
extern bool arg_dry_run;
extern const char *arg_release; /* NULL: the daemon's default ("host") */
extern char **arg_devices; /* run --device, in order */

/* The Manager method that finds the Device object of |s|: an address, else a device name. */
const char *device_lookup_method(const char *s);

/* Verbs: argv[0] is the verb; return the exit status. manage.c: */
int verb_status(sd_bus *bus, int argc, char **argv);
int verb_plan(sd_bus *bus, int argc, char **argv);
int verb_apply(sd_bus *bus, int argc, char **argv);
int verb_reload(sd_bus *bus, int argc, char **argv);
int verb_bind(sd_bus *bus, int argc, char **argv);
int verb_unbind(sd_bus *bus, int argc, char **argv);
int verb_reset(sd_bus *bus, int argc, char **argv);
int verb_vfs(sd_bus *bus, int argc, char **argv);
/* lease.c: */
int verb_acquire(sd_bus *bus, int argc, char **argv);
int verb_release(sd_bus *bus, int argc, char **argv);
int verb_leases(sd_bus *bus, int argc, char **argv);
int verb_run(sd_bus *bus, int argc, char **argv);
/* conf-files.c: */
int verb_export(sd_bus *bus, int argc, char **argv);
int verb_import(sd_bus *bus, int argc, char **argv); /* bus is NULL: a file conversion */
