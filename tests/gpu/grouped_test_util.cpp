// Helpers of the grouped GEMM's GPU tests (grouped_test_util.h).
#include "grouped_test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace blockgemm::testing {
namespace {

std::vector<float> random_normal(int64_t count, uint64_t seed, float scale = 1.f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> x(static_cast<std::size_t>(count));
  for (auto& v : x) v = dist(rng);
  return x;
}

}  // namespace

void make_grouped(GroupedData& d, int64_t g, int64_t m, int64_t n, int64_t k, bool per_row, bool bf16_input,
                  uint64_t seed, int64_t out_guard_rows) {
  d.g = g, d.m = m, d.n = n, d.k = k, d.kg = k / 128, d.per_row = per_row, d.bf16_input = bf16_input;
  d.out_guard_rows = out_guard_rows;
  check_cuda(cudaGetDevice(&d.device), "cudaGetDevice");
  std::vector<float> a = random_normal(m * k, seed * 3 + 1);
  if (bf16_input) {
    // The GPU quantizers are bitwise the reference's on the same bf16 values.
    d.a_bf16.resize(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      d.a_bf16[i] = reference::float_to_bf16(a[i]);
      a[i] = reference::bf16_to_float(d.a_bf16[i]);
    }
  }
  d.a = reference::per_token_cast_to_fp8(a.data(), m, k);
  d.b.clear();
  std::vector<uint8_t> b_values;
  std::vector<float> b_scales;
  for (int64_t i = 0; i < g; ++i) {
    // Groups differ in magnitude, so a group computed with another's weight or scales shows.
    std::vector<float> w =
        random_normal(n * k, seed * 3 + 2 + static_cast<uint64_t>(i) * 101, 0.5f + static_cast<float>(i % 5));
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < k; ++c) w[r * k + c] *= 0.25f + static_cast<float>((r * 7 + i) % 13) / 4.f;
    d.b.push_back(per_row ? reference::per_token_cast_to_fp8(w.data(), n, k)
                          : reference::per_block_cast_to_fp8(w.data(), n, k));
    b_values.insert(b_values.end(), d.b.back().values.begin(), d.b.back().values.end());
    b_scales.insert(b_scales.end(), d.b.back().scales.begin(), d.b.back().scales.end());
  }
  if (bf16_input) {
    d.a_dev = DeviceBuffer(d.a_bf16.size() * 2);
    if (m) d.a_dev.upload(d.a_bf16.data(), d.a_bf16.size() * 2);
  } else {
    d.a_dev = DeviceBuffer(d.a.values.size());
    if (m) d.a_dev.upload(d.a.values.data(), d.a.values.size());
    std::vector<float> scales = d.a.scales;
    if (d.col_major_scales) {
      // The padding rows hold NaN: a kernel that read them into a valid row would show it.
      d.scale_ld = (m + 3) / 4 * 4;
      scales.assign(static_cast<std::size_t>(d.scale_ld * d.kg), std::numeric_limits<float>::quiet_NaN());
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c < d.kg; ++c)
          scales[static_cast<std::size_t>(c * d.scale_ld + r)] =
              d.a.scales[static_cast<std::size_t>(r * d.kg + c)];
    }
    d.a_scale_dev = DeviceBuffer(scales.size() * 4);
    if (m) d.a_scale_dev.upload(scales.data(), scales.size() * 4);
  }
  d.b_dev = DeviceBuffer(b_values.size());
  d.b_dev.upload(b_values.data(), b_values.size());
  d.b_scale_dev = DeviceBuffer(b_scales.size() * 4);
  d.b_scale_dev.upload(b_scales.data(), b_scales.size() * 4);
  d.out_dev = DeviceBuffer(static_cast<std::size_t>((m + out_guard_rows) * n) * 2);
}

// Downloads out and checks each group's rows against the reference, and that every other row (padding,
// masked, past the view) kept its poison.
void check_groups(const GroupedData& d, const std::vector<GroupRows>& groups, const std::string& where) {
  std::vector<uint16_t> out(static_cast<std::size_t>((d.m + d.out_guard_rows) * d.n));
  d.out_dev.download(out.data(), out.size() * 2);
  std::vector<bool> owned(static_cast<std::size_t>(d.m + d.out_guard_rows), false);
  for (int64_t gi = 0; gi < static_cast<int64_t>(groups.size()); ++gi) {
    const auto [start, rows] = groups[static_cast<std::size_t>(gi)];
    if (rows == 0) continue;
    const reference::Quantized& b = d.b[static_cast<std::size_t>(gi)];
    std::vector<double> ref(static_cast<std::size_t>(rows * d.n));
    reference::blockscale_gemm(d.a.values.data() + start * d.k, d.a.scales.data() + start * d.kg,
                               b.values.data(), b.scales.data(), d.per_row, rows, d.n, d.k, ref.data());
    std::vector<double> got(ref.size());
    int64_t nan_count = 0;
    for (int64_t r = 0; r < rows; ++r) {
      owned[static_cast<std::size_t>(start + r)] = true;
      for (int64_t c = 0; c < d.n; ++c) {
        const double v = reference::bf16_to_float(out[static_cast<std::size_t>((start + r) * d.n + c)]);
        nan_count += std::isnan(v);
        got[static_cast<std::size_t>(r * d.n + c)] = v;
      }
    }
    EXPECT_EQ(nan_count, 0) << where << " group " << gi << " (rows " << start << "+" << rows
                            << "): unwritten or NaN outputs";
    const double diff = reference::calc_diff(got.data(), ref.data(), static_cast<int64_t>(ref.size()));
    EXPECT_LT(diff, kMaxDiff) << where << " group " << gi << " (rows " << start << "+" << rows << ")";
    EXPECT_LE(max_scaled_error(got.data(), ref.data(), static_cast<int64_t>(ref.size())), kMaxScaledError)
        << where << " group " << gi;
  }
  int64_t written = 0, first = -1;
  for (int64_t r = 0; r < d.m + d.out_guard_rows; ++r) {
    if (owned[static_cast<std::size_t>(r)]) continue;
    for (int64_t c = 0; c < d.n; ++c)
      if (out[static_cast<std::size_t>(r * d.n + c)] != kPoison) {
        if (first < 0) first = r;
        ++written;
      }
  }
  EXPECT_EQ(written, 0) << where << ": " << written << " elements written outside every group (first in row "
                        << first << ")";
}

std::vector<int32_t> offsets_of(const std::vector<int64_t>& sizes, int64_t first_row) {
  std::vector<int32_t> offsets = {static_cast<int32_t>(first_row)};
  for (int64_t s : sizes) offsets.push_back(offsets.back() + static_cast<int32_t>(s));
  return offsets;
}
std::vector<GroupRows> rows_of(const std::vector<int32_t>& offsets) {
  std::vector<GroupRows> rows;
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
    rows.push_back({offsets[i], offsets[i + 1] - offsets[i]});
  return rows;
}

}  // namespace blockgemm::testing
