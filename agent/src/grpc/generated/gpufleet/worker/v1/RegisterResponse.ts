// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface RegisterResponse {
  'heartbeatIntervalMs'?: (number);
  'missedHeartbeatsLimit'?: (number);
}

export interface RegisterResponse__Output {
  'heartbeatIntervalMs': (number);
  'missedHeartbeatsLimit': (number);
}
