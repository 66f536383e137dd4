#!/usr/bin/env bash
# Build the kernel's mtty sample (a virtual serial-port mdev parent) out of
# tree for the kernel that fetch-kernel.sh unpacked.
#
#   tests/kernel/build-mtty.sh [CACHE]
#
# Result: CACHE/<pkgver>/mtty/mtty.ko, vermagic asserted equal to the kernel's.
#
# Debian builds with CONFIG_SAMPLES off, so mtty.ko is not shipped; the source
# (samples/vfio-mdev/mtty.c, see Documentation/driver-api/vfio-mediated-device.rst)
# comes from linux-source-<series> of the same upload, and the unpacked
# linux-headers-<kver> are the build tree. Their top Makefile is a single
# `include /usr/src/linux-headers-<abi>-common/Makefile`: it is pointed at the
# unpacked copy so nothing under this machine's /usr/src is needed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

cache=$(kl_cache_dir "${1:-}")
kl_load_kernel_env "$cache"

out=$(dirname "$KROOT")/mtty
ko=$out/mtty.ko
want=$(modinfo -b "$KROOT" -k "$KVER" -F vermagic vfio)
[ -n "$want" ] || kl_die "cannot read vermagic of vfio.ko for $KVER"

if [ -f "$ko" ] && [ "$(modinfo -F vermagic "$ko")" = "$want" ]; then
        kl_log "mtty.ko for $KVER already built"
        exit 0
fi

hdr=$KROOT/usr/src/linux-headers-$KVER
[ -d "$hdr" ] || kl_die "no headers at $hdr"
# Rewrite any absolute /usr/src path in the top Makefile to the unpacked tree
# (idempotent: an already rewritten path no longer starts with /usr/src).
sed -i "s|^include /usr/src/|include $KROOT/usr/src/|" "$hdr/Makefile"
grep -q "^include $KROOT/usr/src/" "$hdr/Makefile" || kl_die "unexpected $hdr/Makefile: $(cat "$hdr/Makefile")"

src=$(ls "$KROOT"/usr/src/linux-source-*.tar.xz 2>/dev/null | head -n1)
[ -n "$src" ] || kl_die "no linux-source tarball in $KROOT/usr/src"

rm -rf "$out"
mkdir -p "$out"
# Only the one file is needed; tar still has to decompress up to it.
tar -xJf "$src" -C "$out" --wildcards --strip-components=3 '*/samples/vfio-mdev/mtty.c'
[ -f "$out/mtty.c" ] || kl_die "samples/vfio-mdev/mtty.c not found in $src"
echo 'obj-m := mtty.o' > "$out/Kbuild"

kl_log "building mtty.ko against $hdr"
make -s -C "$hdr" M="$out" -j"$(nproc)" modules >&2

got=$(modinfo -F vermagic "$ko")
[ "$got" = "$want" ] || kl_die "mtty.ko vermagic '$got' != kernel's '$want'"
kl_log "built $ko ($got)"
