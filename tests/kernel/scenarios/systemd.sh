# Kernel lane scenario "systemd" (KL_GUEST=debian, systemd.env): hostdevd as
# an operator installs it. guest/debrun.sh has installed the hostdevd and
# hostdevctl packages with dpkg into a Debian 12 root booted with systemd as
# PID 1, with dbus, polkitd and systemd-udevd. Bash, as root.
#   A  the postinst started hostdevd.service under the unit's own hardening:
#      active (READY=1), MainPID alive, `hostdevctl list` has every PCI
#      function with its driver, `busctl tree` an object for each;
#      LogControl1 sets the level; the watchdog is pinged (WatchdogSec=2s by a
#      drop-in, the timestamp moves and the unit stays up);
#      `systemd-analyze security hostdevd` exposure printed, <= 4.0;
#      Manager.EarlyBindThread is sched-fifo under the unit's sandboxing
#   B  D-Bus activation: stopped, a busctl call to org.hostdevd1 starts it
#   C  a desired-state file in /etc/hostdevd/devices.d + `systemctl reload`:
#      the first e1000e converges to vfio-pci
#   D  `systemctl restart`: the binding stays, no unbind/bind uevent for it,
#      the Manager is converged (the new daemon adopted the state)
#   E  real polkit: alice is denied SetDeviceDriver/SetNumVFs/Apply/Reload with
#      org.freedesktop.DBus.Error.AccessDenied and nothing changes; she can
#      read (hostdevctl list, busctl get-property, introspect,
#      GetManagedObjects); a rules.d
#      file grants group hostdevops org.hostdevd1.manage-devices: bob binds
#      the second e1000e, but "allow-critical" (override-critical) and
#      SetNumVFs (manage-sriov) are still denied to him
#   F  journalctl -o json has hostdevd's entries with PCI_ADDR= for the
#      devices it changed
#   H  root's busctl: Reload, Plan, Apply, ListIommuGroups, GetMdevByUuid
#      (unknown: an error), a Device's Driver, SetNumVFs 2 (both VFs on
#      vfio-pci) and 0
#   G  the package's upgrade path (dpkg -i of the same version again)
#      restarts the daemon (a new MainPID) and leaves every binding; purge
#      removes /var/lib/hostdevd and leaves the bindings
BUS=(busctl --system)
MGR=(org.hostdevd1 /org/hostdevd1 org.hostdevd1.Manager)
CONF=/etc/hostdevd/devices.d

nics=($(kl_pci_find 8086 10d3))
nic1=${nics[0]} nic2=${nics[1]}
pf=$(kl_pci_find 1b36 0010 | head -n 1)
echo "# e1000e: ${nics[*]}; nvme PF: $pf"

active() { [ "$(systemctl is-active hostdevd.service)" = active ]; }
inactive() { [ "$(systemctl is-active hostdevd.service)" = inactive ]; }
mainpid() { systemctl show -P MainPID hostdevd.service; }
drv_is() { [ "$(kl_driver "$1")" = "$2" ]; }
# as USER CMD...: run CMD as USER (no privileges, no polkit agent).
as() {
        local u=$1
        shift
        runuser -u "$u" -- "$@"
}
# the Manager's State property, bare
mgr_state() { "${BUS[@]}" get-property "${MGR[@]}" State | awk '{ gsub(/"/, "", $2); print $2 }'; }

# ---- A: started by the postinst, under the unit's hardening ----------------
kl_check "A: the postinst enabled hostdevd.service" systemctl -q is-enabled hostdevd.service
kl_check "A: hostdevd.service is active (Type=notify: READY=1 came)" kl_wait 30 active
pid=$(mainpid)
kl_check "A: MainPID $pid is hostdevd" test "$(cat /proc/$pid/comm 2>/dev/null)" = hostdevd
hostdevctl list > /run/kernel-lane/list.txt 2>&1
kl_ship list.txt /run/kernel-lane/list.txt
nfun=$(ls /sys/bus/pci/devices | wc -l)
hostdevctl --json list | jq -r '.. | objects | select(has("Address") and has("Driver")) | "\(.Address) \(.Driver // "")"' |
        sort -u > /run/kernel-lane/list-drivers.txt
kl_check "A: hostdevctl list has the $nfun PCI functions of sysfs" \
        test "$(cut -d' ' -f1 /run/kernel-lane/list-drivers.txt | sort -u | wc -l)" = "$nfun"
list_ok=1
for d in /sys/bus/pci/devices/*; do
        a=$(basename "$d")
        want=$(kl_driver "$a")
        got=$(awk -v a="$a" '$1 == a { print $2 }' /run/kernel-lane/list-drivers.txt)
        [ "$got" = "$want" ] || { list_ok=0; kl_diag "$a: hostdevctl says driver '$got', sysfs '$want'"; }
done
kl_check "A: every function's driver in hostdevctl list is the bound one" test $list_ok = 1
kl_check "A: busctl tree org.hostdevd1 has an object for each of the $nfun functions" \
        test "$(busctl --system tree --list org.hostdevd1 | grep -c '^/org/hostdevd1/devices/')" = "$nfun"
busctl --system set-property org.hostdevd1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 LogLevel s debug
kl_check "A: LogControl1: LogLevel set to debug" \
        test "$(busctl --system get-property org.hostdevd1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 LogLevel)" = 's "debug"'
busctl --system set-property org.hostdevd1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 LogLevel s info
# CAP_SYS_NICE, RestrictRealtime=no and sched_setscheduler in the unit: the early-bind thread's class.
kl_check "A: the unit lets the early-bind thread run at SCHED_FIFO (Manager.EarlyBindThread)" \
        test "$(busctl --system get-property org.hostdevd1 /org/hostdevd1 org.hostdevd1.Manager EarlyBindThread)" = 's "sched-fifo"'

mkdir -p /run/systemd/system/hostdevd.service.d
printf '[Service]\nWatchdogSec=2s\n' > /run/systemd/system/hostdevd.service.d/50-kl-watchdog.conf
systemctl daemon-reload
systemctl restart hostdevd.service
wd0=$(systemctl show -P WatchdogTimestampMonotonic hostdevd.service)
sleep 5
wd1=$(systemctl show -P WatchdogTimestampMonotonic hostdevd.service)
echo "# watchdog timestamps (monotonic us): $wd0 -> $wd1"
kl_check "A: the watchdog is pinged (WatchdogSec=2s, timestamp moved in 5 s)" test "$wd1" -gt "$wd0"
kl_check "A: still active after 5 s with WatchdogSec=2s" active
rm -r /run/systemd/system/hostdevd.service.d
systemctl daemon-reload

systemd-analyze security --no-pager hostdevd.service > /run/kernel-lane/security.txt 2>&1
kl_ship security.txt /run/kernel-lane/security.txt
exposure=$(sed -n 's/.*Overall exposure level for hostdevd.service: \([0-9.]*\).*/\1/p' /run/kernel-lane/security.txt)
echo "# systemd-analyze security hostdevd.service: $(grep 'Overall exposure level' /run/kernel-lane/security.txt)"
kl_check "A: exposure $exposure <= 4.0" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 4.0) }'

# ---- B: D-Bus activation ---------------------------------------------------
systemctl stop hostdevd.service
kl_check "B: stopped" inactive
"${BUS[@]}" get-property "${MGR[@]}" Version > /run/kernel-lane/activation.txt 2>&1
kl_check "B: a busctl call to org.hostdevd1 answered ($(cat /run/kernel-lane/activation.txt))" \
        grep -q '^s "' /run/kernel-lane/activation.txt
kl_check "B: ... and started hostdevd.service" active

# ---- C: desired state in /etc + systemctl reload ---------------------------
mkdir -p "$CONF"
printf '%s\n' "[Match]" "Address=$nic1" "" "[Device]" "Driver=vfio-pci" > "$CONF/50-nic.conf"
systemctl reload hostdevd.service
kl_check "C: systemctl reload: $nic1 converged to vfio-pci" kl_wait 30 drv_is "$nic1" vfio-pci
kl_check "C: the Manager is converged" kl_wait 10 test "$(mgr_state)" = converged

# ---- D: restart keeps and adopts -------------------------------------------
udevadm monitor --kernel --subsystem-match=pci > /run/kernel-lane/uevents-restart.txt 2>&1 &
mon=$!
sleep 1
pid0=$(mainpid)
systemctl restart hostdevd.service
kl_wait 30 active
sleep 2
kill $mon
wait $mon 2>/dev/null
kl_check "D: restarted (MainPID $pid0 -> $(mainpid))" test "$(mainpid)" != "$pid0"
kl_check "D: $nic1 still on vfio-pci" drv_is "$nic1" vfio-pci
kl_check "D: no unbind/bind of $nic1 across the restart" \
        bash -c "! grep -E '(unbind|bind).*$nic1' /run/kernel-lane/uevents-restart.txt"
kl_check "D: the Manager is converged after the restart" kl_wait 10 test "$(mgr_state)" = converged

# ---- E: real polkit ---------------------------------------------------------
denied() { # NAME CMD...: the call fails with AccessDenied
        local name=$1 out
        shift
        out=$("$@" 2>&1) && { kl_not_ok "$name" "succeeded: $out"; return; }
        case $out in
        # busctl prints the error's text; hostdevctl says "not authorized"
        *"Access denied"* | *AccessDenied* | *"not authorized"*) kl_ok "$name" ;;
        *) kl_not_ok "$name" "failed otherwise: $out" ;;
        esac
}
NOAUTH=(busctl --system --allow-interactive-authorization=no)
denied "E: alice: SetDeviceDriver denied" \
        as alice "${NOAUTH[@]}" call "${MGR[@]}" SetDeviceDriver ssas "$nic2" vfio-pci 0
denied "E: alice: SetNumVFs denied" \
        as alice "${NOAUTH[@]}" call "${MGR[@]}" SetNumVFs susas "$pf" 2 vfio-pci 0
denied "E: alice: Apply denied" as alice "${NOAUTH[@]}" call "${MGR[@]}" Apply
denied "E: alice: Reload denied" as alice "${NOAUTH[@]}" call "${MGR[@]}" Reload
denied "E: alice: hostdevctl bind denied" as alice hostdevctl --no-ask-password bind "$nic2" vfio-pci
sleep 1
kl_check "E: nothing changed: $nic2 on e1000e, $pf without VFs" \
        bash -c "[ \"\$(basename \$(readlink /sys/bus/pci/devices/$nic2/driver))\" = e1000e ] && [ \"\$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)\" = 0 ]"
kl_check "E: alice reads: hostdevctl list" as alice hostdevctl list
kl_check "E: alice reads: busctl get-property DeviceCount" as alice "${BUS[@]}" get-property "${MGR[@]}" DeviceCount
kl_check "E: alice reads: busctl introspect" as alice "${BUS[@]}" introspect org.hostdevd1 /org/hostdevd1
kl_check "E: alice reads: GetDeviceByAddress" as alice "${BUS[@]}" call "${MGR[@]}" GetDeviceByAddress s "$nic2"
nobj=$(as alice "${BUS[@]}" call org.hostdevd1 /org/hostdevd1 org.freedesktop.DBus.ObjectManager GetManagedObjects | awk '{ print $2 }')
kl_check "E: alice reads: GetManagedObjects ($nobj objects, $nfun functions)" test "${nobj:-0}" -ge "$nfun"

mkdir -p /etc/polkit-1/rules.d
cat > /etc/polkit-1/rules.d/50-hostdevops.rules <<'EOR'
polkit.addRule(function(action, subject) {
    if (action.id == "org.hostdevd1.manage-devices" && subject.isInGroup("hostdevops"))
        return polkit.Result.YES;
});
EOR
sleep 2 # polkitd re-reads rules.d on change
denied "E: alice still denied after the rule" \
        as alice "${NOAUTH[@]}" call "${MGR[@]}" SetDeviceDriver ssas "$nic2" vfio-pci 0
kl_check "E: bob (hostdevops): SetDeviceDriver $nic2 vfio-pci" \
        as bob "${NOAUTH[@]}" call "${MGR[@]}" SetDeviceDriver ssas "$nic2" vfio-pci 0
kl_check "E: bob: $nic2 on vfio-pci" kl_wait 30 drv_is "$nic2" vfio-pci
denied "E: bob: allow-critical still denied (override-critical)" \
        as bob "${NOAUTH[@]}" call "${MGR[@]}" SetDeviceDriver ssas "$nic2" vfio-pci 1 allow-critical
denied "E: bob: SetNumVFs still denied (manage-sriov)" \
        as bob "${NOAUTH[@]}" call "${MGR[@]}" SetNumVFs susas "$pf" 2 vfio-pci 0
kl_check "E: bob: ResetDeviceDriver $nic2" as bob "${NOAUTH[@]}" call "${MGR[@]}" ResetDeviceDriver s "$nic2"
kl_check "E: $nic2 back on e1000e" kl_wait 30 drv_is "$nic2" e1000e

# ---- F: the journal's structured fields ------------------------------------
journalctl -u hostdevd.service -o json --no-pager > /run/kernel-lane/journal-hostdevd.json
kl_ship journal-hostdevd.json /run/kernel-lane/journal-hostdevd.json
for a in "$nic1" "$nic2"; do
        kl_check "F: journalctl -o json: hostdevd entries with PCI_ADDR=$a" \
                test "$(jq -r --arg a "$a" 'select(.PCI_ADDR == $a) | .MESSAGE' /run/kernel-lane/journal-hostdevd.json | wc -l)" -gt 0
done

# ---- H: root's busctl, every Manager method ---------------------------------
call() { "${BUS[@]}" call "${MGR[@]}" "$@"; }
kl_check "H: busctl call Reload" call Reload
kl_check "H: busctl call Plan" call Plan
kl_check "H: busctl call Apply (answers a state)" bash -c "busctl --system call org.hostdevd1 /org/hostdevd1 org.hostdevd1.Manager Apply | grep -q '^s \"'"
kl_check "H: busctl call ListIommuGroups (one per group of sysfs)" \
        test "$(call ListIommuGroups | awk '{ print $2 }')" = "$(ls /sys/kernel/iommu_groups | wc -l)"
if out=$(call GetMdevByUuid s 0b1c2d3e-0000-4000-8000-000000000000 2>&1); then
        kl_not_ok "H: GetMdevByUuid of an unknown uuid fails" "it answered: $out"
else
        kl_ok "H: GetMdevByUuid of an unknown uuid fails ($out)"
fi
dev=$(call GetDeviceByAddress s "$nic1" | awk '{ gsub(/"/, "", $2); print $2 }')
kl_check "H: Device $dev Driver is vfio-pci" \
        test "$("${BUS[@]}" get-property org.hostdevd1 "$dev" org.hostdevd1.Device Driver)" = 's "vfio-pci"'
kl_check "H: SetNumVFs $pf 2 vfio-pci" call SetNumVFs susas "$pf" 2 vfio-pci 0
kl_check "H: $pf has 2 VFs" kl_wait 30 test "$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)" = 2
vfs_ok() {
        local v n=0
        for v in /sys/bus/pci/devices/$pf/virtfn*; do
                [ "$(kl_driver "$(basename "$(readlink "$v")")")" = vfio-pci ] || return 1
                n=$((n + 1))
        done
        [ $n = 2 ]
}
kl_check "H: both VFs on vfio-pci" kl_wait 30 vfs_ok
kl_check "H: SetNumVFs $pf 0" call SetNumVFs susas "$pf" 0 "" 0
kl_check "H: $pf has no VF" kl_wait 30 test "$(cat /sys/bus/pci/devices/$pf/sriov_numvfs)" = 0

# ---- G: upgrade and purge ---------------------------------------------------
pid0=$(mainpid)
kl_check "G: dpkg -i hostdevd again (the upgrade path)" \
        bash -c 'dpkg -i /kernel-lane/debs/hostdevd_*.deb > /run/kernel-lane/dpkg-upgrade.txt 2>&1'
kl_check "G: the postinst restarted hostdevd (MainPID $pid0 -> $(mainpid))" \
        bash -c "[ \"\$(systemctl show -P MainPID hostdevd.service)\" != $pid0 ] && systemctl -q is-active hostdevd.service"
kl_check "G: $nic1 still on vfio-pci after the upgrade" drv_is "$nic1" vfio-pci
kl_check "G: state exists before purge" test -d /var/lib/hostdevd
kl_check "G: dpkg --purge hostdevd" bash -c 'dpkg --purge hostdevd > /run/kernel-lane/dpkg-purge.txt 2>&1'
kl_check "G: purge removed /var/lib/hostdevd" test ! -e /var/lib/hostdevd
kl_check "G: purge left $nic1 on vfio-pci" drv_is "$nic1" vfio-pci
kl_check "G: hostdevd is gone" inactive
