/**
 * Which running requests to live-migrate between the instances of one pool this period (Llumnix, OSDI'24 §4.4.3;
 * semantics of its artifact, AlibabaPAI/llumnix branch osdi24ae, vllm/core/request_scheduler.py
 * `need_migrate_balanced`). Pure: the caller passes every instance's latest load and its migration candidates,
 * and executes the plan (one MigrateOut per pair).
 *
 * Every period:
 * 1. F is computed per instance with migrationFreeness (freeness.ts): head-of-line demand counts when
 *    de-fragmentation is on, high-priority headroom when priority mode is on, a draining instance is −∞ and an
 *    empty one +∞.
 * 2. Sources are the instances with F below `migrateOutFreeness` (the artifact's 3) and every draining instance;
 *    destinations are those above it. Instances already migrating (in or out) are neither: one migration per
 *    instance at a time. Sources are ordered lowest F first, destinations highest F first, and the i-th source is
 *    paired with the i-th destination (the artifact's pairing: the most loaded with the freest).
 * 3. For each pair, the source's candidates are tried cheapest first (fewest KV blocks, so the copy and the
 *    downtime are short); the first that passes moves, at most one request per pair per period. Every move must
 *    fit the destination's free blocks (beyond its own head-of-line demand). Then, by why the source is a source:
 *    - load balance (no queue, no high-priority request on the source): the destination stays at or above the
 *      threshold after taking the request, and the move narrows the pair's imbalance without reversing it,
 *      0 < F_dst' − F_src' < F_dst − F_src (the artifact's Balanced check); an empty destination (F = +∞) needs
 *      only the threshold (the artifact accepts any move to an instance of load −∞);
 *    - de-fragmentation (the source has a queue and the mode is on): the source's F counts the head-of-line
 *      demand, so it stays a source until the head fits; the destination must stay at or above the threshold;
 *    - priority (the source runs a high-priority request, the mode is on, the candidate is normal): normal
 *      requests leave it, high-priority ones are never moved from it, and no normal request goes to an instance
 *      running a high-priority request; the destination must stay at or above the threshold;
 *    - drain (scale-in): a draining instance is a source of all its requests, which need only fit, so a drain
 *      always makes progress while the pool has room.
 *    The imbalance rule is not applied to the last three: with the head-of-line demand or the headroom counted the
 *    source's numerator M − Σ V can be negative, and then taking a request away lowers F (a negative number over a
 *    smaller B), so the rule would refuse exactly the moves those modes exist for. The artifact's Llumnix rows ran
 *    with no pair constraint at all in these modes (`need_migrate_prefill_v2`); the destination threshold is kept
 *    so that a move cannot make its destination a source.
 * Deviation from the artifact: it also makes instances with preempted requests sources (`num_killed_request`);
 * load reports carry a cumulative preemption count, not a current one, so that rule is not applied here.
 */
import { DEFAULT_FREENESS_CONFIG, migrationFreeness, type FreenessConfig, type InstanceLoad } from "./freeness.js";

export interface MigrationCandidate {
  requestId: string;
  blocks: number;
  /** Engine priority: above 0 is high priority (the gateway's `high`). */
  priority: number;
  outputTokens: number;
}

export interface MigrationInstance {
  id: string;
  load: InstanceLoad;
  /** The instance's running requests that could move (cheapest first in reports; re-sorted here anyway). */
  candidates: readonly MigrationCandidate[];
  /** A migration in or out is in progress on this instance. */
  migrating: boolean;
}

export const MigrationReason = {
  loadBalance: "load-balance",
  defragmentation: "defragmentation",
  priority: "priority",
  drain: "drain",
} as const;
export type MigrationReason = (typeof MigrationReason)[keyof typeof MigrationReason];

export interface PlannedMigration {
  requestId: string;
  sourceId: string;
  destinationId: string;
  blocks: number;
  /** A MigrationReason value. */
  reason: string;
}

export interface MigrationPolicyConfig {
  /** Sources are below this F, destinations above it and must stay at or above it (the artifact's 3). */
  migrateOutFreeness: number;
  /** Count the head-of-line waiting request's demand (the artifact ran its Llumnix rows with it on). */
  defragmentation: boolean;
  /** Move normal requests away from instances running high-priority ones. */
  priority: boolean;
  /** High-priority headroom, as dispatch counts it. */
  freeness: FreenessConfig;
}

export const DEFAULT_MIGRATION_POLICY: MigrationPolicyConfig = {
  migrateOutFreeness: 3,
  defragmentation: true,
  priority: true,
  freeness: DEFAULT_FREENESS_CONFIG,
};

export class InvalidMigrationPolicyError extends Error {
  override name = "InvalidMigrationPolicyError";
}

interface Scored {
  instance: MigrationInstance;
  f: number;
}

export function planMigrations(
  instances: readonly MigrationInstance[],
  config: MigrationPolicyConfig = DEFAULT_MIGRATION_POLICY,
): PlannedMigration[] {
  if (!Number.isFinite(config.migrateOutFreeness))
    throw new InvalidMigrationPolicyError(
      `migrateOutFreeness must be a finite number, got ${config.migrateOutFreeness}`,
    );
  const ids = new Set<string>();
  for (const i of instances) {
    if (ids.has(i.id)) throw new InvalidMigrationPolicyError(`instance ${i.id} appears twice in the migration input`);
    ids.add(i.id);
  }
  const f = (load: InstanceLoad) => migrationFreeness(load, config);
  const free = instances.filter((i) => !i.migrating).map((instance): Scored => ({ instance, f: f(instance.load) }));
  const byId = (a: Scored, b: Scored) => (a.instance.id < b.instance.id ? -1 : a.instance.id > b.instance.id ? 1 : 0);
  const sources = free
    .filter((s) => s.instance.candidates.length > 0 && (s.instance.load.draining || s.f < config.migrateOutFreeness))
    .sort((a, b) => a.f - b.f || byId(a, b));
  const destinations = free
    .filter((s) => !s.instance.load.draining && s.f > config.migrateOutFreeness)
    .sort((a, b) => b.f - a.f || byId(a, b));
  const plan: PlannedMigration[] = [];
  for (let i = 0; i < Math.min(sources.length, destinations.length); i++) {
    const move = chooseRequest(sources[i]!, destinations[i]!, config);
    if (move) plan.push(move);
  }
  return plan;
}

function chooseRequest(
  source: Scored,
  destination: Scored,
  config: MigrationPolicyConfig,
): PlannedMigration | undefined {
  const src = source.instance;
  const dst = destination.instance;
  const roomBlocks = dst.load.kvBlocksTotal - dst.load.kvBlocksUsed - dst.load.headOfLineDemandBlocks;
  const cheapestFirst = [...src.candidates].sort((a, b) => a.blocks - b.blocks);
  for (const candidate of cheapestFirst) {
    const high = candidate.priority > 0;
    if (config.priority && high && src.load.highPriorityRunning > 0 && !src.load.draining) continue;
    if (config.priority && !high && dst.load.highPriorityRunning > 0) continue;
    if (candidate.blocks > roomBlocks) continue;
    const reason = reasonFor(src.load, candidate, config);
    if (reason === MigrationReason.drain) return planned(candidate, src, dst, reason);
    const fDstAfter = migrationFreeness(moved(dst.load, candidate, +1), config);
    if (fDstAfter < config.migrateOutFreeness) continue;
    if (reason !== MigrationReason.loadBalance || destination.f === Number.POSITIVE_INFINITY)
      return planned(candidate, src, dst, reason);
    const fSrcAfter = migrationFreeness(moved(src.load, candidate, -1), config);
    const gapBefore = destination.f - source.f;
    const gapAfter = fDstAfter - fSrcAfter;
    if (gapAfter > 0 && gapAfter < gapBefore) return planned(candidate, src, dst, reason);
  }
  return undefined;
}

function reasonFor(load: InstanceLoad, candidate: MigrationCandidate, config: MigrationPolicyConfig): MigrationReason {
  if (load.draining) return MigrationReason.drain;
  if (config.priority && load.highPriorityRunning > 0 && candidate.priority <= 0) return MigrationReason.priority;
  if (config.defragmentation && load.queuedRequests > 0) return MigrationReason.defragmentation;
  return MigrationReason.loadBalance;
}

/** The load with one candidate added (+1) or taken away (−1). */
function moved(load: InstanceLoad, candidate: MigrationCandidate, sign: 1 | -1): InstanceLoad {
  return {
    ...load,
    kvBlocksUsed: Math.max(0, load.kvBlocksUsed + sign * candidate.blocks),
    runningRequests: Math.max(0, load.runningRequests + sign),
    highPriorityRunning: Math.max(0, load.highPriorityRunning + (candidate.priority > 0 ? sign : 0)),
  };
}

function planned(
  candidate: MigrationCandidate,
  src: MigrationInstance,
  dst: MigrationInstance,
  reason: MigrationReason,
): PlannedMigration {
  return { requestId: candidate.requestId, sourceId: src.id, destinationId: dst.id, blocks: candidate.blocks, reason };
}
