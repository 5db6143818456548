// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface InjectFault {
  'kind'?: (string);
  'rank'?: (number);
  'peerRank'?: (number);
  'factor'?: (number | string);
}

export interface InjectFault__Output {
  'kind': (string);
  'rank': (number);
  'peerRank': (number);
  'factor': (number);
}
