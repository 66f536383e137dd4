/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * state-store-bench [DIR]: what recording one function costs as the ownership records grow
 * (src/state-store.c). For N = 4 and N = 1024 functions already recorded, the mean time of one
 * state_store_begin() + state_store_commit() + state_store_forget() of one more function, and the
 * ratio of the two (the baseline: N = 4, in the same run). DIR: a directory for the state files (default
 * a new one under /dev/shm, so that the filesystem's sync does not hide the CPU time; on a disk,
 * fdatasync dominates every figure). Goal: the ratio <= 4 (the records' own cost does not grow with the
 * host: a 1024-VF host's every transaction records in about the time a small host's does).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pci-address.h"
#include "state-store.h"

#define ROUNDS 2000
#define GOAL 4.0

static double now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Mean microseconds of begin + commit + forget of one function with |n| others recorded in |dir|. */
static double measure(const char *dir, unsigned n) {
        char path[4096], addr[PCI_ADDRESS_STRING_MAX];
        StateStore *s = NULL;
        char *error = NULL;
        double t0, t;
        uint64_t tx;

        snprintf(path, sizeof(path), "rm -rf '%s'/owned.json '%s'/owned.log", dir, dir);
        if (system(path) != 0 || state_store_load(dir, &s, &error) < 0) {
                fprintf(stderr, "state-store-bench: cannot use %s: %s\n", dir, error ? error : "?");
                exit(1);
        }
        for (unsigned i = 0; i < n; i++) {
                PciAddress a = { .bus = (uint8_t)(1 + i / 256),
                                 .slot = (uint8_t)(i / 8 % 32),
                                 .function = (uint8_t)(i % 8) };
                OwnedChange c = { .address = pci_address_format(&a, addr),
                                  .driver_now = "iavf",
                                  .driver_override = "vfio-pci",
                                  .driver = "vfio-pci" };

                if (state_store_begin(s, &c, 1, &tx) < 0 || state_store_commit(s, tx) < 0) {
                        fprintf(stderr, "state-store-bench: recording %s failed\n", addr);
                        exit(1);
                }
        }
        t0 = now_us();
        for (unsigned i = 0; i < ROUNDS; i++) {
                OwnedChange c = { .address = "0000:80:00.0",
                                  .driver_override = "vfio-pci",
                                  .driver = "vfio-pci" };

                if (state_store_begin(s, &c, 1, &tx) < 0 || state_store_commit(s, tx) < 0 ||
                    state_store_forget(s, "0000:80:00.0") < 0) {
                        fprintf(stderr, "state-store-bench: round %u failed\n", i);
                        exit(1);
                }
        }
        t = (now_us() - t0) / ROUNDS;
        state_store_free(s);
        return t;
}

int main(int argc, char **argv) {
        char tmpl[] = "/dev/shm/state-store-bench-XXXXXX", cmd[128];
        const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
        double small, large;

        if (!dir) {
                fprintf(stderr, "state-store-bench: no directory under /dev/shm; pass one\n");
                return 1;
        }
        small = measure(dir, 4);
        large = measure(dir, 1024);
        if (argc <= 1) {
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "state-store-bench: could not remove %s, ignoring\n", dir);
        }
        printf("ownership records (%s), begin + commit + forget of one function, mean of %d:\n", dir,
               ROUNDS);
        printf("  %4u recorded: %8.1f us\n  %4u recorded: %8.1f us\n", 4u, small, 1024u, large);
        printf("  ratio 1024 / 4: %.2f   goal <= %.1f: %s\n", large / small, GOAL,
               large / small <= GOAL ? "met" : "NOT met");
        return 0;
}
