// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { WorkerCommand as _gpufleet_worker_v1_WorkerCommand, WorkerCommand__Output as _gpufleet_worker_v1_WorkerCommand__Output } from '../../../gpufleet/worker/v1/WorkerCommand.js';

export interface SendWorkerCommandRequest {
  'workerId'?: (string);
  'command'?: (_gpufleet_worker_v1_WorkerCommand | null);
}

export interface SendWorkerCommandRequest__Output {
  'workerId': (string);
  'command': (_gpufleet_worker_v1_WorkerCommand__Output | null);
}
