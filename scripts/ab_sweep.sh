#!/usr/bin/env bash
# A/B tuning aid for the device: builds blockgemm-plan-sweep from patched copies of the tree, side by side,
# and runs the same shapes on each, so variants are compared on one machine in one call.
#
#   scripts/ab_sweep.sh "--shape M,N,K ..." NAME=FILE:SED_EXPR [NAME=@PATCH] [NAME=FILE:SED_EXPR ...]
#
# NAME "base" with an empty FILE:SED_EXPR (e.g. base=:) is the tree as it is; NAME=@PATCH applies a unified
# diff (`patch -p1`) instead of a sed expression, NAME=@PATCH1,PATCH2,... several in that order. Output: $OUT/ab_NAME.txt. The sweep's environment
# (SWEEP_TILES, SWEEP_SCALE_A_COLMAJOR, ...) passes through; SWEEP_ALL is always on.
# AB_TARGET=blockgemm-bench builds and runs the benchmark instead (one --shape at a time, AB_ARGS appended,
# e.g. AB_ARGS="--no-baselines --paths fp8,bf16-fp8"), for what the sweep cannot time (the bf16 paths).
# AB_JOBS: compile jobs per variant (default: all cores; the variants build at the same time).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-$PWD/.out}
mkdir -p "$OUT"
shapes=$1
shift
target=${AB_TARGET:-blockgemm-plan-sweep}
for variant in "$@"; do
  name=${variant%%=*} spec=${variant#*=}
  file=${spec%%:*} expr=${spec#*:}
  dir=/tmp/ab_$name
  rm -f "$OUT/ab_$name.txt"
  rm -rf "$dir" && mkdir -p "$dir"
  tar --exclude='./build*' --exclude=./.git --exclude=./.peers --exclude=./.peers-work --exclude=./.out -cf - . | tar -xf - -C "$dir"
  if [ "${spec:0:1}" = "@" ]; then
    applied=1
    IFS=, read -r -a patches <<<"${spec:1}"
    for patch_file in "${patches[@]}"; do
      if command -v patch >/dev/null; then
        patch -s -p1 -d "$dir" <"$patch_file" || applied=0
      else
        full_path=$(realpath "$patch_file")
        (cd "$dir" && git apply -p1 "$full_path") || applied=0
      fi
      [ "$applied" = 1 ] || { echo "$name: patch $patch_file failed"; break; }
    done
    [ "$applied" = 1 ] || continue
  elif [ -n "$file" ]; then
    sed -i -E "$expr" "$dir/$file"
    diff -q "$dir/$file" "$file" >/dev/null && { echo "$name: sed changed nothing in $file"; continue; }
  fi
  ( cmake -S "$dir" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBLOCKGEMM_BUILD_TESTS=OFF \
      >/dev/null && cmake --build "$dir/build" -j "${AB_JOBS:-$(nproc)}" --target "$target" >"$OUT/build_$name.log" 2>&1 ) &
done
wait
# Variants take turns shape by shape, AB_ROUNDS times (default 2), in reverse order on odd rounds: the
# card's clock drifts with its temperature over a run, so back-to-back whole sweeps differ by up to 10% on
# the same binary, and a fixed order would favour one variant every time.
read -r -a shape_args <<<"$shapes"
names=()
for variant in "$@"; do
  name=${variant%%=*}
  bin=/tmp/ab_$name/build/$target
  [ -x "$bin" ] || { echo "$name: not built"; [ -f "$OUT/build_$name.log" ] && tail -20 "$OUT/build_$name.log"; continue; }
  rm -f "$OUT/build_$name.log" "$OUT/ab_$name.txt"
  names+=("$name")
done
for ((round = 0; round < ${AB_ROUNDS:-2}; ++round)); do
  for ((i = 0; i + 1 < ${#shape_args[@]}; i += 2)); do
    order=("${names[@]}")
    if ((round % 2 == 1)); then
      order=()
      for ((v = ${#names[@]} - 1; v >= 0; --v)); do order+=("${names[v]}"); done
    fi
    for name in "${order[@]}"; do
      # shellcheck disable=SC2086
      SWEEP_ALL=1 /tmp/ab_$name/build/$target "${shape_args[i]}" "${shape_args[i + 1]}" ${AB_ARGS:-} \
        >>"$OUT/ab_$name.txt" 2>&1
    done
  done
done
for name in "${names[@]}"; do
  echo "== $name"; grep -v '^        ' "$OUT/ab_$name.txt" | cut -c1-110
done
