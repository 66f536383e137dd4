/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Every well-known string hostdevd touches: bus names, object paths,
 * interfaces, errors, polkit actions, sysfs attributes, environment
 * variables, journal fields. Grep this file to learn what the daemon reads,
 * writes and publishes.
 */

/* ---- D-Bus -------------------------------------------------------------- */
#define HOSTDEVD_BUS_NAME "org.hostdevd1"
#define HOSTDEVD_ROOT_PATH "/org/hostdevd1"
#define HOSTDEVD_DEVICES_PATH "/org/hostdevd1/devices"
#define HOSTDEVD_MDEVS_PATH "/org/hostdevd1/mdevs"
#define HOSTDEVD_LEASES_PATH "/org/hostdevd1/leases" /* + "/lease_<id>" */

#define HOSTDEVD_MANAGER_INTERFACE "org.hostdevd1.Manager"
#define HOSTDEVD_DEVICE_INTERFACE "org.hostdevd1.Device"
#define HOSTDEVD_MDEV_INTERFACE "org.hostdevd1.Mdev"
#define HOSTDEVD_LEASE_INTERFACE "org.hostdevd1.Lease"
#define HOSTDEVD_LEASE_PATH_PREFIX "lease_"
/* Acquire options (dbus/org.hostdevd1.xml). */
#define LEASE_OPTION_PIDFD "pidfd"
#define LEASE_OPTION_RELEASE "release"
#define LEASE_OPTION_RELEASE_POLICIES "release-policies"
#define LEASE_OPTION_WHOLE_GROUP "whole-group"
#define LEASE_OPTION_DRY_RUN "dry-run"
#define LEASE_OPTION_VFIO_OWNER "vfio-owner" /* the group nodes belong to the lease's uid while it lasts */
#define LEASE_OPTION_MDEVS "mdevs" /* a(ss): vGPU/mdev requests, (type id or name, parent or "") */
#define LEASE_OPTION_MDEV_RELEASE "mdev-release" /* s: "remove" (default) or "keep" */
/* Lease records: RUNTIME_DIR/leases/<id>.json (lease.h). */
#define LEASES_SUBDIR "leases"

/* Object path element prefixes: 0000:41:00.0 -> pci_0000_41_00_0 (object-path.h). */
#define HOSTDEVD_PCI_PATH_PREFIX "pci_"
#define HOSTDEVD_MDEV_PATH_PREFIX "mdev_"

#define HOSTDEVD_ERROR_NOT_FOUND "org.hostdevd1.Error.NotFound"
#define HOSTDEVD_ERROR_INVALID_ARGUMENT "org.hostdevd1.Error.InvalidArgument"
#define HOSTDEVD_ERROR_FAILED "org.hostdevd1.Error.Failed"
#define HOSTDEVD_ERROR_CONFIG_INVALID "org.hostdevd1.Error.ConfigInvalid"
#define HOSTDEVD_ERROR_REFUSED "org.hostdevd1.Error.Refused"
#define HOSTDEVD_ERROR_BLOCKED "org.hostdevd1.Error.Blocked"

#define LOG_CONTROL_PATH "/org/freedesktop/LogControl1"
#define LOG_CONTROL_INTERFACE "org.freedesktop.LogControl1"

/* Standard interfaces every object carries (listed in InterfacesRemoved like sd-bus lists them in
 * InterfacesAdded). */
#define DBUS_INTERFACE_PEER "org.freedesktop.DBus.Peer"
#define DBUS_INTERFACE_INTROSPECTABLE "org.freedesktop.DBus.Introspectable"
#define DBUS_INTERFACE_PROPERTIES "org.freedesktop.DBus.Properties"
#define DBUS_ERROR_ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"
/* The bus itself: GetNameOwner tells whether a caller is still connected. */
#define DBUS_SERVICE_DBUS "org.freedesktop.DBus"
#define DBUS_PATH_DBUS "/org/freedesktop/DBus"
#define DBUS_INTERFACE_DBUS "org.freedesktop.DBus"
#define DBUS_ERROR_NAME_HAS_NO_OWNER "org.freedesktop.DBus.Error.NameHasNoOwner"

/* ---- polkit actions (policy/org.hostdevd1.policy) ----------------------- */
#define HOSTDEVD_ACTION_RELOAD "org.hostdevd1.reload"
#define HOSTDEVD_ACTION_MANAGE_DEVICES "org.hostdevd1.manage-devices"
#define HOSTDEVD_ACTION_MANAGE_SRIOV "org.hostdevd1.manage-sriov"
#define HOSTDEVD_ACTION_MANAGE_MDEVS "org.hostdevd1.manage-mdevs"
#define HOSTDEVD_ACTION_ACQUIRE "org.hostdevd1.acquire"
#define HOSTDEVD_ACTION_OVERRIDE_CRITICAL "org.hostdevd1.override-critical"
/* A request that may make hostdevd load a module not meant for the function (module-policy.h). */
#define HOSTDEVD_ACTION_LOAD_MODULE "org.hostdevd1.load-module"
/* polkit details passed with the checks (rules.d can match on them). */
#define POLKIT_DETAIL_PCI_ADDRESS "pci.address"
#define POLKIT_DETAIL_DRIVER "driver"
#define POLKIT_DETAIL_SRIOV_NUMVFS "sriov.numvfs"
/* CreateMdev/RemoveMdev (org.hostdevd1.manage-mdevs): the type as given, the parent ("" when any),
 * the UUID (lowercase; "" when hostdevd picks it). */
#define POLKIT_DETAIL_MDEV_TYPE "mdev.type"
#define POLKIT_DETAIL_MDEV_PARENT "mdev.parent"
#define POLKIT_DETAIL_MDEV_UUID "mdev.uuid"
#define POLKIT_DETAIL_DEVICES "devices" /* Acquire: the functions, space-separated */
#define POLKIT_DETAIL_PID "vmm.pid" /* Acquire: the lease owner */

/* ---- sysfs: Documentation/ABI/testing/sysfs-bus-pci ---------------------- */
#define SYSFS_PCI_DEVICES "/sys/bus/pci/devices"
#define SYSFS_PCI_DRIVERS "/sys/bus/pci/drivers"
#define SYSFS_PCI_SLOTS "/sys/bus/pci/slots"
#define SYSFS_IOMMU_GROUPS "/sys/kernel/iommu_groups"
#define SYSFS_CLASS_IOMMU "/sys/class/iommu"
/* Documentation/driver-api/vfio-mediated-device.rst */
#define SYSFS_MDEV_DEVICES "/sys/bus/mdev/devices"
#define SYSFS_MDEV_BUS_CLASS "/sys/class/mdev_bus"
/* Documentation/ABI/testing/sysfs-dev: /sys/dev/char/MAJOR:MINOR links to the device of that number;
 * VFIO group nodes are devices of class "vfio", VFIO device cdevs of class "vfio-dev"
 * (Documentation/driver-api/vfio.rst). */
#define SYSFS_DEV_CHAR "/sys/dev/char"

#define SYSFS_ATTR_VENDOR "vendor"
#define SYSFS_ATTR_DEVICE "device"
#define SYSFS_ATTR_SUBSYSTEM_VENDOR "subsystem_vendor"
#define SYSFS_ATTR_SUBSYSTEM_DEVICE "subsystem_device"
#define SYSFS_ATTR_CLASS "class"
#define SYSFS_ATTR_REVISION "revision"
#define SYSFS_ATTR_DRIVER "driver"
#define SYSFS_ATTR_DRIVER_OVERRIDE "driver_override"
#define SYSFS_ATTR_IOMMU_GROUP "iommu_group"
#define SYSFS_ATTR_NUMA_NODE "numa_node"
#define SYSFS_ATTR_RESOURCE "resource"
#define SYSFS_ATTR_RESET_METHOD "reset_method"
#define SYSFS_ATTR_BOOT_VGA "boot_vga"
#define SYSFS_ATTR_CONFIG "config"
#define SYSFS_ATTR_SRIOV_TOTALVFS "sriov_totalvfs"
#define SYSFS_ATTR_SRIOV_NUMVFS "sriov_numvfs"
#define SYSFS_ATTR_SRIOV_DRIVERS_AUTOPROBE "sriov_drivers_autoprobe"
#define SYSFS_ATTR_SRIOV_OFFSET "sriov_offset"
#define SYSFS_ATTR_SRIOV_STRIDE "sriov_stride"
#define SYSFS_ATTR_PHYSFN "physfn"
#define SYSFS_ATTR_VIRTFN_PREFIX "virtfn"
#define SYSFS_ATTR_SLOT_ADDRESS "address"
#define SYSFS_ATTR_VFIO_DEV "vfio-dev"
#define SYSFS_ATTR_MDEV_SUPPORTED_TYPES "mdev_supported_types"
#define SYSFS_ATTR_MDEV_TYPE "mdev_type"
#define SYSFS_ATTR_MDEV_TYPE_NAME "name"
#define SYSFS_ATTR_MDEV_TYPE_DESCRIPTION "description"
#define SYSFS_ATTR_MDEV_TYPE_DEVICE_API "device_api"
#define SYSFS_ATTR_MDEV_TYPE_AVAILABLE_INSTANCES "available_instances"
/* Documentation/driver-api/vfio-mediated-device.rst: write a UUID to a type's "create"; write 1 to an
 * mdev's "remove". */
#define SYSFS_ATTR_MDEV_CREATE "create"
#define SYSFS_ATTR_MDEV_REMOVE "remove"
#define SYSFS_ATTR_MDEV_TYPE_DEVICES "devices" /* <type>/devices/: links to the type's mdevs */
/* NVIDIA vGPU on SR-IOV VFs (NVIDIA Virtual GPU Software User Guide, "Creating an NVIDIA vGPU on a
 * Linux with KVM Hypervisor", drivers that no longer use mdev): <VF>/nvidia/creatable_vgpu_types lists
 * "ID : NAME" lines; writing an ID to <VF>/nvidia/current_vgpu_type sets the VF's vGPU, 0 clears it. */
#define SYSFS_ATTR_NVIDIA_DIR "nvidia"
#define SYSFS_ATTR_NVIDIA_CREATABLE_VGPU_TYPES "creatable_vgpu_types"
#define SYSFS_ATTR_NVIDIA_CURRENT_VGPU_TYPE "current_vgpu_type"
#define SYSFS_NVIDIA_VGPU_TYPE_NONE "0"

#define DEV_VFIO_DIR "/dev/vfio"
#define DEV_VFIO_DEVICES_DIR "/dev/vfio/devices"

/* ---- uevents ----------------------------------------------------------- */
#define UEVENT_SUBSYSTEM_PCI "pci"
#define UEVENT_SUBSYSTEM_MDEV "mdev"
#define UEVENT_KEY_MDEV_STATE "MDEV_STATE"
/* drivers/pci/pci-driver.c pci_uevent(): "VVVV:DDDD", "SSSS:ssss" (hex), "CCCCCC" (class, hex) */
#define UEVENT_KEY_PCI_ID "PCI_ID"
#define UEVENT_KEY_PCI_SUBSYS_ID "PCI_SUBSYS_ID"
#define UEVENT_KEY_PCI_CLASS "PCI_CLASS"
#define UEVENT_ACTION_ADD "add"
#define UEVENT_ACTION_CHANGE "change"
#define UEVENT_ACTION_REMOVE "remove"
#define UEVENT_ACTION_BIND "bind"
#define UEVENT_ACTION_MOVE "move"
/* Netlink sources of libudev's monitor (Manager.EventSource). */
#define UEVENT_SOURCE_UDEV "udev"
#define UEVENT_SOURCE_KERNEL "kernel"
/* Exists while systemd-udevd runs: then the "udev" source carries processed events. */
#define UDEV_CONTROL_SOCKET "/run/udev/control"

/* ---- environment ------------------------------------------------------- */
#define ENV_SYSTEM_BUS_ADDRESS "DBUS_SYSTEM_BUS_ADDRESS"
#define ENV_HOSTDEVD_UEVENT_SOURCE "HOSTDEVD_UEVENT_SOURCE" /* "udev" | "kernel": force the source */
#define ENV_PCI_IDS_PATH "HOSTDEVD_PCI_IDS" /* override libpci's pci.ids */
/* hostdevctl run: what COMMAND finds about its lease. */
#define ENV_HOSTDEVD_LEASE "HOSTDEVD_LEASE" /* the Lease object path */
#define ENV_HOSTDEVD_LEASE_DEVICES "HOSTDEVD_LEASE_DEVICES" /* its PCI addresses, space-separated */
#define ENV_JOURNAL_STREAM "JOURNAL_STREAM"
/* "1": prefix each stderr line with CLOCK_MONOTONIC seconds (to time a convergence step by step) */
#define ENV_HOSTDEVD_LOG_TIME "HOSTDEVD_LOG_TIME"
#define ENV_NOTIFY_SOCKET "NOTIFY_SOCKET"
/* Set by umockdev's preload (a testbed's fake /sys): hostdevd then never loads kernel modules. */
#define ENV_UMOCKDEV_DIR "UMOCKDEV_DIR"
/* The module index directory (kmod_new()'s dirname: modules.dep.bin, modules.alias.bin, ...) instead of
 * /lib/modules/$(uname -r): the tests' fixture index (agent/module-index.h). */
#define ENV_HOSTDEVD_MODULES_DIR "HOSTDEVD_MODULES_DIR"
/* The deadline of each sysfs access in ms (executor.h), 100..3600000; default 10000. */
#define ENV_HOSTDEVD_WRITE_TIMEOUT_MS "HOSTDEVD_WRITE_TIMEOUT_MS"
/* Force how VFIO holders / the host-critical set are tracked: "scan" (holder-watch.h, critical-watch.h). */
#define ENV_HOSTDEVD_HOLDER_TRACKING "HOSTDEVD_HOLDER_TRACKING"
#define ENV_HOSTDEVD_CRITICAL_TRACKING "HOSTDEVD_CRITICAL_TRACKING"
/* The early-bind thread (executor-early.h): "off" (decide on the loop), "sched-other" (no SCHED_FIFO);
 * unset: SCHED_FIFO when allowed */
#define ENV_HOSTDEVD_EARLY_BIND_THREAD "HOSTDEVD_EARLY_BIND_THREAD"

/* ---- journal fields ---------------------------------------------------- */
#define JOURNAL_FIELD_PCI_ADDR "PCI_ADDR"
#define JOURNAL_FIELD_MDEV_UUID "MDEV_UUID"
#define JOURNAL_FIELD_VMM_PID "VMM_PID"

/* Message IDs for key transitions (journalctl MESSAGE_ID=...). */
#define MESSAGE_ID_STARTED "3c9b1a5e0f5d4e0e9a0b8a1f6c2d7e41"
#define MESSAGE_ID_DEVICE_ADDED "8b2f4c1d6e3a4f5b9c0d1e2f3a4b5c6d"
#define MESSAGE_ID_DEVICE_REMOVED "1f0e2d3c4b5a46978877665544332211"
#define MESSAGE_ID_DRIVER_CHANGED "a4e1c2b3d4f5061728394a5b6c7d8e9f"
#define MESSAGE_ID_RESCAN "5d6c7b8a99a84b3c8d2e1f0a1b2c3d4e"
#define MESSAGE_ID_LEASE_STARTED \
        "6f19ce243e0049899a491962e15002b6" /* a lease is ready, or adopted at start */
#define MESSAGE_ID_LEASE_ENDED \
        "a1c078bfcadb41d89d87348e037dad6b" /* a lease ended (owner exit, Release, restart) */

/* ---- desired state (hostdevd.conf(5)), lowest priority first -------------- */
#define HOSTDEVD_CONF_DIR_USR "/usr/lib/hostdevd/devices.d"
#define HOSTDEVD_CONF_DIR_ETC "/etc/hostdevd/devices.d"
#define HOSTDEVD_CONF_DIR_RUN "/run/hostdevd/devices.d"
#define HOSTDEVD_CONF_SUFFIX ".conf"
#define HOSTDEVD_CONF_MASK_TARGET "/dev/null" /* a drop-in symlinked here masks same-named ones */
/* driverctl(8)'s saved overrides: one file "BUS-DEVICE" holding the driver name (hostdevctl import). */
#define DRIVERCTL_CONF_DIR "/etc/driverctl.d"

#define CONF_SECTION_MATCH "Match"
#define CONF_SECTION_DEVICE "Device"
#define CONF_SECTION_SRIOV "SRIOV"
#define CONF_SECTION_MDEV "Mdev" /* mediated devices (issue 14) */
#define CONF_SECTION_VGPU "VGPU" /* vendor vGPU types on SR-IOV VFs (issue 14) */
#define CONF_MDEV_PLACEMENT_SPREAD "spread"
#define CONF_MDEV_PLACEMENT_PACK "pack"

/* Driver= / VFDriver= special values; anything else names a kernel driver. */
#define CONF_DRIVER_VFIO_PCI "vfio-pci" /* what a leased function is bound to */
#define CONF_DRIVER_HOST "host" /* whatever the kernel's own match binds: driver_override cleared */
#define CONF_DRIVER_NONE "none" /* unbound */
#define VFIO_PCI_DRIVER "vfio-pci"

/* ---- liveness: holders of VFIO nodes (proc(5) /proc/PID/fd, /proc/PID/comm) */
#define PROC_ROOT "/proc"
#define DEV_VFIO_CONTAINER "/dev/vfio/vfio" /* the container node: holding it holds no device */

/* ---- executor (agent/executor-*.c): the sysfs writes of a plan ------------- */
/* Documentation/ABI/testing/sysfs-bus-pci: writing a function's address here probes it (binding its
 * driver_override, or the kernel's own match); it returns success even when nothing binds. */
#define SYSFS_PCI_DRIVERS_PROBE "/sys/bus/pci/drivers_probe"
#define SYSFS_ATTR_UNBIND "unbind" /* /sys/bus/pci/drivers/<driver>/unbind: write the address */
#define SYSFS_DRIVER_OVERRIDE_CLEAR "\n" /* written to driver_override, clears it */
#define SYSFS_DRIVER_OVERRIDE_UNSET "(null)" /* driver_override_show() of a clear override */
#define MESSAGE_ID_DEVICE_STUCK "6b0f1d3e2c4a4b8e9f7a5c3d1e0b2a49" /* a sysfs write overran its deadline */
#define MESSAGE_ID_DEVICE_FAILED \
        "c2d94e7f1a3b4c5d8e6f7a8b9c0d1e2f" /* a transaction failed and rolled back */

/* ---- host-critical functions (critical.h; proc(5), sysfs-block, sysfs-class-net) ---- */
#define PROC_SELF_MOUNTINFO "/proc/self/mountinfo"
#define PROC_SWAPS "/proc/swaps"
#define PROC_NET_ROUTE "/proc/net/route"
#define PROC_NET_IPV6_ROUTE "/proc/net/ipv6_route"
#define SYSFS_DEV_BLOCK "/sys/dev/block" /* MAJ:MIN -> the block device */
#define SYSFS_CLASS_BLOCK "/sys/class/block"
#define SYSFS_CLASS_NET "/sys/class/net"
#define SYSFS_ATTR_SUBSYSTEM "subsystem"
#define SYSFS_BLOCK_SLAVES "slaves" /* dm/md/LVM: the devices this one is built on */
#define SYSFS_BLOCK_PARTITION "partition" /* exists on partitions */
#define SYSFS_NET_LOWER_PREFIX "lower_" /* upper device -> lower device links */
#define SYSFS_NET_BRIF "brif" /* bridge ports */
#define SYSFS_NET_BONDING "bonding" /* bonding/slaves: space separated */
#define SYSFS_NET_BONDING_SLAVES "slaves"

/* ---- ownership records (state-store.h) ------------------------------------ */
#define HOSTDEVD_STATE_DIR "/var/lib/hostdevd"
#define HOSTDEVD_STATE_FILE "owned.json"
/* Changes since owned.json was written, one JSON record a line (state-store.h). */
#define HOSTDEVD_STATE_LOG "owned.log"
/* Stable UUIDs of Count= mdev rules (mdev-uuids.h), in the state directory. */
#define HOSTDEVD_MDEV_UUIDS_FILE "mdev-uuids.json"
/* The mdevs and vGPU types hostdevd owns (mdev-owned.h), in the state directory. */
#define HOSTDEVD_MDEV_OWNED_FILE "owned-mdevs.json"
/* vGPU type names learnt per GPU (mdev.h vgpu_type_names_save()), in the state directory. */
#define HOSTDEVD_VGPU_TYPE_NAMES_FILE "vgpu-type-names.json"
#define MDEV_OWNER_HOSTDEVD_STRING "hostdevd"
#define MDEV_OWNER_FOREIGN_STRING "foreign"
/* Runtime requests (SetDeviceDriver/SetNumVFs): DIR/devices.d, transient in the runtime directory,
 * persistent ("persist") in the state directory (agent/reconciler.h). */
#define HOSTDEVD_RUNTIME_DIR "/run/hostdevd"
#define HOSTDEVD_REQUESTS_SUBDIR "devices.d"
