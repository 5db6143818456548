/**
 * Plan identity check for planner refactors: a SHA-256 of every plan the traffic benchmark's 60 scenarios give, so
 * a change meant to be only faster can be shown to return byte-identical plans. Per scenario: the plan from scratch,
 * held to 1 and 16 QPs per connection, and (failure scenarios) the re-plan after the cable fails from the healthy
 * plan as the planner returned it (solved link ids) and as read back from JSON (names only).
 * `npx tsx bench/traffic/plan-hashes.ts > before.txt`, change the planner, run again, `diff` the two.
 * TRAFFIC_SIZES=64,256 limits the sizes, as in the benchmark.
 */
import { createHash } from "node:crypto";
import { buildFabric } from "../../operator/src/traffic/fabric.js";
import { jobConnections } from "../../operator/src/traffic/flows.js";
import { planTraffic, type TrafficPlan } from "../../operator/src/traffic/plan.js";
import { buildScenario, Placement } from "./scenarios.js";

const SIZES = process.env.TRAFFIC_SIZES ? process.env.TRAFFIC_SIZES.split(",").map(Number) : [64, 256, 512, 1024, 4096];

const hash = (plan: TrafficPlan): string =>
  createHash("sha256").update(JSON.stringify(plan)).digest("hex").slice(0, 16);

for (const gpus of SIZES) {
  for (const placement of Object.values(Placement)) {
    for (const algorithm of ["ring", "tree"] as const) {
      for (const failed of [false, true]) {
        const s = buildScenario(gpus, placement, algorithm, failed);
        const connections = s.jobs.flatMap((j) => jobConnections(j, s.nodes));
        const input = { fabric: buildFabric(s.spec), nodeLeaf: s.nodeLeaf, connections };
        const parts = [
          `fresh ${hash(planTraffic(input))}`,
          `1qp ${hash(planTraffic({ ...input, config: { maxQpsPerConnection: 1 } }))}`,
          `16qp ${hash(planTraffic({ ...input, config: { maxQpsPerConnection: 16 } }))}`,
        ];
        if (failed) {
          const before = planTraffic({ ...input, fabric: buildFabric(s.healthySpec) });
          const readBack = JSON.parse(JSON.stringify(before)) as TrafficPlan;
          parts.push(`replan ${hash(planTraffic({ ...input, previous: before }))}`);
          parts.push(`replan-read-back ${hash(planTraffic({ ...input, previous: readBack }))}`);
        }
        console.log(`${s.name}: ${parts.join(" ")}`);
      }
    }
  }
}
