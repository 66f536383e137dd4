/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handoff.h"
#include "macro.h"
#include "names.h"
#include "strv.h"

/* ---- units: what one port carries ---------------------------------------------------------- */

typedef struct Unit {
        const PciDevice *functions[8];
        uint8_t guest_function[8]; /* function number in the guest */
        size_t n_functions;
        const Mdev *mdev;
} Unit;

typedef struct Layout {
        Unit *units;
        size_t n_units;
        const PciDevice **functions; /* sorted by address */
        PciAddress *addresses; /* parallel to functions */
        size_t n_functions;
        const Mdev **mdevs; /* sorted by UUID */
        size_t n_mdevs;
} Layout;

static void layout_done(Layout *l) {
        free(l->units);
        free(l->functions);
        free(l->addresses);
        free(l->mdevs);
        *l = (Layout){};
}

typedef struct SortItem {
        PciAddress address;
        const PciDevice *d;
} SortItem;

static int sort_item_compare(const void *a, const void *b) {
        const SortItem *x = a, *y = b;
        return pci_address_compare(&x->address, &y->address);
}

static int mdev_compare(const void *a, const void *b) {
        const Mdev *const *x = a, *const *y = b;
        return strcmp((*x)->uuid, (*y)->uuid);
}

static bool same_slot(const PciAddress *a, const PciAddress *b) {
        return a->domain == b->domain && a->bus == b->bus && a->slot == b->slot;
}

static Unit *layout_add_unit(Layout *l) {
        Unit *u = &l->units[l->n_units++];
        *u = (Unit){};
        return u;
}

/* Group one host slot's functions [from, to) into units, per the rule in handoff.h. */
static void layout_add_slot(Layout *l, size_t from, size_t to) {
        bool has_function0 = false;
        size_t n_grouped = 0;

        for (size_t i = from; i < to; i++)
                if (l->functions[i]->sriov_role != SRIOV_ROLE_VF) {
                        n_grouped++;
                        if (l->addresses[i].function == 0)
                                has_function0 = true;
                }

        Unit *group = NULL;
        if (has_function0 && n_grouped > 1)
                group = layout_add_unit(l);

        for (size_t i = from; i < to; i++) {
                if (group && l->functions[i]->sriov_role != SRIOV_ROLE_VF) {
                        group->guest_function[group->n_functions] = l->addresses[i].function;
                        group->functions[group->n_functions++] = l->functions[i];
                        continue;
                }
                Unit *u = layout_add_unit(l);
                u->functions[0] = l->functions[i];
                u->guest_function[0] = 0;
                u->n_functions = 1;
        }
}

static int layout_build(const HandoffInput *in, Layout *ret) {
        _cleanup_free_ SortItem *items = NULL;
        Layout l = {};
        int r;

        assert(in);
        assert(ret);

        size_t n = in->n_functions + in->n_mdevs;
        l.units = calloc(n ?: 1, sizeof(Unit));
        l.functions = calloc(in->n_functions ?: 1, sizeof(PciDevice *));
        l.addresses = calloc(in->n_functions ?: 1, sizeof(PciAddress));
        l.mdevs = calloc(in->n_mdevs ?: 1, sizeof(Mdev *));
        items = calloc(in->n_functions ?: 1, sizeof(SortItem));
        if (!l.units || !l.functions || !l.addresses || !l.mdevs || !items) {
                r = -ENOMEM;
                goto fail;
        }

        for (size_t i = 0; i < in->n_functions; i++) {
                r = pci_address_from_string(in->functions[i]->address, &items[i].address);
                if (r < 0)
                        goto fail;
                items[i].d = in->functions[i];
        }
        qsort(items, in->n_functions, sizeof(SortItem), sort_item_compare);
        for (size_t i = 0; i < in->n_functions; i++) {
                if (i > 0 && pci_address_compare(&items[i - 1].address, &items[i].address) == 0) {
                        r = -EINVAL;
                        goto fail;
                }
                l.functions[i] = items[i].d;
                l.addresses[i] = items[i].address;
        }
        l.n_functions = in->n_functions;

        for (size_t i = 0; i < in->n_mdevs; i++)
                l.mdevs[i] = in->mdevs[i];
        qsort(l.mdevs, in->n_mdevs, sizeof(Mdev *), mdev_compare);
        for (size_t i = 1; i < in->n_mdevs; i++)
                if (streq(l.mdevs[i - 1]->uuid, l.mdevs[i]->uuid)) {
                        r = -EINVAL;
                        goto fail;
                }
        l.n_mdevs = in->n_mdevs;

        for (size_t from = 0; from < l.n_functions;) {
                size_t to = from + 1;
                while (to < l.n_functions && same_slot(&l.addresses[from], &l.addresses[to]))
                        to++;
                layout_add_slot(&l, from, to);
                from = to;
        }
        for (size_t i = 0; i < l.n_mdevs; i++)
                layout_add_unit(&l)->mdev = l.mdevs[i];

        *ret = l;
        return 0;
fail:
        layout_done(&l);
        return r;
}

/* ---- QEMU ----------------------------------------------------------------------------------- */

/* QEMU's host= property (DEFINE_PROP_PCI_HOST_DEVADDR) takes a 16-bit domain. */
static int append_vfio_pci_source(char **s, const PciDevice *d, const PciAddress *a) {
        char *n;
        if (a->domain > 0xffff) {
                if (asprintf(&n, "%ssysfsdev=" SYSFS_PCI_DEVICES "/%s", *s, d->address) < 0)
                        return -ENOMEM;
        } else if (asprintf(&n, "%shost=%s", *s, d->address) < 0)
                return -ENOMEM;
        free(*s);
        *s = n;
        return 0;
}

static const PciAddress *layout_address_of(const Layout *l, const PciDevice *d) {
        for (size_t i = 0; i < l->n_functions; i++)
                if (l->functions[i] == d)
                        return &l->addresses[i];
        assert(false);
        return NULL;
}

static int format_size(uint64_t bytes, char **ret) {
        if (bytes % (UINT64_C(1) << 30) == 0)
                return asprintf(ret, "%" PRIu64 "G", bytes >> 30) < 0 ? -ENOMEM : 0;
        return asprintf(ret, "%" PRIu64, bytes) < 0 ? -ENOMEM : 0;
}

int handoff_qemu_args(const HandoffInput *in, char ***ret) {
        _cleanup_(layout_done) Layout l = {};
        _cleanup_strv_free_ char **args = NULL;
        _cleanup_(mmio_window_done) MmioWindow w = {};
        int r;

        assert(in);
        assert(ret);

        r = layout_build(in, &l);
        if (r < 0)
                return r;
        if (l.n_units > HANDOFF_UNITS_MAX)
                return -E2BIG;

        r = handoff_mmio_window(in, &w);
        if (r < 0)
                return r;

        args = calloc(1, sizeof(char *));
        if (!args)
                return -ENOMEM;

        /* Switches on the last root ports, as few as the units need. */
        size_t n_switches = 0;
        while (n_switches < HANDOFF_SWITCHES_MAX &&
               HANDOFF_ROOT_PORTS_MAX - n_switches + n_switches * HANDOFF_SWITCH_PORTS_MAX < l.n_units)
                n_switches++;
        size_t n_root_ports = n_switches > 0 ? HANDOFF_ROOT_PORTS_MAX : l.n_units;
        size_t n_direct = n_switches > 0 ? HANDOFF_ROOT_PORTS_MAX - n_switches : l.n_units;

        for (size_t i = 0; i < n_root_ports; i++) {
                bool mf = i % 8 == 0 && i + 1 < n_root_ports;
                r = strv_extendf(&args, "-device");
                if (r < 0)
                        return r;
                r = strv_extendf(
                        &args,
                        "pcie-root-port,id=hostdevd-rp%zu,bus=pcie.0,addr=0x%zx.0x%zx%s,chassis=1,slot=%zu",
                        i + 1, HANDOFF_ROOT_PORT_FIRST_SLOT + i / 8, i % 8, mf ? ",multifunction=on" : "",
                        i + 1);
                if (r < 0)
                        return r;
        }
        for (size_t k = 0; k < n_switches; k++) {
                r = strv_extend(&args, "-device");
                if (r < 0)
                        return r;
                r = strv_extendf(
                        &args, "x3130-upstream,id=hostdevd-up%zu,bus=hostdevd-rp%zu", k + 1,
                        n_direct + k + 1);
                if (r < 0)
                        return r;
        }
        for (size_t j = 0; n_switches > 0 && j < l.n_units - n_direct; j++) {
                r = strv_extend(&args, "-device");
                if (r < 0)
                        return r;
                r = strv_extendf(
                        &args,
                        "xio3130-downstream,id=hostdevd-dp%zu,bus=hostdevd-up%zu,addr=0x%zx.0x0,chassis=2,slot=%zu",
                        j + 1, j / HANDOFF_SWITCH_PORTS_MAX + 1, j % HANDOFF_SWITCH_PORTS_MAX, j + 1);
                if (r < 0)
                        return r;
        }

        size_t id = 0;
        for (size_t k = 0; k < l.n_units; k++) {
                const Unit *u = &l.units[k];
                char bus[32];

                if (k < n_direct)
                        snprintf(bus, sizeof bus, "hostdevd-rp%zu", k + 1);
                else
                        snprintf(bus, sizeof bus, "hostdevd-dp%zu", k - n_direct + 1);

                if (u->mdev) {
                        r = strv_extend(&args, "-device");
                        if (r < 0)
                                return r;
                        r = strv_extendf(
                                &args,
                                "vfio-pci,sysfsdev=" SYSFS_MDEV_DEVICES
                                "/%s,id=hostdevd-dev%zu,bus=%s,addr=0x0",
                                u->mdev->uuid, ++id, bus);
                        if (r < 0)
                                return r;
                        continue;
                }

                for (size_t f = 0; f < u->n_functions; f++) {
                        _cleanup_free_ char *s = strdup("vfio-pci,");
                        if (!s)
                                return -ENOMEM;
                        r = append_vfio_pci_source(
                                &s, u->functions[f], layout_address_of(&l, u->functions[f]));
                        if (r < 0)
                                return r;
                        r = strv_extend(&args, "-device");
                        if (r < 0)
                                return r;
                        if (u->n_functions == 1)
                                r = strv_extendf(
                                        &args, "%s,id=hostdevd-dev%zu,bus=%s,addr=0x0", s, ++id, bus);
                        else
                                r = strv_extendf(
                                        &args, "%s,id=hostdevd-dev%zu,bus=%s,addr=0x0.0x%x%s", s, ++id, bus,
                                        u->guest_function[f],
                                        u->guest_function[f] == 0 ? ",multifunction=on" : "");
                        if (r < 0)
                                return r;
                }
        }

        if (w.pci_hole64_size > HANDOFF_HOLE64_DEFAULT) {
                _cleanup_free_ char *size = NULL;
                r = format_size(w.pci_hole64_size, &size);
                if (r < 0)
                        return r;
                r = strv_extend(&args, "-global");
                if (r < 0)
                        return r;
                r = strv_extendf(&args, "q35-pcihost.pci-hole64-size=%s", size);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(args);
        return 0;
}

/* ---- cloud-hypervisor, libvirt, VFIO nodes --------------------------------------------------- */

int handoff_cloud_hypervisor_args(const HandoffInput *in, char ***ret) {
        _cleanup_(layout_done) Layout l = {};
        _cleanup_strv_free_ char **args = NULL;
        int r;

        assert(in);
        assert(ret);

        r = layout_build(in, &l);
        if (r < 0)
                return r;

        args = calloc(1, sizeof(char *));
        if (!args)
                return -ENOMEM;
        for (size_t i = 0; i < l.n_functions; i++) {
                r = strv_extend(&args, "--device");
                if (r < 0)
                        return r;
                r = strv_extendf(&args, "path=" SYSFS_PCI_DEVICES "/%s/", l.functions[i]->address);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < l.n_mdevs; i++) {
                r = strv_extend(&args, "--device");
                if (r < 0)
                        return r;
                r = strv_extendf(&args, "path=" SYSFS_MDEV_DEVICES "/%s/", l.mdevs[i]->uuid);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(args);
        return 0;
}

int handoff_libvirt_hostdev_xml(const HandoffInput *in, char **ret) {
        _cleanup_(layout_done) Layout l = {};
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        int r;

        assert(in);
        assert(ret);

        r = layout_build(in, &l);
        if (r < 0)
                return r;

        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < l.n_functions; i++) {
                const PciAddress *a = &l.addresses[i];
                fprintf(f,
                        "<hostdev mode='subsystem' type='pci' managed='no'>\n"
                        "  <source>\n"
                        "    <address domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'/>\n"
                        "  </source>\n"
                        "</hostdev>\n",
                        a->domain, a->bus, a->slot, a->function);
        }
        for (size_t i = 0; i < l.n_mdevs; i++)
                fprintf(f,
                        "<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'>\n"
                        "  <source>\n"
                        "    <address uuid='%s'/>\n"
                        "  </source>\n"
                        "</hostdev>\n",
                        l.mdevs[i]->uuid);
        if (fclose(f) != 0 || !buf)
                return -ENOMEM;

        *ret = TAKE_PTR(buf);
        return 0;
}

static int string_compare(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int strv_add_unique(char ***l, char *s) {
        if (!s)
                return -ENOMEM;
        if (strv_contains(*l, s)) {
                free(s);
                return 0;
        }
        return strv_push(l, s);
}

int handoff_vfio_paths(const HandoffInput *in, char ***ret) {
        _cleanup_strv_free_ char **paths = NULL;
        int r;

        assert(in);
        assert(ret);

        paths = calloc(1, sizeof(char *));
        if (!paths)
                return -ENOMEM;

        for (size_t i = 0; i < in->n_functions; i++) {
                const PciDevice *d = in->functions[i];
                char *s = NULL;

                if (d->vfio_group)
                        s = strdup(d->vfio_group);
                else if (d->iommu_group >= 0 && asprintf(&s, DEV_VFIO_DIR "/%" PRIi32, d->iommu_group) < 0)
                        s = NULL;
                if (d->vfio_group || d->iommu_group >= 0) {
                        r = strv_add_unique(&paths, s);
                        if (r < 0)
                                return r;
                }
                if (d->vfio_device) {
                        r = strv_add_unique(&paths, strdup(d->vfio_device));
                        if (r < 0)
                                return r;
                }
        }
        for (size_t i = 0; i < in->n_mdevs; i++) {
                char *s;
                if (in->mdevs[i]->iommu_group < 0)
                        continue;
                if (asprintf(&s, DEV_VFIO_DIR "/%" PRIi32, in->mdevs[i]->iommu_group) < 0)
                        return -ENOMEM;
                r = strv_add_unique(&paths, s);
                if (r < 0)
                        return r;
        }

        qsort(paths, strv_length(paths), sizeof(char *), string_compare);
        *ret = TAKE_PTR(paths);
        return 0;
}

/* ---- MMIO window -------------------------------------------------------------------------- */

#define MMIO_LIMIT (UINT64_C(1) << 63)

typedef struct Window {
        uint64_t size, alignment;
} Window;

static int u64_compare_desc(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? 1 : x > y ? -1 : 0;
}

static int window_compare(const void *a, const void *b) {
        const Window *x = a, *y = b;
        if (x->alignment != y->alignment)
                return x->alignment < y->alignment ? 1 : -1;
        return x->size < y->size ? 1 : x->size > y->size ? -1 : 0;
}

static uint64_t align_up(uint64_t v, uint64_t a) {
        return (v + a - 1) & ~(a - 1);
}

/* One bridge window from BAR sizes (powers of two): sorted descending, each lands aligned. */
static int window_from_sizes(uint64_t *sizes, size_t n, Window *ret) {
        uint64_t sum = 0;

        if (n == 0) {
                *ret = (Window){};
                return 0;
        }
        qsort(sizes, n, sizeof(uint64_t), u64_compare_desc);
        for (size_t i = 0; i < n; i++) {
                sum = align_up(sum, sizes[i]);
                if (sizes[i] >= MMIO_LIMIT || sum >= MMIO_LIMIT - sizes[i])
                        return -EOVERFLOW;
                sum += sizes[i];
        }
        *ret = (Window){
                .size = align_up(sum, HANDOFF_BRIDGE_WINDOW_GRANULARITY),
                .alignment = sizes[0] > HANDOFF_BRIDGE_WINDOW_GRANULARITY
                        ? sizes[0]
                        : HANDOFF_BRIDGE_WINDOW_GRANULARITY,
        };
        return 0;
}

static int windows_pack(Window *w, size_t n, uint64_t *ret) {
        uint64_t end = 0;

        qsort(w, n, sizeof(Window), window_compare);
        for (size_t i = 0; i < n; i++) {
                if (w[i].size == 0)
                        continue;
                if (end > MMIO_LIMIT - w[i].alignment)
                        return -EOVERFLOW;
                end = align_up(end, w[i].alignment);
                if (end >= MMIO_LIMIT - w[i].size)
                        return -EOVERFLOW;
                end += w[i].size;
        }
        *ret = end;
        return 0;
}

static bool is_power_of_two(uint64_t v) {
        return v != 0 && (v & (v - 1)) == 0;
}

void mmio_window_done(MmioWindow *w) {
        if (!w)
                return;
        free(w->bars);
        *w = (MmioWindow){};
}

int handoff_mmio_window(const HandoffInput *in, MmioWindow *ret) {
        _cleanup_(layout_done) Layout l = {};
        _cleanup_free_ HandoffBar *bars = NULL;
        _cleanup_free_ Window *below = NULL, *above = NULL;
        size_t n_bars = 0, n_below = 0, n_above = 0;
        uint64_t sum_below, sum_above, hole;
        int r;

        assert(in);
        assert(ret);

        r = layout_build(in, &l);
        if (r < 0)
                return r;

        bars = calloc(l.n_functions * PCI_BAR_MAX + 1, sizeof(HandoffBar));
        below = calloc(2 * l.n_units + 1, sizeof(Window));
        above = calloc(l.n_units + 1, sizeof(Window));
        if (!bars || !below || !above)
                return -ENOMEM;

        for (size_t k = 0; k < l.n_units; k++) {
                const Unit *u = &l.units[k];
                uint64_t np[8 * PCI_BAR_MAX], pf[8 * PCI_BAR_MAX];
                size_t n_np = 0, n_pf = 0, first_bar = n_bars;
                bool pf32 = false;

                for (size_t f = 0; f < u->n_functions; f++) {
                        const PciDevice *d = u->functions[f];
                        for (size_t b = 0; b < d->n_bars && b < PCI_BAR_MAX; b++) {
                                const PciBar *bar = &d->bars[b];
                                if (bar->type != PCI_BAR_TYPE_MEMORY || bar->size == 0)
                                        continue;
                                /* The kernel sizes BARs from the base register: always a power of two.
                                 * Anything else (not a real kernel's) is sized up, never down. */
                                uint64_t size = bar->size;
                                if (!is_power_of_two(size)) {
                                        if (size > MMIO_LIMIT / 2)
                                                return -EOVERFLOW;
                                        while (!is_power_of_two(size))
                                                size &= size - 1;
                                        size <<= 1;
                                }
                                bool in_pf = bar->prefetchable && bar->index != PCI_BAR_ROM_INDEX;
                                if (in_pf) {
                                        pf[n_pf++] = size;
                                        if (!bar->is_64bit)
                                                pf32 = true;
                                } else
                                        np[n_np++] = size;
                                HandoffBar *h = &bars[n_bars++];
                                *h = (HandoffBar){
                                        .index = bar->index,
                                        .size = bar->size,
                                        .alignment = size,
                                        .is_64bit = bar->is_64bit,
                                        .prefetchable = bar->prefetchable,
                                        .above_4g = in_pf, /* settled below once pf32 is known */
                                };
                                memcpy(h->address, d->address, sizeof h->address);
                        }
                }
                if (pf32)
                        for (size_t i = first_bar; i < n_bars; i++)
                                bars[i].above_4g = false;

                r = window_from_sizes(np, n_np, &below[n_below++]);
                if (r < 0)
                        return r;
                r = window_from_sizes(pf, n_pf, pf32 ? &below[n_below++] : &above[n_above++]);
                if (r < 0)
                        return r;
        }

        r = windows_pack(below, n_below, &sum_below);
        if (r < 0)
                return r;
        r = windows_pack(above, n_above, &sum_above);
        if (r < 0)
                return r;

        if (sum_above > (UINT64_C(1) << 61))
                return -EOVERFLOW;
        hole = HANDOFF_HOLE64_DEFAULT;
        while (hole < 2 * sum_above)
                hole <<= 1;

        /* Bars in address order (the layout visits functions in address order already, but units
         * put VFs of a slot after its multifunction group). */
        for (size_t i = 1; i < n_bars; i++)
                for (size_t j = i; j > 0; j--) {
                        int c = strcmp(bars[j - 1].address, bars[j].address);
                        PciAddress a, b;
                        if (pci_address_from_string(bars[j - 1].address, &a) >= 0 &&
                            pci_address_from_string(bars[j].address, &b) >= 0)
                                c = pci_address_compare(&a, &b);
                        if (c < 0 || (c == 0 && bars[j - 1].index < bars[j].index))
                                break;
                        HandoffBar t = bars[j];
                        bars[j] = bars[j - 1];
                        bars[j - 1] = t;
                }

        *ret = (MmioWindow){
                .bars = TAKE_PTR(bars),
                .n_bars = n_bars,
                .below_4g = sum_below,
                .above_4g = sum_above,
                .pci_hole64_size = hole,
        };
        return 0;
}

/* ---- fingerprint -------------------------------------------------------------------------- */

#define FINGERPRINT_VERSION "v1"
#define FINGERPRINT_UNIT_HEX 16

static void sha256_hex(const char *s, size_t len, char out[static 2 * SHA256_DIGEST_SIZE + 1]) {
        struct sha256_ctx ctx;
        uint8_t digest[SHA256_DIGEST_SIZE];

        sha256_init(&ctx);
        sha256_update(&ctx, len, (const uint8_t *)s);
        sha256_digest(&ctx, sizeof digest, digest);
        for (size_t i = 0; i < sizeof digest; i++)
                sprintf(out + 2 * i, "%02x", digest[i]);
}

static const char *bar_kind(const PciBar *b) {
        if (b->type == PCI_BAR_TYPE_IO)
                return "io";
        if (b->index == PCI_BAR_ROM_INDEX)
                return "rom";
        if (b->is_64bit)
                return b->prefetchable ? "mem64-pref" : "mem64";
        return b->prefetchable ? "mem32-pref" : "mem32";
}

static int unit_canonical_line(const Unit *u, char **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;

        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        if (u->mdev)
                fprintf(f, "mdev type %s", u->mdev->type_id ?: "unknown");
        else {
                fputs("pci", f);
                for (size_t i = 0; i < u->n_functions; i++) {
                        const PciDevice *d = u->functions[i];
                        fprintf(f, "%s fn%u %04x:%04x sub %04x:%04x class %06x rev %02x", i > 0 ? " /" : "",
                                u->guest_function[i], d->vendor_id, d->device_id, d->subsystem_vendor_id,
                                d->subsystem_device_id, d->class_code, d->revision);
                        for (size_t b = 0; b < d->n_bars && b < PCI_BAR_MAX; b++)
                                fprintf(f, " bar%u %s 0x%" PRIx64, d->bars[b].index, bar_kind(&d->bars[b]),
                                        d->bars[b].size);
                }
        }
        if (fclose(f) != 0 || !buf)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int canonical_lines(const HandoffInput *in, char ***ret) {
        _cleanup_(layout_done) Layout l = {};
        _cleanup_strv_free_ char **lines = NULL;
        int r;

        r = layout_build(in, &l);
        if (r < 0)
                return r;
        lines = calloc(1, sizeof(char *));
        if (!lines)
                return -ENOMEM;
        for (size_t k = 0; k < l.n_units; k++) {
                char *line;
                r = unit_canonical_line(&l.units[k], &line);
                if (r < 0)
                        return r;
                r = strv_push(&lines, line);
                if (r < 0)
                        return r;
        }
        qsort(lines, strv_length(lines), sizeof(char *), string_compare);
        *ret = TAKE_PTR(lines);
        return 0;
}

int handoff_fingerprint_text(const HandoffInput *in, char **ret) {
        _cleanup_strv_free_ char **lines = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        int r;

        assert(in);
        assert(ret);

        r = canonical_lines(in, &lines);
        if (r < 0)
                return r;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fputs("hostdevd-fingerprint " FINGERPRINT_VERSION "\n", f);
        STRV_FOREACH (line, lines)
                fprintf(f, "%s\n", *line);
        if (fclose(f) != 0 || !buf)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int unit_hashes(char **lines, char ***ret) {
        _cleanup_strv_free_ char **hashes = calloc(1, sizeof(char *));
        int r;

        if (!hashes)
                return -ENOMEM;
        STRV_FOREACH (line, lines) {
                char hex[2 * SHA256_DIGEST_SIZE + 1];
                sha256_hex(*line, strlen(*line), hex);
                r = strv_push(&hashes, strndup(hex, FINGERPRINT_UNIT_HEX));
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(hashes);
        return 0;
}

int handoff_fingerprint(const HandoffInput *in, char **ret) {
        _cleanup_strv_free_ char **lines = NULL, **hashes = NULL;
        _cleanup_free_ char *text = NULL, *buf = NULL;
        char total[2 * SHA256_DIGEST_SIZE + 1];
        size_t size = 0;
        int r;

        assert(in);
        assert(ret);

        r = handoff_fingerprint_text(in, &text);
        if (r < 0)
                return r;
        r = canonical_lines(in, &lines);
        if (r < 0)
                return r;
        r = unit_hashes(lines, &hashes);
        if (r < 0)
                return r;
        qsort(hashes, strv_length(hashes), sizeof(char *), string_compare);

        sha256_hex(text, strlen(text), total);
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, FINGERPRINT_VERSION ":%s:", total);
        STRV_FOREACH (h, hashes)
                fprintf(f, "%s%s", h == hashes ? "" : ",", *h);
        if (fclose(f) != 0 || !buf)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

static bool is_lower_hex(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0')
                        return false;
        return true;
}

/* Split a v1 fingerprint into its total and its unit hashes; -EINVAL if it is not one. */
static int fingerprint_parse(
        const char *s, char total[static 2 * SHA256_DIGEST_SIZE + 1], char ***ret_units) {
        _cleanup_strv_free_ char **units = NULL;
        const char *p;
        int r;

        if (!strneq(s, FINGERPRINT_VERSION ":", strlen(FINGERPRINT_VERSION ":")))
                return -EINVAL;
        p = s + strlen(FINGERPRINT_VERSION ":");
        if (strlen(p) < 2 * SHA256_DIGEST_SIZE + 1 || !is_lower_hex(p, 2 * SHA256_DIGEST_SIZE) ||
            p[2 * SHA256_DIGEST_SIZE] != ':')
                return -EINVAL;
        memcpy(total, p, 2 * SHA256_DIGEST_SIZE);
        total[2 * SHA256_DIGEST_SIZE] = '\0';
        p += 2 * SHA256_DIGEST_SIZE + 1;

        units = calloc(1, sizeof(char *));
        if (!units)
                return -ENOMEM;
        while (*p) {
                if (strlen(p) < FINGERPRINT_UNIT_HEX || !is_lower_hex(p, FINGERPRINT_UNIT_HEX))
                        return -EINVAL;
                r = strv_push(&units, strndup(p, FINGERPRINT_UNIT_HEX));
                if (r < 0)
                        return r;
                p += FINGERPRINT_UNIT_HEX;
                if (*p == ',' && p[1] != '\0')
                        p++;
                else if (*p != '\0')
                        return -EINVAL;
        }
        *ret_units = TAKE_PTR(units);
        return 0;
}

int handoff_fingerprint_check(const HandoffInput *in, const char *fingerprint, char ***ret_differences) {
        _cleanup_strv_free_ char **theirs = NULL, **lines = NULL, **ours = NULL, **diff = NULL;
        _cleanup_free_ char *mine = NULL;
        char total[2 * SHA256_DIGEST_SIZE + 1];
        int r;

        assert(in);
        assert(fingerprint);
        assert(ret_differences);

        r = fingerprint_parse(fingerprint, total, &theirs);
        if (r < 0)
                return r;
        r = handoff_fingerprint(in, &mine);
        if (r < 0)
                return r;
        diff = calloc(1, sizeof(char *));
        if (!diff)
                return -ENOMEM;
        if (streq(mine, fingerprint)) {
                *ret_differences = TAKE_PTR(diff);
                return 1;
        }

        r = canonical_lines(in, &lines);
        if (r < 0)
                return r;
        r = unit_hashes(lines, &ours);
        if (r < 0)
                return r;
        /* Multiset difference: each of their units consumes one equal unit of ours. */
        for (size_t i = 0; ours[i]; i++) {
                char **t = theirs;
                for (; *t; t++)
                        if (streq(*t, ours[i]))
                                break;
                if (*t) {
                        strv_remove(theirs, *t);
                        continue;
                }
                r = strv_extendf(&diff, "only here: %s", lines[i]);
                if (r < 0)
                        return r;
        }
        STRV_FOREACH (t, theirs) {
                r = strv_extendf(&diff, "only in fingerprint: unit %s", *t);
                if (r < 0)
                        return r;
        }
        if (!diff[0]) {
                /* Same units, other total: the fingerprint was not made by this version's rules. */
                r = strv_extendf(&diff, "total %s differs from this host's", total);
                if (r < 0)
                        return r;
        }
        *ret_differences = TAKE_PTR(diff);
        return 0;
}
