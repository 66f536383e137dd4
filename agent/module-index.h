/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Read-only lookups in the kernel's module index with libkmod, for module-policy.h's decision: which
 * modules a driver name resolves to, and which modules' aliases match a function's modalias. The index
 * is what depmod(8) writes to /lib/modules/$(uname -r) (modules.dep.bin, modules.alias.bin,
 * modules.builtin.bin, ...), plus the aliases of modprobe.d(5); $HOSTDEVD_MODULES_DIR replaces the
 * directory (the tests' fixture index). Nothing is ever loaded here.
 *
 * Blocking: each lookup opens and reads index files (a few small reads, no module init): fine on the
 * event loop for one request at a time.
 */

#include <stdlib.h>

#include <libkmod.h>

#include "names.h"
#include "pci-device.h"

/* The directory for kmod_new(): $HOSTDEVD_MODULES_DIR when set and not empty, else NULL (libkmod's
 * default, /lib/modules/$(uname -r)). module-loader.c loads from the same index. */
static inline const char *module_index_dir(void) {
        const char *e = getenv(ENV_HOSTDEVD_MODULES_DIR);

        return e && *e ? e : NULL;
}

/*
 * The names of the modules libkmod finds for |name| (kmod_module_new_from_lookup(), as modprobe(8) and
 * module_loader_load_driver() look a name up: modprobe.d aliases, module names, aliases, built-in
 * modules), in libkmod's order, each once. |name| is a module name ("vfio_pci", '-' and '_' alike) or a
 * modalias ("pci:v00008086d...", matched against every module's alias patterns). *ret is a new strv,
 * NULL when nothing was found (an index that does not exist finds nothing). Returns 0, -EINVAL for an
 * empty |name|, -ENOMEM, or the negative errno of the lookup.
 */
int module_index_lookup(const char *name, char ***ret);

/*
 * module_policy_decide() for a request of driver |driver| (a name) on function |d|, from this index:
 * the modules |driver| resolves to, against those matching d's "pci:" and "vfio_pci:" modaliases
 * (module_policy_format_modalias()). Returns the ModuleVerdict (>= 0), or the negative errno of a
 * lookup that failed (callers treat it as not allowed).
 */
int module_index_check(const PciDevice *d, const char *driver);

/* Cleanup helpers for libkmod's types (_cleanup_(kmod_ctx_unrefp)), for module-index.c and
 * module-loader.c. */
static inline void kmod_ctx_unrefp(struct kmod_ctx **c) {
        if (*c)
                kmod_unref(*c);
}
static inline void kmod_list_unrefp(struct kmod_list **l) {
        if (*l)
                kmod_module_unref_list(*l);
}
