/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "names.h"
#include "vfio-node.h"

/* Decimal without sign or leading zeros, up to UINT32_MAX; the whole string. */
static int parse_number(const char *s, uint32_t *ret) {
        uint64_t v = 0;

        if (!*s || (s[0] == '0' && s[1]))
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t)(*s - '0');
                if (v > UINT32_MAX)
                        return -EINVAL;
        }
        *ret = (uint32_t)v;
        return 0;
}

static const char *startswith(const char *s, const char *prefix) {
        size_t n = strlen(prefix);
        return strneq(s, prefix, n) ? s + n : NULL;
}

static int parse_path(const char *spec, VfioNode *ret) {
        VfioNode n = {};
        const char *rest;

        if ((rest = startswith(spec, DEV_VFIO_DEVICES_DIR "/vfio")))
                n.kind = VFIO_NODE_DEVICE;
        else if ((rest = startswith(spec, DEV_VFIO_DIR "/noiommu-")))
                n.kind = VFIO_NODE_NOIOMMU_GROUP;
        else if ((rest = startswith(spec, DEV_VFIO_DIR "/")))
                n.kind = VFIO_NODE_GROUP;
        else
                return -EINVAL;
        if (parse_number(rest, &n.number) < 0)
                return -EINVAL;
        snprintf(n.path, sizeof n.path, "%s", spec);
        *ret = n;
        return 0;
}

static int parse_devnum(const char *spec, VfioNode *ret) {
        char link[PATH_MAX], target[PATH_MAX], node[PATH_MAX];
        uint32_t major, minor;
        const char *colon = strchr(spec, ':');
        _cleanup_free_ char *maj = NULL;
        ssize_t k;

        if (!colon)
                return -EINVAL;
        maj = strndup(spec, (size_t)(colon - spec));
        if (!maj)
                return -ENOMEM;
        if (parse_number(maj, &major) < 0 || parse_number(colon + 1, &minor) < 0)
                return -EINVAL;

        snprintf(link, sizeof link, SYSFS_DEV_CHAR "/%" PRIu32 ":%" PRIu32, major, minor);
        k = readlink(link, target, sizeof target - 1);
        if (k < 0)
                return errno == ENOENT ? -ENOENT : -errno;
        target[k] = '\0';

        /* ".../vfio/<name>" or ".../vfio-dev/<name>": the class directory and the node's name. */
        char *name = strrchr(target, '/');
        if (!name)
                return -ENODEV;
        *name++ = '\0';
        const char *class = strrchr(target, '/');
        class = class ? class + 1 : target;
        if (streq(class, "vfio"))
                snprintf(node, sizeof node, DEV_VFIO_DIR "/%s", name);
        else if (streq(class, "vfio-dev"))
                snprintf(node, sizeof node, DEV_VFIO_DEVICES_DIR "/%s", name);
        else
                return -ENODEV;
        return parse_path(node, ret) < 0 ? -ENODEV : 0;
}

int vfio_node_parse(const char *spec, VfioNode *ret) {
        assert(spec);
        assert(ret);

        if (spec[0] == '/')
                return parse_path(spec, ret);
        return parse_devnum(spec, ret);
}

bool vfio_node_has_device(const VfioNode *n, const PciDevice *d) {
        if (n->kind == VFIO_NODE_DEVICE)
                return d->vfio_device && streq(d->vfio_device, n->path);
        return d->iommu_group >= 0 && (uint32_t)d->iommu_group == n->number;
}

bool vfio_node_has_mdev(const VfioNode *n, const Mdev *m) {
        if (n->kind == VFIO_NODE_DEVICE)
                return m->vfio_device && streq(n->path, m->vfio_device);
        return m->iommu_group >= 0 && (uint32_t)m->iommu_group == n->number;
}
