import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AppliedTrafficPlan as _gpufleet_agent_v1_AppliedTrafficPlan, AppliedTrafficPlan__Output as _gpufleet_agent_v1_AppliedTrafficPlan__Output } from './gpufleet/agent/v1/AppliedTrafficPlan.js';
import type { ApplyTrafficPlanRequest as _gpufleet_agent_v1_ApplyTrafficPlanRequest, ApplyTrafficPlanRequest__Output as _gpufleet_agent_v1_ApplyTrafficPlanRequest__Output } from './gpufleet/agent/v1/ApplyTrafficPlanRequest.js';
import type { ApplyTrafficPlanResponse as _gpufleet_agent_v1_ApplyTrafficPlanResponse, ApplyTrafficPlanResponse__Output as _gpufleet_agent_v1_ApplyTrafficPlanResponse__Output } from './gpufleet/agent/v1/ApplyTrafficPlanResponse.js';
import type { GetNodeInfoRequest as _gpufleet_agent_v1_GetNodeInfoRequest, GetNodeInfoRequest__Output as _gpufleet_agent_v1_GetNodeInfoRequest__Output } from './gpufleet/agent/v1/GetNodeInfoRequest.js';
import type { Gpu as _gpufleet_agent_v1_Gpu, Gpu__Output as _gpufleet_agent_v1_Gpu__Output } from './gpufleet/agent/v1/Gpu.js';
import type { ListWorkersRequest as _gpufleet_agent_v1_ListWorkersRequest, ListWorkersRequest__Output as _gpufleet_agent_v1_ListWorkersRequest__Output } from './gpufleet/agent/v1/ListWorkersRequest.js';
import type { ListWorkersResponse as _gpufleet_agent_v1_ListWorkersResponse, ListWorkersResponse__Output as _gpufleet_agent_v1_ListWorkersResponse__Output } from './gpufleet/agent/v1/ListWorkersResponse.js';
import type { Nic as _gpufleet_agent_v1_Nic, Nic__Output as _gpufleet_agent_v1_Nic__Output } from './gpufleet/agent/v1/Nic.js';
import type { NodeAgentClient as _gpufleet_agent_v1_NodeAgentClient, NodeAgentDefinition as _gpufleet_agent_v1_NodeAgentDefinition } from './gpufleet/agent/v1/NodeAgent.js';
import type { NodeInfo as _gpufleet_agent_v1_NodeInfo, NodeInfo__Output as _gpufleet_agent_v1_NodeInfo__Output } from './gpufleet/agent/v1/NodeInfo.js';
import type { QueuePairPath as _gpufleet_agent_v1_QueuePairPath, QueuePairPath__Output as _gpufleet_agent_v1_QueuePairPath__Output } from './gpufleet/agent/v1/QueuePairPath.js';
import type { RunDiagnosticRequest as _gpufleet_agent_v1_RunDiagnosticRequest, RunDiagnosticRequest__Output as _gpufleet_agent_v1_RunDiagnosticRequest__Output } from './gpufleet/agent/v1/RunDiagnosticRequest.js';
import type { RunDiagnosticResponse as _gpufleet_agent_v1_RunDiagnosticResponse, RunDiagnosticResponse__Output as _gpufleet_agent_v1_RunDiagnosticResponse__Output } from './gpufleet/agent/v1/RunDiagnosticResponse.js';
import type { SendWorkerCommandRequest as _gpufleet_agent_v1_SendWorkerCommandRequest, SendWorkerCommandRequest__Output as _gpufleet_agent_v1_SendWorkerCommandRequest__Output } from './gpufleet/agent/v1/SendWorkerCommandRequest.js';
import type { SendWorkerCommandResponse as _gpufleet_agent_v1_SendWorkerCommandResponse, SendWorkerCommandResponse__Output as _gpufleet_agent_v1_SendWorkerCommandResponse__Output } from './gpufleet/agent/v1/SendWorkerCommandResponse.js';
import type { TrafficFlow as _gpufleet_agent_v1_TrafficFlow, TrafficFlow__Output as _gpufleet_agent_v1_TrafficFlow__Output } from './gpufleet/agent/v1/TrafficFlow.js';
import type { WorkerStatus as _gpufleet_agent_v1_WorkerStatus, WorkerStatus__Output as _gpufleet_agent_v1_WorkerStatus__Output } from './gpufleet/agent/v1/WorkerStatus.js';
import type { Abort as _gpufleet_worker_v1_Abort, Abort__Output as _gpufleet_worker_v1_Abort__Output } from './gpufleet/worker/v1/Abort.js';
import type { ApplyRoutes as _gpufleet_worker_v1_ApplyRoutes, ApplyRoutes__Output as _gpufleet_worker_v1_ApplyRoutes__Output } from './gpufleet/worker/v1/ApplyRoutes.js';
import type { CheckpointReport as _gpufleet_worker_v1_CheckpointReport, CheckpointReport__Output as _gpufleet_worker_v1_CheckpointReport__Output } from './gpufleet/worker/v1/CheckpointReport.js';
import type { CollectiveBatch as _gpufleet_worker_v1_CollectiveBatch, CollectiveBatch__Output as _gpufleet_worker_v1_CollectiveBatch__Output } from './gpufleet/worker/v1/CollectiveBatch.js';
import type { CollectiveRecord as _gpufleet_worker_v1_CollectiveRecord, CollectiveRecord__Output as _gpufleet_worker_v1_CollectiveRecord__Output } from './gpufleet/worker/v1/CollectiveRecord.js';
import type { CommandAck as _gpufleet_worker_v1_CommandAck, CommandAck__Output as _gpufleet_worker_v1_CommandAck__Output } from './gpufleet/worker/v1/CommandAck.js';
import type { CommandStreamRequest as _gpufleet_worker_v1_CommandStreamRequest, CommandStreamRequest__Output as _gpufleet_worker_v1_CommandStreamRequest__Output } from './gpufleet/worker/v1/CommandStreamRequest.js';
import type { Drain as _gpufleet_worker_v1_Drain, Drain__Output as _gpufleet_worker_v1_Drain__Output } from './gpufleet/worker/v1/Drain.js';
import type { HeartbeatRequest as _gpufleet_worker_v1_HeartbeatRequest, HeartbeatRequest__Output as _gpufleet_worker_v1_HeartbeatRequest__Output } from './gpufleet/worker/v1/HeartbeatRequest.js';
import type { HeartbeatResponse as _gpufleet_worker_v1_HeartbeatResponse, HeartbeatResponse__Output as _gpufleet_worker_v1_HeartbeatResponse__Output } from './gpufleet/worker/v1/HeartbeatResponse.js';
import type { InjectFault as _gpufleet_worker_v1_InjectFault, InjectFault__Output as _gpufleet_worker_v1_InjectFault__Output } from './gpufleet/worker/v1/InjectFault.js';
import type { LoadReport as _gpufleet_worker_v1_LoadReport, LoadReport__Output as _gpufleet_worker_v1_LoadReport__Output } from './gpufleet/worker/v1/LoadReport.js';
import type { MigrateIn as _gpufleet_worker_v1_MigrateIn, MigrateIn__Output as _gpufleet_worker_v1_MigrateIn__Output } from './gpufleet/worker/v1/MigrateIn.js';
import type { MigrateOut as _gpufleet_worker_v1_MigrateOut, MigrateOut__Output as _gpufleet_worker_v1_MigrateOut__Output } from './gpufleet/worker/v1/MigrateOut.js';
import type { MigrationCandidate as _gpufleet_worker_v1_MigrationCandidate, MigrationCandidate__Output as _gpufleet_worker_v1_MigrationCandidate__Output } from './gpufleet/worker/v1/MigrationCandidate.js';
import type { PeerTransfer as _gpufleet_worker_v1_PeerTransfer, PeerTransfer__Output as _gpufleet_worker_v1_PeerTransfer__Output } from './gpufleet/worker/v1/PeerTransfer.js';
import type { RegisterRequest as _gpufleet_worker_v1_RegisterRequest, RegisterRequest__Output as _gpufleet_worker_v1_RegisterRequest__Output } from './gpufleet/worker/v1/RegisterRequest.js';
import type { RegisterResponse as _gpufleet_worker_v1_RegisterResponse, RegisterResponse__Output as _gpufleet_worker_v1_RegisterResponse__Output } from './gpufleet/worker/v1/RegisterResponse.js';
import type { ReportAck as _gpufleet_worker_v1_ReportAck, ReportAck__Output as _gpufleet_worker_v1_ReportAck__Output } from './gpufleet/worker/v1/ReportAck.js';
import type { Route as _gpufleet_worker_v1_Route, Route__Output as _gpufleet_worker_v1_Route__Output } from './gpufleet/worker/v1/Route.js';
import type { WorkerAgentClient as _gpufleet_worker_v1_WorkerAgentClient, WorkerAgentDefinition as _gpufleet_worker_v1_WorkerAgentDefinition } from './gpufleet/worker/v1/WorkerAgent.js';
import type { WorkerCommand as _gpufleet_worker_v1_WorkerCommand, WorkerCommand__Output as _gpufleet_worker_v1_WorkerCommand__Output } from './gpufleet/worker/v1/WorkerCommand.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  gpufleet: {
    agent: {
      v1: {
        AppliedTrafficPlan: MessageTypeDefinition<_gpufleet_agent_v1_AppliedTrafficPlan, _gpufleet_agent_v1_AppliedTrafficPlan__Output>
        ApplyTrafficPlanRequest: MessageTypeDefinition<_gpufleet_agent_v1_ApplyTrafficPlanRequest, _gpufleet_agent_v1_ApplyTrafficPlanRequest__Output>
        ApplyTrafficPlanResponse: MessageTypeDefinition<_gpufleet_agent_v1_ApplyTrafficPlanResponse, _gpufleet_agent_v1_ApplyTrafficPlanResponse__Output>
        GetNodeInfoRequest: MessageTypeDefinition<_gpufleet_agent_v1_GetNodeInfoRequest, _gpufleet_agent_v1_GetNodeInfoRequest__Output>
        Gpu: MessageTypeDefinition<_gpufleet_agent_v1_Gpu, _gpufleet_agent_v1_Gpu__Output>
        ListWorkersRequest: MessageTypeDefinition<_gpufleet_agent_v1_ListWorkersRequest, _gpufleet_agent_v1_ListWorkersRequest__Output>
        ListWorkersResponse: MessageTypeDefinition<_gpufleet_agent_v1_ListWorkersResponse, _gpufleet_agent_v1_ListWorkersResponse__Output>
        Nic: MessageTypeDefinition<_gpufleet_agent_v1_Nic, _gpufleet_agent_v1_Nic__Output>
        NodeAgent: SubtypeConstructor<typeof grpc.Client, _gpufleet_agent_v1_NodeAgentClient> & { service: _gpufleet_agent_v1_NodeAgentDefinition }
        NodeInfo: MessageTypeDefinition<_gpufleet_agent_v1_NodeInfo, _gpufleet_agent_v1_NodeInfo__Output>
        QueuePairPath: MessageTypeDefinition<_gpufleet_agent_v1_QueuePairPath, _gpufleet_agent_v1_QueuePairPath__Output>
        RunDiagnosticRequest: MessageTypeDefinition<_gpufleet_agent_v1_RunDiagnosticRequest, _gpufleet_agent_v1_RunDiagnosticRequest__Output>
        RunDiagnosticResponse: MessageTypeDefinition<_gpufleet_agent_v1_RunDiagnosticResponse, _gpufleet_agent_v1_RunDiagnosticResponse__Output>
        SendWorkerCommandRequest: MessageTypeDefinition<_gpufleet_agent_v1_SendWorkerCommandRequest, _gpufleet_agent_v1_SendWorkerCommandRequest__Output>
        SendWorkerCommandResponse: MessageTypeDefinition<_gpufleet_agent_v1_SendWorkerCommandResponse, _gpufleet_agent_v1_SendWorkerCommandResponse__Output>
        TrafficFlow: MessageTypeDefinition<_gpufleet_agent_v1_TrafficFlow, _gpufleet_agent_v1_TrafficFlow__Output>
        WorkerStatus: MessageTypeDefinition<_gpufleet_agent_v1_WorkerStatus, _gpufleet_agent_v1_WorkerStatus__Output>
      }
    }
    worker: {
      v1: {
        Abort: MessageTypeDefinition<_gpufleet_worker_v1_Abort, _gpufleet_worker_v1_Abort__Output>
        ApplyRoutes: MessageTypeDefinition<_gpufleet_worker_v1_ApplyRoutes, _gpufleet_worker_v1_ApplyRoutes__Output>
        CheckpointReport: MessageTypeDefinition<_gpufleet_worker_v1_CheckpointReport, _gpufleet_worker_v1_CheckpointReport__Output>
        CollectiveBatch: MessageTypeDefinition<_gpufleet_worker_v1_CollectiveBatch, _gpufleet_worker_v1_CollectiveBatch__Output>
        CollectiveRecord: MessageTypeDefinition<_gpufleet_worker_v1_CollectiveRecord, _gpufleet_worker_v1_CollectiveRecord__Output>
        CommandAck: MessageTypeDefinition<_gpufleet_worker_v1_CommandAck, _gpufleet_worker_v1_CommandAck__Output>
        CommandStreamRequest: MessageTypeDefinition<_gpufleet_worker_v1_CommandStreamRequest, _gpufleet_worker_v1_CommandStreamRequest__Output>
        Drain: MessageTypeDefinition<_gpufleet_worker_v1_Drain, _gpufleet_worker_v1_Drain__Output>
        HeartbeatRequest: MessageTypeDefinition<_gpufleet_worker_v1_HeartbeatRequest, _gpufleet_worker_v1_HeartbeatRequest__Output>
        HeartbeatResponse: MessageTypeDefinition<_gpufleet_worker_v1_HeartbeatResponse, _gpufleet_worker_v1_HeartbeatResponse__Output>
        InjectFault: MessageTypeDefinition<_gpufleet_worker_v1_InjectFault, _gpufleet_worker_v1_InjectFault__Output>
        LoadReport: MessageTypeDefinition<_gpufleet_worker_v1_LoadReport, _gpufleet_worker_v1_LoadReport__Output>
        MigrateIn: MessageTypeDefinition<_gpufleet_worker_v1_MigrateIn, _gpufleet_worker_v1_MigrateIn__Output>
        MigrateOut: MessageTypeDefinition<_gpufleet_worker_v1_MigrateOut, _gpufleet_worker_v1_MigrateOut__Output>
        MigrationCandidate: MessageTypeDefinition<_gpufleet_worker_v1_MigrationCandidate, _gpufleet_worker_v1_MigrationCandidate__Output>
        PeerTransfer: MessageTypeDefinition<_gpufleet_worker_v1_PeerTransfer, _gpufleet_worker_v1_PeerTransfer__Output>
        RegisterRequest: MessageTypeDefinition<_gpufleet_worker_v1_RegisterRequest, _gpufleet_worker_v1_RegisterRequest__Output>
        RegisterResponse: MessageTypeDefinition<_gpufleet_worker_v1_RegisterResponse, _gpufleet_worker_v1_RegisterResponse__Output>
        ReportAck: MessageTypeDefinition<_gpufleet_worker_v1_ReportAck, _gpufleet_worker_v1_ReportAck__Output>
        Route: MessageTypeDefinition<_gpufleet_worker_v1_Route, _gpufleet_worker_v1_Route__Output>
        WorkerAgent: SubtypeConstructor<typeof grpc.Client, _gpufleet_worker_v1_WorkerAgentClient> & { service: _gpufleet_worker_v1_WorkerAgentDefinition }
        WorkerCommand: MessageTypeDefinition<_gpufleet_worker_v1_WorkerCommand, _gpufleet_worker_v1_WorkerCommand__Output>
      }
    }
  }
}

