#!/usr/bin/env bash
# On the H200 machine (the device tool runs this from the carried .device-carry/): unpack Node and nats-server,
# run the GPU pytest suite (kernels, 2-rank gloo training), the agent-driven transcript, then the calibration sweep.
# Everything it measures or logs goes under $OUT. NVLink multicast stays off in every process.
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:?OUT, the output folder of the device tool, is required}"
bin=/tmp/gf-bin && mkdir -p "$bin"
# The image's grpcio (1.84) is older than the committed stubs need (1.85.1, requirements-ci.txt): carried as a wheel.
if compgen -G "$here/whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$here"/whl/*.whl &&
    export PYTHONPATH=/tmp/site || exit 1
fi
xz -dc "$here/bin/node.xz" >"$bin/node" && xz -dc "$here/bin/nats-server.xz" >"$bin/nats-server" && chmod +x "$bin"/*
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv; python3 -c 'import torch, triton, grpc, google.protobuf as pb, numpy; print("torch", torch.__version__, "triton", triton.__version__, "grpcio", grpc.__version__, "protobuf", pb.__version__, "numpy", numpy.__version__)'; "$bin/node" --version; "$bin/nats-server" --version; } 2>&1 | tee "$OUT/env.txt"
cd "$here/agent/worker"
if [[ "${SKIP_PYTEST:-}" != 1 ]]; then
  timeout 300 python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tail -25 | tee "$OUT/pytest-gpu.txt"
fi
OUT_DIR="$OUT/transcript" AGENT_BUNDLE="$here/agent/.device/bundle/agent.mjs" NATS_BIN="$bin/nats-server" PYTHON=python3 \
  WORKER_DIR="$here/agent/worker" BACKEND=torch NODE_NAME=h200-node-0 \
  timeout 420 "$bin/node" "$here/agent/.device/bundle/transcript.mjs" 2>&1 | tee "$OUT/transcript.txt"
(cd "$OUT/transcript" && tar czf ../transcript-logs.tgz . && cp gpu-worker-agent-transcript.json ..) || true
if [[ "${SKIP_SWEEP:-}" != 1 ]]; then
  timeout 240 python3 -m gpufleet_worker.bench.calibration_sweep "$OUT" 2>&1 | tail -80 >"$OUT/sweep.txt"
  tail -5 "$OUT/sweep.txt"
fi
rm -rf "$OUT/transcript"
ls -la "$OUT"
