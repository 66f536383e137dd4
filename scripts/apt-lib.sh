# apt-get for the project's scripts (sourced by setup-deps.sh and build-deb.sh, never run).
# Set APT_TAG to the calling script's name for its messages.

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# apt's dpkg lock may be held by another process for a while: wait and retry (5 minutes at most).
apt_retry() {
        local i
        for i in $(seq 1 60); do
                if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 "$@"; then
                        return 0
                fi
                echo "${APT_TAG:-apt}: apt-get $1 failed (try $i), retrying in 5 s" >&2
                sleep 5
        done
        return 1
}
