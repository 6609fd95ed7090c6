// Number and string formatting shared by blockgemm-bench's tables and JSON.
#pragma once

#include <string>
#include <vector>

namespace blockgemm_bench {

// `value` with `decimals` decimals; "n/a" when not finite.
std::string fixed(double value, int decimals);
// `value` as %.2e; "n/a" when NaN.
std::string scientific(double value);

// A JSON string literal of `text`, quotes included.
std::string json_string(const std::string& text);
// %.6g, or null when not finite.
std::string json_number(double value);
std::string json_numbers(const std::vector<double>& values);
inline const char* json_bool(bool value) {
  return value ? "true" : "false";
}

}  // namespace blockgemm_bench
