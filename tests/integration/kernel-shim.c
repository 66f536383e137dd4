/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's half of the integration lane's fake kernel: makes each write()
 * to a testbed sysfs attribute a synchronous call into the harness
 * (tests/integration/hostdevtest.py, KernelReactor), as a sysfs store
 * function is synchronous in the real kernel.
 *
 * Why not an inotify watcher alone: the executor (agent/executor-transaction.c) reads
 * back right after each write (driver_override, the driver link after an
 * unbind or drivers_probe), so an asynchronous reaction would race it; and
 * the kernel's errors (EBUSY from sriov_numvfs, ENODEV from unbind) come back
 * from write(), which a plain file cannot do. libvirt's tests/virpcimock.c
 * makes the same choice.
 *
 * For every write() on a regular file under $UMOCKDEV_DIR/sys/: the
 * bytes are written to the file first (the attribute then holds what was
 * stored, as the reactor may check), then a request goes to the unix stream
 * socket $HOSTDEVTEST_KERNEL_SOCKET:
 *     "<testbed path>\n<length>\n<value bytes>"
 * and the call waits for the reply "<errno>\n": 0 returns the byte count, any
 * other value fails the write with that errno. The reactor may delay its
 * reply (an unbind that never completes); the wait holds no umockdev lock
 * (umockdev's preload serialises its path calls with one global lock; this
 * wrapper calls it only for the plain write, before waiting).
 *
 * Without the variable, or when the socket cannot be reached, writes are
 * plain file writes (a message on stderr says so once).
 *
 * Load it before libumockdev-preload in LD_PRELOAD. Socket I/O goes through
 * syscall() so it bypasses both this wrapper and umockdev's.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);

ssize_t write(int fd, const void *buf, size_t count);

static ssize_t raw_write_all(int fd, const char *p, size_t n) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = syscall(SYS_write, fd, p + done, n - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -1;
                done += (size_t)k;
        }
        return (ssize_t)done;
}

/* The testbed path of |fd| if it is a sysfs attribute of the testbed, else 0. */
static int testbed_path(int fd, char *path, size_t size) {
        const char *root = getenv("UMOCKDEV_DIR");
        char proc[64];
        struct stat st;
        ssize_t n;
        size_t len;

        if (!root || !*root || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        n = syscall(SYS_readlinkat, AT_FDCWD, proc, path, size - 1);
        if (n <= 0)
                return 0;
        path[n] = '\0';
        len = strlen(root);
        if (strncmp(path, root, len) != 0 || strncmp(path + len, "/sys/", 5) != 0)
                return 0;
        return 1;
}

/* Ask the harness; returns the errno it answers (0: stored), or -1 when it cannot be asked. */
static int ask_kernel(const char *path, const void *buf, size_t count) {
        const char *sock = getenv("HOSTDEVTEST_KERNEL_SOCKET");
        static int warned;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char head[PATH_MAX + 32], reply[32];
        size_t got = 0;
        int fd, e, saved = errno;

        if (!sock || !*sock || strlen(sock) >= sizeof(sa.sun_path))
                return -1;
        strcpy(sa.sun_path, sock);
        fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                goto fail;
        if (syscall(SYS_connect, fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                syscall(SYS_close, fd);
                goto fail;
        }
        (void)snprintf(head, sizeof(head), "%s\n%zu\n", path, count);
        if (raw_write_all(fd, head, strlen(head)) < 0 || raw_write_all(fd, buf, count) < 0) {
                syscall(SYS_close, fd);
                goto fail;
        }
        while (got < sizeof(reply) - 1) {
                ssize_t k = syscall(SYS_read, fd, reply + got, sizeof(reply) - 1 - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                got += (size_t)k;
                if (memchr(reply, '\n', got))
                        break;
        }
        syscall(SYS_close, fd);
        reply[got] = '\0';
        if (!memchr(reply, '\n', got))
                goto fail;
        e = atoi(reply);
        errno = saved;
        return e < 0 ? 0 : e;
fail:
        if (!warned) {
                warned = 1;
                (void)fprintf(stderr, "kernel-shim: cannot reach the fake kernel at %s: %m\n", sock);
        }
        errno = saved;
        return -1;
}

/*
 * Back-pressure: umockdev delivers uevents over unix datagram sockets whose queues hold
 * net.unix.max_dgram_qlen (10) datagrams, and its sender aborts when one is full. The
 * reactions to the daemon's writes send uevents unpaced, so a daemon whose event loop is busy
 * (a plan for 4096 functions) while its executor writes on would overflow it; the kernel's own
 * netlink buffer is megabytes. So before each write, wait (1 ms steps, 500 ms at most) until
 * this process's datagram sockets have nothing queued.
 */
static int dgram_queued(void) {
        int queued = 0;

        for (int fd = 0; fd < 1024; fd++) {
                struct stat st;
                int type = 0, n = 0;
                socklen_t len = sizeof(type);

                if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
                        continue;
                if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
                    (type != SOCK_DGRAM && type != SOCK_SEQPACKET))
                        continue;
                if (ioctl(fd, FIONREAD, &n) == 0 && n > 0)
                        queued++;
        }
        return queued;
}

static void wait_for_uevent_readers(void) {
        for (int i = 0; i < 500 && dgram_queued() > 0; i++)
                (void)usleep(1000);
}

ssize_t write(int fd, const void *buf, size_t count) {
        static write_fn real_write;
        char path[PATH_MAX];
        ssize_t n;
        int e;

        if (!real_write)
                real_write = (write_fn)dlsym(RTLD_NEXT, "write");
        if (!testbed_path(fd, path, sizeof(path)))
                return real_write(fd, buf, count);
        wait_for_uevent_readers();
        n = real_write(fd, buf, count);
        if (n < 0)
                return n;
        e = ask_kernel(path, buf, count);
        if (e > 0) {
                errno = e;
                return -1;
        }
        return n;
}
