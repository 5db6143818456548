/** NodeAgent service: what the operator calls. Every call must carry a deadline. */
import type * as grpc from "@grpc/grpc-js";
import type { NodeAgentHandlers } from "./generated/gpufleet/agent/v1/NodeAgent.js";
import type { NodeInfo } from "./generated/gpufleet/agent/v1/NodeInfo.js";
import type { WorkerCommand__Output } from "./generated/gpufleet/worker/v1/WorkerCommand.js";
import type { AppliedTrafficPlan } from "./generated/gpufleet/agent/v1/AppliedTrafficPlan.js";
import type { TrafficFlow__Output } from "./generated/gpufleet/agent/v1/TrafficFlow.js";
import type { AppliedPlan, FlowRequest } from "../simulation/fabric.js";
import type { NodeFacts } from "../discovery/facts.js";
import type { AgentMetrics } from "../metrics.js";
import type { WorkerRegistry } from "../workers/registry.js";
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  statusName,
  unary,
  UnimplementedError,
} from "./status.js";

/** The nodes this agent serves (one on a real node, many in simulation). */
export interface NodeDirectory {
  nodeNames(): string[];
  facts(nodeName: string): NodeFacts | undefined;
  labels(nodeName: string): Record<string, string> | undefined;
}

export const Diagnostic = {
  gpuInventory: "gpu-inventory",
  nicLinks: "nic-links",
  rdmaCounters: "rdma-counters",
  // Measured on the GPUs by the Python worker's CLI (agent/src/gpu-diagnostics.ts).
  gpuGemm: "gpu-gemm",
  hbmCopy: "hbm-copy",
  allReduce: "all-reduce",
} as const;
export type Diagnostic = (typeof Diagnostic)[keyof typeof Diagnostic];
const DIAGNOSTICS: ReadonlySet<string> = new Set(Object.values(Diagnostic));

export interface DiagnosticResult {
  passed: boolean;
  summary: string;
  details: Record<string, string>;
}

export interface Diagnostics {
  run(nodeName: string, diagnostic: Diagnostic, timeoutMs: number): Promise<DiagnosticResult>;
}

/**
 * Programs C4P traffic plans into the fabric a node's traffic runs over. Only the simulated fabric
 * (agent/src/simulation/fabric.ts) implements it; a real node has none (setting QP source ports needs the
 * NCCL/verbs stack of the workers to take them), so there ApplyTrafficPlan answers UNIMPLEMENTED.
 */
export interface TrafficPlanExecutor {
  /** Throws TrafficPlanError (bad plan) or UnknownFabricError (fabric not known here). */
  apply(nodeName: string, planId: string, fabric: string, flows: readonly FlowRequest[]): AppliedPlan;
  applied(nodeName: string): AppliedPlan | undefined;
}

export interface NodeAgentDeps {
  nodes: NodeDirectory;
  registry: WorkerRegistry;
  diagnostics: Diagnostics;
  metrics: AgentMetrics;
  nowMs: () => number;
  /** Absent on a real node: ApplyTrafficPlan answers UNIMPLEMENTED. */
  traffic?: TrafficPlanExecutor;
}

function flowRequestOf(f: TrafficFlow__Output): FlowRequest {
  return {
    connectionId: f.connectionId,
    job: f.job,
    communicator: f.communicator,
    srcRank: f.srcRank,
    dstRank: f.dstRank,
    dstNode: f.dstNode,
    nic: f.nic,
    demandGbps: Number(f.demandGbps),
    qps: f.qps.map((q) => ({
      udpSourcePort: q.udpSourcePort,
      ...(q.spine ? { spine: q.spine, uplinkPort: q.uplinkPort, downlinkPort: q.downlinkPort } : {}),
    })),
  };
}

/** What a node applies, for the wire: each QP with the path the fabric hashed its port onto (empty spine: none). */
export function appliedPlanMessage(a: AppliedPlan): AppliedTrafficPlan {
  return {
    planId: a.planId,
    fabric: a.fabric,
    appliedUnixMs: a.appliedUnixMs,
    qpsApplied: a.qpsApplied,
    qpsOnPlannedPath: a.qpsOnPlannedPath,
    flows: a.flows.map((f) => ({
      connectionId: f.connectionId,
      job: f.job,
      communicator: f.communicator,
      srcRank: f.srcRank,
      dstRank: f.dstRank,
      dstNode: f.dstNode,
      nic: f.nic,
      demandGbps: f.demandGbps,
      qps: f.qps.map((q) => ({
        udpSourcePort: q.udpSourcePort,
        spine: q.path?.spine ?? "",
        uplinkPort: q.path?.uplinkPort ?? 0,
        downlinkPort: q.path?.downlinkPort ?? 0,
      })),
    })),
  };
}

function remainingMs(call: grpc.ServerUnaryCall<unknown, unknown>, nowMs: number): number {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return at - nowMs;
}

const COMMANDS: ReadonlySet<string> = new Set([
  "migrateOut",
  "migrateIn",
  "drain",
  "abort",
  "injectFault",
  "applyRoutes",
]);

export function validateWorkerCommand(command: WorkerCommand__Output | null): WorkerCommand__Output {
  if (!command) throw new InvalidArgumentError("command is required");
  if (!command.commandId) throw new InvalidArgumentError("command.command_id is required");
  if (!command.command || !COMMANDS.has(command.command))
    throw new InvalidArgumentError(
      "command must set one of migrate_out, migrate_in, drain, abort, inject_fault, apply_routes",
    );
  if (command.migrateOut && !command.migrateOut.requestId)
    throw new InvalidArgumentError("migrate_out.request_id is required");
  if (command.migrateIn && !command.migrateIn.requestId)
    throw new InvalidArgumentError("migrate_in.request_id is required");
  if (command.injectFault) {
    const f = command.injectFault;
    if (!["hang-rank", "slow-rank", "slow-link", "clear"].includes(f.kind))
      throw new InvalidArgumentError(`inject_fault.kind "${f.kind}" is not hang-rank, slow-rank, slow-link or clear`);
    if ((f.kind === "slow-rank" && !(f.factor >= 1)) || (f.kind === "slow-link" && !(f.factor > 0 && f.factor <= 1))) {
      throw new InvalidArgumentError(
        `inject_fault.factor ${f.factor} is out of range for ${f.kind} (slow-rank: >= 1, slow-link: (0, 1])`,
      );
    }
  }
  return command;
}

export function nodeInfoOf(facts: NodeFacts, labels: Record<string, string>): NodeInfo {
  return {
    nodeName: facts.nodeName,
    simulated: facts.simulated,
    gpus: facts.gpus.map((g) => ({
      index: g.index,
      uuid: g.uuid,
      model: g.model ?? "",
      productName: g.productName,
      memoryMib: g.memoryMiB,
      pciBusId: g.pciBusId,
      numaNode: g.numaNode,
    })),
    nics: facts.nics.map((n) => ({
      device: n.device,
      port: n.port,
      type: n.type,
      bandwidthGbps: n.bandwidthGbps,
      state: n.state,
      nearestGpus: n.nearestGpus,
    })),
    labels,
  };
}

export function nodeAgentHandlers(deps: NodeAgentDeps): NodeAgentHandlers {
  const { nodes, registry, metrics } = deps;
  const done = (method: string) => (code: grpc.status) =>
    metrics.grpcRequests.inc({ service: "NodeAgent", method, code: statusName(code) });
  const requireDeadline = (call: grpc.ServerUnaryCall<unknown, unknown>): number => {
    const ms = remainingMs(call, deps.nowMs());
    if (!Number.isFinite(ms))
      throw new InvalidArgumentError("the call has no deadline; every NodeAgent call must set one");
    return ms;
  };
  const servedFacts = (nodeName: string): NodeFacts => {
    if (!nodeName) throw new InvalidArgumentError("node_name is required");
    const facts = nodes.facts(nodeName);
    if (!facts)
      throw new NotFoundError(
        `node "${nodeName}" is not served by this agent (serves: ${nodes.nodeNames().join(", ") || "none yet"})`,
      );
    return facts;
  };

  return {
    GetNodeInfo: unary((req, call) => {
      requireDeadline(call);
      const facts = servedFacts(req.nodeName);
      const applied = deps.traffic?.applied(req.nodeName);
      return {
        ...nodeInfoOf(facts, nodes.labels(req.nodeName) ?? {}),
        ...(applied ? { trafficPlan: appliedPlanMessage(applied) } : {}),
      };
    }, done("GetNodeInfo")),

    ListWorkers: unary((req, call) => {
      requireDeadline(call);
      if (req.nodeName) servedFacts(req.nodeName);
      return {
        workers: registry.list(req.nodeName || undefined).map((w) => ({
          workerId: w.workerId,
          podNamespace: w.podNamespace,
          podName: w.podName,
          nodeName: w.nodeName,
          kind: w.kind,
          rank: w.rank,
          simulated: w.simulated,
          state: w.state,
          lastHeartbeatUnixMs: w.lastHeartbeatUnixMs,
        })),
      };
    }, done("ListWorkers")),

    RunDiagnostic: unary(async (req, call) => {
      const budgetMs = requireDeadline(call);
      servedFacts(req.nodeName);
      if (!DIAGNOSTICS.has(req.diagnostic))
        throw new InvalidArgumentError(`diagnostic "${req.diagnostic}" is not one of ${[...DIAGNOSTICS].join(", ")}`);
      // Leave a little of the caller's budget for the answer to travel back.
      return deps.diagnostics.run(req.nodeName, req.diagnostic as Diagnostic, Math.max(1, budgetMs - 50));
    }, done("RunDiagnostic")),

    ApplyTrafficPlan: unary((req, call) => {
      requireDeadline(call);
      const facts = servedFacts(req.nodeName);
      if (!req.planId) throw new InvalidArgumentError("plan_id is required");
      const nics = new Set(facts.nics.map((n) => n.device));
      req.routes.forEach((r, i) => {
        if (!r.communicator) throw new InvalidArgumentError(`routes[${i}].communicator is required`);
        if (r.rank < 0 || r.peerRank < 0) throw new InvalidArgumentError(`routes[${i}]: ranks must be non-negative`);
        if (!nics.has(r.nic))
          throw new InvalidArgumentError(
            `routes[${i}].nic "${r.nic}" is not a NIC of node ${req.nodeName} (${[...nics].join(", ")})`,
          );
      });
      // Validated above so bad plans still get INVALID_ARGUMENT. A real node has no executor: setting QP source
      // ports needs the workers' NCCL/verbs stack to take them, which nothing drives yet; claiming otherwise would
      // report what did not happen.
      if (!deps.traffic)
        throw new UnimplementedError(
          "ApplyTrafficPlan: no traffic-plan executor runs on this node (no programmable fabric: only simulated nodes apply plans)",
        );
      if (req.routes.length > 0)
        throw new InvalidArgumentError(
          "routes (per-rank NIC routes) are not applied; a traffic plan is flows with per-QP UDP source ports",
        );
      try {
        const applied = deps.traffic.apply(req.nodeName, req.planId, req.fabric, req.flows.map(flowRequestOf));
        return { planId: applied.planId, applied: appliedPlanMessage(applied) };
      } catch (err) {
        if (err instanceof Error && err.name === "TrafficPlanError")
          throw new InvalidArgumentError(`ApplyTrafficPlan ${req.planId}: ${err.message}`);
        if (err instanceof Error && err.name === "UnknownFabricError")
          throw new FailedPreconditionError(`ApplyTrafficPlan ${req.planId}: ${err.message}`);
        throw err;
      }
    }, done("ApplyTrafficPlan")),

    SendWorkerCommand: unary(async (req, call) => {
      const budgetMs = requireDeadline(call);
      if (!req.workerId) throw new InvalidArgumentError("worker_id is required");
      const command = validateWorkerCommand(req.command);
      // Answer only from the worker's ack; leave a little of the budget for the answer to travel back.
      const ack = await registry.sendCommand(req.workerId, command, Math.max(1, budgetMs - 50), deps.nowMs());
      return {
        commandId: ack.commandId,
        outcome: ack.outcome,
        reason: ack.reason,
        acknowledgedUnixMs: ack.acknowledgedUnixMs,
      };
    }, done("SendWorkerCommand")),
  };
}
