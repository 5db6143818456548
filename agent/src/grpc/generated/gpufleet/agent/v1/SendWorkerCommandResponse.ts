// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { Long } from '@grpc/proto-loader';

export interface SendWorkerCommandResponse {
  'commandId'?: (string);
  'outcome'?: (string);
  'reason'?: (string);
  'acknowledgedUnixMs'?: (number | string | Long);
}

export interface SendWorkerCommandResponse__Output {
  'commandId': (string);
  'outcome': (string);
  'reason': (string);
  'acknowledgedUnixMs': (number);
}
