/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * org.freedesktop.LogControl1 at /org/freedesktop/LogControl1, so that
 * `systemctl service-log-level hostdevd debug` and service-log-target work.
 * LogLevel and LogTarget are writable by root (sender euid 0) only.
 */

typedef struct BusContext BusContext;

int bus_log_control_add(BusContext *d);
