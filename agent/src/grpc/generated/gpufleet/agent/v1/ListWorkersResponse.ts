// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { WorkerStatus as _gpufleet_agent_v1_WorkerStatus, WorkerStatus__Output as _gpufleet_agent_v1_WorkerStatus__Output } from '../../../gpufleet/agent/v1/WorkerStatus.js';

export interface ListWorkersResponse {
  'workers'?: (_gpufleet_agent_v1_WorkerStatus)[];
}

export interface ListWorkersResponse__Output {
  'workers': (_gpufleet_agent_v1_WorkerStatus__Output)[];
}
