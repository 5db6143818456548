// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { Gpu as _gpufleet_agent_v1_Gpu, Gpu__Output as _gpufleet_agent_v1_Gpu__Output } from '../../../gpufleet/agent/v1/Gpu.js';
import type { Nic as _gpufleet_agent_v1_Nic, Nic__Output as _gpufleet_agent_v1_Nic__Output } from '../../../gpufleet/agent/v1/Nic.js';
import type { AppliedTrafficPlan as _gpufleet_agent_v1_AppliedTrafficPlan, AppliedTrafficPlan__Output as _gpufleet_agent_v1_AppliedTrafficPlan__Output } from '../../../gpufleet/agent/v1/AppliedTrafficPlan.js';

export interface NodeInfo {
  'nodeName'?: (string);
  'simulated'?: (boolean);
  'gpus'?: (_gpufleet_agent_v1_Gpu)[];
  'nics'?: (_gpufleet_agent_v1_Nic)[];
  'labels'?: ({[key: string]: string});
  'trafficPlan'?: (_gpufleet_agent_v1_AppliedTrafficPlan | null);
}

export interface NodeInfo__Output {
  'nodeName': (string);
  'simulated': (boolean);
  'gpus': (_gpufleet_agent_v1_Gpu__Output)[];
  'nics': (_gpufleet_agent_v1_Nic__Output)[];
  'labels': ({[key: string]: string});
  'trafficPlan': (_gpufleet_agent_v1_AppliedTrafficPlan__Output | null);
}
