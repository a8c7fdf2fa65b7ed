#!/bin/bash
# volmgr integration: several volmgr processes on one volume at once.
#
# Changes hold a VolumeLock (flock on $VOLMGR_LOCK_DIR/<dev>:<inode>) and
# re-read the header under it, so concurrent changes must serialise: each
# either succeeds or reports busy (11), and the header afterwards holds
# exactly the protectors that were reported as added.
#
# Usage: volume_concurrency.sh PATH_TO_VOLMGR
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$(realpath "$0")")/lib.sh"

IMG=vol.img
printf 'correct horse battery staple\n' >pass

# check_rc NAME: 0 or 11 (busy, naming the other process) only.
check_rc() {
  local rc
  rc=$(rc_of "$1")
  LAST_CMD="(background job $1)"
  LAST_RC=$rc
  cp "$1.out" "$WORK/.stdout"
  cp "$1.err" "$WORK/.stderr"
  case $rc in
    0) ;;
    11) has "another volmgr process" ;;
    *) fail "background job $1 exited $rc (want 0 or 11)" ;;
  esac
}
# consistent IMG: stock cryptsetup parses the header; every volmgr token's
# keyslots exist; volmgr reports no warnings.
consistent() {
  expect 0 cryptsetup luksDump --dump-json-metadata "$1"
  out >meta.json
  jq -e '. as $m | [.tokens[] | select(.type | startswith("volmgr-")) |
      .keyslots[] | in($m.keyslots)] | all' meta.json >/dev/null ||
    fail "a volmgr token names a keyslot that does not exist"
  expect_vm 0 status "$1" --json
  out | jq -e '.warnings == []' >/dev/null || fail "status has warnings"
}

step "1: format a volume with one passphrase"
new_image $IMG 32M
expect_vm 0 format $IMG --new-key-file pass --no-recovery-password "${ARGON2[@]}"
[[ $(protector_count $IMG) -eq 1 ]] || fail "expected 1 protector"

step "2: two protector add at once: each succeeds or is busy; the header has both"
printf 'first concurrent pass\n' >np1
printf 'second concurrent pass\n' >np2
bg j1 protector add $IMG passphrase --new-key-file np1 --key-file pass "${ARGON2[@]}"
bg j2 protector add $IMG passphrase --new-key-file np2 --key-file pass "${ARGON2[@]}"
wait
ok=0
for j in j1 j2; do
  check_rc $j
  if [[ $(rc_of $j) -eq 0 ]]; then ok=$((ok + 1)); fi
done
[[ $(protector_count $IMG) -eq $((1 + ok)) ]] ||
  fail "expected $((1 + ok)) protectors, got $(protector_count $IMG)"
consistent $IMG
for i in 1 2; do
  if [[ $(rc_of j$i) -eq 0 ]]; then
    expect_vm 0 open $IMG t --test --key-file np$i
    has "$(sed -n 's/^Added protector \([0-9a-f-]*\) .*/\1/p' j$i.out)"
  fi
done

step "3: six mixed adds at once, with status readers running alongside"
N0=$(protector_count $IMG)
mkdir usb
bg k1 protector add $IMG recovery-password --key-file pass --json
bg k2 protector add $IMG recovery-password --key-file pass --json
bg k3 protector add $IMG startup-key --out usb --key-file pass --json
bg k4 protector add $IMG startup-key --out usb --key-file pass --json
printf 'third concurrent pass\n' >np5
printf 'fourth concurrent pass\n' >np6
bg k5 protector add $IMG passphrase --new-key-file np5 --key-file pass --json "${ARGON2[@]}"
bg k6 protector add $IMG passphrase --new-key-file np6 --key-file pass --json "${ARGON2[@]}"
for r in 1 2 3 4 5 6; do bg s$r status $IMG --json; done
wait
ok=0
for j in k1 k2 k3 k4 k5 k6; do
  check_rc $j
  if [[ $(rc_of $j) -eq 0 ]]; then ok=$((ok + 1)); fi
done
for r in 1 2 3 4 5 6; do
  LAST_CMD="(background status s$r)"
  LAST_RC=$(rc_of s$r)
  cp s$r.out "$WORK/.stdout"
  cp s$r.err "$WORK/.stderr"
  [[ $LAST_RC -eq 0 ]] || fail "a status reader failed while protectors were added"
  jq -e '.uuid' s$r.out >/dev/null || fail "a status reader printed no JSON"
done
[[ $(protector_count $IMG) -eq $((N0 + ok)) ]] ||
  fail "expected $((N0 + ok)) protectors, got $(protector_count $IMG)"
consistent $IMG
# Each reported protector is there and its credential opens the volume.
for j in k1 k2 k3 k4 k5 k6; do
  [[ $(rc_of $j) -eq 0 ]] || continue
  id=$(jq -r .id $j.out)
  expect_vm 0 protector list $IMG
  has "$id"
  case $j in
    k1 | k2)
      jq -j .recovery_password $j.out >$j.rp
      expect_vm 0 open $IMG t --test --key-file $j.rp
      has "$id"
      expect 0 cryptsetup open --test-passphrase $IMG --key-file $j.rp
      ;;
    k3 | k4)
      expect_vm 0 open $IMG t --test --startup-key "usb/$id.BEK"
      has "$id"
      ;;
    k5) expect_vm 0 open $IMG t --test --key-file np5; has "$id" ;;
    k6) expect_vm 0 open $IMG t --test --key-file np6; has "$id" ;;
  esac
done

step "4: rotate and add at once"
RP1_ID=$(jq -r .id k1.out)
N0=$(protector_count $IMG)
bg r1 recovery-password rotate $IMG --id "$RP1_ID" --key-file pass --json
bg r2 protector add $IMG recovery-password --key-file pass --json
wait
check_rc r1
check_rc r2
want=$N0
if [[ $(rc_of r2) -eq 0 ]]; then want=$((want + 1)); fi
[[ $(protector_count $IMG) -eq $want ]] || fail "expected $want protectors after rotate+add"
consistent $IMG
if [[ $(rc_of r1) -eq 0 ]]; then
  expect_vm 6 open $IMG t --test --key-file k1.rp
  jq -j .recovery_password r1.out >r1.rp
  expect_vm 0 open $IMG t --test --key-file r1.rp
fi

step "5: two removes of the last two protectors at once: one wins, one is refused"
new_image two.img 32M
printf 'other passphrase 2\n' >pass2
expect_vm 0 format two.img --new-key-file pass --no-recovery-password --json "${ARGON2[@]}"
P1=$(out | jq -r '.protectors[0].id')
expect_vm 0 protector add two.img passphrase --new-key-file pass2 --key-file pass --json "${ARGON2[@]}"
P2=$(out | jq -r .id)
bg d1 protector remove two.img "$P1"
bg d2 protector remove two.img "$P2"
wait
ok=0
for j in d1 d2; do
  rc=$(rc_of $j)
  LAST_CMD="(background job $j)"
  LAST_RC=$rc
  cp $j.out "$WORK/.stdout"
  cp $j.err "$WORK/.stderr"
  case $rc in
    0) ok=$((ok + 1)) ;;
    5) has "last one" ;;
    11) has "another volmgr process" ;;
    *) fail "remove exited $rc" ;;
  esac
done
[[ $ok -eq 1 ]] || fail "$ok removes succeeded; exactly one must"
[[ $(protector_count two.img) -eq 1 ]] || fail "expected 1 protector left"
consistent two.img
if [[ $(rc_of d1) -eq 0 ]]; then left=pass2; else left=pass; fi
expect_vm 0 open two.img t --test --key-file $left

step "6: a held lock makes changes wait, then report busy (11); nothing changes"
LOCKFILE=$VOLMGR_LOCK_DIR/$(stat -c %d $IMG):$(stat -c %i $IMG)
[[ -e $LOCKFILE ]] || fail "no lock file $LOCKFILE (has the lock naming changed?)"
snapshot $IMG
exec 9>"$LOCKFILE"
flock -x 9
start=$SECONDS
expect_vm 11 protector add $IMG recovery-password --key-file pass
has "another volmgr process is changing $IMG"
(( SECONDS - start >= 5 )) || fail "busy was reported without waiting for the lock"
unchanged $IMG
expect_vm 0 header backup $IMG held.hdr   # reads need no lock
expect_vm 11 header restore $IMG held.hdr
unchanged $IMG
expect_vm 0 open $IMG t --test --key-file pass   # unlocking needs no lock
exec 9>&-
expect_vm 0 protector add $IMG recovery-password --key-file pass
consistent $IMG

finish
