// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { AppliedTrafficPlan as _gpufleet_agent_v1_AppliedTrafficPlan, AppliedTrafficPlan__Output as _gpufleet_agent_v1_AppliedTrafficPlan__Output } from '../../../gpufleet/agent/v1/AppliedTrafficPlan.js';

export interface ApplyTrafficPlanResponse {
  'planId'?: (string);
  'applied'?: (_gpufleet_agent_v1_AppliedTrafficPlan | null);
}

export interface ApplyTrafficPlanResponse__Output {
  'planId': (string);
  'applied': (_gpufleet_agent_v1_AppliedTrafficPlan__Output | null);
}
