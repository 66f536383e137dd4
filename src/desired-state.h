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
 * AND), and what to do with what matches ([Device] and/or [SRIOV], [Mdev]
 * or [VGPU]; an [Mdev] rule may name its parents with Parent= instead of
 * or besides [Match]). A file whose [Mdev] UUID= an earlier file (in
 * lexical order) already names is rejected. A file
 * with any error is rejected whole, with every problem listed as
 * "FILE:LINE: KEY=VALUE: reason" (or "FILE:LINE: reason" when no key is to
 * blame); the other files still count.
 *
 * Reloading (safety rule 7 in hostdevd(8)): parse into a new DesiredState; swap it in
 * only when it has no ->errors, else keep the old one whole (dropping just
 * the broken file's rule would release its devices to the host). At start,
 * with nothing to keep, the good rules apply. ->errors is what
 * Manager.ConfigErrors shows.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mdev-placement.h"
#include "mdev-uuids.h"
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

/* [Mdev] Attribute=NAME=VALUE, in file order. */
typedef struct MdevAttribute {
        char *name; /* one path component of the mdev's sysfs directory */
        char *value;
        unsigned line;
} MdevAttribute;

/* [Mdev] of one rule (issue 14). */
typedef struct DesiredMdevRule {
        bool present; /* the file has an [Mdev] section */
        unsigned line; /* its header line */
        char **parents; /* Parent= (strv, in order; NULL: only [Match] selects parents) */
        unsigned parents_line; /* first Parent= */
        char *type; /* Type=: a type id ("mtty-2") or a type name ("GRID T4-1Q") */
        unsigned type_line;
        bool has_uuid; /* UUID= (canonical lowercase) ... */
        char uuid[MDEV_UUID_STRING_MAX];
        unsigned uuid_line;
        bool has_count; /* ... or Count= (exclusive); neither: Count=1 */
        uint32_t count;
        unsigned count_line;
        MdevPlacement placement; /* Placement=, default spread */
        MdevAttribute *attrs; /* Attribute=, in order */
        size_t n_attrs;
} DesiredMdevRule;

/* [VGPU] of one rule (issue 14): a vendor vGPU type on the VFs [Match] selects. */
typedef struct DesiredVgpuRule {
        bool present;
        unsigned line;
        char *type; /* Type=: a numeric type id ("557") or a type name ("NVIDIA A40-2Q") */
        unsigned type_line;
        bool has_count; /* Count=: at most this many VFs per physical GPU; absent: every matching VF */
        uint32_t count;
        unsigned count_line;
} DesiredVgpuRule;

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

        DesiredMdevRule mdev; /* [Mdev] */
        DesiredVgpuRule vgpu; /* [VGPU] */
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

/* One mdev instance the desired state wants (issue 14). */
typedef struct DesiredMdev {
        char uuid[MDEV_UUID_STRING_MAX]; /* the key */
        char *parent; /* the parent it is placed on (a /sys/class/mdev_bus name); NULL: none yet (no
                       * matching parent is present: waits for one) */
        char *type_id; /* the type id on that parent; NULL when ->parent is NULL and Type= is a name */
        const MdevAttribute *attrs; /* borrowed from the rule (the DesiredState outlives the resolution) */
        size_t n_attrs;
        bool named; /* UUID= names it (else Count= picked it). An existing instance of that UUID with
                     * the wanted parent and type is adopted whoever created it: the reconciler then
                     * records it as owned (PlannerInput.owned_mdevs), so that it is removed when no
                     * rule wants it any more. One with another parent or type that hostdevd does
                     * not own is a UUID collision (->errors), never touched. */
        char *source; /* "FILE:LINE" of Type= */
} DesiredMdev;

/* One VF the desired state wants a vendor vGPU type on (issue 14). */
typedef struct DesiredVgpu {
        char address[PCI_ADDRESS_STRING_MAX]; /* the VF */
        uint32_t type_id; /* never 0 */
        char *type_name; /* NULL if unknown */
        char *source; /* "FILE:LINE" of Type= */
} DesiredVgpu;

typedef struct DesiredResolution {
        DesiredDevice *devices; /* sorted by address */
        size_t n_devices;
        DesiredPf *pfs; /* sorted by address; functions matched by an [SRIOV] rule (PF or not) */
        size_t n_pfs;
        char **conflicts; /* one line per overridden rule: "ADDR: KEY=V (FILE:LINE) overrides KEY=W
                             (FILE:LINE)" */
        /* desired_state_resolve_mdevs(), issue 14: */
        DesiredMdev *mdevs; /* sorted by uuid */
        size_t n_mdevs;
        DesiredVgpu *vgpus; /* sorted by address */
        size_t n_vgpus;
        char **errors; /* "FILE:LINE: KEY=VALUE: reason" per rule that cannot be resolved (unknown
                        * type, UUID collision, Count beyond what the parents hold); that rule adds no
                        * instance. At a reload the caller treats these as DesiredState.errors: it
                        * keeps the last good state. */
        char **held; /* strv: the mdev parents and vGPU VFs an unresolved rule could select (its
                      * Parent= names, the parents or VFs its [Match] selects): nothing is removed or cleared
                      * there while it stands, since what that rule made would look unwanted. Elsewhere
                      * removals go on. */
        char **held_by; /* parallel to ->held: "FILE:LINE" of the (first) rule holding each */
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

/* ---- mdevs and vendor vGPUs (issue 14) ---------------------------------------------------------- */

/* The rule (its "FILE:LINE") that holds removals on the mdev parent or vGPU VF |name|
 * (DesiredResolution.held); NULL when none. */
const char *desired_resolution_held_by(const DesiredResolution *r, const char *name);

/* What the mdev resolution looks at: the observed model (all arrays borrowed, any order). */
typedef struct MdevResolveInput {
        const PciDevice *const *devices; /* every function: [Match] against PCI parents and VFs */
        size_t n_devices;
        const MdevParent *const *parents; /* every /sys/class/mdev_bus entry */
        size_t n_parents;
        const Mdev *const *mdevs; /* every existing mdev */
        size_t n_mdevs;
        const VgpuVf *const *vgpu_vfs; /* every VF with an nvidia/ directory (vgpu_vf_read()) */
        size_t n_vgpu_vfs;
        char **owned_mdevs; /* strv: UUIDs hostdevd created or adopted (PlannerInput.owned_mdevs) */
        const VgpuTypeNames *vgpu_type_names; /* names learnt from earlier reads (mdev.h); may be NULL */
} MdevResolveInput;

/*
 * Resolve the [Mdev] and [VGPU] rules of |s| into res->mdevs, res->vgpus and res->errors (|res|
 * from desired_state_resolve*(); its mdev fields must be empty).
 *
 * [Mdev], per rule in file order: the candidate parents are those named by Parent= and the PCI
 * parents [Match] selects (both given: a parent must satisfy both); Type= is a type id of a
 * candidate or, failing that, a type's name. Instances: the UUID= one, or Count= UUIDs from |uuids|
 * (mdev-uuids.h; picked and kept there on first use: the caller saves |uuids| before executing).
 * An instance that exists on a candidate parent with the rule's type stays there (adoption); new
 * ones are placed (mdev-placement.h) on the candidates that have the type with instances left,
 * honouring one type per physical GPU across rules. With no candidate present, the instances wait
 * (->parent NULL), as do new ones that lack room while an mdev hostdevd owns (|in->owned_mdevs|) and
 * no rule so far keeps sits on a candidate (the plan removes it first: a Type= change on a GPU with
 * one type at a time). Errors, the rule adding nothing: Type= unknown on every present candidate; Count=
 * beyond what the candidates can take; a UUID= that an existing mdev of another parent or type
 * carries and that no rule created (a foreign instance: never touched) or that another rule names.
 * Two files naming one UUID= is a parse-time error (desired_state_load()). A rule with an error holds
 * back removals on the parents (or VFs) it could select (res->held), and only there.
 *
 * [VGPU], per rule: the matching VFs (vgpu_vfs); Type= a numeric id or a type name of their
 * creatable types or, once no VF lists it (the VFs carry it), a name |in->vgpu_type_names| learnt for
 * their GPU; with Count=N, at most N VFs per PF, the ones already
 * carrying the type first, then in address order. A VF wanted by two rules: the later file wins
 * (reported in ->conflicts).
 *
 * Returns 0, -ENOMEM.
 */
int desired_state_resolve_mdevs(
        const DesiredState *s, const MdevResolveInput *in, MdevUuids *uuids, DesiredResolution *res);
const DesiredMdev *desired_resolution_get_mdev(const DesiredResolution *r, const char *uuid);
const DesiredVgpu *desired_resolution_get_vgpu(const DesiredResolution *r, const char *address);
