"""The engine loop (nano-vllm's llm_engine.py): schedule, prepare inputs, run the model, sample, post-process.

The runner is the only part that touches tensors; anything with `execute`, `export_blocks` and `import_blocks`
serves (the numpy runner on CPU, the torch runner on a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..config import EngineConfig
from .batch import prepare_step
from .scheduler import Scheduler, SchedulerOutput
from .sequence import SamplingParams, Sequence


class ModelRunner(Protocol):
    def execute(self, inp: Any) -> list[int]: ...
    def export_blocks(self, blocks: list[int]) -> Any: ...
    def import_blocks(self, blocks: list[int], payload: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class KVExport:
    """One request's state and KV, as the P/D hand-off or a migration carries it to another worker."""

    request_id: str
    token_ids: list[int]
    num_prompt_tokens: int
    num_computed_tokens: int
    params: SamplingParams
    block_size: int
    payload: Any  # [layers, 2, num_blocks_of_request, block_size, kv_heads, head_dim]


@dataclass(frozen=True, slots=True)
class StepResult:
    kind: str
    num_tokens: int
    finished: list[Sequence]
    preempted: list[str]


@dataclass(frozen=True, slots=True)
class LoadSnapshot:
    queue_length: int
    running_requests: int
    kv_cache_used_fraction: float
    kv_cache_used_blocks: int


class LLMEngine:
    def __init__(self, config: EngineConfig, runner: ModelRunner) -> None:
        self.config = config
        self.runner = runner
        self.scheduler = Scheduler(config)

    def add_request(self, request_id: str, prompt: list[int], params: SamplingParams | None = None) -> Sequence:
        seq = Sequence.from_prompt(request_id, prompt, params)
        self.scheduler.add(seq)
        return seq

    def step(self) -> StepResult:
        out: SchedulerOutput = self.scheduler.schedule()
        sampled: dict[str, int] = {}
        if out.scheduled:
            inp = prepare_step(out, self.config.block_size)
            tokens = self.runner.execute(inp)
            sampled = dict(zip(inp.sample_request_ids, tokens, strict=True))
        finished = self.scheduler.postprocess(out, sampled)
        return StepResult(out.kind, out.num_tokens, finished, [s.request_id for s in out.preempted])

    def run_until_idle(self, max_steps: int = 100_000) -> list[Sequence]:
        done: list[Sequence] = []
        for _ in range(max_steps):
            if not self.scheduler.has_work:
                return done
            done.extend(self.step().finished)
        raise RuntimeError(f"engine still busy after {max_steps} steps")

    def export_request(self, request_id: str) -> KVExport:
        seq, pinned = self.scheduler.begin_export(request_id)
        try:
            payload = self.runner.export_blocks(pinned)
        finally:
            self.scheduler.finish_export(seq, pinned)
        return KVExport(
            seq.request_id,
            list(seq.token_ids),
            seq.num_prompt_tokens,
            len(seq.token_ids) - 1,
            seq.params,
            self.config.block_size,
            payload,
        )

    def import_request(self, kv: KVExport) -> Sequence:
        if kv.block_size != self.config.block_size:
            raise ValueError(
                f"request {kv.request_id}: block size {kv.block_size}, this engine uses {self.config.block_size}"
            )
        seq = Sequence(kv.request_id, list(kv.token_ids), kv.num_prompt_tokens, kv.params)
        blocks = self.scheduler.add_imported(seq, kv.num_computed_tokens)
        self.runner.import_blocks(blocks, kv.payload)
        return seq

    def load(self) -> LoadSnapshot:
        bm = self.scheduler.block_manager
        return LoadSnapshot(
            len(self.scheduler.waiting),
            len(self.scheduler.running),
            bm.num_used_blocks / bm.num_blocks,
            bm.num_used_blocks,
        )
