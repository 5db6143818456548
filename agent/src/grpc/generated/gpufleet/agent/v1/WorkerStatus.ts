// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { Long } from '@grpc/proto-loader';

export interface WorkerStatus {
  'workerId'?: (string);
  'podNamespace'?: (string);
  'podName'?: (string);
  'nodeName'?: (string);
  'kind'?: (string);
  'rank'?: (number);
  'simulated'?: (boolean);
  'state'?: (string);
  'lastHeartbeatUnixMs'?: (number | string | Long);
}

export interface WorkerStatus__Output {
  'workerId': (string);
  'podNamespace': (string);
  'podName': (string);
  'nodeName': (string);
  'kind': (string);
  'rank': (number);
  'simulated': (boolean);
  'state': (string);
  'lastHeartbeatUnixMs': (number);
}
