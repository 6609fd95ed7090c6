#!/usr/bin/env bash
# Runs one GEMM plan under seconds of steady load and samples the card's SM clock, power and throttle
# reasons every 50 ms (nvidia-smi), to tell a power-limited kernel from one limited by its own schedule.
#
#   scripts/clock_under_load.sh M,N,K BLOCK_MxBLOCK_N [REPEATS]   -> $OUT/clock_<tile>.csv, printed summary
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
shape=$1 tile=$2 repeats=${3:-100}
build=build-profile
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKGEMM_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target blockgemm-plan-sweep >/dev/null
log=$OUT/clock_$tile.csv
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv,noheader -lms 50 >"$log" &
smi=$!
trap 'kill $smi 2>/dev/null || true' EXIT
SWEEP_TILES=$tile SWEEP_REPEAT=$repeats "$build/blockgemm-plan-sweep" --shape "$shape" | cut -c1-150
sleep 0.2
kill $smi 2>/dev/null || true
# Samples under load: power above 300 W.
awk -F', ' '$3 + 0 > 300 {n++; clk += $2; pw += $3; if ($5 != "0x0000000000000000") thr[$5]++}
  END {if (n) printf "under load: %d samples, mean SM clock %.0f MHz, mean power %.0f W\n", n, clk / n, pw / n;
       else print "no sample above 300 W: too short a run for the card to heat up (raise REPEATS)";
       for (t in thr) printf "  throttle reasons %s in %d samples\n", t, thr[t]}' "$log"
