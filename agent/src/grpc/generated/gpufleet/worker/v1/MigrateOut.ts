// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface MigrateOut {
  'requestId'?: (string);
  'targetWorkerId'?: (string);
  'targetPod'?: (string);
  'targetUrl'?: (string);
}

export interface MigrateOut__Output {
  'requestId': (string);
  'targetWorkerId': (string);
  'targetPod': (string);
  'targetUrl': (string);
}
