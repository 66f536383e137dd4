/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "module-policy.h"
#include "names.h"

void module_policy_format_modalias(
        const char *prefix, const PciDevice *d, char ret[static PCI_MODALIAS_STRING_MAX]) {
        (void)snprintf(
                ret, PCI_MODALIAS_STRING_MAX, "%.8s:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X", prefix,
                (unsigned)d->vendor_id, (unsigned)d->device_id, (unsigned)d->subsystem_vendor_id,
                (unsigned)d->subsystem_device_id, (unsigned)(d->class_code >> 16) & 0xffu,
                (unsigned)(d->class_code >> 8) & 0xffu, (unsigned)d->class_code & 0xffu);
}

/* '-' and '_' alike (kmod's alias_normalize(), the kernel's load_module()). */
static bool module_name_equal(const char *a, const char *b) {
        for (;; a++, b++) {
                char x = *a == '-' ? '_' : *a, y = *b == '-' ? '_' : *b;

                if (x != y)
                        return false;
                if (!x)
                        return true;
        }
}

static bool module_name_in(char *const *l, const char *name) {
        for (char *const *i = l; i && *i; i++)
                if (module_name_equal(*i, name))
                        return true;
        return false;
}

ModuleVerdict module_policy_decide(const char *driver, char *const *modules, char *const *matching) {
        if (module_name_equal(driver, VFIO_PCI_DRIVER))
                return MODULE_VERDICT_VFIO_PCI;
        if (!modules || !modules[0])
                return MODULE_VERDICT_NOT_FOUND;
        /* The loader tries each module the name resolves to: each must be meant for the function. */
        for (char *const *i = modules; *i; i++)
                if (!module_name_in(matching, *i))
                        return MODULE_VERDICT_NO_MATCH;
        return MODULE_VERDICT_MATCHES;
}

bool module_verdict_allowed(ModuleVerdict v) {
        return v == MODULE_VERDICT_VFIO_PCI || v == MODULE_VERDICT_MATCHES;
}

static const char *const module_verdict_table[_MODULE_VERDICT_MAX] = {
        [MODULE_VERDICT_VFIO_PCI] = "it is vfio-pci",
        [MODULE_VERDICT_MATCHES] = "its module's aliases match the function",
        [MODULE_VERDICT_NOT_FOUND] = "it is not vfio-pci and the module index has no module of that name",
        [MODULE_VERDICT_NO_MATCH] = ("its module has no PCI or VFIO alias matching the function (not its "
                                     "driver, not a VFIO variant driver for it)"),
};

const char *module_verdict_to_string(ModuleVerdict v) {
        if (v < 0 || v >= _MODULE_VERDICT_MAX)
                return NULL;
        return module_verdict_table[v];
}
