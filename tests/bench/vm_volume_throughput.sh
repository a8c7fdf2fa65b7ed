# Inside the VM: sequential throughput through the mapping `volmgr open` sets
# up vs. a default `cryptsetup open` of the same disk (/dev/vda), same boot.
# AES-NI is emulated under TCG, so only ratios mean anything. Configurations
# are interleaved round by round so drift hits all of them alike.
# Needs /bin/volmgr and GNU dd as /bin/gdd (busybox dd has no O_DIRECT).
. /vmbed/lib.sh
set -eu

MIB=${BENCH_MIB:-192}
ROUNDS=${BENCH_ROUNDS:-3}
# volmgr activation variants to compare (label:extra open flags).
VARIANTS=${BENCH_VARIANTS:-"volmgr:"}
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
  for v in $VARIANTS; do
    label=${v%%:*}; flags=$(echo "${v#*:}" | tr , ' ')
    step "$i.$label" "volmgr format + open $flags"
    volmgr format /dev/vda --force --no-recovery-password --new-key-file $K/pass \
      --argon2-time 1 --argon2-memory 8192 >/dev/null
    # shellcheck disable=SC2086
    volmgr open /dev/vda vm --key-file $K/pass $flags
    [ $i -eq 1 ] && dmsetup table vm | sed "s/^/info: $label table: /;s/ [0-9a-f]\{128\} / KEY /;s/:64:logon:[^ ]* / KEY /"
    measure "$label" vm
    volmgr close vm
  done
  step "$i.cryptsetup" "stock cryptsetup luksFormat + open with defaults"
  cryptsetup luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    -q /dev/vda --key-file $K/pass.raw
  cryptsetup open /dev/vda cs --key-file $K/pass.raw
  [ $i -eq 1 ] && dmsetup table cs | sed "s/^/info: cryptsetup table: /;s/ [0-9a-f]\{128\} / KEY /;s/:64:logon:[^ ]* / KEY /"
  measure cryptsetup cs
  cryptsetup close cs
  i=$((i + 1))
done

# Medians per configuration, and the ratios against cryptsetup.
med() { grep "^$1 " /tmp/results | awk -v c="$2" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cw=$(med cryptsetup 2); cr=$(med cryptsetup 3)
data cryptsetup_write_mbs "$cw"; data cryptsetup_read_mbs "$cr"
for v in $VARIANTS; do
  label=${v%%:*}
  vw=$(med "$label" 2); vr=$(med "$label" 3)
  data "${label}_write_mbs" "$vw"; data "${label}_read_mbs" "$vr"
  data "${label}_write_ratio" "$(awk -v a="$vw" -v b="$cw" 'BEGIN{printf "%.2f", a/b}')"
  data "${label}_read_ratio" "$(awk -v a="$vr" -v b="$cr" 'BEGIN{printf "%.2f", a/b}')"
done
data mib "$MIB"; data rounds "$ROUNDS"
