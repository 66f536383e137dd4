/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The uevent monitor (monitor.h): libudev netlink sockets on the event loop. */

#include <assert.h>
#include <errno.h>
#include <libudev.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"
#include "macro.h"
#include "event-priorities.h"
#include "monitor.h"
#include "names.h"
#include "uevent-filter.h"

/* Bound on consecutive receive errors other than EAGAIN/ENOBUFS, so a broken socket cannot spin the loop. */
#define MONITOR_MAX_ERRORS_PER_WAKEUP 64

struct Monitor {
        struct udev *udev;
        struct udev_monitor *udev_monitor;
        sd_event_source *io;
        const char *source; /* static: UEVENT_SOURCE_UDEV or UEVENT_SOURCE_KERNEL */
        MonitorCallbacks callbacks;
        void *userdata;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(struct udev_device *, udev_device_unref);

static const char *source_from_string(const char *s) {
        if (!s)
                return NULL;
        if (streq(s, UEVENT_SOURCE_UDEV))
                return UEVENT_SOURCE_UDEV;
        if (streq(s, UEVENT_SOURCE_KERNEL))
                return UEVENT_SOURCE_KERNEL;
        return NULL;
}

int monitor_pick_source(const char *forced, const char **ret) {
        const char *e, *s;

        assert(ret);

        if (forced) {
                s = source_from_string(forced);
                if (!s)
                        return -EINVAL;
                *ret = s;
                return 0;
        }

        e = getenv(ENV_HOSTDEVD_UEVENT_SOURCE);
        if (e && *e) {
                s = source_from_string(e);
                if (!s)
                        return -EINVAL;
                *ret = s;
                return 0;
        }

        /* Like libudev's own udev_queue check: udevd listens on its control socket while it runs. */
        *ret = access(UDEV_CONTROL_SOCKET, F_OK) >= 0 ? UEVENT_SOURCE_UDEV : UEVENT_SOURCE_KERNEL;
        return 0;
}

/*
 * pci and mdev events always matter. Any other subsystem matters only when the
 * event is an mdev parent's (un)registration: mdev_core.c sends a "change" event
 * with MDEV_STATE=registered|unregistered on the parent device, whatever its bus.
 */
bool monitor_event_is_relevant(const char *subsystem, const char *mdev_state) {
        if (!subsystem)
                return false;
        if (streq(subsystem, UEVENT_SUBSYSTEM_PCI) || streq(subsystem, UEVENT_SUBSYSTEM_MDEV))
                return true;
        return mdev_state != NULL;
}

static void monitor_dispatch(Monitor *m, struct udev_device *dev) {
        const char *action, *subsystem, *syspath, *sysname, *mdev_state;
        int r;

        action = udev_device_get_action(dev);
        subsystem = udev_device_get_subsystem(dev);
        syspath = udev_device_get_syspath(dev);
        sysname = udev_device_get_sysname(dev);
        mdev_state = udev_device_get_property_value(dev, UEVENT_KEY_MDEV_STATE);

        if (!monitor_event_is_relevant(subsystem, mdev_state))
                return;
        if (!action || !syspath || !sysname) {
                log_debug(
                        "Ignoring uevent without action or path (subsystem %s)",
                        ESCAPE_QUOTE(strna(subsystem)));
                return;
        }

        log_debug(
                "uevent: %s %s (%s)%s%s", action, syspath, subsystem, mdev_state ? " MDEV_STATE=" : "",
                strempty(mdev_state));

        /* From udevd the "add" comes after its rules ran, the kernel's probe long done: too late. */
        if (m->callbacks.on_pci_add && streq(m->source, UEVENT_SOURCE_KERNEL) &&
            streq(subsystem, UEVENT_SUBSYSTEM_PCI) && streq(action, UEVENT_ACTION_ADD))
                m->callbacks.on_pci_add(
                        m->userdata, syspath, sysname,
                        udev_device_get_property_value(dev, UEVENT_KEY_PCI_ID),
                        udev_device_get_property_value(dev, UEVENT_KEY_PCI_SUBSYS_ID),
                        udev_device_get_property_value(dev, UEVENT_KEY_PCI_CLASS));
        if (m->callbacks.on_pci_bind && streq(m->source, UEVENT_SOURCE_KERNEL) &&
            streq(subsystem, UEVENT_SUBSYSTEM_PCI) && streq(action, UEVENT_ACTION_BIND))
                m->callbacks.on_pci_bind(m->userdata, sysname);
        if (!m->callbacks.on_uevent)
                return;
        r = m->callbacks.on_uevent(m->userdata, action, subsystem, syspath, sysname, mdev_state);
        if (r < 0)
                log_debug_errno(
                        r, "Failed to process uevent %s %s: %m, ignoring", ESCAPE_QUOTE(action),
                        ESCAPE_QUOTE(syspath));
}

int monitor_drain(Monitor *m) {
        unsigned n_errors = 0;
        bool overflow = false;
        int n = 0, r;

        assert(m);

        for (;;) {
                _cleanup_(udev_device_unrefp) struct udev_device *dev = NULL;

                errno = 0;
                dev = udev_monitor_receive_device(m->udev_monitor);
                if (!dev) {
                        r = negative_errno();
                        if (r == -EAGAIN || r == -EWOULDBLOCK)
                                break;
                        if (r == -EINTR)
                                continue;
                        if (r == -ENOBUFS) {
                                /* The kernel dropped messages for this socket: the model may be stale. */
                                log_warning("uevent receive buffer overflowed, events were lost");
                                overflow = true;
                                continue;
                        }
                        /* A malformed or foreign message was consumed; read on, but not forever. */
                        log_debug_errno(r, "Failed to receive uevent: %m, ignoring");
                        if (++n_errors >= MONITOR_MAX_ERRORS_PER_WAKEUP)
                                return log_error_errno(r, "Too many uevent receive errors: %m");
                        continue;
                }

                monitor_dispatch(m, dev);
                n++;
        }

        if (overflow && m->callbacks.on_overflow) {
                r = m->callbacks.on_overflow(m->userdata);
                if (r < 0)
                        log_warning_errno(r, "Rescan after lost uevents failed: %m, ignoring");
        }

        return n;
}

static int on_monitor_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        /* Errors are logged inside; keep serving the bus with what we know. */
        (void)monitor_drain(userdata);
        return 0;
}

int monitor_new(
        sd_event *event, const char *source, const MonitorCallbacks *callbacks, void *userdata,
        Monitor **ret) {
        _cleanup_(monitor_freep) Monitor *m = NULL;
        const char *s;
        int r, fd;

        assert(event);
        assert(ret);

        s = source_from_string(source);
        if (!s)
                return -EINVAL;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->source = s;
        if (callbacks)
                m->callbacks = *callbacks;
        m->userdata = userdata;

        m->udev = udev_new();
        if (!m->udev)
                return negative_errno();

        m->udev_monitor = udev_monitor_new_from_netlink(m->udev, s);
        if (!m->udev_monitor)
                return log_error_errno(negative_errno(), "Failed to create %s uevent monitor: %m", s);

        /* SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it the kernel caps us at rmem_max. */
        r = udev_monitor_set_receive_buffer_size(m->udev_monitor, MONITOR_RECEIVE_BUFFER_SIZE);
        if (r < 0)
                log_warning_errno(
                        r, "Failed to set the uevent receive buffer to %u MiB: %m, ignoring",
                        MONITOR_RECEIVE_BUFFER_SIZE / (1024 * 1024));

        r = udev_monitor_enable_receiving(m->udev_monitor);
        if (r < 0)
                return log_error_errno(r, "Failed to bind the %s uevent monitor: %m", s);

        fd = udev_monitor_get_fd(m->udev_monitor);
        if (fd < 0)
                return log_error_errno(fd, "Failed to get the uevent monitor's fd: %m");

        /* After enable_receiving(): libudev updates (and may detach) a socket's filter there. Without
         * the filter monitor_dispatch()'s checks still hold, only with more wakeups. */
        if (streq(s, UEVENT_SOURCE_KERNEL)) {
                r = uevent_filter_attach(
                        fd,
                        m->callbacks.on_uevent ? UEVENT_FILTER_NO_VFIO_GROUPS : UEVENT_FILTER_PCI_ADD_BIND);
                if (r < 0)
                        log_warning_errno(
                                r,
                                "Failed to attach the kernel uevent socket filter: %m; ignoring (more "
                                "wakeups, same events)");
        }

        r = sd_event_add_io(event, &m->io, fd, EPOLLIN, on_monitor_io, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the uevent monitor: %m");
        (void)sd_event_source_set_description(m->io, "uevent-monitor");
        r = sd_event_source_set_priority(m->io, EVENT_PRIORITY_MONITOR);
        if (r < 0)
                return log_error_errno(r, "Failed to set the uevent monitor's priority: %m");

        if (m->callbacks.on_uevent)
                log_info("Watching uevents from the %s source", s);
        else
                log_debug("Watching PCI functions' \"add\" uevents from the %s source", s);

        *ret = TAKE_PTR(m);
        return 0;
}

int monitor_set_priority(Monitor *m, int64_t priority) {
        assert(m);
        return sd_event_source_set_priority(m->io, priority);
}

Monitor *monitor_free(Monitor *m) {
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->io);
        if (m->udev_monitor)
                udev_monitor_unref(m->udev_monitor);
        if (m->udev)
                udev_unref(m->udev);
        free(m);
        return NULL;
}

const char *monitor_get_source(const Monitor *m) {
        assert(m);
        return m->source;
}
