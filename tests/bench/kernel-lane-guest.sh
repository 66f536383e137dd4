# Kernel lane benchmark, the guest side (run by tests/bench/kernel-lane.sh
# through tests/kernel/run-vm.sh; busybox ash with guest/lib.sh sourced).
# Everything is timed inside the one guest, so the ratios compare runs on
# the same (emulated) machine in the same boot:
#
#   converge   the e1000e of a set + the nvme PF's 4 VFs (sriov_drivers_autoprobe
#              0, sriov_numvfs 4) to vfio-pci, for two sets: the base
#              machine's 2 e1000e ("converge-*", 6 functions) and every
#              e1000e, with the extra ones kernel-lane.sh --nics adds
#              ("convergeN-*", N functions):
#              hostdevd:  SIGHUP after the files changed -> every function
#                         bound (raw-bind converge-wait checks on every uevent)
#              raw:       raw-bind bind, the same sysfs writes in a C loop
#              driverctl: Debian's driverctl set-override per function (the
#                         VFs made with echo, driverctl has no SR-IOV)
#              sriov:     raw-bind sriov, the sriov_numvfs write alone (once, not per
#                         set: "converge-sriov"), what no tool can shorten
#   hotplug    QMP device_add of an e1000e -> bound to vfio-pci, from the
#              "add" uevent to the "bind" uevent with DRIVER=vfio-pci
#              (raw-bind watch): hostdevd with a Vendor/Device rule vs the
#              raw monitor-and-bind loop (raw-bind monitor), alone and with
#              hostdevd observing (raw-observed), and the same loop with the
#              steps issue 3 requires before a bind (raw-bind monitor-safe:
#              driver check, IOMMU group check, ownership record, worker with
#              a deadline) as "raw-safe", and that with libudev parsing the
#              uevents (raw-bind monitor-safe-udev) as "raw-safe-udev".
#   race       issue 13, the hotplug rounds that matter on a busy build
#              machine (kernel-lane.sh --load): hostdevd with the rule
#              ("race-hostdevd"; its early-bind thread at SCHED_FIFO 1) and
#              the raw monitor-and-bind loop at the same class
#              ("race-raw-fifo", raw-bind monitor-fifo) and as a normal
#              process ("race-raw"), HOTPLUG_ROUNDS each; and (HOTPLUG_ROUNDS / 6 + 1
#              rounds each) a hot-added
#              e1000e that no rule claims, add -> bound to e1000e, with
#              hostdevd running ("unclaimed-hostdevd") and without it, the
#              kernel's own probe alone ("unclaimed-kernel").
#
# Every hotplug round of a claimed function also records whether the host
# driver (e1000e) probed the new function before it was bound where it belongs: a kernel log line
# "e1000e BDF: ..." (dev_printk's prefix while e1000e's probe runs) since
# the round began. One "NAME<TAB>ROUND<TAB>0|1" line each in hostfirst.tsv.
#
# Results: one "NAME<TAB>ROUND<TAB>MICROSECONDS" line each in bench.tsv
# (shipped), and on the console. One extra round of hostdevd and of the raw
# loop, for each measure, runs under `raw-bind trace`: trace-*.txt, every PCI
# uevent with its time, to see where the time goes.
E1000E="8086 10d3"
NVME="1b36 0010"
ROUNDS=5
# kernel-lane.sh --rounds passes HOTPLUG_ROUNDS.
HOTPLUG_ROUNDS=${HOTPLUG_ROUNDS:-9}
CONF=/etc/hostdevd/devices.d
OUT=/tmp/bench.tsv
HOSTFIRST=/tmp/hostfirst.tsv
: > "$OUT"
: > "$HOSTFIRST"
mkdir -p "$CONF"

set -- $(kl_pci_find $E1000E)
nic1=${1:-} nic2=${2:-}
all_nics="$*"
pf=$(kl_pci_find $NVME | while read -r b; do [ -e "/sys/bus/pci/devices/$b/sriov_totalvfs" ] && echo "$b"; done | head -n1)
if [ -z "$nic2" ] || [ -z "$pf" ] || [ ! -x /usr/bin/raw-bind ]; then
        kl_not_ok "bench: 2 e1000e, an nvme PF and /usr/bin/raw-bind" "nics '$nic1' '$nic2', pf '$pf'"
        exit 1
fi
echo "# e1000e $all_nics, nvme PF $pf"

record() {
        printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$OUT"
        echo "# $1 round $2: $3 us"
}
on() { [ "$(kl_driver "$1")" = "$2" ]; }
numvfs() { cat "/sys/bus/pci/devices/$pf/sriov_numvfs"; }
# The set of e1000e the converge measures take (set_nics), as "$@" of these.
NICS=
host_state() {
        [ "$(numvfs)" = 0 ] || return 1
        for b in $NICS; do
                on "$b" e1000e && [ "$(cat "/sys/bus/pci/devices/$b/driver_override")" = "(null)" ] || return 1
        done
}
describe() {
        for b in $NICS "$pf"; do
                echo "$b driver=$(kl_driver "$b") override=$(cat "/sys/bus/pci/devices/$b/driver_override")"
        done
        echo "sriov_numvfs=$(numvfs)"
}
# rules NIC-DRIVER NUMVFS [VFDRIVER]: one file per e1000e of the set (by address), one for the PF.
rules() {
        rm -f "$CONF"/50-bench-nic*.conf
        i=0
        for b in $NICS; do
                i=$((i + 1))
                printf '[Match]\nAddress=%s\n\n[Device]\nDriver=%s\n' "$b" "$1" > "$CONF/50-bench-nic$i.conf"
        done
        printf '[Match]\nAddress=%s\n\n[SRIOV]\nNumVFs=%s\n%s' "$pf" "$2" "${3:+VFDriver=$3
}" > "$CONF/51-bench-nvme.conf"
}

# trace_start NAME / trace_stop NAME: every PCI uevent with its time, while
# one extra (unrecorded) round runs, shipped as trace-NAME.txt; the timed
# program's "t0" line (stderr) goes in too.
trace_start() {
        rm -f /run/raw-bind.ready "/tmp/t0-$1.txt"
        raw-bind trace > "/tmp/trace-$1.txt" &
        tracer=$!
        kl_wait 5 test -e /run/raw-bind.ready
}
trace_stop() {
        sleep 0.5
        kill "$tracer"
        wait "$tracer" 2> /dev/null
        cat "/tmp/t0-$1.txt" >> "/tmp/trace-$1.txt" 2> /dev/null
        kl_ship "trace-$1.txt" "/tmp/trace-$1.txt"
}

# converge_hostdevd NAME: hostdevd's rounds on the set (started and stopped here).
converge_hostdevd() {
        rules host 0
        if kl_hostdevd_start && kl_wait 30 host_state; then
                for i in $(seq 1 $ROUNDS); do
                        rules vfio-pci 4 vfio-pci
                        # shellcheck disable=SC2086 # the set, one argument each
                        if ! us=$(raw-bind converge-wait "$KL_HOSTDEVD_PID" vfio-pci "$pf" 4 $NICS); then
                                kl_not_ok "bench: hostdevd converges round $i ($1)" "$(describe)" "$(tail -n 5 "$KL_HOSTDEVD_LOG")"
                                break
                        fi
                        record "$1-hostdevd" "$i" "$us"
                        rules host 0
                        kill -HUP "$KL_HOSTDEVD_PID"
                        if ! kl_wait 60 host_state; then
                                kl_not_ok "bench: hostdevd returns to the host drivers, round $i ($1)" "$(describe)"
                                break
                        fi
                done
                if [ "$1" = converge ]; then
                        rules vfio-pci 4 vfio-pci
                        trace_start converge-hostdevd
                        # shellcheck disable=SC2086
                        raw-bind converge-wait "$KL_HOSTDEVD_PID" vfio-pci "$pf" 4 $NICS > /dev/null 2> /tmp/t0-converge-hostdevd.txt
                        trace_stop converge-hostdevd
                        rules host 0
                        kill -HUP "$KL_HOSTDEVD_PID"
                        kl_wait 60 host_state
                fi
        else
                kl_not_ok "bench: hostdevd starts on the host drivers ($1)" "$(describe)"
        fi
        rm -f "$CONF"/*.conf
        kill -HUP "$KL_HOSTDEVD_PID"
        sleep 1
        # Whatever the daemon left: back to the host drivers for the next contender.
        # shellcheck disable=SC2086
        raw-bind reset "$pf" $NICS
        kl_wait 10 host_state || kl_not_ok "bench: reset to host drivers ($1)" "$(describe)"
}

# raw_rounds NAME: the C loop, ROUNDS times.
raw_rounds() {
        for i in $(seq 1 $ROUNDS); do
                # shellcheck disable=SC2086
                if ! us=$(raw-bind bind vfio-pci "$pf" 4 $NICS); then
                        kl_not_ok "bench: raw-bind bind round $i ($1)" "$(describe)"
                        break
                fi
                record "$1" "$i" "$us"
                # shellcheck disable=SC2086
                raw-bind reset "$pf" $NICS
                kl_wait 10 host_state || { kl_not_ok "bench: raw reset round $i ($1)" "$(describe)"; break; }
        done
}

all_vfio() {
        [ "$(numvfs)" = 4 ] || return 1
        for b in $NICS; do on "$b" vfio-pci || return 1; done
        for v in /sys/bus/pci/devices/"$pf"/virtfn*; do on "$(basename "$(readlink "$v")")" vfio-pci || return 1; done
}
# driverctl_rounds NAME
driverctl_rounds() {
        if [ ! -x /usr/sbin/driverctl ] || [ ! -x /usr/bin/bash ]; then
                echo "# driverctl or bash not in the guest: driverctl skipped ($1)"
                return 0
        fi
        # driverctl runs /sbin/modprobe when /sys/module/<driver> is missing
        # (it looks for vfio-pci, the module directory is vfio_pci).
        [ -e /usr/sbin/modprobe ] || ln -s /usr/bin/busybox /usr/sbin/modprobe
        cat > /tmp/driverctl-converge.sh <<'EOT'
pf=$1
shift
echo 0 > "/sys/bus/pci/devices/$pf/sriov_drivers_autoprobe"
echo 4 > "/sys/bus/pci/devices/$pf/sriov_numvfs"
for v in /sys/bus/pci/devices/"$pf"/virtfn*; do
        set -- "$@" "$(basename "$(readlink "$v")")"
done
for d in "$@"; do
        driverctl set-override "$d" vfio-pci || exit 1
done
EOT
        for i in $(seq 1 $ROUNDS); do
                # shellcheck disable=SC2086
                if ! us=$(raw-bind time /usr/bin/bash /tmp/driverctl-converge.sh "$pf" $NICS) || ! all_vfio; then
                        kl_not_ok "bench: driverctl converges round $i ($1)" "$(describe)"
                        break
                fi
                record "$1" "$i" "$us"
                rm -rf /etc/driverctl.d
                # shellcheck disable=SC2086
                raw-bind reset "$pf" $NICS
                kl_wait 10 host_state || { kl_not_ok "bench: driverctl reset round $i ($1)" "$(describe)"; break; }
        done
}

# sriov_rounds NAME: the sriov_numvfs write alone (autoprobe 0, 0 -> 4 VFs), ROUNDS times.
sriov_rounds() {
        for i in $(seq 1 $ROUNDS); do
                if ! us=$(raw-bind sriov "$pf" 4); then
                        kl_not_ok "bench: raw-bind sriov round $i ($1)" "$(describe)"
                        break
                fi
                record "$1" "$i" "$us"
                raw-bind reset "$pf"
                kl_wait 10 eval '[ "$(numvfs)" = 0 ]' || { kl_not_ok "bench: sriov reset round $i ($1)" "$(describe)"; break; }
        done
}

# converge_set NAME NIC...: every contender on this set of e1000e (+ the 4 VFs).
converge_set() {
        name=$1
        shift
        NICS="$*"
        echo "# $name: $# e1000e + 4 VFs"
        converge_hostdevd "$name"
        # With hostdevd running and no rules (it observes every change and publishes
        # it on the bus, on the same single CPU): what observing costs the loop.
        raw_rounds "$name-raw-observed"
        kl_hostdevd_stop
        # Alone: the floor.
        raw_rounds "$name-raw"
        if [ "$name" = converge ]; then
                trace_start converge-raw
                # shellcheck disable=SC2086
                raw-bind bind vfio-pci "$pf" 4 $NICS > /dev/null 2> /tmp/t0-converge-raw.txt
                trace_stop converge-raw
                # shellcheck disable=SC2086
                raw-bind reset "$pf" $NICS
                kl_wait 10 host_state || kl_not_ok "bench: raw reset after the traced round" "$(describe)"
                sriov_rounds converge-sriov
        fi
        driverctl_rounds "$name-driverctl"
}

# The measures to run (kernel-lane.sh --only): "converge hotplug" by default.
measures=$(cat /etc/hostdevd-bench-measures 2> /dev/null || echo converge hotplug)
measure() { case " $measures " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---- converge -------------------------------------------------------------------------
if measure converge; then
        converge_set converge "$nic1" "$nic2"
        # shellcheck disable=SC2086
        [ "$all_nics" = "$nic1 $nic2" ] || converge_set "converge$(($(echo $all_nics | wc -w) + 4))" $all_nics
fi

# ---- hotplug ------------------------------------------------------------------------
n_base=$(kl_pci_find $E1000E | wc -l)
n_e1000e() { [ "$(kl_pci_find $E1000E | wc -l)" = "$1" ]; }
# hotplug_round NAME ROUND [DRIVER]: add an e1000e on rp5, record add -> bound to
# DRIVER (default vfio-pci), remove it again; unless DRIVER is e1000e, whether e1000e
# probed it first, in hostfirst.tsv. With CPU_PID set, also NAME-cpu: the CPU time
# that process took from just before the add until the bind was seen.
CPU_PID=
base_e1000e=$(kl_pci_find $E1000E)
new_e1000e() {
        kl_pci_find $E1000E | while read -r b; do
                case " $(echo $base_e1000e) " in *" $b "*) ;; *) echo "$b" ;; esac
        done
}
hotplug_round() {
        # The previous round's removal handled (hostdevd re-plans after it) before this one starts.
        sleep 0.3
        rm -f /run/raw-bind.ready
        dmesg -c > /dev/null
        # shellcheck disable=SC2086 # no PID argument when CPU_PID is empty
        raw-bind watch 8086 10d3 "${3:-vfio-pci}" $CPU_PID > /tmp/watch.out 2> /tmp/watch.err &
        watcher=$!
        kl_wait 5 test -e /run/raw-bind.ready
        if ! kl_host qmp "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"e1000e\", \"id\": \"$1$2\", \"bus\": \"rp5\", \"romfile\": \"\"}}"; then
                kl_not_ok "bench: device_add for $1 round $2" "$KL_REPLY"
                kill "$watcher"
                return 1
        fi
        # Blocked in wait, not polling: the shell takes no CPU from what is timed (raw-bind watch
        # gives up by itself after 30 s).
        if wait "$watcher"; then
                read -r us cpu < /tmp/watch.out
                record "$1" "$2" "$us"
                [ -z "$CPU_PID" ] || record "$1-cpu" "$2" "$cpu"
                if [ "${3:-vfio-pci}" != e1000e ]; then
                        new=$(new_e1000e)
                        first=0
                        ! dmesg | grep -q "^\[[^]]*\] e1000e $new: " || first=1
                        printf '%s\t%s\t%s\n' "$1" "$2" "$first" >> "$HOSTFIRST"
                fi
        else
                kl_not_ok "bench: hot-added e1000e bound to vfio-pci ($1 round $2)" "$(cat /tmp/watch.err)"
        fi
        kl_host qmp "{\"execute\": \"device_del\", \"arguments\": {\"id\": \"$1$2\"}}" &&
                kl_wait 30 n_e1000e "$n_base" || { kl_not_ok "bench: device_del ($1 round $2)" "$KL_REPLY"; return 1; }
}
# Every e1000e, the hot-added one too.
hotplug_hostdevd() {
        printf '[Match]\nVendor=8086\nDevice=10d3\n\n[Device]\nDriver=vfio-pci\n' > "$CONF/50-bench-nic.conf"
        if kl_hostdevd_start && kl_wait 30 eval 'on "$nic1" vfio-pci && on "$nic2" vfio-pci'; then
                CPU_PID=$KL_HOSTDEVD_PID
                for i in $(seq 1 $HOTPLUG_ROUNDS); do
                        hotplug_round hotplug-hostdevd "$i" || break
                done
                CPU_PID=
                trace_start hotplug-hostdevd
                hotplug_round hotplug-hostdevd-traced 1
                trace_stop hotplug-hostdevd
        else
                kl_not_ok "bench: hostdevd converges the e1000e rule before the hotplug rounds" "$(describe)"
        fi
}
# raw_monitor_rounds NAME [MODE RECORDFILE]: the raw monitor-and-bind loop, HOTPLUG_ROUNDS adds; with
# MODE monitor-safe or monitor-safe-udev, that raw-bind mode (records in RECORDFILE: under /var/lib,
# as hostdevd's own).
raw_monitor_rounds() {
        rm -f /run/raw-bind.ready
        if [ -n "${2:-}" ]; then
                mkdir -p "$(dirname "$3")"
                raw-bind "$2" 8086 10d3 vfio-pci "$3" 2> /tmp/monitor.err &
        else
                raw-bind monitor 8086 10d3 vfio-pci 2> /tmp/monitor.err &
        fi
        monitor=$!
        kl_wait 5 test -e /run/raw-bind.ready
        [ "$1" = hotplug-raw-observed ] || CPU_PID=$monitor
        for i in $(seq 1 $HOTPLUG_ROUNDS); do
                hotplug_round "$1" "$i" || break
        done
        CPU_PID=
        if [ "$1" = hotplug-raw ]; then
                trace_start hotplug-raw
                hotplug_round hotplug-raw-traced 1
                trace_stop hotplug-raw
        fi
        kill "$monitor"
}
if measure race; then
        # The claimed contenders take turns, a third of their rounds at a time, so that each gets its
        # share of the load (kernel-lane.sh --load ends after --load-seconds): hostdevd with the rule,
        # the raw loop at hostdevd's early-bind thread's class (SCHED_FIFO 1), then as a normal process.
        block=$(((HOTPLUG_ROUNDS + 2) / 3))
        done_rounds=0
        printf '[Match]\nVendor=8086\nDevice=10d3\n\n[Device]\nDriver=vfio-pci\n' > "$CONF/50-bench-nic.conf"
        while [ "$done_rounds" -lt "$HOTPLUG_ROUNDS" ]; do
                n=$block
                [ $((done_rounds + n)) -le "$HOTPLUG_ROUNDS" ] || n=$((HOTPLUG_ROUNDS - done_rounds))
                if kl_hostdevd_start && kl_wait 30 eval 'on "$nic1" vfio-pci && on "$nic2" vfio-pci'; then
                        for i in $(seq $((done_rounds + 1)) $((done_rounds + n))); do
                                hotplug_round race-hostdevd "$i" || break
                        done
                else
                        kl_not_ok "bench: hostdevd converges the e1000e rule before the race rounds" "$(describe)"
                fi
                kl_hostdevd_stop
                for mode in monitor-fifo monitor; do
                        rm -f /run/raw-bind.ready
                        raw-bind $mode 8086 10d3 vfio-pci 2> /tmp/monitor.err &
                        monitor=$!
                        if ! kl_wait 5 test -e /run/raw-bind.ready; then
                                kl_not_ok "bench: raw-bind $mode listens" "$(cat /tmp/monitor.err)"
                                continue
                        fi
                        name=race-raw
                        [ $mode = monitor ] || name=race-raw-fifo
                        for i in $(seq $((done_rounds + 1)) $((done_rounds + n))); do
                                hotplug_round $name "$i" || break
                        done
                        kill "$monitor"
                        wait "$monitor" 2> /dev/null
                done
                done_rounds=$((done_rounds + n))
        done
        # A rule that claims nic1 only: the hot-added e1000e is nobody's.
        printf '[Match]\nAddress=%s\n\n[Device]\nDriver=vfio-pci\n' "$nic1" > "$CONF/50-bench-nic.conf"
        if kl_hostdevd_start && kl_wait 30 on "$nic2" e1000e; then
                for i in $(seq 1 $((HOTPLUG_ROUNDS / 6 + 1))); do
                        hotplug_round unclaimed-hostdevd "$i" e1000e || break
                done
        else
                kl_not_ok "bench: hostdevd gives nic2 back before the unclaimed rounds" "$(describe)"
        fi
        rm -f "$CONF"/*.conf
        kl_hostdevd_stop
        # shellcheck disable=SC2086
        raw-bind reset "$pf" "$nic1" "$nic2"
        kl_wait 10 eval 'on "$nic1" e1000e && on "$nic2" e1000e'
        for i in $(seq 1 $((HOTPLUG_ROUNDS / 6 + 1))); do
                hotplug_round unclaimed-kernel "$i" e1000e || break
        done
fi

if measure hotplug; then
        hotplug_hostdevd
        # hostdevd observing only (no rules), then stopped.
        rm -f "$CONF"/*.conf
        kill -HUP "$KL_HOSTDEVD_PID"
        kl_wait 30 eval 'on "$nic1" e1000e && on "$nic2" e1000e'
        raw_monitor_rounds hotplug-raw-observed
        kl_hostdevd_stop
        raw_monitor_rounds hotplug-raw
        raw_monitor_rounds hotplug-raw-safe monitor-safe /var/lib/raw-bind/records
        raw_monitor_rounds hotplug-raw-safe-udev monitor-safe-udev /var/lib/raw-bind/records
fi

rm -f "$CONF"/*.conf
kl_check "bench: hostdevd restarts at the end" kl_hostdevd_start
kl_ship bench.tsv "$OUT"
kl_ship hostfirst.tsv "$HOSTFIRST"
# converge: hostdevd, raw, raw-observed, driverctl for each set and sriov once; hotplug: hostdevd, raw,
# raw-observed, raw-safe, raw-safe-udev and the four CPU figures.
want=0
! measure converge || want=$((want + 5))
! measure hotplug || want=$((want + 9))
! measure race || want=$((want + 5))
kl_check "bench: every contender has a figure" eval '[ "$(cut -f1 "$OUT" | sort -u | wc -l)" -ge $want ]'
