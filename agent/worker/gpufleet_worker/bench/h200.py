"""The H200 run: correctness of both kernels and the runner on fresh random inputs, then the timings.

python -m gpufleet_worker.bench.h200 OUT_DIR

Ceilings are measured in the same run: device-to-device copy (bytes read + written) and a 8192^3 bf16 matmul on
random data. Decode: Llama-3-8B shapes with random bf16 weights, every sequence at a 1024-token context, one step
as a CUDA graph replay; bytes = weights read (all but the embedding table, of which only B rows are read) + KV read
(B * 1024 * kv_bytes_per_token) + KV written. Prefill: one 2048-token prompt, eager; FLOPs = 2 * T * (non-embedding
parameters less the LM head) + 2 * T * H*D (LM head on the sampled token only) + causal attention 2 * T^2 * H * D
per layer. Timings are CUDA-event medians after warm-up.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import torch

from ..attention import backends as attn_backends
from ..attention.backends import DecodeMetadata, TorchSdpaBackend, TritonPagedBackend, partition_for
from ..config import LLAMA3_8B, EngineConfig
from ..diagnostics import median_cuda_ms
from ..engine.batch import StepInputs
from ..kernels import fused_linear as fl
from ..kernels.kv_block_copy import gather_blocks, scatter_blocks
from ..kernels.paged_decode_attention import PagedDecodeAttention
from ..model.torch_runner import TorchModelRunner, random_torch_weights, warm_up_on_side_stream
from . import checks

DEV = "cuda"


def time_ms(fn, warmup: int = 3, reps: int = 20) -> float:
    return median_cuda_ms(torch, fn, warmup, reps)


def spread(fn, **kw) -> tuple[float, float]:
    """Two medians of the same thing: their difference is the noise floor between versions."""
    return time_ms(fn, **kw), time_ms(fn, **kw)


def ceilings(log) -> dict:
    n = 1 << 30  # 2 GiB of bf16 per side, far past the 60 MB L2
    src = torch.randn(n, device=DEV, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    t1, t2 = spread(lambda: dst.copy_(src), reps=30)
    copy_gbps = 2 * n * 2 / (min(t1, t2) * 1e-3) / 1e9
    src = dst = None  # free 4 GiB before the matmul
    m = 8192
    a = torch.randn((m, m), device=DEV, dtype=torch.bfloat16)
    b = torch.randn((m, m), device=DEV, dtype=torch.bfloat16)
    u1, u2 = spread(lambda: a @ b, reps=20)
    tflops = 2 * m**3 / (min(u1, u2) * 1e-3) / 1e12
    log(
        f"copy {copy_gbps:.0f} GB/s (medians {t1:.3f}, {t2:.3f} ms); "
        f"matmul {tflops:.0f} TFLOP/s ({u1:.3f}, {u2:.3f} ms)"
    )
    return {
        "measuredCopyGBps": copy_gbps,
        "measuredMatmulTflops": tflops,
        "copyMediansMs": [t1, t2],
        "matmulMediansMs": [u1, u2],
    }


def decode_inputs(batch: int, ctx: int, bs: int, num_blocks: int, gen: torch.Generator) -> StepInputs:
    per = math.ceil(ctx / bs)
    perm = torch.randperm(num_blocks, generator=gen)[: batch * per].view(batch, per).tolist()
    pos = ctx - 1
    return StepInputs(
        "decode",
        [f"r{i}" for i in range(batch)],
        torch.randint(0, 128000, (batch,), generator=gen).tolist(),
        [pos] * batch,
        [t[pos // bs] * bs + pos % bs for t in perm],
        [1] * batch,
        [ctx] * batch,
        perm,
        list(range(batch)),
        [f"r{i}" for i in range(batch)],
    )


def model_bench(ceil: dict, log) -> dict:
    cfg = LLAMA3_8B
    ctx, bs, batches = 1024, 16, [1, 32, 128]
    eng = EngineConfig(num_blocks=max(batches) * (ctx // bs + 1) + 64, block_size=bs, max_num_batched_tokens=2048)
    weights = random_torch_weights(cfg, DEV, seed=0)
    weight_bytes = sum(t.numel() * t.element_size() for t in weights.values())
    read_weight_bytes = weight_bytes - weights["embed"].numel() * 2
    kv_tok = cfg.kv_bytes_per_token(2)
    gen = torch.Generator().manual_seed(5)
    result: dict = {
        "model": cfg.name,
        "weightBytes": weight_bytes,
        "kvBytesPerToken": kv_tok,
        "decodeContextTokens": ctx,
    }

    decode: dict = {}
    best = ceil.get("attentionTuning", {})
    by_batch = {k: v for k, v in best.items() if k != "partition"}  # partition from partition_for(batch)
    result["linearSweep"], linear_choices = linear_sweep(weights, cfg, batches, log)
    result["linearChoices"] = {
        v: {f"M{bm} {layer}": list(c) if c else "cublas" for (bm, layer), c in ch.items()}
        for v, ch in linear_choices.items()
    }
    v4_attn = dict(by_batch, fused_merge=False)  # partition + separate merge launch, partition_for(batch)
    v4_choices, v5_choices = linear_choices["v4"], linear_choices["v5"]
    versions = [  # name, backend, fused elementwise kernels, kernel tuning, decode GEMMs, fused_linear choices
        (V5, "triton-paged", True, by_batch, "triton", v5_choices),
        (V4, "triton-paged", True, v4_attn, "triton", v4_choices),
        (V5_ATTN, "triton-paged", True, by_batch, "triton", v4_choices),
        ("v3 fused + triton-paged, partition by batch", "triton-paged", True, v4_attn, "cublas", None),
    ]
    if PREFETCH_EXPERIMENT:  # the shipped decode against the same with an L2 prefetch of the o weight
        versions = [(V5_ATTN, "triton-paged", True, by_batch, "triton", v4_choices)] + [
            (f"{V5_ATTN} + L2 prefetch of o ({spec})", "triton-paged", True, by_batch, "triton", v4_choices)
            for spec in PREFETCH_SPECS
        ]
    profiles: dict = {}
    for version, backend_name, fused, tuning, linear, choices in versions:
        max_context = ctx + bs
        if backend_name == "triton-paged":
            backend = TritonPagedBackend(
                max(batches), cfg.heads, cfg.kv_heads, cfg.head_dim, bs, max_context, DEV, **tuning
            )
        else:
            backend = TorchSdpaBackend()
        runner = TorchModelRunner(
            cfg,
            eng,
            backend,
            weights,
            DEV,
            max_context=max_context,
            fused=fused,
            decode_linear=linear,
            linear_choices=choices,
            l2_prefetch=next((spec for spec in PREFETCH_SPECS if f"({spec})" in version), None),
        )
        runner.max_blocks = ctx // bs + 1  # the torch path gathers max_blocks per row: size it to this context
        try:
            runner.capture_decode_graphs(batches)
        except Exception as e:  # an experiment that does not compile or capture leaves the other rows standing
            log(f"decode[{version}] failed: {e!r}")
            del runner
            torch.cuda.empty_cache()
            continue
        for b in batches:
            inp = decode_inputs(b, ctx, bs, eng.num_blocks, gen)
            g = runner.graphs[b]
            runner._fill(g, inp)
            if version in PROFILED:
                try:
                    profiles.setdefault(version, {})[str(b)] = kernel_profile(runner, g, cfg.layers)
                except Exception as e:  # the profiler is a diagnosis: its failure must not stop the timings
                    log(f"profile[{version}] B={b} failed: {e!r}")
            t1, t2 = spread(g.graph.replay, warmup=3, reps=20)
            t = min(t1, t2)
            nbytes = read_weight_bytes + b * ctx * kv_tok + b * kv_tok + b * cfg.hidden_size * 2
            frac = nbytes / (t * 1e-3) / 1e9 / ceil["measuredCopyGBps"]
            decode.setdefault(version, {})[str(b)] = {
                "stepMs": t,
                "mediansMs": [t1, t2],
                "bytes": nbytes,
                "fractionOfCopyBw": frac,
            }
            log(f"decode[{version}] B={b}: {t:.3f} ms ({t1:.3f}/{t2:.3f}), {nbytes / 1e9:.2f} GB, {frac:.3f} of copy")
        del runner
        torch.cuda.empty_cache()
    result["decode"] = decode
    result["decodeKernelProfile"] = profiles
    if PREFETCH_EXPERIMENT:
        return result
    for version, by_b in profiles.items():
        for b, rows in by_b.items():
            log(f"profile[{version}] B={b}: {sum(r['usPerStep'] for r in rows) / 1e3:.3f} ms of kernels a step")
            for r in rows[:12]:
                log(f"  {r['usPerStep']:8.1f} us {r['perStep']:5.0f}x  {r['name'][:90]}")

    # prefill: one 2048-token prompt
    runner = TorchModelRunner(cfg, eng, TorchSdpaBackend(), weights, DEV, max_context=4096)
    T = 2048
    table = list(range(T // bs))
    inp = StepInputs(
        "prefill",
        ["p"],
        torch.randint(0, 128000, (T,), generator=gen).tolist(),
        list(range(T)),
        list(range(T)),
        [T],
        [T],
        [table],
        [T - 1],
        ["p"],
    )
    runner.fused = False
    plain_ms = time_ms(lambda: runner.prefill_logits(inp), warmup=2, reps=5)
    runner.fused = True
    p1, p2 = spread(lambda: runner.prefill_logits(inp), warmup=2, reps=7)
    log(f"prefill plain torch ops (v1): {plain_ms:.2f} ms")
    result["prefillPlainOpsMs"] = plain_ms
    result["prefillAttentionForms"] = prefill_attention_forms(cfg, T, log)
    t = min(p1, p2)
    h, ffn, kvd = cfg.hidden_size, cfg.intermediate_size, cfg.kv_heads * cfg.head_dim
    layer_params = h * (h + 2 * kvd) + h * h + 3 * h * ffn
    flops = 2 * T * cfg.layers * layer_params + 2 * cfg.vocab_size * h + cfg.layers * 2 * T * T * h
    frac = flops / (t * 1e-3) / 1e12 / ceil["measuredMatmulTflops"]
    log(f"prefill T={T}: {t:.2f} ms ({p1:.2f}/{p2:.2f}), {flops / 1e12:.2f} TFLOP, {frac:.3f} of matmul peak")
    # the same GEMMs alone (what cuBLAS reaches at M=2048 on these shapes): says how much is GEMM shape, not glue
    x = torch.randn((T, h), device=DEV, dtype=torch.bfloat16)
    xf = torch.randn((T, ffn), device=DEV, dtype=torch.bfloat16)
    w0 = weights["l0.qkv"], weights["l0.o"], weights["l0.gate_up"], weights["l0.down"]
    gemm_ms = time_ms(lambda: (x @ w0[0].T, x @ w0[1].T, x @ w0[2].T, xf @ w0[3].T), reps=20)
    gemm_frac = 2 * T * layer_params / (gemm_ms * 1e-3) / 1e12 / ceil["measuredMatmulTflops"]
    log(
        f"prefill GEMMs of one layer alone: {gemm_ms:.3f} ms, {gemm_frac:.3f} of matmul peak; x{cfg.layers} = "
        f"{gemm_ms * cfg.layers:.1f} ms of the {t:.1f} ms step"
    )
    result["prefill"] = {
        "tokens": T,
        "stepMs": t,
        "mediansMs": [p1, p2],
        "flops": flops,
        "fractionOfMatmulPeak": frac,
        "gemmOnlyLayerMs": gemm_ms,
        "gemmOnlyFractionOfPeak": gemm_frac,
    }

    # KV export/import of whole requests, through the runner's cache (all 32 layers)
    kv: list[dict] = []
    for tokens in (256, 1024, 4096, 8192):
        n = math.ceil(tokens / bs)
        blocks = torch.randperm(eng.num_blocks, generator=gen)[:n].to(DEV, torch.int32)
        buf = torch.empty((cfg.layers, 2, n, bs, cfg.kv_heads, cfg.head_dim), dtype=torch.bfloat16, device=DEV)
        tg = time_ms(lambda: gather_blocks(runner.kv_cache, blocks, out=buf), reps=20)
        ts = time_ms(lambda: scatter_blocks(runner.kv_cache, blocks, buf), reps=20)
        payload = buf.numel() * 2
        tt = time_ms(lambda: runner.kv_cache[:, :, blocks.long()], reps=20)
        row = {
            "tokens": tokens,
            "payloadBytes": payload,
            "gatherMs": tg,
            "scatterMs": ts,
            "gatherGBps": payload / (tg * 1e-3) / 1e9,
            "scatterGBps": payload / (ts * 1e-3) / 1e9,
            "torchIndexGatherMs": tt,
            "oneGpuCopyDowntimeMs": tg + ts,
        }
        kv.append(row)
        log(
            f"kv {tokens} tok: {payload / 1e6:.1f} MB gather {tg:.3f} ms ({row['gatherGBps']:.0f} GB/s payload) "
            f"scatter {ts:.3f} ms ({row['scatterGBps']:.0f} GB/s); torch index gather {tt:.3f} ms"
        )
    result["kvTransfer"] = kv
    return result


V4 = "v4 fused linear (norm/SiLU/residual in the GEMMs) + triton-paged"
V5_ATTN = "v5 attention only (merge inside the kernel) + v4 linear"
V5 = "v5 merge inside the attention kernel + split-K fused linear"
PROFILED = (V5, V4)
# GPUFLEET_BENCH_PREFETCH=1: only the decode rows of the L2-prefetch experiment (kernels/l2_prefetch.py), in one run
PREFETCH_EXPERIMENT = os.environ.get("GPUFLEET_BENCH_PREFETCH") == "1"
PREFETCH_SPECS = ("after-qkv:bulk", "layer-start:bulk", "after-qkv:line")


def kernel_profile(runner: TorchModelRunner, g, layers: int, steps: int = 3) -> list[dict]:
    """Each kernel's device time in one decode step (torch.profiler over eager steps with the graph's buffers: the
    same kernels the graph replays, without its launch gaps), summed by kernel name, largest first."""
    from torch.profiler import ProfilerActivity, profile

    runner._decode_forward(g)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            runner._decode_forward(g)
        torch.cuda.synchronize()
    by_name: dict[str, list[float]] = {}
    for ev in prof.events():
        if ev.device_type.name != "CUDA":
            continue
        us = ev.time_range.elapsed_us()
        row = by_name.setdefault(ev.name, [0.0, 0])
        row[0] += us
        row[1] += 1
    rows = [
        {"name": n, "usPerStep": t / steps, "perStep": c / steps, "perLayer": c / steps / layers}
        for n, (t, c) in by_name.items()
    ]
    return sorted(rows, key=lambda r: -r["usPerStep"])


LINEAR_CANDIDATES: dict[int, list[fl.Config]] = {  # (BLOCK_N, BLOCK_K, warps, stages) tried per BLOCK_M
    16: [
        (64, 256, 4, 4),
        (32, 256, 4, 4),
        (32, 512, 4, 3),
        (64, 512, 4, 3),
        (64, 128, 4, 8),
        (128, 256, 8, 3),
        (16, 512, 4, 4),
        (32, 128, 4, 8),
    ],
    32: [(32, 256, 4, 4), (64, 256, 4, 3), (32, 512, 4, 3), (64, 128, 4, 4), (16, 512, 4, 4), (64, 512, 4, 3)],
    128: [(64, 128, 8, 3), (128, 64, 8, 4)],
}
SPLIT_K_CANDIDATES: dict[int, list[fl.Config]] = {  # (BLOCK_N, BLOCK_K, warps, stages, SPLIT_K), v5
    # first v5 run: SPLIT_K 2 was best everywhere, 4 and 8 slower (each program's fixed cost and the serial
    # fixup outweigh the fuller waves), so the sweep now tries SPLIT_K 2 tiles and one SPLIT_K 4
    16: [(32, 256, 4, 3, 2), (64, 256, 4, 3, 2), (32, 512, 4, 3, 2), (32, 256, 4, 3, 4)],
    32: [(32, 256, 4, 3, 2), (64, 128, 4, 4, 2), (64, 256, 4, 3, 2)],
}


def linear_sweep(weights: dict[str, torch.Tensor], cfg, batches: list[int], log) -> tuple[dict, dict]:
    """Each decode linear layer at M = batch rows, as the v4 runner would run it either way: cuBLAS with the
    elementwise kernels it needs (RMSNorm before qkv / gate_up / LM head, SiLU*mul after gate_up; the residual by
    addmm_) against fused_linear with each candidate tile (all of that inside). Timed as a CUDA graph of one call
    per layer over all 32 layers' weights (no weight served from L2). The fastest per (BLOCK_M, layer) among cuBLAS
    and the v4 tiles is v4's choice, among cuBLAS and every tile (split-K too) v5's; returns (rows, choices) and
    leaves v4's in fused_linear.CHOICES (None: cuBLAS)."""
    from ..kernels.fused_elementwise import add_rms_norm, silu_mul

    h, f, eps, n_l = cfg.hidden_size, cfg.intermediate_size, cfg.rms_norm_eps, cfg.layers
    g = weights["norm"]
    fold = {
        "qkv": [fl.fold_norm_weight(weights[f"l{i}.qkv"], weights[f"l{i}.attn_norm"]) for i in range(n_l)],
        "gate_up": [fl.fold_norm_weight(weights[f"l{i}.gate_up"], weights[f"l{i}.mlp_norm"]) for i in range(n_l)],
        "lm_head": [fl.fold_norm_weight(weights["lm_head"], g)],
    }
    plain = {name: [weights[f"l{i}.{name}"] for i in range(n_l)] for name in ("qkv", "o", "gate_up", "down")}
    plain["lm_head"] = [weights["lm_head"]]
    out: dict = {}
    choices: dict = {"v4": {}, "v5": {}}
    for m in batches:
        bm = fl.block_m_for(m)
        x = torch.randn((m, h), device=DEV, dtype=torch.bfloat16)
        xa = torch.randn((m, f), device=DEV, dtype=torch.bfloat16)
        res = torch.randn((m, h), device=DEV, dtype=torch.bfloat16)
        cublas = {
            "qkv": lambda ws=plain["qkv"]: [add_rms_norm(x, None, g, eps) @ w.T for w in ws],
            "o": lambda ws=plain["o"]: [res.addmm_(x, w.T) for w in ws],
            "gate_up": lambda ws=plain["gate_up"]: [silu_mul(add_rms_norm(x, None, g, eps) @ w.T) for w in ws],
            "down": lambda ws=plain["down"]: [res.addmm_(xa, w.T) for w in ws],
            "lm_head": lambda ws=plain["lm_head"]: [add_rms_norm(x, None, g, eps) @ w.T for w in ws],
        }
        fused = {  # name -> (input, weights, kwargs)
            "qkv": (x, fold["qkv"], {"rms_norm": True, "eps": eps}),
            "o": (x, plain["o"], {"residual": res, "out": res}),
            "gate_up": (x, fold["gate_up"], {"rms_norm": True, "eps": eps, "silu": True}),
            "down": (xa, plain["down"], {"residual": res, "out": res}),
            "lm_head": (x, fold["lm_head"], {"rms_norm": True, "eps": eps}),
        }
        rows = {}
        for name in fl.LAYERS:
            inp, ws, kw = fused[name]
            nbytes = sum(w.numel() * 2 for w in ws)
            t_cublas = graph_time_ms(cublas[name], calls=1)
            tried = []
            norm_layer = kw.get("rms_norm", False)
            split_k = SPLIT_K_CANDIDATES.get(bm, []) if name != "lm_head" else []
            for c in [] if norm_layer and bm > fl.MAX_NORM_BLOCK_M else LINEAR_CANDIDATES[bm] + split_k:
                try:
                    t = graph_time_ms(
                        lambda inp=inp, ws=ws, kw=kw, c=c: [fl.fused_linear(inp, w, config=c, **kw) for w in ws],
                        calls=1,
                    )
                    tried.append({"config": list(c), "ms": t})
                except Exception as e:  # a tile that does not fit in shared memory fails to compile: skip it
                    tried.append({"config": list(c), "error": repr(e)[:200]})
            none = {"config": None, "ms": None}
            best4 = min((r for r in tried if "ms" in r and len(r["config"]) == 4), key=lambda r: r["ms"], default=none)
            best = min((r for r in tried if "ms" in r), key=lambda r: r["ms"], default=none)
            use4 = best4["ms"] is not None and best4["ms"] < t_cublas
            use_fused = best["ms"] is not None and best["ms"] < t_cublas
            choices["v4"][(bm, name)] = tuple(best4["config"]) if use4 else None  # v4: no split-K tiles
            choices["v5"][(bm, name)] = tuple(best["config"]) if use_fused else None
            rows[name] = {
                "v4Config": best4["config"],
                "v4Ms": best4["ms"],
                "v4Chosen": "fused_linear" if use4 else "cublas",
                "weightBytes": nbytes,
                "cublasMs": t_cublas,
                "cublasGBps": nbytes / (t_cublas * 1e-3) / 1e9,
                "bestConfig": best["config"],
                "fusedMs": best["ms"],
                "fusedGBps": nbytes / (best["ms"] * 1e-3) / 1e9 if best["ms"] else None,
                "chosen": "fused_linear" if use_fused else "cublas",
                "tried": tried,
            }
            fused_txt = (
                f"{best['ms'] * 1e3:.1f} us ({rows[name]['fusedGBps']:.0f} GB/s) {best['config']}"
                if best["ms"]
                else "not run (norm prologue past MAX_NORM_BLOCK_M)"
            )
            log(
                f"linear M={m} {name}: cuBLAS+elementwise {t_cublas * 1e3:.1f} us ({rows[name]['cublasGBps']:.0f} GB/s)"
                f" | fused {fused_txt} -> {rows[name]['chosen']}"
            )
        out[str(m)] = rows
    fl.CHOICES.clear()
    fl.CHOICES.update(choices["v4"])  # the default for runners built without choices (v3 rows, calibration)
    log(f"linear choices v4: {choices['v4']}")
    log(f"linear choices v5: {choices['v5']}")
    return out, choices


def graph_time_ms(fn, calls: int = 20) -> float:
    """Median time of one call, from a CUDA graph of `calls` back-to-back calls (no launch gaps, as in a step)."""
    fn()  # compiles Triton, creates handles
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    warm_up_on_side_stream(fn, runs=1)
    with torch.cuda.graph(g):
        for _ in range(calls):
            fn()
    return time_ms(g.replay, warmup=2, reps=10) / calls


ATTN_SHAPES = [(1, 1024), (32, 1024), (128, 1024), (32, 4096), (8, 8192)]
# v2 swept 24 tunings (partition 256/512 x block 32/64/128 x 4/8 warps x 2/3 stages; NOTES.md): the v1 default,
# the best and its neighbours are kept, so the run still checks the choice without 24 compiles
TUNING_GRID = [
    {"partition": 256, "block_n": 64, "num_warps": 4, "num_stages": 2},
    {"partition": 512, "block_n": 64, "num_warps": 4, "num_stages": 2},
    {"partition": 512, "block_n": 64, "num_warps": 4, "num_stages": 3},
    {"partition": 512, "block_n": 128, "num_warps": 8, "num_stages": 2},
]
FUSED_PARTITIONS = (64, 128, 256, 512, 1024, 2048)  # v5 sweep; at context 1024 (+16) 2048 is one pass, no partials


def _attn_case(b: int, ctx: int, gen: torch.Generator):
    cfg, bs = LLAMA3_8B, 16
    per = math.ceil(ctx / bs)
    nb = b * per + 8
    kc = torch.randn((nb, bs, cfg.kv_heads, cfg.head_dim), generator=gen).to(DEV, torch.bfloat16)
    vc = torch.randn_like(kc)
    q = torch.randn((b, cfg.heads, cfg.head_dim), generator=gen).to(DEV, torch.bfloat16)
    tables = torch.randperm(nb, generator=gen)[: b * per].view(b, per).to(DEV, torch.int32)
    lens = torch.full((b,), ctx, dtype=torch.int32, device=DEV)
    return kc, vc, q, tables, lens


def attention_bench(ceil: dict, log) -> dict:
    """Paged decode attention of one layer (Llama-3-8B heads, BS=16): our kernel (each tuning in TUNING_GRID, then
    the best by total time) vs torch's path (dense gather + SDPA) and SDPA alone on already-dense KV (a bound the
    paged cache cannot reach without the gather). All timed inside CUDA graphs, as they run in a decode step."""
    cfg, bs = LLAMA3_8B, 16
    gen = torch.Generator().manual_seed(9)
    cases = {shape: _attn_case(*shape, gen) for shape in ATTN_SHAPES}
    sweep = []
    for tuning in TUNING_GRID:
        total = 0.0
        per_shape = {}
        for (b, ctx), (kc, vc, q, tables, lens) in cases.items():
            kern = PagedDecodeAttention(
                b, cfg.heads, cfg.kv_heads, cfg.head_dim, bs, ctx, DEV, fused_merge=False, **tuning
            )
            out = torch.empty_like(q)
            t = graph_time_ms(lambda: kern(q, kc, vc, tables, lens, out=out))
            per_shape[f"{b}x{ctx}"] = t
            total += t
        sweep.append({"tuning": tuning, "totalMs": total, "ms": per_shape})
    best = min(sweep, key=lambda r: r["totalMs"])
    v1 = {"partition": 256, "block_n": 64, "num_warps": 4, "num_stages": 2}
    default = next(r for r in sweep if r["tuning"] == v1)
    log(
        f"attn tuning: best {best['tuning']} total {best['totalMs'] * 1e3:.0f} us; "
        f"v1 default {default['tuning']} total {default['totalMs'] * 1e3:.0f} us"
    )
    rows = []
    for (b, ctx), (kc, vc, q, tables, lens) in cases.items():
        t_tri = best["ms"][f"{b}x{ctx}"]
        meta = DecodeMetadata(tables, lens)
        sdpa = TorchSdpaBackend()
        t_torch = graph_time_ms(lambda: sdpa.decode(q, kc, vc, meta))
        per = math.ceil(ctx / bs)
        kd = kc[tables.long()].reshape(b, per * bs, cfg.kv_heads, cfg.head_dim).transpose(1, 2).contiguous()
        vd = vc[tables.long()].reshape(b, per * bs, cfg.kv_heads, cfg.head_dim).transpose(1, 2).contiguous()
        qd = q.view(b, cfg.kv_heads, cfg.heads // cfg.kv_heads, cfg.head_dim)
        t_dense = graph_time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(qd, kd, vd))
        nbytes = 2 * b * ctx * cfg.kv_heads * cfg.head_dim * 2 + 2 * q.numel() * 2
        row = {
            "batch": b,
            "context": ctx,
            "kvBytes": nbytes,
            "tritonUs": t_tri * 1e3,
            "tritonV1DefaultUs": default["ms"][f"{b}x{ctx}"] * 1e3,
            "torchPagedUs": t_torch * 1e3,
            "torchDenseSdpaUs": t_dense * 1e3,
            "speedupVsTorchPaged": t_torch / t_tri,
            "speedupVsDenseSdpa": t_dense / t_tri,
            "tritonFractionOfCopyBw": nbytes / (t_tri * 1e-3) / 1e9 / ceil["measuredCopyGBps"],
        }
        pol = dict(best["tuning"], partition=partition_for(b, cfg.kv_heads, ctx))
        pol["block_n"] = min(pol["block_n"], pol["partition"])
        kern = PagedDecodeAttention(b, cfg.heads, cfg.kv_heads, cfg.head_dim, bs, ctx, DEV, fused_merge=False, **pol)
        out = torch.empty_like(q)
        row["tritonPartitionByBatchUs"] = graph_time_ms(lambda: kern(q, kc, vc, tables, lens, out=out)) * 1e3
        row["partitionByBatch"] = pol["partition"]
        # v5: the merge inside the kernel, each partition, at the model step's longest context (ctx + one block)
        fused = {}
        kv4 = PagedDecodeAttention(
            b, cfg.heads, cfg.kv_heads, cfg.head_dim, bs, ctx + bs, DEV, fused_merge=False, **pol
        )
        sep = graph_time_ms(lambda: kv4(q, kc, vc, tables, lens, out=out)) * 1e3  # v4 at the same longest context
        for part in FUSED_PARTITIONS:
            tun = dict(best["tuning"], partition=part, block_n=min(best["tuning"]["block_n"], part))
            kf = PagedDecodeAttention(b, cfg.heads, cfg.kv_heads, cfg.head_dim, bs, ctx + bs, DEV, **tun)
            fused[str(part)] = graph_time_ms(lambda kf=kf: kf(q, kc, vc, tables, lens, out=out)) * 1e3
        best_part = min(fused, key=fused.get)
        row["fusedMergeUs"] = fused
        row["fusedMergeBestPartition"] = int(best_part)
        row["fusedMergeBestUs"] = fused[best_part]
        row["separateMergeSameContextUs"] = sep
        use_fused = fused[best_part] < sep
        row["v5Uses"] = "merge in kernel" if use_fused else "separate merge launch"
        if ctx == 1024:  # the model step's context: its batch sizes take the measured kernel and partition
            attn_backends.PARTITION_CHOICES[b] = (True, int(best_part)) if use_fused else (False, pol["partition"])
        log(
            f"attn B={b} ctx={ctx}: v4 (separate merge, {pol['partition']}) {row['tritonPartitionByBatchUs']:.1f} us"
            f" ({sep:.1f} at ctx+{bs}) | v5 merge in kernel {', '.join(f'{p}: {t:.1f}' for p, t in fused.items())}"
            f" us -> {row['v5Uses']}"
        )
        rows.append(row)
        log(f"attn B={b} ctx={ctx}: partition_for -> {pol['partition']}: {row['tritonPartitionByBatchUs']:.1f} us")
        log(
            f"attn B={b} ctx={ctx}: triton {t_tri * 1e3:.1f} us ({row['tritonFractionOfCopyBw']:.2f} of copy) | "
            f"torch paged {t_torch * 1e3:.1f} us | dense SDPA {t_dense * 1e3:.1f} us"
        )
    ceil["attentionTuning"] = best["tuning"]
    choices = dict(attn_backends.PARTITION_CHOICES)
    log(f"attn v5 partition choices by batch: {choices}")
    return {"bestTuning": best["tuning"], "rows": rows, "sweep": sweep, "fusedPartitionChoices": choices}


def prefill_attention_forms(cfg, T: int, log) -> dict:
    """One layer's prefill attention at T tokens: SDPA with enable_gqa vs K/V repeated to the query heads."""
    import torch.nn.functional as F

    q = torch.randn((1, cfg.heads, T, cfg.head_dim), device=DEV, dtype=torch.bfloat16)
    k = torch.randn((1, cfg.kv_heads, T, cfg.head_dim), device=DEV, dtype=torch.bfloat16)
    v = torch.randn_like(k)
    g = cfg.heads // cfg.kv_heads
    t_gqa = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True), reps=10)
    t_rep = time_ms(
        lambda: F.scaled_dot_product_attention(q, k.repeat_interleave(g, 1), v.repeat_interleave(g, 1), is_causal=True),
        reps=10,
    )
    log(f"prefill attention one layer T={T}: enable_gqa {t_gqa:.3f} ms, repeated K/V {t_rep:.3f} ms")
    return {"enableGqaMs": t_gqa, "repeatedKvMs": t_rep}


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    lines: list[str] = []

    def log(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    t0 = time.time()
    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    import triton

    log(f"gpu: {smi}; torch {torch.__version__}, triton {triton.__version__}")
    report: dict = {
        "gpu": torch.cuda.get_device_name(),
        "nvidiaSmi": smi,
        "torch": torch.__version__,
        "triton": triton.__version__,
    }
    correctness = []
    for fn in (
        checks.check_paged_decode,
        checks.check_fused_linear,
        checks.check_block_copy,
        checks.check_runner_against_numpy,
        checks.check_export_import,
        checks.check_varlen_prefill,
    ):
        try:
            correctness += fn(DEV)
        except Exception as e:  # a failing check is reported, and the timings still run
            correctness.append({"case": fn.__name__, "error": repr(e), "ok": False})
    for r in correctness:
        log(f"check {'PASS' if r['ok'] else 'FAIL'} {r}")
    report["correctness"] = correctness
    ceil = ceilings(log)
    report.update(ceil)
    sections = {"attention": attention_bench, "model": model_bench}
    if PREFETCH_EXPERIMENT:
        sections = {"model": model_bench}
    for key, fn in sections.items():
        try:
            report[key] = fn(ceil, log)
        except Exception as e:
            import traceback

            traceback.print_exc()
            report[key] = {"error": repr(e)}
        with open(os.path.join(out_dir, "gpu-worker-raw.json"), "w") as f:
            json.dump(report, f, indent=2)
    report["wallSeconds"] = time.time() - t0
    with open(os.path.join(out_dir, "gpu-worker-raw.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out_dir, "bench.log"), "w") as f:
        f.write("\n".join(lines) + "\n")
    log(f"done in {report['wallSeconds']:.0f} s; correctness {sum(r['ok'] for r in correctness)}/{len(correctness)} ok")


if __name__ == "__main__":
    main()
