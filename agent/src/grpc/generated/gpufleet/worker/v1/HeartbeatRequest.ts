// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type { Long } from '@grpc/proto-loader';

export interface HeartbeatRequest {
  'workerId'?: (string);
  'sentUnixMs'?: (number | string | Long);
}

export interface HeartbeatRequest__Output {
  'workerId': (string);
  'sentUnixMs': (number);
}
