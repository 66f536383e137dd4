/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "handoff.h"
#include "strv.h"
#include "sysfs-tree.h"
#include "vfio-node.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

/* A function as the model would have read it; freed with pci_device_free(). */
static PciDevice *fn(const char *address, uint16_t vendor, uint16_t device, uint32_t class_code, int group) {
        PciDevice *d = calloc(1, sizeof(PciDevice));

        assert_non_null(d);
        strcpy(d->address, address);
        d->vendor_id = vendor;
        d->device_id = device;
        d->subsystem_vendor_id = vendor;
        d->subsystem_device_id = 0x1000;
        d->class_code = class_code;
        d->revision = 0xa1;
        d->iommu_group = group;
        d->vf_index = -1;
        d->numa_node = -1;
        return d;
}

static void bar(PciDevice *d, uint8_t index, uint64_t size, bool is_64bit, bool prefetchable) {
        assert_true(d->n_bars < PCI_BAR_MAX);
        d->bars[d->n_bars++] = (PciBar){
                .index = index,
                .type = PCI_BAR_TYPE_MEMORY,
                .size = size,
                .is_64bit = is_64bit,
                .prefetchable = prefetchable,
        };
}

static void io_bar(PciDevice *d, uint8_t index, uint64_t size) {
        d->bars[d->n_bars++] = (PciBar){ .index = index, .type = PCI_BAR_TYPE_IO, .size = size };
}

/* An RTX-class GPU: 16M registers, 32G 64-bit prefetchable aperture (resizable BAR), 32M, ROM. */
static PciDevice *gpu(const char *address, int group) {
        PciDevice *d = fn(address, 0x10de, 0x2204, 0x030000, group);
        bar(d, 0, 16 * MiB, false, false);
        bar(d, 1, 32 * GiB, true, true);
        bar(d, 3, 32 * MiB, true, true);
        io_bar(d, 5, 128);
        bar(d, 6, 512 * KiB, false, true);
        return d;
}

static PciDevice *gpu_audio(const char *address, int group) {
        PciDevice *d = fn(address, 0x10de, 0x1aef, 0x040300, group);
        bar(d, 0, 16 * KiB, false, false);
        return d;
}

static PciDevice *nic(const char *address, int group) {
        PciDevice *d = fn(address, 0x8086, 0x10d3, 0x020000, group);
        bar(d, 0, 128 * KiB, false, false);
        bar(d, 3, 16 * KiB, false, false);
        return d;
}

typedef struct Set {
        PciDevice *functions[96];
        size_t n_functions;
        Mdev *mdevs[4];
        size_t n_mdevs;
} Set;

static void set_done(Set *s) {
        for (size_t i = 0; i < s->n_functions; i++)
                pci_device_free(s->functions[i]);
        for (size_t i = 0; i < s->n_mdevs; i++)
                mdev_free(s->mdevs[i]);
        *s = (Set){};
}

static PciDevice *add(Set *s, PciDevice *d) {
        assert_true(s->n_functions < ELEMENTSOF(s->functions));
        s->functions[s->n_functions++] = d;
        return d;
}

static void add_mdev(Set *s, const char *uuid, const char *type, int group) {
        Mdev *m = calloc(1, sizeof(Mdev));
        assert_non_null(m);
        strcpy(m->uuid, uuid);
        m->type_id = strdup(type);
        m->syspath = strdup("/sys/devices/virtual/mtty/mtty/mdev");
        m->iommu_group = group;
        s->mdevs[s->n_mdevs++] = m;
}

static HandoffInput input(const Set *s) {
        return (HandoffInput){
                .functions = (const PciDevice *const *)s->functions,
                .n_functions = s->n_functions,
                .mdevs = (const Mdev *const *)s->mdevs,
                .n_mdevs = s->n_mdevs,
        };
}

static char *joined(char **l) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        assert_non_null(f);
        STRV_FOREACH (s, l)
                fprintf(f, "%s\n", *s);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static char *qemu(const Set *s) {
        _cleanup_strv_free_ char **args = NULL;
        HandoffInput in = input(s);
        assert_int_equal(handoff_qemu_args(&in, &args), 0);
        return joined(args);
}

/* ---- QEMU ------------------------------------------------------------------------------------ */

static void test_qemu_multifunction(void **state) {
        _cleanup_(set_done) Set s = {};
        _cleanup_free_ char *out = NULL;

        /* Given out of order: the audio function first, the NIC between. */
        add(&s, gpu_audio("0000:41:00.1", 5));
        add(&s, nic("0000:03:00.0", 9));
        add(&s, gpu("0000:41:00.0", 5));

        out = qemu(&s);
        assert_string_equal(
                out,
                "-device\n"
                "pcie-root-port,id=hostdevd-rp1,bus=pcie.0,addr=0x10.0x0,multifunction=on,chassis=1,slot=1\n"
                "-device\n"
                "pcie-root-port,id=hostdevd-rp2,bus=pcie.0,addr=0x10.0x1,chassis=1,slot=2\n"
                "-device\n"
                "vfio-pci,host=0000:03:00.0,id=hostdevd-dev1,bus=hostdevd-rp1,addr=0x0\n"
                "-device\n"
                "vfio-pci,host=0000:41:00.0,id=hostdevd-dev2,bus=hostdevd-rp2,addr=0x0.0x0,multifunction=on\n"
                "-device\n"
                "vfio-pci,host=0000:41:00.1,id=hostdevd-dev3,bus=hostdevd-rp2,addr=0x0.0x1\n"
                "-global\n"
                "q35-pcihost.pci-hole64-size=128G\n");
}

static void test_qemu_no_function0_vf_mdev_wide_domain(void **state) {
        _cleanup_(set_done) Set s = {};
        _cleanup_free_ char *out = NULL;

        /* Functions 1 and 2 of a slot without function 0: no guest multifunction device. */
        add(&s, nic("0000:05:00.1", 3));
        add(&s, nic("0000:05:00.2", 4));
        /* A PF's function 0 and a VF of it in the same slot: the VF stays alone. */
        add(&s, nic("0000:07:00.0", 6));
        add(&s, nic("0000:07:00.1", 7))->sriov_role = SRIOV_ROLE_VF;
        /* A VMD domain: host= takes 16 bits, so sysfsdev=. */
        add(&s, nic("10000:01:00.0", 12));
        add_mdev(&s, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "mtty-2", 20);

        out = qemu(&s);
        assert_string_equal(
                out,
                "-device\n"
                "pcie-root-port,id=hostdevd-rp1,bus=pcie.0,addr=0x10.0x0,multifunction=on,chassis=1,slot=1\n"
                "-device\n"
                "pcie-root-port,id=hostdevd-rp2,bus=pcie.0,addr=0x10.0x1,chassis=1,slot=2\n"
                "-device\n"
                "pcie-root-port,id=hostdevd-rp3,bus=pcie.0,addr=0x10.0x2,chassis=1,slot=3\n"
                "-device\n"
                "pcie-root-port,id=hostdevd-rp4,bus=pcie.0,addr=0x10.0x3,chassis=1,slot=4\n"
                "-device\n"
                "pcie-root-port,id=hostdevd-rp5,bus=pcie.0,addr=0x10.0x4,chassis=1,slot=5\n"
                "-device\n"
                "pcie-root-port,id=hostdevd-rp6,bus=pcie.0,addr=0x10.0x5,chassis=1,slot=6\n"
                "-device\n"
                "vfio-pci,host=0000:05:00.1,id=hostdevd-dev1,bus=hostdevd-rp1,addr=0x0\n"
                "-device\n"
                "vfio-pci,host=0000:05:00.2,id=hostdevd-dev2,bus=hostdevd-rp2,addr=0x0\n"
                "-device\n"
                "vfio-pci,host=0000:07:00.0,id=hostdevd-dev3,bus=hostdevd-rp3,addr=0x0\n"
                "-device\n"
                "vfio-pci,host=0000:07:00.1,id=hostdevd-dev4,bus=hostdevd-rp4,addr=0x0\n"
                "-device\n"
                "vfio-pci,sysfsdev=/sys/bus/pci/devices/10000:01:00.0,id=hostdevd-dev5,bus=hostdevd-rp5,addr=0x0\n"
                "-device\n"
                "vfio-pci,sysfsdev=/sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001,id=hostdevd-dev6,"
                "bus=hostdevd-rp6,addr=0x0\n");
}

static void add_nics_from(Set *s, unsigned first, unsigned n) {
        for (unsigned i = first; i < first + n; i++) {
                char a[PCI_ADDRESS_STRING_MAX];
                snprintf(a, sizeof a, "0000:%02x:00.0", 0x20 + i);
                add(s, nic(a, (int)i));
        }
}

static void add_nics(Set *s, unsigned n) {
        add_nics_from(s, 0, n);
}

static void test_qemu_root_port_numbering(void **state) {
        _cleanup_(set_done) Set s = {};
        _cleanup_strv_free_ char **args = NULL;
        HandoffInput in;

        /* Nine ports: eight fill pcie.0 slot 0x10 (multifunction on .0), the ninth is alone in 0x11. */
        add_nics(&s, 9);
        in = input(&s);
        assert_int_equal(handoff_qemu_args(&in, &args), 0);
        assert_int_equal(strv_length(args), 2 * 9 + 2 * 9);
        assert_string_equal(
                args[1],
                "pcie-root-port,id=hostdevd-rp1,bus=pcie.0,addr=0x10.0x0,multifunction=on,chassis=1,slot=1");
        assert_string_equal(
                args[15], "pcie-root-port,id=hostdevd-rp8,bus=pcie.0,addr=0x10.0x7,chassis=1,slot=8");
        assert_string_equal(
                args[17], "pcie-root-port,id=hostdevd-rp9,bus=pcie.0,addr=0x11.0x0,chassis=1,slot=9");
        assert_string_equal(
                args[35], "vfio-pci,host=0000:28:00.0,id=hostdevd-dev9,bus=hostdevd-rp9,addr=0x0");
        /* NICs alone need no bigger 64-bit hole. */
        assert_false(strv_contains(args, "-global"));
}

static void test_qemu_switch_fallback(void **state) {
        _cleanup_(set_done) Set s = {};
        _cleanup_free_ char *out = NULL;

        /* Sixteen root ports fit sixteen units; a seventeenth moves units 16 and 17 behind a switch. */
        add_nics(&s, 17);
        out = qemu(&s);
        assert_non_null(
                strstr(out,
                       "pcie-root-port,id=hostdevd-rp16,bus=pcie.0,addr=0x11.0x7,chassis=1,slot=16\n"
                       "-device\n"
                       "x3130-upstream,id=hostdevd-up1,bus=hostdevd-rp16\n"
                       "-device\n"
                       "xio3130-downstream,id=hostdevd-dp1,bus=hostdevd-up1,addr=0x0.0x0,chassis=2,slot=1\n"
                       "-device\n"
                       "xio3130-downstream,id=hostdevd-dp2,bus=hostdevd-up1,addr=0x1.0x0,chassis=2,slot=2\n"
                       "-device\n"
                       "vfio-pci,host=0000:20:00.0,id=hostdevd-dev1,bus=hostdevd-rp1,addr=0x0\n"));
        assert_null(strstr(out, "hostdevd-rp17"));
        assert_non_null(
                strstr(out, "vfio-pci,host=0000:2e:00.0,id=hostdevd-dev15,bus=hostdevd-rp15,addr=0x0\n"));
        assert_non_null(
                strstr(out, "vfio-pci,host=0000:2f:00.0,id=hostdevd-dev16,bus=hostdevd-dp1,addr=0x0\n"));
        assert_non_null(
                strstr(out, "vfio-pci,host=0000:30:00.0,id=hostdevd-dev17,bus=hostdevd-dp2,addr=0x0\n"));
        assert_null(strstr(out, "bus=hostdevd-rp16,addr"));

        /* Exactly sixteen: no switch. */
        set_done(&s);
        add_nics(&s, 16);
        free(out);
        out = qemu(&s);
        assert_null(strstr(out, "x3130-upstream"));
        assert_non_null(
                strstr(out, "vfio-pci,host=0000:2f:00.0,id=hostdevd-dev16,bus=hostdevd-rp16,addr=0x0\n"));
}

static void test_qemu_limits(void **state) {
        _cleanup_(set_done) Set s = {};
        _cleanup_strv_free_ char **args = NULL;
        HandoffInput in;

        /* 47 units: one switch is enough (15 root ports + 32 downstream ports). */
        add_nics(&s, 47);
        in = input(&s);
        assert_int_equal(handoff_qemu_args(&in, &args), 0);
        assert_true(strv_contains(args, "x3130-upstream,id=hostdevd-up1,bus=hostdevd-rp16"));
        assert_true(strv_contains(
                args,
                "xio3130-downstream,id=hostdevd-dp32,bus=hostdevd-up1,addr=0x1f.0x0,chassis=2,slot=32"));
        assert_false(strv_contains(args, "x3130-upstream,id=hostdevd-up2,bus=hostdevd-rp16"));
        args = strv_free(args);

        /* 48: two switches on root ports 15 and 16; 14 units keep their root ports. */
        add_nics_from(&s, 47, 1);
        in = input(&s);
        assert_int_equal(handoff_qemu_args(&in, &args), 0);
        assert_true(strv_contains(args, "x3130-upstream,id=hostdevd-up1,bus=hostdevd-rp15"));
        assert_true(strv_contains(args, "x3130-upstream,id=hostdevd-up2,bus=hostdevd-rp16"));
        assert_true(strv_contains(
                args, "vfio-pci,host=0000:2d:00.0,id=hostdevd-dev14,bus=hostdevd-rp14,addr=0x0"));
        assert_true(strv_contains(
                args, "vfio-pci,host=0000:2e:00.0,id=hostdevd-dev15,bus=hostdevd-dp1,addr=0x0"));
        assert_true(strv_contains(
                args,
                "xio3130-downstream,id=hostdevd-dp33,bus=hostdevd-up2,addr=0x0.0x0,chassis=2,slot=33"));
        args = strv_free(args);

        /* HANDOFF_UNITS_MAX covers a whole lease (LEASE_DEVICES_MAX, 64). */
        assert_true(HANDOFF_UNITS_MAX >= 64);
        add_nics_from(&s, 48, HANDOFF_UNITS_MAX - 48);
        in = input(&s);
        assert_int_equal(handoff_qemu_args(&in, &args), 0);
        assert_true(strv_contains(
                args,
                "xio3130-downstream,id=hostdevd-dp64,bus=hostdevd-up2,addr=0x1f.0x0,chassis=2,slot=64"));
        args = strv_free(args);

        add_nics(&s, 1); /* 0000:20:00.0 again: a duplicate */
        in = input(&s);
        assert_int_equal(handoff_qemu_args(&in, &args), -EINVAL);
        strcpy(s.functions[s.n_functions - 1]->address, "0000:80:00.0");
        assert_int_equal(handoff_qemu_args(&in, &args), -E2BIG);
        assert_null(args);

        strcpy(s.functions[s.n_functions - 1]->address, "0000:80:00.8");
        assert_int_equal(handoff_qemu_args(&in, &args), -EINVAL);

        /* Nothing leased: nothing to say, but a valid empty vector. */
        in = (HandoffInput){};
        assert_int_equal(handoff_qemu_args(&in, &args), 0);
        assert_non_null(args);
        assert_null(args[0]);
}

/* ---- cloud-hypervisor, libvirt, VFIO nodes ------------------------------------------------------ */

static void test_cloud_hypervisor_libvirt(void **state) {
        _cleanup_(set_done) Set s = {};
        _cleanup_strv_free_ char **args = NULL;
        _cleanup_free_ char *out = NULL, *xml = NULL;
        HandoffInput in;

        add(&s, gpu_audio("0000:41:00.1", 5));
        add(&s, gpu("0000:41:00.0", 5));
        add_mdev(&s, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "mtty-2", 20);
        in = input(&s);

        assert_int_equal(handoff_cloud_hypervisor_args(&in, &args), 0);
        out = joined(args);
        assert_string_equal(
                out,
                "--device\n"
                "path=/sys/bus/pci/devices/0000:41:00.0/\n"
                "--device\n"
                "path=/sys/bus/pci/devices/0000:41:00.1/\n"
                "--device\n"
                "path=/sys/bus/mdev/devices/83b8f4f2-509f-382f-3c1e-e6bfe0fa1001/\n");

        assert_int_equal(handoff_libvirt_hostdev_xml(&in, &xml), 0);
        assert_string_equal(
                xml,
                "<hostdev mode='subsystem' type='pci' managed='no'>\n"
                "  <source>\n"
                "    <address domain='0x0000' bus='0x41' slot='0x00' function='0x0'/>\n"
                "  </source>\n"
                "</hostdev>\n"
                "<hostdev mode='subsystem' type='pci' managed='no'>\n"
                "  <source>\n"
                "    <address domain='0x0000' bus='0x41' slot='0x00' function='0x1'/>\n"
                "  </source>\n"
                "</hostdev>\n"
                "<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'>\n"
                "  <source>\n"
                "    <address uuid='83b8f4f2-509f-382f-3c1e-e6bfe0fa1001'/>\n"
                "  </source>\n"
                "</hostdev>\n");
}

static void test_vfio_paths(void **state) {
        _cleanup_(set_done) Set s = {};
        _cleanup_strv_free_ char **paths = NULL;
        _cleanup_free_ char *out = NULL;
        HandoffInput in;

        /* Two functions of group 5 (one node), a VF with a cdev, a noiommu group, none at all. */
        add(&s, gpu("0000:41:00.0", 5))->vfio_group = strdup("/dev/vfio/5");
        add(&s, gpu_audio("0000:41:00.1", 5));
        PciDevice *vf = add(&s, nic("0000:03:02.0", 9));
        vf->vfio_group = strdup("/dev/vfio/9");
        vf->vfio_device = strdup("/dev/vfio/devices/vfio0");
        add(&s, nic("0000:0b:00.0", -1))->vfio_group = strdup("/dev/vfio/noiommu-0");
        add(&s, nic("0000:0c:00.0", -1));
        add_mdev(&s, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "mtty-2", 20);
        in = input(&s);

        assert_int_equal(handoff_vfio_paths(&in, &paths), 0);
        out = joined(paths);
        assert_string_equal(
                out,
                "/dev/vfio/20\n"
                "/dev/vfio/5\n"
                "/dev/vfio/9\n"
                "/dev/vfio/devices/vfio0\n"
                "/dev/vfio/noiommu-0\n");
}

/* ---- MMIO window --------------------------------------------------------------------------- */

static void test_mmio_large_bar_gpu(void **state) {
        _cleanup_(set_done) Set s = {};
        _cleanup_(mmio_window_done) MmioWindow w = {};
        HandoffInput in;

        add(&s, gpu_audio("0000:41:00.1", 5));
        add(&s, nic("0000:03:00.0", 9));
        add(&s, gpu("0000:41:00.0", 5));
        in = input(&s);

        assert_int_equal(handoff_mmio_window(&in, &w), 0);
        /* GPU+audio port: 16M + 512K (ROM) + 16K -> 17M window aligned to 16M; NIC port: 144K -> 1M.
         * Placed by alignment: 17M, then 1M at 17M: 18M below 4 GiB. */
        assert_int_equal(w.below_4g, 18 * MiB);
        /* 32G + 32M of 64-bit prefetchable BARs, one window. */
        assert_int_equal(w.above_4g, 32 * GiB + 32 * MiB);
        /* Twice that, to the next power of two. */
        assert_int_equal(w.pci_hole64_size, 128 * GiB);

        /* I/O BARs are not MMIO: 2 NIC + 4 GPU + 1 audio memory BARs, by address then index. */
        assert_int_equal(w.n_bars, 7);
        assert_string_equal(w.bars[0].address, "0000:03:00.0");
        assert_int_equal(w.bars[1].index, 3);
        assert_string_equal(w.bars[2].address, "0000:41:00.0");
        assert_int_equal(w.bars[2].index, 0);
        assert_false(w.bars[2].above_4g);
        assert_int_equal(w.bars[3].index, 1);
        assert_true(w.bars[3].above_4g);
        assert_int_equal(w.bars[3].alignment, 32 * GiB);
        assert_true(w.bars[3].is_64bit && w.bars[3].prefetchable);
        assert_int_equal(w.bars[5].index, 6); /* the ROM: prefetchable in sysfs, yet below */
        assert_false(w.bars[5].above_4g);
        assert_string_equal(w.bars[6].address, "0000:41:00.1");
}

static void test_mmio_rules(void **state) {
        _cleanup_(set_done) Set s = {};
        _cleanup_(mmio_window_done) MmioWindow w = {};
        HandoffInput in;

        /* Nothing above 4 GiB: QEMU's default hole, and no -global in the QEMU arguments. */
        add(&s, nic("0000:03:00.0", 9));
        in = input(&s);
        assert_int_equal(handoff_mmio_window(&in, &w), 0);
        assert_int_equal(w.above_4g, 0);
        assert_int_equal(w.below_4g, 1 * MiB);
        assert_int_equal(w.pci_hole64_size, HANDOFF_HOLE64_DEFAULT);
        mmio_window_done(&w);

        /* A 32-bit prefetchable BAR keeps the unit's 64-bit prefetchable one below 4 GiB too. */
        PciDevice *d = add(&s, fn("0000:04:00.0", 0x1234, 0x5678, 0x030000, 10));
        bar(d, 0, 256 * MiB, false, true);
        bar(d, 2, 64 * MiB, true, true);
        /* A 64-bit non-prefetchable BAR: the bridge's non-prefetchable window is 32-bit only. */
        d = add(&s, fn("0000:06:00.0", 0x1234, 0x5679, 0x010802, 11));
        bar(d, 0, 4 * GiB, true, false);
        /* A 64-bit prefetchable 8G BAR in another port shares the 64-bit side with ... nothing. */
        d = add(&s, fn("0000:08:00.0", 0x1234, 0x567a, 0x030200, 12));
        bar(d, 0, 8 * GiB, true, true);
        in = input(&s);
        assert_int_equal(handoff_mmio_window(&in, &w), 0);
        /* Below: 4G (06:00.0), 256M+64M=320M aligned 256M (04:00.0), 1M (NIC). */
        assert_int_equal(w.below_4g, 4 * GiB + 320 * MiB + 1 * MiB);
        assert_int_equal(w.above_4g, 8 * GiB);
        assert_int_equal(w.pci_hole64_size, 32 * GiB);
        for (size_t i = 0; i < w.n_bars; i++)
                assert_int_equal(w.bars[i].above_4g, streq(w.bars[i].address, "0000:08:00.0"));
        mmio_window_done(&w);

        /* A 16G + 1G unit joins the 8G one above 4 GiB. */
        d = add(&s, fn("0000:09:00.0", 0x1234, 0x567b, 0x030200, 13));
        bar(d, 0, 16 * GiB, true, true);
        bar(d, 2, 1 * GiB, true, true);
        in = input(&s);
        assert_int_equal(handoff_mmio_window(&in, &w), 0);
        /* Windows: 8G (align 8G), 17G (align 16G): 17G at 0, then 8G at 24G: 32G. */
        assert_int_equal(w.above_4g, 32 * GiB);
        assert_int_equal(w.pci_hole64_size, 64 * GiB);
        mmio_window_done(&w);

        /* A BAR size that is no power of two cannot come from the kernel: placed as the next one up
         * (a 4M window after 4G + 320M, then the NIC's 1M). */
        bar(d, 4, 3 * MiB, false, false);
        assert_int_equal(handoff_mmio_window(&in, &w), 0);
        assert_int_equal(w.below_4g, 4 * GiB + 325 * MiB);
        for (size_t i = 0; i < w.n_bars; i++)
                if (streq(w.bars[i].address, "0000:09:00.0") && w.bars[i].index == 4) {
                        assert_int_equal(w.bars[i].size, 3 * MiB);
                        assert_int_equal(w.bars[i].alignment, 4 * MiB);
                }
}

/* ---- fingerprint ----------------------------------------------------------------------------- */

static char *fingerprint(const Set *s) {
        char *f = NULL;
        HandoffInput in = input(s);
        assert_int_equal(handoff_fingerprint(&in, &f), 0);
        return f;
}

static void test_fingerprint_stable(void **state) {
        _cleanup_(set_done) Set a = {}, b = {}, c = {};
        _cleanup_free_ char *fa = NULL, *fb = NULL, *fc = NULL, *text = NULL;
        _cleanup_strv_free_ char **diff = NULL;
        HandoffInput in;

        add(&a, gpu("0000:41:00.0", 5));
        add(&a, gpu_audio("0000:41:00.1", 5));
        add(&a, nic("0000:03:00.0", 9));
        add_mdev(&a, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "mtty-2", 20);

        /* Other order, other host addresses, groups and mdev UUID: the guest sees the same. */
        add(&b, nic("0000:81:00.0", 30));
        add(&b, gpu_audio("0001:02:00.1", 31));
        add_mdev(&b, "0fd8bbb4-0b8c-4a4d-9d2c-50e8d8a5f0f0", "mtty-2", 40);
        add(&b, gpu("0001:02:00.0", 31));

        fa = fingerprint(&a);
        fb = fingerprint(&b);
        assert_string_equal(fa, fb);
        assert_true(strneq(fa, "v1:", 3));
        /* "v1:" + 64 hex + ":" + three units of 16 hex with two commas. */
        assert_int_equal(strlen(fa), 3 + 64 + 1 + 3 * 16 + 2);

        in = input(&a);
        assert_int_equal(handoff_fingerprint_text(&in, &text), 0);
        assert_string_equal(
                text,
                "hostdevd-fingerprint v1\n"
                "mdev type mtty-2\n"
                "pci fn0 10de:2204 sub 10de:1000 class 030000 rev a1 bar0 mem32 0x1000000 bar1 mem64-pref 0x800000000"
                " bar3 mem64-pref 0x2000000 bar5 io 0x80 bar6 rom 0x80000 /"
                " fn1 10de:1aef sub 10de:1000 class 040300 rev a1 bar0 mem32 0x4000\n"
                "pci fn0 8086:10d3 sub 8086:1000 class 020000 rev a1 bar0 mem32 0x20000 bar3 mem32 0x4000\n");

        assert_int_equal(handoff_fingerprint_check(&in, fb, &diff), 1);
        assert_null(diff[0]);
        diff = strv_free(diff);

        /* A smaller aperture (no resizable BAR on this host): not the same snapshot target. */
        add(&c, gpu_audio("0000:41:00.1", 5));
        add(&c, nic("0000:03:00.0", 9));
        add_mdev(&c, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "mtty-2", 20);
        add(&c, gpu("0000:41:00.0", 5))->bars[1].size = 256 * MiB;
        fc = fingerprint(&c);
        assert_string_not_equal(fa, fc);

        in = input(&c);
        assert_int_equal(handoff_fingerprint_check(&in, fa, &diff), 0);
        assert_int_equal(strv_length(diff), 2);
        assert_true(
                strneq(diff[0], "only here: pci fn0 10de:2204 ", strlen("only here: pci fn0 10de:2204 ")));
        assert_non_null(strstr(diff[0], "bar1 mem64-pref 0x10000000 "));
        assert_true(strneq(diff[1], "only in fingerprint: unit ", strlen("only in fingerprint: unit ")));
        /* The unit named is the GPU's unit hash in fa, one of its three. */
        assert_non_null(strstr(fa, diff[1] + strlen("only in fingerprint: unit ")));
        diff = strv_free(diff);

        /* The audio function alone is a different guest device (function 0, no multifunction). */
        c.n_functions = 1;
        in = input(&c);
        assert_int_equal(handoff_fingerprint_check(&in, fa, &diff), 0);
        assert_true(strv_contains(
                diff, "only here: pci fn0 10de:1aef sub 10de:1000 class 040300 rev a1 bar0 mem32 0x4000"));
        diff = strv_free(diff);
        c.n_functions = 3;
        in = input(&c);

        /* Not fingerprints at all. */
        const char *bad[] = {
                "",
                "v2:",
                "v1:abc:",
                "sha256:0000",
                "v1:00000000000000000000000000000000000000000000000000000000000000000:",
                "v1:000000000000000000000000000000000000000000000000000000000000000X:",
                "v1:0000000000000000000000000000000000000000000000000000000000000000:123",
                "v1:0000000000000000000000000000000000000000000000000000000000000000:0123456789abcdef,",
                "v1:0000000000000000000000000000000000000000000000000000000000000000:0123456789ABCDEF",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char **d = NULL;
                assert_int_equal(handoff_fingerprint_check(&in, bad[i], &d), -EINVAL);
                assert_null(d);
        }
        /* Well formed, nothing in common: each of the three units is only here. */
        assert_int_equal(
                handoff_fingerprint_check(
                        &in, "v1:0000000000000000000000000000000000000000000000000000000000000000:", &diff),
                0);
        assert_int_equal(strv_length(diff), 3);
        STRV_FOREACH (line, diff)
                assert_true(strneq(*line, "only here: ", strlen("only here: ")));
}

/* Read twice from a fake sysfs ("reload"), in two orders: the same fingerprint; BARs from "resource". */
static void test_fingerprint_reload(void **state) {
        SysfsTree *t = sysfs_tree_new();
        const char *addrs[] = { "0000:41:00.0", "0000:41:00.1", "0000:03:00.0" };
        _cleanup_free_ char *first = NULL;

        const char *p = sysfs_tree_add_pci(t, addrs[0], 0x10de, 0x2204, 0x030000);
        sysfs_tree_write(
                t, p, "resource",
                "0x00000000fb000000 0x00000000fbffffff 0x0000000000040200\n"
                "0x0000006000000000 0x00000067ffffffff 0x000000000014220c\n"
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                "0x0000006800000000 0x0000006801ffffff 0x000000000014220c\n"
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                "0x000000000000e000 0x000000000000e07f 0x0000000000040101\n"
                "0x00000000fc000000 0x00000000fc07ffff 0x0000000000046200\n"
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
                "0x0000000000000000 0x0000000000000000 0x0000000000000000\n");
        sysfs_tree_add_pci(t, addrs[1], 0x10de, 0x1aef, 0x040300);
        sysfs_tree_add_pci(t, addrs[2], 0x8086, 0x10d3, 0x020000);

        for (int round = 0; round < 2; round++) {
                PciDevice *d[3] = {};
                _cleanup_free_ char *f = NULL;
                _cleanup_(mmio_window_done) MmioWindow w = {};

                for (size_t i = 0; i < 3; i++)
                        assert_int_equal(pci_device_read(addrs[round == 0 ? i : 2 - i], NULL, &d[i]), 0);
                HandoffInput in = { .functions = (const PciDevice *const *)d, .n_functions = 3 };
                assert_int_equal(handoff_fingerprint(&in, &f), 0);
                assert_int_equal(handoff_mmio_window(&in, &w), 0);
                assert_int_equal(w.above_4g, 32 * GiB + 32 * MiB);
                assert_int_equal(w.pci_hole64_size, 128 * GiB);
                if (round == 0)
                        first = TAKE_PTR(f);
                else
                        assert_string_equal(first, f);
                for (size_t i = 0; i < 3; i++)
                        pci_device_free(d[i]);
        }
        sysfs_tree_free(t);
}

/* ---- VFIO nodes ---------------------------------------------------------------------------------- */

static void test_vfio_node(void **state) {
        SysfsTree *t = sysfs_tree_new();
        VfioNode n;

        assert_int_equal(vfio_node_parse("/dev/vfio/5", &n), 0);
        assert_int_equal(n.kind, VFIO_NODE_GROUP);
        assert_int_equal(n.number, 5);
        assert_int_equal(vfio_node_parse("/dev/vfio/noiommu-0", &n), 0);
        assert_int_equal(n.kind, VFIO_NODE_NOIOMMU_GROUP);
        assert_int_equal(n.number, 0);
        assert_int_equal(vfio_node_parse("/dev/vfio/devices/vfio12", &n), 0);
        assert_int_equal(n.kind, VFIO_NODE_DEVICE);
        assert_int_equal(n.number, 12);
        assert_string_equal(n.path, "/dev/vfio/devices/vfio12");

        const char *bad[] = { "",
                              "/dev/vfio/",
                              "/dev/vfio/05",
                              "/dev/vfio/x",
                              "/dev/vfio/-1",
                              "/dev/vfio/vfio",
                              "/dev/vfio/devices/vfio",
                              "/dev/vfio/4294967296",
                              "/tmp/5",
                              "5",
                              "10:",
                              ":3",
                              "1:2:3",
                              "a:b",
                              "/dev/vfio/5/" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(vfio_node_parse(bad[i], &n), -EINVAL);

        /* Device numbers, as fstat() gives them, through /sys/dev/char. */
        sysfs_tree_mkdir(t, "/sys/dev/char");
        sysfs_tree_mkdir(t, "/sys/devices/virtual/vfio/5");
        sysfs_tree_symlink(t, "/sys/dev/char/511:5", "/sys/devices/virtual/vfio/5");
        const char *p = sysfs_tree_add_pci(t, "0000:03:02.0", 0x8086, 0x154c, 0x020000);
        char cdev[256];
        snprintf(cdev, sizeof cdev, "%s/vfio-dev/vfio0", p);
        sysfs_tree_mkdir(t, cdev);
        sysfs_tree_symlink(t, "/sys/dev/char/510:0", cdev);
        sysfs_tree_mkdir(t, "/sys/devices/virtual/tty/tty1");
        sysfs_tree_symlink(t, "/sys/dev/char/4:1", "/sys/devices/virtual/tty/tty1");

        assert_int_equal(vfio_node_parse("511:5", &n), 0);
        assert_int_equal(n.kind, VFIO_NODE_GROUP);
        assert_string_equal(n.path, "/dev/vfio/5");
        assert_int_equal(vfio_node_parse("510:0", &n), 0);
        assert_int_equal(n.kind, VFIO_NODE_DEVICE);
        assert_string_equal(n.path, "/dev/vfio/devices/vfio0");
        assert_int_equal(vfio_node_parse("4:1", &n), -ENODEV);
        assert_int_equal(vfio_node_parse("9:9", &n), -ENOENT);

        /* Who is behind it. */
        _cleanup_(set_done) Set s = {};
        PciDevice *gpu0 = add(&s, gpu("0000:41:00.0", 5));
        PciDevice *vf = add(&s, nic("0000:03:02.0", 9));
        vf->vfio_device = strdup("/dev/vfio/devices/vfio0");
        add_mdev(&s, "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "mtty-2", 5);
        assert_int_equal(vfio_node_parse("/dev/vfio/5", &n), 0);
        assert_true(vfio_node_has_device(&n, gpu0));
        assert_false(vfio_node_has_device(&n, vf));
        assert_true(vfio_node_has_mdev(&n, s.mdevs[0]));
        assert_int_equal(vfio_node_parse("510:0", &n), 0);
        assert_false(vfio_node_has_device(&n, gpu0));
        assert_true(vfio_node_has_device(&n, vf));
        assert_false(vfio_node_has_mdev(&n, s.mdevs[0]));

        sysfs_tree_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_qemu_multifunction),
                cmocka_unit_test(test_qemu_no_function0_vf_mdev_wide_domain),
                cmocka_unit_test(test_qemu_root_port_numbering),
                cmocka_unit_test(test_qemu_switch_fallback),
                cmocka_unit_test(test_qemu_limits),
                cmocka_unit_test(test_cloud_hypervisor_libvirt),
                cmocka_unit_test(test_vfio_paths),
                cmocka_unit_test(test_mmio_large_bar_gpu),
                cmocka_unit_test(test_mmio_rules),
                cmocka_unit_test(test_fingerprint_stable),
                cmocka_unit_test(test_fingerprint_reload),
                cmocka_unit_test(test_vfio_node),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
