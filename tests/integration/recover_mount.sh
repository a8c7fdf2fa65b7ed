#!/bin/bash
# volmgr-recover mount: the plaintext block device as MOUNTPOINT/plain.img on
# a read-only FUSE mount (/dev/fuse, no device-mapper).
#
# Known plaintext without the kernel: an ext4 image made by mkfs.ext4 -d is
# encrypted in place by stock `cryptsetup reencrypt --encrypt` (userspace,
# independent of dmtarget/). The mounted file must equal that plaintext and
# `extract`'s output byte for byte, also for unaligned random reads; e2fsck
# and debugfs read the filesystem straight from the mounted file. Then:
# background and foreground modes, clean unmount, writes refused (EROFS), a
# volmgr volume with every credential kind, a key package on a volume whose
# headers are gone, reads past a truncated device (EIO), bad inputs.
# shellcheck source=tests/integration/recover_lib.sh
source "$(dirname "$(realpath "$0")")/recover_lib.sh"

require_tools fusermount3 mkfs.ext4 e2fsck debugfs findmnt pgrep
if [[ ! -c /dev/fuse ]] || ! (exec 3<>/dev/fuse) 2>/dev/null; then
  skip "/dev/fuse is not usable here"
fi

mkdir mnt
on_exit "fusermount3 -u -z $WORK/mnt"
is_mounted() { findmnt -n "$WORK/mnt" >/dev/null 2>&1; }
# wait_mounted: until plain.img appears (foreground mode), at most 10 s.
wait_mounted() {
  local i
  for ((i = 0; i < 200; i++)); do
    [[ -e mnt/plain.img ]] && return 0
    sleep 0.05
  done
  fail "the mount did not appear"
}
# bytes FILE OFFSET COUNT: COUNT bytes of FILE from OFFSET, as hex.
bytes() { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none | od -An -tx1 -v; }

# ---------------------------------------------------------------------------
step "1: stock LUKS2 over an ext4 image: mounted plain.img == plaintext == extract"
mkdir tree
printf 'hello from inside the volume\n' >tree/hello.txt
head -c 300000 /dev/urandom >tree/blob.bin
new_image plain.img 40M
expect 0 mkfs.ext4 -q -F -b 4096 -d tree -L inner plain.img 24M
head -c 24M plain.img >plain.ref
printf 'stock-pass' >stock.key
cp plain.img enc.img
expect 0 cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 16M \
  --sector-size 4096 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q \
  --key-file stock.key enc.img
expect_vr 0 mount enc.img mnt --key-file stock.key
has "mnt/plain.img"
is_mounted || fail "nothing mounted after exit 0"
[[ $(findmnt -n -o FSTYPE "$WORK/mnt") == fuse.volmgr-recover ]] ||
  fail "mount type is $(findmnt -n -o FSTYPE "$WORK/mnt")"
[[ $(findmnt -n -o OPTIONS "$WORK/mnt") == ro,* ]] || fail "not mounted ro"
[[ $(ls mnt) == plain.img ]] || fail "the mount holds: $(ls mnt)"
[[ $(stat -c %s mnt/plain.img) -eq $((32 << 20)) ]] || fail "size $(stat -c %s mnt/plain.img)"
[[ $(stat -c %a mnt/plain.img) == 400 ]] || fail "mode $(stat -c %a mnt/plain.img)"
cmp -n $((24 << 20)) plain.ref mnt/plain.img || fail "mounted plaintext differs from the original"
expect_vr 0 extract enc.img --to ex.img --key-file stock.key -q
cmp ex.img mnt/plain.img || fail "mounted plaintext differs from extract"
expect 0 e2fsck -fn mnt/plain.img
expect 0 debugfs -R 'cat /hello.txt' mnt/plain.img
has "hello from inside the volume"
debugfs -R 'dump /blob.bin blob.out' mnt/plain.img >/dev/null 2>&1
cmp tree/blob.bin blob.out || fail "a file read through debugfs differs"

step "2: unaligned random reads decrypt only what they need, correctly"
for spec in "0 1" "511 2" "4095 4098" "1000003 70001" "$(((32 << 20) - 5)) 5" "8191 131073"; do
  read -r off cnt <<<"$spec"
  [[ $(bytes mnt/plain.img "$off" "$cnt") == "$(bytes ex.img "$off" "$cnt")" ]] ||
    fail "read of $cnt bytes at $off differs"
done
# Reading past the end returns nothing.
[[ $(dd if=mnt/plain.img iflag=skip_bytes skip=$((32 << 20)) bs=4096 status=none | wc -c) -eq 0 ]] ||
  fail "bytes past the end"

step "3: writes are refused with EROFS"
run dd if=/dev/zero of=mnt/plain.img bs=512 count=1 conv=notrunc
[[ $LAST_RC -ne 0 ]] || fail "a write succeeded"
has "read-only file system"
run touch mnt/new
[[ $LAST_RC -ne 0 ]] || fail "creating a file succeeded"
has "read-only file system"
cmp ex.img mnt/plain.img || fail "the plaintext changed"

step "4: already mounted is refused; fusermount3 -u unmounts and the server exits"
expect_vr 11 mount enc.img mnt --key-file stock.key
has "already a mount point"
PIDS=$(pgrep -f "volmgr-recover mount enc.img" || true)
[[ -n $PIDS ]] || fail "no background server process"
expect 0 fusermount3 -u mnt
! is_mounted || fail "still mounted after fusermount3 -u"
for ((i = 0; i < 100; i++)); do
  pgrep -f "volmgr-recover mount enc.img" >/dev/null || break
  sleep 0.05
done
! pgrep -f "volmgr-recover mount enc.img" >/dev/null || fail "the server outlived the unmount"

step "5: a volmgr volume in the foreground: every credential gives the same bytes; SIGTERM unmounts"
new_volume vol.img 48M --startup-key usb.bek
fill_data vol.img 16 32
expect_vr 0 extract vol.img --to a.img --key-file pass -q
for cred in "--key-file pass" "--key-file vol.img.rp" "--startup-key usb.bek"; do
  # shellcheck disable=SC2086
  setsid -w "$RECOVER" mount vol.img mnt -f $cred </dev/null >fg.out 2>&1 &
  FG=$!
  wait_mounted
  grep -q "Serving in the foreground" fg.out || fail "no foreground notice: $(cat fg.out)"
  cmp a.img mnt/plain.img || fail "mounted plaintext ($cred) differs from extract"
  kill -TERM $FG
  set +e
  wait $FG
  FG_RC=$?
  set -e
  [[ $FG_RC -eq 0 ]] || fail "foreground mount exited $FG_RC on SIGTERM: $(cat fg.out)"
  ! is_mounted || fail "still mounted after SIGTERM"
done

step "6: bad inputs: wrong key, missing or non-directory mount point"
printf 'wrong passphrase!\n' >bad
expect_vr 6 mount vol.img mnt --key-file bad
! is_mounted || fail "mounted with a wrong key"
expect_vr 3 mount vol.img nowhere --key-file pass
has "does not exist"
expect_vr 2 mount vol.img pass --key-file pass
has "not a directory"
expect_vr 5 mount vol.img mnt   # no credential, no terminal
! is_mounted || fail "mounted without a credential"

step "7: headers destroyed: mount and verify with the key package"
expect_vr 0 keypackage export vol.img --out vol.vkp --key-file vol.img.rp
cp vol.img dead.img
dd if=/dev/zero of=dead.img bs=1M count=16 conv=notrunc status=none
expect_vr 0 verify dead.img --key-package vol.vkp --key-file vol.img.rp --sample 20 --json
out | jq -e '.key_package_checksum == "match" and (.unreadable | length) == 0' >/dev/null ||
  fail "verify --key-package: $(out)"
expect_vr 0 mount dead.img mnt --key-package vol.vkp --key-file vol.img.rp
has "key package"
cmp a.img mnt/plain.img || fail "plaintext through the key package differs"
expect 0 fusermount3 -u mnt
# The package of another volume: refused, naming whose it is.
new_volume other.img 32M
OUUID=$(setsid -w "$VOLMGR" status other.img --json </dev/null | jq -r .uuid)
expect_vr 5 mount other.img mnt --key-package vol.vkp --key-file vol.img.rp
has "names volume $OUUID"
! is_mounted || fail "mounted another volume's data"
# Changed data: verify reports the checksum mismatch (exit 9).
cp dead.img changed.img
printf 'X' | dd of=changed.img bs=1 seek=$((16 << 20)) conv=notrunc status=none
expect_vr 9 verify changed.img --key-package vol.vkp --key-file vol.img.rp --sample 4
has "differ from the key package's checksum"

step "8: a truncated device: readable parts served, the rest fails with EIO"
head -c $((20 << 20)) dead.img >cut.img   # 4 MiB of the 32 MiB payload left
expect_vr 0 mount cut.img mnt --key-package vol.vkp --key-file vol.img.rp
cmp -n $((4 << 20)) a.img mnt/plain.img || fail "the readable part differs"
run dd if=mnt/plain.img of=/dev/null bs=1M skip=10 count=1 iflag=direct
[[ $LAST_RC -ne 0 ]] || fail "a read past the device's end succeeded"
has "input/output error"
expect 0 fusermount3 -u mnt
expect_vr 10 verify cut.img --key-package vol.vkp --key-file vol.img.rp --sample 50
has "unreadable: data sectors"

finish
