#!/bin/bash
# volmgr integration: `volmgr unlock` (boot-time unlock, issue 6) on image
# files, plus the shipped udev/systemd/initramfs files. No device-mapper:
# the mapping itself is tested in the VM (tests/vm/cases/volmgr_udev.sh);
# here an accepted key ends in "unlocked but not mapped".
#
# --probe says VOLMGR_VOLUME=1 only for volmgr volumes (not plain LUKS2, not
# LUKS2 that merely carries the subsystem "volmgr", not ext4), with the name
# from volumes.conf, the LUKS2 label or the UUID, and VOLMGR_AUTO from
# noauto -> a bad volumes.conf is refused naming file and line -> the timed
# prompt on a FIFO console: no answer -> "no answer within 2 s", header
# untouched; a wrong then the right passphrase -> accepted; tpm-only and
# timeout=0 never ask -> remove of something never opened does nothing ->
# the unit passes `systemd-analyze verify`, the scripts `sh -n`.
# Usage: udev_unlock.sh PATH_TO_VOLMGR SOURCE_DIR BUILD_UDEV_DIR
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$(realpath "$0")")/lib.sh"
SRC_UDEV=$2/udev
BUILD_UDEV=$3

printf 'correct horse battery staple\n' >pass
CONF=$WORK/volumes.conf

# ---------------------------------------------------------------------------
step "1: probe tells volmgr volumes from the rest"
new_image vol.img 32M
expect_vm 0 format vol.img --new-key-file pass --no-recovery-password "${ARGON2[@]}"
UUID=$(cryptsetup luksUUID vol.img)
new_image lab.img 32M
expect_vm 0 format lab.img --new-key-file pass --label backup-disk --no-recovery-password "${ARGON2[@]}"
new_image plain.img 32M
printf x | cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
  -q plain.img --key-file - || fail "luksFormat"
new_image fake.img 32M
printf x | cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
  --subsystem volmgr -q fake.img --key-file - || fail "luksFormat --subsystem"
new_image ext.img 32M
mkfs.ext4 -q -F ext.img 2>/dev/null || dd if=/dev/zero of=ext.img bs=1M count=1 conv=notrunc 2>/dev/null
: >"$CONF"
expect_vm 0 unlock --probe vol.img --config "$CONF"
has "VOLMGR_VOLUME=1"
has "VOLMGR_NAME=volmgr-$UUID"
has "VOLMGR_AUTO=1"
expect_vm 0 unlock --probe lab.img --config "$CONF"
has "VOLMGR_NAME=backup-disk"
for img in plain.img fake.img ext.img; do
  expect_vm 0 unlock --probe $img --config "$CONF"
  has "VOLMGR_VOLUME=0"
  lacks "VOLMGR_NAME"
done
# Listed by UUID: its name; noauto turns the automatic unlock off.
printf 'data UUID=%s noauto\n' "$UUID" >"$CONF"
expect_vm 0 unlock --probe vol.img --config "$CONF"
has "VOLMGR_NAME=data"
has "VOLMGR_AUTO=0"
printf '* * noauto\n' >"$CONF"
expect_vm 0 unlock --probe lab.img --config "$CONF"
has "VOLMGR_AUTO=0"

# ---------------------------------------------------------------------------
step "2: a bad volumes.conf is refused, naming file and line"
printf 'data UUID=%s\nbad /dev/x frobnicate\n' "$UUID" >"$CONF"
expect_vm 2 unlock vol.img --config "$CONF"
has "volumes.conf:2: unknown option 'frobnicate'"

# ---------------------------------------------------------------------------
step "3: no answer on the console: gives up after the timeout, header untouched"
mkfifo console
printf '* * console=%s,timeout=2\n' "$WORK/console" >"$CONF"
snapshot vol.img
SECONDS_BEFORE=$SECONDS
expect_vm 5 unlock --udev vol.img --config "$CONF"
has "not unlocked without typing: it has no TPM protector"
has "Enter the passphrase to unlock volmgr-$UUID (vol.img)"
has "left locked and untouched: no answer within 2 s"
(( SECONDS - SECONDS_BEFORE <= 10 )) || fail "took $((SECONDS - SECONDS_BEFORE)) s for a 2 s timeout"
unchanged vol.img

# ---------------------------------------------------------------------------
step "4: a wrong, then the right passphrase through the console"
printf '* * console=%s,timeout=30,tries=3\n' "$WORK/console" >"$CONF"
(
  printf 'wrong passphrase\n' >console
  # The next prompt reopens the FIFO; write when the first answer was read.
  sleep 2
  cat pass >console
) &
feeder=$!
expect_vm 8 unlock --udev vol.img --config "$CONF"
wait $feeder
has "that key did not unlock it (attempt 1 of 3)"
has "unlocked but not mapped"   # the key was accepted; the host has no dm
unchanged vol.img

# ---------------------------------------------------------------------------
step "5: tpm-only and timeout=0 never ask"
printf '* * tpm-only,console=%s\n' "$WORK/console" >"$CONF"
expect_vm 5 unlock --udev vol.img --config "$CONF"
has "left locked and untouched (tpm-only)"
lacks "Enter the"
expect_vm 5 unlock --udev vol.img --config /nonexistent/volumes.conf --timeout 0
has "timeout=0: no prompt"

# ---------------------------------------------------------------------------
step "6: remove of a volume unlock never opened does nothing; add of plain LUKS neither"
expect_vm 0 unlock --udev --action remove vol.img --config "$CONF"
has "nothing to close"
expect_vm 0 unlock --udev plain.img --config "$CONF"
has "not a volmgr volume; left alone"

# ---------------------------------------------------------------------------
step "7: the unit verifies, the scripts parse"
require_tools systemd-analyze
mkdir -p units
sed "s|/bin/volmgr|$VOLMGR|g" "$BUILD_UDEV/guest/volmgr-unlock@.service" \
  >"units/volmgr-unlock@.service"
# An instance. The rule asks for volmgr-unlock@<major>:<minor>.service, but
# systemd-analyze 252 cannot verify a *file* whose name holds a ':'
# ("Couldn't process aliases"), so the instance here is "vda".
cp "units/volmgr-unlock@.service" "units/volmgr-unlock@vda.service"
run systemd-analyze verify --man=no "units/volmgr-unlock@vda.service"
[[ $LAST_RC -eq 0 ]] || fail "systemd-analyze verify: exit $LAST_RC: $(err)"
# Unknown keys, bad values, missing executables are warnings naming the file.
if grep -q 'volmgr-unlock@vda.service' "$WORK/.stderr"; then
  fail "systemd-analyze verify: $(err)"
fi
for f in "$BUILD_UDEV/volmgr-udev" "$BUILD_UDEV/initramfs-tools/hooks/volmgr" \
  "$BUILD_UDEV/initramfs-tools/scripts/local-top/volmgr" \
  "$BUILD_UDEV/dracut/90volmgr/volmgr-unlock-all.sh"; do
  sh -n "$f" || fail "sh -n $f"
done
bash -n "$BUILD_UDEV/dracut/90volmgr/module-setup.sh" || fail "bash -n module-setup.sh"
grep -qE '@[A-Z_]+@' "$BUILD_UDEV/90-volmgr.rules" && fail "unsubstituted @VAR@ in the rule"
[[ -f $SRC_UDEV/volumes.conf.example ]] || fail "no volumes.conf.example"
# The example file parses (its entries are commented out; uncommented too).
sed 's/^#\([a-z*]\)/\1/' "$SRC_UDEV/volumes.conf.example" | grep -v '^#' >example.conf
expect_vm 0 unlock --probe vol.img --config example.conf

finish
