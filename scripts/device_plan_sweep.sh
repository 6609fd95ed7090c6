#!/usr/bin/env bash
# Times every plan (blockgemm-plan-sweep, SWEEP_ALL) on the DeepSeek-V3 projections and 16 other models'
# (N, K) pairs, for calibrating src/heuristics on a Hopper machine in one device call:
#   small: M = 32 / 16 / 24, normal tiles included below M = 32 (SWEEP_NORMAL_ALL_M) to check the swapAB rule
#   mid:   M = 128 / 64 / 256 / 48 / 96 / 192 on the other models' pairs
# Each part is cut off by its own time limit, so a slow part still leaves the shapes it finished in $OUT.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
gtest_src=/usr/src/googletest
[ -d "$gtest_src" ] || gtest_src=$PWD/.deps/googletest
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKGEMM_GTEST_SOURCE="$gtest_src" >"$OUT/cfg.log" 2>&1
cmake --build build-gpu -j "$(nproc)" --target blockgemm-plan-sweep >"$OUT/build.log" 2>&1 ||
  { tail -30 "$OUT/build.log"; exit 1; }
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader

pairs_suite="2112,7168 576,7168 24576,1536 32768,512 7168,16384 4096,7168 7168,2048"
pairs_other="6144,4096 4096,4096 28672,4096 4096,14336 10240,8192 8192,8192 57344,8192 8192,28672 \
4608,3584 3584,3584 37888,3584 3584,18944 1536,2048 2048,768 35840,5120 5120,17920"
small=() mid=()
for m in ${SMALL_M:-32 16 24}; do for p in $pairs_other $pairs_suite; do small+=(--shape "$m,$p"); done; done
for m in ${MID_M:-128 64 256 48 96 192}; do for p in $pairs_other; do mid+=(--shape "$m,$p"); done; done

date -u
SWEEP_ALL=1 SWEEP_NORMAL_ALL_M=1 timeout "${SMALL_LIMIT_S:-330}" build-gpu/blockgemm-plan-sweep "${small[@]}" \
  >"$OUT/sweep_small_m.txt" 2>&1
echo "small: rc=$? $(grep -c heuristic "$OUT/sweep_small_m.txt") shapes"; date -u
SWEEP_ALL=1 timeout "${MID_LIMIT_S:-200}" build-gpu/blockgemm-plan-sweep "${mid[@]}" >"$OUT/sweep_mid_m.txt" 2>&1
echo "mid: rc=$? $(grep -c heuristic "$OUT/sweep_mid_m.txt") shapes"; date -u
