# Shared helpers for volmgr's integration scripts (cryptsetup's tests/ style).
#
# Source it from a script run as `script.sh PATH_TO_VOLMGR`. It sets
# `set -euo pipefail`, makes a private work directory under /tmp (removed on
# exit), points VOLMGR_LOCK_DIR into it, and provides:
#
#   step "3: wrong passphrase is refused"  name the step fail() reports
#   run CMD...            run CMD, keep rc / stdout / stderr (never aborts)
#   vm ARGS...            run volmgr ARGS (no terminal, stdin /dev/null)
#   vm_in FILE ARGS...    same, stdin from FILE
#   expect RC CMD...      run CMD and require exit code RC
#   expect_vm RC ARGS...  expect RC vm ARGS...
#   has FRAGMENT          the last command's stdout+stderr contains FRAGMENT
#                         (case-insensitive); lacks FRAGMENT: the opposite
#   fail MESSAGE          print step, command, exit code and output; exit 1
#   snapshot IMG / unchanged IMG
#                         record / compare the header area (sha256 of the
#                         first 16 MiB) and `cryptsetup luksDump`
#   finish                print the summary; call last
#   require_tools CMD...  fail (not skip) unless every CMD is installed
#   skip REASON           exit 77, for what .ci/install cannot provide
#
# A command that fails outside these helpers ends the script (set -e) with a
# FAIL line naming the command, its exit code and the line (ERR trap).
#
# Every volmgr call runs under `setsid -w` with stdin from /dev/null, so
# there is never a controlling terminal: a forgotten credential fails with
# exit 5 instead of hanging on a prompt.

# Variables here are used by the sourcing scripts.
# shellcheck disable=SC2034
set -Eeuo pipefail
# A command that fails under set -e ends the script: say which one and where,
# so a failing helper (`x=$(helper)`) never ends a test silently. Not while
# set -e is off (inside run).
on_err_() {
  [[ $- == *e* ]] || return 0
  local in=
  (($4 == 0)) || in=" (in a subshell)"
  echo "FAIL [${TEST_NAME:-$0}] step ${STEP:-(setup)}: \"$3\" exited $1 at $2$in;" \
    "set -e ends the test here" >&2
}
trap 'on_err_ $? "${BASH_SOURCE[0]##*/}:$LINENO" "$BASH_COMMAND" "$BASH_SUBSHELL"' ERR

if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 PATH_TO_VOLMGR" >&2
  exit 2
fi
VOLMGR=$(realpath "$1")
TEST_NAME=$(basename "$0" .sh)
SKIP=77  # CTest SKIP_RETURN_CODE
TOOLS_LIST=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools.list

# require_tools CMD...: every CMD is installed, else the test FAILS naming it
# and its package: .ci/install provides each tool the tests call (listed in
# tests/tools.list, checked by tests/tools_check.sh), so a missing one is a
# broken set-up, never a reason to skip.
require_tools() {
  local t pkg
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 && continue
    pkg=$(awk -v t="$t" '$1 == t { print $2; exit }' "$TOOLS_LIST" 2>/dev/null || true)
    echo "FAIL [$TEST_NAME] (setup): '$t' is not installed; .ci/install provides it" \
      "(Debian package ${pkg:-not in tests/tools.list}): run ./.ci/install as root" >&2
    exit 1
  done
}

# skip REASON: exit 77 (CTest: skipped). Only for what .ci/install cannot
# provide (no /dev/fuse in this container, not root), never for a tool.
skip() {
  echo "SKIP [$TEST_NAME]: $*"
  exit $SKIP
}

require_tools cryptsetup jq setsid sha256sum dd truncate

WORK=$(mktemp -d "/tmp/volmgr-${TEST_NAME}.XXXXXX")
export VOLMGR_LOCK_DIR=$WORK/locks
CLEANUP_CMDS=()
cleanup() {
  local rc=$?
  local c
  for c in "${CLEANUP_CMDS[@]+"${CLEANUP_CMDS[@]}"}"; do
    eval "$c" >/dev/null 2>&1 || true
  done
  if [[ $rc -ne 0 && -n ${VOLMGR_KEEP_WORK:-} ]]; then
    echo "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
on_exit() { CLEANUP_CMDS+=("$1"); }
cd "$WORK"

# Fast, fixed Argon2id: never let calibration run in a test.
ARGON2=(--argon2-time 1 --argon2-memory 8192)

STEP="(setup)"
LAST_CMD=""
LAST_RC=0
STEPS_RUN=0

step() {
  STEP=$1
  STEPS_RUN=$((STEPS_RUN + 1))
  echo "[$TEST_NAME] step $STEP"
}

out() { cat "$WORK/.stdout"; }
err() { cat "$WORK/.stderr"; }

fail() {
  {
    echo "FAIL [$TEST_NAME] step $STEP: $*"
    echo "  last command: $LAST_CMD"
    echo "  exit code:    $LAST_RC"
    echo "  stdout:"
    sed 's/^/    | /' "$WORK/.stdout" 2>/dev/null | head -40
    echo "  stderr:"
    sed 's/^/    | /' "$WORK/.stderr" 2>/dev/null | head -40
  } >&2
  exit 1
}

# run CMD...: never aborts; sets LAST_RC, keeps stdout and stderr.
run() {
  LAST_CMD="$*"
  set +e
  "$@" >"$WORK/.stdout" 2>"$WORK/.stderr" <"${RUN_STDIN:-/dev/null}"
  LAST_RC=$?
  set -e
  return 0
}

vm() { run setsid -w "$VOLMGR" "$@"; LAST_CMD="volmgr $*"; }
vm_in() {
  local input=$1
  shift
  RUN_STDIN=$input run setsid -w "$VOLMGR" "$@"
  LAST_CMD="volmgr $* < $input"
}

expect() {
  local want=$1
  shift
  run "$@"
  [[ $LAST_RC -eq $want ]] || fail "expected exit code $want, got $LAST_RC"
}

expect_vm() {
  local want=$1
  shift
  vm "$@"
  [[ $LAST_RC -eq $want ]] || fail "expected exit code $want, got $LAST_RC"
}

expect_vm_in() {
  local want=$1 input=$2
  shift 2
  vm_in "$input" "$@"
  [[ $LAST_RC -eq $want ]] || fail "expected exit code $want, got $LAST_RC"
}

# grep reads the files itself: with `cat | grep -q` under pipefail, grep
# exiting at the first match can kill cat (SIGPIPE) and fail the pipeline.
has() {
  grep -qiF -- "$1" "$WORK/.stdout" "$WORK/.stderr" ||
    fail "output does not mention \"$1\""
}

lacks() {
  if grep -qiF -- "$1" "$WORK/.stdout" "$WORK/.stderr"; then
    fail "output must not contain \"$1\""
  fi
}

# The header area: both LUKS2 header copies and the keyslot area.
header_sum() {
  dd if="$1" bs=1M count=16 status=none | sha256sum | cut -d' ' -f1
}

snapshot() {
  header_sum "$1" >"$WORK/.snap.$(basename "$1").sum"
  cryptsetup luksDump "$1" >"$WORK/.snap.$(basename "$1").dump" 2>&1 || true
}

unchanged() {
  local b
  b=$(basename "$1")
  [[ $(header_sum "$1") == $(cat "$WORK/.snap.$b.sum") ]] ||
    fail "the header area of $1 changed"
  cryptsetup luksDump "$1" >"$WORK/.dump.now" 2>&1 || true
  if ! cmp -s "$WORK/.dump.now" "$WORK/.snap.$b.dump"; then
    diff "$WORK/.snap.$b.dump" "$WORK/.dump.now" >&2 || true
    fail "cryptsetup luksDump of $1 changed"
  fi
}

file_sum() { sha256sum "$1" | cut -d' ' -f1; }

# new_image NAME [SIZE]: a sparse image file.
new_image() {
  rm -f "$1"
  truncate -s "${2:-32M}" "$1"
}

# protector_count IMG: number of protectors volmgr lists.
protector_count() {
  setsid -w "$VOLMGR" protector list "$1" --json </dev/null | jq length
}

# bg NAME ARGS...: $VOLMGR ARGS in the background (own session, no stdin);
# NAME.out, NAME.err, and NAME.rc once it ends. rc_of NAME reads the code.
bg() {
  local name=$1
  shift
  (
    set +e
    setsid -w "$VOLMGR" "$@" </dev/null >"$name.out" 2>"$name.err"
    echo $? >"$name.rc"
  ) &
}
rc_of() { cat "$1.rc"; }

# key_store_holding HEX STORE: prints which of STORE's keys.db, -wal, -shm
# hold these bytes; exit 1 when none does (crypto-shred checks).
key_store_holding() {
  python3 - "$1" "$2/keys.db" "$2/keys.db-wal" "$2/keys.db-shm" <<'PY'
import os, sys
needle = bytes.fromhex(sys.argv[1])
hit = [p for p in sys.argv[2:]
       if os.path.exists(p) and needle in open(p, "rb").read()]
print(" ".join(hit))
sys.exit(0 if hit else 1)
PY
}

finish() {
  echo "[$TEST_NAME] PASSED ($STEPS_RUN steps, ${SECONDS}s)"
}
