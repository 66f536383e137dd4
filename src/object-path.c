/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "mdev.h"
#include "names.h"
#include "object-path.h"
#include "pci-address.h"

/* True if s is the canonical form of a PCI address (what the kernel names the device). */
static bool pci_address_is_canonical(const char *s) {
        char buf[PCI_ADDRESS_STRING_MAX];
        PciAddress a;

        if (pci_address_from_string(s, &a) < 0)
                return false;
        return streq(pci_address_format(&a, buf), s);
}

/* prefix + s with every character in |from| replaced by '_'. */
static char *encode(const char *prefix, const char *s, const char *from) {
        char *e;

        if (asprintf(&e, "%s%s", prefix, s) < 0)
                return NULL;
        for (char *p = e + strlen(prefix); *p; p++)
                if (strchr(from, *p))
                        *p = '_';
        return e;
}

char *object_path_element_from_pci_address(const char *address) {
        if (!address || !pci_address_is_canonical(address))
                return NULL;
        return encode(HOSTDEVD_PCI_PATH_PREFIX, address, ":.");
}

char *object_path_element_from_mdev_uuid(const char *uuid) {
        if (!uuid || !mdev_uuid_is_valid(uuid))
                return NULL;
        return encode(HOSTDEVD_MDEV_PATH_PREFIX, uuid, "-");
}

int object_path_element_to_pci_address(const char *element, char **ret) {
        size_t n_prefix = strlen(HOSTDEVD_PCI_PATH_PREFIX), len;
        _cleanup_free_ char *a = NULL;
        char *p;

        if (!element || !strneq(element, HOSTDEVD_PCI_PATH_PREFIX, n_prefix))
                return -EINVAL;

        a = strdup(element + n_prefix);
        if (!a)
                return -ENOMEM;
        len = strlen(a);
        /* "DDDD_BB_SS_F": the last '_' was '.', the two before it ':'. The encoding never contains ':' or
         * '.', so "pci_0000_41:00_0" names nothing (it would map to 0000:41:00.0 as a second path). */
        if (len < 3 || a[len - 2] != '_' || strpbrk(a, ":."))
                return -EINVAL;
        a[len - 2] = '.';
        for (p = a; *p; p++)
                if (*p == '_')
                        *p = ':';
        if (!pci_address_is_canonical(a) || strchr(a, ':') == strrchr(a, ':'))
                return -EINVAL;

        *ret = TAKE_PTR(a);
        return 0;
}

int object_path_element_to_mdev_uuid(const char *element, char **ret) {
        size_t n_prefix = strlen(HOSTDEVD_MDEV_PATH_PREFIX);
        _cleanup_free_ char *u = NULL;

        if (!element || !strneq(element, HOSTDEVD_MDEV_PATH_PREFIX, n_prefix))
                return -EINVAL;

        u = strdup(element + n_prefix);
        if (!u)
                return -ENOMEM;
        for (char *p = u; *p; p++) {
                if (*p == '-')
                        return -EINVAL; /* the encoding never contains '-' */
                if (*p == '_')
                        *p = '-';
        }
        if (!mdev_uuid_is_valid(u))
                return -EINVAL;

        *ret = TAKE_PTR(u);
        return 0;
}

char *object_path_from_pci_address(const char *address) {
        _cleanup_free_ char *e = object_path_element_from_pci_address(address);
        char *p;

        if (!e || asprintf(&p, "%s/%s", HOSTDEVD_DEVICES_PATH, e) < 0)
                return NULL;
        return p;
}

char *object_path_format_pci_address(const char *address, char *buf, size_t size) {
        size_t n_path = strlen(HOSTDEVD_DEVICES_PATH "/" HOSTDEVD_PCI_PATH_PREFIX), n = strlen(address);

        if (n_path + n + 1 > size)
                return NULL;
        memcpy(buf, HOSTDEVD_DEVICES_PATH "/" HOSTDEVD_PCI_PATH_PREFIX, n_path);
        for (size_t i = 0; i <= n; i++)
                buf[n_path + i] = address[i] == ':' || address[i] == '.' ? '_' : address[i];
        return buf;
}

char *object_path_from_mdev_uuid(const char *uuid) {
        _cleanup_free_ char *e = object_path_element_from_mdev_uuid(uuid);
        char *p;

        if (!e || asprintf(&p, "%s/%s", HOSTDEVD_MDEVS_PATH, e) < 0)
                return NULL;
        return p;
}
