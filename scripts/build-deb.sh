#!/usr/bin/env bash
# Build hostdevd's Debian packages from this tree and check them with lintian.
#
#   scripts/build-deb.sh [--outdir DIR] [--no-deps] [--no-lintian]
#
# Installs the packaging tools and debian/control's Build-Depends from
# Debian 12's archive (`apt-get build-dep ./`, waiting for the dpkg lock like
# setup-deps.sh), copies the tree's files (git ls-files: tracked and
# untracked-but-not-ignored) to OUTDIR/src/hostdevd-VERSION, runs
# `dpkg-buildpackage -us -uc -b` there with DEB_BUILD_OPTIONS=nocheck (the
# package build runs no tests: the test command runs every lane), and runs
# lintian on the .changes: any error or warning fails. The .debs land in
# OUTDIR (default build-deb/). Nothing is installed on this machine but
# build dependencies: the packages are installed only in the kernel lane's
# Debian guest.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

outdir=$top/build-deb
deps=1
lint=1
while [ $# -gt 0 ]; do
        case $1 in
        --outdir) outdir=$(realpath -m "$2"); shift 2 ;;
        --no-deps) deps=0; shift ;;
        --no-lintian) lint=0; shift ;;
        *) echo "build-deb: unknown option '$1'" >&2; exit 2 ;;
        esac
done

APT_TAG=build-deb
. scripts/apt-lib.sh

installed() {
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

if [ $deps -eq 1 ]; then
        tools=()
        for p in build-essential dpkg-dev debhelper lintian fakeroot; do
                installed "$p" || tools+=("$p")
        done
        if [ ${#tools[@]} -gt 0 ]; then
                apt_retry update -q
                apt_retry install -y -q --no-install-recommends "${tools[@]}"
        fi
        # Build-Depends: only when dpkg-checkbuilddeps says some are missing.
        if ! dpkg-checkbuilddeps -B debian/control 2>/dev/null; then
                apt_retry build-dep -y -q --no-install-recommends ./ ||
                        { apt_retry update -q && apt_retry build-dep -y -q --no-install-recommends ./; }
        fi
fi

version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
src=$outdir/src/hostdevd-$version
rm -rf "$outdir/src"
mkdir -p "$src"
git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$src" 2>/dev/null ||
        { git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
                [ -e "$f" ] && cp --parents -t "$src" "$f"; done; }

rm -f "$outdir"/*_"$version"_*.deb "$outdir"/hostdevd_"$version"_*.{changes,buildinfo}
(cd "$src" && DEB_BUILD_OPTIONS="nocheck${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}" \
        dpkg-buildpackage -us -uc -b) >"$outdir/build.log" 2>&1 ||
        { tail -n 60 "$outdir/build.log"; echo "build-deb: dpkg-buildpackage failed (log: $outdir/build.log)" >&2; exit 1; }
mv "$outdir"/src/*_"$version"_*.deb "$outdir"/src/hostdevd_"$version"_"$arch".{changes,buildinfo} "$outdir/"
rm -rf "$outdir/src"
ls -l "$outdir"/*.deb

if [ $lint -eq 1 ]; then
        # --fail-on error,warning: lintian's exit status covers both.
        echo "build-deb: lintian $(lintian --version | awk '{print $2}')"
        lintian --fail-on error,warning --display-info "$outdir/hostdevd_${version}_$arch.changes" |
                tee "$outdir/lintian.txt"
        rc=${PIPESTATUS[0]}
        [ $rc -eq 0 ] || { echo "build-deb: lintian found errors or warnings" >&2; exit 1; }
        echo "build-deb: lintian: no errors, no warnings"
fi
