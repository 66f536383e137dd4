#!/bin/bash
# The kernel lane's systemd guest, once multi-user.target is reached: install
# the packages under test with dpkg (as an operator would: the postinst
# enables and starts hostdevd.service), run the scenario, ship the journal,
# report, power off. Same console protocol as guest/init (READY, RESULT,
# DONE on ttyS0; bulk sections on ttyS1) and the same helpers
# (guest/lib.sh).
exec > /dev/ttyS0 2>&1 < /dev/null
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mkdir -p /run/kernel-lane
stty -F /dev/ttyS1 raw -echo
. /kernel-lane/lib.sh
. /kernel-lane/scenario.env

kl_finish() {
        journalctl -b --no-pager -o short-monotonic > /run/kernel-lane/journal.txt 2>&1
        kl_ship journal.txt /run/kernel-lane/journal.txt
        dmesg > /run/kernel-lane/dmesg.txt
        kl_ship dmesg.txt /run/kernel-lane/dmesg.txt
        pass=$(grep -c '^ok$' "$KL_RESULTS" 2>/dev/null)
        fail=$(grep -c '^not ok$' "$KL_RESULTS" 2>/dev/null)
        echo "@@KL RESULT ${pass:-0} ${fail:-0}"
        echo "@@KL DONE"
        sync
        systemctl poweroff --force --force
        sleep 10
}

echo "# systemd $(systemctl --version | awk 'NR == 1 { print $2 }') reached multi-user.target at $(kl_now) s"
failed=$(systemctl --failed --no-legend --plain)
kl_check "no unit failed during the boot" test -z "$failed"
kl_diag "$failed"
echo "@@KL READY $(kl_now)"

debs=(/kernel-lane/debs/*.deb)
if dpkg -i "${debs[@]}" > /run/kernel-lane/dpkg.txt 2>&1; then
        kl_ok "dpkg -i $(cd /kernel-lane/debs && echo *.deb)"
        ( . /kernel-lane/scenario.sh )
        rc=$?
        [ $rc -eq 0 ] || kl_not_ok "scenario exited with status $rc"
else
        kl_not_ok "dpkg -i $(cd /kernel-lane/debs && echo *.deb)" "$(tail -n 20 /run/kernel-lane/dpkg.txt)"
fi
kl_ship dpkg.txt /run/kernel-lane/dpkg.txt
kl_finish
