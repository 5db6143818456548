import { describe, expect, it } from "vitest";
import { hashedPath, sourcePortFor, uplinkChoices, SOURCE_PORT_MIN, type FabricCables } from "./ecmp-hash.js";

const fabric: FabricCables = {
  spines: ["s0", "s1"],
  leaves: [
    {
      name: "a",
      uplinks: [
        { spine: "s0", ports: 2 },
        { spine: "s1", ports: 2, failedPorts: [1] },
      ],
    },
    {
      name: "b",
      uplinks: [
        { spine: "s0", ports: 2 },
        { spine: "s1", ports: 2 },
      ],
    },
  ],
};
const tuple = { srcNode: "n1", dstNode: "n2" };

describe("ECMP hash model", () => {
  it("offers only live uplinks toward spines that reach the destination", () => {
    expect(uplinkChoices(fabric, "a", "b")).toEqual([
      { spine: "s0", port: 0 },
      { spine: "s0", port: 1 },
      { spine: "s1", port: 0 },
    ]);
    const cut: FabricCables = {
      ...fabric,
      leaves: [
        fabric.leaves[0]!,
        {
          name: "b",
          uplinks: [
            { spine: "s0", ports: 2, failedPorts: [0, 1] },
            { spine: "s1", ports: 2 },
          ],
        },
      ],
    };
    expect(uplinkChoices(cut, "a", "b")).toEqual([{ spine: "s1", port: 0 }]);
  });

  it("spreads source ports over every choice and never onto a failed cable", () => {
    const seen = new Set<string>();
    for (let p = SOURCE_PORT_MIN; p < SOURCE_PORT_MIN + 400; p++) {
      const path = hashedPath(fabric, "a", "b", tuple, p)!;
      expect(`${path.spine}#${path.uplinkPort}`).not.toBe("s1#1");
      seen.add(`${path.spine}#${path.uplinkPort}>${path.downlinkPort}`);
    }
    expect(seen.size).toBe(6); // 3 uplinks x 2 downlinks
  });

  it("finds a port for every live path, distinct from those taken, and the hash agrees", () => {
    const taken = new Set<number>();
    for (const up of uplinkChoices(fabric, "a", "b")) {
      for (const downlinkPort of [0, 1]) {
        const path = { spine: up.spine, uplinkPort: up.port, downlinkPort };
        const port = sourcePortFor(fabric, "a", "b", tuple, path, "conn-1", taken)!;
        expect(taken.has(port)).toBe(false);
        taken.add(port);
        expect(hashedPath(fabric, "a", "b", tuple, port)).toEqual(path);
      }
    }
    expect(
      sourcePortFor(fabric, "a", "b", tuple, { spine: "s1", uplinkPort: 1, downlinkPort: 0 }, "conn-1"),
    ).toBeUndefined();
  });
});
