# mdev benchmark, the guest side (run by tests/bench/mdev-bench.sh through
# tests/kernel/run-vm.sh; busybox ash with guest/lib.sh sourced). One boot,
# the mtty sample driver as the parent: create, then remove, as many mtty-1
# instances as the parent allows (its available_instances, N), with
#   hostdevd  one [Mdev] Count=N file + one trigger, until N mdevs exist; then
#             the file removed + one trigger, until none. Triggers, each its own
#             row: SIGHUP to hostdevd ("hostdevd", the headline), Reload over
#             D-Bus from a client already connected ("hostdevd-reload"), and an
#             exec of `hostdevctl reload` ("hostdevd-ctl", as an operator does
#             it). mdev-bench waits on the kernel's uevents (netlink), not a
#             poll; "-bus" rows: until hostdevd announces MdevCount = N.
#   mdevctl   Debian's mdevctl: `define --auto` + `start` per instance; then
#             `stop` + `undefine` per instance
#   raw       mdev-bench raw-create / raw-remove: one sysfs write each
#   floors    the same triggers with nothing to do (until hostdevd announces the
#             new Generation, after its plan), and an exec of hostdevctl alone:
#             what any reload costs before the first sysfs write
# Rounds alternate between the contenders. Results: "NAME<TAB>ROUND<TAB>US"
# lines in bench.tsv (shipped), e.g. "create-hostdevd 1 812345".
ROUNDS=${ROUNDS:-3}
# mdevctl takes seconds per instance: only the first MDEVCTL_ROUNDS rounds time it.
MDEVCTL_ROUNDS=${MDEVCTL_ROUNDS:-$ROUNDS}
PARENT=mtty
TYPE=mtty-1
CONF=/etc/hostdevd/devices.d
OUT=/tmp/bench.tsv
: > "$OUT"
mkdir -p "$CONF" /etc/mdevctl.d/scripts.d/callouts /etc/mdevctl.d/scripts.d/notifiers

record() {
        printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$OUT"
        echo "# $1 round $2: $3 us"
}
count() { _n=0; for _m in /sys/bus/mdev/devices/*; do [ -e "$_m" ] && _n=$((_n + 1)); done; echo "$_n"; }

n=$(cat "/sys/class/mdev_bus/$PARENT/mdev_supported_types/$TYPE/available_instances" 2>/dev/null)
if [ -z "$n" ] || [ "$n" -lt 1 ] || [ ! -x /usr/bin/mdev-bench ]; then
        kl_not_ok "bench: mtty's $TYPE with available instances, and /usr/bin/mdev-bench" "n='$n'"
        exit 1
fi
echo "# $TYPE on $PARENT: $n instances"
printf 'instances\t0\t%s\n' "$n" >> "$OUT"
uuids=$(i=0; while [ "$i" -lt "$n" ]; do mdev-bench uuid "$i"; i=$((i + 1)); done)

# The timed commands, quiet (mdev-bench prints the times on stdout).
rule() { printf '[Mdev]\nParent=%s\nType=%s\nCount=%s\n' "$PARENT" "$TYPE" "$n" > "$CONF/50-bench.conf"; }
cat > /tmp/hostdevd-ctl-create.sh <<SH
printf '[Mdev]\nParent=$PARENT\nType=$TYPE\nCount=$n\n' > $CONF/50-bench.conf
hostdevctl --no-ask-password reload > /dev/null 2>&1 && mdev-bench wait $n
SH
cat > /tmp/hostdevd-ctl-remove.sh <<SH
rm -f $CONF/50-bench.conf
hostdevctl --no-ask-password reload > /dev/null 2>&1 && mdev-bench wait 0
SH
{
        for u in $uuids; do
                echo "mdevctl define --auto --uuid $u --parent $PARENT --type $TYPE || exit 1"
                echo "mdevctl start --uuid $u || exit 1"
        done
} > /tmp/mdevctl-create.sh
{
        for u in $uuids; do
                echo "mdevctl stop --uuid $u || exit 1"
                echo "mdevctl undefine --uuid $u || exit 1"
        done
} > /tmp/mdevctl-remove.sh

export HOSTDEVD_LOG_TIME=1
if ! kl_hostdevd_start; then
        kl_not_ok "bench: hostdevd starts"
        exit 1
fi
have_mdevctl=$(command -v mdevctl)
[ -n "$have_mdevctl" ] || kl_not_ok "bench: mdevctl is in the guest (fetch-mdevctl.sh on the host)"

cleanup() {
        # Leave nothing behind for the next contender.
        rm -f "$CONF/50-bench.conf" /etc/mdevctl.d/"$PARENT"/* 2>/dev/null
        hostdevctl --no-ask-password reload > /dev/null 2>&1
        for _m in /sys/bus/mdev/devices/*; do [ -e "$_m/remove" ] && echo 1 > "$_m/remove"; done
}

# measure NAME ROUND WANT CMD...: record CMD's time if it succeeded and WANT mdevs exist afterwards.
measure() {
        _name=$1 _round=$2 _want=$3
        shift 3
        if _us=$(mdev-bench time "$@" 2> /tmp/err) && [ "$(count)" = "$_want" ]; then
                record "$_name" "$_round" "$(echo "$_us" | tail -n 1)"
        else
                kl_not_ok "bench: $_name round $_round" "$(cat /tmp/err)" "$(count) mdevs, want $_want"
                cleanup
        fi
}

# triggered NAME ROUND WANT|- mdev-bench hup|reload ...: mdev-bench's two times (trigger to the sysfs
# end, trigger to hostdevd's announcement) as NAME and NAME-bus.
triggered() {
        _name=$1 _round=$2 _want=$3
        shift 3
        if _t=$("$@" 2> /tmp/err) && { [ "$_want" = - ] || [ "$(count)" = "$_want" ]; }; then
                set -- $_t
                record "$_name" "$_round" "$1"
                record "$_name-bus" "$_round" "$2"
        else
                kl_not_ok "bench: $_name round $_round" "$(cat /tmp/err)" "$(count) mdevs, want $_want"
                cleanup
        fi
}

pid=$KL_HOSTDEVD_PID
i=1
while [ "$i" -le "$ROUNDS" ]; do
        measure create-raw "$i" "$n" mdev-bench raw-create "$PARENT" "$TYPE" "$n"
        measure remove-raw "$i" 0 mdev-bench raw-remove "$n"
        rule
        triggered create-hostdevd "$i" "$n" mdev-bench hup "$pid" "$n"
        rm -f "$CONF/50-bench.conf"
        triggered remove-hostdevd "$i" 0 mdev-bench hup "$pid" 0
        rule
        triggered create-hostdevd-reload "$i" "$n" mdev-bench reload "$n"
        rm -f "$CONF/50-bench.conf"
        triggered remove-hostdevd-reload "$i" 0 mdev-bench reload 0
        measure create-hostdevd-ctl "$i" "$n" sh /tmp/hostdevd-ctl-create.sh
        measure remove-hostdevd-ctl "$i" 0 sh /tmp/hostdevd-ctl-remove.sh
        # The floors: each trigger with nothing to do, and an exec of hostdevctl alone.
        triggered floor-hup-noop "$i" - mdev-bench hup "$pid" -
        triggered floor-reload-noop "$i" - mdev-bench reload -
        measure floor-ctl-noop "$i" 0 sh -c 'hostdevctl --no-ask-password reload > /dev/null 2>&1 && mdev-bench wait 0'
        measure floor-ctl-exec "$i" 0 hostdevctl --version
        if [ -n "$have_mdevctl" ] && [ "$i" -le "$MDEVCTL_ROUNDS" ]; then
                measure create-mdevctl "$i" "$n" sh /tmp/mdevctl-create.sh
                measure remove-mdevctl "$i" 0 sh /tmp/mdevctl-remove.sh
        fi
        i=$((i + 1))
done

kl_check "bench: every round recorded" [ "$(grep -c . "$OUT")" -ge $((1 + ROUNDS * 18)) ]
kl_check "hostdevd is still running" kl_alive "$KL_HOSTDEVD_PID"
kl_ship bench.tsv "$OUT"
# hostdevd's own log (with KL_HOSTDEVD_ARGS=--log-level=debug: where its time goes).
kl_ship hostdevd.log "$KL_HOSTDEVD_LOG"
