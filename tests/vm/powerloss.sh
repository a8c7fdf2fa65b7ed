#!/usr/bin/env bash
# Power-loss test of in-place conversion (issue 9), run on the host. For each mode
# (offline|online x encrypt|decrypt) it prepares two persistent disk images, then boots the
# same images again and again: each boot resumes the conversion and vmbed SIGKILLs qemu at
# a random moment after the guest's arm marker (--kill-after-arm). When a boot lets the
# conversion complete, the guest proves that no byte was lost (file hashes, fsck). A
# finished cycle with kills left starts a new cycle.
#
#   powerloss.sh VMBED CACHE VOLMGR KILLS_PER_MODE [MAX_DELAY_S] [MODES...]
#   MODES default: offline-encrypt offline-decrypt online-encrypt online-decrypt
# Prints "POWERLOSS kills=N cycles=C failures=F" and exits 0 only if F = 0 and every mode
# got its kills.
set -euo pipefail

[[ $# -ge 4 ]] || { echo "usage: $0 VMBED CACHE VOLMGR KILLS_PER_MODE [MAX_DELAY_S] [MODES...]" >&2; exit 2; }
VMBED=$1
CACHE=$2
VOLMGR=$3
KILLS=$4
MAXD=${5:-7}
shift $(($# < 5 ? $# : 5))
MODES=("$@")
[[ ${#MODES[@]} -gt 0 ]] || MODES=(offline-encrypt offline-decrypt online-encrypt online-decrypt)
HERE=$(cd "$(dirname "$0")" && pwd)
GUEST=$HERE/cases/conversion_powerloss.sh
SEED=${POWERLOSS_SEED:-$RANDOM}
echo "powerloss: seed $SEED, $KILLS kills per mode, delays 0..${MAXD}s after the arm marker"
RANDOM=$SEED

work=$(mktemp -d "${TMPDIR:-/tmp}/powerloss.XXXXXX")
trap 'rm -rf "$work"' EXIT

total_kills=0
total_cycles=0
failures=0

at_boot() { # the state the last boot found: "paused 37 %"
  local st pc
  st=$(sed -n 's/^state_at_boot=//p' "$work/boot.data" 2>/dev/null)
  pc=$(sed -n 's/^percent_at_boot=//p' "$work/boot.data" 2>/dev/null)
  echo "found ${st:-?} ${pc:-?} %"
}

boot() { # MODE DIRECTION PHASE [DELAY]
  local args=(--cache "$CACHE" --timeout 300 --bin "$VOLMGR:/bin/volmgr"
    --disk "$work/data.img:128M" --disk "$work/state.img:96M"
    --env "MODE=$1" --env "DIRECTION=$2" --env "PHASE=$3" --data "$work/boot.data")
  rm -f "$work/boot.data"
  [[ -z ${4:-} ]] || args+=(--kill-after-arm "$4")
  local rc=0
  nice -n 5 "$VMBED" "${args[@]}" "$GUEST" >"$work/last.log" 2>&1 || rc=$?
  return $rc
}

for m in "${MODES[@]}"; do
  mode=${m%-*}
  dir=${m#*-}
  rm -f "$work"/*.img
  kills=0
  cycles=0
  need_setup=1
  while :; do
    if [[ $need_setup -eq 1 ]]; then
      if ! boot "$mode" "$dir" setup; then
        echo "powerloss: $m: setup FAILED"; tail -n 30 "$work/last.log"; failures=$((failures + 1)); break
      fi
      need_setup=0
    fi
    delay=
    if [[ $kills -lt $KILLS ]]; then
      delay=$(awk -v r=$RANDOM -v m="$MAXD" 'BEGIN { printf "%.2f", r / 32767 * m }')
    fi
    rc=0
    boot "$mode" "$dir" run "$delay" || rc=$?
    case $rc in
      6)
        kills=$((kills + 1))
        echo "powerloss: $m: kill $kills at +${delay}s after arm ($(at_boot))"
        ;;
      0)
        cycles=$((cycles + 1))
        echo "powerloss: $m: cycle $cycles completed and verified${delay:+ (the ${delay}s kill came too late)}"
        [[ $kills -ge $KILLS ]] && break
        rm -f "$work"/*.img
        need_setup=1
        ;;
      *)
        echo "powerloss: $m: FAILED (vmbed exit $rc) after $kills kills"
        tail -n 40 "$work/last.log"
        failures=$((failures + 1))
        break
        ;;
    esac
  done
  total_kills=$((total_kills + kills))
  total_cycles=$((total_cycles + cycles))
  echo "powerloss: $m: kills=$kills cycles=$cycles"
done
echo "POWERLOSS kills=$total_kills cycles=$total_cycles failures=$failures seed=$SEED"
[[ $failures -eq 0 && $total_kills -ge $((KILLS * ${#MODES[@]})) ]]
