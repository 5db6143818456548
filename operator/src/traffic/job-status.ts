/**
 * A TrainingJob's C4P status and its TrafficPlanned condition (pure), from the fabric's plan, the requests the
 * agents were sent and what they report applied.
 *
 * TrafficPlanned reasons:
 *   True  Applied             every node sending the job's inter-leaf flows reports the current plan, and every
 *                             QP's port hashes onto its planned path
 *   True  NoInterLeafTraffic  the job's connections all stay under one leaf: nothing to pin
 *   False Applying            some nodes do not report the current plan yet (sent this period, or refused: the
 *                             message names them and why)
 *   False PathMismatch        applied, but some QPs' ports hash elsewhere (the cables changed since): re-planned
 *   False Unroutable          some connections have no live spine path
 *   False NoFabric            no FabricTopology covers the job's nodes (or its nodes lack gpufleet.io/leaf)
 *   False InvalidFabric       the job's FabricTopology is inconsistent (its status says how)
 */
import type { ConditionUpdate } from "../../../crds/src/conditions.js";
import { MAX_TRAFFIC_FLOWS_SHOWN, type TrafficStatus } from "../../../crds/src/training-job.js";
import { jobApplied, type AppliedReport, type NodePlanRequest } from "./execution.js";
import type { Connection } from "./flows.js";
import type { TrafficPlan } from "./plan.js";

export const TrafficCondition = "TrafficPlanned";
export const TrafficReason = {
  applied: "Applied",
  noInterLeafTraffic: "NoInterLeafTraffic",
  applying: "Applying",
  pathMismatch: "PathMismatch",
  unroutable: "Unroutable",
  noFabric: "NoFabric",
  invalidFabric: "InvalidFabric",
} as const;

export interface JobTrafficInput {
  job: string;
  fabric: string;
  plan: TrafficPlan;
  connections: readonly Connection[];
  requests: ReadonlyMap<string, NodePlanRequest>;
  reports: ReadonlyMap<string, AppliedReport | undefined>;
  /** Why a node's agent did not take its plan this period (gRPC code and message), by node. */
  nodeErrors: ReadonlyMap<string, string>;
  ecmpMaxLinkLoad: number;
  plannedUnixMs: number;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

export function jobTrafficStatus(input: JobTrafficInput): { traffic: TrafficStatus; condition: ConditionUpdate } {
  const { job, plan } = input;
  const mine = input.connections.filter((c) => c.job === job);
  const planned = plan.connections.filter((c) => c.job === job);
  const unroutable = plan.unroutable.filter((u) => u.id.startsWith(`${job}/`));
  const applied = jobApplied(job, input.requests, input.reports);
  const ratio = input.ecmpMaxLinkLoad > 0 ? plan.maxLinkLoad / input.ecmpMaxLinkLoad : 1;
  const byId = new Map(mine.map((c) => [c.id, c]));
  const portsOf = new Map<string, number[]>();
  for (const r of input.requests.values())
    for (const f of r.flows)
      portsOf.set(
        f.connectionId,
        f.qps.map((q) => q.udpSourcePort),
      );
  const flows = planned.slice(0, MAX_TRAFFIC_FLOWS_SHOWN).map((c) => {
    const conn = byId.get(c.id);
    const ports = portsOf.get(c.id) ?? [];
    const nic = input.requests.get(conn?.srcNode ?? "")?.flows.find((f) => f.connectionId === c.id)?.nic ?? "";
    return {
      connection: c.id,
      from: conn?.srcNode ?? "",
      to: conn?.dstNode ?? "",
      nic,
      paths: c.paths.map((p, q) => `${p.spine}#${p.uplinkPort}>#${p.downlinkPort}@${ports[q] ?? "?"}`),
    };
  });
  const traffic: TrafficStatus = {
    fabric: input.fabric,
    plannedTime: new Date(input.plannedUnixMs).toISOString(),
    connections: planned.length,
    intraLeafConnections: mine.length - planned.length - unroutable.length,
    unroutable: unroutable.length,
    qpsPerConnection: plan.qpsPerJob[job] ?? 1,
    maxLinkLoad: round(plan.maxLinkLoad),
    ecmpMaxLinkLoad: round(input.ecmpMaxLinkLoad),
    loadRatioToEcmp: round(ratio),
    ...applied,
    flows,
  };
  return { traffic, condition: conditionOf(input, traffic) };
}

function conditionOf(input: JobTrafficInput, t: TrafficStatus): ConditionUpdate {
  const on = `on fabric ${input.fabric}`;
  const loads = `predicted max link load ${t.maxLinkLoad} vs ${t.ecmpMaxLinkLoad} under ECMP (×${t.loadRatioToEcmp})`;
  if (t.unroutable > 0) {
    const first = input.plan.unroutable.find((u) => u.id.startsWith(`${input.job}/`));
    return {
      type: TrafficCondition,
      status: "False",
      reason: TrafficReason.unroutable,
      message: `${t.unroutable} connections have no live spine path ${on} (${first?.id}: ${first?.reason})`,
    };
  }
  if (t.connections === 0)
    return {
      type: TrafficCondition,
      status: "True",
      reason: TrafficReason.noInterLeafTraffic,
      message: `all ${t.intraLeafConnections} network connections stay under one leaf ${on}: nothing to pin`,
    };
  const summary = `${t.connections} inter-leaf connections (${t.qpsPlanned} QPs, ${t.qpsPerConnection} per connection) ${on}; ${loads}`;
  if (t.nodesApplied < t.nodes) {
    const pending = [...input.requests.values()]
      .filter((r) => r.flows.some((f) => f.job === input.job) && input.reports.get(r.node)?.planId !== r.planId)
      .map((r) => r.node);
    const why = pending
      .slice(0, 3)
      .map((n) => `${n}${input.nodeErrors.has(n) ? ` (${input.nodeErrors.get(n)})` : ""}`)
      .join(", ");
    return {
      type: TrafficCondition,
      status: "False",
      reason: TrafficReason.applying,
      message: `${summary}; applied on ${t.nodesApplied} of ${t.nodes} nodes, waiting for ${why}${pending.length > 3 ? ", …" : ""}`,
    };
  }
  if (t.qpsOnPlannedPath < t.qpsPlanned)
    return {
      type: TrafficCondition,
      status: "False",
      reason: TrafficReason.pathMismatch,
      message: `${summary}; agents report ${t.qpsOnPlannedPath} of ${t.qpsPlanned} QPs on their planned path`,
    };
  return {
    type: TrafficCondition,
    status: "True",
    reason: TrafficReason.applied,
    message: `${summary}; applied by all ${t.nodes} sending nodes, all ${t.qpsOnPlannedPath} QPs on their planned path as the agents report`,
  };
}
