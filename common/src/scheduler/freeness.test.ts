import { describe, expect, it } from "vitest";
import { blocksFor, decodeStepsLeft, freeness, idleLoad, virtualUsageBlocks, type InstanceLoad } from "./freeness.js";

const load = (over: Partial<InstanceLoad>): InstanceLoad => ({ ...idleLoad(100), ...over });

describe("freeness F = (M − Σ V) / B", () => {
  describe.each([
    { name: "idle instance: B counts as 1, F = M", load: load({}), usage: 0, f: 100 },
    {
      name: "running requests' blocks are their virtual usage",
      load: load({ kvBlocksUsed: 40, runningRequests: 4 }),
      usage: 40,
      f: 15,
    },
    {
      name: "head-of-line waiting request counts its full demand",
      load: load({ kvBlocksUsed: 40, runningRequests: 4, queuedRequests: 3, headOfLineDemandBlocks: 30 }),
      usage: 70,
      f: 7.5,
    },
    {
      name: "waiting demand beyond free memory makes F negative",
      load: load({ kvBlocksUsed: 90, runningRequests: 2, queuedRequests: 1, headOfLineDemandBlocks: 30 }),
      usage: 120,
      f: -10,
    },
    {
      name: "a high-priority request reserves headroom (10% of M)",
      load: load({ kvBlocksUsed: 40, runningRequests: 4, highPriorityRunning: 1 }),
      usage: 50,
      f: 12.5,
    },
    {
      name: "two high-priority requests reserve twice",
      load: load({ kvBlocksUsed: 40, runningRequests: 4, highPriorityRunning: 2 }),
      usage: 60,
      f: 10,
    },
    {
      name: "a draining instance counts an infinite fake request",
      load: load({ draining: true }),
      usage: Infinity,
      f: -Infinity,
    },
  ])("$name", ({ load: l, usage, f }) => {
    it("virtual usage and freeness", () => {
      expect(virtualUsageBlocks(l)).toBe(usage);
      expect(freeness(l)).toBe(f);
    });
  });

  it("decode steps left scale F by the block size (one token per request per step)", () => {
    expect(decodeStepsLeft(load({ kvBlocksUsed: 40, runningRequests: 4, blockSizeTokens: 16 }))).toBe(15 * 16);
  });

  it("headroom fraction is configurable", () => {
    expect(freeness(load({ runningRequests: 1, highPriorityRunning: 1 }), { highPriorityHeadroomFraction: 0.5 })).toBe(
      50,
    );
  });

  it.each([
    [0, 16, 0],
    [1, 16, 1],
    [16, 16, 1],
    [17, 16, 2],
  ])("blocksFor(%i tokens, block %i) = %i", (tokens, block, blocks) => {
    expect(blocksFor(tokens, block)).toBe(blocks);
  });
});
