#include "api/grouped_validate.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "api/argument_check.h"

namespace blockgemm::api {
namespace {

constexpr int64_t kGroupK = 128;
constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;  // the kernels index rows and columns with 32 bits

std::string str(int64_t value) {
  return std::to_string(value);
}
std::string tuple(std::initializer_list<int64_t> values) {
  std::string s = "(";
  bool first = true;
  for (int64_t v : values) s += (first ? "" : ", ") + str(v), first = false;
  return s + ")";
}
std::string vector_shape(const Int32View& v) {
  return "(" + str(v.size) + ",)";
}

// [first byte, one past the last byte) of a non-empty view with non-negative strides, any rank.
std::pair<uintptr_t, uintptr_t> span_of(const void* data, const int64_t* shape, const int64_t* strides,
                                        int rank, std::size_t element_bytes) {
  int64_t last = 0;
  for (int i = 0; i < rank; ++i) last += (shape[i] - 1) * strides[i];
  const auto begin = reinterpret_cast<uintptr_t>(data);
  return {begin, begin + static_cast<uintptr_t>(last + 1) * element_bytes};
}

struct Span {
  std::string name;
  bool empty;
  std::pair<uintptr_t, uintptr_t> bytes;
};
Span span(const std::string& name, const TensorView& t) {
  if (t.numel() <= 0) return {name, true, {0, 0}};
  return {name, false, span_of(t.data, t.shape, t.strides, t.rank, dtype_size(t.dtype))};
}
Span span(const std::string& name, const Int32View& v) {
  if (v.size <= 0) return {name, true, {0, 0}};
  return {name, false, span_of(v.data, &v.size, &v.stride, 1, sizeof(int32_t))};
}

class GroupedCheck : public ArgumentCheck {
 public:
  explicit GroupedCheck(const char* function) : ArgumentCheck(function) {}

  void require_rank3(const std::string& name, const TensorView& t, const char* dims) const {
    if (t.rank != 3) fail(name, std::string("a 3-D tensor ") + dims, str(t.rank) + "-D tensor");
    if (t.shape[0] < 0 || t.shape[1] < 0 || t.shape[2] < 0) fail(name, "non-negative sizes", shape_str(t));
    require_data(name, t);
  }

  // The (d0 * d1, d2) matrix view of a rank-3 tensor whose d0 matrices are stacked rows of one matrix: unit
  // column stride and group stride d1 * row stride (any where there is one group or one row per group),
  // then the row-major checks of the dense call (16-byte aligned data and row stride).
  TensorView require_stacked_rows(const std::string& name, const TensorView& t) const {
    const int64_t d0 = t.shape[0], d1 = t.shape[1], d2 = t.shape[2];
    const int64_t s0 = t.strides[0], s1 = t.strides[1];
    if (d2 > 1 && t.strides[2] != 1) fail(name + " strides", "column stride 1 (row-major)", stride_str(t));
    if (d0 > 1 && d1 > 1 && s0 != d1 * s1)
      fail(name + " strides",
           "a group stride of " + str(d1) + " rows x row stride " + str(s1) + " = " + str(d1 * s1) +
               " (the groups' rows must form one matrix)",
           stride_str(t));
    const int64_t row_stride = d1 > 1 ? s1 : d0 > 1 ? s0 : d2;
    const TensorView view = TensorView::strided(t.data, t.dtype, d0 * d1, d2, row_stride, 1, t.device);
    if (view.rows() > 1 && row_stride < d2)
      fail(name + " strides", "a row stride >= " + str(d2), stride_str(t));
    if (view.rows() > 1 && (row_stride * static_cast<int64_t>(dtype_size(t.dtype))) % 16 != 0)
      fail(name + " strides", "a row stride that is a multiple of 16 bytes", stride_str(t));
    require_row_major(name, view, 16);
    return view;
  }

  // A (G, rows, cols) scale tensor: each group's matrix row-major (row stride >= cols, column stride 1) or
  // column-major (row stride 1, column stride >= rows), any non-negative group stride; 4-byte aligned.
  ScaleStrides require_grouped_scale(const std::string& name, const TensorView& t) const {
    const int64_t rows = t.shape[1], cols = t.shape[2];
    const int64_t gs = t.strides[0], rs = t.strides[1], cs = t.strides[2];
    const bool row_major = (cols <= 1 || cs == 1) && (rows <= 1 || rs >= cols);
    const bool col_major = (rows <= 1 || rs == 1) && (cols <= 1 || cs >= rows);
    if ((t.shape[0] > 1 && gs < 0) || rs < 0 || cs < 0 || !(row_major || col_major))
      fail(name + " strides",
           "each group's matrix row-major (., >= " + str(cols) +
               ", 1) or column-major (., 1, >= " + str(rows) + "), group stride >= 0",
           stride_str(t));
    require_aligned(name, t.data, 4);
    return {rs, cs};
  }

  void require_table(const std::string& name, const Int32View& v, int64_t size, const std::string& what,
                     int device) const {
    if (v.size != size) fail(name, "shape (" + str(size) + ",) " + what, vector_shape(v));
    if (v.data == nullptr && v.size > 0) fail(name, "a non-null data pointer", "nullptr");
    if (v.size > 1 && v.stride != 1) fail(name + " stride", "1 (contiguous int32)", str(v.stride));
    if (v.device != device) fail(name + ".device", device_str(device), device_str(v.device));
    require_aligned(name, v.data, sizeof(int32_t));
  }

  void require_disjoint_spans(const Span& a, const Span& b) const {
    if (a.empty || b.empty) return;
    if (a.bytes.first < b.bytes.second && b.bytes.first < a.bytes.second)
      fail(a.name, "memory disjoint from " + b.name, "overlapping buffers");
  }
};

// The checks both layouts share once the views are 2-D: dtypes, weight, weight scale, out dtype.
struct Common {
  int64_t num_groups, n, k, k_groups;
  bool input_fp8, per_row;
  ScaleStrides weight_scale_layout{0, 0};
  int64_t weight_scale_group_stride = 0;
};

// The launcher's arguments for the 2-D views both layouts reduce to: input (rows, K) and out (rows, N) with
// the given row strides, the weight as its (G N, K) stack (`weight_matrix`).
kernels::Fp8GemmArgs view_args(const Common& c, int64_t rows, const TensorView& input,
                               int64_t input_row_stride, const TensorView& weight_matrix,
                               const std::optional<TensorView>& input_scale, ScaleStrides input_scale_layout,
                               const TensorView& weight_scale, const TensorView& out,
                               int64_t out_row_stride) {
  kernels::Fp8GemmArgs a{};
  a.m = static_cast<int>(rows);
  a.n = static_cast<int>(c.n);
  a.k = static_cast<int>(c.k);
  a.a = input.data;
  a.a_row_stride = input_row_stride;
  a.b = weight_matrix.data;
  a.b_row_stride = weight_matrix.strides[0];
  a.quantize_input = !c.input_fp8;
  a.quantize_weight = false;
  a.scale_a = input_scale ? static_cast<const float*>(input_scale->data) : nullptr;
  a.scale_a_row_stride = input_scale_layout.row_stride;
  a.scale_a_k_stride = input_scale_layout.col_stride;
  a.scale_b = static_cast<const float*>(weight_scale.data);
  a.scale_b_row_stride = c.weight_scale_layout.row_stride;
  a.scale_b_k_stride = c.weight_scale_layout.col_stride;
  a.per_row_weight_scale = c.per_row;
  a.out = out.data;
  a.out_row_stride = out_row_stride;
  a.out_dtype = out.dtype;
  return a;
}

Common check_common(const GroupedCheck& check, const TensorView& input, const TensorView& weight,
                    const std::optional<TensorView>& input_scale,
                    const std::optional<TensorView>& weight_scale, const TensorView& out,
                    std::optional<DType> out_dtype, int64_t input_k) {
  Common c{};
  // dtypes first: they decide which other arguments must exist.
  c.input_fp8 = input.dtype == DType::kFloat8E4M3;
  if (!c.input_fp8 && input.dtype != DType::kBFloat16)
    check.fail("input.dtype", "float8_e4m3 or bfloat16", dtype_name(input.dtype));
  if (weight.dtype == DType::kBFloat16)
    check.fail("weight.dtype",
               "float8_e4m3 with a weight_scale (a bfloat16 weight is not quantized inside the grouped GEMM: "
               "quantize it once per 128x128 block, e.g. with per_block_cast_to_fp8 on each group)",
               dtype_name(weight.dtype));
  if (weight.dtype != DType::kFloat8E4M3) check.fail("weight.dtype", "float8_e4m3", dtype_name(weight.dtype));
  if (!c.input_fp8 && input_scale)
    check.fail("input_scale", "None for bfloat16 input (it is quantized inside)", "a tensor");
  if (c.input_fp8 && !input_scale) check.fail("input_scale", "an fp32 scale tensor for fp8 input", "None");
  if (!weight_scale)
    check.fail("weight_scale", "an fp32 (G, ceil(N/128), K/128) or (G, N, K/128) tensor", "None");

  c.num_groups = weight.shape[0];
  c.n = weight.shape[1];
  c.k = weight.shape[2];
  if (c.num_groups < 1) check.fail("weight", "at least one group (G >= 1)", shape_str(weight));
  if (input_k != c.k)
    check.fail("weight", "shape (G, N, " + str(input_k) + ") to match input's K", shape_str(weight));
  if (c.k % kGroupK != 0) check.fail("input", "K a multiple of 128", str(c.k));
  if (c.k == 0) check.fail("input", "K > 0", "0");
  if (c.n % 16 != 0) check.fail("weight", "N a multiple of 16", str(c.n));
  if (c.n == 0) check.fail("weight", "N > 0", "0");
  if (c.k > kMaxDim || c.num_groups * c.n > kMaxDim)
    check.fail("weight", "G * N and K below 2^31", shape_str(weight));
  c.k_groups = c.k / kGroupK;

  // out dtype: bf16 is what the grouped kernels are compiled for.
  if (out_dtype && *out_dtype != out.dtype)
    check.fail("out_dtype", std::string("out's dtype ") + dtype_name(out.dtype), dtype_name(*out_dtype));
  if (out.dtype == DType::kFloat16 || out.dtype == DType::kFloat32)
    check.fail("out.dtype", "bfloat16 (the grouped kernels are compiled for bf16 output)",
               dtype_name(out.dtype), Error::Kind::kNotImplemented);
  if (out.dtype != DType::kBFloat16) check.fail("out.dtype", "bfloat16", dtype_name(out.dtype));

  // weight scale: (G, ceil(N/128), K/128) per block or (G, N, K/128) per row
  const TensorView& ws = *weight_scale;
  check.require_rank3("weight_scale", ws, "(G, ceil(N/128), K/128) or (G, N, K/128)");
  if (ws.dtype != DType::kFloat32) check.fail("weight_scale.dtype", "float32", dtype_name(ws.dtype));
  if (ws.shape[0] != c.num_groups)
    check.fail("weight_scale", "G = " + str(c.num_groups) + " groups (weight's) in dimension 0",
               shape_str(ws));
  const int64_t n_blocks = (c.n + 127) / 128;
  const bool per_block = ws.shape[1] == n_blocks && ws.shape[2] == c.k_groups;
  c.per_row = ws.shape[1] == c.n && ws.shape[2] == c.k_groups;
  if (!per_block && !c.per_row)
    check.fail("weight_scale",
               "shape " + tuple({c.num_groups, n_blocks, c.k_groups}) + " for 128x128 blocks or " +
                   tuple({c.num_groups, c.n, c.k_groups}) + " for 1x128 row groups",
               shape_str(ws));
  c.weight_scale_layout = check.require_grouped_scale("weight_scale", ws);
  c.weight_scale_group_stride = c.num_groups > 1 ? ws.strides[0] : 0;
  return c;
}

void check_devices(const GroupedCheck& check,
                   const std::vector<std::pair<std::string, const TensorView*>>& views,
                   const TensorView& input) {
  if (input.device == TensorView::kHostDevice) check.fail("input.device", "a CUDA device", "host memory");
  for (const auto& [name, t] : views)
    if (t) check.require_device(name, *t, input.device);
}

}  // namespace

GroupedProblem validate_grouped_contiguous(const TensorView& input, const TensorView& weight,
                                           const std::optional<TensorView>& input_scale,
                                           const std::optional<TensorView>& weight_scale,
                                           const GroupLayout& groups, const TensorView& out,
                                           std::optional<DType> out_dtype) {
  const GroupedCheck check("grouped_gemm_contiguous");
  check.require_matrix("input", input);
  check.require_data("input", input);
  check.require_rank3("weight", weight, "(G, N, K)");
  check.require_matrix("out", out);
  check.require_data("out", out);
  const Common c =
      check_common(check, input, weight, input_scale, weight_scale, out, out_dtype, input.cols());
  const int64_t m = input.rows();
  if (m > kMaxDim) check.fail("input", "M_total below 2^31", shape_str(input));
  if (out.rows() != m || out.cols() != c.n) check.fail("out", "shape " + tuple({m, c.n}), shape_str(out));
  ScaleStrides a_layout{0, 0};
  if (c.input_fp8) {
    check.require_matrix("input_scale", *input_scale);
    check.require_data("input_scale", *input_scale);
    if (input_scale->dtype != DType::kFloat32)
      check.fail("input_scale.dtype", "float32", dtype_name(input_scale->dtype));
    if (input_scale->rows() != m || input_scale->cols() != c.k_groups)
      check.fail("input_scale", "shape " + tuple({m, c.k_groups}), shape_str(*input_scale));
  }

  check_devices(check,
                {{"weight", &weight},
                 {"out", &out},
                 {"input_scale", input_scale ? &*input_scale : nullptr},
                 {"weight_scale", &*weight_scale}},
                input);

  // the group table
  const bool offsets = groups.kind == GroupLayout::Kind::kOffsets;
  const char* table_name = offsets ? "offsets" : "group_index";
  if (offsets)
    check.require_table(table_name, groups.table, c.num_groups + 1,
                        "(G + 1 for the weight's " + str(c.num_groups) + " groups)", input.device);
  else
    check.require_table(table_name, groups.table, m, "(one group per input row)", input.device);

  // layouts and alignment (TMA: 16-byte aligned bases and row strides)
  check.require_row_major("input", input, 16);
  const TensorView weight_matrix = check.require_stacked_rows("weight", weight);
  check.require_row_major("out", out, 16);
  if (input_scale) a_layout = check.require_scale_layout("input_scale", *input_scale);

  // out must not overlap what the kernel reads while it writes.
  const Span out_span = span("out", out);
  check.require_disjoint_spans(out_span, span("input", input));
  check.require_disjoint_spans(out_span, span("weight", weight));
  if (input_scale) check.require_disjoint_spans(out_span, span("input_scale", *input_scale));
  check.require_disjoint_spans(out_span, span("weight_scale", *weight_scale));
  check.require_disjoint_spans(out_span, span(table_name, groups.table));

  GroupedProblem p;
  p.num_groups = c.num_groups;
  p.m = m;
  p.args.gemm = view_args(c, m, input, m > 1 ? input.strides[0] : c.k, weight_matrix, input_scale, a_layout,
                          *weight_scale, out, m > 1 ? out.strides[0] : c.n);
  p.args.num_groups = static_cast<int>(c.num_groups);
  p.args.table_kind = offsets ? kernels::GroupTableKind::kOffsets : kernels::GroupTableKind::kRanges;
  p.args.table = offsets ? groups.table.data : nullptr;
  p.args.scale_b_group_stride = c.weight_scale_group_stride;
  if (!offsets) p.group_index = groups.table.data;
  return p;
}

GroupedProblem validate_grouped_masked(const TensorView& input, const TensorView& weight,
                                       const std::optional<TensorView>& input_scale,
                                       const std::optional<TensorView>& weight_scale,
                                       const Int32View& masked_m, std::optional<int64_t> expected_m,
                                       const TensorView& out, std::optional<DType> out_dtype) {
  const GroupedCheck check("grouped_gemm_masked");
  check.require_rank3("input", input, "(G, M_max, K)");
  check.require_rank3("weight", weight, "(G, N, K)");
  check.require_rank3("out", out, "(G, M_max, N)");
  const Common c =
      check_common(check, input, weight, input_scale, weight_scale, out, out_dtype, input.shape[2]);
  const int64_t g = c.num_groups, m_max = input.shape[1];
  if (input.shape[0] != g)
    check.fail("input", "shape (G, M_max, K) with G = " + str(g) + " (weight's groups)", shape_str(input));
  if (g * m_max > kMaxDim) check.fail("input", "G * M_max below 2^31", shape_str(input));
  if (out.shape[0] != g || out.shape[1] != m_max || out.shape[2] != c.n)
    check.fail("out", "shape " + tuple({g, m_max, c.n}), shape_str(out));
  ScaleStrides a_layout{0, 0};
  if (c.input_fp8) {
    const TensorView& s = *input_scale;
    check.require_rank3("input_scale", s, "(G, M_max, K/128)");
    if (s.dtype != DType::kFloat32) check.fail("input_scale.dtype", "float32", dtype_name(s.dtype));
    if (s.shape[0] != g || s.shape[1] != m_max || s.shape[2] != c.k_groups)
      check.fail("input_scale", "shape " + tuple({g, m_max, c.k_groups}), shape_str(s));
  }
  if (expected_m && *expected_m < 1) check.fail("expected_m", ">= 1 (or None for M_max)", str(*expected_m));

  check_devices(check,
                {{"weight", &weight},
                 {"out", &out},
                 {"input_scale", input_scale ? &*input_scale : nullptr},
                 {"weight_scale", &*weight_scale}},
                input);
  check.require_table("masked_m", masked_m, g, "(one count per group of the weight's " + str(g) + ")",
                      input.device);

  const TensorView input_matrix = check.require_stacked_rows("input", input);
  const TensorView weight_matrix = check.require_stacked_rows("weight", weight);
  const TensorView out_matrix = check.require_stacked_rows("out", out);
  if (input_scale) a_layout = check.require_grouped_scale("input_scale", *input_scale);

  const Span out_span = span("out", out);
  check.require_disjoint_spans(out_span, span("input", input));
  check.require_disjoint_spans(out_span, span("weight", weight));
  if (input_scale) check.require_disjoint_spans(out_span, span("input_scale", *input_scale));
  check.require_disjoint_spans(out_span, span("weight_scale", *weight_scale));
  check.require_disjoint_spans(out_span, span("masked_m", masked_m));

  GroupedProblem p;
  p.num_groups = g;
  p.m = g * m_max;
  p.m_max = m_max;
  p.expected_m = expected_m.value_or(std::max<int64_t>(m_max, 1));
  p.args.gemm = view_args(c, p.m, input, input_matrix.strides[0], weight_matrix, input_scale, a_layout,
                          *weight_scale, out, out_matrix.strides[0]);
  p.args.num_groups = static_cast<int>(g);
  p.args.table_kind = kernels::GroupTableKind::kMasked;
  p.args.table = masked_m.data;
  p.args.rows_per_group = static_cast<int>(m_max);
  // Rows of a (G, M_max, K/128) scale are counted inside their group.
  p.args.scale_a_group_stride = input_scale && g > 1 ? input_scale->strides[0] : 0;
  p.args.scale_a_group_rows = input_scale ? static_cast<int>(m_max) : 0;
  p.args.scale_b_group_stride = c.weight_scale_group_stride;
  return p;
}

void check_group_offsets(const char* function, const int32_t* offsets, int64_t count, int64_t m_total) {
  const ArgumentCheck check(function);
  if (count < 2) check.fail("offsets", "(G + 1,) entries with G >= 1", "(" + str(count) + ",)");
  if (offsets[0] < 0) check.fail("offsets[0]", ">= 0", str(offsets[0]));
  for (int64_t i = 1; i < count; ++i)
    if (offsets[i] < offsets[i - 1])
      check.fail("offsets[" + str(i) + "]",
                 ">= offsets[" + str(i - 1) + "] = " + str(offsets[i - 1]) + " (offsets must not decrease)",
                 str(offsets[i]));
  if (offsets[count - 1] > m_total)
    check.fail("offsets[" + str(count - 1) + "]", "<= M_total = " + str(m_total) + " (input rows)",
               str(offsets[count - 1]));
}

void check_group_index(const char* function, const int32_t* group_index, int64_t m_total,
                       int64_t num_groups) {
  const ArgumentCheck check(function);
  std::vector<int64_t> run_end(static_cast<std::size_t>(std::max<int64_t>(num_groups, 0)), -1);
  for (int64_t r = 0; r < m_total; ++r) {
    const int32_t g = group_index[r];
    if (g == -1) continue;
    if (g < -1 || g >= num_groups)
      check.fail("group_index[" + str(r) + "]", "a group in [0, " + str(num_groups) + ") or -1 (padding)",
                 str(g));
    int64_t& end = run_end[static_cast<std::size_t>(g)];
    if (end >= 0 && end != r)
      check.fail("group_index[" + str(r) + "]",
                 "each group's rows in one contiguous run (group " + str(g) +
                     " also has rows ending at row " + str(end - 1) + ")",
                 str(g));
    end = r + 1;
  }
}

}  // namespace blockgemm::api
