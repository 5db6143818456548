// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface MigrationCandidate {
  'requestId'?: (string);
  'blocks'?: (number);
  'priority'?: (number);
  'outputTokens'?: (number);
}

export interface MigrationCandidate__Output {
  'requestId': (string);
  'blocks': (number);
  'priority': (number);
  'outputTokens': (number);
}
