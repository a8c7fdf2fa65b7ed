# Helpers for the `volmgr files` integration scripts (source after lib.sh).
#   files_init STORE            a store with passphrase $WORK/pass
#   files_mount STORE MNT       mount it (daemon; log in $WORK/mount.log)
#   files_umount MNT            unmount and wait for the daemon to leave
# Skips (77) when FUSE cannot be used here.

for tool in fusermount3 python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP [$TEST_NAME]: $tool is not installed"
    exit $SKIP
  fi
done
if [[ ! -c /dev/fuse ]]; then
  echo "SKIP [$TEST_NAME]: no /dev/fuse"
  exit $SKIP
fi

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

# daemon_pid STORE: the pid of the mount serving STORE (holds STORE/.lock).
daemon_pid() {
  fuser "$1/.lock" 2>/dev/null | tr -s ' ' '\n' | grep -E '^[0-9]+$' | head -1
}
