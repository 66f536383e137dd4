# Helpers for kernel lane guest scripts (busybox ash; bash in the Debian
# guest). Sourced by /init (guest/debrun.sh) and available to every scenario;
# their own variables are local, and the only globals they set are the
# documented KL_* ones (KL_WAITED, KL_REPLY, KL_HOSTDEVD_PID). A scenario is a plain shell file that uses:
#
#   kl_ok NAME / kl_not_ok NAME [DIAG...] / kl_check NAME CMD...   results
#   kl_wait SECONDS CMD...     poll CMD every 20 ms until it succeeds
#   kl_host qmp JSON           run a QMP command on the host (request/ack)
#   kl_ship NAME FILE          send FILE to the host as OUTDIR/NAME
#   kl_now                     seconds since boot (10 ms resolution)
#   kl_pci_find VENDOR DEVICE  BDFs of functions with these ids (e.g. 8086 10d3)
#   kl_driver BDF              the bound driver's name, empty if none
#   kl_hostdevd_start [ARGS]   start hostdevd, wait until it owns org.hostdevd1
#   kl_hostdevd_stop [SIGNAL]  signal it (TERM), wait until it is gone from the bus
#   kl_hostdevd_kill9 / kl_hostdevd_restart
#   kl_prop PATH IFACE PROP    a D-Bus property of hostdevd, as dbus-send prints it
#
# Scenarios whose .env says KL_HOSTDEVD_START=manual start hostdevd themselves
# (after writing its desired-state files); the others find it running.

KL_RESULTS=/run/kernel-lane/results
KL_SEQ=0

kl_now() {
        read -r up _ < /proc/uptime
        echo "$up"
}

kl_diag() {
        [ $# -gt 0 ] || return 0
        printf '%s\n' "$*" | sed 's/^/# /'
}

kl_ok() {
        echo "ok - $1"
        echo "ok" >> "$KL_RESULTS"
}

kl_not_ok() {
        echo "not ok - $1"
        echo "not ok" >> "$KL_RESULTS"
        shift
        kl_diag "$@"
}

kl_check() {
        local _kl_name=$1
        shift
        if "$@"; then kl_ok "$_kl_name"; else kl_not_ok "$_kl_name" "failed: $*"; fi
}

# kl_wait SECONDS CMD...: 0 once CMD succeeds, 1 if it did not within
# SECONDS. KL_WAITED is the time it took (seconds, 10 ms resolution); it is
# the only variable kl_wait sets (its own are local).
kl_wait() {
        local _limit=$1 _t0
        shift
        _t0=$(kl_now)
        while :; do
                if "$@"; then
                        KL_WAITED=$(awk -v a="$_t0" -v b="$(kl_now)" 'BEGIN { printf "%.2f", b - a }')
                        return 0
                fi
                if awk -v a="$_t0" -v b="$(kl_now)" -v l="$_limit" 'BEGIN { exit !(b - a >= l) }'; then
                        KL_WAITED=$_limit
                        return 1
                fi
                sleep 0.02
        done
}

# kl_host CMD ARG: ask the host side (tests/kernel/vm.py) to do something the
# guest cannot, and wait for its answer. CMD is "qmp" with a QMP command as
# JSON (one line). The answer arrives on the console's input as
# "@@KL ACK <n> ok|error <text>"; KL_REPLY is <text>. Returns 0 on ok.
kl_host() {
        local _line
        KL_SEQ=$((KL_SEQ + 1))
        echo "@@KL HOST $KL_SEQ $*"
        while read -t "${KL_HOST_TIMEOUT:-30}" -r _line; do
                case $_line in
                "@@KL ACK $KL_SEQ ok"*)
                        KL_REPLY=${_line#"@@KL ACK $KL_SEQ ok"}
                        return 0 ;;
                "@@KL ACK $KL_SEQ error"*)
                        KL_REPLY=${_line#"@@KL ACK $KL_SEQ error"}
                        return 1 ;;
                esac
        done < /dev/ttyS0
        KL_REPLY="no answer from the host within ${KL_HOST_TIMEOUT:-30} s"
        return 1
}

# kl_ship NAME FILE: the host writes FILE's bytes to OUTDIR/NAME.
kl_ship() {
        {
                echo "@@KL BEGIN $1"
                cat "$2"
                echo
                echo "@@KL END $1"
        } > /dev/ttyS1
}

kl_name_has_owner() {
        dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null | grep -q 'boolean true'
}

# kl_pci_find VENDOR DEVICE: BDFs (sorted) of functions with these ids, ids
# as 4 hex digits without 0x.
kl_pci_find() {
        local _d
        for _d in /sys/bus/pci/devices/*; do
                [ "$(cat "$_d/vendor")" = "0x$1" ] && [ "$(cat "$_d/device")" = "0x$2" ] && basename "$_d"
        done | sort
        return 0
}

# kl_driver BDF: the bound driver's name, empty if none.
kl_driver() {
        [ -e "/sys/bus/pci/devices/$1/driver" ] && basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
        return 0
}

# ---- hostdevd's lifetime ---------------------------------------------------
# The log of every hostdevd run is appended to one file (shipped at the end),
# each run headed by a "=== hostdevd start" line.
KL_HOSTDEVD_LOG=/run/kernel-lane/hostdevd.log
KL_HOSTDEVD_PIDFILE=/run/kernel-lane/hostdevd.pid

# kl_alive PID: the process exists and is not a zombie (a killed child of a
# shell that has not waited for it still answers kill -0).
kl_alive() {
        [ -n "$1" ] && [ -d "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# kl_bus_pid NAME: pid of the connection that owns NAME on the system bus.
kl_bus_pid() {
        dbus-send --system --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus.GetConnectionUnixProcessID "string:$1" 2>/dev/null | awk '{ print $NF }'
}

_kl_hostdevd_up_or_dead() {
        ! kl_alive "$KL_HOSTDEVD_PID" || [ "$(kl_bus_pid org.hostdevd1)" = "$KL_HOSTDEVD_PID" ]
}

# kl_hostdevd_start [ARGS...]: start hostdevd with $KL_HOSTDEVD_ARGS and ARGS,
# and wait (30 s) until this very process owns org.hostdevd1. 0 if it does;
# else 1 with the log's tail on the console. KL_HOSTDEVD_PID is its pid,
# KL_WAITED how long it took to get on the bus.
kl_hostdevd_start() {
        echo "=== hostdevd start at $(kl_now) s: hostdevd ${KL_HOSTDEVD_ARGS:-} $*" >> "$KL_HOSTDEVD_LOG"
        # shellcheck disable=SC2086 # options are split on purpose
        hostdevd ${KL_HOSTDEVD_ARGS:-} "$@" >> "$KL_HOSTDEVD_LOG" 2>&1 &
        KL_HOSTDEVD_PID=$!
        echo "$KL_HOSTDEVD_PID" > "$KL_HOSTDEVD_PIDFILE"
        kl_wait 30 _kl_hostdevd_up_or_dead
        if kl_alive "$KL_HOSTDEVD_PID" && [ "$(kl_bus_pid org.hostdevd1)" = "$KL_HOSTDEVD_PID" ]; then
                return 0
        fi
        kl_diag "hostdevd (pid $KL_HOSTDEVD_PID) is not on the bus; its log ends:" \
                "$(tail -n 20 "$KL_HOSTDEVD_LOG")"
        return 1
}

_kl_hostdevd_gone() {
        ! kl_alive "$KL_HOSTDEVD_PID" && [ "$(kl_bus_pid org.hostdevd1)" != "$KL_HOSTDEVD_PID" ]
}

# kl_hostdevd_stop [SIGNAL]: send SIGNAL (default TERM) to the hostdevd that
# kl_hostdevd_start (or /init) started, and wait (10 s) until the process is
# gone and no longer owns org.hostdevd1. 0 if so.
kl_hostdevd_stop() {
        [ -n "${KL_HOSTDEVD_PID:-}" ] || KL_HOSTDEVD_PID=$(cat "$KL_HOSTDEVD_PIDFILE" 2>/dev/null)
        [ -n "$KL_HOSTDEVD_PID" ] || return 1
        echo "=== hostdevd SIG${1:-TERM} at $(kl_now) s" >> "$KL_HOSTDEVD_LOG"
        kill -"${1:-TERM}" "$KL_HOSTDEVD_PID" 2>/dev/null
        # Reap it if it is this shell's child (a no-op otherwise).
        [ "${1:-TERM}" = KILL ] && wait "$KL_HOSTDEVD_PID" 2>/dev/null
        kl_wait 10 _kl_hostdevd_gone || return 1
        wait "$KL_HOSTDEVD_PID" 2>/dev/null
        rm -f "$KL_HOSTDEVD_PIDFILE"
        return 0
}

kl_hostdevd_kill9() { kl_hostdevd_stop KILL; }

kl_hostdevd_restart() { kl_hostdevd_stop && kl_hostdevd_start "$@"; }

# kl_prop PATH IFACE PROP: one property of an org.hostdevd1 object as
# dbus-send --print-reply=literal prints it, without the "variant" and the
# basic type word (strings bare, arrays as "array [ ... ]").
kl_prop() {
        dbus-send --system --print-reply=literal --dest=org.hostdevd1 "$1" \
                org.freedesktop.DBus.Properties.Get "string:$2" "string:$3" 2>&1 |
                sed -E 's/^ *variant +//; s/^(boolean|byte|u?int(16|32|64)|double) //'
}
