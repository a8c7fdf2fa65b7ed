#!/bin/bash
# volmgr-recover keypackage export / show, and what opening a package refuses:
# the wrong recovery password (exit 6), a typo (exit 2, group named), a
# credential that is not a recovery password, a package of another volume
# (refused, naming whose it is), an altered or truncated package.
# shellcheck source=tests/integration/recover_lib.sh
source "$(dirname "$(realpath "$0")")/recover_lib.sh"

step "1: export under the recovery password; show prints metadata, no secret"
new_volume vol.img 32M --label payroll
fill_data vol.img 16 16
UUID=$(setsid -w "$VOLMGR" status vol.img --json </dev/null | jq -r .uuid)
RID=$(cat vol.img.rid)
expect_vr 0 keypackage export vol.img --out vol.vkp --key-file vol.img.rp
has "$RID"
[[ $(stat -c %a vol.vkp) == 400 ]] || fail "key package mode is $(stat -c %a vol.vkp)"
[[ $(head -c 8 vol.vkp) == VMGRKPKG ]] || fail "no VMGRKPKG magic"
expect_vr 0 keypackage show vol.vkp
has "Volume UUID:   $UUID"
has "Recovery ID:   $RID"
has "payroll"
lacks "$(cat vol.img.rp)"
expect_vr 0 keypackage show vol.vkp --json
out | jq -e --arg u "$UUID" --arg r "$RID" \
  '.volume_uuid == $u and .recovery_id == $r and .label == "payroll" and .version == 1' \
  >/dev/null || fail "show --json: $(out)"
# The FVEK must not appear in the file in the clear.
FVEK=$(printf '%s' "$(cat vol.img.rp)" | cryptsetup luksDump --dump-volume-key -q \
  --key-file - vol.img 2>/dev/null | sed -n '/MK dump/,$p' | sed 's/MK dump://' | tr -d ' \t\n')
[[ ${#FVEK} -eq 128 ]] || fail "could not dump the volume key for the check"
if od -An -tx1 -v vol.vkp | tr -d ' \n' | grep -q "${FVEK:0:32}"; then
  fail "the FVEK is in the key package in the clear"
fi

step "2: export refuses a passphrase, an existing file, a wrong password"
expect_vr 2 keypackage export vol.img --out p.vkp --key-file pass
has "sealed under a recovery password"
[[ ! -e p.vkp ]] || fail "a package was written"
expect_vr 4 keypackage export vol.img --out vol.vkp --key-file vol.img.rp
# Another valid 48-digit password (group 1 + 11): exit 6.
RP=$(cat vol.img.rp)
G1=$(( (10#${RP:0:6} + 11) % 720896 ))
printf '%06d%s' $G1 "${RP:6}" >wrong.rp
expect_vr 6 keypackage export vol.img --out w.vkp --key-file wrong.rp

step "3: opening the package: wrong password 6, typo 2 naming the group"
wipe_headers() { dd if=/dev/zero of="$1" bs=1M count=16 conv=notrunc status=none; }
cp vol.img dead.img
wipe_headers dead.img
expect_vr 6 rebuild dead.img --key-package vol.vkp --key-file wrong.rp --dry-run
has "does not open this key package"
has "$RID"
printf '%s' "${RP:0:30}${RP:31:1}${RP:30:1}${RP:32}" >swap.rp  # swap in group 5
if [[ ${RP:30:1} != "${RP:31:1}" ]]; then
  expect_vr 2 rebuild dead.img --key-package vol.vkp --key-file swap.rp --dry-run
  has "group 5"
fi

step "4: a package of another volume is refused, naming whose it is"
new_volume other.img 32M --label other
OTHER=$(setsid -w "$VOLMGR" status other.img --json </dev/null | jq -r .uuid)
snapshot other.img
expect_vr 5 rebuild other.img --key-package vol.vkp --key-file vol.img.rp --force
has "key package is for volume $UUID"
has "payroll"
has "names volume $OTHER"
unchanged other.img
# Headers gone too: the data itself must not match.
fill_data other.img 16 16
wipe_headers other.img
cp other.img other.before
expect_vr 5 rebuild other.img --key-package vol.vkp --key-file vol.img.rp
has "does not decrypt with the key package of volume $UUID"
cmp other.img other.before || fail "a refused rebuild wrote to the device"

step "5: altered and truncated packages"
cp vol.vkp alt.vkp
chmod 600 alt.vkp
# Flip one byte of the label (clear, but authenticated as AAD).
printf 'X' | dd of=alt.vkp bs=1 seek=83 conv=notrunc status=none
expect_vr 6 rebuild dead.img --key-package alt.vkp --key-file vol.img.rp --dry-run
head -c 90 vol.vkp >short.vkp
expect_vr 9 keypackage show short.vkp
has "truncated"
printf 'not a package at all' >junk.vkp
expect_vr 9 keypackage show junk.vkp
has "VMGRKPKG"
expect_vr 3 keypackage show missing.vkp

step "6: volmgr keypackage export (the main CLI, same code): a package that rebuilds"
expect_vm 0 keypackage export vol.img --out main.vkp --key-file vol.img.rp --json
out | jq -e --arg u "$UUID" --arg r "$RID" '.volume_uuid == $u and .recovery_id == $r' \
  >/dev/null || fail "volmgr keypackage export --json: $(out)"
[[ $(stat -c %a main.vkp) == 400 ]] || fail "key package mode is $(stat -c %a main.vkp)"
expect_vr 0 keypackage show main.vkp --json
out | jq -e --arg u "$UUID" '.volume_uuid == $u and .label == "payroll"' >/dev/null ||
  fail "show of volmgr's package: $(out)"
cp vol.img dead2.img
wipe_headers dead2.img
expect_vr 0 rebuild dead2.img --key-package main.vkp --key-file vol.img.rp
expect_vm 0 open dead2.img x --test --key-file vol.img.rp
expect_vm 2 keypackage export vol.img --out p2.vkp --key-file pass
has "sealed under a recovery password"
[[ ! -e p2.vkp ]] || fail "a package was written for a passphrase"
expect_vm 6 keypackage export vol.img --out w2.vkp --key-file wrong.rp
expect_vm 4 keypackage export vol.img --out main.vkp --key-file vol.img.rp
has "never overwritten"
expect_vm 5 keypackage export vol.img --out n.vkp   # no credential, no terminal
expect_vm 0 keypackage export --help
has "volmgr-recover rebuild"


step "7: a key package sealed to a recovery agent certificate (RSA and EC)"
openssl req -x509 -newkey rsa:2048 -nodes -keyout agent-rsa.pem -out agent-rsa.crt -days 30 \
  -subj "/CN=volmgr DRA RSA" -addext "keyUsage=critical,keyEncipherment" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout agent-ec.pem \
  -out agent-ec.crt -days 30 -subj "/CN=volmgr DRA EC" -addext "keyUsage=critical,keyAgreement" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout sig.pem -out sig.crt -days 30 \
  -subj "/CN=signing only" -addext "keyUsage=critical,digitalSignature" 2>/dev/null
for kind in rsa ec; do
  # Any credential of the volume unlocks for an agent package: the passphrase here.
  expect_vm 0 keypackage export vol.img --out "agent-$kind.vkp" --certificate "agent-$kind.crt" \
    --key-file pass --json
  out | jq -e --arg u "$UUID" '.volume_uuid == $u and (.certificate_sha256 | length) == 64
    and (has("recovery_id") | not)' >/dev/null || fail "export --certificate --json: $(out)"
  [[ $(stat -c %a "agent-$kind.vkp") == 400 ]] || fail "agent package mode"
  expect_vr 0 keypackage show "agent-$kind.vkp" --json
  out | jq -e --arg u "$UUID" '.version == 2 and .sealed_to == "certificate"
    and .volume_uuid == $u and (.certificate_subject | test("volmgr DRA"))' >/dev/null ||
    fail "show of an agent package: $(out)"
  if od -An -tx1 -v "agent-$kind.vkp" | tr -d ' \n' | grep -q "${FVEK:0:32}"; then
    fail "the FVEK is in the agent key package in the clear"
  fi
done
cp vol.img dead3.img
wipe_headers dead3.img
# No agent key: refused, naming the certificate; a recovery password does not open it.
expect_vr 5 rebuild dead3.img --key-package agent-rsa.vkp --key-file vol.img.rp --dry-run
has "volmgr DRA RSA"
has "--agent-key"
# The other agent's key: authentication fails (exit 6), nothing written.
expect_vr 6 rebuild dead3.img --key-package agent-rsa.vkp --agent-key agent-ec.pem
cmp -n $((16 << 20)) dead3.img /dev/zero >/dev/null || fail "a failed rebuild wrote to the device"
expect_vr 0 rebuild dead3.img --key-package agent-ec.vkp --agent-key agent-ec.pem --dry-run
has "Dry run"
expect_vr 0 rebuild dead3.img --key-package agent-ec.vkp --agent-key agent-ec.pem
has "NEW recovery password"
NEWRP=$(out | grep -Eo '([0-9]{6}-){7}[0-9]{6}')
[[ -n $NEWRP ]] || fail "no new recovery password printed: $(out)"
printf '%s' "$NEWRP" >new.rp
expect_vm 0 open dead3.img x --test --key-file new.rp
printf '%s' "$NEWRP" | cryptsetup open --test-passphrase --key-file - dead3.img ||
  fail "stock cryptsetup does not open the rebuilt volume with the new recovery password"
cmp <(dd if=vol.img bs=1M skip=16 status=none) <(dd if=dead3.img bs=1M skip=16 status=none) ||
  fail "the data area changed"
# verify --key-package with the agent key proves the data against the package.
expect_vr 0 verify vol.img --key-package agent-rsa.vkp --agent-key agent-rsa.pem
# A certificate unfit for a new enrolment is refused: nothing is written.
expect_vm 2 keypackage export vol.img --out sig.vkp --certificate sig.crt --key-file pass
[[ ! -e sig.vkp ]] || fail "a package was sealed to a signing-only certificate"
expect_vm 2 keypackage export vol.img --out x.vkp --certificate agent-rsa.crt \
  --recovery-id "$RID" --key-file pass

finish
