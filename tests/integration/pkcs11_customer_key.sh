#!/bin/bash
# Customer Key, availability key and data recovery agents (issue 8) against
# a real PKCS#11 stack: SoftHSM2 in a private SOFTHSM2_CONF, tokens made by
# softhsm2-util, keys made by pkcs11-tool (OpenSC) as the independent client,
# certificates made by openssl. No fake HSM.
#
# enrol (AES and RSA customer keys in two tokens, availability key, RSA and
# EC agent certificates) -> policy in status -> unlock with either customer
# key, one HSM gone, both gone -> every bad input (no module, not a module,
# wrong PIN, key not found, wrong key type, expired and
# wrong-usage certificates, second key in one token, pin-value in a URI) ->
# agent recovery (PEM, key in the HSM) -> both customer keys lost ->
# availability key through volmgr-recover -> revoke -> purge: nothing opens,
# stock cryptsetup neither.
#
# Usage: pkcs11_customer_key.sh PATH_TO_VOLMGR PATH_TO_VOLMGR_RECOVER
# shellcheck source=tests/integration/recover_lib.sh
source "$(dirname "$(realpath "$0")")/recover_lib.sh"

require_tools softhsm2-util pkcs11-tool openssl cmp
MODULE=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
  [[ -r $m ]] && MODULE=$m && break
done
[[ -n $MODULE ]] ||
  fail "no libsofthsm2.so: .ci/install provides it (package softhsm2): run ./.ci/install as root"

# ---- SoftHSM2: three tokens (two customer HSMs, the operator's) -----------
export SOFTHSM2_CONF=$WORK/softhsm2.conf
mkdir -p "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$WORK/tokens" >"$SOFTHSM2_CONF"
PIN=123456
printf '%s' $PIN >pin
printf '654321' >badpin
p11() { pkcs11-tool --module "$MODULE" --login --pin $PIN "$@" >/dev/null 2>&1; }
for t in ck-a ck-b avail agent-hsm; do
  softhsm2-util --init-token --free --label $t --pin $PIN --so-pin 12345678 >/dev/null
done
p11 --token-label ck-a --keygen --key-type AES:32 --label vmk-kek --id 01 --usage-decrypt --sensitive
p11 --token-label ck-a --keypairgen --key-type EC:prime256v1 --label ec-key --id 02
p11 --token-label ck-a --keygen --key-type GENERIC:32 --label generic --id 03
p11 --token-label ck-b --keypairgen --key-type rsa:2048 --label vmk-rsa --id 01 --usage-decrypt
p11 --token-label ck-b --keygen --key-type AES:32 --label second --id 05 --usage-decrypt
p11 --token-label avail --keygen --key-type AES:32 --label availability --id 01 --usage-decrypt
URI_A="pkcs11:token=ck-a;object=vmk-kek"
URI_B="pkcs11:token=ck-b;object=vmk-rsa"
URI_AV="pkcs11:token=avail;object=availability"
M=(--module "$MODULE")
TP=(--token-pin-file pin --pkcs11-module "$MODULE")

# Moves a token's directory away and back: the HSM is unplugged.
token_dir() { grep -l "$1" "$WORK"/tokens/*/token.object | xargs dirname; }
DIR_A=$(token_dir ck-a)
DIR_B=$(token_dir ck-b)
DIR_AV=$(token_dir avail)
# (Out of the token directory: SoftHSM2 reads every directory in it.)
mkdir -p "$WORK/unplugged"
unplug() { mv "$1" "$WORK/unplugged/"; }
replug() { mv "$WORK/unplugged/$(basename "$1")" "$1"; }

# ---------------------------------------------------------------------------
step "1: enrol customer key A (AES-GCM in ck-a) on a passphrase volume"
new_volume vol.img 40M
fill_data vol.img 16 8
expect_vm 0 protector add vol.img pkcs11 --uri "$URI_A" "${M[@]}" \
  --new-token-pin-file pin --key-file pass --description "HSM A" --json
ID_A=$(out | jq -r .id)
has '"kind": "pkcs11"'
has "customer key (PKCS#11 AES-GCM, token"
cryptsetup luksDump vol.img | grep -q volmgr-pkcs11 || fail "no volmgr-pkcs11 token in the header"
lacks "$PIN"

step "2: customer key B (RSA-OAEP in ck-b) and the availability key"
expect_vm 0 protector add vol.img pkcs11 --uri "$URI_B" "${M[@]}" \
  --new-token-pin-file pin --key-file pass --json
ID_B=$(out | jq -r .id)
# RSA-OAEP-SHA256 where the token does it; SoftHSM2 before 2.7 decrypts
# OAEP with SHA-1 only, and enrolment falls back to it (docs/FORMAT.md).
has "RSA-OAEP-SHA"
expect_vm 0 protector add vol.img pkcs11 --uri "$URI_AV" "${M[@]}" --role availability \
  --new-token-pin-file pin --key-file pass --json
ID_AV=$(out | jq -r .id)
has "availability key"

step "3: status shows the Customer Key policy"
expect_vm 0 status vol.img
has "Customer Key:"
has "2 customer keys in 2 tokens (either unlocks); availability key: yes"
expect_vm 0 status vol.img --json
[[ $(out | jq -r .customer_key_policy.redundant) == true ]] || fail "policy not redundant in JSON"
[[ $(out | jq -r '.customer_key_policy.availability_keys[0]') == "$ID_AV" ]] || fail "availability key not in JSON"

step "4: unlock with the customer keys (PIN from a file, from a descriptor)"
expect_vm 0 open vol.img x --test "${TP[@]}"
has "unlocks with protector $ID_A (customer key (PKCS#11))"
vm open vol.img x --test --token-pin-fd 3 --pkcs11-module "$MODULE" 3<pin
[[ $LAST_RC -eq 0 ]] || fail "--token-pin-fd: exit $LAST_RC"
# The module stored at enrolment is used when none is given.
expect_vm 0 open vol.img x --test --token-pin-file pin

step "5: one HSM gone: the other customer key opens; both gone: unavailable"
unplug "$DIR_A"
expect_vm 0 open vol.img x --test "${TP[@]}"
has "unlocks with protector $ID_B"
unplug "$DIR_B"
expect_vm 8 open vol.img x --test "${TP[@]}"
has "no token matching"
# The availability key's token is present, but `volmgr` never uses it.
lacks "$ID_AV"
replug "$DIR_A"
replug "$DIR_B"

step "6: bad input at unlock: wrong PIN, no PIN, absent module, not a module"
expect_vm 6 open vol.img x --test --token-pin-file badpin --pkcs11-module "$MODULE"
has "wrong PIN"
expect_vm 7 open vol.img x --test --pkcs11
has "--token-pin-file"
expect_vm 8 open vol.img x --test --token-pin-file pin --pkcs11-module /nonexistent/libnope.so
has "does not exist"
NOT_P11=
for z in /usr/lib/x86_64-linux-gnu/libz.so.1 /lib/x86_64-linux-gnu/libz.so.1; do
  [[ -r $z ]] && NOT_P11=$z && break
done
if [[ -n $NOT_P11 ]]; then
  expect_vm 8 open vol.img x --test --token-pin-file pin --pkcs11-module "$NOT_P11"
  has "cannot load PKCS#11 module"
fi

step "7: bad input at enrolment: key not found, wrong type, same token, pin-value, wrong PIN"
expect_vm 3 protector add vol.img pkcs11 --uri "pkcs11:token=avail;object=nope" --role availability \
  "${M[@]}" --new-token-pin-file pin --key-file pass
has "no AES key or RSA private key matching"
expect_vm 2 protector add vol.img pkcs11 --uri "pkcs11:token=ck-a;object=ec-key" --role availability \
  "${M[@]}" --new-token-pin-file pin --key-file pass
has "is a EC key, not RSA"
expect_vm 2 protector add vol.img pkcs11 --uri "pkcs11:token=ck-a;object=generic" --role availability \
  "${M[@]}" --new-token-pin-file pin --key-file pass
has "is a generic secret key, not AES"
expect_vm 5 protector add vol.img pkcs11 --uri "pkcs11:token=ck-b;object=second" \
  "${M[@]}" --new-token-pin-file pin --key-file pass
has "already has 2 customer keys"
expect_vm 2 protector add vol.img pkcs11 --uri "pkcs11:token=ck-a;object=vmk-kek;pin-value=123456" \
  "${M[@]}" --new-token-pin-file pin --key-file pass
has "never in a URI"
expect_vm 6 protector add vol.img pkcs11 --uri "$URI_AV" --role availability \
  "${M[@]}" --new-token-pin-file badpin --key-file pass
has "wrong PIN"
expect_vm 2 protector add vol.img pkcs11 --uri "not a uri" "${M[@]}" --new-token-pin-file pin --key-file pass
has "not a PKCS#11 URI"
[[ $(protector_count vol.img) -eq 5 ]] || fail "a refused enrolment left a protector"

step "8: agent certificates: RSA and EC P-384 enrol; expired and wrong-usage are refused"
openssl req -x509 -newkey rsa:2048 -nodes -keyout agent-rsa.pem -out agent-rsa.crt -days 30 \
  -subj "/CN=volmgr DRA RSA" -addext "keyUsage=critical,keyEncipherment" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout agent-ec.pem \
  -out agent-ec.crt -days 30 -subj "/CN=volmgr DRA EC" -addext "keyUsage=critical,keyAgreement" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout sig.pem -out sig.crt -days 30 \
  -subj "/CN=signing only" -addext "keyUsage=critical,digitalSignature" 2>/dev/null
# An expired certificate: `openssl ca` with explicit dates.
mkdir -p ca && : >ca/index.txt && echo 01 >ca/serial
cat >ca.cnf <<EOF
[ca]
default_ca = d
[d]
database = ca/index.txt
serial = ca/serial
new_certs_dir = ca
default_md = sha256
policy = p
[p]
commonName = supplied
EOF
openssl req -new -newkey rsa:2048 -nodes -keyout old.pem -out old.csr -subj "/CN=expired agent" 2>/dev/null
openssl ca -batch -config ca.cnf -selfsign -keyfile old.pem -in old.csr -out old.crt \
  -startdate 20200101000000Z -enddate 20210101000000Z >/dev/null 2>&1 || fail "openssl ca failed"
# A certificate that expires a few seconds from now: enrolled while valid,
# used for recovery after it expired (step 9: warned, not refused).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout soon.pem -out soon.csr \
  -subj "/CN=short-lived agent" 2>/dev/null
SOON_END=$(( $(date +%s) + 6 ))
openssl ca -batch -config ca.cnf -selfsign -keyfile soon.pem -in soon.csr -out soon.crt \
  -startdate "$(date -u -d @$(( SOON_END - 3600 )) +%Y%m%d%H%M%SZ)" \
  -enddate "$(date -u -d @$SOON_END +%Y%m%d%H%M%SZ)" >/dev/null 2>&1 || fail "openssl ca (short-lived) failed"
expect_vm 0 protector add vol.img cert --certificate soon.crt --key-file pass --json
ID_SOON=$(out | jq -r .id)
expect_vm 0 protector add vol.img cert --certificate agent-rsa.crt --key-file pass --json
ID_RSA=$(out | jq -r .id)
has "data recovery agent (/CN=volmgr DRA RSA, rsa-oaep-sha256"
expect_vm 0 protector add vol.img cert --certificate agent-ec.crt --key-file pass --json
ID_EC=$(out | jq -r .id)
has "ecdh-p384-hkdf-sha256"
expect_vm 5 protector add vol.img cert --certificate old.crt --key-file pass
has "expired on 2021-01-01"
expect_vm 5 protector add vol.img cert --certificate sig.crt --key-file pass
has "does not allow keyEncipherment"
expect_vm 2 protector add vol.img cert --certificate pass --key-file pass
has "holds no X.509 certificate"
# volmgr open never uses agents.
expect_vm 0 status vol.img
has "data recovery agents: 3"

step "9: agent recovery with volmgr-recover --agent-key: PEM keys, and a key in the HSM"
expect_vr 0 extract vol.img --to ref.img --key-file pass -q
expect_vr 0 extract vol.img --to rsa.img --agent-key agent-rsa.pem
has "data recovery agent certificate ${ID_RSA:0:8}"
cmp ref.img rsa.img || fail "RSA agent extract differs"
expect_vr 0 extract vol.img --to ec.img --agent-key agent-ec.pem
has "${ID_EC:0:8}"
cmp ref.img ec.img || fail "EC agent extract differs"
# The short-lived agent's certificate has expired by now: recovery works,
# with a warning.
while (( $(date +%s) <= SOON_END )); do sleep 1; done
expect_vr 0 extract vol.img --to soon.img --agent-key soon.pem -q
has "warning: agent protector ${ID_SOON:0:8}: certificate /CN=short-lived agent expired"
cmp ref.img soon.img || fail "expired agent extract differs"
# A key that is no agent's: nothing opens.
expect_vr 3 extract vol.img --to none.img --agent-key sig.pem -q
has "no agent key matches"
# The RSA and EC agent keys imported into an HSM token, the PEM files gone.
openssl pkcs8 -topk8 -nocrypt -in agent-rsa.pem -outform DER -out agent-rsa.der
openssl pkcs8 -topk8 -nocrypt -in agent-ec.pem -outform DER -out agent-ec.der
p11 --token-label agent-hsm --write-object agent-rsa.der --type privkey --id 10 --label dra-rsa --usage-decrypt ||
  fail "pkcs11-tool could not import the RSA agent key"
p11 --token-label agent-hsm --write-object agent-ec.der --type privkey --id 11 --label dra-ec --usage-derive ||
  fail "pkcs11-tool could not import the EC agent key"
rm -f agent-rsa.pem agent-ec.pem
expect_vr 0 extract vol.img --to hsm-ec.img --agent-key "pkcs11:token=agent-hsm;object=dra-ec" "${TP[@]}" -q
cmp ref.img hsm-ec.img || fail "HSM EC agent extract differs"
expect_vr 6 extract vol.img --to bad.img --agent-key "pkcs11:token=agent-hsm;object=dra-ec" \
  --token-pin-file badpin --pkcs11-module "$MODULE" -q
has "wrong PIN"
# The RSA agent key in the HSM: RSA-OAEP-SHA256 where the token does it;
# SoftHSM2 before 2.7 only does OAEP with SHA-1, and says so (exit 12).
SOFTHSM_VER=$(softhsm2-util --version)
if [[ $(printf '%s\n2.7.0\n' "$SOFTHSM_VER" | sort -V | head -1) == 2.7.0 ]]; then
  expect_vr 0 extract vol.img --to hsm-rsa.img --agent-key "pkcs11:token=agent-hsm;object=dra-rsa" "${TP[@]}" -q
  cmp ref.img hsm-rsa.img || fail "HSM RSA agent extract differs"
else
  expect_vr 12 extract vol.img --to hsm-rsa.img --agent-key "pkcs11:token=agent-hsm;object=dra-rsa" "${TP[@]}" -q
  has "does not decrypt RSA-OAEP with SHA-256"
fi

step "10: both customer keys lost: the availability key recovers through volmgr-recover"
unplug "$DIR_A"
unplug "$DIR_B"
expect_vm 8 open vol.img x --test "${TP[@]}"
expect_vr 0 extract vol.img --to av.img --availability-key "${TP[@]}"
has "availability key (PKCS#11) ${ID_AV:0:8}"
lacks "customer key (PKCS#11) ${ID_AV:0:8}"
cmp ref.img av.img || fail "availability-key extract differs"
unplug "$DIR_AV"
expect_vr 8 extract vol.img --to av2.img --availability-key "${TP[@]}" -q
has "no token matching"
replug "$DIR_A"
replug "$DIR_B"
replug "$DIR_AV"

step "11: revoke customer key A: it no longer opens, B still does"
expect_vm 2 revoke vol.img "${ID_RSA:0:8}"
has "not a customer key"
expect_vm 0 revoke vol.img "${ID_A:0:8}"
has "revoked"
has "1 customer key in 1 token (not redundant"
unplug "$DIR_B"
expect_vm 8 open vol.img x --test "${TP[@]}"
lacks "$ID_A"
replug "$DIR_B"
expect_vm 0 open vol.img x --test "${TP[@]}"
has "$ID_B"
cryptsetup luksDump vol.img | grep -q "$ID_A" && fail "the revoked key's token is still in the header"

step "12: purge: no protector, no keyslot; nothing opens, stock cryptsetup neither"
expect 0 cryptsetup open --test-passphrase vol.img --key-file vol.img.rp
expect_vm 5 purge vol.img
has "--yes-destroy-all-data"
expect_vm 0 purge vol.img --yes-destroy-all-data
has "Nothing opens it any more"
expect_vm 5 open vol.img x --test "${TP[@]}"
expect_vm 5 open vol.img x --test --key-file pass
expect 1 cryptsetup open --test-passphrase vol.img --key-file vol.img.rp
has "No usable keyslot"
cryptsetup luksDump vol.img | grep -Eq '^\s+[0-9]+: luks2' && fail "a keyslot survived the purge"
cryptsetup luksDump vol.img | grep -q volmgr- && fail "a volmgr token survived the purge"
vr extract vol.img --to gone.img --key-file pass -q
[[ $LAST_RC -ne 0 && ! -s gone.img ]] || fail "volmgr-recover still extracts a purged volume"

step "13: after purge: both tools say it was purged, and when"
expect_vm 5 open vol.img x --test --key-file pass
has "was purged"
lacks "did not create"
grep -Eq "purged \(\`volmgr purge\`\) on [0-9]{4}-[0-9]{2}-[0-9]{2}T" "$WORK/.stderr" ||
  fail "no purge time in: $(err)"
expect_vm 5 status vol.img
has "was purged"
vr extract vol.img --to gone2.img --key-file pass -q
[[ $LAST_RC -ne 0 ]] || fail "volmgr-recover extract of a purged volume succeeded"
has "purged"
lacks "0-bit"
lacks "did not create"
vr check vol.img
lacks "0-bit"

step "14: one customer HSM absent, wrong PIN for the present one: exit 6, said once"
new_volume v2.img 40M
expect_vm 0 protector add v2.img pkcs11 --uri "$URI_A" "${M[@]}" \
  --new-token-pin-file pin --key-file pass --json
ID2_A=$(out | jq -r .id)
p11 --token-label ck-b --keypairgen --key-type rsa:2048 --label v2-rsa --id 09 --usage-decrypt
expect_vm 0 protector add v2.img pkcs11 --uri "pkcs11:token=ck-b;object=v2-rsa" "${M[@]}" \
  --new-token-pin-file pin --key-file pass --json
ID2_B=$(out | jq -r .id)
expect_vm 0 protector add v2.img pkcs11 --uri "$URI_AV" "${M[@]}" --role availability \
  --new-token-pin-file pin --key-file pass --json
ID2_AV=$(out | jq -r .id)
unplug "$DIR_B"
expect_vm 6 open v2.img x --test --token-pin-file badpin --pkcs11-module "$MODULE"
has "wrong PIN"
has "${ID2_A:0:8}"
dups=$(sort "$WORK/.stderr" | uniq -d)
[[ -z $dups ]] || fail "a line printed twice: $dups"
# The absent HSM is still reported, once.
[[ $(grep -c "no token matching" "$WORK/.stderr") == 1 ]] ||
  fail "the absent token is not reported exactly once"
replug "$DIR_B"
# Both absent: exit 8, each token's line once.
unplug "$DIR_A"
unplug "$DIR_B"
expect_vm 8 open v2.img x --test "${TP[@]}"
dups=$(sort "$WORK/.stderr" | uniq -d)
[[ -z $dups ]] || fail "a line printed twice (both absent): $dups"
replug "$DIR_A"
replug "$DIR_B"

step "15: after both customer keys are revoked, no message names a customer key"
expect_vm 0 revoke v2.img "${ID2_A:0:8}"
expect_vm 0 revoke v2.img "${ID2_B:0:8}"
has "0 customer keys"
expect_vm 0 status v2.img
lacks "customer key (PKCS"
vm open v2.img x --test "${TP[@]}"
[[ $LAST_RC -ne 0 ]] || fail "open with no customer key left succeeded"
lacks "customer key"
expect_vr 0 extract v2.img --to av3.img --availability-key "${TP[@]}"
has "availability key (PKCS#11) ${ID2_AV:0:8}"
lacks "customer key"

finish
