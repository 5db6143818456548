"""`python -m gpufleet_worker.train`: one training rank (torchrun-style RANK / WORLD_SIZE / MASTER_ADDR /
MASTER_PORT, LOCAL_RANK for the GPU), registered with its node agent as kind "training".

The step loop: a data-parallel MLP (random data drawn from (seed, step, rank), so a resumed run sees the same
batches), gradients flattened into one bucket and all-reduced per step (as DDP's bucketed all-reduce), each
collective timed by CollectiveRecorder and sent as CollectiveRecords every `--report-every` steps. Every
`GPUFLEET_CHECKPOINT_INTERVAL` steps each rank writes its checkpoint atomically and, once every rank has
(a barrier), reports it; with
GPUFLEET_RESUME_STEP=N it loads step N's checkpoint and continues at N+1. Backend: NCCL when CUDA is available,
gloo otherwise (`--backend` overrides). Prints one JSON line `{"event": "done", ...}` on stdout at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import threading
import time
from pathlib import Path

import torch
import torch.distributed as dist

from ..protocol.client import WorkerAgentClient, WorkerIdentity
from ..serve.agent_link import log
from .checkpoint import checkpoint_path, commit_checkpoint, existing_checkpoint, is_due, resume_step, write_atomic
from .recorder import CollectiveRecorder, communicator_id


def build_model(hidden: int, layers: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    mods: list[torch.nn.Module] = []
    for _ in range(layers):
        mods += [torch.nn.Linear(hidden, hidden), torch.nn.GELU()]
    return torch.nn.Sequential(*mods, torch.nn.Linear(hidden, 1))


def batch(seed: int, step: int, rank: int, size: int, hidden: int, device: torch.device):
    g = torch.Generator().manual_seed(seed * 1_000_003 + step * 1_009 + rank)
    x = torch.randn(size, hidden, generator=g)
    return x.to(device), x.sum(-1, keepdim=True).sin().to(device)


def parse(argv: list[str], env: dict[str, str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gpufleet_worker.train")
    p.add_argument("--steps", type=int, default=int(env.get("GPUFLEET_TRAIN_STEPS", "100")))
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report-every", type=int, default=10)
    p.add_argument("--backend", choices=("auto", "nccl", "gloo"), default="auto")
    p.add_argument("--checkpoint-dir", default=env.get("GPUFLEET_CHECKPOINT_DIR", "/tmp/gpufleet-checkpoints"))
    p.add_argument("--checkpoint-interval", type=int, default=int(env.get("GPUFLEET_CHECKPOINT_INTERVAL", "0")))
    a = p.parse_args(argv)
    if a.steps < 1 or a.report_every < 1 or a.checkpoint_interval < 0:
        p.error("--steps and --report-every must be >= 1, --checkpoint-interval >= 0")
    return a


def main(argv: list[str] | None = None) -> int:
    env = dict(os.environ)
    a = parse(sys.argv[1:] if argv is None else argv, env)
    rank, world = int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1"))
    start_after = resume_step(env)
    backend = a.backend if a.backend != "auto" else ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        local = int(env.get("LOCAL_RANK", str(rank)))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    identity = WorkerIdentity.from_env("training", env, rank=rank, world_size=world)
    client = WorkerAgentClient.from_env(identity, env)
    hb_ms = client.register().heartbeat_interval_ms
    stop = threading.Event()

    def heartbeats() -> None:
        while not stop.wait(max(0.05, hb_ms / 1000)):
            try:
                client.heartbeat()
            except Exception as err:  # a missed heartbeat is the agent's to notice; keep training
                log("heartbeat_failed", error=str(err))

    threading.Thread(target=heartbeats, daemon=True).start()
    dist.init_process_group(backend, rank=rank, world_size=world)
    job = env.get("GPUFLEET_TRAINING_JOB", f"{identity.pod_namespace}/{identity.pod_name.rsplit('-', 1)[0]}")
    recorder = CollectiveRecorder(communicator_id(job, "dp", world), rank, world)
    model = build_model(a.hidden, a.layers, a.seed).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
    ckpt_dir = Path(a.checkpoint_dir)
    if start_after > 0:
        state = torch.load(existing_checkpoint(ckpt_dir, start_after, rank), map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        log("resumed", rank=rank, step=start_after)
    params = [p for p in model.parameters()]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    loss_value, last_ckpt, sent = float("nan"), 0, 0
    t0 = time.perf_counter()
    for step in range(start_after + 1, a.steps + 1):
        x, y = batch(a.seed, step, rank, a.batch, a.hidden, device)
        opt.zero_grad(set_to_none=False)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        flat = torch.cat([p.grad.reshape(-1) for p in params])

        def all_reduce(flat: torch.Tensor = flat) -> None:
            dist.all_reduce(flat)
            sync()

        recorder.record("AllReduce", flat.numel() * flat.element_size(), all_reduce)
        flat /= world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p))
            offset += n
        opt.step()
        loss_value = float(loss.detach())
        if is_due(step, a.checkpoint_interval):
            buf = io.BytesIO()
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, buf)
            path, data = checkpoint_path(ckpt_dir, step, rank), buf.getvalue()
            commit_checkpoint(
                write=lambda path=path, data=data: write_atomic(path, data),
                barrier=dist.barrier,
                report=lambda step=step, path=path: client.report_checkpoint(step, str(path)),
            )
            last_ckpt = step
        if step % a.report_every == 0 or step == a.steps:
            records = recorder.drain()
            if records:
                sent += client.report_collectives(records)
    elapsed = time.perf_counter() - t0
    dist.destroy_process_group()
    stop.set()
    client.close()
    digest = float(sum(p.detach().double().sum() for p in params))
    summary = {"event": "done", "rank": rank, "world": world, "backend": backend, "device": str(device)}
    summary |= {"first_step": start_after + 1, "last_step": a.steps, "loss": loss_value, "param_sum": digest}
    summary |= {"collectives": recorder.total, "records_accepted": sent, "last_checkpoint": last_ckpt}
    summary |= {"seconds": round(elapsed, 3), "worker_id": identity.worker_id}
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
