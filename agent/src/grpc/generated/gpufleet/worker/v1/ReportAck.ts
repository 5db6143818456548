// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface ReportAck {
  'accepted'?: (number);
}

export interface ReportAck__Output {
  'accepted': (number);
}
