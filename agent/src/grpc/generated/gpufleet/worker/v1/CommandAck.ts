// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface CommandAck {
  'workerId'?: (string);
  'commandId'?: (string);
  'outcome'?: (string);
  'reason'?: (string);
}

export interface CommandAck__Output {
  'workerId': (string);
  'commandId': (string);
  'outcome': (string);
  'reason': (string);
}
