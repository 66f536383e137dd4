/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Socket filters (classic BPF, SO_ATTACH_FILTER) for a NETLINK_KOBJECT_UEVENT
 * socket bound to the kernel's group: messages a listener would drop after
 * parsing are dropped in the kernel, before they wake it.
 *
 * Kernel fact: the kernel's uevent message is "ACTION@DEVPATH" NUL, then the
 * environment as KEY=VALUE NUL pairs (lib/kobject_uevent.c,
 * alloc_uevent_skb()); the socket filter sees the message from its first
 * byte (net/netlink/af_netlink.c, do_one_broadcast() runs sk_filter()). No
 * action name contains '@'; every device's DEVPATH starts with "/devices/".
 *
 * The filters only prune: a listener still checks SUBSYSTEM and ACTION itself
 * (and libudev that the kernel sent the message).
 */

typedef enum UeventFilter {
        /*
         * For a listener that wants only the "add" of a device that may be a
         * PCI function, and every "bind" (the daemon's early monitor next to
         * udevd). Passes a message starting with "add@" whose DEVPATH is under
         * "/devices/" (not a module's, bus's or driver's) but not under
         * "/devices/virtual/" (class devices such as the vfio group, dm, loop,
         * tun; never a PCI function, wherever its host bridge sits:
         * /devices/pci*, /devices/platform/.../pci*, Hyper-V's
         * /devices/LNXSYSTM:00/.../pci*), a message starting with "bind@",
         * and one in libudev's own format (starting "libudev": never from the
         * kernel; what umockdev's test bed sends on every uevent socket).
         */
        UEVENT_FILTER_PCI_ADD_BIND,
        /*
         * For a listener that wants PCI, mdev and mdev parents' events (the
         * daemon's monitor on the kernel source): drops every action of a
         * DEVPATH under "/devices/virtual/vfio/", the vfio group class devices
         * that vfio-pci's probe registers and its remove unregisters
         * (drivers/vfio/group.c, vfio_create_group()), one for each binding
         * hostdevd itself makes. Passes everything else.
         */
        UEVENT_FILTER_NO_VFIO_GROUPS,
        _UEVENT_FILTER_MAX,
} UeventFilter;

/* Attach |filter| to |fd|, replacing any other. 0, -EINVAL (no such filter), -EBADF, or -errno from
 * setsockopt(2). */
int uevent_filter_attach(int fd, UeventFilter filter);
