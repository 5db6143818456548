// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type { CollectiveRecord as _gpufleet_worker_v1_CollectiveRecord, CollectiveRecord__Output as _gpufleet_worker_v1_CollectiveRecord__Output } from '../../../gpufleet/worker/v1/CollectiveRecord.js';

export interface CollectiveBatch {
  'workerId'?: (string);
  'records'?: (_gpufleet_worker_v1_CollectiveRecord)[];
}

export interface CollectiveBatch__Output {
  'workerId': (string);
  'records': (_gpufleet_worker_v1_CollectiveRecord__Output)[];
}
