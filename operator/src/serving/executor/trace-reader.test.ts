import type { V1ConfigMap } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { TraceReader } from "./trace-reader.js";

const CSV =
  "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.5000000,374,44\n2023-11-16 18:15:47.0000000,10,2\n";

function reader(configMaps: Record<string, V1ConfigMap>): { reader: TraceReader; reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    reader: new TraceReader(async (namespace, name) => {
      reads.push(`${namespace}/${name}`);
      return configMaps[`${namespace}/${name}`];
    }),
  };
}

const cm = (data: Record<string, string>, resourceVersion = "1"): V1ConfigMap => ({
  metadata: { name: "trace", namespace: "llm", resourceVersion },
  data,
});

describe("TraceReader", () => {
  it("parses the named key into trace records", async () => {
    const { reader: r } = reader({ "llm/trace": cm({ "conv.csv": CSV }) });
    const read = await r.read("llm", "trace", "conv.csv");
    expect(read.ok && read.records.map((x) => x.promptTokens)).toEqual([374, 10]);
  });

  it.each<[string, Record<string, V1ConfigMap>, RegExp]>([
    ["a missing ConfigMap", {}, /workload.traceRef: ConfigMap llm\/trace not found/],
    ["a missing key", { "llm/trace": cm({ other: CSV, more: CSV }) }, /has no key "conv.csv" \(keys: more, other\)/],
    [
      "an empty trace",
      { "llm/trace": cm({ "conv.csv": "TIMESTAMP,ContextTokens,GeneratedTokens\n" }) },
      /key "conv.csv" holds no requests/,
    ],
    [
      "a bad line",
      { "llm/trace": cm({ "conv.csv": `${CSV}2023-11-16 18:15:48,x,2\n` }) },
      /key "conv.csv": trace line 4: bad ContextTokens "x"/,
    ],
  ])("names what is wrong with %s", async (_name, configMaps, message) => {
    const read = await reader(configMaps).reader.read("llm", "trace", "conv.csv");
    expect(read.ok).toBe(false);
    expect(!read.ok && read.message).toMatch(message);
  });

  it("parses a ConfigMap once per resourceVersion, and again when it changes", async () => {
    const configMaps = { "llm/trace": cm({ "conv.csv": CSV }, "7") };
    const { reader: r } = reader(configMaps);
    const first = await r.read("llm", "trace", "conv.csv");
    const again = await r.read("llm", "trace", "conv.csv");
    expect(first.ok && again.ok && again.records === first.records).toBe(true);
    configMaps["llm/trace"] = cm({ "conv.csv": `${CSV}2023-11-16 18:15:48.0000000,20,3\n` }, "8");
    const changed = await r.read("llm", "trace", "conv.csv");
    expect(changed.ok && changed.records).toHaveLength(3);
  });
});
