// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ApplyTrafficPlanRequest as _gpufleet_agent_v1_ApplyTrafficPlanRequest, ApplyTrafficPlanRequest__Output as _gpufleet_agent_v1_ApplyTrafficPlanRequest__Output } from '../../../gpufleet/agent/v1/ApplyTrafficPlanRequest.js';
import type { ApplyTrafficPlanResponse as _gpufleet_agent_v1_ApplyTrafficPlanResponse, ApplyTrafficPlanResponse__Output as _gpufleet_agent_v1_ApplyTrafficPlanResponse__Output } from '../../../gpufleet/agent/v1/ApplyTrafficPlanResponse.js';
import type { GetNodeInfoRequest as _gpufleet_agent_v1_GetNodeInfoRequest, GetNodeInfoRequest__Output as _gpufleet_agent_v1_GetNodeInfoRequest__Output } from '../../../gpufleet/agent/v1/GetNodeInfoRequest.js';
import type { ListWorkersRequest as _gpufleet_agent_v1_ListWorkersRequest, ListWorkersRequest__Output as _gpufleet_agent_v1_ListWorkersRequest__Output } from '../../../gpufleet/agent/v1/ListWorkersRequest.js';
import type { ListWorkersResponse as _gpufleet_agent_v1_ListWorkersResponse, ListWorkersResponse__Output as _gpufleet_agent_v1_ListWorkersResponse__Output } from '../../../gpufleet/agent/v1/ListWorkersResponse.js';
import type { NodeInfo as _gpufleet_agent_v1_NodeInfo, NodeInfo__Output as _gpufleet_agent_v1_NodeInfo__Output } from '../../../gpufleet/agent/v1/NodeInfo.js';
import type { RunDiagnosticRequest as _gpufleet_agent_v1_RunDiagnosticRequest, RunDiagnosticRequest__Output as _gpufleet_agent_v1_RunDiagnosticRequest__Output } from '../../../gpufleet/agent/v1/RunDiagnosticRequest.js';
import type { RunDiagnosticResponse as _gpufleet_agent_v1_RunDiagnosticResponse, RunDiagnosticResponse__Output as _gpufleet_agent_v1_RunDiagnosticResponse__Output } from '../../../gpufleet/agent/v1/RunDiagnosticResponse.js';
import type { SendWorkerCommandRequest as _gpufleet_agent_v1_SendWorkerCommandRequest, SendWorkerCommandRequest__Output as _gpufleet_agent_v1_SendWorkerCommandRequest__Output } from '../../../gpufleet/agent/v1/SendWorkerCommandRequest.js';
import type { SendWorkerCommandResponse as _gpufleet_agent_v1_SendWorkerCommandResponse, SendWorkerCommandResponse__Output as _gpufleet_agent_v1_SendWorkerCommandResponse__Output } from '../../../gpufleet/agent/v1/SendWorkerCommandResponse.js';

export interface NodeAgentClient extends grpc.Client {
  ApplyTrafficPlan(argument: _gpufleet_agent_v1_ApplyTrafficPlanRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_ApplyTrafficPlanResponse__Output>): grpc.ClientUnaryCall;
  ApplyTrafficPlan(argument: _gpufleet_agent_v1_ApplyTrafficPlanRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_agent_v1_ApplyTrafficPlanResponse__Output>): grpc.ClientUnaryCall;
  ApplyTrafficPlan(argument: _gpufleet_agent_v1_ApplyTrafficPlanRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_ApplyTrafficPlanResponse__Output>): grpc.ClientUnaryCall;
  ApplyTrafficPlan(argument: _gpufleet_agent_v1_ApplyTrafficPlanRequest, callback: grpc.requestCallback<_gpufleet_agent_v1_ApplyTrafficPlanResponse__Output>): grpc.ClientUnaryCall;
  applyTrafficPlan(argument: _gpufleet_agent_v1_ApplyTrafficPlanRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_ApplyTrafficPlanResponse__Output>): grpc.ClientUnaryCall;
  applyTrafficPlan(argument: _gpufleet_agent_v1_ApplyTrafficPlanRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_agent_v1_ApplyTrafficPlanResponse__Output>): grpc.ClientUnaryCall;
  applyTrafficPlan(argument: _gpufleet_agent_v1_ApplyTrafficPlanRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_ApplyTrafficPlanResponse__Output>): grpc.ClientUnaryCall;
  applyTrafficPlan(argument: _gpufleet_agent_v1_ApplyTrafficPlanRequest, callback: grpc.requestCallback<_gpufleet_agent_v1_ApplyTrafficPlanResponse__Output>): grpc.ClientUnaryCall;
  
  GetNodeInfo(argument: _gpufleet_agent_v1_GetNodeInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  GetNodeInfo(argument: _gpufleet_agent_v1_GetNodeInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_agent_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  GetNodeInfo(argument: _gpufleet_agent_v1_GetNodeInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  GetNodeInfo(argument: _gpufleet_agent_v1_GetNodeInfoRequest, callback: grpc.requestCallback<_gpufleet_agent_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  getNodeInfo(argument: _gpufleet_agent_v1_GetNodeInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  getNodeInfo(argument: _gpufleet_agent_v1_GetNodeInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_agent_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  getNodeInfo(argument: _gpufleet_agent_v1_GetNodeInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  getNodeInfo(argument: _gpufleet_agent_v1_GetNodeInfoRequest, callback: grpc.requestCallback<_gpufleet_agent_v1_NodeInfo__Output>): grpc.ClientUnaryCall;
  
  ListWorkers(argument: _gpufleet_agent_v1_ListWorkersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  ListWorkers(argument: _gpufleet_agent_v1_ListWorkersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_agent_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  ListWorkers(argument: _gpufleet_agent_v1_ListWorkersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  ListWorkers(argument: _gpufleet_agent_v1_ListWorkersRequest, callback: grpc.requestCallback<_gpufleet_agent_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  listWorkers(argument: _gpufleet_agent_v1_ListWorkersRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  listWorkers(argument: _gpufleet_agent_v1_ListWorkersRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_agent_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  listWorkers(argument: _gpufleet_agent_v1_ListWorkersRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  listWorkers(argument: _gpufleet_agent_v1_ListWorkersRequest, callback: grpc.requestCallback<_gpufleet_agent_v1_ListWorkersResponse__Output>): grpc.ClientUnaryCall;
  
  RunDiagnostic(argument: _gpufleet_agent_v1_RunDiagnosticRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_RunDiagnosticResponse__Output>): grpc.ClientUnaryCall;
  RunDiagnostic(argument: _gpufleet_agent_v1_RunDiagnosticRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_agent_v1_RunDiagnosticResponse__Output>): grpc.ClientUnaryCall;
  RunDiagnostic(argument: _gpufleet_agent_v1_RunDiagnosticRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_RunDiagnosticResponse__Output>): grpc.ClientUnaryCall;
  RunDiagnostic(argument: _gpufleet_agent_v1_RunDiagnosticRequest, callback: grpc.requestCallback<_gpufleet_agent_v1_RunDiagnosticResponse__Output>): grpc.ClientUnaryCall;
  runDiagnostic(argument: _gpufleet_agent_v1_RunDiagnosticRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_RunDiagnosticResponse__Output>): grpc.ClientUnaryCall;
  runDiagnostic(argument: _gpufleet_agent_v1_RunDiagnosticRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_agent_v1_RunDiagnosticResponse__Output>): grpc.ClientUnaryCall;
  runDiagnostic(argument: _gpufleet_agent_v1_RunDiagnosticRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_RunDiagnosticResponse__Output>): grpc.ClientUnaryCall;
  runDiagnostic(argument: _gpufleet_agent_v1_RunDiagnosticRequest, callback: grpc.requestCallback<_gpufleet_agent_v1_RunDiagnosticResponse__Output>): grpc.ClientUnaryCall;
  
  SendWorkerCommand(argument: _gpufleet_agent_v1_SendWorkerCommandRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_SendWorkerCommandResponse__Output>): grpc.ClientUnaryCall;
  SendWorkerCommand(argument: _gpufleet_agent_v1_SendWorkerCommandRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_agent_v1_SendWorkerCommandResponse__Output>): grpc.ClientUnaryCall;
  SendWorkerCommand(argument: _gpufleet_agent_v1_SendWorkerCommandRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_SendWorkerCommandResponse__Output>): grpc.ClientUnaryCall;
  SendWorkerCommand(argument: _gpufleet_agent_v1_SendWorkerCommandRequest, callback: grpc.requestCallback<_gpufleet_agent_v1_SendWorkerCommandResponse__Output>): grpc.ClientUnaryCall;
  sendWorkerCommand(argument: _gpufleet_agent_v1_SendWorkerCommandRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_SendWorkerCommandResponse__Output>): grpc.ClientUnaryCall;
  sendWorkerCommand(argument: _gpufleet_agent_v1_SendWorkerCommandRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_agent_v1_SendWorkerCommandResponse__Output>): grpc.ClientUnaryCall;
  sendWorkerCommand(argument: _gpufleet_agent_v1_SendWorkerCommandRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_agent_v1_SendWorkerCommandResponse__Output>): grpc.ClientUnaryCall;
  sendWorkerCommand(argument: _gpufleet_agent_v1_SendWorkerCommandRequest, callback: grpc.requestCallback<_gpufleet_agent_v1_SendWorkerCommandResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface NodeAgentHandlers extends grpc.UntypedServiceImplementation {
  ApplyTrafficPlan: grpc.handleUnaryCall<_gpufleet_agent_v1_ApplyTrafficPlanRequest__Output, _gpufleet_agent_v1_ApplyTrafficPlanResponse>;
  
  GetNodeInfo: grpc.handleUnaryCall<_gpufleet_agent_v1_GetNodeInfoRequest__Output, _gpufleet_agent_v1_NodeInfo>;
  
  ListWorkers: grpc.handleUnaryCall<_gpufleet_agent_v1_ListWorkersRequest__Output, _gpufleet_agent_v1_ListWorkersResponse>;
  
  RunDiagnostic: grpc.handleUnaryCall<_gpufleet_agent_v1_RunDiagnosticRequest__Output, _gpufleet_agent_v1_RunDiagnosticResponse>;
  
  SendWorkerCommand: grpc.handleUnaryCall<_gpufleet_agent_v1_SendWorkerCommandRequest__Output, _gpufleet_agent_v1_SendWorkerCommandResponse>;
  
}

export interface NodeAgentDefinition extends grpc.ServiceDefinition {
  ApplyTrafficPlan: MethodDefinition<_gpufleet_agent_v1_ApplyTrafficPlanRequest, _gpufleet_agent_v1_ApplyTrafficPlanResponse, _gpufleet_agent_v1_ApplyTrafficPlanRequest__Output, _gpufleet_agent_v1_ApplyTrafficPlanResponse__Output>
  GetNodeInfo: MethodDefinition<_gpufleet_agent_v1_GetNodeInfoRequest, _gpufleet_agent_v1_NodeInfo, _gpufleet_agent_v1_GetNodeInfoRequest__Output, _gpufleet_agent_v1_NodeInfo__Output>
  ListWorkers: MethodDefinition<_gpufleet_agent_v1_ListWorkersRequest, _gpufleet_agent_v1_ListWorkersResponse, _gpufleet_agent_v1_ListWorkersRequest__Output, _gpufleet_agent_v1_ListWorkersResponse__Output>
  RunDiagnostic: MethodDefinition<_gpufleet_agent_v1_RunDiagnosticRequest, _gpufleet_agent_v1_RunDiagnosticResponse, _gpufleet_agent_v1_RunDiagnosticRequest__Output, _gpufleet_agent_v1_RunDiagnosticResponse__Output>
  SendWorkerCommand: MethodDefinition<_gpufleet_agent_v1_SendWorkerCommandRequest, _gpufleet_agent_v1_SendWorkerCommandResponse, _gpufleet_agent_v1_SendWorkerCommandRequest__Output, _gpufleet_agent_v1_SendWorkerCommandResponse__Output>
}
