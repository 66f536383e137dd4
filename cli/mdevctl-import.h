/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * mdevctl's saved definitions as hostdevd.conf(5) [Mdev] rules, for
 * `hostdevctl import mdevctl` (hostdevctl(1), IMPORT). Pure functions: no
 * file system, no bus, so the conversion is tested on its own
 * (tests/unit/test-mdevctl-import.c).
 *
 * The format, as mdevctl 1.x reads and writes it (mdevctl's src/mdev.rs:
 * MDev::to_json() writes, MDev::load_from_json() and add_attributes() read;
 * src/environment.rs: get_defined_devices() walks the directory):
 *   /etc/mdevctl.d/PARENT/UUID, PARENT the parent's name under
 *   /sys/class/mdev_bus (a PCI address, or e.g. "mtty"), UUID the mdev's;
 *   the file one JSON object:
 *     {"mdev_type": "i915-GVTg_V5_8",
 *      "start": "auto" | "manual",
 *      "attrs": [{"NAME": "VALUE"}, ...]}
 *   "attrs" optional (mdevctl also accepts null), each element an object
 *   with exactly one key and a string value, written to the mdev's sysfs
 *   directory in array order after create. /etc/mdevctl.d/scripts.d holds
 *   mdevctl's callout scripts, not definitions.
 */

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

/* The subdirectory of mdevctl's configuration directory that holds its callout scripts. */
#define MDEVCTL_SCRIPTS_DIR "scripts.d"
/* Definition files are a few hundred bytes; anything this large is not one. */
#define MDEVCTL_FILE_MAX (64u * 1024u)

typedef struct MdevctlAttribute {
        char *name;
        char *value;
} MdevctlAttribute;

typedef struct MdevctlDefinition {
        char *parent; /* name under /sys/class/mdev_bus */
        char *uuid; /* lowercase, 8-4-4-4-12 */
        char *type; /* the type id, a directory under <parent>/mdev_supported_types */
        bool autostart; /* "start": "auto" */
        MdevctlAttribute *attrs; /* in the file's order */
        size_t n_attrs;
} MdevctlDefinition;

void mdevctl_definition_done(MdevctlDefinition *d);

/*
 * Parse one definition: parent and uuid are the directory and file names,
 * json the file's contents (size bytes, need not be NUL-terminated).
 * Everything that would not survive as a hostdevd.conf(5) line unchanged is
 * rejected rather than altered: control characters, white space at either
 * end of a value (libinih strips it), " ;" (libinih's inline comment), "/"
 * in a name, "=" in an attribute name, lines longer than
 * MDEVCTL_IMPORT_LINE_MAX.
 * Returns 0 and fills *ret; -EINVAL with *ret_error a new message naming
 * the offending value (without the file's path); -ENOMEM.
 */
int mdevctl_definition_parse(
        const char *parent, const char *uuid, const char *json, size_t size, MdevctlDefinition *ret,
        char **ret_error);

/* The longest "Key=value" line written: libinih's default INI_MAX_LINE (200) less newline and NUL. */
#define MDEVCTL_IMPORT_LINE_MAX 198u

/*
 * The hostdevd.conf(5) text for d; source (the file's path) goes into the
 * first comment line. A definition mdevctl starts on request only
 * ("manual") has its rule commented out, with a note on how to create the
 * mdev at runtime or for good, since hostdevd creates every [Mdev] it reads.
 * Returns 0 and a new string in *ret, or -ENOMEM.
 */
int mdevctl_definition_to_conf(const MdevctlDefinition *d, const char *source, char **ret);

/* The file name for d's rule: "50-mdevctl-UUID.conf". Returns a new string, NULL on OOM. */
char *mdevctl_definition_conf_name(const MdevctlDefinition *d);
