# Helpers for the `volmgr files` integration scripts (source after lib.sh).
#   files_init STORE            a store with passphrase $WORK/pass
#   files_mount STORE MNT       mount it (daemon; log in $WORK/mount.log)
#   files_umount MNT            unmount and wait for the daemon to leave
# Skips (77) when FUSE cannot be used here (no /dev/fuse: .ci/install cannot
# provide it); fails when a tool is missing.

require_tools fusermount3 python3 fuser mountpoint
[[ -c /dev/fuse ]] || skip "no /dev/fuse"

printf 'files test passphrase\n' >"$WORK/pass"

files_init() {
  expect_vm 0 files init "$1" --key-file "$WORK/pass" "${ARGON2[@]}"
}

files_mount() {
  mkdir -p "$2"
  expect_vm 0 files mount "$1" "$2" --key-file "$WORK/pass" \
    --log "$WORK/mount.log"
  on_exit "umount -l '$2'"
  mountpoint -q "$2" || fail "$2 is not a mountpoint after mount"
}

files_umount() {
  expect_vm 0 files umount "$1"
  local i
  for i in $(seq 50); do
    mountpoint -q "$1" || return 0
    sleep 0.1
  done
  fail "$1 still mounted"
}

# daemon_pid STORE: the pid of the mount serving STORE (holds STORE/.lock);
# fails, saying why, when none does or fuser cannot tell.
daemon_pid() {
  require_tools fuser
  local out rc=0 pid
  # fuser prints the pids on stdout, the file name and access letters on
  # stderr; exit 1 means no process uses the file.
  out=$(fuser "$1/.lock" 2>"$WORK/.fuser.err") || rc=$?
  ((rc <= 1)) || fail "daemon_pid: fuser $1/.lock exited $rc: $(cat "$WORK/.fuser.err")"
  pid=$(tr -s ' \t' '\n\n' <<<"$out" | grep -E '^[0-9]+$' | head -1 || true)
  [[ -n $pid ]] || fail "daemon_pid: no process holds $1/.lock (is the mount running?)"
  echo "$pid"
}
