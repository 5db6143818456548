// Original file: agent/proto/gpufleet/agent/v1/agent.proto


export interface RunDiagnosticResponse {
  'passed'?: (boolean);
  'summary'?: (string);
  'details'?: ({[key: string]: string});
}

export interface RunDiagnosticResponse__Output {
  'passed': (boolean);
  'summary': (string);
  'details': ({[key: string]: string});
}
