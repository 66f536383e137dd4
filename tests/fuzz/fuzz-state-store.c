/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The state store (src/state-store.c): the input is owned.json, optionally
 * followed by "\n--- owned.log\n" and the log. A load either fails with a
 * message naming the file, or gives records that are canonical and sorted;
 * then a change written by the store (forget, commit, begin) must load
 * back to exactly what the store holds in memory.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "names.h"
#include "state-store.h"

static const char *dir;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        dir = fuzz_tmpdir("fuzz-state-store");
        return 0;
}

static bool streq_ptr(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_same(const StateStore *a, const StateStore *b, const char *after) {
        size_t n_a, n_b;
        const OwnedDevice *da = state_store_get_devices(a, &n_a), *db = state_store_get_devices(b, &n_b);

        fuzz_check(n_a == n_b, "after %s: %zu functions in memory, %zu loaded back", after, n_a, n_b);
        for (size_t i = 0; i < n_a; i++) {
                const OwnedDevice *x = &da[i], *y = &db[i];

                fuzz_check(
                        strcmp(x->address, y->address) == 0 && x->transaction == y->transaction &&
                                x->phase == y->phase && streq_ptr(x->original_driver, y->original_driver) &&
                                streq_ptr(x->original_driver_override, y->original_driver_override) &&
                                streq_ptr(x->previous_driver, y->previous_driver) &&
                                streq_ptr(x->previous_driver_override, y->previous_driver_override) &&
                                streq_ptr(x->driver_override, y->driver_override) &&
                                streq_ptr(x->driver, y->driver),
                        "after %s: %s differs when loaded back", after, x->address);
        }
}

static void check_loaded(const StateStore *s) {
        _cleanup_free_ const OwnedDevice **interrupted = NULL;
        size_t n, n_interrupted = 0, n_begun = 0;
        const OwnedDevice *d = state_store_get_devices(s, &n);

        for (size_t i = 0; i < n; i++) {
                char canonical[PCI_ADDRESS_STRING_MAX];
                PciAddress a;

                fuzz_check(pci_address_from_string(d[i].address, &a) == 0, "address '%s'", d[i].address);
                fuzz_check(
                        strcmp(pci_address_format(&a, canonical), d[i].address) == 0, "'%s' not canonical",
                        d[i].address);
                fuzz_check(d[i].transaction >= 1, "%s: transaction 0", d[i].address);
                fuzz_check(
                        d[i].phase == OWNED_PHASE_BEGUN || d[i].phase == OWNED_PHASE_COMMITTED,
                        "%s: phase %d", d[i].address, d[i].phase);
                /* Sorted as addresses (a 5-digit domain after every 4-digit one), not as strings. */
                if (i > 0) {
                        PciAddress prev;

                        fuzz_check(
                                pci_address_from_string(d[i - 1].address, &prev) == 0 &&
                                        pci_address_compare(&prev, &a) < 0,
                                "records out of order at %s", d[i].address);
                }
                fuzz_check(state_store_get(s, d[i].address) == &d[i], "%s: lookup", d[i].address);
                n_begun += d[i].phase == OWNED_PHASE_BEGUN;
        }
        fuzz_check(state_store_list_interrupted(s, &interrupted, &n_interrupted) == 0, "list_interrupted");
        fuzz_check(n_interrupted == n_begun, "%zu interrupted of %zu begun", n_interrupted, n_begun);
}

static StateStore *reload(const char *after) {
        _cleanup_free_ char *error = NULL;
        StateStore *t = NULL;
        int r;

        r = state_store_load(dir, &t, &error);
        fuzz_check(r == 0, "after %s: the store's own files do not load: %d %s", after, r, strna(error));
        return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(state_store_freep) StateStore *s = NULL;
        _cleanup_free_ char *error = NULL;
        const uint8_t *parts[2];
        size_t sizes[2], n;
        int r;

        if (size > 64 * 1024)
                return 0;
        fuzz_empty_dir(dir);
        n = fuzz_split(data, size, FUZZ_SEP("\n--- owned.log\n"), parts, sizes, 2);
        fuzz_write_file(dir, HOSTDEVD_STATE_FILE, parts[0], sizes[0]);
        if (n > 1)
                fuzz_write_file(dir, HOSTDEVD_STATE_LOG, parts[1], sizes[1]);

        r = state_store_load(dir, &s, &error);
        if (r < 0) {
                fuzz_check(
                        r == -EBADMSG || r == -EPROTONOSUPPORT, "state_store_load = %d (%s)", r,
                        strna(error));
                fuzz_check(
                        error && strncmp(error, dir, strlen(dir)) == 0 && !strchr(error, '\n'),
                        "load failed (%d) with message '%s'", r, strna(error));
                fuzz_check(!s, "a store returned with an error");
                return 0;
        }
        fuzz_check(!error, "loaded with message '%s'", error);
        check_loaded(s);

        /* Changes: each written by the store, each loaded back as the store holds it. */
        size_t n_devices;
        const OwnedDevice *d = state_store_get_devices(s, &n_devices);
        if (n_devices > 0) {
                char address[PCI_ADDRESS_STRING_MAX];
                uint64_t transaction = 0;

                for (size_t i = 0; i < n_devices; i++)
                        if (d[i].phase == OWNED_PHASE_BEGUN) {
                                transaction = d[i].transaction;
                                break;
                        }
                if (transaction > 0) {
                        _cleanup_(state_store_freep) StateStore *t = NULL;

                        fuzz_check(state_store_commit(s, transaction) == 0, "commit %" PRIu64, transaction);
                        t = reload("commit");
                        check_same(s, t, "commit");
                }

                _cleanup_(state_store_freep) StateStore *t = NULL;
                d = state_store_get_devices(s, &n_devices);
                memcpy(address, d[0].address, sizeof(address));
                fuzz_check(state_store_forget(s, address) == 0, "forget %s", address);
                t = reload("forget");
                check_same(s, t, "forget");
        }

        _cleanup_(state_store_freep) StateStore *t = NULL;
        OwnedChange change = { .address = "0000:41:00.0",
                               .driver_now = "nvidia",
                               .driver_override = "vfio-pci",
                               .driver = "vfio-pci" };
        uint64_t id;

        r = state_store_begin(s, &change, 1, &id);
        fuzz_check(r == 0 || r == -EFBIG, "begin = %d", r);
        t = reload("begin");
        check_same(s, t, "begin");
        return 0;
}
