# Inside the VM: sequential throughput through the mapping `volmgr open` sets
# up vs. a default `cryptsetup open` of the same disk (/dev/vda), same boot.
# AES-NI is emulated under TCG, so only the ratio means anything.
# Needs /bin/volmgr and GNU dd as /bin/gdd (busybox dd has no O_DIRECT).
. /vmbed/lib.sh
set -eu

MIB=${BENCH_MIB:-192}
ROUNDS=${BENCH_ROUNDS:-3}
K=/tmp/keys
mkdir -p $K
printf 'bench passphrase 1\n' > $K/pass
printf 'bench passphrase 1' > $K/pass.raw

# MB/s of one dd run (GNU dd prints "..., 1.2 s, 180 MB/s" on stderr).
rate() {
  "$@" 2>&1 | sed -n 's/.* s, \([0-9.]*\) \([kMG]\)B\/s$/\1 \2/p' |
    awk '{ v=$1; if ($2=="G") v*=1000; if ($2=="k") v/=1000; print v }'
}

measure() {  # $1 = label, $2 = mapping name
  w=$(rate gdd if=/dev/zero of=/dev/mapper/$2 bs=1M count=$MIB oflag=direct conv=fsync)
  sync; echo 3 > /proc/sys/vm/drop_caches
  r=$(rate gdd if=/dev/mapper/$2 of=/dev/null bs=1M count=$MIB iflag=direct)
  echo "$1 write=$w MB/s read=$r MB/s"
  echo "$1 $w $r" >> /tmp/results
}

: > /tmp/results
i=1
while [ $i -le $ROUNDS ]; do
  step "$i.1" "volmgr format + open (4096-byte sectors, no workqueues)"
  volmgr format /dev/vda --force --no-recovery-password --new-key-file $K/pass \
    --argon2-time 1 --argon2-memory 8192 >/dev/null
  volmgr open /dev/vda vm --key-file $K/pass
  measure volmgr vm
  volmgr close vm

  step "$i.2" "stock cryptsetup luksFormat + open with defaults"
  cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    -q /dev/vda --key-file $K/pass.raw
  cryptsetup open /dev/vda cs --key-file $K/pass.raw
  measure cryptsetup cs
  cryptsetup close cs
  i=$((i + 1))
done

# Medians per configuration, and the ratios volmgr / cryptsetup.
med() { grep "^$1 " /tmp/results | awk -v c="$2" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
vw=$(med volmgr 2); vr=$(med volmgr 3); cw=$(med cryptsetup 2); cr=$(med cryptsetup 3)
data volmgr_write_mbs "$vw"; data volmgr_read_mbs "$vr"
data cryptsetup_write_mbs "$cw"; data cryptsetup_read_mbs "$cr"
data write_ratio "$(awk -v a="$vw" -v b="$cw" 'BEGIN{printf "%.2f", a/b}')"
data read_ratio "$(awk -v a="$vr" -v b="$cr" 'BEGIN{printf "%.2f", a/b}')"
data mib "$MIB"; data rounds "$ROUNDS"
cryptsetup --version | sed 's/^/info: /'
