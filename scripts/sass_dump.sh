#!/usr/bin/env bash
# Disassembles one instantiation of the GEMM kernel (the local machine has no cuobjdump; the device has):
#
#   scripts/sass_dump.sh BLOCK_M BLOCK_N [MULTICAST] [SWAP_AB] [kPerBlock|kPerRow]   -> $OUT/sass_MxN.txt
#
# and prints ptxas's resource line and the instruction count of the longest stretch between wgmma waits.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
m=$1 n=$2 mc=${3:-1} swap=${4:-false} scale=${5:-kPerBlock}
tmp=$(mktemp -d)
cat >"$tmp/one.cu" <<CU
#include "kernels/fp8_gemm_1d2d.cuh"
namespace blockgemm::kernels {
template __global__ void fp8_gemm_1d2d_kernel<GemmConfig<$m, $n, $mc, $swap, WeightScaleKind::$scale, __nv_bfloat16>>(
    const __grid_constant__ CUtensorMap, const __grid_constant__ CUtensorMap, const __grid_constant__ CUtensorMap,
    const GemmParams);
}
CU
nvcc -Iinclude -Isrc -O3 --generate-code=arch=compute_90a,code=sm_90a --expt-relaxed-constexpr -std=c++17 \
  -cubin -Xptxas -v "$tmp/one.cu" -o "$tmp/one.cubin" 2>&1 | grep -E "registers|spill" || true
cuobjdump -sass "$tmp/one.cubin" | grep -E "^\s+/\*[0-9a-f]{4}\*/" | sed -E 's#^\s+/\*([0-9a-f]+)\*/\s+#\1 #; s#\s*/\*.*##; s#;##' \
  >"$OUT/sass_${m}x${n}.txt"
echo "sass_${m}x${n}.txt: $(wc -l <"$OUT/sass_${m}x${n}.txt") instructions;" \
  "$(grep -c QGMMA "$OUT/sass_${m}x${n}.txt") QGMMA, $(grep -c 'SR_CgaCtaId' "$OUT/sass_${m}x${n}.txt") reads of SR_CgaCtaId"
rm -rf "$tmp"
