# Guest half of tests/vm/demo: narrates what it proves, step by step.
. /vmbed/lib.sh
set -eu
say() { echo "  | $*"; }
DEV=/dev/vda
export TPM2TOOLS_TCTI=device:/dev/tpmrm0

step 1 "a real kernel with device-mapper"
say "kernel $(uname -r) booted under qemu; device-mapper: $(ls /dev/mapper/control)"
say "dm-crypt loaded: $(grep -c '^dm_crypt ' /proc/modules) module(s); disk $DEV: $(($(cat /sys/block/vda/size) / 2048)) MiB"

step 2 "format a LUKS2 volume with stock cryptsetup"
head -c 64 /dev/urandom >/tmp/key
cryptsetup luksFormat --batch-mode --type luks2 --cipher aes-xts-plain64 --key-size 512 \
  --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file /tmp/key "$DEV"
say "$(cryptsetup luksDump "$DEV" | grep -m1 '^Version:' | tr -s '\t ' ' ')," \
  "cipher $(cryptsetup luksDump "$DEV" | sed -n 's/^[[:space:]]*cipher: //p' | head -n 1)," \
  "UUID $(cryptsetup luksUUID "$DEV")"

step 3 "open it through dm-crypt"
cryptsetup open --key-file /tmp/key "$DEV" demo
say "$(cryptsetup status demo | grep -E 'cipher|keysize|key location' | tr -s '\t ' ' ' | sed 's/^ //' | tr '\n' ';')"
say "kernel table: $(dmsetup table demo | cut -d' ' -f3,4) key=<keyring reference>"

step 4 "a filesystem on the encrypted volume"
mkfs.ext4 -q /dev/mapper/demo
mkdir -p /mnt/demo
mount -t ext4 /dev/mapper/demo /mnt/demo
echo "Secret plans: BitLocker-grade encryption for Linux." >/mnt/demo/secret.txt
head -c 4194304 /dev/urandom >/mnt/demo/blob
sum=$(sha256sum </mnt/demo/blob | cut -d' ' -f1)
umount /mnt/demo
cryptsetup close demo
say "wrote secret.txt and a 4 MiB blob (sha256 ${sum%"${sum#????????????}"}...), unmounted, closed"
if grep -q 'Secret plans' "$DEV"; then fail "plaintext visible on the raw disk"; fi
say "raw disk scanned: the text 'Secret plans' does not appear anywhere on $DEV"

step 5 "reopen and read the files back"
cryptsetup open --key-file /tmp/key "$DEV" demo
mount -t ext4 -o ro /dev/mapper/demo /mnt/demo
say "secret.txt says: $(cat /mnt/demo/secret.txt)"
[ "$(sha256sum </mnt/demo/blob | cut -d' ' -f1)" = "$sum" ] || fail "blob differs after reopen"
say "blob sha256 matches after reopen"
umount /mnt/demo
cryptsetup close demo
head -c 64 /dev/urandom >/tmp/wrong
if cryptsetup open --key-file /tmp/wrong "$DEV" demo 2>/dev/null; then fail "wrong key opened the volume"; fi
say "a wrong key is refused"

step 6 "the TPM"
say "TPM 2.0 at /dev/tpmrm0 ($(cat /sys/class/tpm/tpm0/device/description 2>/dev/null || echo tpm-tis))"
p0=$(tpm2_pcrread sha256:0 | sed -n 's/.*0 *: *0x//p')
p7=$(tpm2_pcrread sha256:7 | sed -n 's/.*7 *: *0x//p')
say "PCR 0 (firmware) = ${p0%"${p0#????????????????}"}...  PCR 7 = ${p7%"${p7#????????????????}"}..."
d=$(printf demo | sha256sum | cut -d' ' -f1)
tpm2_pcrextend "16:sha256=$d"
p16=$(tpm2_pcrread sha256:16 | sed -n 's/.*16 *: *0x//p' | tr 'A-F' 'a-f')
want=$(printf '%064d%s' 0 "$d" | xxd -r -p | sha256sum | cut -d' ' -f1)
[ "$p16" = "$want" ] || fail "PCR 16 extend mismatch"
say "extended PCR 16 with sha256('demo'): value = SHA256(0...0 || digest), as the spec says"
say "TPM random: $(tpm2_getrandom --hex 16)"
data pcr0 "$p0"
data proved "luks2-format,dm-crypt-open,ext4,ciphertext-on-disk,reopen,wrong-key-refused,tpm-pcrs"
