// Original file: agent/proto/gpufleet/agent/v1/agent.proto


export interface RunDiagnosticRequest {
  'nodeName'?: (string);
  'diagnostic'?: (string);
}

export interface RunDiagnosticRequest__Output {
  'nodeName': (string);
  'diagnostic': (string);
}
