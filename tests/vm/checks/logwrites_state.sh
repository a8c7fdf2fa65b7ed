#!/usr/bin/env bash
# Judges one replayed device image of tests/vm/logwrites.py's sweep (run on
# the host, no device-mapper): IMAGE as a power cut may have left it.
#   logwrites_state.sh IMAGE
# Environment: LW_TOOL (volmgr | cryptsetup: who encrypts; volmgr-decrypt:
# volmgr decrypts, the image is LW_DATA_MIB of volume + the ext4 that holds
# VOLMGR_STATE_DIR with the detached header), LW_VOLMGR,
# LW_RECOVER (binaries), LW_KEY (passphrase file), LW_SUMS (sha256sum -c list
# of the files, relative to the filesystem root).
# Exit 0: intact (a plain ext4, or a volume that its own tool finishes and
# whose plaintext is a clean ext4 with every file); 3: unrecoverable by
# design (reported); anything else: lost. The last line says why.
set -uo pipefail
img=$1
w=$(mktemp -d "${TMPDIR:-/tmp}/lwstate.XXXXXX")
trap 'rm -rf "$w"' EXIT
export VOLMGR_STATE_DIR=$w/state VOLMGR_LOCK_DIR=$w/locks

files_ok() { # FS-IMAGE WHAT
  local out
  if ! out=$(e2fsck -fn "$1" 2>&1); then
    echo "LOST: e2fsck -fn of the $2 is not clean: $(grep -m2 -v '^e2fsck [0-9]' <<<"$out" | tr '\n' ' ')"
    return 1
  fi
  mkdir -p "$w/out"
  debugfs -R "rdump / $w/out" "$1" >/dev/null 2>&1
  if ! (cd "$w/out" && sha256sum --quiet -c "$LW_SUMS" >"$w/sums.out" 2>&1); then
    echo "LOST: files of the $2 differ: $(head -2 "$w/sums.out" | tr '\n' ' ')"
    return 1
  fi
}

# volume_ok IMAGE: no conversion left in the header; the plaintext is whole.
volume_ok() {
  if cryptsetup luksDump "$1" 2>/dev/null | grep -q online-reencrypt; then
    echo "LOST: the conversion did not finish"
    return 1
  fi
  if ! "$LW_RECOVER" extract "$1" --to "$w/plain.img" --key-file "$LW_KEY" -q </dev/null >"$w/ex.out" 2>&1; then
    echo "LOST: the volume does not open with the key: $(tail -1 "$w/ex.out")"
    return 1
  fi
  files_ok "$w/plain.img" "volume"
}

if [[ $LW_TOOL == volmgr-decrypt ]]; then
  # The image is the volume (LW_DATA_MIB) + the ext4 of VOLMGR_STATE_DIR.
  data=$w/data.img
  st=$w/state.img
  dd if="$img" of="$data" bs=1M count="$LW_DATA_MIB" status=none
  dd if="$img" of="$st" bs=1M skip="$LW_DATA_MIB" status=none
  e2fsck -fy "$st" >"$w/stfsck.out" 2>&1
  rc=$?
  if ((rc >= 4)); then
    echo "LOST: the state filesystem is damaged (e2fsck $rc): $(tail -1 "$w/stfsck.out")"
    exit 1
  fi
  hdr=$w/decrypt.luks2
  name=decrypt-_dev_mapper_data.luks2
  debugfs -R "dump /conversion/$name $hdr" "$st" >/dev/null 2>&1
  debugfs -R "dump /conversion/$name.unlock $hdr.unlock" "$st" >/dev/null 2>&1
  [[ -s $hdr ]] || rm -f "$hdr"
  [[ -s $hdr.unlock ]] || rm -f "$hdr.unlock"
  if [[ -e $hdr ]]; then
    setsid -w "$LW_VOLMGR" conversion resume "$data" --header "$hdr" --key-file "$LW_KEY" </dev/null >"$w/res.out" 2>&1
    rc=$?
    if [[ $rc -ne 0 ]] && ! cryptsetup isLuks "$data" 2>/dev/null; then
      echo "LOST: volmgr conversion resume --header exit $rc: $(tail -1 "$w/res.out")"
      exit 1
    fi
  fi
  if cryptsetup isLuks "$data" 2>/dev/null; then
    volume_ok "$data" || exit 1
    echo "intact: still the volume (decryption not started or put back)"
    exit 0
  fi
  files_ok "$data" "decrypted device" || exit 1
  echo "intact: decrypted, ext4 clean, files equal"
  exit 0
fi

if ! cryptsetup isLuks "$img" 2>/dev/null; then
  # Before the header reached the disk: the plain filesystem must be whole.
  files_ok "$img" "plain device" || exit 1
  echo "intact: plain ext4"
  exit 0
fi
case $LW_TOOL in
  volmgr)
    setsid -w "$LW_VOLMGR" conversion resume "$img" --key-file "$LW_KEY" </dev/null >"$w/res.out" 2>&1
    rc=$?
    if [[ $rc -ne 0 && $rc -ne 5 ]]; then
      echo "LOST: volmgr conversion resume exit $rc: $(tail -1 "$w/res.out")"
      exit 1
    fi
    ;;
  cryptsetup)
    # As cryptsetup's own documentation says for an interrupted offline
    # reencryption: repair (the recovery of the hotzone) first, then resume.
    if cryptsetup luksDump "$img" 2>/dev/null | grep -q online-reencrypt; then
      if ! cryptsetup repair -q --key-file "$LW_KEY" "$img" >"$w/rep.out" 2>&1; then
        echo "LOST: cryptsetup repair failed: $(tail -1 "$w/rep.out")"
        exit 1
      fi
    fi
    if cryptsetup luksDump "$img" 2>/dev/null | grep -q online-reencrypt; then
      if ! cryptsetup reencrypt --resume-only --force-offline-reencrypt -q \
        --key-file "$LW_KEY" "$img" >"$w/res.out" 2>&1; then
        echo "LOST: cryptsetup reencrypt --resume-only failed: $(tail -1 "$w/res.out")"
        exit 1
      fi
    fi
    ;;
esac
volume_ok "$img" || exit 1
echo "intact: volume finished, ext4 clean, files equal"
