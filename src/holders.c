/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>

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

bool holder_holds_device(const Holder *h, const PciDevice *d) {
        int32_t group;

        if (holder_node_is_group(h->node, &group))
                return d->iommu_group >= 0 && group == d->iommu_group;
        return d->vfio_device && streq(h->node, d->vfio_device);
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
