"""`python -m gpufleet_worker.serve`: one serving instance, registered with its node agent.

Configuration is one validated object (ServeConfig) from the pod's environment (what the operator sets) and a few
flags for running by hand. The process prints one JSON line `{"event": "ready", ...}` on stdout once it serves,
logs JSON lines on stderr, and stops on SIGTERM/SIGINT (draining nothing: the operator drains by command first).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass

from ..config import EngineConfig, InvalidConfigError, ModelConfig
from ..engine.llm_engine import LLMEngine
from ..protocol.client import ROLE_TO_KIND, WorkerAgentClient, WorkerIdentity
from .agent_link import AgentLink, log
from .engine_loop import EngineLoop
from .http_api import InstanceInfo, InstanceServer


@dataclass(frozen=True, slots=True)
class ServeConfig:
    model: ModelConfig
    served_model: str
    engine: EngineConfig
    backend: str  # "numpy" (CPU, float32) | "torch" (CUDA, bf16, Triton paged attention)
    host: str
    port: int
    advertise_host: str
    agent_socket: str
    serving_deployment: str
    gpu_model: str
    load_interval_s: float
    seed: int
    kv_ttl_s: float

    @classmethod
    def from_env(cls, env: dict[str, str], argv: list[str]) -> ServeConfig:
        p = argparse.ArgumentParser(prog="python -m gpufleet_worker.serve")
        p.add_argument("--backend", choices=("numpy", "torch"), default=env.get("GPUFLEET_WORKER_BACKEND", "torch"))
        p.add_argument("--role", default=env.get("GPUFLEET_ROLE", "colocated"))
        p.add_argument("--num-blocks", type=int, default=int(env.get("GPUFLEET_KV_BLOCKS", "1024")))
        p.add_argument("--block-size", type=int, default=16)
        p.add_argument("--max-num-batched-tokens", type=int, default=2048)
        p.add_argument("--max-num-seqs", type=int, default=256)
        p.add_argument("--host", default=env.get("GPUFLEET_ENGINE_BIND", "0.0.0.0"))
        p.add_argument("--port", type=int, default=int(env.get("GPUFLEET_ENGINE_PORT", "8000")))
        p.add_argument("--advertise-host", default=env.get("POD_IP", "127.0.0.1"))
        p.add_argument("--load-interval-ms", type=int, default=int(env.get("GPUFLEET_LOAD_INTERVAL_MS", "1000")))
        p.add_argument("--gpu-model", default=env.get("GPUFLEET_GPU_MODEL", ""))
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--kv-ttl-s", type=float, default=60.0)
        a = p.parse_args(argv)
        shape_text = env.get("GPUFLEET_MODEL_SHAPE")
        if not shape_text:
            raise InvalidConfigError("GPUFLEET_MODEL_SHAPE is required (the ServingDeployment's model shape, JSON)")
        try:
            shape = json.loads(shape_text)
        except ValueError as err:
            raise InvalidConfigError(f"GPUFLEET_MODEL_SHAPE is not JSON: {err}") from err
        model = ModelConfig.from_model_shape(shape)
        socket = env.get("GPUFLEET_AGENT_SOCKET", "")
        if not socket:
            raise InvalidConfigError("GPUFLEET_AGENT_SOCKET is required: the worker registers with its node agent")
        if not 0 <= a.port <= 65535:
            raise InvalidConfigError(f"--port must be 0-65535, got {a.port}")
        if a.load_interval_ms < 50:
            raise InvalidConfigError(f"--load-interval-ms must be >= 50, got {a.load_interval_ms}")
        engine = EngineConfig(
            num_blocks=a.num_blocks,
            block_size=a.block_size,
            max_num_seqs=a.max_num_seqs,
            max_num_batched_tokens=a.max_num_batched_tokens,
            role=a.role,
        )
        return cls(
            model=model,
            served_model=env.get("GPUFLEET_SERVED_MODEL") or model.name,
            engine=engine,
            backend=a.backend,
            host=a.host,
            port=a.port,
            advertise_host=a.advertise_host,
            agent_socket=socket,
            serving_deployment=env.get("GPUFLEET_SERVING_DEPLOYMENT", ""),
            gpu_model=a.gpu_model,
            load_interval_s=a.load_interval_ms / 1000,
            seed=a.seed,
            kv_ttl_s=a.kv_ttl_s,
        )


def build_runner(cfg: ServeConfig):
    if cfg.backend == "numpy":
        from ..model.numpy_model import NumpyModel, NumpyRunner
        from ..model.weights import random_weights

        max_pos = cfg.engine.num_blocks * cfg.engine.block_size
        return NumpyRunner(
            NumpyModel(
                cfg.model, random_weights(cfg.model, cfg.seed), cfg.engine.num_blocks, cfg.engine.block_size, max_pos
            )
        )
    import torch

    from ..attention.backends import TritonPagedBackend
    from ..model.torch_runner import TorchModelRunner, random_torch_weights

    if not torch.cuda.is_available():
        raise InvalidConfigError("--backend torch needs a CUDA device; none is visible (use --backend numpy on CPU)")
    max_context = 8192
    batches = [1, 2, 4, 8, 16, 32, 64]
    backend = TritonPagedBackend(
        max(batches),
        cfg.model.heads,
        cfg.model.kv_heads,
        cfg.model.head_dim,
        cfg.engine.block_size,
        max_context,
        "cuda",
    )
    weights = random_torch_weights(cfg.model, "cuda", cfg.seed)
    runner = TorchModelRunner(cfg.model, cfg.engine, backend, weights, "cuda", max_context=max_context)
    runner.capture_decode_graphs(batches)
    runner.capture_prefill_graphs()
    if runner.prefill_graphs_off:
        log("prefill_graphs_off", reason=runner.prefill_graphs_off)
    return runner


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    e = dict(os.environ if env is None else env)
    try:
        cfg = ServeConfig.from_env(e, sys.argv[1:] if argv is None else argv)
        identity = WorkerIdentity.from_env(ROLE_TO_KIND[cfg.engine.role], e)
    except (InvalidConfigError, ValueError) as err:
        log("config_invalid", error=str(err))
        return 2
    loop = EngineLoop(LLMEngine(cfg.engine, build_runner(cfg)), cfg.model, kv_ttl_s=cfg.kv_ttl_s)
    loop.start()
    server = InstanceServer(
        loop,
        InstanceInfo(identity.worker_id, cfg.engine.role, cfg.served_model, ""),
        cfg.host,
        cfg.port,
    )
    engine_url = f"http://{cfg.advertise_host}:{server.port}"
    server.info = InstanceInfo(identity.worker_id, cfg.engine.role, cfg.served_model, engine_url)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    client = WorkerAgentClient(f"unix://{cfg.agent_socket}", identity)
    link = AgentLink(
        client,
        loop,
        role=cfg.engine.role,
        model=cfg.served_model,
        gpu_model=cfg.gpu_model,
        engine_url=engine_url,
        serving_deployment=cfg.serving_deployment,
        load_interval_s=cfg.load_interval_s,
    )
    link.start()
    print(json.dumps({"event": "ready", "worker_id": identity.worker_id, "engine_url": engine_url}), flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    log("stopping", worker=identity.worker_id, steps=loop.steps, loads_sent=link.loads_sent)
    link.stop()
    server.shutdown()
    loop.stop()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
