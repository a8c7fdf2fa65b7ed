#!/bin/bash
# volmgr-recover extract / verify on image files, no device-mapper.
#
# Known plaintext on the host without the kernel: stock `cryptsetup
# reencrypt --encrypt` encrypts an image in userspace (libcryptsetup's own
# crypto, independent of dmtarget/), with a non-default data offset; the
# extract must give back the plaintext byte for byte. (Ciphertext written by
# the kernel's dm-crypt is covered by tests/vm/cases/volmgr_recover.sh.)
# Then: every credential kind, existing output, --resume after SIGKILL
# (byte-compared with an uninterrupted run), resume state of another volume,
# truncated images.
# shellcheck source=tests/integration/recover_lib.sh
source "$(dirname "$(realpath "$0")")/recover_lib.sh"

# ---------------------------------------------------------------------------
for ss in 512 4096; do
  step "1.$ss: stock LUKS2 made by offline reencrypt (sector $ss, data at 8 MiB): extract == plaintext"
  new_image plain.img 40M
  dd if=/dev/urandom of=plain.img bs=1M seek=1 count=20 conv=notrunc status=none
  printf 'stock-pass' >stock.key
  head -c 24M plain.img >plain.ref   # reencrypt keeps 40M - 16M of it
  cp plain.img enc.img
  expect 0 cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 16M \
    --sector-size $ss --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q \
    --key-file stock.key enc.img
  [[ $(cryptsetup luksDump enc.img | awk '/offset:.*bytes/{print $2; exit}') == 8388608 ]] ||
    fail "reencrypt did not put the data at 8 MiB"
  rm -f out.img
  expect_vr 0 extract enc.img --to out.img --key-file stock.key --threads 2
  has "unlocked with a LUKS2 keyslot"
  [[ $(stat -c %s out.img) -eq $((32 << 20)) ]] || fail "output is $(stat -c %s out.img) bytes"
  cmp -n $((24 << 20)) plain.ref out.img || fail "extracted plaintext differs"
done

step "2: a volmgr volume: passphrase, recovery password and startup key give the same image"
new_volume vol.img 48M --startup-key usb.bek
fill_data vol.img 16 32
expect_vr 0 extract vol.img --to a.img --key-file pass -q
expect_vr 0 extract vol.img --to b.img --key-file vol.img.rp -q
expect_vr 0 extract vol.img --to c.img --startup-key usb.bek -q
[[ $(stat -c %s a.img) -eq $((32 << 20)) ]] || fail "a.img has the wrong size"
cmp a.img b.img || fail "recovery password extract differs"
cmp a.img c.img || fail "startup key extract differs"
[[ ! -e a.img.volmgr-recover ]] || fail "state file left after success"
expect_vr 0 extract vol.img --to d.img --key-file pass --threads 1 --chunk-mib 1 --no-sparse
cmp a.img d.img || fail "1 thread / 1 MiB chunks differ from the default"

step "3: bad credentials and existing output"
printf 'wrong passphrase!\n' >bad
expect_vr 6 extract vol.img --to e.img --key-file bad
[[ ! -e e.img ]] || fail "output created although the unlock failed"
RP=$(cat vol.img.rp)
printf '%s' "${RP:0:15}$(( (${RP:15:1} + 1) % 10 ))${RP:16}" >typo   # a digit of group 3 changed
expect_vr 2 extract vol.img --to e.img --key-file typo
has "group 3"
expect_vr 5 extract vol.img --to e.img   # no credential, no terminal
expect_vr 4 extract vol.img --to a.img --key-file pass
has "--resume"
expect_vr 0 extract vol.img --to a.img --key-file pass --force -q

step "4: --resume after SIGKILL equals an uninterrupted extract"
new_volume big.img 800M
fill_data big.img 16 8
expect_vr 0 extract big.img --to full.img --key-file pass -q
kill_after_checkpoint part.img big.img --key-file pass
[[ $KILL_RC -eq 137 ]] || fail "the extract was not killed mid-way (exit $KILL_RC)"
[[ -s part.img.volmgr-recover ]] || fail "no state file after the kill"
DONE=$(jq .done_bytes part.img.volmgr-recover)
[[ $DONE -gt 0 ]] || fail "no checkpoint before the kill"
expect_vr 4 extract big.img --to part.img --key-file pass
expect_vr 0 extract big.img --to part.img --key-file pass --resume
has "resumed at byte $DONE"
cmp full.img part.img || fail "resumed extract differs from the uninterrupted one"
[[ ! -e part.img.volmgr-recover ]] || fail "state file left after the resumed run"
expect_vr 5 extract big.img --to full.img --key-file pass --resume
has "nothing to resume"

step "5: a state file of another volume is refused, naming it"
kill_after_checkpoint other.img big.img --key-file pass
[[ -s other.img.volmgr-recover ]] || fail "no state file after the kill"
BIG_UUID=$(setsid -w "$VOLMGR" status big.img --json </dev/null | jq -r .uuid)
expect_vr 5 extract vol.img --to other.img --key-file pass --resume
has "belongs to an extract of volume $BIG_UUID"

step "6: truncated images"
head -c $((16 << 20)) vol.img >short.img   # header intact, no data at all
expect_vr 9 extract short.img --to s.img --key-file pass
has "truncated"
head -c $((8 << 20)) vol.img >short2.img    # ends inside the keyslot area
vr extract short2.img --to s2.img --key-file pass
[[ $LAST_RC -ne 0 ]] || fail "an image cut inside its keyslot area extracted"
[[ ! -e s2.img ]] || fail "output created for a truncated image"
# A tail that is not a whole sector is not data (dm-crypt maps whole sectors).
head -c $(((16 << 20) + (1 << 20) + 1000)) vol.img >short3.img
expect_vr 0 extract short3.img --to s3.img --key-file pass -q
[[ $(stat -c %s s3.img) -eq $((1 << 20)) ]] || fail "partial tail sector was extracted"
cmp -n $((1 << 20)) s3.img a.img || fail "truncated image: the first MiB differs"

step "7: verify reads a sample and reports no filesystem on random data"
expect_vr 3 verify vol.img --key-file pass --sample 50
has "no filesystem signature"
expect_vr 3 verify vol.img --key-file pass --all --json
out | jq -e '.sectors_checked == 8192 and (.unreadable | length) == 0' >/dev/null ||
  fail "verify --all --json: $(out)"

finish
