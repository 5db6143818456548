/** Loads the agent's .proto files at runtime with the same options the generated types were made with. */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { ProtoGrpcType as AgentProto } from "./generated/agent.js";
import type { ProtoGrpcType as WorkerProto } from "./generated/worker.js";
import { LOADER_OPTIONS, PROTO_FILES, PROTO_ROOT } from "./gen-proto.js";

let cached: AgentProto | undefined;

/** agent.proto imports worker.proto, so one load yields both packages. */
export function loadProtos(): AgentProto & WorkerProto {
  cached ??= grpc.loadPackageDefinition(
    protoLoader.loadSync([...PROTO_FILES], { ...LOADER_OPTIONS, includeDirs: [PROTO_ROOT] }),
  ) as unknown as AgentProto;
  return cached as AgentProto & WorkerProto;
}
