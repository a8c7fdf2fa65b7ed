# Inside the VM (busybox ash, busybox init stays PID 1): boot-time unlock
# through the real systemd-udevd with udev/90-volmgr.rules and the
# non-systemd helper (udev/volmgr-udev). Host side: vmbed --tpm, volmgr as
# /bin/volmgr, udevadm (+ systemd-udevd link), the guest-path rule/helper in
# /etc/volmgr-guest, disks:
#   vda  volmgr, recovery + TPM (PCR 7)          listed as "sys"
#   vdb  volmgr, recovery + TPM (PCR 16)         listed as "pcrvol"; PCR 16
#        is extended before "boot": stays locked, the recovery prompt opens it
#   vdc  volmgr, passphrase only                 not listed: prompt times out
#   vdd  plain LUKS2 (stock cryptsetup)          must not match
#   vde  ext4                                    must not match
#   vdf  LUKS2 with subsystem "volmgr" but no volmgr tokens: must not match
#   vdg  hot-plug disk: volmgr, TPM (PCR 7), label "hotdisk" (not listed)
. /vmbed/lib.sh
set -eu

K=/tmp/keys
mkdir -p $K /mnt/v /etc/volmgr /lib/udev/rules.d /lib/volmgr
FAST="--argon2-time 1 --argon2-memory 8192"
v() { timeout 60 volmgr "$@" </dev/null; }
LOG=/tmp/syslog

# wait_for SECONDS CMD...: poll every 0.1 s.
wait_for() {
  n=$(($1 * 10))
  shift
  while [ $n -gt 0 ]; do
    "$@" && return 0
    sleep 0.1
    n=$((n - 1))
  done
  return 1
}
in_log() { grep -q "$1" $LOG 2>/dev/null; }
# What a failure report needs: the syslog, running unlocks, recent kernel lines.
diag() {
  echo "--- syslog"; cat $LOG 2>/dev/null
  echo "--- processes"; ps | grep -e volmgr -e udev | grep -v grep
  echo "--- kernel"; dmesg | tail -n 15
}
mapped() { [ -b "/dev/mapper/$1" ]; }
gone() { [ ! -e "$1" ]; }
hdr_hash() { dd if="$1" bs=1M count=16 2>/dev/null | sha256sum | cut -d' ' -f1; }
rp_of() { sed -n 's/^Recovery password: //p' "$1" | tr -d '\n'; }
dev_by_label() { blkid -t LABEL="$1" -o device 2>/dev/null | head -n 1; }
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

step 1 "make the volumes"
[ -c /dev/tpmrm0 ] || fail "no /dev/tpmrm0"
v format /dev/vda --force --recovery-password-file $K/rp-a $FAST >/dev/null
rp_of $K/rp-a >$K/rp-a.txt
v protector add /dev/vda tpm --key-file $K/rp-a.txt >/dev/null
v format /dev/vdb --force --recovery-password-file $K/rp-b $FAST >/dev/null
rp_of $K/rp-b >$K/rp-b.txt
v protector add /dev/vdb tpm --pcrs 16 --key-file $K/rp-b.txt >/dev/null
RID_B=$(sed -n 's/^Volume protector ID: //p' $K/rp-b | cut -c1-8 | tr 'a-f' 'A-F')
[ ${#RID_B} -eq 8 ] || fail "no recovery ID for vdb"
printf 'correct horse battery staple\n' >$K/pass
v format /dev/vdc --force --new-key-file $K/pass --no-recovery-password $FAST >/dev/null
printf 'plainpass' | cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 \
  --pbkdf-force-iterations 1000 -q /dev/vdd --key-file -
mkfs.ext4 -q /dev/vde
printf 'plainpass' | cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 \
  --pbkdf-force-iterations 1000 -q --subsystem volmgr /dev/vdf --key-file -
HOT=/dev/vdg
readlink -f /sys/block/vdg/device | grep -q '0000:00:1f.0' ||
  fail "vdg is not the hot-plug disk (PCI slot 0x1f): $(readlink -f /sys/block/vdg/device)"
v format $HOT --force --label hotdisk --recovery-password-file $K/rp-h $FAST >/dev/null
rp_of $K/rp-h >$K/rp-h.txt
v protector add $HOT tpm --key-file $K/rp-h.txt >/dev/null
UUID_A=$(cryptsetup luksUUID /dev/vda)
UUID_B=$(cryptsetup luksUUID /dev/vdb)
UUID_C=$(cryptsetup luksUUID /dev/vdc)
HASH_C=$(hdr_hash /dev/vdc)

step 2 "install the rule, helper and config; a FIFO stands in for the console"
cp /etc/volmgr-guest/90-volmgr.rules /lib/udev/rules.d/90-volmgr.rules
cp /etc/volmgr-guest/volmgr-udev /lib/volmgr/volmgr-udev
chmod 0755 /lib/volmgr/volmgr-udev
mkfifo /run/console-b /run/console-c
cat >/etc/volmgr/volumes.conf <<EOF
# the boot volumes of this test
sys     UUID=$UUID_A   discard
pcrvol  UUID=$UUID_B   timeout=120,console=/run/console-b
*       *              timeout=6,console=/run/console-c
EOF

step 3 "rule match (udevadm test): our volumes and nothing else"
for d in vda vdb vdc vdg; do
  udevadm test --action=add /sys/block/$d >/tmp/t.$d 2>&1 || true
  grep -q 'VOLMGR_VOLUME=1' /tmp/t.$d || fail "$d: VOLMGR_VOLUME=1 missing: $(tail -n 30 /tmp/t.$d)"
  grep -q "/lib/volmgr/volmgr-udev add /dev/$d" /tmp/t.$d ||
    fail "$d: no RUN of the helper: $(grep -i run /tmp/t.$d)"
done
grep -q 'VOLMGR_NAME=sys' /tmp/t.vda || fail "vda not named from the config"
grep -q 'VOLMGR_NAME=hotdisk' /tmp/t.vdg || fail "hot disk not named by its label"
grep -q "VOLMGR_NAME=volmgr-$UUID_C" /tmp/t.vdc || fail "vdc name not derived from its UUID"
for d in vdd vde vdf; do
  udevadm test --action=add /sys/block/$d >/tmp/t.$d 2>&1 || true
  grep -q 'volmgr-udev' /tmp/t.$d && fail "$d matched: $(grep volmgr /tmp/t.$d)"
  grep -q 'VOLMGR_VOLUME=1' /tmp/t.$d && fail "$d called a volmgr volume"
done
grep -q 'ID_FS_TYPE=crypto_LUKS' /tmp/t.vdf || fail "vdf: blkid did not see LUKS"
# What udev's blkid builtin exports: no ID_FS_SUBSYSTEM (hence the probe).
udevadm test-builtin blkid /sys/block/vda >/tmp/builtin 2>&1 || true
data udev_blkid_has_subsystem "$(grep -c 'ID_FS_SUBSYSTEM' /tmp/builtin || true)"
# Under systemd the same rule asks for the unit instead of RUN.
mkdir -p /run/systemd/system
udevadm test --action=add /sys/block/vda >/tmp/t.sd 2>&1 || true
rmdir /run/systemd/system
MM=$(cat /sys/block/vda/dev)
grep -q "SYSTEMD_WANTS=volmgr-unlock@$MM.service" /tmp/t.sd ||
  fail "systemd branch: $(grep -i -e wants -e run /tmp/t.sd)"
grep -q 'volmgr-udev' /tmp/t.sd && fail "systemd branch also RUNs the helper"
udevadm test --action=remove /sys/block/vda >/tmp/t.rm 2>&1 || true

step 4 "'firmware update': extend PCR 16; boot: syslogd, udevd, coldplug"
tpm2_pcrextend "16:sha256=$(printf 'volmgr-udev-fw' | sha256sum | cut -d' ' -f1)"
syslogd -O $LOG
/lib/systemd/systemd-udevd --daemon
udevadm trigger --action=add --subsystem-match=block
udevadm settle --timeout=60 || true
wait_for 60 mapped sys || fail "no /dev/mapper/sys: $(diag)"
wait_for 60 mapped hotdisk || fail "no /dev/mapper/hotdisk: $(diag)"
wait_for 30 in_log 'vda: unlocked as /dev/mapper/sys with its TPM' || fail "log: $(cat $LOG)"
wait_for 30 in_log 'vdg: unlocked as /dev/mapper/hotdisk with its TPM' || fail "log: $(cat $LOG)"
cryptsetup status sys | grep -q 'discards' || fail "discard option not applied"

step 5 "PCR 16 changed: vdb stays locked, the log says why, the prompt shows the ID"
wait_for 30 in_log "vdb: the TPM did not unlock it: .*PCR 16 changed" || fail "log: $(cat $LOG)"
wait_for 30 in_log "Enter the recovery password for ID $RID_B to unlock pcrvol" ||
  fail "no prompt with ID $RID_B: $(cat $LOG)"
mapped pcrvol && fail "pcrvol mapped without a key"
echo "wrong-answer" >/run/console-b
wait_for 30 in_log 'vdb: that key did not unlock it (attempt 1 of 3)' || fail "wrong key: $(cat $LOG)"
{ cat $K/rp-b.txt; echo; } >/run/console-b
wait_for 30 mapped pcrvol || fail "recovery password did not open vdb: $(cat $LOG)"
wait_for 30 in_log 'vdb: unlocked as /dev/mapper/pcrvol with its recovery password' || fail "log: $(cat $LOG)"
in_log 'run `volmgr reseal /dev/vdb`' || fail "no reseal hint: $(cat $LOG)"

step 6 "passphrase only: prompt, no answer, timeout; left locked and untouched"
wait_for 30 in_log "vdc: Enter the passphrase to unlock volmgr-$UUID_C" || fail "no prompt: $(cat $LOG)"
wait_for 30 in_log 'vdc: left locked and untouched: no answer within' || fail "no timeout: $(cat $LOG)"
mapped "volmgr-$UUID_C" && fail "vdc mapped"
no_unlocks() { ! ps | grep -v grep | grep -q 'volmgr unlock'; }
wait_for 10 no_unlocks || fail "an unlock is still running: $(ps | grep volmgr)"
[ "$(hdr_hash /dev/vdc)" = "$HASH_C" ] || fail "vdc header changed"
for n in vdd vde vdf; do
  grep -q "$n:" $LOG && fail "$n reached volmgr: $(grep "$n:" $LOG)"
done
[ "$(dmsetup ls --target crypt | grep -c .)" -eq 3 ] || fail "mappings: $(dmsetup ls)"

step 7 "repeated add/change events do nothing"
udevadm trigger --action=change /sys/block/vda
udevadm trigger --action=add /sys/block/vda
udevadm settle --timeout=30 || true
wait_for 20 in_log 'vda: already unlocked as /dev/mapper/sys; nothing to do' || fail "log: $(cat $LOG)"
[ "$(dmsetup ls --target crypt | grep -c '^sys')" -eq 1 ] || fail "mappings: $(dmsetup ls)"

step 8 "remove of a held mapping leaves it open"
mkfs.ext4 -q /dev/mapper/sys
mount /dev/mapper/sys /mnt/v
udevadm trigger --action=remove /sys/block/vda
wait_for 20 in_log 'vda: left /dev/mapper/sys open: .*in use' || fail "log: $(cat $LOG)"
mapped sys || fail "a held mapping was closed"
umount /mnt/v

step 9 "hot-unplug closes, hot-plug unlocks again (qemu device_del / device_add)"
hn=$(basename "$(readlink -f "$(dev_by_label hotdisk)")")
[ -n "$hn" ] || fail "hot disk not found"
udevadm monitor --kernel --subsystem-match=block >/tmp/monitor 2>&1 &
mon=$!
hotplug del 0
echo "hot disk $hn at $(readlink -f /sys/block/$hn/device)"
wait_for 60 gone /sys/block/$hn || fail "$hn did not go away: $(ls /sys/block) $(diag)"
wait_for 30 in_log "closed /dev/mapper/hotdisk" || fail "not closed on removal: $(cat $LOG)"
wait_for 10 gone /dev/mapper/hotdisk || fail "mapping still there"
hotplug add 0
wait_for 60 mapped hotdisk || fail "hot-plugged disk not unlocked: $(tail -n 20 $LOG)"
sleep 0.5
kill $mon
# uevent times (kernel monotonic clock): the disk's add -> the dm device's add
t_add=$(sed -n 's/^KERNEL\[\([0-9.]*\)\] add .*\/block\/vd[a-z] (block)$/\1/p' /tmp/monitor | tail -n 1)
t_dm=$(sed -n 's/^KERNEL\[\([0-9.]*\)\] change .*\/block\/dm-[0-9]* (block)$/\1/p' /tmp/monitor | tail -n 1)
[ -n "$t_add" ] && [ -n "$t_dm" ] || fail "uevents: $(cat /tmp/monitor)"
data hotplug_add_to_dm_ms "$(awk -v a="$t_add" -v b="$t_dm" 'BEGIN { printf "%d", (b - a) * 1000 }')"

echo "--- syslog"
cat $LOG
echo "volmgr udev VM test passed"
