/**
 * Reads GpuProfile resources (crds/src/gpu-profile.ts) into the latency model's overrides (pure). Shared by the
 * operator's planner and anything else that plans with measured numbers.
 *
 * Which profile applies to a deployment: among the profiles of its GPU model, the one whose engine.imagePrefix is
 * the longest prefix of the deployment's engine image; else one without an imagePrefix; ties go to the first name
 * in alphabetical order, so every replica of the operator picks the same one.
 */
import type { LatencyCoefficientOverrides, LatencyCoefficients } from "../models/latency.js";

/** The fields of a GpuProfile the reader needs (the CRD's type satisfies it; common/ does not import crds/). */
export interface GpuProfileLike {
  metadata?: { name?: string };
  spec: {
    gpuModel: string;
    engine: { name: string; imagePrefix?: string } & Partial<Record<EngineCostField, number>>;
    coefficients?: Partial<Record<CoefficientField, number>>;
  };
}

const COEFFICIENT_FIELDS = [
  "achievedTflops",
  "achievedHbmGBps",
  "kvReadGBps",
  "attentionTflops",
  "rooflineSharpness",
  "nonGemmGBps",
  "allReduceBusGBps",
  "allReduceLatencyUs",
  "p2pNvlinkGBps",
  "tpOverheadPerRank",
  "memoryUtilization",
  "activationReserveGiB",
] as const satisfies readonly (keyof LatencyCoefficients)[];
type CoefficientField = (typeof COEFFICIENT_FIELDS)[number];

const ENGINE_COST_FIELDS = [
  "decodeIterationMs",
  "prefillIterationMs",
  "perLayerOverheadUs",
  "attentionUsPerSequence",
  "prefillHostMs",
  "prefillHostMsPerSequence",
  "prefillGraphMaxTokens",
  "prefillGraphTokenStep",
  "prefillGraphMaxPrompts",
] as const satisfies readonly (keyof LatencyCoefficients)[];
type EngineCostField = (typeof ENGINE_COST_FIELDS)[number];

export type ProfileCoefficients = Partial<Omit<LatencyCoefficients, "gpuModel">>;

/** Every latency field a GpuProfile can set (GPU coefficients and engine costs). */
export const PROFILE_FIELDS: readonly (CoefficientField | EngineCostField)[] = [
  ...COEFFICIENT_FIELDS,
  ...ENGINE_COST_FIELDS,
];

/** A profile's numbers as latency coefficients: only the fields it sets; the rest stay the shipped defaults. */
export function profileCoefficients(profile: GpuProfileLike): ProfileCoefficients {
  const out: ProfileCoefficients = {};
  for (const field of COEFFICIENT_FIELDS) {
    const value = profile.spec.coefficients?.[field];
    if (value !== undefined) out[field] = value;
  }
  for (const field of ENGINE_COST_FIELDS) {
    const value = profile.spec.engine[field];
    if (value !== undefined) out[field] = value;
  }
  return out;
}

const nameOf = (p: GpuProfileLike): string => p.metadata?.name ?? "";

/** The profile that applies to a deployment of `engineImage` on `gpuModel`, or undefined. */
export function selectGpuProfile<P extends GpuProfileLike>(
  profiles: readonly P[],
  gpuModel: string,
  engineImage: string,
): P | undefined {
  const rank = (p: P): number => {
    const prefix = p.spec.engine.imagePrefix;
    if (prefix === undefined) return 0;
    return engineImage.startsWith(prefix) ? prefix.length : -1;
  };
  const candidates = profiles.filter((p) => p.spec.gpuModel === gpuModel && rank(p) >= 0);
  candidates.sort((a, b) => rank(b) - rank(a) || nameOf(a).localeCompare(nameOf(b)));
  return candidates[0];
}

export interface ProfilesForPlanning {
  /** Latency overrides per GPU model, from the profile that applies there. */
  overrides: LatencyCoefficientOverrides;
  /** Name of that profile per GPU model. */
  names: Readonly<Record<string, string>>;
}

/** The profiles that apply to a deployment of `engineImage`, one per GPU model that has one. */
export function profilesForPlanning(profiles: readonly GpuProfileLike[], engineImage: string): ProfilesForPlanning {
  const overrides: Record<string, ProfileCoefficients> = {};
  const names: Record<string, string> = {};
  for (const gpuModel of [...new Set(profiles.map((p) => p.spec.gpuModel))].sort()) {
    const chosen = selectGpuProfile(profiles, gpuModel, engineImage);
    if (!chosen) continue;
    overrides[gpuModel] = profileCoefficients(chosen);
    names[gpuModel] = nameOf(chosen);
  }
  return { overrides, names };
}
