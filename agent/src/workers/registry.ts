/**
 * Worker supervision: workers register over the node-local socket; the registry tracks them by id and by pod,
 * notices missed heartbeats and holds each worker's command stream. Time comes in as arguments (no clock inside),
 * so the heartbeat logic is tested without timers.
 */
import type { RegisterRequest__Output } from "../grpc/generated/gpufleet/worker/v1/RegisterRequest.js";
import type { WorkerCommand } from "../grpc/generated/gpufleet/worker/v1/WorkerCommand.js";

export const WorkerKind = { serving: "serving", servingPrefill: "serving-prefill", servingDecode: "serving-decode", training: "training" } as const;
export type WorkerKind = (typeof WorkerKind)[keyof typeof WorkerKind];
const KINDS: ReadonlySet<string> = new Set(Object.values(WorkerKind));

export const WorkerState = { healthy: "healthy", missing: "missing" } as const;
export type WorkerState = (typeof WorkerState)[keyof typeof WorkerState];

/** Who a worker is: the same for a registered real worker and a simulated one the agent plans to start. */
export interface WorkerIdentity {
  workerId: string;
  podNamespace: string;
  podName: string;
  podUid: string;
  nodeName: string;
  kind: WorkerKind;
  /** Training rank in the job (-1 for serving workers). */
  rank: number;
  worldSize: number;
}

export interface WorkerEntry extends WorkerIdentity {
  gpuUuids: string[];
  simulated: boolean;
  registeredUnixMs: number;
  lastHeartbeatUnixMs: number;
  state: WorkerState;
}

export interface SupervisionEvent {
  event: "registered" | "missing" | "recovered" | "removed";
  worker: WorkerEntry;
}

export class UnknownWorkerError extends Error {
  override name = "UnknownWorkerError";
  constructor(readonly workerId: string) {
    super(`worker "${workerId}" is not registered with this agent`);
  }
}

export class InvalidRegistrationError extends Error {
  override name = "InvalidRegistrationError";
}

export class NoCommandStreamError extends Error {
  override name = "NoCommandStreamError";
  constructor(readonly workerId: string) {
    super(`worker "${workerId}" has no open command stream`);
  }
}

export type CommandSink = (command: WorkerCommand) => void;

export interface RegistryOptions {
  heartbeatIntervalMs: number;
  /** A worker is missing after this many intervals without a heartbeat. */
  missedHeartbeatsLimit: number;
  /** Node names this agent serves; registrations for others are refused. */
  servesNode: (nodeName: string) => boolean;
}

export class WorkerRegistry {
  private readonly workers = new Map<string, WorkerEntry>();
  private readonly sinks = new Map<string, CommandSink>();

  constructor(readonly options: RegistryOptions) {}

  register(req: RegisterRequest__Output, nowMs: number): SupervisionEvent {
    const fail = (m: string): never => { throw new InvalidRegistrationError(`register ${req.workerId || "<no id>"}: ${m}`); };
    if (!req.workerId) fail("worker_id is required");
    if (!req.podNamespace || !req.podName) fail("pod_namespace and pod_name are required");
    if (!KINDS.has(req.kind)) fail(`kind "${req.kind}" is not one of ${[...KINDS].join(", ")}`);
    if (!this.options.servesNode(req.nodeName)) fail(`node "${req.nodeName}" is not served by this agent`);
    if (req.kind === WorkerKind.training && (req.worldSize <= 0 || req.rank < 0 || req.rank >= req.worldSize)) {
      fail(`training rank ${req.rank} is outside world size ${req.worldSize}`);
    }
    const entry: WorkerEntry = {
      workerId: req.workerId, podNamespace: req.podNamespace, podName: req.podName, podUid: req.podUid, nodeName: req.nodeName,
      kind: req.kind as WorkerKind, gpuUuids: [...req.gpuUuids], rank: req.rank, worldSize: req.worldSize, simulated: req.simulated,
      registeredUnixMs: nowMs, lastHeartbeatUnixMs: nowMs, state: WorkerState.healthy,
    };
    this.workers.set(entry.workerId, entry);
    return { event: "registered", worker: entry };
  }

  get(workerId: string): WorkerEntry {
    const w = this.workers.get(workerId);
    if (!w) throw new UnknownWorkerError(workerId);
    return w;
  }

  /** Records a heartbeat; returns a "recovered" event when the worker had been declared missing. */
  heartbeat(workerId: string, nowMs: number): SupervisionEvent | undefined {
    const w = this.get(workerId);
    w.lastHeartbeatUnixMs = nowMs;
    if (w.state === WorkerState.missing) {
      w.state = WorkerState.healthy;
      return { event: "recovered", worker: w };
    }
    return undefined;
  }

  /** Declares missing every healthy worker whose last heartbeat is older than the limit. */
  checkHeartbeats(nowMs: number): SupervisionEvent[] {
    const limitMs = this.options.heartbeatIntervalMs * this.options.missedHeartbeatsLimit;
    const events: SupervisionEvent[] = [];
    for (const w of this.workers.values()) {
      if (w.state === WorkerState.healthy && nowMs - w.lastHeartbeatUnixMs > limitMs) {
        w.state = WorkerState.missing;
        events.push({ event: "missing", worker: w });
      }
    }
    return events;
  }

  remove(workerId: string): SupervisionEvent | undefined {
    const w = this.workers.get(workerId);
    if (!w) return undefined;
    this.workers.delete(workerId);
    this.sinks.delete(workerId);
    return { event: "removed", worker: w };
  }

  /** Removes every worker of a pod (the pod was deleted). */
  removePod(podNamespace: string, podName: string): SupervisionEvent[] {
    return this.byPod(podNamespace, podName).map((w) => this.remove(w.workerId)!);
  }

  byPod(podNamespace: string, podName: string): WorkerEntry[] {
    return [...this.workers.values()].filter((w) => w.podNamespace === podNamespace && w.podName === podName);
  }

  list(nodeName?: string): WorkerEntry[] {
    return [...this.workers.values()].filter((w) => !nodeName || w.nodeName === nodeName);
  }

  /** Attaches a worker's command stream; returns a function that detaches exactly this one. */
  attachCommands(workerId: string, sink: CommandSink): () => void {
    this.get(workerId);
    this.sinks.set(workerId, sink);
    return () => {
      if (this.sinks.get(workerId) === sink) this.sinks.delete(workerId);
    };
  }

  sendCommand(workerId: string, command: WorkerCommand): void {
    this.get(workerId);
    const sink = this.sinks.get(workerId);
    if (!sink) throw new NoCommandStreamError(workerId);
    sink(command);
  }
}
