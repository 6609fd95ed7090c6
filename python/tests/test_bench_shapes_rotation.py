"""Benchmark harness (blockgemm.bench), no torch, no GPU: the suites and cases (shapes) and the operand-set
rotation counts and byte footprints (rotation).

    cd python && python3 -m pytest -q tests/test_bench_shapes_rotation.py
"""

import math

import pytest

import bench_test_util  # noqa: F401  (first: makes the blockgemm package importable)
from blockgemm.bench import rotation, shapes

MIB = 1 << 20
GIB = 1 << 30


# ------------------------------------------------------------------------------------------ shapes


def test_deepseek_suite_shapes():
    cases = shapes.deepseek_cases()
    assert len(cases) == 7 * 6
    assert {(c["n"], c["k"]) for c in cases} == set(shapes.DEEPSEEK_NK)
    assert sorted({c["m"] for c in cases}) == [1, 16, 64, 128, 512, 4096]
    assert shapes.case_key(cases[0]) == "1x2112x7168"
    assert len(shapes.deepseek_cases([2, 3])) == 14


def test_other_models_suite_has_labels_and_16_pairs():
    cases = shapes.other_model_cases()
    assert len({(c["n"], c["k"]) for c in cases}) == 16
    assert all(c.get("label") for c in cases)
    assert sorted({c["m"] for c in cases}) == [1, 32, 128, 512, 2048]


@pytest.mark.parametrize(
    "text,expected",
    [("4096x7168x16384", (4096, 7168, 16384)), ("1,576,7168", (1, 576, 7168)), (" 8 X 256 x 128 ", (8, 256, 128))],
)
def test_parse_shape(text, expected):
    case = shapes.parse_shape(text)
    assert (case["m"], case["n"], case["k"]) == expected and case["kind"] == "dense"


@pytest.mark.parametrize("text", ["4096x7168", "0x1x128", "ax2x3", "1x2x3x4", ""])
def test_parse_shape_rejects(text):
    with pytest.raises(ValueError):
        shapes.parse_shape(text)


def test_parse_int_list():
    assert shapes.parse_int_list("1, 16,64") == [1, 16, 64]
    for bad in ("", "1,x", "0", "-3"):
        with pytest.raises(ValueError):
            shapes.parse_int_list(bad)


@pytest.mark.parametrize(
    "m,name",
    [
        (1, "M <= 32"),
        (32, "M <= 32"),
        (33, "M 64..512"),
        (512, "M 64..512"),
        (1023, "M 64..512"),
        (1024, "M >= 1024"),
        (4096, "M >= 1024"),
    ],
)
def test_regime(m, name):
    assert shapes.regime(m) == name


def test_skewed_sizes_span_and_interleave():
    sizes = shapes.skewed_sizes(8, 1024, 8192)
    assert len(sizes) == 8 and min(sizes) == 1024 and max(sizes) == 8192
    assert sizes[0] == 1024 and sizes[1] == 8192  # cold, hot, ...
    assert shapes.skewed_sizes(1, 1024, 8192) == [1024]
    assert sorted(shapes.skewed_sizes(5, 10, 10)) == [10] * 5


def test_masked_counts_deterministic_and_in_range():
    counts = shapes.masked_counts(64, 16)
    assert counts == shapes.masked_counts(64, 16)
    assert all(int(16 * 0.7) <= c <= int(16 * 1.3) and c >= 1 for c in counts)
    assert counts != shapes.masked_counts(64, 16, seed=1)
    assert all(c >= 1 for c in shapes.masked_counts(8, 1))


def test_grouped_cases_match_issue_25():
    cases = shapes.grouped_cases()
    contiguous = [c for c in cases if c["layout"] == "contiguous"]
    masked = [c for c in cases if c["layout"] == "masked"]
    assert {c["g"] for c in contiguous} == {4, 8, 32} and {c["g"] for c in masked} == {8, 32, 64}
    assert {c["expected_m"] for c in masked} == {16, 64, 256}
    assert {(c["n"], c["k"]) for c in cases} == {(4096, 7168), (7168, 2048)}
    assert all(1024 <= s <= 8192 for c in contiguous for s in c["sizes"])
    assert any(c["routing"].startswith("skewed") for c in contiguous)
    for c in masked:
        assert c["m_max"] % 128 == 0 and c["m_max"] >= max(c["masked_m"])
    assert len({shapes.case_key(c) for c in cases}) == len(cases)


def test_valid_rows_and_flops():
    dense = shapes.dense_case(4, 256, 128)
    assert shapes.valid_rows(dense) == 4 and shapes.case_flops(dense) == 2 * 4 * 256 * 128
    contiguous = shapes.contiguous_case(2, 256, 128, "uniform", 100, 100)
    assert shapes.valid_rows(contiguous) == 200
    masked = shapes.masked_case(4, 256, 128, 16)
    assert shapes.valid_rows(masked) == sum(masked["masked_m"])


def test_suite_cases_dispatch():
    assert len(shapes.suite_cases("shapes", shapes=[shapes.dense_case(1, 16, 128)])) == 1
    with pytest.raises(ValueError):
        shapes.suite_cases("nope")


# ------------------------------------------------------------------------------------------ rotation


def test_rotation_sets_basic_arithmetic():
    assert rotation.rotation_sets(256 * MIB) == 2  # min 2 even when one set covers the target
    assert rotation.rotation_sets(300 * MIB) == 2
    assert rotation.rotation_sets(100 * MIB) == 3  # ceil(256 / 100)
    assert rotation.rotation_sets(64 * MIB) == 4
    assert rotation.rotation_sets(1) == rotation.MAX_SETS
    assert rotation.rotation_sets(10 * MIB, target_bytes=512 * MIB) == 52


def test_rotation_sets_total_exceeds_l2_many_times():
    for nbytes in (1 * MIB, 3 * MIB, 7 * MIB + 5, 49 * MIB, 51 * MIB, 200 * MIB):
        sets = rotation.rotation_sets(nbytes)
        assert sets >= 2 and sets * nbytes >= rotation.ROTATION_TARGET_BYTES > 5 * rotation.L2_BYTES - 1


def test_rotation_sets_memory_cap_and_minimum():
    # A cap that affords 3 sets of the footprint wins over the target...
    assert rotation.rotation_sets(10 * MIB, memory_cap_bytes=30 * MIB) == 3
    # ... unless it would go below the minimum of two sets.
    assert rotation.rotation_sets(10 * GIB, memory_cap_bytes=8 * GIB) == 2
    assert rotation.rotation_sets(1 * MIB, footprint_per_set=1 * rotation.GIB, memory_cap_bytes=4 * rotation.GIB) == 4


@pytest.mark.parametrize("bad", [0, -5])
def test_rotation_sets_rejects_nonpositive(bad):
    with pytest.raises(ValueError):
        rotation.rotation_sets(bad)


def test_dense_call_bytes():
    # M=1, N=2112, K=7168: input 7168 + weight 2112*7168 + scales (56 + 17*56)*4 + out 2*2112
    assert rotation.dense_call_bytes(1, 2112, 7168) == 7168 + 2112 * 7168 + (56 + 17 * 56) * 4 + 2 * 2112
    per_row = rotation.dense_call_bytes(1, 2112, 7168, weight_scale="row")
    assert per_row - rotation.dense_call_bytes(1, 2112, 7168) == (2112 - 17) * 56 * 4
    bf16 = rotation.dense_call_bytes(4, 256, 128, input_bytes=2, weight_bytes=2)
    assert bf16 == 4 * 128 * 2 + 256 * 128 * 2 + 4 * 256 * 2  # no scales for bf16 operands


def test_case_rotation_sets_of_the_suite():
    small = shapes.dense_case(1, 576, 7168)
    assert rotation.case_rotation_sets(small) == math.ceil(rotation.ROTATION_TARGET_BYTES / rotation.case_bytes(small))
    big = shapes.dense_case(4096, 7168, 16384)
    assert rotation.case_rotation_sets(big) == 2
    for case in shapes.deepseek_cases() + shapes.grouped_cases():
        sets = rotation.case_rotation_sets(case)
        assert 2 <= sets <= rotation.MAX_SETS
        assert sets * rotation.case_bytes(case) >= rotation.ROTATION_TARGET_BYTES


def test_grouped_bytes():
    case = shapes.contiguous_case(2, 256, 128, "uniform", 100, 100)
    weights = 2 * (256 * 128 + 2 * 1 * 4)
    assert rotation.grouped_weight_bytes(2, 256, 128) == weights
    assert rotation.grouped_call_bytes(case) == 200 * (128 + 4) + weights + 200 * 256 * 2
    assert rotation.grouped_footprint_bytes(case) == 2 * 128 * (128 + 4 + 256 * 2) + weights
