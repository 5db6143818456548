// Original file: /work/main/agent/proto/gpufleet/agent/v1/agent.proto


export interface TrafficRoute {
  'communicator'?: (string);
  'rank'?: (number);
  'peerRank'?: (number);
  'nic'?: (string);
  'weight'?: (number);
}

export interface TrafficRoute__Output {
  'communicator': (string);
  'rank': (number);
  'peerRank': (number);
  'nic': (string);
  'weight': (number);
}
