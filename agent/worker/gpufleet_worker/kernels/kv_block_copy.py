"""Block gather (KV export) and scatter (KV import) over the whole paged cache, in Triton.

Layout: the cache is one tensor [layers, 2 (K, V), num_blocks, BS, KV, D]; a block's payload for one layer and one
of K/V is BS * KV * D contiguous elements (BS=16, KV=8, D=128: 32 KiB in bf16). Gather writes
out[layer, kv, i] = cache[layer, kv, blocks[i]] into a dense [layers, 2, n, BS, KV, D] buffer (what goes on the
wire or to the other worker); scatter is the inverse into the blocks the importer allocated. One launch covers every
layer: grid (layers * 2, n, block_elems / CHUNK); each program moves CHUNK contiguous elements, 16-byte vectors.
Roofline: pure copy, bytes = 2 * payload (read + write); target is the measured device-to-device copy bandwidth.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

CHUNK = 4096


@triton.jit
def _copy_blocks_kernel(
    src_ptr, dst_ptr, blocks_ptr, num_cache_blocks, n, block_elems, GATHER: tl.constexpr, CHUNK: tl.constexpr
):
    lk = tl.program_id(0).to(tl.int64)  # layer * 2 + (0 for K, 1 for V)
    i = tl.program_id(1)
    c = tl.program_id(2)
    blk = tl.load(blocks_ptr + i).to(tl.int64)
    offs = c * CHUNK + tl.arange(0, CHUNK)
    mask = offs < block_elems
    cache_off = (lk * num_cache_blocks + blk) * block_elems + offs
    dense_off = (lk * n + i) * block_elems + offs
    if GATHER:
        tl.store(dst_ptr + dense_off, tl.load(src_ptr + cache_off, mask=mask), mask=mask)
    else:
        tl.store(dst_ptr + cache_off, tl.load(src_ptr + dense_off, mask=mask), mask=mask)


def _check(cache: torch.Tensor, blocks: torch.Tensor) -> tuple[int, int, int]:
    if cache.dim() != 6 or cache.shape[1] != 2 or not cache.is_contiguous():
        raise ValueError(f"cache must be contiguous [layers, 2, blocks, BS, KV, D], got {tuple(cache.shape)}")
    if blocks.dtype not in (torch.int32, torch.int64) or blocks.dim() != 1:
        raise ValueError("blocks must be a 1-D integer tensor")
    block_elems = cache.shape[3] * cache.shape[4] * cache.shape[5]
    return cache.shape[0] * 2, cache.shape[2], block_elems


def gather_blocks(cache: torch.Tensor, blocks: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    lk, num_cache_blocks, block_elems = _check(cache, blocks)
    n = blocks.numel()
    if out is None:
        out = torch.empty((cache.shape[0], 2, n, *cache.shape[3:]), dtype=cache.dtype, device=cache.device)
    if n:
        grid = (lk, n, triton.cdiv(block_elems, CHUNK))
        _copy_blocks_kernel[grid](cache, out, blocks, num_cache_blocks, n, block_elems, GATHER=True, CHUNK=CHUNK)
    return out


def scatter_blocks(cache: torch.Tensor, blocks: torch.Tensor, data: torch.Tensor) -> None:
    lk, num_cache_blocks, block_elems = _check(cache, blocks)
    n = blocks.numel()
    expected = (cache.shape[0], 2, n, *cache.shape[3:])
    if tuple(data.shape) != expected or not data.is_contiguous() or data.dtype != cache.dtype:
        raise ValueError(f"data must be contiguous {expected} {cache.dtype}, got {tuple(data.shape)} {data.dtype}")
    if n:
        grid = (lk, n, triton.cdiv(block_elems, CHUNK))
        _copy_blocks_kernel[grid](data, cache, blocks, num_cache_blocks, n, block_elems, GATHER=False, CHUNK=CHUNK)
