import { describe, expect, it } from "vitest";
import { parseCliArgs } from "./args.js";
import { CliError } from "./errors.js";

describe("parseCliArgs", () => {
  it.each<[string, string[], object]>([
    [
      "plan on the default profile",
      ["plan", "-f", "sd.yaml"],
      { command: "plan", file: "sd.yaml", profile: "default", live: false, output: "table" },
    ],
    [
      "plan on a named profile as yaml",
      ["plan", "-f", "sd.yaml", "--profile", "large", "-o", "yaml"],
      { profile: "large", output: "yaml" },
    ],
    [
      "plan on the kubeconfig's cluster",
      ["plan", "-f", "sd.yaml", "--context", "kind"],
      { live: true, context: "kind" },
    ],
    [
      "plan on a trace",
      ["plan", "sd.yaml", "--trace", "t.csv", "-o", "json"],
      { file: "sd.yaml", trace: "t.csv", output: "json" },
    ],
    [
      "explain sd",
      ["explain", "sd/llama3-8b-chat", "-n", "llm"],
      { command: "explain", kind: "ServingDeployment", name: "llama3-8b-chat", namespace: "llm" },
    ],
    [
      "explain trainingjob",
      ["explain", "trainingjob/gpt-7b"],
      { kind: "TrainingJob", name: "gpt-7b", namespace: "default" },
    ],
    [
      "top with a URL",
      ["top", "--metrics-url", "http://op:8080/metrics"],
      { command: "top", metricsUrl: "http://op:8080/metrics" },
    ],
    ["help", [], { command: "help" }],
  ])("%s", (_name, argv, expected) => {
    expect(parseCliArgs(argv)).toMatchObject(expected);
  });

  it("takes the metrics URL from the environment", () => {
    expect(parseCliArgs(["top"], { GPUFLEET_METRICS_URL: "http://x/metrics" })).toMatchObject({
      metricsUrl: "http://x/metrics",
    });
  });

  it.each<[string, string[], RegExp]>([
    ["no file", ["plan"], /plan needs a file/],
    ["profile and live cluster", ["plan", "-f", "a", "--profile", "p", "--live"], /not both/],
    ["a bad output", ["plan", "-f", "a", "-o", "xml"], /--output must be one of table, json, yaml, got "xml"/],
    ["a bad target", ["explain", "pod/x"], /explain needs sd\/NAME or tj\/NAME, got "pod\/x"/],
    ["an unknown flag", ["top", "--watch"], /Unknown option '--watch'/],
    ["an unknown command", ["apply"], /unknown command "apply"/],
  ])("refuses %s with exit code 2", (_name, argv, message) => {
    let error: unknown;
    try {
      parseCliArgs(argv);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(2);
    expect((error as CliError).message).toMatch(message);
  });
});
