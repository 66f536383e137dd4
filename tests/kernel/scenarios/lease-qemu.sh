# Kernel lane scenario "lease-qemu" (issue 15): the QEMU arguments a lease
# hands out start a real QEMU inside the guest that passes the leased e1000e
# through with vfio-pci. Busybox guest, root, hostdevd started by /init; this
# machine's qemu-system-x86_64 rides along (lease-qemu.env). The nested QEMU
# runs TCG inside the TCG guest: a q35 machine with 64 MiB, no default
# devices, the lease's arguments, QMP on its stdin/stdout.
#   A  `hostdevctl run --device=E1000E -- sh vmm.sh`: the script takes
#      `hostdevctl handoff $HOSTDEVD_LEASE --format qemu` (a pcie-root-port
#      and a vfio-pci,host=E1000E behind it) and execs QEMU with them and -S,
#      so QEMU is the lease's owner (the same pid)
#   B  stopped at -S, before any guest code runs: QEMU accepted the
#      arguments (its QMP greeting came, status prelaunch), the vfio-pci
#      device is realized (qom-get realized), `info qtree` has it on the
#      lease's root port with the e1000e's id 8086:10d3 and host=E1000E, and
#      the QEMU process holds the group node and /dev/vfio/vfio open (realize
#      opened the group, set up the container and mapped guest RAM); the
#      lease's Pid is QEMU's and its Command qemu-system-x86
#   C  `cont`: SeaBIOS numbers the buses; query-pci polled until the
#      e1000e (vendor 0x8086, device 0x10d3, the vfio-pci device's qdev id)
#      shows behind the lease's root port, for at most NESTED_BOOT_S seconds;
#      then until the firmware has mapped its BAR0 (an address, the host
#      BAR0's size); the times are printed
#   D  QMP quit: QEMU exits, the lease ends, the e1000e is back on e1000e with
#      driver_override cleared (the time from QEMU's exit is printed)
RUN=/run/kernel-lane
nic=$(kl_pci_find 8086 10d3 | head -n 1)
echo "# e1000e: $nic; $(qemu-system-x86_64 --version | head -n 1)"
on() { [ "$(kl_driver "$1")" = "$2" ]; }

# The VMM: the lease's QEMU arguments, then QEMU in its place.
cat > "$RUN/vmm.sh" <<EOF
hostdevctl handoff "\$HOSTDEVD_LEASE" --format qemu > $RUN/qemu-args.txt || exit 90
echo "\$\$ \$HOSTDEVD_LEASE" > $RUN/vmm.info
exec qemu-system-x86_64 -accel tcg,tb-size=32 -machine q35 -m 64 -smp 1 \\
        -nodefaults -no-user-config -display none -S \\
        -chardev stdio,id=qmp -mon chardev=qmp,mode=control \\
        \$(sed 's/ \\\\\$//' $RUN/qemu-args.txt)
EOF
rm -f "$RUN/qmp.in" "$RUN/qmp.out"
mkfifo "$RUN/qmp.in"
hostdevctl run --device="$nic" -- sh "$RUN/vmm.sh" < "$RUN/qmp.in" > "$RUN/qmp.out" 2> "$RUN/qemu.err" &
vmm=$!
exec 7> "$RUN/qmp.in"

# qmp ID JSON-COMMAND: send it with "id": ID; reply ID: its answer line, once complete.
qmp() { echo "{\"execute\": \"$2\"${3:+, \"arguments\": $3}, \"id\": \"$1\"}" >&7; }
reply() { grep -F "\"id\": \"$1\"}" "$RUN/qmp.out" | head -n 1; }
has_reply() { [ -n "$(reply "$1")" ]; }
greeted_or_dead() { grep -q '"QMP"' "$RUN/qmp.out" || ! kill -0 "$vmm" 2>/dev/null; }

# ---- A: the lease and its arguments -----------------------------------------
kl_wait 60 greeted_or_dead
kl_diag "QEMU arguments of the lease: $(cat "$RUN/qemu-args.txt" 2>/dev/null)"
kl_check "A: QEMU started from the lease's arguments and greeted on QMP (${KL_WAITED}s)" grep -q '"QMP"' "$RUN/qmp.out"
[ -s "$RUN/qemu.err" ] && kl_diag "QEMU's stderr: $(cat "$RUN/qemu.err")"
read -r vpid lease < "$RUN/vmm.info"
kl_check "A: the arguments have a pcie-root-port" grep -q 'pcie-root-port,id=hostdevd-rp1' "$RUN/qemu-args.txt"
kl_check "A: the arguments have vfio-pci,host=$nic" grep -q "vfio-pci,host=$nic" "$RUN/qemu-args.txt"
dev=$(sed -n "s/.*vfio-pci,host=$nic,id=\([^,]*\),bus=\([^,]*\).*/\1/p" "$RUN/qemu-args.txt")
port=$(sed -n "s/.*vfio-pci,host=$nic,id=[^,]*,bus=\([^,]*\).*/\1/p" "$RUN/qemu-args.txt")
kl_diag "vfio-pci device $dev on $port; QEMU pid $vpid, lease $lease"
kl_check "A: QEMU is the lease's owner (pid $vmm)" test "$vpid" = "$vmm"
kl_check "A: $nic is on vfio-pci" on "$nic" vfio-pci

# ---- B: at -S, the device realized ------------------------------------------
qmp caps qmp_capabilities
qmp status query-status
qmp realized qom-get "{\"path\": \"/machine/peripheral/$dev\", \"property\": \"realized\"}"
qmp qtree human-monitor-command '{"command-line": "info qtree"}'
kl_check "B: QMP answered (qmp_capabilities, query-status, qom-get, info qtree)" kl_wait 60 has_reply qtree
kl_diag "query-status: $(reply status)"
kl_check "B: stopped before any guest code (status prelaunch)" sh -c "echo '$(reply status)' | jq -e '.return.status == \"prelaunch\" and .return.running == false' > /dev/null"
kl_check "B: $dev is realized" sh -c "echo '$(reply realized)' | jq -e '.return == true' > /dev/null"
reply qtree | jq -r '.return' > "$RUN/qtree.txt"
kl_ship qtree.txt "$RUN/qtree.txt"
# The vfio-pci block under the root port's bus: its host= and pci id lines.
awk -v port="$port" -v dev="$dev" '
        $1 == "bus:" && $2 == port { inport = 1; next }
        inport && $1 == "dev:" { indev = ($0 ~ "vfio-pci, id \"" dev "\""); if (!indev && found) exit; next }
        indev { print; found = 1 }' "$RUN/qtree.txt" > "$RUN/qtree-dev.txt"
kl_diag "info qtree, $dev: $(grep -E 'host =|pci id' "$RUN/qtree-dev.txt")"
kl_check "B: info qtree: $dev on bus $port, host = $nic" grep -q "host = \"$nic\"" "$RUN/qtree-dev.txt"
kl_check "B: info qtree: $dev has pci id 8086:10d3 (read from the e1000e through VFIO)" grep -q 'pci id 8086:10d3' "$RUN/qtree-dev.txt"
group=/dev/vfio/$(basename "$(readlink "/sys/bus/pci/devices/$nic/iommu_group")")
fds=$(for f in /proc/$vmm/fd/*; do readlink "$f"; done)
kl_check "B: QEMU holds $group open" sh -c "echo '$fds' | grep -qx '$group'"
kl_check "B: QEMU holds /dev/vfio/vfio (the container) open" sh -c "echo '$fds' | grep -qx /dev/vfio/vfio"
kl_check "B: the lease's Pid is QEMU's" test "$(kl_prop "$lease" org.hostdevd1.Lease Pid)" = "$vmm"
kl_check "B: the lease's Command is qemu-system-x86" test "$(kl_prop "$lease" org.hostdevd1.Lease Command)" = qemu-system-x86

# ---- C: the firmware numbers the buses: query-pci sees the e1000e -----------
# query-pci lists a bridge's devices once its secondary bus number is set.
# The e1000e behind the lease's root port: vendor 0x8086 (32902), device 0x10d3 (4307).
seen_behind_port() {
        i=$((i + 1))
        qmp "pci$i" query-pci
        kl_wait 20 has_reply "pci$i" || return 1
        reply "pci$i" | jq -e --arg port "$port" --arg dev "$dev" '
                [.return[].devices[] | select(.qdev_id == $port) | .pci_bridge.devices[]?
                 | select(.id.vendor == 32902 and .id.device == 4307 and .qdev_id == $dev)] | length == 1' > /dev/null
}
# Then the firmware assigns the BARs and enables memory decoding: BAR0 gets
# an address (query-pci says -1 while it is unmapped) and has the size of the
# host function's BAR0 (sysfs resource, first line: start end flags).
bar0_mapped() {
        i=$((i + 1))
        qmp "pci$i" query-pci
        kl_wait 20 has_reply "pci$i" || return 1
        reply "pci$i" | jq -e --arg dev "$dev" --argjson size "$host_bar0" '
                [.. | objects | select(.qdev_id? == $dev) | .regions[] | select(.bar == 0)
                 | select(.address >= 0 and .size == $size)] | length == 1' > /dev/null
}
set -- $(head -n 1 "/sys/bus/pci/devices/$nic/resource")
host_bar0=$(($2 - $1 + 1))
i=0
t0=$(kl_now)
qmp cont cont
if kl_wait "${NESTED_BOOT_S:-90}" seen_behind_port; then
        kl_ok "C: query-pci: 8086:10d3 ($dev) behind $port, $(awk -v a="$t0" -v b="$(kl_now)" 'BEGIN { printf "%.1f", b - a }') s after cont"
        if kl_wait "${NESTED_BOOT_S:-90}" bar0_mapped; then
                kl_ok "C: the firmware mapped $dev's BAR0 ($host_bar0 bytes, as the host's), $(awk -v a="$t0" -v b="$(kl_now)" 'BEGIN { printf "%.1f", b - a }') s after cont"
        else
                kl_not_ok "C: the firmware mapped $dev's BAR0 ($host_bar0 bytes) within ${NESTED_BOOT_S:-90} s"
        fi
else
        kl_not_ok "C: query-pci: 8086:10d3 ($dev) behind $port within ${NESTED_BOOT_S:-90} s of cont" \
                "the last answer: $(reply "pci$i" | head -c 2000)"
fi
reply "pci$i" > "$RUN/query-pci.json"
kl_diag "$dev in query-pci: $(jq -c --arg dev "$dev" '.. | objects | select(.qdev_id? == $dev) | {id, regions}' "$RUN/query-pci.json")"
kl_ship query-pci.json "$RUN/query-pci.json"

# ---- D: quit: the lease ends with QEMU --------------------------------------
qmp quit quit
exec 7>&-
wait "$vmm"
rc=$?
t_exit=$(kl_now)
kl_ship qmp.out "$RUN/qmp.out"
kl_ship qemu.err "$RUN/qemu.err"
kl_check "D: QEMU quit (status $rc)" test "$rc" = 0
kl_check "D: $nic is back on e1000e" kl_wait 30 on "$nic" e1000e
kl_diag "QEMU exit -> $nic bound to e1000e: $(awk -v a="$t_exit" -v b="$(kl_now)" 'BEGIN { printf "%.2f", b - a }') s (TCG guest, 20 ms polling)"
kl_check "D: driver_override is clear" test "$(cat /sys/bus/pci/devices/$nic/driver_override)" = "(null)"
kl_check "D: the lease is gone" kl_wait 10 sh -c "! hostdevctl leases | grep -q '$nic'"
