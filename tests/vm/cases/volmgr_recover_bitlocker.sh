# Inside the VM (busybox ash): a Windows BitLocker volume opened through
# libcryptsetup BITLK by volmgr-recover, read through the real kernel dm-crypt.
# /dev/vda is cryptsetup 2.6.1's tests image bitlk-aes-xts-128.img
# (GPL-2.0-or-later, made on Windows by the cryptsetup authors; the host's
# vm_bitlk_image test extracts it from the tarball .ci/install caches). Its
# password, recovery password and the SHA-256 of its whole plaintext are
# those of the tarball's images.conf (as cryptsetup's bitlk-compat-test).
. /vmbed/lib.sh
set -eu

K=/tmp/keys
mkdir -p $K
printf 'anaconda' > $K/pw
printf '235818-357951-253979-013365-241120-245575-342914-591910' > $K/rp
printf 'anaconda2' > $K/bad
WANT=674e3a976927fd62f3fc26df2c695cac75b8d364e3b45393717efa971f16db0f

step 1 "bitlk-dump names the volume and proves the recovery password"
volmgr-recover bitlk-dump /dev/vda --key-file $K/rp > /tmp/dump.out || fail "bitlk-dump: $(cat /tmp/dump.out)"
grep -q "8f595209-f5b9-49a0-85d4-cb8f80258c27" /tmp/dump.out || fail "GUID missing: $(cat /tmp/dump.out)"
grep -q "opens the volume" /tmp/dump.out || fail "credential not proved"

step 2 "bitlk-open with the password: the dm-crypt plaintext has the known SHA-256"
volmgr-recover bitlk-open /dev/vda win --key-file $K/pw || fail "bitlk-open (password)"
[ -b /dev/mapper/win ] || fail "no /dev/mapper/win"
[ "$(blockdev --getro /dev/mapper/win)" = 1 ] || fail "the mapping is not read-only"
GOT=$(sha256sum /dev/mapper/win | cut -d' ' -f1)
[ "$GOT" = "$WANT" ] || fail "plaintext SHA-256 $GOT, want $WANT"
HEAD=$(head -c 4194304 /dev/mapper/win | sha256sum | cut -d' ' -f1)
data bitlk_password_sha256_ok 1
volmgr-recover bitlk-close win || fail "bitlk-close"
[ ! -e /dev/mapper/win ] || fail "mapping left after bitlk-close"

step 3 "bitlk-open with the recovery password: the same plaintext (first 4 MiB)"
volmgr-recover bitlk-open /dev/vda win --key-file $K/rp || fail "bitlk-open (recovery password)"
[ "$(head -c 4194304 /dev/mapper/win | sha256sum | cut -d' ' -f1)" = "$HEAD" ] ||
  fail "recovery password mapping differs"
volmgr-recover bitlk-close win

step 4 "wrong password refused (exit 6), nothing mapped; close of nothing: exit 3"
set +e
volmgr-recover bitlk-open /dev/vda win --key-file $K/bad 2>/tmp/bad.err
RC=$?
volmgr-recover bitlk-close win 2>/dev/null
RC2=$?
set -e
[ $RC -eq 6 ] || fail "wrong password: exit $RC ($(cat /tmp/bad.err))"
[ ! -e /dev/mapper/win ] || fail "mapped with a wrong password"
[ $RC2 -eq 3 ] || fail "bitlk-close of nothing: exit $RC2"

echo "bitlocker: all steps passed"
