#!/usr/bin/env bash
# One device call for bench/NOTES.md "Next" 0 (run from the repository root on the GPU machine, carrying .deps):
#   1. SM cycles at a locked clock (scripts/ab_cycles.sh) of the head with row-major input scales on the
#      256x128 pair (the layout its users' quantizer returns: the reference for step 2).
#   2. The same with column-major input scales (SWEEP_SCALE_A_COLMAJOR=1) for the head and patch 69 (the
#      256-row tiles' input scales as one bulk copy by the TMA thread, where M % 4 = 0).
#   3. Timed plan sweeps, row-major against column-major input scales, of the tiles the API does not copy
#      scales for (128x192, 128x128, the pair): with #67 landed, where a copy (~2-3 us) would now repay.
#   4. Grouped contiguous sweeps with column-major input scales, the head against patch 70 (#67's bulk copy
#      in the grouped tiles), alternating.
#   5. If 69 won by > 1% on the pair: its GPU tests (README's parallel ctest) and the three sanitizers on
#      the tests that run column-major scales through the 256-row tiles.
# Budget: PROBE_SECONDS (default 560) from the start; each step stops at its share. Results in $OUT:
# experiments_probe.log, cycles_raw.tgz, probe_build.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/experiments_probe.log") 2>&1
t0=$(date +%s)
budget=${PROBE_SECONDS:-560}
elapsed() { echo $(($(date +%s) - t0)); }
left() { echo $((budget - $(date +%s) + t0)); }
export PATH=${CUDA_HOME:-/usr/local/cuda}/bin:$PATH
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit --format=csv
E=bench/experiments
pair_cases="4096,4096,7168,256x128mc2a 4096,7168,2048,256x128mc2a 4096,7168,16384,256x128mc2a"
OUT=/tmp/cycles_row AB_JOBS=8 timeout $((budget * 20 / 100)) scripts/ab_cycles.sh "$pair_cases" base=:
echo "== row-major cycles done at $(elapsed) s"
SWEEP_SCALE_A_COLMAJOR=1 OUT=/tmp/cycles_col AB_JOBS=8 timeout $((budget * 30 / 100)) scripts/ab_cycles.sh \
  "$pair_cases" base=: p69=@$E/69_tma_thread_scales_in_256_row_tiles.patch
echo "== column-major cycles done at $(elapsed) s"
tar czf "$OUT/cycles_raw.tgz" -C /tmp cycles_row cycles_col 2>/dev/null
for layout in row col; do
  colmajor=()
  [ "$layout" = col ] && colmajor=(SWEEP_SCALE_A_COLMAJOR=1)
  env "${colmajor[@]}" SWEEP_REPEAT=3 \
    SWEEP_TILES=128x192,128x128,256x128mc2a timeout 40 /tmp/ab_base/build/blockgemm-plan-sweep \
    --shape 2048,4096,7168 --shape 1024,7168,16384 --shape 4096,2112,7168 2>&1 | sed "s/^/$layout /"
done
echo "== layout sweep done at $(elapsed) s"
AB_ROUNDS=0 AB_JOBS=8 timeout 150 scripts/ab_sweep.sh "" p70=@$E/70_bulk_scales_in_grouped_tiles.patch >/dev/null 2>&1
for variant in base p70 base p70; do
  SWEEP_SCALE_A_COLMAJOR=1 SWEEP_REPEAT=2 timeout 45 /tmp/ab_$variant/build/blockgemm-plan-sweep \
    --grouped 8,1024,4096,7168 --grouped 8,1024,7168,2048 2>&1 | sed "s/^/$variant /"
done
echo "== grouped sweep done at $(elapsed) s"
won=$(python3 - <<'PY'
import csv, statistics
def cycles(name):
    # Per case (rows follow "# case" markers): the median of the profiled launches.
    out, case = {}, None
    try:
        rows = list(csv.reader(open(f"/tmp/cycles_col/cycles_{name}.csv")))
    except OSError:
        return out
    for row in rows:
        if row and row[0].startswith("# "):
            case = ",".join(row)[2:]
        elif len(row) > 3 and row[-3] == "sm__cycles_elapsed.max" and "fp8_gemm" in "".join(row):
            out.setdefault(case, []).append(float(row[-1].replace(",", "")))
    return {c: statistics.median(v[:5]) for c, v in out.items()}
base, p69 = cycles("base"), cycles("p69")
gains = [c for c in base if c in p69 and p69[c] < 0.99 * base[c]]
print("yes" if gains else "no")
PY
)
echo "== p69 won on the pair: ${won:-no}"
if [ "${won:-no}" = yes ]; then
  d=/tmp/ab_p69
  cmake -S "$d" -B "$d/build" -G Ninja -DBLOCKGEMM_BUILD_TESTS=ON -DBLOCKGEMM_GTEST_SOURCE="$PWD/.deps/googletest" \
    >/dev/null 2>&1
  timeout $(($(left) > 200 ? 200 : $(left))) cmake --build "$d/build" -j 16 >"$OUT/probe_build.log" 2>&1
  echo "== built (status $?) at $(elapsed) s"
  t=$(left)
  (cd "$d/build" && timeout $((t > 160 ? 150 : t - 10)) ctest -j 16 2>&1 | grep -E "tests passed|tests failed|\(Failed\)")
  for tool in racecheck synccheck memcheck; do
    t=$(left)
    [ "$t" -gt 20 ] || { echo "$tool: no time left"; continue; }
    timeout "$t" compute-sanitizer --tool "$tool" "$d/build/tests/blockgemm_gpu_tests" \
      --gtest_filter='SharedInputTile.*:TwoWaveTiles.*' 2>&1 |
      grep -E "PASSED|FAILED|SUMMARY|hazard" | tail -4
    echo "== $tool at $(elapsed) s"
  done
fi
echo "== done at $(elapsed) s"
