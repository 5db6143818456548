import { describe, expect, it } from "vitest";
import { stageMs } from "../../workers/simulated/migration.js";
import { KvLinkKind } from "./kv-transfer.js";
import {
  leaseMs,
  linkEndBody,
  linkEndOf,
  migrationLink,
  parseCommitBody,
  parseReserveBody,
  parseStageBody,
  refusalOf,
} from "./migrations.js";

const RESERVE = {
  request_id: "r1",
  model: "m",
  block_size_tokens: 16,
  prompt_tokens: 100,
  max_output_tokens: 50,
  tokens: 96,
  source: { node: "n1", gpu_model: "H100-80GB", gpus: 1, nic_gbps_per_gpu: 50 },
};

describe("migration messages", () => {
  it("accepts the contract's bodies and names the first bad field otherwise", () => {
    expect(parseReserveBody(RESERVE)).toEqual(RESERVE);
    expect(parseReserveBody({ ...RESERVE, tokens: -1 })).toMatch(/^\/tokens: /);
    expect(parseReserveBody({ ...RESERVE, source: { ...RESERVE.source, gpus: 0 } })).toMatch(/^\/source\/gpus: /);
    expect(parseStageBody({ tokens: 128 })).toEqual({ tokens: 128 });
    expect(parseStageBody({})).toMatch(/tokens/);
    expect(
      parseCommitBody({ prompt_tokens: 100, max_output_tokens: 50, priority: 0, output_tokens: 7, arrival_ms: 1 }),
    ).toMatchObject({ output_tokens: 7 });
    expect(
      parseCommitBody({ prompt_tokens: 100, max_output_tokens: 50, priority: 0, output_tokens: 0, arrival_ms: 1 }),
    ).toMatch(/output_tokens/);
  });

  it("round-trips a link end", () => {
    const end = { nodeName: "n1", gpuModel: "H100-80GB", gpus: 2, nicGBpsPerGpu: 50 };
    expect(linkEndOf(linkEndBody(end))).toEqual(end);
  });

  it("leases the stage that copies the difference over the link, plus the grace", () => {
    const link = { kind: KvLinkKind.nic, GBps: 0.1 };
    expect(migrationLink(link)).toEqual({ bytesPerSecond: 1e8, latencyMs: 0 });
    // 1,000 new positions × 131,072 bytes at 0.1 GB/s = 1,310.72 ms, + 1 s.
    expect(leaseMs(1_500, 500, 131_072, link, 1_000)).toBeCloseTo(2_310.72, 6);
    expect(leaseMs(1_500, 500, 131_072, link, 1_000)).toBeCloseTo(
      stageMs(1_000, 131_072, migrationLink(link)) + 1_000,
      9,
    );
    // A stage that grows nothing is leased for the grace alone.
    expect(leaseMs(400, 500, 131_072, link, 1_000)).toBe(1_000);
  });

  it("maps the destination's error codes to the refusals the source aborts on; a missing instance is a dead destination", () => {
    expect(refusalOf("out_of_memory")).toBe("out-of-memory");
    expect(refusalOf("migration_busy")).toBe("migration-busy");
    expect(refusalOf("migration_not_found")).toBe("not-migratable");
    expect(refusalOf("instance_not_found")).toBe("unreachable");
    expect(refusalOf("unavailable")).toBe("unreachable");
    expect(refusalOf("draining")).toBe("draining");
    expect(refusalOf(undefined)).toBe("invalid");
  });
});
