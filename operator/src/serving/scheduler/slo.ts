/**
 * SLO attainment as the autoscale policy wants it (pure; time comes in as arguments): the share of recent samples
 * within spec.slo's TTFT and TPOT targets, per role. The read model keeps only each instance's latest report, so
 * the scheduler samples it every period: a report is one sample (counted once, by instance and report time) when
 * the instance was serving (running or queued requests); idle reports say nothing about latency. Samples older
 * than `windowMs` are dropped. TTFT counts on prefill and colocated instances, TPOT on decode and colocated ones.
 */
import type { Role } from "../pools.js";
import type { SloAttainment } from "./policy.js";

interface Sample {
  atMs: number;
  ttftOk: boolean | undefined;
  tpotOk: boolean | undefined;
}

export interface SloReport {
  id: string;
  role: Role;
  reportedUnixMs: number;
  ttftMs: number;
  tpotMs: number;
  busy: boolean;
}

export class SloWindow {
  private readonly samples = new Map<Role, Sample[]>();
  private readonly lastReport = new Map<string, number>();

  constructor(private readonly windowMs: number) {}

  add(report: SloReport, slo: { ttftMs: number; tpotMs: number }, nowMs: number): void {
    if (this.lastReport.get(report.id) === report.reportedUnixMs) return;
    this.lastReport.set(report.id, report.reportedUnixMs);
    if (!report.busy) return;
    const list = this.samples.get(report.role) ?? [];
    list.push({
      atMs: nowMs,
      ttftOk: report.role === "decode" ? undefined : report.ttftMs <= slo.ttftMs,
      tpotOk: report.role === "prefill" ? undefined : report.tpotMs <= slo.tpotMs,
    });
    this.samples.set(report.role, list);
  }

  /** Attainment of `role` over the window, or undefined when it has no sample. */
  attainment(role: Role, targetPercent: number, nowMs: number): SloAttainment | undefined {
    const list = (this.samples.get(role) ?? []).filter((s) => nowMs - s.atMs <= this.windowMs);
    this.samples.set(role, list);
    if (list.length === 0) return undefined;
    const share = (ok: (s: Sample) => boolean | undefined) => {
      const counted = list.filter((s) => ok(s) !== undefined);
      return counted.length === 0 ? 1 : counted.filter((s) => ok(s)).length / counted.length;
    };
    return {
      ttft: share((s) => s.ttftOk),
      tpot: share((s) => s.tpotOk),
      samples: list.length,
      target: targetPercent / 100,
    };
  }

  /** Forgets instances that no longer report. */
  retain(ids: ReadonlySet<string>): void {
    for (const id of this.lastReport.keys()) if (!ids.has(id)) this.lastReport.delete(id);
  }
}
