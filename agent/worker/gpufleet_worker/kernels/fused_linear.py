"""Skinny-M linear layers for decode, in Triton, with the layer's elementwise stages folded in.

Why: at decode (M = batch rows, 1..128) every linear layer is a stream over its weight matrix, and the v3 step ran
10 kernels a layer (plus two cuBLAS split-K reductions): the GEMMs and separate add+RMSNorm and SiLU*mul launches,
each with its own ramp-up and tail (NOTES.md v3 -> v4). Here one kernel does

    out = epilogue( prologue(x) @ W^T )

- prologue `NORM`: RMSNorm of the input rows with its weight g folded into W once (`fold_norm_weight`:
  (x * inv_rms * g) @ W^T = inv_rms * (x @ (W * g)^T)). rms(x) needs the whole row, but every program walks all
  of K anyway (no split-K), so it sums x^2 from the tiles it loads and scales the accumulator at the end. x goes
  into the dot unchanged: an elementwise op between its load and the dot (v4 first try: x * g in the loop)
  halved the kernel's bandwidth (H200 run 1: 1561 against 2799 GB/s without it).
- epilogue `SILU`: W is the fused [2F, K] gate/up matrix; each program keeps two accumulators (gate rows n, up rows
  F + n) and writes silu(gate) * up as [M, F]: the 2F-wide intermediate never reaches memory.
- epilogue `RESIDUAL`: out = res + acc (out may be res itself: the residual stream updated in place; each element is
  read and written by the same program).

Tiling: one program per (BLOCK_N output columns, BLOCK_M rows); BLOCK_M is M padded to a power of two >= 16 (so
every weight byte is read once per step), and BLOCK_N is small so N / BLOCK_N programs fill the 132 SMs without
split-K. Which layers use it, and with which tile, is measured per M (bench/h200.py `linear_sweep`, over all 32
layers' weights in turn so the 60 MB L2 serves none of them, against cuBLAS with the same elementwise work) and
kept in CHOICES; `None` there means cuBLAS is faster for that layer and the runner uses it.
Roofline: memory-bound at M <= 128 on Llama-3-8B shapes (about 2 * M FLOP per weight byte, ridge ~180 FLOP/B).

v5, split-K (a 5th tile field SPLIT_K >= 2): the same function, with K cut into SPLIT_K slices, one program per
(BLOCK_N columns, slice). Why: at M=1 qkv (N=6144) / o (N=4096) give 96-192 programs of 64-32 columns for 132 SMs,
so a wave is either a third empty or some SMs run two programs while others idle (v4 sweep: qkv with the norm
prologue at 0.39 of copy, o at 0.67); SPLIT_K x more, smaller programs even the SMs out. Each program writes its
fp32 partial (and, with the norm, its slice's sum of x^2, computed in a loop of its own so that x feeds the dot
unchanged) and bumps its column tile's counter; the last of the SPLIT_K to arrive adds the partials, applies the
norm's 1/rms (linear in x, so it can come last), the SiLU*mul and residual epilogues, writes out and resets the
counter to 0 (so the next call and every CUDA-graph replay start from zero). The partials cost SPLIT_K * M * N * 8
bytes of traffic against N * K * 2 of weights: small at M <= 32.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

Config = tuple[int, ...]  # (BLOCK_N, BLOCK_K, num_warps, num_stages[, SPLIT_K]); no SPLIT_K = 1, the v4 kernel
LAYERS = ("qkv", "o", "gate_up", "down", "lm_head")
# (BLOCK_M, layer) -> tile, or None for cuBLAS; from the H200 sweep of NOTES.md v4 (bench/h200.py replaces them
# with its own run's sweep before it times the step)
CHOICES: dict[tuple[int, str], Config | None] = {
    (16, "o"): (32, 256, 4, 4),
    (32, "o"): (32, 256, 4, 4),
}
DEFAULT_CONFIGS: dict[int, Config] = {
    16: (32, 256, 4, 4),
    32: (32, 256, 4, 4),
    64: (64, 128, 4, 4),
    128: (64, 128, 8, 3),
}
# the largest decode batch that may use these kernels
MAX_ROWS = 128
# the RMSNorm prologue is verified up to this BLOCK_M: at BLOCK_M 128 (M=100, K=256, N=200) it was wrong on the H200
# (relative error 0.165; NOTES.md v4), so it is refused there and those layers take cuBLAS
MAX_NORM_BLOCK_M = 32


def choice_for(rows: int, layer: str, choices: dict | None = None) -> Config | None:
    """The tile for this layer at this many rows, or None: use cuBLAS (also for rows past MAX_ROWS). `choices`
    replaces CHOICES (the bench times two versions' choices in one run)."""
    if rows > MAX_ROWS:
        return None
    bm = block_m_for(rows)
    if layer in ("qkv", "gate_up", "lm_head") and bm > MAX_NORM_BLOCK_M:
        return None
    return (CHOICES if choices is None else choices).get((bm, layer))


def fold_norm_weight(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """W * g along K (a new tensor): the RMSNorm weight moved into the next linear layer's columns."""
    return (w.float() * g.float()[None, :]).to(w.dtype)


@triton.jit
def _fused_linear_kernel(
    x_ptr,
    w_ptr,
    out_ptr,
    res_ptr,
    M,
    N,
    K,
    stride_xm,
    stride_wn,
    stride_om,
    stride_rm,
    eps,
    NORM: tl.constexpr,
    SILU: tl.constexpr,
    RESIDUAL: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    mmask = offs_m < M
    nmask = offs_n < N
    x_ptrs = x_ptr + offs_m[:, None].to(tl.int64) * stride_xm + offs_k[None, :]
    w_ptrs = w_ptr + offs_n[:, None].to(tl.int64) * stride_wn + offs_k[None, :]
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    if SILU:
        u_ptrs = w_ptrs + N * stride_wn  # up rows follow the N gate rows
        acc_u = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    if NORM:
        ss = tl.zeros([BLOCK_M], dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        x = tl.load(x_ptrs + k0, mask=mmask[:, None], other=0.0)
        if NORM:
            xf = x.to(tl.float32)
            ss += tl.sum(xf * xf, 1)
        w = tl.load(w_ptrs + k0, mask=nmask[:, None], other=0.0)
        acc = tl.dot(x, tl.trans(w), acc)
        if SILU:
            wu = tl.load(u_ptrs + k0, mask=nmask[:, None], other=0.0)
            acc_u = tl.dot(x, tl.trans(wu), acc_u)
    if NORM:
        inv = tl.rsqrt(ss / K + eps)
        acc = acc * inv[:, None]
        if SILU:
            acc_u = acc_u * inv[:, None]
    omask = mmask[:, None] & nmask[None, :]
    if SILU:
        # the reference rounds gate, up and silu(gate) to bf16 (they are tensors there); do the same
        gate = acc.to(out_ptr.dtype.element_ty).to(tl.float32)
        up = acc_u.to(out_ptr.dtype.element_ty).to(tl.float32)
        acc = (gate / (1.0 + tl.exp(-gate))).to(out_ptr.dtype.element_ty).to(tl.float32) * up
    if RESIDUAL:
        acc = acc.to(out_ptr.dtype.element_ty).to(tl.float32)  # the reference adds a bf16 GEMM output
        r = tl.load(res_ptr + offs_m[:, None].to(tl.int64) * stride_rm + offs_n[None, :], mask=omask, other=0.0)
        acc += r.to(tl.float32)
    o_ptrs = out_ptr + offs_m[:, None].to(tl.int64) * stride_om + offs_n[None, :]
    tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=omask)


@triton.jit
def _splitk_linear_kernel(
    x_ptr,
    w_ptr,
    out_ptr,
    res_ptr,
    ws_ptr,
    ss_ptr,
    cnt_ptr,
    M,
    N,
    K,
    stride_xm,
    stride_wn,
    stride_om,
    stride_rm,
    eps,
    NORM: tl.constexpr,
    SILU: tl.constexpr,
    RESIDUAL: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    SPLIT_K: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_s = tl.program_id(1)
    k_per = K // SPLIT_K  # the host checks K % (SPLIT_K * BLOCK_K) == 0
    k_start = pid_s * k_per
    offs_m = tl.arange(0, BLOCK_M)  # one row tile: M <= BLOCK_M (the host checks)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    mmask = offs_m < M
    nmask = offs_n < N
    x_ptrs = x_ptr + offs_m[:, None].to(tl.int64) * stride_xm + offs_k[None, :]
    w_ptrs = w_ptr + offs_n[:, None].to(tl.int64) * stride_wn + offs_k[None, :]
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    if SILU:
        u_ptrs = w_ptrs + N * stride_wn  # up rows follow the N gate rows
        acc_u = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(k_start, k_start + k_per, BLOCK_K):
        x = tl.load(x_ptrs + k0, mask=mmask[:, None], other=0.0)
        w = tl.load(w_ptrs + k0, mask=nmask[:, None], other=0.0)
        acc = tl.dot(x, tl.trans(w), acc)
        if SILU:
            wu = tl.load(u_ptrs + k0, mask=nmask[:, None], other=0.0)
            acc_u = tl.dot(x, tl.trans(wu), acc_u)
    omask = mmask[:, None] & nmask[None, :]
    if SILU:  # noqa: SIM108 (partial row width: gate columns, then up columns)
        nw = 2 * N
    else:
        nw = N
    ws_ptrs = ws_ptr + (pid_s * M + offs_m[:, None]).to(tl.int64) * nw + offs_n[None, :]
    tl.store(ws_ptrs, acc, mask=omask)
    if SILU:
        tl.store(ws_ptrs + N, acc_u, mask=omask)
    if NORM:  # this slice's sum of x^2, in a loop of its own: x above feeds the dot unchanged (NOTES.md v4)
        ss = tl.zeros([BLOCK_M], dtype=tl.float32)
        for k0 in range(k_start, k_start + k_per, BLOCK_K):
            xs = tl.load(x_ptrs + k0, mask=mmask[:, None], other=0.0).to(tl.float32)
            ss += tl.sum(xs * xs, 1)
        tl.store(ss_ptr + (pid_n * SPLIT_K + pid_s) * BLOCK_M + offs_m, ss)
    # all threads' partial stores, then one release by the counter's atomic (CTA barrier + gpu-scope acq_rel);
    # the last arriver's acquire makes every slice's partial visible to it
    tl.debug_barrier()
    cnt = cnt_ptr + pid_n
    arrived = tl.atomic_add(cnt, 1, sem="acq_rel", scope="gpu")
    if arrived == SPLIT_K - 1:
        tot = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        if SILU:
            tot_u = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        if NORM:
            sst = tl.zeros([BLOCK_M], dtype=tl.float32)
        for sp in range(0, SPLIT_K):  # .cg: read L2, never a stale L1 line
            p_ptrs = ws_ptr + (sp * M + offs_m[:, None]).to(tl.int64) * nw + offs_n[None, :]
            tot += tl.load(p_ptrs, mask=omask, other=0.0, cache_modifier=".cg")
            if SILU:
                tot_u += tl.load(p_ptrs + N, mask=omask, other=0.0, cache_modifier=".cg")
            if NORM:
                sst += tl.load(ss_ptr + (pid_n * SPLIT_K + sp) * BLOCK_M + offs_m, cache_modifier=".cg")
        if NORM:
            inv = tl.rsqrt(sst / K + eps)
            tot = tot * inv[:, None]
            if SILU:
                tot_u = tot_u * inv[:, None]
        if SILU:  # the reference rounds gate, up and silu(gate) to bf16 (they are tensors there); do the same
            gate = tot.to(out_ptr.dtype.element_ty).to(tl.float32)
            up = tot_u.to(out_ptr.dtype.element_ty).to(tl.float32)
            tot = (gate / (1.0 + tl.exp(-gate))).to(out_ptr.dtype.element_ty).to(tl.float32) * up
        if RESIDUAL:
            tot = tot.to(out_ptr.dtype.element_ty).to(tl.float32)  # the reference adds a bf16 GEMM output
            r = tl.load(res_ptr + offs_m[:, None].to(tl.int64) * stride_rm + offs_n[None, :], mask=omask, other=0.0)
            tot += r.to(tl.float32)
        o_ptrs = out_ptr + offs_m[:, None].to(tl.int64) * stride_om + offs_n[None, :]
        tl.store(o_ptrs, tot.to(out_ptr.dtype.element_ty), mask=omask)
        tl.atomic_xchg(cnt, 0, sem="relaxed", scope="gpu")  # ready for the next call / graph replay


# split-K scratch per device: fp32 partials and x^2 sums (grown on demand, never while a CUDA graph is being
# captured: a buffer made during capture would belong to that graph's pool) and per-tile arrival counters (zero
# between calls; launches on one stream run in order, so every layer can share them)
_SCRATCH: dict[str, dict[str, torch.Tensor]] = {}


def _scratch(device: torch.device, name: str, numel: int, dtype: torch.dtype) -> torch.Tensor:
    bufs = _SCRATCH.setdefault(str(device), {})
    t = bufs.get(name)
    if t is None or t.numel() < numel:
        if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
            raise RuntimeError(f"fused_linear split-K scratch {name!r} must be sized before graph capture (warm up)")
        t = bufs[name] = torch.zeros(max(numel, 1 << 16), dtype=dtype, device=device)
    return t


def block_m_for(rows: int) -> int:
    """M padded for tl.dot (at least 16); past 128 rows the bench measures nothing (cuBLAS)."""
    return max(16, triton.next_power_of_2(rows))


def fused_linear(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    rms_norm: bool = False,
    eps: float = 1e-5,
    silu: bool = False,
    residual: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    config: Config | None = None,
) -> torch.Tensor:
    """x [M, K] @ w[N or 2N, K]^T with the optional prologue/epilogue above; returns out [M, N].

    rms_norm: w must hold the norm weight already (`fold_norm_weight`).
    residual: out = residual + x @ w^T (pass out=residual to update the residual stream in place)."""
    m, k = x.shape
    rows = w.shape[0]
    if w.shape[1] != k or x.stride(1) != 1 or w.stride(1) != 1:
        raise ValueError(f"fused_linear: x {tuple(x.shape)} and w {tuple(w.shape)} need contiguous K of one size")
    if silu and rows % 2:
        raise ValueError(f"fused_linear: silu needs a [2F, K] gate/up weight, got {rows} rows")
    n = rows // 2 if silu else rows
    bm = block_m_for(m)
    if bm > 128:
        raise ValueError(f"fused_linear is for decode rows (at most 128), got {m}")
    if rms_norm and bm > MAX_NORM_BLOCK_M:
        raise ValueError(f"fused_linear: the RMSNorm prologue is not verified past {MAX_NORM_BLOCK_M} rows, got {m}")
    bn, bk, warps, stages, *rest = config if config is not None else DEFAULT_CONFIGS[bm]
    split = rest[0] if rest else 1
    bk = min(bk, k)
    if k % (bk * split):
        raise ValueError(f"fused_linear: K={k} is not a multiple of BLOCK_K={bk} x SPLIT_K={split}")
    if split > 1 and bm > 32:
        raise ValueError(f"fused_linear: split-K is for decode rows up to 32, got {m}")
    if out is None:
        out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if residual is not None and (residual.shape != (m, n) or residual.stride(1) != 1):
        raise ValueError(f"fused_linear: residual {tuple(residual.shape)} must be [{m}, {n}] with contiguous rows")
    if out.shape != (m, n) or out.stride(1) != 1:
        raise ValueError(f"fused_linear: out {tuple(out.shape)} must be [{m}, {n}] with contiguous rows")
    if split > 1:
        _splitk(x, w, out, residual, m, n, k, eps, rms_norm, silu, bm, bn, bk, warps, stages, split)
        return out
    grid = (triton.cdiv(n, bn), triton.cdiv(m, bm))
    _fused_linear_kernel[grid](
        x,
        w,
        out,
        residual if residual is not None else out,
        m,
        n,
        k,
        x.stride(0),
        w.stride(0),
        out.stride(0),
        residual.stride(0) if residual is not None else 0,
        eps,
        NORM=rms_norm,
        SILU=silu,
        RESIDUAL=residual is not None,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
        num_warps=warps,
        num_stages=stages,
    )
    return out


def _splitk(x, w, out, residual, m, n, k, eps, rms_norm, silu, bm, bn, bk, warps, stages, split) -> None:
    tiles = triton.cdiv(n, bn)
    ws = _scratch(x.device, "partials", split * m * (2 * n if silu else n), torch.float32)
    ss = _scratch(x.device, "sumsq", tiles * split * bm, torch.float32)
    cnt = _scratch(x.device, "counters", tiles, torch.int32)
    _splitk_linear_kernel[(tiles, split)](
        x,
        w,
        out,
        residual if residual is not None else out,
        ws,
        ss,
        cnt,
        m,
        n,
        k,
        x.stride(0),
        w.stride(0),
        out.stride(0),
        residual.stride(0) if residual is not None else 0,
        eps,
        NORM=rms_norm,
        SILU=silu,
        RESIDUAL=residual is not None,
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_K=bk,
        SPLIT_K=split,
        num_warps=warps,
        num_stages=stages,
    )


def reference_fused_linear(
    x: torch.Tensor,
    w: torch.Tensor,
    *,
    norm_weight: torch.Tensor | None = None,
    eps: float = 1e-5,
    silu: bool = False,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """The same function in float64 (no intermediate rounding), for the checks."""
    xd = x.double()
    if norm_weight is not None:
        xd = xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + eps) * norm_weight.double()
    y = xd @ w.double().T
    if silu:
        gate, up = y.chunk(2, dim=-1)
        y = torch.nn.functional.silu(gate) * up
    if residual is not None:
        y = y + residual.double()
    return y
