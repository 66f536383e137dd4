/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The early-bind thread's decisions (early-bind.h: early_bind_snapshot_new(), early_bind_snapshot_decide()):
 * what it writes on its own, and everything it must leave to the loop. Pure: rules from files, functions
 * and facts as structs, no sysfs. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "critical.h"
#include "desired-state.h"
#include "early-bind.h"
#include "executor-early.h"
#include "macro.h"

static DesiredState *rules_of(const char *const *files) {
        char dir[] = "/tmp/test-early-bind.XXXXXX";
        DesiredState *s;

        assert_non_null(mkdtemp(dir));
        s = calloc(1, sizeof(DesiredState));
        assert_non_null(s);
        for (size_t i = 0; files[i]; i++) {
                _cleanup_free_ char *path = NULL;
                FILE *f;

                assert_true(asprintf(&path, "%s/%02zu.conf", dir, i) > 0);
                f = fopen(path, "we");
                assert_non_null(f);
                assert_true(fputs(files[i], f) >= 0);
                assert_int_equal(fclose(f), 0);
                assert_int_equal(desired_state_add_file(s, path), 1);
                assert_int_equal(unlink(path), 0);
        }
        assert_int_equal(rmdir(dir), 0);
        return s;
}

#define NIC_VFIO "[Match]\nVendor=8086\nDevice=10d3\n\n[Device]\nDriver=vfio-pci\n"
#define NIC_HOST "[Match]\nVendor=8086\nDevice=10d3\n\n[Device]\nDriver=host\n"
#define NIC_NONE "[Match]\nVendor=8086\nDevice=10d3\n\n[Device]\nDriver=none\n"
#define NVME_VFIO "[Match]\nClass=0x010802\n\n[Device]\nDriver=vfio-pci\n"
#define SLOT_VFIO "[Match]\nSlot=3\n\n[Device]\nDriver=vfio-pci\n"
#define PF_VFIO "[Match]\nAddress=0000:03:00.0\n\n[SRIOV]\nNumVFs=4\nVFDriver=vfio-pci\n"

/* A hot-added e1000e (8086:10d3) alone in IOMMU group 12, behind root port 00:02.0. */
static EarlyBindFacts nic(void) {
        return (EarlyBindFacts){
                .u = {
                        .syspath = "/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0",
                        .sysname = "0000:01:00.0",
                        .pci_id = "8086:10D3",
                        .pci_subsys_id = "8086:0000",
                        .pci_class = "20000",
                },
                .iommu_group = 12,
        };
}

static const CriticalSet no_critical = {};

static EarlyBindSnapshot *snapshot_of(const char *const *files, const PciDevice *const *devices, size_t n) {
        _cleanup_(desired_state_freep) DesiredState *s = files ? rules_of(files) : NULL;
        EarlyBindSnapshot *snap = NULL;

        assert_int_equal(early_bind_snapshot_new(s, devices, n, &no_critical, true, &snap), 0);
        assert_non_null(snap);
        return snap;
}

static const char *decline_reason(const EarlyBindSnapshot *snap, const EarlyBindFacts *f) {
        EarlyBindDecision d;
        const char *why = NULL;

        assert_false(early_bind_snapshot_decide(snap, f, &d, &why));
        assert_non_null(why);
        return why;
}

static void test_claims_a_lone_new_function(void **state) {
        _cleanup_(early_bind_snapshot_freep) EarlyBindSnapshot *snap =
                snapshot_of((const char *[]){ NIC_VFIO, NULL }, NULL, 0);
        EarlyBindFacts f = nic();
        EarlyBindDecision d;
        const char *why = "unset";

        assert_true(early_bind_snapshot_decide(snap, &f, &d, &why));
        assert_null(why);
        assert_string_equal(d.driver, "vfio-pci");
        /* The deciding rule, "FILE:LINE" of Driver= (line 6 of the file). */
        assert_non_null(strstr(d.source, "00.conf:6"));

        /* A class match decides from PCI_CLASS too (4 to 6 hex digits, as pci_uevent() prints it). */
        early_bind_snapshot_free(TAKE_PTR(snap));
        snap = snapshot_of((const char *[]){ NVME_VFIO, NULL }, NULL, 0);
        f.u.pci_id = "1b36:0010";
        f.u.pci_class = "010802";
        assert_true(early_bind_snapshot_decide(snap, &f, &d, &why));
        assert_string_equal(d.driver, "vfio-pci");
        f.u.pci_class = "20000";
        assert_string_equal(decline_reason(snap, &f), "no rule names a driver for it");
}

static void test_later_rule_wins(void **state) {
        _cleanup_(early_bind_snapshot_freep) EarlyBindSnapshot *snap =
                snapshot_of((const char *[]){ NIC_VFIO, NIC_HOST, NULL }, NULL, 0);
        EarlyBindFacts f = nic();
        EarlyBindDecision d;
        const char *why;

        /* Driver=host (the later file) wins: the thread writes nothing, the host driver probes. */
        assert_string_equal(decline_reason(snap, &f), "no rule names a driver for it");

        /* Driver=none: nothing to write on the "add" either (the loop's plan keeps it unbound). */
        early_bind_snapshot_free(TAKE_PTR(snap));
        snap = snapshot_of((const char *[]){ NIC_HOST, NIC_VFIO, NIC_NONE, NULL }, NULL, 0);
        assert_string_equal(decline_reason(snap, &f), "no rule names a driver for it");

        early_bind_snapshot_free(TAKE_PTR(snap));
        snap = snapshot_of((const char *[]){ NIC_HOST, NIC_VFIO, NULL }, NULL, 0);
        assert_true(early_bind_snapshot_decide(snap, &f, &d, &why));
        assert_non_null(strstr(d.source, "01.conf:6"));
}

static void test_declines_whole_snapshot(void **state) {
        _cleanup_(desired_state_freep) DesiredState *s = rules_of((const char *[]){ NIC_VFIO, NULL });
        EarlyBindSnapshot *snap = NULL;
        EarlyBindFacts f = nic();

        /* Nothing published yet. */
        assert_string_equal(decline_reason(NULL, &f), "no rules published yet");

        /* No rule at all, or none that claims a hot-added function. */
        snap = snapshot_of(NULL, NULL, 0);
        assert_string_equal(decline_reason(snap, &f), "no rule");
        snap = early_bind_snapshot_free(snap);
        snap = snapshot_of((const char *[]){ PF_VFIO, NULL }, NULL, 0);
        assert_string_equal(decline_reason(snap, &f), "no rule claims a hot-added function");
        snap = early_bind_snapshot_free(snap);

        /* The host-critical set not known yet, or the ownership records unusable. */
        assert_int_equal(early_bind_snapshot_new(s, NULL, 0, NULL, true, &snap), 0);
        assert_string_equal(decline_reason(snap, &f), "the host-critical functions are not known yet");
        snap = early_bind_snapshot_free(snap);
        assert_int_equal(early_bind_snapshot_new(s, NULL, 0, &no_critical, false, &snap), 0);
        assert_string_equal(decline_reason(snap, &f), "the ownership records are unusable");
        snap = early_bind_snapshot_free(snap);

        /* A rule that matches on what no uevent carries. */
        snap = snapshot_of((const char *[]){ NIC_VFIO, SLOT_VFIO, NULL }, NULL, 0);
        assert_string_equal(decline_reason(snap, &f), "a rule matches on Slot= or Serial=");
        snap = early_bind_snapshot_free(snap);
}

static void test_declines_what_is_not_plainly_new(void **state) {
        _cleanup_(early_bind_snapshot_freep) EarlyBindSnapshot *snap =
                snapshot_of((const char *[]){ NIC_VFIO, NULL }, NULL, 0);
        EarlyBindFacts f;

        f = nic();
        f.synthetic = true;
        assert_string_equal(decline_reason(snap, &f), "a synthetic \"add\" (SYNTH_UUID)");
        f = nic();
        f.has_driver = true;
        assert_string_equal(decline_reason(snap, &f), "a driver is bound already");
        f = nic();
        f.has_physfn = true;
        assert_string_equal(decline_reason(snap, &f), "a VF");
        f = nic();
        f.u.sysname = "virtual0";
        assert_string_equal(decline_reason(snap, &f), "not a PCI address");
        f = nic();
        f.u.syspath = NULL;
        assert_string_equal(decline_reason(snap, &f), "no device path");
        f = nic();
        f.u.pci_id = "8086:10d";
        assert_string_equal(decline_reason(snap, &f), "no usable ids in its \"add\" uevent");
        f = nic();
        f.u.pci_subsys_id = NULL;
        assert_string_equal(decline_reason(snap, &f), "no usable ids in its \"add\" uevent");
        f = nic();
        f.u.pci_class = "0x20000";
        assert_string_equal(decline_reason(snap, &f), "no usable ids in its \"add\" uevent");
        f = nic();
        f.iommu_group = -1;
        assert_string_equal(decline_reason(snap, &f), "no IOMMU group");
}

static void test_iommu_group_peers(void **state) {
        PciDevice bridge = {
                .address = "0000:00:1e.0",
                .class_code = 0x060400,
                .syspath = (char *)"/sys/devices/pci0000:00/0000:00:1e.0",
        };
        PciDevice nic0 = {
                .address = "0000:05:01.0",
                .class_code = 0x020000,
                .syspath = (char *)"/sys/devices/pci0000:00/0000:00:1e.0/0000:05:01.0",
        };
        const PciDevice *devices[] = { &bridge, &nic0 };
        CriticalDevice critical_bridge = { .address = "0000:00:1e.0",
                                           .reason = (char *)"upstream bridge of /" };
        CriticalSet critical = { .devices = &critical_bridge, .n_devices = 1 };
        _cleanup_(desired_state_freep) DesiredState *s = rules_of((const char *[]){ NIC_VFIO, NULL });
        _cleanup_(early_bind_snapshot_freep) EarlyBindSnapshot *snap =
                snapshot_of((const char *[]){ NIC_VFIO, NULL }, devices, ELEMENTSOF(devices));
        EarlyBindFacts f = nic();
        EarlyBindDecision d;
        const char *why;

        /* A bridge peer that is not host-critical: still alone. */
        strcpy(f.peers[0], "0000:00:1e.0");
        f.n_peers = 1;
        assert_true(early_bind_snapshot_decide(snap, &f, &d, &why));

        /* Any other peer, known or not: the loop decides (Group=, viability). */
        strcpy(f.peers[1], "0000:05:01.0");
        f.n_peers = 2;
        assert_string_equal(decline_reason(snap, &f), "IOMMU group peers");
        strcpy(f.peers[1], "0000:05:02.0");
        assert_string_equal(decline_reason(snap, &f), "IOMMU group peers");
        f.n_peers = EARLY_BIND_MAX_PEERS + 1;
        assert_string_equal(decline_reason(snap, &f), "IOMMU group peers");

        /* The same bridge host-critical: it makes the whole group critical. */
        early_bind_snapshot_free(TAKE_PTR(snap));
        assert_int_equal(
                early_bind_snapshot_new(s, devices, ELEMENTSOF(devices), &critical, true, &snap), 0);
        f.n_peers = 1;
        assert_string_equal(decline_reason(snap, &f), "IOMMU group peers");
}

static void test_maybe_a_vf(void **state) {
        PciDevice pf = {
                .address = "0000:01:00.0",
                .class_code = 0x010802,
                .sriov_total_vfs = 8,
                .syspath = (char *)"/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0",
        };
        PciDevice pf_elsewhere = {
                .address = "0000:02:00.0",
                .sriov_total_vfs = 8,
                .syspath = (char *)"/sys/bus/pci/devices/0000:02:00.0",
        };
        const PciDevice *devices[] = { &pf };
        const PciDevice *unresolved[] = { &pf_elsewhere };
        _cleanup_(early_bind_snapshot_freep) EarlyBindSnapshot *snap =
                snapshot_of((const char *[]){ NIC_VFIO, NULL }, devices, ELEMENTSOF(devices));
        EarlyBindFacts f = nic();
        EarlyBindDecision d;
        const char *why;

        /* Beside an SR-IOV PF (its physfn link comes after its "add"): maybe its VF. */
        f.u.syspath = "/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.2";
        f.u.sysname = "0000:01:00.2";
        assert_string_equal(decline_reason(snap, &f), "maybe a VF (an SR-IOV PF beside it)");

        /* Under another port: not a VF of that PF. A prefix of the directory is not the directory. */
        f.u.syspath = "/sys/devices/pci0000:00/0000:00:03.0/0000:02:00.0";
        f.u.sysname = "0000:02:00.0";
        assert_true(early_bind_snapshot_decide(snap, &f, &d, &why));
        f.u.syspath = "/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0/0000:04:00.0";
        f.u.sysname = "0000:04:00.0";
        assert_true(early_bind_snapshot_decide(snap, &f, &d, &why));

        /* A PF whose directory is unknown: any function may be its VF. */
        early_bind_snapshot_free(TAKE_PTR(snap));
        snap = snapshot_of((const char *[]){ NIC_VFIO, NULL }, unresolved, ELEMENTSOF(unresolved));
        assert_string_equal(decline_reason(snap, &f), "an SR-IOV PF whose directory is unknown");
}

/* early_intents_read(): the intent lines the thread appends before each write; a line a crash cut short
 * (no newline) was never followed by its write. */
static void on_intent(const char *address, const char *driver, void *userdata) {
        char **seen = userdata;
        char *line = NULL;

        assert_true(asprintf(&line, "%s%s=%s;", *seen ?: "", address, driver) > 0);
        free(*seen);
        *seen = line;
}

static void test_intents_read(void **state) {
        char dir[] = "/tmp/test-early-intents.XXXXXX";
        _cleanup_free_ char *path = NULL, *seen = NULL;
        FILE *f;

        assert_non_null(mkdtemp(dir));
        /* No file: nothing left behind. */
        assert_int_equal(early_intents_read(dir, on_intent, &seen), 0);
        assert_null(seen);

        assert_true(asprintf(&path, "%s/%s", dir, EARLY_WRITER_INTENTS) > 0);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_true(fputs("0000:06:00.0 vfio-pci\ngarbage\n0000:07:00.0 nvme\n0000:08:00.0 vfio-p", f) >= 0);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(early_intents_read(dir, on_intent, &seen), 2);
        assert_string_equal(seen, "0000:06:00.0=vfio-pci;0000:07:00.0=nvme;");

        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_claims_a_lone_new_function),
                cmocka_unit_test(test_later_rule_wins),
                cmocka_unit_test(test_declines_whole_snapshot),
                cmocka_unit_test(test_declines_what_is_not_plainly_new),
                cmocka_unit_test(test_iommu_group_peers),
                cmocka_unit_test(test_maybe_a_vf),
                cmocka_unit_test(test_intents_read),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
