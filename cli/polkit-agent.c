/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "polkit-agent.h"

#define POLKIT_AGENT_BINARY_PATH "/usr/bin/pkttyagent"
/* pkttyagent signals on --notify-fd once registered; if polkitd is slow or absent, do not wait forever. */
#define POLKIT_AGENT_REGISTER_TIMEOUT_MSEC (10 * 1000)

static pid_t agent_pid = 0;

void polkit_agent_open(void) {
        char notify_fd[16];
        int pipe_fd[2];
        pid_t pid;

        if (agent_pid > 0 || geteuid() == 0 || !isatty(STDIN_FILENO))
                return;
        if (access(POLKIT_AGENT_BINARY_PATH, X_OK) < 0)
                return;

        if (pipe2(pipe_fd, 0) < 0) {
                log_debug_errno(errno, "Failed to create a pipe for the polkit agent, ignoring: %m");
                return;
        }
        /* Only the write end goes to the agent. */
        if (fcntl(pipe_fd[0], F_SETFD, FD_CLOEXEC) < 0) {
                (void)close(pipe_fd[0]);
                (void)close(pipe_fd[1]);
                return;
        }

        pid = fork();
        if (pid < 0) {
                log_debug_errno(errno, "Failed to start the polkit agent, ignoring: %m");
                (void)close(pipe_fd[0]);
                (void)close(pipe_fd[1]);
                return;
        }
        if (pid == 0) {
                (void)snprintf(notify_fd, sizeof(notify_fd), "%d", pipe_fd[1]);
                execl(POLKIT_AGENT_BINARY_PATH, POLKIT_AGENT_BINARY_PATH, "--notify-fd", notify_fd,
                      "--fallback", (char *)NULL);
                _exit(EXIT_FAILURE);
        }

        agent_pid = pid;
        (void)close(pipe_fd[1]);

        /* Readable (registered) or hung up (the agent exited): either way go on. */
        for (;;) {
                struct pollfd p = { .fd = pipe_fd[0], .events = POLLIN };
                int r = poll(&p, 1, POLKIT_AGENT_REGISTER_TIMEOUT_MSEC);
                if (r >= 0 || errno != EINTR)
                        break;
        }
        (void)close(pipe_fd[0]);
}

void polkit_agent_close(void) {
        if (agent_pid <= 0)
                return;

        (void)kill(agent_pid, SIGTERM);
        (void)kill(agent_pid, SIGCONT);
        while (waitpid(agent_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        agent_pid = 0;
}
