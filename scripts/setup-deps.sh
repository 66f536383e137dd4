#!/usr/bin/env bash
# Install hostdevd's build and test dependencies from Debian 12's archive.
# Idempotent: packages already present are skipped; waits for the dpkg lock.
# Never installs a kernel on this machine: the kernel lane downloads and
# unpacks Debian's kernel packages into the build tree (tests/kernel/).
set -euo pipefail

PKGS=(
        # build
        meson ninja-build gcc pkg-config clang-format
        libsystemd-dev libudev-dev libpci-dev uuid-dev libcmocka-dev
        libinih-dev libjson-c-dev libkmod-dev nettle-dev pci.ids
        # fuzz lane (tests/fuzz/): clang with libFuzzer and its sanitizer runtimes
        clang libclang-rt-14-dev
        # integration lane
        umockdev libumockdev-dev gir1.2-umockdev-1.0 udev
        dbus-daemon python3-dbusmock python3-dbus python3-gi valgrind
        # kernel lane (qemu guest; the kernel itself is only downloaded)
        qemu-system-x86 busybox-static xz-utils cpio kmod make bc
        flex bison libelf-dev jq dbus-bin python3
        # Debian packages (scripts/build-deb.sh) and the kernel lane's Debian guest
        dpkg-dev debhelper fakeroot lintian bash-completion debootstrap
)

missing=()
for p in "${PKGS[@]}"; do
        [[ $p == \#* ]] && continue
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
                missing+=("$p")
        fi
done

[ ${#missing[@]} -eq 0 ] && { echo "setup-deps: all ${#PKGS[@]} packages present"; exit 0; }

APT_TAG=setup-deps
. "$(dirname "$0")/apt-lib.sh"

echo "setup-deps: installing ${missing[*]}"
apt_retry update -q
apt_retry install -y -q --no-install-recommends "${missing[@]}"
