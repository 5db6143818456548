"""Reference forward pass in numpy (float32): the CPU path CI tests, and the oracle the GPU runner is checked against.

Why numpy: PyPI's Linux torch wheels pull the CUDA packages (gigabytes), which CI must not download; numpy is one
small wheel and runs the same paged-cache algorithm at tiny shapes. The KV cache has the GPU layout
[layers, 2 (K, V), num_blocks, block_size, kv_heads, head_dim], so block export/import is the same indexing.
"""

from __future__ import annotations

import numpy as np

from ..config import ModelConfig
from ..engine.batch import StepInputs
from .weights import Weights


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_tables(head_dim: int, max_positions: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    inv = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    ang = np.outer(np.arange(max_positions, dtype=np.float64), inv)
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Llama's rotate-half RoPE. x: [T, heads, D]; cos, sin: [T, D/2]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[:, None, :], sin[:, None, :]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def paged_attention(
    q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, inp: StepInputs, block_size: int, group: int
) -> np.ndarray:
    """Causal attention of each sequence's new tokens over its whole cached context, read through the block table.

    q: [T, H, D]; k_cache, v_cache: [num_blocks, block_size, KV, D]. Query j of a sequence sits at position
    context_len - query_len + j and sees positions up to and including its own.
    """
    out = np.empty_like(q)
    scale = 1.0 / np.sqrt(q.shape[-1])
    t0 = 0
    for qlen, ctx, table in zip(inp.query_lens, inp.context_lens, inp.block_tables, strict=True):
        pos = np.arange(ctx)
        slots = np.asarray(table)[pos // block_size] * block_size + pos % block_size
        k = k_cache.reshape(-1, *k_cache.shape[2:])[slots]  # [ctx, KV, D]
        v = v_cache.reshape(-1, *v_cache.shape[2:])[slots]
        k = np.repeat(k, group, axis=1)
        v = np.repeat(v, group, axis=1)
        qs = q[t0 : t0 + qlen]  # [qlen, H, D]
        s = np.einsum("qhd,khd->hqk", qs, k) * scale
        qpos = np.arange(ctx - qlen, ctx)
        s = np.where(pos[None, None, :] <= qpos[None, :, None], s, -np.inf)
        s = s - s.max(axis=-1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=-1, keepdims=True)
        out[t0 : t0 + qlen] = np.einsum("hqk,khd->qhd", p, v)
        t0 += qlen
    return out


class NumpyModel:
    """Runs StepInputs through the decoder, writing KV into `kv_cache`; returns logits of the sampled tokens."""

    def __init__(self, cfg: ModelConfig, weights: Weights, num_blocks: int, block_size: int, max_positions: int = 8192):
        self.cfg, self.w, self.block_size = cfg, weights, block_size
        self.kv_cache = np.zeros((cfg.layers, 2, num_blocks, block_size, cfg.kv_heads, cfg.head_dim), np.float32)
        self.cos, self.sin = rope_tables(cfg.head_dim, max_positions, cfg.rope_theta)

    def forward(self, inp: StepInputs) -> np.ndarray:
        cfg, w = self.cfg, self.w
        h, d, nh, nkv = cfg.hidden_size, cfg.head_dim, cfg.heads, cfg.kv_heads
        pos = np.asarray(inp.positions)
        slots = np.asarray(inp.slot_mapping)
        cos, sin = self.cos[pos], self.sin[pos]
        x = w["embed"][np.asarray(inp.token_ids)]
        for i in range(cfg.layers):
            a = rms_norm(x, w[f"l{i}.attn_norm"], cfg.rms_norm_eps) @ w[f"l{i}.qkv"].T
            q = a[:, :h].reshape(-1, nh, d)
            k = a[:, h : h + nkv * d].reshape(-1, nkv, d)
            v = a[:, h + nkv * d :].reshape(-1, nkv, d)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            kc, vc = self.kv_cache[i, 0], self.kv_cache[i, 1]
            kc.reshape(-1, nkv, d)[slots] = k
            vc.reshape(-1, nkv, d)[slots] = v
            att = paged_attention(q, kc, vc, inp, self.block_size, cfg.group_size)
            x = x + att.reshape(-1, h) @ w[f"l{i}.o"].T
            gu = rms_norm(x, w[f"l{i}.mlp_norm"], cfg.rms_norm_eps) @ w[f"l{i}.gate_up"].T
            f = cfg.intermediate_size
            x = x + (silu(gu[:, :f]) * gu[:, f:]) @ w[f"l{i}.down"].T
        last = x[np.asarray(inp.sample_indices, dtype=np.int64)]
        return rms_norm(last, w["norm"], cfg.rms_norm_eps) @ w["lm_head"].T

    # Block export/import: the same indexing the Triton gather/scatter kernels do on the GPU.
    def export_blocks(self, blocks: list[int]) -> np.ndarray:
        return self.kv_cache[:, :, np.asarray(blocks, dtype=np.int64)].copy()

    def import_blocks(self, blocks: list[int], data: np.ndarray) -> None:
        self.kv_cache[:, :, np.asarray(blocks, dtype=np.int64)] = data


class NumpyRunner:
    """The CPU model runner: numpy forward pass and greedy sampling (argmax; ties go to the lowest id)."""

    def __init__(self, model: NumpyModel) -> None:
        self.model = model

    def execute(self, inp: StepInputs) -> list[int]:
        if not inp.token_ids:
            return []
        return [int(t) for t in np.argmax(self.model.forward(inp), axis=-1)]

    def export_blocks(self, blocks: list[int]) -> np.ndarray:
        return self.model.export_blocks(blocks)

    def import_blocks(self, blocks: list[int], payload: np.ndarray) -> None:
        self.model.import_blocks(blocks, payload)
