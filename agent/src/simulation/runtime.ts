/**
 * Simulation runtime: runs the simulated workers of pods bound to simulated nodes. Every simulated worker speaks
 * the worker protocol over the agent's Unix socket (register, heartbeat, load or collective reports, command
 * stream), exactly like a real one. Training ranks of one job step together (one agent serves all kwok nodes).
 */
import type { V1Pod } from "@kubernetes/client-node";
import { gpuSpec } from "../../../common/src/hardware/catalog.js";
import type { NodeFacts } from "../discovery/facts.js";
import type { WorkerClient } from "../grpc/client.js";
import type { WorkerCommand__Output } from "../grpc/generated/gpufleet/worker/v1/WorkerCommand.js";
import { applyFaultCommand, FAULT_ANNOTATION, NO_FAULTS, parseFaultAnnotation, type Faults } from "../workers/simulated/faults.js";
import { DEFAULT_SERVED_MODEL, RooflineLatencyModel } from "../workers/simulated/latency.js";
import { DEFAULT_SERVING_SIM, ServingSim } from "../workers/simulated/serving.js";
import { simulateStep, type TrainingPlacement } from "../workers/simulated/training.js";
import { SimAnnotation, workerSpecsForPod, type SimWorkerSpec } from "./model.js";

export interface SimLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

interface Running {
  spec: SimWorkerSpec;
  stop(): void;
}

interface TrainingJob {
  key: string;
  ranks: Map<number, SimWorkerSpec>;
  worldSize: number;
  faults: Faults;
  annotationFaults: string | undefined;
  sequence: number;
  timer: NodeJS.Timeout | undefined;
  hung: boolean;
  pod: V1Pod;
}

export class SimulationRuntime {
  private readonly workers = new Map<string, Running>();
  private readonly jobs = new Map<string, TrainingJob>();
  private readonly drains = new Map<string, () => void>();

  constructor(
    private readonly client: WorkerClient,
    private readonly factsOf: (nodeName: string) => NodeFacts | undefined,
    private readonly reportIntervalMs: number,
    private readonly log: SimLog,
    private readonly nowMs: () => number = Date.now,
  ) {}

  get count(): number {
    return this.workers.size;
  }

  /** Level-based: brings the simulated workers of this pod to what the pod says (or removes them). */
  async syncPod(pod: V1Pod, deleted = false): Promise<void> {
    let specs: SimWorkerSpec[] = [];
    try {
      specs = deleted ? [] : workerSpecsForPod(pod).filter((s) => this.factsOf(s.nodeName) !== undefined);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "pod cannot run simulated workers");
    }
    const uid = pod.metadata?.uid ?? "";
    const wanted = new Set(specs.map((s) => s.workerId));
    for (const [id, w] of this.workers) {
      if (w.spec.podUid === uid && !wanted.has(id)) {
        w.stop();
        this.workers.delete(id);
      }
    }
    for (const spec of specs) {
      if (spec.jobKey) this.updateJobFaults(spec.jobKey, pod);
      if (this.workers.has(spec.workerId)) continue;
      await this.start(spec, pod);
    }
  }

  stopAll(): void {
    for (const w of this.workers.values()) w.stop();
    this.workers.clear();
    for (const j of this.jobs.values()) clearTimeout(j.timer);
    this.jobs.clear();
  }

  private async start(spec: SimWorkerSpec, pod: V1Pod): Promise<void> {
    const facts = this.factsOf(spec.nodeName)!;
    await this.client.register({ ...spec, gpuUuids: facts.gpus.slice(0, 1).map((g) => g.uuid), simulated: true });
    const heartbeat = setInterval(() => void this.client.heartbeat(spec.workerId).catch(() => {}), this.reportIntervalMs);
    let stopped = false;
    const stream = this.client.commands(spec.workerId, (c) => this.onCommand(spec, c), () => {});
    const stops: (() => void)[] = [() => clearInterval(heartbeat), () => stream.cancel(), () => { stopped = true; }];
    if (spec.kind === "training" && spec.jobKey) {
      this.joinJob(spec, pod);
      stops.push(() => this.leaveJob(spec));
    } else {
      const model = new RooflineLatencyModel(facts.gpus[0]?.model ?? "H100-80GB", DEFAULT_SERVED_MODEL);
      const rate = Number(pod.metadata?.annotations?.[SimAnnotation.requestRate] ?? DEFAULT_SERVING_SIM.requestRatePerSec);
      const sim = new ServingSim(model, { ...DEFAULT_SERVING_SIM, requestRatePerSec: Number.isFinite(rate) ? rate : DEFAULT_SERVING_SIM.requestRatePerSec, seed: hash(spec.workerId) }, this.nowMs());
      const report = setInterval(() => {
        if (stopped) return;
        const now = this.nowMs();
        sim.advance(now);
        void this.client.reportLoad({ workerId: spec.workerId, unixMs: now, ...sim.report(now) }).catch(() => {});
      }, this.reportIntervalMs);
      stops.push(() => clearInterval(report));
      this.drains.set(spec.workerId, () => sim.stopAccepting());
      stops.push(() => this.drains.delete(spec.workerId));
    }
    this.workers.set(spec.workerId, { spec, stop: () => stops.forEach((s) => s()) });
    this.log.info({ workerId: spec.workerId, pod: `${spec.podNamespace}/${spec.podName}`, node: spec.nodeName, kind: spec.kind, rank: spec.rank }, "simulated worker started");
  }

  private onCommand(spec: SimWorkerSpec, command: WorkerCommand__Output): void {
    this.log.info({ workerId: spec.workerId, command: command.command, commandId: command.commandId }, "simulated worker received command");
    if (command.injectFault && spec.jobKey) {
      const job = this.jobs.get(spec.jobKey);
      if (job) job.faults = applyFaultCommand(job.faults, command.injectFault);
    }
    if (command.drain) this.drains.get(spec.workerId)?.();
  }

  private updateJobFaults(jobKey: string, pod: V1Pod): void {
    const job = this.jobs.get(jobKey);
    const value = pod.metadata?.annotations?.[FAULT_ANNOTATION];
    if (!job || value === job.annotationFaults) return;
    try {
      job.faults = parseFaultAnnotation(value);
      job.annotationFaults = value;
      if (job.hung && job.faults.hungRanks.size === 0) this.scheduleStep(job, 0);
    } catch (err) {
      this.log.warn({ job: jobKey, err: (err as Error).message }, "ignoring invalid fault annotation");
    }
  }

  private joinJob(spec: SimWorkerSpec, pod: V1Pod): void {
    let job = this.jobs.get(spec.jobKey!);
    if (!job) {
      job = { key: spec.jobKey!, ranks: new Map(), worldSize: spec.worldSize, faults: NO_FAULTS, annotationFaults: undefined, sequence: 0, timer: undefined, hung: false, pod };
      this.jobs.set(job.key, job);
      this.updateJobFaults(job.key, pod);
    }
    job.ranks.set(spec.rank, spec);
    if (job.ranks.size === job.worldSize && !job.timer) this.scheduleStep(job, 0);
  }

  private leaveJob(spec: SimWorkerSpec): void {
    const job = this.jobs.get(spec.jobKey!);
    if (!job) return;
    job.ranks.delete(spec.rank);
    if (job.ranks.size === 0) {
      clearTimeout(job.timer);
      this.jobs.delete(job.key);
    }
  }

  private placement(job: TrainingJob): TrainingPlacement {
    const rankNodes = Array.from({ length: job.worldSize }, (_, r) => job.ranks.get(r)?.nodeName ?? "");
    const facts = this.factsOf(rankNodes[0] ?? "");
    const model = facts?.gpus[0]?.model ?? "H100-80GB";
    const nicGbps = Math.min(...rankNodes.map((n) => this.factsOf(n)?.nics[0]?.bandwidthGbps ?? 100));
    const ann = job.pod.metadata?.annotations ?? {};
    return {
      communicator: job.key.replace("/", "-"),
      rankNodes,
      intraNodeGBps: gpuSpec(model).nvlinkGBpsPerDirection,
      interNodeGBps: nicGbps / 8,
      latencyUs: 10,
      computeMs: Number(ann[SimAnnotation.computeMs] ?? 200),
      bucketBytes: Number(ann[SimAnnotation.bucketBytes] ?? 256 * 2 ** 20),
      bucketsPerStep: 4,
    };
  }

  private scheduleStep(job: TrainingJob, delayMs: number): void {
    clearTimeout(job.timer);
    job.hung = false;
    job.timer = setTimeout(() => void this.step(job), delayMs);
    job.timer.unref();
  }

  private async step(job: TrainingJob): Promise<void> {
    if (job.ranks.size < job.worldSize || !this.jobs.has(job.key)) return;
    const startUs = this.nowMs() * 1000;
    const result = simulateStep(this.placement(job), job.faults, startUs, job.sequence);
    job.sequence = result.sequenceAfter;
    const byRank = new Map<number, typeof result.records>();
    for (const r of result.records) byRank.set(r.rank, [...(byRank.get(r.rank) ?? []), r]);
    await Promise.all([...byRank].map(([rank, records]) => this.client.reportCollectives({ workerId: job.ranks.get(rank)!.workerId, records }).catch(() => {})));
    if (result.endUnixUs === undefined) {
      job.hung = true; // stalls until the hang is cleared
      this.log.warn({ job: job.key, sequence: job.sequence - 1 }, "simulated training job hung");
      return;
    }
    this.scheduleStep(job, Math.max(this.reportIntervalMs / 4, (result.endUnixUs - startUs) / 1000));
  }
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
