"""Worker protocol: message builders, committed stubs fresh, and calls over a real gRPC Unix socket."""

import tempfile
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from gpufleet_worker.protocol import gen
from gpufleet_worker.protocol.client import (
    Collective,
    ProtocolError,
    WorkerAgentClient,
    WorkerIdentity,
    build_ack,
    build_checkpoint,
    build_collectives,
    build_load_report,
    build_register,
    command_kind,
)
from gpufleet_worker.protocol.generated import worker_pb2 as pb
from gpufleet_worker.protocol.generated import worker_pb2_grpc as pb_grpc

IDENT = WorkerIdentity("uid-1/0", "ns", "pod-a", "uid-1", "node-1", "serving-decode", ("GPU-abc",))


def test_committed_stubs_match_the_proto() -> None:
    # grpcio-tools generates the stubs: CI installs it (requirements-ci.txt); the GPU machine's image has none.
    pytest.importorskip("grpc_tools", reason="grpcio-tools is not installed (CI has it; it regenerates the stubs)")
    with tempfile.TemporaryDirectory() as tmp:
        gen.generate(Path(tmp))
        for name in gen.FILES:
            fresh = (Path(tmp) / name).read_text()
            committed = (gen.GENERATED / name).read_text()
            assert fresh == committed, f"{name} is stale: run python -m gpufleet_worker.protocol.gen"


def test_register_carries_the_identity() -> None:
    msg = build_register(IDENT)
    assert (msg.worker_id, msg.kind, list(msg.gpu_uuids), msg.rank, msg.simulated) == (
        "uid-1/0",
        "serving-decode",
        ["GPU-abc"],
        -1,
        False,
    )


def test_identity_from_the_pod_environment() -> None:
    env = {
        "POD_NAMESPACE": "ns",
        "POD_NAME": "p",
        "POD_UID": "u",
        "NODE_NAME": "n",
        "NVIDIA_VISIBLE_DEVICES": "GPU-1,GPU-2",
    }
    ident = WorkerIdentity.from_env("training", env, rank=3, world_size=4)
    assert (ident.worker_id, ident.gpu_uuids, ident.rank) == ("u/3", ("GPU-1", "GPU-2"), 3)
    with pytest.raises(ProtocolError, match="lacks POD_UID, NODE_NAME"):
        WorkerIdentity.from_env("serving", {"POD_NAMESPACE": "ns", "POD_NAME": "p"})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: build_register(WorkerIdentity("w", "n", "p", "u", "node", "inference")), "kind must be one of"),
        (
            lambda: build_register(WorkerIdentity("w", "n", "p", "u", "node", "training", rank=4, world_size=4)),
            "rank 4 outside world size 4",
        ),
        (lambda: build_ack("w", "c1", "done"), "outcome must be one of"),
        (lambda: build_ack("w", "c1", "rejected"), "needs a reason"),
        (lambda: build_ack("w", "", "applied"), "command_id is empty"),
        (
            lambda: build_load_report(
                "w", 1, queue_length=0, running_requests=0, kv_cache_used_fraction=1.5, kv_cache_used_bytes=0
            ),
            "must be in 0..1",
        ),
        (lambda: build_collectives("w", [Collective("c", 0, 2, "AllSum", 1, 8, 10, 20)]), "unknown collective"),
        (lambda: build_collectives("w", [Collective("c", 0, 2, "AllReduce", 1, 8, 10, 5)]), "ends before"),
        (lambda: build_checkpoint("w", 5, 1, ""), "path non-empty"),
    ],
    ids=["kind", "rank", "outcome", "reason", "command-id", "fraction", "collective", "times", "path"],
)
def test_builders_reject_what_the_protocol_does_not_allow(build, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        build()


def test_load_and_collective_messages_hold_the_values() -> None:
    load = build_load_report(
        "w",
        7,
        queue_length=2,
        running_requests=3,
        kv_cache_used_fraction=0.25,
        kv_cache_used_bytes=1 << 30,
        tpot_ms=12.5,
    )
    assert (load.unix_ms, load.queue_length, load.kv_cache_used_bytes, load.tpot_ms) == (7, 2, 1 << 30, 12.5)
    batch = build_collectives("w", [Collective("ab12", 1, 8, "AllReduce", 42, 1 << 20, 100, 0)])
    (rec,) = batch.records
    assert (rec.collective, rec.sequence, rec.bytes, rec.end_unix_us) == ("AllReduce", 42, 1 << 20, 0)


class RecordingAgent(pb_grpc.WorkerAgentServicer):
    """A gRPC server that records what arrives (the real agent is TypeScript and not started from pytest). Like
    today's agent, it answers AckCommand with UNIMPLEMENTED when told to."""

    def __init__(self, ack_unimplemented: bool = False) -> None:
        self.received: list = []
        self.ack_unimplemented = ack_unimplemented

    def Register(self, request, context):
        self.received.append(request)
        return pb.RegisterResponse(heartbeat_interval_ms=1000, missed_heartbeats_limit=3)

    def Heartbeat(self, request, context):
        self.received.append(request)
        return pb.HeartbeatResponse(received_unix_ms=request.sent_unix_ms + 1)

    def ReportLoad(self, request, context):
        self.received.append(request)
        return pb.ReportAck(accepted=1)

    def ReportCollectives(self, request, context):
        self.received.append(request)
        return pb.ReportAck(accepted=len(request.records))

    def Commands(self, request, context):
        self.received.append(request)
        yield pb.WorkerCommand(command_id="c1", drain=pb.Drain(deadline_ms=500))
        yield pb.WorkerCommand(command_id="c2", migrate_out=pb.MigrateOut(request_id="r9", target_worker_id="w2"))

    def AckCommand(self, request, context):
        if self.ack_unimplemented:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "AckCommand is not implemented yet")
        self.received.append(request)
        return pb.ReportAck(accepted=1)

    def ReportCheckpoint(self, request, context):
        self.received.append(request)
        return pb.ReportAck(accepted=1)


@pytest.fixture
def agent_socket(tmp_path):
    def start(agent: RecordingAgent) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_WorkerAgentServicer_to_server(agent, server)
        sock = tmp_path / "agent.sock"
        server.add_insecure_port(f"unix://{sock}")
        server.start()
        servers.append(server)
        return str(sock)

    servers: list = []
    yield start
    for s in servers:
        s.stop(grace=None)


def test_client_calls_reach_the_agent_over_a_unix_socket(agent_socket) -> None:
    agent = RecordingAgent()
    sock = agent_socket(agent)
    client = WorkerAgentClient.from_env(IDENT, {"GPUFLEET_AGENT_SOCKET": sock}, now_ms=lambda: 1_000)
    try:
        assert client.register().heartbeat_interval_ms == 1000
        assert client.heartbeat().received_unix_ms == 1_001
        assert (
            client.report_load(queue_length=1, running_requests=2, kv_cache_used_fraction=0.5, kv_cache_used_bytes=10)
            == 1
        )
        assert client.report_collectives([Collective("c", 0, 2, "AllGather", 1, 8, 10, 20)]) == 1
        cmds = list(client.commands())
        assert [(c.command_id, command_kind(c)) for c in cmds] == [("c1", "drain"), ("c2", "migrate_out")]
        assert client.ack_command("c1", "applied") == 1
        assert client.report_checkpoint(100, "/ckpt/step-100") == 1
    finally:
        client.close()
    kinds = [type(m).__name__ for m in agent.received]
    assert kinds == [
        "RegisterRequest",
        "HeartbeatRequest",
        "LoadReport",
        "CollectiveBatch",
        "CommandStreamRequest",
        "CommandAck",
        "CheckpointReport",
    ]
    assert all(m.worker_id == "uid-1/0" for m in agent.received)
    assert (agent.received[-1].step, agent.received[-1].unix_ms) == (100, 1_000)


def test_an_unimplemented_ack_surfaces_as_an_error_not_as_success(agent_socket) -> None:
    client = WorkerAgentClient(f"unix://{agent_socket(RecordingAgent(ack_unimplemented=True))}", IDENT)
    try:
        with pytest.raises(grpc.RpcError) as err:
            client.ack_command("c1", "failed", "KV import target is full")
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        client.close()


def test_missing_socket_env_is_a_clear_error() -> None:
    with pytest.raises(ProtocolError, match="GPUFLEET_AGENT_SOCKET is not set"):
        WorkerAgentClient.from_env(IDENT, {})
