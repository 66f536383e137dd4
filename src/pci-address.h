/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * PCI addresses ("BDF" with domain): "DDDD:BB:SS.F", as the kernel names
 * devices under /sys/bus/pci/devices. Domain is 16 bits on most hosts but
 * the kernel prints wider ones (Intel VMD uses 0x10000+), so it is 32 bits
 * here and formatted with at least 4 hex digits, like the kernel's
 * pci_name() ("%04x:%02x:%02x.%d", drivers/pci/probe.c).
 */

#include <stdbool.h>
#include <stdint.h>

typedef struct PciAddress {
        uint32_t domain;
        uint8_t bus;
        uint8_t slot; /* 0..31 */
        uint8_t function; /* 0..7 */
} PciAddress;

/* "ffffffff:ff:1f.7" + NUL */
#define PCI_ADDRESS_STRING_MAX 17

/*
 * Parse "DDDD:BB:SS.F" (domain 4..8 hex digits) or the short "BB:SS.F"
 * (domain 0), case-insensitive hex. Rejects trailing garbage, slot > 0x1f,
 * function > 7. Returns 0 or -EINVAL; *ret written only on success.
 */
int pci_address_from_string(const char *s, PciAddress *ret);

/* Canonical lowercase form into buf; returns buf. */
char *pci_address_format(const PciAddress *a, char buf[static PCI_ADDRESS_STRING_MAX]);

/* True if s is a canonical or short address (pci_address_from_string() succeeds). */
bool pci_address_is_valid(const char *s);

int pci_address_compare(const PciAddress *a, const PciAddress *b);
