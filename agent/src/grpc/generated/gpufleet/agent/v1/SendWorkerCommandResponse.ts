// Original file: agent/proto/gpufleet/agent/v1/agent.proto


export interface SendWorkerCommandResponse {
  'commandId'?: (string);
  'delivered'?: (boolean);
}

export interface SendWorkerCommandResponse__Output {
  'commandId': (string);
  'delivered': (boolean);
}
