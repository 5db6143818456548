import pytest

from gpufleet_worker.config import EngineConfig, InvalidConfigError
from gpufleet_worker.engine.scheduler import RejectedError, Scheduler
from gpufleet_worker.engine.sequence import SamplingParams, Sequence, SequenceStatus


def make(role: str = "colocated", num_blocks: int = 64, budget: int = 64, max_seqs: int = 8) -> Scheduler:
    return Scheduler(
        EngineConfig(num_blocks, block_size=4, max_num_seqs=max_seqs, max_num_batched_tokens=budget, role=role)
    )


def req(rid: str, n: int, max_tokens: int = 4) -> Sequence:
    return Sequence.from_prompt(rid, list(range(1, n + 1)), SamplingParams(max_tokens=max_tokens))


def step(s: Scheduler, token: int = 7):
    out = s.schedule()
    s.postprocess(out, {x.seq.request_id: token for x in out.scheduled if x.sample})
    return out


def test_chunked_prefill_splits_a_long_prompt_over_the_token_budget() -> None:
    s = make(budget=8)
    s.add(req("a", 20))
    chunks = [
        (o.kind, [(x.seq.request_id, x.num_new_tokens, x.sample) for x in o.scheduled])
        for o in [step(s) for _ in range(4)]
    ]
    assert chunks == [
        ("prefill", [("a", 8, False)]),
        ("prefill", [("a", 8, False)]),
        ("prefill", [("a", 4, True)]),
        ("decode", [("a", 1, True)]),
    ]
    assert len(s.running[0]) == 22 and s.running[0].num_computed_tokens == 21


def test_prefill_fills_the_budget_across_requests_then_decodes_all_together() -> None:
    s = make(budget=10)
    for rid, n in [("a", 6), ("b", 6), ("c", 3)]:
        s.add(req(rid, n))
    first = s.schedule()
    assert [(x.seq.request_id, x.num_new_tokens) for x in first.scheduled] == [("a", 6), ("b", 4)]
    s.postprocess(first, {"a": 1})
    second = step(s)
    assert [(x.seq.request_id, x.num_new_tokens) for x in second.scheduled] == [("b", 2), ("c", 3)]
    third = step(s)
    assert third.kind == "decode" and [x.seq.request_id for x in third.scheduled] == ["a", "b", "c"]


def test_decode_preempts_the_latest_admitted_when_blocks_run_out() -> None:
    s = make(num_blocks=4, budget=64)  # 16 token slots
    s.add(req("a", 8, max_tokens=8))
    s.add(req("b", 8, max_tokens=8))
    step(s)  # both prefilled: 4 blocks in use, each has 9 tokens and needs a third block to decode
    assert s.block_manager.num_free_blocks == 0
    out = step(s)
    assert [p.request_id for p in out.preempted] == ["b"]
    assert [x.seq.request_id for x in out.scheduled] == ["a"]
    b = s.waiting[0]
    assert (b.request_id, b.status, b.block_table, b.num_computed_tokens, len(b)) == (
        "b",
        SequenceStatus.WAITING,
        [],
        0,
        9,
    )
    assert s.block_manager.num_free_blocks == 1


def test_a_preempted_sequence_is_recomputed_with_its_generated_tokens_and_finishes() -> None:
    s = make(num_blocks=4, budget=64)
    s.add(req("a", 8, max_tokens=8))
    s.add(req("b", 8, max_tokens=8))
    finished = []
    for _ in range(40):
        out = s.schedule()
        finished += s.postprocess(out, {x.seq.request_id: 7 for x in out.scheduled if x.sample})
        if not s.has_work:
            break
    assert sorted(f.request_id for f in finished) == ["a", "b"]
    assert all(f.num_output_tokens == 8 for f in finished)
    assert s.block_manager.num_free_blocks == 4


def test_prefill_role_holds_sequences_for_export_after_the_first_token() -> None:
    s = make(role="prefill")
    s.add(req("a", 5))
    step(s)
    assert s.running == [] and list(s.export_ready) == ["a"]
    seq, pinned = s.begin_export("a")
    assert len(pinned) == 2 and s.block_manager.num_used_blocks == 2
    s.finish_export(seq, pinned)
    assert s.block_manager.num_free_blocks == 64 and seq.status == SequenceStatus.FINISHED
    assert s.schedule().kind == "idle"


def test_decode_role_takes_only_imports_and_decodes_them() -> None:
    s = make(role="decode")
    with pytest.raises(RejectedError, match="only by KV import"):
        s.add(req("a", 5))
    seq = Sequence("a", [1, 2, 3, 4, 5, 9], 5, SamplingParams(max_tokens=3))
    table = s.add_imported(seq, 5)
    assert len(table) == 2
    out = s.schedule()
    assert out.kind == "decode" and [(x.seq.request_id, x.num_new_tokens) for x in out.scheduled] == [("a", 1)]


def test_rejections_name_the_reason() -> None:
    s = make(num_blocks=2)
    with pytest.raises(RejectedError, match="exceed the cache's 8"):
        s.add(req("big", 6, max_tokens=4))
    s.add(req("a", 2))
    with pytest.raises(RejectedError, match="already in this engine"):
        s.add(req("a", 2))
    with pytest.raises(RejectedError, match="does not import"):
        make(role="prefill").add_imported(req("x", 2), 2)
    with pytest.raises(InvalidConfigError, match="role must be one of"):
        EngineConfig(4, role="both")


def test_max_num_seqs_bounds_admission() -> None:
    s = make(max_seqs=2)
    for rid in "abc":
        s.add(req(rid, 2))
    out = s.schedule()
    assert [x.seq.request_id for x in out.scheduled] == ["a", "b"] and len(s.waiting) == 1


def test_two_prompts_larger_together_than_the_cache_both_complete() -> None:
    s = make(num_blocks=4, budget=8)  # 16 slots; two 10-token prompts fit one at a time
    s.add(req("a", 10, max_tokens=1))
    s.add(req("b", 10, max_tokens=1))
    finished = []
    for _ in range(20):
        out = s.schedule()
        assert out.kind != "idle" or not s.has_work
        finished += s.postprocess(out, {x.seq.request_id: 3 for x in out.scheduled if x.sample})
        if not s.has_work:
            break
    assert sorted(f.request_id for f in finished) == ["a", "b"]
    assert s.block_manager.num_free_blocks == 4


def test_partial_prefills_holding_every_block_free_the_latest_instead_of_stalling() -> None:
    s = make(num_blocks=4, budget=8)
    a, b = req("a", 10), req("b", 10)
    for seq in (a, b):  # both half prefilled, holding all four blocks between them, nothing to decode
        s._admit(seq)
        s.block_manager.ensure_capacity(seq, 8)
        seq.num_computed_tokens = 8
    assert s.block_manager.num_free_blocks == 0
    out = s.schedule()
    assert [p.request_id for p in out.preempted] == ["b"]
    assert (out.kind, [(x.seq.request_id, x.num_new_tokens, x.sample) for x in out.scheduled]) == (
        "prefill",
        [("a", 2, True), ("b", 4, False)],  # b restarts from its first token in the block a left free
    )
    assert (b.num_computed_tokens, len(b.block_table), s.block_manager.num_free_blocks) == (0, 1, 0)
