# Shared helpers for the kernel lane's scripts (sourced, not run).
#
# The cache directory holds everything the lane downloads or builds; it is
# keyed by the Debian kernel version so a new kernel ABI on the mirror gives a
# fresh subdirectory instead of a mix.

# Where cached artifacts go: argument, then $KERNEL_LANE_CACHE, then the meson
# build root, then build/kernel-lane relative to the repository.
kl_cache_dir() {
        local d=${1:-${KERNEL_LANE_CACHE:-}}
        if [ -z "$d" ]; then
                if [ -n "${MESON_BUILD_ROOT:-}" ]; then
                        d=$MESON_BUILD_ROOT/kernel-lane
                else
                        d=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)/build/kernel-lane
                fi
        fi
        mkdir -p "$d"
        (cd "$d" && pwd)
}

kl_log() { echo "kernel-lane: $*" >&2; }
kl_die() { echo "kernel-lane: error: $*" >&2; exit 1; }

# Run apt-get, waiting for the dpkg/apt lock another process may hold briefly.
kl_apt() {
        local i
        for i in $(seq 1 30); do
                if apt-get -o DPkg::Lock::Timeout=60 "$@"; then
                        return 0
                fi
                kl_log "apt-get $1 failed (try $i), retrying in 5 s"
                sleep 5
        done
        return 1
}

# The state written by fetch-kernel.sh: sets KVER (e.g. 6.1.0-56-amd64),
# KPKGVER (e.g. 6.1.192-2), KROOT (unpacked packages), VMLINUX (PVH ELF).
kl_load_kernel_env() {
        local cache=$1
        [ -f "$cache/current-kernel.env" ] || kl_die "no kernel in $cache: run tests/kernel/fetch-kernel.sh $cache first"
        # shellcheck disable=SC1091
        . "$cache/current-kernel.env"
}

# kl_put_elf STAGE SRC [DEST]: copy the ELF program SRC to STAGE/DEST (default
# SRC) with every library ldd resolves, at the same paths. Tokens starting
# with "/" are library paths: "libx.so.1 => /lib/.../libx.so.1 (0x...)" and the
# loader line "/lib64/ld-linux-x86-64.so.2 (0x...)" (no "=>"). mawk has no \s,
# so scan fields. A static program has no such lines ("not a dynamic executable").
kl_put_elf() {
        local st=$1 bin=$2 dest=${3:-$2} lib
        mkdir -p "$st$(dirname "$dest")"
        cp -L "$bin" "$st$dest"
        for lib in $(ldd "$bin" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'); do
                if [ ! -e "$st$lib" ]; then
                        mkdir -p "$st$(dirname "$lib")"
                        cp -L "$lib" "$st$lib"
                fi
        done
}
