#!/usr/bin/env bash
# One device call for bench/NOTES.md "Next" 0 (run from the repository root on the GPU machine, carrying .deps):
#   1. SM cycles at a locked clock (scripts/ab_cycles.sh) of the head and experiment patches 65 (one `empty`
#      arrival per warp) and 65b (one per warpgroup after a named barrier) on the large-M tiles.
#   2. `blockgemm-plan-sweep --masked`: every grouped tile on the masked layout with the benchmark's count
#      spread (#66: which token tile the decode shapes want when counts exceed the expected M).
#   3. The GPU tests (README's parallel ctest) of the tree that won 1. on the pair (p65b if > 1% fewer
#      cycles than the head, else p65 if so, else the head), then racecheck, synccheck and memcheck on
#      `SharedInputTile.*` and `InputScaleTranspose.*` (racecheck is the question for p65 / p65b:
#      experiment 6 saw it report hazards with one arrival per warp after __syncwarp).
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
OUT=/tmp/experiments_cycles AB_JOBS=6 timeout $((budget * 55 / 100)) scripts/ab_cycles.sh \
  "4096,4096,7168,256x128mc2a 4096,7168,16384,128x160 4096,4096,7168,128x160 4096,2112,7168,128x192" \
  base=: p65=@$E/65_one_release_per_warp.patch p65b=@$E/65b_one_release_per_warpgroup.patch
echo "== cycles done at $(elapsed) s"
tar czf "$OUT/cycles_raw.tgz" -C /tmp experiments_cycles 2>/dev/null
SWEEP_REPEAT=3 timeout 80 /tmp/ab_base/build/blockgemm-plan-sweep --masked 8,16,4096,7168 \
  --masked 8,64,4096,7168 --masked 8,256,4096,7168 --masked 32,64,7168,2048
echo "== masked sweep done at $(elapsed) s"
# The pair's median cycles (the first case in each variant's CSV).
winner=$(python3 - <<'PY'
import csv, statistics
def cycles(name):
    values = []
    try:
        rows = list(csv.reader(open(f"/tmp/experiments_cycles/cycles_{name}.csv")))
    except OSError:
        return float("inf")
    for row in rows:
        if len(row) > 3 and row[-3] == "sm__cycles_elapsed.max" and "fp8_gemm" in "".join(row):
            values.append(float(row[-1].replace(",", "")))
    return statistics.median(values[:5]) if values else float("inf")
base = cycles("base")
print(next((v for v in ("p65b", "p65") if cycles(v) < 0.99 * base), "base"))
PY
)
winner=${winner:-base}
d=/tmp/ab_$winner
echo "== GPU tests of $winner at $(elapsed) s"
cmake -S "$d" -B "$d/build" -G Ninja -DBLOCKGEMM_BUILD_TESTS=ON -DBLOCKGEMM_GTEST_SOURCE="$PWD/.deps/googletest" \
  >/dev/null 2>&1
timeout $(($(left) > 200 ? 200 : $(left))) cmake --build "$d/build" -j 16 >"$OUT/probe_build.log" 2>&1
echo "== built (status $?) at $(elapsed) s"
t=$(left)
(cd "$d/build" && timeout $((t > 160 ? 150 : t - 10)) ctest -j 16 2>&1 | tail -4)
for tool in racecheck synccheck memcheck; do
  t=$(left)
  [ "$t" -gt 20 ] || { echo "$tool: no time left"; continue; }
  timeout "$t" compute-sanitizer --tool "$tool" "$d/build/tests/blockgemm_gpu_tests" \
    --gtest_filter='SharedInputTile.*:InputScaleTranspose.*' 2>&1 | grep -E "PASSED|FAILED|SUMMARY|hazard" | tail -4
  echo "== $tool at $(elapsed) s"
done
echo "== done at $(elapsed) s"
