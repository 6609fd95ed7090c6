#!/usr/bin/env bash
# Device-side profile of one GEMM plan: Nsight Compute's stall sampling per SASS instruction, warp states,
# pipe and memory utilisation for the first launch of the chosen tile, plus the SM clock and power the card
# held while the same plan ran unprofiled (nvidia-smi, 100 ms samples).
#
#   scripts/ncu_profile.sh M,N,K BLOCK_MxBLOCK_N      e.g. scripts/ncu_profile.sh 4096,7168,16384 128x160
#
# Writes $OUT/ncu_<tile>.ncu-rep, ncu_<tile>_details.txt, ncu_<tile>_sass.csv and clocks_<tile>.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
shape=$1 tile=$2
build=build-profile
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKGEMM_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target blockgemm-plan-sweep >/dev/null
sweep=$build/blockgemm-plan-sweep
export SWEEP_TILES=$tile SWEEP_ALL=1

nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv -lms 100 \
  >"$OUT/clocks_$tile.csv" &
smi=$!
trap 'kill $smi 2>/dev/null || true' EXIT
"$sweep" --shape "$shape" --shape "$shape"
kill $smi 2>/dev/null || true

# The sweep times several graph replays; one profiled launch is enough (they are all the same kernel).
ncu --clock-control none -k regex:fp8_gemm_1d2d --launch-count 1 \
  --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
  --section WarpStateStats --section SchedulerStats --section SourceCounters --section LaunchStats \
  --metrics sm__cycles_elapsed.avg.per_second,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,lts__t_sectors_srcunit_tex.sum,lts__t_requests_srcunit_tex.sum,lts__t_sector_hit_rate.pct \
  -f -o "$OUT/ncu_$tile" "$sweep" --shape "$shape" >"$OUT/ncu_${tile}_run.log" 2>&1 || tail -20 "$OUT/ncu_${tile}_run.log"
ncu --import "$OUT/ncu_$tile.ncu-rep" --page details >"$OUT/ncu_${tile}_details.txt"
ncu --import "$OUT/ncu_$tile.ncu-rep" --page source --csv --print-source sass >"$OUT/ncu_${tile}_sass.csv" || true
grep -E "Duration|SM Frequency|Tensor|L2 Hit|Throughput|Stall|Issued Warp|Eligible|Active Warps" \
  "$OUT/ncu_${tile}_details.txt" | head -60
