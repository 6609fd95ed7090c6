#!/usr/bin/env bash
# README's main job: builds blockgemm and runs the benchmark (DeepSeek-V3 suite by default; extra arguments
# go to blockgemm-bench) on the GPU, writing bench/results/latest.json and a table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
export PATH=/usr/local/cuda/bin:$PATH
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKGEMM_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" --target blockgemm-bench
mkdir -p bench/results
build/blockgemm-bench --json bench/results/latest.json "$@"
