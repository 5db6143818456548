// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { Route as _gpufleet_worker_v1_Route, Route__Output as _gpufleet_worker_v1_Route__Output } from '../../../gpufleet/worker/v1/Route.js';

export interface ApplyTrafficPlanRequest {
  'nodeName'?: (string);
  'planId'?: (string);
  'routes'?: (_gpufleet_worker_v1_Route)[];
}

export interface ApplyTrafficPlanRequest__Output {
  'nodeName': (string);
  'planId': (string);
  'routes': (_gpufleet_worker_v1_Route__Output)[];
}
