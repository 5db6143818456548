// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface Route {
  'communicator'?: (string);
  'rank'?: (number);
  'peerRank'?: (number);
  'nic'?: (string);
  'weight'?: (number);
}

export interface Route__Output {
  'communicator': (string);
  'rank': (number);
  'peerRank': (number);
  'nic': (string);
  'weight': (number);
}
