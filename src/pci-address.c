/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>

#include "macro.h"
#include "pci-address.h"

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char)tolower((unsigned char)c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -EINVAL;
}

/* Exactly |min|..|max| hex digits at *p; advances *p. */
static int parse_hex_field(const char **p, unsigned min, unsigned max, uint32_t *ret) {
        uint32_t v = 0;
        unsigned n = 0;
        int d;

        while ((d = unhex(**p)) >= 0) {
                if (n == max)
                        return -EINVAL;
                v = (v << 4) | (uint32_t)d;
                (*p)++;
                n++;
        }
        if (n < min)
                return -EINVAL;
        *ret = v;
        return 0;
}

int pci_address_from_string(const char *s, PciAddress *ret) {
        uint32_t domain = 0, bus, slot, function;
        const char *p = s, *colon;

        if (!s)
                return -EINVAL;

        /* Two colons: with domain; one colon: the short "BB:SS.F" form. */
        colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {
                if (parse_hex_field(&p, 4, 8, &domain) < 0 || *p != ':')
                        return -EINVAL;
                p++;
        }
        if (parse_hex_field(&p, 2, 2, &bus) < 0 || *p != ':')
                return -EINVAL;
        p++;
        if (parse_hex_field(&p, 2, 2, &slot) < 0 || *p != '.')
                return -EINVAL;
        p++;
        if (parse_hex_field(&p, 1, 1, &function) < 0 || *p != '\0')
                return -EINVAL;
        if (slot > 0x1f || function > 7)
                return -EINVAL;

        *ret = (PciAddress){
                .domain = domain,
                .bus = (uint8_t)bus,
                .slot = (uint8_t)slot,
                .function = (uint8_t)function,
        };
        return 0;
}

char *pci_address_format(const PciAddress *a, char buf[static PCI_ADDRESS_STRING_MAX]) {
        (void)snprintf(
                buf, PCI_ADDRESS_STRING_MAX, "%04x:%02x:%02x.%u", a->domain, a->bus, a->slot,
                (unsigned)a->function);
        return buf;
}

bool pci_address_is_valid(const char *s) {
        PciAddress a;

        return pci_address_from_string(s, &a) >= 0;
}

int pci_address_compare(const PciAddress *a, const PciAddress *b) {
        if (a->domain != b->domain)
                return a->domain < b->domain ? -1 : 1;
        if (a->bus != b->bus)
                return a->bus < b->bus ? -1 : 1;
        if (a->slot != b->slot)
                return a->slot < b->slot ? -1 : 1;
        if (a->function != b->function)
                return a->function < b->function ? -1 : 1;
        return 0;
}
