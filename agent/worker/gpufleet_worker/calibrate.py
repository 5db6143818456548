"""The calibration sweep behind `npm run calibrate`: step times of the reference worker on the GPU at hand.

python -m gpufleet_worker.calibrate OUT_DIR [--quick]

Measures, for Llama-3-8B shapes with random bf16 weights (no weights are downloaded):
- the same run's ceilings: device-to-device copy (bytes read + written) and an 8192^3 bf16 matmul;
- decode steps, batch 1-256 x context 128-8192, as the engine runs them (one CUDA graph per batch size, our Triton
  paged decode attention);
- prefill steps, batch 1-8 x prompt 128-8192 tokens, twice: as the engine runs them (a step of at most
  prefill_graph_max_tokens tokens replays the engine's prefill graph for its bucket; larger ones run eager, Python
  issuing every launch) and the same forward captured in a CUDA graph of its own (GPU time alone). The difference
  is the engine's host cost per iteration, which the latency model keeps in the engine's profile, apart from the
  GPU's (format 3 adds the prefill graphs' limits, `prefillGraph`, and which path each step took);
- the dense GEMMs of one layer alone (QKV, O, gate/up, down) at M = 1..16384 rows, rotating over all 32 layers'
  weights so no weight is served from L2: the shape of GEMM time near the roofline's ridge point.

Writes OUT_DIR/calibration-raw.json (format 2) after every point, so a run stopped at its limit keeps what it
measured. Each point carries two medians of CUDA-event times (their difference is the noise). No fitting here: the
TypeScript step (scripts/calibrate.ts) fits the latency model and writes the GpuProfile.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

from .attention.backends import TritonPagedBackend, prefill_metadata
from .bench.h200 import ceilings, decode_inputs, spread
from .config import LLAMA3_8B, EngineConfig
from .engine.batch import StepInputs
from .model.torch_runner import TorchModelRunner, random_torch_weights, warm_up_on_side_stream

DEV = "cuda"
FORMAT = 3
DECODE_BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256]
CONTEXTS = [128, 512, 1024, 2048, 4096, 8192]
PREFILL_TOKENS = [128, 256, 512, 1024, 2048, 4096, 8192]
PREFILL_BATCHES = [1, 2, 4, 8]
MAX_PREFILL_BATCH_TOKENS = 16384  # one step's tokens; larger steps are chunked by the scheduler anyway
GEMM_ROWS = [1, 8, 32, 64, 128, 192, 256, 384, 512, 1024, 2048, 4096, 8192, 16384]


def prefill_inputs(batch: int, tokens: int, bs: int, gen: torch.Generator) -> StepInputs:
    per = math.ceil(tokens / bs)
    ids, pos, slots, tables, samples = [], [], [], [], []
    for i in range(batch):
        table = list(range(i * per, (i + 1) * per))
        ids += torch.randint(0, 128000, (tokens,), generator=gen).tolist()
        pos += list(range(tokens))
        slots += [table[p // bs] * bs + p % bs for p in range(tokens)]
        tables.append(table)
        samples.append((i + 1) * tokens - 1)
    rids = [f"p{i}" for i in range(batch)]
    return StepInputs("prefill", rids, ids, pos, slots, [tokens] * batch, [tokens] * batch, tables, samples, rids)


def reps_for(estimate_ms: float) -> int:
    """About 1.5 s of timed work per median, 5..25 repetitions: short host-bound steps are the noisy ones."""
    return max(5, min(25, int(1500 / max(estimate_ms, 1e-3))))


def graph_prefill_ms(runner: TorchModelRunner, inp: StepInputs, reps: int) -> tuple[float, float]:
    """The engine's prefill forward with every input already on the device, captured once and replayed."""
    dev = runner.device
    tensors = [torch.tensor(v, dtype=torch.long, device=dev) for v in (inp.token_ids, inp.positions, inp.slot_mapping)]
    meta = prefill_metadata(inp.query_lens, inp.context_lens, inp.block_tables, dev)
    idx = torch.tensor(inp.sample_indices, dtype=torch.long, device=dev)
    with torch.no_grad():
        warm_up_on_side_stream(lambda: runner.forward(*tensors, None, meta, idx), runs=1)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            runner.forward(*tensors, None, meta, idx)
    try:
        return spread(graph.replay, warmup=2, reps=reps)
    finally:
        del graph
        torch.cuda.empty_cache()


def gemm_sweep(weights: dict[str, torch.Tensor], cfg, log) -> list[dict]:
    """One layer's four GEMMs at M rows, timed over all layers in turn (218 MB of weights a layer, L2 is 60 MB)."""
    names = ("qkv", "o", "gate_up", "down")
    layer_flops_per_row = 2 * sum(weights[f"l0.{n}"].numel() for n in names)
    layer_bytes = 2 * sum(weights[f"l0.{n}"].numel() for n in names)
    rows = []
    for m in GEMM_ROWS:
        x = torch.randn((m, cfg.hidden_size), device=DEV, dtype=torch.bfloat16)
        xf = torch.randn((m, cfg.intermediate_size), device=DEV, dtype=torch.bfloat16)
        qkv_out = torch.empty((m, weights["l0.qkv"].shape[0]), device=DEV, dtype=torch.bfloat16)
        o_out = torch.empty((m, cfg.hidden_size), device=DEV, dtype=torch.bfloat16)
        gu_out = torch.empty((m, weights["l0.gate_up"].shape[0]), device=DEV, dtype=torch.bfloat16)

        def all_layers(x=x, xf=xf, a=qkv_out, b=o_out, c=gu_out) -> None:
            for i in range(cfg.layers):
                torch.matmul(x, weights[f"l{i}.qkv"].T, out=a)
                torch.matmul(x, weights[f"l{i}.o"].T, out=b)
                torch.matmul(x, weights[f"l{i}.gate_up"].T, out=c)
                torch.matmul(xf, weights[f"l{i}.down"].T, out=b)

        t1, t2 = spread(all_layers, warmup=2, reps=7)
        per_layer = min(t1, t2) / cfg.layers
        rows.append(
            {
                "rows": m,
                "layerMs": per_layer,
                "mediansMs": [t1 / cfg.layers, t2 / cfg.layers],
                "flops": layer_flops_per_row * m,
                "weightBytes": layer_bytes,
            }
        )
        log(f"gemm M={m}: {per_layer * 1000:.1f} us a layer")
    return rows


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    quick = "--quick" in argv
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    def log(msg: str) -> None:
        print(f"[calibrate {time.time() - t_start:6.1f}s] {msg}", flush=True)

    cfg, bs = LLAMA3_8B, 16
    props = torch.cuda.get_device_properties(0)
    result: dict = {
        "format": FORMAT,
        "gpu": props.name,
        "torch": torch.__version__,
        "engine": "gpufleet-reference-worker",
        "model": {
            "name": cfg.name,
            "layers": cfg.layers,
            "hiddenSize": cfg.hidden_size,
            "heads": cfg.heads,
            "kvHeads": cfg.kv_heads,
            "intermediateSize": cfg.intermediate_size,
            "vocabSize": cfg.vocab_size,
            "dtype": "bf16",
        },
        "blockSize": bs,
    }
    rows: list[dict] = []

    def save() -> None:
        (out / "calibration-raw.json").write_text(json.dumps(result | {"rows": rows}, indent=1))

    result["ceilings"] = ceilings(log)
    kv_tok = cfg.kv_bytes_per_token(2)
    free, _ = torch.cuda.mem_get_info()
    weights_bytes = cfg.weight_params() * 2
    kv_budget = int((free - weights_bytes) * 0.75)  # room for activations, decode graphs and one prefill graph
    num_blocks = kv_budget // (kv_tok * bs)
    result["kvBudgetBytes"], result["numBlocks"] = kv_budget, num_blocks
    log(f"{props.name}: {free / 1e9:.1f} GB free, KV budget {kv_budget / 1e9:.1f} GB = {num_blocks} blocks")
    eng = EngineConfig(num_blocks=num_blocks, block_size=bs, max_num_batched_tokens=MAX_PREFILL_BATCH_TOKENS)
    weights = random_torch_weights(cfg, DEV, seed=1)
    result["gemm"] = gemm_sweep(weights, cfg, log) if not quick else []
    save()

    batches = DECODE_BATCHES[:4] if quick else DECODE_BATCHES
    max_context = max(CONTEXTS) + bs
    backend = TritonPagedBackend(max(batches), cfg.heads, cfg.kv_heads, cfg.head_dim, bs, max_context, DEV)
    runner = TorchModelRunner(cfg, eng, backend, weights, DEV, max_context=max_context)
    t0 = time.time()
    runner.capture_decode_graphs(batches)
    log(f"captured decode graphs for {batches} in {time.time() - t0:.1f} s")
    gen = torch.Generator().manual_seed(3)
    for b in batches:
        for ctx in CONTEXTS[:3] if quick else CONTEXTS:
            need = b * math.ceil(ctx / bs)
            row = {"phase": "decode", "batch": b, "contextTokens": ctx}
            if need > num_blocks:
                rows.append(row | {"skipped": f"needs {need} KV blocks, {num_blocks} fit beside the weights"})
                continue
            inp = decode_inputs(b, ctx, bs, num_blocks, gen)
            g = runner.graphs[b]
            runner._fill(g, inp)
            t1, t2 = spread(g.graph.replay, warmup=3, reps=15)
            rows.append(row | {"stepMs": min(t1, t2), "mediansMs": [t1, t2], "kvReadBytes": b * ctx * kv_tok})
            log(f"decode B={b} ctx={ctx}: {min(t1, t2):.3f} ms")
        save()
    runner.graphs.clear()
    torch.cuda.empty_cache()
    t0 = time.time()
    runner.capture_prefill_graphs()
    result["prefillGraph"] = {
        "maxTokens": 0 if runner.prefill_graphs_off else eng.prefill_graph_max_tokens,
        "tokenStep": eng.prefill_graph_token_step,
        "maxPrompts": eng.prefill_graph_max_prompts,
        **({"off": runner.prefill_graphs_off} if runner.prefill_graphs_off else {}),
    }
    log(f"captured {len(runner.prefill_graphs)} prefill graphs in {time.time() - t0:.1f} s {result['prefillGraph']}")

    for b in PREFILL_BATCHES[:2] if quick else PREFILL_BATCHES:
        for tokens in PREFILL_TOKENS[:3] if quick else PREFILL_TOKENS:
            row = {"phase": "prefill", "batch": b, "promptTokens": tokens}
            if b * tokens > MAX_PREFILL_BATCH_TOKENS:
                rows.append(row | {"skipped": f"{b * tokens} tokens in one step exceed {MAX_PREFILL_BATCH_TOKENS}"})
                continue
            inp = prefill_inputs(b, tokens, bs, gen)
            with torch.no_grad():
                first = spread(lambda inp=inp: runner.prefill_logits(inp), warmup=1, reps=3)
            reps = reps_for(min(first))
            with torch.no_grad():
                e1, e2 = spread(lambda inp=inp: runner.prefill_logits(inp), warmup=1, reps=reps)
            g1, g2 = graph_prefill_ms(runner, inp, reps)
            path = "eager" if runner.prefill_graph_for(inp) is None else "graph"
            rows.append(
                row
                | {
                    "stepMs": min(e1, e2),
                    "mediansMs": [e1, e2],
                    "reps": reps,
                    "enginePath": path,
                    "gpuStepMs": min(g1, g2),
                    "gpuMediansMs": [g1, g2],
                }
            )
            save()
            log(
                f"prefill B={b} T={tokens}: engine ({path}) {min(e1, e2):.2f} ms ({e1:.2f}/{e2:.2f}), "
                f"own graph {min(g1, g2):.2f}"
            )
    result["seconds"] = round(time.time() - t_start, 1)
    save()
    log(f"wrote {out / 'calibration-raw.json'}: {sum('stepMs' in r for r in rows)} points measured")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
