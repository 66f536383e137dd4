#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A kernel module index for the tests of agent/module-index.h and the module policy (issue 17):
# fake modules that are nothing but a .modinfo section (the strings modinfo(8) reads: alias=, name=,
# vermagic=), indexed by depmod(8) into OUT/lib/modules/VERSION (modules.dep.bin, modules.alias.bin,
# ...), the directory given to hostdevd as $HOSTDEVD_MODULES_DIR. depmod runs with -b OUT only: this
# machine's /lib/modules is never read or written.
#
# Usage: make-module-index.sh OUT DEPMOD CC [CC-ARGS...]
set -eu

out=$1
depmod=$2
shift 2
cc="$*"
version=0.0.0-hostdevd-fixture
dir="$out/lib/modules/$version"

rm -rf "$out"
mkdir -p "$dir/kernel" "$out/src"

# module NAME ALIAS...: a .ko whose .modinfo declares NAME and each ALIAS.
module() {
        name=$1
        shift
        {
                printf 'static const char modinfo[] __attribute__((section(".modinfo"), used, aligned(1))) =\n'
                for a in "$@"; do
                        printf '        "alias=%s\\0"\n' "$a"
                done
                printf '        "name=%s\\0vermagic=%s SMP mod_unload \\0license=GPL";\n' "$name" "$version"
        } >"$out/src/$name.c"
        $cc -c "$out/src/$name.c" -o "$dir/kernel/$name.ko"
}

# The PCI driver of 8086:10d3 (the Intel 82574L of the tests), by vendor and device.
module fakenic 'pci:v00008086d000010D3sv*sd*bc*sc*i*'
# A VFIO variant driver for the same function (PCI_DRIVER_OVERRIDE_DEVICE_VFIO: "vfio_pci:" aliases).
module fake_vfio_nic 'vfio_pci:v00008086d000010D3sv*sd*bc*sc*i*'
# vfio-pci itself, with the one alias the real module has.
module vfio_pci 'vfio_pci:v*d*sv*sd*bc*sc*i*'
# A driver of every Ethernet controller (base class 02, subclass 00), by class alone.
module fakeclass 'pci:v*d*sv*sd*bc02sc00i*'
# A display driver of another vendor: no alias matching the NIC.
module fakegpu 'pci:v000010DEd*sv*sd*bc03sc*i*'
# Not a PCI driver at all.
module notpci 'fs-notpci' 'char-major-250-*'

"$depmod" -b "$out" "$version" 2>/dev/null
test -s "$dir/modules.alias.bin"
