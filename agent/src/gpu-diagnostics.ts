/**
 * GPU diagnostics the operator runs through RunDiagnostic: bf16 GEMM TFLOP/s, HBM copy GB/s and NCCL all-reduce bus
 * GB/s, measured by the Python worker's CLI (`python -m gpufleet_worker.diagnostics gemm|copy|all-reduce`, in
 * agent/worker/) on this node's GPUs, and judged here against the GPU catalog (common/src/hardware/catalog.ts).
 *
 * The CLI exits 3 with a reason when it cannot measure (no torch, no CUDA device, one GPU for an all-reduce): that
 * becomes FAILED_PRECONDITION with the reason, never a pass. `judgeGpuMeasurement` is pure (tested beside it).
 */
import { spawn } from "node:child_process";
import { gpuSpec, type GpuSpec } from "../../common/src/hardware/catalog.js";
import { FailedPreconditionError } from "./grpc/status.js";

export const GpuDiagnostic = { gemm: "gpu-gemm", copy: "hbm-copy", allReduce: "all-reduce" } as const;
export type GpuDiagnostic = (typeof GpuDiagnostic)[keyof typeof GpuDiagnostic];

/** The CLI's measurement name for each diagnostic. */
const CLI_NAME: Record<GpuDiagnostic, string> = { "gpu-gemm": "gemm", "hbm-copy": "copy", "all-reduce": "all-reduce" };

/**
 * Pass when the measurement reaches this fraction of the catalog figure. Healthy H200s here measure ~0.76 of the
 * datasheet's dense bf16 peak on an 8192^3 GEMM and ~0.88 of its HBM bandwidth on a 2 GiB copy
 * (bench/results/gpu-worker.md); NCCL's all-reduce bus bandwidth on NVLink reaches ~0.8 of the per-direction
 * NVLink figure on 8 GPUs. The bars sit well below those, so they flag a throttled or broken GPU, not noise.
 */
export const PASS_FRACTION: Record<GpuDiagnostic, number> = { "gpu-gemm": 0.6, "hbm-copy": 0.7, "all-reduce": 0.5 };

export interface GpuMeasurement {
  name: string;
  value: number;
  unit: string;
  details: Record<string, unknown>;
}

export interface DiagnosticVerdict {
  passed: boolean;
  summary: string;
  details: Record<string, string>;
}

export class GpuMeasurementError extends Error {
  override name = "GpuMeasurementError";
}

function catalogFigure(diagnostic: GpuDiagnostic, spec: GpuSpec): { value: number; what: string } {
  switch (diagnostic) {
    case "gpu-gemm":
      return { value: spec.peakTflops, what: "dense bf16 peak" };
    case "hbm-copy":
      return { value: spec.hbmBandwidthGBps, what: "HBM bandwidth" };
    case "all-reduce":
      return { value: spec.nvlinkGBpsPerDirection, what: "NVLink bandwidth per direction" };
  }
}

/** Pass/fail of one measurement against the catalog entry of the node's GPU model (pure). */
export function judgeGpuMeasurement(
  diagnostic: GpuDiagnostic,
  m: GpuMeasurement,
  gpuModel: string | undefined,
): DiagnosticVerdict {
  const details: Record<string, string> = { measured: `${m.value} ${m.unit}` };
  for (const [k, v] of Object.entries(m.details)) details[k] = typeof v === "string" ? v : JSON.stringify(v);
  if (!gpuModel)
    return {
      passed: false,
      summary: `measured ${m.value} ${m.unit}; no GPU model is known for this node, so there is nothing to judge it against`,
      details,
    };
  const spec = gpuSpec(gpuModel);
  const figure = catalogFigure(diagnostic, spec);
  const fraction = m.value / figure.value;
  const bar = PASS_FRACTION[diagnostic];
  details.catalog = `${figure.value} ${m.unit} (${gpuModel} ${figure.what})`;
  details.fraction = fraction.toFixed(3);
  details.passFraction = String(bar);
  const passed = fraction >= bar;
  return {
    passed,
    summary: `${m.value} ${m.unit} = ${fraction.toFixed(2)} of ${gpuModel}'s ${figure.what} (${figure.value}); ${passed ? "at or above" : "BELOW"} the ${bar} bar`,
    details,
  };
}

/** Parses the CLI's stdout line and exit code (pure). */
export function parseMeasurement(code: number | null, stdout: string, stderr: string): GpuMeasurement {
  const line = stdout.trim().split("\n").at(-1) ?? "";
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new GpuMeasurementError(
      `the diagnostics CLI printed no JSON (exit ${code}): ${stderr.trim().slice(-500) || line}`,
      { cause: err },
    );
  }
  const o = parsed as Record<string, unknown>;
  if (code === 3 && o.error === "precondition") throw new FailedPreconditionError(String(o.reason));
  if (code !== 0)
    throw new GpuMeasurementError(`the diagnostics CLI failed (exit ${code}): ${stderr.trim().slice(-500)}`);
  if (typeof o.value !== "number" || !Number.isFinite(o.value) || typeof o.unit !== "string")
    throw new GpuMeasurementError(`the diagnostics CLI answered no measurement: ${line}`);
  return { name: String(o.name), value: o.value, unit: o.unit, details: (o.details ?? {}) as Record<string, unknown> };
}

export interface GpuMeasurerOptions {
  /** Python with torch (on a GPU node) and the worker package on its path. */
  python: string;
  /** Folder holding the gpufleet_worker package (agent/worker in the repository). */
  workerDir: string;
}

/** Runs the worker's diagnostics CLI within the caller's budget. */
export class GpuMeasurer {
  constructor(private readonly options: GpuMeasurerOptions) {}

  measure(diagnostic: GpuDiagnostic, timeoutMs: number): Promise<GpuMeasurement> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.options.python, ["-m", "gpufleet_worker.diagnostics", CLI_NAME[diagnostic]], {
        cwd: this.options.workerDir,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on("data", (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        const err = new Error(`GPU diagnostic ${diagnostic} did not finish within ${timeoutMs} ms`);
        err.name = "TimeoutError";
        reject(err);
      }, timeoutMs);
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(
          new GpuMeasurementError(`starting ${this.options.python} for the ${diagnostic} diagnostic`, { cause: err }),
        );
      });
      child.once("close", (code) => {
        clearTimeout(timer);
        try {
          resolve(parseMeasurement(code, stdout, stderr));
        } catch (err) {
          reject(err);
        }
      });
    });
  }
}
