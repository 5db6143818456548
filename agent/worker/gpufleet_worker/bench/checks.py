"""Correctness checks of the Triton kernels and the GPU runner on fresh random inputs (shared by pytest and the
benchmark). Each returns rows {case, relErr | mismatches, ok}; error is ||out - ref|| / ||ref|| against float64."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..attention.backends import DecodeMetadata, TorchSdpaBackend, TritonPagedBackend
from ..config import EngineConfig, ModelConfig
from ..engine.batch import prepare_step
from ..engine.scheduler import Scheduler
from ..engine.sequence import SamplingParams, Sequence
from ..kernels import fused_linear as fl
from ..kernels.fused_linear import fold_norm_weight, fused_linear, reference_fused_linear
from ..kernels.kv_block_copy import gather_blocks, scatter_blocks
from ..kernels.paged_decode_attention import PagedDecodeAttention, reference_paged_decode
from ..model.numpy_model import NumpyModel
from ..model.torch_runner import TorchModelRunner, torch_weights_from_numpy
from ..model.weights import random_weights

BF16_TOLERANCE = 1e-2  # bf16 operands land between 1e-3 and 1e-2 (METHOD.md)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref.double()).norm() / ref.double().norm())


def _random_tables(context_lens: list[int], block_size: int, num_blocks: int, gen: torch.Generator) -> torch.Tensor:
    """Each sequence gets distinct blocks in a random order, so a kernel that assumes contiguity fails."""
    need = [math.ceil(c / block_size) for c in context_lens]
    perm = torch.randperm(num_blocks, generator=gen)
    width = max(need)
    tables = torch.zeros((len(context_lens), width), dtype=torch.int32)
    at = 0
    for i, n in enumerate(need):
        tables[i, :n] = perm[at : at + n]
        tables[i, n:] = perm[at]  # padding entries point at a real block; the kernel must not read past the length
        at += n
    return tables


DECODE_CASES = [
    # name, heads, kv_heads, head_dim, block_size, context lengths (ragged, around block and partition edges)
    ("gqa4-bs16-ragged", 32, 8, 128, 16, [1, 15, 16, 17, 255, 256, 257, 1000]),
    ("mha-bs16", 8, 8, 128, 16, [3, 64, 300]),
    ("gqa8-bs32", 32, 4, 128, 32, [31, 32, 33, 511, 512, 513]),
    ("gqa4-d64-long", 16, 4, 64, 16, [4097, 2, 8191]),
]


def check_paged_decode(device: str = "cuda", seed: int = 0) -> list[dict]:
    rows = []
    gen = torch.Generator().manual_seed(seed)
    for name, heads, kv_heads, d, bs, lens in DECODE_CASES:
        num_blocks = sum(math.ceil(c / bs) for c in lens) + 7
        k_cache = torch.randn((num_blocks, bs, kv_heads, d), generator=gen).to(device, torch.bfloat16)
        v_cache = torch.randn((num_blocks, bs, kv_heads, d), generator=gen).to(device, torch.bfloat16)
        q = torch.randn((len(lens), heads, d), generator=gen).to(device, torch.bfloat16)
        tables = _random_tables(lens, bs, num_blocks, gen).to(device)
        ctx = torch.tensor(lens, dtype=torch.int32, device=device)
        ref = reference_paged_decode(q, k_cache, v_cache, tables, ctx)
        single = 1 << (max(lens) - 1).bit_length()  # one partition holds the longest context: no partials at all
        for label, kw in (
            ("v4 separate merge", {"fused_merge": False}),
            ("fused merge p256", {}),
            ("fused merge p64", {"partition": 64}),  # up to 128 partials merged by the last arriver
            (f"fused merge single p{single}", {"partition": single, "block_n": min(64, single)}),
        ):
            kernel = PagedDecodeAttention(len(lens), heads, kv_heads, d, bs, max(lens), device, **kw)
            worst, finite = 0.0, True
            for _ in range(3):  # again and again: the arrival counters must be back at zero after each call
                out = torch.full_like(q, float("nan"))  # poisoned: every element must be written
                kernel(q, k_cache, v_cache, tables, ctx, out=out)
                torch.cuda.synchronize()
                worst, finite = max(worst, rel_err(out, ref)), finite and bool(torch.isfinite(out).all())
            counters_zero = bool((kernel.counters == 0).all())
            rows.append(
                {
                    "case": f"triton {name} {label}",
                    "relErr": worst,
                    "ok": finite and counters_zero and worst < BF16_TOLERANCE,
                }
            )
        torch_out = TorchSdpaBackend().decode(q, k_cache, v_cache, DecodeMetadata(tables, ctx))
        e = rel_err(torch_out, ref)
        rows.append({"case": f"torch-sdpa {name}", "relErr": e, "ok": e < BF16_TOLERANCE})
    return rows


def check_block_copy(device: str = "cuda", seed: int = 1) -> list[dict]:
    rows = []
    gen = torch.Generator().manual_seed(seed)
    for layers, num_blocks, bs, kvh, d, n in [
        (4, 64, 16, 8, 128, 13),
        (3, 40, 32, 2, 64, 1),
        (2, 100, 16, 8, 128, 100),
    ]:
        cache = torch.randn((layers, 2, num_blocks, bs, kvh, d), generator=gen).to(device, torch.bfloat16)
        blocks = torch.randperm(num_blocks, generator=gen)[:n].to(device=device, dtype=torch.int32)
        out = torch.full((layers, 2, n, bs, kvh, d), float("nan"), dtype=torch.bfloat16, device=device)
        gather_blocks(cache, blocks, out=out)
        bad = int((out != cache[:, :, blocks.long()]).sum())  # NaN != anything: unwritten elements count
        rows.append({"case": f"gather L{layers} n{n} bs{bs} kv{kvh} d{d}", "mismatches": bad, "ok": bad == 0})
        data = torch.randn(out.shape, generator=gen).to(device, torch.bfloat16)
        before = cache.clone()
        scatter_blocks(cache, blocks, data)
        expect = before.clone()
        expect[:, :, blocks.long()] = data
        bad = int((cache != expect).sum())  # also catches writes to blocks outside the list
        rows.append({"case": f"scatter L{layers} n{n} bs{bs} kv{kvh} d{d}", "mismatches": bad, "ok": bad == 0})
    return rows


LINEAR_CASES = [
    # name, rows M, K, N (per output; the gate/up weight has 2N rows), norm, silu, residual
    ("plain", 1, 4096, 6144, False, False, False),
    ("norm qkv", 32, 4096, 6144, True, False, False),
    ("residual o in place", 128, 4096, 4096, False, False, True),
    ("norm+silu gate_up", 1, 4096, 1024, True, True, False),
    ("norm+silu gate_up", 29, 512, 1000, True, True, False),
    ("residual down", 5, 14336, 4096, False, False, True),
    ("norm lm_head ragged N", 32, 256, 200, True, False, False),
    ("norm+silu ragged N", 17, 256, 200, True, True, False),
    ("residual ragged N", 100, 256, 200, False, False, True),
    ("plain K=256", 16, 256, 384, False, False, False),
]


def check_fused_linear(device: str = "cuda", seed: int = 4) -> list[dict]:
    """kernels/fused_linear.py against float64 on fresh random inputs, every prologue/epilogue, M = 1..128, N not a
    multiple of the tile; the output is poisoned (or, in place, the residual is the output) and must be all written.
    """
    rows = []
    gen = torch.Generator().manual_seed(seed)
    for name, m, k, n, norm, silu, res in LINEAR_CASES:
        x = torch.randn((m, k), generator=gen).to(device, torch.bfloat16)
        w = (torch.randn((2 * n if silu else n, k), generator=gen) / k**0.5).to(device, torch.bfloat16)
        g = (1.0 + 0.1 * torch.randn((k,), generator=gen)).to(device, torch.bfloat16) if norm else None
        r = torch.randn((m, n), generator=gen).to(device, torch.bfloat16) if res else None
        ref = reference_fused_linear(x, w, norm_weight=g, eps=1e-5, silu=silu, residual=r)
        out = r if r is not None else torch.full((m, n), float("nan"), dtype=torch.bfloat16, device=device)
        wk = fold_norm_weight(w, g) if norm else w
        fused_linear(x, wk, rms_norm=norm, eps=1e-5, silu=silu, residual=r, out=out)
        torch.cuda.synchronize()
        e = rel_err(out, ref)
        ok = bool(torch.isfinite(out).all()) and e < BF16_TOLERANCE
        rows.append({"case": f"fused_linear {name} M{m} K{k} N{n}", "relErr": e, "ok": ok})
    rows += _check_split_k(device, gen)
    x = torch.randn((100, 256), generator=gen).to(device, torch.bfloat16)
    w = torch.randn((200, 256), generator=gen).to(device, torch.bfloat16)
    try:  # past MAX_NORM_BLOCK_M the prologue gave wrong results once (NOTES.md v4): it must refuse, not compute
        fused_linear(x, w, rms_norm=True)
        refused = False
    except ValueError:
        refused = True
    rows.append({"case": "fused_linear refuses the norm prologue at M=100", "error": "", "ok": refused})
    return rows


SPLIT_K_CASES = [
    # name, M, K, N, norm, silu, residual, (BLOCK_N, BLOCK_K, warps, stages, SPLIT_K)
    ("plain qkv", 1, 4096, 6144, False, False, False, (32, 256, 4, 3, 4)),
    ("norm qkv", 1, 4096, 6144, True, False, False, (32, 256, 4, 3, 8)),
    ("norm qkv", 32, 4096, 6144, True, False, False, (64, 128, 4, 4, 2)),
    ("residual o in place", 1, 4096, 4096, False, False, True, (32, 128, 4, 4, 8)),
    ("residual o in place", 27, 4096, 4096, False, False, True, (32, 256, 4, 3, 4)),
    ("norm+silu gate_up", 1, 4096, 14336, True, True, False, (32, 256, 4, 3, 4)),
    ("norm+silu gate_up ragged N", 19, 1024, 1000, True, True, False, (64, 128, 4, 4, 2)),
    ("residual down", 32, 14336, 4096, False, False, True, (32, 256, 4, 3, 2)),
    ("norm ragged N", 3, 512, 200, True, False, False, (32, 64, 4, 2, 8)),
]


def _check_split_k(device: str, gen: torch.Generator) -> list[dict]:
    """The split-K kernel (v5) against float64, each case run three times (its arrival counters must be back at
    zero after every call, or the next call would merge too early or never)."""
    rows = []
    for name, m, k, n, norm, silu, res, cfg in SPLIT_K_CASES:
        x = torch.randn((m, k), generator=gen).to(device, torch.bfloat16)
        w = (torch.randn((2 * n if silu else n, k), generator=gen) / k**0.5).to(device, torch.bfloat16)
        g = (1.0 + 0.1 * torch.randn((k,), generator=gen)).to(device, torch.bfloat16) if norm else None
        r0 = torch.randn((m, n), generator=gen).to(device, torch.bfloat16) if res else None
        ref = reference_fused_linear(x, w, norm_weight=g, eps=1e-5, silu=silu, residual=r0)
        wk = fold_norm_weight(w, g) if norm else w
        worst, finite = 0.0, True
        for _ in range(3):
            r = r0.clone() if r0 is not None else None
            out = r if r is not None else torch.full((m, n), float("nan"), dtype=torch.bfloat16, device=device)
            fused_linear(x, wk, rms_norm=norm, eps=1e-5, silu=silu, residual=r, out=out, config=cfg)
            torch.cuda.synchronize()
            worst, finite = max(worst, rel_err(out, ref)), finite and bool(torch.isfinite(out).all())
        zero = bool((fl._SCRATCH[str(x.device)]["counters"] == 0).all())
        rows.append(
            {
                "case": f"fused_linear split-K {name} M{m} K{k} N{n} {list(cfg)}",
                "relErr": worst,
                "ok": finite and zero and worst < BF16_TOLERANCE,
            }
        )
    return rows


def check_varlen_prefill(device: str = "cuda", seed: int = 6) -> list[dict]:
    """The one-call varlen prefill attention (v5) against the per-prompt SDPA loop it replaces, ragged prompts, GQA,
    Llama-3-8B heads; reports (not ok) when the build has no varlen kernel and the loop would run instead."""
    from ..attention import backends as ab

    gen = torch.Generator().manual_seed(seed)
    lens = [1, 17, 128, 300, 1000]
    t, heads, kvh, d = sum(lens), 32, 8, 128
    qkv = torch.randn((t, (heads + 2 * kvh) * d), generator=gen).to(device, torch.bfloat16)
    q = qkv[:, : heads * d].view(t, heads, d)
    k = qkv[:, heads * d : (heads + kvh) * d].view(t, kvh, d)
    v = qkv[:, (heads + kvh) * d :].view(t, kvh, d)
    meta = ab.prefill_metadata(lens, lens, [[0]] * len(lens), device)
    fast = ab.varlen_causal_attention(q, k, v, meta)
    if fast is None:
        return [{"case": "prefill varlen attention vs per-prompt loop", "error": ab.VARLEN_UNAVAILABLE, "ok": False}]
    loop = ab.prefill_attention(q, k, v, None, None, ab.PrefillMetadata(lens, lens, [None] * len(lens)))
    e = rel_err(fast, loop)
    return [{"case": f"prefill varlen attention vs per-prompt loop, prompts {lens}", "relErr": e, "ok": e < 1e-2}]


TINY = ModelConfig("tiny", layers=2, hidden_size=256, heads=8, kv_heads=2, intermediate_size=512, vocab_size=512)


def check_runner_against_numpy(device: str = "cuda", seed: int = 2) -> list[dict]:
    """Drives the scheduler over ragged prompts with chunked prefill and decode; at every step the GPU runner (each
    backend, decode through CUDA graphs) and the numpy reference get the same inputs (teacher-forced with the
    reference's tokens) and their logits are compared. Then KV export from one runner and import into a fresh one
    must continue with the same logits."""
    rows = []
    weights = random_weights(TINY, seed)
    # small prefill graphs (16-token buckets up to 64, 4 prompts), so steps of this schedule take both paths
    eng = EngineConfig(
        num_blocks=64,
        block_size=16,
        max_num_seqs=8,
        max_num_batched_tokens=48,
        prefill_graph_max_tokens=64,
        prefill_graph_token_step=16,
        prefill_graph_max_prompts=4,
    )
    tw = torch_weights_from_numpy(weights, device)
    saved = dict(fl.CHOICES)
    for backend, fused, linear in (
        (TorchSdpaBackend(), True, "triton"),
        (TritonPagedBackend(8, TINY.heads, TINY.kv_heads, TINY.head_dim, 16, 512, device), True, "triton"),
        (TritonPagedBackend(8, TINY.heads, TINY.kv_heads, TINY.head_dim, 16, 512, device), True, "cublas-addmm"),
        (TritonPagedBackend(8, TINY.heads, TINY.kv_heads, TINY.head_dim, 16, 512, device), True, "cublas"),
        (TritonPagedBackend(8, TINY.heads, TINY.kv_heads, TINY.head_dim, 16, 512, device), False, "cublas"),
    ):
        ref = NumpyModel(TINY, weights, eng.num_blocks, eng.block_size, max_positions=512)
        # "triton": every decode layer through fused_linear; "cublas-addmm": the v4 path with cuBLAS everywhere
        fl.CHOICES.update({(16, n): (None if linear == "cublas-addmm" else (32, 128, 4, 3)) for n in fl.LAYERS})
        run = TorchModelRunner(
            TINY, eng, backend, tw, device, max_context=512, fused=fused, decode_linear=linear.split("-")[0]
        )
        if linear == "cublas-addmm":
            run.decode_linear = "triton"
        label = f"{backend.name}{'' if fused else ', plain ops'}, decode linear {linear}"
        run.capture_decode_graphs([4, 8])
        run.capture_prefill_graphs()
        fl.CHOICES.clear()
        fl.CHOICES.update(saved)
        sched = Scheduler(eng)
        rng = np.random.default_rng(seed)
        for i, n in enumerate([5, 40, 17, 90, 1]):
            sched.add(
                Sequence.from_prompt(
                    f"r{i}", rng.integers(0, TINY.vocab_size, n).tolist(), SamplingParams(max_tokens=6)
                )
            )
        worst = {"prefill": 0.0, "decode": 0.0}
        steps = 0
        while sched.has_work and steps < 100:
            out = sched.schedule()
            inp = prepare_step(out, eng.block_size)
            ref_logits = ref.forward(inp)
            if inp.kind == "decode":
                g = run.graphs[next(s for s in sorted(run.graphs) if s >= len(inp.token_ids))]
                run._fill(g, inp)
                g.graph.replay()
                got = g.logits[: len(inp.token_ids)].float().cpu()
                worst["decode"] = max(worst["decode"], rel_err(got, torch.from_numpy(ref_logits)))
            else:
                graphed = run.prefill_graph_steps
                got = run.prefill_logits(inp).float().cpu()
                path = "prefill graph" if run.prefill_graph_steps > graphed else "prefill"
                worst[path] = max(worst.get(path, 0.0), rel_err(got, torch.from_numpy(ref_logits)))
            sched.postprocess(
                out, dict(zip(inp.sample_request_ids, np.argmax(ref_logits, axis=-1).tolist(), strict=True))
            )
            steps += 1
        rows.append(
            {
                "case": f"runner[{label}] prefill logits vs numpy",
                "relErr": worst["prefill"],
                "ok": worst["prefill"] < 2e-2,
            }
        )
        rows.append(
            {
                "case": f"runner[{label}] prefill (CUDA graph, {run.prefill_graph_steps} steps) logits vs numpy",
                "relErr": worst.get("prefill graph"),
                "ok": run.prefill_graph_steps > 0 and worst.get("prefill graph", 1.0) < 2e-2,
                **({"off": run.prefill_graphs_off} if run.prefill_graphs_off else {}),
            }
        )
        rows.append(
            {
                "case": f"runner[{label}] decode (CUDA graph) logits vs numpy",
                "relErr": worst["decode"],
                "ok": worst["decode"] < 2e-2,
            }
        )
    return rows


def check_export_import(device: str = "cuda", seed: int = 3) -> list[dict]:
    """Prefill on one runner, export the request's blocks, import into another runner's different blocks, and
    decode there: the logits must match decoding in place."""
    weights = random_weights(TINY, seed)
    tw = torch_weights_from_numpy(weights, device)
    eng = EngineConfig(num_blocks=32, block_size=16)
    src = TorchModelRunner(TINY, eng, TorchSdpaBackend(), tw, device, max_context=512)
    dst = TorchModelRunner(TINY, eng, TorchSdpaBackend(), tw, device, max_context=512)
    rng = np.random.default_rng(seed)
    a = Sequence.from_prompt("a", rng.integers(0, TINY.vocab_size, 37).tolist())
    a.block_table = [5, 9, 2]
    inp = prepare_step(_single(a, 37), 16)
    src.prefill_logits(inp)
    a.num_computed_tokens = 37
    a.append_token(11)
    payload = src.export_blocks(a.block_table)
    b = Sequence(a.request_id, list(a.token_ids), a.num_prompt_tokens)
    b.block_table, b.num_computed_tokens = [30, 0, 17], 37
    dst.import_blocks(b.block_table, payload)
    la = src.prefill_logits(prepare_step(_single(a, 1), 16)).float()
    lb = dst.prefill_logits(prepare_step(_single(b, 1), 16)).float()
    e = rel_err(lb, la)
    return [{"case": "export 3 blocks, import into other blocks, next-token logits", "relErr": e, "ok": e < 1e-3}]


def _single(seq: Sequence, n: int):
    from ..engine.scheduler import ScheduledSeq, SchedulerOutput

    return SchedulerOutput("prefill", [ScheduledSeq(seq, n, True)])
