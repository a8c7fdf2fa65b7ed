# Inside the VM (busybox ash): volmgr volumes through the real kernel dm-crypt.
# Host side passes the volmgr binary as /bin/volmgr and two disks:
#   /dev/vda (256M) for the volmgr volume, /dev/vdb (64M) for a stock one.
. /vmbed/lib.sh
set -eu

K=/tmp/keys
mkdir -p $K /mnt/v
printf 'correct horse battery staple\n' > $K/pass
FAST="--argon2-time 1 --argon2-memory 8192"

write_files() {
  mount /dev/mapper/$1 /mnt/v
  dd if=/dev/urandom of=/mnt/v/big.bin bs=1M count=24 2>/dev/null
  echo "hello from volmgr" > /mnt/v/hello.txt
  mkdir /mnt/v/dir && cp /mnt/v/hello.txt /mnt/v/dir/copy.txt
  (cd /mnt/v && sha256sum big.bin hello.txt dir/copy.txt) > /tmp/hashes
  umount /mnt/v
}

check_files() {
  mount -o ro /dev/mapper/$1 /mnt/v
  (cd /mnt/v && sha256sum -c /tmp/hashes >/dev/null) || { umount /mnt/v; fail "file hashes differ via $2"; }
  umount /mnt/v
}

for ss in 4096 512; do
  step 1.$ss "format /dev/vda with passphrase, recovery password and startup key (sector $ss)"
  rm -f $K/rp $K/*.BEK
  volmgr format /dev/vda --force --sector-size $ss --new-key-file $K/pass \
    --startup-key $K --recovery-password-file $K/rp $FAST >/tmp/format.out \
    || fail "format: $(cat /tmp/format.out)"
  RP=$(sed -n 's/^Recovery password: //p' $K/rp)
  [ ${#RP} -eq 55 ] || fail "recovery password file malformed"
  BEK=$(ls $K/*.BEK)

  step 2.$ss "open with the passphrase, mkfs.ext4, write files"
  volmgr open /dev/vda sec --key-file $K/pass || fail "open by passphrase"
  [ -b /dev/mapper/sec ] || fail "no /dev/mapper/sec"
  cryptsetup status sec > /tmp/st
  grep -q 'cipher:  aes-xts-plain64' /tmp/st || fail "cipher is not aes-xts-plain64: $(cat /tmp/st)"
  grep -q 'keysize: 512 bits' /tmp/st || fail "key is not 512 bits"
  grep -q "sector size:  $ss" /tmp/st || fail "sector size is not $ss: $(cat /tmp/st)"
  mkfs.ext4 -q /dev/mapper/sec
  write_files sec
  volmgr status sec | grep -q 'unlocked as /dev/mapper/sec' || fail "status does not show unlocked"
  volmgr status | grep -q 'unlocked as /dev/mapper/sec' || fail "status without TARGET misses the open volume"
  volmgr status --json | grep -q '"lock_state": "unlocked"' || fail "status --json: $(volmgr status --json)"
  volmgr close sec
  [ ! -e /dev/mapper/sec ] || fail "close left the mapping"
  volmgr status | grep -q 'No volmgr volume is open' || fail "status after close: $(volmgr status)"

  step 3.$ss "reopen with the startup key"
  volmgr open /dev/vda sec --startup-key "$BEK" || fail "open by startup key"
  check_files sec "startup key"
  volmgr close sec

  step 4.$ss "reopen with the recovery password (no dashes) through volmgr"
  echo "$RP" | tr -d - > $K/rp.nodash
  volmgr open /dev/vda sec --key-file $K/rp.nodash --readonly || fail "open by recovery password"
  check_files sec "recovery password"
  volmgr close sec

  step 5.$ss "stock cryptsetup opens it with the recovery password"
  printf '%s' "$RP" | cryptsetup open /dev/vda stock --key-file - || fail "stock cryptsetup refused the recovery password"
  check_files stock "stock cryptsetup"
  cryptsetup close stock
  cryptsetup luksDump /dev/vda > /tmp/dump || fail "luksDump failed"
  grep -q 'volmgr-volume' /tmp/dump || fail "luksDump does not list the volmgr-volume token"
  grep -q 'volmgr-recovery-password' /tmp/dump || fail "luksDump does not list the recovery token"
  grep -q 'Subsystem:.*volmgr' /tmp/dump || fail "subsystem is not volmgr"

  step 6.$ss "a wrong passphrase opens nothing and maps nothing"
  echo "wrong wrong wrong" > $K/bad
  rc=0; volmgr open /dev/vda sec --key-file $K/bad 2>/tmp/err || rc=$?
  [ $rc -eq 6 ] || fail "wrong passphrase gave exit $rc: $(cat /tmp/err)"
  [ ! -e /dev/mapper/sec ] || fail "a mapping appeared after a refused open"
done

step 7 "a volume made by stock cryptsetup is refused clearly"
printf 'stockpass' | cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 \
  --pbkdf-force-iterations 1000 -q /dev/vdb --key-file -
rc=0; volmgr open /dev/vdb x --key-file $K/pass 2>/tmp/err || rc=$?
[ $rc -eq 5 ] || fail "stock volume: exit $rc"
grep -q 'did not create' /tmp/err || fail "stock volume message: $(cat /tmp/err)"

step 8 "close of a busy mapping is refused, data stays"
volmgr open /dev/vda sec --key-file $K/pass
mount /dev/mapper/sec /mnt/v
rc=0; volmgr close sec 2>/tmp/err || rc=$?
[ $rc -eq 11 ] || fail "close of a mounted volume gave exit $rc: $(cat /tmp/err)"
umount /mnt/v
volmgr close sec
step 9 "an image file is opened through a loop device"
truncate -s 64M /tmp/file.img
volmgr format /tmp/file.img --new-key-file $K/pass --no-recovery-password $FAST >/dev/null
volmgr open /tmp/file.img img --key-file $K/pass || fail "open of an image file"
cryptsetup status img | grep -q 'loop:' || fail "no loop device behind the image: $(cryptsetup status img)"
mkfs.ext4 -q /dev/mapper/img
write_files img
check_files img "image file"
volmgr close img

step 10 "format refuses a mounted device and leaves it intact"
mkfs.ext4 -q -F /dev/vdb
mount /dev/vdb /mnt/v
echo keep > /mnt/v/keep.txt
rc=0; volmgr format /dev/vdb --force --new-key-file $K/pass $FAST 2>/tmp/err || rc=$?
[ $rc -eq 11 ] || fail "format of a mounted device gave exit $rc: $(cat /tmp/err)"
grep -q 'in use' /tmp/err || fail "message: $(cat /tmp/err)"
[ "$(cat /mnt/v/keep.txt)" = keep ] || fail "mounted filesystem damaged"
umount /mnt/v
e2fsck -fn /dev/vdb >/dev/null 2>&1 || fail "ext4 on vdb is no longer clean"
echo "volmgr volume VM test passed"
