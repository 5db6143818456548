// Original file: agent/proto/gpufleet/agent/v1/agent.proto

import type { QueuePairPath as _gpufleet_agent_v1_QueuePairPath, QueuePairPath__Output as _gpufleet_agent_v1_QueuePairPath__Output } from '../../../gpufleet/agent/v1/QueuePairPath.js';

export interface TrafficFlow {
  'connectionId'?: (string);
  'job'?: (string);
  'communicator'?: (string);
  'srcRank'?: (number);
  'dstRank'?: (number);
  'dstNode'?: (string);
  'nic'?: (string);
  'demandGbps'?: (number | string);
  'qps'?: (_gpufleet_agent_v1_QueuePairPath)[];
}

export interface TrafficFlow__Output {
  'connectionId': (string);
  'job': (string);
  'communicator': (string);
  'srcRank': (number);
  'dstRank': (number);
  'dstNode': (string);
  'nic': (string);
  'demandGbps': (number);
  'qps': (_gpufleet_agent_v1_QueuePairPath__Output)[];
}
