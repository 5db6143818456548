"""Two training ranks on CPU with gloo, as processes, reporting to a recording agent over its Unix socket: every
collective timed and reported, checkpoints every interval, and a run resumed from GPUFLEET_RESUME_STEP ending with
the same parameters as the uninterrupted one. Needs torch (the GPU machine has it; CI installs none: skipped)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_protocol import RecordingAgent, agent_socket  # noqa: F401 (the fixture)

pytest.importorskip("torch", reason="torch is not installed (CI installs no torch wheels; the GPU machine has it)")

from gpufleet_worker.protocol.generated import worker_pb2 as pb

WORKER_DIR = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(sock: str, ckpt: Path, steps: int, resume: int = 0) -> list[dict]:
    port = free_port()
    procs = []
    for rank in range(2):
        env = os.environ | {
            "GPUFLEET_AGENT_SOCKET": sock,
            "POD_NAMESPACE": "train",
            "POD_NAME": f"job-{rank}",
            "POD_UID": f"uid-{rank}",
            "NODE_NAME": "n1",
            "RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "GPUFLEET_RESUME_STEP": str(resume),
        }
        args = ["--backend", "gloo", "--steps", str(steps), "--hidden", "32", "--layers", "2", "--batch", "8"]
        args += ["--report-every", "2", "--checkpoint-dir", str(ckpt), "--checkpoint-interval", "3"]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "gpufleet_worker.train", *args], cwd=WORKER_DIR, env=env, stdout=subprocess.PIPE
            )
        )
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    return [json.loads(o.decode().strip().splitlines()[-1]) for o in outs]


def test_two_gloo_ranks_report_every_collective_and_checkpoint_and_resume_to_the_same_state(
    agent_socket,  # noqa: F811
    tmp_path,
) -> None:
    agent = RecordingAgent()
    sock = agent_socket(agent)
    full = run_ranks(sock, tmp_path / "a", steps=6)
    assert [d["collectives"] for d in full] == [6, 6] and [d["backend"] for d in full] == ["gloo", "gloo"]
    assert full[0]["param_sum"] == full[1]["param_sum"]  # data parallel: the same model on both ranks
    records = [r for m in agent.received if isinstance(m, pb.CollectiveBatch) for r in m.records]
    by_rank = {rank: sorted(r.sequence for r in records if r.rank == rank) for rank in (0, 1)}
    assert by_rank == {0: list(range(6)), 1: list(range(6))}
    assert all(r.collective == "AllReduce" and r.n_ranks == 2 and r.end_unix_us >= r.start_unix_us for r in records)
    assert len({r.communicator for r in records}) == 1
    ckpts = sorted((m.worker_id, m.step) for m in agent.received if isinstance(m, pb.CheckpointReport))
    assert ckpts == [("uid-0/0", 3), ("uid-0/0", 6), ("uid-1/1", 3), ("uid-1/1", 6)]
    registered = [m for m in agent.received if isinstance(m, pb.RegisterRequest)]
    assert sorted((m.kind, m.rank, m.world_size) for m in registered) == [("training", 0, 2), ("training", 1, 2)]

    # Restarted from step 3's checkpoints (as the operator would after a fault): the same end state at step 6.
    import shutil

    shutil.copytree(tmp_path / "a", tmp_path / "b")
    resumed = run_ranks(sock, tmp_path / "b", steps=6, resume=3)
    assert [d["first_step"] for d in resumed] == [4, 4] and [d["collectives"] for d in resumed] == [3, 3]
    assert resumed[0]["param_sum"] == pytest.approx(full[0]["param_sum"], rel=1e-6)
