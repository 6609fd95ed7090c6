#!/usr/bin/env bash
# Issue 23's next device call in one command (bench/NOTES.md "Next" 0, #50-#54): run on the GPU machine from
# the repository root with .peers and .deps carried. In one call of ~10 minutes:
#   1. DeepGEMM built into .peers-work/ (scripts/device_bench.sh --setup-only --no-warmup), in the background
#      beside 2.
#   2. blockgemm-plan-sweep built from the head and from each experiment patch 51-55 and from 51 + 52 + 53 + 55 together (scripts/ab_sweep.sh), then
#      timed on the large-M shapes, variants taking turns; patch 54 prints CTA 0's timeline per plan.
#   3. scripts/ncu_vs_deepgemm.sh --source on 4096x4096x7168 (warp-stall sampling per SASS instruction, ours
#      and DeepGEMM's) while the call has time left.
# Results in $OUT: ab_*.txt, ncu_src_*, large_m_probe.log. Environment: OUT, CALL_LIMIT_S (default 580).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/large_m_probe.log") 2>&1
t0=$(date +%s)
elapsed() { echo $(($(date +%s) - t0)); }
limit=${CALL_LIMIT_S:-580}
export PATH=${CUDA_HOME:-/usr/local/cuda}/bin:$PATH

(OUT=/tmp/probe_setup JOBS=6 CALL_LIMIT_S=300 scripts/device_bench.sh --setup-only --no-warmup >/dev/null 2>&1
  echo "setup status $? at $(elapsed) s" >/tmp/probe_setup.status) &
setup_pid=$!

experiments=bench/experiments
SWEEP_TILES=${SWEEP_TILES:-256x128mc2a,256x128,128x160} SWEEP_REPEAT=${SWEEP_REPEAT:-3} SWEEP_TIMELINE=1 \
  AB_ROUNDS=2 AB_JOBS=3 OUT=$OUT timeout $((limit - 200)) scripts/ab_sweep.sh \
  "--shape 4096,4096,7168 --shape 4096,7168,16384 --shape 2048,8192,28672 --shape 4096,7168,2048" \
  base=: p51=@$experiments/51_release_per_warp_without_syncwarp.patch \
  p52=@$experiments/52_whole_tile_staging_256_rows.patch \
  p53=@$experiments/53_input_scales_in_boxes_256_rows.patch p54=@$experiments/54_timeline_of_cta0.patch \
  p55=@$experiments/55_math_warpgroups_start_tiles_together.patch \
  p51_52_53_55=@$experiments/51_release_per_warp_without_syncwarp.patch,$experiments/52_whole_tile_staging_256_rows.patch,$experiments/53_input_scales_in_boxes_256_rows.patch,$experiments/55_math_warpgroups_start_tiles_together.patch
echo "== A/B done at $(elapsed) s"
grep -A14 "timeline of CTA 0" "$OUT/ab_p54.txt" 2>/dev/null | head -60

wait "$setup_pid"
cat /tmp/probe_setup.status 2>/dev/null
if [ $((limit - $(elapsed))) -gt 120 ]; then
  OUT=$OUT timeout $((limit - $(elapsed) - 10)) scripts/ncu_vs_deepgemm.sh --source 4096,4096,7168
fi
echo "== done at $(elapsed) s"
