# Helpers for kernel lane guest scripts (busybox ash). Sourced by /init and
# available to every scenario. A scenario is a plain shell file that uses:
#
#   kl_ok NAME / kl_not_ok NAME [DIAG...] / kl_check NAME CMD...   results
#   kl_wait SECONDS CMD...     poll CMD every 20 ms until it succeeds
#   kl_host qmp JSON           run a QMP command on the host (request/ack)
#   kl_ship NAME FILE          send FILE to the host as OUTDIR/NAME
#   kl_now                     seconds since boot (10 ms resolution)
#   kl_pci_find VENDOR DEVICE  BDFs of functions with these ids (e.g. 8086 10d3)

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
        _kl_name=$1
        shift
        if "$@"; then kl_ok "$_kl_name"; else kl_not_ok "$_kl_name" "failed: $*"; fi
}

# kl_wait SECONDS CMD...: 0 once CMD succeeds, 1 if it did not within
# SECONDS. KL_WAITED is the time it took (seconds, 10 ms resolution).
kl_wait() {
        _limit=$1
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
