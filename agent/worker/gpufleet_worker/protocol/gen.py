"""Regenerates the Python stubs of the worker protocol: python -m gpufleet_worker.protocol.gen

Stubs are committed (as the TypeScript ones are, `npm run gen:proto`) so that a worker image needs only grpcio and
protobuf at run time; tests/test_protocol.py regenerates into a temporary folder and fails when the committed copy
is stale. protoc writes `from gpufleet.worker.v1 import worker_pb2` in the service module; it is rewritten to a
relative import so the stubs live inside this package without touching sys.path.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parents[2] / "proto"  # agent/proto
PROTO = "gpufleet/worker/v1/worker.proto"
GENERATED = HERE / "generated"
FILES = ("worker_pb2.py", "worker_pb2.pyi", "worker_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    from grpc_tools import protoc  # test/dev dependency only

    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_ROOT / PROTO),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO_ROOT / PROTO}")
    nested = out_dir / "gpufleet" / "worker" / "v1"
    written = []
    for name in FILES:
        text = (nested / name).read_text()
        text = text.replace("from gpufleet.worker.v1 import worker_pb2 as", "from . import worker_pb2 as")
        (out_dir / name).write_text(text)
        (nested / name).unlink()
        written.append(out_dir / name)
    for d in (nested, nested.parent, nested.parent.parent):
        d.rmdir()
    return written


if __name__ == "__main__":
    for p in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else GENERATED):
        print(p)
