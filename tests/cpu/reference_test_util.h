// Shared by the CPU reference's tests (test_reference_conversions.cpp, test_reference_quantize.cpp,
// test_reference_gemm.cpp): float special values and a float's bits.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

namespace blockgemm::testing {

inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
inline constexpr float kInf = std::numeric_limits<float>::infinity();

inline uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}

}  // namespace blockgemm::testing
