"""The GPU model runner: the only module that touches the device (nano-vllm's model_runner.py).

It holds the bf16 weights, the paged KV cache [layers, 2, num_blocks + 1, BS, KV, D] (the extra last block is a
scratch block that padded rows of a CUDA-graph batch write to), RoPE tables, one CUDA graph per decode batch size and
one per bucket of small prefill steps. Greedy sampling (argmax) runs on the device, inside the graph for decode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..attention.backends import AttentionBackend, DecodeMetadata, PrefillMetadata, prefill_attention, prefill_metadata
from ..config import EngineConfig, ModelConfig
from ..engine.batch import StepInputs, prefill_graph_tokens
from .weights import weight_shapes


def random_torch_weights(cfg: ModelConfig, device: torch.device | str, seed: int) -> dict[str, torch.Tensor]:
    """bf16 weights drawn on the device (an 8B model's 16 GB would take minutes through numpy)."""
    g = torch.Generator(device=device).manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, shape in weight_shapes(cfg).items():
        if len(shape) == 1:
            t = 1.0 + 0.1 * torch.randn(shape, generator=g, device=device, dtype=torch.float32)
        else:
            t = torch.randn(shape, generator=g, device=device, dtype=torch.float32) / shape[1] ** 0.5
        out[name] = t.to(torch.bfloat16)
    return out


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1).to(x.dtype)


def warm_up_on_side_stream(forward, runs: int = 2) -> None:
    """Runs `forward` on a side stream before it is captured (Triton compiles, cuBLAS picks its kernels), the way
    torch.cuda.graphs asks for."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(runs):
            forward()
    torch.cuda.current_stream().wait_stream(s)


@dataclass(slots=True)
class _DecodeGraph:
    graph: torch.cuda.CUDAGraph
    tokens: torch.Tensor
    positions: torch.Tensor
    slots: torch.Tensor
    block_tables: torch.Tensor
    context_lens: torch.Tensor
    next_tokens: torch.Tensor
    logits: torch.Tensor


@dataclass(slots=True)
class _PrefillGraph:
    """A prefill step of `tokens.shape[0]` tokens and up to `sample_idx.shape[0]` prompts: the prompts' offsets, the
    padding after them as one more prompt (its KV goes to the scratch block), so one varlen attention call covers it."""

    graph: torch.cuda.CUDAGraph
    tokens: torch.Tensor
    positions: torch.Tensor
    slots: torch.Tensor
    cu_seqlens: torch.Tensor  # [max_prompts + 2] int32; prompts past the step's are empty (repeated offsets)
    sample_idx: torch.Tensor  # [max_prompts] rows of the step whose logits are sampled; padded with row 0
    logits: torch.Tensor  # [max_prompts, vocab]


def _parse_prefetch(spec: str | None) -> tuple[str | None, str]:
    if spec is None:
        return None, "bulk"
    when, _, mode = spec.partition(":")
    if when not in ("after-qkv", "layer-start") or mode not in ("bulk", "line"):
        raise ValueError(f"l2_prefetch must be '<after-qkv|layer-start>:<bulk|line>', got {spec!r}")
    return when, mode


class TorchModelRunner:
    def __init__(
        self,
        cfg: ModelConfig,
        engine: EngineConfig,
        backend: AttentionBackend,
        weights: dict[str, torch.Tensor],
        device: torch.device | str = "cuda",
        max_context: int = 8192,
        fused: bool = True,
        decode_linear: str = "triton",
        linear_choices: dict | None = None,
        l2_prefetch: str | None = None,
    ) -> None:
        if decode_linear not in ("triton", "cublas"):
            raise ValueError(f"decode_linear must be 'triton' or 'cublas', got {decode_linear!r}")
        # decode only (an experiment, kernels/l2_prefetch.py): "<when>:<mode>", when "after-qkv" or "layer-start",
        # mode "bulk" or "line": a side stream warms L2 with the layer's o weight before the o projection reads it
        self.l2_prefetch = _parse_prefetch(l2_prefetch)
        self._prefetch_stream: torch.cuda.Stream | None = None
        self._prefetch_scratch: torch.Tensor | None = None
        self.cfg, self.engine, self.backend, self.device = cfg, engine, backend, torch.device(device)
        self.fused = fused  # our fused Triton elementwise kernels; False: plain torch ops (version 1 in NOTES.md)
        # decode GEMMs: "triton" = kernels/fused_linear.py with norm / SiLU / residual folded in (v4, 7 launches a
        # layer) for batches up to its MAX_ROWS; "cublas" = torch matmuls + the fused elementwise kernels (v3)
        self.decode_linear = decode_linear
        self.linear_choices = linear_choices  # fused_linear tiles per (BLOCK_M, layer); None: fused_linear.CHOICES
        self._folded_w: dict[str, torch.Tensor] = {}
        self.w = weights
        self.block_size = engine.block_size
        self.scratch_block = engine.num_blocks
        self.max_blocks = -(-max_context // engine.block_size)
        self.kv_cache = torch.empty(
            (cfg.layers, 2, engine.num_blocks + 1, engine.block_size, cfg.kv_heads, cfg.head_dim),
            dtype=torch.bfloat16,
            device=self.device,
        ).normal_()  # never zeros: a missed write must show as wrong output, not as a lucky zero
        inv = 1.0 / cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64) / cfg.head_dim)
        ang = torch.outer(torch.arange(max_context, dtype=torch.float64), inv)
        self.cos = ang.cos().float().to(self.device)
        self.sin = ang.sin().float().to(self.device)
        self.graphs: dict[int, _DecodeGraph] = {}
        self.prefill_graphs: dict[int, _PrefillGraph] = {}  # by padded token count; see capture_prefill_graphs
        self.prefill_graphs_off: str | None = None  # why none were captured, where capture was asked for
        self.prefill_graph_steps = 0  # prefill steps served by a graph (the checks assert the path ran)

    # --- the decoder ---------------------------------------------------------------------------------------------
    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        slots: torch.Tensor,
        decode: DecodeMetadata | None,
        prefill: PrefillMetadata | None,
        sample_idx: torch.Tensor,
        logits_out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.fused and decode is not None and self._linear_decode(tokens.shape[0]):
            return self._forward_linear(tokens, positions, slots, decode, logits_out)
        if self.fused:
            return self._forward_fused(tokens, positions, slots, decode, prefill, sample_idx)
        cfg, w = self.cfg, self.w
        h, d, nh, nkv = cfg.hidden_size, cfg.head_dim, cfg.heads, cfg.kv_heads
        cos, sin = self.cos[positions], self.sin[positions]
        x = w["embed"][tokens]
        for i in range(cfg.layers):
            a = rms_norm(x, w[f"l{i}.attn_norm"], cfg.rms_norm_eps) @ w[f"l{i}.qkv"].T
            q = apply_rope(a[:, :h].view(-1, nh, d), cos, sin)
            k = apply_rope(a[:, h : h + nkv * d].view(-1, nkv, d), cos, sin)
            v = a[:, h + nkv * d :].view(-1, nkv, d)
            kc, vc = self.kv_cache[i, 0], self.kv_cache[i, 1]
            kc.view(-1, nkv, d).index_copy_(0, slots, k)
            vc.view(-1, nkv, d).index_copy_(0, slots, v)
            att = self._attend(q, k, v, kc, vc, decode, prefill)
            x = x + att.reshape(-1, h) @ w[f"l{i}.o"].T
            gu = rms_norm(x, w[f"l{i}.mlp_norm"], cfg.rms_norm_eps) @ w[f"l{i}.gate_up"].T
            gate, up = gu.chunk(2, dim=-1)
            x = x + (F.silu(gate) * up) @ w[f"l{i}.down"].T
        last = rms_norm(x[sample_idx], w["norm"], cfg.rms_norm_eps)
        return last @ w["lm_head"].T

    def _forward_fused(self, tokens, positions, slots, decode, prefill, sample_idx) -> torch.Tensor:
        """The same function with three fused Triton stages (kernels/fused_elementwise.py): 10 launches a layer."""
        from ..kernels.fused_elementwise import add_rms_norm, rope_and_cache, silu_mul

        cfg, w = self.cfg, self.w
        h, d, nh, nkv = cfg.hidden_size, cfg.head_dim, cfg.heads, cfg.kv_heads
        eps = cfg.rms_norm_eps
        x = w["embed"][tokens]  # the residual stream, updated in place
        delta = None
        for i in range(cfg.layers):
            qkv = add_rms_norm(x, delta, w[f"l{i}.attn_norm"], eps) @ w[f"l{i}.qkv"].T
            kc, vc = self.kv_cache[i, 0], self.kv_cache[i, 1]
            rope_and_cache(qkv, positions, self.cos, self.sin, kc, vc, slots, nh, nkv)
            q = qkv[:, :h].view(-1, nh, d)
            k = qkv[:, h : h + nkv * d].view(-1, nkv, d)
            v = qkv[:, h + nkv * d :].view(-1, nkv, d)
            att = self._attend(q, k, v, kc, vc, decode, prefill)
            hn = add_rms_norm(x, att.reshape(-1, h) @ w[f"l{i}.o"].T, w[f"l{i}.mlp_norm"], eps)
            delta = silu_mul(hn @ w[f"l{i}.gate_up"].T) @ w[f"l{i}.down"].T
        last = add_rms_norm(x, delta, w["norm"], eps)[sample_idx]
        return last @ w["lm_head"].T

    def _linear_decode(self, rows: int) -> bool:
        return self.decode_linear == "triton" and rows <= self._max_linear_rows()

    @staticmethod
    def _max_linear_rows() -> int:
        from ..kernels.fused_linear import MAX_ROWS

        return MAX_ROWS

    def _folded(self, name: str, norm: str) -> torch.Tensor:
        """The weight with its RMSNorm weight folded in (kernels/fused_linear.py), made on first use and kept: at
        Llama-3-8B that is 6.4 GB more for qkv, gate_up and the LM head, the price of the fused prologue."""
        t = self._folded_w.get(name)
        if t is None:
            from ..kernels.fused_linear import fold_norm_weight

            t = self._folded_w[name] = fold_norm_weight(self.w[name], self.w[norm])
        return t

    def _forward_linear(self, tokens, positions, slots, decode: DecodeMetadata, logits_out) -> torch.Tensor:
        """Decode with kernels/fused_linear.py where the sweep found it faster than cuBLAS (choice_for), else
        cuBLAS with the residual added by the GEMM itself (addmm_, beta = 1). Every row is sampled, so the LM head
        runs on all of them."""
        from ..kernels.fused_elementwise import add_rms_norm, rope_and_cache, silu_mul
        from ..kernels.fused_linear import choice_for, fused_linear

        cfg, w = self.cfg, self.w
        h, d, nh, nkv = cfg.hidden_size, cfg.head_dim, cfg.heads, cfg.kv_heads
        eps, rows = cfg.rms_norm_eps, tokens.shape[0]
        c_qkv, c_o, c_gu, c_down, c_lm = (
            choice_for(rows, n, self.linear_choices) for n in ("qkv", "o", "gate_up", "down", "lm_head")
        )
        x = w["embed"][tokens]  # the residual stream, updated in place by the o and down projections
        for i in range(cfg.layers):
            side = self._fork_prefetch(w[f"l{i}.o"]) if self.l2_prefetch[0] == "layer-start" else None
            if c_qkv is not None:
                qkv = fused_linear(
                    x, self._folded(f"l{i}.qkv", f"l{i}.attn_norm"), rms_norm=True, eps=eps, config=c_qkv
                )
            else:
                qkv = add_rms_norm(x, None, w[f"l{i}.attn_norm"], eps) @ w[f"l{i}.qkv"].T
            if self.l2_prefetch[0] == "after-qkv":
                side = self._fork_prefetch(w[f"l{i}.o"])
            kc, vc = self.kv_cache[i, 0], self.kv_cache[i, 1]
            rope_and_cache(qkv, positions, self.cos, self.sin, kc, vc, slots, nh, nkv)
            att = self.backend.decode(qkv[:, :h].view(-1, nh, d), kc, vc, decode).reshape(-1, h)
            if side is not None:
                torch.cuda.current_stream().wait_stream(side)  # join before capture ends; the prefetch is issued
            if c_o is not None:
                fused_linear(att, w[f"l{i}.o"], residual=x, out=x, config=c_o)
            else:
                x.addmm_(att, w[f"l{i}.o"].T)
            if c_gu is not None:
                gu = self._folded(f"l{i}.gate_up", f"l{i}.mlp_norm")
                act = fused_linear(x, gu, rms_norm=True, eps=eps, silu=True, config=c_gu)
            else:
                act = silu_mul(add_rms_norm(x, None, w[f"l{i}.mlp_norm"], eps) @ w[f"l{i}.gate_up"].T)
            if c_down is not None:
                fused_linear(act, w[f"l{i}.down"], residual=x, out=x, config=c_down)
            else:
                x.addmm_(act, w[f"l{i}.down"].T)
        if c_lm is not None:
            lm = self._folded("lm_head", "norm")
            return fused_linear(x, lm, rms_norm=True, eps=eps, out=logits_out, config=c_lm)
        return torch.matmul(add_rms_norm(x, None, w["norm"], eps), w["lm_head"].T, out=logits_out)

    def _fork_prefetch(self, weight: torch.Tensor) -> torch.cuda.Stream:
        """Starts an L2 prefetch of `weight` on the side stream after what the current stream has queued."""
        from ..kernels.l2_prefetch import l2_prefetch, scratch_for

        if self._prefetch_stream is None:
            self._prefetch_stream = torch.cuda.Stream(device=self.device)
            self._prefetch_scratch = scratch_for(self.device)
        side = self._prefetch_stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            l2_prefetch(weight, self._prefetch_scratch, mode=self.l2_prefetch[1])
        return side

    def _attend(self, q, k, v, kc, vc, decode: DecodeMetadata | None, prefill: PrefillMetadata | None) -> torch.Tensor:
        if decode is not None:
            return self.backend.decode(q, kc, vc, decode)
        assert prefill is not None
        return prefill_attention(q, k, v, kc, vc, prefill)

    # --- one engine step -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def execute(self, inp: StepInputs) -> list[int]:
        if not inp.token_ids:
            return []
        if inp.kind == "decode":
            return self._decode(inp)
        logits = self.prefill_logits(inp)
        return logits.argmax(-1).tolist()

    def prefill_graph_for(self, inp: StepInputs) -> _PrefillGraph | None:
        """The captured prefill graph that runs this step, or None where it runs eagerly."""
        e = self.engine
        bucket = prefill_graph_tokens(
            inp, e.prefill_graph_token_step, e.prefill_graph_max_tokens, e.prefill_graph_max_prompts
        )
        return self.prefill_graphs.get(bucket) if bucket is not None else None

    @torch.no_grad()
    def prefill_logits(self, inp: StepInputs) -> torch.Tensor:
        g = self.prefill_graph_for(inp)
        if g is not None:
            self._fill_prefill(g, inp)
            g.graph.replay()
            self.prefill_graph_steps += 1
            return g.logits[: len(inp.sample_indices)]
        dev = self.device
        meta = prefill_metadata(inp.query_lens, inp.context_lens, inp.block_tables, dev)
        return self.forward(
            torch.tensor(inp.token_ids, dtype=torch.long, device=dev),
            torch.tensor(inp.positions, dtype=torch.long, device=dev),
            torch.tensor(inp.slot_mapping, dtype=torch.long, device=dev),
            None,
            meta,
            torch.tensor(inp.sample_indices, dtype=torch.long, device=dev),
        )

    def _decode(self, inp: StepInputs) -> list[int]:
        b = len(inp.token_ids)
        size = next((s for s in sorted(self.graphs) if s >= b), None)
        if size is None:
            g = self._eager_decode_buffers(b)
            self._fill(g, inp)
            self._decode_forward(g)
            return g.next_tokens[:b].tolist()
        g = self.graphs[size]
        self._fill(g, inp)
        g.graph.replay()
        return g.next_tokens[:b].tolist()

    def _fill(self, g: _DecodeGraph, inp: StepInputs) -> None:
        b, bs = len(inp.token_ids), self.block_size
        n = g.tokens.shape[0]
        tables = torch.full((n, self.max_blocks), self.scratch_block, dtype=torch.int32)
        for r, t in enumerate(inp.block_tables):
            tables[r, : len(t)] = torch.tensor(t, dtype=torch.int32)
        pad = n - b
        g.tokens.copy_(torch.tensor(inp.token_ids + [0] * pad))
        g.positions.copy_(torch.tensor(inp.positions + [0] * pad))
        g.slots.copy_(torch.tensor(inp.slot_mapping + [self.scratch_block * bs] * pad))
        g.block_tables.copy_(tables)
        g.context_lens.copy_(torch.tensor(inp.context_lens + [1] * pad, dtype=torch.int32))

    def _eager_decode_buffers(self, b: int) -> _DecodeGraph:
        dev = self.device
        return _DecodeGraph(
            torch.cuda.CUDAGraph(),
            torch.zeros(b, dtype=torch.long, device=dev),
            torch.zeros(b, dtype=torch.long, device=dev),
            torch.full((b,), self.scratch_block * self.block_size, dtype=torch.long, device=dev),
            torch.full((b, self.max_blocks), self.scratch_block, dtype=torch.int32, device=dev),
            torch.ones(b, dtype=torch.int32, device=dev),
            torch.zeros(b, dtype=torch.long, device=dev),
            torch.zeros((b, self.cfg.vocab_size), dtype=torch.bfloat16, device=dev),
        )

    def _decode_forward(self, g: _DecodeGraph) -> None:
        meta = DecodeMetadata(g.block_tables, g.context_lens)
        idx = torch.arange(g.tokens.shape[0], device=self.device)
        logits = self.forward(g.tokens, g.positions, g.slots, meta, None, idx, logits_out=g.logits)
        if logits is not g.logits:
            g.logits.copy_(logits)
        g.next_tokens.copy_(g.logits.argmax(-1))

    @torch.no_grad()
    def capture_decode_graphs(self, batch_sizes: list[int]) -> None:
        """One graph per padded batch size (vLLM's cudagraph_capture_sizes); warm-up runs compile Triton first."""
        for b in sorted(batch_sizes):
            g = self._eager_decode_buffers(b)
            warm_up_on_side_stream(lambda g=g: self._decode_forward(g))
            with torch.cuda.graph(g.graph):
                self._decode_forward(g)
            self.graphs[b] = g

    # --- prefill graphs ------------------------------------------------------------------------------------------
    def _prefill_buffers(self, tokens: int) -> _PrefillGraph:
        dev, p = self.device, self.engine.prefill_graph_max_prompts
        cu = torch.zeros(p + 2, dtype=torch.int32, device=dev)
        cu[-1] = tokens  # until filled: every prompt empty, all tokens padding
        return _PrefillGraph(
            torch.cuda.CUDAGraph(),
            torch.zeros(tokens, dtype=torch.long, device=dev),
            torch.zeros(tokens, dtype=torch.long, device=dev),
            torch.full((tokens,), self.scratch_block * self.block_size, dtype=torch.long, device=dev),
            cu,
            torch.zeros(p, dtype=torch.long, device=dev),
            torch.zeros((p, self.cfg.vocab_size), dtype=torch.bfloat16, device=dev),
        )

    def _fill_prefill(self, g: _PrefillGraph, inp: StepInputs) -> None:
        n, p = g.tokens.shape[0], g.sample_idx.shape[0]
        pad = n - len(inp.token_ids)
        offsets = [0]
        for q in inp.query_lens:
            offsets.append(offsets[-1] + q)
        offsets += [offsets[-1]] * (p - len(inp.query_lens)) + [n]
        g.tokens.copy_(torch.tensor(inp.token_ids + [0] * pad))
        g.positions.copy_(torch.tensor(inp.positions + [0] * pad))
        g.slots.copy_(torch.tensor(inp.slot_mapping + [self.scratch_block * self.block_size] * pad))
        g.cu_seqlens.copy_(torch.tensor(offsets, dtype=torch.int32))
        g.sample_idx.copy_(torch.tensor(inp.sample_indices + [0] * (p - len(inp.sample_indices))))

    def _prefill_forward(self, g: _PrefillGraph) -> None:
        n = g.tokens.shape[0]
        meta = PrefillMetadata([], [], [], g.cu_seqlens, n)  # n bounds every prompt, the padding included
        g.logits.copy_(self.forward(g.tokens, g.positions, g.slots, None, meta, g.sample_idx))

    @torch.no_grad()
    def capture_prefill_graphs(self) -> None:
        """One graph per bucket of engine.prefill_graph_token_step tokens up to prefill_graph_max_tokens, sharing
        one memory pool (steps replay one at a time). Needs the FlashAttention varlen kernel; without it none is
        captured, prefill stays eager and prefill_graphs_off says why."""
        from ..attention import backends

        e = self.engine
        pool = torch.cuda.graph_pool_handle()
        for tokens in range(e.prefill_graph_token_step, e.prefill_graph_max_tokens + 1, e.prefill_graph_token_step):
            g = self._prefill_buffers(tokens)
            warm_up_on_side_stream(lambda g=g: self._prefill_forward(g))
            if backends.VARLEN_UNAVAILABLE is not None:
                self.prefill_graphs_off = f"no FlashAttention varlen kernel: {backends.VARLEN_UNAVAILABLE}"
                self.prefill_graphs.clear()
                return
            with torch.cuda.graph(g.graph, pool=pool):
                self._prefill_forward(g)
            self.prefill_graphs[tokens] = g

    # --- KV export / import by blocks ----------------------------------------------------------------------------
    def export_blocks(self, blocks: list[int]) -> torch.Tensor:
        from ..kernels.kv_block_copy import gather_blocks

        return gather_blocks(self.kv_cache, torch.tensor(blocks, dtype=torch.int32, device=self.device))

    def import_blocks(self, blocks: list[int], payload: torch.Tensor) -> None:
        from ..kernels.kv_block_copy import scatter_blocks

        scatter_blocks(
            self.kv_cache,
            torch.tensor(blocks, dtype=torch.int32, device=self.device),
            payload.to(self.device).contiguous(),
        )


def torch_weights_from_numpy(weights: dict, device: torch.device | str) -> dict[str, torch.Tensor]:
    """The numpy reference's weights in bf16 on the device, so both runners compute the same function."""
    return {k: torch.from_numpy(v).to(device=device, dtype=torch.bfloat16) for k, v in weights.items()}
