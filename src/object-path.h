/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/*
 * D-Bus object path elements for devices and mdevs. The encoding is
 * readable and reversible:
 *     0000:41:00.0                           -> pci_0000_41_00_0
 *     83b8f4f2-509f-382f-3c1e-e6bfe0fa1001   -> mdev_83b8f4f2_509f_382f_3c1e_e6bfe0fa1001
 * Full paths: HOSTDEVD_DEVICES_PATH "/" element, HOSTDEVD_MDEVS_PATH "/" element.
 * Clients should look objects up by identity (Manager.GetDeviceByAddress)
 * rather than build paths themselves.
 */

/* Returns a newly allocated path element, or NULL on OOM or invalid input (not a canonical address / UUID).
 */
char *object_path_element_from_pci_address(const char *address);
char *object_path_element_from_mdev_uuid(const char *uuid);

/*
 * Reverse: element (no slashes) -> newly allocated canonical address / UUID.
 * Returns 0, -EINVAL if the element is not of that kind, -ENOMEM.
 */
int object_path_element_to_pci_address(const char *element, char **ret);
int object_path_element_to_mdev_uuid(const char *element, char **ret);

/* Full object paths, newly allocated (NULL on OOM or invalid input). */
char *object_path_from_pci_address(const char *address);

/*
 * The full path of a device, as object_path_from_pci_address(), written into |buf| of |size| bytes
 * for an |address| already known canonical (a model's key): not checked again, nothing allocated.
 * For the walk that answers GetManagedObjects, once per function. Returns |buf|, or NULL when the
 * path does not fit.
 */
char *object_path_format_pci_address(const char *address, char *buf, size_t size);
char *object_path_from_mdev_uuid(const char *uuid);
