# Kernel lane scenario "observe": hostdevd's observed model agrees with the
# real kernel, and follows changes made behind its back (hotplug, driver
# rebinds by hand, SR-IOV VFs, mdevs). Runs in the guest (busybox ash) with
# guest/lib.sh sourced; observe.check.py compares the sysfs dump on the host.
#
# Devices are found by vendor/device id, never by address (addresses and
# IOMMU group numbers depend on firmware and history):
E1000E="8086 10d3"      # e1000e on its own root port
NVME="1b36 0010"        # QEMU nvme, SR-IOV PF (its VFs have the same ids)
# Limits: hotplug uevents can take a moment under TCG; everything the daemon
# does itself must be quick.
SETTLE=5                # kernel side: device appears / goes in sysfs
SEEN=5                  # how long to wait for hostdevd to show a change (it is
                        # event-driven; the bound is for a loaded build machine)
MONITOR=1               # `hostdevctl monitor` prints a driver change: the requirement

hdc() { hostdevctl --json "$@"; }

# The object path of a BDF as the contract encodes it (0000:41:00.0 ->
# pci_0000_41_00_0), to recognize monitor lines that name paths.
path_of() { echo "pci_$1" | tr ':.' '__'; }

# JSON of one device from `list`, whatever the list's wrapping (array, or an
# object holding one): the object whose Address is $1.
list_dev() {
        hdc list 2>/dev/null | jq -c --arg a "$1" '[.. | objects | select(.Address? == $a)] | first // empty'
}
listed() { [ -n "$(list_dev "$1")" ]; }
not_listed() { hdc list > /tmp/list.json 2>/dev/null && [ -z "$(jq -c --arg a "$1" '.. | objects | select(.Address? == $a)' /tmp/list.json)" ]; }
# show_prop BDF KEY: one property from `show` (raw, as jq -r prints it).
show_prop() { hdc show "$1" 2>/dev/null | jq -r --arg k "$2" '[.. | objects | select(has($k))] | first | .[$k] | if type == "array" then join(",") else . end'; }
prop_is() { [ "$(show_prop "$1" "$2")" = "$3" ]; }
shows() { hdc show "$1" > /dev/null 2>&1; }
not_shows() { ! hdc show "$1" > /dev/null 2>&1; }
# id_is BDF KEY HEX: an id property equals HEX (4 digits), shown as a number
# (D-Bus q) or, leniently, as a hex string.
id_is() {
        _v=$(show_prop "$1" "$2")
        [ "$_v" = "$((0x$3))" ] || [ "$_v" = "0x$3" ] || [ "$_v" = "$3" ]
}
gone() { [ ! -e "/sys/bus/pci/devices/$1" ]; }

# ---- a. the initial model agrees with sysfs (compared on the host) --------
dump=/tmp/sysfs.txt
: > "$dump"
for d in /sys/bus/pci/devices/*; do
        bdf=$(basename "$d")
        for attr in vendor device subsystem_vendor subsystem_device class revision \
                    driver_override sriov_totalvfs sriov_numvfs sriov_drivers_autoprobe numa_node; do
                [ -r "$d/$attr" ] && echo "$bdf $attr $(cat "$d/$attr")" >> "$dump"
        done
        [ -e "$d/iommu_group" ] && echo "$bdf iommu_group $(basename "$(readlink "$d/iommu_group")")" >> "$dump"
        echo "$bdf driver $(kl_driver "$bdf")" >> "$dump"
        [ -e "$d/physfn" ] && echo "$bdf physfn $(basename "$(readlink "$d/physfn")")" >> "$dump"
        for v in "$d"/virtfn*; do
                [ -e "$v" ] && echo "$bdf ${v##*/} $(basename "$(readlink "$v")")" >> "$dump"
        done
        hdc show "$bdf" > "/tmp/show-$bdf.json" 2> "/tmp/show-$bdf.err" ||
                echo "# hostdevctl show $bdf failed: $(cat "/tmp/show-$bdf.err")"
        kl_ship "show-$bdf.json" "/tmp/show-$bdf.json"
done
kl_ship sysfs.txt "$dump"
if hdc list > /tmp/list.json 2> /tmp/list.err; then
        kl_ship list.json /tmp/list.json
else
        kl_not_ok "hostdevctl --json list" "$(cat /tmp/list.err)"
fi
hdc groups > /tmp/groups.json 2>&1 && kl_ship groups.json /tmp/groups.json

# The Manager's view of the host (read over D-Bus directly: hostdevctl has no
# verb for it). No udevd runs in the guest, so uevents come from the kernel.
manager_prop() {
        dbus-send --system --print-reply=literal --dest=org.hostdevd1 /org/hostdevd1 \
                org.freedesktop.DBus.Properties.Get string:org.hostdevd1.Manager "string:$1" 2>&1 |
                sed -E 's/^ *variant +//; s/^(boolean|byte|u?int(16|32|64)|double) //'
}
kl_check "a: Manager EventSource is kernel" [ "$(manager_prop EventSource)" = kernel ]
kl_check "a: Manager IommuEnabled is true" [ "$(manager_prop IommuEnabled)" = true ]
n=$(ls /sys/bus/pci/devices | wc -l)
kl_check "a: Manager DeviceCount is $n" [ "$(manager_prop DeviceCount)" = "$n" ]

# ---- b. hot-add and hot-remove through QMP ---------------------------------
before=$(kl_pci_find $E1000E)
new_e1000e() { for b in $(kl_pci_find $E1000E); do echo "$before" | grep -qx "$b" || echo "$b"; done; }
has_new() { [ -n "$(new_e1000e)" ]; }
if kl_host qmp '{"execute": "device_add", "arguments": {"driver": "e1000e", "id": "hp1", "bus": "rp5", "romfile": ""}}'; then
        if kl_wait $SETTLE has_new; then
                hp=$(new_e1000e)
                echo "# hot-added e1000e is $hp (in sysfs after ${KL_WAITED} s)"
                if kl_wait $SEEN shows "$hp" && kl_wait $SEEN listed "$hp"; then
                        kl_ok "b: hot-added e1000e $hp appears on D-Bus (after ${KL_WAITED} s)"
                else
                        kl_not_ok "b: hot-added e1000e $hp appears on D-Bus" "$(hdc show "$hp" 2>&1)"
                fi
                kl_check "b: hot-added $hp shows VendorId 8086, DeviceId 10d3" \
                        eval 'id_is "$hp" VendorId 8086 && id_is "$hp" DeviceId 10d3'
                if kl_host qmp '{"execute": "device_del", "arguments": {"id": "hp1"}}' &&
                   kl_wait $SETTLE gone "$hp"; then
                        if kl_wait $SEEN not_shows "$hp" && kl_wait $SEEN not_listed "$hp"; then
                                kl_ok "b: hot-removed e1000e $hp disappears from D-Bus (after ${KL_WAITED} s)"
                        else
                                kl_not_ok "b: hot-removed e1000e $hp disappears from D-Bus" "$(hdc show "$hp" 2>&1)"
                        fi
                else
                        kl_not_ok "b: device_del removes $hp from the guest" "$KL_REPLY"
                fi
        else
                kl_not_ok "b: device_add makes a new e1000e in the guest" "no new 8086:10d3 within $SETTLE s"
        fi
else
        kl_not_ok "b: QMP device_add e1000e" "$KL_REPLY"
fi

# ---- c. a driver change by hand shows up in `hostdevctl monitor` -----------
# The monitor's lines are stamped with guest uptime as they arrive, so the
# latency is what the daemon and client took, not how long this script's
# polling (a hostdevctl run costs ~0.25 s under TCG) took to notice.
nic=$(kl_pci_find $E1000E | head -n1)
mon=/tmp/monitor.tsv            # "uptime<TAB>json" per line
mkfifo /tmp/monitor.fifo
hdc monitor > /tmp/monitor.fifo 2> /tmp/monitor.err &
monpid=$!
while IFS= read -r l; do
        read -r up _ < /proc/uptime
        printf '%s\t%s\n' "$up" "$l"
done < /tmp/monitor.fifo > "$mon" &
# Give the monitor time to connect and subscribe before the first change
# (it prints nothing until something changes).
sleep 2
# mon_seen FROM-LINE BDF DRIVER: prints the arrival time of the first monitor
# line after FROM-LINE that names BDF (by address or object path) and carries
# Driver = DRIVER anywhere in its JSON; fails if there is none yet.
mon_seen() {
        tail -n +"$1" "$mon" | while IFS="$(printf '\t')" read -r ts json; do
                case $json in *"$2"* | *"$(path_of "$2")"*) ;; *) continue ;; esac
                if echo "$json" | jq -e --arg d "$3" '[.. | objects | select(has("Driver")) | .Driver] | any(. == $d)' > /dev/null 2>&1; then
                        echo "$ts"
                        return 0
                fi
        done | grep .
}
# check_monitor NAME FROM-LINE BDF DRIVER T-CHANGED: the line arrived at most
# MONITOR s after the change was complete (T-CHANGED).
check_monitor() {
        if kl_wait $SEEN mon_seen "$2" "$3" "$4" > /dev/null; then
                lat=$(awk -v a="$5" -v b="$(mon_seen "$2" "$3" "$4")" 'BEGIN { d = b - a; printf "%.2f", d < 0 ? 0 : d }')
                if awk -v l="$lat" -v m=$MONITOR 'BEGIN { exit !(l <= m) }'; then
                        kl_ok "$1 (after $lat s)"
                else
                        kl_not_ok "$1 within $MONITOR s" "it took $lat s"
                fi
        else
                kl_not_ok "$1" "no such line within $SEEN s; monitor printed: $(tail -n +"$2" "$mon")" \
                        "stderr: $(cat /tmp/monitor.err)"
        fi
}
rebind() { # BDF FROM-DRIVER TO-OVERRIDE: the sequence of safety rule 1 in hostdevd(8), by hand
        echo "$1" > "/sys/bus/pci/drivers/$2/unbind"
        printf '%s\n' "$3" > "/sys/bus/pci/devices/$1/driver_override"
        echo "$1" > /sys/bus/pci/drivers_probe
}
if [ -n "$nic" ] && [ "$(kl_driver "$nic")" = e1000e ]; then
        from=$(($(wc -l < "$mon") + 1))
        t0=$(kl_now)
        rebind "$nic" e1000e vfio-pci
        t1=$(kl_now)
        echo "# $nic e1000e -> $(kl_driver "$nic") took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s in the kernel"
        if [ "$(kl_driver "$nic")" = vfio-pci ]; then
                check_monitor "c: monitor shows $nic e1000e -> vfio-pci" "$from" "$nic" vfio-pci "$t1"
                kl_check "c: show $nic has Driver vfio-pci" kl_wait $SEEN prop_is "$nic" Driver vfio-pci
                group=$(basename "$(readlink "/sys/bus/pci/devices/$nic/iommu_group")")
                kl_check "c: show $nic has VfioGroup /dev/vfio/$group" \
                        kl_wait $SEEN prop_is "$nic" VfioGroup "/dev/vfio/$group"
        else
                kl_not_ok "c: kernel bound $nic to vfio-pci" "driver is '$(kl_driver "$nic")'"
        fi
        from=$(($(wc -l < "$mon") + 1))
        t0=$(kl_now)
        rebind "$nic" vfio-pci ""
        t1=$(kl_now)
        echo "# $nic vfio-pci -> $(kl_driver "$nic") took $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') s in the kernel"
        if [ "$(kl_driver "$nic")" = e1000e ]; then
                check_monitor "c: monitor shows $nic vfio-pci -> e1000e" "$from" "$nic" e1000e "$t1"
                kl_check "c: show $nic has Driver e1000e, DriverOverride \"\"" \
                        kl_wait $SEEN eval 'prop_is "$nic" Driver e1000e && prop_is "$nic" DriverOverride ""'
        else
                kl_not_ok "c: kernel bound $nic back to e1000e" "driver is '$(kl_driver "$nic")'"
        fi
else
        kl_not_ok "c: an e1000e on e1000e to rebind" "found '$nic' with driver '$(kl_driver "$nic")'"
fi
kill "$monpid" 2> /dev/null
kl_ship monitor.tsv "$mon"

# ---- d. SR-IOV VFs created and removed by hand ------------------------------
pf=$(kl_pci_find $NVME | while read -r b; do [ -e "/sys/bus/pci/devices/$b/sriov_totalvfs" ] && echo "$b"; done | head -n1)
if [ -n "$pf" ]; then
        sysd=/sys/bus/pci/devices/$pf
        # QEMU's VFs are offline secondary controllers the nvme driver fails to
        # probe: keep host drivers off them (as hostdevd will for vfio VFs).
        echo 0 > "$sysd/sriov_drivers_autoprobe"
        t0=$(kl_now)
        echo 2 > "$sysd/sriov_numvfs"
        echo "# sriov_numvfs=2 took $(awk -v a="$t0" -v b="$(kl_now)" 'BEGIN { print b - a }') s in the kernel"
        vfs=$(for i in 0 1; do basename "$(readlink "$sysd/virtfn$i")"; done)
        echo "# PF $pf VFs:" $vfs
        kl_check "d: PF $pf shows SriovNumVFs 2" kl_wait $SEEN prop_is "$pf" SriovNumVFs 2
        kl_check "d: PF $pf shows VirtFns" kl_wait $SEEN prop_is "$pf" VirtFns "$(echo $vfs | tr ' ' ',')"
        for vf in $vfs; do
                if kl_wait $SEEN listed "$vf" && prop_is "$vf" PhysFn "$pf"; then
                        kl_ok "d: VF $vf appears with PhysFn $pf (after ${KL_WAITED} s)"
                else
                        kl_not_ok "d: VF $vf appears with PhysFn $pf" "$(hdc show "$vf" 2>&1)"
                fi
                kl_check "d: VF $vf has SriovRole vf" prop_is "$vf" SriovRole vf
        done
        t0=$(kl_now)
        echo 0 > "$sysd/sriov_numvfs"
        echo "# sriov_numvfs=0 took $(awk -v a="$t0" -v b="$(kl_now)" 'BEGIN { print b - a }') s in the kernel"
        for vf in $vfs; do
                if kl_wait $SEEN not_listed "$vf" && not_shows "$vf"; then
                        kl_ok "d: VF $vf disappears (after ${KL_WAITED} s)"
                else
                        kl_not_ok "d: VF $vf disappears" "$(hdc show "$vf" 2>&1)"
                fi
        done
        kl_check "d: PF $pf shows SriovNumVFs 0" kl_wait $SEEN prop_is "$pf" SriovNumVFs 0
        echo 1 > "$sysd/sriov_drivers_autoprobe"
else
        kl_not_ok "d: an nvme SR-IOV PF ($NVME) in the guest"
fi

# ---- e. an mtty mdev created and removed by hand ----------------------------
# Documentation/driver-api/vfio-mediated-device.rst: write a UUID to the
# type's create; remove through the mdev's remove. mtty is not a PCI device:
# its parent is /sys/class/mdev_bus/mtty -> /sys/devices/virtual/mtty/mtty.
# (jq 1.6 -e exits 0 on empty input: check hostdevctl's own status first.)
mdev_has() {
        hdc mdev list > /tmp/mdevs.json 2>/dev/null &&
                jq -e --arg u "$1" '[.. | objects | select(.Uuid? == $u)] | length > 0' /tmp/mdevs.json > /dev/null
}
mdev_gone() { hdc mdev list > /tmp/mdevs.json 2>/dev/null && ! grep -q "$1" /tmp/mdevs.json; }
mdev_field() { hdc mdev list 2>/dev/null | jq -r --arg u "$1" --arg k "$2" '[.. | objects | select(.Uuid? == $u)] | first | .[$k]'; }
create=$(ls /sys/class/mdev_bus/*/mdev_supported_types/mtty-1/create 2>/dev/null | head -n1)
if [ -n "$create" ]; then
        parent=$(echo "$create" | cut -d/ -f5)
        uuid=$(cat /proc/sys/kernel/random/uuid)
        hdc mdev types > /tmp/mdev-types.json 2>&1 && kl_ship mdev-types.json /tmp/mdev-types.json
        if echo "$uuid" > "$create"; then
                if kl_wait $SEEN mdev_has "$uuid"; then
                        kl_ok "e: mdev $uuid appears (after ${KL_WAITED} s)"
                        kl_check "e: mdev $uuid has Type mtty-1" [ "$(mdev_field "$uuid" Type)" = mtty-1 ]
                        kl_check "e: mdev $uuid has Parent $parent" [ "$(mdev_field "$uuid" Parent)" = "$parent" ]
                        hdc mdev list > /tmp/mdev-list.json 2>&1 && kl_ship mdev-list.json /tmp/mdev-list.json
                else
                        kl_not_ok "e: mdev $uuid appears" "$(hdc mdev list 2>&1)"
                fi
                echo 1 > "/sys/bus/mdev/devices/$uuid/remove"
                if kl_wait $SEEN mdev_gone "$uuid"; then
                        kl_ok "e: mdev $uuid disappears (after ${KL_WAITED} s)"
                else
                        kl_not_ok "e: mdev $uuid disappears" "$(hdc mdev list 2>&1)"
                fi
        else
                kl_not_ok "e: kernel created mdev $uuid"
        fi
else
        kl_not_ok "e: mtty's mtty-1 type in /sys/class/mdev_bus" "$(ls -R /sys/class/mdev_bus 2>&1)"
fi
