/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Leases (hostdevd(8), LEASES): PCI functions handed to one VMM process for as long as it lives. This module
 * is the pure part: the record (what is stored in RUNTIME_DIR/leases/<id>.json and survives a restart
 * of hostdevd), its JSON form, the release policies, the validation of a new lease against the
 * observed functions, the host-critical set and the leases in force, and the process start time that
 * detects pid reuse. No sd-bus, no sd-event, no sysfs writes: agent/lease-manager.c watches the
 * pidfds and drives the reconciler.
 *
 * Record format (one JSON object per file, json-c; written atomically by the caller):
 *   { "version": 1, "id": 7, "pid": 1234, "start-time": 56789, "uid": 1000,
 *     "since-usec": 1765140000000000, "whole-group": false, "state": "active",
 *     "devices": [ { "address": "0000:01:00.0", "policy": "host" }, ... ],
 *     "mdevs": [ { "uuid": "<lowercase UUID>", "parent": "mtty", "type": "mtty-2",
 *                  "policy": "remove" }, ... ] }
 * ("mdevs" only in records of leases with mediated devices; "devices" may then be empty.)
 * start-time is field 22 of /proc/PID/stat (proc(5), "starttime": clock ticks since boot, as
 * fs/proc/array.c prints task->start_boottime), which together with the pid names one process
 * across pid reuse. since-usec is CLOCK_REALTIME in microseconds.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mdev.h"
#include "pci-address.h"
#include "pci-device.h"
#include "planner.h"

/* Functions in one lease, at most (a bound on what one caller can make hostdevd store). */
#define LEASE_DEVICES_MAX 64u
/* Leases in force, at most (each holds a pidfd and an event source). */
#define LEASES_MAX 1024u
/* Largest record file read back. */
#define LEASE_RECORD_FILE_MAX (64u * 1024u)

/* What happens to a function when its lease ends. */
typedef enum LeasePolicy {
        LEASE_POLICY_HOST, /* "host": the lease's declaration goes; the function follows the rest of the
                            * desired state (its host driver when nothing else names it). The default. */
        LEASE_POLICY_KEEP, /* "keep": stays on vfio-pci, as a transient runtime request (ResetDeviceDriver
                            * gives it back) */
        LEASE_POLICY_REMOVE, /* "remove": destroy the mdev instance the lease created; the default for
                              * mdevs, refused for PCI functions */
        _LEASE_POLICY_MAX,
        _LEASE_POLICY_INVALID = -EINVAL,
} LeasePolicy;
const char *lease_policy_to_string(LeasePolicy p); /* "host", "keep", "remove" */
LeasePolicy lease_policy_from_string(const char *s);
/* Whether |p| applies to a PCI function (host, keep: yes; remove: no, it is for vGPU instances). */
bool lease_policy_applies_to_function(LeasePolicy p);
/* Whether |p| applies to a mediated device the lease created (remove, keep: yes; host: no). */
bool lease_policy_applies_to_mdev(LeasePolicy p);

typedef enum LeaseState {
        LEASE_STATE_PREPARING, /* recorded; the functions are being moved to vfio-pci */
        LEASE_STATE_ACTIVE, /* ready; its owner's exit ends it */
        LEASE_STATE_RELEASING, /* ended; the release policies are being applied */
        _LEASE_STATE_MAX,
        _LEASE_STATE_INVALID = -EINVAL,
} LeaseState;
const char *lease_state_to_string(LeaseState s); /* "preparing", "active", "releasing" */
LeaseState lease_state_from_string(const char *s);

typedef struct LeaseDevice {
        char address[PCI_ADDRESS_STRING_MAX]; /* canonical */
        LeasePolicy policy;
} LeaseDevice;

/* A mediated device the lease created (issue 15, vGPU requests): it exists through a transient
 * REQUEST_MDEV declaration (request.h) with this UUID, Parent= and Type=, which the lease's end removes
 * ("remove") or leaves to hostdevd as any CreateMdev instance ("keep"). */
typedef struct LeaseMdev {
        char uuid[MDEV_UUID_STRING_MAX]; /* lowercase canonical */
        char *parent; /* the parent it was placed on (an mdev_bus name) */
        char *type; /* the type id on that parent ("mtty-2", "nvidia-556") */
        LeasePolicy policy; /* REMOVE or KEEP */
} LeaseMdev;

/* A VFIO group node the lease handed to its owner ("vfio-owner"), with the owner to give it back to. */
#define LEASE_NODE_PATH_MAX 64
typedef struct LeaseNodeOwner {
        char node[LEASE_NODE_PATH_MAX]; /* "/dev/vfio/..." */
        uid_t uid;
        gid_t gid;
} LeaseNodeOwner;

typedef struct LeaseRecord {
        uint64_t id; /* > 0; the object path's last element is "lease_<id>" */
        pid_t pid; /* the owner (the VMM), > 0 */
        uint64_t start_time; /* /proc/PID/stat field 22, clock ticks since boot */
        uid_t uid; /* the caller that acquired it */
        uint64_t since_usec; /* CLOCK_REALTIME, microseconds */
        bool whole_group;
        LeaseState state;
        LeaseDevice *devices; /* sorted by address, no duplicates, 0..LEASE_DEVICES_MAX */
        size_t n_devices;
        /* "mdevs" (optional in the JSON: [ { "uuid": U, "parent": P, "type": T, "policy": "remove" } ],
         * absent in records without any); n_devices + n_mdevs is 1..LEASE_DEVICES_MAX. */
        LeaseMdev *mdevs; /* sorted by UUID, no duplicates */
        size_t n_mdevs;
        /* "vfio-owner": the group nodes belong to |uid| while the lease is active (optional in the JSON:
         * "vfio-owner": bool, "vfio-restore": [ { "node": "/dev/vfio/N", "uid": U, "gid": G } ], both
         * absent in records of leases without it). */
        bool vfio_owner;
        LeaseNodeOwner *node_owners; /* what to restore, 0..LEASE_DEVICES_MAX entries */
        size_t n_node_owners;
} LeaseRecord;

LeaseRecord *lease_record_free(LeaseRecord *l);
static inline void lease_record_freep(LeaseRecord **l) {
        if (*l)
                lease_record_free(*l);
}
/* The entry of |address| in |l|, or NULL. */
const LeaseDevice *lease_record_get_device(const LeaseRecord *l, const char *address);
/* The mdev |uuid| of |l|, or NULL. */
const LeaseMdev *lease_record_get_mdev(const LeaseRecord *l, const char *uuid);

/* "7.json" for id 7. New string; -ENOMEM. */
int lease_record_file_name(uint64_t id, char **ret);
/* The JSON text above, newline-terminated. Returns 0 and a new string, -EINVAL (a record that breaks
 * the shape above), -ENOMEM. */
int lease_record_to_json(const LeaseRecord *l, char **ret);
/*
 * Parse a record. Every field is required and checked (version 1, id > 0, pid > 0, canonical and
 * unique addresses, known policy and state, 1..LEASE_DEVICES_MAX devices); devices come back sorted.
 * Returns 0 and a new record; -EBADMSG with *ret_error (new string, may be NULL on OOM) naming the
 * field and value; -ENOMEM.
 */
int lease_record_from_json(const char *text, LeaseRecord **ret, char **ret_error);

/*
 * Field 22 (starttime) of a /proc/PID/stat text. The second field (comm) is in parentheses and may
 * itself contain spaces and ')': the fields after it are counted from the LAST ')' (proc(5)).
 * Returns 0, -EBADMSG.
 */
int lease_parse_stat_start_time(const char *stat, uint64_t *ret);
/* Read |proc_root|/PID/stat (NULL: /proc) and parse it. Returns 0, -ESRCH (no such process), -EBADMSG,
 * -errno. */
int lease_read_start_time(const char *proc_root, pid_t pid, uint64_t *ret);

/* ---- validation of a new lease ------------------------------------------------------------------ */

/* A function leased now, for the check. */
typedef struct LeasedFunction {
        const char *address;
        uint64_t lease_id;
        pid_t pid;
} LeasedFunction;

typedef struct LeaseCheckInput {
        char *const *addresses; /* strv of canonical addresses asked for, any order, no duplicates */
        bool whole_group; /* add the IOMMU group peers that are not bridges */
        const PciDevice *const *devices; /* every observed function */
        size_t n_devices;
        const CriticalDevice *critical; /* the host-critical set (planner.h) */
        size_t n_critical;
        const LeasedFunction *leased; /* functions in leases now (any state) */
        size_t n_leased;
} LeaseCheckInput;

typedef enum LeaseCheckVerdict {
        LEASE_CHECK_OK,
        LEASE_CHECK_NOT_FOUND, /* an address is not an observed function */
        LEASE_CHECK_LEASED, /* a function is in another lease already */
        LEASE_CHECK_REFUSED, /* no IOMMU group, a bridge, group incomplete, or host-critical */
} LeaseCheckVerdict;

/*
 * Whether the functions |in->addresses| may be leased together (safety rules 2, 3 and 4 in hostdevd(8)):
 *  - each is an observed function, not a PCI bridge, in an IOMMU group (VFIO needs one);
 *  - none is in a lease already (whoever's);
 *  - every peer in each function's IOMMU group is asked for too, driverless, or a bridge; with
 *    |whole_group| the other peers are added (and checked as the rest);
 *  - none (nor an added peer) is host-critical: a lease has no override.
 * Returns 0 and the verdict; with LEASE_CHECK_OK *ret_members is the new sorted strv of every function
 * of the lease (asked for + added peers), otherwise *ret_reason is a new sentence naming the function
 * and why ("0000:01:00.0 is leased to pid 42 (lease 3)"). -ENOMEM. Pure.
 */
int lease_check(
        const LeaseCheckInput *in, LeaseCheckVerdict *ret_verdict, char ***ret_members, char **ret_reason);

/* ---- vGPU/mdev requests of a new lease ------------------------------------------------------------ */

/* One instance asked for: a type by id or name, on a given parent or (NULL or "") any. */
typedef struct LeaseMdevAsk {
        const char *type;
        const char *parent;
} LeaseMdevAsk;

/* An instance a lease holds that the model may not show yet (being created): it uses room. */
typedef struct LeaseMdevUse {
        const char *parent;
        const char *type_id;
} LeaseMdevUse;

typedef struct LeaseMdevCheckInput {
        const LeaseMdevAsk *asks;
        size_t n_asks;
        const MdevParent *const *parents; /* every mdev parent (/sys/class/mdev_bus) */
        size_t n_parents;
        const PciDevice *const *devices; /* every observed function (one type per GPU of PCI parents) */
        size_t n_devices;
        const Mdev *const *mdevs; /* every mdev that exists */
        size_t n_mdevs;
        const LeaseMdevUse *pending; /* instances of leases in force that |mdevs| does not list */
        size_t n_pending;
} LeaseMdevCheckInput;

/* Where each asked instance goes: parent and type id, borrowed from |in->parents|. */
typedef struct LeaseMdevPlace {
        const char *parent;
        const char *type_id;
} LeaseMdevPlace;

/*
 * Place the instances |in->asks| (mdev-placement.h, "spread": each goes, in order, to the parent that
 * has the type with the most instances left; a tie: the first by name). A parent's room is its
 * type's available_instances (Documentation/ABI/testing/sysfs-bus-vfio-mdev; the kernel counts the
 * instances that exist) less what this lease placed there and |in->pending| there of that type; with
 * one type per physical GPU (mdev_parent_one_type_per_gpu()) a parent carrying or about to carry
 * another type takes none. Mediated parents only: NVIDIA's vGPU VFs ([VGPU], nvidia/current_vgpu_type)
 * are not placed here.
 * Returns 0 and the verdict: OK with |ret| (|in->n_asks| entries, caller's array) filled;
 * NOT_FOUND (no such parent, or no parent offers the type) or REFUSED (no room) with *ret_reason a
 * new sentence naming the type and parent. -ENOMEM. Pure.
 */
int lease_mdev_check(
        const LeaseMdevCheckInput *in, LeaseCheckVerdict *ret_verdict, LeaseMdevPlace *ret,
        char **ret_reason);
