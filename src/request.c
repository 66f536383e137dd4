/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Runtime requests (request.h): their flags, files, contents and backups. */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "desired-state.h"
#include "file-util.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "pci-address.h"
#include "request.h"
#include "strv.h"

static const char *const request_flag_names[] = {
        [0] = "persist",
        [1] = "whole-group",
        [2] = "allow-critical",
};

int request_flags_parse(char *const *flags, unsigned allowed, unsigned *ret, const char **ret_bad) {
        unsigned bits = 0;

        assert(ret);

        for (char *const *f = flags; f && *f; f++) {
                unsigned bit = 0;

                for (size_t i = 0; i < ELEMENTSOF(request_flag_names); i++)
                        if (streq(*f, request_flag_names[i]))
                                bit = 1u << i;
                if (bit == 0 || !(allowed & bit) || (bits & bit)) {
                        if (ret_bad)
                                *ret_bad = *f;
                        return -EINVAL;
                }
                bits |= bit;
        }

        *ret = bits;
        return 0;
}

static bool address_is_canonical(const char *address) {
        char buf[PCI_ADDRESS_STRING_MAX];
        PciAddress a;

        if (!address || pci_address_from_string(address, &a) < 0)
                return false;
        pci_address_format(&a, buf);
        return streq(buf, address);
}

int request_file_name(RequestKind kind, const char *address, char **ret) {
        char element[PCI_ADDRESS_STRING_MAX];
        char *s;

        assert(ret);

        if (!address_is_canonical(address) || kind < 0 || kind >= _REQUEST_KIND_MAX)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(element); i++) {
                element[i] = address[i] == ':' || address[i] == '.' ? '_' : address[i];
                if (address[i] == '\0')
                        break;
        }

        if (kind == REQUEST_LEASE ? asprintf(&s, "95-lease-%s" HOSTDEVD_CONF_SUFFIX, element) < 0
                                  : asprintf(
                                            &s, "90-runtime-%s%s" HOSTDEVD_CONF_SUFFIX,
                                            kind == REQUEST_SRIOV ? "sriov-" : "", element) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static bool driver_value_is_valid(const char *driver) {
        DriverSpec spec = {};
        bool ok;

        ok = driver && driver_spec_parse(driver, &spec) >= 0 && spec.kind != DRIVER_KIND_UNSET;
        driver_spec_done(&spec);
        return ok;
}

int request_format_device(const char *address, const char *driver, unsigned flags, char **ret) {
        char *s;

        assert(ret);

        if (!address_is_canonical(address) || !driver_value_is_valid(driver))
                return -EINVAL;

        if (asprintf(
                    &s,
                    "# Written by hostdevd for SetDeviceDriver(); ResetDeviceDriver() removes it.\n"
                    "[" CONF_SECTION_MATCH "]\n"
                    "Address=%s\n"
                    "\n"
                    "[" CONF_SECTION_DEVICE "]\n"
                    "Driver=%s\n"
                    "%s%s",
                    address, driver, flags & REQUEST_FLAG_WHOLE_GROUP ? "Group=whole\n" : "",
                    flags & REQUEST_FLAG_ALLOW_CRITICAL ? "AllowCritical=yes\n" : "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int request_format_sriov(const char *address, uint32_t num_vfs, const char *vf_driver, char **ret) {
        bool has_driver = vf_driver && *vf_driver;
        char *s;

        assert(ret);

        if (!address_is_canonical(address) || (has_driver && !driver_value_is_valid(vf_driver)))
                return -EINVAL;

        if (asprintf(
                    &s,
                    "# Written by hostdevd for SetNumVFs().\n"
                    "[" CONF_SECTION_MATCH "]\n"
                    "Address=%s\n"
                    "\n"
                    "[" CONF_SECTION_SRIOV "]\n"
                    "NumVFs=%" PRIu32 "\n"
                    "%s%s%s",
                    address, num_vfs, has_driver ? "VFDriver=" : "", has_driver ? vf_driver : "",
                    has_driver ? "\n" : "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int request_load_dirs(
        char *const *config_dirs, const char *state_dir, const char *runtime_dir, char ***ret) {
        static const char *const defaults[] = {
                HOSTDEVD_CONF_DIR_USR,
                HOSTDEVD_CONF_DIR_ETC,
                HOSTDEVD_CONF_DIR_RUN,
                NULL,
        };
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *persist = NULL, *run = NULL;

        assert(ret);

        if (asprintf(&persist, "%s/" HOSTDEVD_REQUESTS_SUBDIR, state_dir ?: HOSTDEVD_STATE_DIR) < 0 ||
            asprintf(&run, "%s/" HOSTDEVD_REQUESTS_SUBDIR, runtime_dir ?: HOSTDEVD_RUNTIME_DIR) < 0)
                return -ENOMEM;

        for (const char *const *d = config_dirs ? (const char *const *)config_dirs : defaults; *d; d++)
                if (!streq(*d, persist) && !streq(*d, run) && !strv_contains(l, *d) &&
                    strv_extend(&l, *d) < 0)
                        return -ENOMEM;
        if (strv_extend(&l, persist) < 0 || strv_extend(&l, run) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(l);
        return 0;
}

static const char *request_dir(const char *dir_run, const char *dir_persist, bool persist) {
        return persist ? dir_persist : dir_run;
}

int request_write(
        const char *dir_run, const char *dir_persist, RequestKind kind, const char *address,
        const char *content, bool persist) {
        _cleanup_free_ char *name = NULL, *other = NULL;
        int k;

        assert(dir_run && dir_persist && content);

        k = request_file_name(kind, address, &name);
        if (k < 0)
                return k;
        k = file_write_atomic(
                request_dir(dir_run, dir_persist, persist), name, content, strlen(content), 0644, 0755);
        if (k < 0)
                return k;

        /* One declaration per function: a transient one would mask the persistent one, and a persistent
         * one must not come back after the transient one is gone. */
        if (asprintf(&other, "%s/%s", request_dir(dir_run, dir_persist, !persist), name) < 0)
                return -ENOMEM;
        if (unlink(other) < 0 && errno != ENOENT)
                log_debug_errno(-errno, "Failed to remove %s: %m, ignoring", other);
        return 0;
}

int request_remove(const char *dir_run, const char *dir_persist, RequestKind kind, const char *address) {
        _cleanup_free_ char *name = NULL;
        bool found = false;
        int k;

        assert(dir_run && dir_persist);

        k = request_file_name(kind, address, &name);
        if (k < 0)
                return k;
        for (int persist = 0; persist <= 1; persist++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/%s", request_dir(dir_run, dir_persist, persist), name) < 0)
                        return -ENOMEM;
                if (unlink(path) >= 0)
                        found = true;
                else if (errno != ENOENT)
                        return -errno;
        }
        return found ? 0 : -ENOENT;
}

void request_backup_free(RequestBackup *b) {
        if (!b)
                return;
        for (int i = 0; i < 2; i++) {
                free(b->path[i]);
                free(b->content[i]);
        }
        free(b);
}

/* The file's content (new string), NULL when it does not exist. A FIFO or anything else that is not a
 * regular file is refused without blocking; so is a file longer than any desired-state file may be. */
static int read_request_file(const char *path, char **ret) {
        char *buf = NULL;
        int k;

        k = file_read_bounded(path, DESIRED_STATE_FILE_MAX, 0, &buf, NULL);
        if (k == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (k < 0)
                return k;
        *ret = buf;
        return 1;
}

int request_backup(
        const char *dir_run, const char *dir_persist, RequestKind kind, const char *address,
        RequestBackup **ret) {
        _cleanup_free_ char *name = NULL;
        RequestBackup *b;
        int k;

        assert(dir_run && dir_persist && ret);

        k = request_file_name(kind, address, &name);
        if (k < 0)
                return k;
        b = calloc(1, sizeof(RequestBackup));
        if (!b)
                return -ENOMEM;
        for (int i = 0; i < 2; i++) {
                if (asprintf(&b->path[i], "%s/%s", request_dir(dir_run, dir_persist, i), name) < 0) {
                        request_backup_free(b);
                        return -ENOMEM;
                }
                k = read_request_file(b->path[i], &b->content[i]);
                if (k < 0) {
                        request_backup_free(b);
                        return k;
                }
        }
        *ret = b;
        return 0;
}

int request_restore(const RequestBackup *b) {
        int k, ret = 0;

        assert(b);

        for (int i = 0; i < 2; i++) {
                if (b->content[i]) {
                        const char *slash = strrchr(b->path[i], '/');
                        _cleanup_free_ char *dir = strndup(b->path[i], (size_t)(slash - b->path[i]));

                        if (!dir)
                                return -ENOMEM;
                        k = file_write_atomic(
                                dir, slash + 1, b->content[i], strlen(b->content[i]), 0644, 0755);
                } else
                        k = unlink(b->path[i]) < 0 && errno != ENOENT ? -errno : 0;
                if (k < 0 && ret == 0)
                        ret = log_debug_errno(k, "Failed to restore %s: %m", b->path[i]);
        }
        return ret;
}
