"""Paged decode attention over a block table (vLLM's PagedAttention v2 / flash-decoding split), in Triton.

Layout:
- q: [B, H, D] bf16, one query token per sequence (decode).
- k_cache, v_cache: [num_blocks, BS, KV, D] bf16 (one layer of the cache; token slot = block * BS + offset).
- block_tables: [B, max_blocks] int32, block ids of each sequence in order; context_lens: [B] int32.
- GQA: H = KV * G. One program serves one (sequence, KV head, partition) and all G query heads of that group, so
  each K/V row is read from HBM once per group, not once per query head; the G rows are padded to 16 for tl.dot.
- The context is cut into partitions of PARTITION tokens (grid axis 2, fixed by the longest context the engine
  allows, so the launch is CUDA-graph safe); each writes (max, sum, unnormalised acc) and a second small kernel
  merges them (v1-v4). Partitions past a sequence's length do no loads.
- v5 (`fused_merge=True`, the default): no second kernel. Each partition writes its partials and bumps a counter
  of its (sequence, KV head); the program that arrives last merges all of them and resets the counter to 0 (so
  the next call and every CUDA-graph replay start from zero). A sequence whose context fits one partition writes
  its normalised output directly, with no partials at all. Why: the merge launch cost 0.41 ms of a 9.8 ms B=128
  step and ~2-4 us a layer at B=1/32 (NOTES.md v4), mostly launch and ramp-up, not bytes.
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


@triton.jit
def _fused_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    bt_ptr,
    ctx_ptr,
    m_ptr,
    l_ptr,
    acc_ptr,
    out_ptr,
    cnt_ptr,
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
    stride_ob,
    stride_oh,
    max_parts,
    G: tl.constexpr,
    G_PAD: tl.constexpr,
    D: tl.constexpr,
    BS: tl.constexpr,
    PARTITION: tl.constexpr,
    BLOCK_N: tl.constexpr,
    G_M: tl.constexpr,
    PCH: tl.constexpr,
):
    """One (sequence, KV head, partition); the last partition of a (sequence, KV head) to finish merges."""
    b = tl.program_id(0)
    kvh = tl.program_id(1)
    part = tl.program_id(2)
    ctx = tl.load(ctx_ptr + b)
    n_parts = tl.cdiv(ctx, PARTITION)
    if part < n_parts:  # partitions past the context do nothing, and are not counted
        start = part * PARTITION
        end = tl.minimum(start + PARTITION, ctx)
        offs_g = tl.arange(0, G_PAD)
        offs_d = tl.arange(0, D)
        gmask = offs_g < G
        heads = kvh * G + offs_g
        q = tl.load(
            q_ptr + b * stride_qb + heads[:, None] * stride_qh + offs_d[None, :], mask=gmask[:, None], other=0.0
        )
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
        o_ptrs = out_ptr + b * stride_ob + heads[:, None] * stride_oh + offs_d[None, :]
        if n_parts == 1:  # the whole context in this program: no partials, no merge
            tl.store(o_ptrs, (acc / lsum[:, None]).to(out_ptr.dtype.element_ty), mask=gmask[:, None])
        else:
            row0 = (b * tl.num_programs(1) * G + heads) * max_parts  # [B, H, max_parts]
            tl.store(m_ptr + row0 + part, m, mask=gmask)
            tl.store(l_ptr + row0 + part, lsum, mask=gmask)
            tl.store(acc_ptr + (row0 + part)[:, None] * D + offs_d[None, :], acc, mask=gmask[:, None])
            # every thread's partial stores come before the one thread's release below (CUTLASS's semaphore
            # pattern: CTA barrier, then a gpu-scope acq_rel atomic); the last arriver's acquire makes all
            # partitions' partials visible to it
            tl.debug_barrier()
            cnt = cnt_ptr + b * tl.num_programs(1) + kvh
            arrived = tl.atomic_add(cnt, 1, sem="acq_rel", scope="gpu")
            if arrived == n_parts - 1:
                # merge PCH partials per load ([PCH, G_M, D] at once, G_M = the group's real heads padded to a
                # power of two): one L2 round trip per chunk, not one per partial (v5 first run: a loop of one
                # dependent load per partial made the in-kernel merge slower than the merge launch at B=1)
                offs_gm = tl.arange(0, G_M)
                gm = offs_gm < G
                rowm = (b * tl.num_programs(1) * G + kvh * G + offs_gm) * max_parts  # [G_M]
                m_all = tl.full([G_M], float("-inf"), tl.float32)
                l_all = tl.zeros([G_M], tl.float32)
                o = tl.zeros([G_M, D], tl.float32)
                for p0 in range(0, n_parts, PCH):  # online merge by chunks; .cg: read L2, never a stale L1 line
                    offs_p = p0 + tl.arange(0, PCH)
                    pg = (offs_p < n_parts)[:, None] & gm[None, :]  # [PCH, G_M]
                    idx = rowm[None, :] + offs_p[:, None]
                    mp = tl.load(m_ptr + idx, mask=pg, other=float("-inf"), cache_modifier=".cg")
                    lp = tl.load(l_ptr + idx, mask=pg, other=0.0, cache_modifier=".cg")
                    ap = tl.load(
                        acc_ptr + idx[:, :, None] * D + offs_d[None, None, :],
                        mask=pg[:, :, None],
                        other=0.0,
                        cache_modifier=".cg",
                    )
                    m_new = tl.maximum(m_all, tl.max(mp, 0))  # finite for real heads: partition 0 is in chunk 0
                    a_old = tl.where(m_all > float("-inf"), tl.exp2(m_all - m_new), 0.0)
                    wp = tl.where(mp > float("-inf"), tl.exp2(mp - m_new[None, :]), 0.0)  # [PCH, G_M]
                    l_all = l_all * a_old + tl.sum(lp * wp, 0)
                    o = o * a_old[:, None] + tl.sum(ap * wp[:, :, None], 0)
                    m_all = m_new
                om_ptrs = out_ptr + b * stride_ob + (kvh * G + offs_gm)[:, None] * stride_oh + offs_d[None, :]
                l_safe = tl.where(gm, l_all, 1.0)
                tl.store(om_ptrs, (o / l_safe[:, None]).to(out_ptr.dtype.element_ty), mask=gm[:, None])
                tl.atomic_xchg(cnt, 0, sem="relaxed", scope="gpu")  # ready for the next call / graph replay


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
        fused_merge: bool = True,
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
        self.fused_merge = fused_merge
        # arrival counters of the fused merge, one per (sequence, KV head); zero between calls
        self.counters = torch.zeros((max_batch, kv_heads), dtype=torch.int32, device=device)

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
        if self.fused_merge:
            return self._fused(q, k_cache, v_cache, block_tables, context_lens, out, scale_log2)
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

    def _fused(self, q, k_cache, v_cache, block_tables, context_lens, out, scale_log2) -> torch.Tensor:
        _fused_kernel[(q.shape[0], self.kv_heads, self.max_parts)](
            q,
            k_cache,
            v_cache,
            block_tables,
            context_lens,
            self.m,
            self.l,
            self.acc,
            out,
            self.counters,
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
            out.stride(0),
            out.stride(1),
            self.max_parts,
            G=self.group,
            G_PAD=max(16, triton.next_power_of_2(self.group)),
            D=self.head_dim,
            BS=self.block_size,
            PARTITION=self.partition,
            BLOCK_N=self.block_n,
            G_M=max(2, triton.next_power_of_2(self.group)),
            PCH=max(2, 32 // max(2, triton.next_power_of_2(self.group))),
            num_warps=self.num_warps,
            num_stages=self.num_stages,
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
