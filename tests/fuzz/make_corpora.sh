#!/usr/bin/env bash
# Regenerates the committed seed corpora (tests/fuzz/corpus/<harness>/) and
# the test credentials the harnesses open them with (tests/fuzz/keys/),
# from REAL objects made by the real code:
#   make_corpora.sh VOLMGR FUZZ_SEEDGEN
# VOLMGR: a volmgr binary (any build); FUZZ_SEEDGEN: fuzz_seedgen from a
# -DVOLMGR_FUZZ=ON tree (file containers, names, extract state files under
# the harnesses' fixed keys). Needs cryptsetup, jq, swtpm, openssl,
# softhsm2-util and pkcs11-tool (all in .ci/install). Everything in keys/ is
# test material made here, for these corpora only.
#
#   volume image (volmgr format)      -> header_check, volume_tokens,
#     + protector add tpm/tpm+PIN/cert/pkcs11, suspend   protector_token,
#     cryptsetup token export / luksDump --dump-json-metadata   sealed_blob
#   volmgr keypackage export (v1, v2 RSA, v2 EC)  -> key_package
#   the printed recovery password (and typed variants) -> recovery_password
#   docs/BOOT.md's example and variants          -> volumes_conf
set -euo pipefail
[[ $# -eq 2 ]] || { sed -n 2,18p "$0"; exit 2; }
VOLMGR=$(realpath "$1")
SEEDGEN=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/corpus
keys=$here/keys
work=$(mktemp -d /tmp/volmgr-make-corpora.XXXXXX)
TPM_PID=
cleanup() {
  [[ -n $TPM_PID ]] && kill "$TPM_PID" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
export VOLMGR_LOCK_DIR=$work/locks
ARGON2=(--argon2-time 1 --argon2-memory 8192)
vm() { setsid -w "$VOLMGR" "$@" </dev/null; }

rm -rf "$corpus" "$keys"
mkdir -p "$corpus" "$keys"
for h in recovery_password volumes_conf protector_token volume_tokens header_check \
         key_package sealed_blob; do
  mkdir -p "$corpus/$h"
done

# ---- swtpm (TPM protectors, the sealed blob, suspend) ---------------------
mkdir -p tpm
TPM_PORT=$((20000 + RANDOM % 40000))
swtpm socket --tpm2 --tpmstate dir="$work/tpm" \
  --server type=tcp,port=$TPM_PORT,bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((TPM_PORT + 1)),bindaddr=127.0.0.1 \
  --flags not-need-init,startup-clear >tpm/stdout 2>&1 &
TPM_PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$TPM_PORT) 2>/dev/null && break; sleep 0.1; done
export VOLMGR_TCTI=swtpm:host=127.0.0.1,port=$TPM_PORT

# ---- agent certificates (cert protector, key package v2) -------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$keys/agent-rsa.pem" -out agent-rsa.crt \
  -days 3650 -subj "/CN=volmgr fuzz agent RSA" -addext keyUsage=keyEncipherment 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$keys/agent-ec.pem" \
  -out agent-ec.crt -days 3650 -subj "/CN=volmgr fuzz agent EC" -addext keyUsage=keyAgreement 2>/dev/null

# ---- the volume -------------------------------------------------------------
printf 'corpus passphrase' >pass
printf '123456' >pin
truncate -s 40M vol.img
vm format vol.img --new-key-file pass --startup-key sk.bek --label fuzz-corpus \
  --recovery-password-file rp "${ARGON2[@]}" --json >format.json
jq -r .recovery_password format.json >"$keys/recovery-password.txt"
jq -r .recovery_id format.json >"$keys/recovery-id.txt"
RP=$(cat "$keys/recovery-password.txt")
printf '%s' "$RP" >rp.txt
n=0
snapshot() {  # snapshot NAME: the header's tokens and both header copies now
  cryptsetup luksDump --dump-json-metadata vol.img | jq -c .tokens >"$corpus/volume_tokens/$1"
  head -c 32768 vol.img >"$corpus/header_check/$1"
  local id
  for id in $(jq -r 'keys[]' "$corpus/volume_tokens/$1"); do
    cryptsetup token export --token-id "$id" vol.img >tok.json
    type=$(jq -r .type tok.json)
    # Named by content: a token unchanged since the last snapshot is kept once.
    sum=$(sha256sum tok.json | head -c 12)
    cp tok.json "$corpus/protector_token/${type#volmgr-}-$sum"
    if [[ $type == volmgr-tpm ]]; then
      jq -r .params.sealed tok.json | base64 -d >"$corpus/sealed_blob/tpm-$sum"
    fi
  done
}
snapshot format
vm protector add vol.img tpm --key-file rp.txt >/dev/null
vm protector add vol.img tpm --new-pin-file pin --key-file rp.txt >/dev/null
vm protector add vol.img tpm --startup-key-out "$work/tpmsk" --key-file rp.txt >/dev/null
vm protector add vol.img cert --certificate agent-rsa.crt --key-file rp.txt >/dev/null
vm protector add vol.img cert --certificate agent-ec.crt --key-file rp.txt >/dev/null
vm protector add vol.img recovery-password --key-file rp.txt --out rp2.txt >/dev/null
snapshot protectors
# PKCS#11 customer key (SoftHSM2, AES-GCM and RSA-OAEP)
module=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
  [[ -r $m ]] && module=$m && break
done
export SOFTHSM2_CONF=$work/softhsm2.conf
mkdir -p tokens
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$work/tokens" >"$SOFTHSM2_CONF"
printf '123456' >tpin
for t in ck-a ck-b; do
  softhsm2-util --init-token --free --label $t --pin 123456 --so-pin 12345678 >/dev/null
done
p11() { pkcs11-tool --module "$module" --login --pin 123456 "$@" >/dev/null 2>&1; }
p11 --token-label ck-a --keygen --key-type AES:32 --label vmk-kek --id 01 --usage-decrypt --sensitive
p11 --token-label ck-b --keypairgen --key-type rsa:2048 --label vmk-rsa --id 02 --usage-decrypt
vm protector add vol.img pkcs11 --uri "pkcs11:token=ck-a;object=vmk-kek" --module "$module" \
  --new-token-pin-file tpin --key-file rp.txt >/dev/null
vm protector add vol.img pkcs11 --uri "pkcs11:token=ck-b;object=vmk-rsa" --module "$module" \
  --new-token-pin-file tpin --key-file rp.txt >/dev/null
snapshot pkcs11
vm suspend vol.img --reboot-count 2 >/dev/null
snapshot suspended
# The template volume_tokens writes token sets into: this header, which has
# every keyslot the snapshots' tokens name.
head -c 32768 vol.img >"$keys/luks2-template.bin"
# Stock cryptsetup headers for `check`: LUKS2 it did not make, and LUKS1.
truncate -s 20M stock2.img stock1.img
printf 'stock' | cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
  --batch-mode stock2.img -
printf 'stock' | cryptsetup luksFormat --type luks1 --pbkdf-force-iterations 1000 \
  --batch-mode stock1.img -
head -c 32768 stock2.img >"$corpus/header_check/stock-luks2"
head -c 32768 stock1.img >"$corpus/header_check/stock-luks1"

# ---- key packages -------------------------------------------------------------
vm keypackage export vol.img --out kp1.vkp --key-file rp.txt >/dev/null
vm keypackage export vol.img --out kp2-rsa.vkp --certificate agent-rsa.crt --key-file rp.txt >/dev/null
vm keypackage export vol.img --out kp2-ec.vkp --certificate agent-ec.crt --key-file rp.txt >/dev/null
install -m 0644 kp1.vkp kp2-rsa.vkp kp2-ec.vkp "$corpus/key_package/"

# ---- recovery password as typed ----------------------------------------------
printf '%s' "$RP" >"$corpus/recovery_password/canonical"
cp rp "$corpus/recovery_password/recovery-password-file"
printf '  %s\n' "${RP//-/ }" >"$corpus/recovery_password/spaces"
printf '%s' "${RP//-/}" >"$corpus/recovery_password/digits-only"
printf '%s' "${RP/0/O}" >"$corpus/recovery_password/typo-O"
printf '%s' "${RP:0:20}" >"$corpus/recovery_password/short"

# ---- volumes.conf (docs/BOOT.md's grammar) ---------------------------------------
cat >"$corpus/volumes_conf/boot-md-example" <<'CONF'
# NAME   DEVICE                                      OPTIONS
data     UUID=5d1c2a10-8f3e-4c55-9e0b-3a1f7c6d2e44   discard,nofail
backup   /dev/disk/by-id/usb-Backup_Disk-0:0         tpm-only,readonly
*        *                                           timeout=60
CONF
cat >"$corpus/volumes_conf/every-option" <<'CONF'
vault UUID=5D1C2A10-8F3E-4C55-9E0B-3A1F7C6D2E44 timeout=0,tries=5,tcti=swtpm:host=127.0.0.1,console=/dev/tty1,noauto
*     *     noauto,timeout=86400,tries=1
CONF
printf 'a.b_c-d+e /dev/sdb -\n' >"$corpus/volumes_conf/dash-options"

# ---- what needs the harnesses' fixed keys: fuzz_seedgen --------------------------
"$SEEDGEN" "$corpus"
# Issue 17 item 5's wrong JSON types on these seeds: tests/fuzz/regressions.
python3 "$here/make_regressions.py"

echo "corpora in $corpus:"
du -sh "$corpus" "$keys"
for d in "$corpus"/*; do echo "  $(basename "$d"): $(find "$d" -type f | wc -l) files, $(du -sk "$d" | cut -f1) KiB"; done
