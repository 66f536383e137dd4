/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A polkit text agent for the duration of a change, as systemd's tools
 * start one: the ALLOW_INTERACTIVE_AUTHORIZATION flag only lets polkit ask,
 * and over SSH or on a console no graphical agent is there to ask through.
 * pkttyagent(1) registers for this session and prompts on the terminal.
 */

/* Start pkttyagent unless we are root (polkit does not ask root) or stdin is no terminal, and wait until
 * it registered (or gave up). Failures are not errors: polkit then denies as without an agent. */
void polkit_agent_open(void);
/* Stop the agent started by polkit_agent_open(), if any. */
void polkit_agent_close(void);
