/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Placement of new mdev instances of one rule on the parents its [Mdev] selects (hostdevd.conf(5),
 * Placement=). Pure: no I/O, no clock; the desired-state resolution calls it once per rule, in rule
 * order, with what earlier rules already placed folded into the candidates.
 *
 *   spread  each new instance goes to the candidate with the fewest instances of the rule so far
 *           (existing ones included), ties broken by the most instances left, then by name;
 *   pack    fill the candidate that already holds the most of the rule's instances (ties: name
 *           order) up to what it can take, then the next.
 * A candidate takes at most |available| new instances (the type's available_instances, less what
 * earlier rules placed there), and none at all when |blocked| (one type per physical GPU and
 * another type is active or placed there).
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum MdevPlacement {
        MDEV_PLACEMENT_SPREAD,
        MDEV_PLACEMENT_PACK,
        _MDEV_PLACEMENT_MAX,
        _MDEV_PLACEMENT_INVALID = -EINVAL,
} MdevPlacement;
const char *mdev_placement_to_string(MdevPlacement p); /* "spread", "pack" */
MdevPlacement mdev_placement_from_string(const char *s);

typedef struct PlacementCandidate {
        const char *name; /* the parent (borrowed), for the tie break */
        uint32_t existing; /* instances of this rule already on it */
        uint32_t available; /* how many more it can take */
        bool blocked; /* takes none (one type per GPU) */
} PlacementCandidate;

/*
 * Place |count| new instances on |candidates| (not modified). Writes, for each new instance in
 * order, the index of its candidate into |ret| (|count| entries, caller's array).
 * Returns 0; -ENOSPC when the candidates cannot take |count| in all (|ret| then undefined);
 * -EINVAL for a bad policy.
 */
int mdev_place(
        MdevPlacement policy, const PlacementCandidate *candidates, size_t n, uint32_t count, size_t *ret);
/* What |candidates| can take in all (the sum of |available| of those not blocked), saturating. */
uint32_t mdev_placement_capacity(const PlacementCandidate *candidates, size_t n);
