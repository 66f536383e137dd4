/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The early-bind thread: the executor's one writer that does not wait for the loop. It exists for one
 * race (hostdevd(8), HOT-ADDED FUNCTIONS): Linux sends a hot-added PCI function's "add" uevent from
 * device_add() and probes it afterwards from pci_bus_add_device() with device_attach()
 * (drivers/pci/bus.c), which ignores /sys/bus/pci/drivers_autoprobe; a driver_override written in
 * between decides the driver of that first probe. On the loop, the write waited behind whatever the
 * loop was doing, a libudev monitor, the intake and an executor lane; here it is the next thing done.
 *
 * The thread owns a NETLINK_KOBJECT_UEVENT socket bound to the kernel's group (1;
 * lib/kobject_uevent.c), filtered in the kernel to "add"s of devices (uevent-filter.h), and reads
 * only PCI "add"s sent by the kernel (sender port 0). For each it reads what kernfs tells without
 * taking the device lock that the probe holds (the driver, physfn and iommu_group links, the group's
 * device list), asks the published snapshot (early-bind.h: early_bind_snapshot_decide(); no model,
 * no lock) and, when the snapshot names a driver:
 *   1. appends "ADDRESS DRIVER\n" to the intent file (HOSTDEVD_RUNTIME_DIR/early-bind.intents; a
 *      write(2) to tmpfs, no fsync: a host crash resets sysfs too, a crash of hostdevd keeps it),
 *   2. writes the driver to the function's driver_override (sysfs_write_attribute()),
 *   3. queues an EarlyWrite for the loop (a fixed ring, an eventfd) and goes back to the socket.
 * A declined "add" is queued too, so that the loop's own decision (early_bind_plan()) runs as before
 * the thread existed. With the ring full, nothing is written for that "add" (the loop's full plan
 * handles the function once udev reported it).
 *
 * On the loop, EarlyWriteFunc records the function as owned (the ownership journal) and submits its
 * transaction, then calls early_writer_resolved(); once every intent is resolved the thread empties
 * the file. At start, before the thread runs, early_intents_read() gives the intents a crash left
 * behind: a function whose driver_override still reads the recorded driver and that has no ownership
 * record is adopted (recorded as hostdevd's, original driver none), so that it is given back like any
 * other when no rule claims it any more.
 *
 * Scheduling: SCHED_FIFO at EARLY_WRITER_RT_PRIORITY when the process may (CAP_SYS_NICE, not
 * RestrictRealtime=), so the "add" wakes it ahead of the normal-class thread that runs the kernel's
 * hot-add (a workqueue for ACPI and pciehp hotplug) at the next preemption point, which comes before
 * device_attach()'s probe (device_lock() may sleep); else SCHED_OTHER, with the reason logged. Work per
 * event is bounded: no allocation but libc's, one sysfs write, one tmpfs append, no fsync, no lock
 * shared with the loop but the ring's (priority-inheriting) mutex.
 *
 * Threading: early_writer_*() on the loop's thread; the thread touches only its socket, the snapshot
 * it took and the ring.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "early-bind.h"

/* Low: above every normal-class thread, below the kernel's interrupt threads (50) and the RT tasks an
 * administrator configured. */
#define EARLY_WRITER_RT_PRIORITY 1
#define EARLY_WRITER_RING 256u /* "add"s queued for the loop */
#define EARLY_WRITER_INTENTS "early-bind.intents"

typedef struct EarlyWriter EarlyWriter;

/* One PCI "add" the thread handled, for the loop. */
typedef struct EarlyWrite {
        bool written; /* it wrote driver_override (error 0), or tried (error < 0) */
        int error; /* negative errno of the write */
        char message[256]; /* the write's failure, from sysfs_write() */
        EarlyBindDecision decision; /* written: the driver and its rule */
        const char *why; /* declined: a static sentence */
        /* The uevent's fields ("" when absent), for early_bind_plan() of a declined one. */
        char syspath[256], sysname[PCI_ADDRESS_STRING_MAX], pci_id[16], pci_subsys_id[16], pci_class[16];
        uint64_t received_usec, written_usec; /* CLOCK_MONOTONIC */
} EarlyWrite;

/* Called on the loop for each EarlyWrite, in order. For a written one it must call
 * early_writer_resolved() once the write is recorded (or given up). */
typedef void (*EarlyWriteFunc)(const EarlyWrite *w, void *userdata);

typedef struct EarlyWriterOptions {
        const char *runtime_dir; /* NULL: HOSTDEVD_RUNTIME_DIR (the intent file) */
        bool no_realtime; /* never ask for SCHED_FIFO */
} EarlyWriterOptions;

/*
 * Open the socket and the intent file (emptied: read it with early_intents_read() first), attach the
 * ring's eventfd to |event| at |priority|, and start the thread. It declines every "add" until the
 * first early_writer_publish(). Returns 0, or -errno (no socket: the caller keeps the loop's path).
 */
int early_writer_new(
        sd_event *event, int64_t priority, const EarlyWriterOptions *options, EarlyWriteFunc func,
        void *userdata, EarlyWriter **ret);
/* Stop and join the thread; queued EarlyWrites are dropped (their intents stay for the next start). */
EarlyWriter *early_writer_free(EarlyWriter *w);
static inline void early_writer_freep(EarlyWriter **w) {
        if (*w)
                early_writer_free(*w);
}

/* Hand |snapshot| (owned from now) to the thread for the next "add"; the one it replaces is freed. */
void early_writer_publish(EarlyWriter *w, EarlyBindSnapshot *snapshot);
/* One written EarlyWrite is recorded (or given up): its intent may go. */
void early_writer_resolved(EarlyWriter *w);
/* "sched-fifo" or "sched-other": the thread's scheduling class (Manager.EarlyBindThread). */
const char *early_writer_scheduling(EarlyWriter *w);

/* Each "ADDRESS DRIVER" line of |runtime_dir|'s intent file (NULL: HOSTDEVD_RUNTIME_DIR), in order.
 * Returns the number of lines given to |func|, 0 when there is no file, or -errno. */
int early_intents_read(
        const char *runtime_dir, void (*func)(const char *address, const char *driver, void *userdata),
        void *userdata);
