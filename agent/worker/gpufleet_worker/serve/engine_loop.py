"""The engine thread: the only thread that touches the LLMEngine (and so the GPU). HTTP handlers and the agent
link hand it work through an inbox and read what it produced from per-request event queues and a load snapshot.

Each turn: run the inbox (new requests, aborts, KV exports and imports), expire KV held past its TTL, run one
engine step if there is work, then deliver new tokens to their requests' queues. A prefill-role request that got
its first token is held (its KV stays in the cache) until the decode side pulls it or the TTL passes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..config import ModelConfig
from ..engine.block_manager import blocks_for
from ..engine.llm_engine import LLMEngine
from ..engine.scheduler import RejectedError
from ..engine.sequence import SamplingParams, Sequence, SequenceStatus
from . import kv_wire


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """kind: "token" (one output token), "held" (prefill done; KV held for export), "finished", "aborted"."""

    kind: str
    token_id: int = -1
    finish_reason: str | None = None
    reason: str = ""


@dataclass(slots=True)
class RequestStream:
    seq: Sequence
    priority: str
    arrival_s: float
    events: queue.Queue = field(default_factory=queue.Queue)
    sent: int = 0  # output tokens already put on `events` (engine thread only)
    start_output_tokens: int = 0  # output tokens the request had when it arrived here (imported ones: >= 1)


@dataclass(slots=True)
class HeldKv:
    seq: Sequence | None  # None once exported (the bytes below are kept for a retried GET)
    header: kv_wire.KvHeader
    expires_s: float
    data: bytes | None = None


def runner_cache(runner: Any) -> Any:
    """The runner's KV cache array/tensor: its dtype and device are what imported payloads must become."""
    cache = getattr(runner, "kv_cache", None)
    return cache if cache is not None else runner.model.kv_cache


@dataclass(frozen=True, slots=True)
class LoadFields:
    queue_length: int
    running_requests: int
    kv_cache_used_fraction: float
    kv_cache_used_bytes: int
    ttft_ms: float
    tpot_ms: float
    tokens_per_second: float
    kv_blocks_total: int
    kv_blocks_used: int
    block_size_tokens: int
    waiting_demand_blocks: int
    head_of_line_demand_blocks: int
    preemptions_total: int
    held_kv_blocks: int
    outstanding_prompt_tokens: int
    high_priority_running: int


class EngineLoop:
    def __init__(
        self,
        engine: LLMEngine,
        model: ModelConfig,
        *,
        kv_ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine, self.model, self.kv_ttl_s, self.clock = engine, model, kv_ttl_s, clock
        self._inbox: queue.Queue[tuple[Callable[[], Any], Future]] = queue.Queue()
        self._streams: dict[str, RequestStream] = {}
        self._held: dict[str, HeldKv] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._ttft_ms = 0.0
        self._tpot_ms = 0.0
        self._tokens_window: list[tuple[float, int]] = []
        self._preemptions = 0
        self.steps = 0
        self.aborted_total = 0
        self.draining = False
        self._cache_dtype = kv_wire.payload_dtype(runner_cache(engine.runner))
        self._bytes_per_block = (
            kv_wire.DTYPE_BYTES[self._cache_dtype] * model.kv_bytes_per_token(1) * (engine.config.block_size)
        )
        self.load = self._snapshot()

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def call(self, fn: Callable[[], Any], timeout_s: float = 60.0) -> Any:
        """Runs fn on the engine thread between steps and returns its result (or raises its exception)."""
        fut: Future = Future()
        self._inbox.put((fn, fut))
        return fut.result(timeout_s)

    # --- work the HTTP API hands in (each runs on the engine thread through call) -------------------------------
    def add_request(self, request_id: str, prompt: list[int], max_tokens: int, priority: str) -> RequestStream:
        def add() -> RequestStream:
            seq = self.engine.add_request(request_id, prompt, SamplingParams(max_tokens=max_tokens))
            stream = RequestStream(seq, priority, self.clock())
            self._streams[request_id] = stream
            return stream

        return self.call(add)

    def abort(self, request_id: str, reason: str) -> bool:
        def drop() -> bool:
            seq = self.engine.scheduler.abort(request_id)
            stream = self._streams.pop(request_id, None)
            if stream is not None:
                stream.events.put(TokenEvent("aborted", reason=reason))
            held = self._held.pop(request_id, None)
            self.aborted_total += seq is not None
            return seq is not None or held is not None

        return self.call(drop)

    def abort_all(self, reason: str) -> int:
        def drop_all() -> int:
            ids = [s.request_id for s in (*self.engine.scheduler.waiting, *self.engine.scheduler.running)]
            for rid in ids:
                self.engine.scheduler.abort(rid)
                stream = self._streams.pop(rid, None)
                if stream is not None:
                    stream.events.put(TokenEvent("aborted", reason=reason))
            self.aborted_total += len(ids)
            return len(ids)

        return self.call(drop_all)

    def held_handle(self, request_id: str) -> HeldKv | None:
        return self.call(lambda: self._held.get(request_id))

    def export_held(self, request_id: str) -> bytes | None:
        """The wire bytes of a held request's KV (exported from the cache on the first pull); None when unknown."""

        def export() -> bytes | None:
            held = self._held.get(request_id)
            if held is None:
                return None
            if held.data is None:
                kv = self.engine.export_request(request_id)  # frees the request's blocks
                held.data = kv_wire.encode(held.header, kv.payload)
                held.seq = None
                held.expires_s = self.clock() + self.kv_ttl_s
            return held.data

        return self.call(export)

    def release_held(self, request_id: str) -> bool:
        def release() -> bool:
            held = self._held.pop(request_id, None)
            if held is not None and held.seq is not None:
                self.engine.scheduler.abort(request_id)
            return held is not None

        return self.call(release)

    def import_kv(self, data: bytes, priority: str) -> RequestStream:
        """Admits a request whose KV arrived from another worker; its stream starts after the tokens it has."""
        header, raw = kv_wire.decode(data)

        def admit() -> RequestStream:
            payload = kv_wire.payload_array(header, raw, runner_cache(self.engine.runner))
            seq = self.engine.import_request(kv_wire.to_export(header, payload))
            n = seq.num_output_tokens
            stream = RequestStream(seq, priority, self.clock(), sent=n, start_output_tokens=n)
            self._streams[seq.request_id] = stream
            return stream

        return self.call(admit)

    # --- the loop ---------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._run_inbox(block=not self.engine.scheduler.has_work)
            self._expire_held()
            if self.engine.scheduler.has_work:
                self._step()
            self.load = self._snapshot()

    def _run_inbox(self, block: bool) -> None:
        try:
            item = self._inbox.get(timeout=0.05) if block else self._inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            fn, fut = item
            try:
                fut.set_result(fn())
            except BaseException as err:  # handed back to the caller, who owns the error
                fut.set_exception(err)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _step(self) -> None:
        t0 = self.clock()
        result = self.engine.step()
        dt = self.clock() - t0
        self.steps += 1
        self._preemptions += len(result.preempted)
        produced = 0
        now = self.clock()
        for rid, stream in list(self._streams.items()):
            seq = stream.seq
            new = seq.num_output_tokens - stream.sent
            if new > 0 and stream.sent == 0:
                self._ttft_ms = (now - stream.arrival_s) * 1000
            for i in range(stream.sent, seq.num_output_tokens):
                stream.events.put(TokenEvent("token", seq.token_ids[seq.num_prompt_tokens + i]))
            stream.sent = seq.num_output_tokens
            produced += max(0, new)
            if seq.status == SequenceStatus.FINISHED:
                stream.events.put(TokenEvent("finished", finish_reason="length"))
                del self._streams[rid]
            elif seq.status == SequenceStatus.EXPORT_READY:
                self._hold(seq)
                stream.events.put(TokenEvent("held"))
                del self._streams[rid]
        if result.kind == "decode":
            self._tpot_ms = dt * 1000
        self._tokens_window.append((now, produced))

    def _hold(self, seq: Sequence) -> None:
        cfg = self.model
        header = kv_wire.KvHeader(
            seq.request_id,
            list(seq.token_ids),
            seq.num_prompt_tokens,
            len(seq.token_ids) - 1,
            seq.params.max_tokens,
            self.engine.config.block_size,
            self._cache_dtype,
            [cfg.layers, 2, len(seq.block_table), self.engine.config.block_size, cfg.kv_heads, cfg.head_dim],
        )
        self._held[seq.request_id] = HeldKv(seq, header, self.clock() + self.kv_ttl_s)

    def _expire_held(self) -> None:
        now = self.clock()
        for rid in [r for r, h in self._held.items() if h.expires_s <= now]:
            held = self._held.pop(rid)
            if held.seq is not None:
                self.engine.scheduler.abort(rid)

    def _snapshot(self) -> LoadFields:
        sched = self.engine.scheduler
        bm = sched.block_manager
        bs = self.engine.config.block_size
        now = self.clock()
        self._tokens_window = [(t, n) for t, n in self._tokens_window if now - t <= 1.0]
        span = now - self._tokens_window[0][0] if len(self._tokens_window) > 1 else 0.0
        tps = sum(n for _, n in self._tokens_window) / span if span > 0 else 0.0
        demand = [blocks_for(len(s), bs) for s in sched.waiting]
        held_blocks = sum(len(h.seq.block_table) for h in self._held.values() if h.seq is not None)
        prefilling = [s for s in sched.running if s.is_prefilling]
        high = sum(1 for s in self._streams.values() if s.priority == "high")
        return LoadFields(
            queue_length=len(sched.waiting),
            running_requests=len(sched.running),
            kv_cache_used_fraction=bm.num_used_blocks / bm.num_blocks,
            kv_cache_used_bytes=bm.num_used_blocks * self._bytes_per_block,
            ttft_ms=self._ttft_ms,
            tpot_ms=self._tpot_ms,
            tokens_per_second=tps,
            kv_blocks_total=bm.num_blocks,
            kv_blocks_used=bm.num_used_blocks,
            block_size_tokens=bs,
            waiting_demand_blocks=sum(demand),
            head_of_line_demand_blocks=demand[0] if demand else 0,
            preemptions_total=self._preemptions,
            held_kv_blocks=held_blocks,
            outstanding_prompt_tokens=sum(len(s) for s in sched.waiting)
            + sum(s.num_prompt_tokens - min(s.num_computed_tokens, s.num_prompt_tokens) for s in prefilling),
            high_priority_running=high,
        )


__all__ = ["EngineLoop", "LoadFields", "RejectedError", "RequestStream", "TokenEvent"]
