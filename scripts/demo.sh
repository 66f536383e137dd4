#!/usr/bin/env bash
# The main job on its embedded default: install what is missing, build
# hostdevd and hostdevctl, boot Debian's own kernel in QEMU (downloaded and
# unpacked into build/kernel-lane, never installed on this machine), run
# hostdevd inside on a real system bus, and print what hostdevctl shows before
# and after changes made by hand in the guest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-deps.sh
[ -d build/meson-private ] || meson setup build
ninja -C build
exec tests/kernel/run-vm.sh --builddir build --cache build/kernel-lane tests/kernel/scenarios/demo.sh
