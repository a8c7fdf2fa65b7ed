# Inside the VM (busybox ash): a volume unlocked with a customer key in a
# PKCS#11 token opens through the real kernel dm-crypt (issue 8).
# Host side passes volmgr, softhsm2-util, pkcs11-tool and libsofthsm2.so
# (with their libraries); the token is made here, in a private
# SOFTHSM2_CONF, and its key by pkcs11-tool as the independent client.
. /vmbed/lib.sh
set -eu

M=/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so
K=/tmp/keys
export SOFTHSM2_CONF=/tmp/softhsm2.conf
mkdir -p $K /tmp/tokens /mnt/v
printf 'directories.tokendir = /tmp/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' >$SOFTHSM2_CONF
printf '123456' >$K/pin
printf '000000' >$K/badpin
printf 'correct horse battery staple\n' >$K/pass
FAST="--argon2-time 1 --argon2-memory 8192"

step 1 "SoftHSM2 token (softhsm2-util) and an AES key (pkcs11-tool)"
softhsm2-util --init-token --free --label ck-a --pin 123456 --so-pin 12345678 >/tmp/init.out 2>&1 ||
  fail "softhsm2-util: $(cat /tmp/init.out)"
pkcs11-tool --module $M --token-label ck-a --login --pin 123456 --keygen --key-type AES:32 \
  --label vmk-kek --usage-decrypt --sensitive >/tmp/keygen.out 2>&1 || fail "pkcs11-tool: $(cat /tmp/keygen.out)"

step 2 "format /dev/vda, enrol the customer key"
volmgr format /dev/vda --force --new-key-file $K/pass --no-recovery-password $FAST >/tmp/fmt.out 2>&1 ||
  fail "format: $(cat /tmp/fmt.out)"
volmgr protector add /dev/vda pkcs11 --uri 'pkcs11:token=ck-a;object=vmk-kek' --module $M \
  --new-token-pin-file $K/pin --key-file $K/pass >/tmp/add.out 2>&1 || fail "protector add: $(cat /tmp/add.out)"
grep -q 'customer key (PKCS#11 AES-GCM' /tmp/add.out || fail "add output: $(cat /tmp/add.out)"

step 3 "open with the customer key through dm-crypt, mkfs, write"
volmgr open /dev/vda ck --token-pin-file $K/pin || fail "open with the customer key"
[ -b /dev/mapper/ck ] || fail "no /dev/mapper/ck"
cryptsetup status ck | grep -q 'cipher:  aes-xts-plain64' || fail "not aes-xts-plain64"
mkfs.ext4 -q /dev/mapper/ck
mount /dev/mapper/ck /mnt/v
dd if=/dev/urandom of=/mnt/v/data.bin bs=1M count=8 2>/dev/null
(cd /mnt/v && sha256sum data.bin) >/tmp/hashes
umount /mnt/v
volmgr close ck

step 4 "reopen with the passphrase: the same data; with the customer key again"
volmgr open /dev/vda pp --key-file $K/pass || fail "open with the passphrase"
mount -o ro /dev/mapper/pp /mnt/v
(cd /mnt/v && sha256sum -c /tmp/hashes >/dev/null) || fail "data differs via the passphrase"
umount /mnt/v
volmgr close pp
volmgr open /dev/vda ck --token-pin-file $K/pin --readonly || fail "second open with the customer key"
mount -o ro /dev/mapper/ck /mnt/v
(cd /mnt/v && sha256sum -c /tmp/hashes >/dev/null) || fail "data differs via the customer key"
umount /mnt/v
volmgr close ck

step 5 "a wrong PIN maps nothing (exit 6)"
rc=0
volmgr open /dev/vda bad --token-pin-file $K/badpin 2>/tmp/bad.err || rc=$?
[ $rc -eq 6 ] || fail "wrong PIN: exit $rc, $(cat /tmp/bad.err)"
grep -q 'wrong PIN' /tmp/bad.err || fail "wrong PIN message: $(cat /tmp/bad.err)"
[ ! -e /dev/mapper/bad ] || fail "a wrong PIN created a mapping"
