#!/usr/bin/env bash
# Build (once) the Debian 12 root of the kernel lane's systemd guest.
#
#   tests/kernel/mkdebroot.sh CACHE
#
# `debootstrap --variant=minbase` bookworm with systemd (PID 1), dbus,
# polkitd, udev, kmod and the libraries hostdevd's packages depend on, into
# CACHE/debroot-KEY/root, where KEY hashes this script (so a changed
# package list gives a fresh root). The guest shares it read-only over 9p
# under a tmpfs overlay (guest/debinit), so one root serves every run; the
# packages under test are installed with dpkg inside each guest. Prints the
# root's path. Prepared for a test machine: a fixed machine-id (no first-boot
# prompts), no gettys (the console carries the lane's protocol), no timers,
# two users without privileges: alice, and bob in the group hostdevops that a
# scenario's polkit rule may trust. About 1-3 minutes and ~250 MB, once.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

cache=$(kl_cache_dir "${1:-}")
mirror=${KL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
pkgs=(
        systemd systemd-sysv dbus polkitd libpam-systemd udev kmod
        # (libpam-systemd: logind, which polkitd depends on)
        # what hostdevd and hostdevctl depend on
        libpci3 pci.ids libinih1 libjson-c5 libkmod2 libnettle8 libuuid1 libudev1 libsystemd0
        # the scenarios' tools
        jq procps
)
key=$( (cat "$0"; echo "$mirror") | sha256sum | cut -c1-12)
dir=$cache/debroot-$key
root=$dir/root
if [ -f "$dir/done" ]; then
        echo "$root"
        exit 0
fi

command -v debootstrap >/dev/null || kl_apt install -y -q --no-install-recommends debootstrap >&2
rm -rf "$dir"
mkdir -p "$dir"
include=$(IFS=,; echo "${pkgs[*]}")
kl_log "debootstrap bookworm ($include) into $root"
t0=$(date +%s)
debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" >"$dir/debootstrap.log" 2>&1 ||
        { tail -n 30 "$dir/debootstrap.log" >&2; kl_die "debootstrap failed (log: $dir/debootstrap.log)"; }

# A fixed machine-id: systemd does not treat the boot as the first one.
echo 4b1e2d3c5a6f47889900aabbccddeeff > "$root/etc/machine-id"
echo kl-debian > "$root/etc/hostname"
: > "$root/etc/fstab"
mask() { ln -sf /dev/null "$root/etc/systemd/system/$1"; }
for u in getty@tty1.service serial-getty@ttyS0.service console-getty.service \
        apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
        fstrim.timer systemd-tmpfiles-clean.timer; do
        mask "$u"
done
chroot "$root" groupadd --system hostdevops
chroot "$root" useradd --create-home --shell /bin/bash alice
chroot "$root" useradd --create-home --shell /bin/bash --groups hostdevops bob
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/*
touch "$dir/done"
kl_log "Debian root ready in $(($(date +%s) - t0)) s ($(du -sm "$root" | cut -f1) MB)"
echo "$root"
