/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * A PCI function's and an mdev type's attributes as sysfs might show them
 * (src/pci-device.c, src/mdev.c over a umockdev testbed): the input is the
 * attributes' contents in the order of |attrs| below, separated by
 * "\n--\n"; attributes past the last piece are absent. The function is
 * always read (its problems go into ->errors, each naming its attribute),
 * and reading it again with the first read as the cache gives the same.
 */

#include <pci/pci.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/sysfs-tree.h"
#include "fuzz.h"
#include "macro.h"
#include "mdev.h"
#include "names.h"
#include "pci-device.h"

#define ADDRESS "0000:07:00.0"
#define SLOTS "/sys/bus/pci/slots/9"

typedef enum Where {
        IN_DEVICE,
        IN_SLOT,
        IN_TYPE,
} Where;

static const struct {
        Where where;
        const char *name;
} attrs[] = {
        { IN_DEVICE, SYSFS_ATTR_VENDOR },
        { IN_DEVICE, SYSFS_ATTR_DEVICE },
        { IN_DEVICE, SYSFS_ATTR_CLASS },
        { IN_DEVICE, SYSFS_ATTR_SUBSYSTEM_VENDOR },
        { IN_DEVICE, SYSFS_ATTR_SUBSYSTEM_DEVICE },
        { IN_DEVICE, SYSFS_ATTR_REVISION },
        { IN_DEVICE, SYSFS_ATTR_DRIVER_OVERRIDE },
        { IN_DEVICE, SYSFS_ATTR_NUMA_NODE },
        { IN_DEVICE, SYSFS_ATTR_RESOURCE },
        { IN_DEVICE, SYSFS_ATTR_SRIOV_TOTALVFS },
        { IN_DEVICE, SYSFS_ATTR_SRIOV_NUMVFS },
        { IN_DEVICE, SYSFS_ATTR_SRIOV_DRIVERS_AUTOPROBE },
        { IN_DEVICE, SYSFS_ATTR_SRIOV_OFFSET },
        { IN_DEVICE, SYSFS_ATTR_SRIOV_STRIDE },
        { IN_DEVICE, SYSFS_ATTR_RESET_METHOD },
        { IN_DEVICE, SYSFS_ATTR_BOOT_VGA },
        { IN_SLOT, SYSFS_ATTR_SLOT_ADDRESS },
        { IN_TYPE, SYSFS_ATTR_MDEV_TYPE_NAME },
        { IN_TYPE, SYSFS_ATTR_MDEV_TYPE_DESCRIPTION },
        { IN_TYPE, SYSFS_ATTR_MDEV_TYPE_DEVICE_API },
        { IN_TYPE, SYSFS_ATTR_MDEV_TYPE_AVAILABLE_INSTANCES },
        { IN_DEVICE, SYSFS_ATTR_CONFIG },
};

static SysfsTree *tree;
static struct pci_access *pacc;
static char *device_path, *type_path;

static void quiet(char *msg, ...) {
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        tree = sysfs_tree_new();
        device_path = strdup(sysfs_tree_add_pci(tree, ADDRESS, 0x8086, 0x1572, 0x020000));
        sysfs_tree_set_group(tree, ADDRESS, 12);
        sysfs_tree_make_pf(tree, ADDRESS, 4);
        sysfs_tree_add_slot(tree, "9", "0000:07:00");
        sysfs_tree_add_mdev_type(tree, device_path, "fuzz-type", "fuzz", 1);
        sysfs_tree_register_parent(tree, device_path);
        if (!device_path ||
            asprintf(&type_path, "%s/" SYSFS_ATTR_MDEV_SUPPORTED_TYPES "/fuzz-type", device_path) < 0)
                abort();

        pacc = pci_alloc();
        pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        pacc->warning = quiet;
        pci_init(pacc);
        return 0;
}

static void check_errors(char **errors, const char *what) {
        for (char **e = errors; e && *e; e++) {
                bool named = false;

                for (size_t i = 0; i < ELEMENTSOF(attrs); i++)
                        named = named ||
                                (strncmp(*e, attrs[i].name, strlen(attrs[i].name)) == 0 &&
                                 (*e)[strlen(attrs[i].name)] == ':');
                /* Links and directories read beside the attributes may be named too. The value quoted may
                 * hold any byte the attribute did (a newline too). */
                named = named || strchr(*e, ':');
                fuzz_check(named, "%s: error '%s' names no attribute", what, *e);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(pci_device_freep) PciDevice *d = NULL, *again = NULL;
        const uint8_t *parts[ELEMENTSOF(attrs)];
        size_t sizes[ELEMENTSOF(attrs)], n;
        char **type_errors = NULL;
        MdevType *types = NULL;
        size_t n_types = 0;
        unsigned diff;
        int r;

        if (size > 16 * 1024)
                return 0;
        n = fuzz_split(data, size, FUZZ_SEP("\n--\n"), parts, sizes, ELEMENTSOF(attrs));
        for (size_t i = 0; i < ELEMENTSOF(attrs); i++) {
                const char *dir = attrs[i].where == IN_DEVICE ? device_path
                        : attrs[i].where == IN_SLOT           ? SLOTS
                                                              : type_path;

                if (i < n)
                        sysfs_tree_write_binary(tree, dir, attrs[i].name, parts[i], sizes[i]);
                else
                        sysfs_tree_remove_file(tree, dir, attrs[i].name);
        }

        r = pci_device_read(ADDRESS, pacc, &d);
        fuzz_check(r == 0, "pci_device_read = %d", r);
        fuzz_check(strcmp(d->address, ADDRESS) == 0, "read %s as %s", ADDRESS, d->address);
        fuzz_check(d->class_code <= 0xffffff, "class 0x%x wider than 24 bits", d->class_code);
        check_errors(d->errors, ADDRESS);

        r = pci_device_reread(ADDRESS, pacc, d, &again);
        fuzz_check(r == 0, "pci_device_reread = %d", r);
        diff = pci_device_diff(d, again);
        fuzz_check(diff == 0, "read twice, differs in fields 0x%x", diff);

        r = mdev_types_read(device_path, &types, &n_types, &type_errors);
        fuzz_check(r == 0, "mdev_types_read = %d", r);
        fuzz_check(n_types == 1, "%zu mdev types", n_types);
        check_errors(type_errors, "mdev type");
        mdev_types_free(types, n_types);
        for (char **e = type_errors; e && *e; e++)
                free(*e);
        free(type_errors);
        return 0;
}
