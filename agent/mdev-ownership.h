/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The ownership record of mdevs and vendor vGPUs (issue 14; DESIGN.md §3.5): the UUIDs of the mdevs
 * hostdevd created, and the VFs whose vendor vGPU type it set. The planner removes (or clears) only
 * what is listed here or what the desired state names by UUID= (PlannerInput.owned_mdevs,
 * .owned_vgpus); everything else is foreign and never touched.
 *
 * File: STATE_DIR/owned-mdevs.json (HOSTDEVD_MDEV_OWNED_FILE), written whole with file_write_atomic()
 * (temporary file, fsync, rename, fsync of the directory):
 *   { "version": 1, "mdevs": [ "<uuid>", ... ], "vgpus": [ "<VF address>", ... ] }
 * Crash semantics: the reconciler adds an instance and saves BEFORE it submits the write that creates
 * it, so a create interrupted by SIGKILL leaves a listed UUID, which the next plan removes if the
 * instance exists and no rule wants it, or adopts if one does; an entry whose instance is gone and
 * that no rule wants is dropped after the plan (mdev_ownership_forget()).
 *
 * Loop thread only (the reconciler); no lock.
 */

#include <stdbool.h>

typedef struct MdevOwnership MdevOwnership;

#define MDEV_OWNERSHIP_FILE_MAX (1024u * 1024u) /* larger files are refused */

/*
 * Load |state_dir|/owned-mdevs.json (|state_dir| copied). A missing file is an empty record. Returns 0,
 * -EUCLEAN with *ret_error ("PATH: reason") for a file that is not as above (the caller then must not
 * create or remove anything: an unknown owner means foreign), -ENOMEM, -errno of reading.
 */
int mdev_ownership_load(const char *state_dir, MdevOwnership **ret, char **ret_error);
MdevOwnership *mdev_ownership_free(MdevOwnership *o);
static inline void mdev_ownership_freep(MdevOwnership **o) {
        if (*o)
                mdev_ownership_free(*o);
}

/* Borrowed, sorted strv (NULL when empty): the owned mdev UUIDs / vGPU VF addresses. */
char **mdev_ownership_mdevs(const MdevOwnership *o);
char **mdev_ownership_vgpus(const MdevOwnership *o);

/* Add or drop |key| (a lowercase UUID when !vgpu, a canonical VF address when vgpu). Returns 1 when
 * the record changed (then it is dirty), 0 when it already was so, -EINVAL for a malformed key,
 * -ENOMEM. */
int mdev_ownership_add(MdevOwnership *o, bool vgpu, const char *key);
int mdev_ownership_forget(MdevOwnership *o, bool vgpu, const char *key);

/* Write the file if dirty. Returns 1 written, 0 clean, -errno (the record stays dirty). */
int mdev_ownership_save(MdevOwnership *o);
