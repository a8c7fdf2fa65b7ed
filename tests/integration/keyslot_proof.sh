#!/bin/bash
# volmgr integration: a new recovery password is proved on stock
# cryptsetup's path before it is promised (issue 17, item 8).
#
# volmgr opens through the wrapped FVEK, stock cryptsetup through the LUKS2
# keyslot that the recovery password opens. `format`, `recovery-password
# rotate` and `protector add recovery-password` end by opening that keyslot
# (crypt_activate_by_passphrase on it, as `cryptsetup open` does). A disk
# that loses the keyslot's writes (LD_PRELOAD lost_writes_preload.so drops
# every write to the keyslot's area) must make them fail (exit 10) instead
# of printing a recovery password that opens nothing in cryptsetup; a
# rotation that fails keeps the old password.
#
# Usage: keyslot_proof.sh PATH_TO_VOLMGR PATH_TO_lost_writes_preload.so
PRELOAD=$(realpath "${2:?usage: $0 VOLMGR PRELOAD}")
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$(realpath "$0")")/lib.sh"
printf 'correct horse battery staple\n' >pass

# area IMG SLOT: "START:END" of keyslot SLOT's area.
area() {
  cryptsetup luksDump --dump-json-metadata "$1" |
    jq -r --arg s "$2" '.keyslots[$s].area |
      "\(.offset | tonumber):\((.offset | tonumber) + (.size | tonumber))"'
}
# new_slot BEFORE AFTER: the keyslot number in AFTER that is not in BEFORE.
new_slot() {
  comm -13 <(cryptsetup luksDump --dump-json-metadata "$1" | jq -r '.keyslots | keys[]' | sort) \
    <(cryptsetup luksDump --dump-json-metadata "$2" | jq -r '.keyslots | keys[]' | sort)
}
# lossy RANGE IMG ARGS...: volmgr ARGS with writes to RANGE of IMG lost.
lossy() {
  local range=$1 img=$2
  shift 2
  LAST_CMD="(writes to $range of $img lost) volmgr $*"
  set +e
  VOLMGR_TEST_LOST_FILE=$img VOLMGR_TEST_LOST_RANGE=$range LD_PRELOAD=$PRELOAD \
    setsid -w "$VOLMGR" "$@" </dev/null >"$WORK/.stdout" 2>"$WORK/.stderr"
  LAST_RC=$?
  set -e
}

step "0: the preload drops writes (self-test)"
new_image s.img 1M
VOLMGR_TEST_LOST_FILE=s.img VOLMGR_TEST_LOST_RANGE=4096:8192 LD_PRELOAD=$PRELOAD \
  dd if=/dev/urandom of=s.img bs=4096 count=3 conv=notrunc status=none
[[ $(dd if=s.img bs=4096 skip=1 count=1 status=none | tr -d '\0' | wc -c) -eq 0 ]] ||
  fail "the preload did not drop the write to 4096..8192"
[[ $(dd if=s.img bs=4096 count=1 status=none | tr -d '\0' | wc -c) -gt 0 ]] ||
  fail "the preload dropped a write outside its range"

step "1: the layout: where format puts the recovery password's keyslot"
new_image ref.img 32M
expect_vm 0 format ref.img --json
RP_SLOT=$(cryptsetup luksDump --dump-json-metadata ref.img |
  jq -r '.tokens[] | select(.type == "volmgr-recovery-password") | .keyslots[0]')
RANGE=$(area ref.img "$RP_SLOT")
echo "[$TEST_NAME] recovery keyslot $RP_SLOT at $RANGE"

step "2: format on a disk that loses the recovery keyslot: not a success"
new_image f.img 32M
lossy "$RANGE" f.img format f.img --json
if [[ $LAST_RC -eq 0 ]]; then
  out | jq -j .recovery_password >f.rp
  cryptsetup open --test-passphrase f.img --key-file f.rp ||
    fail "format succeeded, but stock cryptsetup does not open with its recovery password"
fi
[[ $LAST_RC -eq 10 ]] || fail "expected exit code 10, got $LAST_RC"
has "stock cryptsetup"
lacks '"recovery_password"'

step "3: protector add recovery-password on such a disk: refused, nothing added"
new_image a.img 32M
expect_vm 0 format a.img --new-key-file pass --json "${ARGON2[@]}"
out | jq -j .recovery_password >a.rp
cp a.img probe.img
expect_vm 0 protector add probe.img recovery-password --key-file pass
RANGE=$(area probe.img "$(new_slot a.img probe.img)")
N0=$(protector_count a.img)
lossy "$RANGE" a.img protector add a.img recovery-password --key-file pass --json
if [[ $LAST_RC -eq 0 ]]; then
  out | jq -j .recovery_password >a2.rp
  cryptsetup open --test-passphrase a.img --key-file a2.rp ||
    fail "protector add succeeded, but stock cryptsetup does not open with the new recovery password"
fi
[[ $LAST_RC -eq 10 ]] || fail "expected exit code 10, got $LAST_RC"
has "stock cryptsetup"
[[ $(protector_count a.img) -eq $N0 ]] || fail "a protector was left behind"
expect 0 cryptsetup open --test-passphrase a.img --key-file a.rp

step "4: rotate on such a disk: refused; the old recovery password still opens"
cp a.img probe2.img
expect_vm 0 recovery-password rotate probe2.img --key-file pass
RANGE=$(area probe2.img "$(new_slot a.img probe2.img)")
lossy "$RANGE" a.img recovery-password rotate a.img --key-file pass --json
if [[ $LAST_RC -eq 0 ]]; then
  out | jq -j .recovery_password >a3.rp
  cryptsetup open --test-passphrase a.img --key-file a3.rp ||
    fail "rotate succeeded, but stock cryptsetup does not open with the new recovery password"
fi
[[ $LAST_RC -eq 10 ]] || fail "expected exit code 10, got $LAST_RC"
has "stock cryptsetup"
expect 0 cryptsetup open --test-passphrase a.img --key-file a.rp
expect_vm 0 open a.img t --test --key-file a.rp
[[ $(protector_count a.img) -eq $N0 ]] || fail "rotate changed the protectors"

step "5: on a sound disk all three still succeed and cryptsetup opens"
expect_vm 0 protector add a.img recovery-password --key-file pass --json
out | jq -j .recovery_password >a4.rp
A4_ID=$(out | jq -r .id)
expect 0 cryptsetup open --test-passphrase a.img --key-file a4.rp
expect_vm 0 recovery-password rotate a.img --id "$A4_ID" --key-file pass --json
out | jq -j .recovery_password >a5.rp
expect 0 cryptsetup open --test-passphrase a.img --key-file a5.rp

finish
