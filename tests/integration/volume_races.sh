#!/bin/bash
# volmgr integration: administrators racing on one device (issue 17, item 2).
#
# `format` must decide under the VolumeLock whether the device is free: two
# formats started at once on a blank image must not both succeed, or the
# second overwrites the first and one printed recovery password opens
# nothing. Exactly one wins; each loser exits 11 (busy) or 5 (the device now
# holds a LUKS header) and changes nothing; the winner's recovery password
# opens the volume with stock cryptsetup.
#
# Usage: volume_races.sh PATH_TO_VOLMGR
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$(realpath "$0")")/lib.sh"

N=6

show_job() {
  LAST_CMD="(background job $1)"
  LAST_RC=$(rc_of "$1")
  cp "$1.out" "$WORK/.stdout"
  cp "$1.err" "$WORK/.stderr"
}

# race IMG ROUND: N formats of IMG at once; checks the outcome.
race() {
  local img=$1 round=$2 j winner="" ok=0
  for j in $(seq 1 $N); do
    bg "f$round.$j" format "$img" --json
  done
  wait
  for j in $(seq 1 $N); do
    show_job "f$round.$j"
    case $LAST_RC in
      0) ok=$((ok + 1)); winner=f$round.$j ;;
      5) has "LUKS" ;;
      11) has "another volmgr process" ;;
      *) fail "format exited $LAST_RC (want 0, 5 or 11)" ;;
    esac
  done
  [[ $ok -eq 1 ]] || fail "round $round: $ok of $N concurrent formats succeeded; exactly one must"
  show_job "$winner"
  local uuid
  uuid=$(jq -r .uuid "$winner.out")
  jq -j .recovery_password "$winner.out" >"$winner.rp"
  expect 0 cryptsetup luksUUID "$img"
  [[ $(out) == "$uuid" ]] || fail "the header is of $(out), not of the winner's volume $uuid"
  expect 0 cryptsetup open --test-passphrase "$img" --key-file "$winner.rp"
  expect_vm 0 open "$img" t --test --key-file "$winner.rp"
  has "$(jq -r .recovery_id "$winner.out")"
}

step "1: $N concurrent formats of a blank image: exactly one wins"
new_image blank.img 32M
race blank.img 1

step "2: the same race again on a fresh image (the window is small)"
for r in 2 3 4; do
  new_image blank$r.img 32M
  race blank$r.img $r
done

step "3: a format while another holds the lock waits, then finds the LUKS header (5)"
new_image held.img 32M
expect_vm 0 format held.img --json
jq -j .recovery_password "$WORK/.stdout" >held.rp
snapshot held.img
expect_vm 5 format held.img
has "LUKS"
unchanged held.img
expect 0 cryptsetup open --test-passphrase held.img --key-file held.rp

finish
