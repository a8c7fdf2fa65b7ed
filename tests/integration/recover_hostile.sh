#!/bin/bash
# volmgr-recover against hostile, damaged and unusual inputs (issue 17):
#   14  a symlink planted at the extract state file's temporary name
#    5  a token whose "type" is not a string; a state file with "format": 5
#    7  valid volumes volmgr did not make: LUKS1, stock LUKS2
#    9  rebuild with another volume's key package over an all-zero data area
#    8  keyslot areas destroyed while both header copies are intact
#   13  read-only verbs never write (sha256 of the whole image before = after)
# Each step is a function, so one can be run alone:
#   RECOVER_HOSTILE_STEPS="9 8" recover_hostile.sh VOLMGR VOLMGR_RECOVER
# shellcheck source=tests/integration/recover_lib.sh
source "$(dirname "$(realpath "$0")")/recover_lib.sh"

# set_json IMG JQ_FILTER: rewrites the JSON area of both LUKS2 header copies
# with a jq filter and recomputes each copy's checksum (LUKS2 spec 1.1, 2.1),
# so the JSON edit is the only damage. Header size: 16 KiB.
set_json() {
  local img=$1 filter=$2 off json
  for off in 0 16384; do
    dd if="$img" bs=1 skip=$((off + 4096)) count=12288 status=none | tr -d '\0' >json.cur
    jq -c "$filter" json.cur >json.new || fail "jq filter failed on the header JSON"
    json=$(stat -c %s json.new)
    ((json < 12288)) || fail "the new JSON does not fit"
    # JSON area: the text, then zeros.
    { cat json.new; head -c $((12288 - json)) /dev/zero; } |
      dd of="$img" bs=1 seek=$((off + 4096)) conv=notrunc status=none
    # Checksum over the 16 KiB copy with the csum field (448, 64 bytes) zeroed.
    head -c 64 /dev/zero | dd of="$img" bs=1 seek=$((off + 448)) conv=notrunc status=none
    dd if="$img" bs=16384 skip=$((off / 16384)) count=1 status=none | sha256sum |
      cut -d' ' -f1 | xxd -r -p | dd of="$img" bs=1 seek=$((off + 448)) conv=notrunc status=none
  done
}

# keyslot_areas IMG: "offset size" of every keyslot's key material area.
keyslot_areas() {
  cryptsetup luksDump --dump-json-metadata "$1" | jq -r '.keyslots[] | .area | "\(.offset) \(.size)"'
}

step_14() {
  step "14: a symlink planted at OUT.volmgr-recover.tmp: target unchanged, clear error, exit 5"
  new_volume v14.img 24M
  fill_data v14.img 16 8
  printf 'precious\n' >target
  TSUM=$(file_sum target)
  ln -s "$WORK/target" out14.img.volmgr-recover.tmp
  expect_vr 5 extract v14.img --to out14.img --key-file pass -q
  has "symbolic link"
  [[ $(file_sum target) == "$TSUM" ]] || fail "the link's target was overwritten"
  [[ -L out14.img.volmgr-recover.tmp ]] || fail "the planted link was replaced"
  [[ ! -e out14.img ]] || fail "the output was created although the extract was refused"
  # A dangling link: nothing is created where it points.
  rm out14.img.volmgr-recover.tmp
  ln -s "$WORK/created-through-link" out14.img.volmgr-recover.tmp
  expect_vr 5 extract v14.img --to out14.img --key-file pass -q
  [[ ! -e created-through-link ]] || fail "a file was created through a dangling link"
  # A link at the state file itself (read by --resume): not followed either.
  rm out14.img.volmgr-recover.tmp
  truncate -s 8M out14.img
  ln -s "$WORK/target" out14.img.volmgr-recover
  expect_vr 5 extract v14.img --to out14.img --key-file pass --resume -q
  has "symbolic link"
  [[ $(file_sum target) == "$TSUM" ]] || fail "the state link's target changed"
  rm out14.img out14.img.volmgr-recover
  # A regular file left by a crash before its rename is replaced, not an error.
  printf 'stale' >out14.img.volmgr-recover.tmp
  expect_vr 0 extract v14.img --to out14.img --key-file pass -q
  [[ ! -e out14.img.volmgr-recover.tmp && ! -e out14.img.volmgr-recover ]] ||
    fail "state files left after a successful extract"
}

step_5() {
  step "5: a token \"type\" that is not a string: check reports it (exit 9), no abort"
  new_volume v5.img 24M
  set_json v5.img '.tokens["0"].type = 5'
  expect_vr 9 check v5.img
  has "DAMAGED"
  has "token 0"
  expect_vr 9 check v5.img --json
  out | jq -e '.healthy == false and (.primary.problems | map(test("token 0")) | any)' >/dev/null ||
    fail "check --json: $(out)"
  set_json v5.img '.tokens["0"] = 7'
  expect_vr 9 check v5.img
  has "token 0"
}

step_5b() {
  step "5b: extract --resume with a state file of \"format\": 5 (and other wrong types): exit 9"
  new_volume v5b.img 24M
  truncate -s 8M o5.img
  for state in '{"format":5}' '{"format":"volmgr-recover-extract-state","version":"1"}' \
    '[1,2]' '{"format":"volmgr-recover-extract-state","version":1,"volume_uuid":7}' \
    '{"format":"volmgr-recover-extract-state","version":1,"volume_uuid":"x","payload_bytes":1,"sector_size":512,"done_bytes":0,"unreadable":5}'; do
    printf '%s' "$state" >o5.img.volmgr-recover
    expect_vr 9 extract v5b.img --to o5.img --key-file pass --resume -q
    has "not a volmgr-recover state file"
  done
}

step_7() {
  step "7: LUKS1 gets its own honest answer (exit 0), not \"damaged (both copies)\""
  new_image l1.img 16M
  printf 'luks1-pass' >l1.key
  expect 0 cryptsetup luksFormat --type luks1 -q --pbkdf-force-iterations 1000 \
    --key-file l1.key l1.img
  expect_vr 0 check l1.img
  has "LUKS1"
  lacks "DAMAGED"
  lacks "7018142038163980288"
  lacks "restore"
  expect_vr 0 check l1.img --json
  out | jq -e '.format == "LUKS1" and .healthy == true and (.primary.problems | length) == 0' \
    >/dev/null || fail "check --json of LUKS1: $(out)"
  # Its header backup file (no data behind the header) is no damage either.
  expect 0 cryptsetup luksHeaderBackup l1.img --header-backup-file l1.hdr
  expect_vr 0 check l1.hdr
  # A LUKS1 header with a broken keyslot: exit 9 and JSON healthy false, agreeing.
  printf '\x12\x34\x56\x78' | dd of=l1.img bs=1 seek=208 conv=notrunc status=none
  expect_vr 9 check l1.img --json
  out | jq -e '.healthy == false' >/dev/null || fail "check --json of a damaged LUKS1: $(out)"
}

step_7b() {
  step "7b: a stock LUKS2 volume: exit 0 and \"healthy\": true (not made by volmgr is a note)"
  new_image l2.img 24M
  printf 'luks2-pass' >l2.key
  expect 0 cryptsetup luksFormat --type luks2 -q --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --key-file l2.key l2.img
  expect_vr 0 check l2.img --json
  out | jq -e '.healthy == true and .format == "LUKS2"' >/dev/null || fail "check --json: $(out)"
  out | jq -e '.notes | map(test("not made by volmgr")) | any' >/dev/null ||
    fail "check --json does not note the foreign volume: $(out)"
  expect_vr 0 check l2.img
  has "not made by volmgr"
  # Exit code and JSON agree on every volume: a damaged copy is 9 and false.
  dd if=/dev/zero of=l2.img bs=4096 count=1 conv=notrunc status=none
  expect_vr 9 check l2.img --json
  out | jq -e '.healthy == false' >/dev/null || fail "check --json: $(out)"
}

step_9() {
  step "9: rebuild refuses another volume's key package over an all-zero data area"
  new_volume za.img 32M --label zeros-a   # data area never written: zeros
  expect_vr 0 keypackage export za.img --out za.vkp --key-file za.img.rp
  has "warning: the first data bytes of za.img are blank"
  new_volume zb.img 32M
  dd if=/dev/zero of=zb.img bs=1M count=16 conv=notrunc status=none
  SUM=$(file_sum zb.img)
  expect_vr 5 rebuild zb.img --key-package za.vkp --key-file za.img.rp
  has "all zeros"
  has "cannot prove"
  has "--force"
  [[ $(file_sum zb.img) == "$SUM" ]] || fail "a refused rebuild wrote to the device"
  expect_vr 5 rebuild zb.img --key-package za.vkp --key-file za.img.rp --dry-run
  has "all zeros"
  # verify --key-package says the same instead of "match".
  expect_vr 5 verify zb.img --key-package za.vkp --key-file za.img.rp --json
  has "all zeros"
  [[ $(file_sum zb.img) == "$SUM" ]] || fail "verify wrote to the device"
  # --force: the admin knows better; the rebuild goes ahead.
  expect_vr 0 rebuild zb.img --key-package za.vkp --key-file za.img.rp --force
  expect_vm 0 open zb.img x --test --key-file za.img.rp
}

step_8() {
  step "8: keyslot areas destroyed: check without a credential says what it did not check"
  new_volume v8.img 24M
  fill_data v8.img 16 8
  expect 0 cryptsetup open --test-passphrase v8.img --key-file v8.img.rp
  keyslot_areas v8.img >areas
  [[ -s areas ]] || fail "no keyslot areas in the JSON"
  while read -r off size; do
    dd if=/dev/urandom of=v8.img bs=4096 seek=$((off / 4096)) count=$((size / 4096)) \
      conv=notrunc status=none
  done <areas
  expect_vm 0 open v8.img x --test --key-file v8.img.rp        # volmgr: wrapped FVEK
  expect 2 cryptsetup open --test-passphrase v8.img --key-file v8.img.rp   # stock: no longer
  expect_vr 0 check v8.img
  has "keyslot areas were not checked"
  has "--key-file"
  expect_vr 0 check v8.img --json
  out | jq -e '.keyslots.checked == false' >/dev/null || fail "check --json: $(out)"

  step "8b: with the recovery password, check proves stock cryptsetup's keyslot: exit 9"
  SUM=$(file_sum v8.img)
  expect_vr 9 check v8.img --key-file v8.img.rp
  has "keyslot"
  has "stock cryptsetup"
  expect_vr 9 check v8.img --key-file v8.img.rp --json
  out | jq -e '.healthy == false and .keyslots.checked == true' >/dev/null ||
    fail "check --json: $(out)"
  [[ $(file_sum v8.img) == "$SUM" ]] || fail "check wrote to the device"
  # The passphrase proves the VMK keyslot (also destroyed).
  expect_vr 9 check v8.img --key-file pass
  has "VMK keyslot"
  # A wrong credential is a wrong credential (6), not damage.
  printf 'wrong passphrase!\n' >bad8
  expect_vr 6 check v8.img --key-file bad8
  # An intact volume with its recovery password: exit 0, the keyslot named.
  new_volume ok8.img 24M
  expect_vr 0 check ok8.img --key-file ok8.img.rp
  has "opens with stock cryptsetup"
  expect_vr 0 check ok8.img --key-file pass --json
  out | jq -e '.healthy == true and .keyslots.checked == true' >/dev/null ||
    fail "check --json: $(out)"

  step "8c: keyslot areas wiped to zeros: check sees it without a credential (exit 9)"
  new_volume z8.img 24M
  keyslot_areas z8.img >areas
  while read -r off size; do
    dd if=/dev/zero of=z8.img bs=4096 seek=$((off / 4096)) count=$((size / 4096)) \
      conv=notrunc status=none
  done <areas
  expect_vr 9 check z8.img
  has "wiped"
}

step_13() {
  step "13: read-only verbs never write, even to a damaged header libcryptsetup would repair"
  new_volume v13.img 24M
  fill_data v13.img 16 8
  expect_vr 0 keypackage export v13.img --out v13.vkp --key-file v13.img.rp
  # Primary header's binary part wiped: libcryptsetup repairs it from the
  # secondary on a writable load unless told not to.
  dd if=/dev/zero of=v13.img bs=4096 count=1 conv=notrunc status=none
  SUM=$(file_sum v13.img)
  PSUM=$(file_sum v13.vkp)
  expect_vr 9 check v13.img
  [[ $(file_sum v13.img) == "$SUM" ]] || fail "check wrote to the device"
  expect_vr 9 check v13.img --key-file v13.img.rp
  [[ $(file_sum v13.img) == "$SUM" ]] || fail "check --key-file wrote to the device"
  expect_vr 3 verify v13.img --key-file pass --sample 10
  [[ $(file_sum v13.img) == "$SUM" ]] || fail "verify wrote to the device"
  expect_vr 0 verify v13.img --key-package v13.vkp --key-file v13.img.rp --sample 10
  [[ $(file_sum v13.img) == "$SUM" ]] || fail "verify --key-package wrote to the device"
  expect_vr 0 extract v13.img --to o13.img --key-file pass -q
  [[ $(file_sum v13.img) == "$SUM" ]] || fail "extract wrote to the source device"
  expect_vr 0 keypackage show v13.vkp
  [[ $(file_sum v13.vkp) == "$PSUM" ]] || fail "keypackage show wrote to the package"
  expect_vr 0 keypackage export v13.img --out v13b.vkp --key-file v13.img.rp
  [[ $(file_sum v13.img) == "$SUM" ]] || fail "keypackage export wrote to the device"
  TARBALL=${VOLMGR_VM_CACHE:-/var/cache/volmgr-vm}/bitlk-images.tar.xz
  if [[ -s $TARBALL ]]; then
    tar -xJf "$TARBALL" bitlk-images/bitlk-aes-xts-128.img
    printf 'anaconda' >bpw
    BSUM=$(file_sum bitlk-images/bitlk-aes-xts-128.img)
    expect_vr 0 bitlk-dump bitlk-images/bitlk-aes-xts-128.img --key-file bpw
    [[ $(file_sum bitlk-images/bitlk-aes-xts-128.img) == "$BSUM" ]] ||
      fail "bitlk-dump wrote to the device"
  fi
  # And the evidence is still there for check.
  expect_vr 9 check v13.img
  has "primary header copy at offset 0: DAMAGED"
}

for s in ${RECOVER_HOSTILE_STEPS:-14 5 5b 7 7b 9 8 13}; do
  "step_$s"
done

finish
