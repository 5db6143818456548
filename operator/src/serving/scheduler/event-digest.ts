/**
 * Rate-limited migration Events (pure; the clock comes in as arguments). Llumnix migrates continuously: a busy
 * deployment can move thousands of requests an hour, and one Event each would bury everything else `kubectl
 * describe` shows. Per deployment and window, the first `burst` outcomes get an Event each (MigrationCompleted /
 * MigrationFailed naming the request, source, destination and downtime or reason); the rest are counted, and when
 * the window closes one summary Event says how many more completed and failed, with their downtime and the most
 * common failure reasons. Metrics count every migration regardless.
 */
import type { PendingEvent } from "../../runtime/status.js";

export const MigrationEventReason = {
  /** One migration committed: the destination owns the request. */
  MigrationCompleted: "MigrationCompleted",
  /** One migration did not commit; the request kept streaming from its source. */
  MigrationFailed: "MigrationFailed",
  /** Summary of the migrations beyond the per-window burst. */
  MigrationsSummarized: "MigrationsSummarized",
} as const;

export interface MigrationOutcome {
  requestId: string;
  source: string;
  destination: string;
  ok: boolean;
  /** Time the request produced no token because of the move, when the worker reported it. */
  downtimeMs?: number;
  /** Why it failed (the worker's reason, or why the command did not reach it). */
  reason?: string;
}

export interface DigestConfig {
  windowMs: number;
  burst: number;
}

export const DEFAULT_DIGEST_CONFIG: DigestConfig = { windowMs: 60_000, burst: 5 };

interface Window {
  startMs: number;
  emitted: number;
  completed: number;
  failed: number;
  downtimesMs: number[];
  reasons: Map<string, number>;
}

export class MigrationEventDigest {
  private readonly windows = new Map<string, Window>();

  constructor(private readonly config: DigestConfig = DEFAULT_DIGEST_CONFIG) {}

  /** The Event for this outcome, or undefined when the window's burst is spent (it goes into the summary). */
  add(key: string, outcome: MigrationOutcome, nowMs: number): PendingEvent | undefined {
    let w = this.windows.get(key);
    if (!w)
      this.windows.set(
        key,
        (w = { startMs: nowMs, emitted: 0, completed: 0, failed: 0, downtimesMs: [], reasons: new Map() }),
      );
    if (w.emitted < this.config.burst) {
      w.emitted++;
      return eventFor(outcome);
    }
    if (outcome.ok) {
      w.completed++;
      if (outcome.downtimeMs !== undefined) w.downtimesMs.push(outcome.downtimeMs);
    } else {
      w.failed++;
      const reason = outcome.reason ?? "unknown";
      w.reasons.set(reason, (w.reasons.get(reason) ?? 0) + 1);
    }
    return undefined;
  }

  /** Summary Events of windows that have closed, per key; closed windows are forgotten. */
  flush(nowMs: number): { key: string; event: PendingEvent }[] {
    const out: { key: string; event: PendingEvent }[] = [];
    for (const [key, w] of this.windows) {
      if (nowMs - w.startMs < this.config.windowMs) continue;
      this.windows.delete(key);
      if (w.completed + w.failed > 0) out.push({ key, event: summaryOf(w, this.config.windowMs) });
    }
    return out;
  }
}

function eventFor(o: MigrationOutcome): PendingEvent {
  const move = `request ${o.requestId} from ${o.source} to ${o.destination}`;
  if (o.ok) {
    const downtime = o.downtimeMs !== undefined ? `, downtime ${round(o.downtimeMs)} ms` : "";
    return { type: "Normal", reason: MigrationEventReason.MigrationCompleted, message: `migrated ${move}${downtime}` };
  }
  return {
    type: "Warning",
    reason: MigrationEventReason.MigrationFailed,
    message: `migrating ${move} failed: ${o.reason ?? "unknown"}; the request stays on its source`,
  };
}

function summaryOf(w: Window, windowMs: number): PendingEvent {
  const parts: string[] = [];
  if (w.completed > 0) {
    const d = w.downtimesMs;
    const downtime =
      d.length > 0
        ? ` (downtime mean ${round(d.reduce((a, b) => a + b, 0) / d.length)} ms, max ${round(Math.max(...d))} ms)`
        : "";
    parts.push(`${w.completed} more migrations completed${downtime}`);
  }
  if (w.failed > 0) {
    const top = [...w.reasons.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([r, n]) => `${n}× ${r}`);
    parts.push(`${w.failed} more failed (${top.join("; ")})`);
  }
  return {
    type: w.failed > 0 ? "Warning" : "Normal",
    reason: MigrationEventReason.MigrationsSummarized,
    message: `${parts.join(", ")} in the ${Math.round(windowMs / 1000)} s after the first ${w.emitted} migration events`,
  };
}

const round = (x: number) => Math.round(x * 10) / 10;
