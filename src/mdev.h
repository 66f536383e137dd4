/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Mediated devices and their parents, per
 * Documentation/driver-api/vfio-mediated-device.rst and
 * Documentation/ABI/testing/sysfs-bus-vfio-mdev:
 *   /sys/class/mdev_bus/<parent>            -> link to the parent device (PCI or not:
 *                                              the mtty sample's parent is /sys/devices/virtual/mtty/mtty)
 *   <parent>/mdev_supported_types/<type>/{name,description,device_api,available_instances,create,devices/}
 *   /sys/bus/mdev/devices/<uuid>            -> link to the mdev, a child of its parent
 *   <mdev>/mdev_type                        -> link to the type directory
 *   <mdev>/iommu_group                      -> link, once a vfio_mdev driver is bound
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci-device.h" /* MdevType */

#define MDEV_UUID_STRING_MAX 37

typedef struct Mdev {
        char uuid[MDEV_UUID_STRING_MAX]; /* lowercase canonical, the key */
        char *syspath;
        char *type_id; /* basename of the mdev_type link's target; NULL if unreadable */
        char *parent; /* parent device name: a PCI address, or another sysfs name ("mtty") */
        bool parent_is_pci; /* parent is a PCI function (then ->parent is its canonical address) */
        int32_t iommu_group; /* -1: none */
        char *vfio_device; /* "/dev/vfio/devices/vfioN" when <mdev>/vfio-dev/vfioN exists (VFIO cdev,
                            * sysfs_read_vfio_cdev()); NULL: none */
        char *driver; /* bound driver (e.g. "vfio_mdev"), NULL: none */
        char **errors; /* strv of parse errors, NULL if none */
} Mdev;

/* Read /sys/bus/mdev/devices/<uuid>. Returns 0, -ENOENT, -EINVAL (not a UUID), -ENOMEM. */
int mdev_read(const char *uuid, Mdev **ret);
Mdev *mdev_free(Mdev *m);
static inline void mdev_freep(Mdev **m) {
        if (*m)
                mdev_free(*m);
}

typedef enum MdevField {
        MDEV_FIELD_TYPE = 1u << 0,
        MDEV_FIELD_PARENT = 1u << 1,
        MDEV_FIELD_IOMMU_GROUP = 1u << 2,
        MDEV_FIELD_DRIVER = 1u << 3,
        MDEV_FIELD_ERRORS = 1u << 4,
        MDEV_FIELD_SYSPATH = 1u << 5,
        MDEV_FIELD_VFIO_DEVICE = 1u << 6,
} MdevField;
unsigned mdev_diff(const Mdev *a, const Mdev *b);

/*
 * An mdev parent: any device listed in /sys/class/mdev_bus. PCI parents also
 * carry their types in PciDevice.mdev_types; this list covers all parents.
 */
typedef struct MdevParent {
        char *name; /* basename under /sys/class/mdev_bus (a PCI address for PCI parents) */
        char *syspath; /* resolved device path */
        bool is_pci;
        MdevType *types;
        size_t n_types;
        char **errors;
} MdevParent;

/* Read the types below <dir>/mdev_supported_types into a new array (sorted by id). */
int mdev_types_read(const char *dir, MdevType **ret, size_t *ret_n, char ***errors);
void mdev_types_free(MdevType *types, size_t n);
bool mdev_types_equal(const MdevType *a, size_t n_a, const MdevType *b, size_t n_b);

/* Read /sys/class/mdev_bus/<name>. Returns 0, -ENOENT, -ENOMEM. */
int mdev_parent_read(const char *name, MdevParent **ret);
MdevParent *mdev_parent_free(MdevParent *p);
static inline void mdev_parent_freep(MdevParent **p) {
        if (*p)
                mdev_parent_free(*p);
}
/* Canonical lowercase UUID check via libuuid. */
bool mdev_uuid_is_valid(const char *s);

/* ---- the parent and type model (issue 14) ---------------------------------------------------- */

/* What a device offers for mediated or vendor vGPUs. */
typedef enum MdevParentKind {
        MDEV_PARENT_KIND_NONE, /* neither */
        MDEV_PARENT_KIND_MDEV, /* listed in /sys/class/mdev_bus: types under mdev_supported_types */
        MDEV_PARENT_KIND_VGPU_VF, /* an SR-IOV VF with NVIDIA's nvidia/creatable_vgpu_types (no mdev) */
        _MDEV_PARENT_KIND_MAX,
        _MDEV_PARENT_KIND_INVALID = -EINVAL,
} MdevParentKind;
const char *mdev_parent_kind_to_string(MdevParentKind k); /* "none", "mdev", "vgpu-vf" */
MdevParentKind mdev_parent_kind_from_string(const char *s);
/* The kind (pure): MDEV when the device is listed in /sys/class/mdev_bus (|in_mdev_bus|: a
 * model_get_mdev_parent() hit), VGPU_VF when vgpu_vf_read() found its nvidia/ directory, else NONE. */
MdevParentKind mdev_parent_kind_of(bool in_mdev_bus, bool is_vgpu_vf);

/* A GPU's mode as a VMM's device manager sees it: carved into vGPUs, handed whole to a VM, or neither. */
typedef enum GpuMode {
        GPU_MODE_NONE,
        GPU_MODE_VGPU, /* an mdev parent, a vGPU VF, or a PF whose VFs are */
        GPU_MODE_PASSTHROUGH, /* bound to a VFIO driver */
        _GPU_MODE_MAX,
        _GPU_MODE_INVALID = -EINVAL,
} GpuMode;
const char *gpu_mode_to_string(GpuMode m); /* "none", "vgpu", "passthrough" */
GpuMode gpu_mode_from_string(const char *s);

/*
 * The mode of PCI function |d| (pure): vgpu when it is an mdev parent (PciDevice.mdev_types), when
 * |is_vgpu_vf|, or when it is a PF and |has_vgpu_vfs| (the caller knows its VFs); passthrough when
 * bound to a VFIO driver; none otherwise. Only display controllers (PCI base class 0x03) count as
 * GPUs for vgpu/passthrough; any other function is none unless it is an mdev parent.
 */
GpuMode gpu_mode_of(const PciDevice *d, bool is_vgpu_vf, bool has_vgpu_vfs);

/* Why a type offers no instance (available_instances 0), as far as it can be known. */
typedef enum MdevUnavailable {
        MDEV_UNAVAILABLE_NONE, /* available_instances > 0 */
        MDEV_UNAVAILABLE_EXHAUSTED, /* the parent's instances of this type use it up */
        MDEV_UNAVAILABLE_OTHER_TYPE, /* one type per physical GPU, and another type is active */
        MDEV_UNAVAILABLE_VF_BUSY, /* vendor vGPU: the VF already carries a vGPU */
        MDEV_UNAVAILABLE_UNKNOWN, /* 0 with nothing active: the driver does not say why */
        _MDEV_UNAVAILABLE_MAX,
        _MDEV_UNAVAILABLE_INVALID = -EINVAL,
} MdevUnavailable;
/* "", "parent exhausted", "one type per physical GPU and another is active", "VF already carries a vGPU",
 * "unknown" */
const char *mdev_unavailable_to_string(MdevUnavailable u);

/*
 * Why |type_id| of |parent| has no instance left (pure). |mdevs|: every active mdev (any parent);
 * those of |parent| decide: none active -> UNKNOWN, only |type_id| -> EXHAUSTED, another type ->
 * OTHER_TYPE with that type's id in *ret_active_type (borrowed from the Mdev; may be NULL).
 * NONE when the type is not exhausted or not found.
 */
MdevUnavailable mdev_type_unavailable(
        const MdevParent *parent, const char *type_id, const Mdev *const *mdevs, size_t n_mdevs,
        const char **ret_active_type);

/*
 * The frame buffer of a vGPU type in MiB, 0 when unknown (pure). NVIDIA's mdev types say it in their
 * description ("num_heads=4, frl_config=60, framebuffer=1024M, ..."; NVIDIA Virtual GPU Software User
 * Guide, "Getting the Properties of the vGPU Types"); otherwise the profile name's size digit does
 * ("GRID T4-1Q", "NVIDIA A40-2Q": GiB before the series letter; the "-0B"/"-0Q" profiles are 512 MiB).
 */
uint64_t mdev_type_framebuffer_mib(const char *name, const char *description);

/* True when |parent|'s driver allows one vGPU type per physical GPU at a time (pure): NVIDIA's
 * time-sliced vGPU (PCI vendor 0x10de), per NVIDIA's vGPU documentation ("Homogeneous vGPUs"); |d| is
 * the parent's PCI function, NULL for a non-PCI parent (then false). */
bool mdev_parent_one_type_per_gpu(const PciDevice *d);

/* ---- vendor vGPU on SR-IOV VFs (NVIDIA, no mdev) --------------------------------------------- */

/*
 * NVIDIA Virtual GPU Software User Guide, "Creating an NVIDIA vGPU on a Linux with KVM Hypervisor"
 * (vGPU releases whose drivers put the vGPU on an SR-IOV VF without mdev):
 *   <VF>/nvidia/creatable_vgpu_types    "ID : NAME" per line (a header line "ID : vGPU Name" may
 *                                       come first), the types this VF can take now; empty once the
 *                                       VF (or, time-sliced, its GPU with another type) carries one
 *   <VF>/nvidia/current_vgpu_type       the VF's type ID; 0: none. Write an ID to set, 0 to clear.
 */
typedef struct VgpuType {
        uint32_t id;
        char *name; /* "NVIDIA A40-2Q" */
} VgpuType;

typedef struct VgpuVf {
        char address[PCI_ADDRESS_STRING_MAX]; /* the VF */
        char *physfn; /* its PF (the physical GPU); NULL if unknown */
        VgpuType *creatable; /* sorted by id */
        size_t n_creatable;
        uint32_t current_type; /* 0: none */
        int32_t iommu_group; /* -1: none */
        char **errors;
} VgpuVf;

/* Parse creatable_vgpu_types' text. Returns 0 and a new array (NULL, 0 when empty), -EINVAL naming
 * nothing (a malformed line; *ret_bad_line its 1-based number), -ENOMEM. */
int vgpu_types_parse(const char *text, VgpuType **ret, size_t *ret_n, unsigned *ret_bad_line);
void vgpu_types_free(VgpuType *t, size_t n);
/* The type of |vf| with id |id| or, when |id| is 0, named |name|; NULL when none. */
const VgpuType *vgpu_vf_find_type(const VgpuVf *vf, uint32_t id, const char *name);

/*
 * The vGPU type names learnt from creatable_vgpu_types, per physical GPU (the VFs' PF; "" when a VF
 * has none). creatable_vgpu_types lists a type only while a VF can take it: once the VFs carry it
 * (NVIDIA's L40S-24Q, two per GPU, on two VFs) no VF lists it, and current_vgpu_type says only the id.
 * So a [VGPU] Type= given by name is resolved with what the VFs of the same GPU listed before; the
 * reconciler keeps one table for the daemon's life and teaches it every VF it reads.
 * Not thread-safe: the loop thread alone uses it.
 */
typedef struct VgpuTypeNames VgpuTypeNames;
/* Learn every creatable type of |vfs| (|*names| created on first use). Returns the number of new
 * (GPU, id) pairs or changed names, -ENOMEM (the table then holds what it had). */
int vgpu_type_names_learn(VgpuTypeNames **names, const VgpuVf *const *vfs, size_t n);
/* The name of type |id| on the GPU |physfn| (NULL: ""), borrowed; NULL when never learnt. */
const char *vgpu_type_names_get(const VgpuTypeNames *names, const char *physfn, uint32_t id);
/* The id of the type named |name| on the GPU |physfn|; 0 when never learnt. */
uint32_t vgpu_type_names_find(const VgpuTypeNames *names, const char *physfn, const char *name);
VgpuTypeNames *vgpu_type_names_free(VgpuTypeNames *names);
/*
 * The table kept across restarts (after one, every VF may carry its type already and list none):
 * |dir|/HOSTDEVD_VGPU_TYPE_NAMES_FILE, {"version": 1, "gpus": {"<PF address, or "">": {"<decimal type
 * id>": "<name>", ...}, ...}} (json-file.h).
 * vgpu_type_names_load(): 0 and *ret (empty when there is no file), -EUCLEAN with *ret_error "PATH:
 * what is wrong, naming the value" for bad contents (then nothing is loaded), -errno of reading,
 * -ENOMEM. vgpu_type_names_save(): writes the whole table; 0, -ENOMEM, -errno of writing.
 */
int vgpu_type_names_load(const char *dir, VgpuTypeNames **ret, char **ret_error);
int vgpu_type_names_save(const VgpuTypeNames *names, const char *dir);
static inline void vgpu_type_names_freep(VgpuTypeNames **n) {
        if (*n)
                vgpu_type_names_free(*n);
}

/* Read SYSFS_PCI_DEVICES/<address>/nvidia. Returns 0, -ENOENT (no nvidia/ directory: not a vGPU VF),
 * -EINVAL (bad address), -ENOMEM; parse problems go into ->errors. */
int vgpu_vf_read(const char *address, VgpuVf **ret);
VgpuVf *vgpu_vf_free(VgpuVf *v);
static inline void vgpu_vf_freep(VgpuVf **v) {
        if (*v)
                vgpu_vf_free(*v);
}

/* Why |vf| cannot take a vGPU of |type_id| now (pure): VF_BUSY when it carries one; OTHER_TYPE when a
 * VF of the same PF among |peers| carries another type and |one_type_per_gpu|; NONE when creatable. */
MdevUnavailable vgpu_vf_unavailable(
        const VgpuVf *vf, uint32_t type_id, const VgpuVf *const *peers, size_t n_peers,
        bool one_type_per_gpu);
