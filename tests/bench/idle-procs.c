/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * idle-procs N: start up to N idle processes (a busy host's process table, for holders-bench.py), print
 * "ready K" once K are running, end them all when standard input reaches EOF or a line, print
 * "ended K". Bounded: at most N (<= 60000), each blocked in read(2) on a pipe, so they cost no CPU;
 * each dies with its parent (PR_SET_PDEATHSIG) and when the pipe's write end closes. A start that
 * fails (the pid or task limit) stops the start-up early: K < N is then printed, not an error.
 * The children share our memory (clone(2) with CLONE_VM, each on a small stack of its own, but not
 * CLONE_THREAD: each is a process with its own /proc/PID): fork(2)'s page-table copy made starting
 * 20,000 of them take minutes on a small VM.
 */

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK_SIZE (16 * 1024)

static int pipe_fds[2];

static int child_main(void *arg) {
        char c;

        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* System call wrappers only: the memory is the parent's. Our copy of the write end closed,
         * the parent's close is the EOF that ends us. */
        (void)close(pipe_fds[1]);
        (void)read(pipe_fds[0], &c, 1);
        return 0;
}

int main(int argc, char **argv) {
        long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
        uint8_t *stacks;
        int fds[2];
        long k = 0;
        char c;

        if (n <= 0 || n > 60000) {
                fprintf(stderr, "usage: idle-procs N (1..60000)\n");
                return 2;
        }
        if (pipe(fds) < 0) {
                perror("pipe");
                return 1;
        }
        pipe_fds[0] = fds[0];
        pipe_fds[1] = fds[1];
        stacks =
                mmap(NULL, (size_t)n * STACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (stacks == MAP_FAILED) {
                perror("mmap");
                return 1;
        }
        for (; k < n; k++) {
                pid_t pid =
                        clone(child_main, stacks + (size_t)(k + 1) * STACK_SIZE, CLONE_VM | SIGCHLD, NULL);

                if (pid < 0) {
                        fprintf(stderr, "clone after %ld: %s; stopping there\n", k, strerror(errno));
                        break;
                }
        }
        close(fds[0]);
        printf("ready %ld\n", k);
        fflush(stdout);

        (void)read(STDIN_FILENO, &c, 1);
        close(fds[1]);
        for (long i = 0; i < k; i++)
                if (wait(NULL) < 0 && errno == ECHILD)
                        break;
        printf("ended %ld\n", k);
        return 0;
}
