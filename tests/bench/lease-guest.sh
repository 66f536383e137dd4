# Lease benchmark, the guest side (run by tests/bench/lease.sh through
# tests/kernel/run-vm.sh; busybox ash with guest/lib.sh sourced; hostdevd
# started here with HOSTDEVD_LOG_TIME=1). Everything is timed in one guest by
# lease-client (tests/bench/lease-client.c: CLOCK_MONOTONIC, microseconds),
# a program that is already running and on the bus, so the ratios compare
# runs on the same emulated machine in the same boot. Each round runs every
# contender once, in turn (drift of the machine hits them alike):
#   acquire-raw        driver_override, unbind, drivers_probe, driver link
#                      read: the e1000e to vfio-pci by hand
#   exit-kernel        the same back to e1000e (override cleared)
#   acquire-client     Manager.Acquire -> reply (hostdevd replies once the
#                      function is verified on vfio-pci); then Release
#   acquire-dry        Acquire with dry-run: bus, credentials, polkit's root
#                      shortcut, caller check, validation; no change
#   bus-ping           Peer.Ping to hostdevd: one bus round trip
#   exec               fork + exec + wait of `hostdevctl --version`
#   acquire-hostdevctl `hostdevctl run --device=E1000E -- lease-client vmm`:
#                      fork -> the command runs (exec of hostdevctl, its
#                      bus connection, Acquire, exec of the command)
#   exit-hostdevd      that command exits -> the e1000e on e1000e again
# Then TRACE_ROUNDS Acquire rounds with hostdevd at log level debug
# (acquire-client-traced): their send/reply times ("trace" rows) and
# hostdevd's timed log lines (hostdevd.log, shipped at the end) make the
# breakdown lease.sh prints.
# Results: bench.tsv ("NAME<TAB>ROUND<TAB>MICROSECONDS" and
# "trace<TAB>ROUND<TAB>STEP<TAB>MONOTONIC_USEC"), shipped.
E1000E="8086 10d3"
ROUNDS=${ROUNDS:-7}
TRACE_ROUNDS=${TRACE_ROUNDS:-3}
OUT=/tmp/bench.tsv
: > "$OUT"
nic=$(kl_pci_find $E1000E | head -n 1)
host=$(kl_driver "$nic")
echo "# e1000e $nic on $host"

export HOSTDEVD_LOG_TIME=1
if ! kl_hostdevd_start; then
        kl_not_ok "bench: hostdevd starts"
        exit 1
fi
hostdevctl status 2>&1 | grep -i -e track -e holder | sed 's/^/# /'

failed=0
bench() {
        # "NAME<TAB>1<TAB>US" rows of a one-round run, renumbered to this round
        if ! lease-client "$@" > /tmp/rows 2> /tmp/rows.err; then
                failed=1
                kl_diag "bench: lease-client $* failed" "$(cat /tmp/rows.err)"
        fi
        while IFS="$(printf '\t')" read -r name _ us; do
                printf '%s\t%s\t%s\n' "$name" "$round" "$us" >> "$OUT"
                echo "# $name round $round: $us us"
        done < /tmp/rows
}
for round in $(seq 1 "$ROUNDS"); do
        bench raw "$nic" "$host" 1
        bench acquire "$nic" 1
        bench dry "$nic" 1
        bench ping 1
        bench exec 1 hostdevctl --version
        bench run "$nic" 1 /usr/bin/hostdevctl
done
round=0
lease-client acquire "$nic" "$TRACE_ROUNDS" trace >> "$OUT" 2> /tmp/rows.err || {
        failed=1
        kl_diag "bench: traced rounds failed" "$(cat /tmp/rows.err)"
}
kl_ship bench.tsv "$OUT"
kl_check "bench: every lease-client run succeeded" test "$failed" = 0
kl_check "bench: the e1000e is on $host at the end" test "$(kl_driver "$nic")" = "$host"
