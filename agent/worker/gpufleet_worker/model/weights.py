"""Random weights for a Llama-shaped decoder (no weights are downloaded). Names follow Llama's layout, with Q/K/V
and gate/up fused into one matrix each, as engines store them (one GEMM instead of three or two)."""

from __future__ import annotations

import numpy as np

from ..config import ModelConfig

Weights = dict[str, np.ndarray]


def weight_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every weight's shape, as [out, in] for linear layers (y = x @ W.T)."""
    h, kv = cfg.hidden_size, cfg.kv_heads * cfg.head_dim
    shapes: dict[str, tuple[int, ...]] = {"embed": (cfg.vocab_size, h), "norm": (h,), "lm_head": (cfg.vocab_size, h)}
    for i in range(cfg.layers):
        shapes[f"l{i}.attn_norm"] = (h,)
        shapes[f"l{i}.qkv"] = (h + 2 * kv, h)
        shapes[f"l{i}.o"] = (h, h)
        shapes[f"l{i}.mlp_norm"] = (h,)
        shapes[f"l{i}.gate_up"] = (2 * cfg.intermediate_size, h)
        shapes[f"l{i}.down"] = (h, cfg.intermediate_size)
    return shapes


def round_to_bf16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even): a bf16 copy then holds the same weights."""
    bits = x.astype(np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def random_weights(cfg: ModelConfig, seed: int) -> Weights:
    """float32 weights with std 1/sqrt(fan_in) (activations keep their scale through the layers), norms near 1,
    all exactly representable in bf16 (the GPU runner's copy is then the same model)."""
    rng = np.random.default_rng(seed)
    out: Weights = {}
    for name, shape in weight_shapes(cfg).items():
        if len(shape) == 1:
            out[name] = round_to_bf16(1.0 + 0.1 * rng.standard_normal(shape))
        else:
            out[name] = round_to_bf16(rng.standard_normal(shape) / np.sqrt(shape[1]))
    return out
