#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# fetch-mdevctl.sh DIR: Debian's mdevctl package (bookworm: 1.2.0), downloaded
# with apt-get and unpacked into DIR (never installed), for the kernel lane's
# guest (scenarios/mdev.env, tests/bench/mdev-bench.sh). Cached: returns at
# once when DIR/usr/bin/mdevctl exists. Prints the binary's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ $# -eq 1 ] || kl_die "usage: fetch-mdevctl.sh DIR"
dir=$1
if [ ! -x "$dir/usr/bin/mdevctl" ]; then
        tmp=$(mktemp -d "${TMPDIR:-/tmp}/fetch-mdevctl.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        (cd "$tmp" && kl_apt download mdevctl) >&2
        mkdir -p "$dir"
        dpkg-deb -x "$tmp"/mdevctl_*.deb "$dir"
        dpkg-deb -f "$tmp"/mdevctl_*.deb Version > "$dir/VERSION"
        kl_log "mdevctl $(cat "$dir/VERSION") unpacked into $dir"
fi
echo "$dir/usr/bin/mdevctl"
