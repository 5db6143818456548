/**
 * Re-plan timing at 4,096 GPUs, tree all-reduce (the slow cases of issue 13): plan on the healthy fabric, then the
 * re-plan after the scenario's cable fails, median of REPLAN_REPEATS runs (default 5).
 * `npx tsx bench/traffic/replan-timing.ts`; REPLAN_PLACEMENTS=scattered times only the named placements.
 * Prints wall time and this process's CPU time (user + system): on the shared 2 cores wall time also counts
 * other work waiting for a core, CPU time is closer to what the planner itself costs.
 */
import { buildFabric } from "../../operator/src/traffic/fabric.js";
import { jobConnections } from "../../operator/src/traffic/flows.js";
import { planTraffic } from "../../operator/src/traffic/plan.js";
import { buildScenario, Placement } from "./scenarios.js";

const timed = (fn: () => unknown): { wallMs: number; cpuMs: number } => {
  const cpu = process.cpuUsage();
  const t = performance.now();
  fn();
  const used = process.cpuUsage(cpu);
  return { wallMs: performance.now() - t, cpuMs: (used.user + used.system) / 1000 };
};
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const medians = (runs: { wallMs: number; cpuMs: number }[]): string =>
  `${median(runs.map((r) => r.wallMs)).toFixed(0)} ms (cpu ${median(runs.map((r) => r.cpuMs)).toFixed(0)} ms)`;

const REPEATS = Number(process.env.REPLAN_REPEATS ?? 5);
const PLACEMENTS = process.env.REPLAN_PLACEMENTS?.split(",") ?? Object.values(Placement);

for (const placement of Object.values(Placement).filter((p) => PLACEMENTS.includes(p))) {
  const s = buildScenario(4096, placement, "tree", true);
  const connections = s.jobs.flatMap((j) => jobConnections(j, s.nodes));
  const healthy = { fabric: buildFabric(s.healthySpec), nodeLeaf: s.nodeLeaf, connections };
  const before = planTraffic(healthy);
  const fabric = buildFabric(s.spec);
  const runs = Array.from({ length: REPEATS }, (_, i) => i);
  const plan = runs.map(() => timed(() => planTraffic({ ...healthy, fabric })));
  const replan = runs.map(() => timed(() => planTraffic({ ...healthy, fabric, previous: before })));
  const after = planTraffic({ ...healthy, fabric, previous: before });
  const fresh = planTraffic({ ...healthy, fabric });
  const qps = after.connections.reduce((n, c) => n + c.paths.length, 0);
  console.log(
    `${s.name}: conns ${after.connections.length} qps ${qps} plan ${medians(plan)} (max ${fresh.maxLinkLoad.toFixed(4)}) replan ${medians(replan)} (max ${after.maxLinkLoad.toFixed(4)}, before ${before.maxLinkLoad.toFixed(4)})`,
  );
}
