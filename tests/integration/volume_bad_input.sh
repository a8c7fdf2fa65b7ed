#!/bin/bash
# volmgr integration: evil and mistaken inputs.
#
# Each refused operation must give the documented exit code, a message that
# says what is wrong, and leave the device as it was (header area sha256 and
# `cryptsetup luksDump` compared before and after).
#
# Usage: volume_bad_input.sh PATH_TO_VOLMGR
#
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$(realpath "$0")")/lib.sh"

printf 'correct horse battery staple\n' >pass
printf 'an entirely wrong passphrase\n' >wrong
printf 'volume b passphrase\n' >passb

# tokens IMG: the LUKS2 tokens as JSON {"0": {...}, ...}
tokens() { cryptsetup luksDump --dump-json-metadata "$1" | jq '.tokens'; }
# token_id IMG TYPE: the id of the (first) token of TYPE
token_id() { tokens "$1" | jq -r --arg t "$2" '[to_entries[] | select(.value.type == $t) | .key][0]'; }
# typo RP GROUP SEP: RP with the last digit of group GROUP changed by +1
# (mod 10); a change of +1 or -9 is never a multiple of 11, so the group is
# always invalid. Groups joined by SEP.
typo() {
  local IFS=- g
  read -ra g <<<"$1"
  local x=${g[$2 - 1]}
  g[$2 - 1]=${x:0:5}$(((${x:5:1} + 1) % 10))
  local s=""
  for x in "${g[@]}"; do s+=${s:+$3}$x; done
  printf '%s\n' "$s"
}

# ---------------------------------------------------------------------------
step "1: set up volume A (passphrase, recovery password, startup key)"
new_image a.img 32M
expect_vm 0 format a.img --new-key-file pass --startup-key a.bek --json "${ARGON2[@]}"
RP=$(out | jq -r .recovery_password)
RP_ID=$(out | jq -r .recovery_id)
PASS_ID=$(out | jq -r '.protectors[] | select(.kind=="passphrase") | .id')
printf '%s\n' "$RP" >rp
snapshot a.img

step "2: wrong passphrase is refused (6)"
expect_vm 6 open a.img t --test --key-file wrong
has "opened no protector"
has "passphrase ${PASS_ID:0:8}"
lacks "an entirely wrong"
unchanged a.img
expect_vm 6 protector add a.img recovery-password --key-file wrong
unchanged a.img

step "3: recovery password typo names the group (2)"
for g in 1 2 5 8; do
  typo "$RP" $g - >typo.dashes
  expect_vm 2 open a.img t --test --key-file typo.dashes
  has "group $g is not a valid recovery-password group"
  typo "$RP" $g "" >typo.plain
  expect_vm 2 open a.img t --test --key-file typo.plain
  has "group $g is not a valid"
done
typo "$RP" 3 " " >typo.spaces
expect_vm 2 open a.img t --test --key-file typo.spaces
has "group 3 is not a valid"
run cryptsetup open --test-passphrase a.img --key-file typo.dashes
[[ $LAST_RC -ne 0 ]] || fail "stock cryptsetup accepted a typo"
unchanged a.img

step "4: recovery password of the wrong length (2); valid-looking but wrong (6)"
printf '%s\n' "${RP:0:54}" >short   # 47 digits
expect_vm 2 open a.img t --test --key-file short
has "47 digits; expected 48"
printf '%s-000000\n' "$RP" >long    # 9 groups
expect_vm 2 open a.img t --test --key-file long
has "54 digits; expected 48"
has "9 groups, not 8"
printf '%s1\n' "${RP//-/}" >long.plain
expect_vm 2 open a.img t --test --key-file long.plain
has "49 digits"
printf '000000-000000-000000-000000-000000-000000-000000-000000\n' >zero.rp
expect_vm 6 open a.img t --test --key-file zero.rp
has "recovery password ${RP_ID:0:8}"
unchanged a.img

step "5: --recovery-id that does not exist (3) and one that does"
expect_vm 3 open a.img t --test --key-file rp --recovery-id deadbeef
has "no recovery password with ID deadbeef"
has "$RP_ID"
expect_vm 0 open a.img t --test --key-file rp --recovery-id "${RP_ID:0:8}"
has "unlocks with protector $RP_ID (recovery password)"
expect_vm 6 open a.img t --test --key-file zero.rp --recovery-id "$RP_ID"
unchanged a.img

step "6: device too small (8 MiB) is refused (2) and left alone"
new_image small.img 8M
SUM=$(file_sum small.img)
expect_vm 2 format small.img --new-key-file pass "${ARGON2[@]}"
has "too small: 8 MiB"
has "at least 17 MiB"
[[ $(file_sum small.img) == "$SUM" ]] || fail "small.img was written"

step "7: an image holding ext4 is refused (5); --force overrides"
require_tools mkfs.ext4 fsck.ext4
new_image ext4.img 32M
expect 0 mkfs.ext4 -F -q ext4.img
SUM=$(file_sum ext4.img)
expect_vm 5 format ext4.img --new-key-file pass "${ARGON2[@]}"
has "ext4 filesystem"
has "--force"
[[ $(file_sum ext4.img) == "$SUM" ]] || fail "ext4.img was written"
expect 0 fsck.ext4 -n ext4.img
expect_vm 0 format ext4.img --new-key-file pass --no-recovery-password --force "${ARGON2[@]}"
expect_vm 0 open ext4.img t --test --key-file pass
run fsck.ext4 -n ext4.img
[[ $LAST_RC -ne 0 ]] || fail "the ext4 survived a forced format"

step "8: an existing volmgr volume is refused (5, mentions LUKS)"
expect_vm 5 format a.img --new-key-file pass "${ARGON2[@]}"
has "LUKS2 header"
has "--force"
unchanged a.img
expect_vm 0 open a.img t --test --key-file pass

step "9: an image attached to a loop device is busy (11)"
# losetup is always there; attaching needs root and a free loop device, which
# .ci/install cannot provide: only then is the step skipped.
require_tools losetup
new_image loop.img 32M
if LOOPDEV=$(losetup -f --show loop.img 2>/dev/null); then
  on_exit "losetup -d $LOOPDEV"
  SUM=$(file_sum loop.img)
  expect_vm 11 format loop.img --new-key-file pass "${ARGON2[@]}"
  has "attached to $LOOPDEV"
  has "close or unmount it first"
  [[ $(file_sum loop.img) == "$SUM" ]] || fail "loop.img was written"
  losetup -d "$LOOPDEV"
  expect_vm 0 format loop.img --new-key-file pass --no-recovery-password "${ARGON2[@]}"
else
  echo "  (losetup cannot attach here: step skipped)"
fi

step "10: a LUKS2 volume that volmgr did not create (5)"
new_image stock.img 32M
printf 'stockpass' >stockpass
expect 0 cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 \
  --pbkdf-force-iterations 1000 stock.img stockpass
snapshot stock.img
for cmd in "status stock.img" "protector list stock.img" \
  "open stock.img t --test --key-file stockpass" \
  "protector add stock.img recovery-password --key-file stockpass"; do
  # shellcheck disable=SC2086
  expect_vm 5 $cmd
  has "volmgr did not create"
  has "cryptsetup"
done
unchanged stock.img
expect 0 cryptsetup open --test-passphrase stock.img --key-file stockpass

step "11: a LUKS1 volume (5)"
new_image luks1.img 32M
expect 0 cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 \
  luks1.img stockpass
snapshot luks1.img
expect_vm 5 status luks1.img
has "LUKS1, not LUKS2"
expect_vm 5 open luks1.img t --test --key-file stockpass
has "LUKS2 only"
unchanged luks1.img

step "12: a device that does not exist (3)"
expect_vm 3 status nope.img
has "nope.img"
expect_vm 3 open nope.img t --test --key-file pass
has "No such file"
expect_vm 3 format nope.img --new-key-file pass "${ARGON2[@]}"
has "No such file"
[[ ! -e nope.img ]] || fail "format created nope.img"
expect_vm 3 protector list nope.img
expect_vm 3 header restore nope.img nope.hdr
[[ ! -e nope.img ]] || fail "header restore created nope.img"

step "13: a truncated volume (1 MiB) is reported as damaged (9)"
cp a.img trunc.img
truncate -s 1M trunc.img
# The primary header is intact but the device cannot hold the keyslot area:
# libcryptsetup refuses it, and since LUKS magic is present volmgr calls it
# corruption (9) and points at `header restore`.
expect_vm 9 status trunc.img
has "too small"
has "damaged"
has "header restore"
expect_vm 9 open trunc.img t --test --key-file pass
[[ $(stat -c %s trunc.img) -eq 1048576 ]] || fail "trunc.img changed size"

step "14: a startup key of the wrong format or of another volume is refused"
head -c 56 /dev/urandom >junk.bek
expect_vm 2 open a.img t --test --startup-key junk.bek
has "not a volmgr startup key"
new_image b.img 32M
expect_vm 0 format b.img --new-key-file passb --startup-key b.bek --no-recovery-password "${ARGON2[@]}"
vm open a.img t --test --startup-key b.bek
[[ $LAST_RC -eq 6 || $LAST_RC -eq 3 ]] || fail "another volume's startup key: exit $LAST_RC"
expect_vm 3 open a.img t --test --startup-key missing.bek
has "missing.bek"
expect_vm 3 open a.img t --test --key-file missing.pass
has "missing.pass"
unchanged a.img

# ---------------------------------------------------------------------------
# Tampered tokens. Work on a copy of A so the steps above keep a clean one.
step "15: wrapped_vmk with one character changed: that protector refuses (6), the others open"
cp a.img tok.img
PTOK=$(token_id tok.img volmgr-passphrase)
[[ $PTOK =~ ^[0-9]+$ ]] || fail "no passphrase token found"
expect 0 cryptsetup token export --token-id "$PTOK" tok.img
out >ptok.json
# Change a character in the middle (not the base64 padding bits at the end).
jq -c '.wrapped_vmk |= (.[0:20] + (if .[20:21] == "A" then "B" else "A" end) + .[21:])' \
  ptok.json >ptok.bad.json
[[ $(jq -r .wrapped_vmk ptok.json) != $(jq -r .wrapped_vmk ptok.bad.json) ]] || fail "jq edit did nothing"
expect 0 cryptsetup token import --token-id "$PTOK" --token-replace --json-file ptok.bad.json tok.img
snapshot tok.img
expect_vm 6 open tok.img t --test --key-file pass
has "opened no protector"
expect_vm 0 open tok.img t --test --startup-key a.bek
expect_vm 0 open tok.img t --test --key-file rp
unchanged tok.img

step "16: a passphrase token relabelled volmgr-startup-key is refused"
jq -c '.type = "volmgr-startup-key"' ptok.json >ptok.type.json
expect 0 cryptsetup token import --token-id "$PTOK" --token-replace --json-file ptok.type.json tok.img
snapshot tok.img
vm open tok.img t --test --key-file pass
[[ $LAST_RC -eq 3 || $LAST_RC -eq 6 ]] || fail "relabelled token: expected 3 or 6, got $LAST_RC"
# Offered the real startup key, the relabelled token must not open either
# (the wrap is bound to the kind); the genuine startup key still does.
expect_vm 0 open tok.img t --test --startup-key a.bek
lacks "$PASS_ID"
expect_vm 0 open tok.img t --test --key-file rp
unchanged tok.img

step "17: a token copied from volume A into volume B does not open B (UUID binding)"
cp b.img bcopy.img
# Both volumes have their VMK keyslot at 0, so the token's keyslot fits.
expect 0 cryptsetup token import --json-file ptok.json bcopy.img
snapshot bcopy.img
expect_vm 0 protector list bcopy.img --json
[[ $(out | jq length) -eq 3 ]] || fail "the copied token is not listed"
expect_vm 6 open bcopy.img t --test --key-file pass
has "opened no protector"
expect_vm 0 open bcopy.img t --test --key-file passb
unchanged bcopy.img

step "18: a protector kind from a newer volmgr is reported, skipped and kept"
cp a.img new.img
cat >quantum.json <<'EOF'
{"type":"volmgr-quantum","keyslots":[],"version":1,
 "id":"11111111-2222-4333-8444-555555555555","created":"2031-01-01T00:00:00Z",
 "description":"","params":{"qubits":4096},"wrapped_vmk":"AAAA"}
EOF
expect 0 cryptsetup token import --json-file quantum.json new.img
QTOK=$(token_id new.img volmgr-quantum)
expect_vm 0 status new.img
has "quantum"
has "unknown"
has "newer"
expect_vm 0 status new.img --json
out | jq -e '(.warnings | length) == 1 and (.warnings[0] | test("unknown")) and
  (.protectors | length) == 3' >/dev/null || fail "status --json warnings are wrong"
expect_vm 0 open new.img t --test --key-file pass
has "$PASS_ID"
expect_vm 0 protector add new.img recovery-password --key-file pass
expect_vm 0 protector remove new.img "$RP_ID"
[[ $(token_id new.img volmgr-quantum) == "$QTOK" ]] || fail "the unknown token was not kept"
expect 0 cryptsetup token export --token-id "$QTOK" new.img
out | jq -e '.params.qubits == 4096' >/dev/null || fail "the unknown token was changed"
# A known kind with a newer token version: skipped with a warning.
jq -c '.version = 2 | .id = "22222222-2222-4333-8444-555555555555"' ptok.json >pv2.json
expect 0 cryptsetup token import --json-file pv2.json new.img
expect_vm 0 status new.img
has "newer than this volmgr reads"
# A newer kind need not carry version-1 fields (id, params, wrapped_vmk):
# it must still be reported as unknown/newer, not as damaged.
printf '%s' '{"type":"volmgr-tpm3","keyslots":[],"version":1,"sealed":"AAAA"}' >tpm3.json
expect 0 cryptsetup token import --json-file tpm3.json new.img
expect_vm 0 status new.img
has "tpm3"
lacks "damaged"
expect_vm 0 open new.img t --test --key-file pass
[[ $(token_id new.img volmgr-tpm3) != null ]] || fail "the tpm3 token was dropped"

step "19: no credential and no terminal: exit 5 suggesting --key-file"
expect_vm 5 open a.img t --test
has "no terminal"
has "--key-file"
expect_vm 5 protector add a.img recovery-password
has "--key-file"
expect_vm 5 recovery-password rotate a.img
expect_vm 5 format loop.img --passphrase --force "${ARGON2[@]}"
has "--key-file"
unchanged a.img

step "20: key files are never overwritten (4), before anything is written"
printf 'precious\n' >existing
SUM=$(file_sum existing)
expect_vm 4 protector add a.img startup-key --out existing --key-file pass
has "existing exists"
[[ $(file_sum existing) == "$SUM" ]] || fail "existing was changed"
unchanged a.img
new_image fresh.img 32M
FRESH=$(file_sum fresh.img)
expect_vm 4 format fresh.img --new-key-file pass --recovery-password-file existing "${ARGON2[@]}"
has "never overwrites"
[[ $(file_sum fresh.img) == "$FRESH" ]] || fail "format wrote fresh.img before refusing"
expect_vm 4 format fresh.img --new-key-file pass --startup-key existing "${ARGON2[@]}"
[[ $(file_sum fresh.img) == "$FRESH" ]] || fail "format wrote fresh.img before refusing"
expect_vm 4 protector add a.img recovery-password --out existing --key-file pass
unchanged a.img
[[ $(file_sum existing) == "$SUM" ]] || fail "existing was changed"

step "21: bad values refused before writing (2)"
printf 'short\n' >shortpass
expect_vm 2 format fresh.img --new-key-file shortpass "${ARGON2[@]}"
has "shorter than 8"
expect_vm 2 format fresh.img --no-recovery-password
has "no protector requested"
expect_vm 2 format fresh.img --new-key-file pass --argon2-time 1 --argon2-memory 1
has "memory_kib"
[[ $(file_sum fresh.img) == "$FRESH" ]] || fail "fresh.img was written"
expect_vm 2 protector add a.img passphrase --new-key-file shortpass --key-file pass "${ARGON2[@]}"
expect_vm 2 protector add a.img startup-key --key-file pass
has "--out"
unchanged a.img
mkdir adir
expect_vm 2 format adir --new-key-file pass "${ARGON2[@]}"
has "neither a block device nor a file"
expect_vm 2 status adir

step "22: usage errors exit 1 (CLI11)"
expect_vm 1 format fresh.img --new-key-file pass --sector-size 1024 "${ARGON2[@]}"
has "1024 not in {512,4096}"
expect_vm 1 format
has "DEVICE is required"
expect_vm 1 format fresh.img --bogus-option
expect_vm 1 protector add a.img quantum --key-file pass
has "quantum not in"
[[ $(file_sum fresh.img) == "$FRESH" ]] || fail "fresh.img was written"
unchanged a.img

step "23: open (mapping) without device-mapper: exit 8 naming device-mapper"
if grep -q ' device-mapper$' /proc/misc 2>/dev/null; then
  echo "  (this kernel has device-mapper: step skipped)"
else
  expect_vm 8 open a.img volmgr-test-$$ --key-file pass
  has "device-mapper"
  unchanged a.img
fi

finish
