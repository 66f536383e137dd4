/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>

#include "critical.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "pci-address.h"
#include "strv.h"
#include "sysfs.h"

/* Symlinks followed in one resolution, as the kernel's MAXSYMLINKS (include/linux/namei.h). */
#define RESOLVE_LINKS_MAX 40
/* IFNAMSIZ (include/uapi/linux/if.h), including the NUL. */
#define IFNAME_MAX 16

typedef struct Entry {
        char address[PCI_ADDRESS_STRING_MAX];
        char **reasons; /* strv, distinct, in the order found */
} Entry;

typedef struct Mount {
        unsigned major, minor;
        char *mount_point;
        char *fstype;
        char *source;
} Mount;

typedef struct Builder {
        const char *root; /* "" for the running system */
        Entry *entries;
        size_t n_entries;
        char **notes;
        char **visited; /* canonical sysfs paths (block) or "net:IF" already expanded for the current cause
                         */
        char *error; /* set with -EBADMSG/-ELOOP */
        Mount *mounts;
        size_t n_mounts;
} Builder;

static void builder_done(Builder *b) {
        for (size_t i = 0; i < b->n_entries; i++)
                strv_free(b->entries[i].reasons);
        free(b->entries);
        strv_free(b->notes);
        strv_free(b->visited);
        free(b->error);
        for (size_t i = 0; i < b->n_mounts; i++) {
                free(b->mounts[i].mount_point);
                free(b->mounts[i].fstype);
                free(b->mounts[i].source);
        }
        free(b->mounts);
}

_printf_(3, 4) static int builder_fail(Builder *b, int r, const char *format, ...) {
        va_list ap;

        free(b->error);
        b->error = NULL;
        va_start(ap, format);
        if (vasprintf(&b->error, format, ap) < 0) {
                b->error = NULL;
                r = -ENOMEM;
        }
        va_end(ap);
        return r;
}

static int builder_add(Builder *b, const char *address, const char *reason) {
        Entry *e = NULL;

        for (size_t i = 0; i < b->n_entries; i++)
                if (streq(b->entries[i].address, address)) {
                        e = &b->entries[i];
                        break;
                }
        if (!e) {
                Entry *a = reallocarray(b->entries, b->n_entries + 1, sizeof(Entry));
                if (!a)
                        return -ENOMEM;
                b->entries = a;
                e = &b->entries[b->n_entries++];
                *e = (Entry){};
                assert(strlen(address) < sizeof(e->address));
                strcpy(e->address, address);
        }
        if (strv_contains(e->reasons, reason))
                return 0;
        return strv_extend(&e->reasons, reason);
}

static const char *root_path(const Builder *b, const char *path, char *buf, size_t size) {
        /* |path| is absolute; the result is |root||path|. */
        if (snprintf(buf, size, "%s%s", b->root, path) >= (int)size)
                return NULL;
        return buf;
}

/*
 * Resolve |path| (absolute, under root) to its canonical form under root, following every symlink
 * component with readlink() alone (umockdev wraps readlink; sysfs links are relative). A missing
 * component gives -ENOENT.
 */
static int resolve(const Builder *b, const char *path, char **ret) {
        _cleanup_free_ char *cur = strdup(""), *rest = strdup(path);
        unsigned links = 0;

        if (!cur || !rest)
                return -ENOMEM;
        for (;;) {
                char *p = rest, *comp, full[PATH_MAX], target[PATH_MAX];
                size_t len;
                ssize_t n;

                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                len = strcspn(p, "/");
                comp = strndup(p, len);
                if (!comp)
                        return -ENOMEM;
                memmove(rest, p + len, strlen(p + len) + 1);

                if (streq(comp, ".")) {
                        free(comp);
                        continue;
                }
                if (streq(comp, "..")) {
                        char *slash = strrchr(cur, '/');
                        if (slash)
                                *slash = '\0';
                        free(comp);
                        continue;
                }

                char *next;
                if (asprintf(&next, "%s/%s", cur, comp) < 0) {
                        free(comp);
                        return -ENOMEM;
                }
                free(comp);
                if (snprintf(full, sizeof(full), "%s%s", b->root, next) >= (int)sizeof(full)) {
                        free(next);
                        return -ENAMETOOLONG;
                }
                n = readlink(full, target, sizeof(target) - 1);
                if (n < 0) {
                        int r = -errno;
                        if (r != -EINVAL) {
                                free(next);
                                return r;
                        }
                        /* not a link: a directory or file */
                        free(cur);
                        cur = next;
                        continue;
                }
                free(next);
                if (++links > RESOLVE_LINKS_MAX)
                        return -ELOOP;
                target[n] = '\0';
                if (target[0] == '/')
                        cur[0] = '\0';
                char *r2;
                if (asprintf(&r2, "%s/%s", target, rest) < 0)
                        return -ENOMEM;
                free(rest);
                rest = r2;
        }
        if (!*cur) {
                free(cur);
                cur = strdup("/");
                if (!cur)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(cur);
        return 0;
}

static bool path_exists(const Builder *b, const char *path) {
        char buf[PATH_MAX];

        return root_path(b, path, buf, sizeof(buf)) && access(buf, F_OK) >= 0;
}

static const char *last_component(const char *path) {
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

/* True if the sysfs directory |path| (canonical, under root) is a PCI function: its subsystem is "pci". */
static bool is_pci_function(const Builder *b, const char *path) {
        _cleanup_free_ char *subsystem = NULL;
        char dir[PATH_MAX], canonical[PCI_ADDRESS_STRING_MAX];
        const char *name = last_component(path);
        PciAddress a;

        if (pci_address_from_string(name, &a) < 0 || !streq(pci_address_format(&a, canonical), name))
                return false;
        if (!root_path(b, path, dir, sizeof(dir)))
                return false;
        if (sysfs_read_link_basename(dir, SYSFS_ATTR_SUBSYSTEM, &subsystem) < 0)
                return false;
        return streq(subsystem, UEVENT_SUBSYSTEM_PCI);
}

/* The PCI functions on canonical sysfs path |path|, outermost first, as a strv (NULL: none). */
static int pci_ancestors(const Builder *b, const char *path, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *prefix = strdup(path);
        int r;

        if (!prefix)
                return -ENOMEM;
        /* Walk every prefix /sys/devices/pci0000:00, /sys/devices/pci0000:00/0000:00:1d.0, ... */
        for (char *p = prefix + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char saved = *p;
                *p = '\0';
                if (is_pci_function(b, prefix)) {
                        r = strv_extend(&l, last_component(prefix));
                        if (r < 0)
                                return r;
                }
                *p = saved;
                if (!saved)
                        break;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/*
 * Mark every PCI function on |path| critical: the nearest one with |why|, the bridges above it with
 * "upstream bridge of ADDR: why". Returns the number of functions found.
 */
static int add_path(Builder *b, const char *path, const char *why) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n;
        int r;

        r = pci_ancestors(b, path, &l);
        if (r < 0)
                return r;
        n = strv_length(l);
        if (n == 0)
                return 0;
        r = builder_add(b, l[n - 1], why);
        if (r < 0)
                return r;
        for (size_t i = 0; i + 1 < n; i++) {
                _cleanup_free_ char *s = NULL;
                if (asprintf(&s, "upstream bridge of %s: %s", l[n - 1], why) < 0)
                        return -ENOMEM;
                r = builder_add(b, l[i], s);
                if (r < 0)
                        return r;
        }
        return (int)n;
}

/* ---- block devices ------------------------------------------------------- */

/*
 * Block device at canonical sysfs path |path|: its PCI path (unless |ancestors| is false: a partition's
 * parent has the same one), then its slaves (dm, md, LVM), and a partition's parent disk for the
 * parent's slaves. |why| names the cause; a lower device adds " through NAME".
 */
static int add_block(
        Builder *b, const char *path, const char *top, const char *why, bool ancestors, int depth) {
        _cleanup_closedir_ DIR *d = NULL;
        char buf[PATH_MAX];
        int r, found = 0;

        if (depth > CRITICAL_DEPTH_MAX)
                return builder_fail(
                        b, -ELOOP, "%s: block devices stacked deeper than %d at %s", why, CRITICAL_DEPTH_MAX,
                        path);
        if (strv_contains(b->visited, path))
                return 0;
        r = strv_extend(&b->visited, path);
        if (r < 0)
                return r;

        if (ancestors) {
                _cleanup_free_ char *w = NULL;
                const char *name = last_component(path);

                if (!streq(name, top) && asprintf(&w, "%s through %s", why, name) < 0)
                        return -ENOMEM;
                r = add_path(b, path, w ?: why);
                if (r < 0)
                        return r;
                found += r;
        }

        /* Documentation/ABI/stable/sysfs-block: "slaves" lists the devices this one is built on. */
        _cleanup_free_ char *slaves = NULL;
        if (asprintf(&slaves, "%s/" SYSFS_BLOCK_SLAVES, path) < 0)
                return -ENOMEM;
        if (!root_path(b, slaves, buf, sizeof(buf)))
                return -ENAMETOOLONG;
        d = opendir(buf);
        if (d) {
                struct dirent *de;
                while ((errno = 0, de = readdir(d))) {
                        _cleanup_free_ char *link = NULL, *lower = NULL;
                        if (de->d_name[0] == '.')
                                continue;
                        if (asprintf(&link, "%s/%s", slaves, de->d_name) < 0)
                                return -ENOMEM;
                        r = resolve(b, link, &lower);
                        if (r == -ENOENT) {
                                r = strv_extendf(&b->notes, "%s: slave %s vanished", why, link);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        if (r < 0)
                                return builder_fail(
                                        b, r, "%s: cannot resolve %s: %s", why, link, strerror(-r));
                        r = add_block(b, lower, top, why, true, depth + 1);
                        if (r < 0)
                                return r;
                        found += r;
                }
                if (errno > 0)
                        return builder_fail(b, -errno, "%s: cannot read %s: %m", why, slaves);
        }

        /* A partition (it has "partition", sysfs-block): the parent disk may be dm/md with slaves. */
        _cleanup_free_ char *part = NULL;
        if (asprintf(&part, "%s/" SYSFS_BLOCK_PARTITION, path) < 0)
                return -ENOMEM;
        if (path_exists(b, part)) {
                _cleanup_free_ char *parent = strndup(path, last_component(path) - 1 - path);
                if (!parent)
                        return -ENOMEM;
                r = add_block(b, parent, top, why, false, depth + 1);
                if (r < 0)
                        return r;
                found += r;
        }
        return found;
}

/* Block device by MAJ:MIN (/sys/dev/block, sysfs-dev). */
static int add_block_devnum(Builder *b, unsigned major, unsigned minor, const char *why) {
        _cleanup_free_ char *link = NULL, *path = NULL;
        int r;

        if (asprintf(&link, SYSFS_DEV_BLOCK "/%u:%u", major, minor) < 0)
                return -ENOMEM;
        r = resolve(b, link, &path);
        if (r == -ENOENT)
                return strv_extendf(&b->notes, "%s: no %s", why, link);
        if (r < 0)
                return builder_fail(b, r, "%s: cannot resolve %s: %s", why, link, strerror(-r));
        strv_free(b->visited);
        b->visited = NULL;
        r = add_block(b, path, last_component(path), why, true, 0);
        if (r == 0)
                r = strv_extendf(&b->notes, "%s: no PCI function", why);
        return r < 0 ? r : 0;
}

/* Block device by /dev node name (/dev/sda3, /dev/mapper/vg-swap -> ../dm-1): via /sys/class/block/NAME. */
static int add_block_node(Builder *b, const char *node, const char *why) {
        _cleanup_free_ char *resolved = NULL, *link = NULL, *path = NULL;
        int r;

        r = resolve(b, node, &resolved);
        if (r < 0)
                return strv_extendf(&b->notes, "%s: cannot resolve %s: %s", why, node, strerror(-r));
        if (asprintf(&link, SYSFS_CLASS_BLOCK "/%s", last_component(resolved)) < 0)
                return -ENOMEM;
        r = resolve(b, link, &path);
        if (r < 0)
                return strv_extendf(&b->notes, "%s: no %s", why, link);
        strv_free(b->visited);
        b->visited = NULL;
        r = add_block(b, path, last_component(path), why, true, 0);
        if (r == 0)
                r = strv_extendf(&b->notes, "%s: no PCI function", why);
        return r < 0 ? r : 0;
}

/* ---- /proc files -------------------------------------------------------- */

/* Undo the octal escapes of mountinfo and swaps (seq_escape: space, tab, newline, backslash as \ooo). */
static char *unescape(const char *s) {
        char *out = malloc(strlen(s) + 1), *o = out;

        if (!out)
                return NULL;
        while (*s) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
                    s[3] >= '0' && s[3] <= '7') {
                        *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 4;
                } else
                        *o++ = *s++;
        }
        *o = '\0';
        return out;
}

typedef int (*LineFunc)(Builder *b, const char *file, unsigned line_no, char *line);

/* Read |file| under root line by line; -ENOENT is returned as is (the caller decides). */
static int read_lines(Builder *b, const char *file, LineFunc func) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        char buf[PATH_MAX];
        size_t size = 0;
        unsigned n = 0;
        ssize_t k;
        int r;

        if (!root_path(b, file, buf, sizeof(buf)))
                return -ENAMETOOLONG;
        f = fopen(buf, "re");
        if (!f)
                return -errno;
        while ((errno = 0, k = getline(&line, &size, f)) >= 0) {
                n++;
                if ((size_t)k > CRITICAL_LINE_MAX)
                        return builder_fail(
                                b, -EBADMSG, "%s:%u: line longer than %u bytes", file, n, CRITICAL_LINE_MAX);
                if (memchr(line, '\0', (size_t)k))
                        return builder_fail(b, -EBADMSG, "%s:%u: NUL byte in line", file, n);
                if (k > 0 && line[k - 1] == '\n')
                        line[k - 1] = '\0';
                r = func(b, file, n, line);
                if (r < 0)
                        return r;
        }
        if (errno > 0)
                return builder_fail(b, -errno, "%s: read failed after line %u: %m", file, n);
        return 0;
}

/* Split at runs of spaces/tabs, in place; at most |max| fields. Returns the count. */
static size_t split_fields(char *line, char **fields, size_t max) {
        size_t n = 0;

        for (char *t = strtok(line, " \t"); t; t = strtok(NULL, " \t")) {
                if (n == max)
                        return max + 1;
                fields[n++] = t;
        }
        return n;
}

static int parse_hex_u32(const char *s, size_t digits, uint32_t *ret) {
        uint32_t v = 0;

        if (strlen(s) != digits)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (!isxdigit((unsigned char)*p))
                        return -EINVAL;
                v = (v << 4) |
                        (uint32_t)(isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10);
        }
        *ret = v;
        return 0;
}

static bool ifname_is_valid(const char *s) {
        size_t n = strlen(s);

        /* dev_valid_name() in net/core/dev.c */
        if (n == 0 || n >= IFNAME_MAX || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
                        return false;
        return true;
}

/* mountinfo (proc(5)): ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS */
static int on_mountinfo_line(Builder *b, const char *file, unsigned n, char *line) {
        _cleanup_free_ char *copy = strdup(line);
        char *f[512];
        size_t k, sep;
        unsigned major, minor;
        int consumed = 0;

        if (!copy)
                return -ENOMEM;
        k = split_fields(line, f, ELEMENTSOF(f));
        if (k > ELEMENTSOF(f))
                return builder_fail(b, -EBADMSG, "%s:%u: too many fields: %s", file, n, copy);
        for (sep = 6; sep < k && !streq(f[sep], "-"); sep++)
                ;
        if (k < 10 || sep + 3 > k)
                return builder_fail(
                        b, -EBADMSG,
                        "%s:%u: expected 'ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE OPTIONS': %s",
                        file, n, copy);
        if (sscanf(f[2], "%u:%u%n", &major, &minor, &consumed) != 2 || f[2][consumed] != '\0' ||
            !isdigit((unsigned char)f[2][0]))
                return builder_fail(b, -EBADMSG, "%s:%u: bad MAJ:MIN '%s': %s", file, n, f[2], copy);
        if (f[4][0] != '/')
                return builder_fail(b, -EBADMSG, "%s:%u: bad mount point '%s': %s", file, n, f[4], copy);

        Mount *a = reallocarray(b->mounts, b->n_mounts + 1, sizeof(Mount));
        if (!a)
                return -ENOMEM;
        b->mounts = a;
        Mount *m = &b->mounts[b->n_mounts];
        *m = (Mount){
                .major = major,
                .minor = minor,
                .mount_point = unescape(f[4]),
                .fstype = unescape(f[sep + 1]),
                .source = unescape(f[sep + 2]),
        };
        b->n_mounts++;
        if (!m->mount_point || !m->fstype || !m->source)
                return -ENOMEM;
        return 0;
}

/* The block devices of all mounts, each device once (bind mounts repeat it): the first mount point names it.
 */
static int add_mounts(Builder *b) {
        for (size_t i = 0; i < b->n_mounts; i++) {
                const Mount *m = &b->mounts[i];
                _cleanup_free_ char *why = NULL;
                bool seen = false;
                int r;

                for (size_t j = 0; j < i && !seen; j++)
                        seen = m->major != 0
                                ? (b->mounts[j].major == m->major && b->mounts[j].minor == m->minor)
                                : (b->mounts[j].major == 0 && streq(b->mounts[j].source, m->source));
                if (seen)
                        continue;
                /* Major 0: an anonymous device (proc, tmpfs, overlay, btrfs subvolumes); only a /dev source
                 * leads anywhere. */
                if (m->major == 0 && !strneq(m->source, "/dev/", 5))
                        continue;
                if (asprintf(&why, "controller of %s (%s, %s)", m->mount_point, m->source, m->fstype) < 0)
                        return -ENOMEM;
                r = m->major != 0 ? add_block_devnum(b, m->major, m->minor, why)
                                  : add_block_node(b, m->source, why);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* /proc/swaps (mm/swapfile.c swap_show()): "Filename Type Size Used Priority", a header line first. */
static int on_swaps_line(Builder *b, const char *file, unsigned n, char *line) {
        _cleanup_free_ char *copy = strdup(line), *name = NULL, *why = NULL;
        char *f[6];
        size_t k;

        if (!copy)
                return -ENOMEM;
        k = split_fields(line, f, ELEMENTSOF(f) - 1);
        if (n == 1 && k > 0 && streq(f[0], "Filename"))
                return 0;
        if (k == 0)
                return 0;
        if (k != 5 || f[0][0] != '/')
                return builder_fail(
                        b, -EBADMSG, "%s:%u: expected 'Filename Type Size Used Priority': %s", file, n,
                        copy);
        name = unescape(f[0]);
        if (!name)
                return -ENOMEM;
        if (streq(f[1], "partition")) {
                if (asprintf(&why, "controller of swap %s", name) < 0)
                        return -ENOMEM;
                return add_block_node(b, name, why);
        }
        if (!streq(f[1], "file"))
                return builder_fail(b, -EBADMSG, "%s:%u: unknown swap type '%s': %s", file, n, f[1], copy);

        /* A swap file: the filesystem it lies on, by the longest mount point that contains it. */
        const Mount *best = NULL;
        for (size_t i = 0; i < b->n_mounts; i++) {
                const char *mp = b->mounts[i].mount_point;
                size_t l = strlen(mp);
                bool contains =
                        streq(mp, "/") || (strneq(name, mp, l) && (name[l] == '/' || name[l] == '\0'));
                if (contains && (!best || strlen(best->mount_point) <= l))
                        best = &b->mounts[i];
        }
        if (!best)
                return strv_extendf(&b->notes, "swap file %s: on no known mount", name);
        if (asprintf(&why, "controller of swap file %s (on %s, %s)", name, best->mount_point, best->source) <
            0)
                return -ENOMEM;
        if (best->major != 0)
                return add_block_devnum(b, best->major, best->minor, why);
        if (strneq(best->source, "/dev/", 5))
                return add_block_node(b, best->source, why);
        return strv_extendf(&b->notes, "%s: no block device", why);
}

/* ---- network ------------------------------------------------------------ */

static int add_netdev(Builder *b, const char *ifname, const char *route_if, const char *family, int depth) {
        _cleanup_free_ char *class = NULL, *path = NULL, *why = NULL, *key = NULL, *bonding = NULL;
        _cleanup_strv_free_ char **lowers = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        char buf[PATH_MAX];
        int r, found = 0;

        if (depth > CRITICAL_DEPTH_MAX)
                return builder_fail(
                        b, -ELOOP, "%s default route via %s: interfaces stacked deeper than %d at %s",
                        family, route_if, CRITICAL_DEPTH_MAX, ifname);
        if (!ifname_is_valid(ifname))
                return builder_fail(
                        b, -EBADMSG, "%s default route via %s: bad interface name '%s'", family, route_if,
                        ifname);
        if (asprintf(&key, "net:%s", ifname) < 0)
                return -ENOMEM;
        if (strv_contains(b->visited, key))
                return 0;
        r = strv_push(&b->visited, TAKE_PTR(key));
        if (r < 0)
                return r;

        if (asprintf(&class, SYSFS_CLASS_NET "/%s", ifname) < 0)
                return -ENOMEM;
        r = resolve(b, class, &path);
        if (r == -ENOENT) {
                r = strv_extendf(&b->notes, "%s default route via %s: no %s", family, route_if, class);
                return r < 0 ? r : 0;
        }
        if (r < 0)
                return builder_fail(
                        b, r, "%s default route via %s: cannot resolve %s: %s", family, route_if, class,
                        strerror(-r));

        /* The canonical path of a NIC runs through its device (the "device" link's target). */
        if (streq(ifname, route_if))
                r = asprintf(&why, "carries the %sdefault route via %s", family, route_if);
        else
                r = asprintf(
                        &why, "carries the %sdefault route via %s (through %s)", family, route_if, ifname);
        if (r < 0)
                return -ENOMEM;
        r = add_path(b, path, why);
        if (r < 0)
                return r;
        found += r;

        /* Upper devices: lower_* links (bond, team, VLAN, macvlan, bridge), brif/ (bridge ports). */
        if (!root_path(b, path, buf, sizeof(buf)))
                return -ENAMETOOLONG;
        d = opendir(buf);
        if (d) {
                struct dirent *de;
                while ((errno = 0, de = readdir(d)))
                        if (strneq(de->d_name, SYSFS_NET_LOWER_PREFIX, strlen(SYSFS_NET_LOWER_PREFIX)) &&
                            de->d_name[strlen(SYSFS_NET_LOWER_PREFIX)]) {
                                r = strv_extend(&lowers, de->d_name + strlen(SYSFS_NET_LOWER_PREFIX));
                                if (r < 0)
                                        return r;
                        }
                if (errno > 0)
                        return builder_fail(b, -errno, "cannot read %s: %m", path);
                closedir(TAKE_PTR(d));
        }
        if (snprintf(buf, sizeof(buf), "%s%s/" SYSFS_NET_BRIF, b->root, path) >= (int)sizeof(buf))
                return -ENAMETOOLONG;
        d = opendir(buf);
        if (d) {
                struct dirent *de;
                while ((errno = 0, de = readdir(d)))
                        if (de->d_name[0] != '.' && !strv_contains(lowers, de->d_name)) {
                                r = strv_extend(&lowers, de->d_name);
                                if (r < 0)
                                        return r;
                        }
                if (errno > 0)
                        return builder_fail(b, -errno, "cannot read %s/brif: %m", path);
        }
        /* Documentation/networking/bonding.rst: bonding/slaves, space separated. */
        if (snprintf(buf, sizeof(buf), "%s%s/" SYSFS_NET_BONDING, b->root, path) >= (int)sizeof(buf))
                return -ENAMETOOLONG;
        r = sysfs_read_string(buf, SYSFS_NET_BONDING_SLAVES, &bonding);
        if (r >= 0) {
                _cleanup_strv_free_ char **l = NULL;
                r = strv_split(bonding, " \t\n", &l);
                if (r < 0)
                        return r;
                STRV_FOREACH (s, l)
                        if (!strv_contains(lowers, *s)) {
                                r = strv_extend(&lowers, *s);
                                if (r < 0)
                                        return r;
                        }
        } else if (r != -ENOENT)
                return builder_fail(b, r, "cannot read %s/bonding/slaves: %s", path, strerror(-r));

        STRV_FOREACH (s, lowers) {
                r = add_netdev(b, *s, route_if, family, depth + 1);
                if (r < 0)
                        return r;
                found += r;
        }
        if (depth == 0 && found == 0) {
                r = strv_extendf(&b->notes, "%sdefault route via %s: no PCI function", family, route_if);
                if (r < 0)
                        return r;
        }
        return found;
}

static int add_route_interface(Builder *b, const char *ifname, const char *family) {
        int r;

        strv_free(b->visited);
        b->visited = NULL;
        r = add_netdev(b, ifname, ifname, family, 0);
        return r < 0 ? r : 0;
}

/*
 * /proc/net/route (net/ipv4/fib_trie.c fib_route_seq_show()): a header, then
 * "Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT", addresses in hex as stored
 * (network byte order), flags RTF_* (include/uapi/linux/route.h).
 */
static int on_route_line(Builder *b, const char *file, unsigned n, char *line) {
        _cleanup_free_ char *copy = strdup(line);
        char *f[12];
        uint32_t dest, mask, flags, dummy;
        size_t k;

        if (!copy)
                return -ENOMEM;
        k = split_fields(line, f, 11);
        if (n == 1 && k > 0 && streq(f[0], "Iface"))
                return 0;
        if (k == 0)
                return 0;
        if (k != 11)
                return builder_fail(
                        b, -EBADMSG, "%s:%u: expected 11 fields, got %zu: %s", file, n,
                        k > 11 ? (size_t)12 : k, copy);
        if (!ifname_is_valid(f[0]))
                return builder_fail(b, -EBADMSG, "%s:%u: bad Iface '%s': %s", file, n, f[0], copy);
        if (parse_hex_u32(f[1], 8, &dest) < 0)
                return builder_fail(b, -EBADMSG, "%s:%u: bad Destination '%s': %s", file, n, f[1], copy);
        if (parse_hex_u32(f[2], 8, &dummy) < 0)
                return builder_fail(b, -EBADMSG, "%s:%u: bad Gateway '%s': %s", file, n, f[2], copy);
        if (parse_hex_u32(f[3], 4, &flags) < 0)
                return builder_fail(b, -EBADMSG, "%s:%u: bad Flags '%s': %s", file, n, f[3], copy);
        if (parse_hex_u32(f[7], 8, &mask) < 0)
                return builder_fail(b, -EBADMSG, "%s:%u: bad Mask '%s': %s", file, n, f[7], copy);
        /* RTF_UP 0x0001; RTF_REJECT 0x0200 routes (unreachable) carry nothing. */
        if (dest != 0 || mask != 0 || !(flags & 0x0001) || (flags & 0x0200))
                return 0;
        return add_route_interface(b, f[0], "");
}

/*
 * /proc/net/ipv6_route (net/ipv6/route.c ipv6_route_native_seq_show()): "DEST DESTLEN SRC SRCLEN NEXTHOP
 * METRIC REFCNT USE FLAGS IFACE", no header; DEST/SRC/NEXTHOP 32 hex, lengths 2 hex, the rest 8 hex.
 * The kernel keeps ::/0 reject routes on lo; those carry nothing.
 */
static int on_ipv6_route_line(Builder *b, const char *file, unsigned n, char *line) {
        _cleanup_free_ char *copy = strdup(line);
        char *f[11];
        uint32_t v, len, flags;
        size_t k;
        bool zero = true;

        if (!copy)
                return -ENOMEM;
        k = split_fields(line, f, 10);
        if (k == 0)
                return 0;
        if (k != 10)
                return builder_fail(
                        b, -EBADMSG, "%s:%u: expected 10 fields, got %zu: %s", file, n,
                        k > 10 ? (size_t)11 : k, copy);
        if (strlen(f[0]) != 32 || strspn(f[0], "0123456789abcdefABCDEF") != 32)
                return builder_fail(b, -EBADMSG, "%s:%u: bad destination '%s': %s", file, n, f[0], copy);
        for (const char *p = f[0]; *p; p++)
                zero = zero && *p == '0';
        if (parse_hex_u32(f[1], 2, &len) < 0 || len > 128)
                return builder_fail(b, -EBADMSG, "%s:%u: bad prefix length '%s': %s", file, n, f[1], copy);
        if (strlen(f[2]) != 32 || strspn(f[2], "0123456789abcdefABCDEF") != 32)
                return builder_fail(b, -EBADMSG, "%s:%u: bad source '%s': %s", file, n, f[2], copy);
        if (parse_hex_u32(f[3], 2, &v) < 0 || v > 128)
                return builder_fail(
                        b, -EBADMSG, "%s:%u: bad source prefix length '%s': %s", file, n, f[3], copy);
        if (strlen(f[4]) != 32 || strspn(f[4], "0123456789abcdefABCDEF") != 32)
                return builder_fail(b, -EBADMSG, "%s:%u: bad next hop '%s': %s", file, n, f[4], copy);
        for (size_t i = 5; i <= 8; i++)
                if (parse_hex_u32(f[i], 8, &v) < 0)
                        return builder_fail(
                                b, -EBADMSG, "%s:%u: bad hex field %zu '%s': %s", file, n, i + 1, f[i],
                                copy);
        (void)parse_hex_u32(f[8], 8, &flags);
        if (!ifname_is_valid(f[9]))
                return builder_fail(b, -EBADMSG, "%s:%u: bad interface '%s': %s", file, n, f[9], copy);
        if (!zero || len != 0 || !(flags & 0x0001) || (flags & 0x0200) || streq(f[9], "lo"))
                return 0;
        return add_route_interface(b, f[9], "IPv6 ");
}

/* ---- boot VGA ----------------------------------------------------------- */

static int add_boot_vga(Builder *b, const char *address) {
        _cleanup_free_ char *link = NULL, *path = NULL;
        int r;

        r = builder_add(b, address, "boot VGA");
        if (r < 0)
                return r;
        /* The bridges above it: resolve its /sys/bus/pci/devices link. */
        if (asprintf(&link, SYSFS_PCI_DEVICES "/%s", address) < 0)
                return -ENOMEM;
        r = resolve(b, link, &path);
        if (r < 0)
                return strv_extendf(
                        &b->notes, "boot VGA %s: cannot resolve %s: %s", address, link, strerror(-r));
        r = add_path(b, path, "boot VGA");
        return r < 0 ? r : 0;
}

static int scan_boot_vga(Builder *b) {
        _cleanup_closedir_ DIR *d = NULL;
        char buf[PATH_MAX];
        struct dirent *de;
        int r;

        if (!root_path(b, SYSFS_PCI_DEVICES, buf, sizeof(buf)))
                return -ENAMETOOLONG;
        d = opendir(buf);
        if (!d)
                return errno == ENOENT ? 0
                                       : builder_fail(b, -errno, "cannot open %s: %m", SYSFS_PCI_DEVICES);
        while ((errno = 0, de = readdir(d))) {
                char dir[PATH_MAX];
                bool vga;

                if (!pci_address_is_valid(de->d_name))
                        continue;
                if (snprintf(dir, sizeof(dir), "%s/%s", buf, de->d_name) >= (int)sizeof(dir))
                        continue;
                if (sysfs_read_bool(dir, SYSFS_ATTR_BOOT_VGA, &vga) < 0 || !vga)
                        continue;
                r = add_boot_vga(b, de->d_name);
                if (r < 0)
                        return r;
        }
        if (errno > 0)
                return builder_fail(b, -errno, "cannot read %s: %m", SYSFS_PCI_DEVICES);
        return 0;
}

/* ---- result -------------------------------------------------------------- */

CriticalSet *critical_set_free(CriticalSet *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_devices; i++) {
                free((char *)s->devices[i].address);
                free((char *)s->devices[i].reason);
        }
        free(s->devices);
        strv_free(s->notes);
        free(s);
        return NULL;
}

static int critical_compare(const void *x, const void *y) {
        const CriticalDevice *a = x, *b = y;
        PciAddress pa, pb;

        if (pci_address_from_string(a->address, &pa) < 0 || pci_address_from_string(b->address, &pb) < 0)
                return strcmp(a->address, b->address);
        return pci_address_compare(&pa, &pb);
}

const CriticalDevice *critical_set_get(const CriticalSet *s, const char *address) {
        if (!s || !address)
                return NULL;
        for (size_t i = 0; i < s->n_devices; i++)
                if (streq(s->devices[i].address, address))
                        return &s->devices[i];
        return NULL;
}

static char *join_reasons(char **reasons) {
        size_t n = strv_length(reasons);
        char *s = NULL;

        for (size_t i = 0; i < n && i < CRITICAL_REASONS_MAX; i++) {
                char *t;
                if (asprintf(&t, "%s%s%s", strempty(s), s ? "; " : "", reasons[i]) < 0) {
                        free(s);
                        return NULL;
                }
                free(s);
                s = t;
        }
        if (n > CRITICAL_REASONS_MAX) {
                char *t;
                if (asprintf(&t, "%s; and %zu more", s, n - CRITICAL_REASONS_MAX) < 0) {
                        free(s);
                        return NULL;
                }
                free(s);
                s = t;
        }
        return s;
}

static int builder_finish(Builder *b, CriticalSet **ret) {
        _cleanup_(critical_set_freep) CriticalSet *s = calloc(1, sizeof(CriticalSet));

        if (!s)
                return -ENOMEM;
        if (b->n_entries > 0) {
                s->devices = calloc(b->n_entries, sizeof(CriticalDevice));
                if (!s->devices)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < b->n_entries; i++) {
                char *a = strdup(b->entries[i].address), *r = join_reasons(b->entries[i].reasons);
                if (!a || !r) {
                        free(a);
                        free(r);
                        return -ENOMEM;
                }
                s->devices[s->n_devices++] = (CriticalDevice){ .address = a, .reason = r };
        }
        if (s->n_devices > 1)
                qsort(s->devices, s->n_devices, sizeof(CriticalDevice), critical_compare);
        s->notes = TAKE_PTR(b->notes);
        *ret = TAKE_PTR(s);
        return 0;
}

int critical_compute(
        const char *root, const PciDevice *const *devices, size_t n_devices, CriticalSet **ret,
        char **ret_error) {
        _cleanup_free_ char *root_trimmed = NULL;
        Builder b = {};
        int r;

        assert(ret);
        assert(devices || n_devices == 0);

        /* "" for "/", else root without trailing slashes. */
        root_trimmed = strdup(root ? root : "");
        if (!root_trimmed)
                return -ENOMEM;
        for (size_t l = strlen(root_trimmed); l > 0 && root_trimmed[l - 1] == '/'; l--)
                root_trimmed[l - 1] = '\0';
        b.root = root_trimmed;

        r = read_lines(&b, PROC_SELF_MOUNTINFO, on_mountinfo_line);
        if (r < 0 && !b.error)
                r = builder_fail(&b, r, "cannot read %s: %s", PROC_SELF_MOUNTINFO, strerror(-r));
        if (r >= 0)
                r = add_mounts(&b);
        if (r >= 0) {
                r = read_lines(&b, PROC_SWAPS, on_swaps_line);
                if (r == -ENOENT && !b.error)
                        r = 0;
        }
        if (r >= 0) {
                r = read_lines(&b, PROC_NET_ROUTE, on_route_line);
                if (r == -ENOENT && !b.error)
                        r = 0;
        }
        if (r >= 0) {
                r = read_lines(&b, PROC_NET_IPV6_ROUTE, on_ipv6_route_line);
                if (r == -ENOENT && !b.error)
                        r = 0;
        }
        if (r >= 0 && !devices)
                r = scan_boot_vga(&b);
        for (size_t i = 0; r >= 0 && i < n_devices; i++)
                if (devices[i]->boot_vga)
                        r = add_boot_vga(&b, devices[i]->address);
        if (r >= 0)
                r = builder_finish(&b, ret);
        if (r < 0) {
                log_debug_errno(r, "Failed to compute the host-critical set: %s", strna(b.error));
                if (ret_error)
                        *ret_error = b.error ? TAKE_PTR(b.error) : NULL;
        }
        builder_done(&b);
        return r;
}

CriticalSet *critical_set_copy(const CriticalSet *s) {
        _cleanup_(critical_set_freep) CriticalSet *c = calloc(1, sizeof(CriticalSet));

        if (!c)
                return NULL;
        if (s->n_devices > 0) {
                c->devices = calloc(s->n_devices, sizeof(CriticalDevice));
                if (!c->devices)
                        return NULL;
        }
        for (size_t i = 0; i < s->n_devices; i++) {
                char *a = strdup(s->devices[i].address), *r = strdup(s->devices[i].reason);

                if (!a || !r) {
                        free(a);
                        free(r);
                        return NULL;
                }
                c->devices[c->n_devices++] = (CriticalDevice){ .address = a, .reason = r };
        }
        return TAKE_PTR(c);
}

bool critical_set_equal(const CriticalSet *a, const CriticalSet *b) {
        if (!a || !b)
                return a == b;
        if (a->n_devices != b->n_devices)
                return false;
        for (size_t i = 0; i < a->n_devices; i++)
                if (!streq(a->devices[i].address, b->devices[i].address) ||
                    !streq(a->devices[i].reason, b->devices[i].reason))
                        return false;
        return true;
}

char *critical_set_to_string(const CriticalSet *s) {
        char *out = strdup("");

        for (size_t i = 0; out && s && i < s->n_devices; i++) {
                char *t;
                if (asprintf(&t, "%s%s %s\n", out, s->devices[i].address, s->devices[i].reason) < 0)
                        t = NULL;
                free(out);
                out = t;
        }
        return out;
}
