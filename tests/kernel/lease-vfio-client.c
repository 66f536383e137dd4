/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * lease-vfio-client [--vfio-owner] [--release POLICY] [--wait] BDF
 *
 * The kernel lane's unprivileged VMM (scenarios/lease-user.sh, Debian guest): run as an ordinary user,
 * it leases the PCI function BDF from hostdevd over the system bus and does what a VMM does with a
 * VFIO group before it maps guest memory, printing what the kernel answered at each step:
 *
 *   1. Manager.Acquire([BDF], {"release": POLICY, "vfio-owner": true}) -> the Lease object; it is
 *      the owner itself (no "pidfd" option), so its exit ends the lease.
 *   2. The group: without --vfio-owner, Lease.OpenVfioGroup("") -> an fd hostdevd opened for it;
 *      with --vfio-owner, the lease's VfioPaths node, which must belong to this uid now, opened by
 *      this process itself.
 *   3. /dev/vfio/vfio, the container: VFIO_GET_API_VERSION (must be VFIO_API_VERSION),
 *      VFIO_CHECK_EXTENSION (type1v2, else type1), VFIO_GROUP_GET_STATUS (must be viable),
 *      VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU, VFIO_IOMMU_MAP_DMA/UNMAP_DMA of one page,
 *      VFIO_GROUP_GET_DEVICE_FD(BDF), VFIO_DEVICE_GET_INFO (must be a PCI device) and
 *      VFIO_DEVICE_GET_REGION_INFO of BAR0 (include/uapi/linux/vfio.h, Linux 6.1).
 *   4. With --wait: prints "ready" and waits for a line on stdin, the fds still open, so the
 *      caller can look at the lease while it lasts.
 *   5. Prints "exit BOOTTIME" (CLOCK_BOOTTIME seconds, the clock of /proc/uptime) and exits; the
 *      fds close with the process, and hostdevd sees the exit on the lease's pidfd.
 *
 * Each step prints "ok STEP: ..." or "fail STEP: ..."; the first failure ends the run.
 * Exit status: 0 every step passed, 3 Acquire or OpenVfioGroup was denied
 * (org.freedesktop.DBus.Error.AccessDenied), 1 another failure, 2 bad usage.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/vfio.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "strv.h"

#define BUS_NAME "org.hostdevd1"
#define MANAGER_PATH "/org/hostdevd1"
#define MANAGER_IFACE "org.hostdevd1.Manager"
#define LEASE_IFACE "org.hostdevd1.Lease"

#define EXIT_DENIED 3

static int fail(const char *step, int r, const char *what) {
        printf("fail %s: %s: %s\n", step, what, strerror(r < 0 ? -r : r));
        return 1;
}

static int fail_bus(const char *step, const sd_bus_error *e, int r) {
        printf("fail %s: %s: %s\n", step, e->name ? e->name : "(no error name)",
               e->message ? e->message : strerror(-r));
        return sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED) ? EXIT_DENIED : 1;
}

/* Acquire: the lease's object path in |ret_path| (to free). */
static int acquire(sd_bus *bus, const char *bdf, const char *release, bool vfio_owner, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *path;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Acquire");
        if (r >= 0)
                r = sd_bus_message_append(m, "as", 1, bdf);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && release)
                r = sd_bus_message_append(m, "{sv}", "release", "s", release);
        if (r >= 0 && vfio_owner)
                r = sd_bus_message_append(m, "{sv}", "vfio-owner", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return fail("acquire", r, "cannot build the call");
        /* No polkit agent: a rule decides or the call is denied. */
        (void)sd_bus_message_set_allow_interactive_authorization(m, false);
        r = sd_bus_call(bus, m, 120 * 1000 * 1000, &e, &reply);
        if (r < 0) {
                r = fail_bus("acquire", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return fail("acquire", r, "cannot read the reply");
        *ret_path = strdup(path);
        if (!*ret_path)
                return fail("acquire", -ENOMEM, "strdup");
        printf("ok acquire: %s leased as %s\n", bdf, path);
        return 0;
}

/* The group through Lease.OpenVfioGroup(""): a duplicate of the passed fd in |ret_fd|. */
static int open_group_from_hostdevd(sd_bus *bus, const char *lease, int *ret_fd) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        struct stat st;
        int fd, r;

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, lease, LEASE_IFACE, "OpenVfioGroup");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "");
        if (r < 0)
                return fail("open-group", r, "cannot build the call");
        (void)sd_bus_message_set_allow_interactive_authorization(m, false);
        r = sd_bus_call(bus, m, 60 * 1000 * 1000, &e, &reply);
        if (r < 0) {
                r = fail_bus("open-group", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return fail("open-group", r, "cannot read the reply");
        /* The message owns |fd|. */
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return fail("open-group", -errno, "F_DUPFD_CLOEXEC");
        if (fstat(fd, &st) < 0) {
                close(fd);
                return fail("open-group", -errno, "fstat");
        }
        printf("ok open-group: OpenVfioGroup passed fd %d, char device %u:%u, mode %04o, uid %u\n", fd,
               major(st.st_rdev), minor(st.st_rdev), (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        *ret_fd = fd;
        return 0;
}

/* With "vfio-owner": the lease's group node (VfioPaths) belongs to us; open it ourselves. */
static int open_group_as_owner(sd_bus *bus, const char *lease, int *ret_fd) {
        _cleanup_(strv_freep) char **paths = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *node = NULL;
        struct stat st;
        int fd, r;

        r = sd_bus_get_property_strv(bus, BUS_NAME, lease, LEASE_IFACE, "VfioPaths", &e, &paths);
        if (r < 0) {
                r = fail_bus("owner-node", &e, r);
                sd_bus_error_free(&e);
                return r;
        }
        for (char **p = paths; p && *p; p++)
                if (strncmp(*p, "/dev/vfio/devices/", 18) != 0)
                        node = *p;
        if (!node)
                return fail("owner-node", -ENOENT, "VfioPaths has no group node");
        if (stat(node, &st) < 0)
                return fail("owner-node", -errno, node);
        if (st.st_uid != getuid()) {
                printf("fail owner-node: %s belongs to uid %u, not to this process's %u\n", node,
                       (unsigned)st.st_uid, (unsigned)getuid());
                return 1;
        }
        printf("ok owner-node: %s belongs to uid %u (mode %04o)\n", node, (unsigned)st.st_uid,
               (unsigned)(st.st_mode & 07777));
        fd = open(node, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return fail("open-group", -errno, node);
        printf("ok open-group: opened %s as uid %u, fd %d\n", node, (unsigned)getuid(), fd);
        *ret_fd = fd;
        return 0;
}

/* The VFIO steps of a VMM on |group|; the container and device fds stay open in |ret_*|. */
static int vfio_setup(int group, const char *bdf, int *ret_container, int *ret_device) {
        struct vfio_group_status status = { .argsz = sizeof(status) };
        struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map) };
        struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap) };
        struct vfio_device_info info = { .argsz = sizeof(info) };
        struct vfio_region_info region = { .argsz = sizeof(region), .index = VFIO_PCI_BAR0_REGION_INDEX };
        int container, device, api, type;
        long page = sysconf(_SC_PAGESIZE);
        void *buf;

        container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
        if (container < 0)
                return fail("container", -errno, "/dev/vfio/vfio");
        *ret_container = container;
        printf("ok container: /dev/vfio/vfio opened, fd %d\n", container);

        api = ioctl(container, VFIO_GET_API_VERSION);
        if (api != VFIO_API_VERSION) {
                printf("fail api-version: VFIO_GET_API_VERSION answered %d, expected %d\n", api,
                       VFIO_API_VERSION);
                return 1;
        }
        printf("ok api-version: VFIO_GET_API_VERSION = %d\n", api);

        if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0)
                type = VFIO_TYPE1v2_IOMMU;
        else if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) > 0)
                type = VFIO_TYPE1_IOMMU;
        else {
                printf("fail check-extension: neither VFIO_TYPE1v2_IOMMU nor VFIO_TYPE1_IOMMU offered\n");
                return 1;
        }
        printf("ok check-extension: %s offered\n",
               type == VFIO_TYPE1v2_IOMMU ? "VFIO_TYPE1v2_IOMMU" : "VFIO_TYPE1_IOMMU");

        if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0)
                return fail("group-status", -errno, "VFIO_GROUP_GET_STATUS");
        if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
                printf("fail group-status: flags 0x%x: not viable\n", status.flags);
                return 1;
        }
        printf("ok group-status: flags 0x%x (viable%s)\n", status.flags,
               status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET ? ", container set" : "");

        if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0)
                return fail("set-container", -errno, "VFIO_GROUP_SET_CONTAINER");
        printf("ok set-container: VFIO_GROUP_SET_CONTAINER accepted\n");

        if (ioctl(container, VFIO_SET_IOMMU, type) < 0)
                return fail("set-iommu", -errno, "VFIO_SET_IOMMU");
        printf("ok set-iommu: VFIO_SET_IOMMU(%d) accepted\n", type);

        /* One page of "guest RAM" at IOVA 0: what a VMM does for all of it. */
        buf = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED)
                return fail("map-dma", -errno, "mmap");
        map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
        map.vaddr = (uintptr_t)buf;
        map.iova = 0;
        map.size = page;
        if (ioctl(container, VFIO_IOMMU_MAP_DMA, &map) < 0)
                return fail("map-dma", -errno, "VFIO_IOMMU_MAP_DMA");
        unmap.iova = 0;
        unmap.size = page;
        if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0)
                return fail("map-dma", -errno, "VFIO_IOMMU_UNMAP_DMA");
        printf("ok map-dma: %ld bytes mapped at IOVA 0 and unmapped (%" PRIu64 " bytes)\n", page,
               (uint64_t)unmap.size);
        munmap(buf, page);

        device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
        if (device < 0)
                return fail("device-fd", -errno, "VFIO_GROUP_GET_DEVICE_FD");
        *ret_device = device;
        printf("ok device-fd: VFIO_GROUP_GET_DEVICE_FD(%s) = fd %d\n", bdf, device);

        if (ioctl(device, VFIO_DEVICE_GET_INFO, &info) < 0)
                return fail("device-info", -errno, "VFIO_DEVICE_GET_INFO");
        if (!(info.flags & VFIO_DEVICE_FLAGS_PCI)) {
                printf("fail device-info: flags 0x%x: not a PCI device\n", info.flags);
                return 1;
        }
        printf("ok device-info: flags 0x%x (pci%s), %u regions, %u irqs\n", info.flags,
               info.flags & VFIO_DEVICE_FLAGS_RESET ? ", reset" : "", info.num_regions, info.num_irqs);

        if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &region) < 0)
                return fail("region-info", -errno, "VFIO_DEVICE_GET_REGION_INFO(BAR0)");
        printf("ok region-info: BAR0 size %" PRIu64 " bytes, flags 0x%x\n", (uint64_t)region.size,
               region.flags);
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ char *lease = NULL;
        _cleanup_close_ int group = -EBADF, container = -EBADF, device = -EBADF;
        const char *release = NULL, *bdf = NULL;
        bool vfio_owner = false, wait = false;
        struct timespec ts;
        int r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--vfio-owner") == 0)
                        vfio_owner = true;
                else if (strcmp(argv[i], "--wait") == 0)
                        wait = true;
                else if (strcmp(argv[i], "--release") == 0 && i + 1 < argc)
                        release = argv[++i];
                else if (argv[i][0] != '-' && !bdf)
                        bdf = argv[i];
                else {
                        fprintf(stderr, "lease-vfio-client: bad argument '%s'\n", argv[i]);
                        return 2;
                }
        }
        if (!bdf) {
                fprintf(stderr, "usage: lease-vfio-client [--vfio-owner] [--release POLICY] [--wait] BDF\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        printf("# uid %u pid %d\n", (unsigned)getuid(), (int)getpid());

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return fail("bus", r, "sd_bus_open_system");
        r = acquire(bus, bdf, release, vfio_owner, &lease);
        if (r != 0)
                return r;
        if (vfio_owner)
                r = open_group_as_owner(bus, lease, &group);
        else
                r = open_group_from_hostdevd(bus, lease, &group);
        if (r != 0)
                return r;
        r = vfio_setup(group, bdf, &container, &device);
        if (r != 0)
                return r;

        if (wait) {
                char line[64];

                printf("ready\n");
                if (!fgets(line, sizeof(line), stdin))
                        printf("# stdin closed\n");
        }
        clock_gettime(CLOCK_BOOTTIME, &ts);
        printf("exit %" PRIu64 ".%03ld\n", (uint64_t)ts.tv_sec, ts.tv_nsec / 1000000);
        return 0;
}
