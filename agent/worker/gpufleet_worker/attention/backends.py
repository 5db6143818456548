"""One attention interface, two implementations that the runner can swap (vLLM v1's AttentionBackend idea).

Both write nothing: the runner stores this step's K/V into the paged cache first, then calls the backend, which
reads the cache through the block table. Prefill is shared (torch SDPA; FlashAttention when a prompt has no cached
prefix); decode differs: `TorchSdpaBackend` gathers each sequence's blocks into a dense padded tensor and calls
SDPA with a length mask (torch's own path), `TritonPagedBackend` reads the blocks in place with our kernel.
Decode inputs are fixed-shape tensors, so both are CUDA-graph safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F


@dataclass(slots=True)
class DecodeMetadata:
    block_tables: torch.Tensor  # [B, max_blocks] int32
    context_lens: torch.Tensor  # [B] int32, including this step's token


@dataclass(slots=True)
class PrefillMetadata:
    query_lens: list[int]
    context_lens: list[int]
    block_tables: list[torch.Tensor | None]  # per sequence, int64 block ids (None: no cached prefix, not needed)
    # when no sequence has a cached prefix: [B + 1] int32 prompt offsets on the device, so one varlen attention
    # call serves every prompt of the step (`prefill_metadata` builds it; a prefill CUDA graph holds its own)
    cu_seqlens: torch.Tensor | None = None
    max_query_len: int = 0  # the longest prompt between those offsets, or an upper bound on it (a graph's bucket)


def prefill_metadata(
    query_lens: list[int], context_lens: list[int], tables: list[list[int]], device
) -> PrefillMetadata:
    """The step's prefill metadata with one host-to-device copy per tensor the attention will read: block tables
    only for chunks with a cached prefix, and the prompt offsets when there are several prompts and none has a
    prefix (the varlen path)."""
    dev = torch.device(device)
    on_gpu = [
        torch.tensor(t, dtype=torch.long, device=dev) if c != q else None
        for q, c, t in zip(query_lens, context_lens, tables, strict=True)
    ]
    cu = None
    if dev.type == "cuda" and len(query_lens) > 1 and all(t is None for t in on_gpu):
        offsets = [0]
        for q in query_lens:
            offsets.append(offsets[-1] + q)
        cu = torch.tensor(offsets, dtype=torch.int32, device=dev)
    return PrefillMetadata(query_lens, context_lens, on_gpu, cu, max(query_lens, default=0))


# why the varlen path is off on this build, if it is (set on its first failure; the per-prompt loop runs instead)
VARLEN_UNAVAILABLE: str | None = None


def varlen_causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, meta: PrefillMetadata
) -> torch.Tensor | None:
    """Causal attention of every prompt in one FlashAttention varlen call (GQA native), or None where the build has
    no such kernel. Why: the per-prompt loop issues ~14 torch ops a prompt a layer from Python, ~3 ms of host time a
    prompt at Llama-3-8B (the calibration's eager prefill fit, NOTES.md v5), which at small prompts is the step."""
    global VARLEN_UNAVAILABLE
    # no offsets for one eager prompt: SDPA's own causal kernel (v5 run 2: the varlen kernel took ~6% more GPU time)
    if VARLEN_UNAVAILABLE is not None or meta.cu_seqlens is None:
        return None
    longest = meta.max_query_len
    try:
        out = torch.ops.aten._flash_attention_forward(
            q, k, v, meta.cu_seqlens, meta.cu_seqlens, longest, longest, 0.0, True, False
        )[0]
    except (RuntimeError, AttributeError, NotImplementedError) as e:
        VARLEN_UNAVAILABLE = repr(e)[:300]
        return None
    return out


class AttentionBackend(Protocol):
    name: str

    def decode(
        self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, meta: DecodeMetadata
    ) -> torch.Tensor:
        """q: [B, H, D]; caches: [num_blocks, BS, KV, D] -> [B, H, D]."""
        ...


def prefill_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    meta: PrefillMetadata,
) -> torch.Tensor:
    """Causal attention of each sequence's chunk over its cached prefix and itself. q: [T, H, D]; k, v: [T, KV, D]."""
    fast = varlen_causal_attention(q, k, v, meta)
    if fast is not None:
        return fast
    out = torch.empty((q.shape[0], q.shape[1], q.shape[2]), dtype=q.dtype, device=q.device)
    group = q.shape[1] // k.shape[1]
    t0 = 0
    for qlen, ctx, table in zip(meta.query_lens, meta.context_lens, meta.block_tables, strict=True):
        qs = q[t0 : t0 + qlen].transpose(0, 1).unsqueeze(0)  # [1, H, qlen, D]
        if ctx == qlen:  # no cached prefix: FlashAttention's causal path, GQA native (measured: 0.120 ms a layer
            # at 2k tokens against 0.198 ms with K/V repeated to the query heads; NOTES.md v2)
            ks = k[t0 : t0 + qlen].transpose(0, 1).unsqueeze(0)
            vs = v[t0 : t0 + qlen].transpose(0, 1).unsqueeze(0)
            o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, enable_gqa=True)
        else:  # chunked prefill: read the prefix back through the block table, bottom-right causal mask; K/V
            # repeated to the query heads so the masked call takes the memory-efficient kernel
            bs = k_cache.shape[1]
            pos = torch.arange(ctx, device=q.device)
            blk = table[pos // bs]
            ks = k_cache[blk, pos % bs].repeat_interleave(group, dim=1).transpose(0, 1).unsqueeze(0)
            vs = v_cache[blk, pos % bs].repeat_interleave(group, dim=1).transpose(0, 1).unsqueeze(0)
            qpos = torch.arange(ctx - qlen, ctx, device=q.device)
            o = F.scaled_dot_product_attention(qs, ks, vs, attn_mask=pos[None, :] <= qpos[:, None])
        out[t0 : t0 + qlen] = o.squeeze(0).transpose(0, 1)
        t0 += qlen
    return out


class TorchSdpaBackend:
    """Torch's path for paged decode: gather the blocks densely, then SDPA with a key-length mask."""

    name = "torch-sdpa"

    def decode(
        self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, meta: DecodeMetadata
    ) -> torch.Tensor:
        b, max_blocks = meta.block_tables.shape
        bs, kvh, d = k_cache.shape[1:]
        heads = q.shape[1]
        tables = meta.block_tables.long()
        k = k_cache[tables].reshape(b, max_blocks * bs, kvh, d).transpose(1, 2)  # [B, KV, S, D]
        v = v_cache[tables].reshape(b, max_blocks * bs, kvh, d).transpose(1, 2)
        mask = torch.arange(max_blocks * bs, device=q.device)[None, :] < meta.context_lens[:, None]
        # GQA without enable_gqa: a group's G query heads become G query rows against their KV head (exact for
        # decode, where no causal mask applies among them), so SDPA's memory-efficient kernel takes it.
        qg = q.view(b, kvh, heads // kvh, d)
        o = F.scaled_dot_product_attention(qg, k, v, attn_mask=mask[:, None, None, :])
        return o.reshape(b, heads, d)


def partition_for(batch: int, kv_heads: int, max_context: int, sms: int = 132) -> int:
    """Context tokens per program of the split-K decode kernel: enough partitions that batch x KV heads x
    partitions gives ~4 programs per SM (a batch-1 step otherwise runs 8 programs on 132 SMs), within 64..512
    (measured best at 512 once the batch alone fills the chip: NOTES.md, v2)."""
    parts = -(-4 * sms // (batch * kv_heads))
    want = -(-max_context // parts)
    return min(512, max(64, 1 << (want - 1).bit_length()))


# fewest (sequence, KV head) programs for which the merge inside the kernel beat the separate merge launch: H200,
# context 1024, two runs (NOTES.md v5): B=32 x 8 KV heads (256) and B=128 won, B=1 and B=8 (8192 context) lost
FUSED_MERGE_MIN_PROGRAMS = 256


def merge_plan(batch: int, kv_heads: int, max_context: int, sms: int = 132) -> tuple[bool, int]:
    """(fused_merge, partition) when nothing was measured: the separate merge launch below 256 programs (there the
    last arriver's merge sits on the kernel's critical path, ~2 us, more than the launch costs); at 4 programs an
    SM from the sequences alone, one pass over the whole context (no partials; measured best at B=128); between,
    the merge inside the kernel at partition_for's partition."""
    programs = batch * kv_heads
    if programs >= 4 * sms:
        return True, 1 << (max_context - 1).bit_length()
    return programs >= FUSED_MERGE_MIN_PROGRAMS, partition_for(batch, kv_heads, max_context)


# batch -> (fused_merge, partition) measured best by bench/h200.py's attention sweep (v4's separate merge launch or
# v5's merge inside the kernel, each partition), which fills it in before the step is timed; a batch not listed
# takes merge_plan. Empty by default (no GPU in CI).
PARTITION_CHOICES: dict[int, tuple[bool, int]] = {}


class TritonPagedBackend:
    """Our paged decode-attention kernel, reading K/V in place through the block table. One kernel instance per
    batch size (CUDA graphs are captured per batch size), with its partition chosen by `partition_for` (or the
    measured PARTITION_CHOICES of the fused-merge kernel) unless a fixed `partition` is given. `fused_merge=False`
    in the tuning selects the v4 kernel pair (partition, then a separate merge launch)."""

    name = "triton-paged"

    def __init__(
        self,
        max_batch: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        block_size: int,
        max_context: int,
        device: torch.device | str,
        **tuning: int,
    ) -> None:
        self.args = (heads, kv_heads, head_dim, block_size, max_context, device)
        self.max_batch, self.tuning = max_batch, tuning
        self.kernels: dict = {}

    def kernel_for(self, batch: int):
        from ..kernels.paged_decode_attention import PagedDecodeAttention

        if batch > self.max_batch:
            raise ValueError(f"batch {batch} over this backend's max_batch {self.max_batch}")
        if batch not in self.kernels:
            heads, kv_heads, head_dim, block_size, max_context, device = self.args
            tuning = dict(self.tuning)
            if "fused_merge" in tuning:  # fixed by the caller (the bench's v4 rows)
                tuning.setdefault("partition", partition_for(batch, kv_heads, max_context))
            else:
                fused, part = PARTITION_CHOICES.get(batch) or merge_plan(batch, kv_heads, max_context)
                tuning["fused_merge"] = fused
                tuning.setdefault("partition", part)
            tuning["block_n"] = min(tuning.get("block_n", 64), tuning["partition"])
            self.kernels[batch] = PagedDecodeAttention(
                batch, heads, kv_heads, head_dim, block_size, max_context, device, **tuning
            )
        return self.kernels[batch]

    def decode(
        self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, meta: DecodeMetadata
    ) -> torch.Tensor:
        kernel = self.kernel_for(q.shape[0])
        return kernel(q, k_cache, v_cache, meta.block_tables, meta.context_lens)
