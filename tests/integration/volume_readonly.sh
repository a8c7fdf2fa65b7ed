#!/bin/bash
# volmgr integration: commands that must not write, and devices that cannot
# be written (issue 17, items 10 and 13).
#
#  - On a read-only file system (a tmpfs remounted ro: every write gets
#    EROFS), every command that changes the volume fails as an I/O error
#    (exit 10) with a message naming the cause, and the image is unchanged.
#  - Commands that only read never write, not even to "repair" a header:
#    with the primary LUKS2 header copy damaged, libcryptsetup rewrites it
#    from the secondary on every writable load, which destroys the evidence
#    `volmgr-recover check` needs. sha256 of the whole image before = after,
#    for each read-only verb.
#
# Usage: volume_readonly.sh PATH_TO_VOLMGR
# Needs root for mount (skipped without it).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$(realpath "$0")")/lib.sh"

printf 'correct horse battery staple\n' >pass
img_sum() { sha256sum "$1" | cut -d' ' -f1; }
# same IMG SUM: the whole image still hashes to SUM.
same() { [[ $(img_sum "$1") == "$2" ]] || fail "$1 changed (sha256 before != after)"; }

step "1: a volume (passphrase, recovery password) on a tmpfs remounted read-only"
mkdir ro
if ! mount -t tmpfs -o size=80m volmgr-test ro 2>/dev/null; then
  echo "SKIP [$TEST_NAME]: cannot mount a tmpfs (not root?)"
  exit $SKIP
fi
on_exit "umount -l '$WORK/ro'"
new_image ro/v.img 32M
expect_vm 0 format ro/v.img --new-key-file pass --recovery-password-file ro/v.rp --json "${ARGON2[@]}"
RP_ID=$(out | jq -r .recovery_id)
PASS_ID=$(out | jq -r '.protectors[] | select(.kind=="passphrase") | .id')
out | jq -j .recovery_password >rp
expect_vm 0 header backup ro/v.img v.hdr
mount -o remount,ro "$WORK/ro"
if touch ro/probe 2>/dev/null; then fail "the tmpfs is still writable"; fi
SUM=$(img_sum ro/v.img)

step "2: protector remove on a read-only file system: I/O error (10), unchanged"
expect_vm 10 protector remove ro/v.img "$RP_ID"
has "read-only file system"
lacks "internal error"
same ro/v.img "$SUM"

step "3: format --force on a read-only file system: I/O error (10), unchanged"
expect_vm 10 format ro/v.img --force --no-recovery-password --new-key-file pass "${ARGON2[@]}"
has "read-only file system"
same ro/v.img "$SUM"

step "4: every other change: I/O error (10), unchanged"
printf 'another passphrase 2\n' >pass2
expect_vm 10 protector add ro/v.img passphrase --new-key-file pass2 --key-file pass "${ARGON2[@]}"
has "read-only file system"
same ro/v.img "$SUM"
expect_vm 10 protector add ro/v.img recovery-password --key-file pass
has "read-only file system"
same ro/v.img "$SUM"
expect_vm 10 recovery-password rotate ro/v.img --key-file pass
has "read-only file system"
same ro/v.img "$SUM"
expect_vm 10 header restore ro/v.img v.hdr
has "read-only file system"
same ro/v.img "$SUM"

step "5: reading still works on the read-only file system"
expect_vm 0 status ro/v.img
expect_vm 0 open ro/v.img t --test --key-file pass
has "$PASS_ID"
expect_vm 0 open ro/v.img t --test --key-file rp
has "$RP_ID"
same ro/v.img "$SUM"

# ---------------------------------------------------------------------------
# damaged primary header: libcryptsetup would "repair" it on a writable load
step "6: damage the primary header copy (one byte of its JSON area)"
new_image d.img 32M
expect_vm 0 format d.img --new-key-file pass --json "${ARGON2[@]}"
out | jq -j .recovery_password >drp
D_RP_ID=$(out | jq -r .recovery_id)
# Offset 4096 + 100: inside the primary copy's JSON area; its checksum no
# longer matches, the secondary copy (at 16 KiB) is intact.
printf 'X' | dd of=d.img bs=1 seek=4196 conv=notrunc status=none
cp d.img d.pristine
DSUM=$(img_sum d.img)

step "7: status, status --json, protector list: nothing written"
expect_vm 0 status d.img
same d.img "$DSUM"
expect_vm 0 status d.img --json
same d.img "$DSUM"
expect_vm 0 protector list d.img
has "$D_RP_ID"
same d.img "$DSUM"
expect_vm 0 protector list d.img --json
same d.img "$DSUM"

step "8: the read-only verbs warn that a header copy is damaged"
expect_vm 0 status d.img
has "header copy"
has "volmgr-recover check"

step "9: open --test (passphrase, recovery password): nothing written"
expect_vm 0 open d.img t --test --key-file pass
same d.img "$DSUM"
expect_vm 0 open d.img t --test --key-file drp
has "$D_RP_ID"
same d.img "$DSUM"
expect_vm 6 open d.img t --test --key-file pass2
same d.img "$DSUM"

step "10: header backup: nothing written to the device"
expect_vm 0 header backup d.img d.hdr
same d.img "$DSUM"
expect 0 cryptsetup isLuks d.hdr

step "11: keypackage export: nothing written to the device"
expect_vm 0 keypackage export d.img --out d.vkp --key-file drp
same d.img "$DSUM"

step "12: unlock --probe (what udev runs for every LUKS2 disk): nothing written"
printf '' >volumes.conf
expect_vm 0 unlock --probe d.img --config volumes.conf
has "VOLMGR_VOLUME=1"
same d.img "$DSUM"

step "13: a refused header restore (backup of another volume) writes nothing"
expect_vm 5 header restore d.img v.hdr
has "use --force"
same d.img "$DSUM"

step "14: a change still repairs the header (writes are allowed there)"
expect_vm 0 protector add d.img passphrase --new-key-file pass2 --key-file pass "${ARGON2[@]}"
[[ $(img_sum d.img) != "$DSUM" ]] || fail "protector add wrote nothing"
expect_vm 0 open d.img t --test --key-file pass2
expect 0 cryptsetup open --test-passphrase d.img --key-file drp

step "15: a read-only block device (loop, --read-only): changes are I/O errors (10)"
if LOOP=$(losetup --read-only -f --show d.pristine 2>/dev/null); then
  on_exit "losetup -d '$LOOP'"
  LSUM=$(img_sum d.pristine)
  expect_vm 0 protector list "$LOOP"
  has "$D_RP_ID"
  expect_vm 10 protector remove "$LOOP" "$D_RP_ID"
  has "read-only device"
  expect_vm 10 protector add "$LOOP" recovery-password --key-file pass
  has "read-only device"
  same d.pristine "$LSUM"
  losetup -d "$LOOP"
else
  echo "[$TEST_NAME] no loop device: step 15 skipped"
fi

finish
