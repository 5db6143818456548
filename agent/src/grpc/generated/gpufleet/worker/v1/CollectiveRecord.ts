// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type { PeerTransfer as _gpufleet_worker_v1_PeerTransfer, PeerTransfer__Output as _gpufleet_worker_v1_PeerTransfer__Output } from '../../../gpufleet/worker/v1/PeerTransfer.js';
import type { Long } from '@grpc/proto-loader';

export interface CollectiveRecord {
  'communicator'?: (string);
  'rank'?: (number);
  'nRanks'?: (number);
  'collective'?: (string);
  'sequence'?: (number | string | Long);
  'bytes'?: (number | string | Long);
  'startUnixUs'?: (number | string | Long);
  'endUnixUs'?: (number | string | Long);
  'peers'?: (_gpufleet_worker_v1_PeerTransfer)[];
}

export interface CollectiveRecord__Output {
  'communicator': (string);
  'rank': (number);
  'nRanks': (number);
  'collective': (string);
  'sequence': (number);
  'bytes': (number);
  'startUnixUs': (number);
  'endUnixUs': (number);
  'peers': (_gpufleet_worker_v1_PeerTransfer__Output)[];
}
