/**
 * The pure Llumnix policies the scheduler loop runs, as the contract between workstreams names them
 * (common/src/scheduler/migration-policy.ts and autoscale-policy.ts). The loop takes them through its constructor,
 * so its tests can drive it with small stand-ins.
 *
 * TODO(#11): import these from common/src/scheduler/ once "sched-bench" has committed them.
 */
import type { InstanceLoad } from "../../../../common/src/scheduler/freeness.js";

export interface MigrationCandidate {
  requestId: string;
  blocks: number;
  priority: number;
  outputTokens: number;
}

export interface MigrationInstance {
  id: string;
  load: InstanceLoad;
  candidates: readonly MigrationCandidate[];
  migrating: boolean;
}

export interface PlannedMigration {
  requestId: string;
  sourceId: string;
  destinationId: string;
  blocks: number;
  reason: string;
}

export type MigrationPolicyConfig = Record<string, unknown>;

export interface ScalingInput {
  role: string;
  instances: readonly { id: string; load: InstanceLoad }[];
  /** Share of recent reports within both SLO targets, when known. */
  sloAttainmentPercent?: number;
}

export interface ScalingDecision {
  kind: "up" | "down" | "hold";
  role: string;
  reason: string;
  drainInstanceId?: string;
}

export type AutoscaleConfig = Record<string, unknown>;

export interface SchedulerPolicies {
  planMigrations(instances: readonly MigrationInstance[], config: MigrationPolicyConfig): PlannedMigration[];
  decideScaling(input: ScalingInput, config: AutoscaleConfig): ScalingDecision;
  migrationConfig: MigrationPolicyConfig;
  autoscaleConfig: AutoscaleConfig;
}
