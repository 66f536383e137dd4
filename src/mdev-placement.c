/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "mdev-placement.h"
#include "names.h"

static const char *const mdev_placement_table[_MDEV_PLACEMENT_MAX] = {
        [MDEV_PLACEMENT_SPREAD] = CONF_MDEV_PLACEMENT_SPREAD,
        [MDEV_PLACEMENT_PACK] = CONF_MDEV_PLACEMENT_PACK,
};

const char *mdev_placement_to_string(MdevPlacement p) {
        return p >= 0 && p < _MDEV_PLACEMENT_MAX ? mdev_placement_table[p] : NULL;
}

MdevPlacement mdev_placement_from_string(const char *s) {
        for (size_t i = 0; s && i < _MDEV_PLACEMENT_MAX; i++)
                if (streq(mdev_placement_table[i], s))
                        return (MdevPlacement)i;
        return _MDEV_PLACEMENT_INVALID;
}

uint32_t mdev_placement_capacity(const PlacementCandidate *candidates, size_t n) {
        uint64_t sum = 0;

        for (size_t i = 0; i < n; i++)
                if (!candidates[i].blocked)
                        sum += candidates[i].available;
        return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

static int name_compare(const char *a, const char *b) {
        return strcmp(strempty(a), strempty(b));
}

/* Is candidate |a| (with |ha| of the rule's instances, |la| left) a better next home than |b|? */
static bool better(
        MdevPlacement policy, const PlacementCandidate *a, uint64_t ha, uint64_t la,
        const PlacementCandidate *b, uint64_t hb, uint64_t lb) {
        if (policy == MDEV_PLACEMENT_SPREAD) {
                if (ha != hb)
                        return ha < hb;
                if (la != lb)
                        return la > lb;
        } else if (ha != hb)
                return ha > hb;
        return name_compare(a->name, b->name) < 0;
}

int mdev_place(
        MdevPlacement policy, const PlacementCandidate *candidates, size_t n, uint32_t count, size_t *ret) {
        _cleanup_free_ uint64_t *held = NULL, *left = NULL;

        assert(candidates || n == 0);
        assert(ret || count == 0);

        if (policy < 0 || policy >= _MDEV_PLACEMENT_MAX)
                return -EINVAL;
        if (count == 0)
                return 0;
        if (mdev_placement_capacity(candidates, n) < count)
                return -ENOSPC;

        held = calloc(n, sizeof(uint64_t));
        left = calloc(n, sizeof(uint64_t));
        if (!held || !left)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                held[i] = candidates[i].existing;
                left[i] = candidates[i].blocked ? 0 : candidates[i].available;
        }

        for (uint32_t k = 0; k < count; k++) {
                size_t best = SIZE_MAX;

                for (size_t i = 0; i < n; i++) {
                        if (left[i] == 0)
                                continue;
                        if (best == SIZE_MAX ||
                            better(policy, &candidates[i], held[i], left[i], &candidates[best], held[best],
                                   left[best]))
                                best = i;
                }
                assert(best != SIZE_MAX); /* the capacity check above */
                ret[k] = best;
                held[best]++;
                left[best]--;
        }
        return 0;
}
