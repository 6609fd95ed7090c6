// The fuzzer's checks and case runners (fuzz_run.h): the library's out against the CPU reference on a
// sample of rows and, where the sample leaves rows out, against the GPU reference (gpu_reference.cu) on all.
#include "fuzz_run.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "blockgemm/blockgemm.h"
#include "blockgemm/reference.h"
#include "blockgemm/tensor.h"
#include "gpu_reference.h"
#include "gpu_test_util.h"

namespace blockgemm::fuzz {
namespace {

using blockgemm::testing::check_cuda;
using blockgemm::testing::DeviceBuffer;

constexpr double kMaxDiff = 1e-3;
// GPU fp32 reference vs CPU double reference: fp32 rounding alone gives ~1e-13; an indexing or decoding
// bug in the GPU reference gives ~1.
constexpr double kMaxGpuReferenceDiff = 1e-6;
constexpr double kReferenceBudget = 4e9;   // reference MACs per case
constexpr std::size_t kGuardBytes = 4096;  // canary regions before and after out
constexpr unsigned char kGuardByte = 0xA5;
constexpr unsigned char kOutByte = 0xFF;  // NaN in bf16, fp16 and fp32

// ---- checks -----------------------------------------------------------------------------------------------

bool is_nonfinite(const unsigned char* p, DType dtype) {
  switch (dtype) {
    case DType::kFloat32: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return (v & 0x7F800000u) == 0x7F800000u;
    }
    case DType::kBFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return (v & 0x7F80u) == 0x7F80u;
    }
    case DType::kFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return (v & 0x7C00u) == 0x7C00u;
    }
    default:
      return true;
  }
}

double to_double(const unsigned char* p, DType dtype) {
  switch (dtype) {
    case DType::kFloat32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kBFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return ref::bf16_to_float(v);
    }
    case DType::kFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return ref::fp16_to_float(v);
    }
    default:
      return std::nan("");
  }
}

int64_t count_changed(const unsigned char* p, std::size_t bytes, unsigned char expected) {
  int64_t changed = 0;
  for (std::size_t i = 0; i < bytes; ++i) changed += p[i] != expected;
  return changed;
}

// The rows the reference computes: all when M <= 16, else 16 including the first and last; fewer (but at
// least 2) when rows * N * K would pass the reference budget.
std::vector<int64_t> sample_rows(const CaseParams& p) {
  const double per_row = static_cast<double>(p.n) * static_cast<double>(p.k);
  const int64_t affordable = std::max<int64_t>(2, static_cast<int64_t>(kReferenceBudget / per_row));
  const int64_t count = std::min({p.m, int64_t{16}, affordable});
  if (count == p.m) {
    std::vector<int64_t> rows(static_cast<std::size_t>(p.m));
    for (int64_t r = 0; r < p.m; ++r) rows[r] = r;
    return rows;
  }
  std::set<int64_t> picked = {0, p.m - 1};
  Rng rng(p.data_seed, 0xC0FFEEull);
  while (static_cast<int64_t>(picked.size()) < count) picked.insert(rng.below(p.m));
  return std::vector<int64_t>(picked.begin(), picked.end());
}

}  // namespace

bool context_broken() {
  cudaGetLastError();  // clear non-sticky errors
  return cudaDeviceSynchronize() != cudaSuccess;
}

Outcome run_error_case(const CaseParams& p) {
  Outcome o;
  const int64_t m = p.m, n = p.n, k = p.k, kg = k / 128;
  DeviceBuffer a(static_cast<std::size_t>(m * k)), a_scale(static_cast<std::size_t>(m * kg) * 4),
      b(static_cast<std::size_t>(n * k) * 2);
  const int64_t ldo = n + p.out_pad;
  const std::size_t out_bytes = static_cast<std::size_t>(m * ldo) * blockgemm::dtype_size(p.out_dtype);
  DeviceBuffer out(out_bytes);
  check_cuda(cudaMemset(a.get(), 0, a.bytes()), "memset input");
  check_cuda(cudaMemset(b.get(), 0, b.bytes()), "memset weight");
  check_cuda(cudaMemset(out.get(), kOutByte, out_bytes), "poison out");
  const TensorView input = TensorView::matrix(a.get(), DType::kFloat8E4M3, m, k, 0);
  const TensorView weight = TensorView::matrix(b.get(), DType::kBFloat16, n, k, 0);
  const TensorView input_scale = p.column_major_input_scale
                                     ? TensorView::strided(a_scale.get(), DType::kFloat32, m, kg, 1, m, 0)
                                     : TensorView::strided(a_scale.get(), DType::kFloat32, m, kg, kg, 1, 0);
  const TensorView out_view = TensorView::strided(out.get(), p.out_dtype, m, n, ldo, 1, 0);
  try {
    blockgemm::fp8_blockscale_gemm_sm90(input, weight, input_scale, std::nullopt, out_view);
    o.detail = "no exception (expected blockgemm::Error kInvalidArgument)";
  } catch (const blockgemm::Error& e) {
    if (e.kind() != blockgemm::Error::Kind::kInvalidArgument)
      o.detail = std::string("blockgemm::Error of the wrong kind: ") + e.what();
    else
      o.pass = true;
  } catch (const std::exception& e) {
    o.detail = std::string("unexpected exception type: ") + e.what();
  }
  if (cudaDeviceSynchronize() != cudaSuccess) {
    o.pass = false;
    o.detail += std::string(" CUDA error: ") + cudaGetErrorString(cudaGetLastError());
    o.context_lost = context_broken();
    return o;
  }
  std::vector<unsigned char> host(out_bytes);
  out.download(host.data(), out_bytes);
  if (const int64_t changed = count_changed(host.data(), out_bytes, kOutByte)) {
    o.pass = false;
    o.detail += " out modified (" + std::to_string(changed) + " bytes)";
  }
  if (o.pass) o.detail = "rejected as expected";
  return o;
}

namespace {

struct GpuReferenceResult {
  double self_diff = 0;  // GPU reference vs CPU reference, on the sampled rows
  double diff = 0;       // the library's out vs GPU reference, all of M x N
  // The row with the largest calc_diff of its own: where to look when `diff` fails (one bad row among
  // thousands barely moves the global calc_diff).
  int64_t worst_row = 0;
  double worst_row_diff = 0;
};

// Runs the GPU reference on the reference quantization (a.q, b.q) over all of M x N and compares it with the
// CPU reference's `expected` on `rows` and with the downloaded out (row stride ldo) everywhere.
GpuReferenceResult check_with_gpu_reference(const CaseParams& p, const ref::Quantized& aq,
                                            const ref::Quantized& bq, bool b_per_row,
                                            const std::vector<int64_t>& rows,
                                            const std::vector<double>& expected,
                                            const unsigned char* out_host, int64_t ldo) {
  const int64_t m = p.m, n = p.n, k = p.k;
  const std::size_t esize = blockgemm::dtype_size(p.out_dtype);
  // Own copies, not the library's operand buffers: nothing the library does to those can reach the
  // reference, and bf16 operands need the reference's quantization anyway.
  DeviceBuffer a_dev(aq.values.size()), a_scale_dev(aq.scales.size() * 4), b_dev(bq.values.size()),
      b_scale_dev(bq.scales.size() * 4), ref_dev(static_cast<std::size_t>(m * n) * 4);
  a_dev.upload(aq.values.data(), aq.values.size());
  a_scale_dev.upload(aq.scales.data(), aq.scales.size() * 4);
  b_dev.upload(bq.values.data(), bq.values.size());
  b_scale_dev.upload(bq.scales.data(), bq.scales.size() * 4);
  blockgemm::fuzz::gpu_reference_gemm(
      static_cast<const uint8_t*>(a_dev.get()), static_cast<const float*>(a_scale_dev.get()),
      static_cast<const uint8_t*>(b_dev.get()), static_cast<const float*>(b_scale_dev.get()), b_per_row, m, n,
      k, static_cast<float*>(ref_dev.get()), nullptr);
  check_cuda(cudaDeviceSynchronize(), "GPU reference");
  std::vector<float> gpu(static_cast<std::size_t>(m * n));
  ref_dev.download(gpu.data(), gpu.size() * 4);

  GpuReferenceResult result;
  const int64_t rs = static_cast<int64_t>(rows.size());
  std::vector<double> sampled(expected.size());
  for (int64_t i = 0; i < rs; ++i)
    for (int64_t c = 0; c < n; ++c) sampled[i * n + c] = gpu[rows[i] * n + c];
  result.self_diff = ref::calc_diff(sampled.data(), expected.data(), static_cast<int64_t>(sampled.size()));

  // ref::calc_diff's sums, per row on all cores and then added in row order: the same total whatever the
  // number of threads.
  std::vector<double> xy(static_cast<std::size_t>(m)), sq(static_cast<std::size_t>(m));
  parallel_for((m + 63) / 64, [&](int64_t blk) {
    for (int64_t r = blk * 64; r < std::min(m, blk * 64 + 64); ++r) {
      const unsigned char* row = out_host + static_cast<std::size_t>(r * ldo) * esize;
      const float* expect = gpu.data() + r * n;
      double row_xy = 0, row_sq = 0;
      for (int64_t c = 0; c < n; ++c) {
        const double x = to_double(row + c * esize, p.out_dtype), y = expect[c];
        row_xy += x * y;
        row_sq += x * x + y * y;
      }
      xy[r] = row_xy;
      sq[r] = row_sq;
    }
  });
  double total_xy = 0, total_sq = 0;
  for (int64_t r = 0; r < m; ++r) {
    total_xy += xy[r];
    total_sq += sq[r];
    const double row_diff = sq[r] == 0.0 ? 0.0 : 1.0 - 2.0 * xy[r] / sq[r];
    // NaN ranks worst; among equals the first row wins.
    const bool worse =
        std::isnan(row_diff) ? !std::isnan(result.worst_row_diff) : row_diff > result.worst_row_diff;
    if (worse) {
      result.worst_row = r;
      result.worst_row_diff = row_diff;
    }
  }
  result.diff = total_sq == 0.0 ? 0.0 : 1.0 - 2.0 * total_xy / total_sq;  // NaN stays NaN, as in calc_diff
  return result;
}

}  // namespace

Outcome run_gemm_case(const CaseParams& p) {
  Outcome o;
  const int64_t m = p.m, n = p.n, k = p.k, kg = k / 128;
  const bool in_fp8 = p.input_fp8(), w_fp8 = p.weight_fp8();

  // Host data. The reference always sees the library's quantization: input per 1x128 group, weight per
  // 128x128 block (or per row for fp8 weights with per-row scales).
  const HostOperand a = make_operand(m, k, !in_fp8, false, p.input_log10, p.data_seed ^ 0x1111);
  const bool weight_per_block = !(w_fp8 && p.per_row_weight_scale);
  const HostOperand b = make_operand(n, k, !w_fp8, weight_per_block, p.weight_log10, p.data_seed ^ 0x2222);

  // Device operands.
  DeviceBuffer a_dev(static_cast<std::size_t>(m * k) * (in_fp8 ? 1 : 2));
  DeviceBuffer b_dev(static_cast<std::size_t>(n * k) * (w_fp8 ? 1 : 2));
  if (in_fp8)
    a_dev.upload(a.q.values.data(), a.q.values.size());
  else
    a_dev.upload(a.bf16.data(), a.bf16.size() * 2);
  if (w_fp8)
    b_dev.upload(b.q.values.data(), b.q.values.size());
  else
    b_dev.upload(b.bf16.data(), b.bf16.size() * 2);
  const TensorView input =
      TensorView::matrix(a_dev.get(), in_fp8 ? DType::kFloat8E4M3 : DType::kBFloat16, m, k, 0);
  const TensorView weight =
      TensorView::matrix(b_dev.get(), w_fp8 ? DType::kFloat8E4M3 : DType::kBFloat16, n, k, 0);

  DeviceBuffer a_scale_dev, b_scale_dev;
  std::optional<TensorView> input_scale, weight_scale;
  if (in_fp8) {
    if (p.column_major_input_scale) {
      const int64_t ld = (m + 3) / 4 * 4;  // padded to a multiple of 4; the padding holds NaN
      std::vector<float> col(static_cast<std::size_t>(ld * kg), std::nanf(""));
      for (int64_t r = 0; r < m; ++r)
        for (int64_t g = 0; g < kg; ++g) col[g * ld + r] = a.q.scales[r * kg + g];
      a_scale_dev = DeviceBuffer(col.size() * 4);
      a_scale_dev.upload(col.data(), col.size() * 4);
      input_scale = TensorView::strided(a_scale_dev.get(), DType::kFloat32, m, kg, 1, ld, 0);
    } else {
      a_scale_dev = DeviceBuffer(a.q.scales.size() * 4);
      a_scale_dev.upload(a.q.scales.data(), a.q.scales.size() * 4);
      input_scale = TensorView::matrix(a_scale_dev.get(), DType::kFloat32, m, kg, 0);
    }
  }
  if (w_fp8) {
    b_scale_dev = DeviceBuffer(b.q.scales.size() * 4);
    b_scale_dev.upload(b.q.scales.data(), b.q.scales.size() * 4);
    weight_scale = TensorView::matrix(b_scale_dev.get(), DType::kFloat32, b.q.scale_rows, kg, 0);
  }

  // out between two canary regions; out itself poisoned with NaN bytes.
  const int64_t ldo = n + p.out_pad;
  const std::size_t esize = blockgemm::dtype_size(p.out_dtype);
  const std::size_t out_bytes = static_cast<std::size_t>(m * ldo) * esize;
  DeviceBuffer out_dev(kGuardBytes + out_bytes + kGuardBytes);
  unsigned char* out_base = static_cast<unsigned char*>(out_dev.get());
  check_cuda(cudaMemset(out_base, kGuardByte, kGuardBytes), "guard before");
  check_cuda(cudaMemset(out_base + kGuardBytes, kOutByte, out_bytes), "poison out");
  check_cuda(cudaMemset(out_base + kGuardBytes + out_bytes, kGuardByte, kGuardBytes), "guard after");
  const TensorView out = TensorView::strided(out_base + kGuardBytes, p.out_dtype, m, n, ldo, 1, 0);

  DeviceBuffer workspace_dev;
  std::optional<blockgemm::Workspace> workspace;
  // The bf16 paths' quantized operands; for fp8 x fp8, the optional copy of row-major input scales before
  // long plans (bench/NOTES.md #63), lent as a caller following blockgemm.h would.
  if (const std::size_t bytes =
          blockgemm::fp8_blockscale_gemm_sm90_workspace_bytes(input, weight, input_scale);
      bytes > 0 || !in_fp8 || !w_fp8) {
    workspace_dev = DeviceBuffer(bytes);
    workspace = blockgemm::Workspace{workspace_dev.get(), bytes};
  }
  check_cuda(cudaDeviceSynchronize(), "setup");

  try {
    blockgemm::fp8_blockscale_gemm_sm90(input, weight, input_scale, weight_scale, out, std::nullopt, nullptr,
                                        workspace);
  } catch (const std::exception& e) {
    o.detail = std::string("threw: ") + e.what();
    o.context_lost = context_broken();
    return o;
  }
  if (const cudaError_t status = cudaDeviceSynchronize(); status != cudaSuccess) {
    o.detail = std::string("CUDA error: ") + cudaGetErrorString(status);
    o.context_lost = context_broken();
    return o;
  }

  std::vector<unsigned char> host(out_dev.bytes());
  out_dev.download(host.data(), host.size());
  const unsigned char* out_host = host.data() + kGuardBytes;

  // NaN / Inf inside M x N, and changes to the row padding, row by row on all cores.
  std::vector<int64_t> nonfinite(static_cast<std::size_t>(m)), pad_changed(static_cast<std::size_t>(m));
  const int64_t row_blocks = (m + 63) / 64;
  parallel_for(row_blocks, [&](int64_t blk) {
    for (int64_t r = blk * 64; r < std::min(m, blk * 64 + 64); ++r) {
      const unsigned char* row = out_host + static_cast<std::size_t>(r * ldo) * esize;
      int64_t bad = 0;
      for (int64_t c = 0; c < n; ++c) bad += is_nonfinite(row + c * esize, p.out_dtype);
      nonfinite[r] = bad;
      pad_changed[r] = count_changed(row + n * esize, static_cast<std::size_t>(p.out_pad) * esize, kOutByte);
    }
  });
  int64_t nonfinite_total = 0, pad_total = 0, first_bad_row = -1;
  for (int64_t r = 0; r < m; ++r) {
    nonfinite_total += nonfinite[r];
    pad_total += pad_changed[r];
    if (first_bad_row < 0 && nonfinite[r] != 0) first_bad_row = r;
  }
  const int64_t guard_before = count_changed(host.data(), kGuardBytes, kGuardByte);
  const int64_t guard_after = count_changed(out_host + out_bytes, kGuardBytes, kGuardByte);

  // Reference on the sampled rows, gathered into a compact problem.
  const std::vector<int64_t> rows = sample_rows(p);
  const int64_t rs = static_cast<int64_t>(rows.size());
  std::vector<uint8_t> a_rows(static_cast<std::size_t>(rs * k));
  std::vector<float> a_scales(static_cast<std::size_t>(rs * kg));
  for (int64_t i = 0; i < rs; ++i) {
    std::copy_n(a.q.values.begin() + rows[i] * k, k, a_rows.begin() + i * k);
    std::copy_n(a.q.scales.begin() + rows[i] * kg, kg, a_scales.begin() + i * kg);
  }
  std::vector<double> expected(static_cast<std::size_t>(rs * n)), got(expected.size());
  ref::blockscale_gemm(a_rows.data(), a_scales.data(), b.q.values.data(), b.q.scales.data(),
                       !weight_per_block, rs, n, k, expected.data());
  for (int64_t i = 0; i < rs; ++i)
    for (int64_t c = 0; c < n; ++c)
      got[i * n + c] = to_double(out_host + static_cast<std::size_t>(rows[i] * ldo + c) * esize, p.out_dtype);
  const double diff = ref::calc_diff(got.data(), expected.data(), static_cast<int64_t>(got.size()));

  // The rows the sample skipped: all of M x N against the GPU reference, itself checked on the sample.
  std::optional<GpuReferenceResult> gpu_ref;
  if (rs < m)
    gpu_ref = check_with_gpu_reference(p, a.q, b.q, !weight_per_block, rows, expected, out_host, ldo);
  const bool gpu_ref_trusted = !gpu_ref || gpu_ref->self_diff < kMaxGpuReferenceDiff;
  o.gpu_reference_checked = gpu_ref.has_value();

  std::ostringstream os;
  os.precision(3);
  os << "diff=" << diff << " rows_checked=" << rs;
  if (gpu_ref) os << " gpu_ref_diff=" << gpu_ref->diff << " rows_checked_gpu=" << m;
  // A few wrong rows or one wrong tile barely move the calc_diff of a whole large output (a fraction f of
  // zeroed outputs gives about f / 2), so every row must also pass on its own.
  const bool gpu_rows_ok = !gpu_ref || (gpu_ref->diff < kMaxDiff && gpu_ref->worst_row_diff < kMaxDiff);
  if (!gpu_rows_ok) os << " (worst row " << gpu_ref->worst_row << ": " << gpu_ref->worst_row_diff << ")";
  if (!gpu_ref_trusted)
    os << " GPU reference disagrees with the CPU reference on the sampled rows (calc_diff="
       << gpu_ref->self_diff << ")";
  if (nonfinite_total) os << " nonfinite=" << nonfinite_total << " (first in row " << first_bad_row << ")";
  if (pad_total) os << " padding_bytes_written=" << pad_total;
  if (guard_before) os << " guard_before_bytes_written=" << guard_before;
  if (guard_after) os << " guard_after_bytes_written=" << guard_after;
  o.pass = nonfinite_total == 0 && pad_total == 0 && guard_before == 0 && guard_after == 0 &&
           diff < kMaxDiff && gpu_ref_trusted && gpu_rows_ok;
  if (!o.pass) {
    try {
      os << " plan: " << blockgemm::describe_plan(m, n, k, p.out_dtype, !weight_per_block);
    } catch (const std::exception&) {
    }
  }
  o.detail = os.str();
  return o;
}

}  // namespace blockgemm::fuzz
