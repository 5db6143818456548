import { describe, expect, it } from "vitest";
import { latencyCoefficients } from "../models/latency.js";
import {
  profileCoefficients,
  profilesForPlanning,
  selectGpuProfile,
  type GpuProfileLike,
} from "./gpu-profile-reader.js";

const profile = (
  name: string,
  gpuModel: string,
  imagePrefix?: string,
  coefficients: GpuProfileLike["spec"]["coefficients"] = {},
): GpuProfileLike => ({
  metadata: { name },
  spec: {
    gpuModel,
    engine: { name: "e", ...(imagePrefix ? { imagePrefix } : {}), perLayerOverheadUs: 9 },
    coefficients,
  },
});

describe("GpuProfile reader", () => {
  it("maps the coefficients and engine costs a profile sets, and only those", () => {
    const c = profileCoefficients(profile("p", "H200-141GB", undefined, { achievedTflops: 700, kvReadGBps: 4000 }));
    expect(c).toEqual({ achievedTflops: 700, kvReadGBps: 4000, perLayerOverheadUs: 9 });
    // What it leaves out stays the shipped default once merged.
    const merged = latencyCoefficients("H200-141GB", { "H200-141GB": c });
    expect(merged.achievedTflops).toBe(700);
    expect(merged.achievedHbmGBps).toBe(latencyCoefficients("H200-141GB").achievedHbmGBps);
  });

  it("picks the longest matching imagePrefix, then a profile without one, then the first name", () => {
    const profiles = [
      profile("b-any", "H100-80GB"),
      profile("a-any", "H100-80GB"),
      profile("vllm", "H100-80GB", "vllm/"),
      profile("vllm-011", "H100-80GB", "vllm/vllm-openai:v0.11"),
      profile("sglang", "H100-80GB", "lmsys/sglang"),
      profile("other-gpu", "A100-80GB", "vllm/"),
    ];
    expect(selectGpuProfile(profiles, "H100-80GB", "vllm/vllm-openai:v0.11.0")?.metadata?.name).toBe("vllm-011");
    expect(selectGpuProfile(profiles, "H100-80GB", "vllm/vllm-openai:v0.9.0")?.metadata?.name).toBe("vllm");
    expect(selectGpuProfile(profiles, "H100-80GB", "ghcr.io/x/worker:1")?.metadata?.name).toBe("a-any");
    expect(selectGpuProfile(profiles, "H200-141GB", "vllm/vllm-openai:v0.11.0")).toBeUndefined();
    expect(
      selectGpuProfile([profile("only-sglang", "H100-80GB", "lmsys/sglang")], "H100-80GB", "vllm/x"),
    ).toBeUndefined();
  });

  it("gives the planner one profile per GPU model with its name", () => {
    const p = profilesForPlanning(
      [
        profile("h100", "H100-80GB", undefined, { achievedTflops: 600 }),
        profile("a100", "A100-80GB", "vllm/", { achievedTflops: 200 }),
      ],
      "ghcr.io/x/worker:1",
    );
    expect(p.names).toEqual({ "H100-80GB": "h100" });
    expect(p.overrides).toEqual({ "H100-80GB": { achievedTflops: 600, perLayerOverheadUs: 9 } });
  });
});
