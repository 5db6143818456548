#!/usr/bin/env bash
# On the H200 (the device tool runs this from a carried copy of agent/worker): the kernel bench (every correctness
# check, then the timings of v5 beside v4 in the same run), then the calibration sweep. Everything lands in $OUT.
# NVLink multicast stays off in every process (device README). SKIP_BENCH=1 / SKIP_CALIBRATE=1 leave a part out.
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
OUT="${OUT:?OUT, the output folder of the device tool, is required}"
cd "$(dirname "${BASH_SOURCE[0]}")"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv >"$OUT/env.txt" 2>&1
if [[ "${SKIP_BENCH:-}" != 1 ]]; then
  timeout "${BENCH_S:-330}" python3 -m gpufleet_worker.bench.h200 "$OUT" >"$OUT/bench-stdout.txt" 2>&1
  echo "bench exit $?"
  grep -E "FAIL|decode\[|attn B|attn v5|linear choices|done in|Error|Traceback" "$OUT/bench-stdout.txt" | cut -c1-400
fi
if [[ "${SKIP_CALIBRATE:-}" != 1 ]]; then
  mkdir -p "$OUT/cal"
  timeout "${CAL_S:-240}" python3 -m gpufleet_worker.calibrate "$OUT/cal" >"$OUT/cal/calibrate-log.txt" 2>&1
  echo "calibrate exit $?"
  grep -E "prefill|Error|Traceback" "$OUT/cal/calibrate-log.txt" | tail -30
fi
