import { describe, expect, it } from "vitest";
import type { ServingScalingStatus } from "../../../../crds/src/serving-deployment.js";
import { planGroups } from "../pools.js";
import { coloc, disagg, pod } from "./fixtures.test-support.js";
import { scaledGroups } from "./groups.js";

const scaling = (
  desired: ServingScalingStatus["desired"],
  draining: ServingScalingStatus["draining"] = undefined,
): ServingScalingStatus => ({ planHash: "h1", generation: 1, desired, draining });
const drain = (index: number, state: "Draining" | "Drained") => ({
  pod: `sd-h1-c${index}`,
  role: "colocated" as const,
  index,
  state,
  startedTime: "2026-01-01T00:00:00Z",
  deadlineTime: "2026-01-01T00:10:00Z",
});
const keys = (
  plan: Parameters<typeof scaledGroups>[0],
  s: ServingScalingStatus | undefined,
  pods: Parameters<typeof scaledGroups>[2],
) => scaledGroups(plan, s, pods, "h1").map((g) => g.key);

describe("scaledGroups", () => {
  it("is the plan's groups when nothing is scaled", () => {
    expect(keys(coloc(2), undefined, [])).toEqual(planGroups(coloc(2)).map((g) => g.key));
    expect(keys(disagg(1, 2), scaling({ prefill: 1, decode: 2 }), [])).toEqual(["prefill-0", "decode-0", "decode-1"]);
  });

  it.each([
    [
      "scale-up adds the lowest free index",
      coloc(2),
      { colocated: 3 },
      [pod("colocated", 0), pod("colocated", 1)],
      undefined,
      ["colocated-0", "colocated-1", "colocated-2"],
    ],
    [
      "a gap left by an earlier scale-in is reused",
      coloc(2),
      { colocated: 3 },
      [pod("colocated", 0), pod("colocated", 2)],
      undefined,
      ["colocated-0", "colocated-1", "colocated-2"],
    ],
    [
      "a draining instance stays while it drains",
      coloc(3),
      { colocated: 2 },
      [pod("colocated", 0), pod("colocated", 1), pod("colocated", 2)],
      [drain(0, "Draining")],
      ["colocated-0", "colocated-1", "colocated-2"],
    ],
    [
      "a drained one goes, the rest keep their indices",
      coloc(3),
      { colocated: 2 },
      [pod("colocated", 0), pod("colocated", 1), pod("colocated", 2)],
      [drain(0, "Drained")],
      ["colocated-1", "colocated-2"],
    ],
    [
      "a terminating pod keeps its name taken",
      coloc(2),
      { colocated: 2 },
      [pod("colocated", 0, { deleting: true }), pod("colocated", 1)],
      [drain(0, "Drained")],
      ["colocated-1", "colocated-2"],
    ],
    [
      "a pod of another plan does not count",
      coloc(1),
      { colocated: 1 },
      [pod("colocated", 0, { hash: "old" })],
      undefined,
      ["colocated-0"],
    ],
  ] as const)("%s", (_name, plan, desired, pods, draining, expected) => {
    expect(keys(plan, scaling(desired, draining ? [...draining] : undefined), [...pods])).toEqual(expected);
  });

  it("leaves low node-affinity plans as planned (scaled by unit, not here)", () => {
    expect(keys(disagg(2, 2, "low"), scaling({ prefill: 3, decode: 3 }), [])).toEqual(
      planGroups(disagg(2, 2, "low")).map((g) => g.key),
    );
  });
});
