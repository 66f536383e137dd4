/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <string.h>

#include "fuzz-conf.h"
#include "fuzz.h"
#include "macro.h"

static void check_driver(const DriverSpec *d, const char *what, bool may_be_unset) {
        DriverSpec again = {};
        const char *s;

        fuzz_check(d->kind >= 0 && d->kind < _DRIVER_KIND_MAX, "%s: kind %d", what, d->kind);
        fuzz_check(
                (d->kind == DRIVER_KIND_NAMED) == !!d->name, "%s: kind %s with name %s", what,
                driver_kind_to_string(d->kind), strna(d->name));
        if (d->kind == DRIVER_KIND_UNSET) {
                fuzz_check(may_be_unset, "%s: unset", what);
                return;
        }
        s = driver_spec_to_string(d);
        fuzz_check(s, "%s: no string form", what);
        fuzz_check(driver_spec_parse(s, &again) == 0, "%s: '%s' does not parse back", what, s);
        fuzz_check(driver_spec_equal(d, &again), "%s: '%s' parses back differently", what, s);
        driver_spec_done(&again);
}

void fuzz_conf_check_state(const DesiredState *s) {
        for (size_t i = 0; i < s->n_rules; i++) {
                const DesiredRule *r = &s->rules[i];

                fuzz_check(r->path, "rule %zu without path", i);
                /* An [Mdev] rule may select its parents by Parent= alone (issue 14). */
                fuzz_check(
                        !device_match_is_empty(&r->match) || (r->mdev.present && r->mdev.parents),
                        "%s: rule with an empty [Match]", r->path);
                fuzz_check(
                        r->driver.kind != DRIVER_KIND_UNSET || r->has_num_vfs ||
                                r->vf_driver.kind != DRIVER_KIND_UNSET || r->mdev.present || r->vgpu.present,
                        "%s: rule that does nothing", r->path);
                fuzz_check(!(r->mdev.present && r->vgpu.present), "%s: [Mdev] and [VGPU]", r->path);
                fuzz_check(!r->mdev.present || r->mdev.type, "%s: [Mdev] without Type=", r->path);
                fuzz_check(!(r->mdev.has_uuid && r->mdev.has_count), "%s: UUID= and Count=", r->path);
                fuzz_check(
                        !r->mdev.has_uuid || mdev_uuid_is_valid(r->mdev.uuid), "%s: UUID not canonical",
                        r->path);
                fuzz_check(
                        !r->mdev.has_count ||
                                (r->mdev.count >= 1 && r->mdev.count <= MDEV_UUIDS_PER_RULE_MAX),
                        "%s: Count=%u", r->path, r->mdev.count);
                for (size_t k = 0; k < r->mdev.n_attrs; k++)
                        fuzz_check(
                                r->mdev.attrs[k].name && !strchr(r->mdev.attrs[k].name, '/') &&
                                        r->mdev.attrs[k].value,
                                "%s: attribute %zu", r->path, k);
                fuzz_check(
                        !r->vgpu.present || (r->vgpu.type && !device_match_is_empty(&r->match)),
                        "%s: [VGPU] without Type= or [Match]", r->path);
                check_driver(&r->driver, r->path, true);
                check_driver(&r->vf_driver, r->path, true);
                fuzz_check(r->group >= 0 && r->group < _GROUP_POLICY_MAX, "%s: group %d", r->path, r->group);
                fuzz_check(!r->match.has_vf_index || r->match.has_pf, "%s: VFIndex= without PF=", r->path);
                fuzz_check(
                        !r->match.has_vf_index || r->match.vf_index_first <= r->match.vf_index_last,
                        "%s: VFIndex=%u-%u", r->path, r->match.vf_index_first, r->match.vf_index_last);
                fuzz_check(
                        r->match.address.slot <= 0x1f && r->match.address.function <= 7,
                        "%s: address out of range", r->path);
                if (r->driver.kind == DRIVER_KIND_NAMED)
                        fuzz_check(
                                strlen(r->driver.name) <= DESIRED_DRIVER_NAME_MAX,
                                "%s: driver name %zu long", r->path, strlen(r->driver.name));
                /* Rules are in lexical order of their basename. */
                if (i > 0) {
                        const char *a = strrchr(s->rules[i - 1].path, '/'), *b = strrchr(r->path, '/');

                        fuzz_check(
                                strcmp(a ? a + 1 : s->rules[i - 1].path, b ? b + 1 : r->path) < 0,
                                "rules out of order: %s before %s", s->rules[i - 1].path, r->path);
                }
        }
        for (char **e = s->errors; e && *e; e++)
                fuzz_check(**e && !strchr(*e, '\n'), "error message '%s' empty or with a newline", *e);
        fuzz_check(
                !s->errors == (s->n_rejected == 0), "%zu files rejected but errors %s", s->n_rejected,
                s->errors ? "present" : "absent");
}

static PciDevice devices[] = {
        { .address = "0000:03:00.0",
          .vendor_id = 0x8086,
          .device_id = 0x1572,
          .class_code = 0x020000,
          .iommu_group = 20,
          .driver = (char *)"i40e",
          .numa_node = 0,
          .sriov_role = SRIOV_ROLE_PF,
          .sriov_total_vfs = 64,
          .sriov_num_vfs = 2,
          .vf_index = -1 },
        { .address = "0000:03:02.0",
          .vendor_id = 0x8086,
          .device_id = 0x154c,
          .class_code = 0x020000,
          .iommu_group = 21,
          .numa_node = 0,
          .sriov_role = SRIOV_ROLE_VF,
          .physfn = (char *)"0000:03:00.0",
          .vf_index = 0 },
        { .address = "0000:03:02.1",
          .vendor_id = 0x8086,
          .device_id = 0x154c,
          .class_code = 0x020000,
          .iommu_group = 22,
          .numa_node = 0,
          .sriov_role = SRIOV_ROLE_VF,
          .physfn = (char *)"0000:03:00.0",
          .vf_index = 1 },
        { .address = "0000:41:00.0",
          .vendor_id = 0x10de,
          .device_id = 0x2204,
          .subsystem_vendor_id = 0x1462,
          .subsystem_device_id = 0x3881,
          .class_code = 0x030000,
          .iommu_group = 30,
          .numa_node = -1,
          .physical_slot = (char *)"3",
          .vf_index = -1 },
        { .address = "0000:42:00.0",
          .vendor_id = 0x144d,
          .device_id = 0xa808,
          .class_code = 0x010802,
          .iommu_group = 31,
          .driver = (char *)"nvme",
          .numa_node = -1,
          .has_serial = true,
          .serial = 0x002538b381b0a1c2,
          .vf_index = -1 },
};

void fuzz_conf_check_resolution(const DesiredState *s) {
        _cleanup_(desired_resolution_freep) DesiredResolution *res = NULL;
        const PciDevice *list[ELEMENTSOF(devices)];
        int r;

        for (size_t i = 0; i < ELEMENTSOF(devices); i++)
                list[i] = &devices[i];
        r = desired_state_resolve_devices(s, list, ELEMENTSOF(list), &res);
        fuzz_check(r == 0, "desired_state_resolve_devices = %d", r);
        fuzz_check(res->n_devices <= ELEMENTSOF(devices), "%zu devices resolved", res->n_devices);
        for (size_t i = 0; i < res->n_devices; i++) {
                const DesiredDevice *d = &res->devices[i];

                fuzz_check(d->driver.kind != DRIVER_KIND_UNSET, "%s: resolved to unset", d->address);
                fuzz_check(d->source, "%s: no source", d->address);
                fuzz_check(desired_resolution_get_device(res, d->address) == d, "%s: lookup", d->address);
                if (i > 0)
                        fuzz_check(
                                strcmp(res->devices[i - 1].address, d->address) < 0, "devices out of order");
                /* Only a VF gets a driver from a PF's VFDriver=. */
                if (d->from_vf_driver)
                        fuzz_check(
                                strcmp(d->address, "0000:03:02.0") == 0 ||
                                        strcmp(d->address, "0000:03:02.1") == 0,
                                "%s: VFDriver= applied to a function that is no VF", d->address);
        }
        for (size_t i = 0; i < res->n_pfs; i++)
                fuzz_check(
                        desired_resolution_get_pf(res, res->pfs[i].address) == &res->pfs[i], "%s: lookup",
                        res->pfs[i].address);
}
