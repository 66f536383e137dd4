# Kernel lane scenario "lease" (issue 15): VMM leases on a real kernel, over
# the guest's real system bus (dbus-daemon --system), hostdevd started by
# /init. Runs in the guest (busybox ash) with guest/lib.sh sourced.
#
# Checks:
#   A  `hostdevctl run --device=E1000E -- sh -c ...`: the command is the
#      lease owner (its pid is hostdevctl's, it finds HOSTDEVD_LEASE in its
#      environment), the e1000e is on vfio-pci, the Lease is active
#   B  SIGKILL of hostdevd during the lease, restart: the lease is adopted
#      (same object, active), the e1000e stays on vfio-pci and the new
#      hostdevd's log has no sysfs write for it
#   C  the owner exits: the e1000e is back on e1000e with driver_override
#      "(null)", no Apply called; the time from the kill to e1000e is printed
#      (the kernel's own e1000e probe is 0.17-0.20 s under TCG)
#   D  acquire --dry-run of an e1000 behind the pcie-pci-bridge alone is
#      refused (its group peer), with --whole-group accepted; nothing changes
E1000E="8086 10d3"
E1000="8086 100e"

nics=$(kl_pci_find $E1000E)
nic=$(echo "$nics" | head -n 1)
legacy=$(kl_pci_find $E1000)
legacy1=$(echo "$legacy" | head -n 1)
echo "# e1000e: $nic; e1000: $(echo $legacy)"
on() { [ "$(kl_driver "$1")" = "$2" ]; }
lease_state() { kl_prop "$1" org.hostdevd1.Lease State; }
lease_active() { [ "$(lease_state "$1")" = active ]; }
out=/run/kernel-lane/vmm.out

# ---- A: hostdevctl run ----------------------------------------------------
rm -f "$out"
mkfifo /run/kernel-lane/vmm.go
hostdevctl run --device="$nic" -- sh -c \
        "echo \$\$ \$HOSTDEVD_LEASE \$HOSTDEVD_LEASE_DEVICES > $out; read x < /run/kernel-lane/vmm.go; exit 0" \
        > /run/kernel-lane/run.log 2>&1 &
vmm=$!
kl_check "A: the command started under its lease" kl_wait 30 test -s "$out"
read -r vpid lease devs < "$out"
kl_diag "vmm pid $vmm: $vpid $lease $devs (A took ${KL_WAITED}s)"
kl_check "A: the command kept hostdevctl's pid ($vmm)" test "$vpid" = "$vmm"
kl_check "A: HOSTDEVD_LEASE_DEVICES is the e1000e" test "$devs" = "$nic"
kl_check "A: the e1000e is on vfio-pci" on "$nic" vfio-pci
kl_check "A: the lease is active" lease_active "$lease"
kl_check "A: its Pid is the command's" test "$(kl_prop "$lease" org.hostdevd1.Lease Pid)" = "$vmm"
kl_check "A: its Command is the command's (sh), not hostdevctl" test "$(kl_prop "$lease" org.hostdevd1.Lease Command)" = sh
hostdevctl leases > /run/kernel-lane/leases.txt 2>&1
kl_ship leases.txt /run/kernel-lane/leases.txt
kl_ship run.log /run/kernel-lane/run.log
kl_diag "$(cat /run/kernel-lane/run.log)"

# ---- B: SIGKILL, restart, adopted with no write ---------------------------
kl_check "B: hostdevd SIGKILLed during the lease" kl_hostdevd_stop KILL
log_lines=$(wc -l < "$KL_HOSTDEVD_LOG")
kl_check "B: hostdevd started again" kl_hostdevd_start
kl_check "B: the lease is adopted (same object, active)" kl_wait 10 lease_active "$lease"
kl_check "B: the e1000e is still on vfio-pci" on "$nic" vfio-pci
tail -n +"$((log_lines + 1))" "$KL_HOSTDEVD_LOG" > /run/kernel-lane/restart.log
kl_check "B: the new hostdevd says it adopted the lease" grep -q "adopted" /run/kernel-lane/restart.log
kl_check "B: ... and wrote nothing for the e1000e" sh -c "! grep -E 'unbind|set-override|drivers_probe' /run/kernel-lane/restart.log | grep -q '$nic'"
kl_ship restart.log /run/kernel-lane/restart.log

# ---- C: the owner exits -> back on e1000e ---------------------------------
t0=$(kl_now)
timeout 10 sh -c 'echo go > /run/kernel-lane/vmm.go' || kill "$vmm"
wait "$vmm"
kl_check "C: the e1000e is back on e1000e" kl_wait 30 on "$nic" e1000e
t1=$(kl_now)
kl_diag "owner exit -> e1000e bound: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s (hostdevd, TCG guest)"
kl_check "C: driver_override is clear" test "$(cat /sys/bus/pci/devices/$nic/driver_override)" = "(null)"
kl_check "C: the lease is gone" kl_wait 10 sh -c "! hostdevctl leases | grep -q '$nic'"

# ---- D: validation on the real IOMMU groups --------------------------------
kl_check "D: an e1000 behind the bridge alone is refused (exit 3)" \
        sh -c "hostdevctl acquire --dry-run $legacy1 > /run/kernel-lane/d.txt 2>&1; test \$? = 3"
kl_diag "$(cat /run/kernel-lane/d.txt)"
kl_check "D: with --whole-group both e1000 could be leased" \
        sh -c "hostdevctl acquire --dry-run --whole-group $legacy1 | grep -q '$(echo $legacy | cut -d' ' -f2)'"
kl_check "D: the e1000 stayed on e1000" on "$legacy1" e1000
