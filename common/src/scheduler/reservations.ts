/**
 * A dispatcher's own in-flight dispatches, counted between load reports: an optimistic local reservation that the
 * instance's next report supersedes. Without it every request of a burst that arrives before the next report (they
 * come every few hundred ms) sees the same loads and lands on the same highest-freeness instance.
 *
 * A reservation counts in full, whatever the reported queue says: its prompt's blocks as used, one more request in
 * the batch B, its prompt tokens in the outstanding prefill; and, when the instance would make it wait (the report
 * shows a queue, or its blocks are not free), one more waiting request for admission. Counting it as a waiting
 * request instead (Llumnix's head-of-line rule, under which waiting requests behind the head count nothing) left F
 * unchanged by each reservation on an instance that reported a queue, so every request until the next report went
 * there (runs of 63-82 in a row in the gateway benchmark). Llumnix's rule still applies to what the instance reports.
 * It ends when the request finishes, or when a report generated after the dispatch arrives (that report
 * already counts the request itself), or after maxAgeMs in case no report comes. Pure bookkeeping: times are passed
 * in. Report times are the instance's clock and dispatch times the dispatcher's: they are compared directly, which
 * assumes clocks synchronised well within a report interval (NTP on the nodes).
 */
import { blocksFor, type InstanceLoad } from "./freeness.js";

export interface Demand {
  promptTokens: number;
  highPriority: boolean;
}

interface Reservation {
  instanceId: string;
  demand: Demand;
  atMs: number;
}

export class ReservationLedger {
  private readonly byRequest = new Map<string, Reservation>();

  constructor(private readonly maxAgeMs: number) {}

  reserve(requestId: string, instanceId: string, demand: Demand, atMs: number): void {
    this.byRequest.set(requestId, { instanceId, demand, atMs });
  }

  release(requestId: string): void {
    this.byRequest.delete(requestId);
  }

  /** A report generated at `reportUnixMs` already counts every request dispatched to the instance before it. */
  supersede(instanceId: string, reportUnixMs: number): void {
    for (const [id, r] of this.byRequest)
      if (r.instanceId === instanceId && r.atMs <= reportUnixMs) this.byRequest.delete(id);
  }

  expire(nowMs: number): void {
    for (const [id, r] of this.byRequest) if (nowMs - r.atMs > this.maxAgeMs) this.byRequest.delete(id);
  }

  pending(instanceId: string): Demand[] {
    const out: Demand[] = [];
    for (const r of this.byRequest.values()) if (r.instanceId === instanceId) out.push(r.demand);
    return out;
  }

  get size(): number {
    return this.byRequest.size;
  }
}

/** The load an instance would report once it has received `demands` as well. */
export function withDemands(load: InstanceLoad, demands: readonly Demand[]): InstanceLoad {
  let next = load;
  for (const d of demands) next = withDemand(next, d);
  return next;
}

export function withDemand(load: InstanceLoad, demand: Demand): InstanceLoad {
  const blocks = blocksFor(demand.promptTokens, load.blockSizeTokens);
  const free = load.kvBlocksTotal - load.kvBlocksUsed - load.headOfLineDemandBlocks;
  const waits = load.queuedRequests > 0 || blocks > free;
  return {
    ...load,
    kvBlocksUsed: load.kvBlocksUsed + blocks,
    runningRequests: load.runningRequests + 1,
    highPriorityRunning: load.highPriorityRunning + (demand.highPriority ? 1 : 0),
    queuedRequests: load.queuedRequests + (waits ? 1 : 0),
    outstandingPromptTokens: load.outstandingPromptTokens + demand.promptTokens,
  };
}
