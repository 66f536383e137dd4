#!/usr/bin/env bash
# Build the kernel lane's initramfs: busybox, the kernel modules the tests
# need, a system bus, and the hostdevd/hostdevctl binaries under test.
#
#   tests/kernel/mkinitramfs.sh [--cache DIR] [--builddir DIR] [--no-daemon] -o OUT.cpio
#
# --builddir is the meson build directory holding agent/hostdevd and
# cli/hostdevctl (default: $MESON_BUILD_ROOT). --no-daemon builds an image
# without them (to test the lane's own plumbing). The scenario script is not
# part of this image: run-vm.sh appends it as a second cpio archive, which
# the kernel unpacks over the first (Documentation/driver-api/early-userspace/
# buffer-format.rst: the initramfs may be a concatenation of archives).
#
# The archive is left uncompressed: QEMU copies it into guest memory as is,
# while decompressing it under TCG would cost a second or more.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

cache_arg= builddir=${MESON_BUILD_ROOT:-} out= with_daemon=1
while [ $# -gt 0 ]; do
        case $1 in
        --cache) cache_arg=$2; shift 2 ;;
        --builddir) builddir=$2; shift 2 ;;
        --no-daemon) with_daemon=0; shift ;;
        -o|--output) out=$2; shift 2 ;;
        *) kl_die "mkinitramfs.sh: unknown argument '$1'" ;;
        esac
done
[ -n "$out" ] || kl_die "usage: mkinitramfs.sh [--cache DIR] [--builddir DIR] [--no-daemon] -o OUT.cpio"

cache=$(kl_cache_dir "$cache_arg")
kl_load_kernel_env "$cache"
repo=$(cd "$here/../.." && pwd)
mtty=$(dirname "$KROOT")/mtty/mtty.ko
[ -f "$mtty" ] || kl_die "no $mtty: run tests/kernel/build-mtty.sh first"

if [ "$with_daemon" = 1 ]; then
        [ -n "$builddir" ] || kl_die "no --builddir (and no MESON_BUILD_ROOT)"
        hostdevd=$builddir/agent/hostdevd
        hostdevctl=$builddir/cli/hostdevctl
        [ -x "$hostdevd" ] || kl_die "no $hostdevd: build it first (ninja -C $builddir)"
        [ -x "$hostdevctl" ] || kl_die "no $hostdevctl: build it first (ninja -C $builddir)"
fi

# A private staging tree, so runs sharing a cache do not collide.
st=$(mktemp -d "$cache/initramfs.XXXXXX")
trap 'rm -rf "$st"' EXIT
mkdir -p "$st"/{usr/bin,usr/sbin,usr/lib,usr/lib64,usr/share/misc,etc,proc,sys,dev,run,tmp,root,var/lib}
# Debian 12 is merged-/usr: /lib, /bin, ... are links into /usr, and ldd
# prints paths through them (/lib64/ld-linux-x86-64.so.2).
for d in bin sbin lib lib64; do
        ln -s "usr/$d" "$st/$d"
done
ln -s ../run "$st/var/run"

# Copy a file to the same path inside the image, following links.
put() {
        mkdir -p "$st$(dirname "$1")"
        cp -L "$1" "$st$1"
}

# An ELF program with every library ldd resolves. Tokens starting with "/"
# are library paths: "libx.so.1 => /lib/.../libx.so.1 (0x...)" and the loader
# line "/lib64/ld-linux-x86-64.so.2 (0x...)" (no "=>"). mawk has no \s, so
# scan fields instead of matching a regex over the line.
put_elf() {
        local bin=$1 dest=${2:-$1} lib
        mkdir -p "$st$(dirname "$dest")"
        cp -L "$bin" "$st$dest"
        for lib in $(ldd "$bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'); do
                [ -e "$st$lib" ] || put "$lib"
        done
}

# busybox: one static binary, every applet a link.
cp /bin/busybox "$st/usr/bin/busybox"
for a in $(busybox --list); do
        [ -e "$st/usr/bin/$a" ] || ln -s busybox "$st/usr/bin/$a"
done

# Kernel modules: the closure of what the tests use, plus mtty from
# build-mtty.sh, placed where modprobe/libkmod look and indexed by depmod.
mods=(vfio vfio_iommu_type1 vfio-pci mdev nvme e1000e e1000)
# KL_MODULES (run-vm.sh, from a scenario's .env or the caller): more modules
# for the devices a scenario adds, e.g. "virtio_net virtio_blk ahci bridge
# 8021q bonding", shipped with their dependencies and loaded at boot.
# shellcheck disable=SC2206 # a list of names, split on purpose
mods+=(${KL_MODULES:-})
# In the image but not loaded at boot: a scenario modprobes them (ext4 mounts
# the ext2 filesystem of the converge scenario's disk).
on_demand_mods=(ext4)
kmod_dir=/lib/modules/$KVER
mkdir -p "$st$kmod_dir/extra"
for f in $(modprobe -a -d "$KROOT" -S "$KVER" --show-depends "${mods[@]}" "${on_demand_mods[@]}" | awk '$1 == "insmod" { print $2 }' | sort -u); do
        rel=${f#"$KROOT"}
        mkdir -p "$st$(dirname "$rel")"
        cp "$f" "$st$rel"
done
cp "$mtty" "$st$kmod_dir/extra/mtty.ko"
cp "$KROOT$kmod_dir"/modules.{order,builtin,builtin.modinfo} "$st$kmod_dir/"
depmod -b "$st" "$KVER"
# Load order for /init. busybox modprobe ignores softdeps, and vfio only
# soft-depends on vfio_iommu_type1 (without it VFIO_SET_IOMMU fails with
# ENODEV), so the list names it and /init insmods in dependency order.
modprobe -a -d "$st" -S "$KVER" --show-depends "${mods[@]}" mtty |
        awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | sed "s|^$st||" > "$st/etc/kernel-lane-modules"

# PCI ids: libpci reads /usr/share/misc/pci.ids; hwdata users the other.
put /usr/share/misc/pci.ids
mkdir -p "$st/usr/share/hwdata"
ln -s ../misc/pci.ids "$st/usr/share/hwdata/pci.ids"

# Users: dbus-daemon resolves user names in its policy. glibc >= 2.34 has
# nss_files built in, so the files alone are enough.
cat > "$st/etc/passwd" <<'EOT'
root:x:0:0:root:/root:/bin/sh
messagebus:x:100:101::/nonexistent:/usr/sbin/nologin
EOT
cat > "$st/etc/group" <<'EOT'
root:x:0:
messagebus:x:101:
EOT
echo 'passwd: files
group: files' > "$st/etc/nsswitch.conf"
# A fixed machine id: libdbus wants one, and a fixed one keeps runs equal.
echo 6b65726e656c2d6c616e652d74657374 > "$st/etc/machine-id"
mkdir -p "$st/var/lib/dbus"
ln -s /etc/machine-id "$st/var/lib/dbus/machine-id"

# The system bus. Debian's system.conf minus what an initramfs lacks
# (messagebus user switch, fork, syslog, the setuid activation helper); the
# default policy is Debian's, so the daemon's own policy file is what lets
# it own its name -- as on a real host.
put_elf /usr/bin/dbus-daemon
put_elf /usr/bin/dbus-send
mkdir -p "$st/usr/share/dbus-1/system.d" "$st/etc/dbus-1/system.d" "$st/run/dbus"
cat > "$st/usr/share/dbus-1/system.conf" <<'EOT'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- kernel lane: Debian's /usr/share/dbus-1/system.conf without <user>,
     <fork>, <syslog> and <servicehelper> (no such things in the guest). -->
<busconfig>
  <type>system</type>
  <pidfile>/run/dbus/pid</pidfile>
  <auth>EXTERNAL</auth>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus" />
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <includedir>system.d</includedir>
  <includedir>/etc/dbus-1/system.d</includedir>
</busconfig>
EOT
policy=$repo/dbus/org.hostdevd1.conf
if [ -f "$policy" ]; then
        cp "$policy" "$st/usr/share/dbus-1/system.d/org.hostdevd1.conf"
else
        # The project's policy is not written yet: a permissive stand-in
        # (root owns the name, anyone may call it).
        kl_log "no $policy, using a permissive test policy"
        cat > "$st/usr/share/dbus-1/system.d/org.hostdevd1.conf" <<'EOT'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- kernel lane stand-in for dbus/org.hostdevd1.conf -->
<busconfig>
  <policy user="root">
    <allow own="org.hostdevd1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.hostdevd1"/>
  </policy>
</busconfig>
EOT
fi

if [ "$with_daemon" = 1 ]; then
        put_elf "$hostdevd" /usr/sbin/hostdevd
        put_elf "$hostdevctl" /usr/bin/hostdevctl
fi

# jq lets guest scenarios read hostdevctl's --json output.
put_elf /usr/bin/jq

mkdir -p "$st/usr/lib/kernel-lane"
cp "$here/guest/init" "$st/init"
cp "$here/guest/lib.sh" "$st/usr/lib/kernel-lane/lib.sh"
chmod 755 "$st/init"
echo "KVER=$KVER" > "$st/etc/kernel-lane.env"

mkdir -p "$(dirname "$out")"
(cd "$st" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$out.tmp"
mv "$out.tmp" "$out"
kl_log "initramfs $out ($(du -h "$out" | cut -f1))"
