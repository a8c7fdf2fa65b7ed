#!/usr/bin/env bash
# ctest fuzz.NAME: replay the committed corpus and every saved regression
# input of one harness, then fuzz it for SECONDS from that corpus.
#   smoke.sh HARNESS_BINARY NAME SECONDS
# A crash, leak, sanitizer report or property violation fails the test; the
# input is kept in the work directory printed, to be saved under
# tests/fuzz/regressions/NAME/ with the fix.
set -euo pipefail
bin=$1
name=$2
seconds=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness_options.sh
source "$here/harness_options.sh"
[[ -x $bin ]] || { echo "FAIL [fuzz.$name]: $bin was not built (fuzz.build)" >&2; exit 1; }
corpus=$here/corpus/$name
regress=$here/regressions/$name
[[ -d $corpus ]] || { echo "FAIL [fuzz.$name]: no corpus $corpus" >&2; exit 1; }
work=$(dirname "$bin")/smoke/$name
rm -rf "$work"
mkdir -p "$work/new"
read -r -a opts <<<"$(fuzz_opts "$name")"

# 1. Replay: every committed input once.
mapfile -t inputs < <(find "$corpus" "$regress" -type f 2>/dev/null | sort)
echo "[fuzz.$name] step 1: replaying ${#inputs[@]} inputs"
start=$(date +%s)
if ! "$bin" "${opts[@]}" -timeout=30 -rss_limit_mb=2048 \
    -artifact_prefix="$work/" "${inputs[@]}" >"$work/replay.log" 2>&1; then
  tail -60 "$work/replay.log"
  echo "FAIL [fuzz.$name] step 1: a committed input crashes the harness (log: $work/replay.log)" >&2
  exit 1
fi

# 2. Fuzz from the corpus for a bounded time.
echo "[fuzz.$name] step 2: fuzzing for $seconds s"
if ! "$bin" "${opts[@]}" -max_total_time="$seconds" -timeout=30 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" \
    "$work/new" "$corpus" >"$work/fuzz.log" 2>&1; then
  tail -60 "$work/fuzz.log"
  echo "FAIL [fuzz.$name] step 2: the fuzzer found a crashing input: $(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | head -1)" >&2
  exit 1
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log")
echo "[fuzz.$name] OK: ${#inputs[@]} inputs replayed, $execs executions in $seconds s ($rate/s), $(($(date +%s) - start)) s in all"
