/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Handoff: what a VMM needs to use the devices of a lease, computed from the model alone (pure: no
 * sysfs, no bus, no allocation kept). Every function takes the same input, a set of PCI functions
 * and mediated devices, in any order; outputs are ordered by PCI address (then mdev UUID), so the
 * same set always gives the same text.
 *
 * Guest layout (QEMU, q35 machine; docs/pcie.txt of QEMU, "PCI EXPRESS GUIDELINES"):
 *   - A "unit" is what one root port carries. Functions of one host slot (same domain, bus and
 *     device number) form one multifunction unit when function 0 is among them and none is an
 *     SR-IOV VF: the guest sees them at device 0 of the port with their host function numbers,
 *     multifunction=on on function 0 (a GPU and its HDMI audio function stay one device, as
 *     their drivers expect). A slot group without function 0 cannot be a guest multifunction
 *     device (the PCI spec has the OS probe function 0 first), so each of its functions, every
 *     VF and every mdev is a unit of its own at function 0.
 *   - Units get pcie-root-port devices "hostdevd-rpN" (N from 1) on pcie.0, packed eight to a
 *     pcie.0 slot as a multifunction device (docs/pcie.txt 2.2.2) in slots 0x10 and 0x11:
 *     HANDOFF_ROOT_PORTS_MAX ports. The rest of pcie.0 stays the VMM's. Each root port has
 *     chassis=1 and slot=N, a unique (chassis, slot) pair as docs/pcie.txt requires.
 *   - More units than HANDOFF_ROOT_PORTS_MAX: the last S root ports (S = 1, or 2 when one is not
 *     enough: HANDOFF_SWITCHES_MAX) each carry a PCIe switch (x3130-upstream "hostdevd-upK"),
 *     the first 16 - S units keep their root ports and the rest go to xio3130-downstream ports
 *     "hostdevd-dpN" (N from 1 over all switches, chassis=2, slot=N; switch (N-1)/32 + 1, at
 *     device (N-1)%32 of its internal bus: a bus has 32 device numbers,
 *     HANDOFF_SWITCH_PORTS_MAX). HANDOFF_UNITS_MAX = 14 + 64 = 78 covers a lease's
 *     LEASE_DEVICES_MAX (64) functions; more units give -E2BIG.
 *     Why sixteen: two pcie.0 slots is what hostdevd claims of the 29 that q35 leaves free, and
 *     each port is a bridge that costs a bus number (256 per segment) and, when a device behind
 *     it has I/O BARs, 4 KiB of the 64 KiB I/O space (docs/pcie.txt 3: about 10 such ports in
 *     all), so more root ports would not buy more working devices of that kind anyway.
 *   - Functions: "vfio-pci,host=DDDD:BB:SS.F"; a domain above 0xffff (Intel VMD) does not fit
 *     QEMU's host= property, those use sysfsdev=/sys/bus/pci/devices/<address>. Mdevs:
 *     "vfio-pci,sysfsdev=/sys/bus/mdev/devices/<uuid>" (Documentation/driver-api/
 *     vfio-mediated-device.rst). Ids: "hostdevd-devN", N from 1 in output order.
 *     Property names as in QEMU's hw/vfio/pci.c (host, sysfsdev), hw/pci/pcie_port.c (chassis,
 *     slot) and qdev/PCI (id, bus, addr, multifunction).
 *
 * MMIO window (Documentation/filesystems/sysfs-pci.rst: "resource" holds "start end flags" per
 * BAR; PciDevice.bars has the sizes and flags): BAR sizes are powers of two and a BAR is aligned
 * to its size (PCI Local Bus spec 6.2.5.1). A bridge forwards non-prefetchable memory through a
 * 32-bit window only; only its prefetchable window may be 64-bit (PCI-to-PCI Bridge spec 3.2.5),
 * so a unit's 64-bit prefetchable BARs go above 4 GiB and everything else (32-bit BARs, 64-bit
 * non-prefetchable BARs, the expansion ROM) below; a unit with a 32-bit prefetchable BAR keeps its
 * whole prefetchable window below 4 GiB. I/O BARs are not MMIO and are left out; mdevs have no
 * sysfs BARs (their regions are the vendor driver's) and add nothing.
 *   A BAR size that is not a power of two (no kernel reports one) is placed as the next one up.
 *   Each unit's window per side: the sum of its BARs (sorted by size, descending, each then
 *   lands aligned) rounded up to 1 MiB, aligned to max(1 MiB, largest BAR) (bridge windows have
 *   1 MiB granularity). The aligned sum of a side: windows placed in decreasing alignment, each at
 *   the next multiple of its alignment from 0; the end is the sum.
 *   Recommended pci-hole64-size: max(32 GiB, the power of two at or above twice the aligned sum
 *   above 4 GiB): twice for headroom, since the firmware aligns the 64-bit aperture itself and
 *   places other devices' BARs there too; 32 GiB is QEMU q35's default
 *   (Q35_PCI_HOST_HOLE64_SIZE_DEFAULT), so a smaller value is never recommended. The QEMU
 *   arguments carry "-global q35-pcihost.pci-hole64-size=" only when the recommendation exceeds
 *   that default.
 *
 * Fingerprint: "v1:<sha256 hex>:<unit>,<unit>,...". Each unit has a canonical line: for PCI units
 * the guest function number, vendor:device, subsystem ids, class, revision and each memory/I/O
 * BAR (index, kind, size) of each function; for mdevs the mdev type. Host addresses, IOMMU groups,
 * drivers and names are left out: a snapshot sees the guest's view, not where the host put the
 * device. The lines are sorted (so order of input does not matter), the hash covers
 * "hostdevd-fingerprint v1\n" and the sorted lines each ending in "\n"; <unit> is the first 16
 * hex digits of each line's own SHA-256, sorted, so a comparison can name what differs.
 * SHA-256 from nettle.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mdev.h"
#include "pci-device.h"

#define HANDOFF_ROOT_PORTS_MAX 16u
#define HANDOFF_SWITCH_PORTS_MAX 32u
#define HANDOFF_SWITCHES_MAX 2u
#define HANDOFF_UNITS_MAX \
        (HANDOFF_ROOT_PORTS_MAX - HANDOFF_SWITCHES_MAX + HANDOFF_SWITCHES_MAX * HANDOFF_SWITCH_PORTS_MAX)
#define HANDOFF_ROOT_PORT_FIRST_SLOT 0x10u
#define HANDOFF_HOLE64_DEFAULT (UINT64_C(32) << 30)
#define HANDOFF_BRIDGE_WINDOW_GRANULARITY (UINT64_C(1) << 20)

typedef struct HandoffInput {
        const PciDevice *const *functions; /* borrowed; distinct addresses */
        size_t n_functions;
        const Mdev *const *mdevs; /* borrowed; distinct UUIDs */
        size_t n_mdevs;
} HandoffInput;

/*
 * QEMU arguments as an argv vector ("-device", "pcie-root-port,...", ...). Returns 0, -E2BIG
 * (more than HANDOFF_UNITS_MAX units), -EINVAL (a function with an unparsable address, or two
 * with the same one), -ENOMEM. An empty input gives an empty (non-NULL) vector.
 */
int handoff_qemu_args(const HandoffInput *in, char ***ret);

/* cloud-hypervisor: "--device", "path=/sys/bus/pci/devices/<address>/" per function and
 * "path=/sys/bus/mdev/devices/<uuid>/" per mdev. Returns 0, -EINVAL, -ENOMEM. */
int handoff_cloud_hypervisor_args(const HandoffInput *in, char ***ret);

/*
 * libvirt <hostdev> elements (formatdomain: "Host device assignment"), one per function or mdev,
 * managed='no' (hostdevd does the binding), each ending in a newline. Mdevs get model='vfio-pci'
 * (the only mdev model a PCI guest takes). Returns 0, -EINVAL, -ENOMEM.
 */
int handoff_libvirt_hostdev_xml(const HandoffInput *in, char **ret);

/*
 * The VFIO nodes a VMM opens, sorted, without duplicates: each group node (PciDevice.vfio_group,
 * else "/dev/vfio/<iommu_group>" when the function has a group; "/dev/vfio/<group>" for mdevs in
 * a group) and each VFIO device cdev the kernel made (PciDevice.vfio_device,
 * /dev/vfio/devices/vfioN; Documentation/driver-api/vfio.rst "cdev", Linux 6.6+,
 * commit 8b6f173a4ce4).
 * Returns 0 or -ENOMEM; empty input gives an empty vector.
 */
int handoff_vfio_paths(const HandoffInput *in, char ***ret);

typedef struct HandoffBar {
        char address[PCI_ADDRESS_STRING_MAX];
        uint8_t index; /* 0..5, 6 = ROM */
        uint64_t size; /* bytes */
        uint64_t alignment; /* bytes (= size) */
        bool is_64bit, prefetchable;
        bool above_4g; /* the side it goes to, per the rule above */
} HandoffBar;

typedef struct MmioWindow {
        HandoffBar *bars; /* memory BARs by address, then index */
        size_t n_bars;
        uint64_t below_4g; /* aligned sum, bytes */
        uint64_t above_4g; /* aligned sum, bytes */
        uint64_t pci_hole64_size; /* recommended, bytes, a power of two >= HANDOFF_HOLE64_DEFAULT */
} MmioWindow;

/* Returns 0, -EOVERFLOW (sums beyond 2^63), -EINVAL (bad or duplicate address), -ENOMEM. *ret is filled only
 * on success. */
int handoff_mmio_window(const HandoffInput *in, MmioWindow *ret);
void mmio_window_done(MmioWindow *w);

/* The canonical text (lines, "\n"-terminated, sorted) and the fingerprint. Returns 0, -EINVAL,
 * -ENOMEM. */
int handoff_fingerprint_text(const HandoffInput *in, char **ret);
int handoff_fingerprint(const HandoffInput *in, char **ret);

/*
 * Compare a fingerprint taken elsewhere with this input's. Returns 1 (match), 0 (differs; then
 * *ret_differences lists, one entry each, "only here: <canonical line>" for units this input has
 * and the fingerprint lacks, "only in fingerprint: unit <hash>" for the others), -EINVAL when
 * |fingerprint| is not a v1 fingerprint, -ENOMEM. *ret_differences is set (possibly empty) on
 * 0 and 1.
 */
int handoff_fingerprint_check(const HandoffInput *in, const char *fingerprint, char ***ret_differences);
