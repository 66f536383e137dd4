/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libkmod.h>

#include "log.h"
#include "macro.h"
#include "module-loader.h"

char *module_loader_module_name(const char *driver) {
        char *name;

        if (!driver)
                return NULL;
        name = strdup(driver);
        if (!name)
                return NULL;
        for (char *p = name; *p; p++)
                if (*p == '-')
                        *p = '_';
        return name;
}

static void kmod_ctx_unrefp(struct kmod_ctx **c) {
        if (*c)
                kmod_unref(*c);
}

static void kmod_list_unrefp(struct kmod_list **l) {
        if (*l)
                kmod_module_unref_list(*l);
}

int module_loader_load_driver(const char *driver, char **ret_module, void *userdata) {
        _cleanup_(kmod_ctx_unrefp) struct kmod_ctx *ctx = NULL;
        _cleanup_(kmod_list_unrefp) struct kmod_list *list = NULL;
        _cleanup_free_ char *name = NULL, *found = NULL;
        struct kmod_list *i;
        int r = -ENOENT;

        if (ret_module)
                *ret_module = NULL;
        if (!driver || !*driver)
                return -EINVAL;
        name = module_loader_module_name(driver);
        if (!name)
                return -ENOMEM;

        ctx = kmod_new(NULL, NULL); /* /lib/modules/$(uname -r), /etc/modprobe.d and friends */
        if (!ctx)
                return -ENOMEM;
        r = kmod_load_resources(ctx);
        if (r < 0) {
                /* Not fatal: kmod falls back to reading the text indexes. */
                log_debug_errno(r, "Failed to load the kmod indexes: %m, going on");
        }

        r = kmod_module_new_from_lookup(ctx, name, &list);
        if (r < 0)
                goto done;
        r = -ENOENT;
        kmod_list_foreach(i, list) {
                struct kmod_module *m = kmod_module_get_module(i);
                int k;

                if (!found) {
                        const char *n = kmod_module_get_name(m);
                        found = n ? strdup(n) : NULL;
                }
                k = kmod_module_probe_insert_module(m, KMOD_PROBE_APPLY_BLACKLIST, NULL, NULL, NULL, NULL);
                if (k == KMOD_PROBE_APPLY_BLACKLIST)
                        k = -EPERM; /* "blacklist <module>" in modprobe.d(5) */
                else if (k == -EEXIST)
                        k = 0;
                if (k < 0)
                        log_debug_errno(
                                k, "Failed to insert module %s for driver %s: %m",
                                strna(kmod_module_get_name(m)), driver);
                else
                        log_info("Loaded module %s for driver %s", strna(kmod_module_get_name(m)), driver);
                kmod_module_unref(m);
                if (k >= 0) {
                        r = 0;
                        break;
                }
                r = k;
        }

done:
        if (ret_module)
                *ret_module = found ? TAKE_PTR(found) : TAKE_PTR(name);
        return r;
}
