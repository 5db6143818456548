/** Builders shared by the scheduler's unit tests. */
import { idleLoad, type InstanceLoad } from "../../../../common/src/scheduler/freeness.js";
import type { StatusPlan } from "../pools.js";
import type { ObservedPod } from "../rollout.js";
import type { LiveInstance } from "./instances.js";

const pool = (tp: number, replicas: number) => ({ tp, pp: 1, replicas, gpus: tp * replicas });
export const coloc = (replicas: number, tp = 1): StatusPlan => ({
  mode: "colocated",
  gpuModel: "H100-80GB",
  totalGpus: tp * replicas,
  goodputPerGpu: 1,
  colocated: pool(tp, replicas),
});
export const disagg = (p: number, d: number, affinity: "high" | "low" = "high"): StatusPlan => ({
  mode: "disaggregated",
  gpuModel: "H100-80GB",
  totalGpus: p + d,
  goodputPerGpu: 1,
  affinity,
  prefill: pool(1, p),
  decode: pool(1, d),
});

const SHORT = { prefill: "p", decode: "d", colocated: "c" } as const;

export function pod(role: ObservedPod["role"], index: number, over: Partial<ObservedPod> = {}): ObservedPod {
  return {
    name: `sd-h1-${SHORT[role]}${index}`,
    hash: "h1",
    role,
    index,
    worker: 0,
    groupKey: `${role}-${index}`,
    groupPods: 1,
    instancePods: 1,
    nodeName: "n1",
    gpus: 1,
    ready: true,
    failed: false,
    deleting: false,
    unschedulable: false,
    counted: true,
    ...over,
  };
}

export function instance(
  role: LiveInstance["role"],
  index: number,
  load: Partial<InstanceLoad> = {},
  over: Partial<LiveInstance> = {},
): LiveInstance {
  return {
    id: `uid-${SHORT[role]}${index}/0`,
    podName: `sd-h1-${SHORT[role]}${index}`,
    podNamespace: "llm",
    node: "n1",
    role,
    index,
    engineUrl: `http://127.0.0.1:1/instances/${index}`,
    load: { ...idleLoad(1000), ...load },
    candidates: [],
    migrating: undefined,
    reportedUnixMs: 10_000,
    ttftMs: 0,
    tpotMs: 0,
    waitingDemandBlocks: 0,
    ...over,
  };
}
