// Original file: agent/proto/gpufleet/agent/v1/agent.proto


export interface Nic {
  'device'?: (string);
  'port'?: (number);
  'type'?: (string);
  'bandwidthGbps'?: (number | string);
  'state'?: (string);
  'nearestGpus'?: (number)[];
}

export interface Nic__Output {
  'device': (string);
  'port': (number);
  'type': (string);
  'bandwidthGbps': (number);
  'state': (string);
  'nearestGpus': (number)[];
}
