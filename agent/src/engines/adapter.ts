/**
 * The load adapter's loop (thin): register with the node agent as the instance's worker, heartbeat, scrape the
 * engine's /metrics, and report its load (engine-load.ts) over the worker socket, exactly as the reference worker
 * does, so the agent publishes it to the operator and the gateway. Commands from the agent: Drain is applied (the
 * report says draining, and the gateway stops dispatching there); everything else, live migration first, is
 * rejected before any effect, since vLLM and SGLang cannot carry it out.
 */
import type { LoadReport } from "../grpc/generated/gpufleet/worker/v1/LoadReport.js";
import type { WorkerCommand__Output } from "../grpc/generated/gpufleet/worker/v1/WorkerCommand.js";
import type { AdapterConfig } from "./config.js";
import { engineLoad, type Reading } from "./engine-load.js";
import { parsePrometheusText } from "./prometheus-text.js";

/** The part of the agent's WorkerClient the adapter uses. */
export interface AgentLink {
  register(request: {
    workerId: string;
    podNamespace: string;
    podName: string;
    podUid: string;
    nodeName: string;
    kind: string;
    gpuUuids: string[];
    rank: number;
    worldSize: number;
    simulated: boolean;
  }): Promise<{ heartbeatIntervalMs: number }>;
  heartbeat(workerId: string): Promise<unknown>;
  reportLoad(report: LoadReport): Promise<unknown>;
  ackCommand(ack: { workerId: string; commandId: string; outcome: string; reason: string }): Promise<unknown>;
}

const WORKER_KIND = { prefill: "serving-prefill", decode: "serving-decode", colocated: "serving" } as const;

/** What a command from the agent becomes for an engine that cannot migrate. */
export function commandOutcome(
  command: WorkerCommand__Output,
  kind: string,
): { outcome: "applied" | "rejected"; reason: string; drain: boolean } {
  if (command.drain)
    return {
      outcome: "applied",
      reason: "draining: the load report says so and the gateway sends no new requests",
      drain: true,
    };
  const what = command.command ?? "unknown";
  return {
    outcome: "rejected",
    reason: `${kind} instances do not support ${what} (no live migration or fault injection; docs/engines.md)`,
    drain: false,
  };
}

export class EngineAdapter {
  readonly workerId: string;
  private reading: Reading | undefined;
  private draining = false;

  constructor(
    private readonly config: AdapterConfig,
    private readonly agent: AgentLink,
    private readonly fetchText: (url: string) => Promise<string>,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.workerId = `${config.podUid}/engine`;
  }

  async register(): Promise<number> {
    const c = this.config;
    const answer = await this.agent.register({
      workerId: this.workerId,
      podNamespace: c.podNamespace,
      podName: c.podName,
      podUid: c.podUid,
      nodeName: c.nodeName,
      kind: WORKER_KIND[c.role],
      gpuUuids: [],
      rank: -1,
      worldSize: 0,
      simulated: false,
    });
    return answer.heartbeatIntervalMs;
  }

  /** One scrape and report; returns the report sent. */
  async scrapeAndReport(): Promise<LoadReport> {
    const c = this.config;
    const text = await this.fetchText(c.metricsUrl);
    const now = this.nowMs();
    const { load, reading } = engineLoad(c.kind, parsePrometheusText(text), now, this.reading);
    this.reading = reading;
    const report: LoadReport = {
      workerId: this.workerId,
      unixMs: now,
      ...load,
      kvCacheUsedBytes: 0,
      role: c.role,
      model: c.model,
      tp: c.tp,
      pp: c.pp,
      gpuModel: c.gpuModel,
      draining: this.draining,
      engineUrl: c.engineUrl,
      servingDeployment: c.servingDeployment,
      // The gateway speaks this engine's own P/D hand-off (common/src/engine-pd.ts) and needs SGLang's port for it.
      engine: c.kind,
      disaggregationBootstrapPort: c.bootstrapPort ?? 0,
    };
    await this.agent.reportLoad(report);
    return report;
  }

  async handleCommand(command: WorkerCommand__Output): Promise<void> {
    const { outcome, reason, drain } = commandOutcome(command, this.config.kind);
    if (drain) this.draining = true;
    await this.agent.ackCommand({ workerId: this.workerId, commandId: command.commandId, outcome, reason });
  }
}
