/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Loading the kernel module of a PCI driver that is not registered yet (issue 3: "loading a missing
 * driver module (vfio-pci) is part of the step"), with libkmod as modprobe(8) does.
 *
 * Blocking (it reads modules.dep and calls finit_module(2), which runs the module's init): call it
 * off the event loop, on the executor's runner thread (ExecutorOptions.load_driver).
 *
 * Never called in tests: the daemon disables module loading when $UMOCKDEV_DIR is set (every unit
 * and integration test runs under umockdev) or with --no-load-modules; the executor's unit tests
 * inject their own loader.
 */

/*
 * The module name for PCI driver |driver|: the driver name with '-' as '_' ("vfio-pci" ->
 * "vfio_pci"), as kmod and the kernel's module loader treat them as the same character
 * (kmod's alias_normalize(), the kernel's strreplace(name, '-', '_') in load_module()).
 * Returns a new string, or NULL on allocation failure.
 */
char *module_loader_module_name(const char *driver);

/*
 * Load the module providing PCI driver |driver| with its dependencies and soft dependencies
 * (vfio_pci pulls vfio, vfio_pci_core, and its softdep vfio_iommu_type1), honouring the
 * modprobe.d(5) blacklist (KMOD_PROBE_APPLY_BLACKLIST). The module is looked up by name (or
 * alias) in /lib/modules/$(uname -r)/modules.dep.bin and friends (kmod_new() defaults).
 *
 * Returns 0 when the module is now loaded (or built in, or already loaded: the driver may still
 * take a moment to appear in /sys/bus/pci/drivers; the caller waits for it); -ENOENT when no such
 * module exists; -EPERM when the blacklist forbids it; or the error of kmod_new() or
 * init_module(2)/finit_module(2) (-EEXIST is success). *ret_module (may be NULL) is set to the
 * module's name even on failure (module_loader_module_name() when no module was found), or NULL
 * on allocation failure. |userdata| is unused (the signature of ExecutorLoadDriverFunc).
 */
int module_loader_load_driver(const char *driver, char **ret_module, void *userdata);
