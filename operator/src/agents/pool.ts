/**
 * The operator's clients to node agents: one NodeAgentClient per agent endpoint (found through the directory),
 * a deadline on every call, retries with exponential backoff and jitter for idempotent calls only, and a circuit
 * breaker per node so a dead agent costs one fast failure instead of a timeout per call.
 *
 * Idempotent: GetNodeInfo, ListWorkers, RunDiagnostic (reads), and SendWorkerCommand (the agent de-duplicates by
 * command_id: a retried command answers with the first outcome and is not sent again). ApplyTrafficPlan is not
 * retried. Only UNAVAILABLE is retried: the call did not reach a handler, or the worker's stream was briefly
 * absent; DEADLINE_EXCEEDED means the budget is spent. A new client certificate (rotation) closes every channel,
 * so the next call dials with it.
 */
import * as grpc from "@grpc/grpc-js";
import { NodeAgentClient } from "../../../agent/src/grpc/client.js";
import { clientCredentials, type TlsFiles } from "../../../agent/src/grpc/credentials.js";
import type { NodeInfo__Output } from "../../../agent/src/grpc/generated/gpufleet/agent/v1/NodeInfo.js";
import type { ListWorkersResponse__Output } from "../../../agent/src/grpc/generated/gpufleet/agent/v1/ListWorkersResponse.js";
import type { RunDiagnosticResponse__Output } from "../../../agent/src/grpc/generated/gpufleet/agent/v1/RunDiagnosticResponse.js";
import type { SendWorkerCommandResponse__Output } from "../../../agent/src/grpc/generated/gpufleet/agent/v1/SendWorkerCommandResponse.js";
import type { WorkerCommand } from "../../../agent/src/grpc/generated/gpufleet/worker/v1/WorkerCommand.js";
import type { OperatorMetrics } from "../metrics.js";
import { backoffDelayMs, type BackoffPolicy } from "./backoff.js";
import { CIRCUIT_STATE_VALUE, CircuitBreaker, type CircuitPolicy } from "./circuit.js";
import type { AgentLookup } from "./directory.js";

export const AgentMethod = {
  getNodeInfo: "GetNodeInfo",
  listWorkers: "ListWorkers",
  runDiagnostic: "RunDiagnostic",
  applyTrafficPlan: "ApplyTrafficPlan",
  sendWorkerCommand: "SendWorkerCommand",
} as const;
export type AgentMethod = (typeof AgentMethod)[keyof typeof AgentMethod];

export const IDEMPOTENT_METHODS: ReadonlySet<AgentMethod> = new Set([
  AgentMethod.getNodeInfo,
  AgentMethod.listWorkers,
  AgentMethod.runDiagnostic,
  AgentMethod.sendWorkerCommand,
]);

/** Codes that say the agent (or the path to it) is unwell; other codes are answers from a working agent. */
const BREAKING_CODES: ReadonlySet<number> = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.INTERNAL,
  grpc.status.UNKNOWN,
]);

/** No call was made: no endpoint for the node, an open circuit, or no client certificate yet. */
export class AgentUnreachableError extends Error {
  override name = "AgentUnreachableError";
  constructor(
    readonly nodeName: string,
    readonly code: grpc.status,
    readonly reason: "no-endpoint" | "circuit-open" | "no-credentials",
    message: string,
  ) {
    super(message);
  }
}

export interface AgentPoolOptions {
  lookup: (nodeName: string) => AgentLookup;
  /** The name on the agents' certificate (checked instead of the dialled pod IP). */
  serverName: string;
  /** Development only: dial agents in plaintext. */
  insecure: boolean;
  callTimeoutMs: number;
  maxAttempts: number;
  backoff: BackoffPolicy;
  circuit: CircuitPolicy;
  metrics: OperatorMetrics;
  nowMs?: () => number;
  random?: () => number;
}

const codeName = (code: number): string => grpc.status[code] ?? String(code);

export class AgentClientPool {
  private readonly clients = new Map<string, NodeAgentClient>();
  private readonly circuits = new Map<string, CircuitBreaker>();
  private tls: TlsFiles | undefined;
  private readonly nowMs: () => number;
  private readonly random: () => number;

  constructor(private readonly options: AgentPoolOptions) {
    this.nowMs = options.nowMs ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** Takes a (rotated) client certificate; returns whether it differed, in which case every channel was closed. */
  setCredentials(tls: TlsFiles | undefined): boolean {
    const same = (a?: Buffer, b?: Buffer) => (a && b ? a.equals(b) : a === b);
    if (same(tls?.cert, this.tls?.cert) && same(tls?.key, this.tls?.key) && same(tls?.caCert, this.tls?.caCert))
      return false;
    this.tls = tls;
    this.closeClients();
    this.options.metrics.agentCredentialReloadsTotal.inc();
    return true;
  }

  getNodeInfo(nodeName: string, timeoutMs?: number): Promise<NodeInfo__Output> {
    return this.call(nodeName, AgentMethod.getNodeInfo, (c, ms) => c.getNodeInfo(nodeName, ms), timeoutMs);
  }

  listWorkers(nodeName: string, timeoutMs?: number): Promise<ListWorkersResponse__Output> {
    return this.call(nodeName, AgentMethod.listWorkers, (c, ms) => c.listWorkers(nodeName, ms), timeoutMs);
  }

  runDiagnostic(nodeName: string, diagnostic: string, timeoutMs?: number): Promise<RunDiagnosticResponse__Output> {
    return this.call(
      nodeName,
      AgentMethod.runDiagnostic,
      (c, ms) => c.runDiagnostic(nodeName, diagnostic, ms),
      timeoutMs,
    );
  }

  /** Resolves with the worker's acknowledgement (outcome, reason); safe to retry with the same command_id. */
  sendWorkerCommand(
    nodeName: string,
    workerId: string,
    command: WorkerCommand,
    timeoutMs?: number,
  ): Promise<SendWorkerCommandResponse__Output> {
    return this.call(
      nodeName,
      AgentMethod.sendWorkerCommand,
      (c, ms) => c.sendWorkerCommand(workerId, command, ms),
      timeoutMs,
    );
  }

  /** The circuit of a node's agent as seen now (for status and tests). */
  circuitState(nodeName: string): string {
    return this.circuits.get(nodeName)?.state(this.nowMs()) ?? "closed";
  }

  /**
   * Runs `invoke` against the node's agent within `timeoutMs` in all (every attempt gets what is left of it),
   * retrying idempotent methods after UNAVAILABLE with backoff while the budget allows.
   */
  async call<T>(
    nodeName: string,
    method: AgentMethod,
    invoke: (client: NodeAgentClient, timeoutMs: number) => Promise<T>,
    timeoutMs = this.options.callTimeoutMs,
  ): Promise<T> {
    const { metrics, maxAttempts } = this.options;
    const deadlineMs = this.nowMs() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const client = this.clientFor(nodeName, method);
      const circuit = this.circuitOf(nodeName);
      if (!circuit.tryAcquire(this.nowMs())) {
        metrics.agentCallsTotal.inc({ method, code: "CIRCUIT_OPEN" });
        throw new AgentUnreachableError(
          nodeName,
          grpc.status.UNAVAILABLE,
          "circuit-open",
          `the circuit to node ${nodeName}'s agent is open after repeated failures; next trial in ${circuit.retryInMs(this.nowMs())} ms`,
        );
      }
      try {
        const result = await invoke(client, Math.max(1, deadlineMs - this.nowMs()));
        circuit.onSuccess();
        this.observeCircuit(nodeName);
        metrics.agentCallsTotal.inc({ method, code: "OK" });
        return result;
      } catch (err) {
        const code =
          typeof (err as grpc.ServiceError).code === "number" ? (err as grpc.ServiceError).code : grpc.status.UNKNOWN;
        if (BREAKING_CODES.has(code)) circuit.onFailure(this.nowMs());
        else circuit.onSuccess(); // the agent answered; the answer was no
        this.observeCircuit(nodeName);
        const delayMs = backoffDelayMs(attempt, this.options.backoff, this.random);
        const retry =
          IDEMPOTENT_METHODS.has(method) &&
          code === grpc.status.UNAVAILABLE &&
          attempt + 1 < maxAttempts &&
          this.nowMs() + delayMs < deadlineMs;
        if (!retry) {
          metrics.agentCallsTotal.inc({ method, code: codeName(code) });
          throw err;
        }
        metrics.agentCallRetriesTotal.inc({ method });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  close(): void {
    this.closeClients();
  }

  private clientFor(nodeName: string, method: AgentMethod): NodeAgentClient {
    const found = this.options.lookup(nodeName);
    if (!found.found) {
      this.options.metrics.agentCallsTotal.inc({ method, code: "NO_ENDPOINT" });
      throw new AgentUnreachableError(nodeName, grpc.status.NOT_FOUND, "no-endpoint", found.reason);
    }
    if (!this.tls && !this.options.insecure) {
      this.options.metrics.agentCallsTotal.inc({ method, code: "NO_CREDENTIALS" });
      throw new AgentUnreachableError(
        nodeName,
        grpc.status.UNAVAILABLE,
        "no-credentials",
        "the operator has no client certificate for agents yet (its Secret is not issued or not readable)",
      );
    }
    let client = this.clients.get(found.endpoint);
    if (!client) {
      const options: grpc.ChannelOptions = this.tls
        ? {
            "grpc.ssl_target_name_override": this.options.serverName,
            "grpc.default_authority": this.options.serverName,
          }
        : {};
      client = new NodeAgentClient(found.endpoint, clientCredentials(this.tls), this.options.callTimeoutMs, options);
      this.clients.set(found.endpoint, client);
    }
    return client;
  }

  private circuitOf(nodeName: string): CircuitBreaker {
    let circuit = this.circuits.get(nodeName);
    if (!circuit) this.circuits.set(nodeName, (circuit = new CircuitBreaker(this.options.circuit)));
    return circuit;
  }

  private observeCircuit(nodeName: string): void {
    const state = this.circuitOf(nodeName).state(this.nowMs());
    this.options.metrics.agentCircuitState.set({ node: nodeName }, CIRCUIT_STATE_VALUE[state]);
  }

  private closeClients(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}
