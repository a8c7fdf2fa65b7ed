#!/usr/bin/env bash
# Write-cache crash test of in-place encryption (issue 17 item 3), run on the
# host. For each mode the host makes a 64 MiB ext4 image with known files
# (leaving the last 32 MiB free, so nothing needs resize2fs, which is not
# crash-safe by itself and not what is tested), boots the VM once to convert
# it through dm-log-writes (cases/conversion_logwrites.sh), and then replays
# the log (logwrites.py sweep): for every flush boundary x {all, none,
# header, data, random subsets} of the writes still volatile there, the
# image a power cut could leave must be intact (checks/logwrites_state.sh:
# plain ext4 whole, or the volume finishes with its own tool and its
# plaintext is a clean ext4 with every file). Stock `cryptsetup reencrypt
# --encrypt --reduce-device-size 32M` goes through the same replay as the
# peer.
#
#   logwrites.sh VMBED CACHE VOLMGR VOLMGR_RECOVER [SAMPLE] [MODES...]
#   SAMPLE: states checked per mode (0 = every state; default 0, or
#   $LOGWRITES_SAMPLE). MODES default: volmgr-encrypt cryptsetup-encrypt
#   volmgr-decrypt (the volume and the ext4 holding the detached header on
#   one log-writes device, so the log orders the writes of both).
# Prints "LOGWRITES mode=M states=N checked=C intact=I by_design=D lost=L"
# per mode; exits 1 if volmgr lost any state (a cryptsetup loss is reported,
# as the peer's known weakness, and fails only with LOGWRITES_STRICT_PEER=1).
set -euo pipefail

[[ $# -ge 4 ]] || { echo "usage: $0 VMBED CACHE VOLMGR VOLMGR_RECOVER [SAMPLE] [MODES...]" >&2; exit 2; }
VMBED=$(realpath "$1")
CACHE=$(realpath -m "$2")
VOLMGR=$(realpath "$3")
RECOVER=$(realpath "$4")
SAMPLE=${5:-${LOGWRITES_SAMPLE:-0}}
shift $(($# < 5 ? $# : 5))
MODES=("$@")
[[ ${#MODES[@]} -gt 0 ]] || MODES=(volmgr-encrypt cryptsetup-encrypt volmgr-decrypt)
HERE=$(cd "$(dirname "$0")" && pwd)
SEED=${LOGWRITES_SEED:-$RANDOM}
for tool in python3 mkfs.ext4 e2fsck debugfs cryptsetup setsid sha256sum; do
  command -v "$tool" >/dev/null || { echo "logwrites: $tool is missing" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/logwrites.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

mkdir tree tree/dir
printf 'hello from before the encryption\n' >tree/hello.txt
head -c 6000000 /dev/urandom >tree/big.bin
for i in $(seq 0 39); do head -c $((i * 997 + 13)) /dev/urandom >"tree/dir/f$i"; done
(cd tree && find . -type f -print0 | sort -z | xargs -0 sha256sum) >sums
truncate -s 64M base.img
mkfs.ext4 -q -F -b 4096 -d tree base.img 32M
printf 'logwrites-pass' >pass

volmgr_failed=0
echo "logwrites: seed $SEED, sample ${SAMPLE:-all} per mode"
for m in "${MODES[@]}"; do
  rm -f dev.img log.img
  if [[ $m == volmgr-decrypt ]]; then
    # The volume, encrypted here offline, then the ext4 for VOLMGR_STATE_DIR.
    if [[ ! -e vol.img ]]; then
      cp base.img vol.img
      VOLMGR_STATE_DIR=$work/hoststate VOLMGR_LOCK_DIR=$work/hostlocks setsid -w "$VOLMGR" \
        encrypt vol.img --new-key-file pass --argon2-time 1 --argon2-memory 8192 \
        </dev/null >"$work/enc.out" 2>&1 || { cat "$work/enc.out" >&2; exit 1; }
      mkdir -p st/conversion
      truncate -s 64M state.img  # room for the header file and its .unlock copy
      mkfs.ext4 -q -F -d st state.img
    fi
    cat vol.img state.img >dev.img
    dev_base=decrypt-base.img
    cp dev.img "$dev_base"
  else
    cp base.img dev.img
    dev_base=base.img
  fi
  truncate -s 1G log.img
  t0=$SECONDS
  rc=0
  "$VMBED" --cache "$CACHE" --timeout 600 --bin "$VOLMGR:/bin/volmgr" \
    --disk "$work/dev.img" --disk "$work/log.img" --env "MODE=$m" --env DATA_MIB=64 \
    --data "$work/$m.data" "$HERE/cases/conversion_logwrites.sh" >"$work/vm.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    cat "$work/vm.log" >&2
    echo "logwrites: $m: recording failed (vmbed exit $rc)" >&2
    exit 1
  fi
  echo "logwrites: $m: recorded in $((SECONDS - t0)) s ($(tr '\n' ' ' <"$work/$m.data"))"
  python3 "$HERE/logwrites.py" info log.img >"$work/$m.info"
  head -1 "$work/$m.info"
  tool=volmgr
  [[ $m == cryptsetup-* ]] && tool=cryptsetup
  [[ $m == volmgr-decrypt ]] && tool=volmgr-decrypt
  t0=$SECONDS
  src=0
  LW_TOOL=$tool LW_VOLMGR=$VOLMGR LW_RECOVER=$RECOVER LW_KEY=$work/pass LW_SUMS=$work/sums \
    LW_DATA_MIB=64 python3 "$HERE/logwrites.py" sweep "$dev_base" log.img \
    --check "$HERE/checks/logwrites_state.sh" --sample "$SAMPLE" --seed "$SEED" \
    --report "$work/$m.report" ${LOGWRITES_KEEP_LOST:+--keep-lost "$LOGWRITES_KEEP_LOST"} \
    --tmp "$work" >"$work/$m.sweep" 2>&1 || src=$?
  grep -v ': intact\|same image' "$work/$m.sweep" || true
  summary=$(grep '^LOGWRITES ' "$work/$m.sweep" || echo "LOGWRITES (no summary, exit $src)")
  echo "${summary/LOGWRITES /LOGWRITES mode=$m } seconds=$((SECONDS - t0))"
  if [[ $src -ne 0 ]]; then
    if [[ $tool == volmgr* ]]; then
      volmgr_failed=1
    elif [[ ${LOGWRITES_STRICT_PEER:-0} == 1 ]]; then
      volmgr_failed=1
    fi
  fi
done
exit $volmgr_failed
