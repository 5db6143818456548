/**
 * The four policies of the scheduler benchmark, wired to the production code on the simulated clock
 * (bench/gateway/dispatch-sim.ts):
 * - round-robin: the gateway's round-robin dispatch, no migration;
 * - least-load: the gateway's freeness dispatch, no migration (INFaaS++-like: load-aware dispatch only);
 * - gpufleet: freeness dispatch + planMigrations (common/src/scheduler/migration-policy.ts) every period, each
 *   planned move executed as the agent's LiveMigration (agent/src/workers/simulated/migration.ts) between engines;
 * - gpufleet-autoscale: gpufleet + decideScaling (common/src/scheduler/autoscale-policy.ts) within 1–16 instances;
 *   a scale-in drains its instance by migration and deletes it once empty.
 * The instance: LLaMA-7B at TP=1 on one A10 (24 GB), colocated, as in the Llumnix artifact, 4 instances per node.
 */
import { servingEngineConfig } from "../../agent/src/workers/simulated/engine-config.js";
import type { EngineConfig, MigrationCandidate } from "../../agent/src/workers/simulated/engine.js";
import { LiveMigration, type MigrationLink } from "../../agent/src/workers/simulated/migration.js";
import { kvLink } from "../../agent/src/simulation/instances/kv-transfer.js";
import { MODEL_SHAPES } from "../../common/src/models/model-shapes.js";
import {
  DEFAULT_AUTOSCALE_CONFIG,
  decideScaling,
  type AutoscaleConfig,
} from "../../common/src/scheduler/autoscale-policy.js";
import {
  DEFAULT_MIGRATION_POLICY,
  planMigrations,
  type MigrationPolicyConfig,
} from "../../common/src/scheduler/migration-policy.js";
import type { LoadEntry } from "../../common/src/telemetry/subjects.js";
import type { SimAutoscale, SimMigration, SimSetup } from "../gateway/dispatch-sim.js";

export const SCHED_MODEL = "LLaMA-7B";
export const SCHED_GPU = "A10-24GB";
/**
 * The artifact's engine limit (artifact/63_serving_performance/config/serving_exp, max_batch_total_tokens 12800):
 * prompt + output up to 12,800 tokens per request and per prefill step, beyond LLaMA-7B's 2,048 positions, so its
 * 6,144-token caps on both lengths fit. The KV capacity stays the latency model's (14,936 tokens on an A10).
 */
export const ARTIFACT_MAX_TOKENS = 12_800;
export const INSTANCES_PER_NODE = 4;
/** Assumed scale-out network per node (the artifact does not state one): one 100 Gbit/s NIC for its 4 GPUs. */
export const NODE_NIC_GBPS = 100;
/** Assumed fixed cost per migration stage (one message and its handshake). */
export const MIGRATION_STAGE_LATENCY_MS = 1;
/** Assumed time from a scale-up decision to the new instance's first report (pod start, 13 GB of weights, warm-up). */
export const INSTANCE_STARTUP_MS = 20_000;

export const PolicyName = {
  roundRobin: "round-robin",
  leastLoad: "least-load",
  gpufleet: "gpufleet",
  gpufleetAutoscale: "gpufleet-autoscale",
} as const;
export type PolicyName = (typeof PolicyName)[keyof typeof PolicyName];
export const POLICIES: readonly PolicyName[] = Object.values(PolicyName);

export function schedEngineConfig(): EngineConfig {
  const base = servingEngineConfig({
    role: "colocated",
    shape: MODEL_SHAPES[SCHED_MODEL],
    parallelism: { tp: 1, pp: 1 },
    gpuModel: SCHED_GPU,
  });
  return { ...base, maxContextTokens: ARTIFACT_MAX_TOKENS, maxBatchedTokens: ARTIFACT_MAX_TOKENS };
}

const nodeOf = (instanceId: string): string =>
  `node-${Math.floor(Number(instanceId.replace(/\D/g, "")) / INSTANCES_PER_NODE)}`;

/** The link between two instances: PCIe peer-to-peer on one node (the A10 has no NVLink), the NICs across nodes. */
export function migrationLink(sourceId: string, destinationId: string): MigrationLink {
  const end = (id: string) => ({
    nodeName: nodeOf(id),
    gpuModel: SCHED_GPU,
    gpus: 1,
    nicGBpsPerGpu: NODE_NIC_GBPS / 8 / INSTANCES_PER_NODE,
  });
  const link = kvLink(end(sourceId), end(destinationId));
  return { bytesPerSecond: link.GBps * 1e9, latencyMs: MIGRATION_STAGE_LATENCY_MS };
}

const candidatesOf = (entry: LoadEntry): readonly MigrationCandidate[] =>
  (entry as LoadEntry & { migrationCandidates?: MigrationCandidate[] }).migrationCandidates ?? [];

export function simMigration(config: MigrationPolicyConfig = DEFAULT_MIGRATION_POLICY, periodMs = 1_000): SimMigration {
  return {
    periodMs,
    plan: (instances) => planMigrations(instances, config),
    candidatesOf,
    start: ({ source, destination, sourceId, destinationId, requestId, atMs, onEnd }) =>
      new LiveMigration({
        source,
        destination,
        requestId,
        atMs,
        sourceName: sourceId,
        destinationName: destinationId,
        link: migrationLink(sourceId, destinationId),
        onEnd: (report) =>
          onEnd({
            committed: report.phase === "committed",
            downtimeMs: report.downtimeMs,
            durationMs: (report.endedAtMs ?? atMs) - report.startedAtMs,
            ...(report.abort ? { abortCode: report.abort.code } : {}),
          }),
      }),
  };
}

export interface AutoscaleBounds {
  initialInstances: number;
  minInstances: number;
  maxInstances: number;
}

export function simAutoscale(
  bounds: AutoscaleBounds,
  config: AutoscaleConfig = DEFAULT_AUTOSCALE_CONFIG,
  periodMs = 1_000,
): SimAutoscale {
  return {
    periodMs,
    ...bounds,
    clusterInstances: bounds.maxInstances,
    startupMs: INSTANCE_STARTUP_MS,
    decide: (input) => decideScaling(input, config),
  };
}

/** The setup of one policy at one point: everything else (requests, seed, report timing) is shared. */
export function policySetup(policy: PolicyName, common: Omit<SimSetup, "policy">, bounds: AutoscaleBounds): SimSetup {
  const preemptionsOf: SimSetup["preemptionsOf"] = (engine, requestId) => engine.sourceView(requestId)?.preemptions;
  const base = { ...common, preemptionsOf };
  switch (policy) {
    case PolicyName.roundRobin:
      return { ...base, policy: "round-robin" };
    case PolicyName.leastLoad:
      return { ...base, policy: "freeness" };
    case PolicyName.gpufleet:
      return { ...base, policy: "freeness", migration: simMigration() };
    case PolicyName.gpufleetAutoscale:
      return { ...base, policy: "freeness", migration: simMigration(), autoscale: simAutoscale(bounds) };
  }
}
