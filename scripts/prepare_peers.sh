#!/usr/bin/env bash
# Prepares the Python benchmark's peers for the GPU machine, which has no network, into .peers/ (git-ignored;
# a device call carries it: carry [".peers"]). Run here, on the development machine (it reaches the Python
# package index and holds the git mirrors):
#
#   scripts/prepare_peers.sh            # then, on the GPU machine: scripts/device_bench.sh
#
# .peers/ then holds
#   flashinfer.tgz           flashinfer-python (FLASHINFER_VERSION), pure Python, trimmed to what
#                            flashinfer.gemm.fp8_blockscale_gemm_sm90 compiles and imports
#   apache_tvm_ffi-*.whl     its native dependency, a cp312 manylinux wheel
#   deepgemm.tgz             DeepGEMM's source at the mirror's HEAD (git archive) with the include/ trees of
#                            CUTLASS and fmt at the commits DeepGEMM's third-party/ submodules name
#   MANIFEST.json            versions, commits, file sizes (copied into the benchmark's JSON)
# Nothing of the peers is committed. Environment: PYTHON (default python3), FLASHINFER_VERSION,
# DEEPGEMM_MIRROR, CUTLASS_MIRROR, FMT_MIRROR, PEERS_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

PYTHON=${PYTHON:-python3}
FLASHINFER_VERSION=${FLASHINFER_VERSION:-0.7.2.post1}
TVM_FFI_SPEC=${TVM_FFI_SPEC:-"apache-tvm-ffi>=0.1.11,<0.2"}  # flashinfer's own requirement
DEEPGEMM_MIRROR=${DEEPGEMM_MIRROR:-/work/.mirror/deepseek-ai+DeepGEMM/repo}
CUTLASS_MIRROR=${CUTLASS_MIRROR:-/work/.mirror/NVIDIA+cutlass/repo}
FMT_MIRROR=${FMT_MIRROR:-/work/.mirror/fmtlib+fmt/repo}
PEERS_DIR=${PEERS_DIR:-$root/.peers}
CARRY_LIMIT_MIB=64

t_start=$(date +%s)
t_step=$t_start
step() {
  local now
  now=$(date +%s)
  [ "$t_step" = "$t_start" ] || echo "   ($((now - t_step)) s)"
  t_step=$now
  echo "== $*"
}
fail() { echo "prepare_peers.sh: $*" >&2; exit 1; }

for tool in git tar gzip unzip "$PYTHON"; do
  command -v "$tool" >/dev/null || fail "needs $tool"
done
"$PYTHON" -m pip --version >/dev/null 2>&1 || fail "needs pip for $PYTHON"
for mirror in "$DEEPGEMM_MIRROR" "$CUTLASS_MIRROR" "$FMT_MIRROR"; do
  git -C "$mirror" rev-parse --git-dir >/dev/null 2>&1 || fail "not a git repository: $mirror"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$PEERS_DIR"
mkdir -p "$PEERS_DIR"

# ---------------------------------------------------------------------------------------------- FlashInfer
step "download flashinfer-python==$FLASHINFER_VERSION (no dependencies) and $TVM_FFI_SPEC (cp312 manylinux)"
"$PYTHON" -m pip download -q --no-deps "flashinfer-python==$FLASHINFER_VERSION" -d "$work/wheels"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  "$TVM_FFI_SPEC" -d "$work/tvm"
tvm_wheel=$(ls "$work"/tvm/apache_tvm_ffi-*.whl)
[ "$(echo "$tvm_wheel" | wc -l)" = 1 ] || fail "expected one apache-tvm-ffi wheel, got: $tvm_wheel"
cp "$tvm_wheel" "$PEERS_DIR/"
fi_wheel=$(ls "$work"/wheels/flashinfer_python-*.whl)

step "unpack and trim FlashInfer to fp8_blockscale_gemm_sm90's sources"
mkdir -p "$work/fi"
unzip -q "$fi_wheel" -d "$work/fi"
data=$work/fi/flashinfer/data
[ -d "$data/csrc/nv_internal" ] || fail "unexpected wheel layout: no flashinfer/data/csrc/nv_internal"
keep=$work/keep
mkdir -p "$keep/csrc/fused_moe/cutlass_backend" "$keep/cutlass/tools/util" "$keep/cccl/cub" "$keep/cccl/thrust" \
  "$keep/cccl/libcudacxx" "$keep/spdlog"
# csrc: the module's sources (flashinfer/jit/gemm/fp8_blockscale.py) and the headers they include.
mv "$data/csrc/nv_internal" "$keep/csrc/"
mv "$data/csrc/fp8_blockscale_gemm_sm90_binding.cu" "$keep/csrc/"
mv "$data/csrc/fused_moe/cutlass_backend/deepgemm_jit_setup.cu" "$keep/csrc/fused_moe/cutlass_backend/"
find "$data/csrc" -maxdepth 1 -type f \( -name '*.h' -o -name '*.cuh' \) -exec mv {} "$keep/csrc/" \;
# Header trees on the JIT's include path (flashinfer/jit/env.py, cpp_ext.py).
mv "$data/include" "$keep/include"
mv "$data/cutlass/include" "$keep/cutlass/include"
mv "$data/cutlass/tools/util/include" "$keep/cutlass/tools/util/include"
mv "$data/cccl/cub/cub" "$keep/cccl/cub/cub"
mv "$data/cccl/thrust/thrust" "$keep/cccl/thrust/thrust"
mv "$data/cccl/libcudacxx/include" "$keep/cccl/libcudacxx/include"
mv "$data/spdlog/include" "$keep/spdlog/include"
rm -rf "$data"
mv "$keep" "$data"
for source in \
  csrc/nv_internal/tensorrt_llm/kernels/cutlass_kernels/fp8_blockscale_gemm/fp8_blockscale_gemm.cu \
  csrc/fp8_blockscale_gemm_sm90_binding.cu csrc/fused_moe/cutlass_backend/deepgemm_jit_setup.cu \
  csrc/nv_internal/cpp/common/envUtils.cpp csrc/nv_internal/cpp/common/logger.cpp \
  csrc/nv_internal/cpp/common/stringUtils.cpp csrc/nv_internal/cpp/common/tllmException.cpp \
  csrc/nv_internal/cpp/common/memoryUtils.cu csrc/tvm_ffi_utils.h; do
  [ -f "$data/$source" ] || fail "trimmed FlashInfer lacks $source (did the module's source list change?)"
done
grep -q "fp8_blockscale_gemm.cu" "$work/fi/flashinfer/jit/gemm/fp8_blockscale.py" ||
  fail "flashinfer/jit/gemm/fp8_blockscale.py no longer names fp8_blockscale_gemm.cu: re-check what to keep"
dist_info=$(cd "$work/fi" && ls -d flashinfer_python-*.dist-info)
tar -czf "$PEERS_DIR/flashinfer.tgz" -C "$work/fi" flashinfer "$dist_info"

# ---------------------------------------------------------------------------------------------- DeepGEMM
step "pack DeepGEMM from $DEEPGEMM_MIRROR"
dg_commit=$(git -C "$DEEPGEMM_MIRROR" rev-parse HEAD)
dg_version=$(git -C "$DEEPGEMM_MIRROR" show HEAD:deep_gemm/__init__.py | sed -n "s/^__version__ = '\(.*\)'/\1/p")
mkdir -p "$work/DeepGEMM"
git -C "$DEEPGEMM_MIRROR" archive --format=tar HEAD | tar -x -C "$work/DeepGEMM"
# The submodule commits DeepGEMM's tree names.
cutlass_commit=$(git -C "$DEEPGEMM_MIRROR" ls-tree HEAD third-party/cutlass | awk '$2 == "commit" {print $3}')
fmt_commit=$(git -C "$DEEPGEMM_MIRROR" ls-tree HEAD third-party/fmt | awk '$2 == "commit" {print $3}')
if [ -z "$cutlass_commit" ] || [ -z "$fmt_commit" ]; then
  fail "DeepGEMM's tree names no cutlass/fmt submodule commits"
fi
echo "   DeepGEMM $dg_version at $dg_commit; third-party/cutlass $cutlass_commit, third-party/fmt $fmt_commit"
# setup.py builds with third-party/{cutlass,fmt}/include and copies cutlass/include/{cute,cutlass} into the
# package for the JIT; nothing else of them is used (fmt is header-only there: FMT_HEADER_ONLY).
for pair in "cutlass:$CUTLASS_MIRROR:$cutlass_commit" "fmt:$FMT_MIRROR:$fmt_commit"; do
  IFS=: read -r name mirror commit <<<"$pair"
  git -C "$mirror" cat-file -e "$commit^{commit}" 2>/dev/null ||
    fail "the $name mirror $mirror lacks commit $commit (DeepGEMM's submodule); fetch it first"
  rm -rf "$work/DeepGEMM/third-party/$name"
  mkdir -p "$work/DeepGEMM/third-party/$name"
  git -C "$mirror" archive --format=tar "$commit" include | tar -x -C "$work/DeepGEMM/third-party/$name"
  for license in LICENSE LICENSE.txt LICENSE.rst; do
    if git -C "$mirror" cat-file -e "$commit:$license" 2>/dev/null; then
      git -C "$mirror" show "$commit:$license" >"$work/DeepGEMM/third-party/$name/$license" 2>/dev/null || true
    fi
  done
done
[ -f "$work/DeepGEMM/third-party/cutlass/include/cute/tensor.hpp" ] || fail "CUTLASS include tree incomplete"
[ -f "$work/DeepGEMM/third-party/fmt/include/fmt/format.h" ] || fail "fmt include tree incomplete"
# Not needed to build or run the GEMMs: tests, CI files.
rm -rf "$work/DeepGEMM/tests" "$work/DeepGEMM/.github"
tar -czf "$PEERS_DIR/deepgemm.tgz" -C "$work" DeepGEMM

# ---------------------------------------------------------------------------------------------- manifest
step "write MANIFEST.json"
fi_sha=$(sha256sum "$fi_wheel" | cut -d' ' -f1)
FI_VERSION=$FLASHINFER_VERSION FI_SHA=$fi_sha TVM_WHEEL=$(basename "$tvm_wheel") DG_VERSION=$dg_version \
DG_COMMIT=$dg_commit CUTLASS_COMMIT=$cutlass_commit FMT_COMMIT=$fmt_commit PEERS_DIR=$PEERS_DIR \
"$PYTHON" - <<'EOF'
import datetime, json, os
peers = os.environ["PEERS_DIR"]
manifest = {
    "prepared_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "flashinfer": {"version": os.environ["FI_VERSION"], "wheel_sha256": os.environ["FI_SHA"],
                   "trimmed": "data/csrc: nv_internal, top-level headers, the fp8 blockscale binding, "
                              "fused_moe/cutlass_backend/deepgemm_jit_setup.cu; data/include, cutlass, cccl, spdlog headers"},
    "apache_tvm_ffi": {"wheel": os.environ["TVM_WHEEL"]},
    "deepgemm": {"version": os.environ["DG_VERSION"], "commit": os.environ["DG_COMMIT"],
                 "cutlass_commit": os.environ["CUTLASS_COMMIT"], "fmt_commit": os.environ["FMT_COMMIT"]},
    "files": {name: os.path.getsize(os.path.join(peers, name)) for name in sorted(os.listdir(peers))},
}
with open(os.path.join(peers, "MANIFEST.json"), "w") as handle:
    json.dump(manifest, handle, indent=1)
EOF

step "done"
ls -l "$PEERS_DIR"
peers_bytes=$(du -sb "$PEERS_DIR" | cut -f1)
tree_bytes=$( (git ls-files -z; git ls-files -z -o --exclude-standard) | xargs -0 -r du -cb 2>/dev/null | awk 'END {print $1}')
echo "prepare_peers.sh: .peers is $((peers_bytes / 1048576)) MiB ($peers_bytes bytes); with the working tree" \
  "($((tree_bytes / 1048576)) MiB) a device call carries $(((peers_bytes + tree_bytes) / 1048576)) of $CARRY_LIMIT_MIB MiB;" \
  "$(( $(date +%s) - t_start )) s"
if [ $((peers_bytes + tree_bytes)) -gt $((CARRY_LIMIT_MIB * 1048576)) ]; then
  echo "prepare_peers.sh: WARNING: over the $CARRY_LIMIT_MIB MiB a device call carries" >&2
  exit 1
fi
