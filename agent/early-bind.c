/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Early bind (early-bind.h): a new function's driver_override decided on its kernel "add". */

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "early-bind.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "pci-address.h"
#include "strv.h"
#include "sysfs.h"

/* "VVVV:DDDD" (pci_uevent()'s "%04X:%04X") */
static int parse_id_pair(const char *s, uint16_t *ret_a, uint16_t *ret_b) {
        unsigned a, b;
        int n = 0;

        if (!s || strlen(s) != 9 || strspn(s, "0123456789abcdefABCDEF:") != 9 || s[4] != ':' ||
            sscanf(s, "%4x:%4x%n", &a, &b, &n) != 2 || n != 9)
                return -EINVAL;
        *ret_a = (uint16_t)a;
        *ret_b = (uint16_t)b;
        return 0;
}

/* "CCCCCC": pci_uevent() prints the 24-bit class with "%04X", so 4 to 6 digits */
static int parse_class(const char *s, uint32_t *ret) {
        unsigned c;
        int n = 0;

        if (!s || strlen(s) < 4 || strlen(s) > 6 || s[strspn(s, "0123456789abcdefABCDEF")] != 0 ||
            sscanf(s, "%6x%n", &c, &n) != 1 || (size_t)n != strlen(s))
                return -EINVAL;
        *ret = c;
        return 0;
}

/* Rules that match on what no uevent carries (Slot=, Serial=) need the function read whole. */
static bool desired_needs_full_read(const DesiredState *s) {
        for (size_t i = 0; i < s->n_rules; i++)
                if (s->rules[i].match.slot || s->rules[i].match.has_serial)
                        return true;
        return false;
}

/* Whether a rule matches on a VF index range: only then does a new VF's index matter (device_match()
 * reads PciDevice.vf_index for nothing else), and it costs two sysfs reads per VF. */
static bool desired_needs_vf_index(const DesiredState *s) {
        for (size_t i = 0; i < s->n_rules; i++)
                if (s->rules[i].match.has_vf_index)
                        return true;
        return false;
}

/*
 * VF index of |vf| under |pf| from the PF's First VF Offset and VF Stride (PCIe SR-IOV §9.3.3.9-10):
 * routing ID of VF n = PF's + offset + n * stride. Both may change with NumVFs (the kernel re-reads
 * them in pci_iov_set_numvfs()), so they are read now from sriov_offset and sriov_stride
 * (sysfs-bus-pci), not taken from the model. The virtfnN link that names the index is created only
 * after the VF's "add" uevent (pci_iov_add_virtfn()). -1 when it does not compute.
 */
static int32_t vf_index_of(const PciDevice *pf, const char *vf) {
        _cleanup_free_ char *dir = NULL;
        PciAddress a, b;
        int64_t rid_pf, rid_vf, d, offset, stride;

        if (!pf || pci_address_from_string(pf->address, &a) < 0 || pci_address_from_string(vf, &b) < 0 ||
            a.domain != b.domain)
                return -1;
        rid_pf = (int64_t)a.bus << 8 | (int64_t)a.slot << 3 | a.function;
        rid_vf = (int64_t)b.bus << 8 | (int64_t)b.slot << 3 | b.function;
        /* A VF's routing ID is above its PF's (offset >= 1): no sysfs read for the others. */
        if (rid_vf <= rid_pf || asprintf(&dir, "%s/%s", SYSFS_PCI_DEVICES, pf->address) < 0)
                return -1;
        if (sysfs_read_int(dir, SYSFS_ATTR_SRIOV_OFFSET, 1, UINT16_MAX, &offset) < 0 ||
            sysfs_read_int(dir, SYSFS_ATTR_SRIOV_STRIDE, 0, UINT16_MAX, &stride) < 0)
                return -1;
        d = rid_vf - rid_pf - offset;
        if (stride == 0) /* unused with one VF */
                return d == 0 ? 0 : -1;
        if (d < 0 || d % stride != 0 || d / stride > INT32_MAX)
                return -1;
        return (int32_t)(d / stride);
}

/* Whether the device directories |a| and |b| sit in the same directory. NULL or an unresolved path
 * (/sys/bus/pci/devices/...) on either side: maybe. */
static bool maybe_siblings(const char *a, const char *b) {
        static const char devices[] = "/sys/devices/";
        size_t n;

        if (!a || !b || !strneq(a, devices, strlen(devices)) || !strneq(b, devices, strlen(devices)))
                return true;
        n = (size_t)(strrchr(a, '/') - a);
        return n == (size_t)(strrchr(b, '/') - b) && strneq(a, b, n);
}

/*
 * A VF's "add" uevent comes before its physfn link (pci_iov_add_virtfn(): pci_device_add(), then
 * pci_iov_sysfs_link()). The PF is then the one SR-IOV function of the model whose First VF Offset
 * and VF Stride put a VF index below its TotalVFs at |address|. Only PFs beside |syspath|, the new
 * function's directory (may be NULL): a VF's device is a child of its PF's parent
 * (pci_iov_add_virtfn() sets virtfn->dev.parent = dev->dev.parent, drivers/pci/iov.c), and that
 * spares reading the offset and stride of PFs elsewhere. Returns 0 and the PF's address, -ENOENT
 * when no PF or several do.
 */
static int vf_physfn_guess(const Model *model, const char *address, const char *syspath, char **ret) {
        const PciDevice *const *devices, *found = NULL;
        size_t n = 0;

        devices = model_get_devices(model, &n);
        for (size_t i = 0; i < n; i++) {
                int32_t index;

                if (devices[i]->sriov_total_vfs == 0 || !maybe_siblings(devices[i]->syspath, syspath))
                        continue;
                index = vf_index_of(devices[i], address);
                if (index < 0 || (uint32_t)index >= devices[i]->sriov_total_vfs)
                        continue;
                if (found)
                        return -ENOENT;
                found = devices[i];
        }
        if (!found)
                return -ENOENT;
        *ret = strdup(found->address);
        return *ret ? 0 : -ENOMEM;
}

static const char *const hotplug_guard_table[_HOTPLUG_GUARD_MAX] = {
        [HOTPLUG_GUARD_NONE] = "none",
        [HOTPLUG_GUARD_SRIOV_AUTOPROBE] = "sriov-autoprobe",
        [HOTPLUG_GUARD_DRIVER_OVERRIDE] = "driver-override",
};

const char *hotplug_guard_to_string(HotplugGuard g) {
        return g >= 0 && g < _HOTPLUG_GUARD_MAX ? hotplug_guard_table[g] : NULL;
}

/* A driver spec that keeps a function from its host driver: a named driver, or "none". */
static bool driver_spec_claims(const DriverSpec *d) {
        return d->kind == DRIVER_KIND_NAMED || d->kind == DRIVER_KIND_NONE;
}

/* Whether a rule for PF |pf| creates VFs with sriov_drivers_autoprobe 0 (the planner writes 0 before
 * sriov_numvfs for such a VFDriver=, planner.c). */
static bool desired_creates_guarded_vfs(const DesiredState *s, const PciAddress *pf) {
        for (size_t i = 0; i < s->n_rules; i++) {
                const DesiredRule *r = &s->rules[i];

                if (r->match.has_address && pci_address_compare(&r->match.address, pf) == 0 &&
                    r->has_num_vfs && r->num_vfs > 0 && driver_spec_claims(&r->vf_driver))
                        return true;
        }
        return false;
}

HotplugGuard early_bind_guard(const DesiredState *s) {
        HotplugGuard g = HOTPLUG_GUARD_NONE;

        for (size_t i = 0; s && i < s->n_rules; i++) {
                const DesiredRule *r = &s->rules[i];

                if (r->has_num_vfs && r->num_vfs > 0 && driver_spec_claims(&r->vf_driver))
                        g = HOTPLUG_GUARD_SRIOV_AUTOPROBE;
                if (!driver_spec_claims(&r->driver))
                        continue;
                if (!r->match.has_pf || !desired_creates_guarded_vfs(s, &r->match.pf))
                        return HOTPLUG_GUARD_DRIVER_OVERRIDE;
                g = HOTPLUG_GUARD_SRIOV_AUTOPROBE;
        }
        return g;
}

static int early_skip(const char *address, const char *why) {
        log_debug(
                "PCI function %s: no driver_override on its \"add\" (%s); planned once read", address, why);
        return 0;
}

int early_bind_plan(
        const DesiredState *desired, const Model *model, const CriticalSet *critical,
        const EarlyBindUevent *u, Plan **ret_plan, char **ret_driver) {
        _cleanup_(desired_resolution_freep) DesiredResolution *resolution = NULL;
        _cleanup_(plan_freep) Plan *plan = NULL;
        _cleanup_free_ char *dir = NULL, *group = NULL, *physfn = NULL;
        const PciDevice *const *devices;
        const PciDevice *list[2], *pf = NULL;
        const DesiredDevice *want;
        PciDevice d = { .iommu_group = -1, .numa_node = -1, .vf_index = -1 };
        PciAddress a;
        uint32_t class;
        size_t n_devices = 0;
        int64_t v;
        char *driver;
        int k;

        assert(u);
        assert(ret_plan);
        assert(ret_driver);

        if (!desired || desired->n_rules == 0 || !model || !u->sysname ||
            pci_address_from_string(u->sysname, &a) < 0)
                return 0;
        pci_address_format(&a, d.address);
        if (!critical)
                return early_skip(d.address, "the host-critical functions are not known yet");
        if (model_get_device(model, d.address))
                return early_skip(d.address, "already known");
        if (desired_needs_full_read(desired))
                return early_skip(d.address, "a rule matches on Slot= or Serial=");
        if (parse_id_pair(u->pci_id, &d.vendor_id, &d.device_id) < 0 ||
            parse_id_pair(u->pci_subsys_id, &d.subsystem_vendor_id, &d.subsystem_device_id) < 0 ||
            parse_class(u->pci_class, &class) < 0) {
                return early_skip(d.address, "no usable ids in its \"add\" uevent");
        }
        d.class_code = class;

        if (asprintf(&dir, "%s/%s", SYSFS_PCI_DEVICES, d.address) < 0)
                return -ENOMEM;
        if (sysfs_read_link_basename(dir, SYSFS_ATTR_IOMMU_GROUP, &group) >= 0) {
                if (sysfs_parse_int(group, 0, INT32_MAX, &v) < 0)
                        return early_skip(d.address, "unreadable iommu_group");
                d.iommu_group = (int32_t)v;
        }
        k = sysfs_read_link_basename(dir, SYSFS_ATTR_PHYSFN, &physfn);
        if (k == -ENOENT)
                k = vf_physfn_guess(model, d.address, u->syspath, &physfn);
        if (k >= 0) {
                pf = model_get_device(model, physfn);
                d.sriov_role = SRIOV_ROLE_VF;
                d.physfn = physfn;
                if (!pf)
                        return early_skip(d.address, "its PF is unknown");
                if (desired_needs_vf_index(desired)) {
                        d.vf_index = vf_index_of(pf, d.address);
                        if (d.vf_index < 0)
                                return early_skip(d.address, "its VF index is unknown");
                }
        } else if (k != -ENOENT)
                return early_skip(d.address, "unreadable physfn");

        /* Alone in its group (bridges aside): no peer to cover, none held. A bridge peer that is
         * host-critical makes the whole group critical (planner.c): the full plan refuses it. */
        devices = model_get_devices(model, &n_devices);
        for (size_t i = 0; d.iommu_group >= 0 && i < n_devices; i++)
                if (devices[i]->iommu_group == d.iommu_group &&
                    (!pci_device_is_bridge(devices[i]) || critical_set_get(critical, devices[i]->address)))
                        return early_skip(d.address, "IOMMU group peers");

        list[0] = &d;
        list[1] = pf;
        k = desired_state_resolve_devices(desired, list, pf ? 2 : 1, &resolution);
        if (k < 0)
                return k;
        want = desired_resolution_get_device(resolution, d.address);
        if (!want || want->driver.kind != DRIVER_KIND_NAMED)
                return early_skip(d.address, "no rule names a driver for it");
        if (driver_name_is_vfio(want->driver.name) && d.iommu_group < 0)
                return early_skip(d.address, "no IOMMU group");

        k = planner_plan_new_function(&d, &want->driver, want->source, &plan);
        if (k < 0)
                return k;
        driver = strdup(want->driver.name);
        if (!driver)
                return -ENOMEM;
        *ret_plan = TAKE_PTR(plan);
        *ret_driver = driver;
        return 1;
}

/* ---- the early-bind thread's snapshot -------------------------------------------------------------- */

typedef struct EarlyRule {
        DeviceMatch match; /* ->slot NULL: a snapshot with Slot= or Serial= rules declines everything */
        DriverKind kind;
        char driver[EARLY_BIND_DRIVER_MAX];
        char *source; /* "FILE:LINE" of Driver= */
} EarlyRule;

struct EarlyBindSnapshot {
        const char *why_not; /* static: why it declines every function; NULL: it decides */
        EarlyRule *rules; /* in the desired state's order (the later wins) */
        size_t n_rules;
        char **bridges; /* strv: bridges that are not host-critical */
        char **pf_dirs; /* strv: the directories that hold an SR-IOV PF (its VFs appear beside it) */
};

EarlyBindSnapshot *early_bind_snapshot_free(EarlyBindSnapshot *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_rules; i++)
                free(s->rules[i].source);
        free(s->rules);
        strv_free(s->bridges);
        strv_free(s->pf_dirs);
        free(s);
        return NULL;
}

static int snapshot_copy_rules(EarlyBindSnapshot *s, const DesiredState *desired) {
        s->rules = calloc(desired->n_rules ?: 1, sizeof(EarlyRule));
        if (!s->rules)
                return -ENOMEM;
        for (size_t i = 0; i < desired->n_rules; i++) {
                const DesiredRule *r = &desired->rules[i];
                EarlyRule *e = &s->rules[s->n_rules];

                if (r->driver.kind == DRIVER_KIND_UNSET)
                        continue;
                if (r->driver.kind == DRIVER_KIND_NAMED &&
                    (!r->driver.name || strlen(r->driver.name) >= sizeof(e->driver)))
                        continue; /* no such driver name: the loop's plan reports it */
                e->match = r->match;
                e->match.slot = NULL;
                e->kind = r->driver.kind;
                if (r->driver.kind == DRIVER_KIND_NAMED)
                        strcpy(e->driver, r->driver.name);
                if (asprintf(&e->source, "%s:%u", r->path, r->driver_line) < 0) {
                        e->source = NULL;
                        return -ENOMEM;
                }
                s->n_rules++;
        }
        return 0;
}

int early_bind_snapshot_new(
        const DesiredState *desired, const PciDevice *const *devices, size_t n, const CriticalSet *critical,
        bool store_usable, EarlyBindSnapshot **ret) {
        _cleanup_(early_bind_snapshot_freep) EarlyBindSnapshot *s = NULL;
        int k;

        assert(ret);

        s = calloc(1, sizeof(EarlyBindSnapshot));
        if (!s)
                return -ENOMEM;
        if (!desired || desired->n_rules == 0)
                s->why_not = "no rule";
        else if (!critical)
                s->why_not = "the host-critical functions are not known yet";
        else if (!store_usable)
                s->why_not = "the ownership records are unusable";
        else if (desired_needs_full_read(desired))
                s->why_not = "a rule matches on Slot= or Serial=";
        else if (early_bind_guard(desired) != HOTPLUG_GUARD_DRIVER_OVERRIDE)
                s->why_not = "no rule claims a hot-added function";
        if (s->why_not) {
                *ret = TAKE_PTR(s);
                return 0;
        }

        k = snapshot_copy_rules(s, desired);
        if (k < 0)
                return k;
        for (size_t i = 0; devices && i < n; i++) {
                const PciDevice *d = devices[i];

                if (pci_device_is_bridge(d) && !critical_set_get(critical, d->address) &&
                    strv_extend(&s->bridges, d->address) < 0)
                        return -ENOMEM;
                if (d->sriov_total_vfs > 0) {
                        _cleanup_free_ char *dir = NULL;
                        const char *slash = d->syspath ? strrchr(d->syspath, '/') : NULL;

                        /* Where it is unknown, any function may be its VF: decline all. */
                        if (!slash || !strneq(d->syspath, "/sys/devices/", strlen("/sys/devices/"))) {
                                s->why_not = "an SR-IOV PF whose directory is unknown";
                                break;
                        }
                        dir = strndup(d->syspath, (size_t)(slash - d->syspath));
                        if (!dir)
                                return -ENOMEM;
                        if (!strv_contains(s->pf_dirs, dir) && strv_extend(&s->pf_dirs, dir) < 0)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(s);
        return 0;
}

bool early_bind_snapshot_decide(
        const EarlyBindSnapshot *s, const EarlyBindFacts *f, EarlyBindDecision *ret, const char **ret_why) {
        PciDevice d = { .iommu_group = -1, .numa_node = -1, .vf_index = -1 };
        const EarlyRule *winner = NULL;
        const char *slash;
        PciAddress a;
        uint32_t class;

        assert(f);
        assert(ret);
        assert(ret_why);

#define DECLINE(why)              \
        do {                      \
                *ret_why = (why); \
                return false;     \
        } while (false)

        if (!s)
                DECLINE("no rules published yet");
        if (s->why_not)
                DECLINE(s->why_not);
        if (!f->u.sysname || pci_address_from_string(f->u.sysname, &a) < 0)
                DECLINE("not a PCI address");
        if (f->synthetic)
                DECLINE("a synthetic \"add\" (SYNTH_UUID)");
        if (f->has_driver)
                DECLINE("a driver is bound already");
        if (f->has_physfn)
                DECLINE("a VF");
        /* A VF's "add" comes before its physfn link, and its device sits beside its PF's
         * (pci_iov_add_virtfn(), drivers/pci/iov.c): the loop knows the PFs' VF offsets. */
        slash = f->u.syspath ? strrchr(f->u.syspath, '/') : NULL;
        if (!slash)
                DECLINE("no device path");
        STRV_FOREACH (p, s->pf_dirs)
                if (strlen(*p) == (size_t)(slash - f->u.syspath) && strneq(*p, f->u.syspath, strlen(*p)))
                        DECLINE("maybe a VF (an SR-IOV PF beside it)");
        if (f->n_peers > EARLY_BIND_MAX_PEERS)
                DECLINE("IOMMU group peers");
        for (size_t i = 0; i < f->n_peers; i++)
                if (!strv_contains(s->bridges, f->peers[i]))
                        DECLINE("IOMMU group peers");

        pci_address_format(&a, d.address);
        if (parse_id_pair(f->u.pci_id, &d.vendor_id, &d.device_id) < 0 ||
            parse_id_pair(f->u.pci_subsys_id, &d.subsystem_vendor_id, &d.subsystem_device_id) < 0 ||
            parse_class(f->u.pci_class, &class) < 0)
                DECLINE("no usable ids in its \"add\" uevent");
        d.class_code = class;
        d.iommu_group = f->iommu_group;

        /* desired_state_resolve_devices()'s choice for a function that is no VF: the later rule whose
         * [Match] matches and that sets Driver= wins. */
        for (size_t i = s->n_rules; i > 0 && !winner; i--)
                if (device_match_test(&s->rules[i - 1].match, &d))
                        winner = &s->rules[i - 1];
        if (!winner || winner->kind != DRIVER_KIND_NAMED)
                DECLINE("no rule names a driver for it");
        if (driver_name_is_vfio(winner->driver) && d.iommu_group < 0)
                DECLINE("no IOMMU group");
#undef DECLINE

        *ret = (EarlyBindDecision){};
        strcpy(ret->driver, winner->driver);
        snprintf(ret->source, sizeof(ret->source), "%s", winner->source);
        *ret_why = NULL;
        return true;
}
