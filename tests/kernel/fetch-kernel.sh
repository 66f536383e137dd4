#!/usr/bin/env bash
# Download Debian's current amd64 kernel packages and unpack them into the
# kernel lane's cache, without installing anything on this machine.
#
#   tests/kernel/fetch-kernel.sh [CACHE]
#
# Result (keyed by the package version, so a new ABI on the mirror gets a new
# directory and an old one is reused as is):
#   CACHE/<pkgver>/root/          the .debs unpacked with dpkg-deb -x
#   CACHE/<pkgver>/vmlinux        uncompressed ELF kernel, booted through PVH
#   CACHE/current-kernel.env      KVER, KPKGVER, KROOT, VMLINUX for the others
#
# Why these steps:
# - The mirror keeps only the newest ABI, so the version is resolved from the
#   linux-image-amd64 metapackage every time and image, headers, kbuild and
#   source are asserted to be the same upload: the mtty module built from
#   this source must match the kernel's vermagic.
# - modules.dep is made by the package's postinst, not shipped: depmod -b.
# - Debian's kernel has CONFIG_PVH=y; qemu -kernel with an ELF vmlinux skips
#   the bzImage's in-guest decompression (~3.5 s under TCG).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

cache=$(kl_cache_dir "${1:-}")

# Version of a package as apt sees it now (empty if unknown).
candidate() {
        apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -n1
}

resolve() {
        # "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)"
        image_pkg=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
                sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' | head -n1)
        KPKGVER=$(candidate linux-image-amd64)
}

resolve
if [ -z "${image_pkg:-}" ] || [ -z "$KPKGVER" ]; then
        kl_log "apt does not know linux-image-amd64; running apt-get update"
        kl_apt update -q >/dev/null
        resolve
fi
[ -n "$image_pkg" ] && [ -n "$KPKGVER" ] || kl_die "cannot resolve linux-image-amd64's kernel package"

KVER=${image_pkg#linux-image-}                  # 6.1.0-56-amd64
flavour=${KVER##*-}                             # amd64
abi=${KVER%-"$flavour"}                         # 6.1.0-56
series=${KVER%%.*}.$(echo "$KVER" | cut -d. -f2)        # 6.1

pkgs=(
        "linux-image-$KVER"
        "linux-headers-$KVER"
        "linux-headers-$abi-common"
        "linux-kbuild-$series"
        "linux-source-$series"
)

dir=$cache/$KPKGVER
KROOT=$dir/root
VMLINUX=$dir/vmlinux
stamp=$dir/.fetched

write_env() {
        cat > "$cache/current-kernel.env.tmp" <<EOT
# written by tests/kernel/fetch-kernel.sh
KVER=$KVER
KPKGVER=$KPKGVER
KROOT=$KROOT
VMLINUX=$VMLINUX
EOT
        mv "$cache/current-kernel.env.tmp" "$cache/current-kernel.env"
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${pkgs[*]} $KPKGVER" ]; then
        kl_log "kernel $KVER ($KPKGVER) already in $dir"
        write_env
        exit 0
fi

# Every package must be the same upload as the image: the headers and the
# source are what mtty.ko is built from.
for p in "${pkgs[@]}"; do
        v=$(candidate "$p")
        [ "$v" = "$KPKGVER" ] || kl_die "$p is at '${v:-unknown}', expected $KPKGVER (mirror mid-update?)"
done

rm -rf "$dir"
mkdir -p "$dir/debs" "$KROOT"
kl_log "downloading ${pkgs[*]} ($KPKGVER)"
# apt-get download writes into the current directory; as root it warns that
# the _apt user cannot write there, which is harmless.
(cd "$dir/debs" && kl_apt download -q "${pkgs[@]/%/=$KPKGVER}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) ||
        kl_die "apt-get download failed"

for deb in "$dir"/debs/*.deb; do
        dpkg-deb -x "$deb" "$KROOT"
done

[ -d "$KROOT/lib/modules/$KVER" ] || kl_die "no modules for $KVER in the image package"
depmod -b "$KROOT" "$KVER"

# bzImage -> ELF vmlinux: the compressed payload starts at the first XZ
# stream header magic (FD 37 7A 58 5A 00); --single-stream stops at its end
# and ignores the setup code's trailer (so tail may die of SIGPIPE: read it
# through a process substitution, whose status pipefail does not see).
bz=$KROOT/boot/vmlinuz-$KVER
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | head -n1 | cut -d: -f1 || true)
[ -n "$off" ] || kl_die "no XZ stream in $bz"
xz -dc --single-stream < <(tail -c +$((off + 1)) "$bz") > "$VMLINUX.tmp"
[ "$(head -c4 "$VMLINUX.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || kl_die "payload of $bz is not an ELF image"
mv "$VMLINUX.tmp" "$VMLINUX"

# The .debs are not needed any more (linux-source alone is ~140 MB).
rm -rf "$dir/debs"

echo "${pkgs[*]} $KPKGVER" > "$stamp"
write_env
kl_log "kernel $KVER ($KPKGVER) ready in $dir"
