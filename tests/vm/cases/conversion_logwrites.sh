# Inside the VM (busybox ash): records every write of one in-place
# conversion with the kernel's dm-log-writes target (issue 17 item 3).
# /dev/vda holds the device as the host prepared it, /dev/vdb receives the
# log; tests/vm/logwrites.sh replays the log on the host afterwards.
# MODE: volmgr-encrypt | cryptsetup-encrypt | volmgr-decrypt (DATA_MIB).
. /vmbed/lib.sh
set -eu

K=/tmp/keys
mkdir -p $K
printf 'logwrites-pass' > $K/pass
export VOLMGR_STATE_DIR=/tmp/state

step 1 "log-writes over /dev/vda, log on /dev/vdb"
sectors=$(blockdev --getsz /dev/vda)
dmsetup create lw --table "0 $sectors log-writes /dev/vda /dev/vdb" || fail "dmsetup create log-writes"
dmsetup message lw 0 mark start

step 2 "$MODE through /dev/mapper/lw"
t0=$(date +%s)
case $MODE in
  volmgr-encrypt)
    volmgr encrypt /dev/mapper/lw --new-key-file $K/pass --argon2-time 1 --argon2-memory 8192 \
      >/tmp/conv.out 2>&1 || fail "volmgr encrypt: $(cat /tmp/conv.out)"
    ;;
  cryptsetup-encrypt)
    cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size 32M --sector-size 4096 \
      --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q --key-file $K/pass /dev/mapper/lw \
      >/tmp/conv.out 2>&1 || fail "cryptsetup reencrypt: $(cat /tmp/conv.out)"
    ;;
  volmgr-decrypt)
    # /dev/vda: the volume (DATA_MIB) followed by an ext4 that holds
    # VOLMGR_STATE_DIR (the detached header lives there while decryption
    # runs); both through the one log-writes device, so the log keeps the
    # order of their writes.
    ds=$((DATA_MIB * 2048))
    dmsetup create data --table "0 $ds linear /dev/mapper/lw 0" || fail "dmsetup data"
    dmsetup create state --table "0 $((sectors - ds)) linear /dev/mapper/lw $ds" || fail "dmsetup state"
    mkdir -p /mnt/state
    mount /dev/mapper/state /mnt/state || fail "mount state"
    VOLMGR_STATE_DIR=/mnt/state volmgr decrypt /dev/mapper/data --key-file $K/pass \
      >/tmp/conv.out 2>&1 || fail "volmgr decrypt: $(cat /tmp/conv.out)"
    umount /mnt/state
    dmsetup remove state
    dmsetup remove data
    ;;
  *) fail "unknown MODE $MODE" ;;
esac
data convert_seconds $(($(date +%s) - t0))
dmsetup message lw 0 mark done
dmsetup status lw
dmsetup remove lw || fail "dmsetup remove"
sync
echo "logwrites: recorded $MODE"
