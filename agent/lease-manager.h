/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The leases in force (hostdevd(8), LEASES), on the loop thread: their records, their owners' pidfds and
 * what making a function ready or giving it back asks of the reconciler. No sd-bus here: bus-lease.c
 * publishes the Lease objects and answers the calls.
 *
 * A lease's life:
 *   lease_manager_acquire(): validated (lease_check(): not leased, IOMMU group complete, not
 *   host-critical), recorded PREPARING in RUNTIME_DIR/leases/<id>.json (file_write_atomic()), one
 *   REQUEST_LEASE declaration (Driver=vfio-pci) per function written, converged through the same
 *   planner and executor as every request. All functions converged: ACTIVE, recorded again, and its
 *   owner's pidfd becomes an sd-event io source. Otherwise its declarations and record go again (the
 *   reconciler gives back what it bound) and the caller hears why.
 *   The owner exits (the pidfd polls readable, Documentation: pidfd_open(2)) or Release(): the lease
 *   ends in that loop iteration: RELEASING recorded, each function's policy applied to the
 *   declarations (host: the lease's goes; keep: a transient REQUEST_DEVICE Driver=vfio-pci replaces
 *   it), the record removed, the reconciler reloads and converges. No timer, no polling.
 * "vfio-owner": before ACTIVE, each group node of the lease (PciDevice.vfio_group) is recorded with
 * its owner and group (the record is written first, so a crash cannot lose them) and then chowned to
 * the lease's uid (the group is kept); when the lease ends, before its policies, each node still
 * owned by that uid gets its recorded owner back (one changed meanwhile by someone else is left
 * alone). Nodes are opened O_PATH|O_NOFOLLOW and changed with fchownat(AT_EMPTY_PATH), so what is
 * changed is the node that was opened.
 * vGPU/mdev requests: placed before any change (lease_mdev_check()), each gets a new UUID and a
 * transient REQUEST_MDEV declaration (Parent= the placement, Type=, UUID=; the file CreateMdev writes),
 * is recorded with the lease and created by the same convergence; the lease is ready once each mdev
 * exists and converged (a few more rounds, as CreateMdev, while the model catches up with the uevents).
 * Its end removes the declaration ("remove": the reconciler destroys the instance, which hostdevd owns)
 * or leaves it ("keep": a transient instance as CreateMdev makes). While ACTIVE the mdev's group node is
 * a holder too, so no plan removes it; RemoveMdev refuses it (bus-manager.c).
 * While ACTIVE, each function is a holder for the planner (lease_manager_holders()): never unbound,
 * reset, or its PF's sriov_numvfs changed, whatever else the desired state says.
 *
 * Restart (lease_manager_load(), before the first plan): each record is read back; its owner's pidfd
 * is opened and the process's start time (/proc/PID/stat field 22) compared with the record: the same
 * process and ACTIVE -> watched again, nothing written; gone, pid reused, or the record was PREPARING
 * or RELEASING when hostdevd stopped -> ended with its policies. A record that does not parse is
 * logged and left in place (its declarations stay in force: nothing is released on a guess).
 *
 * Bounds: LEASES_MAX leases, LEASE_DEVICES_MAX functions each (lease.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "holders.h"
#include "lease.h"
#include "model.h"

typedef struct Reconciler Reconciler;
typedef struct LeaseManager LeaseManager;

typedef struct Lease {
        LeaseManager *manager;
        LeaseRecord *record;
        char *path; /* /org/hostdevd1/leases/lease_<id> */
        char *comm; /* the owner's /proc/PID/comm (lease_manager_command()), "?" if unknown */
        int pidfd;
        sd_event_source *owner_source; /* EPOLLIN on pidfd: the owner exited */
        struct Lease *prev, *next;
} Lease;

/* What the publisher (bus-lease.c, through the emitter) learns; each may be NULL. Loop thread. */
typedef struct LeaseManagerHooks {
        void (*lease_added)(void *userdata, const Lease *l); /* a new object (PREPARING or reloaded) */
        void (*lease_changed)(void *userdata, const Lease *l); /* its State changed */
        void (*lease_removed)(void *userdata, const Lease *l); /* about to be freed (still findable) */
} LeaseManagerHooks;

/* |runtime_dir| NULL: HOSTDEVD_RUNTIME_DIR; |proc_root| NULL: /proc. Borrowed: |event|, |model|,
 * |reconciler|. Returns 0 or -ENOMEM. */
int lease_manager_new(
        sd_event *event, Model *model, Reconciler *reconciler, const char *runtime_dir,
        const char *proc_root, const LeaseManagerHooks *hooks, void *userdata, LeaseManager **ret);
/* Frees the leases without ending them: hostdevd stops, the VMMs go on (safety rule 6 in hostdevd(8)). */
LeaseManager *lease_manager_free(LeaseManager *m);
static inline void lease_manager_freep(LeaseManager **m) {
        if (*m)
                lease_manager_free(*m);
}

/* Reload the records (see above). Returns the number of leases adopted, or -errno when the directory
 * cannot be read. */
int lease_manager_load(LeaseManager *m);

/* Lookups; NULL if none. */
Lease *lease_manager_find_by_path(LeaseManager *m, const char *path);
Lease *lease_manager_find_by_address(LeaseManager *m, const char *address);
/*
 * The first lease (oldest) whose owner is |pid|, or NULL: for the holder tracking, to tell a lease
 * owner from an unleased holder. A lease ended by its owner's exit is gone from the list in the same
 * loop iteration, so a pid reused later is not mistaken for the owner.
 */
Lease *lease_manager_find_by_pid(LeaseManager *m, pid_t pid);
/* Oldest first. */
Lease *lease_manager_first(LeaseManager *m);
size_t lease_manager_count(LeaseManager *m);

/* The owner's command now: /proc/PID/comm read again (the owner may have exec'd since, as
 * `hostdevctl run` does), the last one read when it cannot be. The pid is the owner's for as long as
 * the lease exists (its exit ends the lease in the same loop iteration). Borrowed. */
const char *lease_manager_command(LeaseManager *m, Lease *l);

/* The functions of the ACTIVE leases as holders (pid = owner, comm, node = the group node), for the
 * planner. Borrowed until the next change of the leases. */
void lease_manager_holders(LeaseManager *m, const Holder **ret, size_t *ret_n);
/* The lease that holds mdev |uuid|, or NULL. */
Lease *lease_manager_find_by_mdev(LeaseManager *m, const char *uuid);
/* Every function in a lease (any state), for lease_check(). New array of borrowed strings; -ENOMEM. */
int lease_manager_leased_functions(LeaseManager *m, LeasedFunction **ret, size_t *ret_n);

/* What Acquire asks for. */
typedef struct LeaseAsk {
        char **addresses; /* canonical, unique; may be empty when |mdev_types| is not */
        LeasePolicy default_policy;
        /* vGPU/mdev requests ("mdevs"): parallel strvs, a type id or name and a parent or "" (any);
         * each placed (lease_mdev_check()) and created under a new UUID with |mdev_policy|. */
        char **mdev_types;
        char **mdev_parents;
        LeasePolicy mdev_policy; /* REMOVE (default) or KEEP */
        char **policy_addresses; /* strv: per-function policies, parallel to ->policies */
        LeasePolicy *policies;
        bool whole_group;
        bool dry_run;
        bool vfio_owner; /* "vfio-owner": the group nodes belong to |uid| while the lease is active */
        int pidfd; /* the owner's pidfd, owned by the ask */
        pid_t pid;
        uint64_t start_time;
        uid_t uid;
} LeaseAsk;
void lease_ask_done(LeaseAsk *a);

/* Called once the lease is ready (error 0, |l| ACTIVE), or failed (|l| NULL; error < 0 and |reason|
 * a sentence or NULL; -EBUSY: leased; -EPERM: refused; -ENOENT: no such function; -EBADMSG: the
 * desired-state files do not parse; -ECANCELED: hostdevd stops; -EIO: a function did not converge,
 * |reason| names it and its state). */
typedef void (*LeaseDoneFunc)(int error, Lease *l, const char *reason, void *userdata);

/*
 * Validate |ask| and, unless dry-run, begin the lease; takes ask->pidfd. Synchronous answers:
 *   < 0   invalid (-EBUSY, -EPERM, -ENOENT, -E2BIG too many leases, -ESRCH owner gone), *ret_reason set
 *         (new string) when there is one; nothing changed;
 *   0     dry-run: valid; *ret_members (new strv) the functions the lease would hold;
 *   1     begun: |done| runs later (never before this returns), *ret_members as above.
 */
int lease_manager_acquire(
        LeaseManager *m, LeaseAsk *ask, LeaseDoneFunc done, void *userdata, char ***ret_members,
        char **ret_reason);

/* End |l| now with its policies (Release(), or its owner exited). |why| for the journal. Returns 0 or
 * -errno from writing the declarations (the lease is gone either way). */
int lease_manager_release(LeaseManager *m, Lease *l, const char *why);

/* Parse a pidfd's owner pid from /proc/self/fdinfo/<fd> ("Pid:", kernel/fork.c pidfd_show_fdinfo()).
 * Returns 0; -EBADF (not a pidfd); -ESRCH (the process is gone: Pid: -1, or 0 when in another pid
 * namespace). */
int pidfd_get_pid(int fd, pid_t *ret);
/* Whether the process of |pidfd| exited (it polls readable). */
bool pidfd_exited(int pidfd);
