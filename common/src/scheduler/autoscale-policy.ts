/**
 * Whether a serving deployment's pools should grow or shrink by one instance now (Llumnix, OSDI'24 §4.4.4, with
 * its artifact's thresholds: AlibabaPAI/llumnix branch osdi24ae, `need_scale` in vllm/core/request_scheduler.py and
 * artifact/65_auto_scaling). Pure: the operator passes each pool's instances (latest load reports), its bounds
 * (spec.scaling), how many more instances the cluster can place (from the same source the planner uses), the SLO
 * attainment it measured from the load reports, and when it last scaled; it executes the decision (a new pod, or a
 * drain by migration and the pod's deletion once empty).
 *
 * Cluster freeness of a pool (the artifact's `avg_load`): the pool taken as one instance,
 *   F = (Σ free blocks − Σ blocks the waiting requests need) / (Σ running + Σ waiting requests)
 * over its instances that are not draining (+∞ when nothing runs or waits).
 * - Scale up when F < scaleUpFreeness (10), instances still starting counted as empty ones (as many KV blocks as
 *   the pool's average, nothing running), or when the measured TTFT or TPOT attainment is below the SLO target.
 *   The artifact adds at once as many empty instances as it takes to lift F to the threshold; the decision here is
 *   one instance, but since the ones starting count as empty, consecutive decisions reach the same number without
 *   waiting for the new instances' first reports (and stop there).
 * - Scale down when F computed as if one instance were gone is > scaleDownFreeness (60), and the SLO is met: the
 *   instance to go is the one with the fewest running requests (then fewest used blocks, then id), its blocks leave
 *   the total, its requests stay (they migrate to the others, so its used blocks are taken from the others' free
 *   blocks, the artifact's `num_free_gpu_block − num_total_gpu_block` for the removed instance, floored at 0).
 * - Within bounds: never above maxInstances or below minInstances per pool (instances starting count), never up when
 *   the cluster cannot place another instance of the pool (`capacityInstances` < 1), one scale-in at a time (no
 *   scale-down while an instance drains or starts), no scale-down within `cooldownMs` of the last decision, and no
 *   SLO-driven scale-up within it either (attainment is measured over a window, so it lags the instances started);
 *   freeness-driven scale-ups are paced by counting starting instances instead. Restoring minInstances or
 *   maxInstances after a spec change ignores the cooldown.
 * - Disaggregated pools (prefill and decode) scale one role at a time. The plan's P:D ratio r = prefill/decode
 *   replicas is a bound: a change is allowed when the ratio after it, P'/D', stays within [r / k, r · k]
 *   (k = pdRatioBoundFactor, 2: at most twice or half the plan's ratio), or when it moves the ratio closer to r
 *   (so a deployment outside the band can always come back). A role whose change the bound forbids holds, and the
 *   decision says so.
 * Deviations from the artifact: one instance per decision (see above). Its scale-down F counts one waiting request in B
 * (its migrate-side load); here both directions use the aggregate
 * above, which counts every waiting request, so scale-in is no more eager than scale-out's measure.
 */
import type { InstanceLoad } from "./freeness.js";

export const ScalingKind = { up: "up", down: "down", hold: "hold" } as const;
export type ScalingKind = (typeof ScalingKind)[keyof typeof ScalingKind];

export interface ScalingDecision {
  kind: ScalingKind;
  /** The pool's role ("colocated", "prefill", "decode"); for a hold, the role the reason is about, or "". */
  role: string;
  reason: string;
  /** For "down": the instance to drain by migration (fewest running requests). */
  drainInstanceId?: string;
}

export interface ScalingInstance {
  id: string;
  load: InstanceLoad;
  /** KV blocks all waiting requests need (the load report's waitingDemandBlocks). */
  waitingDemandBlocks: number;
}

export interface SloAttainment {
  /** Fraction (0..1) of recent samples whose TTFT met the SLO. */
  ttft: number;
  /** Fraction (0..1) of recent samples whose TPOT met the SLO. */
  tpot: number;
  /** How many samples the fractions come from. */
  samples: number;
  /** Fraction that must meet the SLO (spec.slo.attainmentPercent / 100). */
  target: number;
}

export interface ScalingPool {
  role: string;
  /** Running instances that report load (draining ones included: they are marked in their load). */
  instances: readonly ScalingInstance[];
  /** Instances created but not reporting yet: they count against maxInstances and in the P:D ratio. */
  startingInstances: number;
  minInstances: number;
  maxInstances: number;
  /** How many more instances of this pool the cluster can place now. */
  capacityInstances: number;
  slo?: SloAttainment;
}

export interface ScalingInput {
  nowMs: number;
  /** When the last up or down decision of this deployment was executed; undefined when never. */
  lastScaledAtMs?: number;
  pools: readonly ScalingPool[];
  /** The plan's replicas per role, for disaggregated deployments (the P:D ratio bound). */
  planReplicas?: { prefill: number; decode: number };
}

export interface AutoscaleConfig {
  /** Scale up when a pool's cluster freeness is below this (the artifact's 10). */
  scaleUpFreeness: number;
  /** Scale down when the freeness as if one instance were gone is above this (the artifact's 60). */
  scaleDownFreeness: number;
  /** No decision within this long of the last one (the artifact checks scaling every 10 s). */
  cooldownMs: number;
  /** Fewer SLO samples than this and attainment does not drive scaling. */
  minSloSamples: number;
  /** The P:D ratio may move to at most k times or 1/k of the plan's. */
  pdRatioBoundFactor: number;
}

export const DEFAULT_AUTOSCALE_CONFIG: AutoscaleConfig = {
  scaleUpFreeness: 10,
  scaleDownFreeness: 60,
  cooldownMs: 10_000,
  minSloSamples: 10,
  pdRatioBoundFactor: 2,
};

export class InvalidScalingInputError extends Error {
  override name = "InvalidScalingInputError";
}

const hold = (reason: string, role = ""): ScalingDecision => ({ kind: ScalingKind.hold, role, reason });

export function decideScaling(
  input: ScalingInput,
  config: AutoscaleConfig = DEFAULT_AUTOSCALE_CONFIG,
): ScalingDecision {
  validate(input, config);
  if (input.pools.length === 0) return hold("no pools");
  const bounds = restoreBounds(input);
  if (bounds) return bounds;
  const cooling = input.lastScaledAtMs !== undefined && input.nowMs - input.lastScaledAtMs < config.cooldownMs;
  const pressured = input.pools
    .map((pool) => ({
      pool,
      f: poolFreeness(pool.instances, pool.startingInstances),
      slo: cooling ? undefined : sloShortfall(pool, config),
    }))
    .filter((p) => p.f < config.scaleUpFreeness || p.slo !== undefined)
    .sort((a, b) => a.f - b.f);
  if (pressured.length > 0) {
    const blocked: string[] = [];
    for (const { pool, f, slo } of pressured) {
      const why = slo ?? `cluster freeness ${fmt(f)} < ${config.scaleUpFreeness}`;
      const refusal = upRefusal(pool, input, config);
      if (!refusal) return { kind: ScalingKind.up, role: pool.role, reason: why };
      blocked.push(`${pool.role}: ${why}, but ${refusal}`);
    }
    return hold(blocked.join("; "), pressured[0]!.pool.role);
  }
  if (cooling)
    return hold(
      `cooldown: last scaled ${input.nowMs - input.lastScaledAtMs!} ms ago, less than ${config.cooldownMs} ms`,
    );
  const downs = input.pools
    .map((pool) => ({ pool, gone: fewestRunning(pool.instances) }))
    .filter((d): d is { pool: ScalingPool; gone: ScalingInstance } => d.gone !== undefined)
    .map((d) => ({ ...d, f: freenessWithout(d.pool.instances, d.gone) }))
    .filter((d) => d.f > config.scaleDownFreeness)
    .sort((a, b) => b.f - a.f);
  const blocked: string[] = [];
  for (const { pool, gone, f } of downs) {
    const refusal = downRefusal(pool, input, config);
    if (!refusal)
      return {
        kind: ScalingKind.down,
        role: pool.role,
        reason: `freeness without ${gone.id} ${fmt(f)} > ${config.scaleDownFreeness}`,
        drainInstanceId: gone.id,
      };
    blocked.push(`${pool.role}: freeness without ${gone.id} ${fmt(f)} > ${config.scaleDownFreeness}, but ${refusal}`);
  }
  if (blocked.length > 0) return hold(blocked.join("; "), downs[0]!.pool.role);
  return hold("every pool within its freeness band and SLO");
}

/**
 * Cluster freeness of a pool's instances that are not draining (the artifact's avg_load, as F), with `starting`
 * instances counted as empty ones of the pool's average size.
 */
export function poolFreeness(instances: readonly ScalingInstance[], starting = 0): number {
  const open = instances.filter((i) => !i.load.draining);
  const averageBlocks = open.reduce((s, i) => s + i.load.kvBlocksTotal, 0) / Math.max(1, open.length);
  return aggregateFreeness(open, -starting * averageBlocks);
}

/** Pool freeness as if `gone` were removed and its requests spread over the others. */
export function freenessWithout(instances: readonly ScalingInstance[], gone: ScalingInstance): number {
  const open = instances.filter((i) => !i.load.draining);
  const rest = open.filter((i) => i.id !== gone.id);
  if (rest.length === 0) return Number.NEGATIVE_INFINITY;
  return aggregateFreeness(
    rest,
    gone.load.kvBlocksUsed,
    gone.load.runningRequests + gone.load.queuedRequests,
    gone.waitingDemandBlocks,
  );
}

function aggregateFreeness(
  instances: readonly ScalingInstance[],
  extraUsedBlocks: number,
  extraRequests = 0,
  extraWaitingBlocks = 0,
): number {
  let free = -extraUsedBlocks;
  let waiting = extraWaitingBlocks;
  let requests = extraRequests;
  for (const i of instances) {
    free += i.load.kvBlocksTotal - i.load.kvBlocksUsed;
    waiting += i.waitingDemandBlocks;
    requests += i.load.runningRequests + i.load.queuedRequests;
  }
  if (requests === 0) return Number.POSITIVE_INFINITY;
  return (Math.max(0, free) - waiting) / requests;
}

/** The instance whose drain moves the least: fewest running requests, then fewest used blocks, then id. */
export function fewestRunning(instances: readonly ScalingInstance[]): ScalingInstance | undefined {
  return instances
    .filter((i) => !i.load.draining)
    .sort(
      (a, b) =>
        a.load.runningRequests - b.load.runningRequests ||
        a.load.kvBlocksUsed - b.load.kvBlocksUsed ||
        (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    )[0];
}

/** Restores spec.scaling bounds whatever the cooldown says (a spec change, or a pool that lost instances). */
function restoreBounds(input: ScalingInput): ScalingDecision | undefined {
  for (const pool of input.pools) {
    const count = size(pool);
    if (count < pool.minInstances && pool.capacityInstances >= 1)
      return {
        kind: ScalingKind.up,
        role: pool.role,
        reason: `${count} instances, below minInstances ${pool.minInstances}`,
      };
    if (count > pool.maxInstances && !anyDraining(pool)) {
      const gone = fewestRunning(pool.instances);
      if (gone)
        return {
          kind: ScalingKind.down,
          role: pool.role,
          reason: `${count} instances, above maxInstances ${pool.maxInstances}`,
          drainInstanceId: gone.id,
        };
    }
  }
  return undefined;
}

function sloShortfall(pool: ScalingPool, config: AutoscaleConfig): string | undefined {
  const slo = pool.slo;
  if (!slo || slo.samples < config.minSloSamples) return undefined;
  const missed = [
    ["TTFT", slo.ttft],
    ["TPOT", slo.tpot],
  ]
    .filter(([, v]) => (v as number) < slo.target)
    .map(([name, v]) => `${name} attainment ${fmt((v as number) * 100)}%`);
  return missed.length > 0 ? `${missed.join(", ")} below the SLO's ${fmt(slo.target * 100)}%` : undefined;
}

function upRefusal(pool: ScalingPool, input: ScalingInput, config: AutoscaleConfig): string | undefined {
  if (size(pool) >= pool.maxInstances) return `at maxInstances ${pool.maxInstances}`;
  if (pool.capacityInstances < 1) return "the cluster cannot place another instance";
  return ratioRefusal(pool.role, +1, input, config);
}

function downRefusal(pool: ScalingPool, input: ScalingInput, config: AutoscaleConfig): string | undefined {
  if (size(pool) <= pool.minInstances) return `at minInstances ${pool.minInstances}`;
  if (anyDraining(pool)) return "an instance is already draining";
  if (pool.startingInstances > 0) return `${pool.startingInstances} instances still starting`;
  const slo = pool.slo;
  if (slo && slo.samples >= config.minSloSamples && (slo.ttft < slo.target || slo.tpot < slo.target))
    return "the SLO is not met";
  return ratioRefusal(pool.role, -1, input, config);
}

/** The P:D bound: the ratio after the change stays within [r/k, r·k] of the plan's r, or moves toward r. */
function ratioRefusal(role: string, delta: 1 | -1, input: ScalingInput, config: AutoscaleConfig): string | undefined {
  const plan = input.planReplicas;
  if (!plan || (role !== "prefill" && role !== "decode")) return undefined;
  const prefill = input.pools.find((p) => p.role === "prefill");
  const decode = input.pools.find((p) => p.role === "decode");
  if (!prefill || !decode) return undefined;
  const p = size(prefill);
  const d = size(decode);
  const p2 = p + (role === "prefill" ? delta : 0);
  const d2 = d + (role === "decode" ? delta : 0);
  if (p2 < 1 || d2 < 1) return `it would leave no ${p2 < 1 ? "prefill" : "decode"} instance`;
  const r = plan.prefill / plan.decode;
  const k = config.pdRatioBoundFactor;
  const after = p2 / d2;
  if (after >= r / k && after <= r * k) return undefined;
  if (Math.abs(Math.log(after / r)) < Math.abs(Math.log(p / d / r))) return undefined;
  return `P:D would be ${p2}:${d2}, outside [${fmt(r / k)}, ${fmt(r * k)}] around the plan's ${plan.prefill}:${plan.decode}`;
}

const size = (pool: ScalingPool): number =>
  pool.instances.filter((i) => !i.load.draining).length + pool.startingInstances;
const anyDraining = (pool: ScalingPool): boolean => pool.instances.some((i) => i.load.draining);
const fmt = (x: number): string => (Number.isFinite(x) ? String(Number(x.toFixed(2))) : x > 0 ? "+∞" : "−∞");

function validate(input: ScalingInput, config: AutoscaleConfig): void {
  const fail = (message: string): never => {
    throw new InvalidScalingInputError(message);
  };
  if (!Number.isFinite(input.nowMs)) fail(`nowMs must be finite, got ${input.nowMs}`);
  for (const [key, value] of Object.entries(config))
    if (!Number.isFinite(value)) fail(`autoscale config ${key} must be finite, got ${String(value)}`);
  if (config.pdRatioBoundFactor < 1) fail(`pdRatioBoundFactor must be at least 1, got ${config.pdRatioBoundFactor}`);
  const roles = new Set<string>();
  for (const pool of input.pools) {
    if (roles.has(pool.role)) fail(`pool role ${pool.role} appears twice`);
    roles.add(pool.role);
    if (!(pool.minInstances >= 0 && pool.maxInstances >= pool.minInstances))
      fail(`pool ${pool.role}: need 0 <= minInstances <= maxInstances, got ${pool.minInstances}..${pool.maxInstances}`);
    if (!(pool.startingInstances >= 0) || !(pool.capacityInstances >= 0))
      fail(`pool ${pool.role}: startingInstances and capacityInstances must be >= 0`);
  }
  const plan = input.planReplicas;
  if (plan && !(plan.prefill > 0 && plan.decode > 0))
    fail(`planReplicas must be positive, got ${plan.prefill}:${plan.decode}`);
}
