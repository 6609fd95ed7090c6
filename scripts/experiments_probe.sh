#!/usr/bin/env bash
# One device call for bench/NOTES.md "Next" 0 (run from the repository root on the GPU machine, carrying .deps):
#   1. Builds the tree (tests included) and runs the grouped tests #72 touches (tiles, contiguous API).
#   2. SM cycles at a locked clock (ncu --clock-control base, the median of five launches): 128x192 with
#      row-major against column-major input scales (SWEEP_SCALE_A_COLMAJOR=1), dense and grouped, and the
#      grouped tiles with column-major scales on groups that start one row late (SWEEP_OFFSET_SHIFT=1, #72's
#      lead rows) against aligned groups: whether 128x192 joins heuristics::transposes_input_scales, which
#      brings #70's bulk copy to the grouped user path (its plans are mostly 128x192), and whether unaligned
#      offsets keep the aligned time (issue 25: within 3%).
#   3. README's parallel ctest beside racecheck on the grouped tiles below 256 rows with column-major
#      scales (#70, #72) and memcheck on the tests that run the copies and the lead rows.
# Budget: PROBE_SECONDS (default 540) from the start; step 3 gets what is left. Results in $OUT:
# experiments_probe.log, probe_build.log, probe_ctest.log, san_<tool>.log.
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
tests=build-probe/tests/blockgemm_gpu_tests
timeout 90 "$tests" --gtest_brief=1 --gtest_filter='Compiled/EveryGroupedTile.*:GroupedContiguous.*:GroupedMasked.*:GroupedGraphs.*:InputScaleTranspose.*' 2>&1 | tail -8
echo "== grouped tests at $(elapsed) s"
sweep=build-probe/blockgemm-plan-sweep
# variant tile sweep-arguments... -> the median SM cycles of five profiled launches of that tile;
# variant: row, col (column-major scales) or colshift (and groups starting one row late).
cycles() {
  local variant=$1 tile=$2
  shift 2
  local env_vars=(SWEEP_TILES="$tile" SWEEP_REPEAT=1)
  [ "$variant" != row ] && env_vars+=(SWEEP_SCALE_A_COLMAJOR=1)
  [ "$variant" = colshift ] && env_vars+=(SWEEP_OFFSET_SHIFT=1)
  env "${env_vars[@]}" timeout 40 ncu --clock-control base -k regex:fp8_gemm --launch-skip 3 --launch-count 5 \
    --metrics sm__cycles_elapsed.max --csv "$sweep" "$@" 2>/dev/null | python3 -c '
import csv, statistics, sys
v = [float(r[-1].replace(",", "")) for r in csv.reader(sys.stdin)
     if len(r) > 3 and "fp8_gemm" in "".join(r) and r[-3] == "sm__cycles_elapsed.max"]
print(int(statistics.median(v)) if v else "none")'
}
ratio() { python3 -c "print(f'{$2 / $1:.4f}')" 2>/dev/null || echo "-"; }
printf "%-8s %-18s %-12s %12s %12s %8s %12s %8s\n" kind case tile row col col/row col+shift1 shift/col
for spec in "grouped 8,1024,4096,7168 128x192mc2" "dense 2048,4096,7168 128x192" \
  "grouped 8,1024,7168,2048 128x192mc2" "dense 4096,2112,7168 128x192" "grouped 8,1024,4096,7168 128x128" \
  "dense 8192,7168,2048 128x192" "grouped 8,1024,4096,7168 128x160"; do
  read -r kind shape tile <<<"$spec"
  [ "$(left)" -gt 200 ] || { echo "$spec: no time left"; continue; }
  arg=--shape
  [ "$kind" = grouped ] && arg=--grouped
  row=$(cycles row "$tile" $arg "$shape")
  col=$(cycles col "$tile" $arg "$shape")
  shifted=- shift_ratio=-
  if [ "$kind" = grouped ]; then
    shifted=$(cycles colshift "$tile" $arg "$shape")
    shift_ratio=$(ratio "$col" "$shifted")
  fi
  printf "%-8s %-18s %-12s %12s %12s %8s %12s %8s\n" "$kind" "$shape" "$tile" "$row" "$col" \
    "$(ratio "$row" "$col")" "$shifted" "$shift_ratio"
done
echo "== cycles done at $(elapsed) s"
(cd build-probe && timeout "$(($(left) > 40 ? $(left) - 20 : 20))" ctest -j 12 --output-on-failure \
  >"$OUT/probe_ctest.log" 2>&1) &
timeout "$(($(left) > 30 ? $(left) - 10 : 20))" compute-sanitizer --tool racecheck --error-exitcode 9 "$tests" \
  --gtest_brief=1 --gtest_filter='Compiled/EveryGroupedTile.*T128x1*_offsets' >"$OUT/san_racecheck.log" 2>&1 &
timeout "$(($(left) > 30 ? $(left) - 10 : 20))" compute-sanitizer --tool memcheck --error-exitcode 9 "$tests" \
  --gtest_brief=1 --gtest_filter='Compiled/EveryGroupedTile.*T128x1*_offsets:Compiled/EveryGroupedTile.*T128x1*PerRow_masked:GroupedContiguous.*:GroupedMasked.RowMajor*' \
  >"$OUT/san_memcheck.log" 2>&1 &
wait
echo "== ctest"
grep -E "tests passed|tests failed|Failed|Timeout" "$OUT/probe_ctest.log" | tail -8
for tool in racecheck memcheck; do
  echo "== $tool"
  grep -E "PASSED|FAILED|SUMMARY|hazard" "$OUT/san_$tool.log" | tail -4
done
echo "== done at $(elapsed) s"
