#!/usr/bin/env bash
# `volmgr files` against a careless admin and a hostile store: a shred that
# leaves the wrapped key nowhere in keys.db, -wal or -shm; read-only verbs
# that never write keys.db (sha256 before = after), also on a zero-length
# keys.db and on a read-only file system; a protector record with fields of
# the wrong type is a clear error naming the field, never an abort (134).
source "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || fail "sqlite3 is not installed (.ci/install)"

S=$WORK/store
printf 'files test passphrase\n' >"$WORK/pass"
K=(--key-file "$WORK/pass")

# file_id CONTAINER: the file ID in its header, as hex.
file_id() {
  python3 -c 'import sys; print(open(sys.argv[1], "rb").read()[16:32].hex())' "$1"
}

# Hashes of every file of the store but data/ (names and sha256).
store_state() {
  (cd "$1" && find . -path ./data -prune -o -type f -print0 | sort -z |
    xargs -0 -r sha256sum)
}

# same_store BEFORE STORE: every file of BEFORE (a store_state) is still
# there, byte for byte; the only new files allowed are what any SQLite WAL
# reader creates beside a database: the index keys.db-shm and an empty
# keys.db-wal (docs/FORMAT.md, "File key store").
same_store() {
  local now extra
  now=$(store_state "$2")
  extra=$(comm -13 <(echo "$1") <(echo "$now"))
  comm -23 <(echo "$1") <(echo "$now") | grep -q . &&
    fail "a read-only verb changed or removed: $(comm -23 <(echo "$1") <(echo "$now"))"
  while read -r _ f; do
    [[ -z $f ]] && continue
    case $f in
      ./keys.db-shm) ;;
      ./keys.db-wal) [[ ! -s $2/keys.db-wal ]] || fail "keys.db-wal written" ;;
      *) fail "a read-only verb created $f" ;;
    esac
  done <<<"$extra"
  return 0
}

step "1: shred: the wrapped key is in none of keys.db, -wal, -shm"
expect_vm 0 files init "$S" "${K[@]}" "${ARGON2[@]}"
# Enough keys for the table to span several B-tree pages.
for i in $(seq 1 120); do
  head -c $((i * 10)) /dev/urandom >"$WORK/p$i"
  expect_vm 0 files encrypt "$S" "$WORK/p$i" "$WORK/c$i" "${K[@]}"
done
# Another process keeps keys.db open (as a mount or a second admin's
# command does): the shred's connection is then not the last one, so
# closing it does not checkpoint and delete the WAL; the shred itself must
# get the key's bytes out of both files.
python3 - "$S/keys.db" <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
c.execute("SELECT count(*) FROM file_keys").fetchall()
time.sleep(600)
PY
holder=$!
on_exit "kill $holder"
for i in 7 60 120; do
  id=$(file_id "$WORK/c$i")
  w=$(sqlite3 "$S/keys.db" \
    "SELECT hex(wrapped) FROM file_keys WHERE file_id = x'$id'")
  [[ ${#w} == 122 ]] || fail "wrapped key of c$i is not 61 bytes: $w"
  key_store_holding "$w" "$S" >/dev/null || fail "test setup: key of c$i not found"
  expect_vm 0 files shred "$S" "$WORK/c$i"
  if hit=$(key_store_holding "$w" "$S"); then
    fail "shredded key of c$i still in: $hit"
  fi
  expect_vm 3 files decrypt "$S" "$WORK/c$i" "$WORK/out$i" "${K[@]}"
done
kill "$holder" && wait "$holder" 2>/dev/null || true
expect_vm 0 files decrypt "$S" "$WORK/c8" "$WORK/out8" "${K[@]}"
cmp -s "$WORK/p8" "$WORK/out8" || fail "a kept file no longer decrypts"
expect_vm 0 files status "$S" --json
[[ $(jq .file_keys "$WORK/.stdout") == 117 ]] || fail "key count after shred"

step "2: read-only verbs leave the store byte for byte as it was"
before=$(store_state "$S")
expect_vm 0 files status "$S"
expect_vm 0 files status "$S" --json
expect_vm 0 files decrypt "$S" "$WORK/c9" "$WORK/out9" "${K[@]}"
expect_vm 0 files verify "$S" "${K[@]}"
expect_vm 0 files verify "$S" "${K[@]}" --json
expect_vm 3 files decrypt "$S" "$WORK/c7" "$WORK/out7" "${K[@]}"
expect_vm 6 files decrypt "$S" "$WORK/c9" "$WORK/outx" \
  --key-file <(echo wrong passphrase)
same_store "$before" "$S"

step "3: a zero-length keys.db stays zero-length (and its -wal stays)"
cp -a "$S" "$WORK/z"
Z=$WORK/z
: >"$Z/keys.db"
printf 'evidence' >"$Z/keys.db-wal"
before=$(store_state "$Z")
expect_vm 9 files status "$Z"
has "keys.db"
expect_vm 9 files status "$Z" --json
expect_vm 9 files decrypt "$Z" "$WORK/c9" "$WORK/outz" "${K[@]}"
expect_vm 9 files verify "$Z" "${K[@]}"
[[ ! -e $WORK/outz ]] || fail "output left behind"
after=$(store_state "$Z")
[[ $before == "$after" ]] ||
  fail "a read-only verb changed the store: $(diff <(echo "$before") <(echo "$after"))"
[[ ! -s $Z/keys.db ]] || fail "keys.db is no longer empty"
# Not a key store at all: the same, and the file is not touched.
printf 'not a database, just text\n' >"$Z/keys.db"
before=$(store_state "$Z")
expect_vm 9 files status "$Z"
after=$(store_state "$Z")
[[ $before == "$after" ]] || fail "status changed a non-database keys.db"

step "4: read-only verbs work on a store on a read-only file system"
# (immutable open: no WAL index can be created there). Needs a bind mount,
# so root; elsewhere the step says so and is not counted as run.
cp -a "$S" "$WORK/clean"
mkdir -p "$WORK/ro"
if mount --bind "$S" "$WORK/ro" 2>/dev/null &&
  mount -o remount,bind,ro "$WORK/ro" 2>/dev/null; then
  on_exit "umount '$WORK/ro'"
  expect_vm 0 files status "$WORK/ro" --json
  [[ $(jq .file_keys "$WORK/.stdout") == 117 ]] || fail "key count read-only"
  expect_vm 0 files decrypt "$WORK/ro" "$WORK/c9" "$WORK/out9ro" "${K[@]}"
  cmp -s "$WORK/p9" "$WORK/out9ro" || fail "decrypt from a read-only store"
  expect_vm 0 files verify "$WORK/ro" "${K[@]}"
  umount "$WORK/ro"
else
  umount "$WORK/ro" 2>/dev/null || true
  echo "[$TEST_NAME] step 4: no bind mount here (not root); not checked"
fi

step "5: protector record fields of the wrong type: clear error, no abort"
# Each mutation of the store's (only) protector record: decrypt and rekey
# refuse it with exit 9 and an error naming the field; status shows the
# store and skips the record with a warning naming the field, or lists it
# with unreadable parameters (exit 0). Never an abort (134) or an uncaught
# exception (70).
mutate() {  # mutate FIELD JQ_PATH JSON_VALUE
  rm -rf "$S" && cp -a "$WORK/clean" "$S"
  local rec verb
  rec=$(sqlite3 "$S/keys.db" "SELECT record FROM protectors")
  rec=$(jq -c "$2 = $3" <<<"$rec")
  sqlite3 "$S/keys.db" "UPDATE protectors SET record = '$rec'"
  for verb in status decrypt rekey; do
    case $verb in
      status) vm files status "$S" ;;
      decrypt) vm files decrypt "$S" "$WORK/c9" "$WORK/outm" "${K[@]}" ;;
      rekey) vm files rekey "$S" "${K[@]}" ;;
    esac
    [[ $LAST_RC != 134 && $LAST_RC != 70 ]] ||
      fail "$verb with $2 = $3: exit $LAST_RC (abort/uncaught)"
    if [[ $verb == status && $LAST_RC == 0 ]]; then
      # Shown, but as damaged: skipped with a warning naming the field, or
      # listed with unreadable parameters.
      grep -qiE -- "$1|unreadable" "$WORK/.stdout" "$WORK/.stderr" ||
        fail "status with $2 = $3 does not say what is damaged"
    else
      [[ $LAST_RC == 9 ]] || fail "$verb with $2 = $3: exit $LAST_RC, want 9"
      has "$1"
    fi
    [[ ! -e $WORK/outm ]] || fail "$verb with $2 = $3 left output"
  done
}
mutate kdf .params.kdf 5
mutate kdf .params.kdf '[1]'
mutate created .created 5
mutate params .params '"text"'
mutate time_cost .params.time_cost '"3"'
mutate memory_kib .params.memory_kib '{}'
mutate parallelism .params.parallelism -1
mutate salt .params.salt 7
mutate wrapped_vmk .wrapped_vmk 1
mutate version .version '"1"'
finish
