"""The tiny-shape forward pass on CPU: paged, chunked and exported computation must equal the plain one."""

import numpy as np
import pytest

from gpufleet_worker.config import EngineConfig, InvalidConfigError, ModelConfig
from gpufleet_worker.engine.batch import prepare_step
from gpufleet_worker.engine.llm_engine import LLMEngine
from gpufleet_worker.engine.scheduler import ScheduledSeq, SchedulerOutput
from gpufleet_worker.engine.sequence import SamplingParams, Sequence
from gpufleet_worker.model.numpy_model import NumpyModel, NumpyRunner, apply_rope, rms_norm, silu
from gpufleet_worker.model.weights import random_weights, round_to_bf16

TINY = ModelConfig("tiny", layers=2, hidden_size=64, heads=4, kv_heads=2, intermediate_size=128, vocab_size=97)


def dense_forward(cfg: ModelConfig, w, tokens: list[int]) -> np.ndarray:
    """Textbook Llama forward over the whole sequence, no cache: the oracle for the paged path."""
    from gpufleet_worker.model.numpy_model import rope_tables

    n, h, d = len(tokens), cfg.hidden_size, cfg.head_dim
    cos, sin = rope_tables(d, n, cfg.rope_theta)
    x = w["embed"][tokens]
    for i in range(cfg.layers):
        a = rms_norm(x, w[f"l{i}.attn_norm"], cfg.rms_norm_eps) @ w[f"l{i}.qkv"].T
        kvd = cfg.kv_heads * d
        q = apply_rope(a[:, :h].reshape(n, cfg.heads, d), cos, sin)
        k = apply_rope(a[:, h : h + kvd].reshape(n, cfg.kv_heads, d), cos, sin)
        v = a[:, h + kvd :].reshape(n, cfg.kv_heads, d)
        k, v = np.repeat(k, cfg.group_size, 1), np.repeat(v, cfg.group_size, 1)
        s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(d) + np.triu(np.full((n, n), -np.inf), 1)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        x = x + np.einsum("hqk,khd->qhd", p, v).reshape(n, h) @ w[f"l{i}.o"].T
        gu = rms_norm(x, w[f"l{i}.mlp_norm"], cfg.rms_norm_eps) @ w[f"l{i}.gate_up"].T
        f = cfg.intermediate_size
        x = x + (silu(gu[:, :f]) * gu[:, f:]) @ w[f"l{i}.down"].T
    return rms_norm(x, w["norm"], cfg.rms_norm_eps) @ w["lm_head"].T


def run_chunks(model: NumpyModel, seq: Sequence, chunks: list[int], block_size: int) -> list[np.ndarray]:
    logits = []
    for n in chunks:
        need = -(-(seq.num_computed_tokens + n) // block_size)
        while len(seq.block_table) < need:
            seq.block_table.append(len(seq.block_table) * 3 + 1)  # scattered, non-contiguous blocks
        end = seq.num_computed_tokens + n
        out = SchedulerOutput("prefill", [ScheduledSeq(seq, n, True)])
        logits.append(model.forward(prepare_step(out, block_size))[0])
        seq.num_computed_tokens = end
    return logits


@pytest.mark.parametrize(
    "chunks", [[23], [16, 7], [5, 11, 1, 6], [1] * 23], ids=["whole", "block-edge", "ragged", "token-by-token"]
)
def test_paged_chunked_forward_equals_dense_forward(chunks: list[int]) -> None:
    w = random_weights(TINY, seed=1)
    tokens = np.random.default_rng(0).integers(0, TINY.vocab_size, 23).tolist()
    model = NumpyModel(TINY, w, num_blocks=80, block_size=4, max_positions=64)
    model.kv_cache[:] = np.nan  # unwritten slots must never be read
    seq = Sequence.from_prompt("a", tokens)
    got = run_chunks(model, seq, chunks, 4)
    ref = dense_forward(TINY, w, tokens)
    ends = np.cumsum(chunks) - 1
    for logits, end in zip(got, ends, strict=True):
        np.testing.assert_allclose(logits, ref[end], rtol=1e-4, atol=1e-4)


def test_batched_ragged_step_equals_one_sequence_at_a_time() -> None:
    w = random_weights(TINY, seed=2)
    rng = np.random.default_rng(3)
    prompts = [rng.integers(0, TINY.vocab_size, n).tolist() for n in (3, 9, 4)]
    model = NumpyModel(TINY, w, num_blocks=40, block_size=4, max_positions=64)
    seqs = [Sequence.from_prompt(f"s{i}", p) for i, p in enumerate(prompts)]
    for i, s in enumerate(seqs):
        s.block_table = [10 * i + j for j in range(3)]
    batch = model.forward(prepare_step(SchedulerOutput("prefill", [ScheduledSeq(s, len(s), True) for s in seqs]), 4))
    for s, row in zip(seqs, batch, strict=True):
        np.testing.assert_allclose(row, dense_forward(TINY, w, s.token_ids)[-1], rtol=1e-4, atol=1e-4)


def test_engine_generates_greedy_tokens_equal_to_dense_argmax() -> None:
    w = random_weights(TINY, seed=4)
    eng_cfg = EngineConfig(num_blocks=16, block_size=4, max_num_batched_tokens=8)
    engine = LLMEngine(eng_cfg, NumpyRunner(NumpyModel(TINY, w, 16, 4, max_positions=64)))
    prompt = list(range(1, 14))
    engine.add_request("a", prompt, SamplingParams(max_tokens=5))
    (done,) = engine.run_until_idle()
    tokens = list(prompt)
    for _ in range(5):
        tokens.append(int(np.argmax(dense_forward(TINY, w, tokens)[-1])))
    assert done.token_ids == tokens
    assert engine.scheduler.block_manager.num_free_blocks == 16


def test_prefill_worker_exports_and_decode_worker_continues_identically() -> None:
    w = random_weights(TINY, seed=5)
    prompt = list(range(3, 20))

    def engine(role: str, blocks: int) -> LLMEngine:
        return LLMEngine(EngineConfig(blocks, block_size=4, role=role), NumpyRunner(NumpyModel(TINY, w, blocks, 4, 64)))

    colocated = engine("colocated", 16)
    colocated.add_request("a", prompt, SamplingParams(max_tokens=4))
    (expected,) = colocated.run_until_idle()

    prefill, decode = engine("prefill", 16), engine("decode", 24)
    decode.scheduler.block_manager.ensure_capacity(Sequence.from_prompt("other", [1]), 20)  # shift block ids
    prefill.add_request("a", prompt, SamplingParams(max_tokens=4))
    prefill.run_until_idle()
    kv = prefill.export_request("a")
    assert (kv.num_computed_tokens, kv.payload.shape) == (17, (2, 2, 5, 4, 2, 16))
    assert prefill.scheduler.block_manager.num_free_blocks == 16
    seq = decode.import_request(kv)
    assert seq.block_table[0] == 5  # imported into other blocks than it left
    (got,) = decode.run_until_idle()
    assert got.token_ids == expected.token_ids


def test_bf16_rounding_is_exact_and_to_nearest() -> None:
    x = np.array([1.0, 1.0 + 2**-9, 1.0 + 3 * 2**-9, -2.5], np.float32)
    assert round_to_bf16(x).tolist() == [1.0, 1.0, 1.0 + 2**-7, -2.5]


def test_model_config_validates_and_reads_the_operator_shape() -> None:
    shape = {
        "name": "m",
        "layers": 2,
        "hiddenSize": 64,
        "heads": 4,
        "kvHeads": 2,
        "intermediateSize": 96,
        "vocabSize": 10,
        "gatedMlp": True,
    }
    cfg = ModelConfig.from_model_shape(shape)
    assert (cfg.head_dim, cfg.group_size, cfg.kv_bytes_per_token()) == (16, 2, 2 * 2 * 2 * 16 * 2)
    with pytest.raises(InvalidConfigError, match="not a multiple of kv_heads"):
        ModelConfig("m", 1, 64, 4, 3, 8, 8)
    with pytest.raises(InvalidConfigError, match="intermediateSize is required"):
        ModelConfig.from_model_shape({k: v for k, v in shape.items() if k != "intermediateSize"})
