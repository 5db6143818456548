// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type { Long } from '@grpc/proto-loader';

export interface LoadReport {
  'workerId'?: (string);
  'unixMs'?: (number | string | Long);
  'queueLength'?: (number);
  'runningRequests'?: (number);
  'kvCacheUsedFraction'?: (number | string);
  'kvCacheUsedBytes'?: (number | string | Long);
  'ttftMs'?: (number | string);
  'tpotMs'?: (number | string);
  'tokensPerSecond'?: (number | string);
}

export interface LoadReport__Output {
  'workerId': (string);
  'unixMs': (number);
  'queueLength': (number);
  'runningRequests': (number);
  'kvCacheUsedFraction': (number);
  'kvCacheUsedBytes': (number);
  'ttftMs': (number);
  'tpotMs': (number);
  'tokensPerSecond': (number);
}
