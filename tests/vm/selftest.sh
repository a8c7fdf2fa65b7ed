#!/usr/bin/env bash
# Negative self-tests of vmbed, run on the host (registered in CTest with label "vm").
#   selftest.sh VMBED CACHE MODE
# MODE: exit1      guest script exits 1       -> vmbed exits 1
#       nomarker   guest powers off early     -> vmbed exits 3 (a wrong-nonce marker is ignored)
#       timeout    guest hangs (with --tpm)   -> vmbed exits 4 within the limit; no qemu/swtpm
#                                                left, run dir removed
#       sigterm    SIGTERM to vmbed mid-run   -> vmbed exits 143; no qemu/swtpm left, run dir
#                                                removed
set -euo pipefail
[[ $# -eq 3 ]] || { sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2; }
vmbed=$1 cache=$2 mode=$3
cases=$(cd "$(dirname "$0")" && pwd)/cases

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmbed-selftest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp # vmbed's run dir lands here, so leftovers are easy to find

fail() { echo "selftest $mode: FAIL: $*" >&2; exit 1; }

# Processes whose command line mentions our private TMPDIR (qemu and swtpm do).
# (Scans /proc directly: procps/pgrep is not guaranteed on a minimal Debian.)
leftovers() {
  local d cmd
  for d in /proc/[0-9]*; do
    [[ ${d#/proc/} == "$$" ]] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    [[ $cmd == *"$tmp/vmbed."* ]] && echo "${d#/proc/} $cmd"
  done
  return 0
}
check_clean() {
  local left
  sleep 0.5
  left=$(leftovers)
  [[ -z $left ]] || fail "processes left behind: $left"
  if compgen -G "$tmp/vmbed.*" >/dev/null; then fail "run dir left behind: $(ls -d "$tmp"/vmbed.*)"; fi
}

expect_rc() {
  local want=$1 got=$2
  [[ $got -eq $want ]] || fail "vmbed exited $got, expected $want"
  echo "selftest $mode: vmbed exited $got as expected"
}

case $mode in
  exit1)
    set +e
    "$vmbed" --cache "$cache" --timeout 180 "$cases/selftest_exit1.sh" 2>"$tmp/err"
    rc=$?
    set -e
    cat "$tmp/err" >&2
    expect_rc 1 "$rc"
    grep -q 'guest script exited 1' "$tmp/err" || fail "no 'guest script exited 1' message"
    check_clean
    ;;
  nomarker)
    set +e
    "$vmbed" --cache "$cache" --timeout 180 "$cases/selftest_no_marker.sh" 2>"$tmp/err"
    rc=$?
    set -e
    cat "$tmp/err" >&2
    expect_rc 3 "$rc"
    check_clean
    ;;
  timeout)
    start=$SECONDS
    set +e
    "$vmbed" --cache "$cache" --tpm --timeout 25 --test-timeout 1000 "$cases/selftest_hang.sh" 2>"$tmp/err"
    rc=$?
    set -e
    cat "$tmp/err" >&2
    expect_rc 4 "$rc"
    ((SECONDS - start <= 45)) || fail "took $((SECONDS - start))s for a 25s timeout"
    check_clean
    ;;
  sigterm)
    "$vmbed" --cache "$cache" --tpm --keep --timeout 200 "$cases/selftest_hang.sh" 2>"$tmp/err" &
    pid=$!
    # Wait until the guest runs the script (its console is in the run dir).
    for _ in $(seq 1200); do
      if grep -qs VMBED-SELFTEST-HANGING "$tmp"/vmbed.*/console.log; then break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    grep -qs VMBED-SELFTEST-HANGING "$tmp"/vmbed.*/console.log || { cat "$tmp/err" >&2; fail "guest never started"; }
    [[ -n $(leftovers) ]] || fail "expected qemu/swtpm to be running before SIGTERM"
    kill -TERM "$pid"
    set +e
    wait "$pid"
    rc=$?
    set -e
    cat "$tmp/err" >&2
    expect_rc 143 "$rc"
    # --keep was given, so the run dir stays (holding the logs); processes must be gone.
    left=$(leftovers)
    [[ -z $left ]] || fail "processes left behind: $left"
    rm -rf "$tmp"/vmbed.*
    ;;
  *) fail "unknown mode" ;;
esac
echo "selftest $mode: PASS"
