// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type { Long } from '@grpc/proto-loader';

export interface CheckpointReport {
  'workerId'?: (string);
  'step'?: (number | string | Long);
  'unixMs'?: (number | string | Long);
  'path'?: (string);
}

export interface CheckpointReport__Output {
  'workerId': (string);
  'step': (number);
  'unixMs': (number);
  'path': (string);
}
