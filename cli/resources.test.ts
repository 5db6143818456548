import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { CliError } from "./errors.js";
import { fieldPath, loadResourceFile, parseResources } from "./resources.js";

const sd = (spec: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
  stringify({
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "ServingDeployment",
    metadata: { name: "chat" },
    spec: {
      model: { name: "m", layers: 32, hiddenSize: 4096, heads: 32, vocabSize: 128256, paramsBillions: 8 },
      slo: { ttftMs: 250, tpotMs: 100 },
      workload: { arrivalRatePerSec: 10, preset: "chatbot" },
      engine: { image: "vllm/vllm-openai:v0.11.0" },
      ...spec,
    },
    ...extra,
  });

const failure = (text: string): CliError => {
  try {
    parseResources(text, "sd.yaml");
  } catch (error) {
    return error as CliError;
  }
  throw new Error("expected a failure");
};

describe("parseResources", () => {
  it("fills the API server's defaults from the CRD schema", () => {
    const [r] = parseResources(sd(), "sd.yaml");
    expect(r!.kind).toBe("ServingDeployment");
    const spec = r!.kind === "ServingDeployment" ? r!.object.spec : undefined;
    expect(spec).toMatchObject({
      mode: "auto",
      gpu: {},
      scaling: { minInstances: 1 },
      slo: { attainmentPercent: 90 },
      model: { dtype: "bf16" },
      engine: { kind: "reference", port: 8000, args: [], env: [] },
    });
    expect(r!.object.metadata.namespace).toBe("default");
  });

  it("reads every document of a multi-document file", () => {
    expect(
      parseResources(`${sd()}---\n${sd({}, { metadata: { name: "other", namespace: "llm" } })}`, "f").map(
        (r) => r.object.metadata.name,
      ),
    ).toEqual(["chat", "other"]);
  });

  it.each<[string, string, RegExp]>([
    [
      "a number out of range",
      sd({ slo: { ttftMs: 0, tpotMs: 100 } }),
      /^sd\.yaml: spec\.slo\.ttftMs expected number to be greater than 0 \(got 0\)$/,
    ],
    ["a missing field", sd({ slo: { tpotMs: 100 } }), /spec\.slo\.ttftMs .*\(it is missing\)/],
    ["a bad enum", sd({ mode: "fast" }), /spec\.mode must be one of disaggregated, colocated, auto \(got "fast"\)/],
    [
      "a bad engine kind",
      sd({ engine: { image: "x", kind: "tgi" } }),
      /spec\.engine\.kind must be one of reference, vllm, sglang/,
    ],
    [
      "an unknown field",
      sd({ replicas: 3 }),
      /spec\.replicas is not a known field \(known: model, slo, workload, gpu, mode, engine, scaling\)/,
    ],
    [
      "an unknown nested field",
      sd({ engine: { image: "x", args: [], env: [{ name: "A", value: "1", from: "x" }] } }),
      /spec\.engine\.env\[0\]\.from is not a known field/,
    ],
    ["another kind", sd({}, { kind: "Deployment" }), /kind must be ServingDeployment or TrainingJob, got "Deployment"/],
    ["another API version", sd({}, { apiVersion: "apps/v1" }), /apiVersion must be gpufleet\.io\/v1alpha1/],
    ["a long name", sd({}, { metadata: { name: "x".repeat(41) } }), /metadata\.name must be at most 40 characters/],
    ["broken YAML", "a: [1,\n", /not valid YAML/],
    ["an empty file", "", /holds no resource/],
  ])("names the field of %s (exit code 2)", (_name, text, message) => {
    const error = failure(text);
    expect(error).toBeInstanceOf(CliError);
    expect(error.exitCode).toBe(2);
    expect(error.message).toMatch(message);
  });

  it("reads the examples/ TrainingJob with its defaults", () => {
    const [r] = loadResourceFile(new URL("../examples/gpt-7b-holmes.yaml", import.meta.url).pathname);
    expect(r!.kind).toBe("TrainingJob");
    expect(r!.kind === "TrainingJob" && r!.object.spec.placement).toEqual({ nicAware: true });
  });

  it("says when a file cannot be read", () => {
    expect(() => loadResourceFile("/nonexistent/sd.yaml")).toThrow(
      /\/nonexistent\/sd\.yaml: cannot be read \(ENOENT\)/,
    );
  });

  it.each([
    ["/slo/ttftMs", "spec.slo.ttftMs"],
    ["/engine/args/2", "spec.engine.args[2]"],
    ["", "spec"],
  ])("fieldPath(%j) = %s", (pointer, path) => expect(fieldPath(pointer)).toBe(path));
});
