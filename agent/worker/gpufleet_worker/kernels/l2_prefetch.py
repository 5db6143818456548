"""Warm the L2 cache with a weight the next GEMM will read, from a side stream, while the GPU waits on short kernels.

Why: at decode batch 1 the o projection (4096 x 4096 bf16, 32 MiB) streams at ~0.67 of copy bandwidth, because a
kernel that reads 32 MiB spends a few microseconds ramping up and draining; meanwhile RoPE and paged attention, a
few microseconds each, leave HBM mostly idle (NOTES.md, "Where the decode gap is"). H200's L2 (50 MB) holds the
whole o weight, so the prefetch moves those bytes in the idle window and the GEMM reads them from L2.

- `mode="bulk"`: `cp.async.bulk.prefetch.L2.global [addr], 16384` (sm_90 TMA unit): one instruction per 16 KiB,
  fire and forget, so the kernel takes no SM time beyond issuing.
- `mode="line"`: `prefetch.global.L2 [addr]`, one instruction per 128-byte line (any sm_70+ GPU).
Neither writes memory the model reads; each program stores one int32 to `scratch` so the compiler keeps the asm.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

CHUNK_BYTES = 16384
LINE_BYTES = 128
MODES = ("bulk", "line")


@triton.jit
def _prefetch_bulk_kernel(base_ptr, scratch_ptr, n_chunks, CHUNK_ELEMS: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    idx = pid * BLOCK + tl.arange(0, BLOCK)
    ptrs = base_ptr + idx.to(tl.int64) * CHUNK_ELEMS
    ptrs = tl.where(idx < n_chunks, ptrs, base_ptr)  # out-of-range lanes prefetch the first chunk again
    r = tl.inline_asm_elementwise(
        "cp.async.bulk.prefetch.L2.global [$1], 16384;\n\tmov.u32 $0, 0;",
        "=r,l",
        [ptrs],
        dtype=tl.int32,
        is_pure=False,
        pack=1,
    )
    tl.store(scratch_ptr + pid, tl.sum(r, 0))


@triton.jit
def _prefetch_line_kernel(base_ptr, scratch_ptr, n_lines, LINE_ELEMS: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    idx = pid * BLOCK + tl.arange(0, BLOCK)
    ptrs = base_ptr + idx.to(tl.int64) * LINE_ELEMS
    ptrs = tl.where(idx < n_lines, ptrs, base_ptr)
    r = tl.inline_asm_elementwise(
        "prefetch.global.L2 [$1];\n\tmov.u32 $0, 0;",
        "=r,l",
        [ptrs],
        dtype=tl.int32,
        is_pure=False,
        pack=1,
    )
    tl.store(scratch_ptr + pid, tl.sum(r, 0))


def scratch_for(device: torch.device | str) -> torch.Tensor:
    """Enough int32 slots for the largest grid `l2_prefetch` launches on a 64 MiB weight."""
    return torch.zeros(4096, dtype=torch.int32, device=device)


def l2_prefetch(t: torch.Tensor, scratch: torch.Tensor, mode: str = "bulk") -> None:
    """Issue L2 prefetches for all of `t` (contiguous, its size a multiple of 16 KiB for "bulk")."""
    if mode not in MODES:
        raise ValueError(f"l2_prefetch mode must be one of {MODES}, got {mode!r}")
    if not t.is_contiguous():
        raise ValueError("l2_prefetch needs a contiguous tensor")
    nbytes = t.numel() * t.element_size()
    unit = CHUNK_BYTES if mode == "bulk" else LINE_BYTES
    if nbytes % unit or unit % t.element_size():
        raise ValueError(f"l2_prefetch {mode}: {nbytes} bytes is not a multiple of {unit}")
    n, elems = nbytes // unit, unit // t.element_size()
    block = 128 if mode == "bulk" else 1024
    grid = triton.cdiv(n, block)
    if grid > scratch.numel():
        raise ValueError(f"l2_prefetch: {grid} programs need a larger scratch than {scratch.numel()}")
    if mode == "bulk":
        _prefetch_bulk_kernel[(grid,)](t, scratch, n, CHUNK_ELEMS=elems, BLOCK=block, num_warps=4)
    else:
        _prefetch_line_kernel[(grid,)](t, scratch, n, LINE_ELEMS=elems, BLOCK=block, num_warps=4)
