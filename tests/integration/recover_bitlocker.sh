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
  bitlk-images/4381F759-C4F8-4DE0-BB61-FC33A831BDA5.BEK
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

finish
