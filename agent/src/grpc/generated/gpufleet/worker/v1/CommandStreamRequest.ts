// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface CommandStreamRequest {
  'workerId'?: (string);
}

export interface CommandStreamRequest__Output {
  'workerId': (string);
}
