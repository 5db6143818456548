/**
 * C4P traffic plan controller (leader only; the thin executor beside the pure planner): every period, for each
 * FabricTopology, plan the inter-leaf connections of every running TrainingJob on it together (planTraffic),
 * turn the plan into per-node requests (per-QP UDP source ports, execution.ts), compare with what each node's
 * agent reports applied (GetNodeInfo.traffic_plan), send ApplyTrafficPlan where it differs, and write each job's
 * status.traffic and TrafficPlanned condition (job-status.ts) and the metrics.
 *
 * Re-planning: the plan is recomputed when its inputs change (the fabric's cables, e.g. a port added to
 * failedPorts; the nodes' leaves; the jobs and their placements), starting from the previous plan so QPs on live
 * paths keep them. Unchanged inputs reuse the plan, unchanged node plans are not re-sent (their id is a digest),
 * a refused plan is not re-sent until it changes, and status is written only when it changes: idempotent.
 */
import type { V1Node } from "@kubernetes/client-node";
import * as grpc from "@grpc/grpc-js";
import { createHash } from "node:crypto";
import type { ApplyTrafficPlanRequest } from "../../../agent/src/grpc/generated/gpufleet/agent/v1/ApplyTrafficPlanRequest.js";
import type { ApplyTrafficPlanResponse__Output } from "../../../agent/src/grpc/generated/gpufleet/agent/v1/ApplyTrafficPlanResponse.js";
import type { AppliedTrafficPlan__Output } from "../../../agent/src/grpc/generated/gpufleet/agent/v1/AppliedTrafficPlan.js";
import type { NodeInfo__Output } from "../../../agent/src/grpc/generated/gpufleet/agent/v1/NodeInfo.js";
import { findCondition, type ConditionUpdate } from "../../../crds/src/conditions.js";
import type { FabricTopology } from "../../../crds/src/fabric-topology.js";
import { parseNodeTopology, TopologyLabel, type NodeTopology } from "../../../crds/src/topology.js";
import { TrainingPhase, type TrafficStatus, type TrainingJob } from "../../../crds/src/training-job.js";
import type { OperatorMetrics } from "../metrics.js";
import type { Clock } from "../runtime/clock.js";
import type { EventSink } from "../runtime/events.js";
import type { Logger } from "../runtime/logger.js";
import { MAX_QPS_PER_CONNECTION } from "../../../agent/src/simulation/fabric.js";
import { DEFAULT_NCCL_OPTIONS, nicDeviceName } from "../training/nccl.js";
import { ecmpLoads } from "./ecmp.js";
import { nodeRequests, trafficJobOf, type AppliedReport, type NodePlanRequest } from "./execution.js";
import { buildFabric, fabricSpecProblems } from "./fabric.js";
import { jobConnections, type Connection, type FabricNode } from "./flows.js";
import { jobTrafficStatus, TrafficCondition, TrafficReason } from "./job-status.js";
import { planTraffic, type TrafficPlan } from "./plan.js";
import type { TrafficStatusWriter } from "./status-writer.js";
import { AgentMethod, type AgentClientPool } from "../agents/index.js";

/** What the controller asks of node agents (the operator's mTLS client pool in production). */
export interface TrafficAgents {
  nodeInfo(node: string): Promise<NodeInfo__Output>;
  apply(node: string, request: ApplyTrafficPlanRequest): Promise<ApplyTrafficPlanResponse__Output>;
}

/** The agents as the operator reaches them: its mTLS client pool (GetNodeInfo retried; ApplyTrafficPlan never). */
export function poolTrafficAgents(pool: AgentClientPool): TrafficAgents {
  return {
    nodeInfo: (node) => pool.getNodeInfo(node),
    apply: (node, request) =>
      pool.call(node, AgentMethod.applyTrafficPlan, (client, ms) => client.applyTrafficPlan(request, ms)),
  };
}

export interface TrafficPlanControllerDeps {
  trainingJobs: { list(): readonly TrainingJob[] };
  nodes: { list(): readonly V1Node[] };
  fabricTopologies: { list(): readonly FabricTopology[] };
  agents: TrafficAgents;
  writer: TrafficStatusWriter;
  events: EventSink;
  clock: Clock;
  metrics: Pick<
    OperatorMetrics,
    "trafficPlansAppliedTotal" | "trafficFlowsPinned" | "trafficPredictedMaxLinkUtilization"
  >;
  logger: Pick<Logger, "info" | "warn" | "debug">;
  /** Period; default 2,000 ms. */
  periodMs?: number;
  /** ECMP seeds averaged for the baseline; default 16. */
  ecmpSeeds?: number;
  hcaPrefix?: string;
}

export const DEFAULT_TRAFFIC_PERIOD_MS = 2000;

/** The plan id a node is sent to clear its plan (no flows). */
export const EMPTY_PLAN_ID = "c4p-none";

interface FabricMemo {
  inputKey: string;
  plan: TrafficPlan;
  connections: Connection[];
  ecmpMaxLinkLoad: number;
  plannedUnixMs: number;
  requests: Map<string, NodePlanRequest>;
}

export class TrafficPlanController {
  private running = false;
  private timer: unknown;
  private checking: Promise<void> | undefined;
  private readonly memos = new Map<string, FabricMemo>();
  /** Nodes sent a non-empty plan by this process, per fabric: cleared when they no longer carry planned flows. */
  private readonly sent = new Map<string, Set<string>>();
  /** A plan an agent refused (INVALID_ARGUMENT, UNIMPLEMENTED, FAILED_PRECONDITION): not re-sent until it changes. */
  private readonly refused = new Map<string, { planId: string; why: string }>();
  private firstPass = true;

  constructor(private readonly deps: TrafficPlanControllerDeps) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.firstPass = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.deps.clock.clearTimeout(this.timer);
    await this.checking;
    this.deps.metrics.trafficFlowsPinned.reset();
    this.deps.metrics.trafficPredictedMaxLinkUtilization.reset();
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.checking = this.checkAll()
        .catch((err: unknown) => this.deps.logger.warn({ err }, "traffic planning pass failed; retrying next period"))
        .finally(() => {
          this.checking = undefined;
          this.schedule(this.deps.periodMs ?? DEFAULT_TRAFFIC_PERIOD_MS);
        });
    }, delayMs);
  }

  /** One pass over every fabric (exported for tests that drive the controller step by step). */
  async checkAll(): Promise<void> {
    const nodes = this.deps.nodes.list();
    const running = this.deps.trainingJobs
      .list()
      .filter(
        (j) =>
          j.status?.phase === TrainingPhase.Running &&
          (j.status.placement?.nodes.length ?? 0) > 0 &&
          !j.metadata.deletionTimestamp,
      );
    const covered = new Set<string>();
    const live = new Set<string>();
    // By name: when two fabrics describe the same nodes, a job is planned on the first (one plan per job).
    const fabrics = [...this.deps.fabricTopologies.list()].sort((a, b) =>
      (a.metadata.name ?? "") < (b.metadata.name ?? "") ? -1 : 1,
    );
    for (const fabric of fabrics) {
      const name = fabric.metadata.name ?? "";
      live.add(name);
      const jobs = await this.checkFabric(
        name,
        fabric,
        nodes,
        running.filter((j) => !covered.has(keyOf(j))),
      );
      for (const key of jobs) covered.add(key);
    }
    for (const name of [...this.memos.keys()]) if (!live.has(name)) this.memos.delete(name);
    for (const job of running) {
      const key = keyOf(job);
      if (covered.has(key)) continue;
      await this.writeIfChanged(job, null, {
        type: TrafficCondition,
        status: "False",
        reason: TrafficReason.noFabric,
        message: `no FabricTopology covers all of the job's nodes (${job.status!.placement!.nodes.slice(0, 4).join(", ")}${job.status!.placement!.nodes.length > 4 ? ", …" : ""}): its traffic is not planned`,
      });
    }
    this.firstPass = false;
  }

  /** Plans one fabric, brings its nodes' agents to the plan, writes its jobs' status; returns the jobs it covered. */
  private async checkFabric(
    name: string,
    fabric: FabricTopology,
    nodes: readonly V1Node[],
    running: readonly TrainingJob[],
  ): Promise<string[]> {
    const nowMs = this.deps.clock.now();
    const { nodeLeaf, fabricNodes, topologies } = fabricNodesOf(fabric, nodes);
    const jobs = running.filter((j) => j.status!.placement!.nodes.every((n) => fabricNodes.has(n)));
    const problems = fabricSpecProblems(fabric.spec);
    if (problems.length > 0) {
      for (const job of jobs)
        await this.writeIfChanged(job, null, {
          type: TrafficCondition,
          status: "False",
          reason: TrafficReason.invalidFabric,
          message: `FabricTopology ${name} is inconsistent: ${problems.slice(0, 3).join("; ")}`,
        });
      return jobs.map(keyOf);
    }
    const memo = this.replanIfChanged(name, fabric, nodeLeaf, fabricNodes, jobs, topologies, nowMs);
    const { reports, errors } = await this.bringNodesToPlan(name, memo.requests, [...fabricNodes.keys()]);
    this.exportMetrics(name, memo, reports);
    for (const job of jobs) {
      const { traffic, condition } = jobTrafficStatus({
        job: keyOf(job),
        fabric: name,
        plan: memo.plan,
        connections: memo.connections,
        requests: memo.requests,
        reports,
        nodeErrors: errors,
        ecmpMaxLinkLoad: memo.ecmpMaxLinkLoad,
        plannedUnixMs: memo.plannedUnixMs,
      });
      await this.writeIfChanged(job, traffic, condition);
    }
    return jobs.map(keyOf);
  }

  private replanIfChanged(
    name: string,
    fabric: FabricTopology,
    nodeLeaf: Map<string, string>,
    fabricNodes: Map<string, FabricNode>,
    jobs: readonly TrainingJob[],
    topologies: Map<string, NodeTopology>,
    nowMs: number,
  ): FabricMemo {
    const connections: Connection[] = [];
    for (const job of jobs) {
      try {
        connections.push(...jobConnections(trafficJobOf(job), fabricNodes));
      } catch (err) {
        this.deps.logger.warn(
          { job: keyOf(job), err: (err as Error).message },
          "job's connections cannot be modelled; its traffic is not planned",
        );
      }
    }
    const usedNodes = [...new Set(connections.flatMap((c) => [c.srcNode, c.dstNode]))].sort();
    const inputKey = digest([
      fabric.spec,
      usedNodes.map((n) => [n, nodeLeaf.get(n)]),
      connections.map((c) => [c.id, c.srcNode, c.dstNode, c.nic, c.demandGbps]),
    ]);
    const previous = this.memos.get(name);
    if (previous?.inputKey === inputKey) return previous;
    const started = performance.now();
    const built = buildFabric(fabric.spec);
    const plan = planTraffic({
      fabric: built,
      nodeLeaf,
      connections,
      ...(previous ? { previous: previous.plan } : {}),
      // The agents take at most MAX_QPS_PER_CONNECTION QPs per connection (and status lists that many paths).
      config: { maxQpsPerConnection: MAX_QPS_PER_CONNECTION },
    });
    const planMs = performance.now() - started;
    const seeds = this.deps.ecmpSeeds ?? 16;
    let ecmp = 0;
    for (let seed = 1; seed <= seeds; seed++) ecmp += ecmpLoads(built, nodeLeaf, connections, 1, seed).maxLinkLoad;
    const hca = this.deps.hcaPrefix ?? DEFAULT_NCCL_OPTIONS.hcaPrefix;
    const { byNode, unmapped } = nodeRequests(name, fabric.spec, plan, connections, nodeLeaf, (node, index) =>
      nicDeviceName(topologies.get(node)?.nicType ?? "infiniband", index, hca),
    );
    if (unmapped.length > 0)
      this.deps.logger.warn(
        { fabric: name, unmapped: unmapped.slice(0, 8) },
        "no source port hashes onto some planned paths; those QPs are not sent",
      );
    const memo: FabricMemo = {
      inputKey,
      plan,
      connections,
      ecmpMaxLinkLoad: seeds > 0 ? ecmp / seeds : 0,
      plannedUnixMs: nowMs,
      requests: byNode,
    };
    this.memos.set(name, memo);
    this.deps.logger.info(
      {
        fabric: name,
        jobs: jobs.length,
        connections: connections.length,
        pinned: plan.connections.length,
        maxLinkLoad: plan.maxLinkLoad,
        ecmpMaxLinkLoad: memo.ecmpMaxLinkLoad,
        planMs: Math.round(planMs),
        replan: previous !== undefined,
      },
      "traffic planned",
    );
    return memo;
  }

  /** Reads every relevant node's applied plan and sends the desired one where it differs. */
  private async bringNodesToPlan(
    fabric: string,
    requests: ReadonlyMap<string, NodePlanRequest>,
    fabricNodes: readonly string[],
  ): Promise<{ reports: Map<string, AppliedReport | undefined>; errors: Map<string, string> }> {
    const sent = this.sent.get(fabric) ?? new Set<string>();
    this.sent.set(fabric, sent);
    // After a (re)start nothing is remembered: look at every node of the fabric once for plans to clear.
    const targets = new Set([...requests.keys(), ...sent, ...(this.firstPass ? fabricNodes : [])]);
    const reports = new Map<string, AppliedReport | undefined>();
    const errors = new Map<string, string>();
    await Promise.all(
      [...targets].map(async (node) => {
        const desired = requests.get(node);
        let applying = false;
        try {
          const info = await this.deps.agents.nodeInfo(node);
          let report = reportOf(info.trafficPlan);
          const wanted = desired ?? { node, planId: EMPTY_PLAN_ID, fabric, flows: [] };
          const current =
            (report?.planId ?? EMPTY_PLAN_ID) === wanted.planId ||
            (!desired && (report === undefined || report.flows.length === 0));
          const refusal = this.refused.get(node);
          if (!current && refusal?.planId === wanted.planId) {
            errors.set(node, refusal.why);
          } else if (!current) {
            applying = true;
            const response = await this.deps.agents.apply(node, {
              nodeName: node,
              planId: wanted.planId,
              fabric: wanted.fabric,
              flows: wanted.flows,
            });
            report = reportOf(response.applied);
            this.refused.delete(node);
            this.deps.metrics.trafficPlansAppliedTotal.inc({ result: "applied" });
            this.deps.logger.info(
              {
                node,
                fabric,
                planId: wanted.planId,
                flows: wanted.flows.length,
                qpsOnPlannedPath: response.applied?.qpsOnPlannedPath,
              },
              "traffic plan applied",
            );
          }
          if (desired) sent.add(node);
          else sent.delete(node);
          reports.set(node, report);
        } catch (err) {
          const code = (err as grpc.ServiceError).code;
          const why = `${typeof code === "number" ? grpc.status[code] : (err as Error).name}: ${(err as Error).message}`;
          if (desired) errors.set(node, why);
          const final =
            code === grpc.status.INVALID_ARGUMENT ||
            code === grpc.status.UNIMPLEMENTED ||
            code === grpc.status.FAILED_PRECONDITION;
          if (final && code !== grpc.status.FAILED_PRECONDITION)
            this.refused.set(node, { planId: desired?.planId ?? EMPTY_PLAN_ID, why });
          if (!applying) {
            // The node's applied plan could not be read: nothing was sent.
            if (desired)
              this.deps.logger.warn({ node, fabric, err: why }, "reading the node's applied traffic plan failed");
            return;
          }
          this.deps.metrics.trafficPlansAppliedTotal.inc({
            result:
              code === grpc.status.INVALID_ARGUMENT
                ? "invalid"
                : code === grpc.status.UNIMPLEMENTED
                  ? "unimplemented"
                  : "error",
          });
          this.deps.logger.warn({ node, fabric, err: why }, "traffic plan not applied");
        }
      }),
    );
    return { reports, errors };
  }

  private exportMetrics(
    fabric: string,
    memo: FabricMemo,
    reports: ReadonlyMap<string, AppliedReport | undefined>,
  ): void {
    const { metrics } = this.deps;
    let qps = 0;
    let onPath = 0;
    for (const [node, r] of memo.requests) {
      const report = reports.get(node);
      const got = new Map((report?.planId === r.planId ? report.flows : []).map((f) => [f.connectionId, f]));
      for (const f of r.flows) {
        qps += f.qps.length;
        for (const q of f.qps) {
          const a = got.get(f.connectionId)?.qps.find((x) => x.udpSourcePort === q.udpSourcePort);
          if (a && a.spine === q.spine && a.uplinkPort === q.uplinkPort && a.downlinkPort === q.downlinkPort) onPath++;
        }
      }
    }
    metrics.trafficFlowsPinned.set({ fabric, kind: "connections" }, memo.plan.connections.length);
    metrics.trafficFlowsPinned.set({ fabric, kind: "qps_planned" }, qps);
    metrics.trafficFlowsPinned.set({ fabric, kind: "qps_on_path" }, onPath);
    metrics.trafficPredictedMaxLinkUtilization.set({ fabric, plan: "c4p" }, memo.plan.maxLinkLoad);
    metrics.trafficPredictedMaxLinkUtilization.set({ fabric, plan: "ecmp" }, memo.ecmpMaxLinkLoad);
  }

  /**
   * Writes status.traffic and the condition when either differs from the cached job; an Event when the reason flips.
   */
  private async writeIfChanged(
    job: TrainingJob,
    traffic: TrafficStatus | null,
    condition: ConditionUpdate,
  ): Promise<void> {
    const current = findCondition(job.status?.conditions, TrafficCondition);
    const sameCondition =
      current?.status === condition.status &&
      current.reason === condition.reason &&
      current.message === condition.message;
    if (sameCondition && stableJson(job.status?.traffic ?? null) === stableJson(traffic)) return;
    const written = await this.deps.writer.write(
      job.metadata.namespace!,
      job.metadata.name!,
      traffic,
      condition,
      this.deps.clock.now(),
    );
    if (!written || (current?.status === condition.status && current.reason === condition.reason)) return;
    const type = condition.status === "True" ? "Normal" : "Warning";
    await this.deps.events.record(
      { ...written, apiVersion: "gpufleet.io/v1alpha1", kind: "TrainingJob" },
      type,
      `Traffic${condition.reason}`,
      condition.message,
    );
  }
}

function keyOf(job: TrainingJob): string {
  return `${job.metadata.namespace}/${job.metadata.name}`;
}

/** JSON with object keys sorted: what the API server returns need not keep the order the operator wrote. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function digest(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex");
}

/** The nodes on a fabric (its island, a leaf of its spec) with what the flow model needs of them. */
function fabricNodesOf(
  fabric: FabricTopology,
  nodes: readonly V1Node[],
): { nodeLeaf: Map<string, string>; fabricNodes: Map<string, FabricNode>; topologies: Map<string, NodeTopology> } {
  const leaves = new Set(fabric.spec.leaves.map((l) => l.name));
  const nodeLeaf = new Map<string, string>();
  const fabricNodes = new Map<string, FabricNode>();
  const topologies = new Map<string, NodeTopology>();
  for (const node of nodes) {
    const labels = node.metadata?.labels ?? {};
    const name = node.metadata?.name ?? "";
    if (labels[TopologyLabel.island] !== fabric.spec.island || !leaves.has(labels[TopologyLabel.leaf] ?? "")) continue;
    let t: NodeTopology;
    try {
      t = parseNodeTopology(name, labels);
    } catch {
      continue;
    }
    nodeLeaf.set(name, t.leaf);
    topologies.set(name, t);
    fabricNodes.set(name, { leaf: t.leaf, nicCount: t.nicCount, nicBandwidthGbps: t.nicBandwidthGbps });
  }
  return { nodeLeaf, fabricNodes, topologies };
}

function reportOf(a: AppliedTrafficPlan__Output | null | undefined): AppliedReport | undefined {
  if (!a) return undefined;
  return {
    planId: a.planId,
    flows: a.flows.map((f) => ({
      connectionId: f.connectionId,
      job: f.job,
      qps: f.qps.map((q) => ({
        udpSourcePort: q.udpSourcePort,
        spine: q.spine,
        uplinkPort: q.uplinkPort,
        downlinkPort: q.downlinkPort,
      })),
    })),
  };
}
