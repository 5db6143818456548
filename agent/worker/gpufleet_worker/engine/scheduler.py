"""Which sequences run in the next step (continuous batching, nano-vllm's scheduler with vLLM's chunked prefill).

Each step is either a prefill step or a decode step:
- prefill: sequences whose prompt still lacks KV (partly prefilled ones first, then the waiting queue in arrival
  order) get chunks of their uncomputed tokens until `max_num_batched_tokens` is spent; a prompt longer than the
  budget is split across steps (chunked prefill), and a chunk shrinks to the blocks that are free;
- decode: otherwise, every running sequence computes its one newest token. When a sequence needs a new block and
  none is free, the most recently admitted running sequence is preempted (its blocks freed, its tokens kept; it is
  recomputed by a later prefill), as nano-vllm and vLLM's recompute preemption do.
Roles: `colocated` does both; `prefill` stops a sequence after its first token and holds it (EXPORT_READY) until
its KV has been exported; `decode` accepts no prompts, only imported sequences (it still recomputes the ones it
preempted). No tensors here: the output names sequences and token counts, the model runner does the rest.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..config import EngineConfig
from .block_manager import BlockManager
from .sequence import Sequence, SequenceStatus


class RejectedError(ValueError):
    """A request this engine cannot take (wrong role, too long for the cache, duplicate id)."""


@dataclass(frozen=True, slots=True)
class ScheduledSeq:
    seq: Sequence
    num_new_tokens: int  # tokens [seq.num_computed_tokens, + num_new_tokens) get KV this step
    sample: bool  # the chunk reaches the sequence's last token, so a next token is sampled


@dataclass(slots=True)
class SchedulerOutput:
    kind: str  # "prefill" | "decode" | "idle"
    scheduled: list[ScheduledSeq] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return sum(s.num_new_tokens for s in self.scheduled)


class Scheduler:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.block_manager = BlockManager(config.num_blocks, config.block_size)
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []  # ordered by admission (arrival_index)
        self.export_ready: dict[str, Sequence] = {}
        self._ids: set[str] = set()
        self._admissions = 0

    # --- admission -------------------------------------------------------------------------------------------
    def add(self, seq: Sequence) -> None:
        if self.config.role == "decode":
            raise RejectedError(f"request {seq.request_id}: a decode worker takes requests only by KV import")
        self._check_new(seq)
        self._ids.add(seq.request_id)
        self.waiting.append(seq)

    def add_imported(self, seq: Sequence, num_computed_tokens: int) -> list[int]:
        """Admits a sequence whose KV for its first num_computed_tokens arrives by import; returns its block table."""
        if self.config.role == "prefill":
            raise RejectedError(f"request {seq.request_id}: a prefill worker does not import KV")
        if not 0 < num_computed_tokens <= len(seq):
            raise RejectedError(f"request {seq.request_id}: {num_computed_tokens} computed of {len(seq)} tokens")
        if len(self.running) >= self.config.max_num_seqs:
            raise RejectedError(f"request {seq.request_id}: {len(self.running)} sequences already running")
        self._check_new(seq)
        need = self.block_manager.blocks_needed(seq, num_computed_tokens)
        if not self.block_manager.can_allocate(need):
            raise RejectedError(
                f"request {seq.request_id}: import needs {need} blocks, {self.block_manager.num_free_blocks} free"
            )
        self.block_manager.ensure_capacity(seq, num_computed_tokens)
        seq.num_computed_tokens = num_computed_tokens
        self._ids.add(seq.request_id)
        self._admit(seq)
        return list(seq.block_table)

    def _check_new(self, seq: Sequence) -> None:
        if seq.request_id in self._ids:
            raise RejectedError(f"request {seq.request_id} is already in this engine")
        longest = len(seq) + seq.params.max_tokens
        capacity = self.config.num_blocks * self.config.block_size
        if longest > capacity:
            raise RejectedError(f"request {seq.request_id}: {longest} tokens exceed the cache's {capacity}")

    def _admit(self, seq: Sequence) -> None:
        seq.status = SequenceStatus.RUNNING
        self._admissions += 1
        seq.arrival_index = self._admissions
        self.running.append(seq)

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    # --- one step ----------------------------------------------------------------------------------------------
    def schedule(self) -> SchedulerOutput:
        preempted: list[Sequence] = []
        while True:
            out = self._schedule_prefill()
            if not out.scheduled:
                out = self._schedule_decode()
            out.preempted[:0] = preempted
            stalled = [s for s in self.running if s.is_prefilling]
            # Partly prefilled sequences can hold every block between them with none decoding: free the latest.
            if out.scheduled or not stalled:
                return out
            preempted.append(self._preempt(stalled[-1]))

    def _schedule_prefill(self) -> SchedulerOutput:
        out = SchedulerOutput("prefill")
        budget = self.config.max_num_batched_tokens
        bm = self.block_manager
        for seq in [s for s in self.running if s.is_prefilling]:
            n = self._fit_chunk(seq, budget)
            if n == 0:
                break
            bm.ensure_capacity(seq, seq.num_computed_tokens + n)
            out.scheduled.append(ScheduledSeq(seq, n, seq.num_computed_tokens + n == len(seq)))
            budget -= n
        while self.waiting and budget > 0 and len(self.running) < self.config.max_num_seqs:
            seq = self.waiting[0]
            n = self._fit_chunk(seq, budget)
            if n == 0:
                break
            self.waiting.popleft()
            bm.ensure_capacity(seq, n)
            self._admit(seq)
            out.scheduled.append(ScheduledSeq(seq, n, n == len(seq)))
            budget -= n
        return out

    def _fit_chunk(self, seq: Sequence, budget: int) -> int:
        """Tokens of seq that fit both the token budget and the free blocks."""
        bs = self.config.block_size
        room = (len(seq.block_table) + self.block_manager.num_free_blocks) * bs - seq.num_computed_tokens
        return max(0, min(seq.num_uncomputed_tokens, budget, room))

    def _schedule_decode(self) -> SchedulerOutput:
        out = SchedulerOutput("decode")
        bm = self.block_manager
        for seq in [s for s in self.running if not s.is_prefilling]:
            if seq not in self.running:  # preempted for an earlier one this step
                continue
            need = bm.blocks_needed(seq, len(seq))
            while not bm.can_allocate(need) and self.running[-1] is not seq:
                out.preempted.append(self._preempt(self.running[-1]))
            if not bm.can_allocate(need):
                out.preempted.append(self._preempt(seq))
                break
            bm.ensure_capacity(seq, len(seq))
            out.scheduled.append(ScheduledSeq(seq, 1, True))
        if not out.scheduled:
            out.kind = "idle"
        return out

    def _preempt(self, seq: Sequence) -> Sequence:
        self.running.remove(seq)
        self.block_manager.free(seq)
        seq.status = SequenceStatus.WAITING
        self.waiting.appendleft(seq)
        return seq

    # --- after the model ran -----------------------------------------------------------------------------------
    def postprocess(self, out: SchedulerOutput, sampled: dict[str, int]) -> list[Sequence]:
        """Advances KV counts, appends sampled tokens; returns the sequences that finished this step."""
        finished: list[Sequence] = []
        for item in out.scheduled:
            seq = item.seq
            seq.num_computed_tokens += item.num_new_tokens
            if not item.sample:
                continue
            seq.append_token(sampled[seq.request_id])
            if seq.is_done():
                self.running.remove(seq)
                self.block_manager.free(seq)
                seq.status = SequenceStatus.FINISHED
                self._ids.discard(seq.request_id)
                finished.append(seq)
            elif self.config.role == "prefill":
                self.running.remove(seq)
                seq.status = SequenceStatus.EXPORT_READY
                self.export_ready[seq.request_id] = seq
        return finished

    # --- cancellation ---------------------------------------------------------------------------------------
    def abort(self, request_id: str) -> Sequence | None:
        """Drops a request wherever it is (waiting, running, held for export) and frees its blocks; None if unknown."""
        seq = next((s for s in self.waiting if s.request_id == request_id), None)
        if seq is not None:
            self.waiting.remove(seq)
        else:
            seq = next((s for s in self.running if s.request_id == request_id), None)
            if seq is not None:
                self.running.remove(seq)
            else:
                seq = self.export_ready.pop(request_id, None)
        if seq is None:
            return None
        self.block_manager.free(seq)
        seq.status = SequenceStatus.FINISHED
        self._ids.discard(request_id)
        return seq

    # --- export (P/D hand-off, migration) --------------------------------------------------------------------
    def begin_export(self, request_id: str) -> tuple[Sequence, list[int]]:
        """Takes a sequence out of scheduling and pins the blocks holding its KV; finish_export lets them go."""
        seq = self.export_ready.pop(request_id, None)
        if seq is None:
            seq = next((s for s in self.running if s.request_id == request_id and not s.is_prefilling), None)
            if seq is None:
                raise RejectedError(f"request {request_id} has no complete KV to export here")
            self.running.remove(seq)
        seq.status = SequenceStatus.EXPORT_READY
        return seq, self.block_manager.fork_for_export(seq)

    def finish_export(self, seq: Sequence, pinned: list[int]) -> None:
        self.block_manager.release(pinned)
        self.block_manager.free(seq)
        seq.status = SequenceStatus.FINISHED
        self._ids.discard(seq.request_id)
