#!/bin/bash
# volmgr-recover check / restore / rebuild on image files: which header copy
# is damaged, repair from the intact copy, restore from a backup (UUID
# checked), and a rebuild from a key package when both copies are gone:
# --dry-run writes nothing; afterwards `volmgr open --test` and stock
# cryptsetup work and the data decrypts as before.
# shellcheck source=tests/integration/recover_lib.sh
source "$(dirname "$(realpath "$0")")/recover_lib.sh"

step "1: a healthy header"
new_volume vol.img 40M --sector-size 512
fill_data vol.img 16 24
UUID=$(setsid -w "$VOLMGR" status vol.img --json </dev/null | jq -r .uuid)
expect_vr 0 check vol.img
has "primary header copy at offset 0: OK"
has "secondary header copy at offset 16384: OK"
has "incl. volmgr-volume"
expect_vr 0 check vol.img --json
out | jq -e '.healthy and .primary.checksum_ok and .secondary.checksum_ok' >/dev/null ||
  fail "check --json: $(out)"
expect_vr 0 extract vol.img --to before.img --key-file pass -q
expect_vr 0 keypackage export vol.img --out vol.vkp --key-file vol.img.rp
expect_vm 0 header backup vol.img vol.hdr

step "2: primary wiped: check names it, volmgr still opens, restore repairs it"
dd if=/dev/zero of=vol.img bs=4096 count=1 conv=notrunc status=none
expect_vr 9 check vol.img
has "primary header copy at offset 0: DAMAGED"
has "wiped"
has "secondary header copy at offset 16384: OK"
expect_vr 0 restore vol.img
has "Repaired the primary header copy"
expect_vr 0 check vol.img
expect_vm 0 open vol.img x --test --key-file pass

step "3: secondary JSON altered: checksum mismatch of the secondary"
printf 'XX' | dd of=vol.img bs=1 seek=$((16384 + 4096 + 10)) conv=notrunc status=none
expect_vr 9 check vol.img
has "primary header copy at offset 0: OK"
has "secondary header copy at offset 16384: DAMAGED"
has "sha256 checksum mismatch"
expect_vr 0 restore vol.img
has "Repaired the secondary header copy"
expect_vr 0 check vol.img

step "4: both copies' JSON damaged: restore from a backup, UUID checked"
new_volume other.img 32M
expect_vm 0 header backup other.img other.hdr
printf 'XX' | dd of=vol.img bs=1 seek=$((4096 + 10)) conv=notrunc status=none
printf 'XX' | dd of=vol.img bs=1 seek=$((16384 + 4096 + 10)) conv=notrunc status=none
expect_vr 9 check vol.img
has "both header copies are damaged"
expect_vr 9 restore vol.img
has "--from BACKUP"
snapshot vol.img
expect_vr 5 restore vol.img --from other.hdr
has "holds volume $UUID"
unchanged vol.img
expect_vr 0 restore vol.img --from vol.hdr
expect_vm 0 open vol.img x --test --key-file pass
expect_vr 0 check vol.img

step "5: everything up to the data wiped: rebuild --dry-run writes nothing"
dd if=/dev/zero of=vol.img bs=1M count=16 conv=notrunc status=none
expect_vm 5 status vol.img
SUM=$(file_sum vol.img)
expect_vr 0 rebuild vol.img --key-package vol.vkp --key-file vol.img.rp --dry-run
has "Dry run: nothing was written"
has "data offset 16777216"
has "sector size 512"
[[ $(file_sum vol.img) == "$SUM" ]] || fail "--dry-run changed the image"

step "6: rebuild; volmgr, stock cryptsetup and the data agree"
expect_vr 0 rebuild vol.img --key-package vol.vkp --key-file vol.img.rp
expect_vm 0 open vol.img x --test --key-file vol.img.rp
has "recovery password"
expect_vm 3 open vol.img x --test --key-file pass   # the passphrase protector is gone
expect 0 cryptsetup luksDump vol.img
has "$UUID"
has "volmgr-volume"
has "volmgr-recovery-password"
expect 0 cryptsetup open --test-passphrase vol.img --key-file vol.img.rp
expect_vr 0 check vol.img
expect_vr 0 extract vol.img --to after.img --key-file vol.img.rp -q
cmp before.img after.img || fail "the data differs after the rebuild"
[[ $(setsid -w "$VOLMGR" status vol.img --json </dev/null | jq -r .sector_size) == 512 ]] ||
  fail "sector size changed"
expect_vr 5 rebuild vol.img --key-package vol.vkp --key-file vol.img.rp
has "intact"

finish
