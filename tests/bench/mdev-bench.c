/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev-bench: the guest's timing helper for tests/bench/mdev-bench.sh (kernel lane, mtty).
 *
 *   mdev-bench raw-create PARENT TYPE N   write N UUIDs to PARENT/mdev_supported_types/TYPE/create
 *                                         (/sys/class/mdev_bus/PARENT), one write each, as the
 *                                         kernel's mdev core expects (drivers/vfio/mdev/mdev_sysfs.c:
 *                                         create_store)
 *   mdev-bench raw-remove N               write "1" to /sys/bus/mdev/devices/UUID/remove of the same N
 *   mdev-bench wait N                     return once /sys/bus/mdev/devices holds exactly N entries
 *                                         (polled every millisecond; 60 s at most)
 *   mdev-bench time CMD [ARG...]          run CMD, print its wall time in microseconds
 *
 * raw-create and raw-remove print their own wall time in microseconds. The UUIDs are
 * mdev_bench_uuid(i), i = 0..N-1, the ones mdev-bench.sh gives mdevctl too.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MDEV_DEVICES "/sys/bus/mdev/devices"
#define MDEV_BUS_CLASS "/sys/class/mdev_bus"

static uint64_t now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void mdev_bench_uuid(unsigned i, char buf[static 37]) {
        snprintf(buf, 37, "6f1d2a3b-0000-4000-8000-%012x", 0xbe00u + i);
}

static int write_string(const char *path, const char *value) {
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC);
        ssize_t n;

        if (fd < 0) {
                fprintf(stderr, "open %s: %s\n", path, strerror(errno));
                return -1;
        }
        n = write(fd, value, strlen(value));
        if (n != (ssize_t)strlen(value)) {
                fprintf(stderr, "write %s to %s: %s\n", value, path,
                        n < 0 ? strerror(errno) : "short write");
                close(fd);
                return -1;
        }
        if (close(fd) < 0) {
                fprintf(stderr, "close %s: %s\n", path, strerror(errno));
                return -1;
        }
        return 0;
}

static int count_mdevs(void) {
        DIR *d = opendir(MDEV_DEVICES);
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static int cmd_raw(const char *parent, const char *type, unsigned n) {
        char path[512], uuid[37];
        uint64_t t0 = now_us();

        for (unsigned i = 0; i < n; i++) {
                mdev_bench_uuid(i, uuid);
                if (parent)
                        snprintf(
                                path, sizeof(path), MDEV_BUS_CLASS "/%s/mdev_supported_types/%s/create",
                                parent, type);
                else
                        snprintf(path, sizeof(path), MDEV_DEVICES "/%s/remove", uuid);
                if (write_string(path, parent ? uuid : "1") < 0)
                        return 1;
        }
        printf("%llu\n", (unsigned long long)(now_us() - t0));
        return 0;
}

static int cmd_wait(int n) {
        uint64_t deadline = now_us() + 60u * 1000000u;
        const struct timespec ms = { 0, 1000000 };

        while (count_mdevs() != n) {
                if (now_us() > deadline) {
                        fprintf(stderr, "%d mdevs after 60 s, not %d\n", count_mdevs(), n);
                        return 1;
                }
                nanosleep(&ms, NULL);
        }
        return 0;
}

static int cmd_time(char **argv) {
        uint64_t t0 = now_us();
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return 1;
        if (pid == 0) {
                execvp(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return 1;
        printf("%llu\n", (unsigned long long)(now_us() - t0));
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
        if (argc == 5 && strcmp(argv[1], "raw-create") == 0)
                return cmd_raw(argv[2], argv[3], (unsigned)atoi(argv[4]));
        if (argc == 3 && strcmp(argv[1], "raw-remove") == 0)
                return cmd_raw(NULL, NULL, (unsigned)atoi(argv[2]));
        if (argc == 3 && strcmp(argv[1], "wait") == 0)
                return cmd_wait(atoi(argv[2]));
        if (argc >= 3 && strcmp(argv[1], "time") == 0)
                return cmd_time(argv + 2);
        if (argc == 3 && strcmp(argv[1], "uuid") == 0) {
                char uuid[37];
                mdev_bench_uuid((unsigned)atoi(argv[2]), uuid);
                puts(uuid);
                return 0;
        }
        fprintf(stderr,
                "usage: mdev-bench raw-create PARENT TYPE N | raw-remove N | wait N | time CMD [ARG...] | "
                "uuid I\n");
        return 2;
}
