/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Identifiers from the outside: PCI addresses (src/pci-address.c), D-Bus
 * object path elements (src/object-path.c) and mdev UUIDs (src/mdev.c,
 * libuuid). The input is one string. Whatever parses must format back to a
 * canonical form that parses to the same value, and every path element must
 * map back to the identifier it was made from.
 */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "mdev.h"
#include "object-path.h"
#include "pci-address.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        return 0;
}

static void check_address(const char *s) {
        char canonical[PCI_ADDRESS_STRING_MAX], again[PCI_ADDRESS_STRING_MAX];
        _cleanup_free_ char *element = NULL, *back = NULL, *path = NULL;
        PciAddress a, b;
        int r;

        r = pci_address_from_string(s, &a);
        fuzz_check(r == 0 || r == -EINVAL, "pci_address_from_string('%s') = %d", s, r);
        fuzz_check(pci_address_is_valid(s) == (r == 0), "pci_address_is_valid('%s') disagrees", s);
        if (r < 0) {
                fuzz_check(!object_path_from_pci_address(s), "path from invalid address '%s'", s);
                return;
        }
        fuzz_check(a.slot <= 0x1f && a.function <= 7, "'%s': slot %u function %u", s, a.slot, a.function);
        pci_address_format(&a, canonical);
        fuzz_check(strlen(canonical) < sizeof(canonical), "'%s': format overflow", s);
        fuzz_check(pci_address_from_string(canonical, &b) == 0, "canonical '%s' does not parse", canonical);
        fuzz_check(pci_address_compare(&a, &b) == 0, "'%s' -> '%s' -> another address", s, canonical);
        pci_address_format(&b, again);
        fuzz_check(strcmp(canonical, again) == 0, "'%s' formats as '%s' then '%s'", s, canonical, again);

        element = object_path_element_from_pci_address(canonical);
        fuzz_check(element, "no path element for '%s'", canonical);
        fuzz_check(!strpbrk(element, "/:.-"), "path element '%s' not a D-Bus path element", element);
        fuzz_check(
                object_path_element_to_pci_address(element, &back) == 0, "'%s' does not map back", element);
        fuzz_check(strcmp(back, canonical) == 0, "'%s' -> '%s' -> '%s'", canonical, element, back);
        path = object_path_from_pci_address(canonical);
        fuzz_check(path && strstr(path, element), "object path of '%s'", canonical);
}

static void check_uuid(const char *s) {
        _cleanup_free_ char *element = NULL, *back = NULL;
        bool valid = mdev_uuid_is_valid(s);

        if (!valid) {
                _cleanup_free_ char *none = object_path_element_from_mdev_uuid(s);

                fuzz_check(!none, "path element '%s' from invalid UUID '%s'", none, s);
                return;
        }
        fuzz_check(strlen(s) + 1 == MDEV_UUID_STRING_MAX, "valid UUID '%s' of length %zu", s, strlen(s));
        for (const char *p = s; *p; p++)
                fuzz_check(
                        (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == '-',
                        "valid UUID '%s' not canonical lowercase", s);
        element = object_path_element_from_mdev_uuid(s);
        fuzz_check(element, "no path element for UUID '%s'", s);
        fuzz_check(object_path_element_to_mdev_uuid(element, &back) == 0, "'%s' does not map back", element);
        fuzz_check(strcmp(back, s) == 0, "'%s' -> '%s' -> '%s'", s, element, back);
}

/* An element from outside (an object path a client called): it must name a valid identifier whose own
 * element is the same string. */
static void check_element(const char *s) {
        _cleanup_free_ char *address = NULL, *uuid = NULL;
        int r;

        r = object_path_element_to_pci_address(s, &address);
        fuzz_check(r == 0 || r == -EINVAL, "object_path_element_to_pci_address('%s') = %d", s, r);
        if (r == 0) {
                _cleanup_free_ char *element = object_path_element_from_pci_address(address);

                fuzz_check(pci_address_is_valid(address), "element '%s' gives invalid '%s'", s, address);
                fuzz_check(
                        element && strcmp(element, s) == 0, "element '%s' -> '%s' -> '%s'", s, address,
                        strna(element));
        }
        r = object_path_element_to_mdev_uuid(s, &uuid);
        fuzz_check(r == 0 || r == -EINVAL, "object_path_element_to_mdev_uuid('%s') = %d", s, r);
        if (r == 0) {
                _cleanup_free_ char *element = object_path_element_from_mdev_uuid(uuid);

                fuzz_check(mdev_uuid_is_valid(uuid), "element '%s' gives invalid UUID '%s'", s, uuid);
                fuzz_check(
                        element && strcmp(element, s) == 0, "element '%s' -> '%s' -> '%s'", s, uuid,
                        strna(element));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = NULL;

        if (size > 256)
                return 0;
        s = fuzz_strndup(data, size);
        check_address(s);
        check_uuid(s);
        check_element(s);
        return 0;
}
