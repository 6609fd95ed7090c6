#!/usr/bin/env bash
# README's test command: installs what is missing, builds everything and runs every test. Without a Hopper
# GPU the GPU tests report "Skipped" with the reason; on a Hopper machine they run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --tests
export PATH=/usr/local/cuda/bin:$PATH
gtest_src=/usr/src/googletest
[ -d "$gtest_src" ] || gtest_src=$PWD/.deps/googletest
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKGEMM_GTEST_SOURCE="$gtest_src"
cmake --build build -j "$(nproc)"
if ! build/tests/blockgemm_gpu_tests --gtest_filter='GemmLayouts.ZeroRowsIsANoOp' 2>&1 | grep -q '\[  PASSED  \] 1'; then
  echo "NOTE: no usable Hopper GPU here: the GPU tests will be reported as skipped (see scripts/gpu_check.sh)."
fi
cd build
log=$(mktemp)
status=0
ctest --output-on-failure -j "$(nproc)" | tee "$log" || status=$?
# A closing count line that says how many tests ran and how many skipped for want of a GPU.
total=$(grep -oE 'out of [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
failed=$(grep -oE '[0-9]+ tests failed' "$log" | tail -1 | grep -oE '^[0-9]+' || echo 0)
skipped=$(grep -c '(Skipped)' "$log" || true)
rm -f "$log"
echo "ctest: $((total - failed - skipped)) passed, ${failed} failed, ${skipped} skipped"
exit $status
