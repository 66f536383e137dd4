/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * `hostdevctl monitor`: follow hostdevd's signals and print one line per
 * change, flushed at once (tests and scripts read it through pipes):
 *     added 0000:05:00.0 8086:10d3 e1000e
 *     added 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 mtty-2 0000:00:00.0
 *     changed 0000:01:00.0 Driver=vfio-pci DriverOverride=vfio-pci
 *     changed manager DeviceCount=12
 *     removed 0000:05:00.0
 * or, as JSON, one object per line (see hostdevctl(1) for the keys).
 */

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Runs until the bus connection drops or a signal ends the process; returns an exit status. */
int monitor_run(sd_bus *bus, bool json);
