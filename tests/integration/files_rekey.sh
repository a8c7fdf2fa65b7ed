#!/usr/bin/env bash
# `volmgr files rekey` on 10 000 files: every file key is rewrapped under a
# new master key, and not one ciphertext byte or mtime changes (sha256 and
# mtime of every file in STORE/data before and after). Runs on a tmpfs so
# the 10 000 creates through FUSE stay fast.
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
source "$HERE/files_lib.sh"
N=${FILES_REKEY_N:-10000}

T=$WORK/tmpfs
mkdir -p "$T"
mount -t tmpfs -o size=512m tmpfs "$T" 2>/dev/null || T=$WORK
[[ $T == "$WORK" ]] || on_exit "umount -l '$T'"
S=$T/store
M=$WORK/mnt

step "1: $N files through the mount"
files_init "$S"
files_mount "$S" "$M"
python3 - "$M" "$N" <<'PY' || fail "creating files"
import os, sys
m, n = sys.argv[1], int(sys.argv[2])
for d in range(100):
    os.mkdir(f"{m}/d{d}")
for i in range(n):
    with open(f"{m}/d{i % 100}/f{i}", "wb") as f:
        f.write(b"%d\n" % i * 10)
PY
files_umount "$M"
expect_vm 0 files status "$S" --json
[[ $(jq .file_keys "$WORK/.stdout") == "$N" ]] || fail "key count"

step "2: rekey; no ciphertext byte or mtime changes"
(cd "$S/data" && find . -type f -printf '%p %T@\n' | sort) >"$WORK/mtimes.0"
(cd "$S/data" && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
  >"$WORK/sums.0"
start=$(date +%s.%N)
expect_vm 0 files rekey "$S" --key-file "$WORK/pass"
end=$(date +%s.%N)
has "generation 2"
has "$N file keys rewrapped"
(cd "$S/data" && find . -type f -printf '%p %T@\n' | sort) >"$WORK/mtimes.1"
(cd "$S/data" && find . -type f -print0 | sort -z | xargs -0 sha256sum) \
  >"$WORK/sums.1"
cmp -s "$WORK/mtimes.0" "$WORK/mtimes.1" || fail "an mtime changed"
cmp -s "$WORK/sums.0" "$WORK/sums.1" || fail "a ciphertext changed"
echo "[$TEST_NAME] rekey of $N files: $(echo "$end - $start" | bc) s (incl. 2 Argon2id derivations)"

step "3: every file still reads after the rekey"
files_mount "$S" "$M"
python3 - "$M" "$N" <<'PY' || fail "reading after rekey"
import sys
m, n = sys.argv[1], int(sys.argv[2])
for i in range(0, n, 37):
    assert open(f"{m}/d{i % 100}/f{i}", "rb").read() == b"%d\n" % i * 10, i
PY
files_umount "$M"
expect_vm 0 files verify "$S" --key-file "$WORK/pass"
has "$N files verified"
finish
