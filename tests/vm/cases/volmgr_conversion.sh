# Inside the VM (busybox ash): in-place encryption and decryption (issue 9)
# through the real kernel dm-crypt. /dev/vda (256M) holds an ext4 that is
# encrypted and decrypted again; /dev/vdb (256M, so that its background
# encryption is still running when step 7 checks that a second conversion is
# refused) is for the refusals and the online run.
. /vmbed/lib.sh
set -eu

K=/tmp/keys
mkdir -p $K /mnt/v
printf 'correct horse battery staple\n' > $K/pass
FAST="--argon2-time 1 --argon2-memory 8192"
export VOLMGR_STATE_DIR=/tmp/state

write_files() { # DEV [MIB]
  mount "$1" /mnt/v
  dd if=/dev/urandom of=/mnt/v/big.bin bs=1M count=${2:-40} 2>/dev/null
  mkdir -p /mnt/v/dir
  i=0
  while [ $i -lt 50 ]; do
    head -c $((i * 997 + 13)) /dev/urandom > /mnt/v/dir/f$i
    i=$((i + 1))
  done
  (cd /mnt/v && find . -type f | sort | xargs sha256sum) > /tmp/hashes
  umount /mnt/v
}

check_files() { # DEV WHAT
  e2fsck -fn "$1" >/tmp/fsck.out 2>&1 || fail "fsck of $1 ($2) not clean: $(tail -3 /tmp/fsck.out)"
  mount -o ro "$1" /mnt/v
  (cd /mnt/v && sha256sum -c /tmp/hashes >/dev/null) || { umount /mnt/v; fail "file hashes differ ($2)"; }
  umount /mnt/v
}

expect_rc() { # RC MESSAGE-PART CMD...
  want=$1
  part=$2
  shift 2
  rc=0
  "$@" >/tmp/out 2>/tmp/err || rc=$?
  [ $rc -eq "$want" ] || fail "$* gave exit $rc, not $want: $(cat /tmp/err)"
  grep -q "$part" /tmp/err || fail "$*: message lacks '$part': $(cat /tmp/err)"
}

step 1 "ext4 with known files on /dev/vda (filling the whole device)"
mkfs.ext4 -q -F /dev/vda
write_files /dev/vda

step 2 "refusals: mounted, no filesystem, too small, cannot shrink"
mount /dev/vda /mnt/v
expect_rc 11 "mounted at /mnt/v" volmgr encrypt /dev/vda --new-key-file $K/pass $FAST
umount /mnt/v
dd if=/dev/urandom of=/dev/vdb bs=1M count=4 2>/dev/null
expect_rc 5 "no filesystem" volmgr encrypt /dev/vdb --new-key-file $K/pass $FAST
truncate -s 30M /tmp/small.img
mkfs.ext4 -q -F /tmp/small.img
expect_rc 2 "too small" volmgr encrypt /tmp/small.img --new-key-file $K/pass $FAST
mkfs.ext4 -q -F -m 0 /dev/vdb
mount /dev/vdb /mnt/v
dd if=/dev/urandom of=/mnt/v/fill bs=1M 2>/dev/null || true
sync
umount /mnt/v
expect_rc 5 "cannot shrink" volmgr encrypt /dev/vdb --new-key-file $K/pass $FAST
e2fsck -fn /dev/vdb >/dev/null 2>&1 || fail "the refused full ext4 was damaged"
[ ! -e /tmp/state/conversion/*.tmp ] || fail "a temporary header was left behind"

step 3 "offline encryption of /dev/vda, progress advances"
volmgr encrypt /dev/vda --new-key-file $K/pass --recovery-password-file $K/rp \
  $FAST --progress >/tmp/enc.out 2>/tmp/enc.err || fail "encrypt: $(cat /tmp/enc.err)"
grep -q 'Shrank the ext4' /tmp/enc.out || fail "no shrink reported: $(cat /tmp/enc.out)"
grep -o '[0-9.]* %' /tmp/enc.err | sort -un > /tmp/pcts
[ "$(wc -l < /tmp/pcts)" -ge 3 ] || fail "progress did not advance: $(cat /tmp/enc.err)"
grep -q '100.0 %' /tmp/enc.err || fail "progress never reached 100 %"
grep -q 'MiB/s' /tmp/enc.err || fail "no rate in progress"
data encrypt_progress_lines "$(wc -l < /tmp/enc.err)"
cryptsetup isLuks /dev/vda || fail "not LUKS after encrypt"
blkid /dev/vda | grep -q crypto_LUKS || fail "blkid: $(blkid /dev/vda)"
volmgr status /dev/vda --json | grep -q '"conversion": null' || fail "status shows a conversion after the end"

step 4 "the data reads back through dm-crypt; stock cryptsetup opens it too"
volmgr open /dev/vda sec --key-file $K/pass || fail "open"
check_files /dev/mapper/sec "volmgr mapping"
volmgr close sec
RP=$(sed -n 's/^Recovery password: //p' $K/rp)
printf '%s' "$RP" | cryptsetup open /dev/vda stock --key-file - || fail "stock cryptsetup refused the recovery password"
check_files /dev/mapper/stock "stock cryptsetup"
cryptsetup close stock
# The ciphertext is not the plaintext: the ext4 superblock magic (0xEF53 at byte 56 of
# the superblock, 1024 bytes into the filesystem) is gone from the payload start.
magic=$(dd if=/dev/vda bs=1 skip=$((16 * 1048576 + 1024 + 56)) count=2 2>/dev/null | od -An -tx1 | tr -d ' ')
[ "$magic" != 53ef ] || fail "the filesystem is readable in clear on the disk"
magic=$(volmgr open /dev/vda m --key-file $K/pass --readonly && dd if=/dev/mapper/m bs=1 skip=$((1024 + 56)) count=2 2>/dev/null | od -An -tx1 | tr -d ' '; volmgr close m)
[ "$magic" = 53ef ] || fail "no ext4 magic through the mapping ($magic)"

step 5 "online decryption with the volume mounted; JSON status while it runs"
volmgr open /dev/vda sec --key-file $K/pass
mount /dev/mapper/sec /mnt/v
volmgr decrypt /dev/vda --key-file $K/pass --header /tmp/vda.hdr --background >/tmp/dec.out 2>&1 \
  || fail "decrypt: $(cat /tmp/dec.out)"
seen=0
i=0
while [ $i -lt 600 ]; do
  volmgr conversion status /dev/vda --header /tmp/vda.hdr --json > /tmp/cs.json 2>/dev/null || true
  grep -q '"in_progress": false' /tmp/cs.json && break
  if grep -q '"state": "running"' /tmp/cs.json && grep -q '"percent"' /tmp/cs.json; then
    [ $seen -eq 0 ] && cp /tmp/cs.json /tmp/cs.running
    seen=$((seen + 1))
  fi
  # reads through the mounted filesystem while the data moves under it
  cat /mnt/v/dir/f7 >/dev/null
  sleep 0.2
  i=$((i + 1))
done
[ $seen -ge 1 ] || fail "never saw a running conversion in JSON"
cat /tmp/cs.running
grep -q '"direction": "decrypt"' /tmp/cs.running || fail "JSON direction"
grep -q '"resilience": "datashift-checksum"' /tmp/cs.running || fail "JSON resilience"
data decrypt_json_samples $seen
# the background process deletes the exported header right after the last chunk
i=0
while [ -e /tmp/vda.hdr ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ ! -e /tmp/vda.hdr ] || fail "the exported header was not removed at the end"
umount /mnt/v
# After an online decryption libcryptsetup leaves a linear mapping marked for deferred
# removal: it goes away with the last user (the umount above).
[ ! -e /dev/mapper/sec ] || dmsetup remove sec

step 6 "after decryption: a plain ext4 that mounts without volmgr"
blkid /dev/vda | grep -q 'TYPE="ext4"' || fail "blkid: $(blkid /dev/vda)"
! cryptsetup isLuks /dev/vda || fail "still LUKS"
check_files /dev/vda "plain device"

step 7 "encrypt --init-only, then open: the encryption continues online in the background"
mkfs.ext4 -q -F /dev/vdb
write_files /dev/vdb 12
volmgr encrypt /dev/vdb --init-only --new-key-file $K/pass $FAST --recovery-password-file $K/rp2 >/dev/null
volmgr conversion status /dev/vdb | grep -q 'Encryption paused' || fail "status: $(volmgr conversion status /dev/vdb)"
volmgr status /dev/vdb | grep -q 'Conversion: *Encryption paused' || fail "status text: $(volmgr status /dev/vdb)"
volmgr open /dev/vdb sec2 --key-file $K/pass || fail "open during conversion"
mount /dev/mapper/sec2 /mnt/v
expect_rc 11 "running" volmgr conversion resume /dev/vdb --key-file $K/pass
i=0
while volmgr conversion status /dev/vdb --json | grep -q '"in_progress": true'; do
  i=$((i + 1))
  [ $i -lt 600 ] || fail "online encryption did not finish"
  sleep 0.2
done
umount /mnt/v
check_files /dev/mapper/sec2 "online-encrypted mapping"
volmgr close sec2

step 8 "pause and resume"
volmgr decrypt /dev/vdb --key-file $K/pass --header /tmp/vdb.hdr --background >/dev/null
i=0
until volmgr conversion status /dev/vdb --header /tmp/vdb.hdr --json | grep -q '"state": "running"\|"in_progress": false'; do
  i=$((i + 1))
  [ $i -lt 100 ] || fail "the background decryption never ran"
  sleep 0.1
done
rc=0
volmgr conversion pause /dev/vdb --header /tmp/vdb.hdr > /tmp/pause.out 2>&1 || rc=$?
[ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "pause gave $rc: $(cat /tmp/pause.out)"
data pause_rc $rc
volmgr conversion status /dev/vdb --header /tmp/vdb.hdr --json > /tmp/p.json || true
cat /tmp/p.json
if grep -q '"in_progress": true' /tmp/p.json; then
  grep -q '"state": "paused"' /tmp/p.json || fail "not paused: $(cat /tmp/p.json)"
  volmgr conversion resume /dev/vdb --header /tmp/vdb.hdr --key-file $K/pass --progress-json \
    > /tmp/resume.json || fail "resume"
  # cryptsetup's --progress-json lines (none if a single hotzone was left); the last one
  # is the final one: every byte converted
  if [ -s /tmp/resume.json ]; then
    grep -qv '^{"device":"/dev/vdb","device_bytes":"[0-9]*","device_size":"[0-9]*","speed":"[0-9]*","eta_ms":"[0-9]*","time_ms":"[0-9]*"}$' \
      /tmp/resume.json && fail "not only --progress-json lines: $(cat /tmp/resume.json)"
    last=$(tail -n 1 /tmp/resume.json)
    b=$(echo "$last" | sed 's/.*"device_bytes":"\([0-9]*\)".*/\1/')
    z=$(echo "$last" | sed 's/.*"device_size":"\([0-9]*\)".*/\1/')
    [ "$b" = "$z" ] || fail "the last --progress-json line is not the final one: $last"
    data resume_json_lines "$(wc -l < /tmp/resume.json)"
  fi
fi
check_files /dev/vdb "decrypted after pause/resume"
echo "volmgr conversion VM test passed"
