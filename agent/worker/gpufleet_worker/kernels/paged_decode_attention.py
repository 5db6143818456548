"""Paged decode attention over a block table (vLLM's PagedAttention v2 / flash-decoding split), in Triton.

Layout:
- q: [B, H, D] bf16, one query token per sequence (decode).
- k_cache, v_cache: [num_blocks, BS, KV, D] bf16 (one layer of the cache; token slot = block * BS + offset).
- block_tables: [B, max_blocks] int32, block ids of each sequence in order; context_lens: [B] int32.
- GQA: H = KV * G. One program serves one (sequence, KV head, partition) and all G query heads of that group, so
  each K/V row is read from HBM once per group, not once per query head; the G rows are padded to 16 for tl.dot.
- The context is cut into partitions of PARTITION tokens (grid axis 2, fixed by the longest context the engine
  allows, so the launch is CUDA-graph safe); each writes (max, sum, unnormalised acc) and a second small kernel
  merges them. Partitions past a sequence's length do no loads.
Roofline: memory-bound. Bytes = sum over sequences of context_len * KV * D * 2 (K and V) * 2 B, plus q and out;
FLOPs = 4 * H * D per cached token (about 0.5-1 FLOP/B in bf16, far under the ~200 FLOP/B ridge), so the target
is the measured device copy bandwidth (reads only; ~0.8 of it at large batch, less at batch 1 where 8 KV heads x
a few partitions cannot fill 132 SMs).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl


@triton.jit
def _partition_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    bt_ptr,
    ctx_ptr,
    m_ptr,
    l_ptr,
    acc_ptr,
    scale_log2,
    stride_qb,
    stride_qh,
    stride_kb,
    stride_ks,
    stride_kh,
    stride_vb,
    stride_vs,
    stride_vh,
    stride_btb,
    max_parts,
    G: tl.constexpr,
    G_PAD: tl.constexpr,
    D: tl.constexpr,
    BS: tl.constexpr,
    PARTITION: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    b = tl.program_id(0)
    kvh = tl.program_id(1)
    part = tl.program_id(2)
    ctx = tl.load(ctx_ptr + b)
    start = part * PARTITION
    end = tl.minimum(start + PARTITION, ctx)

    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D)
    gmask = offs_g < G
    heads = kvh * G + offs_g
    q = tl.load(q_ptr + b * stride_qb + heads[:, None] * stride_qh + offs_d[None, :], mask=gmask[:, None], other=0.0)

    m = tl.full([G_PAD], float("-inf"), tl.float32)
    lsum = tl.zeros([G_PAD], tl.float32)
    acc = tl.zeros([G_PAD, D], tl.float32)
    for n0 in range(start, end, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        nmask = offs_n < end
        blk = tl.load(bt_ptr + b * stride_btb + offs_n // BS, mask=nmask, other=0).to(tl.int64)
        within = offs_n % BS
        k = tl.load(
            k_ptr + blk[:, None] * stride_kb + within[:, None] * stride_ks + kvh * stride_kh + offs_d[None, :],
            mask=nmask[:, None],
            other=0.0,
        )
        v = tl.load(
            v_ptr + blk[:, None] * stride_vb + within[:, None] * stride_vs + kvh * stride_vh + offs_d[None, :],
            mask=nmask[:, None],
            other=0.0,
        )
        s = tl.dot(q, tl.trans(k)) * scale_log2  # [G_PAD, BLOCK_N], log2 domain
        s = tl.where(nmask[None, :], s, float("-inf"))
        m_new = tl.maximum(m, tl.max(s, 1))
        p = tl.exp2(s - m_new[:, None])
        alpha = tl.exp2(m - m_new)
        lsum = lsum * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m = m_new

    row = (b * tl.num_programs(1) * G + heads) * max_parts + part  # [B, H, max_parts]
    tl.store(m_ptr + row, m, mask=gmask)
    tl.store(l_ptr + row, lsum, mask=gmask)
    tl.store(acc_ptr + row[:, None] * D + offs_d[None, :], acc, mask=gmask[:, None])


@triton.jit
def _merge_kernel(
    m_ptr, l_ptr, acc_ptr, out_ptr, stride_ob, stride_oh, H, max_parts, D: tl.constexpr, P_PAD: tl.constexpr
):
    b = tl.program_id(0)
    h = tl.program_id(1)
    offs_p = tl.arange(0, P_PAD)
    offs_d = tl.arange(0, D)
    pmask = offs_p < max_parts
    row = (b * H + h) * max_parts + offs_p
    m = tl.load(m_ptr + row, mask=pmask, other=float("-inf"))
    lsum = tl.load(l_ptr + row, mask=pmask, other=0.0)
    acc = tl.load(acc_ptr + row[:, None] * D + offs_d[None, :], mask=pmask[:, None], other=0.0)
    m_all = tl.max(m, 0)
    w = tl.where(m > float("-inf"), tl.exp2(m - m_all), 0.0)
    out = tl.sum(acc * w[:, None], 0) / tl.sum(lsum * w, 0)
    tl.store(out_ptr + b * stride_ob + h * stride_oh + offs_d, out.to(out_ptr.dtype.element_ty))


class PagedDecodeAttention:
    """Holds the partials for a fixed (max batch, heads, longest context), so repeated calls and graphs reuse them."""

    def __init__(
        self,
        max_batch: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        block_size: int,
        max_context: int,
        device: torch.device | str,
        partition: int = 256,
        block_n: int = 64,
        num_warps: int = 4,
        num_stages: int = 2,
    ) -> None:
        if heads % kv_heads:
            raise ValueError(f"heads {heads} not a multiple of kv_heads {kv_heads}")
        if partition % block_n or head_dim & (head_dim - 1):
            raise ValueError("partition must be a multiple of block_n and head_dim a power of two")
        self.heads, self.kv_heads, self.head_dim, self.block_size = heads, kv_heads, head_dim, block_size
        self.group = heads // kv_heads
        self.partition, self.block_n = partition, block_n
        self.num_warps, self.num_stages = num_warps, num_stages
        self.max_parts = math.ceil(max_context / partition)
        shape = (max_batch, heads, self.max_parts)
        self.m = torch.empty(shape, dtype=torch.float32, device=device)
        self.l = torch.empty(shape, dtype=torch.float32, device=device)
        self.acc = torch.empty((*shape, head_dim), dtype=torch.float32, device=device)

    def __call__(
        self,
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_tables: torch.Tensor,
        context_lens: torch.Tensor,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch = q.shape[0]
        if out is None:
            out = torch.empty_like(q)
        scale_log2 = (1.0 / math.sqrt(self.head_dim)) * 1.4426950408889634
        _partition_kernel[(batch, self.kv_heads, self.max_parts)](
            q,
            k_cache,
            v_cache,
            block_tables,
            context_lens,
            self.m,
            self.l,
            self.acc,
            scale_log2,
            q.stride(0),
            q.stride(1),
            k_cache.stride(0),
            k_cache.stride(1),
            k_cache.stride(2),
            v_cache.stride(0),
            v_cache.stride(1),
            v_cache.stride(2),
            block_tables.stride(0),
            self.max_parts,
            G=self.group,
            G_PAD=max(16, triton.next_power_of_2(self.group)),
            D=self.head_dim,
            BS=self.block_size,
            PARTITION=self.partition,
            BLOCK_N=self.block_n,
            num_warps=self.num_warps,
            num_stages=self.num_stages,
        )
        _merge_kernel[(batch, self.heads)](
            self.m,
            self.l,
            self.acc,
            out,
            out.stride(0),
            out.stride(1),
            self.heads,
            self.max_parts,
            D=self.head_dim,
            P_PAD=max(2, triton.next_power_of_2(self.max_parts)),
            num_warps=4,
        )
        return out


def reference_paged_decode(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    context_lens: torch.Tensor,
) -> torch.Tensor:
    """Plain float64 reference: gather each sequence's K/V through its table, softmax, weighted sum."""
    heads, kv_heads = q.shape[1], k_cache.shape[2]
    bs = k_cache.shape[1]
    out = torch.empty(q.shape, dtype=torch.float64, device=q.device)
    for b in range(q.shape[0]):
        n = int(context_lens[b])
        pos = torch.arange(n, device=q.device)
        blk = block_tables[b, pos // bs].long()
        k = k_cache[blk, pos % bs].double().repeat_interleave(heads // kv_heads, dim=1)  # [n, H, D]
        v = v_cache[blk, pos % bs].double().repeat_interleave(heads // kv_heads, dim=1)
        s = torch.einsum("hd,nhd->hn", q[b].double(), k) / math.sqrt(q.shape[-1])
        out[b] = torch.einsum("hn,nhd->hd", torch.softmax(s, dim=-1), v)
    return out
