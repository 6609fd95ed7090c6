#!/usr/bin/env bash
# One device call that confirms a landed tree (bench/NOTES.md "Next" 0 (a); carry .deps): README's test command
# (scripts/test.sh: build, ctest, the Python package and its tests), then compute-sanitizer racecheck,
# synccheck and memcheck on the GPU tests of what changed last (SANITIZE_FILTER, a gtest filter), reusing
# test.sh's build. Stops starting tools when the call's ~10 minutes run short. Logs in $OUT.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
export PATH=${CUDA_HOME:-/usr/local/cuda}/bin:$PATH
t0=$(date +%s)
budget=${DEVICE_CONFIRM_SECONDS:-580}
timeout $((budget - 100)) scripts/test.sh >"$OUT/test_sh.log" 2>&1
echo "scripts/test.sh: status $? after $(($(date +%s) - t0)) s"
grep -E "^ctest:|^python:|tests failed|\*\*\*Failed|FAILED" "$OUT/test_sh.log" | head -20
filter=${SANITIZE_FILTER:-'SharedInputTile.*:InputScaleTranspose.*'}
for tool in racecheck synccheck memcheck; do
  left=$((budget - ($(date +%s) - t0)))
  [ "$left" -gt 30 ] || { echo "$tool: no time left"; continue; }
  timeout "$left" compute-sanitizer --tool "$tool" build/tests/blockgemm_gpu_tests --gtest_filter="$filter" \
    >"$OUT/sanitize_$tool.log" 2>&1
  echo "$tool (status $?): $(grep -E "SUMMARY|ERROR SUMMARY" "$OUT/sanitize_$tool.log" | tail -1)" \
    "$(grep -E "^\[  (PASSED|FAILED) " "$OUT/sanitize_$tool.log" | tr '\n' ' ')"
done
echo "done after $(($(date +%s) - t0)) s"
