"""Backend specifications: which call, with which operand dtypes and scale layouts, runs in which worker
process, and which cases it supports. Pure Python (the calls themselves are in dense_calls.py and
grouped_calls.py, inside the workers).

A backend is a dict ``{"name", "family", "path", "weight_scale", "input_scale", "form"}``:
- family: the worker process it runs in: blockgemm, flashinfer, deepgemm, cublaslt, cublas-bf16;
- path: operand dtypes: fp8 (FP8 x FP8), bf16-fp8 (BF16 input, quantized inside), bf16-bf16, bf16 (cuBLAS);
- weight_scale: block ((ceil(N/128), K/128)) or row ((N, K/128)); None for bf16 weights;
- input_scale: row (row-major (M, K/128), as per_token_cast_to_fp8 returns it), mcontig (M-contiguous:
  a (K/128, ceil4(M)) buffer viewed as (M, K/128)), auto (FlashInfer: the layout its probe found correct),
  tma (DeepGEMM's own TMA-aligned layout); None for bf16 input;
- form (grouped only): index (contiguous rows, aligned per group, int32 group index per row), offsets
  (contiguous rows packed without padding, int32 offsets (G+1,)), masked.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

FAMILIES: Tuple[str, ...] = ("blockgemm", "flashinfer", "deepgemm", "cublaslt", "cublas-bf16")
PATHS: Tuple[str, ...] = ("fp8", "bf16-fp8", "bf16-bf16")
WEIGHT_SCALES: Tuple[str, ...] = ("block", "row")
INPUT_SCALES: Tuple[str, ...] = ("row", "mcontig")

# The backend every ratio is taken against: the public call with the quantizers' own layouts.
REFERENCE = "blockgemm"
# The peers of the dense tables, in column order.
DENSE_PEERS: Tuple[str, ...] = ("flashinfer", "deepgemm", "cublaslt", "cublas-bf16")

# Which paths a peer family can run (the others skip them).
FAMILY_PATHS: Dict[str, Tuple[str, ...]] = {
    "blockgemm": PATHS,
    "flashinfer": PATHS,
    "deepgemm": ("fp8",),
    "cublaslt": ("fp8",),
    "cublas-bf16": ("bf16",),
}


def backend_name(
    family: str,
    path: str = "fp8",
    weight_scale: Optional[str] = "block",
    input_scale: Optional[str] = "row",
    form: Optional[str] = None,
) -> str:
    """Compact unique name: the family, then only what differs from the defaults (fp8 path, block weight
    scales, row-major input scales), e.g. 'blockgemm', 'blockgemm/is=mcontig', 'blockgemm/bf16-fp8/ws=row',
    'deepgemm/contig-index'."""
    parts = [family]
    if form is not None:
        parts.append({"index": "contig-index", "offsets": "contig-offsets", "masked": "masked"}[form])
    if path not in ("fp8", "bf16"):
        parts.append(path)
    # Scale layouts are named for blockgemm only: each peer takes the one layout it reads.
    if family == "blockgemm" and weight_scale not in (None, "block"):
        parts.append(f"ws={weight_scale}")
    if family == "blockgemm" and input_scale not in (None, "row"):
        parts.append(f"is={input_scale}")
    return "/".join(parts)


def make_backend(
    family: str,
    path: str = "fp8",
    weight_scale: Optional[str] = "block",
    input_scale: Optional[str] = "row",
    form: Optional[str] = None,
) -> Dict:
    if family not in FAMILIES:
        raise ValueError(f"unknown backend family {family!r} (want one of {', '.join(FAMILIES)})")
    if path.startswith("bf16"):
        input_scale = None
    if path == "bf16-bf16" or path == "bf16":
        weight_scale = None
    return {
        "name": backend_name(family, path, weight_scale, input_scale, form),
        "family": family,
        "path": path,
        "weight_scale": weight_scale,
        "input_scale": input_scale,
        "form": form,
    }


def dense_backends(
    families: Sequence[str] = FAMILIES,
    paths: Sequence[str] = ("fp8",),
    weight_scales: Sequence[str] = ("block",),
    input_scales: Sequence[str] = ("row",),
) -> List[Dict]:
    """The dense backends to run, in table order: blockgemm's variants first (the reference, blockgemm
    FP8 x FP8 with block weight scales and the row-major input scale, always first when blockgemm runs),
    then the peers. Weight and input scale variants apply to blockgemm (the peers take block weight
    scales, and each its own input-scale layout)."""
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"unknown backend {family!r} (want one of {', '.join(FAMILIES)})")
    for path in paths:
        if path not in PATHS:
            raise ValueError(f"unknown path {path!r} (want one of {', '.join(PATHS)})")
    for kind in weight_scales:
        if kind not in WEIGHT_SCALES:
            raise ValueError(f"unknown weight scale {kind!r} (want block or row)")
    for kind in input_scales:
        if kind not in INPUT_SCALES:
            raise ValueError(f"unknown input scale layout {kind!r} (want row or mcontig)")
    backends: List[Dict] = []
    if "blockgemm" in families:
        backends.append(make_backend("blockgemm"))
        for path in PATHS:
            if path not in paths:
                continue
            for ws in (weight_scales if path != "bf16-bf16" else ("block",)):
                for scale in (input_scales if path == "fp8" else ("row",)):
                    spec = make_backend("blockgemm", path, ws, scale)
                    if spec["name"] not in {b["name"] for b in backends}:
                        backends.append(spec)
    for family in ("flashinfer", "deepgemm", "cublaslt", "cublas-bf16"):
        if family not in families:
            continue
        for path in FAMILY_PATHS[family]:
            if family == "cublas-bf16":
                backends.append(make_backend(family, "bf16", None, None))
            elif path in paths:
                input_scale = {"flashinfer": "auto", "deepgemm": "tma", "cublaslt": "mcontig"}[family]
                backends.append(make_backend(family, path, "block", input_scale))
    return backends


def grouped_backends(families: Sequence[str] = FAMILIES) -> List[Dict]:
    """Grouped backends: blockgemm's contiguous call on the aligned layout (group index) and on packed
    rows (offsets), its masked call; DeepGEMM's contiguous (its aligned layout) and masked calls."""
    backends: List[Dict] = []
    if "blockgemm" in families:
        backends += [make_backend("blockgemm", form=form) for form in ("index", "offsets", "masked")]
    if "deepgemm" in families:
        backends += [make_backend("deepgemm", input_scale="tma", form=form) for form in ("index", "masked")]
    return backends


def grouped_reference(layout: str) -> str:
    return "blockgemm/contig-index" if layout == "contiguous" else "blockgemm/masked"


def grouped_pairs(layout: str) -> List[Tuple[str, str]]:
    """(ours, theirs) pairs whose time ratio the grouped table reports."""
    if layout == "contiguous":
        return [
            ("blockgemm/contig-index", "deepgemm/contig-index"),
            ("blockgemm/contig-offsets", "deepgemm/contig-index"),
            ("blockgemm/contig-offsets", "blockgemm/contig-index"),
        ]
    return [("blockgemm/masked", "deepgemm/masked")]


def supports(backend: Dict, case: Dict) -> Tuple[bool, str]:
    """Whether a backend can run a case, and why not. Known limits of the peers, checked before any GPU
    work so that they are recorded as 'unsupported', not as failures."""
    family = backend["family"]
    form = backend.get("form")
    if case["kind"] == "grouped":
        if form is None:
            return False, "dense call"
        if (case["layout"] == "masked") != (form == "masked"):
            return False, f"{form} form, {case['layout']} case"
        return True, ""
    if form is not None:
        return False, "grouped call"
    m, n, k = case["m"], case["n"], case["k"]
    if k % 128 != 0:
        return False, "K must be a multiple of 128"
    if family == "cublaslt" and m % 4 != 0:
        return False, "cuBLASLt block scaling rejects M not a multiple of 4"
    if family == "flashinfer" and n % 64 != 0:
        return False, "FlashInfer needs N % 64 == 0"
    if family == "blockgemm" and n % 16 != 0:
        return False, "blockgemm needs N % 16 == 0"
    if family in ("deepgemm", "cublaslt") and n % 16 != 0:
        return False, "N must be a multiple of 16"
    return True, ""


def families_of(backends: Iterable[Dict]) -> List[str]:
    seen: List[str] = []
    for backend in backends:
        if backend["family"] not in seen:
            seen.append(backend["family"])
    return seen


def parse_list(text: str, allowed: Sequence[str], what: str) -> List[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"empty {what}")
    for item in items:
        if item not in allowed:
            raise ValueError(f"unknown {what} entry {item!r} (want {', '.join(allowed)})")
    return items
