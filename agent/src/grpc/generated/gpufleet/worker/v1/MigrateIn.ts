// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface MigrateIn {
  'requestId'?: (string);
  'sourceWorkerId'?: (string);
  'sourcePod'?: (string);
}

export interface MigrateIn__Output {
  'requestId': (string);
  'sourceWorkerId': (string);
  'sourcePod': (string);
}
