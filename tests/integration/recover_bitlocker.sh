#!/bin/bash
# volmgr-recover on Windows BitLocker volumes (libcryptsetup BITLK): bitlk-dump
# describes a volume and proves a password, recovery password or startup key
# offline (VMK and FVEK decrypted, no device-mapper); extract and mount refuse
# BitLocker naming bitlk-open; bitlk-open needs device-mapper (exit 8 here;
# the VM test tests/vm/cases/volmgr_recover.sh opens one for real).
#
# Images: cryptsetup's own test images, tests/bitlk-images.tar.xz of the
# cryptsetup 2.6.1 source (GPL-2.0-or-later; volumes made on Windows by the
# cryptsetup authors, passwords in its tests/bitlk-compat-test and the
# tarball's images.conf). .ci/install fetches Debian's
# cryptsetup_2.6.1.orig.tar.gz (SHA-256 pinned from the .dsc) and caches the
# tarball in ${VOLMGR_VM_CACHE:-/var/cache/volmgr-vm}; its own SHA-256 is
# pinned below.
# shellcheck source=tests/integration/recover_lib.sh
source "$(dirname "$(realpath "$0")")/recover_lib.sh"

TARBALL=${VOLMGR_VM_CACHE:-/var/cache/volmgr-vm}/bitlk-images.tar.xz
[[ -s $TARBALL ]] ||
  fail "$TARBALL is missing: .ci/install fetches it: run ./.ci/install as root"
[[ $(sha256sum "$TARBALL" | cut -d' ' -f1) == \
  cd5cacb825ac339f450000c8c45b26ee7d2747afd85432b3c1ea5c7da314963e ]] ||
  fail "$TARBALL is not cryptsetup 2.6.1's bitlk-images.tar.xz"
expect 0 tar -xJf "$TARBALL" bitlk-images/images.conf \
  bitlk-images/bitlk-aes-xts-128.img bitlk-images/bitlk-aes-cbc-256.img \
  bitlk-images/bitlk-aes-xts-128-startup-key.img \
  bitlk-images/4381F759-C4F8-4DE0-BB61-FC33A831BDA5.BEK \
  bitlk-images/bitlk-aes-xts-128-eow.img bitlk-images/bitlk-clearkey-aes-cbc-128.img
B=bitlk-images
# conf IMAGE KEY: a value from images.conf.
conf() { sed -n "/^\[$1\]/,/^\[/p" $B/images.conf | sed -n "s/^$2=//p" | head -1; }

step "1: bitlk-dump describes the volumes (GUID and cipher as images.conf)"
for img in bitlk-aes-xts-128 bitlk-aes-cbc-256; do
  expect_vr 0 bitlk-dump $B/$img.img --json
  out | jq -e --arg g "$(conf $img GUID)" --arg c "$(conf $img CIPHER)" \
    '.type == "BitLocker" and .guid == $g and .cipher == $c and .credential == "not checked"' \
    >/dev/null || fail "$img: $(out)"
done

step "2: password, recovery password and startup key open the volume offline"
printf '%s' "$(conf bitlk-aes-xts-128 PW)" >pw
printf '%s' "$(conf bitlk-aes-xts-128 RP)" >rp
expect_vr 0 bitlk-dump $B/bitlk-aes-xts-128.img --key-file pw
has "Credential:  opens the volume"
expect_vr 0 bitlk-dump $B/bitlk-aes-xts-128.img --key-file rp --json
out | jq -e '.credential == "opens the volume"' >/dev/null || fail "$(out)"
printf '%s' "$(conf bitlk-aes-cbc-256 RP)" >rp256
expect_vr 0 bitlk-dump $B/bitlk-aes-cbc-256.img --key-file rp256
has "opens the volume"
expect_vr 0 bitlk-dump $B/bitlk-aes-xts-128-startup-key.img \
  --startup-key $B/4381F759-C4F8-4DE0-BB61-FC33A831BDA5.BEK
has "opens the volume"

step "3: wrong credentials: exit 6; no credential and no terminal: exit 5"
printf 'anaconda2' >bad
expect_vr 6 bitlk-dump $B/bitlk-aes-xts-128.img --key-file bad
has "does not open the BitLocker volume"
# The recovery password of another volume.
expect_vr 6 bitlk-dump $B/bitlk-aes-xts-128.img --key-file rp256
expect_vr 6 bitlk-dump $B/bitlk-aes-cbc-256.img \
  --startup-key $B/4381F759-C4F8-4DE0-BB61-FC33A831BDA5.BEK
expect_vr 5 bitlk-open $B/bitlk-aes-xts-128.img win

step "4: extract and mount say what to do with BitLocker (exit 12)"
mkdir mnt
expect_vr 12 extract $B/bitlk-aes-xts-128.img --to x.img --key-file pw
has "bitlk-open"
[[ ! -e x.img ]] || fail "extract wrote an output"
expect_vr 12 mount $B/bitlk-aes-xts-128.img mnt --key-file pw
has "is a BitLocker volume"
expect_vr 12 check $B/bitlk-aes-xts-128.img
has "bitlk-dump"

step "5: not BitLocker: bitlk-dump refuses a LUKS2 volume (exit 5)"
new_volume vol.img 20M
expect_vr 5 bitlk-dump vol.img
has "no BitLocker volume"

step "6: bitlk-open without device-mapper: exit 8, naming it"
if ! (exec 3<>/dev/mapper/control) 2>/dev/null; then
  expect_vr 8 bitlk-open $B/bitlk-aes-xts-128.img win --key-file pw
  has "device-mapper is not available"
else
  echo "  (device-mapper present: opening is covered by the VM test)"
fi
expect_vr 0 bitlk-open --help
has "TPM, TPM+PIN"


# Issue 17, item 17: volumes libcryptsetup (and so stock cryptsetup) will not
# activate. The credential is right, so bitlk-dump must not say it "opens the
# volume" and bitlk-open must not blame TPM / smart-card protectors and ask
# for the recovery password that was just given.
step "7: encrypt-on-write image: the credential is right, the volume cannot be activated (12)"
EOW=$B/bitlk-aes-xts-128-eow.img
printf '%s' "$(conf bitlk-aes-xts-128-eow RP)" >rp-eow
for cred in pw rp-eow; do
  expect_vr 12 bitlk-dump $EOW --key-file $cred
  has "cannot be activated"
  has "encrypt-on-write"
  lacks "opens the volume"
done
expect_vr 12 bitlk-dump $EOW --key-file pw --json
out | jq -e '.credential == "correct" and .activatable == false
  and (.activation_problem | test("encrypt-on-write"))' >/dev/null || fail "$(out)"
expect_vr 12 bitlk-open $EOW win --key-file rp-eow
has "cannot be activated"
has "encrypt-on-write"
lacks "TPM"
lacks "smart card"
lacks "use the recovery password"
# Without a credential bitlk-dump still says so, and exits 0 (it only describes).
expect_vr 0 bitlk-dump $EOW --json
out | jq -e '.activatable == false and .credential == "not checked"' >/dev/null || fail "$(out)"
# A wrong credential is still a wrong credential.
expect_vr 6 bitlk-dump $EOW --key-file bad

step "8: partly encrypted (state not normal): the same answer"
cp $B/bitlk-aes-xts-128.img part.img
FVE=$(cryptsetup bitlkDump part.img | awk '/FVE metadata area/{getline; print $2; exit}')
[[ -n $FVE ]] || fail "no FVE metadata offset in bitlkDump"
printf '\x02\x00' | dd of=part.img bs=1 seek=$((FVE + 12)) conv=notrunc status=none  # curr_state
expect 1 cryptsetup open --test-passphrase --type bitlk part.img --key-file pw
has "unsupported state"
expect_vr 12 bitlk-dump part.img --key-file pw
has "cannot be activated"
lacks "opens the volume"
expect_vr 12 bitlk-open part.img win --key-file pw
has "cannot be activated"
lacks "TPM"

step "9: clear key only (protection suspended): its own message, no credential asked for"
cp $B/bitlk-clearkey-aes-cbc-128.img ck.img
# Turn its password and recovery-password VMK entries (type 0x0002) into an
# entry type libcryptsetup skips, leaving only the clear-key VMK.
for off in 35213492 35213716; do   # entry start + 2: the type field
  printf '\x0e\x00' | dd of=ck.img bs=1 seek=$off conv=notrunc status=none
done
cryptsetup bitlkDump ck.img | grep -c "Protection:" | grep -qx 1 || fail "crafting ck.img failed"
expect_vr 0 bitlk-dump ck.img --json
out | jq -e '.protectors == ["clear key"] and .activatable == false' >/dev/null || fail "$(out)"
expect_vr 12 bitlk-open ck.img win
has "clear key"
lacks "--key-file"
lacks "use the recovery password"
expect_vr 12 bitlk-open ck.img win --key-file rp
has "clear key"
expect_vr 12 bitlk-dump ck.img --key-file pw
has "clear key"
lacks "opens the volume"
# The original clear-key image also has a password: right, but not activatable.
expect_vr 12 bitlk-dump $B/bitlk-clearkey-aes-cbc-128.img --key-file pw
has "cannot be activated"

finish
