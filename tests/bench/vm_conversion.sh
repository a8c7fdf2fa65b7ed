# Inside the VM: in-place conversion throughput, volmgr vs. stock cryptsetup reencrypt,
# same boot, same image content, same resilience mode (issue 9).
#   encrypt: datashift (the only mode for a header at the head), both sides
#   decrypt: datashift-checksum, both sides (header exported to a file)
# Both tools are set up with --init-only first (not timed); then only the resume command
# runs, with --progress-json on both sides. Two numbers per tool and direction:
#   data path (*_ratio):  the "speed" of the final --progress-json line, which both tools
#       compute the same way from their progress callbacks: bytes converted after the
#       first hotzone / time from the first callback to the last (cryptsetup's
#       src/utils_progress.c; volmgr copies it). Start-up, unlock, set-up and clean-up
#       are outside it; volmgr's progress callback and state-file writes are inside.
#   whole command (*_cmd_ratio): device MiB / wall time of the whole resume command
#       (start-up, unlock, header loads, conversion, clean-up). volmgr unlocks with a
#       startup-key file (HKDF: as cheap as cryptsetup's PBKDF2-1000 key slot), so this
#       compares the tools, not the KDFs; the Argon2id passphrase unlock is timed apart.
# Rounds alternate which tool goes first. AES-NI is emulated under TCG: only the ratios
# mean anything.
. /vmbed/lib.sh
set -eu

ROUNDS=${BENCH_ROUNDS:-4}
MIB=${BENCH_MIB:-512}
FAST="--argon2-time 1 --argon2-memory 8192"
export VOLMGR_STATE_DIR=/tmp/state
K=/tmp/k
mkdir -p $K /mnt/v
printf 'bench passphrase 1\n' > $K/pass
printf 'bench passphrase 1' > $K/pass.raw

now() { cut -d' ' -f1 /proc/uptime; }
mibs() { awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { printf "%.1f", m / (b - a) }'; }
# the "speed" (bytes/s) of the last --progress-json line in FILE, as MiB/s
json_mibs() {
  sed -n 's/.*"speed":"\([0-9]*\)".*/\1/p' "$1" | tail -n 1 |
    awk '{ v = $1 } END { if (v == "") exit 1; printf "%.1f", v / 1048576 }' ||
    fail "no --progress-json line in $1: $(cat "$1")"
}
# ms per run of CMD, mean of 5 (start-up / unlock costs)
ms5() {
  t0=$(now)
  for _ in 1 2 3 4 5; do "$@" >/dev/null 2>&1 || fail "$* failed"; done
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 / 5 }'
}

# Same content on both disks: ext4 leaving the last 32 MiB free (so volmgr's resize is a
# no-op and cryptsetup needs none) with a random payload, copied byte for byte to vdb.
# Which tool converts which disk swaps every two rounds, which goes first every round.
step 0 "prepare ${MIB} MiB disks"
# vmbed's disk images are sparse files on the host: the first write to a hole costs the
# host an allocation (seen as a round-1 slowdown of whichever tool had the fresh image),
# so every byte of both images is written before anything is timed.
dd if=/dev/zero of=/dev/vda bs=1M count="$MIB" 2>/dev/null
mkfs.ext4 -q -F -b 4096 /dev/vda $(((MIB - 32) * 256))
mount /dev/vda /mnt/v
# a payload of 3/4 of the shrunk ext4 (the rest: journal, inode tables, free)
dd if=/dev/urandom of=/mnt/v/payload bs=1M count=$(((MIB - 32) * 3 / 4)) 2>/dev/null ||
  fail "the payload does not fit"
umount /mnt/v
dd if=/dev/vda of=/dev/vdb bs=1M 2>/dev/null
sync

# Each prints "<whole-command MiB/s> <data-path MiB/s>" and leaves /tmp/out.$tool.
enc_volmgr() {
  rm -f $K/sk.bek
  volmgr encrypt "$1" --init-only --new-key-file $K/pass --startup-key $K/sk.bek $FAST \
    --quiet >/dev/null
  sync
  t0=$(now)
  volmgr conversion resume "$1" --startup-key $K/sk.bek --progress-json > /tmp/out.v
  t1=$(now)
  echo "$(mibs "$t0" "$t1" "$MIB") $(json_mibs /tmp/out.v)"
}
enc_cryptsetup() {
  cryptsetup reencrypt --encrypt --type luks2 --init-only --reduce-device-size 32M \
    --sector-size 4096 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 -q --key-file $K/pass.raw "$1"
  sync
  t0=$(now)
  cryptsetup reencrypt --resume-only -q --progress-json --key-file $K/pass.raw "$1" > /tmp/out.c
  t1=$(now)
  echo "$(mibs "$t0" "$t1" "$MIB") $(json_mibs /tmp/out.c)"
}
dec_volmgr() {
  rm -f /tmp/h.$2
  volmgr decrypt "$1" --init-only --header /tmp/h.$2 --startup-key $K/sk.bek --quiet >/dev/null
  sync
  t0=$(now)
  volmgr conversion resume "$1" --header /tmp/h.$2 --startup-key $K/sk.bek --progress-json \
    > /tmp/out.v
  t1=$(now)
  echo "$(mibs "$t0" "$t1" "$MIB") $(json_mibs /tmp/out.v)"
}
dec_cryptsetup() {
  rm -f /tmp/h.$2
  cryptsetup reencrypt --decrypt --init-only --header /tmp/h.$2 -q --key-file $K/pass.raw "$1"
  sync
  t0=$(now)
  cryptsetup reencrypt --resume-only --header /tmp/h.$2 -q --progress-json \
    --key-file $K/pass.raw "$1" > /tmp/out.c
  t1=$(now)
  echo "$(mibs "$t0" "$t1" "$MIB") $(json_mibs /tmp/out.c)"
}
# Fixed costs on the encrypted volumes (round 1, between encryption and decryption): process
# start-up, and each unlock alone (volmgr: startup key, passphrase = Argon2id 8 MiB/t=1
# + VMK unwrap + key-slot check; cryptsetup: PBKDF2-1000 key slot).
fixed_costs() {
  echo "$(ms5 volmgr --version) $(ms5 cryptsetup --version)" \
    "$(ms5 volmgr open "$VD" t --test --startup-key $K/sk.bek)" \
    "$(ms5 volmgr open "$VD" t --test --key-file $K/pass)" \
    "$(ms5 cryptsetup open --test-passphrase --key-file $K/pass.raw "$CD")" >> /tmp/fixed
}
: > /tmp/r
: > /tmp/fixed
r=1
while [ $r -le "$ROUNDS" ]; do
  if [ $(((r - 1) / 2 % 2)) -eq 0 ]; then VD=/dev/vda CD=/dev/vdb; else VD=/dev/vdb CD=/dev/vda; fi
  step $r "round $r: volmgr on $VD, cryptsetup on $CD"
  if [ $((r % 2)) -eq 1 ]; then
    ev=$(enc_volmgr "$VD"); ec=$(enc_cryptsetup "$CD")
    [ $r -ne 1 ] || fixed_costs
    dv=$(dec_volmgr "$VD" a); dc=$(dec_cryptsetup "$CD" b)
  else
    ec=$(enc_cryptsetup "$CD"); ev=$(enc_volmgr "$VD")
    dc=$(dec_cryptsetup "$CD" b); dv=$(dec_volmgr "$VD" a)
  fi
  echo "round $r (whole command, data path MiB/s): encrypt volmgr=$ev cryptsetup=$ec;" \
    "decrypt volmgr=$dv cryptsetup=$dc"
  echo "$ev $ec $dv $dc" >> /tmp/r
  echo "$ev $ec $dv $dc" | awk -v r=$r -v vd="$VD" '{
    printf "VMBED-DATA round%d_disk_volmgr=%s\n", r, vd
    printf "VMBED-DATA round%d_mib_s=encrypt volmgr %s/%s cryptsetup %s/%s, decrypt volmgr %s/%s cryptsetup %s/%s (whole command/data path)\n", r, $1, $2, $3, $4, $5, $6, $7, $8
    printf "VMBED-DATA round%d_ratios=encrypt %.3f (cmd %.3f), decrypt %.3f (cmd %.3f)\n", r, $2/$4, $1/$3, $6/$8, $5/$7 }'
  # both must have ended as a clean plain ext4
  e2fsck -fn "$VD" >/dev/null 2>&1 || fail "volmgr's result is not a clean ext4"
  e2fsck -fn "$CD" >/dev/null 2>&1 || fail "cryptsetup's result is not a clean ext4"
  r=$((r + 1))
done
# ... with the same payload after all rounds (not byte for byte: volmgr's e2fsck before
# the shrink updates the superblock)
mkdir -p /mnt/a /mnt/b
mount -o ro /dev/vda /mnt/a
mount -o ro /dev/vdb /mnt/b
cmp /mnt/a/payload /mnt/b/payload || fail "the payloads differ after $ROUNDS rounds"
umount /mnt/a
umount /mnt/b
awk -v mib="$MIB" -v n="$ROUNDS" '
  { ecv += $1; edv += $2; ecc += $3; edc += $4; dcv += $5; ddv += $6; dcc += $7; ddc += $8 }
  END {
    printf "VMBED-DATA mib=%d\nVMBED-DATA rounds=%d\n", mib, n
    printf "VMBED-DATA encrypt_volmgr_mib_s=%.1f\nVMBED-DATA encrypt_cryptsetup_mib_s=%.1f\n", edv/n, edc/n
    printf "VMBED-DATA encrypt_ratio=%.3f\n", edv/edc
    printf "VMBED-DATA decrypt_volmgr_mib_s=%.1f\nVMBED-DATA decrypt_cryptsetup_mib_s=%.1f\n", ddv/n, ddc/n
    printf "VMBED-DATA decrypt_ratio=%.3f\n", ddv/ddc
    printf "VMBED-DATA encrypt_cmd_volmgr_mib_s=%.1f\nVMBED-DATA encrypt_cmd_cryptsetup_mib_s=%.1f\n", ecv/n, ecc/n
    printf "VMBED-DATA encrypt_cmd_ratio=%.3f\n", ecv/ecc
    printf "VMBED-DATA decrypt_cmd_volmgr_mib_s=%.1f\nVMBED-DATA decrypt_cmd_cryptsetup_mib_s=%.1f\n", dcv/n, dcc/n
    printf "VMBED-DATA decrypt_cmd_ratio=%.3f\n", dcv/dcc }' /tmp/r
awk '{ sv += $1; sc += $2; uk += $3; up += $4; uc += $5; n++ }
  END {
    printf "VMBED-DATA startup_ms_volmgr=%.0f\nVMBED-DATA startup_ms_cryptsetup=%.0f\n", sv/n, sc/n
    printf "VMBED-DATA unlock_ms_volmgr_startup_key=%.0f\n", uk/n
    printf "VMBED-DATA unlock_ms_volmgr_passphrase=%.0f\n", up/n
    printf "VMBED-DATA unlock_ms_cryptsetup_pbkdf2=%.0f\n", uc/n }' /tmp/fixed
