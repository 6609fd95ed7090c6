#!/usr/bin/env bash
# Installs what building blockgemm needs, only where it is missing: CMake, Ninja, a C++17 compiler and
# GoogleTest from Debian/Ubuntu packages; the CUDA toolkit (nvcc, cuBLASLt) must already be there.
set -euo pipefail
export PATH=/usr/local/cuda/bin:$PATH
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja-build)
command -v g++ >/dev/null || missing+=(g++)
[ -d /usr/src/googletest ] || [ -d "$(dirname "$0")/../.deps/googletest" ] || missing+=(googletest)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing ${missing[*]} and cannot apt-get install them here" >&2
    exit 1
  fi
fi
if ! command -v nvcc >/dev/null; then
  echo "nvcc not found: install the CUDA toolkit (13.0) under /usr/local/cuda" >&2
  exit 1
fi
