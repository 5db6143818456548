/**
 * The GpuProfile a serving plan was made with, as it travels from the operator to the serving pods (pure).
 *
 * The planner sizes a deployment with a profile's coefficients (gpu-profile-reader.ts); a simulated worker must
 * step with the same numbers, or the fleet it simulates is not the fleet that was planned. The agent cannot read
 * the planner's input, and looking the profile up itself would race a profile edited after the plan, so the
 * operator renders what it planned with into the pod (env GPUFLEET_GPU_PROFILE, JSON) and the simulated worker
 * merges it over the shipped defaults through latencyCoefficients, the same call the planner makes.
 */
import { latencyCoefficients, type LatencyCoefficientOverrides } from "../models/latency.js";
import {
  PROFILE_FIELDS,
  profileCoefficients,
  type GpuProfileLike,
  type ProfileCoefficients,
} from "./gpu-profile-reader.js";

/** Pod env that carries the plan's profile (absent: the plan used the shipped defaults). */
export const GPU_PROFILE_ENV = "GPUFLEET_GPU_PROFILE";

export interface PlannedGpuProfile {
  /** The GpuProfile's name (status.plan.gpuProfile). */
  name: string;
  /** Its metadata.resourceVersion when rendered: which edit of the profile the pod carries. */
  resourceVersion?: string;
  gpuModel: string;
  /** Only the fields the profile sets; the rest are the shipped defaults on both sides. */
  coefficients: ProfileCoefficients;
}

export class PlannedProfileError extends Error {
  override name = "PlannedProfileError";
}

/**
 * The profile a plan names, from the cluster's profiles: undefined when the plan names none, or when that profile
 * is gone or is for another GPU model (then the plan's numbers cannot be rendered and the pod gets none).
 */
export function plannedProfile(
  profiles: readonly (GpuProfileLike & { metadata?: { resourceVersion?: string } })[],
  plan: { gpuModel: string; gpuProfile?: string },
): PlannedGpuProfile | undefined {
  if (plan.gpuProfile === undefined) return undefined;
  const found = profiles.find((p) => p.metadata?.name === plan.gpuProfile && p.spec.gpuModel === plan.gpuModel);
  if (!found) return undefined;
  const resourceVersion = found.metadata?.resourceVersion;
  return {
    name: plan.gpuProfile,
    ...(resourceVersion ? { resourceVersion } : {}),
    gpuModel: plan.gpuModel,
    coefficients: profileCoefficients(found),
  };
}

export function renderPlannedProfile(profile: PlannedGpuProfile): string {
  return JSON.stringify(profile);
}

/** The latency overrides a planned profile stands for, keyed as latencyCoefficients expects. */
export function plannedOverrides(profile: PlannedGpuProfile | undefined): LatencyCoefficientOverrides | undefined {
  return profile ? { [profile.gpuModel]: profile.coefficients } : undefined;
}

/**
 * Parses GPUFLEET_GPU_PROFILE. Rejects what the planner would not have accepted: unknown GPU model, unknown field,
 * a value latencyCoefficients refuses (negative, zero where a cost is required, not a number).
 */
export function parsePlannedProfile(text: string): PlannedGpuProfile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new PlannedProfileError(`${GPU_PROFILE_ENV} is not JSON`, { cause: err });
  }
  if (!isObject(parsed)) throw new PlannedProfileError(`${GPU_PROFILE_ENV} must be a JSON object`);
  const { name, resourceVersion, gpuModel, coefficients } = parsed;
  if (typeof name !== "string" || name === "")
    throw new PlannedProfileError(`${GPU_PROFILE_ENV}.name must be a non-empty string`);
  if (typeof gpuModel !== "string") throw new PlannedProfileError(`${GPU_PROFILE_ENV}.gpuModel must be a string`);
  if (resourceVersion !== undefined && typeof resourceVersion !== "string")
    throw new PlannedProfileError(`${GPU_PROFILE_ENV}.resourceVersion must be a string`);
  if (!isObject(coefficients)) throw new PlannedProfileError(`${GPU_PROFILE_ENV}.coefficients must be an object`);
  const known: readonly string[] = PROFILE_FIELDS;
  const unknown = Object.keys(coefficients).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new PlannedProfileError(
      `${GPU_PROFILE_ENV} (profile ${name}): unknown coefficient(s) ${unknown.join(", ")}; known: ${known.join(", ")}`,
    );
  const profile: PlannedGpuProfile = {
    name,
    ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    gpuModel,
    coefficients: coefficients as ProfileCoefficients,
  };
  try {
    latencyCoefficients(gpuModel, plannedOverrides(profile));
  } catch (err) {
    throw new PlannedProfileError(`${GPU_PROFILE_ENV} (profile ${name}): ${(err as Error).message}`, { cause: err });
  }
  return profile;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
