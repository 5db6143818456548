/**
 * A dispatcher's own in-flight dispatches, counted between load reports: an optimistic local reservation that the
 * instance's next report supersedes. Without it every request of a burst that arrives before the next report (they
 * come every few hundred ms) sees the same loads and lands on the same highest-freeness instance.
 *
 * A reservation adds the request's demand to the instance as queued work (its prompt's blocks as head-of-line
 * demand when the instance had no queue, one more request in the batch, its prompt tokens to the outstanding
 * prefill). It ends when the request finishes, or when a report generated after the dispatch arrives (that report
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
    for (const [id, r] of this.byRequest) if (r.instanceId === instanceId && r.atMs <= reportUnixMs) this.byRequest.delete(id);
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
  // Admitted at once if its blocks are free (then it runs, holding them); else it waits, and only the first
  // waiting request counts its demand (Llumnix's head-of-line rule).
  if (load.queuedRequests === 0 && blocks <= free) {
    return {
      ...load,
      kvBlocksUsed: load.kvBlocksUsed + blocks,
      runningRequests: load.runningRequests + 1,
      highPriorityRunning: load.highPriorityRunning + (demand.highPriority ? 1 : 0),
      outstandingPromptTokens: load.outstandingPromptTokens + demand.promptTokens,
    };
  }
  return {
    ...load,
    queuedRequests: load.queuedRequests + 1,
    headOfLineDemandBlocks: load.queuedRequests === 0 ? blocks : load.headOfLineDemandBlocks,
    outstandingPromptTokens: load.outstandingPromptTokens + demand.promptTokens,
  };
}
