#!/usr/bin/env bash
# One device call for bench/NOTES.md "Next" 0 (run from the repository root on the GPU machine, carrying .deps):
#   1. Builds the tree (tests included).
#   2. SM cycles at a locked clock (ncu --clock-control base, the median of five launches) of 128x192 with
#      row-major against column-major input scales (SWEEP_SCALE_A_COLMAJOR=1), dense and grouped (128x192
#      and its weight-sharing pair): whether 128x192 joins heuristics::transposes_input_scales, which is what
#      brings #70's bulk copy to the grouped user path (its plans are mostly 128x192). The 128x128 rows are
#      the control, whose copy landed (#71).
#   3. racecheck on #70's path (the grouped tiles below 256 rows with column-major scales), memcheck and
#      synccheck on the tests that run the copies (#71).
# Budget: PROBE_SECONDS (default 540) from the start; step 3 gets what is left. Results in $OUT:
# experiments_probe.log, probe_build.log, san_<tool>.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/experiments_probe.log") 2>&1
t0=$(date +%s)
budget=${PROBE_SECONDS:-540}
elapsed() { echo $(($(date +%s) - t0)); }
left() { echo $((budget - $(date +%s) + t0)); }
export PATH=${CUDA_HOME:-/usr/local/cuda}/bin:$PATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit --format=csv
cmake -S . -B build-probe -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKGEMM_BUILD_TESTS=ON \
  -DBLOCKGEMM_GTEST_SOURCE="$PWD/.deps/googletest" >"$OUT/probe_build.log" 2>&1
timeout 240 cmake --build build-probe -j 16 >>"$OUT/probe_build.log" 2>&1
echo "== built (status $?) at $(elapsed) s"
sweep=build-probe/blockgemm-plan-sweep
# layout tile sweep-arguments... -> the median SM cycles of five profiled launches of that tile
cycles() {
  local layout=$1 tile=$2
  shift 2
  local env_vars=(SWEEP_TILES="$tile" SWEEP_REPEAT=1)
  [ "$layout" = col ] && env_vars+=(SWEEP_SCALE_A_COLMAJOR=1)
  env "${env_vars[@]}" timeout 40 ncu --clock-control base -k regex:fp8_gemm --launch-skip 3 --launch-count 5 \
    --metrics sm__cycles_elapsed.max --csv "$sweep" "$@" 2>/dev/null | python3 -c '
import csv, statistics, sys
v = [float(r[-1].replace(",", "")) for r in csv.reader(sys.stdin)
     if len(r) > 3 and "fp8_gemm" in "".join(r) and r[-3] == "sm__cycles_elapsed.max"]
print(int(statistics.median(v)) if v else "none")'
}
printf "%-8s %-18s %-12s %12s %12s %8s\n" kind case tile row col col/row
for spec in "grouped 8,1024,4096,7168 128x192mc2" "dense 2048,4096,7168 128x192" \
  "grouped 8,1024,7168,2048 128x192mc2" "dense 4096,2112,7168 128x192" "dense 8192,7168,2048 128x192" \
  "grouped 8,1024,4096,7168 128x192" "grouped 8,1024,4096,7168 128x128" "dense 2048,4096,7168 128x128"; do
  read -r kind shape tile <<<"$spec"
  [ "$(left)" -gt 200 ] || { echo "$spec: no time left"; continue; }
  arg=--shape
  [ "$kind" = grouped ] && arg=--grouped
  row=$(cycles row "$tile" $arg "$shape")
  col=$(cycles col "$tile" $arg "$shape")
  ratio=$(python3 -c "print(f'{$col / $row:.4f}')" 2>/dev/null || echo "-")
  printf "%-8s %-18s %-12s %12s %12s %8s\n" "$kind" "$shape" "$tile" "$row" "$col" "$ratio"
done
echo "== cycles done at $(elapsed) s"
tests=build-probe/tests/blockgemm_gpu_tests
for tool in racecheck memcheck synccheck; do
  filter='Compiled/EveryGroupedTile.*T128x1*'
  [ "$tool" = racecheck ] || filter='InputScaleTranspose.*:GroupedContiguous.*:Compiled/EveryGroupedTile.*T128x1*_index'
  timeout "$(($(left) > 30 ? $(left) - 10 : 20))" compute-sanitizer --tool "$tool" --error-exitcode 9 "$tests" \
    --gtest_brief=1 --gtest_filter="$filter" >"$OUT/san_$tool.log" 2>&1 &
done
wait
for tool in racecheck memcheck synccheck; do
  echo "== $tool"
  grep -E "PASSED|FAILED|SUMMARY|hazard" "$OUT/san_$tool.log" | tail -4
done
echo "== done at $(elapsed) s"
