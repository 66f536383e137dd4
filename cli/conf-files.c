/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * hostdevctl export and import: hostdevd.conf(5) files from the observed
 * state (a checkpoint that re-applies to the same bindings) and from
 * driverctl's saved overrides. The rules of both conversions are in
 * hostdevctl(1), EXPORT and IMPORT; this file implements exactly those.
 *
 * Nothing is written unless every entry converted: the files are built in
 * memory first, then written to standard output (each after a "# NAME"
 * line) or into a directory (each atomically, file-util.h: temporary file,
 * fsync, rename, fsync of the directory).
 */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-client.h"
#include "desired-state.h"
#include "file-util.h"
#include "hostdevctl.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "mdevctl-import.h"
#include "pci-address.h"
#include "strv.h"

#ifndef DRIVERCTL_CONF_DIR
#        define DRIVERCTL_CONF_DIR "/etc/driverctl.d"
#endif

/* File names: the priority prefix orders them among other drop-ins (later wins a conflict). */
#define EXPORT_FILE_PREFIX "80-export-"
#define IMPORT_FILE_PREFIX "50-driverctl-"
/* mdevctl's definitions: its config_base() (mdevctl's src/environment.rs), under MDEVCTL_ENV_ROOT there. */
#ifndef MDEVCTL_CONF_DIR
#        define MDEVCTL_CONF_DIR "/etc/mdevctl.d"
#endif
/* driverctl names its files "BUS-DEVICE" (driverctl: sddev="$bus-$dev"); we convert the PCI ones. */
#define DRIVERCTL_PCI_PREFIX "pci-"
/* A driverctl file holds one driver name and a newline; anything longer is not one. */
#define DRIVERCTL_FILE_MAX 256

typedef struct ConfFile {
        char *name; /* basename, ending in .conf */
        char *text;
} ConfFile;

typedef struct ConfFiles {
        ConfFile *files;
        size_t n;
} ConfFiles;

static void conf_files_done(ConfFiles *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->files[i].name);
                free(l->files[i].text);
        }
        free(l->files);
        *l = (ConfFiles){};
}

/* Takes ownership of name and text, also on failure. */
static int conf_files_add(ConfFiles *l, char *name, char *text) {
        ConfFile *f;

        if (!name || !text) {
                free(name);
                free(text);
                return -ENOMEM;
        }
        f = reallocarray(l->files, l->n + 1, sizeof(ConfFile));
        if (!f) {
                free(name);
                free(text);
                return -ENOMEM;
        }
        l->files = f;
        l->files[l->n++] = (ConfFile){ .name = name, .text = text };
        return 0;
}

static int conf_file_compare(const void *a, const void *b) {
        return strcmp(((const ConfFile *)a)->name, ((const ConfFile *)b)->name);
}

static int write_file_atomic(const char *dir, const ConfFile *f) {
        int r;

        /* Readable by everyone, as the files hostdevd reads from /etc are. */
        r = file_write_atomic(dir, f->name, f->text, strlen(f->text), 0644, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s/%s: %m", dir, f->name);
        return 0;
}

/* To dir (created if missing), or to standard output with "# NAME" before each file. Returns an exit status.
 */
static int conf_files_write(const ConfFiles *l, const char *dir) {
        if (!dir) {
                for (size_t i = 0; i < l->n; i++)
                        printf("%s# %s\n%s", i > 0 ? "\n" : "", l->files[i].name, l->files[i].text);
                return 0;
        }

        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                log_error_errno(errno, "Failed to create %s: %m", dir);
                return EXIT_BUS;
        }
        for (size_t i = 0; i < l->n; i++)
                if (write_file_atomic(dir, &l->files[i]) < 0)
                        return EXIT_BUS;
        return 0;
}

/* ---- export ------------------------------------------------------------------ */

/* The first line of every exported file: what marks a file in DIR as an earlier export. */
#define EXPORT_HEADER "# hostdevctl export: "

static bool conf_files_contain(const ConfFiles *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->files[i].name, name))
                        return true;
        return false;
}

/*
 * A checkpoint replaces the previous one: remove the files an earlier export wrote into dir (our prefix,
 * our first line) that this one did not, so a function that needs no rule any more does not keep an old
 * one. Other files are never touched. Returns 0 or an exit status.
 */
static int export_remove_stale(const ConfFiles *l, const char *dir) {
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        d = opendir(dir);
        if (!d) {
                log_error_errno(errno, "Failed to read %s: %m", dir);
                return EXIT_BUS;
        }
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                _cleanup_fclose_ FILE *f = NULL;
                char line[sizeof(EXPORT_HEADER)];
                size_t len = strlen(de->d_name);

                if (!strneq(de->d_name, EXPORT_FILE_PREFIX, strlen(EXPORT_FILE_PREFIX)) ||
                    len < strlen(HOSTDEVD_CONF_SUFFIX) ||
                    !streq(de->d_name + len - strlen(HOSTDEVD_CONF_SUFFIX), HOSTDEVD_CONF_SUFFIX) ||
                    conf_files_contain(l, de->d_name))
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
                        return log_oom(), EXIT_BUS;
                /* Non-blocking, regular files only: a FIFO of that name must not hang the command. */
                int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                struct stat st;
                if (fd < 0)
                        continue;
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "re"))) {
                        close(fd);
                        continue;
                }
                if (!fgets(line, sizeof(line), f) || !streq(line, EXPORT_HEADER))
                        continue;
                if (unlink(path) < 0) {
                        log_error_errno(errno, "Failed to remove %s: %m", path);
                        return EXIT_BUS;
                }
        }
        if (errno != 0) {
                log_error_errno(errno, "Failed to read %s: %m", dir);
                return EXIT_BUS;
        }
        return 0;
}

/*
 * The Driver= that keeps d as it is, or NULL when no rule is needed:
 *   bound, with driver_override set or to a VFIO driver -> the bound driver;
 *   unbound with driver_override set (e.g. driverctl's "none"), or unbound
 *   because the desired state says "none" -> "none";
 *   otherwise (the kernel's own match, or unbound by hand) -> NULL.
 */
static const char *export_driver(json_object *d) {
        const char *driver = json_get_string(d, "Driver"), *override = json_get_string(d, "DriverOverride");

        if (*driver)
                return *override || driver_name_is_vfio(driver) ? driver : NULL;
        return *override || streq(json_get_string(d, "DesiredDriver"), CONF_DRIVER_NONE) ? CONF_DRIVER_NONE
                                                                                         : NULL;
}

/* A driver name read from the daemon must also be one hostdevd.conf accepts. */
static int check_driver(const char *address, const char *driver) {
        DriverSpec spec = {};
        int r;

        r = driver_spec_parse(driver, &spec);
        driver_spec_done(&spec);
        if (r < 0)
                log_error("Cannot export %s: driver '%s' is not a valid Driver= value.", address, driver);
        return r;
}

static int export_vf_rule(ConfFiles *l, json_object *pf, json_object *vf, const char *driver) {
        const char *address = json_get_string(vf, "Address");
        char *name = NULL, *text = NULL;

        /* By PF and index rather than address: VF addresses are the PF's routing id + offset + stride. */
        if (asprintf(&name, EXPORT_FILE_PREFIX "%s.conf", address) < 0)
                name = NULL;
        if (asprintf(
                    &text,
                    EXPORT_HEADER "VF %" PRIi64 " (%s) of %s\n"
                                  "[" CONF_SECTION_MATCH "]\nPF=%s\nVFIndex=%" PRIi64 "\n\n"
                                  "[" CONF_SECTION_DEVICE "]\nDriver=%s\n",
                    json_get_int(vf, "VFIndex", -1), address, json_get_string(pf, "Address"),
                    json_get_string(pf, "Address"), json_get_int(vf, "VFIndex", -1), driver) < 0)
                text = NULL;
        return conf_files_add(l, name, text);
}

/* The VF at index i of virtfns, as the daemon shows it; NULL if it does not. */
static json_object *vf_at(json_object *by_address, json_object *virtfns, size_t i) {
        json_object *vf;

        if (!json_object_object_get_ex(
                    by_address, json_object_get_string(json_object_array_get_idx(virtfns, i)), &vf))
                return NULL;
        return vf;
}

/* The rule for one function that is not a VF of a known PF, plus the rules of its VFs. */
static int export_function(ConfFiles *l, json_object *d, json_object *by_address) {
        const char *address = json_get_string(d, "Address"), *driver = export_driver(d), *vf_driver = NULL;
        int64_t num_vfs =
                streq(json_get_string(d, "SriovRole"), "pf") ? json_get_int(d, "SriovNumVFs", 0) : 0;
        _cleanup_free_ char *device_section = NULL, *sriov_section = NULL;
        json_object *virtfns = NULL;
        char *name = NULL, *text = NULL;
        int r;

        if (driver && check_driver(address, driver) < 0)
                return -EINVAL;

        if (num_vfs > 0) {
                size_t n_vfs, best = 0;

                (void)json_object_object_get_ex(d, "VirtFns", &virtfns);
                n_vfs = json_object_is_type(virtfns, json_type_array) ? json_object_array_length(virtfns)
                                                                      : 0;

                /* VFDriver=: the Driver= most VFs would get (the first among equals), so the VFs are
                 * created with autoprobe off and bound by hostdevd; none when no VF needs a Driver=
                 * (all on their host driver: autoprobe, as without VFDriver=). */
                for (size_t i = 0; i < n_vfs; i++) {
                        json_object *vf = vf_at(by_address, virtfns, i);
                        const char *vd = vf ? export_driver(vf) : NULL;
                        size_t count = 0;

                        if (!vd)
                                continue;
                        for (size_t j = 0; j < n_vfs; j++) {
                                json_object *other = vf_at(by_address, virtfns, j);
                                if (other && streq(strempty(export_driver(other)), vd))
                                        count++;
                        }
                        if (count > best) {
                                best = count;
                                vf_driver = vd;
                        }
                }
                if (vf_driver && check_driver(address, vf_driver) < 0)
                        return -EINVAL;

                if (asprintf(
                            &sriov_section, "\n[" CONF_SECTION_SRIOV "]\nNumVFs=%" PRIi64 "\n%s%s%s",
                            num_vfs, vf_driver ? "VFDriver=" : "", strempty(vf_driver),
                            vf_driver ? "\n" : "") < 0)
                        return -ENOMEM;

                /* Each VF that would not get its present state from VFDriver= gets a rule of its own (a
                 * rule matching the VF beats its PF's VFDriver=, hostdevd.conf(5) CONFLICTS). VFs the
                 * daemon does not show are left out: nothing to tell. */
                for (size_t i = 0; i < n_vfs; i++) {
                        json_object *vf = vf_at(by_address, virtfns, i);
                        const char *vd;

                        if (!vf)
                                continue;
                        vd = export_driver(vf);
                        if (vf_driver) {
                                if (vd && streq(vd, vf_driver))
                                        continue;
                                /* On its host driver, or unbound without override: say so, as VFDriver=
                                 * would bind it. */
                                if (!vd)
                                        vd = *json_get_string(vf, "Driver") ? CONF_DRIVER_HOST
                                                                            : CONF_DRIVER_NONE;
                        } else if (!vd)
                                continue;
                        if (check_driver(json_get_string(vf, "Address"), vd) < 0)
                                return -EINVAL;
                        r = export_vf_rule(l, d, vf, vd);
                        if (r < 0)
                                return r;
                }
        }

        if (!driver && !sriov_section)
                return 0;
        if (driver && asprintf(&device_section, "\n[" CONF_SECTION_DEVICE "]\nDriver=%s\n", driver) < 0)
                return -ENOMEM;

        if (asprintf(&name, EXPORT_FILE_PREFIX "%s.conf", address) < 0)
                name = NULL;
        if (asprintf(
                    &text,
                    EXPORT_HEADER "%s %04" PRIx64 ":%04" PRIx64 "\n"
                                  "[" CONF_SECTION_MATCH "]\nAddress=%s\n%s%s",
                    address, json_get_int(d, "VendorId", 0), json_get_int(d, "DeviceId", 0), address,
                    strempty(device_section), strempty(sriov_section)) < 0)
                text = NULL;
        return conf_files_add(l, name, text);
}

int verb_export(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_json_ json_object *objects = NULL, *devices = NULL, *by_address = NULL;
        _cleanup_(conf_files_done) ConfFiles files = {};
        int r;

        r = bus_get_managed_objects(bus, &error, &objects);
        if (r < 0)
                return bus_client_fail(&error, r, "Failed to list devices");
        r = bus_objects_with_interface(objects, HOSTDEVD_DEVICE_INTERFACE, "Address", &devices);
        if (r < 0) {
                log_error_errno(r, "Failed to parse the device list: %m");
                return EXIT_BUS;
        }

        by_address = json_object_new_object();
        if (!by_address)
                return log_oom(), EXIT_BUS;
        for (size_t i = 0; i < json_object_array_length(devices); i++) {
                json_object *d = json_object_array_get_idx(devices, i);
                if (json_object_object_add(by_address, json_get_string(d, "Address"), json_object_get(d)) <
                    0)
                        return log_oom(), EXIT_BUS;
        }

        for (size_t i = 0; i < json_object_array_length(devices); i++) {
                json_object *d = json_object_array_get_idx(devices, i);

                /* A VF goes with its PF's rule (VFDriver=, or PF= + VFIndex=). */
                if (streq(json_get_string(d, "SriovRole"), "vf") &&
                    json_object_object_get_ex(by_address, json_get_string(d, "PhysFn"), NULL))
                        continue;
                r = export_function(&files, d, by_address);
                if (r == -ENOMEM)
                        return log_oom(), EXIT_BUS;
                if (r < 0)
                        return EXIT_BUS;
        }

        /* In the order hostdevd reads them. */
        qsort(files.files, files.n, sizeof(ConfFile), conf_file_compare);
        r = conf_files_write(&files, argc > 1 ? argv[1] : NULL);
        if (r != 0 || argc < 2)
                return r;
        return export_remove_stale(&files, argv[1]);
}

/* ---- import driverctl ------------------------------------------------------------ */

/* One driverctl file -> one rule; errors name the file and value. Returns 0, -EINVAL (logged) or -ENOMEM. */
static int import_driverctl_file(ConfFiles *l, const char *dir, const char *filename) {
        _cleanup_free_ char *path = NULL, *name = NULL, *text = NULL, *buf = NULL;
        char address[PCI_ADDRESS_STRING_MAX];
        DriverSpec spec = {};
        PciAddress a;
        size_t n, len;
        int r;

        if (asprintf(&path, "%s/%s", dir, filename) < 0)
                return -ENOMEM;

        if (!strneq(filename, DRIVERCTL_PCI_PREFIX, strlen(DRIVERCTL_PCI_PREFIX)) ||
            pci_address_from_string(filename + strlen(DRIVERCTL_PCI_PREFIX), &a) < 0) {
                log_error(
                        "%s: not a PCI override: driverctl names them 'pci-DDDD:BB:SS.F', not '%s'.", path,
                        filename);
                return -EINVAL;
        }
        pci_address_format(&a, address);

        r = file_read_bounded(path, DRIVERCTL_FILE_MAX, 0, &buf, &n);
        if (r == -EISDIR || r == -EBADFD) {
                log_error("%s: not a regular file.", path);
                return -EINVAL;
        }
        if (r == -EFBIG) {
                log_error("%s: longer than a driver name (%d bytes at most).", path, DRIVERCTL_FILE_MAX);
                return -EINVAL;
        }
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_error_errno(r, "%s: cannot read: %m", path);
                return -EINVAL;
        }
        /* driverctl writes "echo $drv": the name and one newline. */
        len = strlen(buf);
        if (len != (size_t)n) {
                log_error("%s: contains a NUL byte.", path);
                return -EINVAL;
        }
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
                buf[--len] = '\0';
        if (len == 0) {
                /* driverctl's load-override skips empty files ([ -s ]); an override nobody applies. */
                log_error("%s: empty, no driver named.", path);
                return -EINVAL;
        }

        r = driver_spec_parse(buf, &spec);
        if (r < 0 || spec.kind == DRIVER_KIND_HOST) {
                driver_spec_done(&spec);
                log_error("%s: invalid driver name '%s'.", path, buf);
                return r == -ENOMEM ? -ENOMEM : -EINVAL;
        }
        driver_spec_done(&spec);

        for (size_t i = 0; i < l->n; i++)
                if (strstr(l->files[i].name, address)) {
                        log_error("%s: a second override for %s.", path, address);
                        return -EINVAL;
                }

        if (asprintf(&name, IMPORT_FILE_PREFIX "%s.conf", address) < 0)
                return -ENOMEM;
        /* driverctl's "none" is driver_override "none": no driver binds, as Driver=none. */
        if (asprintf(
                    &text,
                    "# hostdevctl import driverctl: %s\n"
                    "[" CONF_SECTION_MATCH "]\nAddress=%s\n\n"
                    "[" CONF_SECTION_DEVICE "]\nDriver=%s\n",
                    path, address, buf) < 0)
                return -ENOMEM;
        return conf_files_add(l, TAKE_PTR(name), TAKE_PTR(text));
}

static int import_driverctl(const char *dir, ConfFiles *files) {
        struct dirent **entries = NULL;
        int n, r = 0, failed = 0;

        n = scandir(dir, &entries, NULL, alphasort);
        if (n < 0) {
                log_error_errno(errno, "Failed to read %s: %m", dir);
                return EXIT_BUS;
        }
        for (int i = 0; i < n; i++) {
                /* Hidden files are editors' and package managers' leftovers, as for hostdevd.conf. */
                if (entries[i]->d_name[0] != '.' && r != -ENOMEM) {
                        r = import_driverctl_file(files, dir, entries[i]->d_name);
                        if (r < 0)
                                failed++;
                }
                free(entries[i]);
        }
        free(entries);

        if (r == -ENOMEM)
                return log_oom(), EXIT_BUS;
        if (failed > 0) {
                log_error("%d of the entries in %s did not convert; nothing written.", failed, dir);
                return EXIT_BUS;
        }
        return 0;
}

/* ---- import mdevctl -------------------------------------------------------------- */

/* The mdevctl definitions converted so far, to refuse one UUID under two parents. */
typedef struct MdevctlSeen {
        char **uuids; /* strv */
        char **paths; /* strv, parallel */
} MdevctlSeen;

static void mdevctl_seen_done(MdevctlSeen *seen) {
        strv_free(seen->uuids);
        strv_free(seen->paths);
}

/* One definition file -> one rule (mdevctl-import.h). Returns 0, -EINVAL (logged) or -ENOMEM. */
static int import_mdevctl_file(
        ConfFiles *l, MdevctlSeen *seen, const char *parent_dir, const char *parent, const char *filename) {
        _cleanup_(mdevctl_definition_done) MdevctlDefinition d = {};
        _cleanup_free_ char *path = NULL, *buf = NULL, *error = NULL, *text = NULL;
        size_t n;
        int r;

        if (asprintf(&path, "%s/%s", parent_dir, filename) < 0)
                return -ENOMEM;
        r = file_read_bounded(path, MDEVCTL_FILE_MAX, FILE_READ_NOFOLLOW, &buf, &n);
        if (r == -EISDIR) {
                /* mdevctl reads regular files only; a directory here is none of its definitions. */
                log_notice("%s: a directory, not an mdevctl definition, ignoring.", path);
                return 0;
        }
        if (r == -EBADFD || r == -ELOOP) {
                log_error("%s: not a regular file.", path);
                return -EINVAL;
        }
        if (r == -EFBIG) {
                log_error(
                        "%s: larger than an mdevctl definition (%u bytes at most).", path, MDEVCTL_FILE_MAX);
                return -EINVAL;
        }
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_error_errno(r, "%s: cannot read: %m", path);
                return -EINVAL;
        }

        r = mdevctl_definition_parse(parent, filename, buf, n, &d, &error);
        if (r == -EINVAL) {
                log_error("%s: %s.", path, error);
                return r;
        }
        if (r < 0)
                return r;

        for (size_t i = 0; seen->uuids && seen->uuids[i]; i++)
                if (streq(seen->uuids[i], d.uuid)) {
                        log_error(
                                "%s: UUID %s is also defined by %s; one mdev cannot have two definitions.",
                                path, d.uuid, seen->paths[i]);
                        return -EINVAL;
                }
        if (strv_extend(&seen->uuids, d.uuid) < 0 || strv_extend(&seen->paths, path) < 0)
                return -ENOMEM;

        if (!d.autostart)
                log_notice(
                        "%s: \"start\": \"manual\", so its rule is written commented out (hostdevctl(1), "
                        "IMPORT).",
                        path);
        r = mdevctl_definition_to_conf(&d, path, &text);
        if (r < 0)
                return r;
        return conf_files_add(l, mdevctl_definition_conf_name(&d), TAKE_PTR(text));
}

static int import_mdevctl(const char *dir, ConfFiles *files) {
        _cleanup_(mdevctl_seen_done) MdevctlSeen seen = {};
        struct dirent **parents = NULL;
        int n, r = 0, failed = 0;

        n = scandir(dir, &parents, NULL, alphasort);
        if (n < 0) {
                log_error_errno(errno, "Failed to read %s: %m", dir);
                return EXIT_BUS;
        }
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *parent_dir = NULL;
                const char *parent = parents[i]->d_name;
                struct dirent **entries = NULL;
                struct stat st;
                int m;

                /* Hidden entries as for driverctl; scripts.d holds mdevctl's callouts, no definitions. */
                if (parent[0] == '.' || streq(parent, MDEVCTL_SCRIPTS_DIR) || r == -ENOMEM)
                        goto next;
                if (asprintf(&parent_dir, "%s/%s", dir, parent) < 0) {
                        r = -ENOMEM;
                        goto next;
                }
                if (lstat(parent_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        /* mdevctl ignores what is not a parent's directory here; so do we, aloud. */
                        log_notice("%s: not a parent's directory, ignoring.", parent_dir);
                        goto next;
                }
                m = scandir(parent_dir, &entries, NULL, alphasort);
                if (m < 0) {
                        log_error_errno(errno, "Failed to read %s: %m", parent_dir);
                        failed++;
                        goto next;
                }
                for (int j = 0; j < m; j++) {
                        if (entries[j]->d_name[0] != '.' && r != -ENOMEM) {
                                r = import_mdevctl_file(
                                        files, &seen, parent_dir, parent, entries[j]->d_name);
                                if (r < 0)
                                        failed++;
                        }
                        free(entries[j]);
                }
                free(entries);
next:
                free(parents[i]);
        }
        free(parents);

        if (r == -ENOMEM)
                return log_oom(), EXIT_BUS;
        if (failed > 0) {
                log_error("%d of the entries in %s did not convert; nothing written.", failed, dir);
                return EXIT_BUS;
        }
        return 0;
}

int verb_import(sd_bus *bus, int argc, char **argv) {
        _cleanup_(conf_files_done) ConfFiles files = {};
        int r;

        if (streq(argv[1], "driverctl"))
                r = import_driverctl(argc > 2 ? argv[2] : DRIVERCTL_CONF_DIR, &files);
        else if (streq(argv[1], "mdevctl")) {
                r = import_mdevctl(argc > 2 ? argv[2] : MDEVCTL_CONF_DIR, &files);
                /* By file name, the order hostdevd reads them in (the walk went by parent). */
                if (files.n > 0)
                        qsort(files.files, files.n, sizeof(ConfFile), conf_file_compare);
        } else {
                log_error("Unknown import format '%s' (expected 'driverctl' or 'mdevctl').", argv[1]);
                return EXIT_USAGE;
        }
        if (r != 0)
                return r;
        if (arg_json) {
                /* [{"File": NAME, "Text": TEXT}, ...]; with --output the files are written as well. */
                _cleanup_json_ json_object *a = json_object_new_array();

                if (!a)
                        return log_oom(), EXIT_BUS;
                for (size_t i = 0; i < files.n; i++) {
                        json_object *o = json_object_new_object();

                        if (!o || json_object_array_add(a, o) < 0) {
                                json_object_put(o);
                                return log_oom(), EXIT_BUS;
                        }
                        if (json_object_object_add(o, "File", json_object_new_string(files.files[i].name)) <
                                    0 ||
                            json_object_object_add(o, "Text", json_object_new_string(files.files[i].text)) <
                                    0)
                                return log_oom(), EXIT_BUS;
                }
                r = arg_output ? conf_files_write(&files, arg_output) : 0;
                if (r == 0)
                        print_json(a);
                return r;
        }
        return conf_files_write(&files, arg_output);
}
