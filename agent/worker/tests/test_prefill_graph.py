"""Which prefill steps the torch runner replays as a CUDA graph: pure logic over the step's inputs, run on CPU."""

import pytest

from gpufleet_worker.config import EngineConfig, InvalidConfigError
from gpufleet_worker.engine.batch import prefill_graph_tokens, prepare_step
from gpufleet_worker.engine.scheduler import Scheduler
from gpufleet_worker.engine.sequence import SamplingParams, Sequence


def steps_of(prompts: list[int], budget: int) -> list:
    s = Scheduler(EngineConfig(64, block_size=4, max_num_seqs=8, max_num_batched_tokens=budget))
    for i, n in enumerate(prompts):
        s.add(Sequence.from_prompt(f"r{i}", list(range(1, n + 1)), SamplingParams(max_tokens=2)))
    out = []
    while s.has_work and len(out) < 20:
        o = s.schedule()
        out.append(prepare_step(o, 4))
        s.postprocess(o, {x.seq.request_id: 7 for x in o.scheduled if x.sample})
    return out


def test_a_small_step_rounds_up_to_its_bucket() -> None:
    first = steps_of([5, 9], budget=64)[0]
    assert (first.kind, len(first.token_ids)) == ("prefill", 14)
    assert prefill_graph_tokens(first, token_step=8, max_tokens=64, max_prompts=4) == 16
    assert prefill_graph_tokens(first, token_step=7, max_tokens=63, max_prompts=4) == 14


def test_too_many_tokens_or_prompts_run_eager() -> None:
    first = steps_of([5, 9, 3], budget=64)[0]
    assert prefill_graph_tokens(first, token_step=8, max_tokens=16, max_prompts=4) is None  # 17 tokens
    assert prefill_graph_tokens(first, token_step=8, max_tokens=64, max_prompts=2) is None  # 3 prompts
    assert prefill_graph_tokens(first, token_step=8, max_tokens=0, max_prompts=4) is None  # graphs off


def test_a_chunk_with_a_cached_prefix_and_a_decode_step_run_eager() -> None:
    steps = steps_of([20], budget=8)  # chunks of 8, 8, 4, then decode
    assert [s.kind for s in steps[:4]] == ["prefill", "prefill", "prefill", "decode"]
    assert prefill_graph_tokens(steps[0], 8, 64, 4) == 8  # the first chunk has no prefix
    assert prefill_graph_tokens(steps[1], 8, 64, 4) is None  # its attention reads 8 cached tokens
    assert prefill_graph_tokens(steps[3], 8, 64, 4) is None


def test_graph_limits_are_validated() -> None:
    with pytest.raises(InvalidConfigError, match="multiple of prefill_graph_token_step"):
        EngineConfig(64, prefill_graph_max_tokens=100, prefill_graph_token_step=64)
    with pytest.raises(InvalidConfigError, match="prefill_graph_max_prompts"):
        EngineConfig(64, prefill_graph_max_prompts=0)
    assert EngineConfig(64, prefill_graph_max_tokens=0).prefill_graph_max_tokens == 0
