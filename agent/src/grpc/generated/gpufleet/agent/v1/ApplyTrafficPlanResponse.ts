// Original file: agent/proto/gpufleet/agent/v1/agent.proto


export interface ApplyTrafficPlanResponse {
  'planId'?: (string);
  'routesApplied'?: (number);
  'workersNotified'?: (number);
}

export interface ApplyTrafficPlanResponse__Output {
  'planId': (string);
  'routesApplied': (number);
  'workersNotified': (number);
}
