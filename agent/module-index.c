/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <errno.h>

#include <libkmod.h>

#include "log.h"
#include "macro.h"
#include "module-index.h"
#include "module-policy.h"
#include "pci-device.h"
#include "strv.h"

int module_index_lookup(const char *name, char ***ret) {
        _cleanup_(kmod_ctx_unrefp) struct kmod_ctx *ctx = NULL;
        _cleanup_(kmod_list_unrefp) struct kmod_list *list = NULL;
        _cleanup_strv_free_ char **names = NULL;
        struct kmod_list *i;
        int r;

        assert(ret);

        if (!name || !*name)
                return -EINVAL;

        ctx = kmod_new(module_index_dir(), NULL);
        if (!ctx)
                return -ENOMEM;
        r = kmod_module_new_from_lookup(ctx, name, &list);
        if (r < 0)
                return log_debug_errno(r, "Failed to look up module '%s': %m", name);

        kmod_list_foreach(i, list) {
                struct kmod_module *m = kmod_module_get_module(i);
                const char *n = kmod_module_get_name(m);

                r = n && !strv_contains(names, n) ? strv_extend(&names, n) : 0;
                kmod_module_unref(m);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(names);
        return 0;
}

int module_index_check(const PciDevice *d, const char *driver) {
        _cleanup_strv_free_ char **modules = NULL, **matching = NULL;
        static const char *const prefixes[] = { PCI_MODALIAS_PREFIX, VFIO_PCI_MODALIAS_PREFIX };
        int r;

        assert(d && driver);

        if (module_verdict_allowed(module_policy_decide(driver, NULL, NULL)))
                return MODULE_VERDICT_VFIO_PCI; /* no lookup needed */

        r = module_index_lookup(driver, &modules);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                _cleanup_strv_free_ char **found = NULL;
                char modalias[PCI_MODALIAS_STRING_MAX];

                module_policy_format_modalias(prefixes[i], d, modalias);
                r = module_index_lookup(modalias, &found);
                if (r < 0)
                        return r;
                STRV_FOREACH (m, found)
                        if (!strv_contains(matching, *m) && strv_extend(&matching, *m) < 0)
                                return -ENOMEM;
        }
        r = module_policy_decide(driver, modules, matching);
        log_debug("Driver %s for %s: %s", driver, d->address, module_verdict_to_string(r));
        return r;
}
