/**
 * The gateway's read model of its instances: the latest report of each, grouped into one model route per model
 * name (one ServingDeployment serves one model name), plus this replica's own reservations and the instances it
 * saw fail. Staleness is measured on this replica's clock (time since the report arrived), so clock skew between
 * nodes cannot hide a dead instance; reservations compare report times (see reservations.ts).
 *
 * When the source itself goes away (NATS down: no instance can report, dead or alive), the view holds: time since
 * the source went down does not age the reports, so the gateway keeps routing from its last view instead of
 * refusing every request 5 s into the outage. The hold is bounded (sourceOutageHoldMs; after it, reports age again
 * and go stale as usual) and ends with the first report after the source is back; the reports then get the held
 * time as credit, so none goes stale in the gap before its next report arrives. An instance that died meanwhile is
 * still caught by its failed calls (markSuspect).
 */
import type { InstanceRole } from "../../../common/src/engine-api.js";
import type { EngineKind } from "../../../crds/src/serving-deployment.js";
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
  /** How long a source outage may hold the view (reports do not age); 0 or absent: no hold. */
  sourceOutageHoldMs?: number;
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
  /** When the source went down, while no report arrived since (undefined: the source delivers). */
  private sourceDownSinceMs: number | undefined;

  constructor(private readonly config: ViewConfig) {
    this.ledger = new ReservationLedger(config.reservationMaxAgeMs);
  }

  /** The source lost its connection: hold the view (bounded) until a report arrives again. */
  sourceDown(nowMs: number): void {
    this.sourceDownSinceMs ??= nowMs;
  }

  /** How long the view has held so far (0 when the source delivers); counts beyond the bound too. */
  heldForMs(nowMs: number): number {
    return this.sourceDownSinceMs === undefined ? 0 : Math.max(0, nowMs - this.sourceDownSinceMs);
  }

  /** Time the current hold keeps a report received at `receivedAtMs` from ageing. */
  private heldMs(receivedAtMs: number, nowMs: number): number {
    const since = this.sourceDownSinceMs;
    if (since === undefined || receivedAtMs > since) return 0;
    return Math.max(0, Math.min(nowMs - since, this.config.sourceOutageHoldMs ?? 0));
  }

  private ageMs(entry: Entry, nowMs: number): number {
    return nowMs - entry.receivedAtMs - this.heldMs(entry.receivedAtMs, nowMs);
  }

  /** The source delivers again: every report received before the outage is credited with the held time. */
  private endHold(nowMs: number): void {
    for (const entry of this.entries.values()) entry.receivedAtMs += this.heldMs(entry.receivedAtMs, nowMs);
    this.sourceDownSinceMs = undefined;
  }

  /**
   * `nowMs`: when the report reached the transport (earlier than now for a replayed one); `deliveredAtMs`: now, when
   * the source handed it over, which ends a hold.
   */
  apply(report: InstanceReport, nowMs: number, deliveredAtMs = nowMs): void {
    if (this.sourceDownSinceMs !== undefined) this.endHold(deliveredAtMs);
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
    return this.ageMs(entry, nowMs) <= this.config.instanceStaleMs && !entry.report.load.draining;
  }

  /**
   * Instances of `model` and `role` that may take a request now, with this replica's reservations added; with
   * `engine`, only those of that engine (the two halves of a disaggregated request must speak the same hand-off,
   * also while a rollout from one engine to another runs both).
   */
  candidates(
    model: string,
    role: InstanceRole,
    nowMs: number,
    exclude: ReadonlySet<string> = new Set(),
    engine?: EngineKind,
  ): Candidate[] {
    this.ledger.expire(nowMs);
    const out: Candidate[] = [];
    for (const entry of this.entries.values()) {
      const { report, suspectUntilMs } = entry;
      if (report.model !== model || report.role !== role || exclude.has(report.id)) continue;
      if (engine !== undefined && report.engine !== engine) continue;
      if (this.ageMs(entry, nowMs) > this.config.instanceStaleMs || nowMs < suspectUntilMs) continue;
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
      if (this.ageMs(entry, nowMs) > this.config.modelForgetMs) {
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
