/**
 * Scenarios of the traffic benchmark: a two-tier leaf-spine fabric sized to the job, a placement, the job's
 * collective pattern, and optionally one failed cable.
 *
 * Fabric (every size): leaves of 4 nodes × 8 GPUs, one 400 Gbit/s NIC per GPU on the node's leaf (32 host ports),
 * and 32 uplink ports per leaf: 4 to each of 8 spines (1:1, non-blocking when traffic spreads perfectly).
 * Jobs: tp = 8 inside the node, pp = 1, dp = nodes; one DP all-reduce communicator per rail (tp rank), ring or
 * NCCL's double binary tree, every connection at the NIC's line rate while it runs.
 * Placements:
 *   full-rack     the job fills whole leaves, ranks in leaf order (a topology-aware scheduler: Holmes's order);
 *   partial-rack  every leaf holds 2 nodes of this job and 2 of a second job of the same shape (both run and share
 *                 the fabric; the step time is the first job's), ranks in leaf order;
 *   scattered     whole leaves, ranks in a seeded random node order (a scheduler that ignores topology).
 * failedLink: the cable leaf-0 ⇄ spine-0 port 0 is down (leaf 0 always carries the measured job).
 */
import { seededRandom } from "../../common/src/random.js";
import { uniformFabricSpec, withFailedCable, type FabricSpec } from "../../operator/src/traffic/fabric.js";
import type { CollectiveAlgorithm, FabricNode, TrafficJob } from "../../operator/src/traffic/flows.js";

export const FABRIC_SHAPE = {
  nodesPerLeaf: 4,
  gpusPerNode: 8,
  nicsPerNode: 8,
  nicGbps: 400,
  spines: 8,
  portsPerSpine: 4,
} as const;
export const FAILED_CABLE = { leaf: "leaf-0", spine: "spine-0", port: 0 } as const;

export const Placement = { fullRack: "full-rack", partialRack: "partial-rack", scattered: "scattered" } as const;
export type Placement = (typeof Placement)[keyof typeof Placement];

export interface Scenario {
  name: string;
  gpus: number;
  placement: Placement;
  algorithm: CollectiveAlgorithm;
  failedLink: string | null;
  spec: FabricSpec;
  /** The same fabric with every cable up (the plan before the failure, for the re-plan measurement). */
  healthySpec: FabricSpec;
  nodes: Map<string, FabricNode>;
  nodeLeaf: Map<string, string>;
  jobs: TrafficJob[];
  /** The job whose step time is reported. */
  measuredJob: string;
}

export function buildScenario(
  gpus: number,
  placement: Placement,
  algorithm: CollectiveAlgorithm,
  failed: boolean,
): Scenario {
  const { nodesPerLeaf, gpusPerNode, nicsPerNode, nicGbps, spines, portsPerSpine } = FABRIC_SHAPE;
  const jobNodes = gpus / gpusPerNode;
  const perLeaf = placement === Placement.partialRack ? nodesPerLeaf / 2 : nodesPerLeaf;
  const leaves = Math.ceil(jobNodes / perLeaf);
  const healthySpec = uniformFabricSpec({ leaves, spines, portsPerSpine, portGbps: nicGbps });
  const spec = failed ? withFailedCable(healthySpec, FAILED_CABLE) : healthySpec;
  const nodes = new Map<string, FabricNode>();
  const nodeLeaf = new Map<string, string>();
  const byLeaf: string[][] = [];
  for (let l = 0; l < leaves; l++) {
    byLeaf.push([]);
    for (let i = 0; i < nodesPerLeaf; i++) {
      const name = `node-${String(l).padStart(3, "0")}-${i}`;
      nodes.set(name, { leaf: `leaf-${l}`, nicCount: nicsPerNode, nicBandwidthGbps: nicGbps });
      nodeLeaf.set(name, `leaf-${l}`);
      byLeaf[l]!.push(name);
    }
  }
  const job = (name: string, order: string[]): TrafficJob => ({
    name,
    tp: 8,
    pp: 1,
    dp: order.length,
    gpusPerNode,
    dpAlgorithm: algorithm,
    rankNodes: order.flatMap((n) => Array.from({ length: gpusPerNode }, () => n)),
  });
  let jobs: TrafficJob[];
  if (placement === Placement.fullRack) jobs = [job("job-a", byLeaf.flat().slice(0, jobNodes))];
  else if (placement === Placement.partialRack) {
    jobs = [
      job("job-a", byLeaf.flatMap((ns) => ns.slice(0, 2)).slice(0, jobNodes)),
      job("job-b", byLeaf.flatMap((ns) => ns.slice(2)).slice(0, jobNodes)),
    ];
  } else {
    const order = byLeaf.flat().slice(0, jobNodes);
    const random = seededRandom(gpus);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    // Keep rank 0 on leaf 0 so the failed cable is on the measured job's path in every placement.
    const first = order.findIndex((n) => nodeLeaf.get(n) === "leaf-0");
    [order[0], order[first]] = [order[first]!, order[0]!];
    jobs = [job("job-a", order)];
  }
  const failedLink = failed ? `${FAILED_CABLE.leaf}<>${FAILED_CABLE.spine}#${FAILED_CABLE.port}` : null;
  return {
    name: `${gpus}-${placement}-${algorithm}${failed ? "-failed" : ""}`,
    gpus,
    placement,
    algorithm,
    failedLink,
    spec,
    healthySpec,
    nodes,
    nodeLeaf,
    jobs,
    measuredJob: "job-a",
  };
}
