/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Property values as people read them, for `show` (one value, possibly over
 * several lines) and `monitor` (everything on one line). The input is the
 * json-c value bus-client.c made from the D-Bus value, so the rules follow
 * the JSON type, plus a few property names whose numbers read best in hex
 * (ids, class) and structs that read best as a sentence (Bars, MdevTypes).
 */

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

typedef enum FormatFlags {
        /* One line: arrays joined by ",", "" stays empty (so "Driver=" reads as "no driver"). */
        FORMAT_ONELINE = 1 << 0,
} FormatFlags;

/*
 * The text of property name's value v; lines separated by '\n' unless
 * FORMAT_ONELINE. Absent values ("", -1, empty arrays) read "-" without
 * FORMAT_ONELINE. Returns a new string, NULL on OOM.
 */
char *format_property_value(const char *name, json_object *v, FormatFlags flags);

/* "16 MiB": the largest binary unit that divides size exactly. Returns a new string, NULL on OOM. */
char *format_bytes(uint64_t size);

/* True for the base class/subclass of PCI-to-PCI bridges (0x0604, 0x0609; PCI Code and ID Assignment spec).
 */
bool pci_class_is_bridge(uint32_t class);
