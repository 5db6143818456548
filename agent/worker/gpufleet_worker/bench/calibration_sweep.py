"""Raw measurements for the latency model's calibration: prefill (batch x prompt tokens 128-8k) and decode
(batch 1-256 x context 128-8k) steps of the reference worker on the GPU at hand, Llama-3-8B shapes, random bf16
weights, our Triton paged decode attention, decode as CUDA-graph replay.

python -m gpufleet_worker.bench.calibration_sweep OUT_DIR [--quick]

Writes OUT_DIR/calibration-raw.json: the device, the same run's copy and matmul ceilings, and one row per point
with CUDA-event medians (two medians each, so the noise is visible). A point whose KV does not fit the memory left
after the weights is listed with `skipped` and the reason, not measured. No fitting happens here: the calibration
(`npm run calibrate`, a later part of issue 14) reads this file.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

from ..attention.backends import TritonPagedBackend

# The grid and the prefill batch builder are calibrate.py's (which supersedes this first sweep): one definition.
from ..calibrate import (
    CONTEXTS,
    DECODE_BATCHES,
    DEV,
    MAX_PREFILL_BATCH_TOKENS,
    PREFILL_BATCHES,
    PREFILL_TOKENS,
    prefill_inputs,
)
from ..config import LLAMA3_8B, EngineConfig
from ..model.torch_runner import TorchModelRunner, random_torch_weights
from .h200 import ceilings, decode_inputs, spread


def save(out: Path, result: dict, rows: list[dict]) -> None:
    """Written after every point, so a run stopped at its time limit still leaves what it measured."""
    (out / "calibration-raw.json").write_text(json.dumps(result | {"rows": rows}, indent=1))


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    quick = "--quick" in argv
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    def log(msg: str) -> None:
        print(f"[sweep {time.time() - t_start:6.1f}s] {msg}", flush=True)

    cfg, bs = LLAMA3_8B, 16
    props = torch.cuda.get_device_properties(0)
    result: dict = {"gpu": props.name, "torch": torch.__version__, "model": cfg.name, "blockSize": bs}
    result["ceilings"] = ceilings(log)
    kv_tok = cfg.kv_bytes_per_token(2)
    free, _ = torch.cuda.mem_get_info()
    weights_bytes = cfg.weight_params() * 2
    kv_budget = int((free - weights_bytes) * 0.80)  # leave room for activations, graphs and the allocator
    num_blocks = kv_budget // (kv_tok * bs)
    result["kvBudgetBytes"], result["numBlocks"] = kv_budget, num_blocks
    log(f"{props.name}: {free / 1e9:.1f} GB free, KV budget {kv_budget / 1e9:.1f} GB = {num_blocks} blocks")
    eng = EngineConfig(num_blocks=num_blocks, block_size=bs, max_num_batched_tokens=MAX_PREFILL_BATCH_TOKENS)
    weights = random_torch_weights(cfg, DEV, seed=1)
    batches = DECODE_BATCHES[:4] if quick else DECODE_BATCHES
    max_context = max(CONTEXTS) + bs
    backend = TritonPagedBackend(max(batches), cfg.heads, cfg.kv_heads, cfg.head_dim, bs, max_context, DEV)
    runner = TorchModelRunner(cfg, eng, backend, weights, DEV, max_context=max_context)
    t0 = time.time()
    runner.capture_decode_graphs(batches)
    log(f"captured decode graphs for {batches} in {time.time() - t0:.1f} s")
    gen = torch.Generator().manual_seed(3)
    rows: list[dict] = []
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
            row |= {"stepMs": min(t1, t2), "mediansMs": [t1, t2], "kvReadBytes": b * ctx * kv_tok}
            rows.append(row)
            log(f"decode B={b} ctx={ctx}: {min(t1, t2):.3f} ms")
    for b in PREFILL_BATCHES[:2] if quick else PREFILL_BATCHES:
        for tokens in PREFILL_TOKENS[:3] if quick else PREFILL_TOKENS:
            row = {"phase": "prefill", "batch": b, "promptTokens": tokens}
            if b * tokens > MAX_PREFILL_BATCH_TOKENS:
                row["skipped"] = f"{b * tokens} tokens in one step exceed {MAX_PREFILL_BATCH_TOKENS}"
                rows.append(row)
                continue
            inp = prefill_inputs(b, tokens, bs, gen)
            t1, t2 = spread(lambda inp=inp: runner.prefill_logits(inp), warmup=2, reps=5)
            rows.append(row | {"stepMs": min(t1, t2), "mediansMs": [t1, t2]})
            save(out, result, rows)
            log(f"prefill B={b} T={tokens}: {min(t1, t2):.2f} ms")
    result["rows"] = rows
    result["seconds"] = round(time.time() - t_start, 1)
    (out / "calibration-raw.json").write_text(json.dumps(result, indent=1))
    log(f"wrote {out / 'calibration-raw.json'}: {sum('stepMs' in r for r in rows)} points measured")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
