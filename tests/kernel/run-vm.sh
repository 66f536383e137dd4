#!/usr/bin/env bash
# Boot Debian's kernel in QEMU with hostdevd inside and run one scenario.
#
#   tests/kernel/run-vm.sh [options] SCENARIO.sh [-- EXTRA-QEMU-ARGS...]
#
#   --cache DIR      cached kernel/mtty/initramfs (default: $MESON_BUILD_ROOT/kernel-lane
#                    or build/kernel-lane)
#   --builddir DIR   meson build dir with agent/hostdevd and cli/hostdevctl
#                    (default: $MESON_BUILD_ROOT)
#   --no-daemon      boot without hostdevd/hostdevctl (tests the lane itself)
#   --outdir DIR     console log and shipped files (default: CACHE/out/<scenario>)
#   --timeout SEC    whole run, boot included (default 300)
#   --checker FILE   host-side checker run on OUTDIR (default: SCENARIO's
#                    name with .check.py instead of .sh, if it exists)
#   --quiet          print only results, not the guest console
#
# A scenario is a guest shell script (see guest/lib.sh for its helpers);
# extra QEMU arguments add devices for it. The base machine (tests/kernel/README.md):
#   q35 + intel-iommu (interrupt remapping, hence kernel-irqchip=split), TCG;
#   rp1, rp2:  e1000e 8086:10d3 on their own root ports (own IOMMU groups)
#   rp3:       nvme 1b36:0010 with SR-IOV (up to 4 VFs; needs nvme-subsys)
#   rp4:       pcie-pci-bridge with two e1000 8086:100e (one shared group)
#   rp5, rp6:  empty hotplug slots (ids rp5, rp6 for device_add bus=)
# Environment: KL_HOSTDEVD_ARGS (extra hostdevd options),
# KL_CONSOLE_LOGLEVEL (non-empty: keep kernel messages on the console).
#
# A scenario's settings: SCENARIO.env next to it (shell assignments, sourced
# here on the host before the environment's values are applied on top):
#   KL_HOSTDEVD_START=boot|manual  manual: /init does not start hostdevd; the
#                    scenario writes its desired-state files, then calls
#                    kl_hostdevd_start (guest/lib.sh). Default boot.
#   KL_HOSTDEVD_ARGS hostdevd options for every start.
#   KL_DISK_MB="N [N...]"  blank raw disks of N MiB (files in the run's
#                    temporary directory), each an nvme 1b36:0010 on its own
#                    root port (no SR-IOV, unlike rp3's): the first with
#                    serial "kldisk" on rp7, then "kldisk2" on rp8, ...
#   KL_GUEST_FILES="SRC:DEST ..."  extra files in the guest (programs get
#                    their ldd closure), e.g. a benchmark's helper.
#   KL_SKIP_MODULES="NAME ..."  modules /init does not insmod at boot ("-"
#                    and "_" alike): they stay in the image, indexed, for
#                    hostdevd (libkmod) to load, e.g. "vfio-pci vfio-pci-core".
#   KL_MODULES="NAME ..."  more kernel modules in the busybox guest, with
#                    their dependencies, loaded at boot (the debian guest has
#                    the kernel's whole module tree and udev loads them).
#   KL_GUEST=busybox|debian  the guest: busybox /init with the build dir's
#                    binaries (default), or a Debian 12 root under systemd
#                    (mkdebroot.sh, cached) into which guest/debrun.sh
#                    installs the packages of KL_DEBS with dpkg before the
#                    scenario runs (a bash script there, as root).
#   KL_DEBS=DIR      the debian guest's packages: hostdevd_*.deb and
#                    hostdevctl_*.deb (default: the repository's build-deb/
#                    if it has them, else scripts/build-deb.sh builds them
#                    into CACHE/debs).
#   KL_PASS="NAME ..."  caller's environment variables copied into the
#                    guest's scenario.env (the scenario sees NAME=value).
#   KL_HOST_LOAD=N   N busy processes on this (the build) machine while the
#                    guest runs, ended with it (0-8; default 0): the race
#                    between a userspace write and the kernel's own probe
#                    of a hot-added function is lost on a busy host, which
#                    busy loops inside the one-CPU guest do not reproduce.
#                    KL_HOST_LOAD_S: end them after this many seconds
#                    (default: the run's timeout).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

cache_arg= builddir=${MESON_BUILD_ROOT:-} outdir= timeout=300 checker= quiet= no_daemon=
while [ $# -gt 0 ]; do
        case $1 in
        --cache) cache_arg=$2; shift 2 ;;
        --builddir) builddir=$2; shift 2 ;;
        --no-daemon) no_daemon=--no-daemon; shift ;;
        --outdir) outdir=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        --checker) checker=$2; shift 2 ;;
        --quiet) quiet=--quiet; shift ;;
        -*) kl_die "run-vm.sh: unknown option '$1'" ;;
        *) break ;;
        esac
done
[ $# -ge 1 ] || kl_die "usage: run-vm.sh [options] SCENARIO.sh [-- EXTRA-QEMU-ARGS...]"
scenario=$(realpath "$1")
shift
[ "${1:-}" = -- ] && shift
extra=("$@")
[ -f "$scenario" ] || kl_die "no scenario $scenario"
name=$(basename "$scenario" .sh)
# The scenario's .env first, then what the caller's environment says.
env_hostdevd_args=${KL_HOSTDEVD_ARGS:-} env_start=${KL_HOSTDEVD_START:-}
env_disk=${KL_DISK_MB:-} env_files=${KL_GUEST_FILES:-} env_skip=${KL_SKIP_MODULES:-}
env_guest=${KL_GUEST:-} env_debs=${KL_DEBS:-} env_pass=${KL_PASS:-} env_mods=${KL_MODULES:-}
env_load=${KL_HOST_LOAD:-} env_load_s=${KL_HOST_LOAD_S:-}
KL_HOSTDEVD_ARGS= KL_HOSTDEVD_START= KL_DISK_MB= KL_GUEST_FILES= KL_SKIP_MODULES=
KL_GUEST= KL_DEBS= KL_PASS= KL_MODULES= KL_HOST_LOAD= KL_HOST_LOAD_S=
if [ -f "${scenario%.sh}.env" ]; then
        # shellcheck disable=SC1090
        . "${scenario%.sh}.env"
fi
KL_HOSTDEVD_ARGS="$KL_HOSTDEVD_ARGS${env_hostdevd_args:+ $env_hostdevd_args}"
KL_HOSTDEVD_START=${env_start:-${KL_HOSTDEVD_START:-boot}}
KL_DISK_MB=${env_disk:-$KL_DISK_MB}
KL_GUEST_FILES="$KL_GUEST_FILES${env_files:+ $env_files}"
KL_SKIP_MODULES="$KL_SKIP_MODULES${env_skip:+ $env_skip}"
KL_GUEST=${env_guest:-${KL_GUEST:-busybox}}
KL_DEBS=${env_debs:-$KL_DEBS}
KL_PASS="$KL_PASS${env_pass:+ $env_pass}"
export KL_MODULES="$KL_MODULES${env_mods:+ $env_mods}"
KL_HOST_LOAD=${env_load:-${KL_HOST_LOAD:-0}}
[[ $KL_HOST_LOAD =~ ^[0-8]$ ]] || kl_die "KL_HOST_LOAD: '$KL_HOST_LOAD' is not a number of busy processes from 0 to 8"
KL_HOST_LOAD_S=${env_load_s:-${KL_HOST_LOAD_S:-}}
[[ -z $KL_HOST_LOAD_S || $KL_HOST_LOAD_S =~ ^[1-9][0-9]*$ ]] || kl_die "KL_HOST_LOAD_S: '$KL_HOST_LOAD_S' is not a number of seconds"
case $KL_GUEST in
busybox | debian) ;;
*) kl_die "KL_GUEST: '$KL_GUEST' is neither busybox nor debian" ;;
esac
if [ -z "$checker" ] && [ -f "${scenario%.sh}.check.py" ]; then
        checker=${scenario%.sh}.check.py
fi

cache=$(kl_cache_dir "$cache_arg")
outdir=${outdir:-$cache/out/$name}
t0=$(date +%s.%N)

# Cached steps: each returns at once when its output exists. The lock keeps
# two runs sharing a cache from downloading or building at the same time.
(
        flock 9
        "$here/fetch-kernel.sh" "$cache"
        "$here/build-mtty.sh" "$cache"
        if [ "$KL_GUEST" = debian ]; then
                "$here/mkdebroot.sh" "$cache" > "$cache/.debroot"
        fi
) 9> "$cache/.lock"
kl_load_kernel_env "$cache"

work=$(mktemp -d "${TMPDIR:-/tmp}/kernel-lane.XXXXXX")
trap 'rm -rf "$work"' EXIT

initrd=$work/initrd.cpio
if [ "$KL_GUEST" = debian ]; then
        debroot=$(cat "$cache/.debroot")
        if [ -z "$KL_DEBS" ]; then
                KL_DEBS=$(cd "$here/../.." && pwd)/build-deb
                if ! compgen -G "$KL_DEBS/hostdevd_*.deb" >/dev/null; then
                        KL_DEBS=$cache/debs
                        kl_log "no packages in build-deb/: building them into $KL_DEBS"
                        "$here/../../scripts/build-deb.sh" --no-lintian --outdir "$KL_DEBS" >&2
                fi
        fi
        "$here/mkdebinitramfs.sh" --cache "$cache" -o "$initrd"
else
        "$here/mkinitramfs.sh" --cache "$cache" ${builddir:+--builddir "$builddir"} $no_daemon -o "$initrd"
fi

# The scenario rides in a second archive appended to the first.
mkdir -p "$work/scn/kernel-lane"
cp "$scenario" "$work/scn/kernel-lane/scenario.sh"
{
        printf 'KL_SCENARIO=%q\n' "$name"
        printf 'KL_GUEST=%q\n' "$KL_GUEST"
        printf 'KL_HOSTDEVD_ARGS=%q\n' "${KL_HOSTDEVD_ARGS:-}"
        printf 'KL_HOSTDEVD_START=%q\n' "$KL_HOSTDEVD_START"
        printf 'KL_CONSOLE_LOGLEVEL=%q\n' "${KL_CONSOLE_LOGLEVEL:-}"
        printf 'KL_SKIP_MODULES=%q\n' "${KL_SKIP_MODULES:-}"
        for v in $KL_PASS; do
                [[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || kl_die "KL_PASS: '$v' is not a variable name"
                printf '%s=%q\n' "$v" "${!v-}"
        done
} > "$work/scn/kernel-lane/scenario.env"
if [ "$KL_GUEST" = debian ]; then
        mkdir -p "$work/scn/kernel-lane/debs"
        for p in hostdevd hostdevctl; do
                f=$(compgen -G "$KL_DEBS/${p}_*.deb" | sort -V | tail -n 1) ||
                        kl_die "KL_DEBS: no ${p}_*.deb in $KL_DEBS"
                cp "$f" "$work/scn/kernel-lane/debs/"
        done
        cp "$here/guest/lib.sh" "$here/guest/debrun.sh" "$here/guest/kl-scenario.service" "$work/scn/kernel-lane/"
fi
# The same merged-/usr links as the first archive: an entry of another type
# (a directory lib64) would replace the link when the kernel unpacks this.
for d in bin sbin lib lib64; do
        mkdir -p "$work/scn/usr/$d"
        ln -s "usr/$d" "$work/scn/$d"
done
for f in $KL_GUEST_FILES; do
        src=${f%%:*} dest=${f#*:}
        [ -f "$src" ] || kl_die "KL_GUEST_FILES: no $src"
        case $dest in /*) ;; *) kl_die "KL_GUEST_FILES: $dest is not absolute" ;; esac
        if [ "$KL_GUEST" = debian ]; then
                # Copied over the Debian root by guest/debinit; the root has
                # Debian's libraries, so no ldd closure.
                mkdir -p "$work/scn/kernel-lane/root$(dirname "$dest")"
                cp -L "$src" "$work/scn/kernel-lane/root$dest"
        else
                kl_put_elf "$work/scn" "$src" "$dest"
        fi
done
(cd "$work/scn" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >> "$initrd"

rm -rf "$outdir"
mkdir -p "$outdir"
qmp=$work/qmp.sock
channel=$outdir/ttyS1.raw

# The debian guest: systemd keeps quiet on the console (the protocol's), and
# a little more memory holds the root's overlay (a tmpfs) and dpkg.
mem=1024 append=
if [ "$KL_GUEST" = debian ]; then
        mem=1536
        append=" systemd.show_status=0 systemd.unit=multi-user.target"
fi
machine=(
        -accel tcg -machine q35,kernel-irqchip=split -cpu max -smp 1 -m $mem
        -nodefaults -display none -no-reboot
        # ttyS0: console and requests (vm.py), ttyS1: bulk results.
        -serial stdio -serial "file:$channel"
        -qmp "unix:$qmp,server=on,wait=off"
        -kernel "$VMLINUX" -initrd "$initrd"
        # no_timer_check: under TCG on a loaded host, the kernel's check that
        # the timer interrupt arrives through the interrupt-remapped IO-APIC
        # can time out and panic at boot ("timer doesn't work through
        # Interrupt-remapped IO-APIC", seen in CI); the timer itself works.
        -append "console=ttyS0 intel_iommu=on iommu=nopt panic=-1 quiet no_timer_check$append"
        # The IOMMU before any device it translates for.
        -device intel-iommu,intremap=on
        -device pcie-root-port,id=rp1,chassis=1,slot=1
        -device pcie-root-port,id=rp2,chassis=1,slot=2
        -device pcie-root-port,id=rp3,chassis=1,slot=3
        -device pcie-root-port,id=rp4,chassis=1,slot=4
        -device pcie-root-port,id=rp5,chassis=1,slot=5
        -device pcie-root-port,id=rp6,chassis=1,slot=6
        # romfile= skips the iPXE option ROMs (~3 s of TCG).
        -device e1000e,id=nic1,bus=rp1,romfile=
        -device e1000e,id=nic2,bus=rp2,romfile=
        # QEMU 7.2 NVMe SR-IOV constraints: sriov_vq_flexible >= 2*max_vfs,
        # sriov_vi_flexible >= max_vfs, max_ioqpairs - vq_flexible >= 2,
        # msix_qsize - vi_flexible >= 1, and a subsystem.
        -device nvme-subsys,id=nvmesubsys0,nqn=kernel-lane
        -device nvme,id=nvme0,bus=rp3,serial=klnvme0,subsys=nvmesubsys0,sriov_max_vfs=4,sriov_vq_flexible=8,sriov_vi_flexible=4,max_ioqpairs=12,msix_qsize=8
        -device pcie-pci-bridge,id=ppb,bus=rp4
        -device e1000,id=legacy1,bus=ppb,addr=1,romfile=
        -device e1000,id=legacy2,bus=ppb,addr=2,romfile=
)
if [ "$KL_GUEST" = debian ]; then
        # The Debian root and the kernel's module tree, read-only over 9p
        # (two virtio-9p-pci functions on the root complex, tags debroot and
        # kmods; guest/debinit mounts them).
        machine+=(
                -fsdev "local,id=debroot,path=$debroot,security_model=none,readonly=on"
                -device virtio-9p-pci,fsdev=debroot,mount_tag=debroot
                -fsdev "local,id=kmods,path=$KROOT/lib/modules/$KVER,security_model=none,readonly=on"
                -device virtio-9p-pci,fsdev=kmods,mount_tag=kmods
        )
fi
# KL_DISK_MB="N [N...]": blank disks, the first as before (serial kldisk on
# rp7), the next ones kldisk2, kldisk3, ... on rp8, rp9, ...
i=0
for mb in $KL_DISK_MB; do
        [[ $mb =~ ^[1-9][0-9]*$ ]] || kl_die "KL_DISK_MB: '$mb' is not a size in MiB"
        i=$((i + 1))
        sfx=$i
        [ $i -gt 1 ] || sfx=
        id=kldisk$sfx port=rp$((6 + i)) dev=nvmedisk$sfx
        truncate -s "${mb}M" "$work/$id.img"
        machine+=(
                -device pcie-root-port,id=$port,chassis=1,slot=$((6 + i))
                -drive "file=$work/$id.img,if=none,id=$id,format=raw"
                -device nvme,id=$dev,bus=$port,serial=$id,drive=$id
        )
done

# KL_HOST_LOAD: busy processes for the guest's lifetime, ended on any exit.
load_pids=()
end_load() {
        local p
        for p in "${load_pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${load_pids[@]}"; do wait "$p" 2>/dev/null || true; done
        load_pids=()
}
trap 'end_load; rm -rf "$work"' EXIT
for _ in $(seq 1 "$KL_HOST_LOAD"); do
        # Ended by end_load, or by its own bound (KL_HOST_LOAD_S, else the run's timeout).
        timeout "${KL_HOST_LOAD_S:-$timeout}" sh -c 'while :; do :; done' &
        load_pids+=($!)
done
[ "$KL_HOST_LOAD" = 0 ] || kl_log "$KL_HOST_LOAD busy processes on this machine while the guest runs (at most ${KL_HOST_LOAD_S:-$timeout} s)"

kl_log "booting $name ($KVER) after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s of preparation"
rc=0
/usr/bin/python3 "$here/vm.py" --outdir "$outdir" --qmp "$qmp" --channel "$channel" \
        --timeout "$timeout" ${checker:+--checker "$checker"} $quiet \
        -- qemu-system-x86_64 "${machine[@]}" "${extra[@]}" || rc=$?
end_load
exit $rc
