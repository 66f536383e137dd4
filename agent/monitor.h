/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The uevent monitor: a libudev netlink monitor on an sd-event io source.
 *
 * Source: "udev" (systemd-udevd's processed events) when udevd runs
 * (UDEV_CONTROL_SOCKET exists), else "kernel" (the kernel's uevent netlink
 * group); $HOSTDEVD_UEVENT_SOURCE=udev|kernel forces one.
 *
 * No subsystem filter is installed on the socket: mdev parents announce
 * their types in their OWN subsystem (the mtty sample's parent is in
 * subsystem "mtty", with MDEV_STATE=registered|unregistered on a "change"
 * event, drivers/vfio/mdev/mdev_core.c). Events are filtered here instead:
 * subsystem "pci" and "mdev" pass, and any event carrying MDEV_STATE.
 *
 * A kernel-source monitor gets a socket filter (uevent-filter.h): with no
 * on_uevent (the daemon's early monitor next to udevd: on_pci_add and
 * on_pci_bind only) UEVENT_FILTER_PCI_ADD_BIND, so only an "add" under
 * /devices/ outside /devices/virtual/ and a "bind" wake it; else
 * UEVENT_FILTER_NO_VFIO_GROUPS, so the vfio group that each vfio-pci probe
 * registers does not (it would wake the loop while that probe runs).
 *
 * Each wakeup drains the socket. When the kernel dropped messages (ENOBUFS
 * on receive) the overflow callback runs once after draining, so the owner
 * rescans (uevents can be lost: never assume they were complete).
 */

#include <stdbool.h>

#include <systemd/sd-event.h>

typedef struct Monitor Monitor;

typedef struct MonitorCallbacks {
        /* One relevant uevent. mdev_state: MDEV_STATE's value or NULL. Return value ignored but logged. */
        int (*on_uevent)(
                void *userdata, const char *action, const char *subsystem, const char *syspath,
                const char *sysname, const char *mdev_state);
        /* Events were lost (ENOBUFS); called after the queue was drained. */
        int (*on_overflow)(void *userdata);
        /* Optional, kernel source only: a PCI function's "add", just before on_uevent (when set) for it,
         * with the ids its uevent carries (UEVENT_KEY_PCI_ID, _PCI_SUBSYS_ID, _PCI_CLASS of names.h; each
         * may be NULL) and its syspath: what the reconciler needs to write driver_override before the
         * kernel's first probe, without reading sysfs first. */
        void (*on_pci_add)(
                void *userdata, const char *syspath, const char *sysname, const char *pci_id,
                const char *pci_subsys_id, const char *pci_class);
        /* Optional, kernel source only: a PCI function's "bind" (its probe returned success,
         * drivers/base/dd.c: driver_bound()), before on_uevent for it. */
        void (*on_pci_bind)(void *userdata, const char *sysname);
} MonitorCallbacks;

/* Receive buffer asked for: uevent storms (SR-IOV with 256 VFs, mass rebinds) must not overflow it. */
#define MONITOR_RECEIVE_BUFFER_SIZE (128 * 1024 * 1024)

/*
 * "udev" or "kernel" for this host: |forced| if set (then it must be one of
 * those, else -EINVAL), else $HOSTDEVD_UEVENT_SOURCE, else by whether
 * udevd runs. Returns a static string via *ret.
 */
int monitor_pick_source(const char *forced, const char **ret);

/*
 * Create the netlink monitor on |source| ("udev" or "kernel"), start
 * receiving (events queue in the socket from this point on) and add it
 * to |event|. Callbacks get |userdata|.
 * Returns 0, -EINVAL (bad source), or -errno from socket setup.
 */
int monitor_new(
        sd_event *event, const char *source, const MonitorCallbacks *callbacks, void *userdata,
        Monitor **ret);
Monitor *monitor_free(Monitor *m);
/* Priority of its io event source (sd_event_source_set_priority()): which monitor's events are
 * dispatched first when several are ready. */
int monitor_set_priority(Monitor *m, int64_t priority);
static inline void monitor_freep(Monitor **m) {
        if (*m)
                monitor_free(*m);
}

/* "udev" or "kernel". */
const char *monitor_get_source(const Monitor *m);

/*
 * The filter applied to every received uevent: true for subsystem "pci" or
 * "mdev", and for any other subsystem when the event carries MDEV_STATE
 * (|mdev_state| non-NULL: an mdev parent's registration, mdev_core.c);
 * false without a subsystem. Pure; exposed for the unit tests.
 */
bool monitor_event_is_relevant(const char *subsystem, const char *mdev_state);

/*
 * Drain every queued event now (what the io callback does). Returns the
 * number of events received, whether or not they passed the filter, or
 * -errno on a socket failure.
 */
int monitor_drain(Monitor *m);
