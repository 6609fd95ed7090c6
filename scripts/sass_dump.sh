#!/usr/bin/env bash
# Disassembles one instantiation of the GEMM kernel (the local machine has no cuobjdump; the device has):
#
#   scripts/sass_dump.sh BLOCK_M BLOCK_N [MULTICAST] [SWAP_AB] [kPerBlock|kPerRow]
#     -> $OUT/sass_MxN[_mcK][_swap][_kPerRow].txt
#
# and prints ptxas's resource line (registers, spills) and counts of wgmmas and cluster-id reads; $OUT/..._waits.txt
# lists each mbarrier test with the instructions issued before its result is needed (scripts/sass_waits.py).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
m=$1 n=$2 mc=${3:-1} swap=${4:-false} scale=${5:-kPerBlock}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
name=sass_${m}x${n}
[ "$mc" != 1 ] && name+=_mc$mc
[ "$swap" = true ] && name+=_swap
[ "$scale" != kPerBlock ] && name+=_$scale
cat >"$tmp/one.cu" <<CU
#include "kernels/fp8_gemm_1d2d.cuh"
namespace blockgemm::kernels {
template __global__ void fp8_gemm_1d2d_kernel<GemmConfig<$m, $n, $mc, $swap, WeightScaleKind::$scale, __nv_bfloat16>>(
    const __grid_constant__ CUtensorMap, const __grid_constant__ CUtensorMap, const __grid_constant__ CUtensorMap,
    const GemmParams);
}
CU
nvcc -Iinclude -Isrc -O3 --generate-code=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -std=c++17 \
  -cubin -Xptxas -v "$tmp/one.cu" -o "$tmp/one.cubin" >"$tmp/ptxas.log" 2>&1 || { cat "$tmp/ptxas.log"; exit 1; }
grep -E "registers|spill" "$tmp/ptxas.log" || true
cuobjdump -sass "$tmp/one.cubin" >"$tmp/raw.txt"
# Each mbarrier test and how many instructions run before its result is needed (bench/NOTES.md #77).
scripts/sass_waits.py <"$tmp/raw.txt" >"$OUT/${name}_waits.txt" || true
grep -E "^\s+/\*[0-9a-f]{4}\*/" "$tmp/raw.txt" | sed -E 's#^\s+/\*([0-9a-f]+)\*/\s+#\1 #; s#\s*/\*.*##; s#;##' \
  >"$OUT/$name.txt"
echo "$name.txt: $(wc -l <"$OUT/$name.txt") instructions;" \
  "$(grep -c QGMMA "$OUT/$name.txt") QGMMA, $(grep -c 'SR_CgaCtaId' "$OUT/$name.txt") reads of SR_CgaCtaId"
