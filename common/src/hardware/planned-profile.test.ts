import { describe, expect, it } from "vitest";
import { decodeStepLatencyMs, latencyCoefficients } from "../models/latency.js";
import { deriveModel, MODEL_SHAPES } from "../models/model-shapes.js";
import { profilesForPlanning, type GpuProfileLike } from "./gpu-profile-reader.js";
import {
  parsePlannedProfile,
  plannedOverrides,
  plannedProfile,
  PlannedProfileError,
  renderPlannedProfile,
} from "./planned-profile.js";

const measured: GpuProfileLike & { metadata: { name: string; resourceVersion: string } } = {
  metadata: { name: "h100-measured", resourceVersion: "42" },
  spec: {
    gpuModel: "H100-80GB",
    engine: { name: "reference", perLayerOverheadUs: 20 },
    coefficients: { achievedHbmGBps: 1500, kvReadGBps: 2000 },
  },
};

describe("planned GpuProfile", () => {
  it("is the profile the plan names, with only the fields it sets", () => {
    expect(plannedProfile([measured], { gpuModel: "H100-80GB", gpuProfile: "h100-measured" })).toEqual({
      name: "h100-measured",
      resourceVersion: "42",
      gpuModel: "H100-80GB",
      coefficients: { achievedHbmGBps: 1500, kvReadGBps: 2000, perLayerOverheadUs: 20 },
    });
  });

  it("is none when the plan names none, or names a profile that is gone or for another GPU model", () => {
    expect(plannedProfile([measured], { gpuModel: "H100-80GB" })).toBeUndefined();
    expect(plannedProfile([], { gpuModel: "H100-80GB", gpuProfile: "h100-measured" })).toBeUndefined();
    expect(plannedProfile([measured], { gpuModel: "H200-141GB", gpuProfile: "h100-measured" })).toBeUndefined();
  });

  it("round-trips through the pod env to the coefficients the planner merges (one source)", () => {
    const planned = plannedProfile([measured], { gpuModel: "H100-80GB", gpuProfile: "h100-measured" })!;
    const parsed = parsePlannedProfile(renderPlannedProfile(planned));
    expect(parsed).toEqual(planned);
    const planner = latencyCoefficients("H100-80GB", profilesForPlanning([measured], "any/image").overrides);
    expect(latencyCoefficients("H100-80GB", plannedOverrides(parsed))).toEqual(planner);
    // And it is a different model from the shipped defaults: a decode step of Llama-3-8B is ~1.5x slower.
    const model = deriveModel(MODEL_SHAPES["Llama-3-8B"]);
    const step = (o?: ReturnType<typeof plannedOverrides>) =>
      decodeStepLatencyMs(model, "H100-80GB", { tp: 1, pp: 1 }, [512], o).totalMs;
    expect(step(plannedOverrides(parsed)) / step()).toBeGreaterThan(1.3);
  });

  it.each([
    ["not JSON", "{", /is not JSON/],
    ["not an object", "[]", /must be a JSON object/],
    ["no name", JSON.stringify({ gpuModel: "H100-80GB", coefficients: {} }), /name must be a non-empty string/],
    ["no coefficients", JSON.stringify({ name: "p", gpuModel: "H100-80GB" }), /coefficients must be an object/],
    [
      "unknown field",
      JSON.stringify({ name: "p", gpuModel: "H100-80GB", coefficients: { warpSpeed: 9 } }),
      /profile p\): unknown coefficient\(s\) warpSpeed/,
    ],
    [
      "negative bandwidth",
      JSON.stringify({ name: "p", gpuModel: "H100-80GB", coefficients: { achievedHbmGBps: -1 } }),
      /profile p\): latency coefficient achievedHbmGBps .* must be a positive number/,
    ],
    ["unknown GPU model", JSON.stringify({ name: "p", gpuModel: "Z9000", coefficients: {} }), /Z9000/],
  ])("rejects a bad GPUFLEET_GPU_PROFILE with the reason: %s", (_name, text, error) => {
    expect(() => parsePlannedProfile(text)).toThrow(PlannedProfileError);
    expect(() => parsePlannedProfile(text)).toThrow(error);
  });
});
