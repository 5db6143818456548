/**
 * The agent's two gRPC servers: the worker service on a node-local Unix socket, the operator-facing NodeAgent
 * service on TCP (optionally mTLS). Two servers, so neither service is reachable through the other's port.
 */
import { mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { serverCredentials, type TlsFiles } from "./credentials.js";
import { loadProtos } from "./load.js";
import { nodeAgentHandlers, type NodeAgentDeps } from "./node-agent-service.js";
import { workerAgentHandlers, type WorkerServiceDeps } from "./worker-service.js";

export interface AgentServerOptions {
  /** Path of the Unix socket workers connect to. */
  workerSocketPath: string;
  /** host:port for the operator; port 0 picks a free port. */
  operatorAddress: string;
  tls: TlsFiles | undefined;
}

function bind(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, credentials, (err, port) => (err ? reject(new Error(`binding gRPC to ${address}`, { cause: err })) : resolve(port))),
  );
}

export class AgentServer {
  private readonly workerServer = new grpc.Server({ "grpc.max_receive_message_length": 32 * 1024 * 1024 });
  private readonly operatorServer = new grpc.Server();
  operatorPort = 0;

  constructor(private readonly options: AgentServerOptions, workerDeps: WorkerServiceDeps, nodeDeps: NodeAgentDeps) {
    const protos = loadProtos();
    this.workerServer.addService(protos.gpufleet.worker.v1.WorkerAgent.service, workerAgentHandlers(workerDeps));
    this.operatorServer.addService(protos.gpufleet.agent.v1.NodeAgent.service, nodeAgentHandlers(nodeDeps));
  }

  async start(): Promise<void> {
    mkdirSync(dirname(this.options.workerSocketPath), { recursive: true });
    rmSync(this.options.workerSocketPath, { force: true }); // a socket left by a previous agent process
    await bind(this.workerServer, `unix:${this.options.workerSocketPath}`, grpc.ServerCredentials.createInsecure());
    this.operatorPort = await bind(this.operatorServer, this.options.operatorAddress, serverCredentials(this.options.tls));
  }

  async stop(graceMs = 2000): Promise<void> {
    await Promise.all([this.workerServer, this.operatorServer].map((s) => new Promise<void>((resolve) => {
      const timer = setTimeout(() => { s.forceShutdown(); resolve(); }, graceMs);
      s.tryShutdown(() => { clearTimeout(timer); resolve(); });
    })));
    rmSync(this.options.workerSocketPath, { force: true });
  }
}
