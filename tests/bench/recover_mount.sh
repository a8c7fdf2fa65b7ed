#!/bin/bash
# Benchmark (issue 7): reading the plaintext of a 512 MiB volume through
# `volmgr-recover mount` (FUSE) vs `volmgr-recover extract` vs `dd` of the
# same image (the I/O limit), same run, interleaved, 3 rounds, on tmpfs.
# Usage: recover_mount.sh PATH_TO_VOLMGR PATH_TO_VOLMGR_RECOVER
# Prints seconds per reader and round; docs/PERFORMANCE.md has the table.
set -euo pipefail
V=$(realpath "$1")
R=$(realpath "$2")
W=$(mktemp -d /dev/shm/volmgr-bench-mount.XXXXXX)
cd "$W"
trap 'fusermount3 -u -z "$W/mnt" 2>/dev/null || true; cd /; rm -rf "$W"' EXIT
export VOLMGR_LOCK_DIR=$W/locks
printf 'correct horse battery staple\n' >pass
truncate -s 528M vol.img
setsid -w "$V" format vol.img --new-key-file pass --no-recovery-password \
  --argon2-time 1 --argon2-memory 8192 </dev/null >/dev/null
dd if=/dev/urandom of=vol.img bs=1M seek=16 count=512 conv=notrunc status=none
mkdir mnt
setsid -w "$R" mount vol.img mnt --key-file pass </dev/null >/dev/null
secs() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}
for round in 1 2 3; do
  echo "round $round dd              $(secs dd if=vol.img of=/dev/null bs=8M skip=2)"
  rm -f out.img
  echo "round $round extract         $(secs setsid -w "$R" extract vol.img --to out.img --key-file pass -q)"
  echo "round $round mount-direct    $(secs dd if=mnt/plain.img of=/dev/null bs=1M iflag=direct)"
  echo "round $round mount-buffered  $(secs dd if=mnt/plain.img of=/dev/null bs=1M)"
done
