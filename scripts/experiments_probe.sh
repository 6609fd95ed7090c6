#!/usr/bin/env bash
# One device call for bench/NOTES.md "Next" 0 (run from the repository root on the GPU machine, carrying .deps):
#   1. Builds the tree (tests included) and runs the grouped tests and the input-scale copy tests (tiles,
#      contiguous and masked API, graphs; #78's InputScaleTranspose.WideScaleRowsCopiedBeforeMidMPlans).
#   2. Timed plan sweeps (SWEEP_REPEAT=3, every tile) of the masked e = 256 cases the plan loses (0.67-0.96x
#      DeepGEMM in the twenty-fifth session; DeepGEMM runs the 128x192 pair there, our model 128x192 alone) and
#      the contiguous G = 4 x 1024 ones (0.79x on 128x128 at 4096 x 7168, 0.87x on 128x160 at 7168 x 2048; the
#      pair, DeepGEMM's tile, is ~1% behind in our model), with the input scales as the API's copy leaves them
#      (column-major): which tile each should get (bench/NOTES.md "Next" 0 (b)); and 8 x 1152 rows (9 row
#      blocks per group: the pair's tail units) beside 8 x 1024, where the pair's time against the tile alone
#      shows what a tail costs.
#   2b. Dense timed sweeps of 128x160, 128x192 and the 256x128 pair at three large-M shapes (issue 23: DeepGEMM's
#      tile there is the pair; our cost model's 256-row terms predate #58, #69 and the column-major copy).
#   3. SM cycles at a locked clock (ncu --clock-control base, the median of five launches) of the masked
#      plans with row-major against column-major scales (SWEEP_SCALE_A_COLMAJOR=1): whether #73's copy pays
#      for 128x192 single-CTA tiles (G = 64 x 256 at 4096 x 7168 ran 1070 us in s17 and 1217 in s22 on the
#      same plan), for 128x128 (1385 in s25) and the pair with tails (#74), and the grouped 128x192 pair on
#      groups one row late (SWEEP_OFFSET_SHIFT=1) as a control.
#   4. README's parallel ctest beside racecheck and memcheck on the grouped 128-row tiles (the pairs' tail units
#      and #76's idle warpgroups among them).
# Budget: PROBE_SECONDS (default 540) from the start; step 4 gets what is left. Results in $OUT:
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
  env "${env_vars[@]}" timeout 90 ncu --clock-control base -k regex:fp8_gemm --launch-skip 3 --launch-count 5 \
    --metrics sm__cycles_elapsed.max --csv "$sweep" "$@" 2>/dev/null | python3 -c '
import csv, statistics, sys
v = [float(r[-1].replace(",", "")) for r in csv.reader(sys.stdin)
     if len(r) > 3 and "fp8_gemm" in "".join(r) and r[-3] == "sm__cycles_elapsed.max"]
print(int(statistics.median(v)) if v else "none")'
}
ratio() { python3 -c "print(f'{$2 / $1:.4f}')" 2>/dev/null || echo "-"; }
for shape in 64,256,4096,7168 32,256,7168,2048 64,256,7168,2048; do
  [ "$(left)" -gt 300 ] || break
  SWEEP_REPEAT=3 SWEEP_SCALE_A_COLMAJOR=1 timeout 60 "$sweep" --masked "$shape" 2>&1 | grep -v "^$"
done
for shape in 4,1024,4096,7168 4,1024,7168,2048 8,1152,4096,7168; do
  [ "$(left)" -gt 300 ] || break
  SWEEP_REPEAT=3 SWEEP_SCALE_A_COLMAJOR=1 timeout 60 "$sweep" --grouped "$shape"
done
# Dense, for issue 23's tile question (DeepGEMM runs the 256x128 input-sharing pair on these; our model, fitted
# before #58 / #69 and the column-major copy, plans 128x160 / 128x192): the three tiles side by side.
for shape in 4096,7168,16384 2048,7168,16384 4096,24576,1536; do
  [ "$(left)" -gt 320 ] || break
  SWEEP_REPEAT=3 SWEEP_SCALE_A_COLMAJOR=1 SWEEP_TILES=128x160,128x192,256x128mc2a timeout 60 "$sweep" \
    --shape "$shape" 2>&1 | grep -v "^$"
done
echo "== timed sweeps done at $(elapsed) s"
printf "%-8s %-18s %-12s %12s %12s %8s %12s %8s\n" kind case tile row col col/row col+shift1 shift/col
for spec in "masked 64,256,4096,7168 128x128" "masked 64,256,4096,7168 128x192" "masked 64,256,4096,7168 128x192mc2" \
  "masked 64,256,7168,2048 128x128" "grouped 8,1024,4096,7168 128x192mc2"; do
  read -r kind shape tile <<<"$spec"
  [ "$(left)" -gt 200 ] || { echo "$spec: no time left"; continue; }
  arg=--shape
  [ "$kind" = grouped ] && arg=--grouped
  [ "$kind" = masked ] && arg=--masked
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
  --gtest_brief=1 --gtest_filter='Compiled/EveryGroupedTile.*T128x1*_offsets:Compiled/EveryGroupedTile.*x2_PerBlock_masked' \
  >"$OUT/san_racecheck.log" 2>&1 &
timeout "$(($(left) > 30 ? $(left) - 10 : 20))" compute-sanitizer --tool memcheck --error-exitcode 9 "$tests" \
  --gtest_brief=1 --gtest_filter='Compiled/EveryGroupedTile.*T128x1*_offsets:Compiled/EveryGroupedTile.*T128x1*PerRow_masked:GroupedContiguous.*:GroupedMasked.RowMajor*:GroupedMasked.PairPlans*' \
  >"$OUT/san_memcheck.log" 2>&1 &
wait
echo "== ctest"
grep -E "tests passed|tests failed|Failed|Timeout" "$OUT/probe_ctest.log" | tail -8
for tool in racecheck memcheck; do
  echo "== $tool"
  grep -E "PASSED|FAILED|SUMMARY|hazard" "$OUT/san_$tool.log" | tail -4
done
echo "== done at $(elapsed) s"
