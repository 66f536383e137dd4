/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "bus-errors.h"
#include "bus-handoff.h"
#include "bus-resolve.h"
#include "bus-polkit.h"
#include "bus-util.h"
#include "escape.h"
#include "lease-manager.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "object-path.h"
#include "strv.h"
#include "vfio-node.h"

static bool isempty(const char *s) {
        return !s || !*s;
}

static bool startswith(const char *s, const char *prefix) {
        return strneq(s, prefix, strlen(prefix));
}

/* ---- device sets ------------------------------------------------------------------------------ */

void bus_handoff_set_done(BusHandoffSet *s) {
        if (!s)
                return;
        free(s->functions);
        free(s->mdevs);
        *s = (BusHandoffSet){};
}

HandoffInput bus_handoff_set_input(const BusHandoffSet *s) {
        return (HandoffInput){
                .functions = s->functions,
                .n_functions = s->n_functions,
                .mdevs = s->mdevs,
                .n_mdevs = s->n_mdevs,
        };
}

int bus_handoff_set_add_device(BusHandoffSet *s, const PciDevice *f) {
        const PciDevice **n = reallocarray(s->functions, s->n_functions + 1, sizeof(PciDevice *));
        if (!n)
                return -ENOMEM;
        s->functions = n;
        s->functions[s->n_functions++] = f;
        return 0;
}

int bus_handoff_set_add_mdev(BusHandoffSet *s, const Mdev *m) {
        const Mdev **n = reallocarray(s->mdevs, s->n_mdevs + 1, sizeof(Mdev *));
        if (!n)
                return -ENOMEM;
        s->mdevs = n;
        s->mdevs[s->n_mdevs++] = m;
        return 0;
}

/* One reference to its model object: exactly one of *ret_f, *ret_m is set. Mdevs by object path or
 * UUID (a UUID the model has as an mdev wins over a device name spelled the same); everything else
 * through the Manager's one resolver (address, Device object path, device name). */
static int resolve_one(
        BusContext *d, const char *ref, const PciDevice **ret_f, const Mdev **ret_m, sd_bus_error *error) {
        char address[PCI_ADDRESS_STRING_MAX];
        _cleanup_free_ char *key = NULL;
        const char *element;
        int r;

        *ret_f = NULL;
        *ret_m = NULL;

        if ((element = bus_path_child_element(ref, HOSTDEVD_MDEVS_PATH))) {
                if (object_path_element_to_mdev_uuid(element, &key) < 0)
                        return bus_error_setf_errno(
                                error, -EINVAL, "Not an mdev object path: '%s'", ESCAPE_QUOTE(ref));
                *ret_m = model_get_mdev(d->model, key);
                if (!*ret_m)
                        return bus_error_setf_errno(error, -ENOENT, "No mdev '%s'", ESCAPE_QUOTE(ref));
                return 0;
        }
        key = strdup(ref);
        if (!key)
                return -ENOMEM;
        for (char *p = key; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        if (mdev_uuid_is_valid(key) && (*ret_m = model_get_mdev(d->model, key)))
                return 0;

        r = bus_resolve_device(d, ref, address, error);
        if (r < 0)
                return r;
        *ret_f = model_get_device(d->model, address);
        if (!*ret_f)
                return bus_error_setf_errno(error, -ENOENT, "No device '%s'", ESCAPE_QUOTE(ref));
        return 0;
}

int bus_handoff_set_resolve(BusContext *d, char **refs, BusHandoffSet *ret, sd_bus_error *error) {
        _cleanup_(bus_handoff_set_done) BusHandoffSet s = {};
        int r;

        STRV_FOREACH (ref, refs) {
                const PciDevice *f;
                const Mdev *m;

                r = resolve_one(d, *ref, &f, &m, error);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < s.n_functions; i++)
                        if (s.functions[i] == f)
                                return bus_error_setf_errno(
                                        error, -EINVAL, "Device '%s' listed twice", ESCAPE_QUOTE(*ref));
                for (size_t i = 0; i < s.n_mdevs; i++)
                        if (s.mdevs[i] == m)
                                return bus_error_setf_errno(
                                        error, -EINVAL, "Device '%s' listed twice", ESCAPE_QUOTE(*ref));
                r = f ? bus_handoff_set_add_device(&s, f) : bus_handoff_set_add_mdev(&s, m);
                if (r < 0)
                        return r;
        }
        *ret = s;
        s = (BusHandoffSet){};
        return 0;
}

/* ---- property values -------------------------------------------------------------------------- */

static int handoff_error(sd_bus_error *error, int r, const char *what) {
        if (r == -E2BIG)
                return bus_error_setf_errno(
                        error, r, "%s: more than %u devices for one guest layout", what, HANDOFF_UNITS_MAX);
        return bus_error_setf_errno(error, r, "%s", what);
}

int bus_handoff_append_qemu_args(sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error) {
        _cleanup_strv_free_ char **args = NULL;
        int r = handoff_qemu_args(in, &args);
        if (r < 0)
                return handoff_error(error, r, "QEMU arguments");
        return sd_bus_message_append_strv(reply, args);
}

int bus_handoff_append_cloud_hypervisor_args(
        sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error) {
        _cleanup_strv_free_ char **args = NULL;
        int r = handoff_cloud_hypervisor_args(in, &args);
        if (r < 0)
                return handoff_error(error, r, "cloud-hypervisor arguments");
        return sd_bus_message_append_strv(reply, args);
}

int bus_handoff_append_libvirt_hostdev_xml(
        sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error) {
        _cleanup_free_ char *xml = NULL;
        int r = handoff_libvirt_hostdev_xml(in, &xml);
        if (r < 0)
                return handoff_error(error, r, "libvirt hostdev XML");
        return sd_bus_message_append(reply, "s", xml);
}

int bus_handoff_append_vfio_paths(sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error) {
        _cleanup_strv_free_ char **paths = NULL;
        int r = handoff_vfio_paths(in, &paths);
        if (r < 0)
                return handoff_error(error, r, "VFIO paths");
        /* vfio_group / vfio_device come from sysfs names: any bytes. */
        return bus_message_append_text_strv(reply, paths);
}

int bus_handoff_append_mmio_window(sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error) {
        _cleanup_(mmio_window_done) MmioWindow w = {};
        int r = handoff_mmio_window(in, &w);
        if (r < 0)
                return handoff_error(error, r, "MMIO window");

        r = sd_bus_message_open_container(reply, 'r', "ttta(syttbbb)");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "ttt", w.below_4g, w.above_4g, w.pci_hole64_size);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(syttbbb)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < w.n_bars; i++) {
                const HandoffBar *b = &w.bars[i];
                r = sd_bus_message_append(
                        reply, "(syttbbb)", b->address, b->index, b->size, b->alignment, (int)b->is_64bit,
                        (int)b->prefetchable, (int)b->above_4g);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

int bus_handoff_append_fingerprint(sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error) {
        _cleanup_free_ char *f = NULL;
        int r = handoff_fingerprint(in, &f);
        if (r < 0)
                return handoff_error(error, r, "fingerprint");
        return sd_bus_message_append(reply, "s", f);
}

/* ---- Manager methods ------------------------------------------------------------------------- */

/* CheckFingerprint(as devices, s fingerprint) -> (b match, as differences) */
int method_check_fingerprint(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(bus_handoff_set_done) BusHandoffSet s = {};
        _cleanup_strv_free_ char **refs = NULL, **differences = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusContext *d = userdata;
        const char *fingerprint;
        int r;

        r = sd_bus_message_read_strv(m, &refs);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &fingerprint);
        if (r < 0)
                return r;

        r = bus_handoff_set_resolve(d, refs, &s, error);
        if (r < 0)
                return r;
        HandoffInput in = bus_handoff_set_input(&s);
        r = handoff_fingerprint_check(&in, fingerprint, &differences);
        bool match = r > 0;
        if (r == -EINVAL)
                return bus_error_setf_errno(
                        error, r, "Not a hostdevd fingerprint: '%s' (expected \"v1:<sha256>:<units>\")",
                        ESCAPE_QUOTE(fingerprint));
        if (r < 0)
                return bus_error_setf_errno(error, r, "Failed to check the fingerprint");

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "b", (int)match);
        if (r < 0)
                return r;
        /* The canonical lines quote mdev type names: sysfs bytes. */
        r = bus_message_append_text_strv(reply, differences);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* GetDevicesByVfioNode(s node) -> (ao devices): functions in address order, then mdevs. */
int method_get_devices_by_vfio_node(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusContext *d = userdata;
        const PciDevice *const *devices;
        const Mdev *const *mdevs;
        const char *spec;
        size_t n = 0, n_mdevs = 0, found = 0;
        VfioNode node;
        int r;

        r = sd_bus_message_read(m, "s", &spec);
        if (r < 0)
                return r;

        r = vfio_node_parse(spec, &node);
        if (r == -EINVAL)
                return bus_error_setf_errno(
                        error, r,
                        "Not a VFIO node: '%s' (expected /dev/vfio/N, /dev/vfio/devices/vfioN or MAJOR:MINOR)",
                        ESCAPE_QUOTE(spec));
        if (r == -ENOENT || r == -ENODEV)
                return bus_error_setf_errno(error, r, "No VFIO node '%s'", ESCAPE_QUOTE(spec));
        if (r < 0)
                return bus_error_setf_errno(error, r, "Failed to look up '%s'", ESCAPE_QUOTE(spec));

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        devices = model_get_devices(d->model, &n);
        for (size_t i = 0; i < n; i++) {
                if (!vfio_node_has_device(&node, devices[i]))
                        continue;
                _cleanup_free_ char *path = object_path_from_pci_address(devices[i]->address);
                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "o", path);
                if (r < 0)
                        return r;
                found++;
        }
        mdevs = model_get_mdevs(d->model, &n_mdevs);
        for (size_t i = 0; i < n_mdevs; i++) {
                if (!vfio_node_has_mdev(&node, mdevs[i]))
                        continue;
                _cleanup_free_ char *path = object_path_from_mdev_uuid(mdevs[i]->uuid);
                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "o", path);
                if (r < 0)
                        return r;
                found++;
        }
        if (found == 0)
                return bus_error_setf_errno(error, -ENOENT, "No device behind '%s'", node.path);
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- the Lease object's handoff (bus-lease.c's vtable lists these) ---------------------------------- */

/* The lease at |path| and its functions as the model has them now (a function the model lost, e.g.
 * hot-removed, is left out). -ENOENT when there is no such lease. */
static int lease_handoff_set(BusContext *d, const char *path, const Lease **ret_lease, BusHandoffSet *ret) {
        _cleanup_(bus_handoff_set_done) BusHandoffSet s = {};
        const Lease *l;
        int r;

        l = d->leases && path ? lease_manager_find_by_path(d->leases, path) : NULL;
        if (!l)
                return -ENOENT;
        for (size_t i = 0; i < l->record->n_devices; i++) {
                const PciDevice *f = model_get_device(d->model, l->record->devices[i].address);
                if (!f)
                        continue;
                r = bus_handoff_set_add_device(&s, f);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < l->record->n_mdevs; i++) {
                const Mdev *md = model_get_mdev(d->model, l->record->mdevs[i].uuid);
                if (!md)
                        continue;
                r = bus_handoff_set_add_mdev(&s, md);
                if (r < 0)
                        return r;
        }
        if (ret_lease)
                *ret_lease = l;
        *ret = s;
        s = (BusHandoffSet){};
        return 0;
}

int bus_handoff_property_get_lease(
        sd_bus *bus, const char *path, const char *interface, const char *property, sd_bus_message *reply,
        void *userdata, sd_bus_error *error) {
        _cleanup_(bus_handoff_set_done) BusHandoffSet s = {};
        static const struct {
                const char *name;
                int (*append)(sd_bus_message *reply, const HandoffInput *in, sd_bus_error *error);
        } table[] = {
                { "QemuArgs", bus_handoff_append_qemu_args },
                { "CloudHypervisorArgs", bus_handoff_append_cloud_hypervisor_args },
                { "LibvirtHostdevXml", bus_handoff_append_libvirt_hostdev_xml },
                { "VfioPaths", bus_handoff_append_vfio_paths },
                { "MmioWindow", bus_handoff_append_mmio_window },
                { "Fingerprint", bus_handoff_append_fingerprint },
        };
        int r;

        r = lease_handoff_set(userdata, path, NULL, &s);
        if (r < 0)
                return r;
        HandoffInput in = bus_handoff_set_input(&s);
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(property, table[i].name))
                        return table[i].append(reply, &in, error);
        return -ENOENT;
}

typedef struct OpenVfioCall {
        BusContext *d;
        char *lease_path;
        char *node;
} OpenVfioCall;

static OpenVfioCall *open_vfio_call_free(OpenVfioCall *c) {
        if (!c)
                return NULL;
        free(c->lease_path);
        free(c->node);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(OpenVfioCall *, open_vfio_call_free);

static int reply_error(sd_bus_message *m, int r, const char *what, const char *value) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        (void)bus_error_setf_errno(&error, r, "%s '%s'", what, value);
        return sd_bus_reply_method_error(m, &error);
}

static void on_open_vfio_authorized(sd_bus_message *m, int r, const sd_bus_error *error, void *userdata) {
        _cleanup_(open_vfio_call_freep) OpenVfioCall *c = userdata;
        _cleanup_close_ int fd = -EBADF;
        const Lease *l;

        if (r <= 0) {
                (void)sd_bus_reply_method_error(m, error);
                return;
        }
        /* The lease may have ended while polkit answered: hand out nothing then. */
        l = c->d->leases ? lease_manager_find_by_path(c->d->leases, c->lease_path) : NULL;
        if (!l) {
                (void)reply_error(m, -ENOENT, "No lease (it ended)", c->lease_path);
                return;
        }
        fd = open(c->node, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                (void)reply_error(m, -errno, "Failed to open", c->node);
                return;
        }
        log_debug("Handing %s of lease %s to its owner", c->node, c->lease_path);
        (void)sd_bus_reply_method_return(m, "h", fd);
}

/* OpenVfioGroup(s node) -> (h fd) */
int method_open_vfio_group(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        _cleanup_(bus_handoff_set_done) BusHandoffSet s = {};
        _cleanup_(open_vfio_call_freep) OpenVfioCall *c = NULL;
        _cleanup_strv_free_ char **paths = NULL, **details = NULL, **groups = NULL;
        BusContext *d = userdata;
        const char *path = sd_bus_message_get_path(m), *node;
        const Lease *l;
        uid_t euid;
        int r;

        r = sd_bus_message_read(m, "s", &node);
        if (r < 0)
                return r;

        /* Validate. */
        r = lease_handoff_set(d, path, &l, &s);
        if (r == -ENOENT)
                return bus_error_setf_errno(error, r, "No lease '%s'", strna(path));
        if (r < 0)
                return r;
        HandoffInput in = bus_handoff_set_input(&s);
        r = handoff_vfio_paths(&in, &paths);
        if (r < 0)
                return r;
        STRV_FOREACH (p, paths)
                if (!startswith(*p, DEV_VFIO_DEVICES_DIR "/") && strv_extend(&groups, *p) < 0)
                        return -ENOMEM;
        if (isempty(node)) {
                if (strv_length(groups) != 1) {
                        _cleanup_free_ char *joined = strv_join(groups, " ");
                        return bus_error_setf_errno(
                                error, -EINVAL, "Lease %s has %zu VFIO groups (%s): name one", path,
                                strv_length(groups), strempty(joined));
                }
                node = groups[0];
        } else if (!strv_contains(paths, node))
                return bus_error_setf_errno(
                        error, -EINVAL, "'%s' is not a VFIO node of lease %s", ESCAPE_QUOTE(node), path);

        /* Authorize: the owner's uid or root, then polkit as for Acquire. */
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &euid);
        if (r < 0)
                return r;
        if (euid != 0 && euid != l->record->uid)
                return bus_error_setf_errno(
                        error, -EPERM,
                        "Lease %s belongs to uid %u: only its owner or root may open its nodes", path,
                        (unsigned)l->record->uid);

        c = calloc(1, sizeof(OpenVfioCall));
        if (!c)
                return -ENOMEM;
        c->d = d;
        c->lease_path = strdup(path);
        c->node = strdup(node);
        if (!c->lease_path || !c->node)
                return -ENOMEM;

        _cleanup_free_ char *joined = NULL;
        char pid[12];
        (void)snprintf(pid, sizeof pid, "%d", (int)l->record->pid);
        for (size_t i = 0; i < l->record->n_devices; i++)
                if (strv_extend(&details, l->record->devices[i].address) < 0)
                        return -ENOMEM;
        joined = strv_join(details, " ");
        details = strv_free(details);
        if (!joined || strv_extend(&details, POLKIT_DETAIL_DEVICES) < 0 ||
            strv_extend(&details, joined) < 0 || strv_extend(&details, POLKIT_DETAIL_PID) < 0 ||
            strv_extend(&details, pid) < 0)
                return -ENOMEM;

        r = bus_polkit_check(d->polkit, m, HOSTDEVD_ACTION_ACQUIRE, details, on_open_vfio_authorized, c);
        if (r == -EBUSY || r == -EDQUOT)
                return bus_error_setf_errno(
                        error, r, "Too many pending authorization checks%s",
                        r == -EDQUOT ? " of this user" : "");
        if (r < 0)
                return r;
        TAKE_PTR(c); /* the callback owns it */
        return 1;
}
