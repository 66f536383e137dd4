/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The desired state: hostdevd.conf(5) drop-ins, parsed with libinih, and
 * their resolution against the observed model.
 *
 * Layering, as systemd's configuration (systemd.syntax(7), "drop-in"):
 * HOSTDEVD_CONF_DIR_USR < HOSTDEVD_CONF_DIR_ETC < HOSTDEVD_CONF_DIR_RUN. All
 * "*.conf" of all directories are read in lexical order of their basename; a
 * file of the same name in a later directory replaces the earlier one; a
 * symlink to /dev/null or an empty file masks the name entirely. Anything
 * else that is not a regular file (FIFO, socket, device node, directory) is
 * rejected without being opened. File names and values are quoted escaped
 * (escape.h) in every message, so all of them are valid UTF-8.
 *
 * One file is one rule: a [Match] section (every key given must match:
 * AND), and what to do with what matches ([Device] and/or [SRIOV]). A file
 * with any error is rejected whole, with every problem listed as
 * "FILE:LINE: KEY=VALUE: reason" (or "FILE:LINE: reason" when no key is to
 * blame); the other files still count.
 *
 * Reloading (DESIGN §2, §3.7): parse into a new DesiredState; swap it in
 * only when it has no ->errors, else keep the old one whole (dropping just
 * the broken file's rule would release its devices to the host). At start,
 * with nothing to keep, the good rules apply. ->errors is what
 * Manager.ConfigErrors shows.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "pci-address.h"
#include "pci-device.h"

/* Files larger than this are rejected unread (a D-Bus caller can create files in /run). */
#define DESIRED_STATE_FILE_MAX (64u * 1024u)
/* Longer lines are rejected (libinih reads into a buffer of its compiled INI_MAX_LINE anyway). */
#define DESIRED_STATE_LINE_MAX 1024u
/* Longest driver name accepted in Driver=/VFDriver= (the kernel has no limit; real names are < 32). */
#define DESIRED_DRIVER_NAME_MAX 64u

typedef enum DriverKind {
        DRIVER_KIND_UNSET, /* key absent */
        DRIVER_KIND_NAMED, /* bind this driver via driver_override ("vfio-pci", "nvme", ...) */
        DRIVER_KIND_HOST, /* "host": clear driver_override, let the kernel's own match bind */
        DRIVER_KIND_NONE, /* "none": unbound */
        _DRIVER_KIND_MAX,
        _DRIVER_KIND_INVALID = -EINVAL,
} DriverKind;
const char *driver_kind_to_string(DriverKind k); /* "unset", "named", "host", "none" */

typedef struct DriverSpec {
        DriverKind kind;
        char *name; /* DRIVER_KIND_NAMED only, else NULL */
} DriverSpec;

/* "vfio-pci" | "host" | "none" | a driver name ([A-Za-z0-9_-], not starting with '-',
 * 1..DESIRED_DRIVER_NAME_MAX). -EINVAL, -ENOMEM. */
int driver_spec_parse(const char *s, DriverSpec *ret);
void driver_spec_done(DriverSpec *d);
/* The string form as written in files: the name, "host", "none", or NULL when unset. */
const char *driver_spec_to_string(const DriverSpec *d);
bool driver_spec_equal(const DriverSpec *a, const DriverSpec *b);
/* True for vfio-pci and VFIO variant drivers ("mlx5_vfio_pci"): the IOMMU group rules apply. */
bool driver_name_is_vfio(const char *name);

typedef enum GroupPolicy {
        GROUP_POLICY_STRICT, /* default: refuse while a group peer is not covered */
        GROUP_POLICY_WHOLE, /* bind every (non-bridge) group peer with the device */
        _GROUP_POLICY_MAX,
        _GROUP_POLICY_INVALID = -EINVAL,
} GroupPolicy;
const char *group_policy_to_string(GroupPolicy p); /* "strict", "whole" */
GroupPolicy group_policy_from_string(const char *s);

/* [Match]: a field takes part when its has_* flag is set (or the pointer is non-NULL). */
typedef struct DeviceMatch {
        bool has_address;
        PciAddress address;
        bool has_vendor, has_device, has_subsystem_vendor, has_subsystem_device;
        uint16_t vendor, device, subsystem_vendor, subsystem_device;
        bool has_class;
        uint32_t class_value, class_mask; /* matches when (class_code & mask) == value */
        bool has_pf;
        PciAddress pf; /* matches VFs whose physfn is this PF (never the PF itself) */
        bool has_vf_index;
        uint32_t vf_index_first, vf_index_last; /* inclusive; only with has_pf */
        char *slot; /* physical slot name (/sys/bus/pci/slots/<name>) */
        bool has_serial;
        uint64_t serial; /* PCIe DSN, as PciDevice.serial */
} DeviceMatch;

bool device_match_is_empty(const DeviceMatch *m);
/* True if every key of |m| matches |d| (pure; reads only d's fields). */
bool device_match_test(const DeviceMatch *m, const PciDevice *d);

typedef struct DesiredRule {
        char *path; /* the file, as found (e.g. "/etc/hostdevd/devices.d/50-gpu.conf") */
        unsigned match_line; /* line of the first [Match] key */
        DeviceMatch match;

        DriverSpec driver; /* [Device] Driver= */
        unsigned driver_line;
        GroupPolicy group; /* [Device] Group= */
        bool allow_critical; /* [Device] AllowCritical= */
        char *name; /* [Device] Name=, NULL if absent; unique across the files */
        unsigned name_line;

        bool has_num_vfs; /* [SRIOV] NumVFs= */
        uint32_t num_vfs;
        unsigned num_vfs_line;
        DriverSpec vf_driver; /* [SRIOV] VFDriver= */
        unsigned vf_driver_line;
} DesiredRule;

typedef struct DesiredState {
        DesiredRule *rules; /* good files only, in lexical order of basename (= precedence, last wins) */
        size_t n_rules;
        char **masked; /* paths that masked their name (symlink to /dev/null, empty file) */
        char **errors; /* "FILE:LINE: KEY=VALUE: reason" per problem of a rejected file */
        size_t n_rejected; /* files rejected */
} DesiredState;

DesiredState *desired_state_free(DesiredState *s);
static inline void desired_state_freep(DesiredState **s) {
        if (*s)
                desired_state_free(*s);
}

/*
 * Load every drop-in below |dirs| (NULL-terminated, lowest priority first;
 * NULL: the three standard directories of names.h). A missing directory is
 * no error. Returns 0 and a new DesiredState (rejected files leave their
 * messages in ->errors and add no rule), -ENOMEM, or -errno when a
 * directory exists but cannot be read (the caller keeps its old state).
 */
int desired_state_load(const char *const *dirs, DesiredState **ret);

/*
 * Parse one file (already chosen by the layering) and append its rule to
 * |s|, or its errors to s->errors. |path|, escaped (escape.h), is used for
 * messages, ->masked and DesiredRule.path. Only a regular file is opened
 * (non-blocking, so a FIFO swapped in cannot stall the caller); /dev/null
 * or an empty file masks; any other type, or a file that cannot be opened,
 * is rejected in ->errors; a file that no longer exists (removed since the
 * directory was listed) is skipped. Returns 1 if a rule was added, 0 if the
 * file was rejected, masks or vanished, -ENOMEM.
 */
int desired_state_add_file(DesiredState *s, const char *path);

/* ---- device names ([Device] Name=) --------------------------------------- */

/* Longest name accepted. */
#define DEVICE_NAME_MAX 64u
/* ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$, at most DEVICE_NAME_MAX: never a PCI address (no ':') nor a path. */
bool device_name_is_valid(const char *s);
/* The name of |d|: the Name= of the last rule (lexically) that names one and matches |d|; NULL if none. */
const char *desired_state_device_name(const DesiredState *s, const PciDevice *d);
/*
 * The function called |name| among |devices|: the one function the rule with that Name= matches (and
 * that no later named rule renames). Returns 0 and *ret (borrowed); -ENOENT no rule has that name;
 * -ENXIO it matches no function now; -ENOTUNIQ it matches several (its [Match] is too wide for a name).
 */
int desired_state_find_name(
        const DesiredState *s, const PciDevice *const *devices, size_t n_devices, const char *name,
        const PciDevice **ret);

/* ---- resolution against the observed model ------------------------------ */

/* What one function should be, and the rule that says so. */
typedef struct DesiredDevice {
        char address[PCI_ADDRESS_STRING_MAX];
        DriverSpec driver; /* never UNSET */
        GroupPolicy group;
        bool allow_critical;
        bool from_vf_driver; /* decided by the PF's [SRIOV] VFDriver=, not a rule matching the function */
        char *source; /* "FILE:LINE" of the deciding key */
} DesiredDevice;

/* What one SR-IOV PF should carry. */
typedef struct DesiredPf {
        char address[PCI_ADDRESS_STRING_MAX];
        bool has_num_vfs;
        uint32_t num_vfs;
        char *num_vfs_source; /* "FILE:LINE" or NULL */
        DriverSpec vf_driver; /* may be UNSET */
        char *vf_driver_source;
} DesiredPf;

typedef struct DesiredResolution {
        DesiredDevice *devices; /* sorted by address */
        size_t n_devices;
        DesiredPf *pfs; /* sorted by address; functions matched by an [SRIOV] rule (PF or not) */
        size_t n_pfs;
        char **conflicts; /* one line per overridden rule: "ADDR: KEY=V (FILE:LINE) overrides KEY=W
                             (FILE:LINE)" */
} DesiredResolution;

DesiredResolution *desired_resolution_free(DesiredResolution *r);
static inline void desired_resolution_freep(DesiredResolution **r) {
        if (*r)
                desired_resolution_free(*r);
}
const DesiredDevice *desired_resolution_get_device(const DesiredResolution *r, const char *address);
const DesiredPf *desired_resolution_get_pf(const DesiredResolution *r, const char *address);

/*
 * Which rule decides each function. Conflict resolution (hostdevd.conf(5),
 * CONFLICTS), per setting (Driver, NumVFs, VFDriver) independently:
 *   1. For a function's driver, a rule whose [Match] matches the function
 *      itself beats the VFDriver= of a rule matching its PF.
 *   2. Otherwise the rule of the lexically later file wins (as a later
 *      drop-in overrides an earlier one).
 * Two rules that want different outcomes (driver, Group=, AllowCritical=;
 * NumVFs=; VFDriver=) are reported in ->conflicts; equal outcomes are not.
 * |devices|: the observed functions (any order). Returns 0 or -ENOMEM.
 */
int desired_state_resolve_devices(
        const DesiredState *s, const PciDevice *const *devices, size_t n_devices, DesiredResolution **ret);
/* The same over every function of |m|. */
int desired_state_resolve(const DesiredState *s, const Model *m, DesiredResolution **ret);
