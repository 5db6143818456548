"""The training rank's torch-free parts: collective timing records, checkpoint placement, the resume step."""

import pytest

from gpufleet_worker.protocol.client import build_collectives
from gpufleet_worker.train.checkpoint import (
    ResumeError,
    checkpoint_path,
    commit_checkpoint,
    existing_checkpoint,
    is_due,
    resume_step,
    write_atomic,
)
from gpufleet_worker.train.recorder import CollectiveRecorder, communicator_id


def test_each_collective_gets_the_next_sequence_and_this_ranks_entry_and_exit_times() -> None:
    ticks = iter([100, 250, 300, 420])
    rec = CollectiveRecorder("c0ffee", rank=1, n_ranks=4, clock_us=lambda: next(ticks))
    calls: list[int] = []
    assert rec.record("AllReduce", 4096, lambda: calls.append(1) or "out") == "out"
    rec.record("AllGather", 1024, lambda: calls.append(2))
    records = rec.drain()
    assert calls == [1, 2]
    assert [(r.sequence, r.collective, r.nbytes, r.start_unix_us, r.end_unix_us) for r in records] == [
        (0, "AllReduce", 4096, 100, 250),
        (1, "AllGather", 1024, 300, 420),
    ]
    assert all((r.rank, r.n_ranks, r.communicator) == (1, 4, "c0ffee") for r in records)
    assert rec.drain() == []
    batch = build_collectives("w/1", records)  # what the agent validates: well-formed
    assert [r.sequence for r in batch.records] == [0, 1]


def test_a_full_buffer_keeps_the_newest_records_and_counts_the_dropped() -> None:
    rec = CollectiveRecorder("c", 0, 2, clock_us=lambda: 5, max_buffered=3)
    for _ in range(5):
        rec.record("AllReduce", 8, lambda: None)
    assert [r.sequence for r in rec.drain()] == [2, 3, 4]
    assert (rec.dropped, rec.total) == (2, 5)


def test_bad_rank_or_collective_is_refused() -> None:
    with pytest.raises(ValueError, match="rank 2 outside 2"):
        CollectiveRecorder("c", 2, 2)
    with pytest.raises(ValueError, match="unknown collective"):
        CollectiveRecorder("c", 0, 2).record("AllToSome", 1, lambda: None)


def test_communicator_id_is_stable_per_job_group_and_size() -> None:
    assert communicator_id("ns/job", "dp", 8) == communicator_id("ns/job", "dp", 8)
    assert (
        len({communicator_id("ns/job", "dp", 8), communicator_id("ns/job", "dp", 4), communicator_id("ns/j2", "dp", 8)})
        == 3
    )


@pytest.mark.parametrize(
    ("step", "interval", "due"), [(0, 5, False), (5, 5, True), (7, 5, False), (10, 5, True), (5, 0, False)]
)
def test_checkpoint_is_due_every_interval(step: int, interval: int, due: bool) -> None:
    assert is_due(step, interval) is due


def test_resume_step_from_the_operator(tmp_path) -> None:
    assert resume_step({}) == 0
    assert resume_step({"GPUFLEET_RESUME_STEP": "40"}) == 40
    with pytest.raises(ResumeError, match="non-negative integer"):
        resume_step({"GPUFLEET_RESUME_STEP": "-3"})
    with pytest.raises(ResumeError, match="no checkpoint at"):
        existing_checkpoint(tmp_path, 40, 0)


def test_checkpoint_written_atomically_at_its_place(tmp_path) -> None:
    path = checkpoint_path(tmp_path, 30, 1)
    assert path == tmp_path / "step-00000030" / "rank-1.pt"
    write_atomic(path, b"state")
    assert path.read_bytes() == b"state"
    assert existing_checkpoint(tmp_path, 30, 1) == path
    assert [p.name for p in path.parent.iterdir()] == ["rank-1.pt"]  # no temporary file left


def test_a_checkpoint_is_reported_only_after_every_rank_wrote_it() -> None:
    calls: list[str] = []
    commit_checkpoint(lambda: calls.append("write"), lambda: calls.append("barrier"), lambda: calls.append("report"))
    assert calls == ["write", "barrier", "report"]


def test_a_rank_killed_mid_checkpoint_leaves_the_step_unreported(tmp_path) -> None:
    # Another rank never reaches the barrier (killed while writing its file): the barrier fails, nothing is reported.
    reported: list[int] = []

    def barrier() -> None:
        raise RuntimeError("rank 1 is gone: the barrier timed out")

    with pytest.raises(RuntimeError, match="barrier"):
        commit_checkpoint(
            lambda: write_atomic(checkpoint_path(tmp_path, 30, 0), b"state"), barrier, lambda: reported.append(30)
        )
    assert reported == []
    assert checkpoint_path(tmp_path, 30, 0).read_bytes() == b"state"  # this rank's file, whole but not committed
