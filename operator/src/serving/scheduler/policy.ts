/**
 * The pure Llumnix policies the scheduler loop runs (common/src/scheduler/migration-policy.ts and
 * autoscale-policy.ts), handed to the loop through its constructor so its tests can drive it with stand-ins.
 */
import {
  decideScaling,
  DEFAULT_AUTOSCALE_CONFIG,
  type AutoscaleConfig,
  type ScalingDecision,
  type ScalingInput,
} from "../../../../common/src/scheduler/autoscale-policy.js";
import {
  DEFAULT_MIGRATION_POLICY,
  planMigrations,
  type MigrationInstance,
  type MigrationPolicyConfig,
  type PlannedMigration,
} from "../../../../common/src/scheduler/migration-policy.js";

export type {
  MigrationCandidate,
  MigrationInstance,
  MigrationPolicyConfig,
  PlannedMigration,
} from "../../../../common/src/scheduler/migration-policy.js";
export type {
  AutoscaleConfig,
  ScalingDecision,
  ScalingInput,
  ScalingPool,
  SloAttainment,
} from "../../../../common/src/scheduler/autoscale-policy.js";

export interface SchedulerPolicies {
  planMigrations(instances: readonly MigrationInstance[], config: MigrationPolicyConfig): PlannedMigration[];
  decideScaling(input: ScalingInput, config: AutoscaleConfig): ScalingDecision;
  migrationConfig: MigrationPolicyConfig;
  autoscaleConfig: AutoscaleConfig;
}

export const DEFAULT_SCHEDULER_POLICIES: SchedulerPolicies = {
  planMigrations,
  decideScaling,
  migrationConfig: DEFAULT_MIGRATION_POLICY,
  autoscaleConfig: DEFAULT_AUTOSCALE_CONFIG,
};
