from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterRequest(_message.Message):
    __slots__ = ("worker_id", "pod_namespace", "pod_name", "pod_uid", "node_name", "kind", "gpu_uuids", "rank", "world_size", "simulated")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    POD_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    POD_NAME_FIELD_NUMBER: _ClassVar[int]
    POD_UID_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    GPU_UUIDS_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    pod_namespace: str
    pod_name: str
    pod_uid: str
    node_name: str
    kind: str
    gpu_uuids: _containers.RepeatedScalarFieldContainer[str]
    rank: int
    world_size: int
    simulated: bool
    def __init__(self, worker_id: _Optional[str] = ..., pod_namespace: _Optional[str] = ..., pod_name: _Optional[str] = ..., pod_uid: _Optional[str] = ..., node_name: _Optional[str] = ..., kind: _Optional[str] = ..., gpu_uuids: _Optional[_Iterable[str]] = ..., rank: _Optional[int] = ..., world_size: _Optional[int] = ..., simulated: _Optional[bool] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("heartbeat_interval_ms", "missed_heartbeats_limit")
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    MISSED_HEARTBEATS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_ms: int
    missed_heartbeats_limit: int
    def __init__(self, heartbeat_interval_ms: _Optional[int] = ..., missed_heartbeats_limit: _Optional[int] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("worker_id", "sent_unix_ms")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    sent_unix_ms: int
    def __init__(self, worker_id: _Optional[str] = ..., sent_unix_ms: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("received_unix_ms",)
    RECEIVED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    received_unix_ms: int
    def __init__(self, received_unix_ms: _Optional[int] = ...) -> None: ...

class LoadReport(_message.Message):
    __slots__ = ("worker_id", "unix_ms", "queue_length", "running_requests", "kv_cache_used_fraction", "kv_cache_used_bytes", "ttft_ms", "tpot_ms", "tokens_per_second", "kv_blocks_total", "kv_blocks_used", "block_size_tokens", "waiting_demand_blocks", "head_of_line_demand_blocks", "role", "model", "tp", "pp", "gpu_model", "preemptions_total", "held_kv_blocks", "outstanding_prompt_tokens", "draining", "engine_url", "serving_deployment", "high_priority_running", "migration_candidates", "migrating", "engine", "disaggregation_bootstrap_port")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    RUNNING_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    KV_CACHE_USED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    KV_CACHE_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    TPOT_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    KV_BLOCKS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    KV_BLOCKS_USED_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    WAITING_DEMAND_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    HEAD_OF_LINE_DEMAND_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TP_FIELD_NUMBER: _ClassVar[int]
    PP_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    HELD_KV_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    ENGINE_URL_FIELD_NUMBER: _ClassVar[int]
    SERVING_DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    HIGH_PRIORITY_RUNNING_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    MIGRATING_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    DISAGGREGATION_BOOTSTRAP_PORT_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    unix_ms: int
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
    role: str
    model: str
    tp: int
    pp: int
    gpu_model: str
    preemptions_total: int
    held_kv_blocks: int
    outstanding_prompt_tokens: int
    draining: bool
    engine_url: str
    serving_deployment: str
    high_priority_running: int
    migration_candidates: _containers.RepeatedCompositeFieldContainer[MigrationCandidate]
    migrating: str
    engine: str
    disaggregation_bootstrap_port: int
    def __init__(self, worker_id: _Optional[str] = ..., unix_ms: _Optional[int] = ..., queue_length: _Optional[int] = ..., running_requests: _Optional[int] = ..., kv_cache_used_fraction: _Optional[float] = ..., kv_cache_used_bytes: _Optional[int] = ..., ttft_ms: _Optional[float] = ..., tpot_ms: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., kv_blocks_total: _Optional[int] = ..., kv_blocks_used: _Optional[int] = ..., block_size_tokens: _Optional[int] = ..., waiting_demand_blocks: _Optional[int] = ..., head_of_line_demand_blocks: _Optional[int] = ..., role: _Optional[str] = ..., model: _Optional[str] = ..., tp: _Optional[int] = ..., pp: _Optional[int] = ..., gpu_model: _Optional[str] = ..., preemptions_total: _Optional[int] = ..., held_kv_blocks: _Optional[int] = ..., outstanding_prompt_tokens: _Optional[int] = ..., draining: _Optional[bool] = ..., engine_url: _Optional[str] = ..., serving_deployment: _Optional[str] = ..., high_priority_running: _Optional[int] = ..., migration_candidates: _Optional[_Iterable[_Union[MigrationCandidate, _Mapping]]] = ..., migrating: _Optional[str] = ..., engine: _Optional[str] = ..., disaggregation_bootstrap_port: _Optional[int] = ...) -> None: ...

class MigrationCandidate(_message.Message):
    __slots__ = ("request_id", "blocks", "priority", "output_tokens")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    blocks: int
    priority: int
    output_tokens: int
    def __init__(self, request_id: _Optional[str] = ..., blocks: _Optional[int] = ..., priority: _Optional[int] = ..., output_tokens: _Optional[int] = ...) -> None: ...

class PeerTransfer(_message.Message):
    __slots__ = ("peer_rank", "bytes", "start_unix_us", "end_unix_us")
    PEER_RANK_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    peer_rank: int
    bytes: int
    start_unix_us: int
    end_unix_us: int
    def __init__(self, peer_rank: _Optional[int] = ..., bytes: _Optional[int] = ..., start_unix_us: _Optional[int] = ..., end_unix_us: _Optional[int] = ...) -> None: ...

class CollectiveRecord(_message.Message):
    __slots__ = ("communicator", "rank", "n_ranks", "collective", "sequence", "bytes", "start_unix_us", "end_unix_us", "peers")
    COMMUNICATOR_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    N_RANKS_FIELD_NUMBER: _ClassVar[int]
    COLLECTIVE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    START_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    END_UNIX_US_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    communicator: str
    rank: int
    n_ranks: int
    collective: str
    sequence: int
    bytes: int
    start_unix_us: int
    end_unix_us: int
    peers: _containers.RepeatedCompositeFieldContainer[PeerTransfer]
    def __init__(self, communicator: _Optional[str] = ..., rank: _Optional[int] = ..., n_ranks: _Optional[int] = ..., collective: _Optional[str] = ..., sequence: _Optional[int] = ..., bytes: _Optional[int] = ..., start_unix_us: _Optional[int] = ..., end_unix_us: _Optional[int] = ..., peers: _Optional[_Iterable[_Union[PeerTransfer, _Mapping]]] = ...) -> None: ...

class CollectiveBatch(_message.Message):
    __slots__ = ("worker_id", "records")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    records: _containers.RepeatedCompositeFieldContainer[CollectiveRecord]
    def __init__(self, worker_id: _Optional[str] = ..., records: _Optional[_Iterable[_Union[CollectiveRecord, _Mapping]]] = ...) -> None: ...

class ReportAck(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class CommandStreamRequest(_message.Message):
    __slots__ = ("worker_id",)
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    def __init__(self, worker_id: _Optional[str] = ...) -> None: ...

class MigrateOut(_message.Message):
    __slots__ = ("request_id", "target_worker_id", "target_pod", "target_url")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_POD_FIELD_NUMBER: _ClassVar[int]
    TARGET_URL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    target_worker_id: str
    target_pod: str
    target_url: str
    def __init__(self, request_id: _Optional[str] = ..., target_worker_id: _Optional[str] = ..., target_pod: _Optional[str] = ..., target_url: _Optional[str] = ...) -> None: ...

class MigrateIn(_message.Message):
    __slots__ = ("request_id", "source_worker_id", "source_pod")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_POD_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    source_worker_id: str
    source_pod: str
    def __init__(self, request_id: _Optional[str] = ..., source_worker_id: _Optional[str] = ..., source_pod: _Optional[str] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ("deadline_ms",)
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    deadline_ms: int
    def __init__(self, deadline_ms: _Optional[int] = ...) -> None: ...

class Abort(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class InjectFault(_message.Message):
    __slots__ = ("kind", "rank", "peer_rank", "factor")
    KIND_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    PEER_RANK_FIELD_NUMBER: _ClassVar[int]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    kind: str
    rank: int
    peer_rank: int
    factor: float
    def __init__(self, kind: _Optional[str] = ..., rank: _Optional[int] = ..., peer_rank: _Optional[int] = ..., factor: _Optional[float] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("communicator", "rank", "peer_rank", "nic", "weight")
    COMMUNICATOR_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    PEER_RANK_FIELD_NUMBER: _ClassVar[int]
    NIC_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    communicator: str
    rank: int
    peer_rank: int
    nic: str
    weight: int
    def __init__(self, communicator: _Optional[str] = ..., rank: _Optional[int] = ..., peer_rank: _Optional[int] = ..., nic: _Optional[str] = ..., weight: _Optional[int] = ...) -> None: ...

class ApplyRoutes(_message.Message):
    __slots__ = ("plan_id", "routes")
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    def __init__(self, plan_id: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ...) -> None: ...

class WorkerCommand(_message.Message):
    __slots__ = ("command_id", "migrate_out", "migrate_in", "drain", "abort", "inject_fault", "apply_routes")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    MIGRATE_OUT_FIELD_NUMBER: _ClassVar[int]
    MIGRATE_IN_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    INJECT_FAULT_FIELD_NUMBER: _ClassVar[int]
    APPLY_ROUTES_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    migrate_out: MigrateOut
    migrate_in: MigrateIn
    drain: Drain
    abort: Abort
    inject_fault: InjectFault
    apply_routes: ApplyRoutes
    def __init__(self, command_id: _Optional[str] = ..., migrate_out: _Optional[_Union[MigrateOut, _Mapping]] = ..., migrate_in: _Optional[_Union[MigrateIn, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ..., abort: _Optional[_Union[Abort, _Mapping]] = ..., inject_fault: _Optional[_Union[InjectFault, _Mapping]] = ..., apply_routes: _Optional[_Union[ApplyRoutes, _Mapping]] = ...) -> None: ...

class CommandAck(_message.Message):
    __slots__ = ("worker_id", "command_id", "outcome", "reason")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    command_id: str
    outcome: str
    reason: str
    def __init__(self, worker_id: _Optional[str] = ..., command_id: _Optional[str] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CheckpointReport(_message.Message):
    __slots__ = ("worker_id", "step", "unix_ms", "path")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    step: int
    unix_ms: int
    path: str
    def __init__(self, worker_id: _Optional[str] = ..., step: _Optional[int] = ..., unix_ms: _Optional[int] = ..., path: _Optional[str] = ...) -> None: ...
