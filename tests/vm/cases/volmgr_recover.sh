# Inside the VM (busybox ash): volmgr-recover against ciphertext that the
# real kernel dm-crypt wrote. For sector sizes 4096 and 512: volmgr format,
# ext4 + files through /dev/mapper, the plaintext mapping's sha256 as
# reference; then, without device-mapper, `volmgr-recover extract` must give
# a byte-identical image (fsck clean, same file hashes via a loop mount).
# Header: primary wiped -> volmgr opens; both wiped -> rebuilt from a key
# package -> data intact. I/O errors: a dm "error" target in the middle of
# the data -> the range is named, the rest is still extracted. A stock
# cryptsetup LUKS2 volume with a non-default data offset (4 MiB).
# Disks: /dev/vda (96M) volmgr volume, /dev/vdb (48M) stock volume.
. /vmbed/lib.sh
set -eu

K=/tmp/keys
mkdir -p $K /mnt/v /mnt/p
printf 'correct horse battery staple\n' > $K/pass
FAST="--argon2-time 1 --argon2-memory 8192"

check_files() {  # DEV WHAT [mount options]
  mount -o ro${3:+,$3} "$1" /mnt/v || fail "mount of $1 ($2)"
  (cd /mnt/v && sha256sum -c /tmp/hashes >/dev/null) || { umount /mnt/v; fail "file hashes differ via $2"; }
  umount /mnt/v
}

for ss in 4096 512; do
  step 1.$ss "format (sector $ss), ext4 and files through dm-crypt"
  rm -f $K/rp $K/pkg
  volmgr format /dev/vda --force --sector-size $ss --new-key-file $K/pass \
    --recovery-password-file $K/rp $FAST >/tmp/format.out || fail "format: $(cat /tmp/format.out)"
  sed -n 's/^Recovery password: //p' $K/rp | tr -d '\n' > $K/rp.txt
  volmgr open /dev/vda sec --key-file $K/pass
  mkfs.ext4 -q /dev/mapper/sec
  mount /dev/mapper/sec /mnt/v
  dd if=/dev/urandom of=/mnt/v/big.bin bs=1M count=12 2>/dev/null
  echo "hello from volmgr-recover" > /mnt/v/hello.txt
  mkdir /mnt/v/dir && dd if=/dev/urandom of=/mnt/v/dir/small.bin bs=3000 count=7 2>/dev/null
  (cd /mnt/v && sha256sum big.bin hello.txt dir/small.bin) > /tmp/hashes
  umount /mnt/v
  REF=$(sha256sum /dev/mapper/sec | cut -d' ' -f1)
  SIZE=$(blockdev --getsize64 /dev/mapper/sec)
  volmgr close sec

  step 2.$ss "extract without dm: byte-identical to the dm-crypt plaintext"
  t0=$(date +%s)
  volmgr-recover extract /dev/vda --to /tmp/plain.img --key-file $K/pass --quiet \
    || fail "extract failed"
  data extract_s_$ss $(( $(date +%s) - t0 ))
  [ "$(stat -c %s /tmp/plain.img)" = "$SIZE" ] || fail "extract size $(stat -c %s /tmp/plain.img) != $SIZE"
  [ "$(sha256sum /tmp/plain.img | cut -d' ' -f1)" = "$REF" ] || fail "extracted image differs from /dev/mapper/sec"
  e2fsck -fn /tmp/plain.img >/tmp/fsck.out 2>&1 || fail "e2fsck: $(cat /tmp/fsck.out)"
  check_files /tmp/plain.img "loop mount of the extracted image" loop
  volmgr-recover verify /dev/vda --key-file $K/rp.txt --sample 64 >/tmp/verify.out \
    || fail "verify: $(cat /tmp/verify.out)"
  grep -q 'Filesystem: ext4' /tmp/verify.out || fail "verify found no ext4: $(cat /tmp/verify.out)"
  rm -f /tmp/plain.img

  step 3.$ss "key package, then primary header wiped: volmgr still opens"
  volmgr-recover keypackage export /dev/vda --out $K/pkg --key-file $K/rp.txt >/dev/null
  dd if=/dev/zero of=/dev/vda bs=4096 count=1 conv=notrunc 2>/dev/null
  rc=0; volmgr-recover check /dev/vda >/tmp/check.out || rc=$?
  [ $rc -eq 9 ] || fail "check of a wiped primary gave exit $rc"
  grep -q 'primary header copy at offset 0: DAMAGED' /tmp/check.out || fail "check: $(cat /tmp/check.out)"
  grep -q 'secondary header copy at offset 16384: OK' /tmp/check.out || fail "check: $(cat /tmp/check.out)"
  volmgr open /dev/vda sec --key-file $K/pass --readonly || fail "open with the primary wiped"
  check_files /dev/mapper/sec "primary header wiped"
  volmgr close sec

  step 4.$ss "both header copies and the keyslots wiped: rebuild from the key package"
  dd if=/dev/zero of=/dev/vda bs=1M count=16 conv=notrunc 2>/dev/null
  rc=0; volmgr open /dev/vda sec --key-file $K/pass 2>/dev/null || rc=$?
  [ $rc -ne 0 ] || fail "opened with no header"
  sum_before=$(sha256sum /dev/vda | cut -d' ' -f1)
  volmgr-recover rebuild /dev/vda --key-package $K/pkg --key-file $K/rp.txt --dry-run >/tmp/dry.out \
    || fail "rebuild --dry-run: $(cat /tmp/dry.out)"
  [ "$(sha256sum /dev/vda | cut -d' ' -f1)" = "$sum_before" ] || fail "--dry-run wrote to the device"
  volmgr-recover rebuild /dev/vda --key-package $K/pkg --key-file $K/rp.txt >/tmp/rb.out \
    || fail "rebuild: $(cat /tmp/rb.out)"
  volmgr open /dev/vda sec --key-file $K/rp.txt --readonly || fail "volmgr open after rebuild"
  [ "$(sha256sum /dev/mapper/sec | cut -d' ' -f1)" = "$REF" ] || fail "plaintext changed by the rebuild"
  check_files /dev/mapper/sec "rebuilt header"
  volmgr close sec
  cryptsetup open --readonly /dev/vda stock --key-file $K/rp.txt || fail "stock cryptsetup after rebuild"
  check_files /dev/mapper/stock "stock cryptsetup on the rebuilt header"
  cryptsetup close stock
done

step 5 "an I/O error range in the middle of the data: named, zero-filled, the rest extracted"
# /dev/vda holds the rebuilt 512-byte-sector volume now (recovery password
# only); data starts at 512-sector 32768.
TOTAL=$(blockdev --getsz /dev/vda)
BAD=$((32768 + 8192)); N=256
printf '0 %d linear /dev/vda 0\n%d %d error\n%d %d linear /dev/vda %d\n' \
  $BAD $BAD $N $((BAD + N)) $((TOTAL - BAD - N)) $((BAD + N)) | dmsetup create flaky
rc=0; volmgr-recover extract /dev/mapper/flaky --to /tmp/flaky.img --key-file $K/rp.txt --quiet 2>/tmp/flaky.err || rc=$?
dmsetup remove flaky
[ $rc -eq 10 ] || fail "extract over an error range gave exit $rc: $(cat /tmp/flaky.err)"
grep -q 'unreadable: data sectors 8192-8447 of 512 bytes (device bytes 20971520-21102591)' /tmp/flaky.err \
  || fail "range not named: $(cat /tmp/flaky.err)"
volmgr open /dev/vda sec --key-file $K/rp.txt --readonly
dd if=/dev/mapper/sec of=/tmp/ref.img bs=1M 2>/dev/null
volmgr close sec
dd if=/dev/zero of=/tmp/ref.img bs=512 seek=8192 count=256 conv=notrunc 2>/dev/null
cmp /tmp/ref.img /tmp/flaky.img || fail "outside the error range the extract differs (or the range is not zeros)"
rm -f /tmp/ref.img /tmp/flaky.img

step 6 "stock cryptsetup LUKS2, data offset 4 MiB, 4096-byte sectors"
printf 'stockpass' > $K/stock
cryptsetup luksFormat --type luks2 --offset 8192 --sector-size 4096 --pbkdf pbkdf2 \
  --pbkdf-force-iterations 1000 -q /dev/vdb --key-file $K/stock
cryptsetup open /dev/vdb st --key-file $K/stock
dd if=/dev/urandom of=/dev/mapper/st bs=1M count=8 2>/dev/null
REF=$(sha256sum /dev/mapper/st | cut -d' ' -f1)
cryptsetup close st
volmgr-recover extract /dev/vdb --to /tmp/st.img --key-file $K/stock --quiet || fail "extract of a stock volume"
[ "$(sha256sum /tmp/st.img | cut -d' ' -f1)" = "$REF" ] || fail "stock volume: extract differs from dm-crypt"
echo "volmgr-recover VM test passed"
