// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type { Route as _gpufleet_worker_v1_Route, Route__Output as _gpufleet_worker_v1_Route__Output } from '../../../gpufleet/worker/v1/Route.js';

export interface ApplyRoutes {
  'planId'?: (string);
  'routes'?: (_gpufleet_worker_v1_Route)[];
}

export interface ApplyRoutes__Output {
  'planId': (string);
  'routes': (_gpufleet_worker_v1_Route__Output)[];
}
