# Kernel lane scenario "demo": the README's main job. hostdevd runs on a real
# kernel and a real system bus; this prints what hostdevctl shows, then
# changes the host by hand (an SR-IOV VF pair, a NIC to vfio-pci, an mtty
# mdev) and prints what hostdevctl shows after each change. A few checks keep
# the demo honest: it fails if hostdevctl shows nothing or misses a change.
NVME="1b36 0010"
E1000E="8086 10d3"

say() { printf '\n### %s\n' "$*"; }
# Print a command's output to the console, and keep its status.
show() { "$@" 2>&1; }

say "hostdevctl list"
show hostdevctl list
n=$(hostdevctl --json list | jq length)
kl_check "demo: hostdevctl lists $n PCI functions" [ "${n:-0}" -gt 5 ]

say "hostdevctl groups"
show hostdevctl groups

pf=$(kl_pci_find $NVME | head -n1)
if [ -n "$pf" ]; then
        say "by hand: 2 VFs on the NVMe PF $pf (sriov_drivers_autoprobe=0 first)"
        echo 0 > "/sys/bus/pci/devices/$pf/sriov_drivers_autoprobe"
        echo 2 > "/sys/bus/pci/devices/$pf/sriov_numvfs"
        kl_wait 5 sh -c "hostdevctl --json show $pf | jq -e '.SriovNumVFs == 2' >/dev/null"
        kl_check "demo: hostdevd sees 2 VFs on $pf" [ $? -eq 0 ]
        show hostdevctl list
fi

nic=$(kl_pci_find $E1000E | head -n1)
if [ -n "$nic" ]; then
        say "by hand: $nic e1000e -> vfio-pci (driver_override, unbind, drivers_probe)"
        echo vfio-pci > "/sys/bus/pci/devices/$nic/driver_override"
        echo "$nic" > "/sys/bus/pci/devices/$nic/driver/unbind"
        echo "$nic" > /sys/bus/pci/drivers_probe
        kl_wait 5 sh -c "hostdevctl --json show $nic | jq -e '.Driver == \"vfio-pci\"' >/dev/null"
        kl_check "demo: hostdevd sees $nic on vfio-pci" [ $? -eq 0 ]
        show hostdevctl show "$nic"
fi

say "hostdevctl mdev types"
show hostdevctl mdev types
type_dir=$(ls -d /sys/class/mdev_bus/*/mdev_supported_types/mtty-2 2>/dev/null | head -n1)
if [ -n "$type_dir" ]; then
        uuid=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001
        say "by hand: an mtty mdev $uuid"
        echo "$uuid" > "$type_dir/create"
        kl_wait 5 sh -c "hostdevctl --json mdev list | jq -e 'map(select(.Uuid == \"$uuid\")) | length == 1' >/dev/null"
        kl_check "demo: hostdevd sees mdev $uuid" [ $? -eq 0 ]
        show hostdevctl mdev list
        show hostdevctl mdev types
fi
