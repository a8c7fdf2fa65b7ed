# Stock cryptsetup on real dm-crypt: LUKS2 aes-xts-plain64 with a 512-bit key.
# Guest script for tests/vm/vmbed; needs one disk (/dev/vda, >= 64 MiB).
. /vmbed/lib.sh
set -eu

DEV=/dev/vda
NAME=vmbedtest
MNT=/mnt/vmbedtest
MIB=32

step 1 "disk $DEV present"
[ -b "$DEV" ] || fail "$DEV is not a block device"

step 2 "create a key file"
head -c 64 /dev/urandom >/tmp/key
[ "$(wc -c </tmp/key)" -eq 64 ] || fail "key file is not 64 bytes"

step 3 "luksFormat LUKS2 aes-xts-plain64 512-bit, fast pbkdf2"
cryptsetup luksFormat --batch-mode --type luks2 --cipher aes-xts-plain64 --key-size 512 \
  --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file /tmp/key "$DEV" ||
  fail "luksFormat failed"

step 4 "luksDump shows LUKS2, the cipher and a 512-bit key"
cryptsetup luksDump "$DEV" >/tmp/dump || fail "luksDump failed"
grep -q '^Version:[[:space:]]*2$' /tmp/dump || fail "not LUKS version 2"
grep -q 'cipher: aes-xts-plain64' /tmp/dump || fail "cipher aes-xts-plain64 not in luksDump"
grep -q 'Cipher key:[[:space:]]*512 bits' /tmp/dump || fail "keyslot key is not 512 bits"
grep -q 'PBKDF:[[:space:]]*pbkdf2' /tmp/dump || fail "keyslot PBKDF is not pbkdf2"

step 5 "open through dm-crypt"
cryptsetup open --key-file /tmp/key "$DEV" "$NAME" || fail "cryptsetup open failed"
[ -b "/dev/mapper/$NAME" ] || fail "/dev/mapper/$NAME missing after open"

step 6 "status and kernel table show aes-xts-plain64 with a 512-bit key"
cryptsetup status "$NAME" >/tmp/status || fail "cryptsetup status failed"
cat /tmp/status
grep -q 'type:[[:space:]]*LUKS2' /tmp/status || fail "status: type is not LUKS2"
grep -q 'cipher:[[:space:]]*aes-xts-plain64' /tmp/status || fail "status: cipher is not aes-xts-plain64"
grep -q 'keysize:[[:space:]]*512 bits' /tmp/status || fail "status: keysize is not 512 bits"
table=$(dmsetup table "$NAME") || fail "dmsetup table failed"
echo "table: $table"
echo "$table" | grep -q ' crypt aes-xts-plain64 ' || fail "kernel table is not crypt aes-xts-plain64"
# The key is passed by kernel keyring reference (:64:logon:...) or as 128 hex digits.
keyfield=$(echo "$table" | cut -d' ' -f5)
case $keyfield in
  :64:*) echo "key: 64-byte keyring reference" ;;
  *) [ "${#keyfield}" -eq 128 ] || fail "kernel key field is neither :64: nor 128 hex digits" ;;
esac

step 7 "write $MIB MiB of random data through /dev/mapper/$NAME"
dd if=/dev/urandom of=/tmp/plain bs=1M count=$MIB 2>/dev/null
want=$(sha256sum </tmp/plain | cut -d' ' -f1)
dd if=/tmp/plain of="/dev/mapper/$NAME" bs=1M conv=fsync 2>/dev/null || fail "write failed"
got=$(dd if="/dev/mapper/$NAME" bs=1M count=$MIB 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "read-back before close differs"

step 8 "the raw disk holds ciphertext, not the plaintext"
offset=$(sed -n 's/^[[:space:]]*offset:[[:space:]]*\([0-9]*\) sectors.*/\1/p' /tmp/status)
[ -n "$offset" ] || fail "no data offset in cryptsetup status"
raw=$(dd if="$DEV" bs=512 skip="$offset" count=$((MIB * 2048)) 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$raw" != "$want" ] || fail "raw device at offset $offset equals the plaintext"
head -c 4096 /tmp/plain >/tmp/plain.head
dd if="$DEV" bs=512 skip="$offset" count=8 2>/dev/null >/tmp/raw.head
cmp -s /tmp/plain.head /tmp/raw.head && fail "first raw block equals the plaintext"

step 9 "close, reopen, read back"
cryptsetup close "$NAME" || fail "close failed"
[ ! -e "/dev/mapper/$NAME" ] || fail "/dev/mapper/$NAME still present after close"
cryptsetup open --key-file /tmp/key "$DEV" "$NAME" || fail "reopen failed"
got=$(dd if="/dev/mapper/$NAME" bs=1M count=$MIB 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "read-back after reopen differs"

step 10 "the data is plain aes-xts-plain64 under the volume key (IV = 512-byte sector from 0)"
cryptsetup luksDump --batch-mode --dump-volume-key --volume-key-file /tmp/vk \
  --key-file /tmp/key "$DEV" >/dev/null || fail "dumping the volume key failed"
cryptsetup open --type plain --readonly --shared --cipher aes-xts-plain64 --key-size 512 \
  --key-file /tmp/vk --offset "$offset" --skip 0 "$DEV" plainview || fail "plain open failed"
got=$(dd if=/dev/mapper/plainview bs=1M count=$MIB 2>/dev/null | sha256sum | cut -d' ' -f1)
cryptsetup close plainview
[ "$got" = "$want" ] || fail "plain dm-crypt view with the volume key differs"

step 11 "ext4 on the encrypted volume: mkfs, mount, write, read, fsck"
mkfs.ext4 -q -F "/dev/mapper/$NAME" || fail "mkfs.ext4 failed"
mkdir -p "$MNT"
mount -t ext4 "/dev/mapper/$NAME" "$MNT" || fail "mount failed"
head -c 1048576 /dev/urandom >/tmp/file
cp /tmp/file "$MNT/file"
echo "hello from vmbed" >"$MNT/hello.txt"
umount "$MNT" || fail "umount failed"
e2fsck -f -n "/dev/mapper/$NAME" >/tmp/fsck 2>&1 || { cat /tmp/fsck; fail "e2fsck found errors"; }
mount -t ext4 -o ro "/dev/mapper/$NAME" "$MNT" || fail "remount failed"
cmp "$MNT/file" /tmp/file || fail "file content differs after remount"
[ "$(cat "$MNT/hello.txt")" = "hello from vmbed" ] || fail "hello.txt differs"
umount "$MNT"

step 12 "close; a wrong key is rejected"
cryptsetup close "$NAME" || fail "final close failed"
head -c 64 /dev/urandom >/tmp/badkey
if cryptsetup open --key-file /tmp/badkey "$DEV" "$NAME" 2>/dev/null; then
  fail "opened with a wrong key"
fi
[ ! -e "/dev/mapper/$NAME" ] || fail "mapping exists after a failed open"

echo "dmcrypt_luks2_roundtrip: all steps passed"
