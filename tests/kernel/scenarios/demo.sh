# Kernel lane scenario "demo": the README's main job. hostdevd runs on a real
# kernel and a real system bus. The demo prints what hostdevctl shows, then
# declares a desired state (a NIC and a two-function IOMMU group to vfio-pci,
# two SR-IOV VFs on vfio-pci), shows the dry run, converges, and prints the
# host after; then a rebind by hand is repaired, and an mdev made by hand is
# shown. The checks keep the demo honest: it fails if hostdevd does not do
# what it shows.
NVME="1b36 0010"        # QEMU nvme with SR-IOV
E1000E="8086 10d3"      # e1000e on its own root port
E1000="8086 100e"       # two e1000 behind a pcie-pci-bridge: one IOMMU group
CONF=/etc/hostdevd/devices.d
CONVERGE=30

say() { printf '\n### %s\n' "$*"; }
state_is() { [ "$(hostdevctl --json status | jq -r .State)" = "$1" ]; }
on() { [ "$(kl_driver "$1")" = "$2" ]; }

say "before: hostdevctl list"
hostdevctl list
n=$(hostdevctl --json list | jq length)
kl_check "demo: hostdevctl lists $n PCI functions" [ "${n:-0}" -gt 5 ]

nic=$(kl_pci_find $E1000E | head -n1)
legacy=$(kl_pci_find $E1000 | head -n1)
pf=$(kl_pci_find $NVME | head -n1)

mkdir -p "$CONF"
cat > "$CONF/10-nic.conf" <<CONFEOF
# This NIC belongs to VMs.
[Match]
Address=$nic
[Device]
Driver=vfio-pci
CONFEOF
cat > "$CONF/20-legacy.conf" <<CONFEOF
# A NIC behind a PCIe-to-PCI bridge: its IOMMU group peer goes along.
[Match]
Address=$legacy
[Device]
Driver=vfio-pci
Group=whole
CONFEOF
cat > "$CONF/30-nvme.conf" <<CONFEOF
# Two VFs on the NVMe PF, for VMs; the host driver never probes them.
[Match]
Address=$pf
[SRIOV]
NumVFs=2
VFDriver=vfio-pci
CONFEOF

say "the desired state: $CONF"
for f in "$CONF"/*.conf; do
        echo "--- $f"
        cat "$f"
done

say "hostdevctl reload: hostdevd reads the files and converges the host"
hostdevctl reload
if kl_wait $CONVERGE state_is converged; then
        kl_ok "demo: hostdevd converged the host (after ${KL_WAITED} s)"
else
        kl_not_ok "demo: hostdevd converged the host within $CONVERGE s" "$(hostdevctl status 2>&1)"
fi

say "after: hostdevctl list"
hostdevctl list
say "after: hostdevctl groups"
hostdevctl groups
say "after: hostdevctl status"
hostdevctl status
say "after: hostdevctl plan (the dry run: nothing left to do)"
hostdevctl plan

kl_check "demo: $nic is on vfio-pci" on "$nic" vfio-pci
for b in $(kl_pci_find $E1000); do
        kl_check "demo: $b (group whole) is on vfio-pci" on "$b" vfio-pci
done
vfs=$(ls -d /sys/bus/pci/devices/$pf/virtfn* 2>/dev/null | wc -l)
kl_check "demo: $pf has 2 VFs" [ "$vfs" -eq 2 ]
for l in /sys/bus/pci/devices/$pf/virtfn*; do
        vf=$(basename "$(readlink "$l")")
        kl_check "demo: VF $vf is on vfio-pci" on "$vf" vfio-pci
done

say "by hand: $nic back to e1000e (as a careless script would); hostdevd repairs it"
echo "$nic" > "/sys/bus/pci/devices/$nic/driver/unbind"
echo > "/sys/bus/pci/devices/$nic/driver_override"
echo "$nic" > /sys/bus/pci/drivers/e1000e/bind 2>/dev/null || echo "$nic" > /sys/bus/pci/drivers_probe
if kl_wait 10 on "$nic" vfio-pci; then
        kl_ok "demo: hostdevd put $nic back on vfio-pci (after ${KL_WAITED} s)"
else
        kl_not_ok "demo: hostdevd put $nic back on vfio-pci" "driver is $(kl_driver "$nic")"
fi
hostdevctl show "$nic" | grep -E 'Driver|State|Vfio'

say "hostdevctl mdev types"
hostdevctl mdev types
type_dir=$(ls -d /sys/class/mdev_bus/*/mdev_supported_types/mtty-2 2>/dev/null | head -n1)
if [ -n "$type_dir" ]; then
        uuid=83b8f4f2-509f-382f-3c1e-e6bfe0fa1001
        say "by hand: an mtty mdev $uuid"
        echo "$uuid" > "$type_dir/create"
        kl_wait 5 sh -c "hostdevctl --json mdev list | jq -e 'map(select(.Uuid == \"$uuid\" and .Type == \"mtty-2\")) | length == 1' >/dev/null"
        kl_check "demo: hostdevd sees mdev $uuid of type mtty-2" [ $? -eq 0 ]
        hostdevctl mdev list
fi
