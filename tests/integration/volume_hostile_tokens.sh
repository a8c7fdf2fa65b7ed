#!/bin/bash
# volmgr integration: hostile JSON in volmgr's own tokens, and hostile text
# from the header on the terminal (issue 17, items 5 and 12).
#
# Item 5: a field of the wrong JSON type (a number where a string belongs, an
# array where a string belongs) made nlohmann throw type_error, nothing
# caught it, and every command died of SIGABRT (exit 134): status, open even
# with a valid recovery password, protector remove of the bad token, header
# backup, keypackage export, volmgr-recover extract/verify, and `unlock
# --probe`, which udev runs for every LUKS2 disk plugged in. For each damaged
# token here, every one of those commands must: not die (never 134, and
# never 70, the exit code of an exception caught at main), give the same exit
# code as on the intact volume, name the damaged token in a warning, leave the
# image byte-for-byte unchanged (read-only verbs), and `protector remove`
# must then remove the damaged token.
#
# The same for a file store's protector record (`files status|decrypt`).
#
# Item 12: a LUKS2 label, a token's description or file hint, an unknown
# token type, a damaged header's fields: printed in text output with every
# non-printable byte escaped (\xHH), never raw.
#
# Usage: volume_hostile_tokens.sh PATH_TO_VOLMGR PATH_TO_VOLMGR_RECOVER
# shellcheck source=tests/integration/recover_lib.sh
source "$(dirname "$(realpath "$0")")/recover_lib.sh"

# tokens IMG: the LUKS2 tokens as JSON {"0": {...}, ...}
tokens() { cryptsetup luksDump --dump-json-metadata "$1" | jq '.tokens'; }
# token_id IMG TYPE: the id of the (first) token of TYPE
token_id() { tokens "$1" | jq -r --arg t "$2" '[to_entries[] | select(.value.type == $t) | .key][0]'; }

# sane: the last command did not end in an uncaught exception: 134 (SIGABRT
# from std::terminate) before the fix, 70 (caught at main) after it. Either
# means some input still reaches a throwing JSON read.
sane() {
  [[ $LAST_RC -ne 134 && $LAST_RC -ne 70 ]] ||
    fail "died of an uncaught exception (exit $LAST_RC)"
  lacks "terminate called"
  lacks "internal error"
  lacks "type_error"
}

# no_controls: neither stdout nor stderr of the last command holds a control
# byte other than newline (ESC, BEL, CR, ...).
no_controls() {
  if LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]' "$WORK/.stdout" "$WORK/.stderr"; then
    fail "raw control bytes reach the terminal: $(LC_ALL=C grep -ah $'[\x01-\x09\x0b-\x1f\x7f]' "$WORK/.stdout" "$WORK/.stderr" | od -c | head -5)"
  fi
}

# damage SRC DST TYPE FILTER: DST is SRC with the first token of TYPE passed
# through the jq FILTER (replaced in place, same token id); sets BAD_TOKEN.
damage() {
  local src=$1 dst=$2 type=$3 filter=$4
  cp "$src" "$dst"
  BAD_TOKEN=$(token_id "$dst" "$type")
  [[ $BAD_TOKEN != null ]] || fail "no $type token in $src"
  cryptsetup token export --token-id "$BAD_TOKEN" "$dst" | jq -c "$filter" >tok.json ||
    fail "jq $filter"
  expect 0 cryptsetup token import --json-file tok.json --token-id "$BAD_TOKEN" \
    --token-replace "$dst"
}

# plant SRC DST FILE: DST is SRC with one more token, FILE; sets BAD_TOKEN.
plant() {
  cp "$1" "$2"
  local before
  before=$(tokens "$2" | jq -c 'keys')
  expect 0 cryptsetup token import --json-file "$3" "$2"
  BAD_TOKEN=$(tokens "$2" | jq -r --argjson b "$before" '[keys[] | select(. as $k | $b | index($k) | not)][0]')
  [[ $BAD_TOKEN != null ]] || fail "token import added nothing"
}

# every_verb IMG KEY: the read-only verbs on IMG, each with the exit code it
# has on the intact volume; KEY opens it. The image must not change.
every_verb() {
  local img=$1 key=$2 sum
  sum=$(file_sum "$img")
  vm status "$img"
  sane
  [[ $LAST_RC -eq 0 ]] || fail "status: exit $LAST_RC"
  has "token $BAD_TOKEN ("
  no_controls
  vm status "$img" --json
  sane
  [[ $LAST_RC -eq 0 ]] || fail "status --json: exit $LAST_RC"
  out | jq -e --arg t "token $BAD_TOKEN (" '[.warnings[] | select(contains($t))] | length == 1' \
    >/dev/null || fail "status --json has no warning naming token $BAD_TOKEN"
  vm protector list "$img"
  sane
  [[ $LAST_RC -eq 0 ]] || fail "protector list: exit $LAST_RC"
  has "token $BAD_TOKEN ("
  vm open "$img" t --test --key-file "$key"
  sane
  [[ $LAST_RC -eq 0 ]] || fail "open --test with an intact protector: exit $LAST_RC"
  has "unlocks with protector"
  has "token $BAD_TOKEN ("
  rm -f hdr.bak
  vm header backup "$img" hdr.bak
  sane
  [[ $LAST_RC -eq 0 ]] || fail "header backup: exit $LAST_RC"
  rm -f pkg.vkp
  vm keypackage export "$img" --out pkg.vkp --key-file "$RPKEY"
  sane
  [[ $LAST_RC -eq $EXPORT_RC ]] || fail "keypackage export: exit $LAST_RC, not $EXPORT_RC"
  rm -f x.img
  vr extract "$img" --to x.img --key-file "$key" -q
  sane
  [[ $LAST_RC -eq 0 ]] || fail "volmgr-recover extract: exit $LAST_RC"
  cmp -s x.img clean.plain || fail "volmgr-recover extract gave other data"
  vr verify "$img" --key-file "$key" --sample 4
  sane
  [[ $LAST_RC -eq $VERIFY_RC ]] || fail "volmgr-recover verify: exit $LAST_RC, not $VERIFY_RC"
  vm unlock --probe "$img" --config empty.conf
  sane
  [[ $LAST_RC -eq 0 ]] || fail "unlock --probe: exit $LAST_RC"
  has "VOLMGR_VOLUME=1"
  [[ $(file_sum "$img") == "$sum" ]] || fail "a read-only verb changed $img"
}

# removable IMG ID KEY: `protector remove IMG ID` removes token BAD_TOKEN and
# nothing else; the volume then has no warning and still opens with KEY.
removable() {
  local img=$1 id=$2 key=$3 others
  others=$(tokens "$img" | jq -c --arg t "$BAD_TOKEN" 'del(.[$t])')
  vm protector remove "$img" "$id"
  sane
  [[ $LAST_RC -eq 0 ]] || fail "protector remove $id: exit $LAST_RC"
  [[ $(tokens "$img" | jq -c .) == "$others" ]] ||
    fail "protector remove $id changed other tokens than $BAD_TOKEN"
  expect_vm 0 status "$img" --json
  out | jq -e '.warnings == []' >/dev/null || fail "warnings left after the removal: $(out)"
  expect_vm 0 open "$img" t --test --key-file "$key"
}

# ---------------------------------------------------------------------------
step "1: a volume with a passphrase, a recovery password and a startup key"
new_volume clean.img 32M --startup-key usb.bek
fill_data clean.img 16 16
RPKEY=$WORK/clean.img.rp
PASS_ID=$(tokens clean.img | jq -r '[.[] | select(.type == "volmgr-passphrase") | .id][0]')
SK_ID=$(tokens clean.img | jq -r '[.[] | select(.type == "volmgr-startup-key") | .id][0]')
VMK_SLOT=$(tokens clean.img | jq -r '[.[] | select(.type == "volmgr-volume") | .vmk_keyslot][0]')
: >empty.conf
expect_vr 0 extract clean.img --to clean.plain --key-file pass -q
vr verify clean.img --key-file pass --sample 4
VERIFY_RC=$LAST_RC
sane
expect_vm 0 status clean.img
lacks "warning"
EXPORT_RC=0

# ---------------------------------------------------------------------------
step "2: volmgr-volume: wrapped_fvek or created of the wrong type"
for filter in '.wrapped_fvek = 5' '.wrapped_fvek = ["AAAA"]' '.created = 5' '.created = {}'; do
  echo "  $filter"
  damage clean.img bad.img volmgr-volume "$filter"
  every_verb bad.img pass
  # Still the one volume token: nothing to remove, the volume opens.
  expect_vm 0 open bad.img t --test --key-file "$RPKEY"
done

step "3: volmgr-passphrase: params.kdf (and others) of the wrong type"
for filter in '.params.kdf = 5' '.params.kdf = null' '.params.time_cost = "1"' \
  '.params.salt = 5' '.params = [1]' '.version = "1"'; do
  echo "  $filter"
  damage clean.img bad.img volmgr-passphrase "$filter"
  every_verb bad.img "$RPKEY"
  expect_vm 0 status bad.img
  has "protector $PASS_ID) is damaged"
  removable bad.img "$PASS_ID" "$RPKEY"
  [[ $(token_id bad.img volmgr-passphrase) == null ]] || fail "passphrase token left"
done

step "4: volmgr-startup-key: params.file_hint a number or an array"
for filter in '.params.file_hint = 5' '.params.file_hint = [1, 2]' '.params.file_hint = {"a": 1}'; do
  echo "  $filter"
  damage clean.img bad.img volmgr-startup-key "$filter"
  every_verb bad.img pass
  removable bad.img "${SK_ID:0:8}" pass
  # The startup key shared the VMK keyslot: it must still be there.
  expect 0 cryptsetup luksDump bad.img
  out | grep -q "^  $VMK_SLOT: luks2" || fail "the VMK keyslot went with the damaged token"
done

step "5: volmgr-tpm: params.file_hint a number or an array (no TPM needed)"
for hint in 5 '[1]'; do
  echo "  file_hint $hint"
  tokens clean.img | jq -c --argjson h "$hint" \
    '[.[] | select(.type == "volmgr-startup-key")][0]
     | .type = "volmgr-tpm" | .id = "7a3b1c2d-0000-4000-8000-00000000c0de"
     | .params = {"sealed": "AAAA", "bank": "sha256", "pcrs": [7], "pin": false,
                  "startup_key": true, "salt": .params.salt, "file_hint": $h}' >tpm.json
  plant clean.img bad.img tpm.json
  every_verb bad.img pass
  removable bad.img 7a3b1c2d-0000-4000-8000-00000000c0de pass
done

step "6: volmgr-clear-key: created or vmk of the wrong type"
for fields in '"created": 5, "vmk": "AAAA"' '"created": "2026-12-01T00:00:00Z", "vmk": 5' \
  '"created": "2026-12-01T00:00:00Z", "vmk": ["AAAA"]'; do
  echo "  $fields"
  printf '{"type": "volmgr-clear-key", "keyslots": ["%s"], "version": 1, "remaining": 2, %s}\n' \
    "$VMK_SLOT" "$fields" >ck.json
  plant clean.img bad.img ck.json
  every_verb bad.img pass
  expect_vm 0 status bad.img --json
  out | jq -e --arg t "token:$BAD_TOKEN" '.protection == "on" and (.warnings[0] | contains($t))' \
    >/dev/null || fail "a damaged clear key must leave protection on: $(out)"
  removable bad.img "token:$BAD_TOKEN" pass
done

step "7: common fields of a protector token of the wrong type"
for filter in '.id = 5' '.id = [1]' '.wrapped_vmk = 5' '.description = {}' '.created = 5'; do
  echo "  $filter"
  damage clean.img bad.img volmgr-startup-key "$filter"
  every_verb bad.img pass
  removable bad.img "token:$BAD_TOKEN" pass
done

step "8: a damaged recovery password goes with its own keyslot, not the VMK's"
damage clean.img bad.img volmgr-recovery-password '.params.salt = 5'
RP_SLOT=$(tokens bad.img | jq -r --arg t "$BAD_TOKEN" '.[$t].keyslots[0]')
[[ $RP_SLOT != "$VMK_SLOT" ]] || fail "the recovery password uses the VMK keyslot"
EXPORT_RC=6  # the recovery password opens nothing now (tried as a passphrase)
every_verb bad.img pass
EXPORT_RC=0
RP_ID=$(cat clean.img.rid)
removable bad.img "$RP_ID" pass
run cryptsetup open --test-passphrase bad.img --key-file "$RPKEY"
[[ $LAST_RC -ne 0 ]] || fail "the removed recovery password's keyslot still opens"
expect 0 cryptsetup luksDump bad.img
out | grep -q "^  $VMK_SLOT: luks2" || fail "the VMK keyslot went with the damaged token"

# ---------------------------------------------------------------------------
step "9: a LUKS2 label with escape sequences is shown escaped"
cp clean.img lab.img
expect 0 cryptsetup config lab.img --label $'ok\e]0;PWNED\a\e[2J'
snapshot lab.img
expect_vm 0 status lab.img
no_controls
has 'Label:              ok\x1b]0;PWNED\x07\x1b[2J'
expect_vm 0 status lab.img --json
out | jq -e '.label == "ok\u001b]0;PWNED\u0007\u001b[2J"' >/dev/null ||
  fail "status --json must carry the label as it is: $(out)"
expect_vm 0 unlock --probe lab.img --config empty.conf
no_controls
unchanged lab.img
# Not UTF-8 at all: the text shows the byte, JSON gets U+FFFD (nlohmann's
# dump() threw on it: SIGABRT for `status --json`).
expect 0 cryptsetup config lab.img --label $'bad\xff\xfe'
expect_vm 0 status lab.img
no_controls
has 'bad\xff\xfe'
vm status lab.img --json
sane
[[ $LAST_RC -eq 0 ]] || fail "status --json on a label that is not UTF-8: exit $LAST_RC"
out | jq -e '.label == "bad\ufffd\ufffd"' >/dev/null || fail "label in JSON: $(out)"
vm protector list lab.img --json
sane
[[ $LAST_RC -eq 0 ]] || fail "protector list --json: exit $LAST_RC"

step "10: token text (description, file hint, unknown type) is shown escaped"
damage clean.img txt.img volmgr-startup-key \
  '.description = "usb\u001b[2Jkey\r" | .params.file_hint = "k\u001b]0;x\u0007.BEK"'
printf '%s' '{"type":"volmgr-x\u001b[31m","keyslots":[],"version":1}' >x.json
expect 0 cryptsetup token import --json-file x.json txt.img
expect_vm 0 status txt.img
no_controls
has 'usb\x1b[2Jkey\x0d'
has 'file k\x1b]0;x\x07.BEK'
has 'volmgr-x\x1b[31m'
expect_vm 0 protector list txt.img
no_controls
has 'file k\x1b]0;x\x07.BEK'
expect_vm 0 open txt.img t --test --startup-key usb.bek
no_controls
has 'volmgr-x\x1b[31m'

step "11: volmgr-recover check on a header with escape sequences in its fields"
cp clean.img hdr.img
# LUKS2 binary header: checksum_alg at 72 (32 bytes), uuid at 168 (40 bytes).
printf '\e]0;PWNED\a\e[2J\0' | dd of=hdr.img bs=1 seek=72 conv=notrunc status=none
printf '\e[2J\r\0' | dd of=hdr.img bs=1 seek=168 conv=notrunc status=none
SUM=$(file_sum hdr.img)
vr check hdr.img
sane
[[ $LAST_RC -ne 0 ]] || fail "check calls a damaged header healthy"
no_controls
has '\x1b'
vr check hdr.img --json
sane
[[ $(file_sum hdr.img) == "$SUM" ]] || fail "check changed hdr.img"

step "11b: a key package of a volume with such a label: keypackage show escapes it"
for label in $'ok\e]0;PWNED\a' $'bad\xff'; do
  cp clean.img kp.img
  expect 0 cryptsetup config kp.img --label "$label"
  rm -f kp.vkp
  expect_vr 0 keypackage export kp.img --out kp.vkp --key-file "$RPKEY"
  expect_vr 0 keypackage show kp.vkp
  no_controls
  has 'Label:         '
  vr keypackage show kp.vkp --json
  sane
  [[ $LAST_RC -eq 0 ]] || fail "keypackage show --json: exit $LAST_RC"
done

step "12: a file store's protector record with params.kdf a number (files status/decrypt)"
command -v sqlite3 >/dev/null || fail "sqlite3 is missing (.ci/install provides it)"
mkdir store
expect_vm 0 files init store --key-file pass "${ARGON2[@]}"
printf 'file layer data\n' >plain.txt
expect_vm 0 files encrypt store plain.txt c1 --key-file pass
sqlite3 store/keys.db "UPDATE protectors SET record = json_set(record, '$.params.kdf', 5);" ||
  fail "sqlite3 could not edit the protector record"
SUM=$(file_sum store/keys.db)
vm files status store
sane
[[ $LAST_RC -eq 0 ]] || fail "files status: exit $LAST_RC"
has "is damaged and was skipped"
has '"params.kdf" must be a string'
vm files status store --json
sane
[[ $LAST_RC -eq 0 ]] || fail "files status --json: exit $LAST_RC"
vm files decrypt store c1 p1 --key-file pass
sane
[[ $LAST_RC -eq 9 ]] || fail "files decrypt with a damaged protector record: exit $LAST_RC, not 9"
has '"params.kdf" must be a string'
[[ ! -e p1 ]] || fail "files decrypt left an output file"
[[ $(file_sum store/keys.db) == "$SUM" ]] || fail "files status/decrypt changed keys.db"

finish
