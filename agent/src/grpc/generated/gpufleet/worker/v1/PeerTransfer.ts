// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type { Long } from '@grpc/proto-loader';

export interface PeerTransfer {
  'peerRank'?: (number);
  'bytes'?: (number | string | Long);
  'startUnixUs'?: (number | string | Long);
  'endUnixUs'?: (number | string | Long);
}

export interface PeerTransfer__Output {
  'peerRank': (number);
  'bytes': (number);
  'startUnixUs': (number);
  'endUnixUs': (number);
}
