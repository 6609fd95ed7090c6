// GPU tests of the grouped GEMM (blockgemm/grouped.h): the masked layout (rows past a group's count neither
// read into results nor written), CUDA graphs replayed with new counts and tables, and malformed device
// tables. Output poisoned with NaN first, as in test_grouped.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "api/grouped_validate.h"
#include "blockgemm/grouped.h"
#include "grouped_test_util.h"
#include "heuristics/heuristics.h"
#include "kernels/launch.h"

namespace blockgemm::testing {
namespace {

// ---- masked layout
// ------------------------------------------------------------------------------------------

void run_masked(int64_t g, int64_t m_max, const std::vector<int32_t>& masked_m,
                std::optional<int64_t> expected_m, int64_t n, int64_t k, bool per_row, bool bf16_input,
                uint64_t seed) {
  GroupedData d;
  make_grouped(d, g, g * m_max, n, k, per_row, bf16_input, seed);
  d.poison();
  DeviceInts counts(masked_m);
  const TensorView input = d.masked_input(m_max), out = d.masked_out(m_max);
  const std::optional<TensorView> input_scale = d.masked_input_scale(m_max);
  grouped_gemm_masked(input, d.weight(), input_scale, d.weight_scale(), counts.view(g, d.device), expected_m,
                      out);
  check_cuda(cudaDeviceSynchronize(), "grouped gemm");
  std::vector<GroupRows> expected;
  for (int64_t i = 0; i < g; ++i)
    expected.push_back({i * m_max, std::clamp<int64_t>(masked_m[static_cast<std::size_t>(i)], 0, m_max)});
  const std::string where = "masked G=" + std::to_string(g) + " M_max=" + std::to_string(m_max) +
                            " expected_m=" + std::to_string(expected_m.value_or(m_max)) +
                            (bf16_input ? " bf16" : " fp8") + (per_row ? " per-row " : " per-block ") +
                            describe_grouped_plan_masked(g, m_max, expected_m.value_or(m_max), n, k, per_row);
  check_groups(d, expected, where);
}

TEST(GroupedMasked, MaskedRowsUntouchedForEveryTileChoice) {
  BLOCKGEMM_REQUIRE_HOPPER();
  // Counts past M_max and negative ones are clamped.
  const std::vector<int32_t> counts = {0, 1, 17, 48, 60, -3};
  for (const int64_t expected_m : {1, 12, 24, 48, 100})
    for (const bool per_row : {false, true})
      run_masked(6, 48, counts, expected_m, 320, 512, per_row, false, 20 + static_cast<uint64_t>(expected_m));
  run_masked(6, 48, counts, std::nullopt, 320, 512, false, false, 27);
  // Normal tiles: 128 and 256 rows.
  run_masked(4, 300, {300, 0, 130, 7}, 150, 384, 512, false, false, 28);
  run_masked(4, 300, {300, 0, 257, 7}, 300, 384, 512, false, false, 29);
}

// bench/NOTES.md #74 through the public call: the plans are the 128x192 pair along M (asserted), and groups
// of an odd row-block count (513 rows: 5 blocks, 300: 3, 1: 1) run their last row block as tail units; at
// N = 2112 (11 column blocks) each tail row block ends in a tile wholly past N. K = 1024: 8 K blocks, so the
// pair's 4-stage ring wraps inside a unit.
TEST(GroupedMasked, PairPlansRunOddRowBlocksAsTailUnits) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const heuristics::DeviceModel h100;
  ASSERT_EQ(heuristics::plan_grouped_masked(2, 668, 513, 2112, 1024, false, h100).tile,
            (heuristics::TileShape{128, 192, 2}))
      << "this case is meant to run the pair's tail units";
  ASSERT_EQ(heuristics::plan_grouped_masked(4, 668, 513, 1024, 1024, false, h100).tile,
            (heuristics::TileShape{128, 192, 2}));
  run_masked(2, 668, {513, 129}, 513, 2112, 1024, false, false, 33);
  run_masked(4, 668, {513, 1, 300, 668}, 513, 1024, 1024, false, false, 34);
}

TEST(GroupedMasked, Bf16InputIsQuantizedInside) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const std::vector<int32_t> counts = {5, 0, 32, 9, 1, 31, 16, 2};
  run_masked(8, 32, counts, 8, 1024, 1024, false, true, 30);  // 8-token tile: cast in the kernel
  run_masked(8, 32, counts, 32, 256, 512, true, true, 31);    // 32-token tile: cast in the kernel
  run_masked(8, 64, {64, 3, 0, 33, 64, 1, 2, 50}, 64, 256, 512, false, true, 32);  // 64: quantizer first
}

// ---- CUDA graphs: the counts change between replays
// ---------------------------------------------------------

TEST(GroupedGraphs, MaskedCountsChangeBetweenReplays) {
  BLOCKGEMM_REQUIRE_HOPPER();
  for (const bool bf16_input : {false, true}) {
    const int64_t g = 8, m_max = 32, n = 512, k = 512;
    GroupedData d;
    make_grouped(d, g, g * m_max, n, k, false, bf16_input, 40);
    DeviceInts counts(std::vector<int32_t>(static_cast<std::size_t>(g), 0));
    const TensorView input = d.masked_input(m_max), out = d.masked_out(m_max);
    const std::optional<TensorView> input_scale = d.masked_input_scale(m_max);
    cudaStream_t stream;
    check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
    grouped_gemm_masked(input, d.weight(), input_scale, d.weight_scale(), counts.view(g, d.device), 16, out,
                        std::nullopt, stream);
    check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
    check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    const std::vector<std::vector<int32_t>> replays = {{1, 2, 3, 4, 5, 6, 7, 8},
                                                       {32, 0, 0, 17, 0, 0, 0, 32},
                                                       {0, 0, 0, 0, 0, 0, 0, 0},
                                                       {9, 31, 16, 15, 1, 0, 8, 30}};
    for (const auto& replay : replays) {
      counts.set(replay);
      d.poison();
      check_cuda(cudaGraphLaunch(exec, stream), "replay");
      check_cuda(cudaStreamSynchronize(stream), "replay sync");
      std::vector<GroupRows> expected;
      for (int64_t i = 0; i < g; ++i) expected.push_back({i * m_max, replay[static_cast<std::size_t>(i)]});
      check_groups(d, expected, std::string("graph replay") + (bf16_input ? " bf16" : " fp8"));
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
  }
}

// bench/NOTES.md #73: given a workspace, the masked call copies row-major fp8 input scales M-contiguous per
// group (only the rows below each count) before a long 128-row plan. The copy only moves them: bitwise the
// call with column-major scales (group g's rows at g * M_max, M_max % 4 = 2: tiles start 0 or 2 rows past
// a 16-byte chunk), eager and replayed from a graph with the counts changed, rows past the counts untouched.
TEST(GroupedMasked, RowMajorScalesCopiedGiveTheColumnMajorResult) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int64_t g = 3, m_max = 1030, n = 4096, k = 7168, kg = k / 128, expected_m = 600;
  GroupedData d;
  make_grouped(d, g, g * m_max, n, k, false, false, 73);
  const TensorView input = d.masked_input(m_max), out = d.masked_out(m_max);
  const std::size_t bytes = grouped_gemm_masked_workspace_bytes(input, d.weight(), expected_m);
  const std::size_t copy = static_cast<std::size_t>(g * kg * 1032 * 4);
  if (bytes < copy)
    GTEST_SKIP() << "this GPU's plan for 3 x 1030 x 4096 x 7168 (expected M 600) makes no input-scale copy "
                    "(132-SM H100: 128x160)";
  const int64_t ld = (g * m_max + 3) / 4 * 4;
  std::vector<float> col(static_cast<std::size_t>(ld * kg), std::numeric_limits<float>::quiet_NaN());
  for (int64_t r = 0; r < g * m_max; ++r)
    for (int64_t c = 0; c < kg; ++c)
      col[static_cast<std::size_t>(c * ld + r)] = d.a.scales[static_cast<std::size_t>(r * kg + c)];
  DeviceBuffer col_dev(col.size() * 4);
  col_dev.upload(col.data(), col.size() * 4);
  const TensorView col_view =
      TensorView::strided3(col_dev.get(), DType::kFloat32, g, m_max, kg, m_max, 1, ld, d.device);
  EXPECT_EQ(grouped_gemm_masked_workspace_bytes(input, d.weight(), expected_m, std::nullopt, col_view), 0u);
  DeviceInts counts(std::vector<int32_t>{1030, 3, 700});
  auto download = [&] {
    std::vector<uint16_t> host(static_cast<std::size_t>(g * m_max * n));
    d.out_dev.download(host.data(), host.size() * 2);
    return host;
  };
  auto column_major_result = [&] {
    d.poison();
    grouped_gemm_masked(input, d.weight(), col_view, d.weight_scale(), counts.view(g, d.device), expected_m,
                        out);
    check_cuda(cudaDeviceSynchronize(), "grouped gemm, column-major scales");
    return download();
  };
  const std::vector<uint16_t> expected = column_major_result();
  DeviceBuffer workspace(bytes);
  const Workspace ws{workspace.get(), bytes};
  d.poison();
  grouped_gemm_masked(input, d.weight(), d.masked_input_scale(m_max), d.weight_scale(),
                      counts.view(g, d.device), expected_m, out, std::nullopt, nullptr, ws);
  check_cuda(cudaDeviceSynchronize(), "grouped gemm, row-major scales copied");
  EXPECT_TRUE(download() == expected) << "eager";
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
  grouped_gemm_masked(input, d.weight(), d.masked_input_scale(m_max), d.weight_scale(),
                      counts.view(g, d.device), expected_m, out, std::nullopt, stream, ws);
  check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
  std::size_t nodes = 0;
  check_cuda(cudaGraphGetNodes(graph, nullptr, &nodes), "nodes");
  EXPECT_EQ(nodes, 2u) << "the copy and the GEMM";
  check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  for (const std::vector<int32_t>& replay :
       {std::vector<int32_t>{0, 1030, 517}, {5, 0, 1030}, {-2, 2000, 1}}) {
    counts.set(replay);
    const std::vector<uint16_t> want = column_major_result();
    d.poison();
    check_cuda(cudaGraphLaunch(exec, stream), "replay");
    check_cuda(cudaStreamSynchronize(stream), "replay sync");
    EXPECT_TRUE(download() == want) << "replay with counts " << replay[0] << ", " << replay[1] << ", "
                                    << replay[2];
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST(GroupedGraphs, ContiguousOffsetsAndIndexChangeBetweenReplays) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int64_t g = 4, m = 512, n = 256, k = 512;
  GroupedData d;
  make_grouped(d, g, m, n, k, true, false, 41);
  DeviceInts offsets(offsets_of({128, 128, 128, 128}));
  DeviceInts index(std::vector<int32_t>(static_cast<std::size_t>(m), -1));
  const GroupLayout by_offsets = GroupLayout::from_offsets(offsets.view(g + 1, d.device));
  const GroupLayout by_index = GroupLayout::from_group_index(index.view(m, d.device));
  const std::size_t bytes = grouped_gemm_contiguous_workspace_bytes(d.input2d(), d.weight(), by_index);
  DeviceBuffer workspace(bytes);
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  for (const bool use_index : {false, true}) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
    grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(),
                            use_index ? by_index : by_offsets, d.out2d(), std::nullopt, stream,
                            Workspace{workspace.get(), bytes});
    check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
    check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    for (const std::vector<int64_t>& sizes :
         {std::vector<int64_t>{512, 0, 0, 0}, std::vector<int64_t>{1, 200, 0, 300},
          std::vector<int64_t>{0, 0, 0, 0}, std::vector<int64_t>{100, 100, 100, 100}}) {
      const std::vector<int32_t> table = offsets_of(sizes);
      offsets.set(table);
      std::vector<int32_t> rows(static_cast<std::size_t>(m), -1);
      for (int64_t gi = 0; gi < g; ++gi)
        for (int32_t r = table[static_cast<std::size_t>(gi)]; r < table[static_cast<std::size_t>(gi) + 1];
             ++r)
          rows[static_cast<std::size_t>(r)] = static_cast<int32_t>(gi);
      index.set(rows);
      d.poison();
      check_cuda(cudaGraphLaunch(exec, stream), "replay");
      check_cuda(cudaStreamSynchronize(stream), "replay sync");
      check_groups(d, rows_of(table), use_index ? "graph replay, group index" : "graph replay, offsets");
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  cudaStreamDestroy(stream);
}

// ---- device-resident tables: malformed values stay memory-safe; explicit validation reports them
// -----------

TEST(GroupedTables, MalformedTablesWriteNothingOutsideTheView) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int64_t g = 4, m = 200, n = 128, k = 256;
  GroupedData d;
  make_grouped(d, g, m, n, k, false, false, 50, /*out_guard_rows=*/64);
  // Decreasing, negative and past-M_total offsets: clamped into [0, M_total] and made non-decreasing.
  const std::vector<std::pair<std::vector<int32_t>, std::vector<GroupRows>>> cases = {
      {{0, 150, 100, 400, 190}, {{0, 150}, {150, 0}, {150, 50}, {200, 0}}},
      {{-50, 10, -5, 20, 1 << 30}, {{0, 10}, {10, 0}, {10, 10}, {20, 180}}},
      {{500, 600, 700, 800, 900}, {{200, 0}, {200, 0}, {200, 0}, {200, 0}}}};
  for (const auto& [table, expected] : cases) {
    DeviceInts offsets(table);
    d.poison();
    grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(),
                            GroupLayout::from_offsets(offsets.view(g + 1, d.device)), d.out2d());
    check_cuda(cudaDeviceSynchronize(), "grouped gemm");
    check_groups(d, expected, "malformed offsets");
    EXPECT_THROW(validate_group_offsets(offsets.view(g + 1, d.device), m), Error);
  }
  // Group indices outside [0, G) are padding.
  std::vector<int32_t> index(static_cast<std::size_t>(m), 7);
  for (int64_t r = 10; r < 30; ++r) index[static_cast<std::size_t>(r)] = 2;
  for (int64_t r = 30; r < 35; ++r) index[static_cast<std::size_t>(r)] = -5;
  DeviceInts index_dev(index);
  d.poison();
  grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(),
                          GroupLayout::from_group_index(index_dev.view(m, d.device)), d.out2d());
  check_cuda(cudaDeviceSynchronize(), "grouped gemm");
  check_groups(d, {{0, 0}, {0, 0}, {10, 20}, {0, 0}}, "out-of-range group index");
  EXPECT_THROW(validate_group_index(index_dev.view(m, d.device), g), Error);
  // Valid tables pass the explicit checks.
  DeviceInts good(offsets_of({50, 0, 100, 50}));
  EXPECT_NO_THROW(validate_group_offsets(good.view(g + 1, d.device), m));
}

TEST(GroupedTables, ValidationRefusesToRunDuringCapture) {
  BLOCKGEMM_REQUIRE_HOPPER();
  DeviceInts offsets(offsets_of({1, 2}));
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  cudaGraph_t graph;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
  int device = 0;
  check_cuda(cudaGetDevice(&device), "device");
  EXPECT_THROW(validate_group_offsets(offsets.view(3, device), 3, stream), Error);
  check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}
}  // namespace
}  // namespace blockgemm::testing
