#!/usr/bin/env bash
# `volmgr files init|status|encrypt|decrypt|shred|verify` without a mount:
# round trips (files and pipes), wrong passphrase, tampered containers
# (flipped byte, truncation at a chunk boundary, a key record moved between
# files), crypto-shred of a file whose ciphertext copies survive.
source "$(dirname "$0")/lib.sh"
require_tools sqlite3 xxd

S=$WORK/store
printf 'files test passphrase\n' >"$WORK/pass"
printf 'wrong passphrase\n' >"$WORK/wrong"
K=(--key-file "$WORK/pass")

step "1: init, refuse a second init, status"
expect_vm 0 files init "$S" "${K[@]}" "${ARGON2[@]}"
expect_vm 4 files init "$S" "${K[@]}" "${ARGON2[@]}"
expect_vm 0 files status "$S" --json
[[ $(jq -r .master_generation "$WORK/.stdout") == 1 ]] || fail "generation"
[[ $(jq -r .chunk_size "$WORK/.stdout") == 16384 ]] || fail "chunk size"
[[ $(jq -r '.protectors[0].kind' "$WORK/.stdout") == passphrase ]] ||
  fail "protector"
[[ $(stat -c %a "$S/keys.db") == 600 ]] || fail "keys.db is not 0600"

step "2: encrypt/decrypt files and pipes"
head -c 100000 /dev/urandom >"$WORK/plain"
expect_vm 0 files encrypt "$S" "$WORK/plain" "$WORK/c1" "${K[@]}"
[[ $(stat -c %s "$WORK/c1") == $((32 + 100000 + 7 * 28)) ]] ||
  fail "container size"
expect_vm 0 files decrypt "$S" "$WORK/c1" "$WORK/p1" "${K[@]}"
cmp -s "$WORK/plain" "$WORK/p1" || fail "file round trip"
expect_vm 4 files encrypt "$S" "$WORK/plain" "$WORK/c1" "${K[@]}"
vm_in "$WORK/plain" files encrypt "$S" - "$WORK/c2" "${K[@]}"
[[ $LAST_RC == 0 ]] || fail "encrypt from stdin"
setsid -w "$VOLMGR" files decrypt "$S" "$WORK/c2" - "${K[@]}" </dev/null |
  cmp -s - "$WORK/plain" || fail "decrypt to stdout"
: >"$WORK/empty"
expect_vm 0 files encrypt "$S" "$WORK/empty" "$WORK/c0" "${K[@]}"
expect_vm 0 files decrypt "$S" "$WORK/c0" "$WORK/p0" "${K[@]}"
[[ -f $WORK/p0 && ! -s $WORK/p0 ]] || fail "empty file"

step "3: wrong passphrase is exit 6"
expect_vm 6 files decrypt "$S" "$WORK/c1" "$WORK/px" --key-file "$WORK/wrong"
[[ ! -e $WORK/px ]] || fail "output left behind"

step "4: a flipped byte is exit 9 and leaves no output"
cp "$WORK/c1" "$WORK/t1"
printf '\x01' | dd of="$WORK/t1" bs=1 seek=50000 conv=notrunc status=none
expect_vm 9 files decrypt "$S" "$WORK/t1" "$WORK/pt" "${K[@]}"
has "chunk 3"
[[ ! -e $WORK/pt ]] || fail "partial output left behind"

step "5: truncation at a chunk boundary is detected"
head -c $((32 + 2 * (16384 + 28))) "$WORK/c1" >"$WORK/t2"
expect_vm 9 files decrypt "$S" "$WORK/t2" "$WORK/pt" "${K[@]}"
has "chunk 1"

step "6: two chunks swapped are detected"
python3 - "$WORK/c1" "$WORK/t3" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
s = 16384 + 28
c0, c1 = b[32:32 + s], b[32 + s:32 + 2 * s]
open(sys.argv[2], "wb").write(b[:32] + c1 + c0 + b[32 + 2 * s:])
PY
expect_vm 9 files decrypt "$S" "$WORK/t3" "$WORK/pt" "${K[@]}"

step "7: a key record moved to another file does not unwrap"
id1=$(xxd -p -s 16 -l 16 "$WORK/c1")
id2=$(xxd -p -s 16 -l 16 "$WORK/c2")
cp "$S/keys.db" "$WORK/keys.bak"
sqlite3 "$S/keys.db" "UPDATE file_keys SET wrapped = (SELECT wrapped FROM
  file_keys WHERE file_id = x'$id1') WHERE file_id = x'$id2';"
expect_vm 9 files decrypt "$S" "$WORK/c2" "$WORK/pt" "${K[@]}"
has "key record"
expect_vm 0 files decrypt "$S" "$WORK/c1" "$WORK/p1b" "${K[@]}"
cp "$WORK/keys.bak" "$S/keys.db"
rm -f "$S/keys.db-wal" "$S/keys.db-shm"

step "8: shred destroys the key; every copy becomes unreadable"
cp "$WORK/c1" "$WORK/c1.copy"
expect_vm 0 files shred "$S" "$WORK/c1"
has "$id1"
expect_vm 3 files decrypt "$S" "$WORK/c1.copy" "$WORK/pt" "${K[@]}"
expect_vm 3 files shred "$S" "$WORK/c1"
expect_vm 0 files shred "$S" "$WORK/c2" --remove
[[ ! -e $WORK/c2 ]] || fail "--remove left the file"

step "9: bad input: not a container, missing store"
expect_vm 9 files decrypt "$S" "$WORK/plain" "$WORK/pt" "${K[@]}"
expect_vm 3 files status "$WORK/nostore"
expect_vm 1 files frobnicate
finish
