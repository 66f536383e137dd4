/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * The leases in force (lease-manager.h). Map:
 *   records      lease_store_*: RUNTIME_DIR/leases/<id>.json
 *   owners       pidfd helpers, on_owner_exit()
 *   acquire      lease_manager_acquire(), on_acquire_converged()
 *   release      lease_manager_release()
 *   restart      lease_manager_load()
 */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "escape.h"
#include "event-priorities.h"
#include "file-util.h"
#include "lease-manager.h"
#include "log.h"
#include "macro.h"
#include "names.h"
#include "reconciler.h"
#include "request.h"
#include "strv.h"

struct LeaseManager {
        sd_event *event;
        Model *model;
        Reconciler *reconciler;
        char *runtime_dir;
        char *dir; /* RUNTIME_DIR/leases */
        char *proc_root;
        LeaseManagerHooks hooks;
        void *userdata;

        Lease *leases, *last; /* oldest first */
        size_t n_leases;
        uint64_t next_id;

        Holder *holders; /* of the ACTIVE leases, rebuilt on every change */
        size_t n_holders;
};

/* A lease waiting for its functions to converge. */
typedef struct AcquireJob {
        LeaseManager *manager;
        uint64_t id; /* the lease may be gone meanwhile (hostdevd stops): looked up by id */
        LeaseDoneFunc done;
        void *userdata;
        unsigned mdev_rounds; /* convergences again while the model catches up with a new mdev */
} AcquireJob;

/* As CreateMdev (bus-request.c): a few more rounds at most, then a create that got nowhere fails. */
#define ACQUIRE_MDEV_ROUNDS_MAX 4u

/* ---- owners -------------------------------------------------------------------------------------- */

int pidfd_get_pid(int fd, pid_t *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], line[256];

        (void)snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -EBADF : -errno;
        while (fgets(line, sizeof(line), f)) {
                long v;
                char *end;

                if (strncmp(line, "Pid:", 4) != 0)
                        continue;
                errno = 0;
                v = strtol(line + 4, &end, 10);
                if (errno != 0 || (*end != '\n' && *end != '\0'))
                        return -EBADF;
                if (v <= 0)
                        return -ESRCH;
                *ret = (pid_t)v;
                return 0;
        }
        return -EBADF;
}

bool pidfd_exited(int pidfd) {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };

        return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

static char *read_comm(const char *proc_root, pid_t pid) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        char *nl;

        if (asprintf(&path, "%s/%d/comm", proc_root ?: PROC_ROOT, (int)pid) < 0)
                return NULL;
        if (file_read_bounded(path, 64, 0, &text, NULL) < 0)
                return strdup("?");
        nl = strchr(text, '\n');
        if (nl)
                *nl = '\0';
        return TAKE_PTR(text);
}

/* Journal entries of lease transitions carry VMM_PID=. */
#define log_lease(message_id, pid, ...)                                                            \
        ({                                                                                         \
                char _field_[sizeof(JOURNAL_FIELD_VMM_PID) + 16];                                  \
                (void)snprintf(_field_, sizeof(_field_), JOURNAL_FIELD_VMM_PID "=%d", (int)(pid)); \
                (void)log_field_full_errno(LOG_INFO, 0, _field_, message_id, __VA_ARGS__);         \
        })

/* ---- the list and the holders ---------------------------------------------------------------------- */

static Lease *lease_free(Lease *l) {
        if (!l)
                return NULL;
        sd_event_source_disable_unref(l->owner_source);
        if (l->pidfd >= 0)
                (void)close(l->pidfd);
        lease_record_free(l->record);
        free(l->path);
        free(l->comm);
        free(l);
        return NULL;
}

/* The lease as the holder of IOMMU group |group|'s node: h[*k], then *k + 1. A group < 0 (a function
 * or mdev gone from the model, or without a group) holds nothing. Returns 0 or -ENOMEM. */
static int holder_add_group(Holder *h, size_t *k, const Lease *l, int32_t group) {
        if (group < 0)
                return 0;
        h[*k] = (Holder){ .pid = l->record->pid, .comm = l->comm };
        if (asprintf(&h[*k].node, "/dev/vfio/%" PRId32, group) < 0) {
                h[*k].node = NULL;
                return -ENOMEM;
        }
        (*k)++;
        return 0;
}

static int rebuild_holders(LeaseManager *m) {
        size_t n = 0, k = 0;
        Holder *h;
        int r = 0;

        for (size_t i = 0; i < m->n_holders; i++)
                free(m->holders[i].node);
        m->holders = mfree(m->holders);
        m->n_holders = 0;

        for (Lease *l = m->leases; l; l = l->next)
                if (l->record->state == LEASE_STATE_ACTIVE)
                        n += l->record->n_devices + l->record->n_mdevs;
        if (n == 0)
                return 0;
        h = calloc(n, sizeof(Holder));
        if (!h)
                return -ENOMEM;
        for (Lease *l = m->leases; l && r >= 0; l = l->next) {
                if (l->record->state != LEASE_STATE_ACTIVE)
                        continue;
                for (size_t i = 0; r >= 0 && i < l->record->n_devices; i++) {
                        const PciDevice *d = model_get_device(m->model, l->record->devices[i].address);

                        r = holder_add_group(h, &k, l, d ? d->iommu_group : -1);
                }
                /* An mdev's group node: no plan removes the instance while the lease holds it. */
                for (size_t i = 0; r >= 0 && i < l->record->n_mdevs; i++) {
                        const Mdev *md = model_get_mdev(m->model, l->record->mdevs[i].uuid);

                        r = holder_add_group(h, &k, l, md ? md->iommu_group : -1);
                }
        }
        if (r < 0) {
                for (size_t j = 0; j < k; j++)
                        free(h[j].node);
                free(h);
                return r;
        }
        m->holders = h;
        m->n_holders = k;
        return 0;
}

const char *lease_manager_command(LeaseManager *m, Lease *l) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        char *nl;

        if (l->record->state == LEASE_STATE_ACTIVE &&
            asprintf(&path, "%s/%d/comm", m->proc_root ?: PROC_ROOT, (int)l->record->pid) >= 0 &&
            file_read_bounded(path, 64, 0, &text, NULL) >= 0) {
                nl = strchr(text, '\n');
                if (nl)
                        *nl = '\0';
                free(l->comm);
                l->comm = TAKE_PTR(text);
        }
        return l->comm;
}

void lease_manager_holders(LeaseManager *m, const Holder **ret, size_t *ret_n) {
        /* Group numbers come from the model, which may have changed since the last lease change. */
        if (rebuild_holders(m) < 0)
                log_warning("Out of memory listing the leased functions as holders, ignoring");
        *ret = m->holders;
        *ret_n = m->n_holders;
}

int lease_manager_leased_functions(LeaseManager *m, LeasedFunction **ret, size_t *ret_n) {
        LeasedFunction *f;
        size_t n = 0, k = 0;

        for (Lease *l = m->leases; l; l = l->next)
                n += l->record->n_devices;
        f = calloc(n ?: 1, sizeof(LeasedFunction));
        if (!f)
                return -ENOMEM;
        for (Lease *l = m->leases; l; l = l->next)
                for (size_t i = 0; i < l->record->n_devices; i++)
                        f[k++] = (LeasedFunction){
                                .address = l->record->devices[i].address,
                                .lease_id = l->record->id,
                                .pid = l->record->pid,
                        };
        *ret = f;
        *ret_n = k;
        return 0;
}

static void lease_link(LeaseManager *m, Lease *l) {
        l->manager = m;
        l->prev = m->last;
        if (m->last)
                m->last->next = l;
        else
                m->leases = l;
        m->last = l;
        m->n_leases++;
        if (l->record->id >= m->next_id)
                m->next_id = l->record->id + 1;
}

static void lease_unlink(LeaseManager *m, Lease *l) {
        if (l->prev)
                l->prev->next = l->next;
        else
                m->leases = l->next;
        if (l->next)
                l->next->prev = l->prev;
        else
                m->last = l->prev;
        l->prev = l->next = NULL;
        m->n_leases--;
}

Lease *lease_manager_first(LeaseManager *m) {
        return m->leases;
}

size_t lease_manager_count(LeaseManager *m) {
        return m->n_leases;
}

Lease *lease_manager_find_by_path(LeaseManager *m, const char *path) {
        for (Lease *l = m->leases; l; l = l->next)
                if (streq(l->path, path))
                        return l;
        return NULL;
}

Lease *lease_manager_find_by_address(LeaseManager *m, const char *address) {
        for (Lease *l = m->leases; l; l = l->next)
                if (lease_record_get_device(l->record, address))
                        return l;
        return NULL;
}

Lease *lease_manager_find_by_mdev(LeaseManager *m, const char *uuid) {
        for (Lease *l = m->leases; l; l = l->next)
                if (lease_record_get_mdev(l->record, uuid))
                        return l;
        return NULL;
}

Lease *lease_manager_find_by_pid(LeaseManager *m, pid_t pid) {
        for (Lease *l = m->leases; l; l = l->next)
                if (l->record->pid == pid)
                        return l;
        return NULL;
}

static Lease *find_by_id(LeaseManager *m, uint64_t id) {
        for (Lease *l = m->leases; l; l = l->next)
                if (l->record->id == id)
                        return l;
        return NULL;
}

/* ---- records --------------------------------------------------------------------------------------- */

static int lease_store_write(LeaseManager *m, const LeaseRecord *rec) {
        _cleanup_free_ char *name = NULL, *text = NULL;
        int r;

        /* The runtime directory itself may be missing (no RuntimeDirectory= outside the unit): the
         * records and the lease declarations (RUNTIME_DIR/devices.d) both need it. */
        if (mkdir(m->runtime_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create %s: %m", m->runtime_dir);
        r = lease_record_file_name(rec->id, &name);
        if (r >= 0)
                r = lease_record_to_json(rec, &text);
        if (r >= 0)
                r = file_write_atomic(m->dir, name, text, strlen(text), 0644, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to record lease %" PRIu64 " in %s: %m", rec->id, m->dir);
        return 0;
}

static void lease_store_remove(LeaseManager *m, uint64_t id) {
        _cleanup_free_ char *name = NULL, *path = NULL;

        if (lease_record_file_name(id, &name) < 0 || asprintf(&path, "%s/%s", m->dir, name) < 0)
                return;
        if (unlink(path) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "Failed to remove %s: %m, ignoring", path);
}

static int lease_set_state(LeaseManager *m, Lease *l, LeaseState state) {
        int r;

        l->record->state = state;
        r = lease_store_write(m, l->record);
        (void)rebuild_holders(m);
        if (m->hooks.lease_changed)
                m->hooks.lease_changed(m->userdata, l);
        return r;
}

/* ---- release ---------------------------------------------------------------------------------------- */

static int on_owner_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int watch_owner(LeaseManager *m, Lease *l) {
        int r;

        r = sd_event_add_io(m->event, &l->owner_source, l->pidfd, EPOLLIN, on_owner_exit, l);
        if (r < 0)
                return r;
        (void)sd_event_source_set_priority(l->owner_source, EVENT_PRIORITY_LEASE_OWNER);
        (void)sd_event_source_set_description(l->owner_source, "lease-owner");
        return 0;
}

/* The declarations of |l| as its policies say (no reload: the caller's last write reloads). */
static int apply_policies(LeaseManager *m, const Lease *l) {
        int r, ret = 0;

        for (size_t i = 0; i < l->record->n_devices; i++) {
                const LeaseDevice *ld = &l->record->devices[i];

                if (ld->policy == LEASE_POLICY_KEEP) {
                        _cleanup_free_ char *content = NULL;

                        r = request_format_device(ld->address, CONF_DRIVER_VFIO_PCI, 0, &content);
                        if (r >= 0)
                                r = reconciler_write_request(
                                        m->reconciler, REQUEST_DEVICE, ld->address, content, false);
                        if (r < 0 && r != -EBADMSG) {
                                log_error_errno(
                                        r, "Failed to keep %s on vfio-pci after lease %" PRIu64 ": %m",
                                        ld->address, l->record->id);
                                ret = ret ?: r;
                        }
                }
                r = reconciler_remove_requests(m->reconciler, REQUEST_LEASE, ld->address);
                if (r < 0 && r != -ENOENT && r != -EBADMSG) {
                        log_error_errno(r, "Failed to remove the lease declaration of %s: %m", ld->address);
                        ret = ret ?: r;
                }
                if (r == -EBADMSG)
                        log_warning(
                                "The desired-state files do not parse: %s follows its release policy once "
                                "they do",
                                ld->address);
        }
        for (size_t i = 0; i < l->record->n_mdevs; i++) {
                const LeaseMdev *lm = &l->record->mdevs[i];

                /* keep: the declaration stays, a transient instance as CreateMdev makes. */
                if (lm->policy != LEASE_POLICY_REMOVE)
                        continue;
                r = reconciler_remove_requests(m->reconciler, REQUEST_MDEV, lm->uuid);
                if (r < 0 && r != -ENOENT && r != -EBADMSG) {
                        log_error_errno(r, "Failed to remove the declaration of mdev %s: %m", lm->uuid);
                        ret = ret ?: r;
                }
                if (r == -EBADMSG)
                        log_warning(
                                "The desired-state files do not parse: mdev %s is removed once they do",
                                lm->uuid);
        }
        return ret;
}

/* ---- "vfio-owner": the group nodes for the owner's uid ------------------------------------------- */

static int open_node(const char *node, struct stat *ret) {
        _cleanup_close_ int fd = open(node, O_PATH | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (fstat(fd, ret) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* Record each group node's owner, write the record, then hand the nodes to the lease's uid. */
static int vfio_owner_take(LeaseManager *m, Lease *l) {
        LeaseRecord *rec = l->record;
        int r;

        if (!rec->vfio_owner)
                return 0;
        free(rec->node_owners);
        rec->node_owners = calloc(rec->n_devices ?: 1, sizeof(LeaseNodeOwner));
        rec->n_node_owners = 0;
        if (!rec->node_owners)
                return -ENOMEM;
        for (size_t i = 0; i < rec->n_devices; i++) {
                const PciDevice *d = model_get_device(m->model, rec->devices[i].address);
                _cleanup_close_ int fd = -EBADF;
                char node[LEASE_NODE_PATH_MAX];
                struct stat st;
                bool seen = false;

                /* The model may not have seen the bind yet (its uevent comes after the executor's write
                 * returned, the kernel lane saw it): the function is on vfio-pci now, so its group's node
                 * is DEV_VFIO_DIR/<iommu group>, made by vfio_pci's probe before the bind returned
                 * (Linux 6.1 drivers/vfio/vfio_main.c: vfio_register_group_dev -> vfio_create_group ->
                 * cdev_device_add, whose devtmpfs node exists when it returns). */
                if (d && d->vfio_group && strlen(d->vfio_group) < sizeof node)
                        snprintf(node, sizeof node, "%s", d->vfio_group);
                else if (d && d->iommu_group >= 0)
                        snprintf(node, sizeof node, "%s/%" PRIi32, DEV_VFIO_DIR, d->iommu_group);
                else
                        return log_error_errno(
                                ENOENT, "%s has no VFIO group node to hand to uid %u",
                                rec->devices[i].address, (unsigned)rec->uid);
                for (size_t j = 0; j < rec->n_node_owners; j++)
                        seen = seen || streq(rec->node_owners[j].node, node);
                if (seen)
                        continue;
                fd = open_node(node, &st);
                if (fd < 0)
                        return log_error_errno(fd, "Failed to open %s: %m", node);
                LeaseNodeOwner *o = &rec->node_owners[rec->n_node_owners++];
                snprintf(o->node, sizeof o->node, "%s", node);
                o->uid = st.st_uid;
                o->gid = st.st_gid;
        }
        r = lease_store_write(m, rec);
        if (r < 0)
                return r;
        for (size_t j = 0; j < rec->n_node_owners; j++) {
                struct stat st;
                _cleanup_close_ int fd = open_node(rec->node_owners[j].node, &st);

                if (fd < 0)
                        return log_error_errno(fd, "Failed to open %s: %m", rec->node_owners[j].node);
                if (fchownat(fd, "", rec->uid, (gid_t)-1, AT_EMPTY_PATH) < 0)
                        return log_error_errno(
                                errno, "Failed to hand %s to uid %u: %m", rec->node_owners[j].node,
                                (unsigned)rec->uid);
                log_debug(
                        "%s now belongs to uid %u (lease %" PRIu64 ")", rec->node_owners[j].node,
                        (unsigned)rec->uid, rec->id);
        }
        return 0;
}

/* Give each node back to its recorded owner, unless someone else has changed it since. Logs, ignores. */
static void vfio_owner_restore(Lease *l) {
        const LeaseRecord *rec = l->record;

        for (size_t j = 0; j < rec->n_node_owners; j++) {
                const LeaseNodeOwner *o = &rec->node_owners[j];
                struct stat st;
                _cleanup_close_ int fd = open_node(o->node, &st);

                if (fd < 0) {
                        log_debug_errno(fd, "%s is gone (%m), nothing to give back", o->node);
                        continue;
                }
                if (st.st_uid != rec->uid) {
                        log_warning(
                                "%s belongs to uid %u now, not the lease's %u: left alone", o->node,
                                (unsigned)st.st_uid, (unsigned)rec->uid);
                        continue;
                }
                if (fchownat(fd, "", o->uid, o->gid, AT_EMPTY_PATH) < 0)
                        log_warning_errno(
                                errno, "Failed to give %s back to uid %u, ignoring: %m", o->node,
                                (unsigned)o->uid);
        }
}

int lease_manager_release(LeaseManager *m, Lease *l, const char *why) {
        int r;

        assert(m && l);

        /* Holders first: the plan the declarations schedule must not see this lease any more. */
        l->owner_source = sd_event_source_disable_unref(l->owner_source);
        (void)lease_set_state(m, l, LEASE_STATE_RELEASING);
        vfio_owner_restore(l);

        log_lease(
                MESSAGE_ID_LEASE_ENDED, l->record->pid, "Lease %" PRIu64 " of pid %d (%s) ends: %s",
                l->record->id, (int)l->record->pid, strna(l->comm), why);
        r = apply_policies(m, l);
        lease_store_remove(m, l->record->id);
        if (m->hooks.lease_removed)
                m->hooks.lease_removed(m->userdata, l);
        lease_unlink(m, l);
        lease_free(l);
        (void)rebuild_holders(m);
        reconciler_schedule(m->reconciler);
        return r;
}

static int on_owner_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Lease *l = userdata;

        (void)lease_manager_release(l->manager, l, "its owner exited");
        return 0;
}

/* ---- acquire ---------------------------------------------------------------------------------------- */

void lease_ask_done(LeaseAsk *a) {
        if (!a)
                return;
        a->addresses = strv_free(a->addresses);
        a->policy_addresses = strv_free(a->policy_addresses);
        a->policies = mfree(a->policies);
        a->mdev_types = strv_free(a->mdev_types);
        a->mdev_parents = strv_free(a->mdev_parents);
        if (a->pidfd >= 0)
                (void)close(a->pidfd);
        a->pidfd = -EBADF;
}

static int lease_mdev_compare(const void *a, const void *b) {
        return strcmp(((const LeaseMdev *)a)->uuid, ((const LeaseMdev *)b)->uuid);
}

/* A lease that never became ready: nobody got its mdevs, whatever their policy, so they go. */
static void lease_mdevs_remove_all(Lease *l) {
        for (size_t i = 0; i < l->record->n_mdevs; i++)
                l->record->mdevs[i].policy = LEASE_POLICY_REMOVE;
}

/* A verdict of lease_check() or lease_mdev_check() as the errno the bus maps: 0 for LEASE_CHECK_OK. */
static int verdict_errno(LeaseCheckVerdict verdict) {
        switch (verdict) {
        case LEASE_CHECK_NOT_FOUND:
                return -ENOENT;
        case LEASE_CHECK_LEASED:
                return -EBUSY;
        case LEASE_CHECK_REFUSED:
                return -EPERM;
        default:
                return 0;
        }
}

/*
 * Place the mdevs |ask| asks for on the parents of the model (lease_mdev_check()). The mdevs of
 * leases in force that the model does not list yet (being created) take their room. Returns 0 and
 * *ret (new array, strv_length(ask->mdev_types) entries, borrowed strings) or the verdict's errno
 * with *ret_reason: -ENOENT, -EPERM; -ENOMEM.
 */
static int acquire_place_mdevs(
        LeaseManager *m, const LeaseAsk *ask, LeaseMdevPlace **ret, char **ret_reason) {
        _cleanup_free_ LeaseMdevAsk *asks = NULL;
        _cleanup_free_ LeaseMdevUse *pending = NULL;
        _cleanup_free_ LeaseMdevPlace *places = NULL;
        size_t n = strv_length(ask->mdev_types), n_pending = 0, n_all = 0;
        LeaseCheckVerdict verdict;
        LeaseMdevCheckInput in;
        int r;

        for (Lease *l = m->leases; l; l = l->next)
                n_all += l->record->n_mdevs;
        asks = calloc(n + 1, sizeof(LeaseMdevAsk));
        places = calloc(n + 1, sizeof(LeaseMdevPlace));
        pending = calloc(n_all + 1, sizeof(LeaseMdevUse));
        if (!asks || !places || !pending)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                asks[i] = (LeaseMdevAsk){ .type = ask->mdev_types[i], .parent = ask->mdev_parents[i] };
        for (Lease *l = m->leases; l; l = l->next)
                for (size_t i = 0; i < l->record->n_mdevs; i++)
                        if (!model_get_mdev(m->model, l->record->mdevs[i].uuid))
                                pending[n_pending++] = (LeaseMdevUse){
                                        .parent = l->record->mdevs[i].parent,
                                        .type_id = l->record->mdevs[i].type,
                                };
        in = (LeaseMdevCheckInput){
                .asks = asks,
                .n_asks = n,
                .pending = pending,
                .n_pending = n_pending,
        };
        in.parents = model_get_mdev_parents(m->model, &in.n_parents);
        in.devices = model_get_devices(m->model, &in.n_devices);
        in.mdevs = model_get_mdevs(m->model, &in.n_mdevs);
        r = lease_mdev_check(&in, &verdict, places, ret_reason);
        if (r < 0)
                return r;
        r = verdict_errno(verdict);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(places);
        return 0;
}

static LeasePolicy ask_policy(const LeaseAsk *a, const char *address) {
        for (size_t i = 0; a->policy_addresses && a->policy_addresses[i]; i++)
                if (streq(a->policy_addresses[i], address))
                        return a->policies[i];
        return a->default_policy;
}

/* Undo a lease that never became ready: its declarations go, so the reconciler gives back what it bound. */
static void acquire_undo(LeaseManager *m, Lease *l) {
        for (size_t i = 0; i < l->record->n_devices; i++)
                (void)reconciler_remove_requests(
                        m->reconciler, REQUEST_LEASE, l->record->devices[i].address);
        for (size_t i = 0; i < l->record->n_mdevs; i++)
                (void)reconciler_remove_requests(m->reconciler, REQUEST_MDEV, l->record->mdevs[i].uuid);
        lease_store_remove(m, l->record->id);
        if (m->hooks.lease_removed)
                m->hooks.lease_removed(m->userdata, l);
        lease_unlink(m, l);
        lease_free(l);
        (void)rebuild_holders(m);
        reconciler_schedule(m->reconciler);
}

static void on_acquire_converged(Reconciler *rec, int error, void *userdata) {
        _cleanup_free_ AcquireJob *job = userdata;
        _cleanup_free_ char *reason = NULL;
        LeaseManager *m = job->manager;
        Lease *l = find_by_id(m, job->id);

        log_debug("Acquire step: converged (error %d)", error);
        if (!l) {
                job->done(-ECANCELED, NULL, "the lease was ended while it was prepared", job->userdata);
                return;
        }
        if (error == -ECANCELED) {
                /* hostdevd stops: the record stays PREPARING and the next start gives back its functions. */
                job->done(error, NULL, "hostdevd is stopping", job->userdata);
                return;
        }
        if (error < 0) {
                acquire_undo(m, l);
                job->done(error, NULL, NULL, job->userdata);
                return;
        }
        /* The reply and the handoff quote the model: read the functions as the job left them. */
        for (size_t i = 0; i < l->record->n_devices; i++)
                reconciler_reread_device(rec, l->record->devices[i].address);
        for (size_t i = 0; i < l->record->n_devices; i++) {
                const char *address = l->record->devices[i].address;
                DeviceStatusView v;

                reconciler_device_status(rec, address, &v);
                if (v.state == DEVICE_STATE_CONVERGED)
                        continue;
                if (asprintf(
                            &reason, "%s %s: %s", address, device_state_to_string(v.state),
                            *v.reason               ? v.reason
                                    : *v.last_error ? v.last_error
                                                    : "no reason given") < 0)
                        reason = NULL;
                error = v.state == DEVICE_STATE_REFUSED   ? -EPERM
                        : v.state == DEVICE_STATE_BLOCKED ? -EBUSY
                                                          : -EIO;
                break;
        }
        for (size_t i = 0; error == 0 && i < l->record->n_mdevs; i++) {
                const LeaseMdev *lm = &l->record->mdevs[i];
                bool there = model_get_mdev(m->model, lm->uuid);
                MdevStatusView v;

                reconciler_mdev_status(rec, lm->uuid, &v);
                if (there && v.state == DEVICE_STATE_CONVERGED)
                        continue;
                /* Created in sysfs, but the model may not have applied its uevents yet: converge again
                 * (a plan after every uevent received so far), a few rounds at most. */
                if ((v.state == DEVICE_STATE_PENDING || v.state == DEVICE_STATE_CONVERGED) &&
                    job->mdev_rounds < ACQUIRE_MDEV_ROUNDS_MAX) {
                        job->mdev_rounds++;
                        if (reconciler_converge(rec, on_acquire_converged, job) >= 0) {
                                TAKE_PTR(job);
                                return;
                        }
                }
                if (asprintf(
                            &reason, "mdev %s (type %s on %s) not created: %s", lm->uuid, lm->type,
                            lm->parent,
                            *v.reason       ? v.reason
                                    : there ? device_state_to_string(v.state)
                                            : "the instance did not appear") < 0)
                        reason = NULL;
                error = v.state == DEVICE_STATE_REFUSED   ? -EPERM
                        : v.state == DEVICE_STATE_BLOCKED ? -EBUSY
                                                          : -EIO;
        }
        if (error == 0 && pidfd_exited(l->pidfd)) {
                /* Gone while its functions were prepared: nobody to hand them to. */
                lease_mdevs_remove_all(l);
                (void)lease_manager_release(m, l, "its owner exited before the lease was ready");
                job->done(-ESRCH, NULL, "the lease owner exited before the lease was ready", job->userdata);
                return;
        }
        if (error < 0) {
                acquire_undo(m, l);
                job->done(error, NULL, reason, job->userdata);
                return;
        }
        if (vfio_owner_take(m, l) < 0) {
                lease_mdevs_remove_all(l);
                (void)lease_manager_release(m, l, "its VFIO group nodes could not be handed to its owner");
                job->done(
                        -EIO, NULL, "the VFIO group nodes could not be handed to the lease owner",
                        job->userdata);
                return;
        }
        if (lease_set_state(m, l, LEASE_STATE_ACTIVE) < 0 || watch_owner(m, l) < 0) {
                lease_mdevs_remove_all(l);
                (void)lease_manager_release(m, l, "it could not be recorded or watched");
                job->done(-EIO, NULL, "the lease could not be recorded or its owner watched", job->userdata);
                return;
        }
        log_debug("Acquire step: ACTIVE recorded, owner watched");
        log_lease(
                MESSAGE_ID_LEASE_STARTED, l->record->pid,
                "Lease %" PRIu64 " of pid %d (%s): %zu functions, %zu mdevs ready", l->record->id,
                (int)l->record->pid, strna(l->comm), l->record->n_devices, l->record->n_mdevs);
        job->done(0, l, NULL, job->userdata);
}

int lease_manager_acquire(
        LeaseManager *m, LeaseAsk *ask, LeaseDoneFunc done, void *userdata, char ***ret_members,
        char **ret_reason) {
        _cleanup_(critical_set_freep) CriticalSet *critical = NULL;
        _cleanup_free_ LeasedFunction *leased = NULL;
        _cleanup_strv_free_ char **members = NULL;
        _cleanup_free_ char *critical_error = NULL;
        _cleanup_free_ AcquireJob *job = NULL;
        _cleanup_free_ LeaseMdevPlace *places = NULL;
        size_t n_mdevs = strv_length(ask->mdev_types);
        const PciDevice *const *devices;
        LeaseCheckVerdict verdict;
        LeaseCheckInput in;
        struct timespec ts;
        size_t n_devices = 0, n_leased = 0;
        Lease *l;
        int r;

        assert(m && ask && done && ret_members && ret_reason);
        *ret_reason = NULL;

        if (ask->pidfd < 0 || pidfd_exited(ask->pidfd)) {
                *ret_reason = strdup("the lease owner exited");
                return -ESRCH;
        }
        if (!ask->dry_run && m->n_leases >= LEASES_MAX) {
                (void)asprintf(ret_reason, "%u leases are in force already", LEASES_MAX);
                return -E2BIG;
        }

        r = reconciler_compute_critical(m->reconciler, &critical, &critical_error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                (void)asprintf(
                        ret_reason, "the host-critical functions cannot be computed: %s",
                        strna(critical_error));
                return -EPERM;
        }
        r = lease_manager_leased_functions(m, &leased, &n_leased);
        if (r < 0)
                return r;
        devices = model_get_devices(m->model, &n_devices);
        in = (LeaseCheckInput){
                .addresses = ask->addresses,
                .whole_group = ask->whole_group,
                .devices = devices,
                .n_devices = n_devices,
                .critical = critical->devices,
                .n_critical = critical->n_devices,
                .leased = leased,
                .n_leased = n_leased,
        };
        /* A lease of mdevs only has no function to check. */
        verdict = LEASE_CHECK_OK;
        r = strv_length(ask->addresses) == 0 ? 0 : lease_check(&in, &verdict, &members, ret_reason);
        if (r < 0)
                return r;
        r = verdict_errno(verdict);
        if (r < 0)
                return r;
        for (size_t i = 0; ask->policy_addresses && ask->policy_addresses[i]; i++)
                if (!strv_contains(members, ask->policy_addresses[i])) {
                        (void)asprintf(
                                ret_reason, "a release policy names %s, which is not in the lease",
                                ask->policy_addresses[i]);
                        return -EINVAL;
                }

        if (n_mdevs > 0) {
                if (strv_length(members) + n_mdevs > LEASE_DEVICES_MAX) {
                        (void)asprintf(
                                ret_reason, "a lease holds at most %u functions and mdevs, %zu asked for",
                                LEASE_DEVICES_MAX, strv_length(members) + n_mdevs);
                        return -EINVAL;
                }
                r = acquire_place_mdevs(m, ask, &places, ret_reason);
                if (r < 0)
                        return r;
        }

        log_debug("Acquire step: validated");
        if (ask->dry_run) {
                /* Each mdev as where it would go: "PARENT/TYPE-ID" (no UUID has a '/'). */
                for (size_t i = 0; i < n_mdevs; i++)
                        if (strv_extendf(&members, "%s/%s", places[i].parent, places[i].type_id) < 0)
                                return -ENOMEM;
                *ret_members = TAKE_PTR(members);
                return 0;
        }

        /* Record first (PREPARING): a crash from here on finds the record and gives back what it bound. */
        l = calloc(1, sizeof(Lease));
        if (!l)
                return -ENOMEM;
        l->pidfd = -EBADF;
        l->record = calloc(1, sizeof(LeaseRecord));
        job = calloc(1, sizeof(AcquireJob));
        if (!l->record || !job) {
                lease_free(l);
                return -ENOMEM;
        }
        l->record->devices = calloc(strv_length(members) ?: 1, sizeof(LeaseDevice));
        l->record->mdevs = n_mdevs > 0 ? calloc(n_mdevs, sizeof(LeaseMdev)) : NULL;
        if (!l->record->devices || (n_mdevs > 0 && !l->record->mdevs)) {
                lease_free(l);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_mdevs; i++) {
                LeaseMdev *lm = &l->record->mdevs[l->record->n_mdevs++];
                uuid_t u;

                /* A fresh UUID: the kernel names the instance by it (mdev_device_create()). */
                uuid_generate_random(u);
                uuid_unparse_lower(u, lm->uuid);
                lm->policy = ask->mdev_policy;
                lm->parent = strdup(places[i].parent);
                lm->type = strdup(places[i].type_id);
                if (!lm->parent || !lm->type) {
                        lease_free(l);
                        return -ENOMEM;
                }
        }
        if (n_mdevs > 0)
                qsort(l->record->mdevs, n_mdevs, sizeof(LeaseMdev), lease_mdev_compare);
        STRV_FOREACH (a, members) {
                LeaseDevice *ld = &l->record->devices[l->record->n_devices++];

                memcpy(ld->address, *a, strlen(*a) + 1);
                ld->policy = ask_policy(ask, *a);
        }
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        l->record->id = m->next_id;
        l->record->pid = ask->pid;
        l->record->start_time = ask->start_time;
        l->record->uid = ask->uid;
        l->record->since_usec = (uint64_t)ts.tv_sec * UINT64_C(1000000) + (uint64_t)ts.tv_nsec / 1000;
        l->record->whole_group = ask->whole_group;
        l->record->vfio_owner = ask->vfio_owner;
        l->record->state = LEASE_STATE_PREPARING;
        l->comm = read_comm(m->proc_root, ask->pid);
        if (asprintf(
                    &l->path, "%s/%s%" PRIu64, HOSTDEVD_LEASES_PATH, HOSTDEVD_LEASE_PATH_PREFIX,
                    l->record->id) < 0 ||
            !l->comm) {
                l->path = NULL;
                lease_free(l);
                return -ENOMEM;
        }
        r = lease_store_write(m, l->record);
        if (r < 0) {
                lease_free(l);
                return r;
        }
        log_debug("Acquire step: lease %" PRIu64 " recorded (PREPARING)", l->record->id);
        l->pidfd = TAKE_FD(ask->pidfd);
        lease_link(m, l);
        if (m->hooks.lease_added)
                m->hooks.lease_added(m->userdata, l);
        log_debug("Acquire step: lease object published");

        for (size_t i = 0; i < l->record->n_devices; i++) {
                _cleanup_free_ char *content = NULL;

                r = request_format_device(l->record->devices[i].address, CONF_DRIVER_VFIO_PCI, 0, &content);
                if (r >= 0)
                        r = reconciler_write_request(
                                m->reconciler, REQUEST_LEASE, l->record->devices[i].address, content, false);
                if (r < 0) {
                        acquire_undo(m, l);
                        if (r == -EBADMSG)
                                *ret_reason =
                                        strdup("the desired-state files do not parse (see ConfigErrors)");
                        return r;
                }
        }
        for (size_t i = 0; i < l->record->n_mdevs; i++) {
                const LeaseMdev *lm = &l->record->mdevs[i];
                _cleanup_free_ char *content = NULL;

                r = request_format_mdev((char *[]){ lm->parent, NULL }, lm->type, lm->uuid, &content);
                if (r >= 0)
                        r = reconciler_write_request(m->reconciler, REQUEST_MDEV, lm->uuid, content, false);
                if (r < 0) {
                        acquire_undo(m, l);
                        if (r == -EBADMSG)
                                *ret_reason =
                                        strdup("the desired-state files do not parse (see ConfigErrors)");
                        return r;
                }
        }

        log_debug("Acquire step: declared (request files written, desired state reloaded)");
        *job = (AcquireJob){ .manager = m, .id = l->record->id, .done = done, .userdata = userdata };
        r = reconciler_converge(m->reconciler, on_acquire_converged, job);
        if (r < 0) {
                acquire_undo(m, l);
                return r;
        }
        TAKE_PTR(job);
        *ret_members = TAKE_PTR(members);
        return 1;
}

/* ---- restart ---------------------------------------------------------------------------------------- */

/* One record found at start: adopt it, or end it with its policies. Returns 1 adopted, 0 ended, <0. */
static int lease_adopt(LeaseManager *m, LeaseRecord *rec) {
        _cleanup_close_ int pidfd = -EBADF;
        const char *why = NULL;
        uint64_t start_time;
        Lease *l;
        int r;

        pidfd = pidfd_open(rec->pid, 0);
        if (pidfd < 0)
                why = "its owner is gone";
        else if (lease_read_start_time(m->proc_root, rec->pid, &start_time) < 0 || pidfd_exited(pidfd))
                why = "its owner is gone";
        else if (start_time != rec->start_time)
                why = "its owner is gone (the pid was reused: another start time)";
        else if (rec->state != LEASE_STATE_ACTIVE)
                why = rec->state == LEASE_STATE_PREPARING ? "hostdevd stopped while it was prepared"
                                                          : "hostdevd stopped while it was released";

        l = calloc(1, sizeof(Lease));
        if (!l)
                return -ENOMEM;
        l->pidfd = -EBADF;
        l->record = rec;
        l->comm = why ? strdup("?") : read_comm(m->proc_root, rec->pid);
        if (!l->comm ||
            asprintf(&l->path, "%s/%s%" PRIu64, HOSTDEVD_LEASES_PATH, HOSTDEVD_LEASE_PATH_PREFIX, rec->id) <
                    0) {
                l->path = NULL;
                l->record = NULL;
                lease_free(l);
                return -ENOMEM;
        }
        lease_link(m, l);
        if (why) {
                /* One that was never ready: nobody got its mdevs. */
                if (rec->state == LEASE_STATE_PREPARING)
                        lease_mdevs_remove_all(l);
                (void)lease_manager_release(m, l, why);
                return 0;
        }
        l->pidfd = TAKE_FD(pidfd);
        r = watch_owner(m, l);
        if (r < 0) {
                (void)lease_manager_release(m, l, "its owner cannot be watched");
                return r;
        }
        (void)rebuild_holders(m);
        log_lease(
                MESSAGE_ID_LEASE_STARTED, rec->pid,
                "Lease %" PRIu64 " of pid %d (%s) adopted: %zu functions", rec->id, (int)rec->pid,
                strna(l->comm), rec->n_devices);
        if (m->hooks.lease_added)
                m->hooks.lease_added(m->userdata, l);
        return 1;
}

int lease_manager_load(LeaseManager *m) {
        _cleanup_closedir_ DIR *dir = NULL;
        struct dirent *de;
        int n = 0, r;

        dir = opendir(m->dir);
        if (!dir) {
                if (errno == ENOENT)
                        return 0;
                return log_error_errno(-errno, "Failed to read the lease records in %s: %m", m->dir);
        }
        while ((de = readdir(dir))) {
                _cleanup_(lease_record_freep) LeaseRecord *rec = NULL;
                _cleanup_free_ char *path = NULL, *text = NULL, *error = NULL, *expected = NULL;
                size_t len = strlen(de->d_name);

                if (de->d_name[0] == '.' || len < 6 || !streq(de->d_name + len - 5, ".json"))
                        continue;
                if (asprintf(&path, "%s/%s", m->dir, de->d_name) < 0)
                        return -ENOMEM;
                r = file_read_bounded(path, LEASE_RECORD_FILE_MAX, FILE_READ_NOFOLLOW, &text, NULL);
                if (r >= 0)
                        r = lease_record_from_json(text, &rec, &error);
                if (r >= 0 &&
                    (lease_record_file_name(rec->id, &expected) < 0 || !streq(expected, de->d_name))) {
                        r = -EBADMSG;
                        error = strdup("the file name does not match its id");
                }
                if (r >= 0 && find_by_id(m, rec->id)) {
                        r = -EBADMSG;
                        error = strdup("its id is in use");
                }
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        log_error_errno(
                                r,
                                "Lease record %s cannot be read (%s): %m; its declarations stay in "
                                "force, ignoring",
                                ESCAPE_QUOTE(path), strna(error));
                        continue;
                }
                r = lease_adopt(m, TAKE_PTR(rec));
                if (r == -ENOMEM)
                        return r;
                if (r > 0)
                        n++;
        }
        return n;
}

/* ---- lifecycle -------------------------------------------------------------------------------------- */

int lease_manager_new(
        sd_event *event, Model *model, Reconciler *reconciler, const char *runtime_dir,
        const char *proc_root, const LeaseManagerHooks *hooks, void *userdata, LeaseManager **ret) {
        LeaseManager *m;

        m = calloc(1, sizeof(LeaseManager));
        if (!m)
                return -ENOMEM;
        m->event = event;
        m->model = model;
        m->reconciler = reconciler;
        m->next_id = 1;
        m->userdata = userdata;
        if (hooks)
                m->hooks = *hooks;
        m->runtime_dir = strdup(runtime_dir ?: HOSTDEVD_RUNTIME_DIR);
        if (!m->runtime_dir || asprintf(&m->dir, "%s/%s", m->runtime_dir, LEASES_SUBDIR) < 0) {
                free(m->runtime_dir);
                free(m);
                return -ENOMEM;
        }
        if (proc_root && !(m->proc_root = strdup(proc_root))) {
                free(m->runtime_dir);
                free(m->dir);
                free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

LeaseManager *lease_manager_free(LeaseManager *m) {
        if (!m)
                return NULL;
        while (m->leases) {
                Lease *l = m->leases;

                lease_unlink(m, l);
                lease_free(l);
        }
        for (size_t i = 0; i < m->n_holders; i++)
                free(m->holders[i].node);
        free(m->holders);
        free(m->runtime_dir);
        free(m->dir);
        free(m->proc_root);
        free(m);
        return NULL;
}
