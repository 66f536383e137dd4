/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Plan filters: the part of a plan that may run now. The reconciler drops the transactions of
 * functions it must not touch yet (held after a failure, or in a job that still runs) and, for
 * functions that just appeared, keeps only theirs. A transaction is the unit: it is kept or dropped
 * whole, since its steps only make sense together (an IOMMU group's binds, a PF and its VFs).
 * Pure; sorted views make it O((actions + addresses) log addresses) for plans of thousands of
 * functions.
 */

#include "planner.h"

/*
 * A copy of |plan| without the transactions that touch any address of |exclude| (strv, may be
 * NULL), and, when |only| is not NULL, without those that touch no address of |only| either;
 * kept transactions renumbered 1..N in order; devices, mdevs and conflicts copied whole. Returns 0 and a
 * new Plan, or -ENOMEM.
 */
int plan_filter(const Plan *plan, char *const *exclude, char *const *only, Plan **ret);
/* plan_filter() with |only| NULL. */
int plan_without(const Plan *plan, char *const *exclude, Plan **ret);
