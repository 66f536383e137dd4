/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/fanotify.h>
#include <sys/stat.h>

#include "holders.h"
#include "log.h"
#include "macro.h"
#include "names.h"

/* /proc/PID/comm is TASK_COMM_LEN (16) bytes including the NUL (include/linux/sched.h). */
#define COMM_MAX 64

void holders_free(Holder *h, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(h[i].comm);
                free(h[i].node);
        }
        free(h);
}

static bool all_digits(const char *s) {
        return *s && strspn(s, "0123456789") == strlen(s);
}

bool holder_node_is_group(const char *node, int32_t *ret_group) {
        const char *p;
        unsigned long v;

        if (!node || !strneq(node, DEV_VFIO_DIR "/", strlen(DEV_VFIO_DIR "/")))
                return false;
        p = node + strlen(DEV_VFIO_DIR "/");
        if (!all_digits(p) || strlen(p) > 9)
                return false;
        v = strtoul(p, NULL, 10);
        if (ret_group)
                *ret_group = (int32_t)v;
        return true;
}

static bool node_is_cdev(const char *node) {
        const char *prefix = DEV_VFIO_DEVICES_DIR "/vfio";

        return strneq(node, prefix, strlen(prefix)) && all_digits(node + strlen(prefix));
}

bool holder_holds_node(const Holder *h, int32_t iommu_group, const char *vfio_device) {
        int32_t group;

        if (holder_node_is_group(h->node, &group))
                return iommu_group >= 0 && group == iommu_group;
        return vfio_device && streq(h->node, vfio_device);
}

bool holder_holds_device(const Holder *h, const PciDevice *d) {
        return holder_holds_node(h, d->iommu_group, d->vfio_device);
}

static int holder_compare(const void *a, const void *b) {
        const Holder *x = a, *y = b;

        if (x->pid != y->pid)
                return x->pid < y->pid ? -1 : 1;
        return strcmp(x->node, y->node);
}

static char *read_comm(int pid_dir_fd) {
        _cleanup_close_ int fd = -EBADF;
        char buf[COMM_MAX];
        ssize_t n;

        fd = openat(pid_dir_fd, "comm", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return strdup("?");
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return strdup("?");
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return strdup(buf);
}

/*
 * Whether the file that |fd_name| (an entry of /proc/PID/fd) has open is the node |path| names in
 * this daemon's own mount namespace. The link reads the path in the holder's namespace, so a process
 * in a container with a /dev of its own, holding a different node of the same name, would otherwise
 * count. A character device matches by device number (the same VFIO group, however its node was
 * made), or else by device and inode (a test bed's nodes are plain files that its preload reports as
 * character devices). A node of that name that does not exist here is not ours either (a group node
 * goes only once vfio-pci let its function go, which it does only when nothing holds it). When the
 * holder's file cannot be stat'ed (it went away) or ours fails otherwise, the path decides as before.
 */
static bool fd_is_our_node(int fd_dir, const char *fd_name, const char *path) {
        struct stat held, ours;

        if (fstatat(fd_dir, fd_name, &held, 0) < 0)
                return true;
        if (stat(path, &ours) < 0)
                return errno != ENOENT;
        if (S_ISCHR(held.st_mode) && S_ISCHR(ours.st_mode) && held.st_rdev == ours.st_rdev)
                return true;
        return held.st_dev == ours.st_dev && held.st_ino == ours.st_ino;
}

static int scan_pid(int proc_fd, const char *pid_name, Holder **holders, size_t *n) {
        _cleanup_close_ int pid_fd = -EBADF;
        _cleanup_closedir_ DIR *fds = NULL;
        _cleanup_free_ char *comm = NULL;
        struct dirent *de;
        int fd_dir;
        size_t first = *n;

        pid_fd = openat(proc_fd, pid_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pid_fd < 0)
                return 0; /* gone */
        fd_dir = openat(pid_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd_dir < 0) {
                log_debug_errno(errno, "Cannot read %s/fd: %m, ignoring", pid_name);
                return 0;
        }
        fds = fdopendir(fd_dir);
        if (!fds) {
                close(fd_dir);
                return 0;
        }

        while ((de = readdir(fds))) {
                char target[PATH_MAX];
                ssize_t k;
                bool dup = false;

                if (!all_digits(de->d_name))
                        continue;
                k = readlinkat(dirfd(fds), de->d_name, target, sizeof(target) - 1);
                if (k < 0)
                        continue; /* closed meanwhile */
                target[k] = '\0';
                if (!holder_node_is_group(target, NULL) && !node_is_cdev(target))
                        continue;
                if (!fd_is_our_node(dirfd(fds), de->d_name, target))
                        continue;

                for (size_t i = first; i < *n; i++)
                        if (streq((*holders)[i].node, target))
                                dup = true;
                if (dup)
                        continue;

                if (!comm) {
                        comm = read_comm(pid_fd);
                        if (!comm)
                                return -ENOMEM;
                }
                Holder *h = reallocarray(*holders, *n + 1, sizeof(Holder));
                if (!h)
                        return -ENOMEM;
                *holders = h;
                h[*n] = (Holder){
                        .pid = (pid_t)strtol(pid_name, NULL, 10),
                        .comm = strdup(comm),
                        .node = strdup(target),
                };
                (*n)++;
                if (!h[*n - 1].comm || !h[*n - 1].node)
                        return -ENOMEM;
        }
        return 0;
}

int holders_scan(const char *proc_root, Holder **ret, size_t *ret_n) {
        _cleanup_closedir_ DIR *proc = NULL;
        Holder *holders = NULL;
        size_t n = 0;
        struct dirent *de;
        int r;

        assert(ret);
        assert(ret_n);

        proc = opendir(proc_root ?: PROC_ROOT);
        if (!proc)
                return log_debug_errno(errno, "Failed to open '%s': %m", proc_root ?: PROC_ROOT);

        while ((de = readdir(proc))) {
                if (!all_digits(de->d_name) || strlen(de->d_name) > 10)
                        continue;
                r = scan_pid(dirfd(proc), de->d_name, &holders, &n);
                if (r < 0) {
                        holders_free(holders, n);
                        return r;
                }
        }

        if (n > 0)
                qsort(holders, n, sizeof(Holder), holder_compare);
        *ret = holders;
        *ret_n = n;
        return 0;
}

int holders_scan_pid(const char *proc_root, pid_t pid, Holder **holders, size_t *n) {
        _cleanup_close_ int proc_fd = -EBADF;
        char name[32];

        assert(holders && n);

        proc_fd = open(proc_root ?: PROC_ROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (proc_fd < 0)
                return 0; /* as a vanished process: nothing */
        (void)snprintf(name, sizeof(name), "%i", (int)pid);
        return scan_pid(proc_fd, name, holders, n);
}

char *holders_read_comm(const char *proc_root, pid_t pid) {
        _cleanup_close_ int proc_fd = -EBADF, pid_fd = -EBADF;
        char name[32];

        proc_fd = open(proc_root ?: PROC_ROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (proc_fd < 0)
                return strdup("?");
        (void)snprintf(name, sizeof(name), "%i", (int)pid);
        pid_fd = openat(proc_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pid_fd < 0)
                return strdup("?");
        return read_comm(pid_fd);
}

static void holder_done(Holder *h) {
        free(h->comm);
        free(h->node);
}

int holders_set_replace_pid(Holder **set, size_t *n, pid_t pid, Holder *fresh, size_t n_fresh) {
        Holder *merged;
        size_t m = 0, n_old = 0;
        bool same;

        assert(set && n);

        for (size_t i = 0; i < *n; i++)
                if ((*set)[i].pid == pid)
                        n_old++;
        if (n_fresh > 0)
                qsort(fresh, n_fresh, sizeof(Holder), holder_compare);

        /* Same nodes (the comm may differ after an exec: keep the new one, but it is no change of
         * the set). */
        same = n_old == n_fresh;
        for (size_t i = 0, j = 0; same && i < *n; i++)
                if ((*set)[i].pid == pid && !streq((*set)[i].node, fresh[j++].node))
                        same = false;
        if (same && n_fresh == 0)
                return 0;

        merged = reallocarray(NULL, *n - n_old + n_fresh ?: 1, sizeof(Holder));
        if (!merged) {
                holders_free(fresh, n_fresh);
                return -ENOMEM;
        }
        for (size_t i = 0, j = 0; i < *n || j < n_fresh;) {
                if (i < *n && (*set)[i].pid == pid) {
                        holder_done(&(*set)[i++]);
                        continue;
                }
                if (j < n_fresh && (i >= *n || holder_compare(&fresh[j], &(*set)[i]) < 0))
                        merged[m++] = fresh[j++];
                else
                        merged[m++] = (*set)[i++];
        }
        free(*set);
        free(fresh);
        *set = merged;
        *n = m;
        return same ? 0 : 1;
}

bool holders_set_equal(const Holder *a, size_t n_a, const Holder *b, size_t n_b) {
        if (n_a != n_b)
                return false;
        for (size_t i = 0; i < n_a; i++)
                if (a[i].pid != b[i].pid || !streq(a[i].node, b[i].node))
                        return false;
        return true;
}

Holder *holders_copy(const Holder *h, size_t n, bool *ret_oom) {
        Holder *c;

        *ret_oom = false;
        if (n == 0)
                return NULL;
        c = calloc(n, sizeof(Holder));
        if (!c) {
                *ret_oom = true;
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                c[i] = (Holder){ .pid = h[i].pid, .comm = strdup(h[i].comm), .node = strdup(h[i].node) };
                if (!c[i].comm || !c[i].node) {
                        holders_free(c, i + 1);
                        *ret_oom = true;
                        return NULL;
                }
        }
        return c;
}

/* The name of a DFID_NAME record: after the file handle (struct file_handle, handle_bytes long). */
static int parse_info_name(const uint8_t *info, size_t len, char *name, size_t size) {
        const struct fanotify_event_info_fid *fid = (const void *)info;
        struct file_handle fh;
        size_t off, end;

        if (len < sizeof(*fid) + sizeof(fh))
                return -EBADMSG;
        memcpy(&fh, info + offsetof(struct fanotify_event_info_fid, handle), sizeof(fh));
        off = offsetof(struct fanotify_event_info_fid, handle) + sizeof(fh) + fh.handle_bytes;
        if (off >= len)
                return -EBADMSG;
        end = strnlen((const char *)info + off, len - off);
        if (end == len - off || end >= size)
                return -EBADMSG;
        memcpy(name, info + off, end + 1);
        return 0;
}

int holders_parse_fanotify(const void *buf, size_t size, HolderEvent **ret, size_t *ret_n) {
        const uint8_t *p = buf;
        HolderEvent *events = NULL;
        size_t n = 0, off = 0;
        int r;

        assert(ret && ret_n);

        while (off < size) {
                struct fanotify_event_metadata m;
                HolderEvent ev = {};
                HolderEvent *t;

                if (size - off < sizeof(m)) {
                        r = -EBADMSG;
                        goto fail;
                }
                memcpy(&m, p + off, sizeof(m));
                if (m.vers != FANOTIFY_METADATA_VERSION || m.event_len < sizeof(m) ||
                    m.metadata_len < sizeof(m) || m.metadata_len > m.event_len || m.event_len > size - off) {
                        r = -EBADMSG;
                        goto fail;
                }
                ev.mask = m.mask;
                ev.pid = m.mask & FAN_Q_OVERFLOW ? 0 : (pid_t)m.pid;

                for (size_t i = off + m.metadata_len; i < off + m.event_len;) {
                        struct fanotify_event_info_header hdr;

                        if (off + m.event_len - i < sizeof(hdr)) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        memcpy(&hdr, p + i, sizeof(hdr));
                        if (hdr.len < sizeof(hdr) || hdr.len > off + m.event_len - i) {
                                r = -EBADMSG;
                                goto fail;
                        }
                        if (hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
                                r = parse_info_name(p + i, hdr.len, ev.name, sizeof(ev.name));
                                if (r < 0)
                                        goto fail;
                        }
                        i += hdr.len;
                }

                t = reallocarray(events, n + 1, sizeof(HolderEvent));
                if (!t) {
                        r = -ENOMEM;
                        goto fail;
                }
                events = t;
                events[n++] = ev;
                off += m.event_len;
        }
        *ret = events;
        *ret_n = n;
        return 0;
fail:
        free(events);
        return r;
}

static int pid_compare(const void *a, const void *b) {
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

        return x < y ? -1 : x > y;
}

int holders_pids_to_check(
        const Holder *set, size_t n, pid_t pid, const char *node, pid_t **ret, size_t *ret_n) {
        pid_t *pids;
        size_t k = 0, m = 0;

        assert(ret && ret_n);

        pids = calloc(n + 1, sizeof(pid_t));
        if (!pids)
                return -ENOMEM;
        pids[k++] = pid;
        for (size_t i = 0; i < n; i++)
                if (node && streq(set[i].node, node))
                        pids[k++] = set[i].pid;
        qsort(pids, k, sizeof(pid_t), pid_compare);
        for (size_t i = 0; i < k; i++)
                if (m == 0 || pids[m - 1] != pids[i])
                        pids[m++] = pids[i];
        *ret = pids;
        *ret_n = m;
        return 0;
}
