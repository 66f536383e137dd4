/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fault injection for the integration lane: make the uevent socket report
 * ENOBUFS, as the kernel does when a netlink receive buffer overflowed
 * (netlink(7): "ENOBUFS ... the socket receive queue overflowed and
 * messages were lost").
 *
 * umockdev delivers uevents over its own socket, whose buffer the test
 * cannot overflow on purpose, so this preload emulates the overflow: when
 * the file named by $HOSTDEVTEST_ENOBUFS_TRIGGER exists, the next
 * recvmsg()/recv() on a datagram-like socket (not the SOCK_STREAM D-Bus
 * connection) drains every queued message (they are lost, as in an
 * overflow), removes the trigger, and fails with ENOBUFS. The daemon must
 * then rescan sysfs.
 *
 * Load it before libumockdev-preload in LD_PRELOAD.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);

ssize_t recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t recv(int fd, void *buf, size_t len, int flags);

static int inject(int fd) {
        const char *trigger = getenv("HOSTDEVTEST_ENOBUFS_TRIGGER");
        int type = 0;
        socklen_t len = sizeof(type);
        static recv_fn real_recv;
        char buf[8192];

        if (!trigger || access(trigger, F_OK) < 0)
                return 0;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type == SOCK_STREAM)
                return 0;
        if (unlink(trigger) < 0)
                return 0; /* another thread took it */
        if (!real_recv)
                real_recv = (recv_fn)dlsym(RTLD_NEXT, "recv");
        /* The overflowed messages are gone. */
        while (real_recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
                ;
        errno = ENOBUFS;
        return 1;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
        static recvmsg_fn real;

        if (!real)
                real = (recvmsg_fn)dlsym(RTLD_NEXT, "recvmsg");
        if (inject(fd))
                return -1;
        return real(fd, msg, flags);
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
        static recv_fn real;

        if (!real)
                real = (recv_fn)dlsym(RTLD_NEXT, "recv");
        if (inject(fd))
                return -1;
        return real(fd, buf, len, flags);
}
