#!/usr/bin/env bash
# One device call for bench/NOTES.md "Next" 0 (run from the repository root on the GPU machine, carrying .deps):
#   1. SM cycles at a locked clock (scripts/ab_cycles.sh) of the head and experiment patches 54, 57 and 62 on
#      the large-M shapes; the head has no 128x256 tile, so its 128x256 rows fail by design.
#   2. CTA 0's timeline (patch 54, SWEEP_TIMELINE=1) of the 256x128 pair and 128x160 at 4096x4096x7168.
#   3. The GPU tests of patch 62's tile in its own tree, then racecheck on them.
# ~3 minutes on an H100 (eighteenth session: 162 s). Results in $OUT: experiments_probe.log, cycles_raw.tgz, p62_tests_build.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/experiments_probe.log") 2>&1
t0=$(date +%s)
elapsed() { echo $(($(date +%s) - t0)); }
export PATH=${CUDA_HOME:-/usr/local/cuda}/bin:$PATH
E=bench/experiments
OUT=/tmp/experiments_cycles AB_JOBS=3 timeout 330 scripts/ab_cycles.sh \
  "4096,4096,7168,256x128mc2a 4096,4096,7168,128x160 4096,7168,16384,128x160 4096,4096,7168,128x256 4096,7168,16384,128x256" \
  base=: p54=@$E/54_timeline_of_cta0.patch p57=@$E/57_unroll_math_k_loop.patch \
  p62=@$E/62_a_from_registers_128x256.patch
echo "== cycles done at $(elapsed) s"
tar czf "$OUT/cycles_raw.tgz" -C /tmp experiments_cycles 2>/dev/null
if [ -x /tmp/ab_p54/build/blockgemm-plan-sweep ]; then
  SWEEP_TIMELINE=1 SWEEP_TILES=256x128mc2a,128x160 SWEEP_REPEAT=1 timeout 60 \
    /tmp/ab_p54/build/blockgemm-plan-sweep --shape 4096,4096,7168 | grep -A14 "timeline of CTA 0"
fi
echo "== timeline done at $(elapsed) s"
d=/tmp/ab_p62
if [ -d "$d" ]; then
  cmake -S "$d" -B "$d/build" -G Ninja -DBLOCKGEMM_BUILD_TESTS=ON -DBLOCKGEMM_GTEST_SOURCE="$PWD/.deps/googletest" \
    >/dev/null 2>&1
  timeout 200 cmake --build "$d/build" -j 16 >"$OUT/p62_tests_build.log" 2>&1
  echo "== p62 tests built (status $?) at $(elapsed) s"
  filter='Compiled/EveryTileShape.MatchesReference/12?:Compiled/TwoBlockWeightScale.EveryOffsetMatchesReference/T128x256x1:AFromRegisters.*'
  timeout 90 "$d/build/tests/blockgemm_gpu_tests" --gtest_filter="$filter" 2>&1 | grep -E "^\[ +(OK|FAILED|PASSED|SKIPPED) |calc_diff|Failure" | tail -30
  timeout 120 compute-sanitizer --tool racecheck "$d/build/tests/blockgemm_gpu_tests" --gtest_filter='AFromRegisters.*' 2>&1 |
    grep -E "PASSED|FAILED|SUMMARY" | tail -3
fi
echo "== done at $(elapsed) s"
