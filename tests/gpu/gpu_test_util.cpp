#include "gpu_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

namespace blockgemm::testing {

std::optional<std::string> gpu_unavailable_reason() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return std::string("no CUDA device on this machine");
  }
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
  if (major != 9 || minor != 0)
    return "device 0 is compute capability " + std::to_string(major) + "." + std::to_string(minor) +
           ", not Hopper (9.0)";
  return std::nullopt;
}

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  check_cuda(cudaMalloc(&ptr_, std::max<std::size_t>(bytes, 16)), "cudaMalloc");
}
DeviceBuffer::~DeviceBuffer() {
  if (ptr_) cudaFree(ptr_);
}
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = other.ptr_;
    bytes_ = other.bytes_;
    other.ptr_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}
void DeviceBuffer::upload(const void* host, std::size_t bytes, std::size_t offset) {
  check_cuda(cudaMemcpy(static_cast<char*>(ptr_) + offset, host, bytes, cudaMemcpyHostToDevice), "upload");
}
void DeviceBuffer::download(void* host, std::size_t bytes, std::size_t offset) const {
  check_cuda(cudaMemcpy(host, static_cast<const char*>(ptr_) + offset, bytes, cudaMemcpyDeviceToHost),
             "download");
}

std::string ProblemSpec::str() const {
  std::ostringstream os;
  os << "M=" << m << " N=" << n << " K=" << k
     << " weight_scale=" << (per_row_weight_scale ? "per-row" : "per-block")
     << " input_scale=" << (input_scale_layout == ScaleLayout::kRowMajor ? "row-major" : "col-major")
     << " out=" << dtype_name(out_dtype) << " out_pad=" << out_row_padding << " seed=" << seed;
  return os.str();
}

namespace {

std::vector<float> random_normal(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(static_cast<std::size_t>(count));
  for (auto& v : x) v = dist(rng);
  return x;
}

}  // namespace

void make_problem(const ProblemSpec& spec, Problem& p) {
  p.spec = spec;
  const int64_t m = spec.m, n = spec.n, k = spec.k, kg = k / 128;
  const std::vector<float> a_f = random_normal(m * k, spec.seed * 2 + 1);
  std::vector<float> b_f = random_normal(n * k, spec.seed * 2 + 2);
  // Give weight rows different magnitudes so per-row scales differ from per-block ones.
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) b_f[r * k + c] *= 0.25f + static_cast<float>((r * 7) % 13) / 4.f;
  p.a = reference::per_token_cast_to_fp8(a_f.data(), m, k);
  p.b = spec.per_row_weight_scale ? reference::per_token_cast_to_fp8(b_f.data(), n, k)
                                  : reference::per_block_cast_to_fp8(b_f.data(), n, k);

  // Buffers and views belong to the current device (the multi-GPU tests make the second one current).
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  p.a_dev = DeviceBuffer(static_cast<std::size_t>(m * k));
  p.b_dev = DeviceBuffer(static_cast<std::size_t>(n * k));
  if (m > 0) p.a_dev.upload(p.a.values.data(), static_cast<std::size_t>(m * k));
  p.b_dev.upload(p.b.values.data(), static_cast<std::size_t>(n * k));

  // Input scale, row-major as computed or transposed into column-major with M' = roundup(M, 4).
  p.a_scale_col_stride_padded = (m + 3) / 4 * 4;
  if (spec.input_scale_layout == ScaleLayout::kRowMajor) {
    p.a_scale_dev = DeviceBuffer(static_cast<std::size_t>(m * kg) * 4);
    if (m) p.a_scale_dev.upload(p.a.scales.data(), static_cast<std::size_t>(m * kg) * 4);
    p.input_scale = TensorView::strided(p.a_scale_dev.get(), DType::kFloat32, m, kg, kg, 1, device);
  } else {
    const int64_t ld = p.a_scale_col_stride_padded;
    std::vector<float> col(static_cast<std::size_t>(ld * kg), std::nanf(""));
    for (int64_t r = 0; r < m; ++r)
      for (int64_t g = 0; g < kg; ++g) col[g * ld + r] = p.a.scales[r * kg + g];
    p.a_scale_dev = DeviceBuffer(col.size() * 4);
    p.a_scale_dev.upload(col.data(), col.size() * 4);
    p.input_scale = TensorView::strided(p.a_scale_dev.get(), DType::kFloat32, m, kg, 1, ld, device);
  }
  p.b_scale_dev = DeviceBuffer(p.b.scales.size() * 4);
  p.b_scale_dev.upload(p.b.scales.data(), p.b.scales.size() * 4);

  const int64_t ldo = n + spec.out_row_padding;
  p.out_dev = DeviceBuffer(static_cast<std::size_t>(m * ldo) * dtype_size(spec.out_dtype));

  p.input = TensorView::matrix(p.a_dev.get(), DType::kFloat8E4M3, m, k, device);
  p.weight = TensorView::matrix(p.b_dev.get(), DType::kFloat8E4M3, n, k, device);
  p.weight_scale =
      TensorView::matrix(p.b_scale_dev.get(), DType::kFloat32, p.b.scale_rows, p.b.scale_cols, device);
  p.out = TensorView::strided(p.out_dev.get(), spec.out_dtype, m, n, ldo, 1, device);
}

void poison_out(Problem& p) {
  // 0xFF bytes are NaN in bf16, fp16 and fp32 alike.
  check_cuda(cudaMemset(p.out_dev.get(), 0xFF, p.out_dev.bytes()), "poison out");
  // cudaMemset runs on the legacy stream and returns before it is done; a non-blocking stream (the graph
  // replays) is not ordered after it, so without this wait the poison could land after the GEMM's stores.
  check_cuda(cudaDeviceSynchronize(), "poison out");
}

std::vector<int64_t> rows_to_check(int64_t m) {
  std::vector<int64_t> rows;
  if (m <= 192) {
    for (int64_t r = 0; r < m; ++r) rows.push_back(r);
    return rows;
  }
  std::set<int64_t> picked;
  for (int64_t r = 0; r < 8; ++r) picked.insert(r);
  for (int64_t r = m - 8; r < m; ++r) picked.insert(r);
  for (int64_t b : {int64_t{63}, int64_t{64}, int64_t{127}, int64_t{128}, (m / 64) * 64 - 1, (m / 64) * 64})
    if (b >= 0 && b < m) picked.insert(b);
  std::mt19937_64 rng(static_cast<uint64_t>(m));
  while (picked.size() < 48) picked.insert(static_cast<int64_t>(rng() % static_cast<uint64_t>(m)));
  rows.assign(picked.begin(), picked.end());
  return rows;
}

double element_to_double(const std::vector<uint8_t>& raw, std::size_t index, DType dtype) {
  switch (dtype) {
    case DType::kFloat32: {
      float v;
      std::memcpy(&v, raw.data() + index * 4, 4);
      return v;
    }
    case DType::kBFloat16: {
      uint16_t v;
      std::memcpy(&v, raw.data() + index * 2, 2);
      return reference::bf16_to_float(v);
    }
    case DType::kFloat16: {
      uint16_t v;
      std::memcpy(&v, raw.data() + index * 2, 2);
      return reference::fp16_to_float(v);
    }
    default:
      return std::nan("");
  }
}

std::vector<double> download_out(const Problem& p) {
  const int64_t m = p.spec.m, n = p.spec.n, ldo = n + p.spec.out_row_padding;
  std::vector<uint8_t> raw(p.out_dev.bytes());
  p.out_dev.download(raw.data(), raw.size());
  std::vector<double> out(static_cast<std::size_t>(m * n));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < n; ++c)
      out[r * n + c] = element_to_double(raw, static_cast<std::size_t>(r * ldo + c), p.spec.out_dtype);
  return out;
}

double max_scaled_error(const double* x, const double* y, int64_t count) {
  if (count == 0) return 0;
  double sum_sq = 0;
  for (int64_t i = 0; i < count; ++i) sum_sq += y[i] * y[i];
  const double rms = std::sqrt(sum_sq / static_cast<double>(count));
  double worst = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double e = std::abs(x[i] - y[i]) / (std::abs(y[i]) + rms);
    // NaN compares false: count it as the worst error there is.
    worst = std::isnan(e) ? std::numeric_limits<double>::infinity() : std::max(worst, e);
  }
  return worst;
}

CheckResult check_against_reference(Problem& p) {
  const int64_t m = p.spec.m, n = p.spec.n, k = p.spec.k, ldo = n + p.spec.out_row_padding;
  CheckResult result;
  std::vector<uint8_t> raw(p.out_dev.bytes());
  p.out_dev.download(raw.data(), raw.size());
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < ldo; ++c) {
      const double v = element_to_double(raw, static_cast<std::size_t>(r * ldo + c), p.spec.out_dtype);
      if (c < n && std::isnan(v)) ++result.nan_count;
      if (c >= n && !std::isnan(v)) ++result.padding_written;
    }
  std::vector<double> ref(static_cast<std::size_t>(m * n), 0.0);
  const std::vector<int64_t> rows = rows_to_check(m);
  // Contiguous runs of rows go to the reference together.
  for (std::size_t i = 0; i < rows.size();) {
    std::size_t j = i + 1;
    while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
    reference::blockscale_gemm(p.a.values.data(), p.a.scales.data(), p.b.values.data(), p.b.scales.data(),
                               p.spec.per_row_weight_scale, m, n, k, ref.data(), rows[i], rows[j - 1] + 1);
    i = j;
  }
  for (int64_t r : rows)
    for (int64_t c = 0; c < n; ++c) {
      result.out_checked.push_back(
          element_to_double(raw, static_cast<std::size_t>(r * ldo + c), p.spec.out_dtype));
      result.ref_checked.push_back(ref[r * n + c]);
    }
  result.diff = reference::calc_diff(result.out_checked.data(), result.ref_checked.data(),
                                     static_cast<int64_t>(result.out_checked.size()));
  result.max_scaled_error = max_scaled_error(result.out_checked.data(), result.ref_checked.data(),
                                             static_cast<int64_t>(result.out_checked.size()));
  return result;
}

}  // namespace blockgemm::testing
