# Inside the VM: in-place conversion throughput, volmgr vs. stock cryptsetup reencrypt,
# same boot, same image content, same resilience mode (issue 9).
#   encrypt: datashift (the only mode for a header at the head), both sides
#   decrypt: datashift-checksum, both sides (header exported to a file)
# Only the data conversion is timed (both set up with --init-only first); rounds alternate
# which tool goes first. AES-NI is emulated under TCG: only the ratio means anything.
. /vmbed/lib.sh
set -eu

ROUNDS=${BENCH_ROUNDS:-2}
MIB=${BENCH_MIB:-160}
FAST="--argon2-time 1 --argon2-memory 8192"
export VOLMGR_STATE_DIR=/tmp/state
K=/tmp/k
mkdir -p $K /mnt/v
printf 'bench passphrase 1\n' > $K/pass
printf 'bench passphrase 1' > $K/pass.raw

now() { cut -d' ' -f1 /proc/uptime; }
mibs() { awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { printf "%.1f", m / (b - a) }'; }

# Same content on both disks: ext4, shrunk by 32 MiB already (so volmgr's resize is a
# no-op and cryptsetup needs none).
prepare() { # DEV
  mkfs.ext4 -q -F -b 4096 "$1" $(((MIB - 32) * 256))
  mount "$1" /mnt/v
  dd if=/tmp/payload of=/mnt/v/payload bs=1M 2>/dev/null || fail "the payload does not fit on $1"
  umount /mnt/v
}
# the payload must fit the shrunk ext4 with its journal and metadata
head -c $(((MIB - 64) << 20)) /dev/urandom > /tmp/payload

enc_volmgr() {
  volmgr encrypt "$1" --init-only --new-key-file $K/pass $FAST --quiet >/dev/null
  t0=$(now)
  volmgr conversion resume "$1" --key-file $K/pass --quiet >/dev/null
  t1=$(now)
  mibs "$t0" "$t1" "$MIB"
}
enc_cryptsetup() {
  cryptsetup reencrypt --encrypt --type luks2 --init-only --reduce-device-size 32M \
    --sector-size 4096 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q --key-file $K/pass.raw "$1"
  t0=$(now)
  cryptsetup reencrypt --resume-only -q --key-file $K/pass.raw "$1"
  t1=$(now)
  mibs "$t0" "$t1" "$MIB"
}
dec_volmgr() {
  rm -f /tmp/h.$2
  volmgr decrypt "$1" --init-only --header /tmp/h.$2 --key-file $K/pass --quiet >/dev/null
  t0=$(now)
  volmgr conversion resume "$1" --header /tmp/h.$2 --key-file $K/pass --quiet >/dev/null
  t1=$(now)
  mibs "$t0" "$t1" "$MIB"
}
dec_cryptsetup() {
  rm -f /tmp/h.$2
  cryptsetup reencrypt --decrypt --init-only --header /tmp/h.$2 -q --key-file $K/pass.raw "$1"
  t0=$(now)
  cryptsetup reencrypt --resume-only --header /tmp/h.$2 -q --key-file $K/pass.raw "$1"
  t1=$(now)
  mibs "$t0" "$t1" "$MIB"
}

: > /tmp/r
r=1
while [ $r -le "$ROUNDS" ]; do
  step $r "round $r"
  prepare /dev/vda
  prepare /dev/vdb
  if [ $((r % 2)) -eq 1 ]; then
    ev=$(enc_volmgr /dev/vda); ec=$(enc_cryptsetup /dev/vdb)
    dv=$(dec_volmgr /dev/vda a); dc=$(dec_cryptsetup /dev/vdb b)
  else
    ec=$(enc_cryptsetup /dev/vdb); ev=$(enc_volmgr /dev/vda)
    dc=$(dec_cryptsetup /dev/vdb b); dv=$(dec_volmgr /dev/vda a)
  fi
  echo "round $r: encrypt volmgr=$ev cryptsetup=$ec MiB/s; decrypt volmgr=$dv cryptsetup=$dc MiB/s"
  echo "$ev $ec $dv $dc" >> /tmp/r
  # both must have ended as the same plain filesystem
  cmp /dev/vda /dev/vdb >/dev/null 2>&1 || echo "note: images differ after the round (UUIDs/timestamps)"
  e2fsck -fn /dev/vda >/dev/null 2>&1 || fail "volmgr's result is not a clean ext4"
  r=$((r + 1))
done
awk '{ ev += $1; ec += $2; dv += $3; dc += $4; n++ }
  END { printf "VMBED-DATA encrypt_volmgr_mib_s=%.1f\nVMBED-DATA encrypt_cryptsetup_mib_s=%.1f\n", ev/n, ec/n
        printf "VMBED-DATA encrypt_ratio=%.3f\n", ev/ec
        printf "VMBED-DATA decrypt_volmgr_mib_s=%.1f\nVMBED-DATA decrypt_cryptsetup_mib_s=%.1f\n", dv/n, dc/n
        printf "VMBED-DATA decrypt_ratio=%.3f\n", dv/dc }' /tmp/r
