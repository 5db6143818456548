// Original file: /work/main/agent/proto/gpufleet/agent/v1/agent.proto

import type { TrafficRoute as _gpufleet_agent_v1_TrafficRoute, TrafficRoute__Output as _gpufleet_agent_v1_TrafficRoute__Output } from '../../../gpufleet/agent/v1/TrafficRoute.js';

export interface ApplyTrafficPlanRequest {
  'nodeName'?: (string);
  'planId'?: (string);
  'routes'?: (_gpufleet_agent_v1_TrafficRoute)[];
}

export interface ApplyTrafficPlanRequest__Output {
  'nodeName': (string);
  'planId': (string);
  'routes': (_gpufleet_agent_v1_TrafficRoute__Output)[];
}
