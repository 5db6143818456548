import { describe, expect, it } from "vitest";
import { cluster, makeTrainingJob } from "./builders.js";
import { checkGangFits, planGangPods, placementStatus } from "./gang.js";
import { planTrainingPlacement } from "./placement.js";
import type { TrainingPlacement } from "./types.js";

const nodes = cluster().island("ib", "infiniband", 4).island("roce", "roce", 4).build();
const job = makeTrainingJob("llm").parallel(8, 4, 2).obj(); // 8 nodes: both islands
const result = planTrainingPlacement({ job, nodes });
const p = result as TrainingPlacement;

describe("planGangPods", () => {
  const pods = planGangPods(p, {
    namespace: "ml",
    serviceName: "llm",
    masterPort: 29500,
    checkpointPath: "/ckpt",
    checkpointIntervalSteps: 100,
    resumeStep: 7,
  });

  it("has one pod per planned node with all of its GPUs, bound to that node", () => {
    expect(result.ok).toBe(true);
    expect(pods.map((x) => x.nodeName)).toEqual(p.nodes.map((n) => n.nodeName));
    expect(pods.map((x) => x.podName)).toEqual(Array.from({ length: 8 }, (_, i) => `llm-${i}`));
    expect(pods.every((x) => x.gpus === 8)).toBe(true);
  });

  it("points every pod at node rank 0's stable DNS name", () => {
    expect(new Set(pods.map((x) => x.env.MASTER_ADDR))).toEqual(new Set(["llm-0.llm.ml.svc"]));
    expect(pods.map((x) => x.env.NODE_RANK)).toEqual(pods.map((x) => String(x.nodeRank)));
    expect(pods.every((x) => x.env.GPUFLEET_RESUME_STEP === "7")).toBe(true);
  });

  it("gives every pod the QPs per connection of the job's last traffic plan, when it has one", () => {
    expect(pods.some((x) => "NCCL_IB_QPS_PER_CONNECTION" in x.env)).toBe(false);
    const planned = planGangPods(p, {
      namespace: "ml",
      serviceName: "llm",
      masterPort: 29500,
      checkpointPath: "/ckpt",
      checkpointIntervalSteps: 100,
      resumeStep: 7,
      qpsPerConnection: 8,
    });
    expect(planned.map((x) => x.env.NCCL_IB_QPS_PER_CONNECTION)).toEqual(pods.map(() => "8"));
  });
});

describe("checkGangFits", () => {
  const planned = p.nodes.map((n) => n.nodeName);
  const mutate = (name: string, change: Partial<(typeof nodes)[number]>) =>
    nodes.map((n) => (n.nodeName === name ? { ...n, ...change } : n));
  it.each([
    { name: "nothing changed", current: nodes, bound: [], want: [] },
    {
      name: "a planned node was isolated",
      current: mutate(planned[3]!, { isolated: true }),
      bound: [],
      want: [{ nodeName: planned[3]!, why: "isolated" }],
    },
    {
      name: "a planned node was cordoned",
      current: mutate(planned[0]!, { schedulable: false }),
      bound: [],
      want: [{ nodeName: planned[0]!, why: "unschedulable" }],
    },
    {
      name: "a planned node disappeared",
      current: nodes.filter((n) => n.nodeName !== planned[5]),
      bound: [],
      want: [{ nodeName: planned[5]!, why: "gone" }],
    },
    {
      name: "another pod took GPUs",
      current: mutate(planned[2]!, { gpusFree: 6 }),
      bound: [],
      want: [{ nodeName: planned[2]!, why: "6 of 8 GPUs free" }],
    },
    {
      name: "our own pod holds the GPUs",
      current: mutate(planned[2]!, { gpusFree: 0 }),
      bound: [planned[2]!],
      want: [],
    },
  ])("$name", ({ current, bound, want }) => {
    const fit = checkGangFits(p, current, new Set(bound));
    expect(fit.ok).toBe(want.length === 0);
    if (!fit.ok) {
      expect(fit.unfit).toEqual(want);
      expect(fit.message).toContain(`1 of 8 planned nodes no longer fit: ${want[0]!.nodeName}`);
    }
  });
});

describe("placementStatus", () => {
  it("summarises islands, ranks per island and layers per stage", () => {
    const s = placementStatus(p);
    expect(s.islands.sort()).toEqual(["ib", "roce"]);
    expect(s.ranksPerIsland).toEqual({ ib: 32, roce: 32 });
    expect(s.layersPerStage.reduce((a, b) => a + b, 0)).toBe(job.model.layers);
    expect(s.nodes).toHaveLength(8);
  });
});
