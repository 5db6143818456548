// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { TrafficFlow as _gpufleet_agent_v1_TrafficFlow, TrafficFlow__Output as _gpufleet_agent_v1_TrafficFlow__Output } from '../../../gpufleet/agent/v1/TrafficFlow.js';
import type { Long } from '@grpc/proto-loader';

export interface AppliedTrafficPlan {
  'planId'?: (string);
  'fabric'?: (string);
  'flows'?: (_gpufleet_agent_v1_TrafficFlow)[];
  'appliedUnixMs'?: (number | string | Long);
  'qpsApplied'?: (number);
  'qpsOnPlannedPath'?: (number);
}

export interface AppliedTrafficPlan__Output {
  'planId': (string);
  'fabric': (string);
  'flows': (_gpufleet_agent_v1_TrafficFlow__Output)[];
  'appliedUnixMs': (number);
  'qpsApplied': (number);
  'qpsOnPlannedPath': (number);
}
