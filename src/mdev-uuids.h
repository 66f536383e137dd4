/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Stable UUIDs for [Mdev] Count= rules (hostdevd.conf(5), UUID STABILITY): the UUIDs hostdevd picked
 * (libuuid, uuid_generate_random()) for each rule, kept in the state directory so that the same rule
 * gets the same UUIDs after a restart or a reboot, and a VM finds its mdev again.
 *
 * File: STATE_DIR/mdev-uuids.json (HOSTDEVD_MDEV_UUIDS_FILE), written whole with file_write_atomic()
 * (file-util.h: temporary file, fsync, rename, fsync of the directory), so a crash leaves the old or
 * the new file, never a torn one:
 *   { "version": 1,
 *     "rules": { "<rule key>": [ "<uuid>", ... ], ... } }
 * The rule key is the drop-in's file name ("50-gpu.conf": the name that layering replaces or masks,
 * so the same rule in /etc or /run keeps its UUIDs). A rule's list only grows: Count=2 after Count=4
 * uses the first two, and Count=4 again gets the same four back.
 *
 * Not thread-safe: the loop thread alone uses it (the resolution, then a save before executing).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MDEV_UUIDS_FILE_MAX (1024u * 1024u) /* larger files are refused */
#define MDEV_UUIDS_PER_RULE_MAX 4096u /* Count= above this is refused at parse time */

typedef struct MdevUuids MdevUuids;

/*
 * Load |dir|/mdev-uuids.json (|dir| copied). A missing file is an empty set. Returns 0, -EUCLEAN
 * with *ret_error ("PATH: reason", may be NULL) for a file that is not as above (nothing is
 * overwritten until the caller decides: mdev_uuids_new() starts empty), -ENOMEM, -errno.
 */
int mdev_uuids_load(const char *dir, MdevUuids **ret, char **ret_error);
/* An empty set saving to |dir|; |dir| NULL: never saved (tests, dry runs). */
int mdev_uuids_new(const char *dir, MdevUuids **ret);
MdevUuids *mdev_uuids_free(MdevUuids *u);
static inline void mdev_uuids_freep(MdevUuids **u) {
        if (*u)
                mdev_uuids_free(*u);
}

/*
 * The first |count| UUIDs of |key|, picking new ones as needed (then the set is dirty). A picked
 * UUID is never one of |avoid| (strv, may be NULL: UUIDs in use or named by other rules) nor one
 * already in the set. *ret: borrowed, valid until the next call that changes the set; |count|
 * entries. Returns 0, -ENOMEM, -E2BIG for |count| > MDEV_UUIDS_PER_RULE_MAX.
 */
int mdev_uuids_get(MdevUuids *u, const char *key, uint32_t count, char **avoid, char *const **ret);
/* Whether |uuid| is in any rule's list; its key in *ret_key (borrowed; may be NULL). */
bool mdev_uuids_contains(const MdevUuids *u, const char *uuid, const char **ret_key);
bool mdev_uuids_is_dirty(const MdevUuids *u);
/* Write the file if dirty. Returns 1 written, 0 clean or no directory, -errno. */
int mdev_uuids_save(MdevUuids *u);
