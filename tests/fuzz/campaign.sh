#!/usr/bin/env bash
# Long fuzzing campaigns (docs/SECURITY.md, "Fuzzing"):
#   campaign.sh HARNESS SECONDS [MAX_EXECUTIONS]
#   campaign.sh --all SECONDS [MAX_EXECUTIONS]   every harness, one by one
# FUZZ_BIN: the tests/fuzz directory of a -DVOLMGR_FUZZ=ON tree (default
# build/fuzz/tests/fuzz). Runs under nice -n 10 from the committed corpus
# plus a growing work corpus (FUZZ_BIN/campaign/HARNESS) and appends one
# line per harness to FUZZ_BIN/campaign/results.tsv:
#   harness  seconds  executions  execs/s  crashes  artifact
# `cmake --build TREE --target fuzz-long` runs --all.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness_options.sh
source "$here/harness_options.sh"
bin_dir=${FUZZ_BIN:-$here/../../build/fuzz/tests/fuzz}
[[ $# -ge 2 ]] || { sed -n 2,12p "$0"; exit 2; }
if [[ $1 == --all ]]; then
  harnesses=$(sed -n '/^set(VOLMGR_FUZZ_HARNESSES/,/^)/p' "$here/CMakeLists.txt" | sed '1d;$d')
else
  harnesses=$1
fi
seconds=$2
runs=${3:--1}
mkdir -p "$bin_dir/campaign"
results=$bin_dir/campaign/results.tsv
rc=0
for name in $harnesses; do
  work=$bin_dir/campaign/$name
  mkdir -p "$work/corpus"
  read -r -a opts <<<"$(fuzz_opts "$name")"
  log=$work/fuzz-$(date +%Y%m%d-%H%M%S).log
  start=$(date +%s)
  nice -n 10 "$bin_dir/fuzz_$name" "${opts[@]}" -max_total_time="$seconds" \
    -runs="$runs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/corpus" "$here/corpus/$name" >"$log" 2>&1
  status=$?
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  crashes=0
  artifact=-
  if [[ $status -ne 0 ]]; then
    crashes=1
    artifact=$(grep -o "Test unit written to .*" "$log" | tail -1 | sed 's/Test unit written to //')
    rc=1
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$elapsed" "${execs:-?}" "${rate:-?}" \
    "$crashes" "${artifact:--}" | tee -a "$results"
done
exit $rc
