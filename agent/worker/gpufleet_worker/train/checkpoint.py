"""Checkpoint placement and the resume step the operator passes (GPUFLEET_RESUME_STEP); torch-free.

A checkpoint of step N is one file per rank, `<dir>/step-<N>/rank-<r>.pt`, written to a temporary name, fsynced
and renamed, so a reader never sees half a file. The step is complete only once every rank's file is there: each
rank reports it after a barrier that follows its own write (commit_checkpoint), so a report, from any rank, means
every rank's file is durable. A rank killed mid-write never reaches the barrier, no rank reports step N, and the
operator (which resumes from the highest step reported) restarts the job from the previous complete checkpoint.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


class ResumeError(ValueError):
    """GPUFLEET_RESUME_STEP is malformed, or names a checkpoint that is not there."""


def checkpoint_path(directory: Path, step: int, rank: int) -> Path:
    return directory / f"step-{step:08d}" / f"rank-{rank}.pt"


def is_due(step: int, interval: int) -> bool:
    return interval > 0 and step > 0 and step % interval == 0


def resume_step(env: dict[str, str]) -> int:
    """The step whose checkpoint to load (0: start fresh). The job continues with the step after it."""
    text = env.get("GPUFLEET_RESUME_STEP", "").strip()
    if text == "":
        return 0
    if not text.isdigit():
        raise ResumeError(f"GPUFLEET_RESUME_STEP must be a non-negative integer, got {text!r}")
    return int(text)


def existing_checkpoint(directory: Path, step: int, rank: int) -> Path:
    path = checkpoint_path(directory, step, rank)
    if not path.is_file():
        raise ResumeError(f"GPUFLEET_RESUME_STEP={step}: no checkpoint at {path}")
    return path


def commit_checkpoint(write: Callable[[], None], barrier: Callable[[], None], report: Callable[[], None]) -> None:
    """This rank's file, then the barrier every rank passes only after its own write, then the report."""
    write()
    barrier()
    report()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
