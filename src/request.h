/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Runtime requests (Manager.SetDeviceDriver, ResetDeviceDriver, SetNumVFs; dbus/org.hostdevd1.xml)
 * are desired-state files in hostdevd.conf(5) format, so one model and one parser cover both: this
 * module names them, writes their text, validates their flags, stores them and keeps a backup of
 * what a request replaced. No D-Bus, no event loop: the reconciler reloads after each change and the
 * bus manager authorizes and serializes the calls.
 */

#include <stdbool.h>
#include <stdint.h>

/* Request kinds, for file names. */
typedef enum RequestKind {
        REQUEST_DEVICE, /* SetDeviceDriver: [Device] */
        REQUEST_SRIOV, /* SetNumVFs: [SRIOV] */
        REQUEST_MDEV, /* CreateMdev: [Mdev] with UUID= (issue 14); keyed by the UUID, not an address */
        _REQUEST_KIND_MAX,
} RequestKind;

/* Flags of SetDeviceDriver / SetNumVFs (dbus/org.hostdevd1.xml). */
enum {
        REQUEST_FLAG_PERSIST = 1u << 0, /* "persist" */
        REQUEST_FLAG_WHOLE_GROUP = 1u << 1, /* "whole-group" */
        REQUEST_FLAG_ALLOW_CRITICAL = 1u << 2, /* "allow-critical" */
};

/*
 * Parse |flags| (strv, may be NULL) allowing only the bits in |allowed|.
 * Returns 0 and the bits; -EINVAL with *ret_bad pointing at the offending
 * string (unknown, not allowed here, or given twice).
 */
int request_flags_parse(char *const *flags, unsigned allowed, unsigned *ret, const char **ret_bad);

/* "90-runtime-0000_41_00_0.conf" (REQUEST_DEVICE) or "90-runtime-sriov-0000_41_00_0.conf" for a
 * canonical |address|; "90-runtime-mdev-<uuid>.conf" (REQUEST_MDEV) for a canonical lowercase UUID in
 * |address|. Returns 0 or -EINVAL (not a canonical address or UUID), -ENOMEM. The same holds for
 * |address| in request_write(), request_remove() and request_backup(). */
int request_file_name(RequestKind kind, const char *address, char **ret);

/*
 * The hostdevd.conf(5) text of a request. |address| must be canonical and the
 * driver strings valid (driver_spec_parse()): no value needs escaping then,
 * and a malformed one is refused here with -EINVAL rather than written.
 * Device: Driver=|driver|, Group=whole with REQUEST_FLAG_WHOLE_GROUP,
 * AllowCritical=yes with REQUEST_FLAG_ALLOW_CRITICAL.
 * SR-IOV: NumVFs=|num_vfs|, VFDriver=|vf_driver| unless NULL or "".
 */
int request_format_device(const char *address, const char *driver, unsigned flags, char **ret);
int request_format_sriov(const char *address, uint32_t num_vfs, const char *vf_driver, char **ret);
/*
 * CreateMdev (issue 14): [Mdev] with Parent= for each of |parents| (strv, at least one: the caller
 * passes the one named, or for "" every parent that offers |type|, and the resolution places it),
 * Type=|type|, UUID=|uuid| (canonical lowercase). Parent and type names are checked as the parser
 * does (printable, no '/', a parent no white space); -EINVAL otherwise, -ENOMEM.
 */
int request_format_mdev(char *const *parents, const char *type, const char *uuid, char **ret);
/* What Manager.CreateMdev accepts as a parent or type before it writes anything (stricter than
 * request_format_mdev(), so that nothing it stores can read differently through the INI parser): 1-255
 * bytes of printable ASCII, no leading or trailing space, none of '#', ';', '[', ']', '=', '\\', '/'.
 * Type names have spaces ("GRID T4-1Q"). */
bool request_mdev_value_is_valid(const char *s);

/*
 * The directories the desired state is loaded from: |config_dirs| (strv, lowest priority first; NULL:
 * the three HOSTDEVD_CONF_DIR_*), then STATE_DIR/devices.d (persistent requests), then
 * RUNTIME_DIR/devices.d (transient ones); each once, later ones take precedence for files of the
 * same name. |state_dir|, |runtime_dir| NULL: the defaults of names.h. New strv. Returns 0 or -ENOMEM.
 */
int request_load_dirs(char *const *config_dirs, const char *state_dir, const char *runtime_dir, char ***ret);

/* ---- the request files: one per function and kind, in RUNTIME_DIR/devices.d (transient) or
 * STATE_DIR/devices.d (persistent) ------------------------------------------------------------- */

/*
 * Write the request of |address| atomically (file_write_atomic(): fsync, rename, fsync of the
 * directory; the directory is created if missing) into |dir_persist| or |dir_run|, and remove the
 * same name from the other directory: one declaration per function, so a transient one never masks
 * a persistent one, and a persistent one never comes back after a transient one is gone. Returns 0,
 * -EINVAL (not a canonical address), -errno from writing.
 */
int request_write(
        const char *dir_run, const char *dir_persist, RequestKind kind, const char *address,
        const char *content, bool persist);
/* Remove the request of |address| from both directories. Returns 0, -ENOENT (there was none), -errno. */
int request_remove(const char *dir_run, const char *dir_persist, RequestKind kind, const char *address);

/* The request files of one function as they were, to undo a request that failed. */
typedef struct RequestBackup {
        char *path[2]; /* [0] transient, [1] persistent */
        char *content[2]; /* NULL: did not exist */
} RequestBackup;
/* Read both files (a FIFO or other non-regular file is refused without blocking: -EBADFD, -EISDIR;
 * one longer than DESIRED_STATE_FILE_MAX: -EFBIG). Returns 0 and a new backup, or -errno. */
int request_backup(
        const char *dir_run, const char *dir_persist, RequestKind kind, const char *address,
        RequestBackup **ret);
/* Write both files back as they were (removing one that did not exist). Returns 0 or the first -errno;
 * it goes on with the other file either way. */
int request_restore(const RequestBackup *b);
void request_backup_free(RequestBackup *b);
