# Kernel lane scenario "converge": hostdevd's main job on a real kernel.
# hostdevd starts with desired-state files (written here, before the start,
# with the addresses found at run time) and converges the host to them; then
# files are edited and reloaded, devices are hot-added and rebound by hand,
# a VFIO node is held open, and hostdevd is SIGKILLed in the middle of an
# apply. Runs in the guest (busybox ash) with guest/lib.sh sourced;
# converge.env makes /init leave hostdevd to this script and adds a 16 MiB
# disk (nvme, serial kldisk) that is formatted and mounted here.
#
# Checks (issue 3, kernel lane):
#   A  at start: an e1000e -> vfio-pci; nvme NumVFs=4 VFDriver=vfio-pci with
#      every VF on vfio-pci and no nvme probe of any VF; a Group=strict rule
#      for one e1000 behind the pcie-pci-bridge alone is refused naming its
#      peer; the mounted disk's controller is refused as host-critical
#   B  the legacy rule edited to Group=whole + Reload: both e1000 -> vfio-pci
#   C  a rebind by hand of a managed device is repaired (hostdevd stopped
#      meanwhile, then running)
#   D  a rule by Vendor/Device + Reload; a hot-added e1000e converges with no command
#   E  a holder of /dev/vfio/N blocks the unbind (State blocked, its pid);
#      removing the rule + Reload returns the others to e1000e with
#      driver_override "(null)"; when the holder exits the last one follows
#      by itself, with no Apply (issues 13, 15: fanotify on the real
#      /dev/vfio, Manager.HolderTracking "fanotify", the holder listed in
#      Manager.UnleasedHolders, seen at its open before any plan)
#   F  SIGKILL in the middle of an apply, restart: converged, no stale
#      driver_override anywhere
#   G  hostdevd's uevent socket filters on this kernel's netlink socket:
#      synthetic uevents of a PCI function, /dev/null and a vfio group kept or
#      dropped as uevent-filter.h says
#   H  no rules at all + Reload: every function hostdevd took is back on its
#      host driver, and the nvme PF's sriov_numvfs and sriov_drivers_autoprobe
#      are what they were before hostdevd changed them (issue 13 section 2)
#   I  the same after a restart: an SR-IOV rule converged, hostdevd stopped,
#      the rule removed, hostdevd started: the PF's settings are given back
E1000E="8086 10d3"      # e1000e, each on its own root port
E1000="8086 100e"       # two e1000 behind the pcie-pci-bridge: one IOMMU group
NVME="1b36 0010"        # the SR-IOV PF (rp3), its VFs, and the disk (rp7)
CONF=/etc/hostdevd/devices.d
CONVERGE=30             # seconds hostdevd may take to converge (TCG on a busy
                        # 2-core machine; the kernel's own part is ~1.5 s for
                        # everything at start, see kernel-lane.md)

mkdir -p "$CONF"

# ---- helpers ---------------------------------------------------------------
sysd() { echo "/sys/bus/pci/devices/$1"; }
override() { cat "/sys/bus/pci/devices/$1/driver_override" 2>/dev/null; }
on() { [ "$(kl_driver "$1")" = "$2" ]; }              # on BDF DRIVER
all_on() { _d=$1; shift; for _b; do on "$_b" "$_d" || return 1; done; }
dpath() { echo "/org/hostdevd1/devices/pci_$(echo "$1" | tr ':.' '__')"; }
dev_prop() { kl_prop "$(dpath "$1")" org.hostdevd1.Device "$2"; }
state_is() { [ "$(dev_prop "$1" State)" = "$2" ]; }
overrides_null() { for _b; do [ "$(override "$_b")" = "(null)" ] || return 1; done; }
all_state() { _s=$1; shift; for _b; do state_is "$_b" "$_s" || return 1; done; }
mgr_prop() { kl_prop /org/hostdevd1 org.hostdevd1.Manager "$1"; }
# One line per device for diagnostics: driver, override, hostdevd's state.
describe() {
        for _b; do
                echo "$_b driver=$(kl_driver "$_b") override=$(override "$_b") state=$(dev_prop "$_b" State)" \
                        "reason=$(dev_prop "$_b" StateReason) last_error=$(dev_prop "$_b" LastError)"
        done
}
reload() {
        dbus-send --system --print-reply --dest=org.hostdevd1 /org/hostdevd1 \
                org.hostdevd1.Manager.Reload > /tmp/reload.out 2>&1 || {
                kl_diag "Reload failed: $(cat /tmp/reload.out)"
                return 1
        }
}
apply() {
        dbus-send --system --print-reply=literal --dest=org.hostdevd1 /org/hostdevd1 \
                org.hostdevd1.Manager.Apply 2>&1
}
# rule FILE LINE...: write a desired-state file (one line per argument).
rule() {
        _f=$CONF/$1
        shift
        printf '%s\n' "$@" > "$_f"
}
secs_since() { awk -v a="$1" -v b="$(kl_now)" 'BEGIN { printf "%.2f", b - a }'; }
# ship_plan PHASE: Plan(), hostdevd's objects and each function's driver and
# override, shipped for the record (one D-Bus call each: describe would make
# four per function).
ship_plan() {
        dbus-send --system --print-reply --dest=org.hostdevd1 /org/hostdevd1 \
                org.hostdevd1.Manager.Plan > "/tmp/plan-$1.txt" 2>&1
        kl_ship "plan-$1.txt" "/tmp/plan-$1.txt"
        dbus-send --system --print-reply --dest=org.hostdevd1 /org/hostdevd1 \
                org.freedesktop.DBus.ObjectManager.GetManagedObjects > "/tmp/objects-$1.txt" 2>&1
        kl_ship "objects-$1.txt" "/tmp/objects-$1.txt"
        for _b in $(ls /sys/bus/pci/devices); do
                echo "$_b driver=$(kl_driver "$_b") override=$(override "$_b")"
        done > "/tmp/sysfs-$1.txt"
        kl_ship "sysfs-$1.txt" "/tmp/sysfs-$1.txt"
}

# ---- the machine -------------------------------------------------------------
set -- $(kl_pci_find $E1000E)
nic1=${1:-} nic2=${2:-}
set -- $(kl_pci_find $E1000)
leg1=${1:-} leg2=${2:-}
pf= disk=
for b in $(kl_pci_find $NVME); do
        if [ -e "$(sysd "$b")/sriov_totalvfs" ]; then
                pf=$b
        elif [ ! -e "$(sysd "$b")/physfn" ]; then
                disk=$b         # rp7's (serial kldisk): no SR-IOV
        fi
done
echo "# e1000e: $nic1 $nic2; e1000: $leg1 $leg2 (behind $(basename "$(dirname "$(readlink -f "$(sysd "$leg1")")")"));" \
        "nvme PF: $pf; disk controller: $disk"
if [ -z "$nic2" ] || [ -z "$leg2" ] || [ -z "$pf" ] || [ -z "$disk" ]; then
        kl_not_ok "the machine has 2 e1000e, 2 e1000, an nvme PF and the kldisk nvme" "$(ls -l /sys/bus/pci/devices)"
        exit 1
fi

# The disk: ext2 (busybox mke2fs, mounted by the ext4 module), mounted at
# /mnt/disk. ext4 soft-depends on crc32c, which busybox modprobe ignores. Its controller is now host-critical (safety rule 3 in hostdevd(8)).
# The nvme driver probes asynchronously: wait for the namespace.
disk_ns() { ls -d "$(sysd "$disk")"/nvme/nvme*/nvme*n1 2>/dev/null | head -n1 | grep .; }
kl_wait 10 disk_ns > /dev/null
blk=$(basename "$(disk_ns)")
grep -q kldisk "$(sysd "$disk")"/nvme/nvme*/serial || kl_diag "$disk is not the kldisk nvme: $(cat "$(sysd "$disk")"/nvme/nvme*/serial)"
mkdir -p /mnt/disk
if [ -n "$blk" ] && [ -b "/dev/$blk" ] && modprobe -a crc32c_generic ext4 && mke2fs -q "/dev/$blk" && mount -t ext2 "/dev/$blk" /mnt/disk; then
        echo "# /dev/$blk (controller $disk) mounted at /mnt/disk"
else
        kl_not_ok "format and mount /dev/$blk" "$(dmesg | tail -n 5)"
fi

# ---- A. converge at start ----------------------------------------------------
rule 10-nic.conf "[Match]" "Address=$nic1" "" "[Device]" "Driver=vfio-pci"
rule 20-legacy.conf "[Match]" "Address=$leg1" "" "[Device]" "Driver=vfio-pci" "Group=strict"
rule 30-nvme.conf "[Match]" "Address=$pf" "" "[SRIOV]" "NumVFs=4" "VFDriver=vfio-pci"
rule 40-disk.conf "[Match]" "Address=$disk" "" "[Device]" "Driver=vfio-pci"
autoprobe_before=$(cat "$(sysd "$pf")/sriov_drivers_autoprobe")
numvfs_before=$(cat "$(sysd "$pf")/sriov_numvfs")
t0=$(kl_now)
if ! kl_hostdevd_start; then
        kl_not_ok "A: hostdevd starts with the desired-state files"
        exit 1
fi
echo "# hostdevd on the bus $(secs_since "$t0") s after its start"

if kl_wait $CONVERGE eval 'on "$nic1" vfio-pci && state_is "$nic1" converged'; then
        kl_ok "A: e1000e $nic1 converged to vfio-pci at start ($(secs_since "$t0") s after the start)"
else
        kl_not_ok "A: e1000e $nic1 converges to vfio-pci at start" "$(describe "$nic1")"
fi

vfs_of() { for _v in "$(sysd "$pf")"/virtfn*; do [ -e "$_v" ] && basename "$(readlink "$_v")"; done; }
vfs_ready() {
        [ "$(cat "$(sysd "$pf")/sriov_numvfs")" = "$1" ] || return 1
        _vfs=$(vfs_of)
        [ -n "$_vfs" ] && all_on vfio-pci $_vfs && all_state converged $_vfs "$pf"
}
if kl_wait $CONVERGE vfs_ready 4; then
        kl_ok "A: nvme PF $pf has 4 VFs, each on vfio-pci and converged ($(secs_since "$t0") s after the start)"
else
        kl_not_ok "A: nvme PF $pf has 4 VFs on vfio-pci" "sriov_numvfs=$(cat "$(sysd "$pf")/sriov_numvfs")" \
                "$(describe "$pf" $(vfs_of))"
fi
vfs=$(vfs_of)
kl_check "A: sriov_drivers_autoprobe of $pf is 0 (was $autoprobe_before)" \
        [ "$(cat "$(sysd "$pf")/sriov_drivers_autoprobe")" = 0 ]
# The nvme driver says "nvme nvmeN: pci function BDF" when it probes, and
# fails loudly on QEMU's offline VF controllers: none of it for any VF.
vf_re=$(echo $vfs | sed 's/ /|/g; s/\./\\./g')
if [ -n "$vfs" ] && ! dmesg | grep -E "nvme" | grep -qE "($vf_re)"; then
        kl_ok "A: dmesg has no nvme probe of any VF ($(echo $vfs))"
else
        kl_not_ok "A: dmesg has no nvme probe of any VF" "$(dmesg | grep -E "nvme" | grep -E "(${vf_re:-none})")"
fi

if kl_wait $CONVERGE eval 'state_is "$leg1" refused'; then
        reason=$(dev_prop "$leg1" StateReason)
        kl_check "A: Group=strict for $leg1 alone is refused, naming its peer $leg2 ($reason)" \
                eval 'echo "$reason" | grep -q "$leg2"'
else
        kl_not_ok "A: Group=strict for $leg1 alone is refused" "$(describe "$leg1" "$leg2")"
fi
kl_check "A: $leg1 and $leg2 stay on e1000" all_on e1000 "$leg1" "$leg2"

if kl_wait $CONVERGE eval 'state_is "$disk" refused'; then
        reason=$(dev_prop "$disk" StateReason)
        kl_check "A: the mounted disk's controller $disk is refused as critical ($reason)" \
                eval 'echo "$reason" | grep -qiE "critical|controller of|mount|/mnt/disk"'
else
        kl_not_ok "A: the mounted disk's controller $disk is refused" "$(describe "$disk")"
fi
kl_check "A: $disk stays on nvme and /mnt/disk stays mounted" \
        eval 'on "$disk" nvme && grep -q " /mnt/disk " /proc/mounts'
kl_check "A: Manager ConfigErrors is empty" eval '[ "$(mgr_prop ConfigErrors | tr -d " \n")" = "array[]" ]'
echo "# Manager State $(mgr_prop State), Generation $(mgr_prop Generation)"
ship_plan A

# ---- B. edit a file + Reload: Group=whole ------------------------------------
rule 20-legacy.conf "[Match]" "Address=$leg1" "" "[Device]" "Driver=vfio-pci" "Group=whole"
t0=$(kl_now)
if reload && kl_wait $CONVERGE eval 'all_on vfio-pci "$leg1" "$leg2" && all_state converged "$leg1" "$leg2"'; then
        kl_ok "B: Group=whole + Reload: $leg1 and its peer $leg2 converged to vfio-pci ($(secs_since "$t0") s)"
else
        kl_not_ok "B: Group=whole + Reload: $leg1 and $leg2 converge to vfio-pci" "$(describe "$leg1" "$leg2")"
fi

# ---- C. a rebind by hand is repaired ---------------------------------------------
# by_hand BDF: back to e1000e the way driverctl unset-override does it:
# unbind, clear driver_override, drivers_probe.
by_hand() {
        echo "$1" > /sys/bus/pci/drivers/vfio-pci/unbind
        echo > "$(sysd "$1")/driver_override"
        echo "$1" > /sys/bus/pci/drivers_probe
}
# C1: while hostdevd is stopped (SIGSTOP), so it sees the whole rebind in its
# queued uevents at once: repairing drift, without a race.
if on "$nic1" vfio-pci; then
        kill -STOP "$KL_HOSTDEVD_PID"
        by_hand "$nic1"
        echo "# by hand, hostdevd stopped: $nic1 -> $(kl_driver "$nic1"), override $(override "$nic1")"
        t0=$(kl_now)
        kill -CONT "$KL_HOSTDEVD_PID"
        if kl_wait $CONVERGE eval 'on "$nic1" vfio-pci && state_is "$nic1" converged'; then
                kl_ok "C: $nic1 rebound to e1000e by hand (hostdevd stopped) is repaired ($(secs_since "$t0") s)"
        else
                kl_not_ok "C: $nic1 rebound by hand (hostdevd stopped) is repaired" "$(describe "$nic1")"
        fi
else
        kl_not_ok "C: $nic1 on vfio-pci to rebind by hand" "$(describe "$nic1")"
fi
# C2: the same with hostdevd running: it sees the unbind and may act between
# the writes; whatever it saw, it must end with the device repaired.
if on "$nic1" vfio-pci; then
        by_hand "$nic1"
        t0=$(kl_now)
        echo "# by hand, hostdevd running: $nic1 -> $(kl_driver "$nic1"), override $(override "$nic1")"
        if kl_wait $CONVERGE eval 'on "$nic1" vfio-pci && state_is "$nic1" converged'; then
                kl_ok "C: $nic1 rebound to e1000e by hand (hostdevd running) is repaired ($(secs_since "$t0") s)"
        else
                kl_not_ok "C: $nic1 rebound by hand (hostdevd running) is repaired" "$(describe "$nic1")"
        fi
else
        kl_not_ok "C: $nic1 on vfio-pci to rebind by hand (hostdevd running)" "$(describe "$nic1")"
fi

# ---- D. a rule by ids; a hot-added e1000e converges with no command ---------------
rule 10-nic.conf "[Match]" "Vendor=8086" "Device=10d3" "" "[Device]" "Driver=vfio-pci"
t0=$(kl_now)
if reload && kl_wait $CONVERGE eval 'all_on vfio-pci "$nic1" "$nic2" && all_state converged "$nic1" "$nic2"'; then
        kl_ok "D: Vendor=8086 Device=10d3 + Reload: $nic2 converged to vfio-pci too ($(secs_since "$t0") s)"
else
        kl_not_ok "D: Vendor/Device rule + Reload: $nic1 and $nic2 on vfio-pci" "$(describe "$nic1" "$nic2")"
fi
before=$(kl_pci_find $E1000E)
new_e1000e() { for _b in $(kl_pci_find $E1000E); do echo "$before" | grep -qx "$_b" || echo "$_b"; done; }
has_new() { [ -n "$(new_e1000e)" ]; }
hp=
if kl_host qmp '{"execute": "device_add", "arguments": {"driver": "e1000e", "id": "hp1", "bus": "rp5", "romfile": ""}}' &&
   kl_wait 10 has_new; then
        hp=$(new_e1000e)
        t0=$(kl_now)
        if kl_wait $CONVERGE eval 'on "$hp" vfio-pci && state_is "$hp" converged'; then
                kl_ok "D: hot-added e1000e $hp converged to vfio-pci with no command ($(secs_since "$t0") s after it appeared)"
                # Information, not a check: whether driver_override came before the kernel's
                # first probe is a race that a loaded TCG host may lose (the bind is then taken
                # from e1000e, which the check above covers).
                if dmesg | grep -q "e1000e $hp"; then
                        echo "# D: e1000e probed $hp before its driver_override landed"
                else
                        echo "# D: e1000e never probed $hp: driver_override came before the first probe"
                fi
        else
                kl_not_ok "D: hot-added e1000e $hp converges to vfio-pci" "$(describe "$hp")"
        fi
else
        kl_not_ok "D: QMP device_add e1000e makes a new function" "$KL_REPLY"
fi
ship_plan D

# ---- E. a holder blocks the unbind; removing the rule returns the others ------------
group=$(basename "$(readlink "$(sysd "$nic1")/iommu_group")")
# The holder: a process with /dev/vfio/<group> open (fd 3), doing nothing.
sh -c 'exec 3< "$0"; exec sleep 600' "/dev/vfio/$group" &
holder=$!
holding() { ls -l "/proc/$holder/fd" 2>/dev/null | grep -q "/dev/vfio/$group"; }
if kl_wait 5 holding; then
        echo "# pid $holder holds /dev/vfio/$group ($nic1)"
else
        kl_not_ok "E: a process opens /dev/vfio/$group" "$(ls -l "/proc/$holder/fd" 2>&1)"
fi
kl_check "E: hostdevd tracks VFIO holders with fanotify (HolderTracking: $(mgr_prop HolderTracking))" \
        [ "$(mgr_prop HolderTracking)" = fanotify ]
# fanotify: the open alone is seen, before any plan
if kl_wait 10 eval 'mgr_prop UnleasedHolders | grep -qw "$holder"'; then
        kl_ok "E: the open is seen with no plan: UnleasedHolders $(mgr_prop UnleasedHolders | tr '\n' ' ')"
else
        kl_not_ok "E: pid $holder listed in Manager.UnleasedHolders" "$(mgr_prop UnleasedHolders)"
fi
rm -f "$CONF/10-nic.conf"
t0=$(kl_now)
others="$nic2${hp:+ $hp}"
if reload && kl_wait $CONVERGE eval 'all_on e1000e $others && all_state converged $others'; then
        kl_ok "E: rule removed + Reload: $others back on e1000e ($(secs_since "$t0") s)"
else
        kl_not_ok "E: rule removed + Reload: $others back on e1000e" "$(describe $others)"
fi
kl_check "E: driver_override of $others is (null)" overrides_null $others
if kl_wait $CONVERGE eval 'state_is "$nic1" blocked'; then
        reason=$(dev_prop "$nic1" StateReason)
        holders=$(dev_prop "$nic1" Holders)
        kl_check "E: $nic1 is blocked by pid $holder (reason: $reason; Holders: $holders)" \
                eval 'echo "$reason" | grep -qw "$holder" && echo "$holders" | grep -qw "$holder"'
else
        kl_not_ok "E: $nic1 with /dev/vfio/$group held is blocked" "$(describe "$nic1")"
fi
kl_check "E: $nic1 stays on vfio-pci while held" on "$nic1" vfio-pci
kill "$holder"
wait "$holder" 2>/dev/null
t0=$(kl_now)
if kl_wait 10 eval 'on "$nic1" e1000e && state_is "$nic1" converged'; then
        kl_ok "E: the holder gone, $nic1 returns to e1000e by itself ($(secs_since "$t0") s)"
else
        kl_not_ok "E: the holder gone, $nic1 returns to e1000e with no Apply" "$(describe "$nic1")"
        echo "# Apply: $(apply)"
fi
kl_check "E: driver_override of $nic1 is (null)" [ "$(override "$nic1")" = "(null)" ]

# ---- F. SIGKILL in the middle of an apply, restart ----------------------------------
rule 10-nic.conf "[Match]" "Vendor=8086" "Device=10d3" "" "[Device]" "Driver=vfio-pci"
rule 30-nvme.conf "[Match]" "Address=$pf" "" "[SRIOV]" "NumVFs=2" "VFDriver=vfio-pci"
nics=$(kl_pci_find $E1000E)
# Shell builtins only in the loop (no fork): the first sysfs write hostdevd
# makes for this apply is a driver_override of an e1000e or the PF's
# sriov_numvfs going to 0.
first_write() {
        read -r _n < "$(sysd "$pf")/sriov_numvfs"
        [ "$_n" != 4 ] && return 0
        for _b in $nics; do
                read -r _o < "$(sysd "$_b")/driver_override"
                [ "$_o" = vfio-pci ] && return 0
        done
        return 1
}
# Reload returns when the apply is done (or hostdevd dies): in the background.
reload &
reloader=$!
if kl_wait $CONVERGE first_write; then
        kl_check "F: hostdevd is gone after SIGKILL" kl_hostdevd_kill9
        at_kill=$(for b in $nics "$pf"; do echo "$b driver=$(kl_driver "$b") override=$(override "$b")"; done
                echo "sriov_numvfs=$(cat "$(sysd "$pf")/sriov_numvfs")")
        echo "# SIGKILL after the Reload's first write; at the kill:"
        kl_diag "$at_kill"
        kl_check "F: the SIGKILL came before the apply finished" eval '! { all_on vfio-pci $nics && vfs_ready 2; }'
        t0=$(kl_now)
        if kl_hostdevd_start; then
                if kl_wait $CONVERGE eval 'all_on vfio-pci $nics && all_state converged $nics && vfs_ready 2'; then
                        kl_ok "F: restarted, converged: $(echo $nics) on vfio-pci, 2 VFs on vfio-pci ($(secs_since "$t0") s)"
                else
                        kl_not_ok "F: restarted hostdevd converges" "$(describe $nics "$pf" $(vfs_of))"
                fi
        else
                kl_not_ok "F: hostdevd restarts after SIGKILL"
        fi
else
        kl_not_ok "F: Reload starts an apply (an e1000e override or the PF's sriov_numvfs changes)" \
                "$(describe $nics "$pf")"
fi
wait "$reloader" 2>/dev/null
# No stale override: every function with a driver_override is bound to that
# driver and hostdevd wants it there.
stale=$(for b in $(ls /sys/bus/pci/devices); do
        o=$(override "$b")
        [ -z "$o" ] || [ "$o" = "(null)" ] && continue
        { on "$b" "$o" && [ "$(dev_prop "$b" DesiredDriver)" = "$o" ]; } || describe "$b"
done)
if [ -z "$stale" ]; then kl_ok "F: no function has a stale driver_override"
else kl_not_ok "F: no function has a stale driver_override" "$stale"; fi
bad=$(for b in $(ls /sys/bus/pci/devices); do
        [ "$b" = "$disk" ] || state_is "$b" converged || describe "$b"
done)
if [ -z "$bad" ]; then kl_ok "F: every function but the critical disk controller is converged"
else kl_not_ok "F: every function but the critical disk controller is converged" "$bad"; fi
ship_plan F

# ---- G. the uevent socket filters on this kernel's netlink socket --------------------
# Synthetic uevents (ACTION written to a device's uevent file) seen on a socket with
# each of hostdevd's filters (src/uevent-filter.c) next to one without: kept or dropped.
group=$(ls /sys/devices/virtual/vfio | grep -E '^[0-9]+$' | head -n1)
# filter_check FILTER SYSPATH ACTION passed|dropped
filter_check() {
        _got=$(uevent-filter-check "$1" "$2" "$3" 2>&1)
        if [ "$_got" = "$4" ]; then kl_ok "G: $1 filter: $3 of ${2#/sys} $4"
        else kl_not_ok "G: $1 filter: $3 of ${2#/sys} $4" "got: $_got"; fi
}
if [ -z "$group" ]; then
        kl_not_ok "G: a vfio group exists for the filter checks" "$(ls /sys/devices/virtual/vfio)"
else
        filter_check pci-add-bind "/sys/bus/pci/devices/$nic1" add passed
        filter_check pci-add-bind "/sys/bus/pci/devices/$nic1" bind passed
        filter_check pci-add-bind "/sys/bus/pci/devices/$nic1" change dropped
        filter_check pci-add-bind /sys/devices/virtual/mem/null add dropped
        filter_check pci-add-bind "/sys/devices/virtual/vfio/$group" add dropped
        filter_check no-vfio-groups "/sys/bus/pci/devices/$nic1" change passed
        filter_check no-vfio-groups /sys/devices/virtual/mem/null add passed
        filter_check no-vfio-groups "/sys/devices/virtual/vfio/$group" add dropped
        filter_check no-vfio-groups "/sys/devices/virtual/vfio/$group" change dropped
fi

# ---- H. no rules: everything hostdevd took goes back to its host driver ---------------
rm -f "$CONF"/*.conf
t0=$(kl_now)
back() {
        all_on e1000e $nics && all_on e1000 "$leg1" "$leg2" && on "$pf" nvme && on "$disk" nvme || return 1
        overrides_null $nics "$leg1" "$leg2"
}
if reload && kl_wait $CONVERGE back; then
        kl_ok "H: no rules + Reload: every e1000e and e1000 back on its host driver, overrides (null) ($(secs_since "$t0") s)"
else
        kl_not_ok "H: no rules + Reload: everything back on host drivers" "$(describe $nics "$leg1" "$leg2")"
fi
sriov_back() {
        [ "$(cat "$(sysd "$pf")/sriov_numvfs")" = "$numvfs_before" ] &&
                [ "$(cat "$(sysd "$pf")/sriov_drivers_autoprobe")" = "$autoprobe_before" ] &&
                [ -z "$(vfs_of)" ] && state_is "$pf" converged
}
sriov_now() {
        echo "sriov_numvfs=$(cat "$(sysd "$pf")/sriov_numvfs") (was $numvfs_before)" \
                "sriov_drivers_autoprobe=$(cat "$(sysd "$pf")/sriov_drivers_autoprobe") (was $autoprobe_before)" \
                "VFs: $(echo $(vfs_of))"
}
if kl_wait $CONVERGE sriov_back; then
        kl_ok "H: nvme PF $pf given back: sriov_numvfs=$numvfs_before, sriov_drivers_autoprobe=$autoprobe_before, no VF left"
else
        kl_not_ok "H: nvme PF $pf given back as before hostdevd" "$(sriov_now)" "$(describe "$pf")"
fi
# The PF's settings go back after the NICs: the Manager is converged once both are.
if kl_wait $CONVERGE eval '[ "$(mgr_prop State)" = converged ]'; then
        kl_ok "H: Manager State is converged"
else
        kl_not_ok "H: Manager State is converged" "State=$(mgr_prop State)" "$(describe "$pf" $(vfs_of))"
fi
ship_plan H

# ---- I. removed while hostdevd is stopped: the next start gives it back ---------------
rule 30-nvme.conf "[Match]" "Address=$pf" "" "[SRIOV]" "NumVFs=3" "VFDriver=vfio-pci"
if reload && kl_wait $CONVERGE vfs_ready 3; then
        kl_ok "I: NumVFs=3 VFDriver=vfio-pci converged again"
        kl_check "I: hostdevd stops" kl_hostdevd_stop
        kl_check "I: stopping hostdevd leaves the 3 VFs" [ "$(cat "$(sysd "$pf")/sriov_numvfs")" = 3 ]
        rm -f "$CONF"/30-nvme.conf
        t0=$(kl_now)
        if kl_hostdevd_start && kl_wait $CONVERGE sriov_back; then
                kl_ok "I: rule removed while stopped, started: $pf given back ($(secs_since "$t0") s)"
        else
                kl_not_ok "I: rule removed while stopped, started: $pf given back" "$(sriov_now)" "$(describe "$pf")"
        fi
        kl_check "I: Manager State is converged" eval '[ "$(mgr_prop State)" = converged ]'
else
        kl_not_ok "I: NumVFs=3 VFDriver=vfio-pci converged again" "$(sriov_now)" "$(describe "$pf" $(vfs_of))"
fi
ship_plan I
