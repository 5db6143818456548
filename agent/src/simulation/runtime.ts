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
import { CommandOutcome, decideCommand } from "../workers/simulated/commands.js";
import {
  ServingEngine,
  ServingRole,
  type Admission,
  type IncomingMigration,
  type MigratingRequest,
} from "../workers/simulated/engine.js";
import { describeMigration, migrateOut } from "../workers/simulated/migration-out.js";
import { MigrationPhase } from "../workers/simulated/migration.js";
import { HttpMigrationDestination } from "./instances/migrations.js";
import type { KvLinkEnd } from "./instances/kv-transfer.js";
import { servingEngineConfig } from "../workers/simulated/engine-config.js";
import {
  applyFaultCommand,
  FAULT_ANNOTATION,
  FaultSpecError,
  NO_FAULTS,
  parseFaultAnnotation,
  type Faults,
} from "../workers/simulated/faults.js";
import {
  Outcome,
  RequestStatus,
  type KvHandoff,
  type RequestResult,
  type RequestSink,
  type ServingRequest,
} from "../workers/simulated/sequence.js";
import { DEFAULT_SYNTHETIC_LOAD, PoissonArrivals } from "../workers/simulated/synthetic-load.js";
import {
  CheckpointCadence,
  checkpointPathFor,
  simulateStep,
  type TrainingPlacement,
} from "../workers/simulated/training.js";
import type { SimulatedFabric } from "./fabric.js";
import type { SimInstance } from "./instances/instance.js";
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
  cadence: CheckpointCadence;
  checkpointPath: string;
  /** The step started last and when it ends; completed (and checkpointed) at the next step's start. */
  inProgress: { step: number; endUnixMs: number } | undefined;
}

/** A serving pod's engine (leaders only: follower pods of a multi-pod instance serve through their leader). */
interface ServingWorker {
  spec: SimWorkerSpec;
  engine: ServingEngine | undefined;
  gpuModel: string;
  /** Scale-out NIC bandwidth per GPU of the pod's node (the KV link to other nodes). */
  nicGBpsPerGpu: number;
  /** Base URL of the instance's engine API (agent/src/simulation/instances/); undefined without an engine server. */
  engineUrl: string | undefined;
  arrivals: PoissonArrivals | undefined;
  drainTimer: NodeJS.Timeout | undefined;
}

/** A prefilled request of the synthetic client on its way to a decode worker of the same deployment. */
interface PendingHandoff {
  from: ServingWorker;
  requestId: string;
  sink: RequestSink;
  atMs: number;
}

/** Rings per simulated collective: four pairs, each pair leaving every node through one NIC (training.ts rails). */
const SIM_CHANNELS = 8;

/** Engines advance on this tick; tokens carry their modelled times and reach sinks up to one tick later. */
const SERVING_TICK_MS = 20;

export interface SimulationOptions {
  /** Base URL of a serving pod's engine API (by pod uid); absent: the instances serve no HTTP. */
  engineUrlOf?: (podUid: string) => string;
  /**
   * Synthetic Poisson requests per second for serving pods without the gpufleet.io/sim-request-rate annotation.
   * Default 0: instances stay idle for the requests that come through their engine API (the gateway).
   */
  defaultRequestRatePerSec?: number;
  /** The simulated leaf-spine fabric (traffic plans, link loads); absent: inter-node links run at NIC speed. */
  fabric?: SimulatedFabric | undefined;
}

export class SimulationRuntime {
  private readonly workers = new Map<string, Running>();
  private readonly jobs = new Map<string, TrainingJob>();
  private readonly serving = new Map<string, ServingWorker>();
  private handoffs: PendingHandoff[] = [];
  private readonly starting = new Set<string>();
  /** Uids of pods seen deleted (a worker whose start was under way when its pod went is stopped once started). */
  private readonly deletedPods = new Set<string>();
  private tick: NodeJS.Timeout | undefined;
  /** Synthetic requests a prefill worker could hand to no decode worker (none in the deployment, or all refused). */
  handoffsDropped = 0;

  constructor(
    private readonly client: WorkerClient,
    private readonly factsOf: (nodeName: string) => NodeFacts | undefined,
    private readonly reportIntervalMs: number,
    private readonly log: SimLog,
    private readonly nowMs: () => number = Date.now,
    private readonly options: SimulationOptions = {},
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
    if (deleted) this.deletedPods.add(uid);
    for (const spec of specs) {
      if (spec.jobKey) this.updateJobFaults(spec.jobKey, pod);
      // Starting takes a registration round trip: a second event for the pod meanwhile (add, then update) must
      // not start a second worker, whose reports nothing would ever stop.
      if (this.workers.has(spec.workerId) || this.starting.has(spec.workerId)) continue;
      this.starting.add(spec.workerId);
      try {
        await this.start(spec, pod);
      } finally {
        this.starting.delete(spec.workerId);
      }
      // The pod was deleted while its worker started: stop it now.
      if (this.deletedPods.has(uid)) {
        this.workers.get(spec.workerId)?.stop();
        this.workers.delete(spec.workerId);
      }
    }
  }

  stopAll(): void {
    for (const w of this.workers.values()) w.stop();
    this.workers.clear();
    for (const j of this.jobs.values()) clearTimeout(j.timer);
    this.jobs.clear();
    clearInterval(this.tick);
    this.tick = undefined;
  }

  /**
   * Submits a request to a simulated serving worker's engine (the gateway's entry point, issue 10); the sink gets
   * its tokens at the modelled step times and its result.
   */
  submit(
    workerId: string,
    request: ServingRequest,
    sink: RequestSink,
  ): { accepted: true } | { accepted: false; reason: string } {
    const engine = this.serving.get(workerId)?.engine;
    if (!engine) return { accepted: false, reason: `no simulated serving engine ${workerId} here` };
    return engine.submit(request, sink, this.nowMs());
  }

  cancel(workerId: string, requestId: string): boolean {
    return this.serving.get(workerId)?.engine?.cancel(requestId, this.nowMs()) ?? false;
  }

  /** The serving instance of a pod (its leader's engine) as the engine API sees it; undefined when none runs here. */
  instance(podUid: string): SimInstance | undefined {
    for (const w of this.serving.values())
      if (w.spec.podUid === podUid && w.engine) return this.instanceOf(w, w.engine);
    return undefined;
  }

  private instanceOf(w: ServingWorker, engine: ServingEngine): SimInstance {
    const s = w.spec.serving!;
    const now = this.nowMs;
    return {
      workerId: w.spec.workerId,
      role: s.role,
      modelName: s.shape.name,
      servingDeployment: `${w.spec.podNamespace}/${s.deployment}`,
      engineUrl: w.engineUrl ?? "",
      link: linkEndOf(w),
      blockSizeTokens: engine.config.blockSizeTokens,
      get draining() {
        return engine.draining;
      },
      nowMs: () => now(),
      submit: (request: ServingRequest, sink: RequestSink): Admission => engine.submit(request, sink, now()),
      importKv: (handoff: KvHandoff, sink: RequestSink, atMs: number): Admission =>
        engine.importKv(handoff, sink, Math.min(atMs, now())),
      exportKv: (requestId: string) => engine.exportKv(requestId),
      releaseKv: (requestId: string) => engine.releaseKv(requestId),
      cancel: (requestId: string) => engine.cancel(requestId, now()),
      statusOf: (requestId: string) => engine.statusOf(requestId),
      kvBytesPerToken: engine.config.kvBytesPerToken,
      reserveIncoming: (spec: IncomingMigration, leaseMs: number) => engine.reserveIncoming(spec, now(), leaseMs),
      growIncoming: (requestId: string, tokens: number, leaseMs: number) =>
        engine.growIncoming(requestId, tokens, now(), leaseMs),
      commitIncoming: (handed: MigratingRequest, sink: RequestSink) => engine.commitIncoming(handed, sink, now()),
      releaseIncoming: (requestId: string) => engine.releaseIncoming(requestId),
      hasIncoming: (requestId: string) => engine.hasIncoming(requestId),
    };
  }

  private async start(spec: SimWorkerSpec, pod: V1Pod): Promise<void> {
    const facts = this.factsOf(spec.nodeName)!;
    let servingWorker: ServingWorker | undefined;
    if (spec.serving) {
      try {
        servingWorker = this.servingWorker(spec, pod, facts);
      } catch (err) {
        this.log.warn(
          { workerId: spec.workerId, pod: `${spec.podNamespace}/${spec.podName}`, err: (err as Error).message },
          "pod cannot run a simulated serving engine",
        );
        return;
      }
    }
    await this.client.register({ ...spec, gpuUuids: facts.gpus.slice(0, 1).map((g) => g.uuid), simulated: true });
    const heartbeat = setInterval(
      () => void this.client.heartbeat(spec.workerId).catch(() => {}),
      this.reportIntervalMs,
    );
    let stopped = false;
    const stream = this.client.commands(
      spec.workerId,
      (c) => this.onCommand(spec, c),
      () => {},
    );
    const stops: (() => void)[] = [
      () => clearInterval(heartbeat),
      () => stream.cancel(),
      () => {
        stopped = true;
      },
    ];
    if (spec.kind === "training" && spec.jobKey) {
      this.joinJob(spec, pod);
      stops.push(() => this.leaveJob(spec));
    } else if (servingWorker) {
      const w = servingWorker;
      this.serving.set(spec.workerId, w);
      this.ensureTick();
      if (w.engine) {
        const engine = w.engine;
        const report = setInterval(() => {
          if (stopped) return;
          // The serving tick advances the engine (arrivals first); the report shows it as of that tick.
          const now = this.nowMs();
          const { draining, ...load } = engine.load(now);
          const s = spec.serving!;
          void this.client
            .reportLoad({
              workerId: spec.workerId,
              unixMs: now,
              ...load,
              draining,
              role: s.role,
              model: s.shape.name,
              tp: s.tp,
              pp: s.pp,
              gpuModel: w.gpuModel,
              engineUrl: w.engineUrl ?? "",
              servingDeployment: `${spec.podNamespace}/${s.deployment}`,
            })
            .catch(() => {});
        }, this.reportIntervalMs);
        stops.push(() => clearInterval(report));
      }
      stops.push(() => {
        clearTimeout(w.drainTimer);
        w.engine?.abortAll("the pod's simulated worker stopped", this.nowMs());
        this.serving.delete(spec.workerId);
      });
    }
    this.workers.set(spec.workerId, { spec, stop: () => stops.forEach((s) => s()) });
    const s = spec.serving;
    this.log.info(
      {
        workerId: spec.workerId,
        pod: `${spec.podNamespace}/${spec.podName}`,
        node: spec.nodeName,
        kind: spec.kind,
        rank: spec.rank,
        ...(s
          ? {
              role: s.role,
              model: s.shape.name,
              tp: s.tp,
              pp: s.pp,
              gpuModel: servingWorker?.gpuModel,
              gpuProfile: s.gpuProfile?.name ?? "(shipped defaults)",
              leader: s.workerIndex === 0,
            }
          : {}),
      },
      "simulated worker started",
    );
  }

  private servingWorker(spec: SimWorkerSpec, pod: V1Pod, facts: NodeFacts): ServingWorker {
    const s = spec.serving!;
    const gpuModel = facts.gpus[0]?.model ?? "H100-80GB";
    const nicGBpsPerGpu =
      facts.gpus.length > 0 ? facts.nics.reduce((sum, n) => sum + n.bandwidthGbps, 0) / 8 / facts.gpus.length : 50;
    if (s.workerIndex > 0)
      return {
        spec,
        engine: undefined,
        gpuModel,
        nicGBpsPerGpu,
        engineUrl: undefined,
        arrivals: undefined,
        drainTimer: undefined,
      };
    const config = servingEngineConfig({
      role: s.role,
      shape: s.shape,
      parallelism: { tp: s.tp, pp: s.pp },
      gpuModel,
      links: { sameNode: s.instancePods === 1, nicGBpsPerGpu },
      gpuProfile: s.gpuProfile,
    });
    const now = this.nowMs();
    const engine = new ServingEngine(config, now);
    // Decode workers get their load from prefill hand-offs, not from a client of their own.
    let arrivals: PoissonArrivals | undefined;
    if (s.role !== ServingRole.decode) {
      const fallback = this.options.defaultRequestRatePerSec ?? DEFAULT_SYNTHETIC_LOAD.requestRatePerSec;
      const rate = Number(pod.metadata?.annotations?.[SimAnnotation.requestRate] ?? fallback);
      const requestRatePerSec = Number.isFinite(rate) && rate >= 0 ? rate : fallback;
      if (requestRatePerSec > 0)
        arrivals = new PoissonArrivals(
          { ...DEFAULT_SYNTHETIC_LOAD, requestRatePerSec, seed: hash(spec.workerId) },
          now,
          `sim-${spec.podName}`,
        );
    }
    return {
      spec,
      engine,
      gpuModel,
      nicGBpsPerGpu,
      engineUrl: this.options.engineUrlOf?.(spec.podUid),
      arrivals,
      drainTimer: undefined,
    };
  }

  private ensureTick(): void {
    if (this.tick) return;
    this.tick = setInterval(() => this.advanceServing(), SERVING_TICK_MS);
    this.tick.unref();
  }

  /** One tick: synthetic arrivals submitted at their arrival times, engines advanced, hand-offs carried out. */
  private advanceServing(): void {
    const now = this.nowMs();
    for (const w of this.serving.values()) {
      if (!w.engine) continue;
      for (const { atMs, request } of w.arrivals?.until(now) ?? []) {
        if (w.engine.draining) break;
        w.engine.submit(request, this.syntheticSink(w), atMs);
      }
      w.engine.advance(now);
    }
    const pending = this.handoffs;
    this.handoffs = [];
    for (const h of pending) this.handOff(h);
  }

  private syntheticSink(w: ServingWorker): RequestSink {
    const sink: RequestSink = {
      token: () => {},
      finish: (result: RequestResult) => {
        if (result.outcome === Outcome.prefilled)
          this.handoffs.push({ from: w, requestId: result.requestId, sink, atMs: result.finishedAtMs });
      },
    };
    return sink;
  }

  /** Prefill → decode: export the KV by blocks, import it on the decode worker with the most free blocks, release. */
  private handOff(h: PendingHandoff): void {
    const from = h.from.engine!;
    if (from.statusOf(h.requestId) !== RequestStatus.holdingKv) return; // cancelled or aborted meanwhile
    const handoff = from.exportKv(h.requestId);
    const s = h.from.spec.serving!;
    const targets = [...this.serving.values()]
      .filter(
        (w) =>
          w.engine &&
          w.spec.podNamespace === h.from.spec.podNamespace &&
          w.spec.serving?.deployment === s.deployment &&
          w.spec.serving.role === ServingRole.decode &&
          !w.engine.draining,
      )
      .sort((a, b) => b.engine!.freeBlocks - a.engine!.freeBlocks);
    let accepted = false;
    for (const t of targets) {
      if (t.engine!.importKv(handoff, h.sink, Math.max(h.atMs, this.nowMs())).accepted) {
        accepted = true;
        break;
      }
    }
    from.releaseKv(h.requestId);
    if (!accepted) this.handoffsDropped++;
  }

  private onCommand(spec: SimWorkerSpec, command: WorkerCommand__Output): void {
    this.log.info(
      { workerId: spec.workerId, command: command.command, commandId: command.commandId },
      "simulated worker received command",
    );
    // A migration acknowledges when it committed or aborted (seconds later); every other command at once.
    void Promise.resolve(this.carryOut(spec, command))
      .then(({ outcome, reason }) => {
        this.log.info(
          { workerId: spec.workerId, commandId: command.commandId, outcome, reason },
          "simulated worker acted on command",
        );
        return this.client.ackCommand({ workerId: spec.workerId, commandId: command.commandId, outcome, reason });
      })
      .catch((err: Error & { code?: number }) => {
        this.log.warn(
          { workerId: spec.workerId, commandId: command.commandId, code: err.code, err: err.message },
          "command acknowledgement failed",
        );
      });
  }

  /** MigrateOut: this worker is the source; it pushes the KV stages to the destination's engine API. */
  private async migrate(
    spec: SimWorkerSpec,
    w: ServingWorker,
    engine: ServingEngine,
    action: { requestId: string; targetWorkerId: string; targetUrl: string },
  ): Promise<{ outcome: CommandOutcome; reason: string }> {
    if (action.targetUrl === w.engineUrl)
      return { outcome: CommandOutcome.rejected, reason: `the destination ${action.targetUrl} is this instance` };
    const handed = engine.peekMigrating(action.requestId);
    if (handed && !handed.sink.migrated)
      return {
        outcome: CommandOutcome.failed,
        reason: `request ${action.requestId} stays on ${spec.workerId}: its client cannot follow a migration (not a streamed request of the engine API)`,
      };
    const report = await migrateOut({
      source: engine,
      requestId: action.requestId,
      destination: new HttpMigrationDestination(action.targetUrl, linkEndOf(w)),
      sourceName: spec.workerId,
      destinationName: action.targetWorkerId,
      destinationUrl: action.targetUrl,
      now: this.nowMs,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    });
    const committed = report.phase === MigrationPhase.committed;
    this.log.info(
      {
        workerId: spec.workerId,
        requestId: action.requestId,
        destination: action.targetWorkerId,
        phase: report.phase,
        stages: report.stages.length,
        copiedBytes: report.copiedBytes,
        downtimeMs: report.downtimeMs,
        abort: report.abort?.code,
      },
      committed ? "live migration committed" : "live migration aborted",
    );
    return { outcome: committed ? CommandOutcome.applied : CommandOutcome.failed, reason: describeMigration(report) };
  }

  private carryOut(
    spec: SimWorkerSpec,
    command: WorkerCommand__Output,
  ): { outcome: CommandOutcome; reason: string } | Promise<{ outcome: CommandOutcome; reason: string }> {
    const action = decideCommand(spec.kind === "training" ? "training" : "serving", command);
    const rejected = (reason: string) => ({ outcome: CommandOutcome.rejected, reason });
    switch (action.kind) {
      case "reject":
        return rejected(action.reason);
      case "drain": {
        const w = this.serving.get(spec.workerId);
        if (!w?.engine)
          return rejected(
            `pod ${spec.podName} is a follower of a multi-pod instance; its leader (worker 0) serves and drains`,
          );
        const engine = w.engine;
        engine.drain();
        engine.advance(this.nowMs());
        const load = { queued: engine.queueLength, running: engine.runningRequests };
        let deadline = "";
        if (action.deadlineMs > 0) {
          clearTimeout(w.drainTimer);
          w.drainTimer = setTimeout(() => {
            const aborted = engine.abortAll(`drain deadline of ${action.deadlineMs} ms passed`, this.nowMs());
            if (aborted.length > 0)
              this.log.info(
                { workerId: spec.workerId, aborted: aborted.length },
                "drain deadline passed: aborted the requests left",
              );
          }, action.deadlineMs);
          w.drainTimer.unref();
          deadline = `; what is left after ${action.deadlineMs} ms is aborted`;
        }
        return {
          outcome: CommandOutcome.applied,
          reason: `draining: admitting no new requests; ${load.queued} queued and ${load.running} running requests continue${deadline}`,
        };
      }
      case "abort": {
        const w = this.serving.get(spec.workerId);
        if (!w?.engine)
          return rejected(
            `pod ${spec.podName} is a follower of a multi-pod instance; its leader (worker 0) holds the requests`,
          );
        const aborted = w.engine.abortAll(action.reason, this.nowMs());
        const shown = aborted.slice(0, 10).join(", ");
        return {
          outcome: CommandOutcome.applied,
          reason: `aborted ${aborted.length} requests${aborted.length > 0 ? `: ${shown}${aborted.length > 10 ? ", …" : ""}` : ""}`,
        };
      }
      case "migrate-out": {
        const w = this.serving.get(spec.workerId);
        if (!w?.engine)
          return rejected(
            `pod ${spec.podName} is a follower of a multi-pod instance; its leader (worker 0) holds the requests`,
          );
        return this.migrate(spec, w, w.engine, action);
      }
      case "inject-fault": {
        const job = spec.jobKey ? this.jobs.get(spec.jobKey) : undefined;
        if (!job)
          return { outcome: CommandOutcome.failed, reason: `rank ${spec.rank} is not part of a running simulated job` };
        try {
          job.faults = applyFaultCommand(job.faults, action.fault);
        } catch (err) {
          if (err instanceof FaultSpecError) return rejected(err.message);
          throw err;
        }
        if (job.hung && job.faults.hungRanks.size === 0) this.scheduleStep(job, 0);
        return { outcome: CommandOutcome.applied, reason: `fault ${action.fault.kind} applied to job ${job.key}` };
      }
    }
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
      const t = spec.training ?? { resumeStep: 0, checkpointIntervalSteps: undefined, checkpointPath: "" };
      job = {
        key: spec.jobKey!,
        ranks: new Map(),
        worldSize: spec.worldSize,
        faults: NO_FAULTS,
        annotationFaults: undefined,
        sequence: 0,
        timer: undefined,
        hung: false,
        pod,
        cadence: new CheckpointCadence(spec.worldSize, t.resumeStep, t.checkpointIntervalSteps),
        checkpointPath: t.checkpointPath,
        inProgress: undefined,
      };
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
    const fabric = this.options.fabric;
    return {
      // One communicator per incarnation of the gang, as NCCL makes a new unique id at every ncclCommInitRank: a
      // restarted gang must not continue the old one's sequence numbers (the operator would drop them as duplicates).
      communicator: `${job.key.replace("/", "-")}-${(job.pod.metadata?.uid ?? "").slice(0, 8)}`,
      rankNodes,
      intraNodeGBps: gpuSpec(model).nvlinkGBpsPerDirection,
      interNodeGBps: nicGbps / 8,
      latencyUs: 10,
      computeMs: Number(ann[SimAnnotation.computeMs] ?? 200),
      bucketBytes: Number(ann[SimAnnotation.bucketBytes] ?? 256 * 2 ** 20),
      bucketsPerStep: 4,
      // NCCL splits each collective over several rings (channels) that cross the network through different
      // GPU-NIC pairs; with one ring a slow link cannot be told from a slow NIC (docs/c4d.md).
      channels: SIM_CHANNELS,
      layout: "rails",
      rankNics: this.rankNics(rankNodes),
      ...(fabric
        ? { fabricShare: (a: number, b: number) => fabric.shareOf(job.key, rankNodes[a]!, rankNodes[b]!) }
        : {}),
    };
  }

  /**
   * The NIC each rank's inter-node traffic leaves by, as the agent knows its NICs: the one nearest the rank's GPU
   * (its local index on the node), else the GPUs spread evenly over the NICs. The operator derives the same from
   * the node's labels (operator/src/training/faults/input.ts rankNicsOf), which is how C4D can name a NIC.
   */
  private rankNics(rankNodes: readonly string[]): number[] {
    const firstRank = new Map<string, number>();
    rankNodes.forEach((node, r) => {
      if (!firstRank.has(node)) firstRank.set(node, r);
    });
    return rankNodes.map((node, r) => {
      const local = r - firstRank.get(node)!;
      const facts = this.factsOf(node);
      const nics = facts?.nics ?? [];
      const nearest = nics.findIndex((n) => n.nearestGpus.includes(local));
      if (nearest >= 0) return nearest;
      return nics.length > 0 && facts!.gpus.length > 0
        ? Math.floor((local * nics.length) / facts!.gpus.length) % nics.length
        : 0;
    });
  }

  private scheduleStep(job: TrainingJob, delayMs: number): void {
    clearTimeout(job.timer);
    job.hung = false;
    job.timer = setTimeout(() => void this.step(job), delayMs);
    job.timer.unref();
  }

  private async step(job: TrainingJob): Promise<void> {
    if (job.ranks.size < job.worldSize || !this.jobs.has(job.key)) return;
    const nowMs = this.nowMs();
    this.completeStep(job, nowMs);
    const startUs = nowMs * 1000;
    const result = simulateStep(this.placement(job), job.faults, startUs, job.sequence);
    job.sequence = result.sequenceAfter;
    const byRank = new Map<number, typeof result.records>();
    for (const r of result.records) byRank.set(r.rank, [...(byRank.get(r.rank) ?? []), r]);
    await Promise.all(
      [...byRank].map(([rank, records]) =>
        this.client.reportCollectives({ workerId: job.ranks.get(rank)!.workerId, records }).catch(() => {}),
      ),
    );
    if (result.endUnixUs === undefined) {
      job.hung = true; // stalls until the hang is cleared
      this.log.warn(
        { job: job.key, step: job.cadence.nextStep, sequence: job.sequence - 1 },
        "simulated training job hung",
      );
      return;
    }
    job.inProgress = { step: job.cadence.nextStep, endUnixMs: result.endUnixUs / 1000 };
    this.scheduleStep(job, Math.max(this.reportIntervalMs / 4, (result.endUnixUs - startUs) / 1000));
  }

  /** The step started last has ended on every rank: count it, and write and report the checkpoints now due. */
  private completeStep(job: TrainingJob, nowMs: number): void {
    const done = job.inProgress;
    if (!done || done.endUnixMs > nowMs) return;
    job.inProgress = undefined;
    for (const rank of job.ranks.keys()) job.cadence.rankCompleted(rank, done.step);
    const rank0 = job.ranks.get(0);
    if (!rank0) return;
    for (const step of job.cadence.takeDue()) {
      const report = {
        workerId: rank0.workerId,
        step,
        unixMs: Math.round(done.endUnixMs),
        path: checkpointPathFor(job.checkpointPath, step),
      };
      this.client.reportCheckpoint(report).then(
        () => this.log.info({ job: job.key, ...report, reported: true }, "simulated checkpoint written"),
        (err: Error & { code?: number }) =>
          this.log.warn(
            { job: job.key, ...report, reported: false, code: err.code, err: err.message },
            "simulated checkpoint written; reporting it failed",
          ),
      );
    }
  }
}

/** Where a serving worker's GPUs are (the KV link's end, for hand-offs and migrations). */
function linkEndOf(w: ServingWorker): KvLinkEnd {
  const s = w.spec.serving!;
  return { nodeName: w.spec.nodeName, gpuModel: w.gpuModel, gpus: s.tp * s.pp, nicGBpsPerGpu: w.nicGBpsPerGpu };
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
