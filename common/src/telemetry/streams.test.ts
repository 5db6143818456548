import { DiscardPolicy, nanos, StorageType } from "nats";
import { describe, expect, it } from "vitest";
import { STREAMS, streamConfig, streamDefinition, streamName } from "./streams.js";
import { Stream, subjectFor } from "./subjects.js";

describe("JetStream streams", () => {
  it("defines one stream per telemetry stream, capturing its subjects", () => {
    expect(STREAMS.map((s) => s.stream).sort()).toEqual(Object.values(Stream).sort());
    for (const s of STREAMS) expect(s.subjects).toEqual([`gpufleet.v1.${s.stream}.*`]);
    expect(subjectFor("worker-events", "gpu-0")).toBe("gpufleet.v1.worker-events.gpu-0");
  });

  it.each([
    ["collectives", "GPUFLEET_COLLECTIVES"],
    ["worker-events", "GPUFLEET_WORKER_EVENTS"],
  ] as const)("names %s %s (JetStream names allow no dots)", (stream, name) => expect(streamName(stream)).toBe(name));

  it.each([
    ["collectives", DiscardPolicy.New, -1],
    ["worker-events", DiscardPolicy.New, -1],
    ["workers", DiscardPolicy.New, -1],
    ["load", DiscardPolicy.Old, 64],
    ["rdma", DiscardPolicy.Old, 120],
  ] as const)("%s: discard %s when full, %i messages per subject", (stream, discard, perSubject) => {
    const config = streamConfig(streamDefinition(stream));
    expect(config).toMatchObject({
      discard,
      max_msgs_per_subject: perSubject,
      storage: StorageType.File,
      num_replicas: 1,
      duplicate_window: nanos(120_000),
    });
    expect(config.max_bytes).toBeGreaterThan(0);
    expect(config.max_age).toBeGreaterThan(0);
  });
});
