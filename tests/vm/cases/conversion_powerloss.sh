# Inside the VM (busybox ash), driven by tests/vm/powerloss.sh across many boots of the
# same disk images: one step of a power-loss test of in-place conversion (issue 9).
#   /dev/vda  the data disk (persistent image)
#   /dev/vdb  a small ext4 "system disk": passphrase, expected hashes, volmgr's state
#             directory and the exported header of a decryption (persistent image)
# PHASE=setup  fresh filesystem with known files, conversion initialised (not run)
# PHASE=run    continue the conversion (the host may SIGKILL qemu at any moment after
#              arm_kill); if it completes in this boot, verify every byte
# MODE=offline|online, DIRECTION=encrypt|decrypt
. /vmbed/lib.sh
set -eu

FAST="--argon2-time 1 --argon2-memory 8192"
S=/state
mkdir -p $S /mnt/v
export VOLMGR_STATE_DIR=$S/volmgr
HDR=
[ "$DIRECTION" = decrypt ] && HDR="--header $S/vda.hdr"

write_files() { # DEV
  mount "$1" /mnt/v
  dd if=/dev/urandom of=/mnt/v/big.bin bs=1M count=24 2>/dev/null
  mkdir -p /mnt/v/dir
  i=0
  while [ $i -lt 40 ]; do
    head -c $((i * 1499 + 7)) /dev/urandom > /mnt/v/dir/f$i
    i=$((i + 1))
  done
  (cd /mnt/v && find . -type f ! -name lost+found | sort | xargs sha256sum) > $S/hashes
  umount /mnt/v
}

verify() { # DEV
  # A kill while mounted leaves a journal to replay: mount once, then check.
  mount "$1" /mnt/v && umount /mnt/v
  e2fsck -fn "$1" >/tmp/fsck.out 2>&1 || fail "fsck of $1 not clean: $(tail -5 /tmp/fsck.out)"
  mount -o ro "$1" /mnt/v
  (cd /mnt/v && sha256sum -c $S/hashes >/tmp/sum.out 2>&1) || { grep -v ': OK' /tmp/sum.out | head; umount /mnt/v; fail "file hashes differ"; }
  umount /mnt/v
  data verified 1
}

if [ "$PHASE" = setup ]; then
  step 1 "setup ($MODE $DIRECTION)"
  mkfs.ext4 -q -F /dev/vdb
  mount /dev/vdb $S
  printf 'correct horse battery staple\n' > $S/pass
  if [ "$DIRECTION" = encrypt ]; then
    mkfs.ext4 -q -F /dev/vda
    write_files /dev/vda
    volmgr encrypt /dev/vda --init-only --new-key-file $S/pass $FAST \
      --recovery-password-file $S/rp >/dev/null || fail "encrypt --init-only"
  else
    volmgr format /dev/vda --force --new-key-file $S/pass $FAST \
      --recovery-password-file $S/rp >/dev/null || fail "format"
    volmgr open /dev/vda sec --key-file $S/pass
    mkfs.ext4 -q -F /dev/mapper/sec
    write_files /dev/mapper/sec
    volmgr close sec
    volmgr decrypt /dev/vda --init-only $HDR --key-file $S/pass >/dev/null || fail "decrypt --init-only"
  fi
  volmgr conversion status /dev/vda $HDR | grep -q 'paused' || fail "not paused after init"
  sync
  umount $S
  exit 0
fi

step 2 "resume ($MODE $DIRECTION) until done or killed"
mount /dev/vdb $S
volmgr conversion status /dev/vda $HDR --json > /tmp/st.json || fail "status"
data state_at_boot "$(sed -n 's/.*"state": "\([a-z]*\)".*/\1/p' /tmp/st.json)"
data percent_at_boot "$(sed -n 's/.*"percent": \([0-9.]*\).*/\1/p' /tmp/st.json)"
if ! grep -q '"in_progress": true' /tmp/st.json; then
  # The previous boot finished the conversion and was killed before it verified.
  echo "conversion already complete"
elif [ "$MODE" = offline ]; then
  arm_kill
  volmgr conversion resume /dev/vda $HDR --key-file $S/pass --quiet || fail "resume"
else
  arm_kill
  if [ "$DIRECTION" = encrypt ]; then
    volmgr open /dev/vda sec --key-file $S/pass || fail "open (resumes in the background)"
  else
    volmgr conversion resume /dev/vda $HDR --map sec --background --key-file $S/pass || fail "resume --map"
    i=0
    while [ ! -b /dev/mapper/sec ] && [ $i -lt 100 ]; do
      # the previous boot had converted every chunk: resume only cleans up
      [ -e $S/vda.hdr ] || break
      sleep 0.1; i=$((i + 1))
    done
  fi
  if [ -b /dev/mapper/sec ]; then
    mount /dev/mapper/sec /mnt/v || fail "mount during conversion"
    i=0
    idle=0
    while volmgr conversion status /dev/vda $HDR --json >/tmp/st.json && grep -q '"in_progress": true' /tmp/st.json; do
      cat /mnt/v/dir/f3 /mnt/v/dir/f30 >/dev/null
      # in progress but no volmgr converting it: the background process failed
      if grep -q '"state": "running"' /tmp/st.json; then idle=0; else idle=$((idle + 1)); fi
      [ $idle -lt 50 ] || fail "online conversion stopped: $(cat /tmp/st.json)"
      i=$((i + 1))
      [ $i -lt 1500 ] || fail "online conversion did not finish"
      sleep 0.2
    done
    umount /mnt/v
  else
    [ "$DIRECTION" = decrypt ] || fail "no mapping after open"
    [ ! -e $S/vda.hdr ] || fail "no mapping and the decryption header is still there"
  fi
  # decryption leaves a linear mapping with deferred removal: gone after the umount
  [ ! -e /dev/mapper/sec ] || dmsetup remove sec || fail "closing the mapping"
fi

step 3 "verify ($MODE $DIRECTION)"
if [ "$DIRECTION" = encrypt ]; then
  volmgr open /dev/vda chk --key-file $S/pass || fail "open after encryption"
  verify /dev/mapper/chk
  volmgr close chk
else
  cryptsetup isLuks /dev/vda && fail "still LUKS after decryption"
  verify /dev/vda
fi
umount $S
