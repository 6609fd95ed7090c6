#!/usr/bin/env bash
# Nsight Compute of our GEMM beside DeepGEMM's on the same operands, both at the same locked clock
# (--clock-control base), so that their cycle counts compare the code paths rather than the clock each one
# keeps under the power cap (issue 23). Run on the GPU machine after `scripts/device_bench.sh --setup-only`
# (which builds DeepGEMM into .peers-work/ and installs blockgemm):
#
#   scripts/ncu_vs_deepgemm.sh [--source] M,N,K[,TILE] ...   e.g. scripts/ncu_vs_deepgemm.sh 4096,4096,7168 4096,4096,7168,256x128
#
# TILE (optional) forces our tile as BLOCKGEMM_FORCE_TILE does. Writes $OUT/ncu_<M>x<N>x<K>[_TILE].csv (raw) and
# prints, per case, each kernel's duration, cycles, tensor-pipe activity, L2 and DRAM traffic, instructions.
# --source: instead, warp-stall sampling per SASS instruction (the SourceCounters section) into
# $OUT/ncu_src_<case>.ncu-rep, exported as ..._raw.csv and ..._sass.csv, and scripts/ncu_stalls.py's
# summary: each kernel's stall reasons and the instructions where its warps wait most (bench/NOTES.md #50).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source_mode=0
if [ "${1:-}" = --source ]; then
  source_mode=1
  shift
fi
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
export PATH=${CUDA_HOME:-/usr/local/cuda}/bin:$PATH
export PYTHONPATH=$PWD/.peers-work/site:$PWD/.peers-work/DeepGEMM${PYTHONPATH:+:$PYTHONPATH}
export DG_JIT_CACHE_DIR=${DG_JIT_CACHE_DIR:-$PWD/.peers-work/deepgemm-cache}
PYTHON=${PYTHON:-python3}
"$PYTHON" -c "import torch" 2>/dev/null || PYTHON=/opt/torch/.venv/bin/python
metrics=gpu__time_duration.sum,sm__cycles_elapsed.max,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active
metrics+=,lts__t_bytes.sum,lts__t_sectors_srcunit_tex.sum,lts__t_requests_srcunit_tex.sum,lts__t_sector_hit_rate.pct
metrics+=,lts__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,sm__inst_executed.sum
metrics+=,launch__grid_size,launch__registers_per_thread
for case in "$@"; do
  IFS=, read -r m n k tile <<<"$case"
  tag=${m}x${n}x${k}${tile:+_$tile}
  if [ "$source_mode" = 1 ]; then
    rep=$OUT/ncu_src_$tag
    BLOCKGEMM_FORCE_TILE=${tile:-} ncu --clock-control base -k regex:fp8_gemm --launch-skip 2 --launch-count 2 \
      --section WarpStateStats --section SourceCounters -f -o "$rep" \
      "$PYTHON" scripts/ncu_vs_deepgemm.py "$m" "$n" "$k" >"$rep.log" 2>&1 || echo "ncu failed for $tag (see $rep.log)"
    ncu --import "$rep.ncu-rep" --page raw --csv >"${rep}_raw.csv" 2>&1
    ncu --import "$rep.ncu-rep" --page source --print-source sass --csv >"${rep}_sass.csv" 2>&1
    echo "== $tag (warp-stall sampling)"
    grep -E "calc_diff" "$rep.log" | head -2
    "$PYTHON" scripts/ncu_stalls.py "${rep}_raw.csv" "${rep}_sass.csv" --top 30
    continue
  fi
  csv=$OUT/ncu_$tag.csv
  # The workload launches each GEMM twice (ours, then DeepGEMM's): skip the first pair, profile the second.
  BLOCKGEMM_FORCE_TILE=${tile:-} ncu --clock-control base -k regex:fp8_gemm --launch-skip 2 --launch-count 2 \
    --section SpeedOfLight --section WarpStateStats --metrics "$metrics" --csv \
    "$PYTHON" scripts/ncu_vs_deepgemm.py "$m" "$n" "$k" >"$csv" 2>&1 || echo "ncu failed for $tag (see $csv)"
  echo "== $tag"
  grep -E "calc_diff|==ERROR" "$csv" | head -3
  # CSV: ..., "Kernel Name" (5th), ..., "Metric Name", "Metric Unit", "Metric Value" (last three).
  grep fp8_gemm "$csv" | awk -F'","' '{ k = ($5 ~ /deep_gemm/) ? "deepgemm " : "blockgemm"; gsub(/"/, "", $NF);
      print k " | " $(NF-2) " | " $(NF-1) " | " $NF }' |
    grep -E "gpu__time|sm__cycles|gmma|lts__|dram__|inst_executed|grid_size|registers|Warp Cycles Per Issued|Eligible"
done
