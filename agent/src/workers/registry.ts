/**
 * Worker supervision: workers register over the node-local socket; the registry tracks them by id and by pod,
 * notices missed heartbeats and holds each worker's command stream. Time comes in as arguments (no clock inside),
 * so the heartbeat logic is tested without timers.
 */
import type { RegisterRequest__Output } from "../grpc/generated/gpufleet/worker/v1/RegisterRequest.js";
import type { CommandAck__Output } from "../grpc/generated/gpufleet/worker/v1/CommandAck.js";
import type { WorkerCommand } from "../grpc/generated/gpufleet/worker/v1/WorkerCommand.js";

export const WorkerKind = {
  serving: "serving",
  servingPrefill: "serving-prefill",
  servingDecode: "serving-decode",
  training: "training",
} as const;
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

/** A command was sent, but no acknowledgement came within the caller's deadline (it may still be acted on). */
export class AckTimeoutError extends Error {
  override name = "AckTimeoutError";
  constructor(
    readonly workerId: string,
    readonly commandId: string,
    readonly timeoutMs: number,
  ) {
    super(`worker "${workerId}" did not acknowledge command "${commandId}" within ${timeoutMs} ms`);
  }
}

/** The worker's command stream closed (or the worker was removed) while a command waited for its ack. */
export class CommandStreamClosedError extends Error {
  override name = "CommandStreamClosedError";
  constructor(
    readonly workerId: string,
    readonly commandId: string,
  ) {
    super(
      `worker "${workerId}"'s command stream closed before it acknowledged command "${commandId}"; whether it took effect is unknown`,
    );
  }
}

export class UnknownCommandError extends Error {
  override name = "UnknownCommandError";
}

export class InvalidCommandError extends Error {
  override name = "InvalidCommandError";
}

export const CommandOutcome = { applied: "applied", rejected: "rejected", failed: "failed" } as const;
export type CommandOutcome = (typeof CommandOutcome)[keyof typeof CommandOutcome];
const OUTCOMES: ReadonlySet<string> = new Set(Object.values(CommandOutcome));

/** What a worker said became of a command. */
export interface CommandResult {
  commandId: string;
  outcome: CommandOutcome;
  reason: string;
  acknowledgedUnixMs: number;
}

export type CommandSink = (command: WorkerCommand) => void;

/** One command by id: waiting for its ack, or acknowledged (kept a while so a retried send gets the same answer). */
interface CommandRecord {
  workerId: string;
  sentUnixMs: number;
  result: CommandResult | undefined;
  settle: { resolve: (r: CommandResult) => void; reject: (e: Error) => void };
  settled: Promise<CommandResult>;
}

export interface RegistryOptions {
  heartbeatIntervalMs: number;
  /** A worker is missing after this many intervals without a heartbeat. */
  missedHeartbeatsLimit: number;
  /** Node names this agent serves; registrations for others are refused. */
  servesNode: (nodeName: string) => boolean;
  /** How long an acknowledged command's outcome is kept for retries of the same command_id (default 10 min). */
  commandRetentionMs?: number;
  /** At most this many commands are remembered (oldest first out; default 10 000). */
  maxRememberedCommands?: number;
}

export class WorkerRegistry {
  private readonly workers = new Map<string, WorkerEntry>();
  private readonly sinks = new Map<string, CommandSink>();
  /** By command_id, in insertion order (oldest first), so pruning walks from the front. */
  private readonly commands = new Map<string, CommandRecord>();

  constructor(readonly options: RegistryOptions) {}

  register(req: RegisterRequest__Output, nowMs: number): SupervisionEvent {
    const fail = (m: string): never => {
      throw new InvalidRegistrationError(`register ${req.workerId || "<no id>"}: ${m}`);
    };
    if (!req.workerId) fail("worker_id is required");
    if (!req.podNamespace || !req.podName) fail("pod_namespace and pod_name are required");
    if (!KINDS.has(req.kind)) fail(`kind "${req.kind}" is not one of ${[...KINDS].join(", ")}`);
    if (!this.options.servesNode(req.nodeName)) fail(`node "${req.nodeName}" is not served by this agent`);
    if (req.kind === WorkerKind.training && (req.worldSize <= 0 || req.rank < 0 || req.rank >= req.worldSize)) {
      fail(`training rank ${req.rank} is outside world size ${req.worldSize}`);
    }
    const entry: WorkerEntry = {
      workerId: req.workerId,
      podNamespace: req.podNamespace,
      podName: req.podName,
      podUid: req.podUid,
      nodeName: req.nodeName,
      kind: req.kind as WorkerKind,
      gpuUuids: [...req.gpuUuids],
      rank: req.rank,
      worldSize: req.worldSize,
      simulated: req.simulated,
      registeredUnixMs: nowMs,
      lastHeartbeatUnixMs: nowMs,
      state: WorkerState.healthy,
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
    this.failPending(workerId);
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

  /**
   * Attaches a worker's command stream; returns a function that detaches exactly this one. Detaching fails the
   * worker's commands that still wait for an ack at once (the stream that carried them is gone).
   */
  attachCommands(workerId: string, sink: CommandSink): () => void {
    this.get(workerId);
    this.sinks.set(workerId, sink);
    return () => {
      if (this.sinks.get(workerId) !== sink) return;
      this.sinks.delete(workerId);
      this.failPending(workerId);
    };
  }

  /**
   * Sends a command on the worker's stream and resolves with the worker's acknowledgement, or rejects with
   * AckTimeoutError after `timeoutMs`. De-duplicated by command_id: a command already acknowledged answers with its
   * first outcome, one still waiting is waited on again; neither is sent a second time. So a caller may retry.
   */
  sendCommand(workerId: string, command: WorkerCommand, timeoutMs: number, nowMs: number): Promise<CommandResult> {
    this.pruneCommands(nowMs);
    const commandId = command.commandId ?? "";
    if (!commandId) throw new InvalidCommandError("command_id is required");
    const known = this.commands.get(commandId);
    if (known) {
      if (known.workerId !== workerId)
        throw new InvalidCommandError(`command_id "${commandId}" was already used for worker "${known.workerId}"`);
      return known.result ? Promise.resolve(known.result) : this.bounded(known, workerId, commandId, timeoutMs);
    }
    this.get(workerId);
    const sink = this.sinks.get(workerId);
    if (!sink) throw new NoCommandStreamError(workerId);
    let settle!: CommandRecord["settle"];
    const settled = new Promise<CommandResult>((resolve, reject) => (settle = { resolve, reject }));
    settled.catch(() => {}); // rejections reach callers through bounded(); none is left unhandled
    const record: CommandRecord = { workerId, sentUnixMs: nowMs, result: undefined, settle, settled };
    this.commands.set(commandId, record);
    sink(command);
    return this.bounded(record, workerId, commandId, timeoutMs);
  }

  /** Records a worker's acknowledgement; 1 when it settled a command, 0 for a repeat (the first outcome stands). */
  acknowledge(ack: CommandAck__Output, nowMs: number): number {
    if (!OUTCOMES.has(ack.outcome))
      throw new InvalidCommandError(`outcome "${ack.outcome}" is not one of ${[...OUTCOMES].join(", ")}`);
    if ((ack.outcome === CommandOutcome.rejected || ack.outcome === CommandOutcome.failed) && !ack.reason) {
      throw new InvalidCommandError(`an outcome "${ack.outcome}" needs a reason`);
    }
    const record = this.commands.get(ack.commandId);
    if (!record || record.workerId !== ack.workerId)
      throw new UnknownCommandError(
        `no command "${ack.commandId}" is waiting for an ack from worker "${ack.workerId}"`,
      );
    if (record.result) return 0;
    record.result = {
      commandId: ack.commandId,
      outcome: ack.outcome as CommandOutcome,
      reason: ack.reason,
      acknowledgedUnixMs: nowMs,
    };
    record.settle.resolve(record.result);
    return 1;
  }

  /** Commands sent and not yet acknowledged (for tests and metrics). */
  pendingCommands(): number {
    return [...this.commands.values()].filter((c) => !c.result).length;
  }

  private bounded(
    record: CommandRecord,
    workerId: string,
    commandId: string,
    timeoutMs: number,
  ): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new AckTimeoutError(workerId, commandId, timeoutMs)),
        Math.max(0, timeoutMs),
      );
      record.settled.then(
        (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  /** Fails a worker's unacknowledged commands and forgets them, so a retry after reconnecting sends them again. */
  private failPending(workerId: string): void {
    for (const [commandId, record] of this.commands) {
      if (record.workerId !== workerId || record.result) continue;
      this.commands.delete(commandId);
      record.settle.reject(new CommandStreamClosedError(workerId, commandId));
    }
  }

  /**
   * Forgets commands sent longer ago than the retention (an unacknowledged one that old is failed: nobody waits on
   * it any more), and the oldest beyond the cap. Insertion order is send order, so this stops at the first young one.
   */
  private pruneCommands(nowMs: number): void {
    const retentionMs = this.options.commandRetentionMs ?? 600_000;
    const max = this.options.maxRememberedCommands ?? 10_000;
    for (const [commandId, record] of this.commands) {
      if (nowMs - record.sentUnixMs <= retentionMs && this.commands.size < max) break;
      this.commands.delete(commandId);
      if (!record.result) record.settle.reject(new CommandStreamClosedError(record.workerId, commandId));
    }
  }
}
