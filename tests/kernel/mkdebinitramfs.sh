#!/usr/bin/env bash
# The initramfs of the kernel lane's systemd guest: busybox and the modules
# that mount the Debian root (9p over virtio, overlayfs), and guest/debinit
# as /init, which puts a tmpfs overlay on the read-only 9p root, adds the
# run's files (/kernel-lane: scenario, packages, helpers) and switches to
# systemd. Everything else (vfio-pci, e1000e, nvme, ...) comes from the
# kernel's full module tree, which the guest mounts at /lib/modules/KVER.
#
#   tests/kernel/mkdebinitramfs.sh [--cache DIR] -o OUT.cpio
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

cache_arg= out=
while [ $# -gt 0 ]; do
        case $1 in
        --cache) cache_arg=$2; shift 2 ;;
        -o|--output) out=$2; shift 2 ;;
        *) kl_die "mkdebinitramfs.sh: unknown argument '$1'" ;;
        esac
done
[ -n "$out" ] || kl_die "usage: mkdebinitramfs.sh [--cache DIR] -o OUT.cpio"
cache=$(kl_cache_dir "$cache_arg")
kl_load_kernel_env "$cache"

st=$(mktemp -d "$cache/debinitramfs.XXXXXX")
trap 'rm -rf "$st"' EXIT
mkdir -p "$st"/{usr/bin,etc,proc,sys,dev,run,newroot}
for d in bin sbin; do
        ln -s usr/bin "$st/$d"
done
ln -s bin "$st/usr/sbin"
cp /bin/busybox "$st/usr/bin/busybox"
for a in $(busybox --list); do
        [ -e "$st/usr/bin/$a" ] || ln -s busybox "$st/usr/bin/$a"
done

mods=(9p 9pnet_virtio virtio_pci overlay)
: > "$st/etc/kernel-lane-modules"
for f in $(modprobe -a -d "$KROOT" -S "$KVER" --show-depends "${mods[@]}" | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'); do
        rel=${f#"$KROOT"}
        mkdir -p "$st$(dirname "$rel")"
        cp "$f" "$st$rel"
        echo "$rel" >> "$st/etc/kernel-lane-modules"
done
printf 'KVER=%q\n' "$KVER" > "$st/etc/kernel-lane.env"
install -m 0755 "$here/guest/debinit" "$st/init"
(cd "$st" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$out"
