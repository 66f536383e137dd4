# Lease benchmark, the guest side (run by tests/bench/lease.sh through
# tests/kernel/run-vm.sh; busybox ash with guest/lib.sh sourced; hostdevd
# started by /init). Everything is timed in one guest, so the ratios compare
# runs on the same emulated machine in the same boot. Per round:
#   exit-hostdevd   a `hostdevctl run --device=E1000E -- COMMAND` lease:
#                   COMMAND exits -> the e1000e bound to e1000e again
#   exit-kernel     the same transition by hand: driver_override cleared,
#                   unbind from vfio-pci, drivers_probe -> e1000e
#   acquire-hostdevd `hostdevctl run` started -> COMMAND runs with the e1000e
#                   on vfio-pci (the process start, the bus call, polkit's
#                   root shortcut, the plan and the executor)
#   acquire-raw     the raw writes: driver_override, unbind, drivers_probe
#                   -> vfio-pci
# Times from /proc/uptime (10 ms resolution: busybox's date has no %N here),
# written in microseconds; the driver link is polled every 1 ms.
# Results: bench.tsv ("NAME<TAB>ROUND<TAB>MICROSECONDS"), shipped.
E1000E="8086 10d3"
ROUNDS=${ROUNDS:-7}
OUT=/tmp/bench.tsv
: > "$OUT"
nic=$(kl_pci_find $E1000E | head -n 1)
dev=/sys/bus/pci/devices/$nic
now_us() {
        read -r up _ < /proc/uptime
        echo $((${up%.*} * 1000000 + $(echo "${up#*.}" | sed 's/^0*//;s/^$/0/') * 10000))
}
drv() { kl_driver "$nic"; }
wait_drv() { while [ "$(drv)" != "$1" ]; do usleep 1000; done; }
record() {
        printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$OUT"
        echo "# $1 round $2: $3 us"
}
mkfifo /tmp/go

for round in $(seq 1 "$ROUNDS"); do
        # hostdevd: acquire -> ready, then owner exit -> host driver
        rm -f /tmp/ready
        t0=$(now_us)
        hostdevctl run --device="$nic" -- sh -c 'cat /proc/uptime > /tmp/ready; read x < /tmp/go' &
        vmm=$!
        while [ ! -s /tmp/ready ]; do usleep 1000; done
        read -r up _ < /tmp/ready
        t1=$((${up%.*} * 1000000 + $(echo "${up#*.}" | sed 's/^0*//;s/^$/0/') * 10000))
        [ "$(drv)" = vfio-pci ] || kl_not_ok "bench: round $round: leased e1000e not on vfio-pci"
        record acquire-hostdevd "$round" $((t1 - t0))
        t0=$(now_us)
        echo go > /tmp/go
        wait_drv e1000e
        t1=$(now_us)
        wait "$vmm"
        record exit-hostdevd "$round" $((t1 - t0))
        # the lease is gone before the next round
        while hostdevctl leases | grep -q "$nic"; do usleep 1000; done

        # the kernel's own: to vfio-pci and back by hand
        t0=$(now_us)
        echo vfio-pci > "$dev/driver_override"
        echo "$nic" > "$dev/driver/unbind"
        echo "$nic" > /sys/bus/pci/drivers_probe
        wait_drv vfio-pci
        t1=$(now_us)
        record acquire-raw "$round" $((t1 - t0))
        t0=$(now_us)
        echo > "$dev/driver_override"
        echo "$nic" > "$dev/driver/unbind"
        echo "$nic" > /sys/bus/pci/drivers_probe
        wait_drv e1000e
        t1=$(now_us)
        record exit-kernel "$round" $((t1 - t0))
done
kl_ship bench.tsv "$OUT"
kl_check "bench: $ROUNDS rounds recorded" test "$(wc -l < "$OUT")" = $((ROUNDS * 4))
