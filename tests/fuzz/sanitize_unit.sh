#!/usr/bin/env bash
# ctest sanitize.unit: every GoogleTest unit test again, in the clang tree
# that fuzz.build made with -DVOLMGR_SANITIZE=ON (AddressSanitizer, leak
# checking, UndefinedBehaviorSanitizer with no recovery).
#   sanitize_unit.sh TREE
# Any sanitizer report fails the test that triggered it.
set -euo pipefail
tree=$1
[[ -f $tree/CTestTestfile.cmake ]] ||
  { echo "FAIL [sanitize.unit]: no sanitizer tree at $tree (fuzz.build)" >&2; exit 1; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Excluded (each reason is a property of the test, not of a finding):
exclude=""
start=$(date +%s)
ctest --test-dir "$tree" -L '^unit$' ${exclude:+-E "$exclude"} -j2 \
  --output-on-failure --timeout 900
echo "sanitize.unit: unit tests under ASan + UBSan passed in $(($(date +%s) - start)) s"
