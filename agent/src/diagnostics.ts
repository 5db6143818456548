/**
 * Node diagnostics the operator can run: re-check the GPU inventory and NIC links against what was published,
 * and look for RDMA error counters moving. Each gets the caller's remaining deadline as its budget.
 */
import type { NodeFacts } from "./discovery/facts.js";
import { scaleOutNics } from "./discovery/facts.js";
import type { Diagnostic, DiagnosticResult, Diagnostics } from "./grpc/node-agent-service.js";
import type { PortRates } from "./telemetry/rdma.js";
import { judgeGpuMeasurement, type GpuMeasurement, type GpuDiagnostic } from "./gpu-diagnostics.js";
import { FailedPreconditionError } from "./grpc/status.js";

export interface DiagnosticSources {
  /** Fresh facts for a node (rediscovery on a real node; the node's facts in simulation). */
  rediscover(nodeName: string, timeoutMs: number): Promise<NodeFacts>;
  /** Published labels the facts are compared with. */
  publishedLabels(nodeName: string): Record<string, string> | undefined;
  /** Counter rates over an interval within the budget; undefined where there are no RDMA counters (simulation). */
  sampleRdma(nodeName: string, budgetMs: number): Promise<PortRates[] | undefined>;
  /** Runs a GPU measurement on the node (gpu-diagnostics.ts); undefined where there is none (simulation). */
  measureGpu?(nodeName: string, diagnostic: GpuDiagnostic, budgetMs: number): Promise<GpuMeasurement>;
}

export class TimeoutError extends Error {
  override name = "TimeoutError";
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

export class NodeDiagnostics implements Diagnostics {
  constructor(private readonly sources: DiagnosticSources) {}

  async run(nodeName: string, diagnostic: Diagnostic, timeoutMs: number): Promise<DiagnosticResult> {
    switch (diagnostic) {
      case "gpu-inventory": {
        const facts = await within(this.sources.rediscover(nodeName, timeoutMs), timeoutMs, "GPU discovery");
        const expected = this.sources.publishedLabels(nodeName) ?? {};
        // From the GPUs alone (not factsToLabels): a node whose NICs give no labels still has GPUs to check.
        const models = [...new Set(facts.gpus.map((g) => g.model ?? g.productName))];
        const found: Record<string, string> = {
          "gpufleet.io/gpu-model": models.join("+"),
          "gpufleet.io/gpu-count": String(facts.gpus.length),
        };
        const mismatched = ["gpufleet.io/gpu-model", "gpufleet.io/gpu-count"].filter(
          (k) => expected[k] !== undefined && expected[k] !== found[k],
        );
        const none = facts.gpus.length === 0;
        return {
          passed: mismatched.length === 0 && !none,
          summary: none
            ? "no GPUs discovered"
            : mismatched.length === 0
              ? `${facts.gpus.length} x ${found["gpufleet.io/gpu-model"]}${Object.keys(expected).length ? " as published" : " (no labels published to compare with)"}`
              : `GPU inventory differs from labels: ${mismatched.map((k) => `${k} published ${expected[k]}, found ${found[k]}`).join("; ")}`,
          details: Object.fromEntries(
            facts.gpus.map((g) => [`gpu${g.index}`, `${g.uuid} ${g.productName} ${g.pciBusId} numa=${g.numaNode}`]),
          ),
        };
      }
      case "nic-links": {
        const facts = await within(this.sources.rediscover(nodeName, timeoutMs), timeoutMs, "NIC discovery");
        const rdma = facts.nics.filter((n) => n.type !== "ethernet");
        const candidates = rdma.length > 0 ? rdma : facts.nics;
        const down = candidates.filter((n) => !n.active);
        return {
          passed: down.length === 0 && scaleOutNics(facts.nics).length > 0,
          summary:
            down.length === 0
              ? `${candidates.length} links up`
              : `${down.length} of ${candidates.length} links not active: ${down.map((n) => `${n.device}/${n.port} ${n.state}`).join(", ")}`,
          details: Object.fromEntries(
            candidates.map((n) => [`${n.device}/${n.port}`, `${n.type} ${n.bandwidthGbps}Gb/s ${n.state}`]),
          ),
        };
      }
      case "gpu-gemm":
      case "hbm-copy":
      case "all-reduce": {
        if (!this.sources.measureGpu)
          throw new FailedPreconditionError(
            `${diagnostic} measures real GPUs; node ${nodeName} has none this agent can run on (simulated)`,
          );
        const m = await this.sources.measureGpu(nodeName, diagnostic, timeoutMs);
        // The published label, else what discovery says (a node whose labels could not be published still has GPUs).
        const model =
          this.sources.publishedLabels(nodeName)?.["gpufleet.io/gpu-model"] ??
          (await within(this.sources.rediscover(nodeName, timeoutMs), timeoutMs, "GPU discovery")).gpus[0]?.model;
        return judgeGpuMeasurement(diagnostic, m, model);
      }
      case "rdma-counters": {
        const rates = await within(this.sources.sampleRdma(nodeName, timeoutMs), timeoutMs, "RDMA counter sampling");
        if (!rates) return { passed: true, summary: "no RDMA counters on this node (simulated)", details: {} };
        const errors = rates.filter((r) => Object.values(r.errorDeltas).some((d) => d > 0) || r.saturated.length > 0);
        return {
          passed: errors.length === 0,
          summary:
            errors.length === 0
              ? `${rates.length} ports, no error counters moved`
              : `${errors.length} ports with errors`,
          details: Object.fromEntries(
            rates.map((r) => [
              `${r.device}/${r.port}`,
              JSON.stringify({
                errors: r.errorDeltas,
                saturated: r.saturated,
                txBytesPerSec: Math.round(r.transmitBytesPerSec),
              }),
            ]),
          ),
        };
      }
    }
  }
}
