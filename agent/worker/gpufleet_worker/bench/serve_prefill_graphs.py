"""On a GPU: the serving worker's runner as `python -m gpufleet_worker.serve --backend torch` builds it (decode and
prefill graphs captured at start), then prefill steps of odd token counts through the graph and, on the same
runner with the graphs set aside, eagerly: same greedy tokens, and each step's time both ways. Llama-3-8B shapes.

python -m gpufleet_worker.bench.serve_prefill_graphs
"""

from __future__ import annotations

import time

import torch

from ..config import LLAMA3_8B, EngineConfig
from ..engine.batch import StepInputs
from ..serve.__main__ import ServeConfig, build_runner
from .h200 import spread


def step(prompts: list[int], bs: int, gen: torch.Generator) -> StepInputs:
    ids, pos, slots, tables, samples, base = [], [], [], [], [], 0
    for n in prompts:
        table = list(range(base, base + -(-n // bs)))
        base += len(table)
        ids += torch.randint(0, 128000, (n,), generator=gen).tolist()
        pos += list(range(n))
        slots += [table[p // bs] * bs + p % bs for p in range(n)]
        tables.append(table)
        samples.append(len(ids) - 1)
    rids = [f"r{i}" for i in range(len(prompts))]
    return StepInputs("prefill", rids, ids, pos, slots, prompts, prompts, tables, samples, rids)


def main() -> None:
    t0 = time.time()
    engine = EngineConfig(num_blocks=4096, block_size=16, max_num_batched_tokens=2048)
    cfg = ServeConfig(LLAMA3_8B, "llama-3-8b", engine, "torch", "127.0.0.1", 0, "127.0.0.1", "", "", "", 1.0, 0, 60.0)
    runner = build_runner(cfg)
    print(
        f"runner built in {time.time() - t0:.1f} s: decode graphs {sorted(runner.graphs)}, prefill graphs "
        f"{sorted(runner.prefill_graphs)}, off: {runner.prefill_graphs_off}",
        flush=True,
    )
    gen = torch.Generator().manual_seed(5)
    graphs = runner.prefill_graphs
    for prompts in ([100], [65], [200], [300, 150], [40] * 8, [500]):
        inp = step(prompts, engine.block_size, gen)
        before = runner.prefill_graph_steps
        tokens_graph = runner.execute(inp)
        used = runner.prefill_graph_steps > before
        g1, g2 = spread(lambda inp=inp: runner.prefill_logits(inp), warmup=2, reps=15)
        runner.prefill_graphs = {}
        tokens_eager = runner.execute(inp)
        e1, e2 = spread(lambda inp=inp: runner.prefill_logits(inp), warmup=2, reps=15)
        runner.prefill_graphs = graphs
        print(
            f"prompts {prompts} ({sum(prompts)} tokens): graph used {used}, graph {min(g1, g2):.2f} ms, "
            f"eager {min(e1, e2):.2f} ms, same tokens {tokens_graph == tokens_eager}",
            flush=True,
        )


if __name__ == "__main__":
    main()
