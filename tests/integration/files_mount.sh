#!/usr/bin/env bash
# `volmgr files mount`: POSIX behaviour through the FUSE mount (a small
# pjdfstest-like list), encrypted names on disk, tampering -> EIO plus a log
# line naming the file, kill -9 of the daemon during writes, and SIGTERM.
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib.sh"
source "$HERE/files_lib.sh"

S=$WORK/store
M=$WORK/mnt
step "1: init and mount"
files_init "$S"
files_mount "$S" "$M"

step "2: create, read back, names and content encrypted on disk"
echo "hello world" >"$M/hello.txt"
[[ $(cat "$M/hello.txt") == "hello world" ]] || fail "read back"
[[ $(stat -c %s "$M/hello.txt") == 12 ]] || fail "size is not plaintext size"
if grep -rqs "hello" "$S/data"; then fail "plaintext name or data on disk"; fi
[[ $(find "$S/data" -type f ! -name .dirid | wc -l) == 1 ]] || fail "one file"

step "3: random access, truncate/extend, holes"
python3 - "$M/r.bin" <<'PY' || fail "random access model mismatch"
import os, random, sys
p = sys.argv[1]
rnd = random.Random(7)
model = bytearray()
fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
for step in range(300):
    op = rnd.random()
    if op < 0.5:
        off = rnd.randrange(0, len(model) + 70000)
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 40000)))
        os.pwrite(fd, data, off)
        if len(model) < off + len(data):
            model.extend(b"\0" * (off + len(data) - len(model)))
        model[off:off + len(data)] = data
    elif op < 0.7:
        size = rnd.randrange(0, len(model) + 50000)
        os.ftruncate(fd, size)
        if size < len(model): del model[size:]
        else: model.extend(b"\0" * (size - len(model)))
    else:
        off = rnd.randrange(0, len(model) + 1)
        n = rnd.randrange(1, 70000)
        got = os.pread(fd, n, off)
        assert got == bytes(model[off:off + n]), ("read", step, off, n)
    assert os.fstat(fd).st_size == len(model), ("size", step)
os.close(fd)
with open(p, "rb") as f:
    assert f.read() == bytes(model)
PY
truncate -s 100000 "$M/hole" && [[ $(stat -c %s "$M/hole") == 100000 ]] ||
  fail "extend"
[[ $(tr -d '\0' <"$M/hole" | wc -c) == 0 ]] || fail "hole is not zeros"

step "4: O_APPEND, mmap reads, unlink while open, fsync"
python3 - "$M" <<'PY' || fail "append/mmap/unlink-while-open"
import mmap, os, sys
m = sys.argv[1]
p = m + "/app.log"
with open(p, "wb") as f: f.write(b"a" * 5)
fd = os.open(p, os.O_WRONLY | os.O_APPEND)
os.lseek(fd, 0, os.SEEK_SET)
os.write(fd, b"BBB")          # must land at the end despite lseek(0)
os.fsync(fd)
os.close(fd)
assert open(p, "rb").read() == b"aaaaaBBB"
data = bytes(range(256)) * 1000
with open(m + "/mm", "wb") as f: f.write(data)
with open(m + "/mm", "rb") as f:
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    assert mm[:] == data and mm[70000:70010] == data[70000:70010]
    mm.close()
fd = os.open(m + "/gone", os.O_CREAT | os.O_RDWR)
os.write(fd, b"still here")
os.unlink(m + "/gone")
assert not os.path.exists(m + "/gone")
os.write(fd, b"!")
assert os.pread(fd, 100, 0) == b"still here!"
os.fsync(fd)
os.close(fd)
PY

step "5: rename, rename over, hard and symbolic links, directories"
echo one >"$M/a" && echo two >"$M/b"
mv "$M/a" "$M/b"
[[ $(cat "$M/b") == one && ! -e "$M/a" ]] || fail "rename over"
mkdir -p "$M/d1/d2" && echo deep >"$M/d1/d2/f"
mv "$M/d1" "$M/d3"
[[ $(cat "$M/d3/d2/f") == deep ]] || fail "directory rename"
ln "$M/b" "$M/b.link"
# (The new name's attributes are fresh; "b"'s may be cached for 1 s.)
[[ $(stat -c %h "$M/b.link") == 2 && $(cat "$M/b.link") == one ]] ||
  fail "link"
[[ $(stat -c %i "$M/b.link") == $(stat -c %i "$M/b") ]] || fail "link inode"
rm "$M/b"
[[ $(cat "$M/b.link") == one ]] || fail "hard link keeps the file"
ln -s "d3/d2/f" "$M/sym"
[[ $(readlink "$M/sym") == d3/d2/f && $(cat "$M/sym") == deep ]] ||
  fail "symlink"
if rmdir "$M/d3" 2>/dev/null; then fail "rmdir of a non-empty directory"; fi
rm "$M/d3/d2/f" && rmdir "$M/d3/d2" "$M/d3" || fail "rmdir"
LONG=$(printf 'L%.0s' $(seq 240))
echo long >"$M/$LONG"
[[ $(cat "$M/$LONG") == long ]] || fail "long name"
ls "$M" | grep -qx "$LONG" || fail "long name not listed"
mv "$M/$LONG" "$M/short" && [[ $(cat "$M/short") == long ]] ||
  fail "rename of a long name"
[[ $(find "$S/data" -name '.N*' | wc -l) == 0 ]] || fail "stale sidecar"

step "6: permissions (default_permissions), chmod, statfs"
echo secret >"$M/private" && chmod 600 "$M/private"
[[ $(stat -c %a "$M/private") == 600 ]] || fail "chmod"
require_tools setpriv
chmod 755 "$M"
if setpriv --reuid 65534 --regid 65534 --clear-groups cat "$M/private" \
  >/dev/null 2>&1; then
  fail "another user read a 0600 file"
fi
df "$M" >/dev/null || fail "statfs"

step "7: shred-on-unlink: deleting a file deletes its key"
keys() { setsid -w "$VOLMGR" files status "$S" --json </dev/null | jq .file_keys; }
keys_before=$(keys)
rm "$M/hello.txt"
# The shredder commits in the background within milliseconds; an fsync of
# the directory waits for it (docs/FORMAT.md, "File key store").
sync "$M"
keys_after=$(keys)
[[ $keys_after == $((keys_before - 1)) ]] ||
  fail "key count $keys_before -> $keys_after"
# Without a sync the key still goes, on its own, promptly.
echo gone >"$M/gone" && sync "$M"
keys_before=$(keys)
rm "$M/gone"
for _ in $(seq 50); do
  [[ $(keys) == $((keys_before - 1)) ]] && break
  sleep 0.1
done
[[ $(keys) == $((keys_before - 1)) ]] || fail "key not shredded within 5 s"
# A hard link keeps the key; renaming over a file shreds the one replaced.
echo linked >"$M/l1" && ln "$M/l1" "$M/l2" && echo over >"$M/over"
sync "$M"
keys_before=$(keys)
rm "$M/l1" && mv "$M/over" "$M/l2" && sync "$M"
[[ $(keys) == $((keys_before - 1)) ]] ||
  fail "link/rename: key count $keys_before -> $(keys)"
[[ $(cat "$M/l2") == over ]] || fail "rename over a linked file"
rm "$M/l2"

step "8: tampering: flipped byte -> EIO for that file only, logged"
head -c 100000 /dev/urandom >"$M/victim"
echo fine >"$M/bystander"
ino=$(stat -c %i "$M/victim")  # use_ino: the ciphertext's inode number
files_umount "$M"
victim=$(find "$S/data" -inum "$ino")
[[ -n $victim && $(wc -l <<<"$victim") == 1 ]] ||
  fail "victim ciphertext not found"
printf '\xff' | dd of="$victim" bs=1 seek=20000 conv=notrunc status=none
files_mount "$S" "$M"
expect 1 cat "$M/victim"
grep -qi "input/output error" "$WORK/.stderr" || fail "not EIO"
grep -q "/victim" "$WORK/mount.log" || fail "no log line naming /victim"
[[ $(cat "$M/bystander") == fine ]] || fail "other file affected"
# The first chunk is intact and still reads.
run dd if="$M/victim" bs=4096 count=1 status=none
[[ $LAST_RC == 0 ]] || fail "intact chunk unreadable"

step "9: verify reports the damage, exit 9"
files_umount "$M"
expect_vm 9 files verify "$S" --key-file "$WORK/pass"
has "DAMAGED"
has "/victim"

step "10: kill -9 during writes; key store consistent; verify --repair"
files_mount "$S" "$M"
rm "$M/victim"
( i=0; while :; do i=$((i + 1)); head -c 3000 /dev/zero >"$M/c$i" || break
  done ) &
writer=$!
sleep 1.5
pid=$(daemon_pid "$S")
[[ -n $pid ]] || fail "daemon pid not found"
kill -9 "$pid"
wait "$writer" 2>/dev/null || true
umount -l "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null || true
vm files verify "$S" --key-file "$WORK/pass" --json
[[ $LAST_RC == 0 || $LAST_RC == 9 ]] || fail "verify failed to run"
damaged=$(jq '.damaged | length' "$WORK/.stdout")
[[ $damaged == 0 ]] || fail "kill -9 damaged $damaged file(s)"
expect_vm 0 files verify "$S" --key-file "$WORK/pass" --repair
expect_vm 0 files verify "$S" --key-file "$WORK/pass"
files_mount "$S" "$M"
[[ $(cat "$M/bystander") == fine ]] || fail "bystander after crash"

step "11: listings carry plaintext attributes (READDIRPLUS), cold cache"
mkdir -p "$M/ls" && head -c 40000 /dev/urandom >"$M/ls/f40000"
printf 'abc' >"$M/ls/f3" && ln -s "a/rather/long/target" "$M/ls/sym"
sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
ls -l "$M/ls" >"$WORK/ls.out"
grep -Eq ' 40000 .* f40000$' "$WORK/ls.out" || fail "ls -l size of f40000"
grep -Eq ' 3 .* f3$' "$WORK/ls.out" || fail "ls -l size of f3"
grep -Eq ' 20 .* sym -> a/rather/long/target$' "$WORK/ls.out" ||
  fail "ls -l of the symlink"

step "12: concurrent readers and writers (multi-threaded loop)"
python3 - "$M" <<'PY' || fail "concurrent access"
import hashlib, os, sys, threading
m = sys.argv[1]
errors = []
def writer(i):
    try:
        data = bytes([i]) * 300000 + os.urandom(777)
        with open(f"{m}/w{i}", "wb") as f:
            for off in range(0, len(data), 65536):
                f.write(data[off:off + 65536])
        with open(f"{m}/w{i}", "rb") as f:
            assert f.read() == data, f"w{i} content"
    except Exception as e:
        errors.append(repr(e))
def appender(i):
    try:
        fd = os.open(f"{m}/shared.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        for n in range(200):
            os.write(fd, (f"{i}:{n:04d}\n").encode())
        os.close(fd)
    except Exception as e:
        errors.append(repr(e))
base = os.urandom(1 << 20)
with open(f"{m}/big", "wb") as f: f.write(base)
want = hashlib.sha256(base).hexdigest()
def reader():
    try:
        for _ in range(5):
            with open(f"{m}/big", "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == want, "big"
            fd = os.open(f"{m}/big", os.O_RDONLY)
            for off in range(0, len(base), 100003):
                assert os.pread(fd, 5000, off) == base[off:off + 5000]
            os.close(fd)
    except Exception as e:
        errors.append(repr(e))
ts = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
ts += [threading.Thread(target=appender, args=(i,)) for i in range(3)]
ts += [threading.Thread(target=reader) for _ in range(3)]
for t in ts: t.start()
for t in ts: t.join()
assert not errors, errors
lines = open(f"{m}/shared.log").read().splitlines()
assert len(lines) == 600 and len(set(lines)) == 600, ("appends", len(lines))
for i in range(3):
    mine = [l for l in lines if l.startswith(f"{i}:")]
    assert mine == [f"{i}:{n:04d}" for n in range(200)], f"order of {i}"
PY

step "13: kill -9 after fsync: fsync'd files intact, their keys durable"
python3 - "$M" <<'PY' || fail "fsync before the crash"
import os, sys
m = sys.argv[1]
for i in range(20):
    fd = os.open(f"{m}/synced{i}", os.O_CREAT | os.O_WRONLY | os.O_TRUNC)
    os.write(fd, bytes([i]) * (5000 + 1000 * i))
    os.fsync(fd)
    os.close(fd)
PY
pid=$(daemon_pid "$S")
[[ -n $pid ]] || fail "daemon pid not found"
kill -9 "$pid"
umount -l "$M" 2>/dev/null || fusermount3 -uz "$M" 2>/dev/null || true
vm files verify "$S" --key-file "$WORK/pass" --json
[[ $LAST_RC == 0 || $LAST_RC == 9 ]] || fail "verify failed to run"
[[ $(jq '.damaged | length' "$WORK/.stdout") == 0 ]] ||
  fail "kill -9 after fsync damaged files"
[[ $(jq '.keyless | length' "$WORK/.stdout") == 0 ]] ||
  fail "a file lost its key"
files_mount "$S" "$M"
for i in $(seq 0 19); do
  want=$(python3 -c "import sys; sys.stdout.buffer.write(bytes([$i]) * (5000 + 1000 * $i))" | sha256sum)
  [[ $(sha256sum <"$M/synced$i") == "$want" ]] || fail "synced$i after crash"
done

step "14: SIGTERM: the daemon ends cleanly, unmounts, keys settled"
echo kept >"$M/kept" && echo doomed >"$M/doomed" && sync "$M"
keys_before=$(keys)
rm "$M/doomed"
pid=$(daemon_pid "$S")
[[ -n $pid ]] || fail "daemon pid not found"
kill -TERM "$pid"
for _ in $(seq 50); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null && fail "daemon still running 5 s after SIGTERM"
# A clean end unmounts (an abort would leave a dead mount behind) and
# leaves the shredder's work committed.
mountpoint -q "$M" && fail "SIGTERM left $M mounted"
[[ $(keys) == $((keys_before - 1)) ]] ||
  fail "SIGTERM: key count $keys_before -> $(keys)"
files_mount "$S" "$M"
[[ $(cat "$M/kept") == kept ]] || fail "file after SIGTERM"
files_umount "$M"

step "15: a container cut to 60 bytes (an empty file's size) -> EIO, logged"
# 60 bytes = header + one empty last chunk: the size of an empty file. Cut
# from a longer file, those bytes are not a valid empty chunk, so the mount
# must refuse it as `files decrypt` does, not show an empty file.
files_mount "$S" "$M"
head -c 50000 /dev/urandom >"$M/cut60"
: >"$M/empty0"
ino=$(stat -c %i "$M/cut60")
files_umount "$M"
cut60=$(find "$S/data" -inum "$ino")
[[ -n $cut60 ]] || fail "cut60 ciphertext not found"
truncate -s 60 "$cut60"
: >"$WORK/mount.log"
files_mount "$S" "$M"
[[ $(stat -c %s "$M/cut60") == 0 ]] || fail "cut60 does not look empty"
expect 1 cat "$M/cut60"
grep -qi "input/output error" "$WORK/.stderr" || fail "cut60: not EIO"
grep -q "/cut60" "$WORK/mount.log" || fail "no log line naming /cut60"
# A real empty file still opens and reads as empty; so does a new one.
expect 0 cat "$M/empty0"
[[ -z $(cat "$M/empty0") ]] || fail "empty0 not empty"
: >"$M/empty1" && expect 0 cat "$M/empty1"
rm "$M/cut60"
files_umount "$M"

step "16: shred: once the shredder commits, the key is in no store file"
# The 61 bytes of a deleted file's wrapped key must be in none of keys.db,
# -wal, -shm: after an fsync of the mount (which waits for the shredder),
# and without one within a moment.
wrapped_key_of() {  # wrapped_key_of PLAIN_PATH: hex of its wrapped key
  local c id
  c=$(find "$S/data" -inum "$(stat -c %i "$1")")
  id=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read()[16:32].hex())' "$c")
  sqlite3 -readonly "$S/keys.db" \
    "SELECT hex(wrapped) FROM file_keys WHERE file_id = x'$id'"
}
files_mount "$S" "$M"
for i in $(seq 1 40); do echo "shred me $i" >"$M/s$i"; done
sync "$M"
w7=$(wrapped_key_of "$M/s7")
w8=$(wrapped_key_of "$M/s8")
[[ ${#w7} == 122 && ${#w8} == 122 ]] || fail "wrapped keys not 61 bytes"
key_store_holding "$w7" "$S" >/dev/null || fail "test setup: key of s7 not in the store"
rm "$M/s7"
sync "$M"
if hit=$(key_store_holding "$w7" "$S"); then fail "s7's key still in: $hit"; fi
rm "$M/s8"
for _ in $(seq 50); do
  key_store_holding "$w8" "$S" >/dev/null || break
  sleep 0.1
done
if hit=$(key_store_holding "$w8" "$S"); then fail "s8's key still in after 5 s: $hit"; fi
[[ $(cat "$M/s9") == "shred me 9" ]] || fail "a kept file after the scrub"
files_umount "$M"
finish
