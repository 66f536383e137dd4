/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Checks on a parsed desired state, shared by fuzz-conf-file.c and fuzz-conf-layering.c. */

#include "desired-state.h"

/* Every rule consistent with hostdevd.conf(5) and desired-state.h; every error names its file. */
void fuzz_conf_check_state(const DesiredState *s);
/* Resolve |s| against a small fixed set of functions (a PF, two of its VFs, a GPU, an NVMe drive) and
 * check the resolution's shape. */
void fuzz_conf_check_resolution(const DesiredState *s);
