#!/usr/bin/env bash
# A/B at a locked clock: builds blockgemm-plan-sweep from patched copies of the tree (scripts/ab_sweep.sh's
# variant syntax) and counts each variant's SM cycles per kernel under Nsight Compute (--clock-control base),
# so variants compare by their code path, not by the clock the power cap leaves them (timed A/B runs drift
# by up to 10% between rounds on one binary; bench/NOTES.md #57).
#
#   scripts/ab_cycles.sh "M,N,K,TILE ..." NAME=SPEC [NAME=SPEC ...]     e.g. "4096,4096,7168,256x128" base=:
#
# TILE as SWEEP_TILES takes it (256x128, 256x128mc2a, 128x160). Prints, per case and variant, the median over
# five profiled launches of sm__cycles_elapsed.max and the instructions executed; $OUT/cycles_NAME.csv holds
# ncu's rows. Run on the GPU machine; AB_JOBS as ab_sweep.sh.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
export PATH=${CUDA_HOME:-/usr/local/cuda}/bin:$PATH
cases=$1
shift
AB_ROUNDS=0 scripts/ab_sweep.sh "" "$@" >/dev/null
metrics=sm__cycles_elapsed.max,sm__inst_executed.sum,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active
printf "%-24s %-14s %12s %12s %8s\n" case variant cycles instructions gmma%
for case in $cases; do
  IFS=, read -r m n k tile <<<"$case"
  for variant in "$@"; do
    name=${variant%%=*}
    bin=/tmp/ab_$name/build/blockgemm-plan-sweep
    [ -x "$bin" ] || { echo "$name: not built"; continue; }
    csv=$OUT/cycles_${name}.csv
    SWEEP_TILES=$tile SWEEP_REPEAT=1 ncu --clock-control base -k regex:fp8_gemm --launch-skip 3 --launch-count 5 \
      --metrics "$metrics" --csv "$bin" --shape "$m,$n,$k" >"$csv.tmp" 2>&1 || echo "$name: ncu failed"
    { echo "# $case"; cat "$csv.tmp"; } >>"$csv"
    # ncu --csv rows: ..., "Metric Name", "Metric Unit", "Metric Value" (the last three cells).
    python3 - "$csv.tmp" "$case" "$name" <<'PY'
import csv, statistics, sys
values = {}
for row in csv.reader(open(sys.argv[1])):
    if len(row) > 3 and "fp8_gemm" in "".join(row):
        try:
            values.setdefault(row[-3], []).append(float(row[-1].replace(",", "")))
        except ValueError:
            pass
med = lambda key: statistics.median(values[key]) if values.get(key) else float("nan")
print(f"{sys.argv[2]:<24} {sys.argv[3]:<14} {med('sm__cycles_elapsed.max'):12.0f} "
      f"{med('sm__inst_executed.sum'):12.0f} "
      f"{med('sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active'):8.1f}")
PY
    rm -f "$csv.tmp"
  done
done
