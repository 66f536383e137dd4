/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>

#include "log.h"
#include "macro.h"
#include "names.h"
#include "planner.h"
#include "strv.h"

static const char *const device_state_table[_DEVICE_STATE_MAX] = {
        [DEVICE_STATE_CONVERGED] = "converged", [DEVICE_STATE_PENDING] = "pending",
        [DEVICE_STATE_BLOCKED] = "blocked",     [DEVICE_STATE_REFUSED] = "refused",
        [DEVICE_STATE_STUCK] = "stuck",         [DEVICE_STATE_FAILED] = "failed",
};

const char *device_state_to_string(DeviceState s) {
        return s >= 0 && s < _DEVICE_STATE_MAX ? device_state_table[s] : NULL;
}

DeviceState device_state_from_string(const char *s) {
        for (size_t i = 0; s && i < _DEVICE_STATE_MAX; i++)
                if (streq(device_state_table[i], s))
                        return (DeviceState)i;
        return _DEVICE_STATE_INVALID;
}

static const char *const plan_action_type_table[_PLAN_ACTION_TYPE_MAX] = {
        [PLAN_ACTION_SET_SRIOV_AUTOPROBE] = "set-sriov-autoprobe",
        [PLAN_ACTION_SET_NUMVFS] = "set-numvfs",
        [PLAN_ACTION_SET_OVERRIDE] = "set-override",
        [PLAN_ACTION_CLEAR_OVERRIDE] = "clear-override",
        [PLAN_ACTION_UNBIND] = "unbind",
        [PLAN_ACTION_PROBE] = "probe",
        [PLAN_ACTION_VERIFY] = "verify",
        [PLAN_ACTION_MDEV_CREATE] = "mdev-create",
        [PLAN_ACTION_MDEV_SET_ATTR] = "mdev-set-attr",
        [PLAN_ACTION_MDEV_REMOVE] = "mdev-remove",
        [PLAN_ACTION_SET_VGPU_TYPE] = "set-vgpu-type",
};

bool plan_action_type_is_mdev(PlanActionType t) {
        return t == PLAN_ACTION_MDEV_CREATE || t == PLAN_ACTION_MDEV_SET_ATTR ||
                t == PLAN_ACTION_MDEV_REMOVE || t == PLAN_ACTION_SET_VGPU_TYPE;
}

static const char *const mdev_owner_table[_MDEV_OWNER_MAX] = {
        [MDEV_OWNER_HOSTDEVD] = MDEV_OWNER_HOSTDEVD_STRING,
        [MDEV_OWNER_FOREIGN] = MDEV_OWNER_FOREIGN_STRING,
};

const char *mdev_owner_to_string(MdevOwner o) {
        return o >= 0 && o < _MDEV_OWNER_MAX ? mdev_owner_table[o] : NULL;
}

MdevOwner mdev_owner_from_string(const char *s) {
        for (size_t i = 0; s && i < _MDEV_OWNER_MAX; i++)
                if (streq(mdev_owner_table[i], s))
                        return (MdevOwner)i;
        return _MDEV_OWNER_INVALID;
}

const char *plan_action_type_to_string(PlanActionType t) {
        return t >= 0 && t < _PLAN_ACTION_TYPE_MAX ? plan_action_type_table[t] : NULL;
}

PlanActionType plan_action_type_from_string(const char *s) {
        for (size_t i = 0; s && i < _PLAN_ACTION_TYPE_MAX; i++)
                if (streq(plan_action_type_table[i], s))
                        return (PlanActionType)i;
        return _PLAN_ACTION_TYPE_INVALID;
}

static const char *const plan_verify_table[_PLAN_VERIFY_MAX] = {
        [PLAN_VERIFY_DRIVER] = "driver",
        [PLAN_VERIFY_UNBOUND] = "unbound",
        [PLAN_VERIFY_HOST] = "host",
        [PLAN_VERIFY_DRIVER_SETTLE] = "driver-settle",
};

const char *plan_verify_to_string(PlanVerify v) {
        return v >= 0 && v < _PLAN_VERIFY_MAX ? plan_verify_table[v] : NULL;
}

Plan *plan_free(Plan *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_actions; i++) {
                free(p->actions[i].driver);
                free(p->actions[i].reason);
                free(p->actions[i].parent);
                free(p->actions[i].mdev_type);
                free(p->actions[i].attr_name);
                free(p->actions[i].attr_value);
        }
        free(p->actions);
        for (size_t i = 0; i < p->n_mdevs; i++) {
                free(p->mdevs[i].parent);
                free(p->mdevs[i].type);
                free(p->mdevs[i].source);
                free(p->mdevs[i].reason);
        }
        free(p->mdevs);
        for (size_t i = 0; i < p->n_devices; i++) {
                free(p->devices[i].desired_driver);
                free(p->devices[i].source);
                free(p->devices[i].reason);
        }
        free(p->devices);
        strv_free(p->conflicts);
        strv_free(p->sriov_released);
        free(p);
        return NULL;
}

static int plan_device_compare(const void *a, const void *b) {
        return strcmp(((const PlanDevice *)a)->address, ((const PlanDevice *)b)->address);
}

const PlanDevice *plan_get_device(const Plan *p, const char *address) {
        PlanDevice key = {};

        if (!p || p->n_devices == 0 || strlen(address) >= sizeof(key.address))
                return NULL;
        strcpy(key.address, address);
        return bsearch(&key, p->devices, p->n_devices, sizeof(PlanDevice), plan_device_compare);
}

static int plan_mdev_compare(const void *a, const void *b) {
        const PlanMdev *x = a, *y = b;
        int k = strcmp(x->uuid, y->uuid);
        return k != 0 ? k : strcmp(strempty(x->parent), strempty(y->parent));
}

const PlanMdev *plan_get_mdev(const Plan *p, const char *uuid) {
        for (size_t i = 0; p && uuid && *uuid && i < p->n_mdevs; i++)
                if (streq(p->mdevs[i].uuid, uuid))
                        return &p->mdevs[i];
        return NULL;
}

const PlanMdev *plan_get_vgpu(const Plan *p, const char *address) {
        for (size_t i = 0; p && address && i < p->n_mdevs; i++)
                if (p->mdevs[i].uuid[0] == '\0' && p->mdevs[i].parent && streq(p->mdevs[i].parent, address))
                        return &p->mdevs[i];
        return NULL;
}

bool plan_is_converged(const Plan *p) {
        for (size_t i = 0; i < p->n_devices; i++)
                if (p->devices[i].state != DEVICE_STATE_CONVERGED)
                        return false;
        for (size_t i = 0; i < p->n_mdevs; i++)
                if (p->mdevs[i].state != DEVICE_STATE_CONVERGED)
                        return false;
        return p->n_actions == 0;
}

char *plan_action_to_string(const PlanAction *a) {
        const char *type = plan_action_type_to_string(a->type);
        char *s = NULL;
        int k;

        switch (a->type) {
        case PLAN_ACTION_SET_SRIOV_AUTOPROBE:
        case PLAN_ACTION_SET_NUMVFS:
                k = asprintf(&s, "%s %s %" PRIu32 ": %s", type, a->address, a->value, a->reason);
                break;
        case PLAN_ACTION_SET_OVERRIDE:
        case PLAN_ACTION_UNBIND:
                k = asprintf(&s, "%s %s %s: %s", type, a->address, a->driver, a->reason);
                break;
        case PLAN_ACTION_VERIFY:
                if (a->verify == PLAN_VERIFY_DRIVER)
                        k = asprintf(&s, "%s %s %s: %s", type, a->address, a->driver, a->reason);
                else
                        k = asprintf(
                                &s, "%s %s (%s): %s", type, a->address, plan_verify_to_string(a->verify),
                                a->reason);
                break;
        case PLAN_ACTION_MDEV_CREATE:
                k = asprintf(
                        &s, "%s %s %s %s: %s", type, strna(a->parent), a->uuid, strna(a->mdev_type),
                        a->reason);
                break;
        case PLAN_ACTION_MDEV_SET_ATTR:
                k = asprintf(
                        &s, "%s %s %s=%s: %s", type, a->uuid, strna(a->attr_name), strna(a->attr_value),
                        a->reason);
                break;
        case PLAN_ACTION_MDEV_REMOVE:
                k = asprintf(&s, "%s %s %s: %s", type, strna(a->parent), a->uuid, a->reason);
                break;
        case PLAN_ACTION_SET_VGPU_TYPE:
                k = asprintf(&s, "%s %s %" PRIu32 ": %s", type, a->address, a->value, a->reason);
                break;
        default:
                k = asprintf(&s, "%s %s: %s", type, a->address, a->reason);
        }
        return k < 0 ? NULL : s;
}

char *plan_mdev_to_string(const PlanMdev *m) {
        char *s = NULL;
        int k;

        k = asprintf(
                &s, "%s %s %s (%s, %s/%s)%s%s", m->uuid[0] ? "mdev" : "vgpu",
                m->uuid[0] ? m->uuid : strna(m->parent), device_state_to_string(m->state),
                mdev_owner_to_string(m->owner), m->uuid[0] && m->parent ? m->parent : "-", strna(m->type),
                m->reason ? ": " : "", strempty(m->reason));
        return k < 0 ? NULL : s;
}

char *plan_device_to_string(const PlanDevice *d) {
        char *s = NULL;
        int k;

        if (d->reason)
                k = asprintf(&s, "%s %s: %s", d->address, device_state_to_string(d->state), d->reason);
        else
                k = asprintf(&s, "%s %s", d->address, device_state_to_string(d->state));
        return k < 0 ? NULL : s;
}

char *plan_to_string(const Plan *p) {
        _cleanup_free_ char *out = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&out, &size);
        if (!f)
                return NULL;
        for (size_t i = 0; i < p->n_actions; i++) {
                _cleanup_free_ char *a = plan_action_to_string(&p->actions[i]);
                if (!a) {
                        fclose(f);
                        return NULL;
                }
                fprintf(f, "T%u %s\n", p->actions[i].transaction, a);
        }
        for (size_t i = 0; i < p->n_devices; i++) {
                _cleanup_free_ char *d = plan_device_to_string(&p->devices[i]);
                if (!d) {
                        fclose(f);
                        return NULL;
                }
                fprintf(f, "%s\n", d);
        }
        for (size_t i = 0; i < p->n_mdevs; i++) {
                _cleanup_free_ char *m = plan_mdev_to_string(&p->mdevs[i]);
                if (!m) {
                        fclose(f);
                        return NULL;
                }
                fprintf(f, "%s\n", m);
        }
        STRV_FOREACH (c, p->conflicts)
                fprintf(f, "conflict: %s\n", *c);
        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(out);
}

/* ---- planning ------------------------------------------------------------------------------- */

typedef struct Planner {
        const PlannerInput *in;
        const PciDevice **by_address; /* sorted by address */
        const PciDevice **by_group; /* functions in a group, sorted by (group, address) */
        size_t n, n_grouped;
        bool *handled; /* per by_address index: driver already planned in a transaction */
        bool *numvfs_changing; /* per by_address index (PFs): VFs about to be destroyed */
        Plan *plan;
} Planner;

static int device_ptr_compare(const void *a, const void *b) {
        return strcmp((*(const PciDevice *const *)a)->address, (*(const PciDevice *const *)b)->address);
}

static int group_ptr_compare(const void *a, const void *b) {
        const PciDevice *x = *(const PciDevice *const *)a, *y = *(const PciDevice *const *)b;

        if (x->iommu_group != y->iommu_group)
                return x->iommu_group < y->iommu_group ? -1 : 1;
        return strcmp(x->address, y->address);
}

static ssize_t planner_index(const Planner *p, const char *address) {
        PciDevice key = {};
        const PciDevice *k = &key, **found;

        if (!address || strlen(address) >= sizeof(key.address) || p->n == 0)
                return -1;
        strcpy(key.address, address);
        found = bsearch(&k, p->by_address, p->n, sizeof(PciDevice *), device_ptr_compare);
        return found ? found - p->by_address : -1;
}

static const PciDevice *planner_find(const Planner *p, const char *address) {
        ssize_t i = planner_index(p, address);
        return i < 0 ? NULL : p->by_address[i];
}

/* The other functions of d's IOMMU group, in address order, into |ret| (caller frees the array). */
static int planner_peers(const Planner *p, const PciDevice *d, const PciDevice ***ret, size_t *ret_n) {
        const PciDevice **peers = NULL;
        size_t n = 0, lo = 0, hi = p->n_grouped;

        *ret = NULL;
        *ret_n = 0;
        if (d->iommu_group < 0)
                return 0;
        /* lower bound of the group */
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (p->by_group[mid]->iommu_group < d->iommu_group)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = lo; i < p->n_grouped && p->by_group[i]->iommu_group == d->iommu_group; i++) {
                if (p->by_group[i] == d)
                        continue;
                const PciDevice **a = reallocarray(peers, n + 1, sizeof(PciDevice *));
                if (!a) {
                        free(peers);
                        return -ENOMEM;
                }
                peers = a;
                peers[n++] = p->by_group[i];
        }
        *ret = peers;
        *ret_n = n;
        return 0;
}

static const CriticalDevice *planner_critical(const Planner *p, const char *address) {
        for (size_t i = 0; i < p->in->n_critical; i++)
                if (streq(p->in->critical[i].address, address))
                        return &p->in->critical[i];
        return NULL;
}

/* Why |d| is host-critical (itself or through a group peer), as a new string; NULL + 0 if it is not. */
static int planner_critical_reason(const Planner *p, const PciDevice *d, char **ret) {
        _cleanup_free_ const PciDevice **peers = NULL;
        const CriticalDevice *c;
        size_t n_peers;
        int r;

        *ret = NULL;
        c = planner_critical(p, d->address);
        if (c)
                return asprintf(ret, "host-critical (%s)", c->reason) < 0 ? -ENOMEM : 0;
        r = planner_peers(p, d, &peers, &n_peers);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_peers; i++) {
                c = planner_critical(p, peers[i]->address);
                if (c)
                        return asprintf(
                                       ret, "shares IOMMU group %" PRIi32 " with host-critical %s (%s)",
                                       d->iommu_group, c->address, c->reason) < 0
                                ? -ENOMEM
                                : 0;
        }
        return 0;
}

/*
 * "pid 42 (qemu-system-x86) via /dev/vfio/12, ..." for every holder of d; NULL + 0 if none. A holder
 * of an mdev whose parent is d (its group node or cdev, a lease's included) holds d too: unbinding
 * or resetting the parent's driver, or destroying it as a VF, destroys every mdev on it
 * (drivers/vfio/mdev/mdev_core.c, mdev_unregister_parent() removes each child device).
 */
static int planner_holders(const Planner *p, const PciDevice *d, char **ret) {
        _cleanup_free_ char *s = NULL;

        *ret = NULL;
        for (size_t i = 0; i < p->in->n_holders; i++) {
                const Holder *h = &p->in->holders[i];
                const char *via_mdev = NULL;
                char *n;

                if (!holder_holds_device(h, d)) {
                        for (size_t j = 0; j < p->in->n_mdevs && !via_mdev; j++) {
                                const Mdev *m = p->in->mdevs[j];

                                if (m && m->parent_is_pci && m->parent && streq(m->parent, d->address) &&
                                    holder_holds_node(h, m->iommu_group, m->vfio_device))
                                        via_mdev = m->uuid;
                        }
                        if (!via_mdev)
                                continue;
                }
                if (asprintf(
                            &n, "%s%spid %d (%s) via %s%s%s", strempty(s), s ? ", " : "", (int)h->pid,
                            h->comm, h->node, via_mdev ? " of mdev " : "", strempty(via_mdev)) < 0)
                        return -ENOMEM;
                free(s);
                s = n;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

/*
 * Make room for one more element in an array grown one element at a time (|n| used): its capacity is
 * the next power of two, so a plan of thousands of functions reallocates a dozen times, not thousands.
 */
static void *array_grow(void *a, size_t n, size_t size) {
        if (n > 0 && (n & (n - 1)) != 0)
                return a; /* not full: n is no power of two, the capacity is the next one */
        return reallocarray(a, n > 0 ? 2 * n : 4, size);
}

/*
 * Find or add the PlanDevice of |address|. Devices are kept sorted by address as they are added
 * (the planner adds them mostly in ascending order: an insertion is mostly an append), so a lookup
 * is a binary search, not a scan of every function planned so far. The returned pointer is valid
 * until the next call.
 */
static PlanDevice *plan_device_get(Plan *plan, const char *address) {
        size_t lo = 0, hi = plan->n_devices;
        PlanDevice *a;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(plan->devices[mid].address, address);

                if (c == 0)
                        return &plan->devices[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        a = array_grow(plan->devices, plan->n_devices, sizeof(PlanDevice));
        if (!a)
                return NULL;
        plan->devices = a;
        memmove(&a[lo + 1], &a[lo], (plan->n_devices - lo) * sizeof(PlanDevice));
        plan->n_devices++;
        a[lo] = (PlanDevice){ .state = DEVICE_STATE_CONVERGED };
        strcpy(a[lo].address, address);
        return &a[lo];
}

/* Raise d's state to at least |state| (refused > blocked > pending > converged) and append the reason. */
_printf_(4, 5) static int plan_device_note(
        Plan *plan, const char *address, DeviceState state, const char *format, ...) {
        PlanDevice *d = plan_device_get(plan, address);
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int k;

        if (!d)
                return -ENOMEM;
        static const int severity[_DEVICE_STATE_MAX] = {
                [DEVICE_STATE_CONVERGED] = 0, [DEVICE_STATE_PENDING] = 1, [DEVICE_STATE_BLOCKED] = 2,
                [DEVICE_STATE_REFUSED] = 3,   [DEVICE_STATE_STUCK] = 2,   [DEVICE_STATE_FAILED] = 3,
        };
        if (severity[state] > severity[d->state])
                d->state = state;
        if (!format)
                return 0;
        va_start(ap, format);
        k = vasprintf(&msg, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        log_debug("plan: %s %s: %s", address, device_state_to_string(state), msg);
        if (d->reason) {
                char *j;
                if (asprintf(&j, "%s; %s", d->reason, msg) < 0)
                        return -ENOMEM;
                free(d->reason);
                d->reason = j;
        } else
                d->reason = TAKE_PTR(msg);
        return 0;
}

static int plan_device_set_desired(Plan *plan, const char *address, const char *driver, const char *source) {
        PlanDevice *d = plan_device_get(plan, address);

        if (!d)
                return -ENOMEM;
        if (driver && !d->desired_driver) {
                d->desired_driver = strdup(driver);
                if (!d->desired_driver)
                        return -ENOMEM;
        }
        if (source && !d->source) {
                d->source = strdup(source);
                if (!d->source)
                        return -ENOMEM;
        }
        return 0;
}

_printf_(7, 8) static int plan_add_action(
        Plan *plan, PlanActionType type, const char *address, const char *driver, PlanVerify verify,
        uint32_t value, const char *format, ...) {
        PlanAction *a;
        va_list ap;
        int k;

        a = array_grow(plan->actions, plan->n_actions, sizeof(PlanAction));
        if (!a)
                return -ENOMEM;
        plan->actions = a;
        a = &plan->actions[plan->n_actions];
        *a = (PlanAction){
                .type = type,
                .transaction = plan->n_transactions,
                .verify = verify,
                .value = value,
        };
        strcpy(a->address, address);
        plan->n_actions++;
        if (driver) {
                a->driver = strdup(driver);
                if (!a->driver)
                        return -ENOMEM;
        }
        va_start(ap, format);
        k = vasprintf(&a->reason, format, ap);
        va_end(ap);
        if (k < 0) {
                a->reason = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* ---- SR-IOV ---------------------------------------------------------------------------------- */

/* "VF A held by pid N (comm) via NODE, VF B held by ..." for the VFs of |pf| that have holders, or NULL
 * when none has: what a change of its VF count (through 0, destroying every VF) waits for. */
static int pf_vf_blockers(Planner *p, const PciDevice *pf, char **ret) {
        _cleanup_free_ char *blockers = NULL;
        int r;

        STRV_FOREACH (vf_address, pf->virtfns) {
                const PciDevice *vf = planner_find(p, *vf_address);
                _cleanup_free_ char *h = NULL;
                char *j;

                if (!vf)
                        continue;
                r = planner_holders(p, vf, &h);
                if (r < 0)
                        return r;
                if (!h)
                        continue;
                if (asprintf(
                            &j, "%s%sVF %s held by %s", strempty(blockers), blockers ? ", " : "",
                            vf->address, h) < 0)
                        return -ENOMEM;
                free(blockers);
                blockers = j;
        }
        *ret = TAKE_PTR(blockers);
        return 0;
}

static int plan_pf(Planner *p, const DesiredPf *want) {
        Plan *plan = p->plan;
        ssize_t idx = planner_index(p, want->address);
        const PciDevice *pf;
        _cleanup_free_ char *blockers = NULL;
        int r;

        if (idx < 0)
                return 0; /* not present (hot-plug later) */
        pf = p->by_address[idx];

        r = plan_device_set_desired(plan, pf->address, NULL, want->num_vfs_source ?: want->vf_driver_source);
        if (r < 0)
                return r;
        if (pf->sriov_role != SRIOV_ROLE_PF)
                return plan_device_note(
                        plan, pf->address, DEVICE_STATE_REFUSED,
                        "[SRIOV] settings (%s) on a function that is not an SR-IOV PF (no %s)",
                        want->num_vfs_source ?: want->vf_driver_source, SYSFS_ATTR_SRIOV_TOTALVFS);
        if (!want->has_num_vfs || want->num_vfs == pf->sriov_num_vfs)
                return 0;
        if (want->num_vfs > pf->sriov_total_vfs)
                return plan_device_note(
                        plan, pf->address, DEVICE_STATE_REFUSED,
                        "NumVFs=%" PRIu32 " (%s) exceeds %s=%" PRIu32, want->num_vfs, want->num_vfs_source,
                        SYSFS_ATTR_SRIOV_TOTALVFS, pf->sriov_total_vfs);

        /* Safety rule 4: the count goes through 0, destroying every VF; never while one is held. */
        r = pf_vf_blockers(p, pf, &blockers);
        if (r < 0)
                return r;
        if (blockers)
                return plan_device_note(
                        plan, pf->address, DEVICE_STATE_BLOCKED,
                        "NumVFs %" PRIu32 " -> %" PRIu32
                        " (%s) needs %s=0 first, which destroys every VF: %s",
                        pf->sriov_num_vfs, want->num_vfs, want->num_vfs_source, SYSFS_ATTR_SRIOV_NUMVFS,
                        blockers);

        p->numvfs_changing[idx] = true;
        plan->n_transactions++;
        if (pf->sriov_num_vfs > 0) {
                r = plan_add_action(
                        plan, PLAN_ACTION_SET_NUMVFS, pf->address, NULL, 0, 0,
                        "the kernel accepts a new VF count only from 0 (sysfs-bus-pci sriov_numvfs)");
                if (r < 0)
                        return r;
        }
        if (want->num_vfs > 0) {
                /* VFs meant for a named driver (vfio-pci) or none must not be probed by the host driver when
                 * they appear: autoprobe off, then each VF is bound through driver_override. */
                bool autoprobe =
                        !(want->vf_driver.kind == DRIVER_KIND_NAMED ||
                          want->vf_driver.kind == DRIVER_KIND_NONE);
                if (autoprobe != pf->sriov_drivers_autoprobe) {
                        r = plan_add_action(
                                plan, PLAN_ACTION_SET_SRIOV_AUTOPROBE, pf->address, NULL, 0, autoprobe,
                                "VFDriver=%s (%s): %s", strna(driver_spec_to_string(&want->vf_driver)),
                                strna(want->vf_driver_source),
                                autoprobe ? "let the host driver probe new VFs"
                                          : "keep the host driver from probing new VFs");
                        if (r < 0)
                                return r;
                }
                r = plan_add_action(
                        plan, PLAN_ACTION_SET_NUMVFS, pf->address, NULL, 0, want->num_vfs,
                        "NumVFs=%" PRIu32 " (%s)", want->num_vfs, want->num_vfs_source);
                if (r < 0)
                        return r;
        }
        return plan_device_note(
                plan, pf->address, DEVICE_STATE_PENDING, "NumVFs %" PRIu32 " -> %" PRIu32 " (%s)",
                pf->sriov_num_vfs, want->num_vfs, want->num_vfs_source);
}

/* Give back the SR-IOV settings of a PF hostdevd changed that no rule claims any more (OwnedSriov). */
static int plan_pf_restore(Planner *p, const OwnedSriov *o) {
        Plan *plan = p->plan;
        const DesiredPf *want = desired_resolution_get_pf(p->in->desired, o->address);
        _cleanup_free_ char *blockers = NULL, *claimed = NULL;
        ssize_t idx = planner_index(p, o->address);
        const PciDevice *pf;
        uint32_t numvfs;
        bool autoprobe;
        int r;

        if (want && want->has_num_vfs)
                return 0; /* a rule is in charge (plan_pf) */
        if (idx < 0)
                return 0; /* not present: keep the record for when it comes back */
        pf = p->by_address[idx];
        if (pf->sriov_role != SRIOV_ROLE_PF)
                return 0;

        /* Only what still holds hostdevd's value is ours to give back. */
        autoprobe = pf->sriov_drivers_autoprobe == o->drivers_autoprobe ? o->original_drivers_autoprobe
                                                                        : pf->sriov_drivers_autoprobe;
        numvfs = pf->sriov_num_vfs == o->numvfs ? o->original_numvfs : pf->sriov_num_vfs;
        if (numvfs > pf->sriov_total_vfs)
                numvfs = pf->sriov_num_vfs;

        if (numvfs != pf->sriov_num_vfs) {
                STRV_FOREACH (vf_address, pf->virtfns) {
                        const DesiredDevice *dd = desired_resolution_get_device(p->in->desired, *vf_address);

                        if (dd && !dd->from_vf_driver) {
                                if (asprintf(&claimed, "VF %s is claimed by %s", *vf_address, dd->source) <
                                    0)
                                        return -ENOMEM;
                                break;
                        }
                }
                r = pf_vf_blockers(p, pf, &blockers);
                if (r < 0)
                        return r;
        }

        if (numvfs == pf->sriov_num_vfs && autoprobe == pf->sriov_drivers_autoprobe)
                /* Nothing of hostdevd's left on it: the caller drops the record. */
                return strv_extend(&plan->sriov_released, o->address);

        r = plan_device_set_desired(
                plan, pf->address, NULL, "released: no rule claims its SR-IOV settings any more");
        if (r < 0)
                return r;
        if (claimed) {
                /* Keep the VFs a rule names; autoprobe alone would change nothing for them. */
                return plan_device_note(
                        plan, pf->address, DEVICE_STATE_CONVERGED,
                        "keeps %s=%" PRIu32 " (set by hostdevd, was %" PRIu32 "): %s",
                        SYSFS_ATTR_SRIOV_NUMVFS, pf->sriov_num_vfs, o->original_numvfs, claimed);
        }
        if (blockers)
                return plan_device_note(
                        plan, pf->address, DEVICE_STATE_BLOCKED,
                        "giving back %s=%" PRIu32 " needs %s=0 first, which destroys every VF: %s",
                        SYSFS_ATTR_SRIOV_NUMVFS, numvfs, SYSFS_ATTR_SRIOV_NUMVFS, blockers);

        plan->n_transactions++;
        if (autoprobe != pf->sriov_drivers_autoprobe) {
                r = plan_add_action(
                        plan, PLAN_ACTION_SET_SRIOV_AUTOPROBE, pf->address, NULL, 0, autoprobe,
                        "released: %s back to %d, as before hostdevd changed it",
                        SYSFS_ATTR_SRIOV_DRIVERS_AUTOPROBE, autoprobe);
                if (r < 0)
                        return r;
        }
        if (numvfs != pf->sriov_num_vfs) {
                p->numvfs_changing[idx] = true;
                if (pf->sriov_num_vfs > 0) {
                        r = plan_add_action(
                                plan, PLAN_ACTION_SET_NUMVFS, pf->address, NULL, 0, 0,
                                "released: the kernel accepts a new VF count only from 0 (sysfs-bus-pci "
                                "sriov_numvfs)");
                        if (r < 0)
                                return r;
                }
                if (numvfs > 0) {
                        r = plan_add_action(
                                plan, PLAN_ACTION_SET_NUMVFS, pf->address, NULL, 0, numvfs,
                                "released: %s back to %" PRIu32 ", as before hostdevd changed it",
                                SYSFS_ATTR_SRIOV_NUMVFS, numvfs);
                        if (r < 0)
                                return r;
                }
        }
        return plan_device_note(
                plan, pf->address, DEVICE_STATE_PENDING,
                "released: no rule claims its SR-IOV settings any more; giving back %s=%" PRIu32
                " and %s=%d, as before hostdevd changed them",
                SYSFS_ATTR_SRIOV_NUMVFS, numvfs, SYSFS_ATTR_SRIOV_DRIVERS_AUTOPROBE, autoprobe);
}

/* ---- drivers --------------------------------------------------------------------------------- */

/* One function of a driver transaction. */
typedef struct Member {
        const PciDevice *d;
        const DriverSpec *want;
        const char *source;
        bool released; /* owned, no rule: back to host, probe even when driverless */
} Member;

static bool is_converged(const PciDevice *d, const DriverSpec *want, bool released) {
        switch (want->kind) {
        case DRIVER_KIND_NAMED:
                return d->driver && streq(d->driver, want->name);
        case DRIVER_KIND_NONE:
                return !d->driver;
        case DRIVER_KIND_HOST:
                /* Whatever the kernel's own match bound, as long as no override pins it and no VFIO driver
                 * holds it. A released function with no driver is probed once (it may have been
                 * Driver=none). */
                return !d->driver_override && !pci_device_is_vfio_bound(d) && !(released && !d->driver);
        default:
                return true;
        }
}

static bool host_unbind_needed(const PciDevice *d) {
        /* Unbind only what an override or a VFIO driver put there; a host driver already bound stays. */
        return d->driver &&
                (pci_device_is_vfio_bound(d) ||
                 (d->driver_override && streq(d->driver_override, d->driver)));
}

static int emit_transaction(Planner *p, const Member *m, size_t n) {
        Plan *plan = p->plan;
        int r;

        plan->n_transactions++;

        /* Phase 1: driver_override, so no probe in between binds the wrong driver. */
        for (size_t i = 0; i < n; i++) {
                const PciDevice *d = m[i].d;
                if (m[i].want->kind == DRIVER_KIND_NAMED &&
                    !(d->driver_override && streq(d->driver_override, m[i].want->name)))
                        r = plan_add_action(
                                plan, PLAN_ACTION_SET_OVERRIDE, d->address, m[i].want->name, 0, 0,
                                "Driver=%s (%s)", m[i].want->name, m[i].source);
                else if (m[i].want->kind == DRIVER_KIND_HOST && d->driver_override)
                        r = plan_add_action(
                                plan, PLAN_ACTION_CLEAR_OVERRIDE, d->address, NULL, 0, 0,
                                "Driver=host (%s): drop driver_override=%s", m[i].source,
                                d->driver_override);
                else
                        r = 0;
                if (r < 0)
                        return r;
        }
        /* Phase 2: unbind from the current driver. */
        for (size_t i = 0; i < n; i++) {
                const PciDevice *d = m[i].d;
                bool unbind =
                        m[i].want->kind == DRIVER_KIND_HOST ? host_unbind_needed(d) : d->driver != NULL;
                if (!unbind)
                        continue;
                r = plan_add_action(
                        plan, PLAN_ACTION_UNBIND, d->address, d->driver, 0, 0,
                        "release from %s for Driver=%s", d->driver, driver_spec_to_string(m[i].want));
                if (r < 0)
                        return r;
        }
        /* Phase 3: drivers_probe (binds the override, or the kernel's own match when cleared). */
        for (size_t i = 0; i < n; i++) {
                const PciDevice *d = m[i].d;
                if (m[i].want->kind == DRIVER_KIND_NONE)
                        continue;
                if (m[i].want->kind == DRIVER_KIND_HOST && !host_unbind_needed(d) && d->driver)
                        continue; /* only the override was cleared */
                r = plan_add_action(
                        plan, PLAN_ACTION_PROBE, d->address, NULL, 0, 0,
                        m[i].want->kind == DRIVER_KIND_NAMED ? "bind through driver_override"
                                                             : "let the kernel's own match bind");
                if (r < 0)
                        return r;
        }
        /* Phase 4: read back; drivers_probe succeeds even when nothing bound. */
        for (size_t i = 0; i < n; i++) {
                const PciDevice *d = m[i].d;
                PlanVerify v = m[i].want->kind == DRIVER_KIND_NAMED ? PLAN_VERIFY_DRIVER
                        : m[i].want->kind == DRIVER_KIND_NONE       ? PLAN_VERIFY_UNBOUND
                                                                    : PLAN_VERIFY_HOST;
                r = plan_add_action(
                        plan, PLAN_ACTION_VERIFY, d->address, m[i].want->name, v, 0,
                        "drivers_probe reports success even when nothing binds");
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < n; i++) {
                const PciDevice *d = m[i].d;
                r = plan_device_note(
                        plan, d->address, DEVICE_STATE_PENDING, "%s -> %s (%s)", d->driver ?: "no driver",
                        driver_spec_to_string(m[i].want), m[i].source);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int plan_driver(
        Planner *p, size_t idx, const DriverSpec *want, const DesiredDevice *dd, const char *source,
        bool released) {
        _cleanup_free_ const PciDevice **peers = NULL;
        _cleanup_free_ Member *members = NULL;
        _cleanup_free_ char *critical = NULL, *uncovered = NULL, *blocked = NULL;
        Plan *plan = p->plan;
        const PciDevice *d = p->by_address[idx];
        size_t n_peers = 0, n_members = 0;
        bool vfio = want->kind == DRIVER_KIND_NAMED && driver_name_is_vfio(want->name);
        GroupPolicy group = dd ? dd->group : GROUP_POLICY_STRICT;
        int r;

        if (p->handled[idx])
                return 0;
        p->handled[idx] = true;

        r = plan_device_set_desired(plan, d->address, driver_spec_to_string(want), source);
        if (r < 0)
                return r;

        if (d->physfn) {
                ssize_t pf = planner_index(p, d->physfn);
                if (pf >= 0 && p->numvfs_changing[pf])
                        return plan_device_note(
                                plan, d->address, DEVICE_STATE_PENDING,
                                "waits for the NumVFs change of PF %s, which recreates this VF", d->physfn);
        }

        if (is_converged(d, want, released)) {
                r = plan_device_note(plan, d->address, DEVICE_STATE_CONVERGED, NULL);
                if (r < 0 || !vfio || group != GROUP_POLICY_WHOLE || d->iommu_group < 0)
                        return r;
                /* Group=whole keeps claiming the peers it added: they are not released as owned functions
                 * no rule names, and a peer that drifted is bound again (as its own transaction). */
                r = planner_peers(p, d, &peers, &n_peers);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n_peers; i++) {
                        ssize_t pidx = planner_index(p, peers[i]->address);

                        if (pidx < 0 || pci_device_is_bridge(peers[i]) ||
                            desired_resolution_get_device(p->in->desired, peers[i]->address))
                                continue;
                        r = plan_driver(p, (size_t)pidx, want, dd, source, false);
                        if (r < 0)
                                return r;
                }
                return 0;
        }

        members = calloc(1, sizeof(Member));
        if (!members)
                return -ENOMEM;
        members[n_members++] = (Member){ .d = d, .want = want, .source = source, .released = released };

        if (vfio) {
                if (d->iommu_group < 0)
                        return plan_device_note(
                                plan, d->address, DEVICE_STATE_REFUSED,
                                "Driver=%s (%s) needs an IOMMU group: boot with intel_iommu=on or amd_iommu=on",
                                want->name, source);

                /* Safety rule 2: every peer on VFIO, driverless, a bridge, or covered. */
                r = planner_peers(p, d, &peers, &n_peers);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n_peers; i++) {
                        const PciDevice *peer = peers[i];
                        const DesiredDevice *pd =
                                desired_resolution_get_device(p->in->desired, peer->address);
                        ssize_t pidx = planner_index(p, peer->address);
                        bool covered = pd && pd->driver.kind == DRIVER_KIND_NAMED &&
                                driver_name_is_vfio(pd->driver.name);
                        char *j;

                        if (pci_device_is_bridge(peer) || pci_device_is_vfio_bound(peer))
                                continue;
                        if (pd && pd->driver.kind == DRIVER_KIND_NONE)
                                continue; /* its own transaction leaves it driverless */
                        if (pd && !covered) {
                                /* Its own rule wants it elsewhere: Group=whole cannot take it either. */
                                if (asprintf(
                                            &j, "%s%s%s (Driver=%s by %s)", strempty(uncovered),
                                            uncovered ? ", " : "", peer->address,
                                            driver_spec_to_string(&pd->driver), pd->source) < 0)
                                        return -ENOMEM;
                                free(uncovered);
                                uncovered = j;
                                continue;
                        }
                        if (!covered && group == GROUP_POLICY_STRICT) {
                                if (!peer->driver)
                                        continue; /* driverless is harmless */
                                if (asprintf(
                                            &j, "%s%s%s (%s)", strempty(uncovered), uncovered ? ", " : "",
                                            peer->address, peer->driver) < 0)
                                        return -ENOMEM;
                                free(uncovered);
                                uncovered = j;
                                continue;
                        }
                        /* Covered by its own VFIO rule, or added by Group=whole: bound in this transaction.
                         */
                        if (covered && (pidx < 0 || is_converged(peer, &pd->driver, false)))
                                continue;
                        Member *a = reallocarray(members, n_members + 1, sizeof(Member));
                        if (!a)
                                return -ENOMEM;
                        members = a;
                        members[n_members++] = (Member){
                                .d = peer,
                                .want = covered ? &pd->driver : want,
                                .source = covered ? pd->source : source,
                        };
                }
                if (uncovered)
                        return plan_device_note(
                                plan, d->address, DEVICE_STATE_REFUSED,
                                "Driver=%s (%s) Group=%s: IOMMU group %" PRIi32
                                " has peers that are not on VFIO, driverless, bridges or covered: %s",
                                want->name, source, group_policy_to_string(group), d->iommu_group,
                                uncovered);
        }

        /* Safety rule 3: taking a host-critical function (or a group peer of one) away from the host. */
        if (want->kind != DRIVER_KIND_HOST) {
                for (size_t i = 0; i < n_members && !critical; i++) {
                        r = planner_critical_reason(p, members[i].d, &critical);
                        if (r < 0)
                                return r;
                        if (critical && i > 0) {
                                char *j;
                                if (asprintf(&j, "group peer %s is %s", members[i].d->address, critical) < 0)
                                        return -ENOMEM;
                                free(critical);
                                critical = j;
                        }
                }
                bool allowed = dd && dd->allow_critical && p->in->critical_authorized;
                if (critical && !allowed)
                        return plan_device_note(
                                plan, d->address, DEVICE_STATE_REFUSED,
                                "%s: Driver=%s (%s) needs AllowCritical=yes and the %s authorization%s",
                                critical, driver_spec_to_string(want), source,
                                HOSTDEVD_ACTION_OVERRIDE_CRITICAL,
                                dd && dd->allow_critical ? ", which the caller lacks" : "");
        }

        /* Safety rule 4: nothing held is unbound. */
        for (size_t i = 0; i < n_members; i++) {
                _cleanup_free_ char *h = NULL;
                char *j;

                r = planner_holders(p, members[i].d, &h);
                if (r < 0)
                        return r;
                if (!h)
                        continue;
                if (asprintf(
                            &j, "%s%s%s held by %s", strempty(blocked), blocked ? ", " : "",
                            members[i].d->address, h) < 0)
                        return -ENOMEM;
                free(blocked);
                blocked = j;
        }
        if (blocked) {
                for (size_t i = 0; i < n_members; i++) {
                        r = plan_device_note(
                                plan, members[i].d->address, DEVICE_STATE_BLOCKED, "%s -> %s (%s) waits: %s",
                                members[i].d->driver ?: "no driver", driver_spec_to_string(members[i].want),
                                members[i].source, blocked);
                        if (r < 0)
                                return r;
                }
                return 0;
        }

        for (size_t i = 1; i < n_members; i++) {
                ssize_t m = planner_index(p, members[i].d->address);
                if (m >= 0)
                        p->handled[m] = true;
                r = plan_device_set_desired(
                        plan, members[i].d->address, driver_spec_to_string(members[i].want),
                        members[i].source);
                if (r < 0)
                        return r;
        }
        return emit_transaction(p, members, n_members);
}

/* ---- mdevs and vendor vGPUs (issue 14) ------------------------------------------------------- */

static bool streq_ptr(const char *a, const char *b) {
        return a && b ? streq(a, b) : a == b;
}

_printf_(8, 9) static int plan_mdev_add(
        Plan *plan, const char *uuid, const char *parent, const char *type, DeviceState state,
        MdevOwner owner, const char *source, const char *format, ...) {
        PlanMdev *m = reallocarray(plan->mdevs, plan->n_mdevs + 1, sizeof(PlanMdev));
        va_list ap;
        int k = 0;

        if (!m)
                return -ENOMEM;
        plan->mdevs = m;
        m = &m[plan->n_mdevs++];
        *m = (PlanMdev){ .state = state, .owner = owner };
        snprintf(m->uuid, sizeof(m->uuid), "%s", strempty(uuid));
        if (strdup_null(parent, &m->parent) < 0 || strdup_null(type, &m->type) < 0 ||
            strdup_null(source, &m->source) < 0)
                return -ENOMEM;
        if (format) {
                va_start(ap, format);
                k = vasprintf(&m->reason, format, ap);
                va_end(ap);
                if (k < 0) {
                        m->reason = NULL;
                        return -ENOMEM;
                }
                log_debug(
                        "plan: %s %s: %s", uuid && *uuid ? uuid : strna(parent),
                        device_state_to_string(state), m->reason);
        }
        return 0;
}

/* Append one mdev/vGPU action to the current transaction. */
_printf_(8, 9) static int plan_add_mdev_action(
        Planner *p, PlanActionType type, const char *uuid, const char *parent, const char *mdev_type,
        const MdevAttribute *attr, uint32_t value, const char *format, ...) {
        Plan *plan = p->plan;
        PlanAction *a;
        va_list ap;
        int k;

        a = reallocarray(plan->actions, plan->n_actions + 1, sizeof(PlanAction));
        if (!a)
                return -ENOMEM;
        plan->actions = a;
        a = &plan->actions[plan->n_actions++];
        *a = (PlanAction){ .type = type, .transaction = plan->n_transactions, .value = value };
        snprintf(a->uuid, sizeof(a->uuid), "%s", strempty(uuid));
        /* ->address: the VF of a vGPU; the parent of an mdev when it is a PCI function. */
        if (parent && pci_address_is_valid(parent))
                snprintf(a->address, sizeof(a->address), "%s", parent);
        if (strdup_null(type == PLAN_ACTION_SET_VGPU_TYPE ? NULL : parent, &a->parent) < 0 ||
            strdup_null(mdev_type, &a->mdev_type) < 0)
                return -ENOMEM;
        if (attr &&
            (strdup_null(attr->name, &a->attr_name) < 0 || strdup_null(attr->value, &a->attr_value) < 0))
                return -ENOMEM;
        va_start(ap, format);
        k = vasprintf(&a->reason, format, ap);
        va_end(ap);
        if (k < 0) {
                a->reason = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* "pid 42 (qemu) via /dev/vfio/12, ..." for the holders of mdev |m|: of its IOMMU group's node or its
 * VFIO cdev (/dev/vfio/devices/vfioN); NULL + 0 if none. */
static int planner_mdev_holders(const Planner *p, const Mdev *m, char **ret) {
        _cleanup_free_ char *s = NULL;

        *ret = NULL;
        for (size_t i = 0; i < p->in->n_holders; i++) {
                const Holder *h = &p->in->holders[i];
                char *n;

                if (!holder_holds_node(h, m->iommu_group, m->vfio_device))
                        continue;
                if (asprintf(
                            &n, "%s%spid %d (%s) via %s", strempty(s), s ? ", " : "", (int)h->pid, h->comm,
                            h->node) < 0)
                        return -ENOMEM;
                free(s);
                s = n;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

/* Why the PCI function |address| (a parent or a VF) must wait for this plan's SR-IOV or driver
 * transactions (its own, or its PF's NumVFs); NULL + 0 when it need not. */
static int planner_parent_wait(const Planner *p, const char *address, char **ret) {
        const PlanDevice *pd;
        const PciDevice *d;
        ssize_t idx;

        *ret = NULL;
        if (!address || !pci_address_is_valid(address))
                return 0; /* not PCI (mtty): nothing of this plan touches it */
        for (size_t i = 0; i < p->plan->n_devices; i++) {
                pd = &p->plan->devices[i];
                if (streq(pd->address, address) && pd->state != DEVICE_STATE_CONVERGED)
                        return asprintf(
                                       ret, "waits for %s to converge first (%s)", address,
                                       device_state_to_string(pd->state)) < 0
                                ? -ENOMEM
                                : 0;
        }
        d = planner_find(p, address);
        if (d && d->physfn) {
                idx = planner_index(p, d->physfn);
                if (idx >= 0 && p->numvfs_changing[idx])
                        return asprintf(
                                       ret, "waits for the NumVFs change of PF %s, which recreates %s",
                                       d->physfn, address) < 0
                                ? -ENOMEM
                                : 0;
        }
        return 0;
}

static const MdevParent *planner_find_parent(const Planner *p, const char *name) {
        for (size_t i = 0; name && i < p->in->n_mdev_parents; i++)
                if (streq(p->in->mdev_parents[i]->name, name))
                        return p->in->mdev_parents[i];
        return NULL;
}

static const Mdev *planner_find_mdev(const Planner *p, const char *uuid) {
        for (size_t i = 0; i < p->in->n_mdevs; i++)
                if (streq(p->in->mdevs[i]->uuid, uuid))
                        return p->in->mdevs[i];
        return NULL;
}

/* The create (and attributes) of |want|, in the current transaction. */
static int emit_mdev_create(Planner *p, const DesiredMdev *want) {
        int r;

        r = plan_add_mdev_action(
                p, PLAN_ACTION_MDEV_CREATE, want->uuid, want->parent, want->type_id, NULL, 0, "Type=%s (%s)",
                want->type_id, want->source);
        if (r < 0)
                return r;
        for (size_t i = 0; i < want->n_attrs; i++) {
                r = plan_add_mdev_action(
                        p, PLAN_ACTION_MDEV_SET_ATTR, want->uuid, want->parent, NULL, &want->attrs[i], 0,
                        "Attribute= (%s:%u)", want->source, want->attrs[i].line);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Can |want| be created now? 0 and NULL when yes, else the reason it waits. */
static int mdev_create_wait(const Planner *p, const DesiredMdev *want, char **ret) {
        *ret = NULL;
        if (!want->parent)
                return asprintf(ret, "waits for a parent with type %s", strna(want->type_id)) < 0 ? -ENOMEM
                                                                                                  : 0;
        if (!planner_find_parent(p, want->parent))
                return asprintf(ret, "waits for parent %s to register", want->parent) < 0 ? -ENOMEM : 0;
        return planner_parent_wait(p, want->parent, ret);
}

static int plan_mdevs(Planner *p) {
        const PlannerInput *in = p->in;
        const DesiredResolution *desired = in->desired;
        _cleanup_free_ bool *exists = NULL;
        Plan *plan = p->plan;
        int r;

        exists = calloc(desired->n_mdevs + 1, sizeof(bool));
        if (!exists)
                return -ENOMEM;

        /* Existing instances first: adopt, remove (and recreate), or show as foreign. Removals come before
         * creates, so what they free is there for the creates. */
        for (size_t i = 0; i < in->n_mdevs; i++) {
                const Mdev *m = in->mdevs[i];
                const DesiredMdev *want = desired_resolution_get_mdev(desired, m->uuid);
                bool owned = strv_contains(in->owned_mdevs, m->uuid);
                _cleanup_free_ char *held = NULL, *wait = NULL;
                const char *held_by;

                if (want)
                        exists[want - desired->mdevs] = true;
                if (want && want->parent && streq_ptr(want->parent, m->parent) &&
                    streq_ptr(want->type_id, m->type_id)) {
                        /* Adoption: as wanted, no write (a restart changes nothing). */
                        r = plan_mdev_add(
                                plan, m->uuid, m->parent, m->type_id, DEVICE_STATE_CONVERGED,
                                MDEV_OWNER_HOSTDEVD, want->source, NULL);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (want && !want->parent) {
                        /* The resolution saw no parent for it (the reconciler passed none): never remove on
                         * that ground; the next plan with the parents decides. */
                        r = plan_mdev_add(
                                plan, m->uuid, m->parent, m->type_id, DEVICE_STATE_PENDING,
                                owned || want->named ? MDEV_OWNER_HOSTDEVD : MDEV_OWNER_FOREIGN,
                                want->source, "exists on %s, but no parent of the rule is known yet",
                                strna(m->parent));
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!want && !owned) {
                        /* Foreign: shown, never touched. */
                        r = plan_mdev_add(
                                plan, m->uuid, m->parent, m->type_id, DEVICE_STATE_CONVERGED,
                                MDEV_OWNER_FOREIGN, NULL, NULL);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (want && !owned) {
                        /* Not as wanted and not ours: a UUID= naming a foreign instance (the resolution
                         * reports it too) or, by a 2^-122 chance, a picked UUID someone else took. */
                        r = plan_mdev_add(
                                plan, m->uuid, m->parent, m->type_id, DEVICE_STATE_REFUSED,
                                MDEV_OWNER_FOREIGN, want->source,
                                "UUID collision: %s wants %s on %s, but an mdev hostdevd did not create carries it",
                                want->source, strna(want->type_id), strna(want->parent));
                        if (r < 0)
                                return r;
                        continue;
                }

                /* Ours (created, or named by UUID=) and not as wanted: remove, and create again if wanted.
                 * Not while a rule that could select its parent cannot be resolved: what that rule made
                 * looks unwanted (DesiredResolution.held). */
                held_by = desired_resolution_held_by(desired, m->parent);
                if (held_by) {
                        r = plan_mdev_add(
                                plan, m->uuid, m->parent, want ? want->type_id : m->type_id,
                                DEVICE_STATE_PENDING, MDEV_OWNER_HOSTDEVD, want ? want->source : NULL,
                                "%s waits: the rule at %s cannot be resolved (ConfigErrors)",
                                want ? "removal to create it again as wanted"
                                     : "removal (no rule wants it any more)",
                                held_by);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = planner_mdev_holders(p, m, &held);
                if (r < 0)
                        return r;
                if (held) {
                        r = plan_mdev_add(
                                plan, m->uuid, m->parent, want ? want->type_id : m->type_id,
                                DEVICE_STATE_BLOCKED, MDEV_OWNER_HOSTDEVD, want ? want->source : NULL,
                                "%s waits: held by %s",
                                want ? "removal to create it again as wanted"
                                     : "removal (no rule wants it any more)",
                                held);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (want) {
                        r = mdev_create_wait(p, want, &wait);
                        if (r < 0)
                                return r;
                }
                plan->n_transactions++;
                r = plan_add_mdev_action(
                        p, PLAN_ACTION_MDEV_REMOVE, m->uuid, m->parent, m->type_id, NULL, 0, "%s",
                        want ? "not as wanted (parent or type)"
                             : "hostdevd created it and no rule wants it any more");
                if (r < 0)
                        return r;
                if (want && !wait) {
                        r = emit_mdev_create(p, want);
                        if (r < 0)
                                return r;
                }
                if (want)
                        r = plan_mdev_add(
                                plan, m->uuid, want->parent, want->type_id, DEVICE_STATE_PENDING,
                                MDEV_OWNER_HOSTDEVD, want->source, "%s/%s -> %s/%s (%s)%s%s",
                                strna(m->parent), strna(m->type_id), strna(want->parent),
                                strna(want->type_id), want->source, wait ? "; create " : "", strempty(wait));
                else
                        r = plan_mdev_add(
                                plan, m->uuid, m->parent, m->type_id, DEVICE_STATE_PENDING,
                                MDEV_OWNER_HOSTDEVD, NULL, "remove: no rule wants it any more");
                if (r < 0)
                        return r;
        }

        /* Wanted instances that do not exist: create them once their parent is there and settled. */
        for (size_t i = 0; i < desired->n_mdevs; i++) {
                const DesiredMdev *want = &desired->mdevs[i];
                _cleanup_free_ char *wait = NULL;

                if (exists[i] || planner_find_mdev(p, want->uuid))
                        continue;
                r = mdev_create_wait(p, want, &wait);
                if (r < 0)
                        return r;
                if (!wait) {
                        plan->n_transactions++;
                        r = emit_mdev_create(p, want);
                        if (r < 0)
                                return r;
                }
                r = plan_mdev_add(
                        plan, want->uuid, want->parent, want->type_id, DEVICE_STATE_PENDING,
                        MDEV_OWNER_HOSTDEVD, want->source, "%s (%s)", wait ?: "create", want->source);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const VgpuVf *planner_find_vgpu_vf(const Planner *p, const char *address) {
        for (size_t i = 0; i < p->in->n_vgpu_vfs; i++)
                if (streq(p->in->vgpu_vfs[i]->address, address))
                        return p->in->vgpu_vfs[i];
        return NULL;
}

static int plan_vgpus(Planner *p) {
        const PlannerInput *in = p->in;
        const DesiredResolution *desired = in->desired;
        Plan *plan = p->plan;
        int r;

        for (size_t i = 0; i < in->n_vgpu_vfs; i++) {
                const VgpuVf *vf = in->vgpu_vfs[i];
                const DesiredVgpu *want = desired_resolution_get_vgpu(desired, vf->address);
                bool owned = strv_contains(in->owned_vgpus, vf->address);
                const PciDevice *d = planner_find(p, vf->address);
                _cleanup_free_ char *held = NULL, *wait = NULL, *cur = NULL, *wanted = NULL;

                if (vf->current_type != 0 && asprintf(&cur, "%" PRIu32, vf->current_type) < 0)
                        return -ENOMEM;
                if (want && asprintf(&wanted, "%" PRIu32, want->type_id) < 0)
                        return -ENOMEM;

                if (want && vf->current_type == want->type_id) {
                        r = plan_mdev_add(
                                plan, NULL, vf->address, wanted, DEVICE_STATE_CONVERGED, MDEV_OWNER_HOSTDEVD,
                                want->source, NULL);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!want && vf->current_type == 0)
                        continue;
                if (vf->current_type != 0 && !owned) {
                        /* Set by someone else: shown; a rule that wants another type there is refused. */
                        if (want)
                                r = plan_mdev_add(
                                        plan, NULL, vf->address, cur, DEVICE_STATE_REFUSED,
                                        MDEV_OWNER_FOREIGN, want->source,
                                        "[VGPU] Type=%s (%s): the VF carries vGPU type %s that hostdevd did not set",
                                        wanted, want->source, cur);
                        else
                                r = plan_mdev_add(
                                        plan, NULL, vf->address, cur, DEVICE_STATE_CONVERGED,
                                        MDEV_OWNER_FOREIGN, NULL, NULL);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (vf->current_type != 0 && desired_resolution_held_by(desired, vf->address)) {
                        /* Ours, but a rule that could select the VF cannot be resolved. */
                        r = plan_mdev_add(
                                plan, NULL, vf->address, want ? wanted : cur, DEVICE_STATE_PENDING,
                                MDEV_OWNER_HOSTDEVD, want ? want->source : NULL,
                                "vGPU type %s -> %s waits: the rule at %s cannot be resolved (ConfigErrors)",
                                cur, want ? wanted : "0", desired_resolution_held_by(desired, vf->address));
                        if (r < 0)
                                return r;
                        continue;
                }
                if (vf->current_type != 0 && d) {
                        /* Ours to change or clear: never while a VM has the VF open. */
                        r = planner_holders(p, d, &held);
                        if (r < 0)
                                return r;
                        if (held) {
                                r = plan_mdev_add(
                                        plan, NULL, vf->address, want ? wanted : cur, DEVICE_STATE_BLOCKED,
                                        MDEV_OWNER_HOSTDEVD, want ? want->source : NULL,
                                        "vGPU type %s -> %s waits: held by %s", cur, want ? wanted : "0",
                                        held);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                }
                r = planner_parent_wait(p, vf->address, &wait);
                if (r < 0)
                        return r;
                if (wait) {
                        r = plan_mdev_add(
                                plan, NULL, vf->address, want ? wanted : cur, DEVICE_STATE_PENDING,
                                MDEV_OWNER_HOSTDEVD, want ? want->source : NULL, "%s", wait);
                        if (r < 0)
                                return r;
                        continue;
                }
                plan->n_transactions++;
                if (vf->current_type != 0) {
                        r = plan_add_mdev_action(
                                p, PLAN_ACTION_SET_VGPU_TYPE, NULL, vf->address, NULL, NULL, 0, "%s",
                                want ? "the driver takes a new vGPU type only on a VF without one"
                                     : "hostdevd set it and no rule wants it any more");
                        if (r < 0)
                                return r;
                }
                if (want) {
                        r = plan_add_mdev_action(
                                p, PLAN_ACTION_SET_VGPU_TYPE, NULL, vf->address, want->type_name, NULL,
                                want->type_id, "[VGPU] Type=%s (%s)", want->type_name ?: wanted,
                                want->source);
                        if (r < 0)
                                return r;
                }
                r = plan_mdev_add(
                        plan, NULL, vf->address, want ? wanted : cur, DEVICE_STATE_PENDING,
                        MDEV_OWNER_HOSTDEVD, want ? want->source : NULL, "vGPU type %s -> %s%s%s%s",
                        cur ?: "0", want ? wanted : "0", want ? " (" : "", want ? want->source : "",
                        want ? ")" : "");
                if (r < 0)
                        return r;
        }

        /* Wanted on a VF that is not (yet) a vGPU VF. */
        for (size_t i = 0; i < desired->n_vgpus; i++) {
                const DesiredVgpu *want = &desired->vgpus[i];
                _cleanup_free_ char *wanted = NULL;

                if (planner_find_vgpu_vf(p, want->address))
                        continue;
                if (asprintf(&wanted, "%" PRIu32, want->type_id) < 0)
                        return -ENOMEM;
                r = plan_mdev_add(
                        plan, NULL, want->address, wanted, DEVICE_STATE_PENDING, MDEV_OWNER_HOSTDEVD,
                        want->source, "waits for the VF's vendor driver (%s/%s)", SYSFS_ATTR_NVIDIA_DIR,
                        SYSFS_ATTR_NVIDIA_CURRENT_VGPU_TYPE);
                if (r < 0)
                        return r;
        }
        return 0;
}

int planner_plan_new_function(const PciDevice *d, const DriverSpec *want, const char *source, Plan **ret) {
        _cleanup_(plan_freep) Plan *plan = NULL;
        int r;

        assert(d && want && ret);

        if (want->kind != DRIVER_KIND_NAMED || !want->name || d->driver || d->driver_override)
                return -EINVAL;
        plan = calloc(1, sizeof(Plan));
        if (!plan)
                return -ENOMEM;
        plan->n_transactions = 1;

        r = plan_device_set_desired(plan, d->address, want->name, source);
        if (r < 0)
                return r;
        r = plan_add_action(
                plan, PLAN_ACTION_SET_OVERRIDE, d->address, want->name, 0, 0,
                "new function: Driver=%s (%s), before the kernel's first probe", want->name, strna(source));
        if (r < 0)
                return r;
        /* A VF: its first probe ran in the sriov_numvfs writer's pci_iov_add_virtfn() (drivers/pci/iov.c),
         * most likely before the override landed, and bound nothing with sriov_drivers_autoprobe 0:
         * drivers_probe at once. Any other function: the kernel's own first probe is still to come (a
         * hot-add), and a drivers_probe before it binds nothing (not yet matchable) and takes CPU from it;
         * the verification writes one if the wait ends with no driver. */
        if (d->sriov_role == SRIOV_ROLE_VF) {
                r = plan_add_action(
                        plan, PLAN_ACTION_PROBE, d->address, NULL, 0, 0, "bind through driver_override");
                if (r < 0)
                        return r;
        }
        r = plan_add_action(
                plan, PLAN_ACTION_VERIFY, d->address, want->name, PLAN_VERIFY_DRIVER_SETTLE, 0,
                "the kernel's first probe binds the override's driver; drivers_probe if it bound none");
        if (r < 0)
                return r;
        r = plan_device_note(
                plan, d->address, DEVICE_STATE_PENDING, "no driver -> %s (%s)", want->name, strna(source));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(plan);
        return 0;
}

int planner_plan(const PlannerInput *in, Plan **ret) {
        _cleanup_(plan_freep) Plan *plan = NULL;
        Planner p = { .in = in };
        static const DriverSpec host = { .kind = DRIVER_KIND_HOST };
        int r = -ENOMEM;

        assert(in);
        assert(in->desired);
        assert(ret);

        plan = calloc(1, sizeof(Plan));
        if (!plan)
                return -ENOMEM;
        p.plan = plan;
        p.n = in->n_devices;
        if (p.n > 0) {
                p.by_address = reallocarray(NULL, p.n, sizeof(PciDevice *));
                p.by_group = reallocarray(NULL, p.n, sizeof(PciDevice *));
                p.handled = calloc(p.n, sizeof(bool));
                p.numvfs_changing = calloc(p.n, sizeof(bool));
                if (!p.by_address || !p.by_group || !p.handled || !p.numvfs_changing)
                        goto finish;
                memcpy(p.by_address, in->devices, p.n * sizeof(PciDevice *));
                qsort(p.by_address, p.n, sizeof(PciDevice *), device_ptr_compare);
                for (size_t i = 0; i < p.n; i++)
                        if (in->devices[i]->iommu_group >= 0)
                                p.by_group[p.n_grouped++] = in->devices[i];
                if (p.n_grouped > 0)
                        qsort(p.by_group, p.n_grouped, sizeof(PciDevice *), group_ptr_compare);
        }

        STRV_FOREACH (c, in->desired->conflicts)
                if (strv_extend(&plan->conflicts, *c) < 0)
                        goto finish;

        /* SR-IOV first: a VF's driver is planned only once its PF carries the right VFs. */
        for (size_t i = 0; i < in->desired->n_pfs; i++) {
                r = plan_pf(&p, &in->desired->pfs[i]);
                if (r < 0)
                        goto finish;
        }
        for (size_t i = 0; i < in->n_owned_sriov; i++) {
                r = plan_pf_restore(&p, &in->owned_sriov[i]);
                if (r < 0)
                        goto finish;
        }

        for (size_t i = 0; i < in->desired->n_devices; i++) {
                const DesiredDevice *dd = &in->desired->devices[i];
                ssize_t idx = planner_index(&p, dd->address);
                if (idx < 0)
                        continue;
                r = plan_driver(&p, (size_t)idx, &dd->driver, dd, dd->source, false);
                if (r < 0)
                        goto finish;
        }

        /* Functions hostdevd rebound that no rule claims any more go back to the host (issue 3). */
        STRV_FOREACH (o, in->owned) {
                ssize_t idx = planner_index(&p, *o);
                if (idx < 0 || desired_resolution_get_device(in->desired, *o) || p.handled[idx])
                        continue;
                r = plan_driver(&p, (size_t)idx, &host, NULL, "released: no rule claims it any more", true);
                if (r < 0)
                        goto finish;
        }

        /* Mdevs and vendor vGPUs last: they depend on the drivers and VFs above (issue 14). */
        r = plan_mdevs(&p);
        if (r < 0)
                goto finish;
        r = plan_vgpus(&p);
        if (r < 0)
                goto finish;

        if (plan->n_devices > 0)
                qsort(plan->devices, plan->n_devices, sizeof(PlanDevice), plan_device_compare);
        if (plan->n_mdevs > 0)
                qsort(plan->mdevs, plan->n_mdevs, sizeof(PlanMdev), plan_mdev_compare);
        *ret = TAKE_PTR(plan);
        r = 0;
finish:
        free(p.by_address);
        free(p.by_group);
        free(p.handled);
        free(p.numvfs_changing);
        return r;
}
