#!/usr/bin/env bash
# ctest fixture fuzz.build: configures and builds the clang tree that the
# fuzz.* and sanitize.unit tests run in.
#   build_tree.sh SOURCE_DIR TREE
# The tree is -DVOLMGR_FUZZ=ON (libFuzzer + ASan + UBSan, shared libraries)
# and builds only the fuzz harnesses and the GoogleTest unit binaries.
# clang is provided by .ci/install: its absence is a failure, not a skip.
set -euo pipefail
src=$1
tree=$2
for tool in clang clang++ cmake; do
  command -v "$tool" >/dev/null ||
    { echo "FAIL [fuzz.build]: $tool is not installed (.ci/install provides it)" >&2; exit 1; }
done
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
start=$(date +%s)
if [[ ! -f $tree/CMakeCache.txt ]]; then
  cmake -S "$src" -B "$tree" "${gen[@]}" "${launcher[@]}" \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DVOLMGR_FUZZ=ON -DVOLMGR_SANITIZE=ON -DVOLMGR_STATIC_LIBS=OFF \
    -DVOLMGR_BUILD_BENCH=OFF
fi
cmake --build "$tree" -j2 --target fuzz unit-tests
echo "fuzz.build: the clang tree $tree built in $(($(date +%s) - start)) s"
