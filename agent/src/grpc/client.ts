/**
 * Promise clients with a deadline on every call: NodeAgentClient for the operator, WorkerClient for workers
 * (simulated ones use it too, so they speak exactly the protocol real workers do).
 */
import * as grpc from "@grpc/grpc-js";
import type { ApplyTrafficPlanRequest } from "./generated/gpufleet/agent/v1/ApplyTrafficPlanRequest.js";
import type { ApplyTrafficPlanResponse__Output } from "./generated/gpufleet/agent/v1/ApplyTrafficPlanResponse.js";
import type { ListWorkersResponse__Output } from "./generated/gpufleet/agent/v1/ListWorkersResponse.js";
import type { NodeAgentClient as RawNodeAgentClient } from "./generated/gpufleet/agent/v1/NodeAgent.js";
import type { NodeInfo__Output } from "./generated/gpufleet/agent/v1/NodeInfo.js";
import type { RunDiagnosticResponse__Output } from "./generated/gpufleet/agent/v1/RunDiagnosticResponse.js";
import type { SendWorkerCommandResponse__Output } from "./generated/gpufleet/agent/v1/SendWorkerCommandResponse.js";
import type { CheckpointReport } from "./generated/gpufleet/worker/v1/CheckpointReport.js";
import type { CollectiveBatch } from "./generated/gpufleet/worker/v1/CollectiveBatch.js";
import type { CommandAck } from "./generated/gpufleet/worker/v1/CommandAck.js";
import type { LoadReport } from "./generated/gpufleet/worker/v1/LoadReport.js";
import type { RegisterRequest } from "./generated/gpufleet/worker/v1/RegisterRequest.js";
import type { RegisterResponse__Output } from "./generated/gpufleet/worker/v1/RegisterResponse.js";
import type { WorkerAgentClient as RawWorkerAgentClient } from "./generated/gpufleet/worker/v1/WorkerAgent.js";
import type { WorkerCommand, WorkerCommand__Output } from "./generated/gpufleet/worker/v1/WorkerCommand.js";
import type { ReportAck__Output } from "./generated/gpufleet/worker/v1/ReportAck.js";
import { encodeCollectiveBatch } from "./collective-batch-codec.js";
import { loadProtos } from "./load.js";

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;

function call<T>(invoke: (options: grpc.CallOptions, cb: Callback<T>) => unknown, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    invoke({ deadline: Date.now() + timeoutMs }, (err, value) => (err ? reject(err) : resolve(value as T)));
  });
}

export class NodeAgentClient {
  readonly raw: RawNodeAgentClient;

  /** options: e.g. `grpc.ssl_target_name_override`, the name on the agents' certificate when dialling a pod IP. */
  constructor(
    address: string,
    credentials: grpc.ChannelCredentials,
    private readonly timeoutMs = 5000,
    options: grpc.ChannelOptions = {},
  ) {
    const { NodeAgent } = loadProtos().gpufleet.agent.v1;
    this.raw = new NodeAgent(address, credentials, options);
  }

  getNodeInfo(nodeName: string, timeoutMs = this.timeoutMs): Promise<NodeInfo__Output> {
    return call((o, cb) => this.raw.GetNodeInfo({ nodeName }, o, cb), timeoutMs);
  }

  listWorkers(nodeName = "", timeoutMs = this.timeoutMs): Promise<ListWorkersResponse__Output> {
    return call((o, cb) => this.raw.ListWorkers({ nodeName }, o, cb), timeoutMs);
  }

  runDiagnostic(
    nodeName: string,
    diagnostic: string,
    timeoutMs = this.timeoutMs,
  ): Promise<RunDiagnosticResponse__Output> {
    return call((o, cb) => this.raw.RunDiagnostic({ nodeName, diagnostic }, o, cb), timeoutMs);
  }

  applyTrafficPlan(
    request: ApplyTrafficPlanRequest,
    timeoutMs = this.timeoutMs,
  ): Promise<ApplyTrafficPlanResponse__Output> {
    return call((o, cb) => this.raw.ApplyTrafficPlan(request, o, cb), timeoutMs);
  }

  sendWorkerCommand(
    workerId: string,
    command: WorkerCommand,
    timeoutMs = this.timeoutMs,
  ): Promise<SendWorkerCommandResponse__Output> {
    return call((o, cb) => this.raw.SendWorkerCommand({ workerId, command }, o, cb), timeoutMs);
  }

  close(): void {
    this.raw.close();
  }
}

export class WorkerClient {
  readonly raw: RawWorkerAgentClient;
  private readonly collectivesMethod: grpc.MethodDefinition<CollectiveBatch, ReportAck__Output>;

  /** address: "unix:/run/gpufleet/agent.sock" on a node. */
  constructor(
    address: string,
    private readonly timeoutMs = 2000,
    channel?: grpc.Channel,
  ) {
    const { WorkerAgent } = loadProtos().gpufleet.worker.v1;
    this.raw = new WorkerAgent(address, grpc.credentials.createInsecure(), channel ? { channelOverride: channel } : {});
    this.collectivesMethod = WorkerAgent.service.ReportCollectives as grpc.MethodDefinition<
      CollectiveBatch,
      ReportAck__Output
    >;
  }

  register(request: RegisterRequest): Promise<RegisterResponse__Output> {
    return call((o, cb) => this.raw.Register(request, o, cb), this.timeoutMs);
  }

  heartbeat(workerId: string): Promise<unknown> {
    return call((o, cb) => this.raw.Heartbeat({ workerId, sentUnixMs: Date.now() }, o, cb), this.timeoutMs);
  }

  reportLoad(report: LoadReport): Promise<unknown> {
    return call((o, cb) => this.raw.ReportLoad(report, o, cb), this.timeoutMs);
  }

  /** Serialized by collective-batch-codec.ts (protobufjs for values it does not take): the hot call of a worker. */
  reportCollectives(batch: CollectiveBatch): Promise<{ accepted: number }> {
    const method = this.collectivesMethod;
    const serialize = (b: CollectiveBatch): Buffer => encodeCollectiveBatch(b) ?? method.requestSerialize(b);
    return call(
      (o, cb) => this.raw.makeUnaryRequest(method.path, serialize, method.responseDeserialize, batch, o, cb),
      this.timeoutMs,
    );
  }

  /** Tells the agent what became of a command from the stream (applied, rejected or failed, with a reason). */
  ackCommand(ack: CommandAck): Promise<{ accepted: number }> {
    return call((o, cb) => this.raw.AckCommand(ack, o, cb), this.timeoutMs);
  }

  /** A checkpoint at `step` is durable; the operator resumes the job from the newest one after a restart. */
  reportCheckpoint(report: CheckpointReport): Promise<{ accepted: number }> {
    return call((o, cb) => this.raw.ReportCheckpoint(report, o, cb), this.timeoutMs);
  }

  /** Long-lived stream of commands (no deadline: it lives as long as the worker). */
  commands(
    workerId: string,
    onCommand: (c: WorkerCommand__Output) => void,
    onEnd: (err?: Error) => void,
  ): grpc.ClientReadableStream<WorkerCommand__Output> {
    const stream = this.raw.Commands({ workerId });
    stream.on("data", onCommand);
    stream.on("error", (err: Error) => onEnd(err));
    stream.on("end", () => onEnd());
    return stream;
  }

  close(): void {
    this.raw.close();
  }
}
