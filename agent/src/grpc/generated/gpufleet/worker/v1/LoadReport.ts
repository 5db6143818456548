// Original file: agent/proto/gpufleet/worker/v1/worker.proto

import type { MigrationCandidate as _gpufleet_worker_v1_MigrationCandidate, MigrationCandidate__Output as _gpufleet_worker_v1_MigrationCandidate__Output } from '../../../gpufleet/worker/v1/MigrationCandidate.js';
import type { Long } from '@grpc/proto-loader';

export interface LoadReport {
  'workerId'?: (string);
  'unixMs'?: (number | string | Long);
  'queueLength'?: (number);
  'runningRequests'?: (number);
  'kvCacheUsedFraction'?: (number | string);
  'kvCacheUsedBytes'?: (number | string | Long);
  'ttftMs'?: (number | string);
  'tpotMs'?: (number | string);
  'tokensPerSecond'?: (number | string);
  'kvBlocksTotal'?: (number);
  'kvBlocksUsed'?: (number);
  'blockSizeTokens'?: (number);
  'waitingDemandBlocks'?: (number);
  'headOfLineDemandBlocks'?: (number);
  'role'?: (string);
  'model'?: (string);
  'tp'?: (number);
  'pp'?: (number);
  'gpuModel'?: (string);
  'preemptionsTotal'?: (number | string | Long);
  'heldKvBlocks'?: (number);
  'outstandingPromptTokens'?: (number);
  'draining'?: (boolean);
  'engineUrl'?: (string);
  'servingDeployment'?: (string);
  'highPriorityRunning'?: (number);
  'migrationCandidates'?: (_gpufleet_worker_v1_MigrationCandidate)[];
  'migrating'?: (string);
  'engine'?: (string);
  'disaggregationBootstrapPort'?: (number);
}

export interface LoadReport__Output {
  'workerId': (string);
  'unixMs': (number);
  'queueLength': (number);
  'runningRequests': (number);
  'kvCacheUsedFraction': (number);
  'kvCacheUsedBytes': (number);
  'ttftMs': (number);
  'tpotMs': (number);
  'tokensPerSecond': (number);
  'kvBlocksTotal': (number);
  'kvBlocksUsed': (number);
  'blockSizeTokens': (number);
  'waitingDemandBlocks': (number);
  'headOfLineDemandBlocks': (number);
  'role': (string);
  'model': (string);
  'tp': (number);
  'pp': (number);
  'gpuModel': (string);
  'preemptionsTotal': (number);
  'heldKvBlocks': (number);
  'outstandingPromptTokens': (number);
  'draining': (boolean);
  'engineUrl': (string);
  'servingDeployment': (string);
  'highPriorityRunning': (number);
  'migrationCandidates': (_gpufleet_worker_v1_MigrationCandidate__Output)[];
  'migrating': (string);
  'engine': (string);
  'disaggregationBootstrapPort': (number);
}
