"""GPU checks (Triton kernels, runner vs numpy); they skip on machines without torch or CUDA (CI has neither)."""

import importlib.util

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("triton") is None:
    pytest.skip(
        "torch/triton not installed (CI installs no CUDA wheels; the GPU machine has them)", allow_module_level=True
    )

import torch

if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

from gpufleet_worker.bench import checks


@pytest.mark.parametrize(
    "check",
    [
        checks.check_paged_decode,
        checks.check_fused_linear,
        checks.check_block_copy,
        checks.check_runner_against_numpy,
        checks.check_export_import,
        checks.check_varlen_prefill,
    ],
)
def test_gpu_check(check) -> None:
    rows = check("cuda")
    assert rows and all(r["ok"] for r in rows), [r for r in rows if not r["ok"]]


@pytest.mark.parametrize("mode", ["bulk", "line"])
def test_l2_prefetch_reads_without_writing(mode) -> None:
    from gpufleet_worker.kernels.l2_prefetch import l2_prefetch, scratch_for

    w = torch.randn((4096, 4096), dtype=torch.bfloat16, device="cuda")
    before = w.clone()
    l2_prefetch(w, scratch_for("cuda"), mode=mode)
    torch.cuda.synchronize()
    assert torch.equal(w, before)
    with pytest.raises(ValueError, match="multiple"):
        l2_prefetch(torch.empty(100, dtype=torch.bfloat16, device="cuda"), scratch_for("cuda"), mode="bulk")
