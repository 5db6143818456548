// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface Abort {
  'reason'?: (string);
}

export interface Abort__Output {
  'reason': (string);
}
