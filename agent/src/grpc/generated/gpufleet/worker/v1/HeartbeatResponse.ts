// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type { Long } from '@grpc/proto-loader';

export interface HeartbeatResponse {
  'receivedUnixMs'?: (number | string | Long);
}

export interface HeartbeatResponse__Output {
  'receivedUnixMs': (number);
}
