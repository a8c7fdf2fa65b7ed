#!/usr/bin/env bash
# volmgr files mount vs. gocryptfs vs. plain tmpfs, in one run on one tmpfs
# (docs/PERFORMANCE.md, "File encryption"). Usage: run.sh VOLMGR [DATAFILE]
#   write  dd bs=128K count=2000 conv=fsync (250 MiB)
#   read   the same file back after dropping caches (else a remount)
#   untar  /usr/include packed (tar file on the same tmpfs)
#   ls     ls -lR of the unpacked tree after dropping caches
#   rm     rm -rf of the tree
# Each result is the median of ROUNDS (default 3) wall-clock times; the
# ratio is gocryptfs time / volmgr time (> 1: volmgr is faster).
# gocryptfs runs twice per round: as it mounts by default (the peer of the
# goal), and with `-ko default_permissions`, the kernel permission checks
# volmgr's mount always asks for (they cost one GETATTR of the parent after
# every create or unlink); the second ratio compares like with like.
set -euo pipefail
VOLMGR=$(realpath "$1")
DATA=${2:-/dev/stdout}
ROUNDS=${ROUNDS:-3}
for t in gocryptfs fusermount3 tar dd; do
  command -v "$t" >/dev/null || { echo "bench: $t missing" >&2; exit 77; }
done
[[ $(id -u) == 0 ]] || { echo "bench: needs root (tmpfs, drop_caches)" >&2; exit 77; }

W=$(mktemp -d /tmp/volmgr-files-bench.XXXXXX)
mount -t tmpfs -o size=3g tmpfs "$W"
cleanup() {
  for m in "$W"/mnt-*; do umount -l "$m" 2>/dev/null || true; done
  umount -l "$W" 2>/dev/null || true
  rmdir "$W" 2>/dev/null || true
}
trap cleanup EXIT
printf 'bench passphrase\n' >"$W/pass"
tar -C /usr -cf "$W/include.tar" include

drop() {
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || return 1
}

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

setup() {  # setup VARIANT -> mountpoint in $MNT
  local v=$1
  MNT=$W/mnt-$v
  mkdir -p "$MNT"
  case $v in
    plain) ;;
    gocryptfs | gocryptfs-dp)
      local ko=()
      [[ $v == gocryptfs-dp ]] && ko=(-ko default_permissions)
      rm -rf "$W/gc" && mkdir "$W/gc"
      gocryptfs -init -q -passfile "$W/pass" -scryptn 10 "$W/gc" >/dev/null
      gocryptfs -q "${ko[@]}" -passfile "$W/pass" "$W/gc" "$MNT" ;;
    volmgr)
      rm -rf "$W/vs"
      "$VOLMGR" files init "$W/vs" --key-file "$W/pass" --argon2-time 1 \
        --argon2-memory 8192 >/dev/null
      "$VOLMGR" files mount "$W/vs" "$MNT" --key-file "$W/pass" \
        --log "$W/volmgr.log" ;;
  esac
}

teardown() {
  case $1 in
    plain) rm -rf "${MNT:?}"/* ;;
    gocryptfs | gocryptfs-dp) fusermount3 -u "$MNT"; rm -rf "$W/gc" ;;
    volmgr) "$VOLMGR" files umount "$MNT"; sleep 0.2; rm -rf "$W/vs" ;;
  esac
}

declare -A T
one_round() {  # one_round VARIANT ROUND
  local v=$1 r=$2 t0
  setup "$v"
  t0=$(now)
  dd if=/dev/zero of="$MNT/big" bs=128K count=2000 conv=fsync status=none
  T[$v.write.$r]=$(elapsed "$t0")
  drop || { teardown "$v"; setup "$v"; }
  t0=$(now)
  dd if="$MNT/big" of=/dev/null bs=128K status=none
  T[$v.read.$r]=$(elapsed "$t0")
  rm -f "$MNT/big"
  t0=$(now)
  tar -C "$MNT" -xf "$W/include.tar"
  T[$v.untar.$r]=$(elapsed "$t0")
  drop || true
  t0=$(now)
  ls -lR "$MNT/include" >/dev/null
  T[$v.ls.$r]=$(elapsed "$t0")
  t0=$(now)
  rm -rf "$MNT/include"
  T[$v.rm.$r]=$(elapsed "$t0")
  teardown "$v"
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for r in $(seq "$ROUNDS"); do
  for v in plain gocryptfs gocryptfs-dp volmgr; do one_round "$v" "$r"; done
done

{
  echo "# volmgr files vs gocryptfs $(gocryptfs -version 2>/dev/null | head -1 | cut -d';' -f1), same tmpfs, median of $ROUNDS, $(date -u +%FT%TZ)"
  printf '%-6s %10s %10s %10s %10s %14s %14s %14s\n' test plain_s \
    gocryptfs_s gc_dp_s volmgr_s volmgr_vs_gocryptfs vs_gc_dp volmgr_vs_plain
  for t in write read untar ls rm; do
    p=$(median $(for r in $(seq "$ROUNDS"); do echo "${T[plain.$t.$r]}"; done))
    g=$(median $(for r in $(seq "$ROUNDS"); do echo "${T[gocryptfs.$t.$r]}"; done))
    d=$(median $(for r in $(seq "$ROUNDS"); do echo "${T[gocryptfs-dp.$t.$r]}"; done))
    m=$(median $(for r in $(seq "$ROUNDS"); do echo "${T[volmgr.$t.$r]}"; done))
    printf '%-6s %10.3f %10.3f %10.3f %10.3f %13.2fx %13.2fx %13.2fx\n' "$t" \
      "$p" "$g" "$d" "$m" "$(echo "$g / $m" | bc -l)" \
      "$(echo "$d / $m" | bc -l)" "$(echo "$p / $m" | bc -l)"
  done
  echo "# write/read: 250 MiB (128 KiB x 2000, conv=fsync); untar/ls/rm: /usr/include ($(find /usr/include | wc -l) entries)"
  echo "# rounds (plain/gocryptfs/gocryptfs-dp/volmgr seconds per round):"
  for t in write read untar ls rm; do
    for r in $(seq "$ROUNDS"); do
      printf '#   %-6s round %d: %s / %s / %s / %s\n' "$t" "$r" \
        "${T[plain.$t.$r]}" "${T[gocryptfs.$t.$r]}" \
        "${T[gocryptfs-dp.$t.$r]}" "${T[volmgr.$t.$r]}"
    done
  done
  echo "# host load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$DATA"
