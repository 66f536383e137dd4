/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Issue 14: resolving [Mdev]/[VGPU] rules against an in-memory host (placement, types by id or name,
 * one type per GPU, errors, stable UUIDs) and the planner's mdev/vGPU decisions (create, adopt,
 * remove only what is owned, never what is held, foreign ones shown and left alone).
 *
 * The host:
 *   0000:41:00.0, 0000:42:00.0  NVIDIA GPUs (nvidia), mdev parents, IOMMU groups 41 and 42:
 *                               nvidia-222 "GRID T4-1Q" (4 left), nvidia-223 "GRID T4-2Q" (2 left)
 *   mtty                        the mtty sample (not PCI): mtty-1 (2 left), mtty-2 (1 left)
 *   0000:81:00.0                NVIDIA PF (nvidia) with VFs 0000:81:00.4/.5/.6 (nvidia/ directory,
 *                               creatable 557 "NVIDIA A40-1Q", 558 "NVIDIA A40-2Q"), groups 84..86
 */

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

#include "desired-state.h"
#include "macro.h"
#include "planner.h"
#include "strv.h"

#define GPU1 "0000:41:00.0"
#define GPU2 "0000:42:00.0"
#define PF "0000:81:00.0"
#define VF4 "0000:81:00.4"
#define VF5 "0000:81:00.5"
#define VF6 "0000:81:00.6"
#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define U3 "33333333-3333-4333-8333-333333333333"

typedef struct Fixture {
        char dir[64], state_dir[80];
        const char *dirs[2];
        PciDevice *devices[6];
        MdevParent *parents[3];
        Mdev *mdevs[4];
        size_t n_mdevs;
        VgpuVf *vfs[3];
        Holder holders[2];
        size_t n_holders;
        char **owned_mdevs, **owned_vgpus;
        VgpuTypeNames *names; /* the reconciler's learnt vGPU type names */
        int n_files;
} Fixture;

static PciDevice *dev(const char *address, int group, const char *driver) {
        PciDevice *d = calloc(1, sizeof(PciDevice));
        assert_non_null(d);
        strcpy(d->address, address);
        d->vendor_id = 0x10de;
        d->device_id = 0x1eb8;
        d->class_code = 0x030200;
        d->iommu_group = group;
        d->driver = driver ? strdup(driver) : NULL;
        d->vf_index = -1;
        return d;
}

static void type_set(MdevType *t, const char *id, const char *name, uint32_t avail) {
        t->id = strdup(id);
        t->name = name ? strdup(name) : NULL;
        t->device_api = strdup("vfio-pci");
        t->available_instances = avail;
}

static MdevParent *parent(const char *name, bool pci) {
        MdevParent *p = calloc(1, sizeof(MdevParent));
        assert_non_null(p);
        p->name = strdup(name);
        p->is_pci = pci;
        p->types = calloc(2, sizeof(MdevType));
        p->n_types = 2;
        if (pci) {
                type_set(&p->types[0], "nvidia-222", "GRID T4-1Q", 4);
                type_set(&p->types[1], "nvidia-223", "GRID T4-2Q", 2);
        } else {
                type_set(&p->types[0], "mtty-1", "Single port serial", 2);
                type_set(&p->types[1], "mtty-2", "Dual port serial", 1);
        }
        return p;
}

static VgpuVf *vf(const char *address, uint32_t current) {
        VgpuVf *v = calloc(1, sizeof(VgpuVf));
        assert_non_null(v);
        strcpy(v->address, address);
        v->physfn = strdup(PF);
        v->current_type = current;
        if (current == 0) {
                v->creatable = calloc(2, sizeof(VgpuType));
                v->n_creatable = 2;
                v->creatable[0] = (VgpuType){ 557, strdup("NVIDIA A40-1Q") };
                v->creatable[1] = (VgpuType){ 558, strdup("NVIDIA A40-2Q") };
        }
        return v;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        strcpy(f->dir, "/tmp/test-mdev-plan-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->dirs[0] = f->dir;
        snprintf(f->state_dir, sizeof(f->state_dir), "%s/state", f->dir);
        assert_int_equal(mkdir(f->state_dir, 0755), 0);

        f->devices[0] = dev(GPU1, 41, "nvidia");
        f->devices[1] = dev(GPU2, 42, "nvidia");
        f->devices[2] = dev(PF, 81, "nvidia");
        f->devices[2]->sriov_role = SRIOV_ROLE_PF;
        f->devices[2]->sriov_total_vfs = 16;
        f->devices[2]->sriov_num_vfs = 3;
        const char *vfs[] = { VF4, VF5, VF6 };
        for (int i = 0; i < 3; i++) {
                f->devices[3 + i] = dev(vfs[i], 84 + i, "nvidia");
                f->devices[3 + i]->sriov_role = SRIOV_ROLE_VF;
                f->devices[3 + i]->physfn = strdup(PF);
                f->devices[3 + i]->vf_index = i;
                assert_int_equal(strv_extend(&f->devices[2]->virtfns, vfs[i]), 0);
        }
        f->parents[0] = parent(GPU1, true);
        f->parents[1] = parent(GPU2, true);
        f->parents[2] = parent("mtty", false);
        f->vfs[0] = vf(VF4, 0);
        f->vfs[1] = vf(VF5, 0);
        f->vfs[2] = vf(VF6, 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        for (size_t i = 0; i < ELEMENTSOF(f->devices); i++)
                pci_device_free(f->devices[i]);
        for (size_t i = 0; i < ELEMENTSOF(f->parents); i++)
                mdev_parent_free(f->parents[i]);
        for (size_t i = 0; i < f->n_mdevs; i++)
                mdev_free(f->mdevs[i]);
        for (size_t i = 0; i < ELEMENTSOF(f->vfs); i++)
                vgpu_vf_free(f->vfs[i]);
        for (size_t i = 0; i < f->n_holders; i++) {
                free(f->holders[i].comm);
                free(f->holders[i].node);
        }
        strv_free(f->owned_mdevs);
        strv_free(f->owned_vgpus);
        vgpu_type_names_free(f->names);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static void put(Fixture *f, const char *name, const char *content) {
        char path[256];
        FILE *file;

        snprintf(path, sizeof(path), "%s/%s", f->dir, name);
        file = fopen(path, "we");
        assert_non_null(file);
        fputs(content, file);
        assert_int_equal(fclose(file), 0);
}

static void add_mdev(Fixture *f, const char *uuid, const char *parent_name, const char *type, int group) {
        Mdev *m = calloc(1, sizeof(Mdev));
        assert_non_null(m);
        strcpy(m->uuid, uuid);
        m->parent = strdup(parent_name);
        m->parent_is_pci = !streq(parent_name, "mtty");
        m->type_id = strdup(type);
        m->iommu_group = group;
        f->mdevs[f->n_mdevs++] = m;
}

static void add_holder(Fixture *f, pid_t pid, const char *comm, const char *node) {
        f->holders[f->n_holders++] = (Holder){ .pid = pid, .comm = strdup(comm), .node = strdup(node) };
}

/* Resolve the drop-ins in f->dir with |uuids|; the resolution is returned, its errors checked by callers. */
static DesiredResolution *resolve(Fixture *f, DesiredState **ret_state, MdevUuids *uuids) {
        DesiredState *s = NULL;
        DesiredResolution *res = NULL;

        assert_int_equal(desired_state_load(f->dirs, &s), 0);
        if (s->errors)
                print_error("parse: %s\n", s->errors[0]);
        assert_null(s->errors);
        assert_int_equal(desired_state_resolve_devices(s, (const PciDevice *const *)f->devices, 6, &res), 0);
        MdevResolveInput in = {
                .devices = (const PciDevice *const *)f->devices,
                .n_devices = 6,
                .parents = (const MdevParent *const *)f->parents,
                .n_parents = 3,
                .mdevs = (const Mdev *const *)f->mdevs,
                .n_mdevs = f->n_mdevs,
                .vgpu_vfs = (const VgpuVf *const *)f->vfs,
                .n_vgpu_vfs = 3,
                .owned_mdevs = f->owned_mdevs,
                .vgpu_type_names = f->names,
        };
        assert_int_equal(desired_state_resolve_mdevs(s, &in, uuids, res), 0);
        *ret_state = s;
        return res;
}

static Plan *plan(Fixture *f, const DesiredResolution *res) {
        Plan *p = NULL;
        PlannerInput in = {
                .desired = res,
                .devices = (const PciDevice *const *)f->devices,
                .n_devices = 6,
                .holders = f->holders,
                .n_holders = f->n_holders,
                .mdevs = (const Mdev *const *)f->mdevs,
                .n_mdevs = f->n_mdevs,
                .mdev_parents = (const MdevParent *const *)f->parents,
                .n_mdev_parents = 3,
                .vgpu_vfs = (const VgpuVf *const *)f->vfs,
                .n_vgpu_vfs = 3,
                .owned_mdevs = f->owned_mdevs,
                .owned_vgpus = f->owned_vgpus,
        };
        assert_int_equal(planner_plan(&in, &p), 0);
        return p;
}

static const char *strjoina_test(const char *a, const char *b) {
        static char buf[256];
        snprintf(buf, sizeof(buf), "%s%s", a, b);
        return buf;
}

static bool streq_ptr_test(const char *a, const char *b) {
        return a && b ? streq(a, b) : a == b;
}

static size_t count_on(const DesiredResolution *res, const char *parent_name, const char *type) {
        size_t n = 0;
        for (size_t i = 0; i < res->n_mdevs; i++)
                if (streq_ptr_test(res->mdevs[i].parent, parent_name) && streq(res->mdevs[i].type_id, type))
                        n++;
        return n;
}

static void free_all(DesiredState *s, DesiredResolution *res, Plan *p) {
        plan_free(p);
        desired_resolution_free(res);
        desired_state_free(s);
}

/* Count= over two GPUs, by name, spread; the same rule gets the same UUIDs after a "restart". */
static void test_spread_and_stable_uuids(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;
        char first[3][MDEV_UUID_STRING_MAX];
        char *error = NULL;

        put(f, "50-gpu.conf", "[Match]\nVendor=10de\nClass=0x030200\n[Mdev]\nType=GRID T4-1Q\nCount=3\n");
        assert_int_equal(mdev_uuids_load(f->state_dir, &u, &error), 0);
        res = resolve(f, &s, u);
        assert_null(res->errors);
        assert_int_equal(res->n_mdevs, 3);
        /* PF (0000:81:00.0) matches [Match] but is no mdev parent: the two GPUs only. */
        assert_int_equal(count_on(res, GPU1, "nvidia-222"), 2);
        assert_int_equal(count_on(res, GPU2, "nvidia-222"), 1);
        for (size_t i = 0; i < 3; i++) {
                strcpy(first[i], res->mdevs[i].uuid);
                assert_false(res->mdevs[i].named);
                assert_non_null(strstr(res->mdevs[i].source, "50-gpu.conf:5"));
        }
        assert_true(mdev_uuids_is_dirty(u));
        assert_int_equal(mdev_uuids_save(u), 1);
        u = mdev_uuids_free(u);
        free_all(s, res, NULL);

        /* Restart: the file is read back, the same three UUIDs come out (sorted the same). */
        assert_int_equal(mdev_uuids_load(f->state_dir, &u, &error), 0);
        res = resolve(f, &s, u);
        assert_int_equal(res->n_mdevs, 3);
        for (size_t i = 0; i < 3; i++)
                assert_string_equal(res->mdevs[i].uuid, first[i]);
        assert_false(mdev_uuids_is_dirty(u));

        /* The plan creates all three, each one transaction, after nothing else. */
        Plan *p = plan(f, res);
        assert_int_equal(p->n_actions, 3);
        assert_int_equal(p->n_transactions, 3);
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(p->actions[i].type, PLAN_ACTION_MDEV_CREATE);
                assert_string_equal(p->actions[i].mdev_type, "nvidia-222");
                assert_string_equal(p->actions[i].address, p->actions[i].parent); /* PCI parent */
        }
        assert_int_equal(p->n_mdevs, 3);
        assert_int_equal(p->mdevs[0].state, DEVICE_STATE_PENDING);
        assert_false(plan_is_converged(p));
        free_all(s, res, p);
        mdev_uuids_free(u);
}

static void test_pack_and_one_type_per_gpu(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        /* pack: all three on the first GPU by name (it takes 4) */
        put(f, "50-pack.conf",
            "[Mdev]\nParent=" GPU2 "\nParent=" GPU1 "\nType=nvidia-222\nCount=3\nPlacement=pack\n");
        /* another type: GPU1 now carries nvidia-222 (NVIDIA: one type per GPU), so GPU2 */
        put(f, "60-other.conf", "[Match]\nVendor=10de\n[Mdev]\nType=GRID T4-2Q\nUUID=" U1 "\n");
        res = resolve(f, &s, u);
        assert_null(res->errors);
        assert_int_equal(count_on(res, GPU1, "nvidia-222"), 3);
        const DesiredMdev *m = desired_resolution_get_mdev(res, U1);
        assert_non_null(m);
        assert_true(m->named);
        assert_string_equal(m->parent, GPU2);
        assert_string_equal(m->type_id, "nvidia-223");
        free_all(s, res, NULL);

        /* An active nvidia-223 instance on GPU2 (foreign) blocks GPU2 for nvidia-222: Count beyond. */
        add_mdev(f, U2, GPU2, "nvidia-223", 52);
        assert_int_equal(unlink(strjoina_test(f->dir, "/60-other.conf")), 0);
        put(f, "50-pack.conf", "[Match]\nVendor=10de\n[Mdev]\nType=nvidia-222\nCount=5\n");
        res = resolve(f, &s, u);
        assert_int_equal(res->n_mdevs, 0);
        assert_int_equal(strv_length(res->errors), 1);
        assert_non_null(
                strstr(res->errors[0],
                       "/50-pack.conf:4: Count=5: the matching parents can take 4 more of type "
                       "nvidia-222, not 5"));
        free_all(s, res, NULL);
        mdev_uuids_free(u);
}

/* Bad rules add nothing and say why with FILE:LINE; the other rules still resolve. */
static void test_resolution_errors(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        add_mdev(f, U2, "mtty", "mtty-1", 60); /* made by hand: foreign */
        put(f, "10-unknown.conf", "[Mdev]\nParent=mtty\nType=mtty-9\n");
        put(f, "20-collide.conf", "[Mdev]\nParent=mtty\nType=mtty-2\nUUID=" U2 "\n");
        put(f, "30-beyond.conf", "[Mdev]\nParent=mtty\n\nType=mtty-2\nCount=2\n");
        put(f, "40-good.conf", "[Mdev]\nParent=mtty\nType=Single port serial\nUUID=" U3 "\n");
        res = resolve(f, &s, u);
        assert_int_equal(strv_length(res->errors), 3);
        assert_string_equal(
                res->errors[0],
                strjoina_test(f->dir, "/10-unknown.conf:3: Type=mtty-9: no such type id or name on mtty"));
        assert_string_equal(
                res->errors[1],
                strjoina_test(
                        f->dir,
                        "/20-collide.conf:3: UUID=" U2 ": collides with an mdev hostdevd did not create "
                        "(parent mtty, type mtty-1), which it never touches"));
        assert_string_equal(
                res->errors[2],
                strjoina_test(
                        f->dir,
                        "/30-beyond.conf:4: Count=2: the matching parents can take 1 more of type mtty-2, not 2"));
        assert_int_equal(res->n_mdevs, 1);
        assert_string_equal(res->mdevs[0].uuid, U3);
        assert_string_equal(res->mdevs[0].type_id, "mtty-1");
        free_all(s, res, NULL);
        mdev_uuids_free(u);
}

/* No parent yet (mtty not loaded, a GPU driver late): the instances wait, nothing is written. */
static void test_waits_for_parent(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;
        Plan *p;

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        mdev_parent_free(f->parents[2]);
        f->parents[2] = parent("mtty-not-loaded", false);
        put(f, "50-mtty.conf", "[Mdev]\nParent=mtty\nType=mtty-2\nUUID=" U1 "\nAttribute=a=1\n");
        res = resolve(f, &s, u);
        assert_null(res->errors);
        assert_int_equal(res->n_mdevs, 1);
        assert_null(res->mdevs[0].parent);
        p = plan(f, res);
        assert_int_equal(p->n_actions, 0);
        assert_int_equal(p->n_mdevs, 1);
        assert_int_equal(p->mdevs[0].state, DEVICE_STATE_PENDING);
        _cleanup_free_ char *text = plan_to_string(p);
        char expected[512];
        snprintf(
                expected, sizeof(expected),
                "mdev " U1
                " pending (hostdevd, -/mtty-2): waits for a parent with type mtty-2 (%s/50-mtty.conf:3)\n",
                f->dir);
        assert_string_equal(text, expected);
        free_all(s, res, p);
        mdev_uuids_free(u);
}

/* Who may be touched: adopted (no write), owned and unwanted (removed), held (blocked), foreign (shown). */
static void test_ownership_decisions(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;
        Plan *p;
        const PlanMdev *pm;
        char expected[2048];

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        add_mdev(f, U1, "mtty", "mtty-1", 60); /* named by UUID= with this type: adopted */
        add_mdev(f, U2, "mtty", "mtty-1", 61); /* created by hostdevd, no rule left: removed */
        add_mdev(f, U3, GPU1, "nvidia-222", 62); /* created by hostdevd, no rule left, but a VM has it */
        add_mdev(f, "44444444-4444-4444-8444-444444444444", GPU2, "nvidia-222", 63); /* by hand: foreign */
        assert_int_equal(strv_extend(&f->owned_mdevs, U2), 0);
        assert_int_equal(strv_extend(&f->owned_mdevs, U3), 0);
        add_holder(f, 4242, "qemu-system-x86", "/dev/vfio/62");
        put(f, "50-mtty.conf", "[Mdev]\nParent=mtty\nType=mtty-1\nUUID=" U1 "\n");
        res = resolve(f, &s, u);
        assert_null(res->errors);
        p = plan(f, res);

        _cleanup_free_ char *text = plan_to_string(p);
        snprintf(
                expected, sizeof(expected),
                "T1 mdev-remove mtty " U2 ": hostdevd created it and no rule wants it any more\n"
                "mdev " U1 " converged (hostdevd, mtty/mtty-1)\n"
                "mdev " U2 " pending (hostdevd, mtty/mtty-1): remove: no rule wants it any more\n"
                "mdev " U3 " blocked (hostdevd, " GPU1
                "/nvidia-222): removal (no rule wants it any more) waits: "
                "held by pid 4242 (qemu-system-x86) via /dev/vfio/62\n"
                "mdev 44444444-4444-4444-8444-444444444444 converged (foreign, " GPU2 "/nvidia-222)\n");
        assert_string_equal(text, expected);
        pm = plan_get_mdev(p, "44444444-4444-4444-8444-444444444444");
        assert_non_null(pm);
        assert_int_equal(pm->owner, MDEV_OWNER_FOREIGN);
        assert_null(pm->source);
        pm = plan_get_mdev(p, U1);
        assert_non_null(strstr(pm->source, "50-mtty.conf:3"));
        free_all(s, res, p);

        /* The rule now wants U1 as mtty-2. Adopted for a UUID= rule, U1 is hostdevd's (the reconciler
         * records the adoption), so it is removed and created again (one transaction), with its
         * attributes after the create. */
        assert_int_equal(strv_extend(&f->owned_mdevs, U1), 0);
        put(f, "50-mtty.conf", "[Mdev]\nParent=mtty\nType=mtty-2\nUUID=" U1 "\nAttribute=x=1\n");
        f->n_holders = 0;
        free(f->holders[0].comm);
        free(f->holders[0].node);
        res = resolve(f, &s, u);
        assert_null(res->errors);
        p = plan(f, res);
        assert_int_equal(p->actions[0].type, PLAN_ACTION_MDEV_REMOVE);
        assert_string_equal(p->actions[0].uuid, U1);
        assert_int_equal(p->actions[1].type, PLAN_ACTION_MDEV_CREATE);
        assert_string_equal(p->actions[1].uuid, U1);
        assert_string_equal(p->actions[1].parent, "mtty");
        assert_string_equal(p->actions[1].mdev_type, "mtty-2");
        assert_string_equal(p->actions[1].address, ""); /* not a PCI parent */
        assert_int_equal(p->actions[2].type, PLAN_ACTION_MDEV_SET_ATTR);
        assert_string_equal(p->actions[2].attr_name, "x");
        assert_string_equal(p->actions[2].attr_value, "1");
        assert_int_equal(p->actions[0].transaction, p->actions[2].transaction);
        /* U2 and U3 are removed too, each on its own. */
        assert_int_equal(p->n_actions, 5);
        assert_int_equal(p->n_transactions, 3);
        free_all(s, res, p);
        mdev_uuids_free(u);
}

/* Type= changes on a GPU that allows one type: the old instances (hostdevd's) are removed first, the new
 * ones wait for the next plan instead of failing for lack of room. A foreign one gives no such room. */
static void test_type_change_on_one_gpu(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;
        Plan *p;

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        /* As NVIDIA shows it: nvidia-222 active on GPU1, so nvidia-223 has no instance left there. */
        f->parents[0]->types[1].available_instances = 0;
        add_mdev(f, U1, GPU1, "nvidia-222", 51);
        assert_int_equal(strv_extend(&f->owned_mdevs, U1), 0);
        put(f, "50-gpu.conf", "[Mdev]\nParent=" GPU1 "\nType=nvidia-223\nUUID=" U2 "\n");
        res = resolve(f, &s, u);
        assert_null(res->errors);
        assert_int_equal(res->n_mdevs, 1);
        assert_null(res->mdevs[0].parent);
        p = plan(f, res);
        assert_int_equal(p->n_actions, 1);
        assert_int_equal(p->actions[0].type, PLAN_ACTION_MDEV_REMOVE);
        assert_string_equal(p->actions[0].uuid, U1);
        assert_int_equal(plan_get_mdev(p, U2)->state, DEVICE_STATE_PENDING);
        free_all(s, res, p);

        /* A later file keeps U1: no room will come, so the error stands and U1 stays. */
        put(f, "60-keep.conf", "[Mdev]\nParent=" GPU1 "\nType=nvidia-222\nUUID=" U1 "\n");
        res = resolve(f, &s, u);
        assert_int_equal(strv_length(res->errors), 1);
        assert_non_null(strstr(
                res->errors[0],
                "50-gpu.conf:3: UUID=" U2 ": the matching parents can take 0 more of type nvidia-223"));
        p = plan(f, res);
        assert_int_equal(p->n_actions, 0);
        assert_int_equal(plan_get_mdev(p, U1)->state, DEVICE_STATE_CONVERGED);
        free_all(s, res, p);
        assert_int_equal(unlink(strjoina_test(f->dir, "/60-keep.conf")), 0);

        /* Not hostdevd's: a clear error, nothing removed. */
        strv_free(f->owned_mdevs);
        f->owned_mdevs = NULL;
        res = resolve(f, &s, u);
        assert_int_equal(strv_length(res->errors), 1);
        assert_non_null(strstr(res->errors[0], "the matching parents can take 0 more of type nvidia-223"));
        p = plan(f, res);
        assert_int_equal(p->n_actions, 0);
        assert_int_equal(plan_get_mdev(p, U1)->owner, MDEV_OWNER_FOREIGN);
        free_all(s, res, p);
        mdev_uuids_free(u);
}

/* A parent whose driver this plan changes: the create waits for the next plan. */
static void test_mdev_after_driver(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;
        Plan *p;

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        free(f->devices[1]->driver);
        f->devices[1]->driver = strdup("nouveau");
        put(f, "40-drv.conf", "[Match]\nAddress=" GPU2 "\n[Device]\nDriver=nvidia\n");
        put(f, "50-gpu.conf", "[Mdev]\nParent=" GPU2 "\nType=nvidia-223\nUUID=" U1 "\n");
        res = resolve(f, &s, u);
        assert_null(res->errors);
        p = plan(f, res);
        for (size_t i = 0; i < p->n_actions; i++)
                assert_false(plan_action_type_is_mdev(p->actions[i].type));
        const PlanMdev *pm = plan_get_mdev(p, U1);
        assert_non_null(pm);
        assert_int_equal(pm->state, DEVICE_STATE_PENDING);
        assert_non_null(strstr(pm->reason, "waits for " GPU2 " to converge first (pending)"));
        free_all(s, res, p);
        mdev_uuids_free(u);
}

/* [VGPU]: Count per GPU, the VF already carrying the type first; foreign VFs left alone. */
static void test_vgpu(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;
        Plan *p;
        char expected[2048];

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        vgpu_vf_free(f->vfs[1]);
        f->vfs[1] = vf(VF5, 557); /* carries the type already */
        vgpu_vf_free(f->vfs[2]);
        f->vfs[2] = vf(VF6, 558); /* someone else's */
        put(f, "50-vgpu.conf", "[Match]\nPF=" PF "\n[VGPU]\nType=NVIDIA A40-1Q\nCount=2\n");
        res = resolve(f, &s, u);
        assert_null(res->errors);
        assert_int_equal(res->n_vgpus, 2);
        assert_string_equal(res->vgpus[0].address, VF4);
        assert_string_equal(res->vgpus[1].address, VF5);
        assert_int_equal(res->vgpus[0].type_id, 557);
        assert_string_equal(res->vgpus[0].type_name, "NVIDIA A40-1Q");
        p = plan(f, res);
        _cleanup_free_ char *text = plan_to_string(p);
        snprintf(
                expected, sizeof(expected),
                "T1 set-vgpu-type " VF4 " 557: [VGPU] Type=NVIDIA A40-1Q (%s/50-vgpu.conf:4)\n"
                "vgpu " VF4 " pending (hostdevd, -/557): vGPU type 0 -> 557 (%s/50-vgpu.conf:4)\n"
                "vgpu " VF5 " converged (hostdevd, -/557)\n"
                "vgpu " VF6 " converged (foreign, -/558)\n",
                f->dir, f->dir);
        assert_string_equal(text, expected);
        free_all(s, res, p);

        /* No rule: what hostdevd set is cleared (not while held); the foreign one stays. */
        assert_int_equal(unlink(strjoina_test(f->dir, "/50-vgpu.conf")), 0);
        put(f, "10-other.conf", "[Match]\nAddress=" GPU1 "\n[Device]\nDriver=nvidia\n");
        assert_int_equal(strv_extend(&f->owned_vgpus, VF5), 0);
        res = resolve(f, &s, u);
        p = plan(f, res);
        assert_int_equal(p->n_actions, 1);
        assert_int_equal(p->actions[0].type, PLAN_ACTION_SET_VGPU_TYPE);
        assert_string_equal(p->actions[0].address, VF5);
        assert_int_equal(p->actions[0].value, 0);
        free_all(s, res, p);

        add_holder(f, 77, "qemu", "/dev/vfio/85");
        res = resolve(f, &s, u);
        p = plan(f, res);
        assert_int_equal(p->n_actions, 0);
        const PlanMdev *pm = plan_get_vgpu(p, VF5);
        assert_non_null(pm);
        assert_int_equal(pm->state, DEVICE_STATE_BLOCKED);
        assert_string_equal(pm->reason, "vGPU type 557 -> 0 waits: held by pid 77 (qemu) via /dev/vfio/85");
        free_all(s, res, p);
        mdev_uuids_free(u);
}

/* [VGPU] Type= by name once every VF carries the type: creatable_vgpu_types lists it nowhere, the name
 * learnt from an earlier read resolves it (per GPU), and the plan has nothing to do. */
static void test_vgpu_name_learnt(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;
        Plan *p;

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        /* Before: the VFs list both types; the table learns them (once). */
        assert_int_equal(vgpu_type_names_learn(&f->names, (const VgpuVf *const *)f->vfs, 3), 2);
        assert_int_equal(vgpu_type_names_learn(&f->names, (const VgpuVf *const *)f->vfs, 3), 0);
        assert_string_equal(vgpu_type_names_get(f->names, PF, 558), "NVIDIA A40-2Q");
        assert_int_equal(vgpu_type_names_find(f->names, PF, "NVIDIA A40-1Q"), 557);
        assert_null(vgpu_type_names_get(f->names, "0000:82:00.0", 558)); /* another GPU: not learnt */
        assert_int_equal(vgpu_type_names_find(f->names, NULL, "NVIDIA A40-1Q"), 0);

        /* Now: every VF carries 557, none lists a type. */
        for (size_t i = 0; i < 3; i++) {
                char address[PCI_ADDRESS_STRING_MAX];
                strcpy(address, f->vfs[i]->address);
                vgpu_vf_free(f->vfs[i]);
                f->vfs[i] = vf(address, 557);
                assert_int_equal(f->vfs[i]->n_creatable, 0);
                assert_int_equal(strv_extend(&f->owned_vgpus, address), 0);
        }
        assert_int_equal(vgpu_type_names_learn(&f->names, (const VgpuVf *const *)f->vfs, 3), 0);
        put(f, "50-vgpu.conf", "[Match]\nPF=" PF "\n[VGPU]\nType=NVIDIA A40-1Q\n");
        res = resolve(f, &s, u);
        assert_null(res->errors);
        assert_int_equal(res->n_vgpus, 3);
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(res->vgpus[i].type_id, 557);
                assert_string_equal(res->vgpus[i].type_name, "NVIDIA A40-1Q");
        }
        p = plan(f, res);
        assert_int_equal(p->n_actions, 0);
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(plan_get_vgpu(p, f->vfs[i]->address)->state, DEVICE_STATE_CONVERGED);
        free_all(s, res, p);

        /* Without what was learnt (a fresh table): the name is unknown, an error naming it. */
        f->names = vgpu_type_names_free(f->names);
        res = resolve(f, &s, u);
        assert_int_equal(strv_length(res->errors), 1);
        assert_non_null(strstr(res->errors[0], "Type=NVIDIA A40-1Q: no matching VF lists this vGPU type"));
        assert_int_equal(res->n_vgpus, 0);
        free_all(s, res, NULL);
        mdev_uuids_free(u);
}

/* An unresolved rule holds back removals on the parents (VFs) it could select, and only there. */
static void test_unresolved_rule_holds_its_parents(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;
        Plan *p;
        const PlanMdev *pm;

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        add_mdev(f, U1, "mtty", "mtty-1", 60);
        add_mdev(f, U2, GPU1, "nvidia-222", 61);
        add_mdev(f, U3, GPU2, "nvidia-222", 62);
        assert_int_equal(strv_extend(&f->owned_mdevs, U1), 0);
        assert_int_equal(strv_extend(&f->owned_mdevs, U2), 0);
        assert_int_equal(strv_extend(&f->owned_mdevs, U3), 0);

        /* [Match] selects GPU2 only; the type is unknown: GPU2 held; U1, U2 removed. */
        put(f, "50-bad.conf", "[Match]\nAddress=" GPU2 "\n[Mdev]\nType=nvidia-999\n");
        res = resolve(f, &s, u);
        assert_int_equal(strv_length(res->errors), 1);
        assert_int_equal(strv_length(res->held), 1);
        assert_string_equal(res->held[0], GPU2);
        assert_string_equal(desired_resolution_held_by(res, GPU2), strjoina_test(f->dir, "/50-bad.conf:4"));
        assert_null(desired_resolution_held_by(res, GPU1));
        p = plan(f, res);
        assert_int_equal(p->n_actions, 2);
        assert_string_equal(p->actions[0].uuid, U1);
        assert_string_equal(p->actions[1].uuid, U2);
        pm = plan_get_mdev(p, U3);
        assert_int_equal(pm->state, DEVICE_STATE_PENDING);
        char expected[512];
        snprintf(
                expected, sizeof(expected),
                "removal (no rule wants it any more) waits: the rule at %s/50-bad.conf:4 cannot be resolved "
                "(ConfigErrors)",
                f->dir);
        assert_string_equal(pm->reason, expected);
        free_all(s, res, p);

        /* Parent= names mtty (and a parent not present): those two held. */
        put(f, "50-bad.conf", "[Mdev]\nParent=mtty\nParent=gone\nType=mtty-9\n");
        res = resolve(f, &s, u);
        assert_int_equal(strv_length(res->errors), 1);
        assert_int_equal(strv_length(res->held), 2);
        assert_non_null(desired_resolution_held_by(res, "mtty"));
        assert_non_null(desired_resolution_held_by(res, "gone"));
        p = plan(f, res);
        assert_int_equal(p->n_actions, 2);
        assert_int_equal(plan_get_mdev(p, U1)->state, DEVICE_STATE_PENDING);
        free_all(s, res, p);

        /* [Match] selects both GPUs (vendor): both held. A good rule elsewhere is not blocked: its create
         * goes on, and U1 on mtty is removed. */
        put(f, "50-bad.conf", "[Match]\nVendor=10de\n[Mdev]\nType=nvidia-999\n");
        put(f, "60-good.conf",
            "[Mdev]\nParent=mtty\nType=mtty-2\nUUID=44444444-4444-4444-8444-444444444444\n");
        res = resolve(f, &s, u);
        assert_int_equal(strv_length(res->errors), 1);
        assert_int_equal(strv_length(res->held), 2);
        assert_non_null(desired_resolution_held_by(res, GPU1));
        assert_non_null(desired_resolution_held_by(res, GPU2));
        p = plan(f, res);
        assert_int_equal(p->n_actions, 2);
        assert_int_equal(p->actions[0].type, PLAN_ACTION_MDEV_REMOVE);
        assert_string_equal(p->actions[0].uuid, U1);
        assert_int_equal(p->actions[1].type, PLAN_ACTION_MDEV_CREATE);
        free_all(s, res, p);
        assert_int_equal(unlink(strjoina_test(f->dir, "/50-bad.conf")), 0);
        assert_int_equal(unlink(strjoina_test(f->dir, "/60-good.conf")), 0);

        /* [VGPU] by a name no VF lists: its VFs are held (VF5's type hostdevd set is not cleared). */
        vgpu_vf_free(f->vfs[1]);
        f->vfs[1] = vf(VF5, 557);
        assert_int_equal(strv_extend(&f->owned_vgpus, VF5), 0);
        put(f, "50-vgpu.conf", "[Match]\nAddress=" VF5 "\n[VGPU]\nType=NVIDIA A40-9Q\n");
        res = resolve(f, &s, u);
        assert_int_equal(strv_length(res->errors), 1);
        assert_int_equal(strv_length(res->held), 1);
        assert_string_equal(res->held[0], VF5);
        p = plan(f, res);
        for (size_t i = 0; i < p->n_actions; i++)
                assert_int_not_equal(p->actions[i].type, PLAN_ACTION_SET_VGPU_TYPE);
        assert_int_equal(plan_get_vgpu(p, VF5)->state, DEVICE_STATE_PENDING);
        free_all(s, res, p);
        mdev_uuids_free(u);
}

static void test_strings(void **state) {
        assert_string_equal(plan_action_type_to_string(PLAN_ACTION_MDEV_CREATE), "mdev-create");
        assert_string_equal(plan_action_type_to_string(PLAN_ACTION_MDEV_SET_ATTR), "mdev-set-attr");
        assert_string_equal(plan_action_type_to_string(PLAN_ACTION_MDEV_REMOVE), "mdev-remove");
        assert_string_equal(plan_action_type_to_string(PLAN_ACTION_SET_VGPU_TYPE), "set-vgpu-type");
        assert_int_equal(plan_action_type_from_string("mdev-remove"), PLAN_ACTION_MDEV_REMOVE);
        assert_string_equal(mdev_owner_to_string(MDEV_OWNER_FOREIGN), "foreign");
        assert_int_equal(mdev_owner_from_string("hostdevd"), MDEV_OWNER_HOSTDEVD);
        assert_int_equal(mdev_owner_from_string("x"), _MDEV_OWNER_INVALID);
        assert_false(plan_action_type_is_mdev(PLAN_ACTION_VERIFY));
}

/* Safety rule 4: a VM holding an mdev holds its parent. Changing the parent's driver (which destroys
 * every mdev on it), or the VF count of a PF whose VF is the parent, waits, naming the holder. */
static void test_held_mdev_holds_parent(void **state) {
        Fixture *f = *state;
        DesiredState *s;
        DesiredResolution *res;
        MdevUuids *u = NULL;
        Plan *p;
        const PlanDevice *pd;

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        add_mdev(f, U3, GPU1, "nvidia-222", 62); /* foreign: no rule touches it */
        add_mdev(f, U2, VF4, "nvidia-557", 63);
        put(f, "10-gpu.conf", "[Match]\nAddress=" GPU1 "\n[Device]\nDriver=vfio-pci\n");
        put(f, "20-pf.conf", "[Match]\nAddress=" PF "\n[SRIOV]\nNumVFs=0\n");

        /* Nobody holds them: both changes are planned. */
        res = resolve(f, &s, u);
        p = plan(f, res);
        pd = plan_get_device(p, GPU1);
        assert_non_null(pd);
        assert_int_equal(pd->state, DEVICE_STATE_PENDING);
        pd = plan_get_device(p, PF);
        assert_non_null(pd);
        assert_int_equal(pd->state, DEVICE_STATE_PENDING);
        assert_true(p->n_actions >= 2);
        free_all(s, res, p);

        add_holder(f, 4242, "qemu-system-x86", "/dev/vfio/62");
        add_holder(f, 77, "qemu", "/dev/vfio/63");
        res = resolve(f, &s, u);
        p = plan(f, res);
        for (size_t i = 0; i < p->n_actions; i++)
                assert_true(
                        !p->actions[i].address ||
                        (!streq(p->actions[i].address, GPU1) && !streq(p->actions[i].address, PF)));
        pd = plan_get_device(p, GPU1);
        assert_non_null(pd);
        assert_int_equal(pd->state, DEVICE_STATE_BLOCKED);
        assert_non_null(strstr(pd->reason, "pid 4242 (qemu-system-x86) via /dev/vfio/62 of mdev " U3));
        pd = plan_get_device(p, PF);
        assert_non_null(pd);
        assert_int_equal(pd->state, DEVICE_STATE_BLOCKED);
        assert_non_null(strstr(pd->reason, "VF " VF4 " held by pid 77 (qemu) via /dev/vfio/63 of mdev " U2));
        free_all(s, res, p);
        mdev_uuids_free(u);
}

/* The learnt names survive a restart (the state file), and a damaged file is refused naming the file
 * and the bad value, loading nothing. */
static void test_vgpu_names_persisted(void **state) {
        Fixture *f = *state;
        VgpuTypeNames *loaded = NULL;
        char *error = NULL;

        /* No file yet: an empty table. */
        assert_int_equal(vgpu_type_names_load(f->state_dir, &loaded, &error), 0);
        assert_null(error);
        assert_null(vgpu_type_names_get(loaded, PF, 557));
        loaded = vgpu_type_names_free(loaded);

        assert_int_equal(vgpu_type_names_learn(&f->names, (const VgpuVf *const *)f->vfs, 3), 2);
        assert_int_equal(vgpu_type_names_save(f->names, f->state_dir), 0);
        assert_int_equal(vgpu_type_names_load(f->state_dir, &loaded, &error), 0);
        assert_string_equal(vgpu_type_names_get(loaded, PF, 557), "NVIDIA A40-1Q");
        assert_int_equal(vgpu_type_names_find(loaded, PF, "NVIDIA A40-2Q"), 558);
        assert_null(vgpu_type_names_get(loaded, "0000:82:00.0", 557));
        /* Learning what was loaded is nothing new (no save needed). */
        assert_int_equal(vgpu_type_names_learn(&loaded, (const VgpuVf *const *)f->vfs, 3), 0);
        loaded = vgpu_type_names_free(loaded);

        const struct {
                const char *text, *names;
        } bad[] = {
                { "{\"version\": 1, \"gpus\": {\"" PF "\": {\"x557\": \"A\"}}}", "\"x557\"" },
                { "{\"version\": 1, \"gpus\": {\"" PF "\": {\"0\": \"A\"}}}", "\"0\"" },
                { "{\"version\": 1, \"gpus\": {\"" PF "\": {\"557\": 3}}}", "\"557\"" },
                { "{\"version\": 1, \"gpus\": {\"" PF "\": {\"4294967296\": \"A\"}}}", "4294967296" },
                { "{\"version\": 1, \"gpus\": {\"not-pci\": {}}}", "not-pci" },
                { "{\"version\": 1, \"gpus\": []}", "\"gpus\"" },
                { "{\"version\": 2, \"gpus\": {}}", "vgpu-type-names.json" },
                { "not json", "vgpu-type-names.json" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char path[256];
                FILE *file;

                snprintf(path, sizeof(path), "%s/vgpu-type-names.json", f->state_dir);
                file = fopen(path, "we");
                assert_non_null(file);
                fputs(bad[i].text, file);
                assert_int_equal(fclose(file), 0);
                assert_int_equal(vgpu_type_names_load(f->state_dir, &loaded, &error), -EUCLEAN);
                assert_null(loaded);
                assert_non_null(error);
                if (!strstr(error, bad[i].names) || !strstr(error, "vgpu-type-names.json"))
                        fail_msg("case %zu: %s", i, error);
                error = mfree(error);
        }
}

/* A resolution error names the line of the section that failed: the [VGPU] Type= of a rule that has an
 * [Mdev] section as well (the parser refuses such a file today; the resolver must not rely on it). */
static void test_rule_error_names_failing_section(void **state) {
        Fixture *f = *state;
        DesiredState *s = NULL;
        DesiredResolution *res = NULL;
        MdevUuids *u = NULL;
        DesiredMdevRule mdev_part;

        assert_int_equal(mdev_uuids_new(NULL, &u), 0);
        put(f, "40-mdev.conf", "[Mdev]\nParent=mtty\nType=mtty-1\nUUID=" U1 "\n");
        put(f, "50-vgpu.conf", "[Match]\nPF=" PF "\n\n[VGPU]\nType=NVIDIA A99-1Q\n");
        assert_int_equal(desired_state_load(f->dirs, &s), 0);
        assert_null(s->errors);
        assert_int_equal(s->n_rules, 2);
        /* The [VGPU] rule gets the (good) [Mdev] part of the other: one rule with both. */
        mdev_part = s->rules[1].mdev;
        s->rules[1].mdev = s->rules[0].mdev;
        s->rules[0].mdev = (DesiredMdevRule){};
        assert_int_equal(desired_state_resolve_devices(s, (const PciDevice *const *)f->devices, 6, &res), 0);
        MdevResolveInput in = {
                .devices = (const PciDevice *const *)f->devices,
                .n_devices = 6,
                .parents = (const MdevParent *const *)f->parents,
                .n_parents = 3,
                .vgpu_vfs = (const VgpuVf *const *)f->vfs,
                .n_vgpu_vfs = 3,
        };
        assert_int_equal(desired_state_resolve_mdevs(s, &in, u, res), 0);
        assert_int_equal(strv_length(res->errors), 1);
        if (!strstr(res->errors[0], "/50-vgpu.conf:5: Type=NVIDIA A99-1Q: "))
                fail_msg("%s", res->errors[0]);
        s->rules[0].mdev = s->rules[1].mdev;
        s->rules[1].mdev = mdev_part;
        free_all(s, res, NULL);
        mdev_uuids_free(u);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_spread_and_stable_uuids),
                T(test_pack_and_one_type_per_gpu),
                T(test_resolution_errors),
                T(test_waits_for_parent),
                T(test_ownership_decisions),
                T(test_mdev_after_driver),
                T(test_type_change_on_one_gpu),
                T(test_vgpu),
                T(test_vgpu_name_learnt),
                T(test_unresolved_rule_holds_its_parents),
                T(test_held_mdev_holds_parent),
                T(test_vgpu_names_persisted),
                T(test_rule_error_names_failing_section),
                cmocka_unit_test(test_strings),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
