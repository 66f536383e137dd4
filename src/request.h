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
        REQUEST_LEASE, /* Acquire: [Device] Driver=vfio-pci, transient only; a later name than the
                        * others, so a lease's declaration wins over them while it lasts */
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

/* "90-runtime-0000_41_00_0.conf" (REQUEST_DEVICE), "90-runtime-sriov-0000_41_00_0.conf" or
 * "95-lease-0000_41_00_0.conf" (REQUEST_LEASE) for a canonical |address|. Returns 0 or -EINVAL (not a
 * canonical address), -ENOMEM. */
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
