#include "report_json.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "operand_sets.h"
#include "text_format.h"

namespace blockgemm_bench {
namespace {

std::string json_conditions(const DeviceConditions& c) {
  std::ostringstream out;
  out << "{\"samples\": " << c.samples << ", \"sm_clock_mhz\": " << json_number(c.sm_clock_mhz)
      << ", \"sm_clock_min_mhz\": " << json_number(c.sm_clock_min_mhz)
      << ", \"sm_clock_max_mhz\": " << json_number(c.sm_clock_max_mhz)
      << ", \"power_w\": " << json_number(c.power_w)
      << ", \"temperature_c\": " << json_number(c.temperature_c) << ", \"clock_event_reasons\": ";
  if (c.throttle_known) {
    out << c.throttle_reasons;
  } else {
    out << "null";
  }
  out << "}";
  return out.str();
}

// null when the protocol did not run for this backend.
std::string json_protocol(const ProtocolTiming& timing, Protocol protocol) {
  if (!timing.ran) return "null";
  std::ostringstream out;
  out << "{\"us\": " << json_number(timing.us) << ", \"best_round\": " << timing.best_round
      << ", \"rounds\": [";
  for (std::size_t i = 0; i < timing.rounds.size(); ++i) {
    const RoundTiming& round = timing.rounds[i];
    out << (i ? ", " : "") << "{\"round\": " << round.round << ", \"position\": " << round.position
        << ", \"us\": " << json_number(round.us);
    if (protocol == Protocol::kSteady) {
      out << ", \"warm_replays\": " << round.warm_replays
          << ", \"warm_seconds\": " << json_number(round.warm_seconds);
    }
    out << ", \"nvml\": " << json_conditions(round.conditions)
        << ", \"replay_us\": " << json_numbers(round.replay_us) << "}";
  }
  out << "]}";
  return out.str();
}

// "us", "calls_per_graph" and "replay_us" keep their meaning from before the protocols (the burst figure
// and the replays of its best round), so older readers of these files keep working.
std::string json_backend(const BackendResult& b) {
  const RoundTiming* best_burst = b.burst.best();
  std::ostringstream out;
  out << "{\"us\": " << json_number(b.us(Protocol::kBurst))
      << ", \"steady_us\": " << json_number(b.us(Protocol::kSteady))
      << ", \"calls_per_graph\": " << b.calls_per_graph << ", \"check_ran\": " << json_bool(b.check.ran)
      << ", \"all_finite\": " << json_bool(b.check.all_finite) << ", \"diff\": " << json_number(b.check.diff)
      << ", \"note\": " << json_string(b.note) << ", \"replay_us\": "
      << json_numbers(best_burst != nullptr ? best_burst->replay_us : std::vector<double>())
      << ",\n       \"burst\": " << json_protocol(b.burst, Protocol::kBurst)
      << ",\n       \"steady\": " << json_protocol(b.steady, Protocol::kSteady) << "}";
  return out.str();
}

std::string json_quantizers(const QuantizerReport& report) {
  std::ostringstream out;
  const CopyResult& copy = report.copy;
  out << "{\n    \"copy\": {\"api\": \"cudaMemcpyAsync device to device\", \"bytes_copied\": " << copy.bytes
      << ", \"bytes_read_plus_written\": " << 2 * copy.bytes << ", \"us\": " << json_number(copy.timing.us)
      << ", \"gbps\": " << json_number(copy.gbps())
      << ", \"calls_per_graph\": " << copy.timing.calls_per_graph
      << ", \"note\": " << json_string(copy.timing.note)
      << ", \"replay_us\": " << json_numbers(copy.timing.replay_us) << "},\n    \"rows\": [\n";
  for (std::size_t i = 0; i < report.rows.size(); ++i) {
    const QuantizerResult& q = report.rows[i];
    out << "      {\"kernel\": " << json_string(q.kernel()) << ", \"rows\": " << q.c.rows
        << ", \"cols\": " << q.c.cols
        << ", \"scale_layout\": " << json_string(q.c.per_block ? "row-major" : "column-major")
        << ", \"scale_ld\": " << q.scale_ld << ", \"traffic_bytes\": " << q.traffic_bytes
        << ", \"rotation_sets\": " << q.rotation_sets << ", \"us\": " << json_number(q.timing.us)
        << ", \"gbps\": " << json_number(q.gbps())
        << ", \"percent_of_copy\": " << json_number(percent_of_copy(q, copy))
        << ", \"same_bytes_copy_us\": " << json_number(q.same_bytes_copy.timing.us)
        << ", \"percent_of_same_bytes_copy\": " << json_number(percent_of_copy(q, q.same_bytes_copy))
        << ", \"calls_per_graph\": " << q.timing.calls_per_graph
        << ", \"check_ran\": " << json_bool(q.check_ran) << ", \"value_mismatches\": " << q.value_mismatches
        << ", \"scale_mismatches\": " << q.scale_mismatches << ", \"passed\": " << json_bool(q.passed)
        << ", \"note\": " << json_string(q.timing.note)
        << ", \"replay_us\": " << json_numbers(q.timing.replay_us) << "}"
        << (i + 1 < report.rows.size() ? "," : "") << "\n";
  }
  out << "    ],\n    \"min_percent_of_copy\": " << json_number(report.min_percent_of_copy)
      << ",\n    \"min_percent_of_same_bytes_copy\": " << json_number(report.min_percent_of_same_bytes_copy)
      << "\n  }";
  return out.str();
}

std::string json_options(const Options& options) {
  const ProtocolOptions& p = options.protocol;
  const bool row = options.scale_layout == ScaleLayout::kRowMajor;
  std::ostringstream out;
  out << "{\"api\": \"blockgemm::fp8_blockscale_gemm_sm90\", \"out_dtype\": "
      << json_string(out_dtype_name(options.out_dtype)) << ", \"weight_scale\": "
      << json_string(options.weight_scale == WeightScaleLayout::kBlock128x128 ? "block" : "token")
      << ", \"scale_layout\": " << json_string(scale_layout_name(options.scale_layout))
      << ", \"input_scale_layout\": "
      << json_string(row ? "row-major (M, K/128)" : "column-major (M, K/128), ld roundup(M, 4)")
      << ", \"baselines\": " << json_bool(options.run_baselines) << ", \"check_rows\": " << options.check_rows
      << ", \"seed\": " << options.seed << ", \"rotation_target_bytes\": " << kRotationTargetBytes
      << ", \"max_ours_diff\": " << json_number(kMaxOursDiff) << ", \"gemm\": " << json_bool(options.run_gemm)
      << ", \"paths\": [\"fp8\"" << (options.paths.bf16_fp8 ? ", \"bf16-fp8\"" : "")
      << (options.paths.bf16_bf16 ? ", \"bf16-bf16\"" : "")
      << "], \"quantizers\": " << json_bool(options.run_quantizers)
      << ",\n              \"protocol\": " << json_string(protocol_name(p)) << ", \"rounds\": " << p.rounds
      << ", \"timed_replays\": " << p.timed_replays << ", \"warm_seconds\": " << json_number(p.warm_seconds)
      << ", \"steady_min_m\": " << p.steady_min_m << "}";
  return out.str();
}

}  // namespace

void write_json(const std::string& path, const RunInfo& info, const Options& options,
                const std::vector<ShapeResult>& results, const std::vector<Summary>& summaries,
                const QuantizerReport& quantizers, bool all_passed) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot open " + path + " for writing");
  const Protocol burst = Protocol::kBurst, steady = Protocol::kSteady;
  out << "{\n";
  out << "  \"tool\": \"blockgemm-bench\",\n";
  out << "  \"date_utc\": " << json_string(info.date_utc) << ",\n";
  out << "  \"device\": {\"name\": " << json_string(info.device_name) << ", \"sm_count\": " << info.sm_count
      << ", \"compute_capability\": \"" << info.compute_major << "." << info.compute_minor
      << "\", \"l2_bytes\": " << info.l2_bytes << ", \"nvml\": " << json_string(info.nvml_status) << "},\n";
  out << "  \"versions\": {\"driver\": " << info.driver_version << ", \"runtime\": " << info.runtime_version
      << ", \"cublaslt\": " << info.cublaslt_version << "},\n";
  out << "  \"options\": " << json_options(options) << ",\n";
  out << "  \"all_ours_checks_passed\": " << json_bool(all_passed) << ",\n";
  out << "  \"rows\": [\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const ShapeResult& r = results[i];
    out << "    {\"m\": " << r.shape.m << ", \"n\": " << r.shape.n << ", \"k\": " << r.shape.k
        << ", \"plan\": " << json_string(r.plan) << ", \"ours_passed\": " << json_bool(r.ours_passed)
        << ", \"tflops\": " << json_number(tflops(r, burst)) << ", \"gbps\": " << json_number(gbps(r, burst))
        << ", \"traffic_bytes\": " << r.traffic_bytes << ", \"rotation_sets\": " << r.rotation_sets
        << ", \"rotated_bytes_per_set\": " << r.rotated_bytes_per_set
        << ", \"speedup_vs_cublaslt_block\": " << json_number(speedup(r.lt, r.ours, burst))
        << ", \"speedup_vs_cublas_bf16\": " << json_number(speedup(r.bf16, r.ours, burst))
        << ",\n     \"steady_tflops\": " << json_number(tflops(r, steady))
        << ", \"steady_speedup_vs_cublaslt_block\": " << json_number(speedup(r.lt, r.ours, steady))
        << ", \"steady_speedup_vs_cublas_bf16\": " << json_number(speedup(r.bf16, r.ours, steady))
        << ",\n     \"ours\": " << json_backend(r.ours)
        << ",\n     \"cublaslt_block\": " << json_backend(r.lt)
        << ", \"cublaslt_algorithm\": " << json_string(r.lt_algorithm)
        << ",\n     \"cublas_bf16\": " << json_backend(r.bf16);
    // The bf16 paths' fields only when measured, so that default records keep their old form.
    if (options.paths.any_bf16()) out << ",\n     \"workspace_bytes\": " << r.workspace_bytes;
    if (options.paths.bf16_fp8) {
      out << ", \"bf16_fp8_us\": " << json_number(r.bf16_fp8.us(burst))
          << ", \"bf16_fp8_ratio_to_fp8\": " << json_number(time_ratio(r.bf16_fp8, r.ours))
          << ", \"bf16_fp8_passed\": " << json_bool(r.bf16_fp8_passed)
          << ",\n     \"bf16_fp8\": " << json_backend(r.bf16_fp8);
    }
    if (options.paths.bf16_bf16) {
      out << ",\n     \"bf16_bf16_us\": " << json_number(r.bf16_bf16.us(burst))
          << ", \"bf16_bf16_ratio_to_fp8\": " << json_number(time_ratio(r.bf16_bf16, r.ours))
          << ", \"bf16_bf16_passed\": " << json_bool(r.bf16_bf16_passed)
          << ",\n     \"bf16_bf16\": " << json_backend(r.bf16_bf16);
    }
    out << "}" << (i + 1 < results.size() ? "," : "") << "\n";
  }
  out << "  ],\n";
  out << "  \"summaries\": [\n";
  for (std::size_t i = 0; i < summaries.size(); ++i) {
    const Summary& s = summaries[i];
    out << "    {\"name\": " << json_string(s.name) << ", \"kind\": " << json_string(s.kind)
        << ", \"protocol\": " << json_string(protocol_label(s.protocol))
        << ", \"value\": " << json_number(s.value) << ", \"shapes\": " << s.shapes << "}"
        << (i + 1 < summaries.size() ? "," : "") << "\n";
  }
  out << "  ]";
  if (quantizers.ran) out << ",\n  \"quantizers\": " << json_quantizers(quantizers);
  out << "\n}\n";
  if (!out) throw std::runtime_error("failed writing " + path);
}

}  // namespace blockgemm_bench
