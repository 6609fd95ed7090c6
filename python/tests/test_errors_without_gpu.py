"""Argument errors of the extension, without torch and without a GPU.

The built module `_blockgemm_ext` is called with plain descriptor tuples (data_ptr, dtype, shape, strides,
device) over fake, never dereferenced pointers. Each documented argument error must arrive with its own
message, in our form ("fp8_blockscale_gemm_sm90: <argument>: expected ..., got ...") and with FlashInfer's
words where its callers match on them, as a ValueError (FlashInfer's class for them): validation may not
depend on a GPU being there.

The calls run in a child process with CUDA_VISIBLE_DEVICES="" so that the machine looks GPU-less even where
it has one, and no call, not even one that a validation bug let through, can launch a kernel on the fake
pointers.

The extension is found through BLOCKGEMM_EXT_PATH (a path to the .so), else in the `blockgemm` package
directory (located without importing it) or python/blockgemm of this checkout. It links libcudart.so.13:
set LD_LIBRARY_PATH=/usr/local/cuda/lib64 where torch does not load it.

    BLOCKGEMM_EXT_PATH=build/python/_blockgemm_ext.cpython-311-x86_64-linux-gnu.so \\
        LD_LIBRARY_PATH=/usr/local/cuda/lib64 python -m pytest -q python/tests/test_errors_without_gpu.py
"""

import importlib.util
import json
import math
import os
import pathlib
import re
import subprocess
import sys
from typing import List, Optional, Tuple

import pytest

FUNCTION = "fp8_blockscale_gemm_sm90"
# Our form: the function, the argument (possibly with " strides" or " data pointer"), expected, got.
OUR_FORM = re.compile(rf"{FUNCTION}: [A-Za-z_.]+( strides| data pointer)?: expected .+, got .+", re.DOTALL)


def _candidates() -> List[pathlib.Path]:
    directories = []
    spec = importlib.util.find_spec("blockgemm")  # finds the package without running its __init__
    if spec is not None and spec.submodule_search_locations:
        directories += [pathlib.Path(p) for p in spec.submodule_search_locations]
    directories.append(pathlib.Path(__file__).resolve().parents[1] / "blockgemm")
    found = []
    for directory in directories:
        found += sorted(directory.glob("_blockgemm_ext*.so")) + sorted(directory.glob("_blockgemm_ext*.pyd"))
    return found


def _find_extension() -> Tuple[Optional[str], str]:
    """(path, why not found)."""
    explicit = os.environ.get("BLOCKGEMM_EXT_PATH")
    if explicit:
        if os.path.isfile(explicit):
            return explicit, ""
        return None, f"BLOCKGEMM_EXT_PATH={explicit} is not a file"
    found = _candidates()
    if found:
        return str(found[0]), ""
    return None, (
        "the extension _blockgemm_ext is not built: no BLOCKGEMM_EXT_PATH, and no _blockgemm_ext*.so in the "
        "blockgemm package directory or python/blockgemm"
    )


# ---------------------------------------------------------------- cases

M, N, K = 16, 256, 256  # FlashInfer's error tests use these
KG = K // 128


def desc(ptr, dtype, shape, strides=None, device=0):
    """A descriptor as JSON lists (the child turns them into the extension's tuples); contiguous strides
    unless given."""
    if strides is None:
        strides = [math.prod(shape[i + 1 :]) for i in range(len(shape))]
    return [ptr, dtype, list(shape), list(strides), device]


def fp8_input(m=M, k=K):
    return desc(0x100000, "float8_e4m3fn", (m, k))


def bf16_input(m=M, k=K, dtype="bfloat16"):
    return desc(0x100000, dtype, (m, k))


def fp8_weight(n=N, k=K):
    return desc(0x200000, "float8_e4m3fn", (n, k))


def bf16_weight(n=N, k=K, dtype="bfloat16"):
    return desc(0x200000, dtype, (n, k))


def input_scale(shape=(M, KG), strides=None):
    return desc(0x300000, "float32", shape, strides)


def block_scale(shape=((N + 127) // 128, KG)):
    return desc(0x400000, "float32", shape)


def out(shape=(M, N), dtype="bfloat16"):
    return desc(0x500000, dtype, shape)


def call(input, weight, input_scale=None, weight_scale=None, out=out()):
    return [input, weight, input_scale, weight_scale, out]


# name -> (arguments, regular expressions the message must contain). Our form is checked for every one.
ERRORS = {
    "k_not_divisible_by_128": (
        call(bf16_input(k=127), bf16_weight(k=127)),
        [r"input: expected K \(columns\) divisible by block size 128, got 127", r"divisible by block size"],
    ),
    "float16_operands": (
        call(bf16_input(dtype="float16"), bf16_weight(dtype="float16")),
        [r"input\.dtype: expected .*got float16", r"FP8.*or BF16"],
    ),
    "int8_input": (
        call(bf16_input(dtype="int8"), fp8_weight(), None, block_scale()),
        [r"input\.dtype: expected .*got int8", r"FP8.*or BF16"],
    ),
    "float16_weight": (
        call(bf16_input(), bf16_weight(dtype="float16")),
        [r"weight\.dtype: expected .*got float16", r"FP8.*or BF16"],
    ),
    "fp8_input_bf16_weight": (
        call(fp8_input(), bf16_weight(), input_scale()),
        [r"weight\.dtype: expected .*got bfloat16", r"FP8 input.*BF16 weight.*not supported"],
    ),
    "fp8_input_bf16_weight_wrong_input_scale": (
        call(fp8_input(), bf16_weight(), input_scale((M, K // 64))),
        [r"FP8 input.*BF16 weight.*not supported"],
    ),
    "fp8_weight_without_scale": (
        call(bf16_input(), fp8_weight()),
        [r"weight_scale: expected .*got None", r"weight_scale is required when weight is FP8"],
    ),
    "fp8_input_without_scale": (
        call(fp8_input(), fp8_weight(), None, block_scale()),
        [r"input_scale: expected .*got None", r"input_scale is required when input is FP8"],
    ),
    "input_scale_for_bf16_input": (
        call(bf16_input(), bf16_weight(), input_scale()),
        [r"input_scale: expected None.*got a tensor", r"input_scale should not be provided for BF16"],
    ),
    "weight_scale_for_bf16_weight": (
        call(bf16_input(), bf16_weight(), None, block_scale()),
        [r"weight_scale: expected None.*got a tensor", r"weight_scale should not be provided for BF16"],
    ),
    "k_mismatch": (
        call(fp8_input(), fp8_weight(k=384), input_scale(), block_scale()),
        [r"weight: expected .*got \(256, 384\)", r"K dimension mismatch"],
    ),
    "input_scale_shape": (
        call(fp8_input(), fp8_weight(), input_scale((M, K // 64)), block_scale()),
        [r"input_scale: expected shape \(16, 2\) or its transpose \(2, 16\), got \(16, 4\)"],
    ),
    "transposed_input_scale_strides": (
        call(fp8_input(), fp8_weight(), input_scale((KG, M), (3, 1)), block_scale()),
        [r"input_scale strides: expected row-major \(>= 16, 1\) or column-major \(1, >= 2\), got \(3, 1\)"],
    ),
    "input_scale_dtype": (
        call(fp8_input(), fp8_weight(), desc(0x300000, "bfloat16", (M, KG)), block_scale()),
        [r"input_scale\.dtype: expected float32, got bfloat16"],
    ),
    "weight_scale_shape": (
        call(fp8_input(), fp8_weight(), input_scale(), block_scale((3, KG))),
        [r"weight_scale: expected shape \(2, 2\) .*\(256, 2\) .*got \(3, 2\)"],
    ),
    "n_not_multiple_of_16": (
        call(fp8_input(), fp8_weight(n=250), input_scale(), block_scale(), out((M, 250))),
        [r"weight: expected N \(rows\) a multiple of 16, got 250"],
    ),
    "three_dimensional_input": (
        call(desc(0x100000, "float8_e4m3fn", (1, M, K)), fp8_weight(), input_scale(), block_scale()),
        [r"input: expected a 2-D tensor, got 3-D tensor"],
    ),
    "out_shape": (
        call(fp8_input(), fp8_weight(), input_scale(), block_scale(), out((M, 128))),
        [r"out: expected shape \(16, 256\), got \(16, 128\)"],
    ),
    "out_dtype": (
        call(fp8_input(), fp8_weight(), input_scale(), block_scale(), out(dtype="float8_e4m3fn")),
        [r"out\.dtype: expected bfloat16, float16 or float32, got float8_e4m3"],
    ),
    "host_input": (
        call(desc(0x100000, "float8_e4m3fn", (M, K), device=-1), fp8_weight(), input_scale(), block_scale()),
        [r"input\.device: expected a CUDA device, got host memory"],
    ),
    "weight_on_another_device": (
        call(fp8_input(), desc(0x200000, "float8_e4m3fn", (N, K), device=1), input_scale(), block_scale()),
        [r"weight\.device: expected cuda:0, got cuda:1"],
    ),
    "unaligned_input": (
        call(desc(0x100008, "float8_e4m3fn", (M, K)), fp8_weight(), input_scale(), block_scale()),
        [r"input data pointer: expected 16-byte aligned"],
    ),
    "out_overlaps_weight": (
        call(fp8_input(), fp8_weight(), input_scale(), block_scale(), desc(0x200000, "bfloat16", (M, N))),
        [r"out: expected memory disjoint from weight, got overlapping buffers"],
    ),
}

# Valid arguments: validation passes and the call stops at the missing GPU (a RuntimeError, not a
# ValueError), which shows the layouts are accepted.
ACCEPTED = {
    "documented_input_scale": call(fp8_input(), fp8_weight(), input_scale(), block_scale()),
    "column_major_input_scale": call(fp8_input(), fp8_weight(), input_scale((M, KG), (1, M)), block_scale()),
    # FlashInfer's convention: buf[:, :M] of a (K/128, ceil4(M)) buffer; M = 13 pads the rows to 16.
    "seed_transposed_input_scale": call(
        fp8_input(m=13), fp8_weight(), input_scale((KG, 13), (16, 1)), block_scale(), out((13, N))
    ),
    "per_row_weight_scale": call(
        fp8_input(), fp8_weight(), input_scale(), desc(0x400000, "float32", (N, KG))
    ),
    "bf16_bf16": call(bf16_input(), bf16_weight()),
    "bf16_fp8": call(bf16_input(), fp8_weight(), None, block_scale()),
}

# The child: loads the extension by path and records, per case, the exception's classes and message.
_CHILD = r"""
import importlib.util, json, sys
path, cases = sys.argv[1], json.loads(sys.stdin.read())
try:
    spec = importlib.util.spec_from_file_location("_blockgemm_ext", path)
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
except Exception as error:  # ImportError, or an OSError from the loader
    print(json.dumps({"import_error": f"{type(error).__name__}: {error}"}))
    sys.exit(0)

def as_desc(d):
    return None if d is None else (d[0], d[1], tuple(d[2]), tuple(d[3]), d[4])

results = {}
for name, args in cases.items():
    try:
        ext.gemm(*[as_desc(d) for d in args], 0, 0, 0)
        results[name] = {"returned": True}
    except Exception as error:
        results[name] = {"classes": [c.__name__ for c in type(error).__mro__], "message": str(error)}
print(json.dumps({"results": results}))
"""


@pytest.fixture(scope="module")
def results():
    path, why = _find_extension()
    if path is None:
        pytest.skip(why)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    cases = {**{name: args for name, (args, _) in ERRORS.items()}, **ACCEPTED}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, path],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert child.returncode == 0, f"the child process failed ({child.returncode}):\n{child.stderr}"
    report = json.loads(child.stdout.strip().splitlines()[-1])
    if "import_error" in report:
        pytest.skip(
            f"the extension at {path} cannot be imported ({report['import_error']}); it links "
            "libcudart.so.13: set LD_LIBRARY_PATH=/usr/local/cuda/lib64"
        )
    return report["results"]


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_argument_error_message_and_class(results, name):
    _, patterns = ERRORS[name]
    result = results[name]
    assert "returned" not in result, f"{name}: no error raised"
    message, classes = result["message"], result["classes"]
    # FlashInfer raises ValueError for each of these; ours is that and a RuntimeError.
    assert "ValueError" in classes, f"{name}: {classes}: {message}"
    assert classes[0] == "BlockgemmArgumentError" and "RuntimeError" in classes, f"{name}: {classes}"
    assert OUR_FORM.fullmatch(message), f"{name}: not in our form: {message!r}"
    for pattern in patterns:
        assert re.search(pattern, message), f"{name}: {message!r} does not match {pattern!r}"


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_valid_arguments_pass_validation(results, name):
    result = results[name]
    assert "returned" not in result, f"{name}: returned without a GPU"
    assert "ValueError" not in result["classes"], f"{name}: rejected: {result['message']}"
    assert result["classes"][0] == "RuntimeError", f"{name}: {result['classes']}: {result['message']}"
    assert "no CUDA device" in result["message"], result["message"]
