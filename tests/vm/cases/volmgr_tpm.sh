# Inside the VM (busybox ash): the TPM protector on the guest's real TPM stack
# (/dev/tpmrm0 = kernel resource manager over tpm-tis over swtpm, PCRs 0/7
# measured by SeaBIOS) and real dm-crypt. Host side: vmbed --tpm, volmgr as
# /bin/volmgr, /dev/vda (128M) for the volume.
. /vmbed/lib.sh
set -eu

K=/tmp/keys
mkdir -p $K /mnt/v
TCTI=device:/dev/tpmrm0

# No controlling terminal here, so volmgr never prompts; the timeout only
# guards against a hang turning into the whole VM's timeout.
v() { timeout 60 volmgr "$@" </dev/null; }

pcr_hex() {
  tpm2_pcrread "sha256:$1" | sed -n "s/^[[:space:]]*$1[[:space:]]*:[[:space:]]*0x\([0-9A-Fa-f]*\).*/\1/p" |
    tr 'A-F' 'a-f'
}

step 1 "format /dev/vda with a recovery password; add a TPM protector via /dev/tpmrm0"
[ -c /dev/tpmrm0 ] || fail "no /dev/tpmrm0"
v format /dev/vda --force --recovery-password-file $K/rp >/tmp/out || fail "format: $(cat /tmp/out)"
sed -n 's/^Recovery password: //p' $K/rp | tr -d '\n' > $K/rp.txt
v protector add /dev/vda tpm --tcti $TCTI --key-file $K/rp.txt >/tmp/out 2>&1 ||
  fail "protector add tpm: $(cat /tmp/out)"
grep -q 'TPM (PCR 7, sha256)' /tmp/out || fail "add output: $(cat /tmp/out)"
data pcr7_at_seal "$(pcr_hex 7)"

step 2 "open via the TPM with no input; mkfs, write, close"
v open /dev/vda sec --tcti $TCTI 2>/tmp/err || fail "open via TPM: $(cat /tmp/err)"
[ -b /dev/mapper/sec ] || fail "no /dev/mapper/sec"
mkfs.ext4 -q /dev/mapper/sec
mount /dev/mapper/sec /mnt/v
echo "sealed to PCR 7" > /mnt/v/hello.txt
dd if=/dev/urandom of=/mnt/v/data.bin bs=1M count=4 2>/dev/null
(cd /mnt/v && sha256sum hello.txt data.bin) > /tmp/hashes
umount /mnt/v
v close sec

step 3 "default TCTI (VOLMGR_TCTI unset, no --tcti) is /dev/tpmrm0 too"
v open /dev/vda sec --test >/tmp/out 2>&1 || fail "open --test: $(cat /tmp/out)"
grep -q '(TPM)' /tmp/out || fail "not via TPM: $(cat /tmp/out)"

step 4 "extend PCR 7: open is refused naming PCR 7, nothing is mapped"
tpm2_pcrextend "7:sha256=$(printf 'volmgr-vm-update' | sha256sum | cut -d' ' -f1)" ||
  fail "tpm2_pcrextend"
rc=0; v open /dev/vda sec 2>/tmp/err || rc=$?
[ $rc -eq 6 ] || fail "open after PCR change: exit $rc: $(cat /tmp/err)"
grep -q 'TPM refused: PCR 7 changed (sealed' /tmp/err || fail "message: $(cat /tmp/err)"
[ ! -e /dev/mapper/sec ] || fail "a mapping appeared after a refused open"

step 5 "the recovery password opens; the data is intact"
v open /dev/vda sec --key-file $K/rp.txt --readonly 2>/tmp/err || fail "open by recovery: $(cat /tmp/err)"
grep -q 'falling back' /tmp/err || fail "no fallback note: $(cat /tmp/err)"
mount -o ro /dev/mapper/sec /mnt/v
(cd /mnt/v && sha256sum -c /tmp/hashes >/dev/null) || fail "data differs after recovery"
umount /mnt/v
v close sec

step 6 "reseal to the new PCR 7: the TPM opens again with no input"
v reseal /dev/vda --key-file $K/rp.txt 2>/tmp/err || fail "reseal: $(cat /tmp/err)"
grep -q 'resealed TPM protector' /tmp/err || fail "reseal output: $(cat /tmp/err)"
v open /dev/vda sec 2>/tmp/err || fail "open via TPM after reseal: $(cat /tmp/err)"
mount /dev/mapper/sec /mnt/v
(cd /mnt/v && sha256sum -c /tmp/hashes >/dev/null) || fail "data differs after reseal"
umount /mnt/v
v close sec

step 7 "suspend for one unlock, 'update firmware', the unlock reseals"
v suspend /dev/vda --reboot-count 1 >/tmp/out 2>&1 || fail "suspend: $(cat /tmp/out)"
v status /dev/vda | grep -q 'suspended (1 unlock left)' || fail "status: $(v status /dev/vda)"
tpm2_pcrextend "7:sha256=$(printf 'volmgr-vm-update-2' | sha256sum | cut -d' ' -f1)"
v open /dev/vda sec 2>/tmp/err || fail "open with the clear key: $(cat /tmp/err)"
grep -q 'resealed TPM protector' /tmp/err || fail "no reseal at the last unlock: $(cat /tmp/err)"
v close sec
cryptsetup luksDump /dev/vda | grep -q volmgr-clear-key && fail "clear key still there"
v open /dev/vda sec --test >/tmp/out 2>&1 || fail "TPM after auto-reseal: $(cat /tmp/out)"
grep -q '(TPM)' /tmp/out || fail "not via TPM: $(cat /tmp/out)"

step 8 "format --tpm in one step; the TPM maps it; stock cryptsetup reads the same data"
v format /dev/vda --force --tpm --tcti $TCTI --recovery-password-file $K/rp2 >/tmp/out 2>&1 ||
  fail "format --tpm: $(cat /tmp/out)"
grep -q 'TPM (PCR 7, sha256)' /tmp/out || fail "format --tpm output: $(cat /tmp/out)"
sed -n 's/^Recovery password: //p' $K/rp2 | tr -d '\n' > $K/rp2.txt
v open /dev/vda sec 2>/tmp/err || fail "open via TPM after format --tpm: $(cat /tmp/err)"
mkfs.ext4 -q /dev/mapper/sec
mount /dev/mapper/sec /mnt/v
echo "formatted with --tpm" > /mnt/v/one-step.txt
umount /mnt/v
v close sec
cryptsetup open /dev/vda std --key-file $K/rp2.txt || fail "stock cryptsetup with the recovery password"
mount -o ro /dev/mapper/std /mnt/v
[ "$(cat /mnt/v/one-step.txt)" = "formatted with --tpm" ] || fail "stock cryptsetup reads other data"
umount /mnt/v
cryptsetup close std

echo "volmgr TPM VM test passed"
