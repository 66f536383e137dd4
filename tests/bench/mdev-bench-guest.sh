# mdev benchmark, the guest side (run by tests/bench/mdev-bench.sh through
# tests/kernel/run-vm.sh; busybox ash with guest/lib.sh sourced). One boot,
# the mtty sample driver as the parent: create, then remove, as many mtty-1
# instances as the parent allows (its available_instances, N), with
#   hostdevd  one [Mdev] Count=N file + one Reload, until N mdevs exist
#             (mdev-bench wait polls /sys/bus/mdev/devices every ms); then
#             the file removed + Reload, until none
#   mdevctl   Debian's mdevctl: `define --auto` + `start` per instance; then
#             `stop` + `undefine` per instance
#   raw       mdev-bench raw-create / raw-remove: one sysfs write each
# Rounds alternate between the contenders. Results: "NAME<TAB>ROUND<TAB>US"
# lines in bench.tsv (shipped), e.g. "create-hostdevd 1 812345".
ROUNDS=${ROUNDS:-3}
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

# The timed commands, quiet (mdev-bench time prints the time on stdout).
cat > /tmp/hostdevd-create.sh <<SH
printf '[Mdev]\nParent=$PARENT\nType=$TYPE\nCount=$n\n' > $CONF/50-bench.conf
hostdevctl --no-ask-password reload > /dev/null 2>&1 && mdev-bench wait $n
SH
cat > /tmp/hostdevd-remove.sh <<SH
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

# time NAME ROUND WANT CMD...: record CMD's time if it succeeded and WANT mdevs exist afterwards.
measure() {
        _name=$1 _round=$2 _want=$3
        shift 3
        if _us=$(mdev-bench time "$@" 2> /tmp/err) && [ "$(count)" = "$_want" ]; then
                record "$_name" "$_round" "$(echo "$_us" | tail -n 1)"
        else
                kl_not_ok "bench: $_name round $_round" "$(cat /tmp/err)" "$(count) mdevs, want $_want"
                # Leave nothing behind for the next contender.
                rm -f "$CONF/50-bench.conf" /etc/mdevctl.d/"$PARENT"/* 2>/dev/null
                hostdevctl --no-ask-password reload > /dev/null 2>&1
                for _m in /sys/bus/mdev/devices/*; do [ -e "$_m/remove" ] && echo 1 > "$_m/remove"; done
        fi
}

i=1
while [ "$i" -le "$ROUNDS" ]; do
        measure create-raw "$i" "$n" mdev-bench raw-create "$PARENT" "$TYPE" "$n"
        measure remove-raw "$i" 0 mdev-bench raw-remove "$n"
        measure create-hostdevd "$i" "$n" sh /tmp/hostdevd-create.sh
        measure remove-hostdevd "$i" 0 sh /tmp/hostdevd-remove.sh
        # Fixed costs inside the hostdevd figures: an exec of hostdevctl, and a Reload with nothing to do.
        measure fixed-ctl-exec "$i" 0 hostdevctl --version
        measure fixed-reload-noop "$i" 0 sh -c 'hostdevctl --no-ask-password reload > /dev/null 2>&1 && mdev-bench wait 0'
        if [ -n "$have_mdevctl" ]; then
                measure create-mdevctl "$i" "$n" sh /tmp/mdevctl-create.sh
                measure remove-mdevctl "$i" 0 sh /tmp/mdevctl-remove.sh
        fi
        i=$((i + 1))
done

kl_check "bench: every round recorded" [ "$(grep -c . "$OUT")" -ge $((1 + ROUNDS * 4)) ]
kl_check "hostdevd is still running" kl_alive "$KL_HOSTDEVD_PID"
kl_ship bench.tsv "$OUT"
# hostdevd's own log (with KL_HOSTDEVD_ARGS=--log-level=debug: where its time goes).
kl_ship hostdevd.log "$KL_HOSTDEVD_LOG"
