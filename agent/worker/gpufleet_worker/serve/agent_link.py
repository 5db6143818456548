"""The worker's side of the node-agent protocol while it serves: register, heartbeat, report load, take commands.

Three daemon threads: heartbeats every interval the agent asked for, a load report every `load_interval_s`, and
the command stream (re-opened after a break, after registering again: an agent that restarted has forgotten us).
Commands are carried out and acknowledged; what this worker cannot do is acknowledged "rejected" with the reason,
never "applied".
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict

import grpc

from ..protocol.client import WorkerAgentClient, command_kind
from ..protocol.generated import worker_pb2 as pb
from .engine_loop import EngineLoop

MIGRATION_REASON = (
    "live migration is not implemented in the reference worker yet: it takes no migrate_out/migrate_in until the "
    "staged-copy protocol (issue 11) lands here"
)


def log(event: str, **fields: object) -> None:
    print(json.dumps({"ts": round(time.time(), 3), "event": event, **fields}), file=sys.stderr, flush=True)


class AgentLink:
    def __init__(
        self,
        client: WorkerAgentClient,
        loop: EngineLoop,
        *,
        role: str,
        model: str,
        gpu_model: str,
        engine_url: str,
        serving_deployment: str,
        load_interval_s: float = 1.0,
        on_command: Callable[[pb.WorkerCommand, str, str], None] | None = None,
    ) -> None:
        self.client, self.loop = client, loop
        self.static = {
            "role": role,
            "model": model,
            "gpu_model": gpu_model,
            "engine_url": engine_url,
            "serving_deployment": serving_deployment,
            "tp": 1,
            "pp": 1,
        }
        self.load_interval_s = load_interval_s
        self.heartbeat_interval_s = 2.0
        self.on_command = on_command
        self._stop = threading.Event()
        self.acks: list[tuple[str, str, str, str]] = []  # (command id, kind, outcome, reason)
        self.loads_sent = 0

    def start(self) -> None:
        resp = self.client.register()
        self.heartbeat_interval_s = max(0.05, resp.heartbeat_interval_ms / 1000)
        log("registered", worker=self.client.worker_id, heartbeat_ms=resp.heartbeat_interval_ms)
        for target, name in ((self._heartbeats, "heartbeat"), (self._loads, "load"), (self._commands, "commands")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def report_load(self) -> int:
        load = asdict(self.loop.load)
        basic = {k: load.pop(k) for k in ("queue_length", "running_requests", "kv_cache_used_fraction")}
        basic |= {k: load.pop(k) for k in ("kv_cache_used_bytes", "ttft_ms", "tpot_ms", "tokens_per_second")}
        accepted = self.client.report_load(**basic, **load, **self.static, draining=self.loop.draining)
        self.loads_sent += 1
        return accepted

    def _every(self, interval: Callable[[], float], fn: Callable[[], object], what: str) -> None:
        while not self._stop.wait(interval()):
            try:
                fn()
            except grpc.RpcError as err:
                log(f"{what}_failed", code=str(err.code()), details=err.details())

    def _heartbeats(self) -> None:
        self._every(lambda: self.heartbeat_interval_s, self.client.heartbeat, "heartbeat")

    def _loads(self) -> None:
        self._every(lambda: self.load_interval_s, self.report_load, "load_report")

    def _commands(self) -> None:
        while not self._stop.is_set():
            try:
                for cmd in self.client.commands():
                    self._handle(cmd)
            except grpc.RpcError as err:
                if self._stop.is_set():
                    return
                log("command_stream_closed", code=str(err.code()), details=err.details())
            if self._stop.wait(1.0):
                return
            try:  # the agent may have restarted and forgotten this worker
                self.client.register()
            except grpc.RpcError as err:
                log("register_failed", code=str(err.code()), details=err.details())

    def _handle(self, cmd: pb.WorkerCommand) -> None:
        kind = command_kind(cmd)
        outcome, reason = self.execute(cmd)
        log("command", command_id=cmd.command_id, kind=kind, outcome=outcome, reason=reason)
        try:
            self.client.ack_command(cmd.command_id, outcome, reason)
        except grpc.RpcError as err:
            log("ack_failed", command_id=cmd.command_id, code=str(err.code()), details=err.details())
        self.acks.append((cmd.command_id, kind, outcome, reason))
        if self.on_command:
            self.on_command(cmd, outcome, reason)

    def execute(self, cmd: pb.WorkerCommand) -> tuple[str, str]:
        kind = command_kind(cmd)
        if kind == "drain":
            self.loop.draining = True
            deadline_ms = cmd.drain.deadline_ms
            if deadline_ms > 0:
                reason = f"drain deadline of {deadline_ms} ms passed"
                timer = threading.Timer(deadline_ms / 1000, lambda: self.loop.abort_all(reason))
                timer.daemon = True
                timer.start()
            self.report_load_quietly()
            return "applied", ""
        if kind == "abort":
            n = self.loop.abort_all(cmd.abort.reason or "aborted by command")
            log("aborted", requests=n)
            return "applied", ""
        if kind in ("migrate_out", "migrate_in"):
            return "rejected", MIGRATION_REASON
        if kind == "inject_fault":
            return "rejected", "fault injection is for simulated workers; the reference worker runs for real"
        if kind == "apply_routes":
            return "rejected", "a serving worker runs no collectives, so it has no routes to apply"
        return "rejected", f"unknown command {kind or '(none set)'}"

    def report_load_quietly(self) -> None:
        """An extra report right after a state change (drain), so the gateway stops sending sooner."""
        try:
            self.report_load()
        except grpc.RpcError as err:
            log("load_report_failed", code=str(err.code()), details=err.details())
