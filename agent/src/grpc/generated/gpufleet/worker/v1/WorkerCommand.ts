// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type { MigrateOut as _gpufleet_worker_v1_MigrateOut, MigrateOut__Output as _gpufleet_worker_v1_MigrateOut__Output } from '../../../gpufleet/worker/v1/MigrateOut.js';
import type { MigrateIn as _gpufleet_worker_v1_MigrateIn, MigrateIn__Output as _gpufleet_worker_v1_MigrateIn__Output } from '../../../gpufleet/worker/v1/MigrateIn.js';
import type { Drain as _gpufleet_worker_v1_Drain, Drain__Output as _gpufleet_worker_v1_Drain__Output } from '../../../gpufleet/worker/v1/Drain.js';
import type { Abort as _gpufleet_worker_v1_Abort, Abort__Output as _gpufleet_worker_v1_Abort__Output } from '../../../gpufleet/worker/v1/Abort.js';
import type { InjectFault as _gpufleet_worker_v1_InjectFault, InjectFault__Output as _gpufleet_worker_v1_InjectFault__Output } from '../../../gpufleet/worker/v1/InjectFault.js';
import type { ApplyRoutes as _gpufleet_worker_v1_ApplyRoutes, ApplyRoutes__Output as _gpufleet_worker_v1_ApplyRoutes__Output } from '../../../gpufleet/worker/v1/ApplyRoutes.js';

export interface WorkerCommand {
  'commandId'?: (string);
  'migrateOut'?: (_gpufleet_worker_v1_MigrateOut | null);
  'migrateIn'?: (_gpufleet_worker_v1_MigrateIn | null);
  'drain'?: (_gpufleet_worker_v1_Drain | null);
  'abort'?: (_gpufleet_worker_v1_Abort | null);
  'injectFault'?: (_gpufleet_worker_v1_InjectFault | null);
  'applyRoutes'?: (_gpufleet_worker_v1_ApplyRoutes | null);
  'command'?: "migrateOut"|"migrateIn"|"drain"|"abort"|"injectFault"|"applyRoutes";
}

export interface WorkerCommand__Output {
  'commandId': (string);
  'migrateOut'?: (_gpufleet_worker_v1_MigrateOut__Output | null);
  'migrateIn'?: (_gpufleet_worker_v1_MigrateIn__Output | null);
  'drain'?: (_gpufleet_worker_v1_Drain__Output | null);
  'abort'?: (_gpufleet_worker_v1_Abort__Output | null);
  'injectFault'?: (_gpufleet_worker_v1_InjectFault__Output | null);
  'applyRoutes'?: (_gpufleet_worker_v1_ApplyRoutes__Output | null);
  'command'?: "migrateOut"|"migrateIn"|"drain"|"abort"|"injectFault"|"applyRoutes";
}
