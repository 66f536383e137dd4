# Kernel lane scenario "modload": loading a missing driver module is part of
# the step (issue 3). The guest boots without vfio-pci (modload.env:
# KL_SKIP_MODULES); hostdevd loads it with libkmod from the image's
# /lib/modules (depmod-indexed by mkinitramfs.sh) when a transaction needs it.
# Runs in the guest (busybox ash) with guest/lib.sh sourced.
#
# Checks:
#   A  at boot: no vfio-pci driver, no vfio_pci / vfio_pci_core module
#   B  hostdevd --no-load-modules with a rule e1000e -> vfio-pci: the
#      transaction is refused (LastError says loading is disabled), the
#      function stays on e1000e, still no vfio_pci module
#   C  hostdevd (loading on): it loads vfio_pci and its dependency
#      vfio_pci_core, the e1000e converges to vfio-pci, its log names the load
#   D  a driver with no module (Driver=nosuch_drv): failed, LastError names
#      the module and ENOENT, the function stays on e1000e
E1000E="8086 10d3"
CONF=/etc/hostdevd/devices.d
CONVERGE=30

mkdir -p "$CONF"
override() { cat "/sys/bus/pci/devices/$1/driver_override" 2>/dev/null; }
on() { [ "$(kl_driver "$1")" = "$2" ]; }
dpath() { echo "/org/hostdevd1/devices/pci_$(echo "$1" | tr ':.' '__')"; }
dev_prop() { kl_prop "$(dpath "$1")" org.hostdevd1.Device "$2"; }
state_is() { [ "$(dev_prop "$1" State)" = "$2" ]; }
last_error_has() { dev_prop "$1" LastError | grep -qF "$2"; }
describe() {
        for _b; do
                echo "$_b driver=$(kl_driver "$_b") override=$(override "$_b") state=$(dev_prop "$_b" State)" \
                        "reason=$(dev_prop "$_b" StateReason) last_error=$(dev_prop "$_b" LastError)"
        done
}
loaded() { [ -d "/sys/module/$1" ]; }
not_loaded() { ! loaded "$1"; }
no_driver() { [ ! -e /sys/bus/pci/drivers/vfio-pci ]; }
rule() {
        _f=$CONF/$1
        shift
        printf '%s\n' "$@" > "$_f"
}

set -- $(kl_pci_find $E1000E)
nic1=${1:-} nic2=${2:-}
if [ -z "$nic2" ]; then
        kl_not_ok "the machine has 2 e1000e" "$(ls -l /sys/bus/pci/devices)"
        exit 1
fi
echo "# e1000e: $nic1 $nic2"

# ---- A. boot without vfio-pci -------------------------------------------------
kl_check "A: no vfio-pci driver registered at boot" no_driver
kl_check "A: vfio_pci not loaded at boot" not_loaded vfio_pci
kl_check "A: vfio_pci_core not loaded at boot" not_loaded vfio_pci_core
kl_check "A: $nic1 on e1000e" on "$nic1" e1000e

# ---- B. loading disabled: refused as before --------------------------------------
rule 10-nic.conf "[Match]" "Address=$nic1" "" "[Device]" "Driver=vfio-pci"
if kl_hostdevd_start --no-load-modules; then
        if kl_wait $CONVERGE last_error_has "$nic1" "module loading is disabled"; then
                kl_ok "B: --no-load-modules: refused ($(dev_prop "$nic1" LastError))"
        else
                kl_not_ok "B: --no-load-modules: refused, LastError says loading is disabled" "$(describe "$nic1")"
        fi
        kl_check "B: $nic1 stays on e1000e" on "$nic1" e1000e
        kl_check "B: vfio_pci still not loaded" not_loaded vfio_pci
        kl_hostdevd_stop || kl_not_ok "B: hostdevd stops"
else
        kl_not_ok "B: hostdevd --no-load-modules starts"
fi

# ---- C. hostdevd loads the module ------------------------------------------------
t0=$(kl_now)
if ! kl_hostdevd_start; then
        kl_not_ok "C: hostdevd starts"
        exit 1
fi
if kl_wait $CONVERGE eval 'on "$nic1" vfio-pci && state_is "$nic1" converged'; then
        kl_ok "C: $nic1 converged to vfio-pci after hostdevd loaded the module ($KL_WAITED s)"
else
        kl_not_ok "C: $nic1 converges to vfio-pci" "$(describe "$nic1")" "$(tail -n 20 "$KL_HOSTDEVD_LOG")"
fi
kl_check "C: vfio_pci loaded (/sys/module/vfio_pci)" loaded vfio_pci
kl_check "C: its dependency vfio_pci_core loaded" loaded vfio_pci_core
kl_check "C: vfio-pci registered (/sys/bus/pci/drivers/vfio-pci)" test -d /sys/bus/pci/drivers/vfio-pci
kl_check "C: lsmod lists vfio_pci" eval 'lsmod | grep -q "^vfio_pci "'
kl_check "C: hostdevd's log names the load" grep -q "Loaded module vfio_pci for driver vfio-pci" "$KL_HOSTDEVD_LOG"
lsmod > /tmp/lsmod.txt 2>&1
kl_ship lsmod.txt /tmp/lsmod.txt

# ---- D. no such module -----------------------------------------------------------
rule 20-nic2.conf "[Match]" "Address=$nic2" "" "[Device]" "Driver=nosuch_drv"
dbus-send --system --print-reply --dest=org.hostdevd1 /org/hostdevd1 org.hostdevd1.Manager.Reload > /tmp/reload.out 2>&1 ||
        kl_diag "Reload failed: $(cat /tmp/reload.out)"
expected="Failed to load module 'nosuch_drv' for driver 'nosuch_drv': No such file or directory"
if kl_wait $CONVERGE last_error_has "$nic2" "$expected"; then
        kl_ok "D: a driver with no module fails naming it ($expected)"
else
        kl_not_ok "D: a driver with no module fails naming it" "$(describe "$nic2")"
fi
kl_check "D: $nic2 stays on e1000e" on "$nic2" e1000e
kl_check "D: $nic2 driver_override untouched" eval '[ "$(override "$nic2")" = "(null)" ]'
