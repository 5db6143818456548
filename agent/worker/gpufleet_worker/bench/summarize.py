"""Turns the H200 run's raw JSON into bench/results/gpu-worker.{json,md} (stdlib only, runs anywhere).

python -m gpufleet_worker.bench.summarize RAW.json OUT_PREFIX
"""

from __future__ import annotations

import json
import sys

# the engine as shipped: v5's attention (merge inside the kernel where measured faster) with v4's linear choices;
# the split-K linear row of the same run is slower in the step at B=1 and stays a measured, unused option
MAIN_DECODE = "v5 attention only (merge inside the kernel) + v4 linear"
BASELINE_DECODE = "v4 fused linear (norm/SiLU/residual in the GEMMs) + triton-paged"
DECODE_TARGET, PREFILL_TARGET = 0.80, 0.75


def summarize(raw: dict) -> dict:
    model = raw["model"]
    decode = model["decode"]
    main = decode[MAIN_DECODE]
    prefill = model["prefill"]
    attn = raw["attention"]["rows"]
    return {
        "gpu": raw["gpu"],
        "software": {"torch": raw["torch"], "triton": raw["triton"], "nvidiaSmi": raw["nvidiaSmi"]},
        "model": {
            "name": model["model"],
            "weightBytes": model["weightBytes"],
            "kvBytesPerToken": model["kvBytesPerToken"],
            "weights": "random bf16",
            "decodeContextTokens": model["decodeContextTokens"],
        },
        "measuredCopyGBps": raw["measuredCopyGBps"],
        "measuredMatmulTflops": raw["measuredMatmulTflops"],
        "decodeFractionOfCopyBw": {b: round(v["fractionOfCopyBw"], 4) for b, v in main.items()},
        "decodeStepMs": {b: round(v["stepMs"], 4) for b, v in main.items()},
        "decodeVersions": {
            name: {
                b: {"stepMs": round(v["stepMs"], 4), "fractionOfCopyBw": round(v["fractionOfCopyBw"], 4)}
                for b, v in rows.items()
            }
            for name, rows in decode.items()
        },
        "decodeBaseline": BASELINE_DECODE,
        "decodeVsBaseline": {b: round(decode[BASELINE_DECODE][b]["stepMs"] / v["stepMs"], 4) for b, v in main.items()},
        "decodeLinearSweep": {
            m: {
                name: {
                    "weightBytes": r["weightBytes"],
                    "cublasMs": round(r["cublasMs"], 4),
                    "cublasFractionOfCopyBw": round(r["cublasGBps"] / raw["measuredCopyGBps"], 4),
                    "fusedMs": round(r["fusedMs"], 4) if r["fusedMs"] else None,
                    "fusedFractionOfCopyBw": round(r["fusedGBps"] / raw["measuredCopyGBps"], 4)
                    if r["fusedMs"]
                    else None,
                    "fusedConfig": r["bestConfig"],
                    "chosen": r.get("chosen", ""),
                    "v4Ms": round(r["v4Ms"], 4) if r.get("v4Ms") else None,
                    "v4FractionOfCopyBw": round(
                        r["weightBytes"] / (r["v4Ms"] * 1e-3) / 1e9 / raw["measuredCopyGBps"], 4
                    )
                    if r.get("v4Ms")
                    else None,
                    "v4Config": r.get("v4Config"),
                    "v4Chosen": r.get("v4Chosen", ""),
                }
                for name, r in rows.items()
            }
            for m, rows in model.get("linearSweep", {}).items()
        },
        "decodeKernelProfile": {
            version: {
                b: {
                    "kernelUsPerStep": round(sum(r["usPerStep"] for r in rows), 1),
                    "launchesPerStep": round(sum(r["perStep"] for r in rows)),
                    "kernels": [
                        {
                            "name": r["name"][:120],
                            "usPerStep": round(r["usPerStep"], 1),
                            "perStep": round(r["perStep"], 1),
                        }
                        for r in rows[:12]
                    ],
                }
                for b, rows in by_b.items()
            }
            for version, by_b in model.get("decodeKernelProfile", {}).items()
        },
        "prefillFractionOfMatmulPeak": round(prefill["fractionOfMatmulPeak"], 4),
        "prefill": {
            "tokens": prefill["tokens"],
            "stepMs": round(prefill["stepMs"], 3),
            "flops": prefill["flops"],
            "plainOpsStepMs": round(model["prefillPlainOpsMs"], 3),
            "gemmOnlyMsPerLayer": round(prefill["gemmOnlyLayerMs"], 4),
            "gemmOnlyFractionOfPeak": round(prefill["gemmOnlyFractionOfPeak"], 4),
        },
        "targets": {
            "decodeFractionOfCopyBw": DECODE_TARGET,
            "decodeMet": {b: v["fractionOfCopyBw"] >= DECODE_TARGET for b, v in main.items()},
            "prefillFractionOfMatmulPeak": PREFILL_TARGET,
            "prefillMet": prefill["fractionOfMatmulPeak"] >= PREFILL_TARGET,
        },
        "pagedDecodeAttention": [
            {
                "batch": r["batch"],
                "context": r["context"],
                "tritonUs": round(r["tritonPartitionByBatchUs"], 2),
                "partition": r["partitionByBatch"],
                "torchPagedUs": round(r["torchPagedUs"], 2),
                "torchDenseSdpaUs": round(r["torchDenseSdpaUs"], 2),
                "speedupVsTorchPaged": round(r["torchPagedUs"] / r["tritonPartitionByBatchUs"], 3),
                "speedupVsDenseSdpa": round(r["torchDenseSdpaUs"] / r["tritonPartitionByBatchUs"], 3),
                "v5FusedMergeUs": round(r["fusedMergeBestUs"], 2) if "fusedMergeBestUs" in r else None,
                "v5Partition": r.get("fusedMergeBestPartition"),
                "v5Uses": r.get("v5Uses"),
                "v4SameContextUs": round(r["separateMergeSameContextUs"], 2)
                if "separateMergeSameContextUs" in r
                else None,
                "v5FusedMergeByPartitionUs": {p: round(t, 2) for p, t in r.get("fusedMergeUs", {}).items()},
                "tritonFractionOfCopyBw": round(
                    r["kvBytes"] / (r["tritonPartitionByBatchUs"] * 1e-6) / 1e9 / raw["measuredCopyGBps"], 4
                ),
            }
            for r in attn
        ],
        "attentionTuning": raw["attention"]["bestTuning"],
        "kvTransfer": [
            {
                "tokens": r["tokens"],
                "payloadBytes": r["payloadBytes"],
                "gatherMs": round(r["gatherMs"], 4),
                "scatterMs": round(r["scatterMs"], 4),
                "gatherGBps": round(r["gatherGBps"], 1),
                "scatterGBps": round(r["scatterGBps"], 1),
                "oneGpuCopyDowntimeMs": round(r["oneGpuCopyDowntimeMs"], 4),
                "torchIndexGatherMs": round(r["torchIndexGatherMs"], 4),
            }
            for r in model["kvTransfer"]
        ],
        "correctness": [{k: v for k, v in r.items()} for r in raw["correctness"]],
        "correctnessAllOk": all(r["ok"] for r in raw["correctness"]),
        "modelMaxErrorPercent": None,
        "modelMaxErrorPercentNote": "not measured: calibrating the planner's latency model from these runs is a later "
        "step of issue 14",
    }


def markdown(s: dict) -> str:
    L = [f"# GPU worker on {s['gpu']} ({s['model']['name']} shapes, random bf16 weights)", ""]
    L.append(
        f"Ceilings measured in the same run: copy {s['measuredCopyGBps']:.0f} GB/s (read + write), "
        f"bf16 matmul {s['measuredMatmulTflops']:.0f} TFLOP/s (8192^3, random data). torch "
        f"{s['software']['torch']}, Triton {s['software']['triton']}."
    )
    L += [
        "",
        "## Decode step (CUDA graph replay, context 1024 per sequence)",
        "",
        "| version | B=1 | B=32 | B=128 |",
        "| --- | --- | --- | --- |",
    ]
    for name, rows in s["decodeVersions"].items():
        cells = [f"{rows[b]['stepMs']:.2f} ms, {rows[b]['fractionOfCopyBw']:.3f}" for b in ("1", "32", "128")]
        L.append(f"| {name} | " + " | ".join(cells) + " |")
    met = s["targets"]["decodeMet"]
    L += [
        "",
        f"Fraction = (weights read + KV read and written) / step time / copy bandwidth. Target "
        f"{s['targets']['decodeFractionOfCopyBw']}: {'met' if all(met.values()) else 'MISSED'} "
        f"({', '.join(f'B={b}: {v:.3f}' for b, v in s['decodeFractionOfCopyBw'].items())}); "
        f"{s['decodeBaseline']} is the baseline of the same run "
        f"(speed-up {', '.join(f'B={b}: {v:.3f}x' for b, v in s['decodeVsBaseline'].items())}).",
        "",
    ]
    if s["decodeLinearSweep"]:
        L += [
            "v4 and v5 name what the runner can fuse; each picks, per layer and batch, whichever of fused_linear "
            "and cuBLAS the sweep below measured faster (v4 among its own tiles, v5 among those and the split-K "
            "tiles, whose 5th field is SPLIT_K). v5 also merges the attention partitions inside the attention "
            "kernel (no second launch) with the partition measured best per batch (attention table below).",
            "",
        ]
    if s["decodeLinearSweep"]:
        L += [
            "### Decode linear layers alone (all 32 layers' weights in turn, CUDA graph; fraction of copy bandwidth)",
            "",
            "| M | layer | weights | cuBLAS + its elementwise kernels | fused_linear, v4 tiles | v4 used "
            "| fused_linear, best tile incl. split-K | tile (BLOCK_N, BLOCK_K, warps, stages[, SPLIT_K]) | v5 used |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for m, rows in s["decodeLinearSweep"].items():
            for name, r in rows.items():
                refused = "not run (norm prologue refused past 32 rows)"
                v4 = f"{r['v4Ms'] * 1e3:.0f} us, {r['v4FractionOfCopyBw']:.3f}" if r.get("v4Ms") else refused
                best = f"{r['fusedMs'] * 1e3:.0f} us, {r['fusedFractionOfCopyBw']:.3f}" if r["fusedMs"] else refused
                L.append(
                    f"| {m} | {name} | {r['weightBytes'] / 1e9:.2f} GB | {r['cublasMs'] * 1e3:.0f} us, "
                    f"{r['cublasFractionOfCopyBw']:.3f} | {v4} | {r.get('v4Chosen', '')} | {best} | "
                    f"{r['fusedConfig']} | {r['chosen']} |"
                )
        L.append("")
    if s["decodeKernelProfile"]:
        L += [
            "### Kernels of one decode step (torch.profiler, eager steps with the graph's buffers)",
            "",
            "| version | B | kernel time a step | launches a step | largest kernels (us a step, launches) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for version, by_b in s["decodeKernelProfile"].items():
            for b, p in by_b.items():
                top = "; ".join(f"{k['name'][:48]} {k['usPerStep']:.0f} ({k['perStep']:.0f})" for k in p["kernels"][:5])
                L.append(f"| {version} | {b} | {p['kernelUsPerStep'] / 1e3:.3f} ms | {p['launchesPerStep']} | {top} |")
        L.append("")
    p = s["prefill"]
    L += [
        "## Prefill (one 2048-token prompt, eager)",
        "",
        f"{p['stepMs']:.2f} ms for {p['flops'] / 1e12:.2f} TFLOP = {s['prefillFractionOfMatmulPeak']:.3f} of the "
        f"matmul peak (target {s['targets']['prefillFractionOfMatmulPeak']}: "
        f"{'met' if s['targets']['prefillMet'] else 'MISSED'}); plain torch ops {p['plainOpsStepMs']:.2f} ms. "
        f"The layer's four GEMMs alone: {p['gemmOnlyMsPerLayer']:.3f} ms ({p['gemmOnlyFractionOfPeak']:.3f} of peak).",
        "",
        "## Paged decode attention, one layer (32 q heads, 8 KV heads, D=128, BS=16; inside CUDA graphs)",
        "",
        "| batch x context | ours v4: partition + merge launch (partition) | v4 at the step's longest context "
        "(+16) | ours v5: merge in the kernel, at +16 (best partition) | v5 uses | torch paged (gather + SDPA) "
        "| dense SDPA (no paging) | v4 vs torch paged | v5 vs torch paged | v4 / copy bw |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in s["pagedDecodeAttention"]:
        v5 = f"{r['v5FusedMergeUs']:.1f} us ({r['v5Partition']})" if r.get("v5FusedMergeUs") else "not run"
        v5x = f"{r['torchPagedUs'] / r['v5FusedMergeUs']:.2f}x" if r.get("v5FusedMergeUs") else ""
        L.append(
            f"| {r['batch']} x {r['context']} | {r['tritonUs']:.1f} us ({r['partition']}) | "
            f"{r.get('v4SameContextUs') or 0:.1f} us | {v5} | {r.get('v5Uses') or ''} | "
            f"{r['torchPagedUs']:.1f} us | {r['torchDenseSdpaUs']:.1f} us | {r['speedupVsTorchPaged']:.2f}x | "
            f"{v5x} | {r['tritonFractionOfCopyBw']:.2f} |"
        )
    L += [
        "",
        "## KV export / import by blocks (all 32 layers, one GPU)",
        "",
        "| tokens | payload | gather (export) | scatter (import) | gather + scatter |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in s["kvTransfer"]:
        L.append(
            f"| {r['tokens']} | {r['payloadBytes'] / 1e6:.1f} MB | {r['gatherMs']:.3f} ms ({r['gatherGBps']:.0f} GB/s) "
            f"| {r['scatterMs']:.3f} ms ({r['scatterGBps']:.0f} GB/s) | {r['oneGpuCopyDowntimeMs']:.3f} ms |"
        )
    L += [
        "",
        "Gather + scatter is the on-GPU part of a migration's downtime if the whole KV were copied while the "
        "request is paused (no network: both ends on one GPU). GB/s counts the payload once; the copy moves twice "
        "that (read + write). Llumnix's staged migration copies only the last stage's blocks during the pause.",
        "",
        "## Correctness (fresh random inputs, this run)",
        "",
        "| check | result | error |",
        "| --- | --- | --- |",
    ]
    for r in s["correctness"]:
        err = r.get("relErr", r.get("mismatches", r.get("error", "")))
        err = f"{err:.2e}" if isinstance(err, float) else str(err)
        L.append(f"| {r['case']} | {'pass' if r['ok'] else 'FAIL'} | {err} |")
    L += ["", f"`modelMaxErrorPercent`: {s['modelMaxErrorPercentNote']}.", ""]
    return "\n".join(L)


# written into the same files by `npm run calibrate -- --write-results` (scripts/calibrate.ts): kept across re-runs
CALIBRATION_KEYS = ("modelMaxErrorPercent", "calibration", "migrationDowntimeModel")
CALIBRATION_MARKER = "\n## Latency model vs measured (calibration)\n"


def keep_calibration(s: dict, md: str, old_json: dict | None, old_md: str | None) -> tuple[dict, str]:
    """Carries the calibration section of the previous files over, so a kernel re-run does not erase it."""
    if old_json and old_json.get("calibration") is not None:
        s.pop("modelMaxErrorPercentNote", None)
        for k in CALIBRATION_KEYS:
            if k in old_json:
                s[k] = old_json[k]
        md = "\n".join(line for line in md.split("\n") if not line.startswith("`modelMaxErrorPercent`: not measured"))
    if old_md and CALIBRATION_MARKER in old_md:
        md = md.rstrip("\n") + "\n" + CALIBRATION_MARKER + old_md.split(CALIBRATION_MARKER, 1)[1]
    return s, md


if __name__ == "__main__":
    import os

    with open(sys.argv[1]) as f:
        raw = json.load(f)
    prefix = sys.argv[2]
    old_json = old_md = None
    if os.path.exists(prefix + ".json"):
        with open(prefix + ".json") as f:
            old_json = json.load(f)
    if os.path.exists(prefix + ".md"):
        with open(prefix + ".md") as f:
            old_md = f.read()
    summary = summarize(raw)
    s, md = keep_calibration(summary, markdown(summary), old_json, old_md)
    with open(prefix + ".json", "w") as f:
        json.dump(s, f, indent=2)
        f.write("\n")
    with open(prefix + ".md", "w") as f:
        f.write(md)
