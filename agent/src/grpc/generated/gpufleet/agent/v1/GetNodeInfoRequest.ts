// Original file: agent/proto/gpufleet/agent/v1/agent.proto


export interface GetNodeInfoRequest {
  'nodeName'?: (string);
}

export interface GetNodeInfoRequest__Output {
  'nodeName': (string);
}
