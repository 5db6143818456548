"""`python -m gpufleet_worker.diagnostics NAME`: the GPU measurements behind the agent's RunDiagnostic.

NAME: `gemm` (bf16 matmul TFLOP/s, 8192^3 by default), `copy` (device-to-device copy GB/s, read + write bytes
counted), `all-reduce` (NCCL all-reduce bus GB/s over the visible GPUs, nccl-tests' busbw = algbw * 2(n-1)/n).
Prints one JSON object on stdout: `{"name", "value", "unit", "details"}`, medians of CUDA-event timings after a
warm-up. Exit code 3 with `{"error": "precondition", "reason"}` when the measurement cannot run here (no torch, no
CUDA device, one GPU for an all-reduce): the agent answers FAILED_PRECONDITION with that reason. The agent judges
pass or fail against the GPU catalog; this module only measures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Any

PRECONDITION_EXIT = 3


class PreconditionError(RuntimeError):
    """The measurement cannot run on this machine; the message says why."""


def _torch_cuda() -> Any:
    try:
        import torch
    except ImportError as err:
        raise PreconditionError(f"torch is not installed, so no GPU measurement can run ({err})") from err
    if not torch.cuda.is_available():
        raise PreconditionError("no CUDA device is visible (torch.cuda.is_available() is false)")
    return torch


def median_cuda_ms(torch: Any, fn, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def gemm(n: int = 8192, reps: int = 20) -> dict[str, Any]:
    torch = _torch_cuda()
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    ms = median_cuda_ms(torch, lambda: torch.matmul(a, b, out=c), warmup=5, reps=reps)
    tflops = 2 * n**3 / (ms / 1000) / 1e12
    details = {"m": n, "n": n, "k": n, "dtype": "bfloat16", "medianMs": round(ms, 4), "reps": reps}
    return {"name": "gemm", "value": round(tflops, 1), "unit": "TFLOP/s", "details": details | _device(torch)}


def copy(nbytes: int = 2 << 30, reps: int = 20) -> dict[str, Any]:
    torch = _torch_cuda()
    src = torch.empty(nbytes // 2, device="cuda", dtype=torch.bfloat16).normal_()
    dst = torch.empty_like(src)
    ms = median_cuda_ms(torch, lambda: dst.copy_(src), warmup=5, reps=reps)
    gbps = 2 * nbytes / (ms / 1000) / 1e9
    details = {"bytes": nbytes, "countedBytes": 2 * nbytes, "medianMs": round(ms, 4), "reps": reps}
    return {"name": "copy", "value": round(gbps, 1), "unit": "GB/s", "details": details | _device(torch)}


def _all_reduce_rank(rank: int, world: int, port: int, sizes: list[int], out: Any) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world)
    results = {}
    for size in sizes:
        x = torch.ones(size // 2, device="cuda", dtype=torch.bfloat16)
        ms = median_cuda_ms(torch, lambda x=x: dist.all_reduce(x), warmup=5, reps=20)
        algbw = size / (ms / 1000) / 1e9
        busbw = algbw * 2 * (world - 1) / world
        results[size] = {"medianMs": round(ms, 4), "algGBps": round(algbw, 1), "busGBps": round(busbw, 1)}
    if rank == 0:
        out.put(results)
    dist.destroy_process_group()


def all_reduce(sizes: list[int] | None = None) -> dict[str, Any]:
    torch = _torch_cuda()
    world = torch.cuda.device_count()
    if world < 2:
        raise PreconditionError(
            f"{world} GPU visible: an all-reduce needs at least 2 ranks on separate GPUs (NCCL refuses two ranks on "
            "one GPU, and one rank moves no bytes over a link), so no bus bandwidth can be measured on this node"
        )
    import socket

    import torch.multiprocessing as mp

    sizes = sizes or [1 << 20, 16 << 20, 256 << 20, 1 << 30]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_all_reduce_rank, args=(r, world, port, sizes, q)) for r in range(world)]
    for p in procs:
        p.start()
    results = q.get(timeout=300)
    for p in procs:
        p.join(60)
    largest = results[max(sizes)]
    details = {"ranks": world, "bySizeBytes": {str(k): v for k, v in results.items()}} | _device(torch)
    return {"name": "all-reduce", "value": largest["busGBps"], "unit": "GB/s", "details": details}


def _device(torch: Any) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(0)
    return {"device": props.name, "torch": torch.__version__, "sms": props.multi_processor_count}


MEASUREMENTS = {"gemm": gemm, "copy": copy, "all-reduce": all_reduce}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gpufleet_worker.diagnostics")
    p.add_argument("name", choices=sorted(MEASUREMENTS))
    a = p.parse_args(argv)
    try:
        result = MEASUREMENTS[a.name]()
    except PreconditionError as err:
        print(json.dumps({"error": "precondition", "name": a.name, "reason": str(err)}), flush=True)
        return PRECONDITION_EXIT
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
