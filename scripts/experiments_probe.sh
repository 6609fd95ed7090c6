#!/usr/bin/env bash
# One device call for bench/NOTES.md "Next" 0 (run from the repository root on the GPU machine, carrying .deps):
#   1. SM cycles at a locked clock (scripts/ab_cycles.sh) of the head and patch 57b (the 256-row tiles' K
#      loop unrolled by two) on the 256x128 tiles.
#   2. The same for patches 67 (M-contiguous input scales as one bulk copy per stage, by the scale warp, tiles
#      below 256 rows) and 68 (the same copy issued by the TMA thread, every dense normal tile, the scale warp
#      left with the weight scales) with column-major input scales (SWEEP_SCALE_A_COLMAJOR=1) on 128x160,
#      128x192 and the 256x128 pair.
#   3. `blockgemm-plan-sweep --masked`: the grouped decode plans of #66 against every tile.
#   4. If 68 won by > 1% on the pair or 128x160: its GPU tests (README's parallel ctest) and the three
#      sanitizers on the tests that run column-major scales through every tile.
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
OUT=/tmp/cycles_57b AB_JOBS=8 timeout $((budget * 30 / 100)) scripts/ab_cycles.sh \
  "4096,4096,7168,256x128mc2a 4096,7168,2048,256x128mc2a" base=: p57b=@$E/57b_unroll_2_in_256_row_tiles.patch
echo "== 57b cycles done at $(elapsed) s"
SWEEP_SCALE_A_COLMAJOR=1 OUT=/tmp/cycles_67 AB_JOBS=8 timeout $((budget * 35 / 100)) scripts/ab_cycles.sh \
  "4096,7168,16384,128x160 4096,4096,7168,128x160 2050,4096,7168,128x192 4096,4096,7168,256x128mc2a 4096,7168,2048,256x128mc2a" \
  base=: p67=@$E/67_bulk_copy_of_m_contiguous_input_scales.patch p68=@$E/68_input_scales_bulk_copied_by_the_tma_thread.patch
echo "== 67 / 68 cycles done at $(elapsed) s"
tar czf "$OUT/cycles_raw.tgz" -C /tmp cycles_57b cycles_67 2>/dev/null
SWEEP_REPEAT=3 timeout 80 /tmp/ab_base/build/blockgemm-plan-sweep --masked 8,16,4096,7168 \
  --masked 32,64,7168,2048 --masked 64,256,4096,7168
echo "== masked sweep done at $(elapsed) s"
won=$(python3 - <<'PY'
import csv, statistics
def cycles(name):
    # Per case (rows follow "# case" markers): the median of the profiled launches.
    out, case = {}, None
    try:
        rows = list(csv.reader(open(f"/tmp/cycles_67/cycles_{name}.csv")))
    except OSError:
        return out
    for row in rows:
        if row and row[0].startswith("# "):
            case = ",".join(row)[2:]
        elif len(row) > 3 and row[-3] == "sm__cycles_elapsed.max" and "fp8_gemm" in "".join(row):
            out.setdefault(case, []).append(float(row[-1].replace(",", "")))
    return {c: statistics.median(v[:5]) for c, v in out.items()}
base, p68 = cycles("base"), cycles("p68")
gains = [c for c in ("4096,4096,7168,256x128mc2a", "4096,7168,16384,128x160")
         if c in base and c in p68 and p68[c] < 0.99 * base[c]]
print("yes" if gains else "no")
PY
)
echo "== p68 won on the pair or 128x160: ${won:-no}"
if [ "${won:-no}" = yes ]; then
  d=/tmp/ab_p68
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
      --gtest_filter='InputScaleTranspose.*:SharedInputTile.*' 2>&1 |
      grep -E "PASSED|FAILED|SUMMARY|hazard" | tail -4
    echo "== $tool at $(elapsed) s"
  done
fi
echo "== done at $(elapsed) s"
