# Shared by the recover_*.sh scripts: lib.sh plus the volmgr-recover binary.
# Usage of a script: recover_x.sh PATH_TO_VOLMGR PATH_TO_VOLMGR_RECOVER
# lib.sh changes into a work directory: resolve the second binary first.
RECOVER=$(realpath "${2:-/nonexistent}" 2>/dev/null || true)
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$(realpath "$0")")/lib.sh"
if [[ -z $RECOVER || ! -x $RECOVER ]]; then
  echo "usage: $0 PATH_TO_VOLMGR PATH_TO_VOLMGR_RECOVER" >&2
  exit 2
fi


# kill_after_checkpoint OUT ARGS...: run `volmgr-recover extract ARGS...
# --to OUT` and SIGKILL it as soon as its state file records progress, so
# the kill lands mid-extract however fast the machine is. Sets KILL_RC.
kill_after_checkpoint() {
  local out=$1 pid done_bytes i
  shift
  "$RECOVER" extract "$@" --to "$out" -q --threads 1 --chunk-mib 1 \
    --checkpoint-interval 0 </dev/null >/dev/null 2>&1 &
  pid=$!
  for ((i = 0; i < 4000; i++)); do
    done_bytes=$(jq -e .done_bytes "$out.volmgr-recover" 2>/dev/null || echo 0)
    if ((done_bytes > 0)); then
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.005
  done
  set +e
  wait "$pid"
  KILL_RC=$?
  set -e
}

# vr ARGS...: run volmgr-recover (no terminal, stdin /dev/null).
vr() { run setsid -w "$RECOVER" "$@"; LAST_CMD="volmgr-recover $*"; }
expect_vr() {
  local want=$1
  shift
  vr "$@"
  [[ $LAST_RC -eq $want ]] || fail "expected exit code $want, got $LAST_RC"
}

# new_volume IMG SIZE [volmgr format options]: a volmgr volume with a
# passphrase (file "pass") and a recovery password (file IMG.rp, no newline).
new_volume() {
  local img=$1 size=$2
  shift 2
  new_image "$img" "$size"
  expect_vm 0 format "$img" --new-key-file pass --json "${ARGON2[@]}" "$@"
  out | jq -r .recovery_password | tr -d '\n' >"$img.rp"
  out | jq -r .recovery_id >"$img.rid"
}

# fill_data IMG OFFSET_MIB MIB: random bytes into the data area (ciphertext
# the key does not produce, but distinct per volume).
fill_data() {
  dd if=/dev/urandom of="$1" bs=1M seek="$2" count="$3" conv=notrunc status=none
}
printf 'correct horse battery staple\n' >pass
