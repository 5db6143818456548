/**
 * Llumnix's load metric (Sun et al., OSDI'24, §4.4): every request on an instance has a *virtual usage* of KV
 * blocks, and an instance's *freeness* is
 *
 *   F = (M − Σ V) / B
 *
 * M: the instance's KV blocks; Σ V: the virtual usages summed; B: the batch size (running requests, at least 1).
 * F counts how many more decode steps the current batch could run before the blocks run out, in the paper's units:
 * free blocks per running request (each decode step of a request appends one token, i.e. 1/blockSize of a block, so
 * the exact token-level figure is F × blockSizeTokens: see decodeStepsLeft). Issue 11's thresholds (migrate below
 * 3, scale up below 10, scale down above 60) are in these units, so F stays in them.
 *
 * Virtual usage, per the paper's rules:
 * - a running request: the blocks it physically holds (summed by the instance: kvBlocksUsed);
 * - the request at the head of the waiting queue: its full demand (it cannot start until that much is free), so a
 *   queueing instance looks loaded before its memory is; other waiting requests count nothing;
 * - a high-priority request: its blocks plus a headroom, so the instance keeps the batch small enough for it;
 * - an instance being drained: one fake request of infinite usage (F = −∞), so nothing is dispatched there.
 *
 * Deviations (also in docs/gateway.md): the paper sizes the high-priority headroom from a profile of the batch size
 * that keeps the high-priority request's decode speed; here it is a configured fraction of M per high-priority
 * request. Running requests' blocks come summed from the load report, not per request (the dispatcher needs only
 * the sum; migration, issue 11, will need per-request data from the instance).
 */

/** What dispatch needs to know of one instance's load (from its latest report plus local reservations). */
export interface InstanceLoad {
  kvBlocksTotal: number;
  kvBlocksUsed: number;
  blockSizeTokens: number;
  runningRequests: number;
  queuedRequests: number;
  headOfLineDemandBlocks: number;
  highPriorityRunning: number;
  draining: boolean;
  outstandingPromptTokens: number;
}

export interface FreenessConfig {
  /** Headroom each high-priority running request reserves, as a fraction of the instance's KV blocks. */
  highPriorityHeadroomFraction: number;
}

export const DEFAULT_FREENESS_CONFIG: FreenessConfig = { highPriorityHeadroomFraction: 0.1 };

/** Σ V over the instance, in KV blocks; Infinity while it is drained. */
export function virtualUsageBlocks(load: InstanceLoad, config: FreenessConfig = DEFAULT_FREENESS_CONFIG): number {
  if (load.draining) return Number.POSITIVE_INFINITY;
  const headroom = load.highPriorityRunning * config.highPriorityHeadroomFraction * load.kvBlocksTotal;
  return load.kvBlocksUsed + load.headOfLineDemandBlocks + headroom;
}

/** F = (M − Σ V) / B, B = max(1, running requests). Negative when waiting demand exceeds free memory. */
export function freeness(load: InstanceLoad, config: FreenessConfig = DEFAULT_FREENESS_CONFIG): number {
  const usage = virtualUsageBlocks(load, config);
  if (usage === Number.POSITIVE_INFINITY) return Number.NEGATIVE_INFINITY;
  return (load.kvBlocksTotal - usage) / Math.max(1, load.runningRequests);
}

/** F in decode steps of one token each: how many tokens every running request can still append. */
export function decodeStepsLeft(load: InstanceLoad, config: FreenessConfig = DEFAULT_FREENESS_CONFIG): number {
  return freeness(load, config) * load.blockSizeTokens;
}

/** KV blocks a request of `tokens` tokens occupies. */
export function blocksFor(tokens: number, blockSizeTokens: number): number {
  return Math.ceil(Math.max(0, tokens) / blockSizeTokens);
}

/** An instance with no load, for builders and tests. */
export function idleLoad(kvBlocksTotal: number, blockSizeTokens = 16): InstanceLoad {
  return {
    kvBlocksTotal,
    kvBlocksUsed: 0,
    blockSizeTokens,
    runningRequests: 0,
    queuedRequests: 0,
    headOfLineDemandBlocks: 0,
    highPriorityRunning: 0,
    draining: false,
    outstandingPromptTokens: 0,
  };
}

/**
 * F as the migration and scaling policies see it (issue 11), after the Llumnix artifact's migrate-side load
 * (AlibabaPAI/llumnix, osdi24ae branch, vllm/instance_info.py, `compute_instance_load` under `consumed_speed`):
 * - an instance with nothing running and nothing waiting is infinitely free (+∞): the best destination, never a
 *   source (the artifact's load −∞);
 * - de-fragmentation on (the artifact's `enable_load_control_prefill`): the head-of-line waiting request counts its
 *   full demand in Σ V and one more request in B, so an instance whose queue cannot be admitted becomes a source
 *   and migration makes room for it; off: only running requests count;
 * - priority on: each high-priority running request reserves its headroom (as in dispatch); off: no headroom;
 * - draining: −∞, a source of all its requests.
 */
export interface MigrationFreenessOptions {
  defragmentation: boolean;
  priority: boolean;
  freeness: FreenessConfig;
}

export function migrationFreeness(load: InstanceLoad, options: MigrationFreenessOptions): number {
  if (load.draining) return Number.NEGATIVE_INFINITY;
  const counted = options.defragmentation && load.queuedRequests > 0;
  const requests = load.runningRequests + (counted ? 1 : 0);
  if (requests === 0) return Number.POSITIVE_INFINITY;
  const headroom = options.priority
    ? load.highPriorityRunning * options.freeness.highPriorityHeadroomFraction * load.kvBlocksTotal
    : 0;
  const usage = load.kvBlocksUsed + (counted ? load.headOfLineDemandBlocks : 0) + headroom;
  return (load.kvBlocksTotal - usage) / requests;
}
