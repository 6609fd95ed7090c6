#!/usr/bin/env bash
# The Python benchmark on the GPU machine, with the peers: run from the repository root there, with .peers/
# (made by scripts/prepare_peers.sh on the development machine) carried along:
#
#   scripts/device_bench.sh [--setup-only | --no-setup] [--no-warmup] [--] [python -m blockgemm.bench args]
#
#   1. installs the peers from .peers/ into .peers-work/ (git-ignored; kept while the machine stays warm):
#      apache-tvm-ffi and FlashInfer into .peers-work/site, DeepGEMM's source into .peers-work/DeepGEMM
#   2. in parallel: builds DeepGEMM's extension (setup.py build_ext --inplace, linked with
#      -Wl,--exclude-libs,ALL: the static-libstdc++ trap of ../shared/reference/toolchain.md), builds
#      FlashInfer's fp8_blockscale_gemm_sm90 module (its nvcc JIT, ~85 s), installs blockgemm
#      (pip install --no-build-isolation --no-deps .)
#   3. warms the peers' per-shape JIT for the suites asked for (python -m blockgemm.bench.warmup)
#   4. runs python -m blockgemm.bench --out-dir $OUT --name bench [args], with a deadline that leaves the
#      call's 10 minutes room to write its results
# Every step is timed. Steps already done on this machine (same .peers/MANIFEST.json) are skipped, so a
# second call on a warm machine goes (nearly) straight to the benchmark: as setup and benchmark may not fit
# one call, run `--setup-only` first, then the same command without it (or with --no-setup, which skips the
# blockgemm pip install too). On a fresh machine the second call redoes the setup and its benchmark
# deadline shrinks to what the call has left (results so far are written).
# Results in $OUT (default .out): bench.json, bench.md, bench_<suite>.png, device_bench.log (8 files at most
# come back from the device). Environment: OUT, PYTHON, JOBS, CALL_LIMIT_S (default 590: the call's limit,
# from this script's start), CUDA_HOME.
# Exit status: the benchmark's (0 all blockgemm checks passed, 1 a check failed, 3 no usable worker),
# 2 setup of blockgemm failed, 4 usage or missing .peers.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t_start=$(date +%s)

setup=1 warmup=1
bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --setup-only) setup=2 ;;
    --no-setup) setup=0 ;;
    --no-warmup) warmup=0 ;;
    --) shift; bench_args+=("$@"); break ;;
    *) bench_args+=("$1") ;;
  esac
  shift
done

OUT=${OUT:-$root/.out}
mkdir -p "$OUT"
log=$OUT/device_bench.log
exec > >(tee -a "$log") 2>&1
tee_pid=$!
# On exit, let tee write the log's last lines before the call collects $OUT.
trap 'exec >&- 2>&-; wait "$tee_pid" 2>/dev/null || true' EXIT

work=$root/.peers-work
logs=$work/logs
mkdir -p "$logs"
JOBS=${JOBS:-$(nproc)}
CALL_LIMIT_S=${CALL_LIMIT_S:-590}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export PATH=$CUDA_HOME/bin:$PATH
export PYTHONUNBUFFERED=1
export MAX_JOBS=$JOBS
# JIT caches inside .peers-work: they survive between calls while the machine stays warm.
export FLASHINFER_WORKSPACE_BASE=$work/flashinfer-home
export TRTLLM_DG_CACHE_DIR=$work/trtllm-deepgemm-cache
export DG_JIT_CACHE_DIR=$work/deepgemm-cache
export PYTHONPATH=$work/site:$work/DeepGEMM${PYTHONPATH:+:$PYTHONPATH}
export BLOCKGEMM_BENCH_PEERS_MANIFEST=$root/.peers/MANIFEST.json
mkdir -p "$FLASHINFER_WORKSPACE_BASE" "$TRTLLM_DG_CACHE_DIR" "$DG_JIT_CACHE_DIR"

t_step=$t_start
step() {
  local now
  now=$(date +%s)
  echo "== [$((now - t_start)) s] $*"
  t_step=$now
}
took() { echo "   ($(($(date +%s) - t_step)) s)"; }

if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  if ! "$PYTHON" -c "import torch" 2>/dev/null && [ -x /opt/torch/.venv/bin/python ]; then
    PYTHON=/opt/torch/.venv/bin/python
  fi
fi
step "environment"
"$PYTHON" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| CUDA', torch.version.cuda, '| GPU', torch.cuda.get_device_name() if torch.cuda.is_available() else 'none')"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv,noheader || true
command -v nvcc >/dev/null && nvcc --version | tail -1
echo "jobs $JOBS; call limit ${CALL_LIMIT_S} s; output $OUT; bench args: ${bench_args[*]:-(none)}"

# Whether a background step's log ends with success; prints its tail otherwise.
check_log() {
  local name=$1 status=$2 file=$3
  if [ "$status" = 0 ]; then
    echo "   $name: ok"
  else
    echo "   $name: FAILED (status $status); last lines of $file:"
    tail -25 "$file" | sed 's/^/     /'
  fi
}

if [ "$setup" != 0 ]; then
  for file in .peers/MANIFEST.json .peers/flashinfer.tgz .peers/deepgemm.tgz; do
    [ -f "$file" ] || { echo "device_bench.sh: $file missing: run scripts/prepare_peers.sh here first and carry .peers"; exit 4; }
  done
  ls .peers/apache_tvm_ffi-*.whl >/dev/null || { echo "device_bench.sh: no apache-tvm-ffi wheel in .peers"; exit 4; }
  stamp=$(sha256sum .peers/MANIFEST.json scripts/device_bench.sh | sha256sum | cut -c1-16)

  step "install the peers into $work"
  if [ "$(cat "$work/peers.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "   already installed (stamp $stamp)"
  else
    rm -rf "$work/site" "$work/DeepGEMM" "$work/peers.stamp" "$work/deepgemm.stamp" "$work/flashinfer.stamp"
    mkdir -p "$work/site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/site" .peers/apache_tvm_ffi-*.whl
    tar -xzf .peers/flashinfer.tgz -C "$work/site"
    tar -xzf .peers/deepgemm.tgz -C "$work"
    # The JIT's include path is deep_gemm/include: CUTLASS's cute/ and cutlass/ go beside deep_gemm/ there.
    ln -sfn ../../third-party/cutlass/include/cute "$work/DeepGEMM/deep_gemm/include/cute"
    ln -sfn ../../third-party/cutlass/include/cutlass "$work/DeepGEMM/deep_gemm/include/cutlass"
    # Link the extension with --exclude-libs,ALL (toolchain.md: /opt/gcc's g++ links libstdc++ statically).
    sed -i "s/extra_compile_args=cxx_flags)/extra_compile_args=cxx_flags, extra_link_args=['-Wl,--exclude-libs,ALL'])/" \
      "$work/DeepGEMM/setup.py"
    grep -q "exclude-libs,ALL" "$work/DeepGEMM/setup.py" ||
      { echo "device_bench.sh: could not add -Wl,--exclude-libs,ALL to DeepGEMM's setup.py (its CUDAExtension call changed)"; exit 4; }
    echo "$stamp" >"$work/peers.stamp"
  fi
  took

  step "build DeepGEMM, FlashInfer's module and blockgemm (in parallel; logs in $logs)"
  dg_pid="" fi_pid=""
  if [ "$(cat "$work/deepgemm.stamp" 2>/dev/null)" != "$stamp" ]; then
    # DG_USE_LOCAL_VERSION=0: its tree is no git checkout (setup.py would ask git about ours).
    (cd "$work/DeepGEMM" && rm -rf build && DG_USE_LOCAL_VERSION=0 "$PYTHON" setup.py build_ext --inplace &&
      "$PYTHON" -c "import deep_gemm; print('deep_gemm', deep_gemm.__version__, 'imports')") \
      >"$logs/deepgemm_build.log" 2>&1 &
    dg_pid=$!
  fi
  if [ "$(cat "$work/flashinfer.stamp" 2>/dev/null)" != "$stamp" ]; then
    "$PYTHON" -c "
import time; started = time.time()
from flashinfer.gemm.gemm_base import get_fp8_blockscale_gemm_runner_sm90
get_fp8_blockscale_gemm_runner_sm90()
print(f'FlashInfer fp8_blockscale_gemm_sm90 module ready in {time.time() - started:.0f} s')
" >"$logs/flashinfer_build.log" 2>&1 &
    fi_pid=$!
  fi
  bg_start=$(date +%s)
  bg_status=0
  "$PYTHON" -m pip install --no-build-isolation --no-deps . >"$logs/blockgemm_pip.log" 2>&1 || bg_status=$?
  echo "   blockgemm pip install: $(($(date +%s) - bg_start)) s"
  check_log "blockgemm" "$bg_status" "$logs/blockgemm_pip.log"
  if [ -n "$dg_pid" ]; then
    dg_status=0; wait "$dg_pid" || dg_status=$?
    echo "   DeepGEMM build finished at +$(($(date +%s) - bg_start)) s"
    check_log "DeepGEMM" "$dg_status" "$logs/deepgemm_build.log"
    [ "$dg_status" = 0 ] && echo "$stamp" >"$work/deepgemm.stamp"
  else
    echo "   DeepGEMM: built earlier on this machine"
  fi
  if [ -n "$fi_pid" ]; then
    fi_status=0; wait "$fi_pid" || fi_status=$?
    echo "   FlashInfer module finished at +$(($(date +%s) - bg_start)) s: $(tail -1 "$logs/flashinfer_build.log")"
    check_log "FlashInfer" "$fi_status" "$logs/flashinfer_build.log"
    [ "$fi_status" = 0 ] && echo "$stamp" >"$work/flashinfer.stamp"
  else
    echo "   FlashInfer module: built earlier on this machine"
  fi
  took
  [ "$bg_status" = 0 ] || { echo "device_bench.sh: blockgemm did not install; stopping"; exit 2; }
fi

"$PYTHON" -c "import blockgemm, blockgemm.testing, blockgemm.bench" ||
  { echo "device_bench.sh: blockgemm is not importable (run without --no-setup)"; exit 2; }
for module in flashinfer deep_gemm; do
  ("$PYTHON" -c "import $module; print('$module', getattr($module, '__version__', '?'), 'from', $module.__file__)" 2>&1 ||
    echo "$module is not importable: the benchmark records it as unavailable") | tail -2
done

if [ "$warmup" = 1 ]; then
  step "warm the peers' per-shape JIT"
  "$PYTHON" -m blockgemm.bench.warmup --jobs "$JOBS" "${bench_args[@]}" || echo "   warm-up failed (the run records what fails)"
  took
fi

if [ "$setup" = 2 ]; then
  step "setup done (--setup-only); total $(($(date +%s) - t_start)) s"
  exit 0
fi

# The benchmark stops starting timings at its deadline and then writes tables and plots (~30 s): leave
# that room inside the call's limit. A --deadline-s among the arguments comes later and wins.
elapsed=$(($(date +%s) - t_start))
deadline=$((CALL_LIMIT_S - elapsed - 45))
[ "$deadline" -ge 60 ] || deadline=60
step "benchmark (deadline ${deadline} s)"
nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu --format=csv,noheader || true
status=0
"$PYTHON" -m blockgemm.bench --out-dir "$OUT" --name bench --deadline-s "$deadline" "${bench_args[@]}" || status=$?
took
nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu --format=csv,noheader || true
ls -l "$OUT"
step "done: benchmark status $status; total $(($(date +%s) - t_start)) s"
exit "$status"
