#!/bin/bash
# volmgr integration: a careful admin's mistakes (issue 17, items 11, 16).
#
#  - A recovery password with one mistyped letter (O for 0, l for 1) is a
#    recovery-password typo: exit 2 naming the group and the character, not
#    a passphrase that opened nothing (exit 6). A real passphrase that only
#    resembles a recovery password still opens as a passphrase.
#  - The file `--recovery-password-file` writes is read back by `--key-file`
#    (open, protector add, rotate, keypackage export), and `recovery-password
#    rotate` says what it cannot retire: key packages exported before.
#
# Usage: volume_typos.sh PATH_TO_VOLMGR
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$(realpath "$0")")/lib.sh"

printf 'correct horse battery staple\n' >pass

# letter_for RP DIGIT LETTER: RP with the first DIGIT (else the first digit of
# group 3) replaced by LETTER; prints "TEXT POSITION GROUP".
letter_for() {
  local rp=$1 d=$2 l=$3 i pos=-1
  for ((i = 0; i < ${#rp}; i++)); do
    if [[ ${rp:i:1} == "$d" ]]; then pos=$i; break; fi
  done
  ((pos >= 0)) || pos=14
  printf '%s %d %d\n' "${rp:0:pos}$l${rp:pos+1}" $((pos + 1)) $((pos / 7 + 1))
}

step "1: a volume with a passphrase and a recovery password (file written)"
new_image a.img 32M
expect_vm 0 format a.img --new-key-file pass --recovery-password-file a.recovery --json "${ARGON2[@]}"
RP=$(out | jq -r .recovery_password)
RP_ID=$(out | jq -r .recovery_id)
snapshot a.img

step "2: O for 0 is a recovery-password typo (2): group and character named"
for pair in "0 O" "0 o" "1 l" "1 I"; do
  read -r d l <<<"$pair"
  read -r text pos group <<<"$(letter_for "$RP" "$d" "$l")"
  printf '%s\n' "$text" >typo
  expect_vm 2 open a.img t --test --key-file typo
  has "character $pos (in group $group)"
  lacks "opened no protector"
  lacks "$text"
  unchanged a.img
  # Without dashes, too.
  printf '%s\n' "${text//-/}" >typo.plain
  expect_vm 2 open a.img t --test --key-file typo.plain
  has "in group $group"
  unchanged a.img
done

step "3: the typo wins over a passphrase that opens nothing, also for protector add"
read -r text pos group <<<"$(letter_for "$RP" 0 O)"
printf '%s\n' "$text" >typo
expect_vm 2 protector add a.img recovery-password --key-file typo
has "in group $group"
unchanged a.img

step "4: a passphrase shaped like a recovery password still opens as a passphrase"
new_image p.img 32M
printf 'abcdef-123456-ghijkl-654321-mnopqr-111111-stuvwx-222222\n' >shaped
expect_vm 0 format p.img --new-key-file shaped --no-recovery-password "${ARGON2[@]}"
expect_vm 0 open p.img t --test --key-file shaped
has "passphrase"

step "5: --key-file reads the file --recovery-password-file wrote (open)"
head -1 a.recovery | grep -q '^volmgr recovery password$' || fail "unexpected file format: $(cat a.recovery)"
expect_vm 0 open a.img t --test --key-file a.recovery
has "$RP_ID"
unchanged a.img
expect_vm_in 0 a.recovery open a.img t --test --key-file -
has "$RP_ID"

step "6: ... and for protector add, rotate, keypackage export"
expect_vm 0 keypackage export a.img --out a.vkp --key-file a.recovery
has "$RP_ID"
expect_vm 0 protector add a.img recovery-password --key-file a.recovery --out b.recovery --json
B_ID=$(out | jq -r .id)
expect_vm 0 open a.img t --test --key-file b.recovery
has "$B_ID"

step "7: rotate: the old file stops working; the new file works; key packages are named"
expect_vm 0 recovery-password rotate a.img --id "$RP_ID" --key-file a.recovery --recovery-password-file c.recovery
has "key package"
has "keypackage export"
NEW_ID=$(sed -n 's/^Volume protector ID: //p' c.recovery)
expect_vm 0 open a.img t --test --key-file c.recovery
has "$NEW_ID"
vm open a.img t --test --key-file a.recovery
[[ $LAST_RC -eq 3 || $LAST_RC -eq 6 ]] || fail "the rotated-away file must not open (got $LAST_RC)"
# Stock cryptsetup reads the password line of the same file.
sed -n 's/^Recovery password: //p' c.recovery | tr -d '\n' >c.txt
expect 0 cryptsetup open --test-passphrase a.img --key-file c.txt

step "8: a recovery-password file of another volume: says so (3), names the ID"
new_image o.img 32M
expect_vm 0 format o.img --recovery-password-file o.recovery
O_ID=$(sed -n 's/^Volume protector ID: //p' o.recovery)
expect_vm 3 open a.img t --test --key-file o.recovery
has "$O_ID"

finish
