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
extern const char *arg_format; /* handoff --format=FORMAT; NULL: qemu (json with --json) */
/* bind/unbind/reset/vfs: how long to wait for the daemon to finish (--timeout=SEC), 0: not at all. */
extern unsigned arg_timeout_sec;
extern const char *arg_mdev_parent; /* mdev create --parent=P; NULL: hostdevd places it */
extern const char *arg_mdev_uuid; /* mdev create --uuid=U; NULL: hostdevd picks one */

/* Options that apply to some verbs only (hostdevctl.c checks them against each verb). */
typedef enum VerbOption {
        OPTION_PERSIST = 1 << 0,
        OPTION_WHOLE_GROUP = 1 << 1,
        OPTION_ALLOW_CRITICAL = 1 << 2,
        OPTION_DRIVER = 1 << 3,
        OPTION_OUTPUT = 1 << 4,
        OPTION_TIMEOUT = 1 << 5,
        OPTION_PARENT = 1 << 6,
        OPTION_UUID = 1 << 7,
        OPTION_PID = 1 << 8,
        OPTION_DRY_RUN = 1 << 9,
        OPTION_RELEASE = 1 << 10,
        OPTION_DEVICE = 1 << 11,
        OPTION_FORMAT = 1 << 12,
        OPTION_MDEV = 1 << 13,
        OPTION_MDEV_RELEASE = 1 << 14,
} VerbOption;
extern unsigned arg_verb_options; /* the VerbOptions given */

/* Print o as JSON: indented on a terminal, one line otherwise. */
void print_json(json_object *o);
static inline const char *empty_to_null(const char *s) {
        return s && *s ? s : NULL;
}
/* Print t cut to the output's width; returns 0 or a negative errno (logged). */
int table_print_fit(Table *t);
/* "Name: value" lines, names right-aligned, as `show` prints them. Returns 0 or -ENOMEM (logged). */
int print_properties(json_object *props);

/* An int property that is -1 when absent, as a cell ("-"). Returns 0 or -ENOMEM. */
int table_add_optional_int(Table *t, json_object *o, const char *key);

/*
 * The properties (interface) of the object at path once its State is no
 * longer "pending" and, when expect_desired is not NULL, its DesiredDriver
 * is expect_desired (the daemon may reply before its planner or executor
 * ran), or after --timeout (arg_timeout_sec). Returns 0 or an exit status.
 */
int object_wait_settled(
        sd_bus *bus, const char *path, const char *interface, const char *expect_desired, json_object **ret);

/* Whether a method call may ask for a password: --no-ask-password not given and stdin is a terminal. */
bool ask_password(void);

/* Lease options (hostdevctl(1)): acquire --pid=PID, --dry-run, --release=host|keep; run --device=DEV. */
extern const char *arg_pid; /* NULL: not given */
extern bool arg_dry_run;
extern const char *arg_release; /* NULL: the daemon's default ("host") */
extern char **arg_devices; /* run --device, in order */
/* acquire, run --mdev=TYPE[@PARENT], in order: parallel strvs, the parent "" when none given. */
extern char **arg_mdev_types, **arg_mdev_parents;
extern const char *arg_mdev_release; /* --mdev-release=remove|keep; NULL: the daemon's ("remove") */

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
/* handoff.c: */
int verb_handoff(sd_bus *bus, int argc, char **argv);
/* conf-files.c: */
int verb_export(sd_bus *bus, int argc, char **argv);
int verb_import(sd_bus *bus, int argc, char **argv); /* bus is NULL: a file conversion */
/* mdev.c: mdev list|types|create|remove */
int verb_mdev(sd_bus *bus, int argc, char **argv);
