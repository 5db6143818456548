// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { Route as _gpufleet_worker_v1_Route, Route__Output as _gpufleet_worker_v1_Route__Output } from '../../../gpufleet/worker/v1/Route.js';
import type { TrafficFlow as _gpufleet_agent_v1_TrafficFlow, TrafficFlow__Output as _gpufleet_agent_v1_TrafficFlow__Output } from '../../../gpufleet/agent/v1/TrafficFlow.js';

export interface ApplyTrafficPlanRequest {
  'nodeName'?: (string);
  'planId'?: (string);
  'routes'?: (_gpufleet_worker_v1_Route)[];
  'fabric'?: (string);
  'flows'?: (_gpufleet_agent_v1_TrafficFlow)[];
}

export interface ApplyTrafficPlanRequest__Output {
  'nodeName': (string);
  'planId': (string);
  'routes': (_gpufleet_worker_v1_Route__Output)[];
  'fabric': (string);
  'flows': (_gpufleet_agent_v1_TrafficFlow__Output)[];
}
