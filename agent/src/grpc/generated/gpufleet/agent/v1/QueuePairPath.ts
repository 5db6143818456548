// Original file: agent/proto/gpufleet/agent/v1/agent.proto


export interface QueuePairPath {
  'udpSourcePort'?: (number);
  'spine'?: (string);
  'uplinkPort'?: (number);
  'downlinkPort'?: (number);
}

export interface QueuePairPath__Output {
  'udpSourcePort': (number);
  'spine': (string);
  'uplinkPort': (number);
  'downlinkPort': (number);
}
