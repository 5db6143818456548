/**
 * The fault monitor (thin executor, leader only): every `periodMs` it looks at each running TrainingJob, feeds the
 * C4D detector (../c4d/, pure) with the job's collective records from the telemetry read model and the gang's
 * rank → node map, lets plan.ts decide, and carries the plan out in this order:
 *
 *   1. taint / mark the guilty node or NIC (idempotent: an isolated node is not tainted again);
 *   2. record the faults and conditions in the job's status (the durable memory: a new leader reads it and never
 *      acts on the same fault again; the gang step reads it and restarts the gang for faults that tainted nothing);
 *   3. only then Events on the job and on the node, carrying the evidence.
 *
 * A crash between 1 and 2 leaves a taint without its record: the taint alone still restarts the gang off the node
 * (the gang step's isolated-node path), and the new leader does not taint it twice. The restart itself is the gang
 * step's (existing restart path: status.avoidNodes, maxRestarts, restartBackoffSeconds, resume from
 * status.lastCheckpointStep); the monitor only enqueues the job so it happens without waiting for a resync.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { OwnedLabel, TrainingCondition } from "../../../../crds/src/reasons.js";
import { IsolatedTaintKey, parseNodeTopology, type NodeTopology } from "../../../../crds/src/topology.js";
import { TrainingPhase, type FaultRecord, type TrainingJob } from "../../../../crds/src/training-job.js";
import type { OperatorMetrics } from "../../metrics.js";
import type { Clock } from "../../runtime/clock.js";
import type { EventSink } from "../../runtime/events.js";
import type { Logger } from "../../runtime/logger.js";
import type { TelemetryViews } from "../../telemetry/read-model.js";
import { C4dMemo, c4dConfigFor, detectFaults } from "../c4d/index.js";
import { GangAnnotation } from "../gang-state.js";
import { DEFAULT_NCCL_OPTIONS } from "../nccl.js";
import type { FaultWriter } from "./apply.js";
import { currentAttemptCommunicators, rankLatencies, rankNicsOf, rankNodesOf } from "./input.js";
import { isActed, planFaultActions, settledConditions, type FaultPlan } from "./plan.js";

export interface FaultMonitorDeps {
  trainingJobs: { list(): readonly TrainingJob[] };
  nodes: { list(): readonly V1Node[] };
  pods: { list(namespace?: string): readonly V1Pod[] };
  telemetry: TelemetryViews;
  writer: FaultWriter;
  events: EventSink;
  clock: Clock;
  metrics: Pick<
    OperatorMetrics,
    | "trainingFaultsTotal"
    | "trainingIsolationsTotal"
    | "trainingFaultDetectionSeconds"
    | "trainingFaultChecksTotal"
    | "trainingRankCollectiveSeconds"
    | "trainingRankSendSeconds"
  >;
  logger: Pick<Logger, "info" | "warn" | "debug">;
  /** Called after a fault was recorded, so the job is reconciled (and restarted) at once. */
  enqueue: (key: string) => void;
  /** Check period; default 1,000 ms. */
  periodMs?: number;
  /** Jobs with more ranks export no per-rank latency series; default 64. */
  maxRanksForRankMetrics?: number;
  /** Cap on per-rank series over all jobs; default 2,048. */
  maxRankSeries?: number;
  /** HCA name prefix the pods' NCCL_IB_HCA uses (nccl.ts), for naming the NIC C4D blames; default "mlx5_". */
  hcaPrefix?: string;
}

export const DEFAULT_FAULT_PERIOD_MS = 1000;

export class FaultMonitor {
  private timer: unknown;
  private running = false;
  private checking: Promise<void> | undefined;
  /** Records written by this process, per job uid, until the cached status shows them. */
  private readonly written = new Map<string, FaultRecord[]>();
  /** The detector's per-job memo (CPU only: the same report with or without it), per job uid. */
  private readonly memos = new Map<string, C4dMemo>();

  constructor(private readonly deps: FaultMonitorDeps) {}

  get periodMs(): number {
    return this.deps.periodMs ?? DEFAULT_FAULT_PERIOD_MS;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.deps.clock.clearTimeout(this.timer);
    await this.checking;
    this.deps.metrics.trainingRankCollectiveSeconds.reset();
    this.deps.metrics.trainingRankSendSeconds.reset();
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.checking = this.checkAll().finally(() => {
        this.checking = undefined;
        this.schedule();
      });
    }, this.periodMs);
  }

  /** One pass over every running job (exported for tests that drive the monitor step by step). */
  async checkAll(): Promise<void> {
    const jobs = this.deps.trainingJobs.list();
    const live = new Set(jobs.map((j) => j.metadata.uid ?? ""));
    for (const uid of this.written.keys()) if (!live.has(uid)) this.written.delete(uid);
    for (const uid of this.memos.keys()) if (!live.has(uid)) this.memos.delete(uid);
    const isolated = new Set(
      this.deps.nodes
        .list()
        .filter((n) => (n.spec?.taints ?? []).some((t) => t.key === IsolatedTaintKey))
        .map((n) => n.metadata?.name ?? ""),
    );
    this.deps.metrics.trainingRankCollectiveSeconds.reset();
    this.deps.metrics.trainingRankSendSeconds.reset();
    let rankSeries = 0;
    for (const job of jobs) {
      if (job.status?.phase !== TrainingPhase.Running || !job.status.placement || job.metadata.deletionTimestamp)
        continue;
      try {
        rankSeries += await this.checkJob(job, isolated, rankSeries);
        this.deps.metrics.trainingFaultChecksTotal.inc({ result: "ok" });
      } catch (err) {
        this.deps.metrics.trainingFaultChecksTotal.inc({ result: "error" });
        this.deps.logger.warn(
          { err, job: `${job.metadata.namespace}/${job.metadata.name}` },
          "fault check failed; retrying next period",
        );
      }
    }
  }

  /** Returns how many per-rank series it exported. */
  private async checkJob(
    job: TrainingJob,
    isolatedNodes: ReadonlySet<string>,
    rankSeriesSoFar: number,
  ): Promise<number> {
    const namespace = job.metadata.namespace!;
    const name = job.metadata.name!;
    const uid = job.metadata.uid!;
    const key = `${namespace}/${name}`;
    const gang = this.currentGang(job);
    if (!gang) return 0;
    const nowMs = this.deps.clock.now();
    const recorded = job.status?.faults ?? [];
    const remembered = (this.written.get(uid) ?? []).filter((r) => !recorded.some((s) => s.id === r.id));
    if (remembered.length > 0) this.written.set(uid, remembered);
    else this.written.delete(uid);

    const rankNodes = rankNodesOf(job.status!.placement!.nodes, job.spec.gpusPerNode);
    const rankNics = rankNicsOf(
      job.status!.placement!.nodes,
      job.spec.gpusPerNode,
      (n) => this.topologyOf(n),
      this.deps.hcaPrefix ?? DEFAULT_NCCL_OPTIONS.hcaPrefix,
    );
    const communicators = currentAttemptCommunicators(this.deps.telemetry.communicatorsOf(key), gang.startedUnixMs);
    const exported = this.exportRankLatencies(namespace, name, rankNodes.length, communicators, rankSeriesSoFar);

    const settled = settledConditions(gang.attempt, recorded, job.status?.conditions);
    // Nothing to judge before the attempt reported a collective; a job that has never reported one is not hung by
    // C4D's definition (no collective opened) and its pods are watched by the gang step.
    let plan: FaultPlan | undefined;
    if (communicators.length > 0) {
      let memo = this.memos.get(uid);
      if (!memo) this.memos.set(uid, (memo = new C4dMemo()));
      memo.retain(new Set(communicators.map((c) => c.communicator)));
      const report = detectFaults(
        { job: key, communicators, rankNodes, ...(rankNics ? { rankNics } : {}) },
        c4dConfigFor(job.spec.faultPolicy),
        nowMs,
        memo,
      );
      plan = planFaultActions({
        job: key,
        attempt: gang.attempt,
        report,
        recorded,
        remembered,
        gangNodes: new Set(rankNodes),
        isolatedNodes,
        nowMs,
      });
    }
    if (!plan || plan.records.length === 0) {
      if (settled.length > 0) await this.deps.writer.writeJobFaults(namespace, name, [], settled, nowMs);
      return exported;
    }
    await this.execute(job, plan, nowMs);
    return exported;
  }

  /** A node's topology labels; undefined when the node is gone or its labels are not gpufleet's. */
  private topologyOf(nodeName: string): NodeTopology | undefined {
    const node = this.deps.nodes.list().find((n) => n.metadata?.name === nodeName);
    if (!node) return undefined;
    try {
      return parseNodeTopology(nodeName, node.metadata?.labels ?? {});
    } catch {
      return undefined;
    }
  }

  private async execute(job: TrainingJob, plan: FaultPlan, nowMs: number): Promise<void> {
    const namespace = job.metadata.namespace!;
    const name = job.metadata.name!;
    const key = `${namespace}/${name}`;
    const { writer, metrics, logger } = this.deps;
    for (const t of plan.taints) {
      const result = await writer.taintNode(t.node, t.value, t.reason, nowMs);
      if (result === "tainted") metrics.trainingIsolationsTotal.inc({ target: "node" });
      logger.info(
        { job: key, node: t.node, taint: `${IsolatedTaintKey}=${t.value}`, result },
        "fault isolation: node taint",
      );
    }
    for (const m of plan.nicMarks) {
      if (await writer.markNic(m.node, m.nic, m.message, nowMs)) metrics.trainingIsolationsTotal.inc({ target: "nic" });
      logger.info({ job: key, node: m.node, nic: m.nic }, "fault isolation: NIC marked degraded");
    }
    const written = await writer.writeJobFaults(namespace, name, plan.records, plan.conditions, nowMs);
    if (!written) return; // the job is gone: nothing to restart or tell
    this.written.set(job.metadata.uid!, [...(this.written.get(job.metadata.uid!) ?? []), ...plan.records]);
    for (const r of plan.records) {
      metrics.trainingFaultsTotal.inc({ class: r.faultClass });
      if (isActed(r))
        metrics.trainingFaultDetectionSeconds.observe(
          { class: r.faultClass },
          Math.max(0, (Date.parse(r.actedTime) - Date.parse(r.firstAffectedTime)) / 1000),
        );
      logger.info(
        { job: key, fault: r },
        isActed(r) ? "fault detected and acted on" : "ambiguous fault evidence: nothing tainted",
      );
    }
    const jobObject = { ...written, apiVersion: "gpufleet.io/v1alpha1", kind: "TrainingJob" };
    for (const e of plan.jobEvents) await this.deps.events.record(jobObject, e.type, e.reason, e.message);
    const nodes = new Map(this.deps.nodes.list().map((n) => [n.metadata?.name ?? "", n]));
    for (const { node, event } of plan.nodeEvents) {
      const n = nodes.get(node);
      // Node Events live in "default" (nodes have no namespace), as the kubelet's do.
      await this.deps.events.record(
        {
          apiVersion: "v1",
          kind: "Node",
          metadata: { name: node, uid: n?.metadata?.uid ?? node, namespace: "default" },
        },
        event.type,
        event.reason,
        event.message,
      );
    }
    if (plan.restart) this.deps.enqueue(key);
  }

  /** The current attempt of the job's gang: its attempt number and when its first pod was created. */
  private currentGang(job: TrainingJob): { attempt: number; startedUnixMs: number } | undefined {
    const attempt = job.status?.restarts ?? 0;
    let startedUnixMs = Number.POSITIVE_INFINITY;
    let pods = 0;
    for (const pod of this.deps.pods.list(job.metadata.namespace)) {
      const m = pod.metadata;
      if (
        m?.labels?.[OwnedLabel.trainingJob] !== job.metadata.name ||
        !(m?.ownerReferences ?? []).some((r) => r.uid === job.metadata.uid)
      )
        continue;
      if (m?.annotations?.[GangAnnotation.attempt] !== String(attempt) || m.deletionTimestamp) continue;
      pods++;
      // creationTimestamp has whole seconds: the attempt started within the second it names.
      const created = m.creationTimestamp ? new Date(m.creationTimestamp).getTime() : Number.NaN;
      if (Number.isFinite(created)) startedUnixMs = Math.min(startedUnixMs, created);
    }
    return pods === job.spec.nodes && Number.isFinite(startedUnixMs) ? { attempt, startedUnixMs } : undefined;
  }

  private exportRankLatencies(
    namespace: string,
    name: string,
    worldSize: number,
    communicators: Parameters<typeof rankLatencies>[0],
    soFar: number,
  ): number {
    const maxRanks = this.deps.maxRanksForRankMetrics ?? 64;
    const maxSeries = this.deps.maxRankSeries ?? 2048;
    if (worldSize > maxRanks || soFar + worldSize > maxSeries || communicators.length === 0) return 0;
    const latencies = rankLatencies(communicators);
    for (const l of latencies) {
      const labels = { namespace, name, rank: String(l.rank) };
      this.deps.metrics.trainingRankCollectiveSeconds.set(labels, l.collectiveMs / 1000);
      if (l.sendMs !== undefined) this.deps.metrics.trainingRankSendSeconds.set(labels, l.sendMs / 1000);
    }
    return latencies.length;
  }
}

/** Condition types the monitor owns (for readers of status). */
export const FAULT_CONDITIONS = [TrainingCondition.FaultDetected, TrainingCondition.FaultSuspected] as const;
