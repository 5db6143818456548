// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface Drain {
  'deadlineMs'?: (number);
}

export interface Drain__Output {
  'deadlineMs': (number);
}
