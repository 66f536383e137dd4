/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The one publisher (bus-emitter.h): every signal hostdevd sends leaves through here. */

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bus-device.h"
#include "bus-emitter.h"
#include "bus-mdev.h"
#include "bus-context.h"
#include "event-priorities.h"
#include "intake.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "object-path.h"
#include "strv.h"

/* The flush runs last in the loop's schedule (event-priorities.h): after the uevent queue, the plans
 * and the reconciler's status publish, so one flush announces all of them. */
#define BUS_EMITTER_PRIORITY EVENT_PRIORITY_SIGNAL_FLUSH

_Static_assert(
        BUS_DEVICE_PROPERTIES_MAX >= BUS_MDEV_PROPERTIES_MAX, "one names buffer serves both interfaces");

typedef struct PendingChange {
        ModelChange change;
        uint64_t seq;
} PendingChange;

/* The outcome of all changes of one object in one iteration. */
typedef struct MergedChange {
        ModelObjectKind object;
        const char *key;
        bool existed_before, exists_now, replaced;
        unsigned fields;
        uint64_t seq;
} MergedChange;

struct BusEmitter {
        BusContext *ctx;
        sd_event_source *defer;

        PendingChange *pending;
        size_t n_pending, allocated;
        uint64_t seq;
        bool manager_dirty;

        /* The reconciler's published state (bus_emitter_queue_status()): addresses whose status
         * properties changed, and Manager status property names, announced after the model's. */
        char **status_pending; /* may repeat an address: made unique at the flush */
        size_t n_status_pending, allocated_status_pending;
        char **manager_status_pending;

        /* What clients were last told about the Manager. */
        uint32_t device_count, mdev_count;
        bool iommu_enabled;
        char *iommu_reason;
        uint64_t rescans;
};

static int str_ptr_compare(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Buffers that grew past this many entries (a rescan, a storm) are given back once flushed. */
#define EMITTER_KEEP 256u

static void status_pending_clear(BusEmitter *e) {
        for (size_t i = 0; i < e->n_status_pending; i++)
                free(e->status_pending[i]);
        e->n_status_pending = 0;
        if (e->allocated_status_pending > EMITTER_KEEP) {
                e->status_pending = mfree(e->status_pending);
                e->allocated_status_pending = 0;
        }
}

static void pending_clear(BusEmitter *e) {
        e->n_pending = 0;
        if (e->allocated > EMITTER_KEEP) {
                e->pending = mfree(e->pending);
                e->allocated = 0;
        }
}

static int bus_emitter_schedule(BusEmitter *e) {
        return sd_event_source_set_enabled(e->defer, SD_EVENT_ONESHOT);
}

static int on_flush(sd_event_source *s, void *userdata) {
        BusEmitter *e = userdata;
        int r;

        r = bus_emitter_flush(e);
        if (r < 0)
                log_warning_errno(r, "Failed to emit bus signals: %m, ignoring");
        return 0;
}

int bus_emitter_new(BusContext *d, BusEmitter **ret) {
        _cleanup_(bus_emitter_freep) BusEmitter *e = NULL;
        int r;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->ctx = d;

        r = sd_event_add_defer(d->event, &e->defer, on_flush, e);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(e->defer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        r = sd_event_source_set_priority(e->defer, BUS_EMITTER_PRIORITY);
        if (r < 0)
                return r;
        (void)sd_event_source_set_description(e->defer, "bus-emitter");

        *ret = TAKE_PTR(e);
        return 0;
}

BusEmitter *bus_emitter_free(BusEmitter *e) {
        if (!e)
                return NULL;
        sd_event_source_disable_unref(e->defer);
        free(e->pending);
        status_pending_clear(e);
        free(e->status_pending);
        strv_free(e->manager_status_pending);
        free(e->iommu_reason);
        free(e);
        return NULL;
}

int bus_emitter_snapshot(BusEmitter *e) {
        BusContext *d = e->ctx;
        size_t n_devices = 0, n_mdevs = 0;
        char *reason;

        (void)model_get_devices(d->model, &n_devices);
        (void)model_get_mdevs(d->model, &n_mdevs);
        reason = strdup(strempty(model_iommu_reason(d->model)));
        if (!reason)
                return -ENOMEM;

        e->device_count = (uint32_t)n_devices;
        e->mdev_count = (uint32_t)n_mdevs;
        e->iommu_enabled = model_iommu_enabled(d->model);
        free(e->iommu_reason);
        e->iommu_reason = reason;
        e->rescans = intake_rescans(d->intake);
        return 0;
}

int bus_emitter_queue(BusEmitter *e, const ModelChange *changes, size_t n) {
        if (n == 0)
                return 0;

        if (e->n_pending + n > e->allocated) {
                size_t a = e->allocated * 2 > e->n_pending + n ? e->allocated * 2 : e->n_pending + n;
                PendingChange *p;

                p = reallocarray(e->pending, a, sizeof(PendingChange));
                if (!p)
                        return -ENOMEM;
                e->pending = p;
                e->allocated = a;
        }

        for (size_t i = 0; i < n; i++) {
                e->pending[e->n_pending++] = (PendingChange){
                        .change = changes[i],
                        .seq = e->seq++,
                };
                /* The key is a fixed array filled by the model; make sure it is terminated. */
                e->pending[e->n_pending - 1].change.key[sizeof(changes[i].key) - 1] = '\0';
        }

        return bus_emitter_schedule(e);
}

/* Leases change on the loop in response to a call or an owner's exit, one at a time, and the object
 * must still be findable for InterfacesRemoved: announced at once, not coalesced. */
int bus_emitter_lease_added(BusEmitter *e, const char *path) {
        if (!e->ctx->bus)
                return 0;
        return sd_bus_emit_object_added(e->ctx->bus, path);
}

int bus_emitter_lease_changed(BusEmitter *e, const char *path) {
        if (!e->ctx->bus)
                return 0;
        /* The handoff follows the State (a prepared lease's functions are not on vfio-pci yet): its
         * properties are invalidated, not computed (EMITS_INVALIDATION, bus-lease.c). */
        return sd_bus_emit_properties_changed(
                e->ctx->bus, path, HOSTDEVD_LEASE_INTERFACE, "State", "QemuArgs", "CloudHypervisorArgs",
                "LibvirtHostdevXml", "VfioPaths", "MmioWindow", "Fingerprint", NULL);
}

int bus_emitter_lease_removed(BusEmitter *e, const char *path) {
        if (!e->ctx->bus)
                return 0;
        return sd_bus_emit_object_removed(e->ctx->bus, path);
}

int bus_emitter_manager_changed(BusEmitter *e) {
        e->manager_dirty = true;
        return bus_emitter_schedule(e);
}

static int pending_compare(const void *a, const void *b) {
        const PendingChange *x = a, *y = b;
        int c;

        if (x->change.object != y->change.object)
                return x->change.object < y->change.object ? -1 : 1;
        c = strcmp(x->change.key, y->change.key);
        if (c != 0)
                return c;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int merged_compare(const void *a, const void *b) {
        const MergedChange *x = a, *y = b;

        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort by object, merge each object's run of changes into one outcome, order outcomes by first change. */
static size_t merge_pending(PendingChange *pending, size_t n, MergedChange *out) {
        size_t n_out = 0;

        qsort(pending, n, sizeof(PendingChange), pending_compare);

        for (size_t i = 0; i < n;) {
                MergedChange m = {
                        .object = pending[i].change.object,
                        .key = pending[i].change.key,
                        .existed_before = pending[i].change.kind != MODEL_CHANGE_ADDED,
                        .seq = pending[i].seq,
                };
                bool removed = false;
                size_t j;

                for (j = i;
                     j < n && pending[j].change.object == m.object && streq(pending[j].change.key, m.key);
                     j++) {
                        const ModelChange *c = &pending[j].change;

                        switch (c->kind) {
                        case MODEL_CHANGE_ADDED:
                                /* Gone and back within one iteration: it is a different object now. */
                                if (removed)
                                        m.replaced = true;
                                m.exists_now = true;
                                break;
                        case MODEL_CHANGE_REMOVED:
                                removed = true;
                                m.exists_now = false;
                                break;
                        case MODEL_CHANGE_CHANGED:
                                m.exists_now = true;
                                m.fields |= c->fields;
                                break;
                        }
                }

                out[n_out++] = m;
                i = j;
        }

        qsort(out, n_out, sizeof(MergedChange), merged_compare);
        return n_out;
}

static int emit_removed(sd_bus *bus, const char *path, const char *interface) {
        /*
         * The object is already gone from the model, so sd_bus_emit_object_removed() would find
         * nothing to list; name the interfaces ourselves, as sd-bus lists them in InterfacesAdded.
         */
        return sd_bus_emit_interfaces_removed(
                bus, path, DBUS_INTERFACE_PEER, DBUS_INTERFACE_INTROSPECTABLE, DBUS_INTERFACE_PROPERTIES,
                interface, NULL);
}

static int emit_object(BusEmitter *e, const MergedChange *m, bool *mdev_types_dirty) {
        sd_bus *bus = e->ctx->bus;
        Model *model = e->ctx->model;
        _cleanup_free_ char *path = NULL;
        const char *interface;
        bool exists;
        int r, n = 0;
        /* Added and removed again within this iteration: clients never saw it, so it changed nothing. */
        bool transient = !m->existed_before && !m->exists_now;

        switch (m->object) {
        case MODEL_OBJECT_DEVICE:
                path = object_path_from_pci_address(m->key);
                interface = HOSTDEVD_DEVICE_INTERFACE;
                exists = model_get_device(model, m->key) != NULL;
                if ((m->fields & PCI_DEVICE_FIELD_MDEV_TYPES) && !transient)
                        *mdev_types_dirty = true;
                break;
        case MODEL_OBJECT_MDEV:
                path = object_path_from_mdev_uuid(m->key);
                interface = HOSTDEVD_MDEV_INTERFACE;
                exists = model_get_mdev(model, m->key) != NULL;
                break;
        case MODEL_OBJECT_PARENT:
                if (!transient)
                        *mdev_types_dirty = true;
                return 0;
        case MODEL_OBJECT_MANAGER:
        default:
                e->manager_dirty = true;
                return 0;
        }
        if (!path)
                return log_debug_errno(-EINVAL, "Cannot build an object path for '%s', ignoring", m->key);

        if (m->existed_before && (!m->exists_now || m->replaced)) {
                r = emit_removed(bus, path, interface);
                if (r < 0)
                        log_debug_errno(r, "Failed to emit InterfacesRemoved for %s: %m, ignoring", path);
                else
                        n++;
        }

        /* Announce only what the model holds now: a later update may already have removed it again. */
        if (!exists)
                return n;

        if (!m->existed_before || m->replaced) {
                r = sd_bus_emit_object_added(bus, path);
                if (r < 0)
                        log_debug_errno(r, "Failed to emit InterfacesAdded for %s: %m, ignoring", path);
                else
                        n++;
                return n;
        }

        if (m->fields != 0) {
                const char *names[BUS_DEVICE_PROPERTIES_MAX];
                size_t k;

                if (m->object == MODEL_OBJECT_DEVICE)
                        k = bus_device_property_names(m->fields, names);
                else
                        k = bus_mdev_property_names(m->fields, names);
                if (k > 0) {
                        r = sd_bus_emit_properties_changed_strv(bus, path, interface, (char **)names);
                        if (r < 0)
                                log_debug_errno(
                                        r, "Failed to emit PropertiesChanged for %s: %m, ignoring", path);
                        else
                                n++;
                }
        }

        return n;
}

static int emit_manager(BusEmitter *e, bool mdev_types_dirty) {
        BusContext *d = e->ctx;
        const char *names[16];
        size_t n = 0, n_devices = 0, n_mdevs = 0;
        const char *reason;
        bool iommu;
        int r;

        (void)model_get_devices(d->model, &n_devices);
        (void)model_get_mdevs(d->model, &n_mdevs);
        iommu = model_iommu_enabled(d->model);
        reason = strempty(model_iommu_reason(d->model));

        if ((uint32_t)n_devices != e->device_count)
                names[n++] = "DeviceCount";
        if ((uint32_t)n_mdevs != e->mdev_count)
                names[n++] = "MdevCount";
        if (iommu != e->iommu_enabled)
                names[n++] = "IommuEnabled";
        if (!streq(reason, strempty(e->iommu_reason)))
                names[n++] = "IommuReason";
        if (mdev_types_dirty)
                names[n++] = "MdevTypes";
        if (intake_rescans(d->intake) != e->rescans)
                names[n++] = "Rescans";
        /* The reconciler's (State, Generation, ConfigErrors) in the same signal. */
        STRV_FOREACH (name, e->manager_status_pending)
                if (n < ELEMENTSOF(names) - 1)
                        names[n++] = *name;
        names[n] = NULL;

        if (n == 0)
                return 0;

        r = bus_emitter_snapshot(e);
        if (r < 0)
                return r;

        r = sd_bus_emit_properties_changed_strv(
                d->bus, HOSTDEVD_ROOT_PATH, HOSTDEVD_MANAGER_INTERFACE, (char **)names);
        e->manager_status_pending = strv_free(e->manager_status_pending);
        if (r < 0)
                return log_debug_errno(r, "Failed to emit PropertiesChanged for the manager: %m");
        return 1;
}

/* The reconciler's status properties of one function (bus_emitter_queue_status()). */
static int emit_status(BusEmitter *e, const char *address) {
        _cleanup_free_ char *path = NULL;
        int r;

        /* Gone meanwhile: its InterfacesRemoved said everything. */
        if (!model_get_device(e->ctx->model, address))
                return 0;
        path = object_path_from_pci_address(address);
        if (!path)
                return log_debug_errno(-EINVAL, "Cannot build an object path for '%s', ignoring", address);
        r = sd_bus_emit_properties_changed(
                e->ctx->bus, path, HOSTDEVD_DEVICE_INTERFACE, "DesiredDriver", "DesiredSource", "State",
                "StateReason", "LastError", NULL);
        if (r < 0)
                return log_debug_errno(r, "Failed to emit PropertiesChanged for %s: %m, ignoring", path);
        return 1;
}

int bus_emitter_queue_status(BusEmitter *e, const char *address) {
        int r;

        assert(e);
        assert(address);

        /* Appended in O(1): thousands of functions change state in one plan (a PF's VFs). */
        if (e->n_status_pending == e->allocated_status_pending) {
                size_t a = e->allocated_status_pending ? e->allocated_status_pending * 2 : 16;
                char **l = reallocarray(e->status_pending, a, sizeof(char *));

                if (!l)
                        return -ENOMEM;
                e->status_pending = l;
                e->allocated_status_pending = a;
        }
        e->status_pending[e->n_status_pending] = strdup(address);
        if (!e->status_pending[e->n_status_pending])
                return -ENOMEM;
        e->n_status_pending++;
        r = bus_emitter_schedule(e);
        return r < 0 ? r : 0;
}

int bus_emitter_queue_manager_status(BusEmitter *e, char *const *names) {
        int r;

        assert(e);

        for (char *const *name = names; name && *name; name++)
                if (!strv_contains(e->manager_status_pending, *name)) {
                        r = strv_extend(&e->manager_status_pending, *name);
                        if (r < 0)
                                return r;
                }
        e->manager_dirty = true;
        return bus_emitter_schedule(e);
}

int bus_emitter_flush(BusEmitter *e) {
        _cleanup_free_ MergedChange *merged = NULL;
        bool mdev_types_dirty = false;
        size_t n_merged;
        int r, n = 0;

        assert(e);

        if (!e->ctx->bus) {
                pending_clear(e);
                status_pending_clear(e);
                e->manager_status_pending = strv_free(e->manager_status_pending);
                return 0;
        }

        if (e->n_pending > 0) {
                merged = calloc(e->n_pending, sizeof(MergedChange));
                if (!merged)
                        return -ENOMEM;

                /* merged[].key points into e->pending: keep the pending array until we are done. */
                n_merged = merge_pending(e->pending, e->n_pending, merged);
                for (size_t i = 0; i < n_merged; i++) {
                        r = emit_object(e, &merged[i], &mdev_types_dirty);
                        if (r > 0)
                                n += r;
                }
                pending_clear(e);
                /* Device and mdev counts may have moved. */
                e->manager_dirty = true;
        }

        if (e->manager_dirty || mdev_types_dirty) {
                e->manager_dirty = false;
                r = emit_manager(e, mdev_types_dirty);
                if (r > 0)
                        n += r;
        }

        /* After the objects: a function announced above is then known to the client first. */
        if (e->n_status_pending > 1)
                qsort(e->status_pending, e->n_status_pending, sizeof(char *), str_ptr_compare);
        for (size_t i = 0; i < e->n_status_pending; i++) {
                /* Queued more than once in this iteration: one signal. */
                if (i > 0 && streq(e->status_pending[i], e->status_pending[i - 1]))
                        continue;
                r = emit_status(e, e->status_pending[i]);
                if (r > 0)
                        n += r;
        }
        status_pending_clear(e);

        return n;
}
