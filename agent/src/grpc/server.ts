/**
 * The agent's two gRPC servers: the worker service on a node-local Unix socket, the operator-facing NodeAgent
 * service on TCP (mTLS, reloaded on rotation; plaintext only when `tls` is undefined, which the agent's config allows
 * only with its explicit development flag). Two servers, so neither service is reachable through the other's port.
 */
import { mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ReloadingCertificateProvider, reloadingServerCredentials, type ServerTls } from "./credentials.js";
import { loadProtos } from "./load.js";
import { decodeCollectiveBatch } from "./collective-batch-codec.js";
import { nodeAgentHandlers, type NodeAgentDeps } from "./node-agent-service.js";
import { workerAgentHandlers, type WorkerServiceDeps } from "./worker-service.js";

export interface AgentServerOptions {
  /** Path of the Unix socket workers connect to. */
  workerSocketPath: string;
  /** host:port for the operator; port 0 picks a free port. */
  operatorAddress: string;
  tls: ServerTls | undefined;
  /** Told about every certificate reload (ok or why not). */
  onTlsReload?: (event: { ok: boolean; error?: Error; notAfter?: string }) => void;
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, credentials, (err, port) =>
      err ? reject(new Error(`binding gRPC to ${address}`, { cause: err })) : resolve(port),
    ),
  );
}

/**
 * The worker service with ReportCollectives decoded by collective-batch-codec.ts (same objects, ~10x cheaper). A
 * message that does not decode fails its call (grpc-js answers INTERNAL) and is counted.
 */
function withFastCollectiveDecode(service: grpc.ServiceDefinition, undecodable: () => void): grpc.ServiceDefinition {
  const method = service.ReportCollectives;
  if (!method) throw new Error("worker.proto has no ReportCollectives method");
  const requestDeserialize = (buf: Buffer) => {
    try {
      return decodeCollectiveBatch(buf);
    } catch (error) {
      undecodable();
      throw error;
    }
  };
  return { ...service, ReportCollectives: { ...method, requestDeserialize } };
}

export class AgentServer {
  private readonly workerServer = new grpc.Server({ "grpc.max_receive_message_length": 32 * 1024 * 1024 });
  private readonly operatorServer = new grpc.Server();
  operatorPort = 0;
  private certificates: ReloadingCertificateProvider | undefined;

  constructor(
    private readonly options: AgentServerOptions,
    workerDeps: WorkerServiceDeps,
    nodeDeps: NodeAgentDeps,
  ) {
    const protos = loadProtos();
    this.workerServer.addService(
      withFastCollectiveDecode(protos.gpufleet.worker.v1.WorkerAgent.service, () =>
        workerDeps.metrics.undecodableMessages.inc({ method: "ReportCollectives" }),
      ),
      workerAgentHandlers(workerDeps),
    );
    this.operatorServer.addService(protos.gpufleet.agent.v1.NodeAgent.service, nodeAgentHandlers(nodeDeps));
  }

  async start(): Promise<void> {
    mkdirSync(dirname(this.options.workerSocketPath), { recursive: true });
    rmSync(this.options.workerSocketPath, { force: true }); // a socket left by a previous agent process
    await bind(this.workerServer, `unix:${this.options.workerSocketPath}`, grpc.ServerCredentials.createInsecure());
    let credentials = grpc.ServerCredentials.createInsecure();
    if (this.options.tls) {
      this.certificates = new ReloadingCertificateProvider(this.options.tls, this.options.onTlsReload);
      this.certificates.load();
      credentials = reloadingServerCredentials(this.certificates);
    }
    this.operatorPort = await bind(this.operatorServer, this.options.operatorAddress, credentials);
  }

  /** Re-reads the certificate folder now instead of at the next interval (tests, SIGHUP). */
  async reloadCertificates(): Promise<boolean> {
    return (await this.certificates?.refresh()) ?? false;
  }

  async stop(graceMs = 2000): Promise<void> {
    this.certificates?.stop();
    await Promise.all(
      [this.workerServer, this.operatorServer].map(
        (s) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              s.forceShutdown();
              resolve();
            }, graceMs);
            s.tryShutdown(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    rmSync(this.options.workerSocketPath, { force: true });
  }
}
