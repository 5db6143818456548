// Original file: agent/proto/gpufleet/worker/v1/worker.proto


export interface RegisterRequest {
  'workerId'?: (string);
  'podNamespace'?: (string);
  'podName'?: (string);
  'podUid'?: (string);
  'nodeName'?: (string);
  'kind'?: (string);
  'gpuUuids'?: (string)[];
  'rank'?: (number);
  'worldSize'?: (number);
  'simulated'?: (boolean);
}

export interface RegisterRequest__Output {
  'workerId': (string);
  'podNamespace': (string);
  'podName': (string);
  'podUid': (string);
  'nodeName': (string);
  'kind': (string);
  'gpuUuids': (string)[];
  'rank': (number);
  'worldSize': (number);
  'simulated': (boolean);
}
