#!/usr/bin/env bash
# A/B tuning aid for the device: builds blockgemm-plan-sweep from patched copies of the tree, side by side,
# and runs the same shapes on each, so variants are compared on one machine in one call.
#
#   scripts/ab_sweep.sh "--shape M,N,K ..." NAME=FILE:SED_EXPR [NAME=FILE:SED_EXPR ...]
#
# NAME "base" with an empty FILE:SED_EXPR (e.g. base=:) is the tree as it is. Output: $OUT/ab_NAME.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
shapes=$1
shift
for variant in "$@"; do
  name=${variant%%=*} spec=${variant#*=}
  file=${spec%%:*} expr=${spec#*:}
  dir=/tmp/ab_$name
  rm -rf "$dir" && mkdir -p "$dir"
  tar --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$dir"
  if [ -n "$file" ]; then
    sed -i -E "$expr" "$dir/$file"
    diff -q "$dir/$file" "$file" >/dev/null && { echo "$name: sed changed nothing in $file"; continue; }
  fi
  ( cmake -S "$dir" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKGEMM_BUILD_TESTS=OFF \
      >/dev/null && cmake --build "$dir/build" -j "$(nproc)" --target blockgemm-plan-sweep >"$OUT/build_$name.log" 2>&1 ) &
done
wait
for variant in "$@"; do
  name=${variant%%=*}
  bin=/tmp/ab_$name/build/blockgemm-plan-sweep
  [ -x "$bin" ] || { echo "$name: build failed"; tail -20 "$OUT/build_$name.log"; continue; }
  rm -f "$OUT/build_$name.log"
  # shellcheck disable=SC2086
  SWEEP_ALL=1 "$bin" $shapes >"$OUT/ab_$name.txt" 2>&1
  echo "== $name"; grep -v '^        ' "$OUT/ab_$name.txt" | cut -c1-110
done
