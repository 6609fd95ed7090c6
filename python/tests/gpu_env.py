"""What the GPU test modules share: the module-level skip with its reason, and the calc_diff measure.

    torch = require_hopper_blockgemm()   # at the top of a test module, before importing blockgemm

Skips the whole module, saying why, unless torch imports, CUDA is available, the current GPU is a Hopper
(compute capability 9.0) and the blockgemm extension imports. pytest does not collect this file (its name does
not start with test_); pytest's default import mode puts this folder on sys.path, so modules import it by name.
"""

import pytest


def require_hopper_blockgemm():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available (no GPU or no driver)", allow_module_level=True)
    capability = torch.cuda.get_device_capability()
    if capability != (9, 0):
        pytest.skip(
            f"blockgemm needs a Hopper GPU (compute capability 9.0, SM90); {torch.cuda.get_device_name()} is "
            f"{capability[0]}.{capability[1]}",
            allow_module_level=True,
        )
    try:
        import blockgemm.testing  # noqa: F401  (the extension and the quantizers)
    except ImportError as error:
        pytest.skip(
            f"the blockgemm extension cannot be imported ({error}); build it with "
            "`python -m pip install --no-build-isolation .`",
            allow_module_level=True,
        )
    return torch


def calc_diff(x, y) -> float:
    """1 - 2 sum(x y) / sum(x^2 + y^2) in float64 (DeepGEMM's measure): 0 for equal tensors, scale-free."""
    x, y = x.double(), y.double()
    return (1 - 2 * (x * y).sum() / (x * x + y * y).sum()).item()
