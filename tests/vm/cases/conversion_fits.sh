# Inside the VM (busybox ash): after `volmgr encrypt` the filesystem fits its
# mapping (issue 17 item 1). resize2fs truncated a regular image file when it
# shrank the ext4 on it, so the data segment came out 32 MiB smaller than the
# filesystem and `mount /dev/mapper/X` failed with "bad geometry". Here: an
# ext4 filling a virtio disk (/dev/vda) and one filling an image file (on the
# ext4 of /dev/vdb), both with known files, are encrypted; each then mounts
# through dm-crypt, e2fsck -fn is clean, every file's hash is unchanged, the
# image file kept its size and `volmgr-recover verify` finds the filesystem
# fitting its mapping. Also `encrypt --init-only` + `conversion resume` on an
# image.
. /vmbed/lib.sh
set -eu

K=/tmp/keys
mkdir -p $K /mnt/v /mnt/s
printf 'correct horse battery staple\n' > $K/pass
FAST="--argon2-time 1 --argon2-memory 8192"
export VOLMGR_STATE_DIR=/tmp/state

write_files() { # DEV-OR-IMAGE
  mount "$1" /mnt/v
  dd if=/dev/urandom of=/mnt/v/big.bin bs=1M count=20 2>/dev/null
  mkdir -p /mnt/v/dir
  i=0
  while [ $i -lt 40 ]; do
    head -c $((i * 997 + 13)) /dev/urandom > /mnt/v/dir/f$i
    i=$((i + 1))
  done
  (cd /mnt/v && find . -type f | sort | xargs sha256sum) > /tmp/hashes.$2
  umount /mnt/v
}

check_mapping() { # NAME TAG
  d=/dev/mapper/$1
  e2fsck -fn "$d" >/tmp/fsck.out 2>&1 || fail "e2fsck -fn $d not clean: $(tail -3 /tmp/fsck.out)"
  mount -o ro "$d" /mnt/v 2>/tmp/mount.err || fail "mount $d: $(cat /tmp/mount.err) $(dmesg | tail -3)"
  (cd /mnt/v && sha256sum -c /tmp/hashes.$2 >/dev/null) || { umount /mnt/v; fail "file hashes differ ($2)"; }
  umount /mnt/v
  blocks=$(dumpe2fs -h "$d" 2>/dev/null | sed -n 's/^Block count: *//p')
  bs=$(dumpe2fs -h "$d" 2>/dev/null | sed -n 's/^Block size: *//p')
  map=$(blockdev --getsize64 "$d")
  [ $((blocks * bs)) -le "$map" ] || fail "ext4 of $((blocks * bs)) bytes on a $map-byte mapping ($2)"
  data "fs_bytes_$2" $((blocks * bs))
  data "map_bytes_$2" "$map"
}

step 1 "an ext4 filling /dev/vda, and one filling a 96 MiB image file on /dev/vdb"
mkfs.ext4 -q -F /dev/vda
write_files /dev/vda vda
mkfs.ext4 -q -F /dev/vdb
mount /dev/vdb /mnt/s
truncate -s 96M /mnt/s/fs.img
mkfs.ext4 -q -F /mnt/s/fs.img
write_files /mnt/s/fs.img img
img_size=$(stat -c %s /mnt/s/fs.img)

step 2 "encrypt the virtio disk; it mounts through dm-crypt, fsck clean, hashes equal"
volmgr encrypt /dev/vda --new-key-file $K/pass $FAST >/tmp/enc.out 2>&1 || fail "encrypt /dev/vda: $(cat /tmp/enc.out)"
volmgr open /dev/vda a --key-file $K/pass || fail "open /dev/vda"
check_mapping a vda
volmgr close a
volmgr-recover verify /dev/vda --key-file $K/pass >/tmp/verify.out 2>&1 || fail "verify /dev/vda: $(cat /tmp/verify.out)"

step 3 "encrypt the image file: its size is unchanged, it mounts, fsck clean, hashes equal"
volmgr encrypt /mnt/s/fs.img --new-key-file $K/pass $FAST >/tmp/enc.out 2>&1 || fail "encrypt fs.img: $(cat /tmp/enc.out)"
[ "$(stat -c %s /mnt/s/fs.img)" -eq "$img_size" ] || fail "fs.img is $(stat -c %s /mnt/s/fs.img) bytes, was $img_size"
volmgr open /mnt/s/fs.img b --key-file $K/pass || fail "open fs.img"
check_mapping b img
volmgr close b
volmgr-recover verify /mnt/s/fs.img --key-file $K/pass >/tmp/verify.out 2>&1 || fail "verify fs.img: $(cat /tmp/verify.out)"

step 4 "encrypt --init-only + conversion resume of an image file"
truncate -s 112M /mnt/s/fs2.img
mkfs.ext4 -q -F /mnt/s/fs2.img
write_files /mnt/s/fs2.img img2
size2=$(stat -c %s /mnt/s/fs2.img)
volmgr encrypt /mnt/s/fs2.img --init-only --new-key-file $K/pass $FAST >/tmp/enc.out 2>&1 || fail "encrypt --init-only: $(cat /tmp/enc.out)"
[ "$(stat -c %s /mnt/s/fs2.img)" -eq "$size2" ] || fail "fs2.img shrank to $(stat -c %s /mnt/s/fs2.img)"
volmgr conversion resume /mnt/s/fs2.img --key-file $K/pass >/tmp/res.out 2>&1 || fail "resume: $(cat /tmp/res.out)"
[ "$(stat -c %s /mnt/s/fs2.img)" -eq "$size2" ] || fail "fs2.img shrank to $(stat -c %s /mnt/s/fs2.img)"
volmgr open /mnt/s/fs2.img c --key-file $K/pass || fail "open fs2.img"
check_mapping c img2
volmgr close c
umount /mnt/s
echo "conversion_fits: all steps passed"
