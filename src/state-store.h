/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Ownership records (safety rule 5 in hostdevd(8): crash safety): for every PCI
 * function hostdevd mutated, what it was before and what hostdevd set, so a
 * restart adopts its own bindings without writing sysfs, finishes or rolls
 * back an interrupted transaction, and never touches bindings it did not make.
 *
 * Two files in the state directory (HOSTDEVD_STATE_DIR unless overridden),
 * both JSON (json-c). HOSTDEVD_STATE_FILE holds the whole state:
 *
 *   { "version": 1,
 *     "last-transaction": 7,
 *     "last-record": 12,
 *     "devices": [
 *       { "address": "0000:41:00.0",
 *         "transaction": 7, "phase": "committed",
 *         "original-driver": "nvidia", "original-driver-override": null,
 *         "previous-driver": "nvidia", "previous-driver-override": null,
 *         "driver-override": "vfio-pci", "driver": "vfio-pci" } ] }
 *
 * original-*: before hostdevd first touched the function (kept across later
 * transactions: releasing returns it there); previous-*: before the
 * function's latest transaction (what rolling that one back restores);
 * driver-override: what hostdevd wrote to driver_override (null: it cleared
 * it); driver: the driver it expects bound afterwards (null: unbound). A
 * null driver means none bound; a null override means "(null)" in sysfs.
 *
 * An SR-IOV PF whose sriov_numvfs or sriov_drivers_autoprobe hostdevd changed
 * (Documentation/ABI/testing/sysfs-bus-pci) also carries, all four or none:
 *
 *         "original-sriov-numvfs": 0, "original-sriov-drivers-autoprobe": true,
 *         "sriov-numvfs": 8, "sriov-drivers-autoprobe": false
 *
 * original-*: the values before hostdevd first changed them (kept across later
 * transactions); the others: what hostdevd set last. When no rule claims the
 * PF's VF count any more, the planner gives the originals back (issue 13
 * section 2), and only while the PF still carries what hostdevd set: a value
 * someone else wrote since is theirs.
 *
 * HOSTDEVD_STATE_LOG holds the changes made since, one record a line,
 * numbered upwards from the file's "last-record" (the file counts as one):
 *
 *   {"record":13,"begin":8,"devices":[ { the functions as above } ]}
 *   {"record":14,"commit":8}
 *   {"record":15,"forget":"0000:41:00.0"}
 *
 * A load reads the file, then applies the log's records numbered above its
 * "last-record" (older ones were folded into the file before a crash could
 * empty the log); a last line without its newline is a write a crash cut
 * short, and ignored. Every change is on disk before it counts: appended to
 * the log and fdatasync()ed, one write of the change alone however many
 * functions the file holds, so the executor's record before a sysfs write
 * stays cheap (a hot-added function races the kernel's first probe). The first
 * change of a store, and a change that would take the log past
 * STATE_STORE_LOG_MAX bytes, or past as many records as the file holds
 * functions (at least STATE_STORE_LOG_MAX_RECORDS), instead
 * write the file whole (a temporary file in the same directory, fsync,
 * rename over the file, fsync of the directory) and then
 * empty the log. A failed write leaves memory and disk as they were.
 * Temporary files left by a crash (".owned.json.XXXXXX") are ignored and
 * removed by the next load.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci-address.h"

#define STATE_STORE_VERSION 1
/* Files larger than this are refused unread; a save that would exceed it fails with -EFBIG. A recorded
 * function takes ~300 bytes of owned.json: room for ~100000 (1 MiB held only ~3600, fewer than the VFs
 * of a host with a few large SR-IOV NICs). */
#define STATE_STORE_FILE_MAX (32u * 1024u * 1024u)
/* The log is folded into the file rather than grow past this many bytes, or past this many records when
 * the file holds fewer functions (else past as many records as it holds functions). */
#define STATE_STORE_LOG_MAX (256u * 1024u)
#define STATE_STORE_LOG_MAX_RECORDS 256u
/* Longest driver name / driver_override value accepted (the kernel allows a page; real ones are short). */
#define STATE_STORE_VALUE_MAX 256u

typedef enum OwnedPhase {
        OWNED_PHASE_BEGUN, /* recorded before the sysfs writes; still so after a crash mid-transaction */
        OWNED_PHASE_COMMITTED, /* the transaction verified */
        _OWNED_PHASE_MAX,
        _OWNED_PHASE_INVALID = -EINVAL,
} OwnedPhase;
const char *owned_phase_to_string(OwnedPhase p); /* "begun", "committed" */
OwnedPhase owned_phase_from_string(const char *s);

typedef struct OwnedDevice {
        char address[PCI_ADDRESS_STRING_MAX]; /* canonical */
        uint64_t transaction; /* >= 1, unique over the life of the file */
        OwnedPhase phase;
        char *original_driver; /* NULL: none bound */
        char *original_driver_override; /* NULL: not set */
        char *previous_driver;
        char *previous_driver_override;
        char *driver_override; /* what hostdevd wrote; NULL: cleared */
        char *driver; /* expected bound after the transaction; NULL: unbound */
        bool has_sriov; /* hostdevd changed this PF's SR-IOV settings; then: */
        uint32_t original_sriov_numvfs; /* before hostdevd first changed them */
        bool original_sriov_drivers_autoprobe;
        uint32_t sriov_numvfs; /* what hostdevd set last */
        bool sriov_drivers_autoprobe;
} OwnedDevice;

/* One function a transaction is about to change: its state now (from the observed PciDevice) and the
 * target. All strings borrowed; NULL as in OwnedDevice. */
typedef struct OwnedChange {
        const char *address;
        const char *driver_now;
        const char *driver_override_now;
        const char *driver_override; /* to write */
        const char *driver; /* expected after */
        bool sriov; /* the transaction writes this PF's SR-IOV attributes; then: */
        uint32_t sriov_numvfs_now;
        bool sriov_drivers_autoprobe_now;
        bool writes_sriov_numvfs; /* the transaction writes sriov_numvfs; then the value after: */
        uint32_t sriov_numvfs;
        bool writes_sriov_drivers_autoprobe; /* likewise */
        bool sriov_drivers_autoprobe;
} OwnedChange;

typedef struct StateStore StateStore;

/*
 * Load |dir|/HOSTDEVD_STATE_FILE and its log (|dir| NULL: HOSTDEVD_STATE_DIR).
 * A missing directory or file is an empty store. Leftover temporary files
 * are removed.
 * Returns 0 and a new store; -EFBIG (over STATE_STORE_FILE_MAX), -EBADMSG
 * (not JSON, a wrong type, a bad value, an unknown key, duplicates),
 * -EPROTONOSUPPORT (another "version"), -errno from reading, -ENOMEM. On
 * failure *ret_error (if not NULL) gets a message naming the file, the
 * field and the value ("/var/lib/hostdevd/owned.json: devices[2].phase:
 * unknown value 'done'", "/var/lib/hostdevd/owned.log: line 3: commit: no
 * begun transaction 9"), or NULL for -ENOMEM. The store is then unknown:
 * only the caller may decide to go on with state_store_new() (which
 * overwrites the file at the next change).
 */
int state_store_load(const char *dir, StateStore **ret, char **ret_error);
/* An empty store for |dir| (NULL: HOSTDEVD_STATE_DIR); nothing is read or written. -ENOMEM. */
int state_store_new(const char *dir, StateStore **ret);
StateStore *state_store_free(StateStore *s);
static inline void state_store_freep(StateStore **s) {
        if (*s)
                state_store_free(*s);
}

/* The path of the file ("DIR/owned.json"); its log is "DIR/owned.log". */
const char *state_store_path(const StateStore *s);

/*
 * What went wrong without failing the call, for the operator: an incomplete last record of the log
 * ignored at load (a crash cut its write short), a log that could be neither emptied nor removed
 * after owned.json was written. Each a message naming the file. The caller takes the list (freed
 * with strv_free(); the store's is emptied); NULL when there is none. src/ logs nothing above
 * debug: the daemon logs these as warnings.
 */
char **state_store_take_warnings(StateStore *s);

/*
 * Record that a new transaction is about to change |changes| (phase begun),
 * on disk. A function already owned keeps its original-*; its
 * previous-* become its state now. A change with ->sriov records the PF's
 * SR-IOV originals (from its *_now values unless it has them already) and what
 * it sets (an attribute it does not write keeps what the record says hostdevd
 * set, or its value now); a change without keeps what the record had. Returns 0 and the new transaction id;
 * -EINVAL for a bad address, a duplicate address, an invalid driver value,
 * or n == 0; -EFBIG, -errno from writing (nothing changed then), -ENOMEM.
 */
int state_store_begin(StateStore *s, const OwnedChange *changes, size_t n, uint64_t *ret_transaction);
/* Mark every function of |transaction| committed, on disk. -ENOENT: no such begun transaction. */
int state_store_commit(StateStore *s, uint64_t transaction);
/* Drop |address| (released to the host, or rolled back to its original), on disk. -ENOENT if unknown. */
int state_store_forget(StateStore *s, const char *address);
/* Drop only |address|'s SR-IOV part (its settings are back to their originals, or someone else's now), on
 * disk: {"record":N,"forget-sriov":"ADDRESS"} in the log. -ENOENT if unknown or it has none. */
int state_store_forget_sriov(StateStore *s, const char *address);

/* Every recorded function, sorted by address (borrowed, valid until the next change). */
const OwnedDevice *state_store_get_devices(const StateStore *s, size_t *ret_n);
const OwnedDevice *state_store_get(const StateStore *s, const char *address);
/* The addresses of every recorded function, any phase, sorted (new strv; NULL when none): the planner's
 * PlannerInput.owned. 0 or -ENOMEM. */
int state_store_list_owned(const StateStore *s, char ***ret);
/* The functions of begun transactions (interrupted by a crash, when called at start), sorted by transaction
 * then address; a new array of borrowed pointers (NULL, 0 when none). 0 or -ENOMEM. */
int state_store_list_interrupted(const StateStore *s, const OwnedDevice ***ret, size_t *ret_n);
