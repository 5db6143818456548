/**
 * What the engine API needs of one simulated serving instance (SimulationRuntime.instance() implements it over the
 * pod's ServingEngine, with the agent's clock). Kept small so the HTTP layer never reaches into the runtime.
 */
import type { Admission, IncomingMigration, MigratingRequest, ServingRole } from "../../workers/simulated/engine.js";
import type { KvHandoff, RequestSink, RequestStatus, ServingRequest } from "../../workers/simulated/sequence.js";
import type { KvLinkEnd } from "./kv-transfer.js";

export interface SimInstance {
  readonly workerId: string;
  readonly role: ServingRole;
  /** The served model's name (the ServingDeployment's model.name): requests must name it. */
  readonly modelName: string;
  /** `namespace/name` of the pod's ServingDeployment. */
  readonly servingDeployment: string;
  readonly engineUrl: string;
  /** Where the instance's GPUs are, for KV transfer times. */
  readonly link: KvLinkEnd;
  readonly blockSizeTokens: number;
  readonly draining: boolean;
  nowMs(): number;
  submit(request: ServingRequest, sink: RequestSink): Admission;
  /** `atMs`: when the KV arrived (the end of the modelled transfer), at most now. */
  importKv(handoff: KvHandoff, sink: RequestSink, atMs: number): Admission;
  exportKv(requestId: string): KvHandoff;
  releaseKv(requestId: string): number;
  cancel(requestId: string): boolean;
  statusOf(requestId: string): RequestStatus | undefined;
  /** KV bytes per token position (the model's): a migration stage's bytes. */
  readonly kvBytesPerToken: number;
  /** Live migration, destination side (the engine's pre-allocation leases; ServingEngine documents them). */
  reserveIncoming(spec: IncomingMigration, leaseMs: number): Admission;
  growIncoming(requestId: string, tokens: number, leaseMs: number): Admission;
  commitIncoming(handed: MigratingRequest, sink: RequestSink): Admission;
  releaseIncoming(requestId: string): number;
  hasIncoming(requestId: string): boolean;
}
