# Guest script (busybox ash) for bench_udev_unlock: time from the udev add event
# of a disk to its dm-crypt mapping being live, N rounds each, alternating, on
# the SAME disk and TPM (/dev/tpmrm0 over swtpm), both started by a udev rule
# through a detached helper (setsid), as without systemd:
#   volmgr     90-volmgr.rules -> volmgr-udev -> volmgr unlock --udev (TPM protector)
#   systemd    a test rule -> systemd-cryptsetup attach NAME DEV - tpm2-device=auto,headless=true
#              (systemd-cryptenroll's systemd-tpm2 token, libcryptsetup's token plugin)
# Both seal to PCR 7; both keyslots use minimal PBKDF2 (volmgr's VMK slot; the
# systemd token's slot is made with --unlock-key-file, PBKDF2 forced below), so
# the difference is the unlock path. Times are the kernel uevent timestamps seen
# by `udevadm monitor --kernel`: "add .../vda" to the mapping's dm "change"
# (resume). The add events come from `udevadm trigger --action=add`.
. /vmbed/lib.sh
set -eu

N=${BENCH_ROUNDS:-5}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wait_for() {
  n=$(($1 * 20))
  shift
  while [ $n -gt 0 ]; do
    "$@" && return 0
    sleep 0.05
    n=$((n - 1))
  done
  return 1
}
mapped() { [ -b "/dev/mapper/$1" ]; }
gone() { [ ! -e "/dev/mapper/$1" ]; }

step 1 "one volmgr volume with a TPM protector and a systemd-tpm2 token (both PCR 7)"
volmgr format /dev/vda --force --recovery-password-file /tmp/rp --argon2-time 1 --argon2-memory 8192 >/dev/null
sed -n 's/^Recovery password: //p' /tmp/rp | tr -d '\n' >/tmp/rp.txt
volmgr protector add /dev/vda tpm --key-file /tmp/rp.txt </dev/null >/dev/null
systemd-cryptenroll --unlock-key-file=/tmp/rp.txt --tpm2-device=/dev/tpmrm0 --tpm2-pcrs=7 \
  /dev/vda >/tmp/enroll.out 2>&1 || fail "systemd-cryptenroll: $(cat /tmp/enroll.out)"
cryptsetup luksDump /dev/vda | grep -q systemd-tpm2 || fail "no systemd-tpm2 token"
UUID=$(cryptsetup luksUUID /dev/vda)

step 2 "udevd with 90-volmgr.rules, the dm rules and the systemd peer's rule"
mkdir -p /etc/volmgr /lib/volmgr /etc/udev/rules.d
cp /etc/volmgr-guest/90-volmgr.rules /lib/udev/rules.d/
cp /etc/volmgr-guest/volmgr-udev /lib/volmgr/volmgr-udev
chmod 0755 /lib/volmgr/volmgr-udev
cat >/bin/sdpeer-attach <<'EOS'
#!/bin/sh
exec </dev/null >/dev/null 2>&1
setsid /lib/systemd/systemd-cryptsetup attach sdpeer "$1" - tpm2-device=auto,headless=true \
  >>/tmp/sdpeer.log 2>&1 &
EOS
chmod 0755 /bin/sdpeer-attach
cat >/etc/udev/rules.d/91-sdpeer.rules <<'EOS'
ACTION=="add", SUBSYSTEM=="block", KERNEL=="vda", TEST=="/run/bench-systemd", RUN+="/bin/sdpeer-attach $devnode"
EOS
/lib/systemd/systemd-udevd --daemon
udevadm settle --timeout=30 || true
udevadm monitor --kernel --subsystem-match=block >/tmp/monitor 2>&1 &
mon=$!
sleep 1

use() { # use volmgr|systemd: arm one of the two paths
  if [ "$1" = volmgr ]; then
    printf 'sys UUID=%s -\n' "$UUID" >/etc/volmgr/volumes.conf
    rm -f /run/bench-systemd
  else
    printf 'sys UUID=%s noauto\n' "$UUID" >/etc/volmgr/volumes.conf
    : >/run/bench-systemd
  fi
}
round() { # round volmgr|systemd
  use "$1"
  name=sys
  [ "$1" = systemd ] && name=sdpeer
  echo "$1" >>/tmp/order
  udevadm trigger --action=add /sys/block/vda
  wait_for 60 mapped $name || fail "$1: no /dev/mapper/$name: $(tail -n 5 /tmp/sdpeer.log 2>/dev/null)"
  udevadm settle --timeout=30 || true
  sleep 0.3
  cryptsetup close $name
  wait_for 20 gone $name || fail "$1: close"
}

step 3 "warm-up, then $N rounds each, alternating"
round volmgr
round systemd
: >/tmp/order
i=0
while [ $i -lt "$N" ]; do
  round volmgr
  round systemd
  i=$((i + 1))
done
sleep 0.5
kill $mon

# Pair each "add .../vda" with the next dm "change" (the mapping's resume); the
# first two pairs are the warm-up.
awk '/^KERNEL\[/ {
       t = substr($1, 8, length($1) - 8)
       if ($2 == "add" && $3 ~ /\/block\/vda$/) { a = t }
       else if ($2 == "change" && $3 ~ /\/block\/dm-[0-9]+$/ && a != "") { printf "%.0f\n", (t - a) * 1000; a = "" }
     }' /tmp/monitor | tail -n +3 >/tmp/ms
[ "$(wc -l </tmp/ms)" -eq $((2 * N)) ] || fail "expected $((2 * N)) timings: $(cat /tmp/ms) / $(cat /tmp/monitor)"
paste -d' ' /tmp/order /tmp/ms >/tmp/pairs
grep '^volmgr' /tmp/pairs | cut -d' ' -f2 >/tmp/volmgr.ms
grep '^systemd' /tmp/pairs | cut -d' ' -f2 >/tmp/systemd.ms
data volmgr_add_to_mapping_ms "$(tr '\n' ' ' </tmp/volmgr.ms)"
data systemd_add_to_mapping_ms "$(tr '\n' ' ' </tmp/systemd.ms)"
v=$(median </tmp/volmgr.ms)
s=$(median </tmp/systemd.ms)
data volmgr_median_ms "$v"
data systemd_median_ms "$s"
data ratio_volmgr_to_systemd "$(awk -v v="$v" -v s="$s" 'BEGIN { printf "%.3f", v / s }')"
echo "udev add -> mapping: volmgr median ${v} ms, systemd-cryptsetup median ${s} ms"
echo "bench udev unlock done"
