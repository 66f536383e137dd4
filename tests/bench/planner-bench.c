/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * planner-bench: what a full plan costs on the event loop at scale, without a testbed. 4096
 * functions laid out as the reconciler's large integration test has them (every fourth one a VF,
 * 0x8086:0x154c, bound to iavf; the others 0x8086:0x10fb on ixgbe; one IOMMU group each) and one
 * rule that gives the 1024 VFs to vfio-pci. Timed: desired_state_resolve_devices() + planner_plan()
 * (what reconciler_plan() runs on the loop besides the critical set and the holders, which are not
 * the planner's), median and max of ROUNDS rounds, against the same for the 6-function host in the
 * same run. Goal: the 4096-function plan <= 10 ms.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "desired-state.h"
#include "pci-device.h"
#include "planner.h"

#define ROUNDS 15
#define GOAL_MS 10.0

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static PciDevice **make_devices(size_t n) {
        PciDevice **l = calloc(n, sizeof(PciDevice *));

        if (!l)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                bool vf = i % 4 == 3;
                PciDevice *d = calloc(1, sizeof(PciDevice));

                if (!d)
                        return NULL;
                snprintf(
                        d->address, sizeof(d->address), "0000:%02zx:%02zx.%zu", 0x10 + i / 256, (i / 8) % 32,
                        i % 8);
                d->vendor_id = 0x8086;
                d->device_id = vf ? 0x154c : 0x10fb;
                d->class_code = 0x020000;
                d->iommu_group = (int32_t)i;
                d->numa_node = -1;
                d->vf_index = -1;
                d->driver = strdup(vf ? "iavf" : "ixgbe");
                if (!d->driver)
                        return NULL;
                l[i] = d;
        }
        return l;
}

/* Milliseconds of resolve + plan, median into *ret_median and max into *ret_max; -1 on failure. */
static int measure(const DesiredState *s, size_t n, double *ret_median, double *ret_max) {
        PciDevice **devices = make_devices(n);
        double t[ROUNDS];
        size_t n_actions = 0;

        if (!devices)
                return -1;
        for (size_t r = 0; r < ROUNDS; r++) {
                DesiredResolution *res = NULL;
                Plan *plan = NULL;
                double t0 = now_ms();

                if (desired_state_resolve_devices(s, (const PciDevice *const *)devices, n, &res) < 0)
                        return -1;
                PlannerInput in = {
                        .desired = res,
                        .devices = (const PciDevice *const *)devices,
                        .n_devices = n,
                        .critical_authorized = true,
                };
                if (planner_plan(&in, &plan) < 0)
                        return -1;
                t[r] = now_ms() - t0;
                n_actions = plan->n_actions;
                plan_free(plan);
                desired_resolution_free(res);
        }
        for (size_t i = 0; i < n; i++)
                pci_device_free(devices[i]);
        free(devices);
        qsort(t, ROUNDS, sizeof(double), compare_double);
        *ret_median = t[ROUNDS / 2];
        *ret_max = t[ROUNDS - 1];
        printf("  %4zu functions: %zu actions planned\n", n, n_actions);
        return 0;
}

int main(void) {
        char dir[] = "/tmp/planner-bench-XXXXXX", path[sizeof(dir) + 16];
        const char *dirs[] = { dir, NULL };
        DesiredState *s = NULL;
        double small, small_max, large, large_max;
        FILE *f;
        int ok;

        if (!mkdtemp(dir))
                return 1;
        snprintf(path, sizeof(path), "%s/50-vfs.conf", dir);
        f = fopen(path, "we");
        if (!f)
                return 1;
        fputs("[Match]\nVendor=8086\nDevice=154c\n[Device]\nDriver=vfio-pci\n", f);
        if (fclose(f) != 0)
                return 1;
        ok = desired_state_load(dirs, &s) >= 0 && !s->errors;
        (void)unlink(path);
        (void)rmdir(dir);
        if (!ok)
                return 1;

        if (measure(s, 6, &small, &small_max) < 0 || measure(s, 4096, &large, &large_max) < 0)
                return 1;
        desired_state_free(s);

        printf("\n%-46s %-24s %-10s %s\n", "measure", "value", "goal", "met");
        printf("%-46s %.3f ms (max %.3f)%*s %-10s %s\n", "baseline: resolve + plan, 6 functions", small,
               small_max, 4, "", "-", "-");
        printf("%-46s %.3f ms (max %.3f)%*s %-10s %s\n", "resolve + plan, 4096 functions, 1024-VF rule",
               large, large_max, 2, "", "<= 10 ms", large <= GOAL_MS ? "yes" : "NO");
        return 0;
}
