"""Times collectives as one rank sees them and turns them into the worker protocol's CollectiveRecords.

Each call runs the collective to completion (the caller's `run` waits for it: a blocking gloo call, or NCCL work
plus a stream synchronize), so start and end are when this rank entered and left it: what C4D compares across
ranks. Sequence numbers count per communicator from 0, as NCCL's own do; torch-free, so CI tests it on CPU.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from ..protocol.client import COLLECTIVES, Collective


def communicator_id(job: str, group: str, world_size: int) -> str:
    """A stable hex id for a job's process group (NCCL's commHash plays this part in the profiler plugin)."""
    return hashlib.sha256(f"{job}/{group}/{world_size}".encode()).hexdigest()[:16]


class CollectiveRecorder:
    def __init__(
        self,
        communicator: str,
        rank: int,
        n_ranks: int,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
        max_buffered: int = 100_000,
    ) -> None:
        if not 0 <= rank < n_ranks:
            raise ValueError(f"rank {rank} outside {n_ranks} ranks")
        self.communicator, self.rank, self.n_ranks, self.clock_us = communicator, rank, n_ranks, clock_us
        self.max_buffered = max_buffered
        self._sequence = 0
        self._records: list[Collective] = []
        self.dropped = 0
        self.total = 0

    def record(self, collective: str, nbytes: int, run: Callable[[], object]) -> object:
        """Runs `run` (which must return only once the collective completed on this rank) and records it."""
        if collective not in COLLECTIVES:
            raise ValueError(f"unknown collective {collective!r}")
        start = self.clock_us()
        result = run()
        end = max(self.clock_us(), start)
        rec = Collective(self.communicator, self.rank, self.n_ranks, collective, self._sequence, nbytes, start, end)
        self._sequence += 1
        self.total += 1
        if len(self._records) >= self.max_buffered:  # the agent is away: keep the newest, count the loss
            self._records.pop(0)
            self.dropped += 1
        self._records.append(rec)
        return result

    def drain(self) -> list[Collective]:
        out, self._records = self._records, []
        return out
