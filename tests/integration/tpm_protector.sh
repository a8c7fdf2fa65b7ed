#!/usr/bin/env bash
# The TPM protector against a real TPM 2.0 stack: a private swtpm in socket
# mode (never a fake TPM), tpm2-tools as the independent client that changes
# PCRs and DA parameters, volmgr through the swtpm TCTI.
#   tpm_protector.sh PATH_TO_VOLMGR
# Fails (never skips) without swtpm, tpm2-tools, xxd or python3-cryptography:
# .ci/install provides them, and the bus check (step 12) must always run.
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"

require_tools swtpm tpm2_pcrextend tpm2_dictionarylockout base64 xxd python3
python3 -c 'import cryptography' 2>/dev/null ||
  fail "python3 cannot import cryptography, which the TPM bus check (step 12) needs:" \
    ".ci/install provides it (package python3-cryptography): run ./.ci/install as root"
TPMLOG=$HERE/../vm/tpmlog
BUSCHECK=$HERE/tpm_bus_check.py

# ---- swtpm ----------------------------------------------------------------
# One swtpm per script, state in $WORK (absolute: swtpm must not depend on
# its cwd), on free ports; stopped and started again to play "no TPM" and
# "reboot" (startup-clear resets the PCRs, the state keeps the SRK seed).
TPM_DIR=$WORK/tpm
TPM_LOG=$TPM_DIR/swtpm.log
TPM_PID=
mkdir -p "$TPM_DIR"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tpm_start() {
  local tries=0
  while ((tries++ < 20)); do
    if [[ -z ${TPM_PORT:-} ]] || ! port_free "$TPM_PORT" || ! port_free $((TPM_PORT + 1)); then
      TPM_PORT=$((20000 + RANDOM % 40000))
      port_free "$TPM_PORT" && port_free $((TPM_PORT + 1)) || continue
    fi
    swtpm socket --tpm2 --tpmstate "dir=$TPM_DIR" \
      --server "type=tcp,port=$TPM_PORT,bindaddr=127.0.0.1" \
      --ctrl "type=tcp,port=$((TPM_PORT + 1)),bindaddr=127.0.0.1" \
      --flags not-need-init,startup-clear \
      --log "file=$TPM_LOG,level=20" >"$TPM_DIR/stdout" 2>&1 &
    TPM_PID=$!
    local i
    for i in $(seq 50); do
      if ! kill -0 "$TPM_PID" 2>/dev/null; then break; fi
      if ! port_free "$TPM_PORT"; then
        export VOLMGR_TCTI="swtpm:host=127.0.0.1,port=$TPM_PORT"
        export TPM2TOOLS_TCTI=$VOLMGR_TCTI
        return 0
      fi
      sleep 0.1
    done
    kill "$TPM_PID" 2>/dev/null || true
    wait "$TPM_PID" 2>/dev/null || true
    TPM_PORT=
  done
  echo "FAIL [$TEST_NAME]: swtpm did not start: $(cat "$TPM_DIR/stdout")" >&2
  exit 1
}

tpm_stop() {
  [[ -n $TPM_PID ]] || return 0
  kill "$TPM_PID" 2>/dev/null || true
  wait "$TPM_PID" 2>/dev/null || true
  TPM_PID=
}
on_exit 'tpm_stop'

# "A firmware update": extend PCR 7 through tpm2-tools.
extend_pcr7() {
  local d
  d=$(printf 'volmgr-test-%s' "$1" | sha256sum | cut -c1-64)
  tpm2_pcrextend "7:sha256=$d" >/dev/null || fail "tpm2_pcrextend failed"
}

# token_of IMG KIND [N]: the JSON of the N-th (default 1st) volmgr-KIND token.
token_id_of() {
  cryptsetup luksDump --dump-json-metadata "$1" |
    jq -r --arg t "volmgr-$2" '[.tokens | to_entries[] | select(.value.type == $t) | .key] | .['"${3:-0}"']'
}
token_of() { cryptsetup token export --token-id "$(token_id_of "$@")" "$1"; }

# bus_mark / bus_since: the swtpm log from a mark on, as tpmlog packets.
bus_mark() { BUS_MARK=$(stat -c %s "$TPM_LOG"); }
bus_since() {
  tail -c +$((BUS_MARK + 1)) "$TPM_LOG" >"$WORK/bus.log"
  bash "$TPMLOG" "$WORK/bus.log" >"$1"
}

# open_counted IMG [ARGS...]: a real `open` (mapping x), which counts an
# unlock of a suspended volume (`open --test` never does, issue 17 item 4).
# Without device-mapper (exit 8) the unlock is still counted, as it is
# counted before the mapping is made; with it, the mapping is closed again.
open_counted() {
  local img=$1
  shift
  vm open "$img" x "$@"
  case $LAST_RC in
    0) setsid -w "$VOLMGR" close x </dev/null >/dev/null 2>&1 || fail "close x failed" ;;
    8) has "device-mapper" ;;
    *) fail "open $img exited $LAST_RC (want 0, or 8 without device-mapper)" ;;
  esac
}

tpm_start
echo "[$TEST_NAME] swtpm on port $TPM_PORT"

# ---- 1: TPM protector, open without input -----------------------------------
step "1: format, add a TPM protector (authorised by the recovery password)"
new_image d.img
expect_vm 0 format d.img --recovery-password-file rp
sed -n 's/^Recovery password: //p' rp | tr -d '\n' >rp.txt
UUID=$(cryptsetup luksUUID d.img)
expect_vm 0 protector add d.img tpm --key-file rp.txt
has "TPM (PCR 7, sha256)"
expect_vm 0 status d.img
has "TPM (PCR 7, sha256)"
has "Protection:         on"

step "2: open --test needs no secret: the TPM unlocks"
bus_mark
expect_vm 0 open d.img x --test
has "(TPM)"
bus_since "$WORK/bus.tpm"
token_of d.img tpm >tpm.step2.json

step "3: the token says what the TPM protector is bound to"
token_of d.img tpm >tpm.json
jq -e '.params.pcrs == [7] and .params.bank == "sha256" and .params.pin == false
       and .params.startup_key == false and (.params.srk | test("^ecc-p256,"))
       and (.params.salt | length) == 44' tpm.json >/dev/null ||
  fail "token params: $(jq -c .params tpm.json)"

# ---- 4: PCR change: refusal naming PCR 7, recovery, reseal ----------------
step "4: PCR 7 extended by tpm2-tools: open is refused naming PCR 7"
extend_pcr7 update-1
expect_vm 6 open d.img x --test
has "TPM refused: PCR 7 changed (sealed"
has ", now "

step "5: the recovery password still opens, with the TPM's reason as warning"
expect_vm 0 open d.img x --test --key-file rp.txt
has "(recovery password)"
has "TPM refused: PCR 7 changed"
has "falling back"

step "6: reseal (authorised by the recovery password): the TPM opens again"
ID=$(jq -r .id tpm.json)
expect_vm 0 reseal d.img --key-file rp.txt
has "resealed TPM protector $ID"
expect_vm 0 open d.img x --test
has "(TPM)"
[[ $(token_of d.img tpm | jq -r .id) == "$ID" ]] || fail "reseal changed the protector ID"

step "7: reseal --pcrs 0,7 re-binds to another PCR set"
expect_vm 0 reseal d.img --key-file rp.txt --pcrs 0,7
expect_vm 0 status d.img
has "TPM (PCRs 0,7, sha256)"
expect_vm 0 open d.img x --test
has "(TPM)"
expect_vm 0 reseal d.img --key-file rp.txt --pcrs 7

# ---- 8: TPM+PIN ---------------------------------------------------------------
step "8: TPM+PIN: add with a PIN from a file; a missing PIN without a terminal is exit 7"
new_image p.img
expect_vm 0 format p.img --recovery-password-file prp
sed -n 's/^Recovery password: //p' prp | tr -d '\n' >prp.txt
printf '246810\n' >pin
printf '135790\n' >badpin
printf '123\n' >shortpin
expect_vm 2 protector add p.img tpm --new-pin-file shortpin --key-file prp.txt
has "shorter than 6"
expect_vm 0 protector add p.img tpm --new-pin-file pin --key-file prp.txt
has "TPM+PIN (PCR 7, sha256)"
expect_vm 7 open p.img x --test
has "needs its PIN"
has "--pin-file"

step "9: the right PIN opens (from a file and from a descriptor)"
bus_mark
expect_vm 0 open p.img x --test --pin-file pin
has "(TPM)"
bus_since "$WORK/bus.pin"
RUN_STDIN=pin expect_vm 0 open p.img x --test --pin-fd 0
has "(TPM)"

step "10: a wrong PIN is refused as such; the recovery password still opens"
expect_vm 6 open p.img x --test --pin-file badpin
has "wrong PIN"
expect_vm 0 open p.img x --test --pin-file badpin --key-file prp.txt
has "(recovery password)"
has "falling back"

step "11: wrong PINs until the TPM's dictionary-attack lockout is reported as such"
tpm2_dictionarylockout --setup-parameters --max-tries=3 --recovery-time=600 \
  --lockout-recovery-time=600 >/dev/null || fail "tpm2_dictionarylockout -s"
tpm2_dictionarylockout --clear-lockout >/dev/null || fail "tpm2_dictionarylockout -c"
locked=0
for i in 1 2 3 4 5; do
  vm open p.img x --test --pin-file badpin
  if [[ $LAST_RC -eq 8 ]]; then locked=$i; break; fi
  [[ $LAST_RC -eq 6 ]] || fail "wrong PIN #$i: exit $LAST_RC"
done
[[ $locked -gt 0 ]] || fail "no lockout after 5 wrong PINs (max-tries 3)"
has "lockout"
echo "  lockout reported at attempt $locked"
expect_vm 8 open p.img x --test --pin-file pin
has "lockout"
expect_vm 0 open p.img x --test --key-file prp.txt
has "(recovery password)"
# The TPM-only protector is noDA: the lockout does not touch it.
expect_vm 0 open d.img x --test
has "(TPM)"
tpm2_dictionarylockout --clear-lockout >/dev/null || fail "clear lockout"
expect_vm 0 open p.img x --test --pin-file pin
has "(TPM)"

# ---- 12: bus proof ------------------------------------------------------------
step "12: bus proof: nothing on the TPM bus opens the volume (TPM and TPM+PIN)"
# The VMK, learnt honestly: a suspension writes it in clear into the header.
expect_vm 0 suspend d.img --reboot-count 0
token_of d.img clear-key | jq -r .vmk | base64 -d | xxd -p -c 256 >vmk.hex
expect_vm 0 resume d.img
[[ $(wc -c <vmk.hex) -eq 65 ]] || fail "VMK from the clear key is not 32 bytes"
run cryptsetup luksDump --dump-volume-key --volume-key-file "$WORK/fvek.bin" \
  --key-file rp.txt -q d.img
[[ $LAST_RC -eq 0 ]] || fail "cryptsetup --dump-volume-key"
FVEK=$(xxd -p -c 256 fvek.bin)
# Positive control: a startup-key protector on the same volume.
expect_vm 0 protector add d.img startup-key --out "$WORK/ctl.BEK" --key-file rp.txt
token_of d.img startup-key >sk.json
token_of d.img tpm >tpm.json
expect 0 python3 "$BUSCHECK" "$WORK/bus.tpm" --token tpm.step2.json --uuid "$UUID" \
  --forbid "VMK=$(cat vmk.hex)" --forbid "FVEK=$FVEK" \
  --control sk.json "$WORK/ctl.BEK" --vmk "$(cat vmk.hex)"
out
# Once more with the resealed token (new secret, salt and sealed object).
bus_mark
expect_vm 0 open d.img x --test
bus_since "$WORK/bus.tpm2"
expect 0 python3 "$BUSCHECK" "$WORK/bus.tpm2" --token tpm.json --uuid "$UUID" \
  --forbid "VMK=$(cat vmk.hex)" --forbid "FVEK=$FVEK"
out
expect_vm 0 protector remove d.img "$(jq -r .id sk.json)"
PUUID=$(cryptsetup luksUUID p.img)
token_of p.img tpm >ptpm.json
expect_vm 0 suspend p.img --reboot-count 0 --pin-file pin
token_of p.img clear-key | jq -r .vmk | base64 -d | xxd -p -c 256 >pvmk.hex
expect_vm 0 resume p.img --pin-file pin
token_of p.img tpm >ptpm.json  # resume resealed it
bus_mark
expect_vm 0 open p.img x --test --pin-file pin
bus_since "$WORK/bus.pin2"
PINHASH=$(printf '246810' | sha256sum | cut -c1-64)
expect 0 python3 "$BUSCHECK" "$WORK/bus.pin2" --token ptpm.json --uuid "$PUUID" \
  --forbid "VMK=$(cat pvmk.hex)" --forbid "PIN=$(printf 246810 | xxd -p)" \
  --forbid "SHA256(PIN)=$PINHASH"
out

# ---- 13: TPM+startup key ----------------------------------------------------
step "13: TPM+startup key: refused without the key file, opens with it"
new_image s.img
expect_vm 0 format s.img --recovery-password-file srp
mkdir -p usb
sed -n 's/^Recovery password: //p' srp | tr -d '\n' >srp.txt
expect_vm 0 protector add s.img tpm --startup-key-out "$WORK/usb" --key-file srp.txt
has "TPM+startup key (PCR 7, sha256), file"
SK=$(ls "$WORK"/usb/*.BEK)
[[ $(stat -c %s "$SK") -eq 56 && $(head -c 8 "$SK") == VMGRSK01 ]] || fail "startup key file format"
[[ $(stat -c %a "$SK") == 400 ]] || fail "startup key file mode $(stat -c %a "$SK")"
expect_vm 3 open s.img x --test
has "needs its startup key"
expect_vm 0 open s.img x --test --startup-key "$SK"
has "(TPM)"
expect_vm 0 protector add s.img startup-key --out "$WORK/other.BEK" --key-file srp.txt
expect_vm 0 open s.img x --test --startup-key "$WORK/other.BEK"
has "(startup key)"
extend_pcr7 update-2
expect_vm 6 open s.img x --test --startup-key "$SK"
has "PCR 7 changed"
# Resealing a TPM+startup key protector needs its existing key file.
expect_vm 0 reseal d.img --key-file rp.txt
vm reseal s.img --key-file srp.txt
[[ $LAST_RC -ne 0 ]] || fail "reseal without the startup key succeeded"
has "needs its startup key"
expect_vm 0 reseal s.img --key-file srp.txt --startup-key "$SK"
expect_vm 0 open s.img x --test --startup-key "$SK"
has "(TPM)"

# ---- 14: tampered tokens ------------------------------------------------------
step "14: a tampered token is refused; the recovery password still opens"
snapshot d.img
TID=$(token_id_of d.img tpm)
token_of d.img tpm >orig.json
# replace_token FILE: put FILE in place of the TPM token.
replace_token() {
  cryptsetup token remove --token-id "$TID" d.img
  cryptsetup token import --token-id "$TID" --json-file "$1" d.img
}
# One byte near the end of the sealed blob: inside the TPM2B_PRIVATE.
jq -r .params.sealed orig.json | base64 -d >sealed.bin
n=$(stat -c %s sealed.bin)
printf "$(printf '\\x%02x' $(( $(od -An -tu1 -j $((n - 5)) -N1 sealed.bin) ^ 1 )))" |
  dd of=sealed.bin bs=1 seek=$((n - 5)) conv=notrunc status=none
jq --arg s "$(base64 -w0 sealed.bin)" '.params.sealed = $s' orig.json >bad1.json
replace_token bad1.json
vm open d.img x --test
[[ $LAST_RC -ne 0 ]] || fail "a flipped byte in the sealed blob opened the volume"
[[ $LAST_RC -eq 9 ]] || fail "sealed blob tampering: exit $LAST_RC (want 9, corruption)"
expect_vm 0 open d.img x --test --key-file rp.txt
has "(recovery password)"
# One byte of the wrapped VMK.
W=$(jq -r .wrapped_vmk orig.json)
c=${W:20:1}; [[ $c == A ]] && c2=B || c2=A
jq --arg w "${W:0:20}$c2${W:21}" '.wrapped_vmk = $w' orig.json >bad2.json
replace_token bad2.json
expect_vm 9 open d.img x --test
has "token altered"
expect_vm 0 open d.img x --test --key-file rp.txt
has "(recovery password)"
# A policy digest edited in the blob: the parser rejects it (the protector is
# skipped and reported), the volume still opens with the recovery password.
jq -r .params.sealed orig.json | base64 -d >sealed2.bin
pd_off=$((52 + 32 + 32 + 3))  # one PCR value, pcrDigest, into policyDigest
printf '\xff' | dd of=sealed2.bin bs=1 seek=$pd_off conv=notrunc status=none
jq --arg s "$(base64 -w0 sealed2.bin)" '.params.sealed = $s' orig.json >bad3.json
replace_token bad3.json
vm open d.img x --test --key-file rp.txt
[[ $LAST_RC -eq 0 ]] || fail "recovery password after policy tampering: exit $LAST_RC"
has "was skipped"
has "(recovery password)"
replace_token orig.json
expect_vm 0 open d.img x --test
has "(TPM)"

# ---- 15: no TPM -----------------------------------------------------------------
step "15: TPM absent: a clear message, exit 8, and the fallback works"
tpm_stop
expect_vm 8 open d.img x --test
has "no TPM at swtpm:host=127.0.0.1,port=$TPM_PORT"
expect_vm 0 open d.img x --test --key-file rp.txt
has "(recovery password)"
has "no TPM at"
has "falling back"
tpm_start  # a "reboot": PCRs reset, the protector must be resealed
expect_vm 6 open d.img x --test
has "PCR 7 changed"
expect_vm 0 reseal d.img --key-file rp.txt
expect_vm 0 open d.img x --test
has "(TPM)"

# ---- 16: suspend / resume ---------------------------------------------------------
step "16: suspend --reboot-count 2: two unlocks without a TPM, the third needs it"
expect_vm 0 suspend d.img --reboot-count 2
expect_vm 0 status d.img
has "Protection:         suspended (2 unlocks left)"
expect_vm 0 status d.img --json
[[ $(out | jq -r '.protection + " " + (.unlocks_left | tostring)') == "suspended 2" ]] ||
  fail "status --json: $(out | jq -c '{protection, unlocks_left}')"
cryptsetup luksDump d.img | grep -q volmgr-clear-key || fail "no volmgr-clear-key token"
CLEAR_B64=$(token_of d.img clear-key | jq -r .vmk)
tpm_stop
expect_vm 0 open d.img x --test
has "clear key (protection suspended)"
expect_vm 0 status d.img
has "suspended (2 unlocks left)"
open_counted d.img
expect_vm 0 status d.img
has "suspended (1 unlock left)"
open_counted d.img
has "last unlock the suspension allowed"
has "protection of d.img is resumed"
has "was not resealed"
expect_vm 0 status d.img
has "Protection:         on"
cryptsetup luksDump d.img | grep -q volmgr-clear-key && fail "the clear key is still there"
if dd if=d.img bs=1M count=16 status=none | grep -aqF -- "$CLEAR_B64"; then
  fail "the clear key's bytes are still in the header area"
fi
expect_vm 8 open d.img x --test
has "no TPM at"
tpm_start
expect_vm 0 open d.img x --test
has "(TPM)"

step "17: the last allowed unlock reseals to the then-current PCRs"
expect_vm 0 suspend d.img --reboot-count 1
extend_pcr7 update-3  # the firmware update the suspension was for
open_counted d.img
has "last unlock the suspension allowed"
has "resealed TPM protector $ID"
expect_vm 0 open d.img x --test
has "(TPM)"

step "18: suspend until resume; resume reseals and removes the clear key"
expect_vm 0 suspend d.img --reboot-count 0
expect_vm 0 status d.img
has "suspended until resume"
expect_vm 0 status d.img --json
[[ $(out | jq -r '.protection + " " + (.unlocks_left | tostring)') == "suspended null" ]] ||
  fail "status --json: $(out | jq -c '{protection, unlocks_left}')"
for i in 1 2 3; do
  expect_vm 0 open d.img x --test
  has "clear key"
done
extend_pcr7 update-4
expect_vm 0 resume d.img
has "resealed TPM protector $ID"
has "resumed"
cryptsetup luksDump d.img | grep -q volmgr-clear-key && fail "resume left the clear key"
expect_vm 0 open d.img x --test
has "(TPM)"
expect_vm 5 resume d.img
has "not suspended"

step "19: the clear key is not a protector: the last one cannot be removed"
expect_vm 0 suspend p.img --reboot-count 0 --key-file prp.txt
expect_vm 0 protector remove p.img "$(token_of p.img recovery-password | jq -r .id)"
expect_vm 5 protector remove p.img "$(token_of p.img tpm | jq -r .id)"
has "last one"
expect_vm 0 resume p.img --pin-file pin
expect_vm 0 open p.img x --test --pin-file pin
has "(TPM)"

step "19b: a TPM+PIN protector is resealed at the end of a suspension when the PIN is given"
expect_vm 0 suspend p.img --reboot-count 1 --pin-file pin
extend_pcr7 update-5
open_counted p.img --pin-file pin
has "last unlock the suspension allowed"
has "resealed TPM protector"
expect_vm 0 open p.img x --test --pin-file pin
has "(TPM)"
# Without the PIN (and no terminal to ask on) it cannot be resealed: the
# warning says so, and the TPM then refuses the changed PCR.
expect_vm 0 suspend p.img --reboot-count 1 --pin-file pin
extend_pcr7 update-6
open_counted p.img
has "last unlock the suspension allowed"
has "was not resealed"
expect_vm 6 open p.img x --test --pin-file pin
has "PCR 7 changed"

step "20: suspend needs a TPM protector"
new_image n.img
expect_vm 0 format n.img --recovery-password-file nrp
sed -n 's/^Recovery password: //p' nrp | tr -d '\n' >nrp.txt
expect_vm 5 suspend n.img --key-file nrp.txt
has "no TPM protector"

step "21: format --tpm --pin: one step to a TPM+PIN volume; no TPM leaves the device untouched"
new_image f.img
printf '24681357' >fpin
expect_vm 0 format f.img --tpm --new-pin-file fpin --pcrs 7,16 --recovery-password-file frp
has "TPM+PIN (PCRs 7,16, sha256)"
expect_vm 0 open f.img x --test --pin-file fpin
has "(TPM)"
expect_vm 2 format f.img --force --pin --new-pin-file fpin
has "need --tpm"
new_image g.img
before=$(file_sum g.img)
tpm_stop
expect_vm 8 format g.img --tpm --recovery-password-file grp
has "nothing was written to g.img"
[[ $(file_sum g.img) == "$before" ]] || fail "format without a TPM changed g.img"
[[ ! -e grp ]] || fail "format without a TPM wrote the recovery-password file"
tpm_start

step "22: open --test on a suspended volume changes nothing: no unlock used, no reseal"
expect_vm 0 suspend d.img --reboot-count 1 --key-file rp.txt
extend_pcr7 update-7
snapshot d.img
for i in 1 2; do
  expect_vm 0 open d.img x --test
  has "clear key"
  lacks "resealed"
  lacks "resumed"
  unchanged d.img
done
expect_vm 0 status d.img
has "suspended (1 unlock left)"
unchanged d.img
expect_vm 0 resume d.img
has "resealed TPM protector $ID"

finish
