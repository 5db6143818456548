/**
 * From a fabric's traffic plan to what each node's agent is asked to apply, and back from what the agents report
 * to each job's status (pure: no I/O).
 *
 * A plan pins every QP of an inter-leaf connection to a path (spine, uplink port, downlink port). What a RoCE stack
 * can be told is a UDP source port per QP: the switches' ECMP hashes do the rest. So each QP gets the source port
 * that hashes onto its planned path (common/src/fabric/ecmp-hash.ts), distinct per node pair; the connection's
 * QP count is NCCL_IB_QPS_PER_CONNECTION and its NIC the source HCA. A node's request holds the connections it
 * sends; its plan id is a digest of that content, so an unchanged plan is recognised and not sent again.
 */
import { createHash } from "node:crypto";
import { sourcePortFor, type FabricCables } from "../../../common/src/fabric/ecmp-hash.js";
import type { TrainingJob } from "../../../crds/src/training-job.js";
import { rankNodesOf } from "../training/faults/input.js";
import { CollectiveAlgorithm, type Connection, type TrafficJob } from "./flows.js";
import type { TrafficPlan } from "./plan.js";

/** A TrainingJob as the flow model sees it (ring all-reduce per DP group, PP both ways; NCCL's default for large). */
export function trafficJobOf(job: TrainingJob): TrafficJob {
  const { tp, pp, dp } = job.spec.parallelism;
  return {
    name: `${job.metadata.namespace}/${job.metadata.name}`,
    tp,
    pp,
    dp,
    gpusPerNode: job.spec.gpusPerNode,
    rankNodes: rankNodesOf(job.status?.placement?.nodes ?? [], job.spec.gpusPerNode),
    dpAlgorithm: CollectiveAlgorithm.ring,
  };
}

export interface QpRequest {
  udpSourcePort: number;
  spine: string;
  uplinkPort: number;
  downlinkPort: number;
}

export interface FlowRequest {
  connectionId: string;
  job: string;
  communicator: string;
  srcRank: number;
  dstRank: number;
  dstNode: string;
  nic: string;
  demandGbps: number;
  qps: QpRequest[];
}

export interface NodePlanRequest {
  node: string;
  planId: string;
  fabric: string;
  flows: FlowRequest[];
}

export interface NodeRequestsResult {
  byNode: Map<string, NodePlanRequest>;
  /** QPs for which no source port hashes onto the planned path (should not happen with a live path). */
  unmapped: string[];
}

/** The per-node requests of a fabric's plan; `nicName(node, index)` names a node's NIC as its agent does. */
export function nodeRequests(
  fabricName: string,
  cables: FabricCables,
  plan: TrafficPlan,
  connections: readonly Connection[],
  nodeLeaf: ReadonlyMap<string, string>,
  nicName: (node: string, index: number) => string,
): NodeRequestsResult {
  const byId = new Map(connections.map((c) => [c.id, c]));
  const flowsByNode = new Map<string, FlowRequest[]>();
  const taken = new Map<string, Set<number>>();
  const unmapped: string[] = [];
  for (const planned of plan.connections) {
    const c = byId.get(planned.id);
    if (!c) continue;
    const pair = `${c.srcNode}>${c.dstNode}`;
    const used = taken.get(pair) ?? new Set<number>();
    taken.set(pair, used);
    const qps: QpRequest[] = [];
    planned.paths.forEach((path, q) => {
      const port = sourcePortFor(
        cables,
        nodeLeaf.get(c.srcNode)!,
        nodeLeaf.get(c.dstNode)!,
        { srcNode: c.srcNode, dstNode: c.dstNode },
        path,
        `${c.id}#${q}`,
        used,
      );
      if (port === undefined) {
        unmapped.push(`${c.id}#${q}`);
        return;
      }
      used.add(port);
      qps.push({ udpSourcePort: port, ...path });
    });
    if (qps.length === 0) continue;
    const flow: FlowRequest = {
      connectionId: c.id,
      job: c.job,
      communicator: c.communicator,
      srcRank: c.srcRank,
      dstRank: c.dstRank,
      dstNode: c.dstNode,
      nic: nicName(c.srcNode, c.nic),
      demandGbps: c.demandGbps,
      qps,
    };
    flowsByNode.set(c.srcNode, [...(flowsByNode.get(c.srcNode) ?? []), flow]);
  }
  const byNode = new Map<string, NodePlanRequest>();
  for (const [node, flows] of [...flowsByNode].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    flows.sort((a, b) => (a.connectionId < b.connectionId ? -1 : a.connectionId > b.connectionId ? 1 : 0));
    byNode.set(node, { node, planId: planIdOf(fabricName, flows), fabric: fabricName, flows });
  }
  return { byNode, unmapped };
}

/** A digest of a node's flows: equal content, equal id (the agent's applied plan id says whether it is current). */
export function planIdOf(fabricName: string, flows: readonly FlowRequest[]): string {
  return `c4p-${createHash("sha256")
    .update(JSON.stringify([fabricName, flows]))
    .digest("hex")
    .slice(0, 16)}`;
}

/** What an agent reports a node applies (the fields of AppliedTrafficPlan the operator reads). */
export interface AppliedReport {
  planId: string;
  flows: {
    connectionId: string;
    job: string;
    qps: { udpSourcePort: number; spine: string; uplinkPort: number; downlinkPort: number }[];
  }[];
}

export interface JobApplied {
  /** Nodes that send planned flows of the job, and of those the ones whose agent reports the current plan. */
  nodes: number;
  nodesApplied: number;
  /** QPs of the job's planned flows, those reported applied, and of these the ones on their planned path. */
  qpsPlanned: number;
  qpsApplied: number;
  qpsOnPlannedPath: number;
}

/** Compares what the agents report with what was planned, for one job: the report's paths are the fabric's own. */
export function jobApplied(
  job: string,
  requests: ReadonlyMap<string, NodePlanRequest>,
  reports: ReadonlyMap<string, AppliedReport | undefined>,
): JobApplied {
  const out: JobApplied = { nodes: 0, nodesApplied: 0, qpsPlanned: 0, qpsApplied: 0, qpsOnPlannedPath: 0 };
  for (const [node, request] of requests) {
    const planned = request.flows.filter((f) => f.job === job);
    if (planned.length === 0) continue;
    out.nodes++;
    const report = reports.get(node);
    const current = report?.planId === request.planId;
    if (current) out.nodesApplied++;
    const reported = new Map((current ? report.flows : []).map((f) => [f.connectionId, f]));
    for (const f of planned) {
      out.qpsPlanned += f.qps.length;
      const got = reported.get(f.connectionId);
      if (!got) continue;
      out.qpsApplied += got.qps.length;
      for (const q of f.qps) {
        const r = got.qps.find((x) => x.udpSourcePort === q.udpSourcePort);
        if (r && r.spine === q.spine && r.uplinkPort === q.uplinkPort && r.downlinkPort === q.downlinkPort)
          out.qpsOnPlannedPath++;
      }
    }
  }
  return out;
}
