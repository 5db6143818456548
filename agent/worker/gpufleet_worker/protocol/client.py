"""The worker's side of the worker protocol: message builders (pure) and `WorkerAgentClient`, which calls the node
agent over its Unix socket (GPUFLEET_AGENT_SOCKET) with a deadline on every unary call.

Builders validate what the agent would otherwise have to reject (unknown kind or outcome, a refusal without a
reason, fractions outside 0..1), so bad input fails here with a message naming the field.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc

from .generated import worker_pb2 as pb
from .generated import worker_pb2_grpc as pb_grpc

WORKER_KINDS = ("serving", "serving-prefill", "serving-decode", "training")
ACK_OUTCOMES = ("applied", "rejected", "failed")
COLLECTIVES = ("AllReduce", "AllGather", "ReduceScatter", "Broadcast", "Reduce", "AllToAll", "Send", "Recv")
ROLE_TO_KIND = {"colocated": "serving", "prefill": "serving-prefill", "decode": "serving-decode"}


class ProtocolError(ValueError):
    """A message that the protocol does not allow; raised before anything is sent."""


@dataclass(frozen=True, slots=True)
class WorkerIdentity:
    worker_id: str
    pod_namespace: str
    pod_name: str
    pod_uid: str
    node_name: str
    kind: str
    gpu_uuids: tuple[str, ...] = ()
    rank: int = -1
    world_size: int = 1

    @classmethod
    def from_env(cls, kind: str, env: dict[str, str] | None = None, rank: int = -1, world_size: int = 1):
        """Reads the downward-API variables the operator puts in worker pods."""
        e = os.environ if env is None else env
        missing = [k for k in ("POD_NAMESPACE", "POD_NAME", "POD_UID", "NODE_NAME") if not e.get(k)]
        if missing:
            raise ProtocolError(f"worker identity: environment lacks {', '.join(missing)}")
        uid = e["POD_UID"]
        gpus = tuple(g for g in e.get("NVIDIA_VISIBLE_DEVICES", "").split(",") if g.startswith("GPU-"))
        wid = f"{uid}/{rank if rank >= 0 else 0}"
        return cls(wid, e["POD_NAMESPACE"], e["POD_NAME"], uid, e["NODE_NAME"], kind, gpus, rank, world_size)


def build_register(identity: WorkerIdentity) -> pb.RegisterRequest:
    if identity.kind not in WORKER_KINDS:
        raise ProtocolError(f"register: kind must be one of {', '.join(WORKER_KINDS)}, got {identity.kind!r}")
    if not identity.worker_id:
        raise ProtocolError("register: worker_id is empty")
    if identity.kind == "training" and not 0 <= identity.rank < identity.world_size:
        raise ProtocolError(f"register: training rank {identity.rank} outside world size {identity.world_size}")
    return pb.RegisterRequest(
        worker_id=identity.worker_id,
        pod_namespace=identity.pod_namespace,
        pod_name=identity.pod_name,
        pod_uid=identity.pod_uid,
        node_name=identity.node_name,
        kind=identity.kind,
        gpu_uuids=list(identity.gpu_uuids),
        rank=identity.rank,
        world_size=identity.world_size,
        simulated=False,
    )


def build_load_report(
    worker_id: str,
    unix_ms: int,
    *,
    queue_length: int,
    running_requests: int,
    kv_cache_used_fraction: float,
    kv_cache_used_bytes: int,
    ttft_ms: float = 0.0,
    tpot_ms: float = 0.0,
    tokens_per_second: float = 0.0,
    **serving: object,
) -> pb.LoadReport:
    """`serving`: the LoadReport fields beyond the basic ones (KV blocks, role, model, engine_url, draining, ...)."""
    unknown = sorted(set(serving) - _SERVING_FIELDS)
    if unknown:
        raise ProtocolError(f"load report: unknown fields {', '.join(unknown)}")
    negative = sorted(k for k, v in serving.items() if isinstance(v, int | float) and not isinstance(v, bool) and v < 0)
    if negative:
        raise ProtocolError(f"load report: {', '.join(negative)} must not be negative")
    if not 0.0 <= kv_cache_used_fraction <= 1.0:
        raise ProtocolError(f"load report: kv_cache_used_fraction must be in 0..1, got {kv_cache_used_fraction}")
    if min(queue_length, running_requests, kv_cache_used_bytes) < 0 or min(ttft_ms, tpot_ms, tokens_per_second) < 0:
        raise ProtocolError("load report: counts, bytes and latencies must not be negative")
    return pb.LoadReport(
        worker_id=worker_id,
        unix_ms=unix_ms,
        queue_length=queue_length,
        running_requests=running_requests,
        kv_cache_used_fraction=kv_cache_used_fraction,
        kv_cache_used_bytes=kv_cache_used_bytes,
        ttft_ms=ttft_ms,
        tpot_ms=tpot_ms,
        tokens_per_second=tokens_per_second,
        **serving,
    )


_BASIC_FIELDS = {"worker_id", "unix_ms", "queue_length", "running_requests", "kv_cache_used_fraction"}
_BASIC_FIELDS |= {"kv_cache_used_bytes", "ttft_ms", "tpot_ms", "tokens_per_second"}
_SERVING_FIELDS = {f.name for f in pb.LoadReport.DESCRIPTOR.fields} - _BASIC_FIELDS


@dataclass(frozen=True, slots=True)
class Collective:
    communicator: str
    rank: int
    n_ranks: int
    collective: str
    sequence: int
    nbytes: int
    start_unix_us: int
    end_unix_us: int  # 0 while not complete


def build_collectives(worker_id: str, records: list[Collective]) -> pb.CollectiveBatch:
    out = pb.CollectiveBatch(worker_id=worker_id)
    for r in records:
        if r.collective not in COLLECTIVES:
            raise ProtocolError(f"collective record: unknown collective {r.collective!r}")
        if r.end_unix_us and r.end_unix_us < r.start_unix_us:
            raise ProtocolError(f"collective {r.communicator}#{r.sequence}: ends before it starts")
        out.records.append(
            pb.CollectiveRecord(
                communicator=r.communicator,
                rank=r.rank,
                n_ranks=r.n_ranks,
                collective=r.collective,
                sequence=r.sequence,
                bytes=r.nbytes,
                start_unix_us=r.start_unix_us,
                end_unix_us=r.end_unix_us,
            )
        )
    return out


def build_ack(worker_id: str, command_id: str, outcome: str, reason: str = "") -> pb.CommandAck:
    if outcome not in ACK_OUTCOMES:
        raise ProtocolError(f"ack {command_id}: outcome must be one of {', '.join(ACK_OUTCOMES)}, got {outcome!r}")
    if not command_id:
        raise ProtocolError("ack: command_id is empty")
    if outcome != "applied" and not reason:
        raise ProtocolError(f"ack {command_id}: a {outcome} command needs a reason")
    return pb.CommandAck(worker_id=worker_id, command_id=command_id, outcome=outcome, reason=reason)


def build_checkpoint(worker_id: str, step: int, unix_ms: int, path: str) -> pb.CheckpointReport:
    if step < 0 or not path:
        raise ProtocolError(f"checkpoint report: step must be >= 0 and path non-empty, got {step}, {path!r}")
    return pb.CheckpointReport(worker_id=worker_id, step=step, unix_ms=unix_ms, path=path)


def command_kind(cmd: pb.WorkerCommand) -> str:
    """The oneof case of a command ("migrate_out", "drain", ...); "" when the agent sent none."""
    return cmd.WhichOneof("command") or ""


class WorkerAgentClient:
    """One worker's connection to its node agent. `now_ms` is injected so tests and replays control the clock."""

    def __init__(
        self,
        target: str,
        identity: WorkerIdentity,
        *,
        timeout_s: float = 5.0,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        channel: grpc.Channel | None = None,
    ) -> None:
        self.identity = identity
        self.timeout_s = timeout_s
        self.now_ms = now_ms
        self.channel = channel or grpc.insecure_channel(target)
        self.stub = pb_grpc.WorkerAgentStub(self.channel)

    @classmethod
    def from_env(cls, identity: WorkerIdentity, env: dict[str, str] | None = None, **kw) -> WorkerAgentClient:
        e = os.environ if env is None else env
        sock = e.get("GPUFLEET_AGENT_SOCKET")
        if not sock:
            raise ProtocolError("GPUFLEET_AGENT_SOCKET is not set: no agent socket to connect to")
        return cls(f"unix://{sock}", identity, **kw)

    @property
    def worker_id(self) -> str:
        return self.identity.worker_id

    def register(self) -> pb.RegisterResponse:
        return self.stub.Register(build_register(self.identity), timeout=self.timeout_s)

    def heartbeat(self) -> pb.HeartbeatResponse:
        return self.stub.Heartbeat(
            pb.HeartbeatRequest(worker_id=self.worker_id, sent_unix_ms=self.now_ms()), timeout=self.timeout_s
        )

    def report_load(self, **fields) -> int:
        return self.stub.ReportLoad(
            build_load_report(self.worker_id, self.now_ms(), **fields), timeout=self.timeout_s
        ).accepted

    def report_collectives(self, records: list[Collective]) -> int:
        return self.stub.ReportCollectives(build_collectives(self.worker_id, records), timeout=self.timeout_s).accepted

    def commands(self) -> Iterator[pb.WorkerCommand]:
        """The agent's command stream (no deadline: it lasts as long as the worker)."""
        return self.stub.Commands(pb.CommandStreamRequest(worker_id=self.worker_id))

    def ack_command(self, command_id: str, outcome: str, reason: str = "") -> int:
        return self.stub.AckCommand(
            build_ack(self.worker_id, command_id, outcome, reason), timeout=self.timeout_s
        ).accepted

    def report_checkpoint(self, step: int, path: str) -> int:
        return self.stub.ReportCheckpoint(
            build_checkpoint(self.worker_id, step, self.now_ms(), path), timeout=self.timeout_s
        ).accepted

    def close(self) -> None:
        self.channel.close()
