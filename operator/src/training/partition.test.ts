import { describe, expect, it } from "vitest";
import {
  layerRanges,
  maxStageMs,
  partitionLayers,
  PartitionError,
  uniformLayers,
  type StageTimeFn,
} from "./partition.js";
import { seededRandom as rng } from "../../../common/src/random.js";

/** Every split of `layers` into `stages` positive parts. */
function* compositions(layers: number, stages: number): Generator<number[]> {
  if (stages === 1) {
    yield [layers];
    return;
  }
  for (let k = 1; k <= layers - stages + 1; k++)
    for (const rest of compositions(layers - k, stages - 1)) yield [k, ...rest];
}

function bruteForceMinMax(layers: number, stages: readonly StageTimeFn[]): number {
  let best = Number.POSITIVE_INFINITY;
  for (const split of compositions(layers, stages.length)) best = Math.min(best, maxStageMs(stages, split));
  return best;
}

const randomCases = Array.from({ length: 60 }, (_, i) => {
  const next = rng(1000 + i);
  const pp = 1 + Math.floor(next() * 4);
  const layers = pp + Math.floor(next() * (13 - pp));
  const stages = Array.from({ length: pp }, () => ({
    perLayerMs: 1 + Math.floor(next() * 40),
    fixedMs: Math.floor(next() * 60),
  }));
  return { name: `random #${i}: ${layers} layers over ${pp} stages`, layers, stages };
});

const namedCases = [
  {
    name: "identical stages",
    layers: 12,
    stages: [
      { perLayerMs: 10, fixedMs: 0 },
      { perLayerMs: 10, fixedMs: 0 },
      { perLayerMs: 10, fixedMs: 0 },
    ],
  },
  {
    name: "one stage 3× slower (an Ethernet island)",
    layers: 8,
    stages: [
      { perLayerMs: 10, fixedMs: 0 },
      { perLayerMs: 30, fixedMs: 0 },
    ],
  },
  {
    name: "fixed cost dominates one stage",
    layers: 10,
    stages: [
      { perLayerMs: 5, fixedMs: 40 },
      { perLayerMs: 5, fixedMs: 0 },
      { perLayerMs: 6, fixedMs: 0 },
    ],
  },
  {
    name: "free layers on one stage",
    layers: 6,
    stages: [
      { perLayerMs: 0, fixedMs: 1 },
      { perLayerMs: 7, fixedMs: 0 },
    ],
  },
  { name: "one stage, all layers", layers: 5, stages: [{ perLayerMs: 3, fixedMs: 2 }] },
  {
    name: "one layer per stage",
    layers: 4,
    stages: [
      { perLayerMs: 3, fixedMs: 0 },
      { perLayerMs: 1, fixedMs: 9 },
      { perLayerMs: 2, fixedMs: 0 },
      { perLayerMs: 8, fixedMs: 0 },
    ],
  },
];

describe("partitionLayers (Holmes self-adapting pipeline partition)", () => {
  describe.each([...namedCases, ...randomCases])("$name", ({ layers, stages }) => {
    const split = partitionLayers(layers, stages);

    it("gives every stage at least one layer and uses every layer", () => {
      expect(split).toHaveLength(stages.length);
      expect(split.every((k) => Number.isInteger(k) && k >= 1)).toBe(true);
      expect(split.reduce((a, b) => a + b, 0)).toBe(layers);
    });

    it("reaches the brute-force min-max stage time", () => {
      expect(maxStageMs(stages, split)).toBeCloseTo(bruteForceMinMax(layers, stages), 9);
    });
  });

  it("gives a slower stage fewer layers", () => {
    const split = partitionLayers(36, [
      { perLayerMs: 10, fixedMs: 0 },
      { perLayerMs: 10, fixedMs: 0 },
      { perLayerMs: 25, fixedMs: 0 },
      { perLayerMs: 25, fixedMs: 0 },
    ]);
    expect(split[2]!).toBeLessThan(split[0]!);
    expect(split[3]!).toBeLessThan(split[1]!);
  });

  it.each([
    { layers: 2, stages: 3 },
    { layers: 0, stages: 1 },
    { layers: 4, stages: 0 },
  ])("refuses $layers layers over $stages stages", ({ layers, stages }) => {
    expect(() =>
      partitionLayers(
        layers,
        Array.from({ length: stages }, () => ({ perLayerMs: 1, fixedMs: 0 })),
      ),
    ).toThrow(PartitionError);
  });

  it("refuses non-finite stage times with the stage named", () => {
    expect(() =>
      partitionLayers(4, [
        { perLayerMs: 1, fixedMs: 0 },
        { perLayerMs: Number.NaN, fixedMs: 0 },
      ]),
    ).toThrow(/stage 1/);
  });
});

describe("uniformLayers (Megatron's default split)", () => {
  it.each([
    { layers: 36, pp: 4, want: [9, 9, 9, 9] },
    { layers: 10, pp: 4, want: [3, 3, 2, 2] },
    { layers: 5, pp: 5, want: [1, 1, 1, 1, 1] },
  ])("$layers layers over $pp stages → $want", ({ layers, pp, want }) => {
    expect(uniformLayers(layers, pp)).toEqual(want);
  });
});

describe("layerRanges", () => {
  it("turns counts into contiguous half-open ranges", () => {
    expect(layerRanges([3, 1, 2])).toEqual([
      { layerStart: 0, layerEndExclusive: 3 },
      { layerStart: 3, layerEndExclusive: 4 },
      { layerStart: 4, layerEndExclusive: 6 },
    ]);
  });
});
