/**
 * Re-plan timing at 4,096 GPUs, tree all-reduce (the slow cases of issue 13): plan on the healthy fabric, then the
 * re-plan after the scenario's cable fails, median of 3. `npx tsx bench/traffic/replan-timing.ts`.
 */
import { buildFabric } from "../../operator/src/traffic/fabric.js";
import { jobConnections } from "../../operator/src/traffic/flows.js";
import { planTraffic } from "../../operator/src/traffic/plan.js";
import { buildScenario, Placement } from "./scenarios.js";

const ms = (fn: () => unknown): number => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

for (const placement of Object.values(Placement)) {
  const s = buildScenario(4096, placement, "tree", true);
  const connections = s.jobs.flatMap((j) => jobConnections(j, s.nodes));
  const healthy = { fabric: buildFabric(s.healthySpec), nodeLeaf: s.nodeLeaf, connections };
  const before = planTraffic(healthy);
  const fabric = buildFabric(s.spec);
  const planMs = median([0, 1, 2].map(() => ms(() => planTraffic({ ...healthy, fabric }))));
  const replanMs = median([0, 1, 2].map(() => ms(() => planTraffic({ ...healthy, fabric, previous: before }))));
  const after = planTraffic({ ...healthy, fabric, previous: before });
  const fresh = planTraffic({ ...healthy, fabric });
  const qps = after.connections.reduce((n, c) => n + c.paths.length, 0);
  console.log(
    `${s.name}: conns ${after.connections.length} qps ${qps} plan ${planMs.toFixed(0)} ms (max ${fresh.maxLinkLoad.toFixed(4)}) replan ${replanMs.toFixed(0)} ms (max ${after.maxLinkLoad.toFixed(4)}, before ${before.maxLinkLoad.toFixed(4)})`,
  );
}
