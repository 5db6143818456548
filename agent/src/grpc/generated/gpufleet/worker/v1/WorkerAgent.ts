// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CheckpointReport as _gpufleet_worker_v1_CheckpointReport, CheckpointReport__Output as _gpufleet_worker_v1_CheckpointReport__Output } from '../../../gpufleet/worker/v1/CheckpointReport.js';
import type { CollectiveBatch as _gpufleet_worker_v1_CollectiveBatch, CollectiveBatch__Output as _gpufleet_worker_v1_CollectiveBatch__Output } from '../../../gpufleet/worker/v1/CollectiveBatch.js';
import type { CommandAck as _gpufleet_worker_v1_CommandAck, CommandAck__Output as _gpufleet_worker_v1_CommandAck__Output } from '../../../gpufleet/worker/v1/CommandAck.js';
import type { CommandStreamRequest as _gpufleet_worker_v1_CommandStreamRequest, CommandStreamRequest__Output as _gpufleet_worker_v1_CommandStreamRequest__Output } from '../../../gpufleet/worker/v1/CommandStreamRequest.js';
import type { HeartbeatRequest as _gpufleet_worker_v1_HeartbeatRequest, HeartbeatRequest__Output as _gpufleet_worker_v1_HeartbeatRequest__Output } from '../../../gpufleet/worker/v1/HeartbeatRequest.js';
import type { HeartbeatResponse as _gpufleet_worker_v1_HeartbeatResponse, HeartbeatResponse__Output as _gpufleet_worker_v1_HeartbeatResponse__Output } from '../../../gpufleet/worker/v1/HeartbeatResponse.js';
import type { LoadReport as _gpufleet_worker_v1_LoadReport, LoadReport__Output as _gpufleet_worker_v1_LoadReport__Output } from '../../../gpufleet/worker/v1/LoadReport.js';
import type { RegisterRequest as _gpufleet_worker_v1_RegisterRequest, RegisterRequest__Output as _gpufleet_worker_v1_RegisterRequest__Output } from '../../../gpufleet/worker/v1/RegisterRequest.js';
import type { RegisterResponse as _gpufleet_worker_v1_RegisterResponse, RegisterResponse__Output as _gpufleet_worker_v1_RegisterResponse__Output } from '../../../gpufleet/worker/v1/RegisterResponse.js';
import type { ReportAck as _gpufleet_worker_v1_ReportAck, ReportAck__Output as _gpufleet_worker_v1_ReportAck__Output } from '../../../gpufleet/worker/v1/ReportAck.js';
import type { WorkerCommand as _gpufleet_worker_v1_WorkerCommand, WorkerCommand__Output as _gpufleet_worker_v1_WorkerCommand__Output } from '../../../gpufleet/worker/v1/WorkerCommand.js';

export interface WorkerAgentClient extends grpc.Client {
  AckCommand(argument: _gpufleet_worker_v1_CommandAck, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  AckCommand(argument: _gpufleet_worker_v1_CommandAck, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  AckCommand(argument: _gpufleet_worker_v1_CommandAck, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  AckCommand(argument: _gpufleet_worker_v1_CommandAck, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ackCommand(argument: _gpufleet_worker_v1_CommandAck, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ackCommand(argument: _gpufleet_worker_v1_CommandAck, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ackCommand(argument: _gpufleet_worker_v1_CommandAck, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ackCommand(argument: _gpufleet_worker_v1_CommandAck, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  
  Commands(argument: _gpufleet_worker_v1_CommandStreamRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_gpufleet_worker_v1_WorkerCommand__Output>;
  Commands(argument: _gpufleet_worker_v1_CommandStreamRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_gpufleet_worker_v1_WorkerCommand__Output>;
  commands(argument: _gpufleet_worker_v1_CommandStreamRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_gpufleet_worker_v1_WorkerCommand__Output>;
  commands(argument: _gpufleet_worker_v1_CommandStreamRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_gpufleet_worker_v1_WorkerCommand__Output>;
  
  Heartbeat(argument: _gpufleet_worker_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _gpufleet_worker_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _gpufleet_worker_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _gpufleet_worker_v1_HeartbeatRequest, callback: grpc.requestCallback<_gpufleet_worker_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _gpufleet_worker_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _gpufleet_worker_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _gpufleet_worker_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _gpufleet_worker_v1_HeartbeatRequest, callback: grpc.requestCallback<_gpufleet_worker_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  
  Register(argument: _gpufleet_worker_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _gpufleet_worker_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _gpufleet_worker_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _gpufleet_worker_v1_RegisterRequest, callback: grpc.requestCallback<_gpufleet_worker_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _gpufleet_worker_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _gpufleet_worker_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _gpufleet_worker_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _gpufleet_worker_v1_RegisterRequest, callback: grpc.requestCallback<_gpufleet_worker_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  
  ReportCheckpoint(argument: _gpufleet_worker_v1_CheckpointReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ReportCheckpoint(argument: _gpufleet_worker_v1_CheckpointReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ReportCheckpoint(argument: _gpufleet_worker_v1_CheckpointReport, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ReportCheckpoint(argument: _gpufleet_worker_v1_CheckpointReport, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportCheckpoint(argument: _gpufleet_worker_v1_CheckpointReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportCheckpoint(argument: _gpufleet_worker_v1_CheckpointReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportCheckpoint(argument: _gpufleet_worker_v1_CheckpointReport, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportCheckpoint(argument: _gpufleet_worker_v1_CheckpointReport, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  
  ReportCollectives(argument: _gpufleet_worker_v1_CollectiveBatch, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ReportCollectives(argument: _gpufleet_worker_v1_CollectiveBatch, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ReportCollectives(argument: _gpufleet_worker_v1_CollectiveBatch, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ReportCollectives(argument: _gpufleet_worker_v1_CollectiveBatch, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportCollectives(argument: _gpufleet_worker_v1_CollectiveBatch, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportCollectives(argument: _gpufleet_worker_v1_CollectiveBatch, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportCollectives(argument: _gpufleet_worker_v1_CollectiveBatch, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportCollectives(argument: _gpufleet_worker_v1_CollectiveBatch, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  
  ReportLoad(argument: _gpufleet_worker_v1_LoadReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ReportLoad(argument: _gpufleet_worker_v1_LoadReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ReportLoad(argument: _gpufleet_worker_v1_LoadReport, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  ReportLoad(argument: _gpufleet_worker_v1_LoadReport, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportLoad(argument: _gpufleet_worker_v1_LoadReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportLoad(argument: _gpufleet_worker_v1_LoadReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportLoad(argument: _gpufleet_worker_v1_LoadReport, options: grpc.CallOptions, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  reportLoad(argument: _gpufleet_worker_v1_LoadReport, callback: grpc.requestCallback<_gpufleet_worker_v1_ReportAck__Output>): grpc.ClientUnaryCall;
  
}

export interface WorkerAgentHandlers extends grpc.UntypedServiceImplementation {
  AckCommand: grpc.handleUnaryCall<_gpufleet_worker_v1_CommandAck__Output, _gpufleet_worker_v1_ReportAck>;
  
  Commands: grpc.handleServerStreamingCall<_gpufleet_worker_v1_CommandStreamRequest__Output, _gpufleet_worker_v1_WorkerCommand>;
  
  Heartbeat: grpc.handleUnaryCall<_gpufleet_worker_v1_HeartbeatRequest__Output, _gpufleet_worker_v1_HeartbeatResponse>;
  
  Register: grpc.handleUnaryCall<_gpufleet_worker_v1_RegisterRequest__Output, _gpufleet_worker_v1_RegisterResponse>;
  
  ReportCheckpoint: grpc.handleUnaryCall<_gpufleet_worker_v1_CheckpointReport__Output, _gpufleet_worker_v1_ReportAck>;
  
  ReportCollectives: grpc.handleUnaryCall<_gpufleet_worker_v1_CollectiveBatch__Output, _gpufleet_worker_v1_ReportAck>;
  
  ReportLoad: grpc.handleUnaryCall<_gpufleet_worker_v1_LoadReport__Output, _gpufleet_worker_v1_ReportAck>;
  
}

export interface WorkerAgentDefinition extends grpc.ServiceDefinition {
  AckCommand: MethodDefinition<_gpufleet_worker_v1_CommandAck, _gpufleet_worker_v1_ReportAck, _gpufleet_worker_v1_CommandAck__Output, _gpufleet_worker_v1_ReportAck__Output>
  Commands: MethodDefinition<_gpufleet_worker_v1_CommandStreamRequest, _gpufleet_worker_v1_WorkerCommand, _gpufleet_worker_v1_CommandStreamRequest__Output, _gpufleet_worker_v1_WorkerCommand__Output>
  Heartbeat: MethodDefinition<_gpufleet_worker_v1_HeartbeatRequest, _gpufleet_worker_v1_HeartbeatResponse, _gpufleet_worker_v1_HeartbeatRequest__Output, _gpufleet_worker_v1_HeartbeatResponse__Output>
  Register: MethodDefinition<_gpufleet_worker_v1_RegisterRequest, _gpufleet_worker_v1_RegisterResponse, _gpufleet_worker_v1_RegisterRequest__Output, _gpufleet_worker_v1_RegisterResponse__Output>
  ReportCheckpoint: MethodDefinition<_gpufleet_worker_v1_CheckpointReport, _gpufleet_worker_v1_ReportAck, _gpufleet_worker_v1_CheckpointReport__Output, _gpufleet_worker_v1_ReportAck__Output>
  ReportCollectives: MethodDefinition<_gpufleet_worker_v1_CollectiveBatch, _gpufleet_worker_v1_ReportAck, _gpufleet_worker_v1_CollectiveBatch__Output, _gpufleet_worker_v1_ReportAck__Output>
  ReportLoad: MethodDefinition<_gpufleet_worker_v1_LoadReport, _gpufleet_worker_v1_ReportAck, _gpufleet_worker_v1_LoadReport__Output, _gpufleet_worker_v1_ReportAck__Output>
}
