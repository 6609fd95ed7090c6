#!/usr/bin/env bash
# README's main job: builds blockgemm and runs the benchmark (DeepSeek-V3 suite by default; extra arguments
# go to blockgemm-bench, e.g. --shapes 4096x7168x16384 --warm-seconds 1.5) on the GPU, writing
# bench/results/latest.json and a table to stdout. By default both timing protocols run (burst, and steady
# state for M >= 512 after 1 s of replays per backend), two rounds in alternating backend order: about
# 1.5 minutes of steady-state replays on top of the burst suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
export PATH=/usr/local/cuda/bin:$PATH
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKGEMM_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target blockgemm-bench
mkdir -p bench/results
build/blockgemm-bench --json bench/results/latest.json "$@"
