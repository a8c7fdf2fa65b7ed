#!/bin/bash
# volmgr integration: a volume's life on image files, end to end.
#
# format (passphrase + recovery password + startup key; 4096- and 512-byte
# sectors) -> status / status --json / cryptsetup luksDump -> open --test with
# every kind of credential and every way of passing it -> stock cryptsetup
# with the recovery password -> protector add / list / remove -> refusing to
# remove the last protector -> recovery-password rotate -> header backup,
# damage, restore.
#
# No device-mapper is needed: only `open --test` is used.
# Usage: volume_lifecycle.sh PATH_TO_VOLMGR
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$(realpath "$0")")/lib.sh"

IMG=vol.img
printf 'correct horse battery staple\n' >pass
printf 'second passphrase 2\n' >pass2
kinds_of() { jq -r '[.[].kind] | sort | join(",")'; }

# ---------------------------------------------------------------------------
step "1: format with passphrase, recovery password and startup key (4096)"
new_image $IMG 32M
expect_vm 0 format $IMG --new-key-file pass --startup-key usb.bek \
  --label data-4k --recovery-password-file rp.txt --json "${ARGON2[@]}"
out >format.json
jq -e . format.json >/dev/null || fail "format --json is not JSON"
UUID=$(jq -r .uuid format.json)
RP=$(jq -r .recovery_password format.json)
RP_ID=$(jq -r .recovery_id format.json)
PASS_ID=$(jq -r '.protectors[] | select(.kind=="passphrase") | .id' format.json)
SK_ID=$(jq -r '.protectors[] | select(.kind=="startup-key") | .id' format.json)
[[ $UUID =~ ^[0-9a-f-]{36}$ ]] || fail "bad UUID '$UUID'"
[[ $RP =~ ^([0-9]{6}-){7}[0-9]{6}$ ]] || fail "recovery password is not 8 dashed groups of 6 digits"
[[ $(jq -r '.protectors | length' format.json) -eq 3 ]] || fail "format made not 3 protectors"
[[ $(jq -r '.protectors[] | select(.kind=="recovery-password") | .id' format.json) == "$RP_ID" ]] ||
  fail "recovery_id does not name the recovery-password protector"
# The recovery password file: mode 0400, ID and password in it.
[[ $(stat -c %a rp.txt) == 400 ]] || fail "rp.txt mode is $(stat -c %a rp.txt), not 400"
grep -qx "Recovery password: $RP" rp.txt || fail "rp.txt lacks the recovery password"
grep -q "$RP_ID" rp.txt || fail "rp.txt lacks the recovery ID"
# The startup key: 56 bytes "VMGRSK01" || protector UUID || key, mode 0400.
[[ $(stat -c %s usb.bek) -eq 56 ]] || fail "usb.bek is $(stat -c %s usb.bek) bytes, not 56"
[[ $(head -c 8 usb.bek) == VMGRSK01 ]] || fail "usb.bek lacks the VMGRSK01 magic"
[[ $(od -An -tx1 -j8 -N16 usb.bek | tr -d ' \n') == "${SK_ID//-/}" ]] ||
  fail "usb.bek does not carry its protector ID"
[[ $(stat -c %a usb.bek) == 400 ]] || fail "usb.bek mode is not 400"

step "2: status (text) describes the volume and shows no secret"
expect_vm 0 status $IMG
has "Volume $IMG"
has "$UUID"
has "data-4k"
has "aes-xts-plain64, 512-bit key, 4096-byte sectors"
has "Protection:         on"
has "Lock state:         locked"
has "$PASS_ID  passphrase (argon2id, 8192 KiB, 1 passes"
has "$RP_ID  recovery password, ID $RP_ID"
has "$SK_ID  startup key, file usb.bek"
lacks "$RP"
lacks "${RP//-/}"
lacks "warning"

step "3: status --json has every field with the right value"
expect_vm 0 status $IMG --json
out >status.json
jq -e . status.json >/dev/null || fail "status --json is not JSON"
jq -e --arg u "$UUID" '
  .uuid == $u and .format == "LUKS2" and .label == "data-4k" and
  .encryption_method == "aes-xts-plain64" and .key_bits == 512 and
  .sector_size == 4096 and .data_offset_bytes == 16777216 and
  .size_bytes == 16777216 and .protection == "on" and
  .lock_state == "locked" and .mappings == [] and .warnings == [] and
  (.protectors | length) == 3' status.json >/dev/null ||
  fail "status --json fields are wrong: $(cat status.json)"
[[ $(jq '.protectors' status.json | kinds_of) == passphrase,recovery-password,startup-key ]] ||
  fail "status --json protector kinds are wrong"
jq -e '.protectors[] | select(.kind=="recovery-password") | .keyslots | length == 1' \
  status.json >/dev/null || fail "the recovery password has no keyslot of its own"
lacks "$RP"

step "4: stock cryptsetup parses the header: Subsystem volmgr, volmgr-* tokens"
expect 0 cryptsetup luksDump $IMG
has "Version:       	2"
has "Subsystem:     	volmgr"
has "Label:         	data-4k"
has "sector: 4096 [bytes]"
for t in volmgr-volume volmgr-recovery-password volmgr-passphrase volmgr-startup-key; do
  has ": $t"
done
lacks "$RP"
expect 0 cryptsetup luksDump --dump-json-metadata $IMG
out | jq -e '[.tokens[].type] | sort ==
  ["volmgr-passphrase","volmgr-recovery-password","volmgr-startup-key","volmgr-volume"]' \
  >/dev/null || fail "token types in the JSON metadata are wrong"
expect 0 cryptsetup isLuks --type luks2 $IMG

step "5: format with 512-byte sectors"
new_image small512.img 20M
expect_vm 0 format small512.img --new-key-file pass --no-recovery-password \
  --sector-size 512 "${ARGON2[@]}"
has "Formatted small512.img"
lacks "Recovery password"
expect_vm 0 status small512.img --json
out | jq -e '.sector_size == 512 and (.protectors | length) == 1 and
  .protectors[0].kind == "passphrase" and .size_bytes == 4194304' >/dev/null ||
  fail "512-byte volume status is wrong"
expect 0 cryptsetup luksDump small512.img
has "sector: 512 [bytes]"
expect_vm 0 open small512.img t --test --key-file pass

step "6: open --test with the passphrase: file, --key-fd, stdin"
expect_vm 0 open $IMG t --test --key-file pass
has "unlocks with protector $PASS_ID (passphrase)"
vm open $IMG t --test --key-fd 3 3<pass
[[ $LAST_RC -eq 0 ]] || fail "--key-fd 3 failed ($LAST_RC)"
has "unlocks with protector $PASS_ID (passphrase)"
expect_vm_in 0 pass open $IMG t --test --key-file -
has "unlocks with protector $PASS_ID (passphrase)"
printf 'correct horse battery staple' >pass.nonl  # no trailing newline
expect_vm 0 open $IMG t --test --key-file pass.nonl
has "$PASS_ID"

step "7: open --test with the recovery password: dashes, spaces, none, stdin, --recovery-id"
printf '%s' "$RP" >rp.dashes
printf '%s\n' "${RP//-/ }" >rp.spaces
printf '%s\n' "${RP//-/}" >rp.plain
for f in rp.dashes rp.spaces rp.plain; do
  expect_vm 0 open $IMG t --test --key-file $f
  has "unlocks with protector $RP_ID (recovery password)"
done
expect_vm_in 0 rp.dashes open $IMG t --test --key-file -
has "$RP_ID"
expect_vm 0 open $IMG t --test --key-file rp.dashes --recovery-id "${RP_ID:0:8}"
has "$RP_ID"
expect_vm 0 open $IMG t --test --key-file rp.dashes --recovery-id "$RP_ID"
has "$RP_ID"

step "8: open --test with the startup key (no typing)"
expect_vm 0 open $IMG t --test --startup-key usb.bek
has "unlocks with protector $SK_ID (startup key)"

step "9: stock cryptsetup opens with the recovery password, not with a wrong one"
expect 0 cryptsetup open --test-passphrase $IMG --key-file rp.dashes
WRONG_RP="${RP:0:${#RP}-6}000000"   # a valid-looking last group, wrong value
[[ $WRONG_RP != "$RP" ]] || WRONG_RP="${RP:0:${#RP}-6}000011"
printf '%s' "$WRONG_RP" >rp.wrong
run cryptsetup open --test-passphrase $IMG --key-file rp.wrong
[[ $LAST_RC -ne 0 ]] || fail "stock cryptsetup accepted a wrong recovery password"
has "No key available"
# The passphrase wraps the VMK only; it is not a LUKS2 keyslot passphrase.
run cryptsetup open --test-passphrase $IMG --key-file pass.nonl
[[ $LAST_RC -ne 0 ]] || fail "stock cryptsetup opened with the volmgr passphrase"

step "10: protector add passphrase / recovery-password / startup-key"
snapshot $IMG
expect_vm 0 protector add $IMG passphrase --new-key-file pass2 --key-file pass \
  --description "second pass" --json "${ARGON2[@]}"
PASS2_ID=$(out | jq -r .id)
out | jq -e '.kind == "passphrase" and .description == "second pass"' >/dev/null ||
  fail "protector add --json is wrong"
expect_vm 0 protector add $IMG recovery-password --key-file rp.dashes --out rp2.txt --json
RP2=$(out | jq -r .recovery_password)
RP2_ID=$(out | jq -r .id)
[[ $RP2 =~ ^([0-9]{6}-){7}[0-9]{6}$ && $RP2 != "$RP" ]] || fail "second recovery password is bad"
grep -qx "Recovery password: $RP2" rp2.txt || fail "rp2.txt lacks the password"
[[ $(stat -c %a rp2.txt) == 400 ]] || fail "rp2.txt mode is not 400"
mkdir usbdir
expect_vm 0 protector add $IMG startup-key --out usbdir --startup-key usb.bek
has "Added protector"
SK2_ID=$(out | sed -n 's/^Added protector \([0-9a-f-]*\) .*/\1/p')
[[ -f "usbdir/$SK2_ID.BEK" ]] || fail "a directory --out did not get <ID>.BEK"
expect_vm 0 protector list $IMG --json
[[ $(out | jq length) -eq 6 ]] || fail "expected 6 protectors, got $(out | jq length)"
[[ $(out | jq '[.[] | select(.kind=="passphrase")] | length') -eq 2 ]] || fail "not 2 passphrases"
[[ $(out | jq '[.[] | select(.kind=="recovery-password")] | length') -eq 2 ]] || fail "not 2 recovery passwords"
[[ $(out | jq '[.[] | select(.kind=="startup-key")] | length') -eq 2 ]] || fail "not 2 startup keys"
expect_vm 0 protector list $IMG
has "$PASS2_ID  passphrase"
expect_vm 0 status $IMG
has "$PASS2_ID  passphrase (argon2id, 8192 KiB, 1 passes, 4 lanes)  \"second pass\""
expect_vm 0 open $IMG t --test --key-file pass2
has "$PASS2_ID"
printf '%s' "$RP2" >rp2.dashes
expect_vm 0 open $IMG t --test --key-file rp2.dashes
has "$RP2_ID"
expect 0 cryptsetup open --test-passphrase $IMG --key-file rp2.dashes
expect_vm 0 open $IMG t --test --startup-key "usbdir/$SK2_ID.BEK"
has "$SK2_ID"
# The first credentials still work after the adds.
expect_vm 0 open $IMG t --test --key-file pass
expect_vm 0 open $IMG t --test --startup-key usb.bek

step "11: recovery-password rotate: old one refused by volmgr and cryptsetup, new one works"
expect_vm 2 recovery-password rotate $IMG --key-file pass
has "several recovery passwords"
expect_vm 0 recovery-password rotate $IMG --key-file pass --id "${RP_ID:0:8}" \
  --recovery-password-file rp3.txt --json
RP3=$(out | jq -r .recovery_password)
RP3_ID=$(out | jq -r .id)
[[ $RP3 =~ ^([0-9]{6}-){7}[0-9]{6}$ && $RP3 != "$RP" && $RP3_ID != "$RP_ID" ]] ||
  fail "rotate did not make a new password and ID"
grep -qx "Recovery password: $RP3" rp3.txt || fail "rp3.txt lacks the new password"
printf '%s' "$RP3" >rp3.dashes
expect_vm 6 open $IMG t --test --key-file rp.dashes
has "opened no protector"
run cryptsetup open --test-passphrase $IMG --key-file rp.dashes
[[ $LAST_RC -ne 0 ]] || fail "stock cryptsetup still opens with the rotated-out recovery password"
expect_vm 0 open $IMG t --test --key-file rp3.dashes
has "unlocks with protector $RP3_ID (recovery password)"
expect 0 cryptsetup open --test-passphrase $IMG --key-file rp3.dashes
[[ $(protector_count $IMG) -eq 6 ]] || fail "rotate changed the protector count"
expect_vm 0 status $IMG
lacks "$RP_ID"
has "$RP3_ID"

step "12: protector remove by full ID and by 8-character prefix"
expect_vm 0 protector remove $IMG "$SK2_ID"
has "Removed protector $SK2_ID"
[[ $(protector_count $IMG) -eq 5 ]] || fail "count after removing by full ID"
# Upper case prefix: IDs are matched case-insensitively.
PFX=$(echo "${RP2_ID:0:8}" | tr a-f A-F)
expect_vm 0 protector remove $IMG "$PFX"
[[ $(protector_count $IMG) -eq 4 ]] || fail "count after removing by prefix"
run cryptsetup open --test-passphrase $IMG --key-file rp2.dashes
[[ $LAST_RC -ne 0 ]] || fail "the removed recovery password's keyslot still opens"
vm open $IMG t --test --startup-key "usbdir/$SK2_ID.BEK"
[[ $LAST_RC -ne 0 ]] || fail "the removed startup key still opens"
snapshot $IMG
expect_vm 3 protector remove $IMG "${PASS_ID:0:4}"   # too short to be a prefix
unchanged $IMG
expect_vm 3 protector remove $IMG 00000000-0000-4000-8000-000000000000
has "no protector with ID"
unchanged $IMG

step "13: removing down to one protector; the last one is refused"
expect_vm 0 protector remove $IMG "$SK_ID"
expect_vm 0 protector remove $IMG "$RP3_ID"
expect_vm 0 protector remove $IMG "$PASS2_ID"
[[ $(protector_count $IMG) -eq 1 ]] || fail "expected one protector left"
snapshot $IMG
expect_vm 5 protector remove $IMG "$PASS_ID"
has "last one"
has "$PASS_ID"
unchanged $IMG
[[ $(protector_count $IMG) -eq 1 ]] || fail "the last protector is gone"
expect_vm 0 open $IMG t --test --key-file pass
has "$PASS_ID"
# Only the VMK keyslot is left: removed recovery passwords took theirs.
expect 0 cryptsetup luksDump --dump-json-metadata $IMG
[[ $(out | jq '.keyslots | length') -eq 1 ]] || fail "stale keyslots left: $(out | jq -c '.keyslots | keys')"

# ---------------------------------------------------------------------------
# Header backup / damage / restore on a fresh volume with all three kinds.
step "14: header backup; it refuses to overwrite a file"
new_image h.img 32M
expect_vm 0 format h.img --new-key-file pass --startup-key h.bek --json "${ARGON2[@]}"
H_UUID=$(out | jq -r .uuid)
printf '%s' "$(out | jq -r .recovery_password)" >h.rp
expect_vm 0 header backup h.img h.hdr
has "$H_UUID"
[[ $(stat -c %s h.hdr) -eq 16777216 ]] || fail "backup is $(stat -c %s h.hdr) bytes, not 16 MiB"
SUM_BEFORE=$(header_sum h.img)
BACKUP_SUM=$(file_sum h.hdr)
[[ $SUM_BEFORE == "$BACKUP_SUM" ]] || fail "the backup is not a copy of the header area"
expect_vm 4 header backup h.img h.hdr
has "exists"
[[ $(file_sum h.hdr) == "$BACKUP_SUM" ]] || fail "the existing backup file was changed"

step "15: primary header zeroed: read from the secondary copy, repaired only by a writer"
dd if=/dev/zero of=h.img bs=4096 count=1 conv=notrunc status=none
[[ $(head -c 4 h.img | tr -d '\0') == "" ]] || fail "dd did not zero the primary header"
# libcryptsetup 2.6's crypt_load() finds the primary binary header invalid,
# loads the secondary copy (at 16 KiB) and rewrites the primary from it
# whenever it could write. volmgr's read-only verbs give it a private copy
# of the header area (issue 17, item 13): usable, warned about, untouched.
expect_vm 0 status h.img --json
out | jq -e --arg u "$H_UUID" '.uuid == $u and (.protectors | length) == 3' >/dev/null ||
  fail "status after primary header damage is wrong"
out | jq -e '.warnings | any(test("header copy"))' >/dev/null ||
  fail "status does not warn about the damaged header copy"
expect_vm 0 open h.img t --test --key-file pass
expect_vm 0 open h.img t --test --startup-key h.bek
[[ $(head -c 4 h.img | tr -d '\0') == "" ]] || fail "a read-only command rewrote the primary header"
# Stock cryptsetup (a writable load) repairs it.
expect 0 cryptsetup open --test-passphrase h.img --key-file h.rp
[[ $(head -c 4 h.img) == LUKS ]] || fail "the primary header was not repaired by cryptsetup"

step "16: both header copies wiped: status/open report it (exit 5), no crash"
dd if=/dev/zero of=h.img bs=1M count=16 conv=notrunc status=none
# Without any LUKS magic there is nothing to tell a wiped header from a
# never-formatted device, so volmgr says "no LUKS header" (5), not 9.
expect_vm 5 status h.img
has "h.img holds no LUKS header"
expect_vm 5 open h.img t --test --key-file pass
has "no LUKS header"
expect_vm 5 protector list h.img

step "17: header restore brings the volume back"
expect_vm 0 header restore h.img h.hdr
has "restored"
[[ $(header_sum h.img) == "$BACKUP_SUM" ]] || fail "restored header area differs from the backup"
expect_vm 0 open h.img t --test --key-file pass
expect_vm 0 open h.img t --test --startup-key h.bek
expect 0 cryptsetup open --test-passphrase h.img --key-file h.rp
expect_vm 0 status h.img --json
out | jq -e --arg u "$H_UUID" '.uuid == $u and (.protectors | length) == 3' >/dev/null ||
  fail "status after restore is wrong"

step "18: restoring another volume's backup is refused without --force"
new_image other.img 32M
expect_vm 0 format other.img --new-key-file pass2 --no-recovery-password "${ARGON2[@]}"
snapshot other.img
expect_vm 5 header restore other.img h.hdr
has "$H_UUID"
has "--force"
unchanged other.img
expect_vm 0 open other.img t --test --key-file pass2
expect_vm 0 header restore other.img h.hdr --force
expect_vm 0 open other.img t --test --key-file pass
expect_vm 0 status other.img --json
[[ $(out | jq -r .uuid) == "$H_UUID" ]] || fail "--force restore did not install the backup"

finish
