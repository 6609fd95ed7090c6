"""What the benchmark-harness tests (test_bench_*.py) share: finding the blockgemm package, and the record
rows the summary, record and report tests build.

    from bench_test_util import make_row, sample_rows   # before the blockgemm imports

Importing this module makes `import blockgemm.bench` work: the installed package where there is one (CI and
scripts/test.sh run pytest from outside the checkout), else the source tree, whose bench package imports
without torch and the extension. pytest does not collect this file (its name does not start with test_);
pytest's default import mode puts this folder on sys.path, so the test modules import it by name.
"""

import os
import sys

try:  # the installed package (CI and scripts/test.sh run pytest from outside the checkout)
    import blockgemm.bench  # noqa: F401
except ImportError:  # else the source tree: its bench package imports without torch and the extension
    sys.modules.pop("blockgemm", None)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from blockgemm.bench import shapes  # noqa: E402


def make_row(suite, case, backend, status="ok", burst=None, steady=None, family=None):
    timings = []
    for protocol_name, values in (("burst", burst), ("steady", steady)):
        for index, value in enumerate(values or ()):
            timings.append(
                {
                    "protocol": protocol_name,
                    "round": index,
                    "position": 0,
                    "status": "ok" if value is not None else "error",
                    "us": value,
                }
            )
    return {
        "suite": suite,
        "case": case,
        "key": shapes.case_key(case),
        "backend": backend,
        "family": family or backend.split("/")[0],
        "status": status,
        "note": "",
        "check": {"diff": 1e-6},
        "timings": timings,
    }


def sample_rows():
    rows = []
    for m, ours, peer in ((16, 10.0, 12.0), (128, 20.0, 21.0), (4096, 100.0, 90.0)):
        case = shapes.dense_case(m, 2112, 7168)
        rows.append(
            make_row(
                "deepseek", case, "blockgemm", burst=[ours * 1.05, ours], steady=[ours * 1.2] if m >= 512 else None
            )
        )
        rows.append(
            make_row(
                "deepseek", case, "flashinfer", burst=[peer, peer * 1.01], steady=[peer * 1.1] if m >= 512 else None
            )
        )
        rows.append(make_row("deepseek", case, "cublaslt", status="unsupported" if m == 16 else "ok", burst=[peer * 2]))
    return rows
