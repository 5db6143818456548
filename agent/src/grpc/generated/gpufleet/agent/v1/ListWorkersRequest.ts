// Original file: agent/proto/gpufleet/agent/v1/agent.proto


export interface ListWorkersRequest {
  'nodeName'?: (string);
}

export interface ListWorkersRequest__Output {
  'nodeName': (string);
}
