/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <pci/pci.h>

#include "desired-state.h"
#include "model.h"
#include "planner.h"
#include "strv.h"
#include "sysfs-tree.h"

/*
 * The in-memory host the tables plan on:
 *   0000:00:00.0 host bridge                     group 0
 *   0000:06:00.0 SATA (ahci)                     group 7   host-critical: "controller of /"
 *   0000:06:00.1 USB (xhci_hcd)                  group 7   peer of the critical one
 *   0000:09:00.0 PCIe-to-PCI bridge (no driver)  group 12
 *   0000:0a:01.0 e1000 (e1000)                   group 12
 *   0000:0a:02.0 e1000 (e1000)                   group 12
 *   0000:0b:00.0 NIC on vfio-pci, override set   group 11  /dev/vfio/11
 *   0000:0c:00.0 NIC (igb), no IOMMU group
 *   0000:03:00.0 X710 PF (i40e), 2 of 4 VFs, autoprobe on   group 8
 *   0000:03:02.0 VF 0 (vfio-pci, cdev vfio0)     group 9
 *   0000:03:02.1 VF 1 (no driver)                group 10
 *   0000:41:00.0 GPU (nouveau)                   group 5
 *   0000:41:00.1 GPU audio (snd_hda_intel)       group 5
 */
#define HOSTBR "0000:00:00.0"
#define SATA "0000:06:00.0"
#define USB "0000:06:00.1"
#define BRIDGE "0000:09:00.0"
#define E1 "0000:0a:01.0"
#define E2 "0000:0a:02.0"
#define VNIC "0000:0b:00.0"
#define NOGRP "0000:0c:00.0"
#define PF "0000:03:00.0"
#define VF0 "0000:03:02.0"
#define VF1 "0000:03:02.1"
#define GPU "0000:41:00.0"
#define AUDIO "0000:41:00.1"

#define N_DEVICES 13

typedef struct Fixture {
        char dir[64];
        const char *dirs[2];
        PciDevice *devices[N_DEVICES];
        Holder holders[4];
        size_t n_holders;
        CriticalDevice critical[2];
        size_t n_critical;
        bool authorized;
        char **owned;
        OwnedSriov owned_sriov[2];
        size_t n_owned_sriov;
        int n_files;
} Fixture;

static PciDevice *dev(
        const char *address, uint16_t vendor, uint16_t device, uint32_t class_code, int group,
        const char *driver) {
        PciDevice *d = calloc(1, sizeof(PciDevice));

        assert_non_null(d);
        strcpy(d->address, address);
        d->vendor_id = vendor;
        d->device_id = device;
        d->class_code = class_code;
        d->iommu_group = group;
        d->driver = driver ? strdup(driver) : NULL;
        d->vf_index = -1;
        return d;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        PciDevice **d = f->devices;

        strcpy(f->dir, "/tmp/test-planner-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->dirs[0] = f->dir;

        d[0] = dev(HOSTBR, 0x8086, 0x1237, 0x060000, 0, NULL);
        d[1] = dev(SATA, 0x8086, 0x2922, 0x010601, 7, "ahci");
        d[2] = dev(USB, 0x8086, 0x2934, 0x0c0300, 7, "xhci_hcd");
        d[3] = dev(BRIDGE, 0x1b36, 0x000e, 0x060400, 12, NULL);
        d[4] = dev(E1, 0x8086, 0x100e, 0x020000, 12, "e1000");
        d[5] = dev(E2, 0x8086, 0x100e, 0x020000, 12, "e1000");
        d[6] = dev(VNIC, 0x8086, 0x10d3, 0x020000, 11, "vfio-pci");
        d[6]->driver_override = strdup("vfio-pci");
        d[6]->vfio_group = strdup("/dev/vfio/11");
        d[7] = dev(NOGRP, 0x8086, 0x1533, 0x020000, -1, "igb");
        d[8] = dev(PF, 0x8086, 0x1572, 0x020000, 8, "i40e");
        d[8]->sriov_role = SRIOV_ROLE_PF;
        d[8]->sriov_total_vfs = 4;
        d[8]->sriov_num_vfs = 2;
        d[8]->sriov_drivers_autoprobe = true;
        assert_int_equal(strv_extend(&d[8]->virtfns, VF0), 0);
        assert_int_equal(strv_extend(&d[8]->virtfns, VF1), 0);
        d[9] = dev(VF0, 0x8086, 0x154c, 0x020000, 9, "vfio-pci");
        d[9]->vfio_device = strdup("/dev/vfio/devices/vfio0");
        d[10] = dev(VF1, 0x8086, 0x154c, 0x020000, 10, NULL);
        for (int i = 9; i <= 10; i++) {
                d[i]->sriov_role = SRIOV_ROLE_VF;
                d[i]->physfn = strdup(PF);
                d[i]->vf_index = i - 9;
        }
        d[11] = dev(GPU, 0x10de, 0x1eb8, 0x030000, 5, "nouveau");
        d[12] = dev(AUDIO, 0x10de, 0x10f8, 0x040300, 5, "snd_hda_intel");

        f->critical[0] = (CriticalDevice){ .address = SATA, .reason = "controller of /" };
        f->n_critical = 1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        for (size_t i = 0; i < N_DEVICES; i++)
                pci_device_free(f->devices[i]);
        strv_free(f->owned);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void rule(Fixture *f, const char *content) {
        char path[128];
        FILE *file;

        snprintf(path, sizeof(path), "%s/%02d.conf", f->dir, ++f->n_files);
        file = fopen(path, "we");
        assert_non_null(file);
        fputs(content, file);
        assert_int_equal(fclose(file), 0);
}

/* Load the rules, resolve, plan; the plan as text, with the rule directory shown as "@". */
static char *plan_text(Fixture *f, Plan **ret_plan) {
        _cleanup_(desired_state_freep) DesiredState *s = NULL;
        _cleanup_(desired_resolution_freep) DesiredResolution *res = NULL;
        _cleanup_free_ char *text = NULL;
        Plan *plan = NULL;
        PlannerInput in;
        char *out, *o;
        size_t k = strlen(f->dir);

        assert_int_equal(desired_state_load(f->dirs, &s), 0);
        if (s->errors)
                print_error("%s\n", s->errors[0]);
        assert_null(s->errors);
        assert_int_equal(
                desired_state_resolve_devices(s, (const PciDevice *const *)f->devices, N_DEVICES, &res), 0);
        in = (PlannerInput){
                .desired = res,
                .devices = (const PciDevice *const *)f->devices,
                .n_devices = N_DEVICES,
                .holders = f->holders,
                .n_holders = f->n_holders,
                .critical = f->critical,
                .n_critical = f->n_critical,
                .critical_authorized = f->authorized,
                .owned = f->owned,
                .owned_sriov = f->owned_sriov,
                .n_owned_sriov = f->n_owned_sriov,
        };
        assert_int_equal(planner_plan(&in, &plan), 0);
        text = plan_to_string(plan);
        assert_non_null(text);

        out = o = calloc(1, strlen(text) + 1);
        for (const char *t = text; *t;)
                if (strneq(t, f->dir, k)) {
                        *o++ = '@';
                        t += k;
                } else
                        *o++ = *t++;
        if (ret_plan)
                *ret_plan = plan;
        else
                plan_free(plan);
        return out;
}

static void check_plan(Fixture *f, const char *expected) {
        _cleanup_free_ char *text = plan_text(f, NULL);

        if (!streq(text, expected))
                print_error("plan:\n%s\nexpected:\n%s\n", text, expected);
        assert_string_equal(text, expected);
}

/* ---- IOMMU groups ---------------------------------------------------------------------------- */

static void test_strict_peer_on_host_driver(void **state) {
        Fixture *f = *state;

        rule(f, "[Match]\nAddress=" GPU "\n[Device]\nDriver=vfio-pci\n");
        check_plan(
                f,
                GPU " refused: Driver=vfio-pci (@/01.conf:4) Group=strict: IOMMU group 5 has peers that are "
                    "not on VFIO, driverless, bridges or covered: " AUDIO " (snd_hda_intel)\n");
}

static void test_whole_group(void **state) {
        Fixture *f = *state;

        rule(f, "[Match]\nAddress=" GPU "\n[Device]\nDriver=vfio-pci\nGroup=whole\n");
        check_plan(
                f,
                "T1 set-override " GPU " vfio-pci: Driver=vfio-pci (@/01.conf:4)\n"
                "T1 set-override " AUDIO " vfio-pci: Driver=vfio-pci (@/01.conf:4)\n"
                "T1 unbind " GPU " nouveau: release from nouveau for Driver=vfio-pci\n"
                "T1 unbind " AUDIO " snd_hda_intel: release from snd_hda_intel for Driver=vfio-pci\n"
                "T1 probe " GPU ": bind through driver_override\n"
                "T1 probe " AUDIO ": bind through driver_override\n"
                "T1 verify " GPU " vfio-pci: drivers_probe reports success even when nothing binds\n"
                "T1 verify " AUDIO " vfio-pci: drivers_probe reports success even when nothing binds\n" GPU
                " pending: nouveau -> vfio-pci (@/01.conf:4)\n" AUDIO
                " pending: snd_hda_intel -> vfio-pci (@/01.conf:4)\n");
}

static void test_strict_peer_covered_by_own_rule(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        rule(f, "[Match]\nAddress=" GPU "\n[Device]\nDriver=vfio-pci\n");
        rule(f, "[Match]\nAddress=" AUDIO "\n[Device]\nDriver=vfio-pci\n");
        text = plan_text(f, &plan);
        /* One transaction with both: the group is bound atomically. */
        assert_int_equal(plan->n_transactions, 1);
        assert_int_equal(plan->n_actions, 8);
        assert_string_equal(plan->actions[1].address, AUDIO);
        assert_int_equal(plan->actions[1].type, PLAN_ACTION_SET_OVERRIDE);
        assert_true(strstr(plan_get_device(plan, AUDIO)->source, "/02.conf:4") != NULL);
        assert_int_equal(plan_get_device(plan, GPU)->state, DEVICE_STATE_PENDING);
        plan_free(plan);
}

static void test_peer_wanted_elsewhere(void **state) {
        Fixture *f = *state;

        /* Group=whole cannot take a peer that its own rule keeps on the host. */
        rule(f, "[Match]\nAddress=" GPU "\n[Device]\nDriver=vfio-pci\nGroup=whole\n");
        rule(f, "[Match]\nAddress=" AUDIO "\n[Device]\nDriver=host\n");
        check_plan(
                f,
                GPU
                " refused: Driver=vfio-pci (@/01.conf:4) Group=whole: IOMMU group 5 has peers that are not "
                "on VFIO, driverless, bridges or covered: " AUDIO " (Driver=host by @/02.conf:4)\n" AUDIO
                " converged\n");
}

static void test_bridge_in_group(void **state) {
        Fixture *f = *state;

        /* The bridge never blocks nor gets bound; the other e1000 does block a strict rule. */
        rule(f, "[Match]\nAddress=" E1 "\n[Device]\nDriver=vfio-pci\n");
        check_plan(
                f,
                E1 " refused: Driver=vfio-pci (@/01.conf:4) Group=strict: IOMMU group 12 has peers that are "
                   "not on VFIO, driverless, bridges or covered: " E2 " (e1000)\n");
}

static void test_bridge_in_group_whole(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        rule(f, "[Match]\nAddress=" E1 "\n[Device]\nDriver=vfio-pci\nGroup=whole\n");
        text = plan_text(f, &plan);
        assert_int_equal(plan->n_actions, 8);
        for (size_t i = 0; i < plan->n_actions; i++) {
                assert_string_not_equal(plan->actions[i].address, BRIDGE);
                assert_true(streq(plan->actions[i].address, E1) || streq(plan->actions[i].address, E2));
        }
        assert_null(plan_get_device(plan, BRIDGE));
        assert_int_equal(plan_get_device(plan, E2)->state, DEVICE_STATE_PENDING);
        plan_free(plan);
}

static void test_driverless_peer(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        /* A driverless peer is harmless for strict. */
        free(f->devices[12]->driver);
        f->devices[12]->driver = NULL;
        rule(f, "[Match]\nAddress=" GPU "\n[Device]\nDriver=vfio-pci\n");
        text = plan_text(f, &plan);
        assert_int_equal(plan->n_actions, 4);
        assert_int_equal(plan_get_device(plan, GPU)->state, DEVICE_STATE_PENDING);
        assert_null(plan_get_device(plan, AUDIO));
        plan_free(plan);
}

static void test_no_iommu_group(void **state) {
        Fixture *f = *state;

        rule(f, "[Match]\nAddress=" NOGRP "\n[Device]\nDriver=vfio-pci\n");
        check_plan(
                f,
                NOGRP
                " refused: Driver=vfio-pci (@/01.conf:4) needs an IOMMU group: boot with intel_iommu=on "
                "or amd_iommu=on\n");
}

/* ---- host-critical devices ------------------------------------------------------------------- */

static void test_critical(void **state) {
        Fixture *f = *state;

        rule(f, "[Match]\nAddress=" SATA "\n[Device]\nDriver=vfio-pci\nGroup=whole\n");
        check_plan(
                f,
                SATA " refused: host-critical (controller of /): Driver=vfio-pci (@/01.conf:4) needs "
                     "AllowCritical=yes and the org.hostdevd1.override-critical authorization\n");
}

static void test_critical_peer(void **state) {
        Fixture *f = *state;

        /* Even Driver=none: it takes the function from the host. */
        rule(f, "[Match]\nAddress=" USB "\n[Device]\nDriver=none\n");
        check_plan(
                f,
                USB
                " refused: shares IOMMU group 7 with host-critical " SATA " (controller of /): Driver=none "
                "(@/01.conf:4) needs AllowCritical=yes and the org.hostdevd1.override-critical authorization\n");
}

static void test_critical_allowed_but_not_authorized(void **state) {
        Fixture *f = *state;

        rule(f, "[Match]\nAddress=" SATA "\n[Device]\nDriver=vfio-pci\nGroup=whole\nAllowCritical=yes\n");
        check_plan(
                f,
                SATA
                " refused: host-critical (controller of /): Driver=vfio-pci (@/01.conf:4) needs "
                "AllowCritical=yes and the org.hostdevd1.override-critical authorization, which the caller "
                "lacks\n");
}

static void test_critical_authorized(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        f->authorized = true;
        rule(f, "[Match]\nAddress=" SATA "\n[Device]\nDriver=vfio-pci\nGroup=whole\nAllowCritical=yes\n");
        text = plan_text(f, &plan);
        assert_int_equal(plan_get_device(plan, SATA)->state, DEVICE_STATE_PENDING);
        assert_int_equal(plan_get_device(plan, USB)->state, DEVICE_STATE_PENDING);
        assert_int_equal(plan->n_actions, 8);
        plan_free(plan);

        /* Authorization alone is not enough: the rule must say so. */
        rule(f, "[Match]\nAddress=" SATA "\n[Device]\nDriver=vfio-pci\nGroup=whole\n");
        text = mfree(text);
        text = plan_text(f, &plan);
        assert_int_equal(plan_get_device(plan, SATA)->state, DEVICE_STATE_REFUSED);
        assert_int_equal(plan->n_actions, 0);
        plan_free(plan);
}

static void test_critical_back_to_host(void **state) {
        Fixture *f = *state;

        /* Returning a critical function to its host driver is always allowed. */
        rule(f, "[Match]\nAddress=" SATA "\n[Device]\nDriver=host\n");
        check_plan(f, SATA " converged\n");
}

/* ---- holders ---------------------------------------------------------------------------------- */

static void test_holder_blocks_unbind(void **state) {
        Fixture *f = *state;

        f->holders[0] =
                (Holder){ .pid = 4242, .comm = (char *)"qemu-system-x86", .node = (char *)"/dev/vfio/11" };
        f->n_holders = 1;
        rule(f, "[Match]\nAddress=" VNIC "\n[Device]\nDriver=host\n");
        check_plan(
                f,
                VNIC " blocked: vfio-pci -> host (@/01.conf:4) waits: " VNIC
                     " held by pid 4242 (qemu-system-x86) via /dev/vfio/11\n");
}

static void test_no_holder_back_to_host(void **state) {
        Fixture *f = *state;

        /* A holder of another group changes nothing. */
        f->holders[0] =
                (Holder){ .pid = 4242, .comm = (char *)"qemu-system-x86", .node = (char *)"/dev/vfio/12" };
        f->n_holders = 1;
        rule(f, "[Match]\nAddress=" VNIC "\n[Device]\nDriver=host\n");
        check_plan(
                f,
                "T1 clear-override " VNIC ": Driver=host (@/01.conf:4): drop driver_override=vfio-pci\n"
                "T1 unbind " VNIC " vfio-pci: release from vfio-pci for Driver=host\n"
                "T1 probe " VNIC ": let the kernel's own match bind\n"
                "T1 verify " VNIC " (host): drivers_probe reports success even when nothing binds\n" VNIC
                " pending: vfio-pci -> host (@/01.conf:4)\n");
}

static void test_driver_none(void **state) {
        Fixture *f = *state;

        rule(f, "[Match]\nAddress=" NOGRP "\n[Device]\nDriver=none\n");
        check_plan(
                f,
                "T1 unbind " NOGRP " igb: release from igb for Driver=none\n"
                "T1 verify " NOGRP
                " (unbound): drivers_probe reports success even when nothing binds\n" NOGRP
                " pending: igb -> none (@/01.conf:4)\n");
}

/* ---- SR-IOV ----------------------------------------------------------------------------------- */

static void test_numvfs_change(void **state) {
        Fixture *f = *state;

        rule(f, "[Match]\nAddress=" PF "\n[SRIOV]\nNumVFs=4\nVFDriver=vfio-pci\n");
        check_plan(
                f,
                "T1 set-numvfs " PF " 0: the kernel accepts a new VF count only from 0 (sysfs-bus-pci "
                "sriov_numvfs)\n"
                "T1 set-sriov-autoprobe " PF
                " 0: VFDriver=vfio-pci (@/01.conf:5): keep the host driver from "
                "probing new VFs\n"
                "T1 set-numvfs " PF " 4: NumVFs=4 (@/01.conf:4)\n" PF
                " pending: NumVFs 2 -> 4 (@/01.conf:4)\n" VF0
                " pending: waits for the NumVFs change of PF " PF ", which recreates this VF\n" VF1
                " pending: waits for the NumVFs change of PF " PF ", which recreates this VF\n");
}

static void test_numvfs_change_blocked_by_vf_user(void **state) {
        Fixture *f = *state;

        f->holders[0] = (Holder){ .pid = 77,
                                  .comm = (char *)"cloud-hypervisor",
                                  .node = (char *)"/dev/vfio/devices/vfio0" };
        f->n_holders = 1;
        rule(f, "[Match]\nAddress=" PF "\n[SRIOV]\nNumVFs=0\n");
        check_plan(
                f,
                PF
                " blocked: NumVFs 2 -> 0 (@/01.conf:4) needs sriov_numvfs=0 first, which destroys every VF: "
                "VF " VF0 " held by pid 77 (cloud-hypervisor) via /dev/vfio/devices/vfio0\n");
}

static void test_vf_driver_same_count(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        /* NumVFs already right: no numvfs/autoprobe writes; VF 1 gets vfio-pci, VF 0 already has it. */
        rule(f, "[Match]\nAddress=" PF "\n[SRIOV]\nNumVFs=2\nVFDriver=vfio-pci\n");
        text = plan_text(f, &plan);
        assert_int_equal(plan->n_transactions, 1);
        assert_int_equal(plan->n_actions, 3); /* set-override, probe, verify: nothing to unbind */
        assert_int_equal(plan->actions[0].type, PLAN_ACTION_SET_OVERRIDE);
        assert_string_equal(plan->actions[0].address, VF1);
        assert_int_equal(plan->actions[1].type, PLAN_ACTION_PROBE);
        assert_int_equal(plan->actions[2].type, PLAN_ACTION_VERIFY);
        assert_int_equal(plan->actions[2].verify, PLAN_VERIFY_DRIVER);
        assert_string_equal(plan->actions[2].driver, "vfio-pci");
        assert_int_equal(plan_get_device(plan, PF)->state, DEVICE_STATE_CONVERGED);
        assert_int_equal(plan_get_device(plan, VF0)->state, DEVICE_STATE_CONVERGED);
        assert_int_equal(plan_get_device(plan, VF1)->state, DEVICE_STATE_PENDING);
        plan_free(plan);
}

static void test_numvfs_refusals(void **state) {
        Fixture *f = *state;

        rule(f, "[Match]\nAddress=" PF "\n[SRIOV]\nNumVFs=5\n");
        rule(f, "[Match]\nAddress=" GPU "\n[SRIOV]\nNumVFs=1\n");
        check_plan(
                f,
                PF " refused: NumVFs=5 (@/01.conf:4) exceeds sriov_totalvfs=4\n" GPU
                   " refused: [SRIOV] settings (@/02.conf:4) on a function that is not an SR-IOV PF (no "
                   "sriov_totalvfs)\n");
}

static void test_numvfs_host_vfs_autoprobe_on(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        /* VFs for the host driver: autoprobe must be on when they are created. */
        f->devices[8]->sriov_drivers_autoprobe = false;
        f->devices[8]->sriov_num_vfs = 0;
        rule(f, "[Match]\nAddress=" PF "\n[SRIOV]\nNumVFs=3\n");
        text = plan_text(f, &plan);
        assert_int_equal(plan->n_actions, 2);
        assert_int_equal(plan->actions[0].type, PLAN_ACTION_SET_SRIOV_AUTOPROBE);
        assert_int_equal(plan->actions[0].value, 1);
        assert_int_equal(plan->actions[1].type, PLAN_ACTION_SET_NUMVFS);
        assert_int_equal(plan->actions[1].value, 3);
        plan_free(plan);
}

/* ---- rules, adoption, release ------------------------------------------------------------------ */

static void test_rule_conflict(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        rule(f, "[Match]\nVendor=10de\n[Device]\nDriver=host\n");
        rule(f, "[Match]\nAddress=" GPU "\n[Device]\nDriver=vfio-pci\nGroup=whole\n");
        text = plan_text(f, &plan);
        /* The later file wins for the GPU; the audio keeps the earlier rule (its only one) and so blocks
         * whole. */
        assert_int_equal(plan_get_device(plan, GPU)->state, DEVICE_STATE_REFUSED);
        assert_string_equal(plan_get_device(plan, GPU)->desired_driver, "vfio-pci");
        assert_int_equal(strv_length(plan->conflicts), 1);
        assert_true(
                strstr(text,
                       "conflict: " GPU ": Driver=vfio-pci Group=whole (@/02.conf:4) overrides Driver=host "
                       "(@/01.conf:4)\n") != NULL);
        plan_free(plan);
}

static void test_adoption(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        /* Everything already as declared (what a restart sees): nothing to write. */
        rule(f, "[Match]\nAddress=" VNIC "\n[Device]\nDriver=vfio-pci\n");
        rule(f, "[Match]\nAddress=" GPU "\n[Device]\nDriver=nouveau\n");
        rule(f, "[Match]\nAddress=" PF "\n[SRIOV]\nNumVFs=2\n");
        rule(f, "[Match]\nPF=" PF "\nVFIndex=0\n[Device]\nDriver=vfio-pci\n");
        rule(f, "[Match]\nPF=" PF "\nVFIndex=1\n[Device]\nDriver=none\n");
        rule(f, "[Match]\nAddress=" E1 "\n[Device]\nDriver=host\n");
        text = plan_text(f, &plan);
        assert_int_equal(plan->n_actions, 0);
        assert_int_equal(plan->n_devices, 6);
        assert_true(plan_is_converged(plan));
        assert_null(plan_get_device(plan, VF1)->reason);
        assert_string_equal(plan_get_device(plan, VF1)->desired_driver, "none");
        plan_free(plan);
}

static void test_release_owned(void **state) {
        Fixture *f = *state;

        /* hostdevd bound VNIC earlier; its rule is gone: back to the host driver. */
        assert_int_equal(strv_extend(&f->owned, VNIC), 0);
        check_plan(
                f,
                "T1 clear-override " VNIC ": Driver=host (released: no rule claims it any more): drop "
                "driver_override=vfio-pci\n"
                "T1 unbind " VNIC " vfio-pci: release from vfio-pci for Driver=host\n"
                "T1 probe " VNIC ": let the kernel's own match bind\n"
                "T1 verify " VNIC " (host): drivers_probe reports success even when nothing binds\n" VNIC
                " pending: vfio-pci -> host (released: no rule claims it any more)\n");
}

static void test_release_owned_driverless(void **state) {
        Fixture *f = *state;

        /* A released function left without driver (Driver=none before) is probed once. */
        assert_int_equal(strv_extend(&f->owned, VF1), 0);
        check_plan(
                f,
                "T1 probe " VF1 ": let the kernel's own match bind\n"
                "T1 verify " VF1 " (host): drivers_probe reports success even when nothing binds\n" VF1
                " pending: no driver -> host (released: no rule claims it any more)\n");
}

/* ---- SR-IOV settings given back (issue 13 section 2) -------------------------------------------- */

/* hostdevd set PF to 2 VFs with autoprobe 0; before, it had none and autoprobe 1. */
static void owned_pf(Fixture *f) {
        f->devices[8]->sriov_drivers_autoprobe = false;
        f->owned_sriov[0] = (OwnedSriov){
                .address = PF,
                .original_numvfs = 0,
                .original_drivers_autoprobe = true,
                .numvfs = 2,
                .drivers_autoprobe = false,
        };
        f->n_owned_sriov = 1;
}

static void test_sriov_restore(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        owned_pf(f);
        check_plan(
                f,
                "T1 set-sriov-autoprobe " PF " 1: released: sriov_drivers_autoprobe back to 1, as before "
                "hostdevd changed it\n"
                "T1 set-numvfs " PF " 0: released: the kernel accepts a new VF count only from 0 "
                "(sysfs-bus-pci sriov_numvfs)\n" PF
                " pending: released: no rule claims its SR-IOV settings any more; giving back "
                "sriov_numvfs=0 and sriov_drivers_autoprobe=1, as before hostdevd changed them\n");
        text = plan_text(f, &plan);
        assert_null(plan->sriov_released);
        plan_free(plan);
}

static void test_sriov_restore_through_zero(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        /* Before hostdevd: 1 VF. Now 2: through 0 back to 1; the VFs' drivers wait for it. */
        owned_pf(f);
        f->owned_sriov[0].original_numvfs = 1;
        assert_int_equal(strv_extend(&f->owned, VF0), 0);
        text = plan_text(f, &plan);
        assert_int_equal(plan->n_actions, 3);
        assert_int_equal(plan->actions[0].type, PLAN_ACTION_SET_SRIOV_AUTOPROBE);
        assert_int_equal(plan->actions[1].type, PLAN_ACTION_SET_NUMVFS);
        assert_int_equal(plan->actions[1].value, 0);
        assert_int_equal(plan->actions[2].type, PLAN_ACTION_SET_NUMVFS);
        assert_int_equal(plan->actions[2].value, 1);
        assert_int_equal(plan_get_device(plan, VF0)->state, DEVICE_STATE_PENDING);
        assert_non_null(strstr(plan_get_device(plan, VF0)->reason, "waits for the NumVFs change"));
        plan_free(plan);
}

static void test_sriov_restore_blocked_by_holder(void **state) {
        Fixture *f = *state;

        owned_pf(f);
        f->holders[0] =
                (Holder){ .pid = 77, .comm = (char *)"qemu", .node = (char *)"/dev/vfio/devices/vfio0" };
        f->n_holders = 1;
        check_plan(
                f,
                PF " blocked: giving back sriov_numvfs=0 needs sriov_numvfs=0 first, which destroys every "
                   "VF: VF " VF0 " held by pid 77 (qemu) via /dev/vfio/devices/vfio0\n");
}

static void test_sriov_restore_claimed(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        /* A rule still claims the count: it is in charge, nothing given back, the record stays. */
        owned_pf(f);
        rule(f, "[Match]\nAddress=" PF "\n[SRIOV]\nNumVFs=2\n");
        text = plan_text(f, &plan);
        assert_int_equal(plan->n_actions, 0);
        assert_null(plan->sriov_released);
        plan_free(plan);

        /* A rule claims one of its VFs by itself: the count stays (the VF would go with it). */
        teardown(state);
        setup(state);
        f = *state;
        owned_pf(f);
        f->devices[8]->sriov_drivers_autoprobe = true;
        f->owned_sriov[0].drivers_autoprobe = true;
        rule(f, "[Match]\nAddress=" VF1 "\n[Device]\nDriver=vfio-pci\n");
        text = mfree(text);
        {
                _cleanup_free_ char *t = plan_text(f, &plan);
                assert_non_null(strstr(plan_get_device(plan, PF)->reason, "VF " VF1 " is claimed by "));
                assert_int_equal(plan_get_device(plan, PF)->state, DEVICE_STATE_CONVERGED);
                for (size_t i = 0; i < plan->n_actions; i++)
                        assert_int_not_equal(plan->actions[i].type, PLAN_ACTION_SET_NUMVFS);
                plan_free(plan);
        }
}

static void test_sriov_restore_done_or_changed_by_others(void **state) {
        Fixture *f = *state;
        Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;

        /* Back as before: nothing to write, the record goes. */
        owned_pf(f);
        f->devices[8]->sriov_num_vfs = 0;
        f->devices[8]->sriov_drivers_autoprobe = true;
        text = plan_text(f, &plan);
        assert_int_equal(plan->n_actions, 0);
        assert_non_null(plan->sriov_released);
        assert_string_equal(plan->sriov_released[0], PF);
        assert_null(plan->sriov_released[1]);
        plan_free(plan);
        free(text);

        /* Someone else wrote 3 VFs and autoprobe 1 since: theirs, not given back. */
        f->devices[8]->sriov_num_vfs = 3;
        text = plan_text(f, &plan);
        assert_int_equal(plan->n_actions, 0);
        assert_non_null(plan->sriov_released);
        plan_free(plan);
        free(text);

        /* Only autoprobe is still hostdevd's: only it goes back. */
        f->devices[8]->sriov_drivers_autoprobe = false;
        text = plan_text(f, &plan);
        assert_int_equal(plan->n_actions, 1);
        assert_int_equal(plan->actions[0].type, PLAN_ACTION_SET_SRIOV_AUTOPROBE);
        assert_int_equal(plan->actions[0].value, 1);
        plan_free(plan);
}

/* ---- a function that just appeared (planner_plan_new_function()) ----------------------------- */

static void test_new_function(void **state) {
        Fixture *f = *state;
        PciDevice *vf1 = f->devices[10];
        _cleanup_(plan_freep) Plan *plan = NULL;
        _cleanup_free_ char *text = NULL;
        DriverSpec want = { .kind = DRIVER_KIND_NAMED, .name = (char *)"vfio-pci" };

        assert_string_equal(vf1->address, VF1);
        assert_null(vf1->driver);
        assert_null(vf1->driver_override);
        assert_int_equal(
                planner_plan_new_function(vf1, &want, "/etc/hostdevd/devices.d/vf.conf:3", &plan), 0);

        /* One transaction: override, probe (a VF's first probe ran in the sriov_numvfs write already),
         * and the settle verification naming the driver (the text shows the kind of verification, the
         * action carries the driver). */
        text = plan_to_string(plan);
        assert_non_null(text);
        assert_string_equal(
                text,
                "T1 set-override " VF1 " vfio-pci: new function: Driver=vfio-pci "
                "(/etc/hostdevd/devices.d/vf.conf:3), before the kernel's first probe\n"
                "T1 probe " VF1 ": bind through driver_override\n"
                "T1 verify " VF1
                " (driver-settle): the kernel's first probe binds the override's driver; drivers_probe "
                "if it bound none\n" VF1
                " pending: no driver -> vfio-pci (/etc/hostdevd/devices.d/vf.conf:3)\n");
        assert_int_equal(plan->n_transactions, 1);
        assert_int_equal(plan->n_actions, 3);
        for (size_t i = 0; i < plan->n_actions; i++) {
                assert_int_equal(plan->actions[i].transaction, 1);
                assert_string_equal(plan->actions[i].address, VF1);
        }
        assert_int_equal(plan->actions[0].type, PLAN_ACTION_SET_OVERRIDE);
        assert_string_equal(plan->actions[0].driver, "vfio-pci");
        assert_int_equal(plan->actions[1].type, PLAN_ACTION_PROBE);
        assert_null(plan->actions[1].driver);
        assert_int_equal(plan->actions[2].type, PLAN_ACTION_VERIFY);
        assert_int_equal(plan->actions[2].verify, PLAN_VERIFY_DRIVER_SETTLE);
        assert_string_equal(plan->actions[2].driver, "vfio-pci");
        assert_string_equal(plan_verify_to_string(PLAN_VERIFY_DRIVER_SETTLE), "driver-settle");

        /* The one PlanDevice: pending, the desired driver and the deciding rule. */
        assert_int_equal(plan->n_devices, 1);
        assert_string_equal(plan->devices[0].address, VF1);
        assert_int_equal(plan->devices[0].state, DEVICE_STATE_PENDING);
        assert_string_equal(plan->devices[0].desired_driver, "vfio-pci");
        assert_string_equal(plan->devices[0].source, "/etc/hostdevd/devices.d/vf.conf:3");
        assert_null(plan->conflicts);
        assert_false(plan_is_converged(plan));
        plan = plan_free(plan);

        /* Another named driver, no source: said so, not a crash. */
        want.name = (char *)"nvme";
        assert_int_equal(planner_plan_new_function(vf1, &want, NULL, &plan), 0);
        assert_string_equal(plan->actions[0].driver, "nvme");
        assert_string_equal(plan->actions[2].driver, "nvme");
        assert_string_equal(plan->devices[0].desired_driver, "nvme");
        assert_null(plan->devices[0].source);
        assert_string_equal(plan->devices[0].reason, "no driver -> nvme (n/a)");
        plan = plan_free(plan);

        /* A hot-added function (no VF): no drivers_probe before the kernel's own first probe, which
         * would bind nothing and take CPU from that probe; the verification writes it if needed. */
        PciDevice nic = *vf1;
        nic.sriov_role = SRIOV_ROLE_NONE;
        nic.physfn = NULL;
        nic.vf_index = -1;
        want.name = (char *)"vfio-pci";
        assert_int_equal(
                planner_plan_new_function(&nic, &want, "/etc/hostdevd/devices.d/nic.conf:2", &plan), 0);
        free(text);
        text = plan_to_string(plan);
        assert_string_equal(
                text,
                "T1 set-override " VF1 " vfio-pci: new function: Driver=vfio-pci "
                "(/etc/hostdevd/devices.d/nic.conf:2), before the kernel's first probe\n"
                "T1 verify " VF1
                " (driver-settle): the kernel's first probe binds the override's driver; drivers_probe "
                "if it bound none\n" VF1
                " pending: no driver -> vfio-pci (/etc/hostdevd/devices.d/nic.conf:2)\n");
        assert_int_equal(plan->n_actions, 2);
        assert_int_equal(plan->actions[1].verify, PLAN_VERIFY_DRIVER_SETTLE);
}

static void test_new_function_refusals(void **state) {
        Fixture *f = *state;
        PciDevice *vf1 = f->devices[10], *vf0 = f->devices[9], *vnic = f->devices[6];
        Plan *plan = NULL;

        /* Only a named driver: host and none need no write before the first probe; unset is no rule. */
        assert_int_equal(
                planner_plan_new_function(vf1, &(DriverSpec){ .kind = DRIVER_KIND_HOST }, "x:1", &plan),
                -EINVAL);
        assert_int_equal(
                planner_plan_new_function(vf1, &(DriverSpec){ .kind = DRIVER_KIND_NONE }, "x:1", &plan),
                -EINVAL);
        assert_int_equal(
                planner_plan_new_function(vf1, &(DriverSpec){ .kind = DRIVER_KIND_UNSET }, "x:1", &plan),
                -EINVAL);
        assert_int_equal(
                planner_plan_new_function(vf1, &(DriverSpec){ .kind = DRIVER_KIND_NAMED }, "x:1", &plan),
                -EINVAL);

        /* Not a new function: it has a driver, or a driver_override already. */
        const DriverSpec want = { .kind = DRIVER_KIND_NAMED, .name = (char *)"vfio-pci" };
        assert_int_equal(planner_plan_new_function(vf0, &want, "x:1", &plan), -EINVAL);
        assert_int_equal(planner_plan_new_function(vnic, &want, "x:1", &plan), -EINVAL);
        /* (Owned by the fixture's device until restored: the teardown frees them if a check fails.) */
        vf1->driver_override = strdup("vfio-pci");
        assert_int_equal(planner_plan_new_function(vf1, &want, "x:1", &plan), -EINVAL);
        vf1->driver_override = mfree(vf1->driver_override);
        vf1->driver = strdup("ixgbevf");
        assert_int_equal(planner_plan_new_function(vf1, &want, "x:1", &plan), -EINVAL);
        vf1->driver = mfree(vf1->driver);
        assert_null(plan); /* untouched on error */

        /* And with both restored it plans. */
        assert_int_equal(planner_plan_new_function(vf1, &want, "x:1", &plan), 0);
        plan_free(plan);
}

static void test_strings(void **state) {
        assert_string_equal(device_state_to_string(DEVICE_STATE_BLOCKED), "blocked");
        assert_int_equal(device_state_from_string("stuck"), DEVICE_STATE_STUCK);
        assert_int_equal(device_state_from_string("Stuck"), _DEVICE_STATE_INVALID);
        assert_null(device_state_to_string(_DEVICE_STATE_MAX));
        assert_string_equal(
                plan_action_type_to_string(PLAN_ACTION_SET_SRIOV_AUTOPROBE), "set-sriov-autoprobe");
        assert_int_equal(plan_action_type_from_string("clear-override"), PLAN_ACTION_CLEAR_OVERRIDE);
        assert_int_equal(plan_action_type_from_string("new-id"), _PLAN_ACTION_TYPE_INVALID);
        assert_string_equal(plan_verify_to_string(PLAN_VERIFY_UNBOUND), "unbound");
}

/* ---- the same on a Model read from a umockdev sysfs ------------------------------------------- */

static void quiet(char *msg, ...) {
}

static void test_model(void **state) {
        SysfsTree *t = sysfs_tree_new();
        struct pci_access *pacc = pci_alloc();
        _cleanup_(model_freep) Model *m = NULL;
        _cleanup_(desired_state_freep) DesiredState *s = NULL;
        _cleanup_(desired_resolution_freep) DesiredResolution *res = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        char dir[] = "/tmp/test-planner-model-XXXXXX", path[128], cmd[128];
        const char *dirs[] = { dir, NULL };
        const PciDevice *const *devices;
        size_t n;
        FILE *file;

        sysfs_tree_add_pci(t, GPU, 0x10de, 0x1eb8, 0x030000);
        sysfs_tree_set_group(t, GPU, 1);
        sysfs_tree_bind(t, GPU, "nouveau");
        sysfs_tree_add_pci(t, AUDIO, 0x10de, 0x10f8, 0x040300);
        sysfs_tree_set_group(t, AUDIO, 1);
        sysfs_tree_bind(t, AUDIO, "snd_hda_intel");
        sysfs_tree_add_pci(t, "0000:00:01.0", 0x8086, 0x1901, 0x060400);
        sysfs_tree_set_group(t, "0000:00:01.0", 1);
        pacc->method = PCI_ACCESS_SYS_BUS_PCI;
        pacc->warning = quiet;
        pci_init(pacc);
        assert_int_equal(model_new(pacc, &m), 0);
        assert_int_equal(model_enumerate(m, NULL), 0);

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/50-gpu.conf", dir);
        file = fopen(path, "we");
        assert_non_null(file);
        fputs("[Match]\nVendor=10de\nClass=0x030000/0xff0000\n[Device]\nDriver=vfio-pci\nGroup=whole\n",
              file);
        assert_int_equal(fclose(file), 0);

        assert_int_equal(desired_state_load(dirs, &s), 0);
        assert_int_equal(desired_state_resolve(s, m, &res), 0);
        assert_int_equal(res->n_devices, 1);
        devices = model_get_devices(m, &n);
        assert_int_equal(n, 3);
        assert_int_equal(
                planner_plan(&(PlannerInput){ .desired = res, .devices = devices, .n_devices = n }, &plan),
                0);
        /* GPU and audio (whole group) in one transaction; the root port in the group is a bridge. */
        assert_int_equal(plan->n_transactions, 1);
        assert_int_equal(plan->n_actions, 8);
        assert_int_equal(plan->n_devices, 2);
        assert_string_equal(plan->actions[2].driver, "nouveau");
        assert_string_equal(plan->actions[3].driver, "snd_hda_intel");

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
        model_free(TAKE_PTR(m));
        pci_cleanup(pacc);
        sysfs_tree_free(t);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_strict_peer_on_host_driver),
                T(test_whole_group),
                T(test_strict_peer_covered_by_own_rule),
                T(test_peer_wanted_elsewhere),
                T(test_bridge_in_group),
                T(test_bridge_in_group_whole),
                T(test_driverless_peer),
                T(test_no_iommu_group),
                T(test_critical),
                T(test_critical_peer),
                T(test_critical_allowed_but_not_authorized),
                T(test_critical_authorized),
                T(test_critical_back_to_host),
                T(test_holder_blocks_unbind),
                T(test_no_holder_back_to_host),
                T(test_driver_none),
                T(test_numvfs_change),
                T(test_numvfs_change_blocked_by_vf_user),
                T(test_vf_driver_same_count),
                T(test_numvfs_refusals),
                T(test_numvfs_host_vfs_autoprobe_on),
                T(test_rule_conflict),
                T(test_adoption),
                T(test_release_owned),
                T(test_release_owned_driverless),
                T(test_sriov_restore),
                T(test_sriov_restore_through_zero),
                T(test_sriov_restore_blocked_by_holder),
                T(test_sriov_restore_claimed),
                T(test_sriov_restore_done_or_changed_by_others),
                T(test_new_function),
                T(test_new_function_refusals),
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_model),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
