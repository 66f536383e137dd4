/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Which mdevs and vendor vGPU types hostdevd owns (issue 14): the instances it created, the ones a
 * UUID= rule named and it adopted, the VFs whose vGPU type it set. Only these are ever removed (or
 * cleared) when no rule wants them any more (planner.h, PlannerInput.owned_mdevs/owned_vgpus).
 *
 * File: STATE_DIR/owned-mdevs.json (HOSTDEVD_MDEV_OWNED_FILE), replaced whole by file_write_atomic()
 * on every change:
 *   { "version": 1,
 *     "mdevs": { "<uuid>": { "parent": "mtty", "type": "mtty-2" }, ... },
 *     "vgpus": { "<VF address>": { "type": "557" }, ... } }
 * Crash semantics: the executor's journal hook adds an instance BEFORE the write that creates it
 * (agent/ownership.c), so a SIGKILL between the two leaves a record of an instance that may or may
 * not exist: at the next start it is adopted if still wanted, removed if not; a record of an instance
 * that does not exist is harmless. A record is dropped only after a verified removal.
 *
 * Not thread-safe: agent/ownership.c holds its lock around every call.
 */

#include <stdbool.h>
#include <stddef.h>

#define MDEV_OWNED_FILE_MAX (4u * 1024u * 1024u)

typedef struct MdevOwned MdevOwned;

/* Load |dir|/owned-mdevs.json; a missing file is an empty set. Returns 0, -EUCLEAN with *ret_error
 * ("PATH: reason") for a file not as above, -ENOMEM, -errno. */
int mdev_owned_load(const char *dir, MdevOwned **ret, char **ret_error);
/* An empty set that saves to |dir| (NULL: never saved). */
int mdev_owned_new(const char *dir, MdevOwned **ret);
MdevOwned *mdev_owned_free(MdevOwned *o);
static inline void mdev_owned_freep(MdevOwned **o) {
        if (*o)
                mdev_owned_free(*o);
}

/*
 * Record |key| (an mdev's UUID, or with |vgpu| a VF's address) with its parent (NULL for a vGPU)
 * and type, and write the file. Returns 1 written, 0 already recorded alike, -EINVAL for a bad key,
 * -ENOMEM, -errno from writing (the set is then unchanged).
 */
int mdev_owned_add(MdevOwned *o, bool vgpu, const char *key, const char *parent, const char *type);
/* Drop |key| and write the file. Returns 1 written, 0 not recorded, -errno (the set unchanged). */
int mdev_owned_forget(MdevOwned *o, bool vgpu, const char *key);
bool mdev_owned_contains(const MdevOwned *o, bool vgpu, const char *key);
/* The keys (new strv, sorted; NULL when none). Returns 0 or -ENOMEM. */
int mdev_owned_list(const MdevOwned *o, bool vgpu, char ***ret);
