/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Issue 14's pure pieces: placement tables, the stable UUID store, and the parent/type model. */

#include <errno.h>
#include <fcntl.h>
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

#include "macro.h"
#include "mdev-placement.h"
#include "mdev-uuids.h"
#include "mdev.h"
#include "names.h"
#include "strv.h"

/* ---- placement ------------------------------------------------------------------------------- */

#define MAXC 4

static void test_placement_table(void **state) {
        static const struct {
                const char *what;
                MdevPlacement policy;
                size_t n;
                PlacementCandidate c[MAXC];
                uint32_t count;
                int r;
                size_t expect[8];
        } table[] = {
                { "spread alternates over equal parents",
                  MDEV_PLACEMENT_SPREAD,
                  2,
                  { { "a", 0, 4, false }, { "b", 0, 4, false } },
                  4,
                  0,
                  { 0, 1, 0, 1 } },
                { "spread fills the emptier parent first",
                  MDEV_PLACEMENT_SPREAD,
                  2,
                  { { "a", 2, 4, false }, { "b", 0, 4, false } },
                  3,
                  0,
                  { 1, 1, 0 } },
                { "spread: ties go to the parent with more left, then by name",
                  MDEV_PLACEMENT_SPREAD,
                  3,
                  { { "c", 0, 2, false }, { "b", 0, 5, false }, { "a", 0, 5, false } },
                  3,
                  0,
                  { 2, 1, 0 } },
                { "spread respects available_instances",
                  MDEV_PLACEMENT_SPREAD,
                  2,
                  { { "a", 0, 1, false }, { "b", 0, 3, false } },
                  4,
                  0,
                  { 1, 0, 1, 1 } },
                { "pack fills the first parent by name",
                  MDEV_PLACEMENT_PACK,
                  2,
                  { { "b", 0, 2, false }, { "a", 0, 2, false } },
                  3,
                  0,
                  { 1, 1, 0 } },
                { "pack goes where the rule already is",
                  MDEV_PLACEMENT_PACK,
                  2,
                  { { "a", 0, 4, false }, { "b", 1, 2, false } },
                  3,
                  0,
                  { 1, 1, 0 } },
                { "a blocked parent (one type per GPU) takes none",
                  MDEV_PLACEMENT_SPREAD,
                  2,
                  { { "a", 0, 8, true }, { "b", 0, 2, false } },
                  2,
                  0,
                  { 1, 1 } },
                { "beyond the capacity",
                  MDEV_PLACEMENT_SPREAD,
                  2,
                  { { "a", 0, 1, false }, { "b", 0, 1, true } },
                  2,
                  -ENOSPC,
                  {} },
                { "nothing to place", MDEV_PLACEMENT_PACK, 0, {}, 0, 0, {} },
                { "no candidates", MDEV_PLACEMENT_PACK, 0, {}, 1, -ENOSPC, {} },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                size_t got[8] = {};
                int r = mdev_place(table[i].policy, table[i].c, table[i].n, table[i].count, got);

                if (r != table[i].r)
                        print_error("case %zu (%s): r=%d\n", i, table[i].what, r);
                assert_int_equal(r, table[i].r);
                if (r < 0)
                        continue;
                for (uint32_t k = 0; k < table[i].count; k++) {
                        if (got[k] != table[i].expect[k])
                                print_error(
                                        "case %zu (%s): instance %u on %zu, expected %zu\n", i,
                                        table[i].what, k, got[k], table[i].expect[k]);
                        assert_int_equal(got[k], table[i].expect[k]);
                }
        }
        assert_int_equal(mdev_place(_MDEV_PLACEMENT_MAX, table[0].c, 2, 1, (size_t[1]){}), -EINVAL);
        assert_int_equal(mdev_placement_capacity(table[6].c, 2), 2);
        assert_string_equal(mdev_placement_to_string(MDEV_PLACEMENT_PACK), "pack");
        assert_int_equal(mdev_placement_from_string("spread"), MDEV_PLACEMENT_SPREAD);
        assert_int_equal(mdev_placement_from_string("Spread"), _MDEV_PLACEMENT_INVALID);
}

/* ---- stable UUIDs ---------------------------------------------------------------------------- */

static void rm_rf(const char *dir) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

static void write_file(const char *dir, const char *name, const char *content) {
        char path[256];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(content, f);
        assert_int_equal(fclose(f), 0);
}

static void test_uuids_round_trip(void **state) {
        char dir[] = "/tmp/test-mdev-uuids-XXXXXX";
        _cleanup_strv_free_ char **first = NULL, **avoid = NULL;
        MdevUuids *u = NULL;
        char *const *list;
        char *error = NULL;

        assert_non_null(mkdtemp(dir));

        /* No file: empty, nothing to save. */
        assert_int_equal(mdev_uuids_load(dir, &u, &error), 0);
        assert_null(error);
        assert_false(mdev_uuids_is_dirty(u));
        assert_int_equal(mdev_uuids_save(u), 0);

        assert_int_equal(strv_extend(&avoid, "00000000-0000-0000-0000-000000000001"), 0);
        assert_int_equal(mdev_uuids_get(u, "50-gpu.conf", 3, avoid, &list), 0);
        assert_true(mdev_uuids_is_dirty(u));
        for (size_t i = 0; i < 3; i++) {
                assert_true(mdev_uuid_is_valid(list[i]));
                assert_false(strv_contains(avoid, list[i]));
                assert_int_equal(strv_extend(&first, list[i]), 0);
        }
        assert_string_not_equal(first[0], first[1]);
        assert_string_not_equal(first[1], first[2]);
        const char *key = NULL;
        assert_true(mdev_uuids_contains(u, first[1], &key));
        assert_string_equal(key, "50-gpu.conf");
        assert_int_equal(mdev_uuids_get(u, "other.conf", MDEV_UUIDS_PER_RULE_MAX + 1, NULL, &list), -E2BIG);
        assert_int_equal(mdev_uuids_save(u), 1);
        assert_false(mdev_uuids_is_dirty(u));
        u = mdev_uuids_free(u);

        /* After a "restart": the same rule gets the same UUIDs, fewer are a prefix, more extend. */
        assert_int_equal(mdev_uuids_load(dir, &u, &error), 0);
        assert_int_equal(mdev_uuids_get(u, "50-gpu.conf", 2, NULL, &list), 0);
        assert_false(mdev_uuids_is_dirty(u));
        assert_string_equal(list[0], first[0]);
        assert_string_equal(list[1], first[1]);
        assert_int_equal(mdev_uuids_get(u, "50-gpu.conf", 4, NULL, &list), 0);
        assert_true(mdev_uuids_is_dirty(u));
        assert_string_equal(list[2], first[2]);
        assert_false(strv_contains(first, list[3]));
        /* Another rule never gets one of these. */
        assert_int_equal(mdev_uuids_get(u, "60-other.conf", 1, NULL, &list), 0);
        assert_false(strv_contains(first, list[0]));
        assert_int_equal(mdev_uuids_save(u), 1);
        u = mdev_uuids_free(u);

        /* Corrupt files are refused with the path and nothing is overwritten. */
        static const char *const bad[] = {
                "not json",
                "{\"version\":2,\"rules\":{}}",
                "{\"version\":1,\"rules\":[]}",
                "{\"version\":1,\"rules\":{\"a.conf\":[\"B1D8F0AA-3C1E-4D0B-9A35-1F2E3D4C5B6A\"]}}",
                "{\"version\":1,\"rules\":{\"a.conf\":[\"b1d8f0aa-3c1e-4d0b-9a35-1f2e3d4c5b6a\"],"
                "\"b.conf\":[\"b1d8f0aa-3c1e-4d0b-9a35-1f2e3d4c5b6a\"]}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                write_file(dir, HOSTDEVD_MDEV_UUIDS_FILE, bad[i]);
                assert_int_equal(mdev_uuids_load(dir, &u, &error), -EUCLEAN);
                assert_null(u);
                assert_non_null(error);
                assert_non_null(strstr(error, HOSTDEVD_MDEV_UUIDS_FILE));
                error = mfree(error);
        }
        rm_rf(dir);
}

/* ---- the model --------------------------------------------------------------------------------- */

static void test_vgpu_types_parse(void **state) {
        VgpuType *t = NULL;
        size_t n = 0;
        unsigned bad = 0;

        /* As NVIDIA's vGPU user guide shows creatable_vgpu_types: a header, then "ID : NAME". */
        assert_int_equal(
                vgpu_types_parse(
                        "ID    : vGPU Name\n"
                        "558   : NVIDIA A40-2Q\n"
                        "557   : NVIDIA A40-1Q\n"
                        "\n",
                        &t, &n, &bad),
                0);
        assert_int_equal(n, 2);
        assert_int_equal(t[0].id, 557);
        assert_string_equal(t[0].name, "NVIDIA A40-1Q");
        assert_int_equal(t[1].id, 558);
        vgpu_types_free(t, n);

        assert_int_equal(vgpu_types_parse("", &t, &n, &bad), 0);
        assert_int_equal(n, 0);
        assert_null(t);
        assert_int_equal(vgpu_types_parse("557 : A\nfoo\n", &t, &n, &bad), -EINVAL);
        assert_int_equal(bad, 2);
        assert_int_equal(vgpu_types_parse("x : A\n", &t, &n, &bad), -EINVAL);
        assert_int_equal(vgpu_types_parse("0 : none\n", &t, &n, &bad), -EINVAL);
        assert_int_equal(vgpu_types_parse("12 :\n", &t, &n, &bad), -EINVAL);
}

static void test_framebuffer(void **state) {
        static const struct {
                const char *name, *description;
                uint64_t mib;
        } table[] = {
                { "GRID T4-1Q", NULL, 1024 },
                { "NVIDIA A40-2Q", NULL, 2048 },
                { "GRID M60-0B", NULL, 512 },
                { "GRID T4-1Q", "num_heads=4, frl_config=60, framebuffer=1024M, max_resolution=5120x2880",
                  1024 },
                { "odd", "framebuffer=2G", 2048 },
                { "i915-GVTg_V5_4", "low_gm_size: 128MB\nhigh_gm_size: 512MB\n", 0 },
                { "mtty-2", NULL, 0 },
                { NULL, NULL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                assert_int_equal(
                        mdev_type_framebuffer_mib(table[i].name, table[i].description), table[i].mib);
}

static Mdev *mk_mdev(const char *uuid, const char *parent, const char *type) {
        Mdev *m = calloc(1, sizeof(Mdev));
        assert_non_null(m);
        strcpy(m->uuid, uuid);
        m->parent = strdup(parent);
        m->type_id = strdup(type);
        m->iommu_group = -1;
        return m;
}

static void test_unavailable(void **state) {
        MdevType types[] = {
                { .id = (char *)"nvidia-222", .available_instances = 0 },
                { .id = (char *)"nvidia-223", .available_instances = 0 },
                { .id = (char *)"nvidia-224", .available_instances = 3 },
        };
        MdevParent parent = { .name = (char *)"0000:41:00.0", .types = types, .n_types = 3 };
        Mdev *a = mk_mdev("11111111-1111-1111-1111-111111111111", "0000:41:00.0", "nvidia-222");
        Mdev *b = mk_mdev("22222222-2222-2222-2222-222222222222", "0000:42:00.0", "nvidia-223");
        const Mdev *all[] = { a, b };
        const char *active = NULL;

        assert_int_equal(
                mdev_type_unavailable(&parent, "nvidia-224", all, 2, &active), MDEV_UNAVAILABLE_NONE);
        assert_int_equal(
                mdev_type_unavailable(&parent, "nvidia-222", all, 2, &active), MDEV_UNAVAILABLE_EXHAUSTED);
        assert_int_equal(
                mdev_type_unavailable(&parent, "nvidia-223", all, 2, &active), MDEV_UNAVAILABLE_OTHER_TYPE);
        assert_string_equal(active, "nvidia-222");
        /* b is on another parent: nothing active here explains it. */
        assert_int_equal(
                mdev_type_unavailable(&parent, "nvidia-223", all + 1, 1, &active), MDEV_UNAVAILABLE_UNKNOWN);
        assert_string_equal(
                mdev_unavailable_to_string(MDEV_UNAVAILABLE_OTHER_TYPE),
                "one type per physical GPU and another is active");

        /* vendor vGPU VFs of one PF */
        VgpuType creatable[] = { { 557, (char *)"NVIDIA A40-1Q" } };
        VgpuVf vf0 = { .address = "0000:41:00.4", .physfn = (char *)"0000:41:00.0", .current_type = 558 };
        VgpuVf vf1 = { .address = "0000:41:00.5", .physfn = (char *)"0000:41:00.0" };
        VgpuVf vf2 = { .address = "0000:41:00.6",
                       .physfn = (char *)"0000:41:00.0",
                       .creatable = creatable,
                       .n_creatable = 1 };
        const VgpuVf *peers[] = { &vf0, &vf1, &vf2 };
        assert_int_equal(vgpu_vf_unavailable(&vf0, 557, peers, 3, true), MDEV_UNAVAILABLE_VF_BUSY);
        assert_int_equal(vgpu_vf_unavailable(&vf0, 558, peers, 3, true), MDEV_UNAVAILABLE_NONE);
        assert_int_equal(vgpu_vf_unavailable(&vf1, 557, peers, 3, true), MDEV_UNAVAILABLE_OTHER_TYPE);
        assert_int_equal(vgpu_vf_unavailable(&vf1, 557, peers, 3, false), MDEV_UNAVAILABLE_EXHAUSTED);
        assert_int_equal(vgpu_vf_unavailable(&vf2, 557, peers, 3, true), MDEV_UNAVAILABLE_NONE);
        assert_ptr_equal(vgpu_vf_find_type(&vf2, 0, "NVIDIA A40-1Q"), &creatable[0]);
        assert_null(vgpu_vf_find_type(&vf2, 558, NULL));

        mdev_free(a);
        mdev_free(b);
}

static void test_gpu_mode(void **state) {
        PciDevice gpu = { .class_code = 0x030000, .vendor_id = 0x10de };
        PciDevice nic = { .class_code = 0x020000 };
        MdevType t[1] = {};

        assert_int_equal(gpu_mode_of(&gpu, false, false), GPU_MODE_NONE);
        assert_int_equal(gpu_mode_of(&gpu, true, false), GPU_MODE_VGPU);
        assert_int_equal(gpu_mode_of(&gpu, false, true), GPU_MODE_VGPU);
        gpu.driver = (char *)"vfio-pci";
        assert_int_equal(gpu_mode_of(&gpu, false, false), GPU_MODE_PASSTHROUGH);
        gpu.driver = NULL;
        gpu.mdev_types = t;
        assert_int_equal(gpu_mode_of(&gpu, false, false), GPU_MODE_VGPU);
        assert_int_equal(gpu_mode_of(&nic, true, false), GPU_MODE_NONE);
        assert_string_equal(gpu_mode_to_string(GPU_MODE_PASSTHROUGH), "passthrough");
        assert_int_equal(mdev_parent_kind_from_string("vgpu-vf"), MDEV_PARENT_KIND_VGPU_VF);
        assert_int_equal(mdev_parent_kind_of(true, false), MDEV_PARENT_KIND_MDEV);
        assert_int_equal(mdev_parent_kind_of(false, true), MDEV_PARENT_KIND_VGPU_VF);
        assert_int_equal(mdev_parent_kind_of(false, false), MDEV_PARENT_KIND_NONE);
        assert_string_equal(mdev_parent_kind_to_string(MDEV_PARENT_KIND_NONE), "none");
        assert_true(mdev_parent_one_type_per_gpu(&gpu));
        assert_false(mdev_parent_one_type_per_gpu(&nic));
        assert_false(mdev_parent_one_type_per_gpu(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_placement_table),  cmocka_unit_test(test_uuids_round_trip),
                cmocka_unit_test(test_vgpu_types_parse), cmocka_unit_test(test_framebuffer),
                cmocka_unit_test(test_unavailable),      cmocka_unit_test(test_gpu_mode),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
