// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { Long } from '@grpc/proto-loader';

export interface Gpu {
  'index'?: (number);
  'uuid'?: (string);
  'model'?: (string);
  'productName'?: (string);
  'memoryMib'?: (number | string | Long);
  'pciBusId'?: (string);
  'numaNode'?: (number);
}

export interface Gpu__Output {
  'index': (number);
  'uuid': (string);
  'model': (string);
  'productName': (string);
  'memoryMib': (number);
  'pciBusId': (string);
  'numaNode': (number);
}
