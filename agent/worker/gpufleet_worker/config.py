"""One validated configuration object for the worker: the model's shape and the engine's limits.

The model fields are the ServingDeployment's model shape (common/src/models/model-shapes.ts, camelCase in JSON),
so the agent can pass the same object it already holds; the worker adds only what an engine needs on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class InvalidConfigError(ValueError):
    """A configuration value is out of range; the message names the field and the value."""


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """A Llama-shaped decoder: GQA attention with RoPE, RMSNorm, SwiGLU MLP, untied LM head."""

    name: str
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    intermediate_size: int
    vocab_size: int
    rope_theta: float = 500_000.0
    rms_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for f in ("layers", "hidden_size", "heads", "kv_heads", "intermediate_size", "vocab_size"):
            _positive_int(f, getattr(self, f))
        if self.hidden_size % self.heads:
            raise InvalidConfigError(f"hidden_size {self.hidden_size} is not a multiple of heads {self.heads}")
        if self.heads % self.kv_heads:
            raise InvalidConfigError(f"heads {self.heads} is not a multiple of kv_heads {self.kv_heads}")
        if self.head_dim % 2:
            raise InvalidConfigError(f"head_dim {self.head_dim} must be even for RoPE")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads

    @property
    def group_size(self) -> int:
        """Query heads per KV head (GQA grouping)."""
        return self.heads // self.kv_heads

    def weight_params(self) -> int:
        """Parameters: per layer Q, K, V, O, gate, up, down and two norms; embedding, final norm, LM head."""
        h, kv = self.hidden_size, self.kv_heads * self.head_dim
        per_layer = h * h + 2 * h * kv + h * h + 3 * h * self.intermediate_size + 2 * h
        return self.layers * per_layer + 2 * self.vocab_size * h + h

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes

    @classmethod
    def from_model_shape(cls, shape: dict[str, Any]) -> ModelConfig:
        """Builds from the operator's ModelShape JSON; intermediateSize is required (the worker builds the MLP)."""
        if shape.get("gatedMlp") is False:
            raise InvalidConfigError(f"model {shape.get('name')}: the reference worker builds gated (SwiGLU) MLPs only")
        if "intermediateSize" not in shape:
            raise InvalidConfigError(f"model {shape.get('name')}: intermediateSize is required")
        return cls(
            name=str(shape.get("name", "")),
            layers=shape["layers"],
            hidden_size=shape["hiddenSize"],
            heads=shape["heads"],
            kv_heads=shape["kvHeads"],
            intermediate_size=shape["intermediateSize"],
            vocab_size=shape["vocabSize"],
        )


# Llama-3-8B's published shapes (the same numbers as common/src/models/model-shapes.ts), random weights.
LLAMA3_8B = ModelConfig(
    name="llama-3-8b", layers=32, hidden_size=4096, heads=32, kv_heads=8, intermediate_size=14336, vocab_size=128256
)

Role = str  # one of ROLES
ROLES = ("colocated", "prefill", "decode")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Limits of one engine. block_size is tokens per KV block."""

    num_blocks: int
    block_size: int = 16
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 2048
    role: Role = "colocated"
    # Prefill steps of at most this many new tokens and prompts, none with a cached prefix, replay a CUDA graph
    # captured per bucket of prefill_graph_token_step tokens (the torch runner; 0 tokens: always eager). Why: issued
    # eagerly such a step is host-bound (calibration v5: 8.5-21 ms eager against 5.4-12.5 ms of GPU time at 128-512
    # tokens on an H200), and the latency model reads these three from the GPU profile.
    prefill_graph_max_tokens: int = 512
    prefill_graph_token_step: int = 64
    prefill_graph_max_prompts: int = 8

    def __post_init__(self) -> None:
        for f in (
            "num_blocks",
            "block_size",
            "max_num_seqs",
            "max_num_batched_tokens",
            "prefill_graph_token_step",
            "prefill_graph_max_prompts",
        ):
            _positive_int(f, getattr(self, f))
        if self.prefill_graph_max_tokens < 0 or self.prefill_graph_max_tokens % self.prefill_graph_token_step:
            raise InvalidConfigError(
                f"prefill_graph_max_tokens must be 0 or a multiple of prefill_graph_token_step "
                f"({self.prefill_graph_token_step}), got {self.prefill_graph_max_tokens}"
            )
        if self.role not in ROLES:
            raise InvalidConfigError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")
