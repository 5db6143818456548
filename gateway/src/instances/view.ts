/**
 * The gateway's read model of its instances: the latest report of each, grouped into one model route per model
 * name (one ServingDeployment serves one model name), plus this replica's own reservations and the instances it
 * saw fail. Staleness is measured on this replica's clock (time since the report arrived), so clock skew between
 * nodes cannot hide a dead instance; reservations compare report times (see reservations.ts).
 */
import type { InstanceRole } from "../../../common/src/engine-api.js";
import type { Candidate } from "../../../common/src/scheduler/dispatch.js";
import { ReservationLedger, withDemands, type Demand } from "../../../common/src/scheduler/reservations.js";
import type { InstanceReport } from "./source.js";

interface Entry {
  report: InstanceReport;
  receivedAtMs: number;
  suspectUntilMs: number;
}

export interface ViewConfig {
  instanceStaleMs: number;
  modelForgetMs: number;
  suspectMs: number;
  reservationMaxAgeMs: number;
}

export const ServingMode = { colocated: "colocated", disaggregated: "disaggregated" } as const;
export type ServingMode = (typeof ServingMode)[keyof typeof ServingMode];

export interface ModelRoute {
  model: string;
  servingDeployments: string[];
  /** Live instances by role. */
  instances: Record<InstanceRole, number>;
  mode: ServingMode | undefined;
  lastSeenMs: number;
}

export class InstanceView {
  private readonly entries = new Map<string, Entry>();
  readonly ledger: ReservationLedger;

  constructor(private readonly config: ViewConfig) {
    this.ledger = new ReservationLedger(config.reservationMaxAgeMs);
  }

  apply(report: InstanceReport, nowMs: number): void {
    const previous = this.entries.get(report.id);
    if (previous && previous.report.reportedUnixMs > report.reportedUnixMs) return; // out of order
    // A suspicion outlasts new reports: an agent may keep reporting a worker whose server no longer answers.
    this.entries.set(report.id, { report, receivedAtMs: nowMs, suspectUntilMs: previous?.suspectUntilMs ?? 0 });
    this.ledger.supersede(report.id, report.reportedUnixMs);
  }

  markSuspect(instanceId: string, nowMs: number): void {
    const entry = this.entries.get(instanceId);
    if (entry) entry.suspectUntilMs = nowMs + this.config.suspectMs;
  }

  private live(entry: Entry, nowMs: number): boolean {
    return nowMs - entry.receivedAtMs <= this.config.instanceStaleMs && !entry.report.load.draining;
  }

  /** Instances of `model` and `role` that may take a request now, with this replica's reservations added. */
  candidates(model: string, role: InstanceRole, nowMs: number, exclude: ReadonlySet<string> = new Set()): Candidate[] {
    this.ledger.expire(nowMs);
    const out: Candidate[] = [];
    for (const { report, receivedAtMs, suspectUntilMs } of this.entries.values()) {
      if (report.model !== model || report.role !== role || exclude.has(report.id)) continue;
      if (nowMs - receivedAtMs > this.config.instanceStaleMs || nowMs < suspectUntilMs) continue;
      out.push({ id: report.id, role, load: withDemands(report.load, this.ledger.pending(report.id)) });
    }
    return out;
  }

  reserve(requestId: string, instanceId: string, demand: Demand, nowMs: number): void {
    this.ledger.reserve(requestId, instanceId, demand, nowMs);
  }

  release(requestId: string): void {
    this.ledger.release(requestId);
  }

  report(instanceId: string): InstanceReport | undefined {
    return this.entries.get(instanceId)?.report;
  }

  /** Model routes seen within modelForgetMs (a route whose instances all died answers 503, not 404, that long). */
  routes(nowMs: number): ModelRoute[] {
    const byModel = new Map<string, ModelRoute>();
    for (const [id, entry] of this.entries) {
      if (nowMs - entry.receivedAtMs > this.config.modelForgetMs) {
        this.entries.delete(id);
        continue;
      }
      const { model, role, servingDeployment } = entry.report;
      let route = byModel.get(model);
      if (!route)
        byModel.set(
          model,
          (route = {
            model,
            servingDeployments: [],
            instances: { colocated: 0, prefill: 0, decode: 0 },
            mode: undefined,
            lastSeenMs: 0,
          }),
        );
      if (!route.servingDeployments.includes(servingDeployment)) route.servingDeployments.push(servingDeployment);
      route.lastSeenMs = Math.max(route.lastSeenMs, entry.receivedAtMs);
      if (this.live(entry, nowMs)) route.instances[role] += 1;
      // The mode follows the roles ever reported, so a route whose decode pool died stays disaggregated (503).
      if (role === "colocated") route.mode = ServingMode.colocated;
      else route.mode ??= ServingMode.disaggregated;
    }
    return [...byModel.values()].sort((a, b) => a.model.localeCompare(b.model));
  }

  route(model: string, nowMs: number): ModelRoute | undefined {
    return this.routes(nowMs).find((r) => r.model === model);
  }
}
