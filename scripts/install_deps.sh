#!/usr/bin/env bash
# Installs what building blockgemm needs, only where it is missing: CMake, Ninja, a C++17 compiler and
# (with --tests) GoogleTest, from Debian/Ubuntu packages. The CUDA toolkit (nvcc, cuBLASLt) must already
# be there. On a machine without network (the device) nothing is installed: everything must be present.
set -euo pipefail
export PATH=/usr/local/cuda/bin:$PATH
need_gtest=0
[ "${1:-}" = "--tests" ] && need_gtest=1
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || missing+=(ninja-build)
if ! command -v g++ >/dev/null && ! command -v c++ >/dev/null && [ -z "${CXX:-}" ]; then missing+=(g++); fi
if [ "$need_gtest" = 1 ] && [ ! -d /usr/src/googletest ] && [ ! -d "$(dirname "$0")/../.deps/googletest" ]; then
  missing+=(googletest)
fi
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
